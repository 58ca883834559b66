"""Peak level of a signal's low band and of the rest: whether the loudest peaks are the bass.

The low band is an LR4 low-pass at ``split_hz`` (two Butterworth sections), the rest a 4th-order
Butterworth high-pass at the same frequency; channels are pooled (the largest |value| of any).
Used by the planner to decide whether a bass limiter can take a loud target's peaks (a kick and
bass whose peaks stand well above everything else) instead of the full-band limiter.
"""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np


#: where the bass ends for this measurement and for the bass limiter, Hz
BASS_SPLIT_HZ = 120.0


@numba.njit(cache=True, nogil=True)
def _band_peaks_kernel(x: np.ndarray, sos: np.ndarray, z: np.ndarray,
                       peaks: np.ndarray) -> None:  # pragma: no cover - jitted
    """Rows 0-1 of ``sos`` (b0 b1 b2 a1 a2) low-pass, rows 2-3 high-pass; ``z`` (channels, 4, 2)
    carries the filter memory, ``peaks`` (2,) the low and high peaks so far (updated in place)."""
    n_ch, n = x.shape
    lo_peak = peaks[0]
    hi_peak = peaks[1]
    for c in range(n_ch):
        for i in range(n):
            v = np.float64(x[c, i])
            lo = v
            for j in range(2):
                y = sos[j, 0] * lo + z[c, j, 0]
                z[c, j, 0] = sos[j, 1] * lo - sos[j, 3] * y + z[c, j, 1]
                z[c, j, 1] = sos[j, 2] * lo - sos[j, 4] * y
                lo = y
            hi = v
            for j in range(2, 4):
                y = sos[j, 0] * hi + z[c, j, 0]
                z[c, j, 0] = sos[j, 1] * hi - sos[j, 3] * y + z[c, j, 1]
                z[c, j, 1] = sos[j, 2] * hi - sos[j, 4] * y
                hi = y
            if abs(lo) > lo_peak:
                lo_peak = abs(lo)
            if abs(hi) > hi_peak:
                hi_peak = abs(hi)
    peaks[0] = lo_peak
    peaks[1] = hi_peak


@dataclasses.dataclass(frozen=True)
class BandPeaks:
    low_dbfs: float  # peak of the low band (below ``split_hz``)
    high_dbfs: float  # peak of the rest

    @property
    def bass_over_rest_db(self) -> float:
        """How far the bass's peaks stand above everything else's (nan for silence)."""
        return self.low_dbfs - self.high_dbfs if math.isfinite(self.high_dbfs) else math.nan


def _butterworth_sections(split_hz: float, sample_rate: int) -> np.ndarray:
    """Rows (b0 b1 b2 a1 a2): two LR4 low-pass sections, then the two of a 4th-order Butterworth
    high-pass (bilinear transform with pre-warping)."""
    k = math.tan(math.pi * split_hz / sample_rate)
    rows = []
    for q, high in ((1 / math.sqrt(2), False), (1 / math.sqrt(2), False),
                    (1 / (2 * math.sin(math.pi / 8)), True), (1 / (2 * math.sin(3 * math.pi / 8)), True)):
        a0 = 1 + k / q + k * k
        b = (1.0, -2.0, 1.0) if high else (k * k, 2 * k * k, k * k)
        rows.append([b[0] / a0, b[1] / a0, b[2] / a0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return np.array(rows)


class BandPeakMeter:
    """Fed ``(channels, n)`` blocks in order; ``result()`` the peaks so far."""

    def __init__(self, channels: int, sample_rate: int, *, split_hz: float = BASS_SPLIT_HZ) -> None:
        self._sos = _butterworth_sections(split_hz, sample_rate)
        self._z = np.zeros((channels, 4, 2))
        self._peaks = np.zeros(2)

    def feed(self, x: np.ndarray) -> None:
        _band_peaks_kernel(np.ascontiguousarray(x), self._sos, self._z, self._peaks)

    def result(self) -> BandPeaks:
        def db(v: float) -> float:
            return 20.0 * math.log10(v) if v > 0.0 else -math.inf

        return BandPeaks(db(float(self._peaks[0])), db(float(self._peaks[1])))


def band_peaks(x: np.ndarray, sample_rate: int, *, split_hz: float = BASS_SPLIT_HZ) -> BandPeaks:
    """:class:`BandPeakMeter` over the whole ``(channels, samples)`` signal."""
    meter = BandPeakMeter(x.shape[0], sample_rate, split_hz=split_hz)
    meter.feed(x)
    return meter.result()
