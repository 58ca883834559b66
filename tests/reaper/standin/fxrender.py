"""Native FX applied in renders: ReaEQ, ReaComp and ReaLimit, rendered by ReaMaster's own ``dsp``
from the values REAPER *displays* for their parameters (so a wrong parameter write shows up in the
audio, as in REAPER). ReaXcomp is not rendered; renders list it under ``fx_not_applied``.

[?] The stand-in's display scales (fx.py) are the ones the scripts are checked against; what is
rendered here is their meaning (Hz, dB, octaves, ms), not REAPER's exact filter shapes."""

from __future__ import annotations

import math
import re

import numpy as np

from .fx import FXInstance

_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
# ReaEQ's internal BANDTYPEx -> dsp.process.eq band type
EQ_TYPES = {0: "low_shelf", 1: "high_shelf", 2: "band", 3: "low_pass", 4: "high_pass", 5: None, 6: "notch",
            7: "band_pass", 8: "band", 9: "band"}


def shown(fx: FXInstance, i: int) -> float:
    t = fx.format_native(i, fx.values[i]).strip().lower()
    if t.startswith("-inf"):
        return -math.inf
    if t.startswith("inf"):
        return math.inf
    m = _NUM.search(t)
    return float(m.group(0)) if m else 0.0


def _param(fx: FXInstance, name: str) -> int:
    return next(i for i, p in enumerate(fx.own) if p.name == name)


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def renderable(fx: FXInstance) -> bool:
    return fx.spec.file_stem in ("reaeq", "reacomp", "realimit")


def apply(fx: FXInstance, x: np.ndarray, sr: int) -> np.ndarray:
    """``x`` (2, n) through ``fx`` (unchanged when bypassed or not renderable)."""
    if not fx.enabled or not renderable(fx):
        return x
    stem = fx.spec.file_stem
    if stem == "reaeq":
        from dsp.process import eq
        bands = []
        for b in range(fx.n_bands):
            ty = EQ_TYPES.get(fx.band_types[b])
            if not fx.band_enabled[b] or ty is None:
                continue
            gain = shown(fx, 3 * b + 1)
            bands.append(eq.EqBand(type=ty, freq_hz=_clamp(shown(fx, 3 * b), 20.0, 24000.0),
                                   gain_db=_clamp(gain if math.isfinite(gain) else -24.0, -24.0, 12.0),
                                   bw_oct=_clamp(shown(fx, 3 * b + 2), 0.01, 4.0)))
        g = shown(fx, 3 * fx.n_bands)
        y, _ = eq.process(x, sr, eq.EqParams(bands=tuple(bands), gain_db=_clamp(g if math.isfinite(g) else -60.0,
                                                                                 -60.0, 12.0)))
        return y
    if stem == "reacomp":
        from dsp.process import compressor
        ratio_t = fx.format_native(_param(fx, "Ratio"), fx.values[_param(fx, "Ratio")])
        ratio = 100.0 if ratio_t.startswith("inf") else shown(fx, _param(fx, "Ratio"))
        p = compressor.CompressorParams(
            threshold_db=_clamp(shown(fx, _param(fx, "Threshold")), -60.0, 0.0), ratio=_clamp(ratio, 1.0, 100.0),
            attack_ms=_clamp(shown(fx, _param(fx, "Attack")), 0.0, 500.0),
            release_ms=_clamp(shown(fx, _param(fx, "Release")), 1.0, 5000.0),
            knee_db=_clamp(shown(fx, _param(fx, "Knee")), 0.0, 24.0))
        y, _ = compressor.process(x, sr, p)
        wet = shown(fx, _param(fx, "Wet"))
        return y * (10.0 ** (wet / 20.0) if math.isfinite(wet) else 0.0)
    from dsp.process import limiter
    p = limiter.LimiterParams(threshold_db=_clamp(shown(fx, 0), -60.0, 12.0),
                              ceiling_dbtp=_clamp(shown(fx, 1), -20.0, 0.0),
                              release_ms=_clamp(shown(fx, 2), 1.0, 2000.0))
    return limiter.limit(x, sr, p)


def apply_chain(chain: list[FXInstance], x: np.ndarray, sr: int, fx_on: bool = True) -> np.ndarray:
    if not fx_on:
        return x
    for fx in chain:
        x = apply(fx, x, sr)
    return x
