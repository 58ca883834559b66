"""Peak level of a signal's low band and of the rest: whether the loudest peaks are the bass, and
how much of the bass's energy a limit on its peaks would take.

The low band is an LR4 low-pass at ``split_hz`` (two Butterworth sections), the rest a 4th-order
Butterworth high-pass at the same frequency; channels are pooled (the largest |value| of any). The
low band is also cut into 10 ms windows whose peak and energy are kept (8 bytes per 10 ms, 5.8 MB
for two hours), so :meth:`BandPeaks.energy_drop_db` can say what holding the low band under a
threshold, with a hold and a release, would cost it (a kick loses a little, a sustained 808 much).
Used by the planner to decide whether a bass limiter can take a loud target's peaks instead of
the full-band limiter, and how far.
"""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np

#: where the bass ends for this measurement and for the bass limiter, Hz
BASS_SPLIT_HZ = 120.0
WINDOW_S = 0.01


@numba.njit(cache=True, nogil=True)
def _band_peaks_kernel(x: np.ndarray, sos: np.ndarray, z: np.ndarray, peaks: np.ndarray, win: np.ndarray,
                       window: int, w_peaks: np.ndarray, w_energies: np.ndarray) -> int:  # pragma: no cover
    """Rows 0-1 of ``sos`` (b0 b1 b2 a1 a2) low-pass, rows 2-3 high-pass; ``z`` (channels, 4, 2)
    carries the filter memory, ``peaks`` (2,) the low and high peaks so far, ``win`` (3,) the open
    window's low-band peak, energy and length (all in place); each completed window's peak and
    energy go to ``w_peaks`` / ``w_energies``; returns how many."""
    n_ch, n = x.shape
    done = 0
    lo_peak = peaks[0]
    hi_peak = peaks[1]
    w_peak, w_energy, w_fill = win[0], win[1], win[2]
    for i in range(n):
        for c in range(n_ch):
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
            a = abs(lo)
            if a > w_peak:
                w_peak = a
            w_energy += lo * lo
            if abs(hi) > hi_peak:
                hi_peak = abs(hi)
        w_fill += 1.0
        if w_fill >= window:
            if w_peak > lo_peak:
                lo_peak = w_peak
            w_peaks[done] = w_peak
            w_energies[done] = w_energy
            done += 1
            w_peak, w_energy, w_fill = 0.0, 0.0, 0.0
    peaks[0] = max(lo_peak, w_peak)
    peaks[1] = hi_peak
    win[0], win[1], win[2] = w_peak, w_energy, w_fill
    return done


@numba.njit(cache=True, nogil=True)
def _held_energy(w_peaks: np.ndarray, w_energies: np.ndarray, threshold: float, hold: int,
                 release: float) -> float:  # pragma: no cover - jitted
    """The windows' energy after a limiter on their peaks: reduction (dB) to ``threshold``, held
    ``hold`` windows, then released by ``release`` per window (one pole in dB)."""
    red = 0.0
    left = 0
    out = 0.0
    for i in range(w_peaks.shape[0]):
        p = w_peaks[i]
        req = 20.0 * math.log10(p) - threshold if p > 0.0 else 0.0
        if req >= red:
            red = req
            left = hold
        elif left > 0:
            left -= 1
        else:
            red *= release
        if red > 0.0:
            out += w_energies[i] * 10.0 ** (-red / 10.0)
        else:
            out += w_energies[i]
    return out


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


@dataclasses.dataclass(frozen=True)
class BandPeaks:
    low_dbfs: float  # peak of the low band (below ``split_hz``)
    high_dbfs: float  # peak of the rest
    # the low band's peak (linear) and energy per WINDOW_S window, in order
    window_peak: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    window_energy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @property
    def bass_over_rest_db(self) -> float:
        """How far the bass's peaks stand above everything else's (nan for silence)."""
        return self.low_dbfs - self.high_dbfs if math.isfinite(self.high_dbfs) else math.nan

    def held_share(self, threshold_dbfs: float) -> float:
        """Share (0..1) of the 10 ms windows whose low-band peak is over ``threshold_dbfs``."""
        if self.window_peak.shape[0] == 0:
            return 0.0
        return float(np.mean(self.window_peak > 10.0 ** (threshold_dbfs / 20.0)))

    def energy_drop_db(self, threshold_dbfs: float, *, hold_ms: float = 25.0, release_ms: float = 80.0) -> float:
        """How much of the low band's energy a limiter holding its peaks at ``threshold_dbfs``
        (``hold_ms``: the bass limiter's hold and look-ahead; then a one-pole ``release_ms`` in dB)
        would take, dB >= 0. A window's reduction is held from its end, so one window more."""
        total = float(np.sum(self.window_energy, dtype=np.float64))
        if total <= 0.0:
            return 0.0
        after = _held_energy(self.window_peak, self.window_energy, float(threshold_dbfs),
                             round(hold_ms * 1e-3 / WINDOW_S) + 1, math.exp(-WINDOW_S / (release_ms * 1e-3)))
        return float(-10.0 * math.log10(max(after, 1e-300) / total))


class BandPeakMeter:
    """Fed ``(channels, n)`` blocks in order; ``result()`` the peaks so far."""

    def __init__(self, channels: int, sample_rate: int, *, split_hz: float = BASS_SPLIT_HZ) -> None:
        self._sos = _butterworth_sections(split_hz, sample_rate)
        self._z = np.zeros((channels, 4, 2))
        self._peaks = np.zeros(2)
        self._win = np.zeros(3)
        self._window = max(1, round(WINDOW_S * sample_rate))
        self._w_peaks: list[np.ndarray] = []
        self._w_energies: list[np.ndarray] = []

    def feed(self, x: np.ndarray) -> None:
        n = x.shape[1] // self._window + 1
        peaks, energies = np.empty(n), np.empty(n)
        done = _band_peaks_kernel(np.ascontiguousarray(x), self._sos, self._z, self._peaks, self._win, self._window,
                                  peaks, energies)
        self._w_peaks.append(peaks[:done].astype(np.float32))
        self._w_energies.append(energies[:done].astype(np.float32))

    def result(self) -> BandPeaks:
        def db(v: float) -> float:
            return 20.0 * math.log10(v) if v > 0.0 else -math.inf

        def joined(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

        return BandPeaks(db(float(self._peaks[0])), db(float(self._peaks[1])), joined(self._w_peaks),
                         joined(self._w_energies))


def band_peaks(x: np.ndarray, sample_rate: int, *, split_hz: float = BASS_SPLIT_HZ) -> BandPeaks:
    """:class:`BandPeakMeter` over the whole ``(channels, samples)`` signal."""
    meter = BandPeakMeter(x.shape[0], sample_rate, split_hz=split_hz)
    meter.feed(x)
    return meter.result()
