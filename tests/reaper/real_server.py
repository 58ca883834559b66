"""A real ``python -m server.daemon`` for the REAPER-side tests (their ``server_cfg`` fixtures)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_server(cfg: Path) -> Iterator[Path]:
    """The server (tcp, one worker) with its config folder ``cfg``; killed with its workers on exit."""
    env = dict(os.environ, REAMASTER_CONFIG_DIR=str(cfg))
    with open(cfg / "server.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "server.daemon", "--port", "0", "--workers", "1"],
                                cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            end = time.monotonic() + 60
            while not (cfg / "server.json").exists() and time.monotonic() < end and proc.poll() is None:
                time.sleep(0.05)
            assert (cfg / "server.json").exists(), (cfg / "server.log").read_text()
            yield cfg
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
