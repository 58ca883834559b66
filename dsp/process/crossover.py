"""Linkwitz-Riley 4th-order (LR4) band splitting whose bands sum to an all-pass.

Tree structure for crossovers f1 < f2 < ... < fn: split the input at f1; split the high
branch at f2; and so on. Every band below the top passes through the 2nd-order all-pass
of each higher crossover, so all bands share one phase path and

    sum(bands) = AP(f1) * AP(f2) * ... * AP(fn) applied to the input

which has exactly flat magnitude. Each LR4 low-pass is two cascaded RBJ Butterworth
low-passes (Q = 1/sqrt 2); the matching LR4 high-pass is computed as ``AP - LP`` (for LR4,
``LP + HP`` is the 2nd-order all-pass with Q = 1/sqrt 2), which is the same filter with one
section less per crossover. Each band is -6 dB at its crossover(s).

Cost: 3 sections per crossover plus n(n-1)/2 compensation all-passes, all computed in one
numba pass over the signal. The sections run in direct form I with the numerators factored
(low-pass ``g (x + 2 x1 + x2)``, all-pass ``w (x - y2) + u (x1 - y1) + x2``), which needs
about a quarter fewer operations than a generic biquad. The kernels are hand-unrolled for
1-3 crossovers so the filter memory stays in registers. The kernels release the GIL, so a
caller may split different blocks or channels on threads (this module starts none).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numba
import numpy as np

from ..errors import ParameterError
from . import biquad

MIN_CROSSOVER_HZ = 20.0
MAX_CROSSOVER_FRACTION = 0.45  # of the sample rate
MIN_SPACING_OCT = 1.0 / 3.0


def check_crossovers(crossovers_hz: Sequence[float], sample_rate: int) -> None:
    """Raise ParameterError unless crossovers (Hz) are ascending, >= 20 Hz, < 0.45 * sample_rate
    and at least 1/3 octave apart."""
    prev = None
    limit = MAX_CROSSOVER_FRACTION * sample_rate
    for i, f in enumerate(crossovers_hz):
        is_number = isinstance(f, (int, float, np.floating, np.integer)) and not isinstance(f, bool)
        if not is_number or not math.isfinite(f):
            raise ParameterError(f"crossover {i + 1} must be a finite number of Hz, got {f!r}")
        if f < MIN_CROSSOVER_HZ:
            raise ParameterError(f"crossover {i + 1} = {f:g} Hz is below {MIN_CROSSOVER_HZ:g} Hz")
        if f >= limit:
            raise ParameterError(
                f"crossover {i + 1} = {f:g} Hz must be below {limit:g} Hz "
                f"(0.45 x the {sample_rate} Hz sample rate)"
            )
        if prev is not None:
            if f <= prev:
                raise ParameterError(f"crossovers must be ascending: {prev:g} Hz then {f:g} Hz")
            # Tiny tolerance so that 1/3-octave spacings computed in float are accepted.
            if math.log2(f / prev) < MIN_SPACING_OCT - 1e-9:
                raise ParameterError(
                    f"crossovers {prev:g} Hz and {f:g} Hz are closer than 1/3 octave "
                    f"(ratio {f / prev:.3f} < 1.260)"
                )
        prev = f


@dataclasses.dataclass(frozen=True, eq=False)
class CrossoverState:
    """Filter memory of :func:`split_bands` (opaque: pass back what you got)."""

    crossovers_hz: tuple[float, ...]
    sample_rate: int
    channels: int
    z: np.ndarray  # (channels, signals, 2): the last two values of every internal signal


def _n_signals(n: int) -> int:
    # per crossover k: stage input h, all-pass a, first and second low-pass l and m, and one
    # compensation all-pass output per higher crossover
    return sum(4 + (n - k - 1) for k in range(n))


def _coefficients(crossovers_hz: tuple[float, ...], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-pass rows (g, a1, a2), numerator g (1, 2, 1); all-pass rows (a1, a2), numerator (a2, a1, 1)."""
    q = biquad.BUTTERWORTH_Q
    lp = np.array([biquad.low_pass(f, q, sample_rate)[[0, 4, 5]] for f in crossovers_hz]).reshape(-1, 3)
    ap = np.array([biquad.all_pass(f, q, sample_rate)[[4, 5]] for f in crossovers_hz]).reshape(-1, 2)
    return lp, ap


@numba.njit(inline="always")
def _lp(g: float, p: float, r: float, x: float, x1: float, x2: float, y1: float,
        y2: float) -> float:  # pragma: no cover - compiled
    return g * (x + 2.0 * x1 + x2) - p * y1 - r * y2


@numba.njit(inline="always")
def _ap(u: float, w: float, x: float, x1: float, x2: float, y1: float,
        y2: float) -> float:  # pragma: no cover - compiled
    return w * (x - y2) + u * (x1 - y1) + x2


@numba.njit(cache=True, nogil=True, fastmath=False)
def _kernel_any(x: np.ndarray, lp: np.ndarray, ap: np.ndarray, z: np.ndarray, out: np.ndarray, c0: int,
                c1: int) -> None:  # pragma: no cover - compiled
    # Same arithmetic as the unrolled kernels, for any number of crossovers. Signal layout per
    # crossover k (base index b): b = h, b+1 = a, b+2 = l, b+3 = m, b+4.. = compensation outputs.
    n = lp.shape[0]
    for ch in range(c0, c1):
        zz = z[ch].copy()
        cur = np.empty(zz.shape[0])
        for i in range(x.shape[1]):
            h = x[ch, i]
            b = 0
            for k in range(n):
                cur[b] = h
                g, p, r = lp[k, 0], lp[k, 1], lp[k, 2]
                cur[b + 1] = _ap(ap[k, 0], ap[k, 1], h, zz[b, 0], zz[b, 1], zz[b + 1, 0], zz[b + 1, 1])
                cur[b + 2] = _lp(g, p, r, h, zz[b, 0], zz[b, 1], zz[b + 2, 0], zz[b + 2, 1])
                cur[b + 3] = _lp(g, p, r, cur[b + 2], zz[b + 2, 0], zz[b + 2, 1], zz[b + 3, 0], zz[b + 3, 1])
                s = b + 3
                for j in range(k + 1, n):
                    y1, y2 = zz[s + 1, 0], zz[s + 1, 1]
                    cur[s + 1] = _ap(ap[j, 0], ap[j, 1], cur[s], zz[s, 0], zz[s, 1], y1, y2)
                    s += 1
                out[k, ch, i] = cur[s]
                h = cur[b + 1] - cur[b + 3]
                b = s + 1
            out[n, ch, i] = h
            for s in range(zz.shape[0]):
                zz[s, 1] = zz[s, 0]
                zz[s, 0] = cur[s]
        z[ch] = zz


# Unrolled copies of _kernel_any for 1, 2 and 3 crossovers (generated; same arithmetic).
@numba.njit(cache=True, nogil=True, fastmath=False)
def _kernel1(x: np.ndarray, lp: np.ndarray, ap: np.ndarray, z: np.ndarray, out: np.ndarray, c0: int,
             c1: int) -> None:  # pragma: no cover - compiled
    for ch in range(c0, c1):
        g0, p0, r0 = lp[0, 0], lp[0, 1], lp[0, 2]
        u0, w0 = ap[0, 0], ap[0, 1]
        h0_1, h0_2 = z[ch, 0, 0], z[ch, 0, 1]
        a0_1, a0_2 = z[ch, 1, 0], z[ch, 1, 1]
        l0_1, l0_2 = z[ch, 2, 0], z[ch, 2, 1]
        m0_1, m0_2 = z[ch, 3, 0], z[ch, 3, 1]
        for i in range(x.shape[1]):
            h0 = x[ch, i]
            a0 = _ap(u0, w0, h0, h0_1, h0_2, a0_1, a0_2)
            l0 = _lp(g0, p0, r0, h0, h0_1, h0_2, l0_1, l0_2)
            m0 = _lp(g0, p0, r0, l0, l0_1, l0_2, m0_1, m0_2)
            out[0, ch, i] = m0
            top = a0 - m0
            out[1, ch, i] = top
            h0_2, h0_1 = h0_1, h0
            a0_2, a0_1 = a0_1, a0
            l0_2, l0_1 = l0_1, l0
            m0_2, m0_1 = m0_1, m0
        z[ch, 0, 0], z[ch, 0, 1] = h0_1, h0_2
        z[ch, 1, 0], z[ch, 1, 1] = a0_1, a0_2
        z[ch, 2, 0], z[ch, 2, 1] = l0_1, l0_2
        z[ch, 3, 0], z[ch, 3, 1] = m0_1, m0_2


@numba.njit(cache=True, nogil=True, fastmath=False)
def _kernel2(x: np.ndarray, lp: np.ndarray, ap: np.ndarray, z: np.ndarray, out: np.ndarray, c0: int,
             c1: int) -> None:  # pragma: no cover - compiled
    for ch in range(c0, c1):
        g0, p0, r0 = lp[0, 0], lp[0, 1], lp[0, 2]
        u0, w0 = ap[0, 0], ap[0, 1]
        g1, p1, r1 = lp[1, 0], lp[1, 1], lp[1, 2]
        u1, w1 = ap[1, 0], ap[1, 1]
        h0_1, h0_2 = z[ch, 0, 0], z[ch, 0, 1]
        a0_1, a0_2 = z[ch, 1, 0], z[ch, 1, 1]
        l0_1, l0_2 = z[ch, 2, 0], z[ch, 2, 1]
        m0_1, m0_2 = z[ch, 3, 0], z[ch, 3, 1]
        c01_1, c01_2 = z[ch, 4, 0], z[ch, 4, 1]
        h1_1, h1_2 = z[ch, 5, 0], z[ch, 5, 1]
        a1_1, a1_2 = z[ch, 6, 0], z[ch, 6, 1]
        l1_1, l1_2 = z[ch, 7, 0], z[ch, 7, 1]
        m1_1, m1_2 = z[ch, 8, 0], z[ch, 8, 1]
        for i in range(x.shape[1]):
            h0 = x[ch, i]
            a0 = _ap(u0, w0, h0, h0_1, h0_2, a0_1, a0_2)
            l0 = _lp(g0, p0, r0, h0, h0_1, h0_2, l0_1, l0_2)
            m0 = _lp(g0, p0, r0, l0, l0_1, l0_2, m0_1, m0_2)
            c01 = _ap(u1, w1, m0, m0_1, m0_2, c01_1, c01_2)
            out[0, ch, i] = c01
            h1 = a0 - m0
            a1 = _ap(u1, w1, h1, h1_1, h1_2, a1_1, a1_2)
            l1 = _lp(g1, p1, r1, h1, h1_1, h1_2, l1_1, l1_2)
            m1 = _lp(g1, p1, r1, l1, l1_1, l1_2, m1_1, m1_2)
            out[1, ch, i] = m1
            top = a1 - m1
            out[2, ch, i] = top
            h0_2, h0_1 = h0_1, h0
            a0_2, a0_1 = a0_1, a0
            l0_2, l0_1 = l0_1, l0
            m0_2, m0_1 = m0_1, m0
            c01_2, c01_1 = c01_1, c01
            h1_2, h1_1 = h1_1, h1
            a1_2, a1_1 = a1_1, a1
            l1_2, l1_1 = l1_1, l1
            m1_2, m1_1 = m1_1, m1
        z[ch, 0, 0], z[ch, 0, 1] = h0_1, h0_2
        z[ch, 1, 0], z[ch, 1, 1] = a0_1, a0_2
        z[ch, 2, 0], z[ch, 2, 1] = l0_1, l0_2
        z[ch, 3, 0], z[ch, 3, 1] = m0_1, m0_2
        z[ch, 4, 0], z[ch, 4, 1] = c01_1, c01_2
        z[ch, 5, 0], z[ch, 5, 1] = h1_1, h1_2
        z[ch, 6, 0], z[ch, 6, 1] = a1_1, a1_2
        z[ch, 7, 0], z[ch, 7, 1] = l1_1, l1_2
        z[ch, 8, 0], z[ch, 8, 1] = m1_1, m1_2


@numba.njit(cache=True, nogil=True, fastmath=False)
def _kernel3(x: np.ndarray, lp: np.ndarray, ap: np.ndarray, z: np.ndarray, out: np.ndarray, c0: int,
             c1: int) -> None:  # pragma: no cover - compiled
    for ch in range(c0, c1):
        g0, p0, r0 = lp[0, 0], lp[0, 1], lp[0, 2]
        u0, w0 = ap[0, 0], ap[0, 1]
        g1, p1, r1 = lp[1, 0], lp[1, 1], lp[1, 2]
        u1, w1 = ap[1, 0], ap[1, 1]
        g2, p2, r2 = lp[2, 0], lp[2, 1], lp[2, 2]
        u2, w2 = ap[2, 0], ap[2, 1]
        h0_1, h0_2 = z[ch, 0, 0], z[ch, 0, 1]
        a0_1, a0_2 = z[ch, 1, 0], z[ch, 1, 1]
        l0_1, l0_2 = z[ch, 2, 0], z[ch, 2, 1]
        m0_1, m0_2 = z[ch, 3, 0], z[ch, 3, 1]
        c01_1, c01_2 = z[ch, 4, 0], z[ch, 4, 1]
        c02_1, c02_2 = z[ch, 5, 0], z[ch, 5, 1]
        h1_1, h1_2 = z[ch, 6, 0], z[ch, 6, 1]
        a1_1, a1_2 = z[ch, 7, 0], z[ch, 7, 1]
        l1_1, l1_2 = z[ch, 8, 0], z[ch, 8, 1]
        m1_1, m1_2 = z[ch, 9, 0], z[ch, 9, 1]
        c12_1, c12_2 = z[ch, 10, 0], z[ch, 10, 1]
        h2_1, h2_2 = z[ch, 11, 0], z[ch, 11, 1]
        a2_1, a2_2 = z[ch, 12, 0], z[ch, 12, 1]
        l2_1, l2_2 = z[ch, 13, 0], z[ch, 13, 1]
        m2_1, m2_2 = z[ch, 14, 0], z[ch, 14, 1]
        for i in range(x.shape[1]):
            h0 = x[ch, i]
            a0 = _ap(u0, w0, h0, h0_1, h0_2, a0_1, a0_2)
            l0 = _lp(g0, p0, r0, h0, h0_1, h0_2, l0_1, l0_2)
            m0 = _lp(g0, p0, r0, l0, l0_1, l0_2, m0_1, m0_2)
            c01 = _ap(u1, w1, m0, m0_1, m0_2, c01_1, c01_2)
            c02 = _ap(u2, w2, c01, c01_1, c01_2, c02_1, c02_2)
            out[0, ch, i] = c02
            h1 = a0 - m0
            a1 = _ap(u1, w1, h1, h1_1, h1_2, a1_1, a1_2)
            l1 = _lp(g1, p1, r1, h1, h1_1, h1_2, l1_1, l1_2)
            m1 = _lp(g1, p1, r1, l1, l1_1, l1_2, m1_1, m1_2)
            c12 = _ap(u2, w2, m1, m1_1, m1_2, c12_1, c12_2)
            out[1, ch, i] = c12
            h2 = a1 - m1
            a2 = _ap(u2, w2, h2, h2_1, h2_2, a2_1, a2_2)
            l2 = _lp(g2, p2, r2, h2, h2_1, h2_2, l2_1, l2_2)
            m2 = _lp(g2, p2, r2, l2, l2_1, l2_2, m2_1, m2_2)
            out[2, ch, i] = m2
            top = a2 - m2
            out[3, ch, i] = top
            h0_2, h0_1 = h0_1, h0
            a0_2, a0_1 = a0_1, a0
            l0_2, l0_1 = l0_1, l0
            m0_2, m0_1 = m0_1, m0
            c01_2, c01_1 = c01_1, c01
            c02_2, c02_1 = c02_1, c02
            h1_2, h1_1 = h1_1, h1
            a1_2, a1_1 = a1_1, a1
            l1_2, l1_1 = l1_1, l1
            m1_2, m1_1 = m1_1, m1
            c12_2, c12_1 = c12_1, c12
            h2_2, h2_1 = h2_1, h2
            a2_2, a2_1 = a2_1, a2
            l2_2, l2_1 = l2_1, l2
            m2_2, m2_1 = m2_1, m2
        z[ch, 0, 0], z[ch, 0, 1] = h0_1, h0_2
        z[ch, 1, 0], z[ch, 1, 1] = a0_1, a0_2
        z[ch, 2, 0], z[ch, 2, 1] = l0_1, l0_2
        z[ch, 3, 0], z[ch, 3, 1] = m0_1, m0_2
        z[ch, 4, 0], z[ch, 4, 1] = c01_1, c01_2
        z[ch, 5, 0], z[ch, 5, 1] = c02_1, c02_2
        z[ch, 6, 0], z[ch, 6, 1] = h1_1, h1_2
        z[ch, 7, 0], z[ch, 7, 1] = a1_1, a1_2
        z[ch, 8, 0], z[ch, 8, 1] = l1_1, l1_2
        z[ch, 9, 0], z[ch, 9, 1] = m1_1, m1_2
        z[ch, 10, 0], z[ch, 10, 1] = c12_1, c12_2
        z[ch, 11, 0], z[ch, 11, 1] = h2_1, h2_2
        z[ch, 12, 0], z[ch, 12, 1] = a2_1, a2_2
        z[ch, 13, 0], z[ch, 13, 1] = l2_1, l2_2
        z[ch, 14, 0], z[ch, 14, 1] = m2_1, m2_2


_KERNELS = {1: _kernel1, 2: _kernel2, 3: _kernel3}


def split_bands(
    x: np.ndarray,
    sample_rate: int,
    crossovers_hz: Sequence[float],
    state: CrossoverState | None = None,
) -> tuple[list[np.ndarray], CrossoverState]:
    """Split ``x`` (channels, samples) into ``len(crossovers_hz) + 1`` float64 bands, low to high.

    LR4 crossovers in Hz (see :func:`check_crossovers`); the bands sum to an all-pass version
    of ``x`` (flat magnitude). ``state`` carries filter memory between blocks; it must come
    from a call with the same crossovers, sample rate and channel count. With no crossovers
    the single band is a copy of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ParameterError(f"audio must be (channels, samples), got shape {x.shape}")
    if state is None:
        check_crossovers(crossovers_hz, sample_rate)
    xs = tuple(float(f) for f in crossovers_hz)
    channels = x.shape[0]
    n_x = len(xs)
    if state is None:
        state = CrossoverState(xs, sample_rate, channels, np.zeros((channels, _n_signals(n_x), 2)))
    elif (state.crossovers_hz, state.sample_rate, state.channels) != (xs, sample_rate, channels):
        raise ParameterError("crossover state does not match the crossovers, sample rate or channel count")
    if n_x == 0:
        return [x.copy()], state
    out = np.empty((n_x + 1,) + x.shape)
    if x.shape[1] == 0:
        return list(out), state
    z = state.z.copy()
    lp, ap = _coefficients(xs, sample_rate)
    _KERNELS.get(n_x, _kernel_any)(x, lp, ap, z, out, 0, channels)
    return list(out), dataclasses.replace(state, z=z)
