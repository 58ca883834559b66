# @noindex
"""Native FX parameters set by what REAPER itself displays: the normalised value is bisected until
``TrackFX_FormatParamValueNormalized`` shows the wanted number, instead of trusting a guessed
mapping (REAPER_API.md section 9 lists the mappings nobody has confirmed)."""

from __future__ import annotations

import math
import re

from reapy import reascript_api as RPR

_NUM = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([kKM](?![sS]))?")
_SCALE = {"k": 1e3, "K": 1e3, "M": 1e6}
STEPS = 30  # bisection steps: 2^-30 of the normalised range, far below any display step


def parse_display(text: str) -> float | None:
    """The first number in a display string, with its SI suffix ("4.6k" -> 4600, "2.5M" -> 2.5e6;
    "ms" is a unit); "-inf" -> -inf, "inf:1" -> inf; None if there is none."""
    t = text.strip().lower()
    if t.startswith("-inf"):
        return -math.inf
    if t.startswith("inf"):
        return math.inf
    m = _NUM.search(text.strip())
    if not m:
        return None
    return float(m.group(1)) * (_SCALE[m.group(2)] if m.group(2) else 1.0)


def shown(track: str, fx: int, param: int, norm: float) -> float | None:
    return parse_display(RPR.TrackFX_FormatParamValueNormalized(track, fx, param, norm, "", 256)[5])


def _boundary(track: str, fx: int, param: int, past, rising: bool) -> float:
    """The normalised value where ``past(displayed)`` starts to hold (display monotonic)."""
    lo, hi = 0.0, 1.0
    for _ in range(STEPS):
        mid = 0.5 * (lo + hi)
        v = shown(track, fx, param, mid)
        if v is None:
            raise ValueError(f"parameter {param} does not display a number at {mid:.4f}")
        if past(v) == rising:
            hi = mid
        else:
            lo = mid
    return hi if rising else lo


def set_by_display(track: str, fx: int, param: int, target: float) -> float:
    """Set parameter ``param`` so REAPER displays (as near as it can) ``target``; returns the
    displayed value reached. The display rounds (e.g. to 0.1 dB), so the value set is the middle of
    the range that displays ``target``, not its edge. Assumes the display is monotonic in the
    normalised value; the target is clamped to what the parameter can show."""
    lo_v, hi_v = shown(track, fx, param, 0.0), shown(track, fx, param, 1.0)
    if lo_v is None or hi_v is None:
        raise ValueError(f"parameter {param} does not display a number")
    rising = hi_v > lo_v
    a = _boundary(track, fx, param, lambda v: v >= target, rising)   # first value showing >= target
    b = _boundary(track, fx, param, lambda v: v > target, rising)    # first value showing > target
    cands = [0.5 * (a + b), a, b]
    best = min(cands, key=lambda n: abs(_finite(shown(track, fx, param, n)) - target))
    RPR.TrackFX_SetParamNormalized(track, fx, param, best)
    return shown(track, fx, param, best)


def _finite(v: float | None) -> float:
    return v if v is not None and math.isfinite(v) else (math.copysign(1e9, v) if v else 1e9)


def param_index(track: str, fx: int, name: str) -> int:
    """The index of the parameter REAPER names ``name`` (exact), -1 if none."""
    for i in range(RPR.TrackFX_GetNumParams(track, fx)):
        if RPR.TrackFX_GetParamName(track, fx, i, "", 256)[4] == name:
            return i
    return -1


def set_named(track: str, fx: int, name: str, target: float) -> float | None:
    i = param_index(track, fx, name)
    return None if i < 0 else set_by_display(track, fx, i, target)


def formatted(track: str, fx: int, param: int) -> str:
    return RPR.TrackFX_GetFormattedParamValue(track, fx, param, "", 256)[4]
