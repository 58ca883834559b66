# @noindex
"""One action's work as a generator driven by ``reapy.defer``: each REAPER main-loop tick advances it
a little, so REAPER never freezes. The generator yields whenever it waits. Cancel: the ExtState flag
``ReaMaster/cancel`` (the "Cancel" action, or running an action again), or stopping the script."""

from __future__ import annotations

import secrets
import traceback

import reapy
from reapy import reascript_api as RPR

from server.wire.client import Failure, Progress, Result

from .host import ID_YES, MB_YESNO, UserError, get_ext, log, message, set_ext

RUNNING_KEY, CANCEL_KEY = "running", "cancel"


class Cancelled(Exception):
    pass


class Task:
    def __init__(self, title: str, flow) -> None:
        self.title = title
        self.flow = flow(self)  # a generator function taking the task
        self.token = secrets.token_hex(8)
        self.job = None          # the server job in flight, if any
        self.cancel_sent = False
        self.done = False
        self.outcome = ""        # "ok", "cancelled", "error"
        self.cleanups: list = []

    # --- what flows use -------------------------------------------------------------------------------
    def wait(self, job, what: str):
        """Yield until ``job`` ends; returns its Result, raises UserError / Cancelled."""
        self.job = job
        last = -1.0
        while True:
            ev = job.poll()
            if isinstance(ev, Result):
                self.job = None
                if self.cancel_sent:  # finished before the cancel arrived: still honour it
                    raise Cancelled()
                return ev
            if isinstance(ev, Failure):
                self.job = None
                if ev.code == "cancelled" and self.cancel_sent:
                    raise Cancelled()
                raise UserError(f"{what} failed: {ev.message} [{ev.code}]")
            if isinstance(ev, Progress) and ev.fraction - last >= 0.1:
                last = ev.fraction
                log(f"{what}: {ev.stage} {100 * ev.fraction:.0f}%")
            yield

    # --- driving ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if get_ext(RUNNING_KEY):
            if message("A ReaMaster job is still running. Cancel it?", "ReaMaster", MB_YESNO) == ID_YES:
                set_ext(CANCEL_KEY, "1")
            return
        set_ext(RUNNING_KEY, self.token)
        set_ext(CANCEL_KEY, "")
        log(self.title + " ... (run 'ReaMaster: Cancel' to stop)")
        reapy.at_exit(self.abort)
        self.step()

    def step(self) -> None:
        if self.done:
            return
        try:
            if get_ext(CANCEL_KEY):
                if self.job is None:
                    raise Cancelled()
                if not self.cancel_sent:
                    self.cancel_sent = True
                    log("cancelling ...")
                    self.job.cancel()
            next(self.flow)
        except StopIteration:
            self._finish("ok")
            return
        except Cancelled:
            self._finish("cancelled")
            log("cancelled; nothing was changed.")
            return
        except UserError as exc:
            self._finish("error")
            log(str(exc))
            message(str(exc), "ReaMaster")
            return
        except Exception as exc:  # a bug: say so plainly, leave REAPER running
            self._finish("error")
            RPR.ShowConsoleMsg(traceback.format_exc())
            message(f"ReaMaster hit an internal error: {type(exc).__name__}: {exc}", "ReaMaster")
            return
        reapy.defer(self.step)

    def abort(self) -> None:
        """The script is being stopped (REAPER's atexit): cancel the job, release the lock. The
        socket then closes with a linger, so the cancel reaches the server instead of being dropped."""
        if not self.done:
            if self.job is not None:
                self.job.cancel()
                self.cancel_sent = True
            self._finish("cancelled")

    CANCEL_LINGER_MS = 1000

    def close_linger_ms(self) -> int:
        return self.CANCEL_LINGER_MS if self.cancel_sent else 0

    def _finish(self, outcome: str) -> None:
        self.done = True
        self.outcome = outcome
        try:
            self.flow.close()
        finally:
            for fn in reversed(self.cleanups):
                try:
                    fn()
                except Exception:
                    pass
            if get_ext(RUNNING_KEY) == self.token:
                set_ext(RUNNING_KEY, "")
            set_ext(CANCEL_KEY, "")
