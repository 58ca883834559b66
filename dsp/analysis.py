"""Everything ReaMaster measures about a mix, in one pass over the audio.

``analyze(x, sample_rate)`` returns an :class:`Analysis` with loudness (BS.1770-4
integrated, momentary and short-term maxima, LRA per EBU Tech 3342), true peak
(4x oversampled by default, 8x on request), sample peak, PLR, crest factor, the
long-term 1/3-octave spectrum with per-band stereo correlation and side/mid ratio
(of the front pair for more than two channels),
DC offset, runs of clipped samples and silence.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .loudness import LoudnessResult, measure_loudness
from .spectrum import SpectrumResult, third_octave_spectrum
from .truepeak import sample_peak_db, to_db, true_peak_dbtp

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (about -0.009 dBFS)
CLIP_RUN = 3  # this many consecutive clipped samples make a run (one hot sample is not clipping)
SILENCE_DBFS = -60.0  # 100-ms hops whose peak stays under this are silence


@dataclasses.dataclass(frozen=True)
class Analysis:
    sample_rate: int
    channels: int
    duration_s: float
    integrated_lufs: float
    lra_lu: float
    max_momentary_lufs: float
    max_short_term_lufs: float
    true_peak_dbtp: float
    true_peak_oversampling: int
    sample_peak_dbfs: float
    rms_dbfs: float
    plr_db: float  # peak-to-loudness ratio: true peak minus integrated loudness
    crest_db: float  # sample peak minus RMS
    dc_offset: tuple[float, ...]  # mean per channel, linear (full scale = 1)
    clipped_runs: int
    clipped_samples: int
    leading_silence_s: float
    trailing_silence_s: float
    silent_pct: float
    spectrum: SpectrumResult
    loudness: LoudnessResult

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict; ``series`` adds the momentary/short-term loudness series."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("spectrum", "loudness"):
                continue
            v = getattr(self, f.name)
            d[f.name] = _json_number(v) if not isinstance(v, tuple) else [_json_number(e) for e in v]
        s = self.spectrum
        d["spectrum"] = {
            "centers_hz": [round(float(c), 2) for c in s.centers_hz],
            "level_db": [_json_number(v) for v in s.level_db],
            "side_mid_ratio_db": [_json_number(v) for v in s.side_mid_ratio_db],
            "correlation": [_json_number(v) for v in s.correlation],
            "correlation_overall": _json_number(s.correlation_overall),
        }
        if series:
            d["loudness_series"] = {
                "hop_s": self.loudness.hop_s,
                "momentary_lufs": [_json_number(v) for v in self.loudness.momentary_lufs],
                "short_term_lufs": [_json_number(v) for v in self.loudness.short_term_lufs],
            }
        return d


def _json_number(v: Any) -> Any:
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    v = float(v)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return -200.0 if v < 0 else 200.0
    return round(v, 3)


def clipped_runs(x: np.ndarray, *, level: float = CLIP_LEVEL, min_run: int = CLIP_RUN) -> tuple[int, int]:
    """(number of runs, samples in them) of at least ``min_run`` consecutive samples at ``|x| >= level``."""
    runs = samples = 0
    for ch in x:
        hot = np.abs(ch) >= level
        if not hot.any():
            continue
        edges = np.diff(np.concatenate(([0], hot.view(np.int8), [0])))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lengths = stops - starts
        long = lengths >= min_run
        runs += int(long.sum())
        samples += int(lengths[long].sum())
    return runs, samples


def _silence(x: np.ndarray, sample_rate: int) -> tuple[float, float, float]:
    hop = max(1, sample_rate // 10)
    n_hops = x.shape[1] // hop
    if n_hops == 0:
        return 0.0, 0.0, 0.0
    peaks = np.abs(x[:, : n_hops * hop]).reshape(x.shape[0], n_hops, hop).max(axis=(0, 2))
    quiet = peaks < 10 ** (SILENCE_DBFS / 20)
    loud_idx = np.flatnonzero(~quiet)
    if loud_idx.size == 0:
        return n_hops * 0.1, n_hops * 0.1, 100.0
    lead = loud_idx[0] * hop / sample_rate
    trail = (n_hops - 1 - loud_idx[-1]) * hop / sample_rate
    return round(lead, 1), round(trail, 1), round(100.0 * float(quiet.mean()), 1)


def analyze(x: np.ndarray, sample_rate: int, *, true_peak_factor: int = 4) -> Analysis:
    """Measure ``(channels, samples)`` audio. See the module docstring for what is measured."""
    loud = measure_loudness(x, sample_rate)
    spec = third_octave_spectrum(x[:2], sample_rate)  # surround: the front pair
    tp = true_peak_dbtp(x, factor=true_peak_factor)
    sp = sample_peak_db(x)
    mean_sq = float(np.mean(np.square(x, dtype=np.float64)))
    rms = to_db(math.sqrt(mean_sq))
    runs, clipped = clipped_runs(x)
    lead, trail, silent = _silence(x, sample_rate)
    integrated = loud.integrated_lufs
    return Analysis(
        sample_rate=sample_rate,
        channels=x.shape[0],
        duration_s=round(x.shape[1] / sample_rate, 3),
        integrated_lufs=integrated,
        lra_lu=loud.lra_lu,
        max_momentary_lufs=loud.max_momentary_lufs,
        max_short_term_lufs=loud.max_short_term_lufs,
        true_peak_dbtp=tp,
        true_peak_oversampling=true_peak_factor,
        sample_peak_dbfs=sp,
        rms_dbfs=rms,
        plr_db=tp - integrated if math.isfinite(integrated) else float("nan"),
        crest_db=sp - rms,
        dc_offset=tuple(float(v) for v in np.mean(x, axis=1, dtype=np.float64)),
        clipped_runs=runs,
        clipped_samples=clipped,
        leading_silence_s=lead,
        trailing_silence_s=trail,
        silent_pct=silent,
        spectrum=spec,
        loudness=loud,
    )
