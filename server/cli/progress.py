"""A small progress bar on stderr (no dependency), throttled to at most 10 redraws a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, *, enabled: bool, stream: TextIO | None = None, width: int = 28) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.width = width
        self._last = 0.0
        self._stage = ""
        self._shown = False

    def __call__(self, stage: str, fraction: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage == self._stage and fraction < 1.0 and now - self._last < 0.1:
            return
        self._last, self._stage = now, stage
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{stage:<11} [{bar}] {fraction * 100:5.1f}%")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * (self.width + 22) + "\r")
            self.stream.flush()
