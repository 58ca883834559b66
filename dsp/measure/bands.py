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


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _section(v: float, c: np.ndarray, s1: float, s2: float) -> tuple[float, float, float]:  # pragma: no cover
    """One biquad section (direct form II transposed), coefficients ``c`` = (b0 b1 b2 a1 a2):
    returns the output and the new memory."""
    y = c[0] * v + s1
    return y, c[1] * v - c[3] * y + s2, c[2] * v - c[4] * y


@numba.njit(cache=True, nogil=True, fastmath=True)
def _band_peaks_kernel(x: np.ndarray, sos: np.ndarray, z: np.ndarray, peaks: np.ndarray, win: np.ndarray,
                       window: int, w_peaks: np.ndarray, w_energies: np.ndarray) -> int:  # pragma: no cover
    """Rows 0-1 of ``sos`` (b0 b1 b2 a1 a2) low-pass, rows 2-3 high-pass; ``z`` (channels, 4, 2)
    carries the filter memory, ``peaks`` (2,) the low and high peaks so far, ``win`` (3,) the open
    window's low-band peak, energy and length (all in place); each completed window's peak and
    energy go to ``w_peaks`` / ``w_energies``; returns how many."""
    n_ch, n = x.shape
    fill = int(win[2])
    done = (fill + n) // window  # windows this block completes (the same for every channel)
    part_peak = np.zeros(done + 1)  # per window, pooled over channels; the last one stays open
    part_energy = np.zeros(done + 1)
    hi_peak = peaks[1]
    s0, s1, s2, s3 = sos[0], sos[1], sos[2], sos[3]
    # channels in pairs, the filter memory in locals (registers): two channels' four sections are
    # eight independent recursions the CPU overlaps (an odd last channel pairs with itself, counted once)
    for c0 in range(0, n_ch, 2):
        c1 = min(c0 + 1, n_ch - 1)
        e1 = 1.0 if c1 != c0 else 0.0
        p0a, p0b, p1a, p1b = z[c0, 0, 0], z[c0, 0, 1], z[c0, 1, 0], z[c0, 1, 1]
        p2a, p2b, p3a, p3b = z[c0, 2, 0], z[c0, 2, 1], z[c0, 3, 0], z[c0, 3, 1]
        q0a, q0b, q1a, q1b = z[c1, 0, 0], z[c1, 0, 1], z[c1, 1, 0], z[c1, 1, 1]
        q2a, q2b, q3a, q3b = z[c1, 2, 0], z[c1, 2, 1], z[c1, 3, 0], z[c1, 3, 1]
        k = 0
        f = fill
        wp = 0.0
        we = 0.0
        r0 = x[c0]
        r1 = x[c1]
        for i in range(n):
            v = np.float64(r0[i])
            w = np.float64(r1[i])
            y, p0a, p0b = _section(v, s0, p0a, p0b)
            lo, p1a, p1b = _section(y, s1, p1a, p1b)
            u, p2a, p2b = _section(v, s2, p2a, p2b)
            hi, p3a, p3b = _section(u, s3, p3a, p3b)
            y2, q0a, q0b = _section(w, s0, q0a, q0b)
            lo2, q1a, q1b = _section(y2, s1, q1a, q1b)
            u2, q2a, q2b = _section(w, s2, q2a, q2b)
            hi2, q3a, q3b = _section(u2, s3, q3a, q3b)
            wp = max(wp, abs(lo), abs(lo2))
            we += lo * lo + e1 * (lo2 * lo2)
            hi_peak = max(hi_peak, abs(hi), abs(hi2))
            f += 1
            if f >= window:
                part_peak[k] = max(part_peak[k], wp)
                part_energy[k] += we
                k += 1
                wp, we, f = 0.0, 0.0, 0
        part_peak[k] = max(part_peak[k], wp)
        part_energy[k] += we
        z[c1, 0, 0], z[c1, 0, 1], z[c1, 1, 0], z[c1, 1, 1] = q0a, q0b, q1a, q1b
        z[c1, 2, 0], z[c1, 2, 1], z[c1, 3, 0], z[c1, 3, 1] = q2a, q2b, q3a, q3b
        z[c0, 0, 0], z[c0, 0, 1], z[c0, 1, 0], z[c0, 1, 1] = p0a, p0b, p1a, p1b
        z[c0, 2, 0], z[c0, 2, 1], z[c0, 3, 0], z[c0, 3, 1] = p2a, p2b, p3a, p3b
    # the window left open by the last block gets its start back
    part_peak[0] = max(part_peak[0], win[0])
    part_energy[0] += win[1]
    lo_peak = peaks[0]
    for k in range(done):
        w_peaks[k] = part_peak[k]
        w_energies[k] = part_energy[k]
        lo_peak = max(lo_peak, part_peak[k])
    peaks[0] = max(lo_peak, part_peak[done])
    peaks[1] = hi_peak
    win[0], win[1], win[2] = part_peak[done], part_energy[done], float((fill + n) % window)
    return int(done)


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
