"""Oversampled soft clipper: the gentle clip stage that takes the first dB of short transients
before the true-peak limiter (the mastering engineer's habit; FabFilter Pro-L 2, x42-dpl and
master_me put a fast peak stage ahead of the brickwall for the same reason).

Curve, on the 4x-oversampled signal ``u`` with ``c`` = ``ceiling_db`` and ``k`` = ``c - knee_db``
(linear amplitudes)::

    |u| <= k:  y = u                                   (exactly linear: quiet material untouched)
    |u| >  k:  y = sign(u) * (k + (c - k) * tanh((|u| - k) / (c - k)))

continuous with slope 1 at ``k`` and never above ``c``. Only the *clipping residual*
``y - u`` goes through the oversampling filters; the clean signal passes as a plain delay, so
when nothing reaches the knee the stage is a pure delay of :func:`latency_samples`, bit for bit,
and the residual is band-limited before it returns to the base rate (harmonics above the
base Nyquist are filtered, not folded). The output's true peak can exceed ``c`` slightly (the
band-limited residual rings); the limiter after it owns the ceiling.

With ``split_hz`` > 0 only the band under it is clipped (linear-phase FIR split,
:mod:`dsp.process.fir`): the treble passes clean, so a clipped kick or snare does not
intermodulate the hats riding on it; the harmonics of the clipped low band remain.

In REAPER: a JS soft clipper/saturator with REAPER 7's per-FX oversampling at 4x before
ReaLimit comes close; no stock JS has this exact curve (linear below the knee, tanh above), so
the clip stage cannot be reproduced exactly there and ReaMaster renders it itself.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numba
import numpy as np

from ..errors import ParameterError
from ..params import Params, check_range
from .fir import lowpass_fir, split_delay_samples, split_low
from .processor import ProcessorSpec

OVERSAMPLING = 4
_TAPS = 16  # taps per polyphase branch (8 zero crossings each side)
_BETA = 8.0  # Kaiser beta: images of the base band attenuated by about 80 dB
_PIECE = 256  # up-sample groups per piece the clipper may skip (see _clip_kernel)
_SPLIT_SUB_BLOCK = 1 << 14  # samples per piece with split_hz


@dataclasses.dataclass(frozen=True)
class ClipperParams(Params):
    """Controls of the clip stage.

    drive_db: -24..+24 dB; gain before the clipper.
    ceiling_db: -30..0 dBFS; the level clipped peaks approach and never pass (before the
        band-limiting of the residual).
    knee_db: 0.5..12 dB; the curve bends from ``ceiling_db - knee_db`` up; below it the stage is linear.
    split_hz: 0 or 1000..8000 Hz; clip only the band under it (0: the full band).
    """

    drive_db: float = 0.0
    ceiling_db: float = -1.0
    knee_db: float = 3.0
    split_hz: float = 0.0

    def validate(self) -> None:
        check_range("drive_db", self.drive_db, -24.0, 24.0)
        check_range("ceiling_db", self.ceiling_db, -30.0, 0.0)
        check_range("knee_db", self.knee_db, 0.5, 12.0)
        if self.split_hz != 0.0:
            check_range("split_hz", self.split_hz, 1000.0, 8000.0)


def latency_samples(params: ClipperParams, sample_rate: int) -> int:
    return _TAPS + (split_delay_samples(params.split_hz, sample_rate) if params.split_hz > 0 else 0)


@functools.cache
def _filter() -> np.ndarray:
    """Interpolation low-pass at the 4x rate (DC gain 4), length ``4 * _TAPS + 1``."""
    n = OVERSAMPLING * _TAPS + 1
    m = np.arange(n) - (n - 1) / 2.0
    h: np.ndarray = np.sinc(m / OVERSAMPLING) * np.kaiser(n, _BETA)
    return np.asarray(h / h.sum() * OVERSAMPLING, dtype=np.float64)


@dataclasses.dataclass
class ClipperState:
    x_hist: np.ndarray  # (C, 2 * _TAPS) last input samples (after drive)
    clipped_samples: int = 0  # oversampled samples that reached the knee
    total_samples: int = 0
    max_reduction_db: float = 0.0  # largest |u| / |y| at the 4x rate
    work: np.ndarray = dataclasses.field(default_factory=lambda: np.empty((2, OVERSAMPLING, 0)))  # kernel's work space
    # with split_hz: the driven input waiting for the FIR's future samples, and the clean signal
    # waiting for the clipped band's residual
    split_hist: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    clean_hist: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))


@numba.njit(cache=True, nogil=True)
def _next_run(flags: np.ndarray, q: int) -> tuple[int, int]:  # pragma: no cover - jitted
    """``(start, end)`` of the first run of set flags at or after ``q`` (start == len when none)."""
    n = flags.shape[0]
    while q < n and not flags[q]:
        q += 1
    end = q
    while end < n and flags[end]:
        end += 1
    return q, end


@numba.njit(cache=True, nogil=True, fastmath=True)
def _clip_kernel(xp: np.ndarray, h: np.ndarray, k: float, c: float, out: np.ndarray, u: np.ndarray,
                 r: np.ndarray) -> tuple[int, float]:  # pragma: no cover - jitted
    """xp: (C, 2T + n) driven input with 2T samples of history; out: (C, n) residual at the base
    rate (output i belongs to input sample i - T); u, r: (4, >= n + T) work space (kept between
    blocks: a fresh one per block costs more in page faults than the filtering). Returns
    (oversampled samples clipped after the history, largest reduction ratio)."""
    n_ch = xp.shape[0]
    n = out.shape[1]
    f = 4
    taps = h.shape[0]  # 4T + 1
    T = (taps - 1) // f
    nb = n + T  # up-sample groups: u[4 * (n0 - T + b) + p], b = 0 .. nb - 1
    # bound on |u| from the samples: the largest L1 norm of a branch times the largest |x|
    l1 = 0.0
    for p in range(f):
        s1 = 0.0
        j = p
        while j < taps:
            s1 += abs(h[j])
            j += f
        l1 = max(l1, s1)
    width = c - k
    count = 0
    worst = 1.0
    n_pieces = (nb + _PIECE - 1) // _PIECE
    hot = np.zeros(n_pieces, dtype=np.bool_)  # some |u| of the piece may pass the knee (bound)
    active = np.zeros(n_pieces, dtype=np.bool_)  # some |u| of the piece did
    for ch in range(n_ch):
        # pieces of up-sample groups whose every |u| stays under the knee (bounded from the samples
        # they reach) have an exactly zero residual: only runs of pieces around peaks are oversampled
        row = xp[ch]
        for q in range(n_pieces):
            b0, b1 = q * _PIECE, min(nb, (q + 1) * _PIECE)
            seg = row[b0:b1 + T]  # u[., b] reads xp[ch, b .. b + T]
            big = 0.0
            for j in range(seg.shape[0]):
                v = abs(seg[j])
                if v > big:
                    big = v
            hot[q] = big * l1 > k
            active[q] = False
        any_clip = False
        q1 = 0
        while True:
            q, q1 = _next_run(hot, q1)
            if q >= n_pieces:
                break
            b0, b1 = q * _PIECE, min(nb, q1 * _PIECE)
            for p in range(f):  # u[4b + p] = sum_a h[p + 4a] x[b - a] (x[b] is xp[b + T])
                # the residual is zero but where bent; the down filter reads up to T + 1 groups
                # either side of a run, never as far as the next run (pieces are longer than that)
                r[p, max(0, b0 - T - 1):min(nb, b1 + T)] = 0.0
                ub = u[p, b0:b1]
                ub[:] = 0.0
                a = 0
                while p + f * a < taps:
                    w = h[p + f * a]
                    seg = row[b0 + T - a:b1 + T - a]
                    for i in range(b1 - b0):
                        ub[i] += w * seg[i]
                    a += 1
            for qq in range(b0 // _PIECE, q1):
                c0, c1 = qq * _PIECE, min(nb, (qq + 1) * _PIECE)
                bent = False
                for p in range(f):
                    for b in range(c0, c1):
                        v = u[p, b]
                        av = abs(v)
                        if av > k:
                            y = k + width * math.tanh((av - k) / width)
                            r[p, b] = (y - av) if v > 0 else (av - y)
                            bent = True
                            if b >= T:
                                count += 1
                            if av / y > worst:
                                worst = av / y
                active[qq] = bent
                any_clip = any_clip or bent
        oc = out[ch]
        oc[:] = 0.0
        if not any_clip:
            continue
        # down: e[i] = 1/4 sum_j h[j] r[4 (i + T) - j]; j = 4a + d -> r[4 (i + T - a) - d]; output i
        # reads r[., i .. i + T], so only outputs up to T before a run of bent pieces can be nonzero
        q1 = 0
        while True:
            q, q1 = _next_run(active, q1)
            if q >= n_pieces:
                break
            i0, i1 = max(0, q * _PIECE - T), min(n, q1 * _PIECE)
            for j in range(taps):
                a, d = j // f, j % f
                w = h[j] / f
                src = r[0, i0 + T - a:i1 + T - a] if d == 0 else r[f - d, i0 + T - a - 1:i1 + T - a - 1]
                dst = oc[i0:i1]
                for i in range(i1 - i0):
                    dst[i] += w * src[i]
    return count, worst


def process(
    x: np.ndarray, sample_rate: int, params: ClipperParams, state: ClipperState | None = None
) -> tuple[np.ndarray, ClipperState]:
    """Clip ``(channels, samples)``; the output is delayed by :func:`latency_samples` (16 samples,
    plus the FIR's delay with ``split_hz``)."""
    x = np.asarray(x, dtype=np.float64)
    n_ch, n = x.shape
    split = params.split_hz > 0.0
    if split and params.split_hz > 0.45 * sample_rate:
        raise ParameterError(f"split_hz = {params.split_hz:g} is too high for {sample_rate} Hz audio")
    if state is None:
        state = ClipperState(x_hist=np.zeros((n_ch, 2 * _TAPS)))
        if split:
            state.split_hist = np.zeros((n_ch, 2 * split_delay_samples(params.split_hz, sample_rate)))
            state.clean_hist = np.zeros((n_ch, _TAPS))
    if split and n > _SPLIT_SUB_BLOCK:  # the split's filter works on pieces: its temporaries stay small
        out = np.empty((n_ch, n))
        for a in range(0, n, _SPLIT_SUB_BLOCK):
            out[:, a: a + _SPLIT_SUB_BLOCK], state = process(x[:, a: a + _SPLIT_SUB_BLOCK], sample_rate, params, state)
        return out, state
    g = 10.0 ** (params.drive_db / 20.0)
    c = 10.0 ** (params.ceiling_db / 20.0)
    k = c * 10.0 ** (-params.knee_db / 20.0)
    if split:
        h = lowpass_fir(params.split_hz, sample_rate)
        ext = np.concatenate((state.split_hist, x * g), axis=1)
        state.split_hist = ext[:, n:].copy()  # not a view: the block's arrays go when it does
        low, centre = split_low(ext, h, single=True)  # the band to clip and the input, both d late
        clean = np.concatenate((state.clean_hist, centre), axis=1)  # the input, d + T late
        state.clean_hist = clean[:, n:].copy()
        xp = np.concatenate((state.x_hist, low), axis=1)
    else:
        xp = np.concatenate((state.x_hist, x * g), axis=1)
    resid = np.empty((n_ch, n))
    if n:
        if state.work.shape[1] < n + _TAPS:
            state.work = np.empty((2, OVERSAMPLING, n + _TAPS))
        count, worst = _clip_kernel(xp, _filter(), k, c, resid, state.work[0], state.work[1])
    else:
        count, worst = 0, 1.0
    # the clean signal, delayed by T: x[i - T] is xp[:, i + T]
    y = (clean[:, :n] if split else xp[:, _TAPS: _TAPS + n]) + resid
    state.x_hist = xp[:, xp.shape[1] - 2 * _TAPS:]
    state.clipped_samples += int(count)
    state.total_samples += n * OVERSAMPLING * n_ch
    state.max_reduction_db = max(state.max_reduction_db, 20.0 * math.log10(worst))
    return y, state


def stats(state: object) -> dict[str, float]:
    """What the clip stage did: share of (4x) samples bent by the curve, largest reduction."""
    if not isinstance(state, ClipperState) or state.total_samples == 0:
        return {"clipped_pct": 0.0, "max_reduction_db": 0.0}
    return {"clipped_pct": round(100.0 * state.clipped_samples / state.total_samples, 3),
            "max_reduction_db": round(state.max_reduction_db, 2)}


SPEC = ProcessorSpec(
    kind="clipper",
    params_type=ClipperParams,
    process=process,
    latency_samples=latency_samples,
    native_fx="JS soft clipper with 4x FX oversampling (approximate; the exact curve is ReaMaster's own)",
)
