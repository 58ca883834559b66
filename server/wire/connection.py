"""Connection files: where a running server says how to reach it. Standard library only.

``reamaster serve`` writes ``server.json`` in the user's config directory, readable only by
the user (mode 0600, folder 0700), and removes it on clean exit::

    {"format": "reamaster.connection", "endpoint": "tcp://127.0.0.1:47474",
     "protocol_version": 1, "signature_scheme": "hmac-sha256", "key": "<64 hex digits>",
     "server_id": "<32 hex digits>", "pid": 12345, "curve_server_key": null}

Config directory: ``$REAMASTER_CONFIG_DIR`` if set; else ``%APPDATA%\\reamaster`` on Windows,
``~/Library/Application Support/reamaster`` on macOS, ``$XDG_CONFIG_HOME/reamaster`` or
``~/.config/reamaster`` elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

CONNECTION_FORMAT = "reamaster.connection"
FILE_NAME = "server.json"
DEFAULT_PORT = 47474


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


def new_key() -> str:
    return secrets.token_hex(32)


def write_connection_file(info: ConnectionInfo, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``info`` atomically with mode 0600 (the folder is made 0700 if it is new)."""
    dest = Path(path) if path is not None else default_path()
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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


def read_connection_file(path: str | os.PathLike[str] | None = None) -> ConnectionInfo:
    p = Path(path) if path is not None else default_path()
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
        import ctypes

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
           "DEFAULT_PORT"]
