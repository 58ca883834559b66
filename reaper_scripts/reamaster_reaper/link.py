# @noindex
"""Reaching the ReaMaster server without blocking REAPER: read the connection file, start a server
when none runs (and wait for it in deferred steps), say hello - all through non-blocking polls."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from server.wire.client import Client, Failure, Result, serve_command
from server.wire.connection import ConnectionFileError, default_path, read_connection_file, server_running

from .host import UserError, log

START_WAIT_S = 60.0
LOCATION_FILE = "reamaster_location.json"  # written by `reamaster reaper install` beside the scripts


def _location() -> dict:
    """The install record, found as the bootstrap finds it (beside the scripts, else in ReaMaster's
    config folder, where a ReaPack install finds it)."""
    try:
        import reamaster_bootstrap  # beside the action files, on sys.path only inside REAPER
        return reamaster_bootstrap.location()
    except ImportError:
        here = Path(__file__).resolve().parent.parent
        try:
            return json.loads((here / LOCATION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def _serve_cmd() -> list[str]:
    """How to start the server: $REAMASTER_SERVE_CMD, the interpreter recorded at install, or the
    client's own rule (inside REAPER ``sys.executable`` is REAPER itself, so that rule is last)."""
    env = os.environ.get("REAMASTER_SERVE_CMD")
    if env:
        return shlex.split(env)
    loc = _location()
    if loc.get("python") and os.path.isfile(loc["python"]):
        return [loc["python"], "-m", "server.daemon"]
    try:
        return serve_command()
    except Exception as exc:  # ServerUnavailable with its own one-line advice
        raise UserError(str(exc)) from None


def _live_info(conn_path: Path):
    try:
        info = read_connection_file(conn_path)
    except ConnectionFileError:
        return None
    return info if server_running(conn_path) else None  # the server's lifetime lock, not a reusable pid


class Link:
    """``poll()`` returns a connected Client once the server said hello, else None; raises UserError."""

    def __init__(self, project_dirs: list[str]) -> None:
        self.project_dirs = project_dirs
        self.conn_path = default_path()
        self.proc: subprocess.Popen | None = None
        self.deadline = 0.0
        self.client: Client | None = None
        self.hello = None

    def poll(self) -> Client | None:
        if self.hello is not None:
            ev = self.hello.poll()
            if isinstance(ev, Result):
                return self.client
            if isinstance(ev, Failure):
                self.close()
                raise UserError(f"The ReaMaster server did not answer: {ev.message}")
            return None
        info = _live_info(self.conn_path)
        if info is None:
            self._start_or_wait()
            return None
        self.client = Client(info.endpoint, info.key, conn_file=self.conn_path, project_dir=self.project_dirs,
                             client_name="reaper", curve_server_key=info.curve_server_key)
        self.hello = self.client.submit("hello", {"client_name": "reaper", "project_dir": self.project_dirs})
        return None

    def _start_or_wait(self) -> None:
        if self.proc is None:
            cmd = _serve_cmd()
            log("starting the ReaMaster server (" + " ".join(cmd) + ") ...")
            env = dict(os.environ, REAMASTER_CONFIG_DIR=str(self.conn_path.parent))
            root = _location().get("root")
            if root:
                env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            self.conn_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            kw = {"start_new_session": True} if os.name == "posix" else {
                "creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
            log_path = self.conn_path.parent / "server.log"
            try:
                with open(log_path, "ab") as logf:
                    self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                                 cwd=str(self.conn_path.parent), close_fds=True, **kw)
            except OSError as exc:
                raise UserError(f"Could not start the ReaMaster server ({exc}). Start it yourself with "
                                f"`reamaster serve`, then run the action again.") from None
            self.deadline = time.monotonic() + START_WAIT_S
            return
        if self.proc.poll() is not None:
            raise UserError(f"The ReaMaster server did not start (exit status {self.proc.returncode}); see "
                            f"{self.conn_path.parent / 'server.log'}. Start it with `reamaster serve`.")
        if time.monotonic() > self.deadline:
            raise UserError(f"The ReaMaster server did not come up within {START_WAIT_S:g} s; see "
                            f"{self.conn_path.parent / 'server.log'}.")

    def close(self, linger_ms: int = 0) -> None:
        if self.client is not None:
            self.client.close(linger_ms=linger_ms)
            self.client = None
