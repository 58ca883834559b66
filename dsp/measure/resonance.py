"""Narrow resonances: peaks that stay put while the music around them changes.

A long-term spectrum cannot tell a resonance from the notes of the song (a tonic, a held note,
a drone or a test tone also stands above its neighbours, and persists). A resonance of a room,
an instrument body or a cheap EQ *multiplies* whatever is played near it: its height above the
surrounding octave stays put while the notes change, and its own level rises and falls with
its neighbourhood. A note is *added*: its level goes its own way. So the mid signal is cut into
~1 s segments, each segment's 1/12-octave spectrum is compared with its own running median
over one octave, and a candidate must

1. stand out by at least half the threshold in ``persistence`` of the non-silent segments and
   by the full threshold on average (it is there all the time);
2. sit in music that changes: the octave around it (the peak itself left out) must change its
   shape from segment to segment by at least ``MIN_CHANGE_DB`` (otherwise nothing can be told
   apart - a steady tone over steady noise is left alone);
3. follow the music: its level must move over the segments at least ``MIN_FOLLOW`` times as
   much as the levels of the bands in its octave do (a resonance amplifies whatever passes
   through it; a held note or a test tone keeps its level while the bands around it move);
4. not be part of a harmonic series: no other peak standing through ``PARTNER_PERSISTENCE`` of
   the track at 1/4, 1/3, 1/2, 2x, 3x or 4x its frequency (a held note's partials).

A peak more than ``MAX_RESONANCE_DB`` above its octave is a tone, not a resonance (a room mode or
an instrument body lifts a band by a few to about 12 dB). Candidates that fail are returned too, with ``left_alone`` saying why; only those with an
empty ``left_alone`` are resonances to cut.
"""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np
import scipy.fft
from scipy.ndimage import median_filter

from .spectrum import periodic_hann

BANDS_PER_OCTAVE = 12
SEGMENT_S = 1.0
MIN_CHANGE_DB = 1.0  # the octave's shape must change this much (mean std over segments, dB)
MIN_FOLLOW = 0.5  # std(own level) / mean std(octave's band levels): how much the peak rides on the music
MAX_RESONANCE_DB = 15.0  # a peak standing higher than this above its octave is a tone, not a resonance
PARTNER_PERSISTENCE = 0.75  # a partial of a held note stands out in this share of the segments
_HARMONIC_STEPS = (12, 19, 24)  # 2x, 3x, 4x in 1/12-octave steps (3x = 19.02)


@dataclasses.dataclass(frozen=True)
class Resonance:
    freq_hz: float
    excess_db: float  # mean height above the surrounding octave's median
    persistence: float  # share of non-silent segments in which it stands out
    left_alone: str = ""  # why this persistent peak is music, not a resonance ("" = a resonance)


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
    return _band_power(np.mean(spec.real ** 2 + spec.imag ** 2, axis=0), bins)


def _band_power(power: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Mean bin power per 1/12-octave band."""
    sums: np.ndarray = np.add.reduceat(power, bins[:-1]) / np.maximum(np.diff(bins), 1)
    return sums


@numba.njit(cache=True, nogil=True)
def _mid_power_segments(xl: np.ndarray, xr: np.ndarray, acc: np.ndarray, filled: np.ndarray,
                        per_segment: int, out: np.ndarray) -> int:  # pragma: no cover - compiled
    # Frame by frame, in order (so any batching gives the same sums): the mid's bin power
    # |(L + R) / 2|^2 added to ``acc``; each complete segment's mean goes to the next row of ``out``.
    frames, bins = xl.shape
    done = 0
    for i in range(frames):
        for j in range(bins):
            m = 0.5 * (xl[i, j] + xr[i, j])
            acc[j] += np.float64(m.real * m.real + m.imag * m.imag)
        filled[0] += 1
        if filled[0] == per_segment:
            for j in range(bins):
                out[done, j] = acc[j] / per_segment
                acc[j] = 0.0
            filled[0] = 0
            done += 1
    return done


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
    """Persistent narrow peaks of ``(channels, samples)`` audio, strongest first: the resonances
    (``left_alone == ""``) then the peaks left alone as music, each with its reason."""
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
    band per second (about 10 MB for two hours).

    Beside a :class:`dsp.measure.spectrum.SpectrumMeter` of the same signal it needs no FFT of its
    own: the spectrum's frames (same length, hop and window) go to :meth:`take_spectra` instead of
    the samples to :meth:`feed` (the mid's spectrum is the mean of the channels' spectra)."""

    def __init__(self, sample_rate: int, *, max_hz: float = 16000.0) -> None:
        self.sample_rate = sample_rate
        self.nfft, self.hop, self.per_segment, self.centers, self.bins = _segment_bands(sample_rate, max_hz)
        self._window = periodic_hann(self.nfft).astype(np.float32)
        self._tail = np.zeros(0, dtype=np.float32)
        self._seg_power: list[np.ndarray] = []
        self.samples = 0
        self._acc = np.zeros(self.nfft // 2 + 1)
        self._filled = np.zeros(1, dtype=np.int64)
        self._frames = 0

    def take_spectra(self, spec: np.ndarray) -> None:
        """The next frames' spectra, ``(channels, frames, nfft // 2 + 1)`` (1 or 2 channels), of
        Hann-windowed frames ``nfft`` long every ``nfft // 2`` samples from the first sample."""
        if spec.shape[-1] != self.nfft // 2 + 1:
            raise ValueError(f"ResonanceMeter: spectra of {self.nfft}-point frames expected")
        right = spec[1] if spec.shape[0] > 1 else spec[0]
        out = np.empty((spec.shape[1] // self.per_segment + 1, spec.shape[2]))
        done = _mid_power_segments(spec[0], right, self._acc, self._filled, self.per_segment, out)
        self._seg_power.extend(_band_power(row, self.bins) for row in out[:done])
        self._frames += spec.shape[1]

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
        # at least 4 frame lengths of audio (7 frames at half-frame hops), as find_resonances asks
        if self.samples < self.nfft * 4 and self._frames < 7:
            return []
        return _choose(self._seg_power, self.centers)


def _choose(seg_power: list[np.ndarray], centers: np.ndarray, *, threshold_db: float = 6.0,
            persistence: float = 0.9, min_hz: float = 150.0, max_count: int = 3) -> list[Resonance]:
    if len(seg_power) < 3:
        return []
    p = np.array(seg_power)
    total = p.sum(axis=1)
    p = p[total > total.max() * 10 ** (-30 / 10)]  # ignore silence and near-silence
    if p.shape[0] < 3:
        return []
    db = 10.0 * np.log10(np.maximum(p, 1e-30))
    around = median_filter(db, size=(1, BANDS_PER_OCTAVE + 1), mode="nearest")
    excess = db - around
    mean_excess = excess.mean(axis=0)
    standing = (excess > threshold_db / 2).mean(axis=0)
    # partials of a note held through the track: persistent peaks themselves (half the threshold)
    present = (mean_excess >= threshold_db / 2) & (standing >= PARTNER_PERSISTENCE)
    # how much the shape of each band's octave changes over time (the band itself and its
    # immediate neighbours left out): per segment, band level minus the segment's octave median
    shape = db - around
    shape_std = shape.std(axis=0)
    level_std = db.std(axis=0)
    found: list[Resonance] = []
    n = len(centers)
    half = BANDS_PER_OCTAVE // 2
    for i in range(1, n - 1):
        if not (centers[i] >= min_hz and mean_excess[i] >= threshold_db and standing[i] >= persistence
                and mean_excess[i] >= mean_excess[i - 1] and mean_excess[i] >= mean_excess[i + 1]):
            continue
        lo, hi = max(0, i - half), min(n, i + half + 1)
        others = [k for k in range(lo, hi) if abs(k - i) > 1]
        change = float(np.mean(shape_std[others])) if others else 0.0
        # a resonance rides on the music: its level moves about as much as its octave's bands do;
        # a held note's or a tone's level stays put while the bands around it move
        follow = float(np.std(db[:, i])) / max(float(np.mean(level_std[others])), 1e-6) if others else 0.0
        partners = [k for step in _HARMONIC_STEPS for k in (i + step, i - step)
                    if 0 <= k < n and any(present[max(0, k - 1):k + 2])]
        series = (f"part of a harmonic series with peaks at {', '.join(f'{v:g}' for v in sorted({round(centers[k]) for k in partners}))} Hz"
                  if partners else "")
        reason = ""
        if mean_excess[i] > MAX_RESONANCE_DB:
            reason = (f"{mean_excess[i]:.0f} dB above its octave: a tone or note of the music (a resonance lifts "
                      f"a band by up to about {MAX_RESONANCE_DB:g} dB)")
        elif change < MIN_CHANGE_DB:
            reason = (f"the music around it hardly changes ({change:.1f} dB): a steady tone cannot be told from "
                      "a resonance, so it is left alone")
        elif follow < MIN_FOLLOW:
            reason = (f"its level stays put while the music around it moves (follow {follow:.2f})"
                      + (f"; {series}" if series else "") + ": a held note or tone, not a resonance")
        elif series:
            reason = f"{series}: a pitched note, not a resonance"
        found.append(Resonance(float(centers[i]), float(mean_excess[i]), float(standing[i]), reason))
    found.sort(key=lambda r: (r.left_alone != "", -r.excess_db))
    chosen: list[Resonance] = []
    for r in found:  # at most one per half octave, max_count of each kind
        same = [c for c in chosen if (c.left_alone == "") == (r.left_alone == "")]
        if len(same) < max_count and all(abs(math.log2(r.freq_hz / c.freq_hz)) >= 0.5 for c in chosen):
            chosen.append(r)
    return chosen
