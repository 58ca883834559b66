"""Long-term 1/3-octave spectrum, mid/side balance and inter-channel correlation.

Method (Welch): Hann-windowed frames of ``nfft`` samples at 50 % overlap, power spectra
averaged over all frames, then summed into the 31 base-10 1/3-octave bands of IEC 61260
(centres ``1000 * 10 ** (k / 10)``, nominal 20 Hz ... 20 kHz, edges ``centre * 10 ** (+-1/20)``
so neighbouring bands share their edges exactly).

Levels are **dB relative to a full-scale sine**: a band's level is ``10 log10(2 * P)`` where
``P`` is the mean-square value the band contributes to the signal (Parseval, Hann
window power-normalised). A sine of peak amplitude 1.0 in both channels reads 0 dB in its
band (its power can spill into a neighbour when it sits near a band edge), white noise
of unit variance reads ``10 log10(2 * bandwidth / (sample_rate / 2))``.

* ``level_db``: channel-average power ``(|L|^2 + |R|^2) / 2`` = mid power + side power;
* ``mid_db`` / ``side_db``: ``M = (L + R) / 2`` and ``S = (L - R) / 2``;
* ``correlation``: ``Re(sum L conj R) / sqrt(sum |L|^2 sum |R|^2)`` over the band's bins and
  all frames; 1.0 for mono or when both channels are silent in the band, 0.0 when only one is.

Each FFT bin stands for the ``sample_rate / nfft`` wide slice around its frequency and is
shared between two bands in proportion to the overlap when a band edge cuts that slice.
That keeps noise levels right and rate-independent even for the lowest bands, which are
only 1 to 3 bins wide (at 44.1 kHz, ``nfft`` 8192: 5.4 Hz bins, the 20 Hz band is 4.6 Hz
wide). A pure tone there is still spread over the Hann main lobe (+-2 bins), so below about
100 Hz tones leak into the neighbouring bands; noise-like material is unaffected.
Samples after the last complete frame (less than ``nfft / 2``) are not analysed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import overload

import numba
import numpy as np
import scipy.fft

from ..errors import (
    ChannelCountError,
    EmptyAudioError,
    InputError,
    NonFiniteAudioError,
    ParameterError,
    SampleRateError,
)

THIRD_OCTAVE_CENTERS_HZ = np.array([1000.0 * 10.0 ** (k / 10.0) for k in range(-17, 14)])
THIRD_OCTAVE_CENTERS_HZ.setflags(write=False)
THIRD_OCTAVE_LABELS = (
    "20", "25", "31.5", "40", "50", "63", "80", "100", "125", "160", "200", "250", "315", "400",
    "500", "630", "800", "1k", "1.25k", "1.6k", "2k", "2.5k", "3.15k", "4k", "5k", "6.3k", "8k",
    "10k", "12.5k", "16k", "20k",
)
BAND_EDGE_FACTOR = 10.0 ** (1.0 / 20.0)
LEVEL_FLOOR_DB = -200.0
RATIO_CLAMP_DB = 120.0
BATCH_FRAMES = 256
STREAM_BATCH_FRAMES = 32  # the block-wise meter's batches: 2 MB of frames and 2 MB of spectra

_POWER_FLOOR = 10.0 ** (LEVEL_FLOOR_DB / 10.0)


@dataclasses.dataclass(frozen=True, eq=False)
class SpectrumResult:
    """Long-term 1/3-octave analysis; per-band arrays follow ``centers_hz`` (bands below Nyquist).

    Levels in dB re full-scale sine, floored at -200 dB; ``side_mid_ratio_db`` is
    ``side_db - mid_db`` clamped to +-120 dB (-120 for mono). ``frames`` = FFT frames averaged.
    """

    centers_hz: np.ndarray
    labels: tuple[str, ...]
    level_db: np.ndarray
    mid_db: np.ndarray
    side_db: np.ndarray
    side_mid_ratio_db: np.ndarray
    correlation: np.ndarray
    correlation_overall: float
    nfft: int
    frames: int
    sample_rate: int
    # The long-term level of every FFT bin (``nfft // 2 + 1``, bin k at k * sample_rate / nfft Hz),
    # channel average, dB re full scale: what a narrow cut does to a band is read off it exactly.
    bin_db: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))


def default_nfft(sample_rate: int) -> int:
    """Smallest power of two giving bins of at most 6 Hz (8192 at 44.1/48 kHz, 16384 at 96 kHz)."""
    return 1 << max(8, math.ceil(math.log2(sample_rate / 6.0)))


@functools.lru_cache(maxsize=16)
def _band_weights(sample_rate: int, nfft: int) -> tuple[np.ndarray, int]:
    """(n_bands, nfft//2 + 1) share of every bin's slice that lies inside each band."""
    n_bands = int(np.sum(THIRD_OCTAVE_CENTERS_HZ < sample_rate / 2.0))
    centers = THIRD_OCTAVE_CENTERS_HZ[:n_bands]
    df = sample_rate / nfft
    k = np.arange(nfft // 2 + 1)
    slice_lo = np.maximum((k - 0.5) * df, 0.0)
    slice_hi = np.minimum((k + 0.5) * df, sample_rate / 2.0)
    lo = centers[:, None] / BAND_EDGE_FACTOR
    hi = centers[:, None] * BAND_EDGE_FACTOR
    overlap = np.clip(np.minimum(hi, slice_hi) - np.maximum(lo, slice_lo), 0.0, None)
    # DC and Nyquist bins stand for half-width slices and carry half the one-sided power.
    weights = overlap / (slice_hi - slice_lo)
    weights.setflags(write=False)
    return weights, n_bands


@numba.njit(cache=True, nogil=True, fastmath=False)
def _accumulate_stereo(xl: np.ndarray, xr: np.ndarray, pl: np.ndarray, pr: np.ndarray,
                       cr: np.ndarray) -> None:  # pragma: no cover - compiled
    frames, bins = xl.shape
    for i in range(frames):
        for j in range(bins):
            a = xl[i, j]
            b = xr[i, j]
            pl[j] += np.float64(a.real * a.real + a.imag * a.imag)
            pr[j] += np.float64(b.real * b.real + b.imag * b.imag)
            cr[j] += np.float64(a.real * b.real + a.imag * b.imag)


@numba.njit(cache=True, nogil=True, fastmath=False)
def _accumulate_mono(x: np.ndarray, p: np.ndarray) -> None:  # pragma: no cover - compiled
    frames, bins = x.shape
    for i in range(frames):
        for j in range(bins):
            a = x[i, j]
            p[j] += np.float64(a.real * a.real + a.imag * a.imag)


def _check_input(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or not 8000 <= int(sample_rate) <= 768000:
        raise SampleRateError(f"sample rate must be an integer from 8000 to 768000 Hz, got {sample_rate!r}")
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise InputError(f"audio must be a (channels, samples) array, got shape {a.shape}")
    if a.shape[0] not in (1, 2):
        raise ChannelCountError(
            f"the spectrum analysis takes mono or stereo audio, got {a.shape[0]} channels")
    if a.shape[1] == 0:
        raise EmptyAudioError("the audio has no samples")
    return np.ascontiguousarray(a, dtype=np.float32), int(sample_rate)


def _overall_correlation(a: np.ndarray) -> float:
    """Broadband time-domain correlation; float32 dot products per 64 k chunk, summed in float64."""
    if a.shape[0] == 1:
        return 1.0
    ll = rr = lr = 0.0
    step = 1 << 16
    for s in range(0, a.shape[1], step):
        left = a[0, s:s + step]
        right = a[1, s:s + step]
        ll += float(np.dot(left, left))
        rr += float(np.dot(right, right))
        lr += float(np.dot(left, right))
    return _correlation(lr, ll, rr)


@overload
def _correlation(cross: float, pl: float, pr: float) -> float: ...
@overload
def _correlation(cross: np.ndarray, pl: np.ndarray, pr: np.ndarray) -> np.ndarray: ...
def _correlation(cross: float | np.ndarray, pl: float | np.ndarray,
                 pr: float | np.ndarray) -> float | np.ndarray:
    cross, pl, pr = (np.asarray(v, dtype=np.float64) for v in (cross, pl, pr))
    denom = np.sqrt(pl * pr)
    out = np.where(denom > 0.0, cross / np.where(denom > 0.0, denom, 1.0), 0.0)
    out = np.where((pl == 0.0) & (pr == 0.0), 1.0, out)
    out = np.clip(out, -1.0, 1.0)
    return float(out) if out.ndim == 0 else out


def _db(power: np.ndarray) -> np.ndarray:
    """dB re full-scale sine (mean square 0.5), floored."""
    db: np.ndarray = 10.0 * np.log10(np.maximum(2.0 * power, _POWER_FLOOR))
    return db


def periodic_hann(n: int) -> np.ndarray:
    """The periodic ("DFT-even") Hann window of length ``n``, as scipy's ``get_window("hann", n)``."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def third_octave_spectrum(x: np.ndarray, sample_rate: int, *, nfft: int | None = None,
                          frames_to: Callable[[np.ndarray], None] | None = None) -> SpectrumResult:
    """Long-term Hann/Welch 1/3-octave spectrum of mono or stereo ``x`` (channels, samples).

    ``nfft``: FFT length (even, 256 to 1048576); default from :func:`default_nfft`. Audio
    shorter than ``nfft`` is analysed as one frame with a Hann window of its own length.
    ``frames_to``: given every batch of frame spectra, ``(channels, frames, nfft // 2 + 1)``
    complex, in order (not for audio shorter than ``nfft``). About 80 ms for 4 min of 44.1 kHz stereo.
    """
    a, sr = _check_input(x, sample_rate)
    if nfft is None:
        nfft = default_nfft(sr)
    elif isinstance(nfft, bool) or not isinstance(nfft, (int, np.integer)) \
            or nfft % 2 or not 256 <= nfft <= 1 << 20:
        raise ParameterError(f"nfft must be an even integer from 256 to 1048576, got {nfft!r}")
    nfft = int(nfft)
    ch, n = a.shape
    n_bins = nfft // 2 + 1
    hop = nfft // 2

    if n >= nfft:
        window = periodic_hann(nfft).astype(np.float32)
        n_frames = 1 + (n - nfft) // hop
        views = [np.lib.stride_tricks.sliding_window_view(a[c], nfft)[::hop] for c in range(ch)]
    else:
        window = np.zeros(nfft, dtype=np.float32)
        window[:n] = periodic_hann(n) if n > 1 else 1.0
        n_frames = 1
        padded = np.zeros((ch, nfft), dtype=np.float32)
        padded[:, :n] = a
        views = [padded[c][np.newaxis, :] for c in range(ch)]

    pl = np.zeros(n_bins)
    pr = np.zeros(n_bins) if ch == 2 else pl
    cr = np.zeros(n_bins) if ch == 2 else pl
    buf = np.empty((ch, min(BATCH_FRAMES, n_frames), nfft), dtype=np.float32)
    for start in range(0, n_frames, BATCH_FRAMES):
        b = min(BATCH_FRAMES, n_frames - start)
        for c in range(ch):
            np.multiply(views[c][start:start + b], window, out=buf[c, :b])
        spec = scipy.fft.rfft(buf[:, :b], axis=-1, workers=1)  # analyze() runs it beside its other meters
        if ch == 2:
            _accumulate_stereo(spec[0], spec[1], pl, pr, cr)
        else:
            _accumulate_mono(spec[0], pl)
        if frames_to is not None and n >= nfft:
            frames_to(spec)
    if not (np.all(np.isfinite(pl)) and np.all(np.isfinite(pr))):
        raise NonFiniteAudioError("the audio contains NaN or infinite samples")
    return _spectrum_from_sums(pl, pr, cr, window, n_frames, nfft, sr, ch, _overall_correlation(a))


def _spectrum_from_sums(pl: np.ndarray, pr: np.ndarray, cr: np.ndarray, window: np.ndarray, n_frames: int,
                        nfft: int, sr: int, ch: int, correlation_overall: float) -> SpectrumResult:
    """Bands, mid/side and correlation from the accumulated bin powers (shared by the whole-signal
    and the block-wise measurement)."""
    n_bins = nfft // 2 + 1
    if not (np.all(np.isfinite(pl)) and np.all(np.isfinite(pr))):
        raise NonFiniteAudioError("the audio contains NaN or infinite samples")

    # Mean square per bin: one-sided (x2 except DC and Nyquist), Hann power-normalised.
    s2 = float(np.dot(window.astype(np.float64), window.astype(np.float64)))
    scale = np.full(n_bins, 2.0 / (nfft * s2 * n_frames))
    scale[0] *= 0.5
    scale[-1] *= 0.5
    weights, n_bands = _band_weights(sr, nfft)
    band_l = weights @ (pl * scale)
    band_r = weights @ (pr * scale)
    band_c = weights @ (cr * scale)
    mid = np.maximum((band_l + band_r + 2.0 * band_c) * 0.25, 0.0)
    side = np.maximum((band_l + band_r - 2.0 * band_c) * 0.25, 0.0)
    if ch == 1:
        side = np.zeros(n_bands)
    level = (band_l + band_r) * 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 10.0 * np.log10(side) - 10.0 * np.log10(mid)
    ratio = np.clip(np.nan_to_num(ratio, nan=-RATIO_CLAMP_DB), -RATIO_CLAMP_DB, RATIO_CLAMP_DB)
    corr = np.ones(n_bands) if ch == 1 else _correlation(band_c, band_l, band_r)

    bin_power = (pl + pr) * 0.5 * scale
    arrays = dict(centers_hz=THIRD_OCTAVE_CENTERS_HZ[:n_bands].copy(), level_db=_db(level),
                  mid_db=_db(mid), side_db=_db(side), side_mid_ratio_db=ratio, correlation=corr,
                  bin_db=_db(bin_power))
    for v in arrays.values():
        v.setflags(write=False)
    return SpectrumResult(labels=THIRD_OCTAVE_LABELS[:n_bands], correlation_overall=correlation_overall,
                          nfft=nfft, frames=n_frames, sample_rate=sr, **arrays)


def band_energy_db(spectrum: SpectrumResult, lo_hz: float, hi_hz: float, *,
                   component: str = "level") -> float:
    """Total power (dB re full-scale sine) of the bands whose centre lies in ``[lo_hz, hi_hz]``.

    ``component``: "level" (channel average), "mid" or "side".
    """
    if component not in ("level", "mid", "side"):
        raise ParameterError(f"component = {component!r} is not one of: level, mid, side")
    if not lo_hz <= hi_hz:
        raise ParameterError(f"lo_hz = {lo_hz:g} must not exceed hi_hz = {hi_hz:g}")
    sel = (spectrum.centers_hz >= lo_hz) & (spectrum.centers_hz <= hi_hz)
    if not np.any(sel):
        raise ParameterError(f"no 1/3-octave band centre lies between {lo_hz:g} and {hi_hz:g} Hz")
    levels = getattr(spectrum, f"{component}_db")[sel]
    return float(10.0 * np.log10(np.sum(10.0 ** (levels / 10.0))))


class SpectrumMeter:
    """:func:`third_octave_spectrum` fed block by block (``feed`` then ``result``): the same frames
    and sums as the whole-signal function, holding the last frame's samples and a small batch.
    Blocks should be multiples of 64 k frames for the broadband correlation to be summed in the
    same chunks (it differs in the last digits otherwise)."""

    def __init__(self, channels: int, sample_rate: int, *, nfft: int | None = None,
                 frames_to: Callable[[np.ndarray], None] | None = None) -> None:
        """``frames_to``: as :func:`third_octave_spectrum`'s."""
        if channels not in (1, 2):
            raise ChannelCountError(f"the spectrum analysis takes mono or stereo audio, got {channels} channels")
        _, self.sample_rate = _check_input(np.zeros((channels, 1), dtype=np.float32), sample_rate)
        self.nfft = int(nfft) if nfft is not None else default_nfft(self.sample_rate)
        self.channels = channels
        n_bins = self.nfft // 2 + 1
        self._pl = np.zeros(n_bins)
        self._pr = np.zeros(n_bins) if channels == 2 else self._pl
        self._cr = np.zeros(n_bins) if channels == 2 else self._pl
        self._window = periodic_hann(self.nfft).astype(np.float32)
        self._tail = np.zeros((channels, 0), dtype=np.float32)
        self._frames = 0
        self._batch = np.empty((channels, STREAM_BATCH_FRAMES, self.nfft), dtype=np.float32)
        self._pending_frames = 0  # windowed frames waiting in _batch
        self._frames_to = frames_to
        self._corr = [0.0, 0.0, 0.0]
        self.samples = 0

    def feed(self, x: np.ndarray) -> None:
        a = np.ascontiguousarray(x, dtype=np.float32)
        if a.ndim != 2 or a.shape[0] != self.channels:
            raise InputError(f"SpectrumMeter: expected ({self.channels}, n) blocks, got shape {a.shape}")
        self.samples += a.shape[1]
        if self.channels == 2:
            step = 1 << 16
            for s0 in range(0, a.shape[1], step):
                left, right = a[0, s0:s0 + step], a[1, s0:s0 + step]
                self._corr[0] += float(np.dot(left, left))
                self._corr[1] += float(np.dot(right, right))
                self._corr[2] += float(np.dot(left, right))
        buf = np.concatenate((self._tail, a), axis=1) if self._tail.shape[1] else a
        nfft, hop = self.nfft, self.nfft // 2
        if buf.shape[1] < nfft:
            self._tail = buf.copy()
            return
        n_frames = 1 + (buf.shape[1] - nfft) // hop
        views = [np.lib.stride_tricks.sliding_window_view(buf[c], nfft)[::hop][:n_frames]
                 for c in range(self.channels)]
        # frames are summed one by one in order, so any batching gives the whole-signal sums
        done = 0
        while done < n_frames:
            take = min(self._batch.shape[1] - self._pending_frames, n_frames - done)
            for c in range(self.channels):
                np.multiply(views[c][done:done + take], self._window,
                            out=self._batch[c, self._pending_frames:self._pending_frames + take])
            self._pending_frames += take
            done += take
            if self._pending_frames == self._batch.shape[1]:
                self._run_batch()
        self._tail = buf[:, n_frames * hop:].copy()

    def _run_batch(self) -> None:
        if not self._pending_frames:
            return
        # one worker: the meter runs beside other meters that keep both cores busy (2 workers: +2 %)
        spec = scipy.fft.rfft(self._batch[:, :self._pending_frames], axis=-1, workers=1)
        if self.channels == 2:
            _accumulate_stereo(spec[0], spec[1], self._pl, self._pr, self._cr)
        else:
            _accumulate_mono(spec[0], self._pl)
        if self._frames_to is not None:
            self._frames_to(spec)
        self._frames += self._pending_frames
        self._pending_frames = 0

    def result(self) -> SpectrumResult:
        self._run_batch()
        if self._frames == 0:  # shorter than one frame: the whole-signal function's own short path
            if self.samples == 0:
                raise EmptyAudioError("the audio has no samples")
            return third_octave_spectrum(self._tail, self.sample_rate, nfft=self.nfft)
        if not (np.all(np.isfinite(self._pl)) and np.all(np.isfinite(self._pr))):
            raise NonFiniteAudioError("the audio contains NaN or infinite samples")
        ll, rr, lr = self._corr
        overall = 1.0 if self.channels == 1 else _correlation(lr, ll, rr)
        return _spectrum_from_sums(self._pl, self._pr, self._cr, self._window, self._frames, self.nfft,
                                   self.sample_rate, self.channels, overall)
