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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from ..denormals import flushing_denormals
from ..errors import CancelledError, NonFiniteAudioError
from ..streams import prefetch
from .bands import BandPeakMeter, BandPeaks
from .bands import band_peaks as measure_band_peaks
from .loudness import LoudnessMeter, LoudnessResult, measure_loudness
from .spectrum import SpectrumMeter, SpectrumResult, third_octave_spectrum
from .truepeak import TruePeakMeter, to_db, true_peak_dbtp

if TYPE_CHECKING:  # imported where looked for: scipy.ndimage is slow to load
    from .resonance import Resonance

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (about -0.009 dBFS)
CLIP_RUN = 3  # this many consecutive clipped samples make a run (one hot sample is not clipping)
SILENCE_DBFS = -60.0  # 100-ms hops whose peak stays under this are silence
BRICKWALL_WITHIN_DB = 1.0  # a 100-ms hop this close to the track's peak "touches the wall"
BRICKWALL_LOUD_DBFS = -50.0  # hops under this are left out of the brickwall share


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
    # share (0..1) of the non-silent 100-ms stretches whose peak lies within BRICKWALL_WITHIN_DB of the
    # track's peak: a limiter flattens every loud stretch onto its ceiling (masters 30-90 %, mixes a few %)
    brickwall_share: float = 0.0
    # peaks of the low band (under dsp.measure.bands.BASS_SPLIT_HZ) and of the rest, front pair, dBFS
    low_band_peak_dbfs: float = float("nan")
    high_band_peak_dbfs: float = float("nan")
    # the low band's peak and energy per 10 ms, for the bass limiter's cost (dsp.measure.bands; not in to_dict)
    low_band_windows: BandPeaks | None = None

    @property
    def band_peaks(self) -> BandPeaks:
        if self.low_band_windows is not None:
            return self.low_band_windows
        return BandPeaks(self.low_band_peak_dbfs, self.high_band_peak_dbfs)

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict; ``series`` adds the momentary/short-term loudness series."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("spectrum", "loudness", "resonances", "low_band_windows"):
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
                            "persistence": round(r.persistence, 2)} for r in self.resonances
                           if not getattr(r, "left_alone", "")]
        d["peaks_left_alone"] = [{"freq_hz": round(r.freq_hz, 1), "excess_db": round(r.excess_db, 1),
                                  "why": r.left_alone} for r in self.resonances if getattr(r, "left_alone", "")]
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
    brickwall_share: float  # 0..1, see _brickwall_share


def sample_stats(x: np.ndarray, sample_rate: int, *, clip_level: float = CLIP_LEVEL,
                 min_run: int = CLIP_RUN) -> SampleStats:
    """Peak, RMS, DC, clipped runs (at least ``min_run`` samples at ``|x| >= clip_level``) and silence."""
    meter = SampleStatsMeter(x.shape[0], sample_rate, x.shape[1], clip_level=clip_level, min_run=min_run)
    meter.feed(x)
    return meter.result()


def _brickwall_share(hop_peak: np.ndarray) -> float:
    """Share (0..1) of the hops above BRICKWALL_LOUD_DBFS whose peak is within BRICKWALL_WITHIN_DB of
    the largest hop peak."""
    if hop_peak.shape[0] == 0:
        return 0.0
    top = float(hop_peak.max())
    loud = hop_peak > 10 ** (BRICKWALL_LOUD_DBFS / 20)
    if top <= 0.0 or not loud.any():
        return 0.0
    return float(np.mean(hop_peak[loud] >= top * 10 ** (-BRICKWALL_WITHIN_DB / 20)))


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


def _assemble(sample_rate: int, channels: int, frames: int, *, loud: LoudnessResult, tp: float, tp_factor: int,
              st: SampleStats, spec: SpectrumResult, found: tuple[Resonance, ...],
              bands: BandPeaks | None) -> Analysis:
    """The Analysis of one signal from its measurements (whole-signal and block-wise alike)."""
    integrated = loud.integrated_lufs
    return Analysis(
        sample_rate=sample_rate,
        channels=channels,
        duration_s=round(frames / sample_rate, 3),
        integrated_lufs=integrated,
        lra_lu=loud.lra_lu,
        max_momentary_lufs=loud.max_momentary_lufs,
        max_short_term_lufs=loud.max_short_term_lufs,
        true_peak_dbtp=tp,
        true_peak_oversampling=tp_factor,
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
        brickwall_share=st.brickwall_share,
        low_band_peak_dbfs=bands.low_dbfs if bands is not None else math.nan,
        high_band_peak_dbfs=bands.high_dbfs if bands is not None else math.nan,
        low_band_windows=bands,
    )


@flushing_denormals
def analyze(x: np.ndarray, sample_rate: int, *, true_peak_factor: int = 4,
            loudness: LoudnessResult | None = None, resonances: bool = False, band_peaks: bool = True,
            true_peak: float | None = None) -> Analysis:
    """Measure ``(channels, samples)`` audio. See the module docstring for what is measured.

    ``band_peaks=False`` skips the low/high band peaks (nan; only the planner reads them).
    ``loudness`` and ``true_peak`` (dBTP at ``true_peak_factor``), when the caller has already
    measured them, are used as they are. ``resonances`` also looks for persistent narrow peaks
    (dsp.measure.resonance; about 0.2 s for 5 minutes). The spectrum and the sample statistics run
    on a second thread beside the loudness and true-peak passes.
    """
    meter = None
    if resonances:
        from .resonance import ResonanceMeter  # scipy.ndimage loads only when resonances are asked for

        meter = ResonanceMeter(sample_rate)  # on the spectrum's own frames
    with ThreadPoolExecutor(max_workers=1) as pool:
        spec_job = pool.submit(third_octave_spectrum, x[:2], sample_rate,  # surround: the front pair
                               frames_to=meter.take_spectra if meter is not None else None)
        stats_job = pool.submit(sample_stats, x, sample_rate)
        bands_job = pool.submit(measure_band_peaks, x[:2], sample_rate) if band_peaks else None
        loud = loudness if loudness is not None else measure_loudness(x, sample_rate)
        tp = true_peak if true_peak is not None else true_peak_dbtp(x, factor=true_peak_factor)
        spec, st = spec_job.result(), stats_job.result()
        bp = bands_job.result() if bands_job is not None else None
    found: tuple[Resonance, ...] = tuple(meter.result()) if meter is not None else ()
    return _assemble(sample_rate, x.shape[0], x.shape[1], loud=loud, tp=tp, tp_factor=true_peak_factor, st=st,
                     spec=spec, found=found, bands=bp)


# --- the same measurements, block by block --------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _sample_stats_stream(x: np.ndarray, clip_level: float, min_run: int, hop: int, offset: int, hop_peak: np.ndarray,
                         sums: np.ndarray, sumsq: np.ndarray, run: np.ndarray,
                         counts: np.ndarray) -> None:  # pragma: no cover - jitted
    """One pass over one block at sample ``offset`` of a stream (a whole signal is one block):
    per-channel sum and sum of squares, the peak, clipped runs and the peak of each hop. Carries the
    sums, the open clipped run and (peak, runs, clipped) in ``counts``, all updated in place; walks
    the block hop by hop (no division per sample); sums run in sample order, so any split into
    blocks gives the same figures."""
    n_ch, n = x.shape
    peak = counts[0]
    n_hops = hop_peak.shape[0]
    for c in range(n_ch):
        s = sums[c]
        q = sumsq[c]
        r = run[c]
        i = 0
        while i < n:
            h = (offset + i) // hop
            stop = min(n, (h + 1) * hop - offset)
            hp = 0.0
            for j in range(i, stop):
                v = np.float64(x[c, j])
                s += v
                q += v * v
                a = abs(v)
                if a > hp:
                    hp = a
                if a >= clip_level:
                    r += 1
                elif r:
                    if r >= min_run:
                        counts[1] += 1
                        counts[2] += r
                    r = 0
            if hp > peak:
                peak = hp
            if h < n_hops and hp > hop_peak[h]:
                hop_peak[h] = hp
            i = stop
        sums[c] = s
        sumsq[c] = q
        run[c] = r
    counts[0] = peak


class SampleStatsMeter:
    """:func:`sample_stats` block by block (it is one block of this); ``frames`` is the expected length
    (it sizes the per-hop peaks; a shorter stream is fine)."""

    def __init__(self, channels: int, sample_rate: int, frames: int, *, clip_level: float = CLIP_LEVEL,
                 min_run: int = CLIP_RUN) -> None:
        self.sample_rate, self.channels = sample_rate, channels
        self.hop = max(1, sample_rate // 10)
        self.clip_level, self.min_run = clip_level, min_run
        self._hop_peak = np.zeros(max(0, frames) // self.hop, dtype=np.float64)
        self._sums = np.zeros(channels)
        self._sumsq = np.zeros(channels)
        self._run = np.zeros(channels, dtype=np.int64)
        self._counts = np.zeros(3)  # peak, runs, clipped samples
        self.samples = 0

    @property
    def peak(self) -> float:
        """Largest |sample| so far (linear)."""
        return float(self._counts[0])

    def feed(self, x: np.ndarray) -> None:
        _sample_stats_stream(np.ascontiguousarray(x), self.clip_level, self.min_run, self.hop, self.samples,
                             self._hop_peak, self._sums, self._sumsq, self._run, self._counts)
        self.samples += x.shape[1]

    def result(self) -> SampleStats:
        n, n_ch = self.samples, self.channels
        runs, clipped = int(self._counts[1]), int(self._counts[2])
        for r in self._run:
            if r >= self.min_run:
                runs += 1
                clipped += int(r)
        lead, trail, silent = _silence(self._hop_peak[: n // self.hop])
        return SampleStats(
            sample_peak_dbfs=to_db(self.peak),
            rms_dbfs=to_db(math.sqrt(float(self._sumsq.sum()) / max(1, n * n_ch))),
            dc_offset=tuple(float(v) for v in self._sums / max(1, n)),
            clipped_runs=runs,
            clipped_samples=clipped,
            leading_silence_s=lead,
            trailing_silence_s=trail,
            silent_pct=silent,
            brickwall_share=_brickwall_share(self._hop_peak[: n // self.hop]),
        )


class AnalysisMeter:
    """:func:`analyze` fed block by block: ``feed`` successive ``(channels, n)`` blocks, then
    ``result()``. Memory is bounded by the block and a few per-hop series, whatever the length;
    the figures equal :func:`analyze` of the whole signal (loudness, true peak and sample
    statistics exactly; the spectrum to the last digits of the broadband correlation unless the
    blocks are multiples of 64 k frames). The spectrum and resonance statistics run on a second
    thread beside the loudness, true-peak and sample passes.

    ``frames``: the expected length (sizes the per-hop silence map). ``loudness=False`` and
    ``true_peak=False`` leave those to the caller (``result(loudness=..., true_peak=...)``);
    ``band_peaks=False`` skips the band peaks (nan), which only the planner uses.
    """

    def __init__(self, channels: int, sample_rate: int, frames: int, *, true_peak_factor: int = 4,
                 resonances: bool = False, loudness: bool = True, band_peaks: bool = True,
                 true_peak: bool = True) -> None:
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.true_peak_factor = true_peak_factor
        self.loudness = LoudnessMeter(channels, sample_rate) if loudness else None
        self.stats = SampleStatsMeter(channels, sample_rate, frames)
        # one core: the spectrum's thread runs beside it (measured: 0.11 -> 0.10 s per minute of analysis)
        self.true_peak = TruePeakMeter(channels, factor=true_peak_factor, two_cores=False) if true_peak else None
        self.bands = BandPeakMeter(min(channels, 2), sample_rate) if band_peaks else None
        self.resonance = None
        if resonances:
            from .resonance import ResonanceMeter  # scipy.ndimage loads only when resonances are asked for

            self.resonance = ResonanceMeter(sample_rate)
        # the resonance statistics are read off the spectrum's own frames (no FFT of their own)
        self.spectrum = SpectrumMeter(min(channels, 2), sample_rate,
                                      frames_to=self.resonance.take_spectra if self.resonance is not None else None)
        self.invalid = 0  # NaN / inf samples seen (measuring stops counting anything else)
        self.samples = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")

    def _side(self, front: np.ndarray) -> None:
        self.spectrum.feed(front)
        if self.bands is not None:
            self.bands.feed(front)

    def feed(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.samples += x.shape[1]
        if self.invalid or not (math.isfinite(float(x.max())) and math.isfinite(float(x.min()))):
            self.invalid += x.size - int(np.count_nonzero(np.isfinite(x)))
            return
        job = self._pool.submit(self._side, x[:2])
        try:
            if self.loudness is not None:
                self.loudness.feed(x)
            self.stats.feed(x)
            if self.true_peak is not None:
                self.true_peak.feed(x)
        finally:
            job.result()

    def result(self, *, loudness: LoudnessResult | None = None, true_peak: float | None = None) -> Analysis:
        self._pool.shutdown()
        if loudness is None and self.loudness is None:
            raise ValueError("AnalysisMeter(loudness=False) needs the loudness passed to result()")
        if true_peak is None and self.true_peak is None:
            raise ValueError("AnalysisMeter(true_peak=False) needs the true peak passed to result()")
        loud = loudness if loudness is not None else self.loudness.result()  # type: ignore[union-attr]
        tp = true_peak if true_peak is not None else self.true_peak.finish()  # type: ignore[union-attr]
        st = self.stats.result()
        spec = self.spectrum.result()  # first: it hands its last frames to the resonance meter
        found = tuple(self.resonance.result()) if self.resonance is not None else ()
        return _assemble(self.sample_rate, self.channels, self.samples, loud=loud, tp=tp,
                         tp_factor=self.true_peak_factor, st=st, spec=spec, found=found,
                         bands=self.bands.result() if self.bands is not None else None)


@flushing_denormals
def analyze_source(source: Any, *, true_peak_factor: int = 4, resonances: bool = False,
                   progress: Any = None, taps: Sequence[Callable[[np.ndarray], None]] = ()) -> Analysis:
    """:func:`analyze` of a :class:`dsp.io.audio_io.AudioSource` (anything with ``channels``,
    ``sample_rate``, ``frames`` and ``blocks()``) in one block-wise read; the source's first pass
    applies the input refusals (non-finite, too short, silent). ``progress(fraction)`` is called
    after each block; returning False cancels. Each ``tap`` is handed every block too, in order, on
    the decoding thread, which also measures the loudness (the other meters keep two cores busy)."""
    meter = AnalysisMeter(source.channels, source.sample_rate, source.frames,
                          true_peak_factor=true_peak_factor, resonances=resonances, loudness=False)
    loudness = LoudnessMeter(source.channels, source.sample_rate)
    total = max(1, source.frames)

    def decoded() -> Iterator[np.ndarray]:
        for block in source.blocks():
            loudness.feed(block)
            for tap in taps:
                tap(block)
            yield block

    for block in prefetch(decoded()):  # decoding on another thread
        meter.feed(block)
        if progress is not None and progress(min(1.0, meter.samples / total)) is False:
            raise CancelledError("analysis was cancelled")
    if meter.invalid:  # a source that does not check its samples
        raise NonFiniteAudioError(f"the audio contains {meter.invalid} invalid samples (NaN or infinity)")
    return meter.result(loudness=loudness.result())
