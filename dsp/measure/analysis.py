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
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from .loudness import LoudnessResult, measure_loudness
from .spectrum import SpectrumResult, third_octave_spectrum
from .truepeak import to_db, true_peak_dbtp

if TYPE_CHECKING:  # imported where looked for: scipy.ndimage is slow to load
    from .resonance import Resonance

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
    resonances: tuple[Resonance, ...] = ()  # when looked for

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict; ``series`` adds the momentary/short-term loudness series."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("spectrum", "loudness", "resonances"):
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
        d["resonances"] = [{"freq_hz": round(r.freq_hz, 1), "excess_db": round(r.excess_db, 1),
                            "persistence": round(r.persistence, 2)} for r in self.resonances]
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


@numba.njit(cache=True, nogil=True)
def _sample_stats(x: np.ndarray, clip_level: float, min_run: int, hop: int, hop_peak: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, float, int, int]:  # pragma: no cover - jitted
    """One pass: per-channel sum and sum of squares, the peak, clipped runs and the peak of each hop."""
    n_ch, n = x.shape
    sums = np.zeros(n_ch)
    sumsq = np.zeros(n_ch)
    peak = 0.0
    runs = 0
    clipped = 0
    for c in range(n_ch):
        s = 0.0
        q = 0.0
        run = 0
        for i in range(n):
            v = np.float64(x[c, i])
            s += v
            q += v * v
            a = abs(v)
            if a > peak:
                peak = a
            h = i // hop
            if h < hop_peak.shape[0] and a > hop_peak[h]:
                hop_peak[h] = a
            if a >= clip_level:
                run += 1
            else:
                if run >= min_run:
                    runs += 1
                    clipped += run
                run = 0
        if run >= min_run:
            runs += 1
            clipped += run
        sums[c] = s
        sumsq[c] = q
    return sums, sumsq, peak, runs, clipped


@dataclasses.dataclass(frozen=True)
class SampleStats:
    sample_peak_dbfs: float
    rms_dbfs: float
    dc_offset: tuple[float, ...]
    clipped_runs: int
    clipped_samples: int
    leading_silence_s: float
    trailing_silence_s: float
    silent_pct: float


def sample_stats(x: np.ndarray, sample_rate: int, *, clip_level: float = CLIP_LEVEL,
                 min_run: int = CLIP_RUN) -> SampleStats:
    """Peak, RMS, DC, clipped runs (at least ``min_run`` samples at ``|x| >= clip_level``) and silence."""
    hop = max(1, sample_rate // 10)
    n_ch, n = x.shape
    hop_peak = np.zeros(n // hop, dtype=np.float64)
    sums, sumsq, peak, runs, clipped = _sample_stats(np.ascontiguousarray(x), clip_level, min_run, hop, hop_peak)
    lead, trail, silent = _silence(hop_peak)
    return SampleStats(
        sample_peak_dbfs=to_db(peak),
        rms_dbfs=to_db(math.sqrt(float(sumsq.sum()) / max(1, n * n_ch))),
        dc_offset=tuple(float(v) for v in sums / max(1, n)),
        clipped_runs=int(runs),
        clipped_samples=int(clipped),
        leading_silence_s=lead,
        trailing_silence_s=trail,
        silent_pct=silent,
    )


def _silence(hop_peak: np.ndarray) -> tuple[float, float, float]:
    n_hops = hop_peak.shape[0]
    if n_hops == 0:
        return 0.0, 0.0, 0.0
    quiet = hop_peak < 10 ** (SILENCE_DBFS / 20)
    loud_idx = np.flatnonzero(~quiet)
    if loud_idx.size == 0:
        return n_hops * 0.1, n_hops * 0.1, 100.0
    lead = loud_idx[0] * 0.1
    trail = (n_hops - 1 - loud_idx[-1]) * 0.1
    return round(float(lead), 1), round(float(trail), 1), round(100.0 * float(quiet.mean()), 1)


def analyze(x: np.ndarray, sample_rate: int, *, true_peak_factor: int = 4,
            loudness: LoudnessResult | None = None, resonances: bool = False) -> Analysis:
    """Measure ``(channels, samples)`` audio. See the module docstring for what is measured.

    ``loudness``, when the caller has already measured it, is used as is. ``resonances`` also
    looks for persistent narrow peaks (dsp.measure.resonance; about 0.2 s for 5 minutes). The spectrum and
    the sample statistics run on a second thread beside the loudness and true-peak passes.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        spec_job = pool.submit(third_octave_spectrum, x[:2], sample_rate)  # surround: the front pair
        stats_job = pool.submit(sample_stats, x, sample_rate)
        loud = loudness if loudness is not None else measure_loudness(x, sample_rate)
        tp = true_peak_dbtp(x, factor=true_peak_factor)
        spec, st = spec_job.result(), stats_job.result()
    found: tuple[Resonance, ...] = ()
    if resonances:
        from .resonance import find_resonances

        found = tuple(find_resonances(x[:2], sample_rate))
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
        sample_peak_dbfs=st.sample_peak_dbfs,
        rms_dbfs=st.rms_dbfs,
        plr_db=tp - integrated if math.isfinite(integrated) else float("nan"),
        crest_db=st.sample_peak_dbfs - st.rms_dbfs,
        dc_offset=st.dc_offset,
        clipped_runs=st.clipped_runs,
        clipped_samples=st.clipped_samples,
        leading_silence_s=st.leading_silence_s,
        trailing_silence_s=st.trailing_silence_s,
        silent_pct=st.silent_pct,
        spectrum=spec,
        loudness=loud,
        resonances=found,
    )
