"""Narrow resonances: peaks that ring through the whole track whatever the music plays.

A long-term spectrum cannot tell a resonance from the notes of the song (a tonic or a bass note
also stands above its neighbours). A resonance is persistent: it stands out in nearly every
second of the track while the harmony moves on. So the mid signal is cut into ~1 s segments,
each segment's 1/12-octave spectrum is compared with its own running median over one octave,
and a peak counts only if it stands out by at least half the threshold in ``persistence`` of the
non-silent segments and by the full threshold on average.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.fft
from scipy.ndimage import median_filter

from .spectrum import periodic_hann

BANDS_PER_OCTAVE = 12
SEGMENT_S = 1.0


@dataclasses.dataclass(frozen=True)
class Resonance:
    freq_hz: float
    excess_db: float  # mean height above the surrounding octave's median
    persistence: float  # share of non-silent segments in which it stands out


def _band_index(sample_rate: int, nfft: int, lo_hz: float, hi_hz: float) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(math.ceil(BANDS_PER_OCTAVE * math.log2(lo_hz / 1000)),
                  math.floor(BANDS_PER_OCTAVE * math.log2(hi_hz / 1000)) + 1)
    centers = 1000.0 * 2.0 ** (k / BANDS_PER_OCTAVE)
    edges = np.concatenate((centers * 2 ** (-0.5 / BANDS_PER_OCTAVE), centers[-1:] * 2 ** (0.5 / BANDS_PER_OCTAVE)))
    bins = np.searchsorted(np.arange(nfft // 2 + 1) * sample_rate / nfft, edges)
    return centers, bins


def _segment_bands(sample_rate: int, max_hz: float) -> tuple[int, int, int, np.ndarray, np.ndarray]:
    nfft = 1 << max(10, math.ceil(math.log2(sample_rate / 6.0)))
    hop = nfft // 2
    top = min(max_hz, 0.45 * sample_rate)
    centers, bins = _band_index(sample_rate, nfft, 60.0, top)
    per_segment = max(1, round(SEGMENT_S * sample_rate / hop))
    return nfft, hop, per_segment, centers, bins


def _segment_power(frames: np.ndarray, window: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Mean 1/12-octave band power of one segment's frames (``per_segment`` rows of ``nfft``)."""
    spec = scipy.fft.rfft(frames * window, axis=-1, workers=2)
    power = np.mean(spec.real ** 2 + spec.imag ** 2, axis=0)
    sums = np.add.reduceat(power, bins[:-1])
    counts = np.maximum(np.diff(bins), 1)
    return sums / counts


def find_resonances(
    x: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float = 6.0,
    persistence: float = 0.9,
    min_hz: float = 150.0,
    max_hz: float = 16000.0,
    max_count: int = 3,
) -> list[Resonance]:
    """Persistent narrow peaks of ``(channels, samples)`` audio, strongest first."""
    mid = np.mean(np.asarray(x, dtype=np.float32), axis=0)
    nfft, hop, per_segment, centers, bins = _segment_bands(sample_rate, max_hz)
    if mid.shape[0] < nfft * 4:
        return []
    window = periodic_hann(nfft).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(mid, nfft)[::hop]
    seg_power = [_segment_power(frames[start:start + per_segment], window, bins)
                 for start in range(0, frames.shape[0] - per_segment + 1, per_segment)]
    return _choose(seg_power, centers, threshold_db=threshold_db, persistence=persistence, min_hz=min_hz,
                   max_count=max_count)


class ResonanceMeter:
    """:func:`find_resonances` fed block by block (``feed`` then ``result``, default settings):
    the same segments and the same answer, holding one segment of the mid signal and 8 bytes per
    band per second (about 10 MB for two hours)."""

    def __init__(self, sample_rate: int, *, max_hz: float = 16000.0) -> None:
        self.sample_rate = sample_rate
        self.nfft, self.hop, self.per_segment, self.centers, self.bins = _segment_bands(sample_rate, max_hz)
        self._window = periodic_hann(self.nfft).astype(np.float32)
        self._tail = np.zeros(0, dtype=np.float32)
        self._seg_power: list[np.ndarray] = []
        self.samples = 0

    def feed(self, x: np.ndarray) -> None:
        mid = np.mean(np.asarray(x, dtype=np.float32), axis=0)
        self.samples += mid.shape[0]
        buf = np.concatenate((self._tail, mid)) if self._tail.shape[0] else mid
        need = (self.per_segment - 1) * self.hop + self.nfft  # samples of one complete segment
        step = self.per_segment * self.hop
        pos = 0
        while buf.shape[0] - pos >= need:
            frames = np.lib.stride_tricks.sliding_window_view(buf[pos:pos + need], self.nfft)[::self.hop]
            self._seg_power.append(_segment_power(frames, self._window, self.bins))
            pos += step
        self._tail = buf[pos:].copy()

    def result(self) -> list[Resonance]:
        if self.samples < self.nfft * 4:
            return []
        return _choose(self._seg_power, self.centers)


def _choose(seg_power: list[np.ndarray], centers: np.ndarray, *, threshold_db: float = 6.0,
            persistence: float = 0.9, min_hz: float = 150.0, max_count: int = 3) -> list[Resonance]:
    if len(seg_power) < 3:
        return []
    p = np.array(seg_power)
    total = p.sum(axis=1)
    p = p[total > total.max() * 10 ** (-30 / 10)]  # ignore silence and near-silence
    db = 10.0 * np.log10(np.maximum(p, 1e-30))
    excess = db - median_filter(db, size=(1, BANDS_PER_OCTAVE + 1), mode="nearest")
    mean_excess = excess.mean(axis=0)
    standing = (excess > threshold_db / 2).mean(axis=0)
    found = []
    for i in range(1, len(centers) - 1):
        if (centers[i] >= min_hz and mean_excess[i] >= threshold_db and standing[i] >= persistence
                and mean_excess[i] >= mean_excess[i - 1] and mean_excess[i] >= mean_excess[i + 1]):
            found.append(Resonance(float(centers[i]), float(mean_excess[i]), float(standing[i])))
    found.sort(key=lambda r: -r.excess_db)
    chosen: list[Resonance] = []
    for r in found:  # at most one per half octave
        if all(abs(math.log2(r.freq_hz / c.freq_hz)) >= 0.5 for c in chosen):
            chosen.append(r)
        if len(chosen) == max_count:
            break
    return chosen
