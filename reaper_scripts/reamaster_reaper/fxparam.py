# @noindex
"""Native FX parameters set by what REAPER itself displays: the normalised value is bisected until
``TrackFX_FormatParamValueNormalized`` shows the wanted number, instead of trusting a guessed
mapping (REAPER_API.md section 9 lists the mappings nobody has confirmed)."""

from __future__ import annotations

import math
import re

from reapy import reascript_api as RPR

_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
STEPS = 40


def parse_display(text: str) -> float | None:
    """The first number in a display string; "-inf" -> -inf, "inf:1" -> inf; None if there is none."""
    t = text.strip().lower()
    if t.startswith("-inf"):
        return -math.inf
    if t.startswith("inf"):
        return math.inf
    m = _NUM.search(t)
    return float(m.group(0)) if m else None


def shown(track: str, fx: int, param: int, norm: float) -> float | None:
    return parse_display(RPR.TrackFX_FormatParamValueNormalized(track, fx, param, norm, "", 256)[5])


def set_by_display(track: str, fx: int, param: int, target: float) -> float:
    """Set parameter ``param`` so REAPER displays (as near as it can) ``target``; returns the
    displayed value reached. Assumes the display is monotonic in the normalised value; the target
    is clamped to what the parameter can show."""
    lo_v, hi_v = shown(track, fx, param, 0.0), shown(track, fx, param, 1.0)
    if lo_v is None or hi_v is None:
        raise ValueError(f"parameter {param} does not display a number")
    rising = hi_v > lo_v
    lo, hi = 0.0, 1.0
    for _ in range(STEPS):
        mid = 0.5 * (lo + hi)
        v = shown(track, fx, param, mid)
        if v is None:
            raise ValueError(f"parameter {param} does not display a number at {mid:.4f}")
        if (v < target) == rising:
            lo = mid
        else:
            hi = mid
    # the closer of the two brackets, judged by the displayed value
    best = min((lo, hi), key=lambda n: abs(_finite(shown(track, fx, param, n)) - target))
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
