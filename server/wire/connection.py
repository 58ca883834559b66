"""Connection files: where a running server says how to reach it. Standard library only.

``reamaster serve`` writes ``server.json`` in the user's config directory, readable only by
the user (mode 0600, folder 0700), and removes it on clean exit; it holds ``server.lock`` (an
OS lock, dropped even on kill -9) for its lifetime, which is how clients and other servers
tell a live server from a stale file. Clients refuse a file others could have written
(:func:`check_private`)::

    {"format": "reamaster.connection", "endpoint": "ipc:///home/me/.config/reamaster/run/server.sock",
     "protocol_version": 1, "signature_scheme": "hmac-sha256", "key": "<64 hex digits>",
     "server_id": "<32 hex digits>", "pid": 12345, "curve_server_key": null}

Config directory: ``$REAMASTER_CONFIG_DIR`` if set; else ``%APPDATA%\\reamaster`` on Windows,
``~/Library/Application Support/reamaster`` on macOS, ``$XDG_CONFIG_HOME/reamaster`` or
``~/.config/reamaster`` elsewhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

CONNECTION_FORMAT = "reamaster.connection"
FILE_NAME = "server.json"
LOCK_NAME = "server.lock"
RUN_DIR = "run"  # the 0700 folder of the ipc:// sockets, inside the config folder
DEFAULT_PORT = 47474
MAX_IPC_PATH = 100  # libzmq: 107 characters on Linux, 103 on macOS (sun_path)


class ConnectionFileError(Exception):
    """The connection file is missing, unreadable or malformed."""

    code = "no_connection_file"


def config_dir() -> Path:
    """The user's ReaMaster config directory (not created here)."""
    env = os.environ.get("REAMASTER_CONFIG_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / "reamaster"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "reamaster"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return Path(xdg if xdg else Path.home() / ".config") / "reamaster"


def default_path() -> Path:
    return config_dir() / FILE_NAME


@dataclasses.dataclass(frozen=True)
class ConnectionInfo:
    endpoint: str
    key: str  # 64 hex digits (32 random bytes); the HMAC key is bytes.fromhex(key)
    server_id: str
    pid: int
    protocol_version: int = 1
    signature_scheme: str = "hmac-sha256"
    curve_server_key: str | None = None  # Z85 public key when the server runs CURVE

    @property
    def key_bytes(self) -> bytes:
        return bytes.fromhex(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {"format": CONNECTION_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "connection file") -> ConnectionInfo:
        if not isinstance(d, dict) or d.get("format") != CONNECTION_FORMAT:
            raise ConnectionFileError(f"{where} is not a ReaMaster connection file")
        try:
            info = cls(endpoint=str(d["endpoint"]), key=str(d["key"]), server_id=str(d["server_id"]),
                       pid=int(d["pid"]), protocol_version=int(d.get("protocol_version", 1)),
                       signature_scheme=str(d.get("signature_scheme", "hmac-sha256")),
                       curve_server_key=d.get("curve_server_key"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConnectionFileError(f"{where} is incomplete ({exc})") from None
        if not re.fullmatch(r"[0-9a-f]{64}", info.key):
            raise ConnectionFileError(f"{where}: key must be 64 lowercase hex digits")
        if info.signature_scheme != "hmac-sha256":
            raise ConnectionFileError(f"{where}: signature scheme {info.signature_scheme!r} is not supported")
        return info


def secure_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` (and parents) a private folder: created 0700, an existing one of ours
    tightened to 0700 (a config folder left 0777 lets others swap the connection file);
    a folder owned by another user is refused."""
    d = Path(path)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        st = os.stat(d)
        if st.st_uid != os.geteuid():
            raise ConnectionFileError(f"{d} belongs to another user; ReaMaster keeps its keys only in a folder "
                                      "of your own (set REAMASTER_CONFIG_DIR)")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(d, 0o700)
    return d


def check_private(path: str | os.PathLike[str]) -> None:
    """ssh's rule for a file that holds a key: refuse it unless it is ours, not readable or
    writable by others, in a folder that is ours (or root's) and not writable by others.
    POSIX only (on Windows the profile folder's ACL protects it)."""
    if os.name != "posix":
        return
    p = Path(path)
    uid = os.geteuid()
    try:
        st, dst = os.stat(p), os.stat(p.parent)
    except OSError as exc:
        raise ConnectionFileError(f"cannot check {p}: {exc}") from None
    if st.st_uid != uid:
        raise ConnectionFileError(f"{p} belongs to another user (uid {st.st_uid}); not trusting it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConnectionFileError(f"{p} is readable or writable by other users (mode "
                                  f"{stat.S_IMODE(st.st_mode):o}); not trusting it: remove it and restart the server")
    if dst.st_uid not in (uid, 0) or stat.S_IMODE(dst.st_mode) & 0o022:
        raise ConnectionFileError(f"the folder {p.parent} is writable by other users (mode "
                                  f"{stat.S_IMODE(dst.st_mode):o}) or not yours; not trusting {p.name} in it")


def lock_path(conn_path: str | os.PathLike[str] | None = None) -> Path:
    """``server.lock`` beside ``server.json`` (``NAME.lock`` beside another ``NAME.json``)."""
    p = Path(conn_path) if conn_path is not None else default_path()
    return p.with_name(LOCK_NAME if p.name == FILE_NAME else f"{p.stem}.lock")


class ServerLock:
    """An exclusive lock on ``server.lock`` beside the connection file, held for the server's
    lifetime: the operating system drops it when the process dies (even by kill -9), so a
    stale file whose pid was reused never looks alive."""

    def __init__(self, conn_path: str | os.PathLike[str] | None = None) -> None:
        self.path = lock_path(conn_path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        if _try_lock(fd):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt  # Windows only

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl  # POSIX only

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt  # Windows only

        os.lseek(fd, 0, 0)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl  # POSIX only

    fcntl.flock(fd, fcntl.LOCK_UN)


def server_running(conn_path: str | os.PathLike[str] | None = None) -> bool:
    """Whether a server holds the lock beside this connection file (probes it without waiting)."""
    p = lock_path(conn_path)
    try:
        fd = os.open(p, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except OSError:
        return False
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)


def ipc_supported() -> bool:
    """ipc:// (Unix domain sockets) where they are protected by folder permissions: Linux, macOS."""
    if os.name != "posix":
        return False
    try:
        import zmq  # pyzmq loads when a server starts, not when the command line reads a port

        return bool(zmq.has("ipc"))
    except ImportError:  # pragma: no cover
        return False


def ipc_dir(conn_path: str | os.PathLike[str] | None = None) -> Path:
    """The private (0700) folder for ipc:// sockets: ``<config dir>/run``, or a fresh 0700 folder
    in the temp folder when that path is too long for a socket name."""
    base = (Path(conn_path) if conn_path is not None else default_path()).parent / RUN_DIR
    if len(str(base)) + 20 <= MAX_IPC_PATH:
        return secure_dir(base)
    # too long for sun_path: a 0700 folder of ours in /tmp, named after the config folder so a
    # restarted server binds the same endpoint again (secure_dir refuses one made by someone else)
    tag = hashlib.sha256(str(base.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    root = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    return secure_dir(Path(root) / f"reamaster-{os.geteuid()}-{tag}")


def new_key() -> str:
    return secrets.token_hex(32)


def write_connection_file(info: ConnectionInfo, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``info`` atomically with mode 0600 (the folder is made 0700 if it is new)."""
    dest = Path(path) if path is not None else default_path()
    secure_dir(dest.parent)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info.to_dict(), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        if hasattr(os, "chmod"):
            os.chmod(tmp, 0o600)  # in case the umask widened nothing but the platform ignored the mode
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest


def read_connection_file(path: str | os.PathLike[str] | None = None, *, trust_check: bool = False) -> ConnectionInfo:
    """Parse the connection file; with ``trust_check`` (clients) also refuse one owned by another
    user, readable by others, or in a folder others can write (see :func:`check_private`)."""
    p = Path(path) if path is not None else default_path()
    if trust_check and p.exists():
        check_private(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConnectionFileError(f"no connection file at {p}: is `reamaster serve` running?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectionFileError(f"cannot read {p}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConnectionFileError(f"{p} is not valid JSON") from None
    return ConnectionInfo.from_dict(data, str(p))


def remove_connection_file(server_id: str, path: str | os.PathLike[str] | None = None) -> bool:
    """Remove the file if it still belongs to ``server_id`` (a newer server may have replaced it)."""
    p = Path(path) if path is not None else default_path()
    try:
        if read_connection_file(p).server_id != server_id:
            return False
        p.unlink()
        return True
    except (ConnectionFileError, OSError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (best effort, any platform)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import ctypes  # Windows only

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_key_file(path: str | os.PathLike[str]) -> str:
    """A key from a connection file or from a file holding just the 64 hex digits."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectionFileError(f"cannot read key file {p}: {exc}") from None
    if text.startswith("{"):
        return read_connection_file(p).key
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ConnectionFileError(f"{p} holds neither a connection file nor a 64-hex-digit key")
    return text


__all__ = ["ConnectionInfo", "ConnectionFileError", "config_dir", "default_path", "write_connection_file",
           "read_connection_file", "remove_connection_file", "pid_alive", "new_key", "read_key_file",
           "DEFAULT_PORT", "ServerLock", "server_running", "secure_dir", "check_private", "ipc_supported",
           "ipc_dir", "lock_path"]
