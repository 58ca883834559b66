"""An in-memory REAPER for tests: real python-reapy runs on it as if inside REAPER.

Usage (see ``tests/reaper/conftest.py``)::

    host = standin.install()          # sys.modules["reaper_python"], a fresh __main__ with obj,
                                      # RPR_* and RPR_defer/RPR_atexit/RPR_runloop
    app = standin.reset(tmp_path)     # a fresh REAPER (one saved, empty project)
    import reapy                      # takes the inside-REAPER path
    ...
    host.run_deferred(max_steps=100)  # the main loop: one pass over the deferred queue per tick
    host.run_atexit()
    standin.uninstall()

Nothing here is shipped to users.
"""

from __future__ import annotations

import sys
import traceback
import types

from . import api
from .project import Reaper, UserInputsAnswer

__all__ = ["Host", "install", "uninstall", "reset", "app", "host", "errors", "run_deferred",
           "run_atexit", "answer_mb", "answer_inputs", "UserInputsAnswer", "Reaper", "DeferredError"]

_HOST: "Host | None" = None


class DeferredError(RuntimeError):
    """A deferred/atexit code string raised (REAPER prints it to the console and stops the script)."""


class Host:
    """REAPER's Python host: the ``__main__`` namespace, the defer queue and the atexit list."""

    def __init__(self, rpr, main: types.ModuleType | None = None) -> None:
        self.rpr = rpr
        self.embedded = main is not None  # inside the C host: the interpreter's own __main__
        self.main = main if main is not None else types.ModuleType("__main__")
        self.deferred: list[str] = []
        self.atexit: list[str] = []
        self.ticks = 0
        self._saved_main = None
        self._populate()

    def _populate(self) -> None:
        d = self.main.__dict__
        d.setdefault("__builtins__", __builtins__)
        d["obj"] = object()  # reapy's inside-REAPER marker
        for k, v in self.rpr.__dict__.items():
            if k.startswith("RPR_"):
                d[k] = v
        d["RPR_defer"] = self.defer
        d["RPR_runloop"] = self.defer
        d["RPR_atexit"] = self.at_exit

    # REAPER's built-ins take Python *source strings* (PyArg "s": anything else is a TypeError).
    def defer(self, code) -> None:
        if not isinstance(code, str):
            raise TypeError("RPR_defer() argument must be str (Python code), not "
                            + type(code).__name__)
        self.deferred.append(code)
        self._pending()

    def at_exit(self, code) -> None:
        if not isinstance(code, str):
            raise TypeError("RPR_atexit() argument must be str (Python code), not "
                            + type(code).__name__)
        self.atexit.append(code)
        self._pending()

    def _pending(self) -> None:
        """Tell the C host's main loop (install/reaper_host.c) whether this script still runs."""
        if self.embedded:
            sys._reaper_pending = len(self.deferred) + len(self.atexit)

    def embedded_tick(self) -> None:
        """One pass of REAPER's main loop in the C host; the script's atexit code runs when nothing
        is deferred any more (or after a deferred error, as REAPER stops the script)."""
        try:
            self.tick()
        except DeferredError:
            pass
        if not self.deferred:
            try:
                self.run_atexit()
            except DeferredError:
                pass
        self._pending()

    def _exec(self, code: str, where: str) -> None:
        try:
            exec(compile(code, where, "exec"), self.main.__dict__)
        except Exception as e:
            tb = traceback.format_exc()
            app().console_write(tb)
            raise DeferredError(f"{where} raised {type(e).__name__}: {e}") from e

    def run_script(self, path: str) -> None:
        """Run a ReaScript file the way REAPER does: as ``__main__`` in the shared namespace."""
        with open(path, encoding="utf-8") as f:
            src = f.read()
        self.main.__dict__["__file__"] = path
        try:
            exec(compile(src, path, "exec"), self.main.__dict__)
        except Exception:
            app().console_write(traceback.format_exc())
            raise

    def tick(self) -> int:
        """One main-loop pass: run the code deferred before this tick; returns how many ran."""
        batch, self.deferred = self.deferred, []
        self.ticks += 1
        sw = app().tab_switch
        if sw is not None and self.ticks == sw[0]:  # the user clicks another project tab
            app().current = sw[1]
        for i, code in enumerate(batch):
            try:
                self._exec(code, "<deferred>")
            except DeferredError:
                self.deferred = []  # REAPER stops the script on an error
                raise
        return len(batch)

    def run_deferred(self, max_steps: int = 1000) -> int:
        """Tick until the defer queue is empty or ``max_steps`` ticks ran; returns the tick count."""
        steps = 0
        while self.deferred and steps < max_steps:
            self.tick()
            steps += 1
        return steps

    def run_atexit(self) -> int:
        """The script ended (or was stopped): run the atexit code strings once, in order."""
        batch, self.atexit = self.atexit, []
        for code in batch:
            self._exec(code, "<atexit>")
        return len(batch)

    def stop_script(self) -> int:
        """The user terminates the script: pending deferred code is dropped, atexit runs."""
        self.deferred = []
        return self.run_atexit()

    def install(self) -> None:
        self._saved_main = sys.modules.get("__main__")
        sys.modules["__main__"] = self.main

    def uninstall(self) -> None:
        if self._saved_main is not None:
            sys.modules["__main__"] = self._saved_main


def reset(root) -> Reaper:
    """A fresh REAPER whose files live under ``root`` (one saved project, no tracks)."""
    api.APP = Reaper(str(root))
    api.B.errors.clear()
    if _HOST is not None:
        _HOST.deferred.clear()
        _HOST.atexit.clear()
        _HOST.ticks = 0
    return api.APP


def app() -> Reaper:
    return api.A()


def host() -> Host:
    if _HOST is None:
        raise RuntimeError("standin.install() first")
    return _HOST


def errors() -> list[str]:
    """Exceptions raised inside API implementations (the C side swallows them)."""
    return api.B.errors


def install(main: types.ModuleType | None = None) -> Host:
    """Put ``reaper_python`` in ``sys.modules`` and a REAPER ``__main__`` in place (``main``: the
    embedding interpreter's own ``__main__``, as in the C host)."""
    global _HOST
    from . import reaper_python
    sys.modules["reaper_python"] = reaper_python
    if _HOST is None:
        _HOST = Host(reaper_python, main)
    if main is None:
        _HOST.install()
    else:
        sys._reaper_tick = "__import__('standin').host().embedded_tick()"
        sys._reaper_pending = 0
    return _HOST


def uninstall() -> None:
    global _HOST
    if _HOST is not None:
        _HOST.uninstall()
        _HOST = None
    sys.modules.pop("reaper_python", None)


def run_deferred(max_steps: int = 1000) -> int:
    """Run REAPER's main loop until nothing is deferred (at most ``max_steps`` ticks)."""
    return host().run_deferred(max_steps)


def run_atexit() -> int:
    """Run the atexit code strings (the script finished or was stopped)."""
    return host().run_atexit()


def answer_mb(*answers: int) -> None:
    """Queue return values for the next MB/ShowMessageBox calls (1=OK, 2=Cancel, 6=Yes, 7=No...)."""
    app().mb_answers.extend(answers)


def answer_inputs(*answers) -> None:
    """Queue answers for GetUserInputs: a list of field strings, ``None`` (Cancel), or
    ``"defaults"`` (OK with the initial values)."""
    app().input_answers.extend(UserInputsAnswer(a) for a in answers)
