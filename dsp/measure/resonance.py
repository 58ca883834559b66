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
    nfft = 1 << max(10, math.ceil(math.log2(sample_rate / 6.0)))
    hop = nfft // 2
    if mid.shape[0] < nfft * 4:
        return []
    top = min(max_hz, 0.45 * sample_rate)
    centers, bins = _band_index(sample_rate, nfft, 60.0, top)
    window = periodic_hann(nfft).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(mid, nfft)[::hop]
    per_segment = max(1, round(SEGMENT_S * sample_rate / hop))
    seg_power: list[np.ndarray] = []
    for start in range(0, frames.shape[0] - per_segment + 1, per_segment):
        spec = scipy.fft.rfft(frames[start:start + per_segment] * window, axis=-1, workers=2)
        power = np.mean(spec.real ** 2 + spec.imag ** 2, axis=0)
        sums = np.add.reduceat(power, bins[:-1])
        counts = np.maximum(np.diff(bins), 1)
        seg_power.append(sums / counts)
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
