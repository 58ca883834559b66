"""Compressor side chain: level detector, gain computer and gain smoothing (streaming).

The design follows Giannoulis, Massberg & Reiss, "Digital dynamic range compressor
design - a tutorial and analysis", JAES 60(6), 2012: a log-domain side chain

    detector level (dB) -> static gain computer (soft knee) -> gain reduction
    smoothed in dB by the "smooth decoupled" peak detector (attack/release one-poles).

* **Detector**: stereo-linked. Per sample it takes the *largest* square over the
  channels (a sound panned to one side is held to the threshold as firmly as the same
  sound in the centre; nothing in one channel escapes the link), then averages it over
  a sliding rectangular window of ``rms_ms`` (ReaComp's "RMS size"). 0 ms (a window of
  one sample) is peak detection. The level is plain RMS: a full-scale sine reads
  -3.01 dBFS in RMS mode and peaks at 0 dBFS in peak mode.
* **Times** ``attack_ms``/``release_ms`` are one-pole time constants: the time a step
  needs to reach 1 - 1/e (63.2 %) of its final value. In the decoupled form the
  release one-pole feeds the attack one-pole, so the effective release is slightly
  slower (by about ``attack_ms``).
* The kernels are numba functions; the state is carried in small float arrays, so
  block-wise processing gives bit-identical results to one whole call.

:func:`compute_gain_db` returns the gain in dB per sample (<= 0); :func:`compress`
applies it to every channel (stereo link) in the same pass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal, TypedDict

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from ..errors import ParameterError

# Gain reductions below this (dB) are flushed to 0: keeps the decaying recursion out
# of subnormal numbers (slow on x86) and makes "no compression" exactly unity gain.
_FLUSH_DB = 1e-12

# EnvelopeState.scalars layout
_SUM, _IDX, _REL, _GR, _POS = 0, 1, 2, 3, 4
_N_SCALARS = 5

# Samples per inner block: the block's signal and scratch stay in cache, and the
# per-sample maths runs as plain vectorisable loops between the two serial ones.
_BLOCK = 2048



class _JitOptions(TypedDict):
    cache: bool
    nogil: bool
    fastmath: bool
    error_model: Literal["python", "numpy"]


# error_model="numpy": no ZeroDivisionError checks, which would stop vectorisation.
_JIT: _JitOptions = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


@dataclasses.dataclass(frozen=True)
class EnvelopeState:
    """Side-chain memory between blocks (treat as immutable; kernels work on copies).

    ``ring``: the last ``window`` detector powers (squared amplitude).
    ``scalars``: [running sum of ring, ring write index, release-stage gain
    reduction dB (>= 0), smoothed gain reduction dB (>= 0), stream position mod 64].
    """

    ring: np.ndarray
    scalars: np.ndarray

    @property
    def window(self) -> int:
        return int(self.ring.shape[0])

    @property
    def gain_reduction_db(self) -> float:
        """Current smoothed gain reduction (dB, >= 0), e.g. for a meter."""
        return float(self.scalars[_GR])


def one_pole_coefficient(time_ms: float, sample_rate: int) -> float:
    """Pole of a one-pole smoother whose step response reaches 1 - 1/e after ``time_ms`` (0 = instant)."""
    if time_ms <= 0.0:
        return 0.0
    return math.exp(-1000.0 / (time_ms * sample_rate))


def rms_window_samples(rms_ms: float, sample_rate: int) -> int:
    """Length in samples of the RMS window (>= 1; 1 means peak detection)."""
    return max(1, int(round(rms_ms * 1e-3 * sample_rate)))


MIN_KNEE_DB = 1e-6


def effective_knee_db(knee_db: float) -> float:
    """Knees narrower than a micro-dB are hard knees. (Subnormal widths otherwise divide into
    infinities, and read as zero on threads whose CPU flushes denormals: the same settings
    would compress differently depending on what else ran in the process.)"""
    return float(knee_db) if knee_db >= MIN_KNEE_DB else 0.0


def static_gain_db(level_db: float | np.ndarray, *, threshold_db: float, ratio: float, knee_db: float) -> np.ndarray:
    """Static gain (dB, <= 0) of the gain computer for detector levels ``level_db`` (dB).

    ``ratio`` >= 1 (``inf`` = limiting); ``knee_db`` >= 0 is the full knee width,
    centred on the threshold, with the quadratic knee of Giannoulis et al. eq. (4).
    """
    x = np.asarray(level_db, dtype=np.float64)
    knee_db = effective_knee_db(knee_db)
    slope = 1.0 / ratio - 1.0
    d = x - threshold_db
    g = np.where(2.0 * d >= knee_db, slope * d, 0.0)
    if knee_db > 0.0:
        t = d + 0.5 * knee_db
        g = np.where(np.abs(2.0 * d) < knee_db, slope * t * t / (2.0 * knee_db), g)
    return g


# --- fast scalar log/exp ------------------------------------------------------------------------
# libm's log/exp are opaque calls (~4-8 ns each) that also stop vectorisation; these
# bit-level versions are accurate to ~1e-15 relative and vectorise.

@intrinsic
def _f64_bits(typingctx: object,
        x: object) -> tuple[object, Callable[..., object]]:  # pragma: no cover - compiled
    def codegen(context: Any, builder: Any, signature: object, args: Any) -> object:
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx: object,
        x: object) -> tuple[object, Callable[..., object]]:  # pragma: no cover - compiled
    def codegen(context: Any, builder: Any, signature: object, args: Any) -> object:
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@intrinsic
def _ashr52(typingctx: object,
        x: object) -> tuple[object, Callable[..., object]]:  # pragma: no cover - compiled
    # plain LLVM shift: numba's ">>" guards against shift counts >= 64, which blocks vectorisation
    def codegen(context: Any, builder: Any, signature: object, args: Any) -> object:
        return builder.ashr(args[0], context.get_constant(types.int64, 52))

    return types.int64(types.int64), codegen


@intrinsic
def _shl52(typingctx: object,
        x: object) -> tuple[object, Callable[..., object]]:  # pragma: no cover - compiled
    def codegen(context: Any, builder: Any, signature: object, args: Any) -> object:
        return builder.shl(args[0], context.get_constant(types.int64, 52))

    return types.int64(types.int64), codegen


@intrinsic
def _mantissa_bits(typingctx: object,
        x: object) -> tuple[object, Callable[..., object]]:  # pragma: no cover - compiled
    def codegen(context: Any, builder: Any, signature: object, args: Any) -> object:
        return builder.and_(args[0], context.get_constant(types.int64, 0x000FFFFFFFFFFFFF))

    return types.int64(types.int64), codegen


_LN2 = math.log(2.0)
_DB_PER_LN = 10.0 / math.log(10.0)  # 10*log10(v) == _DB_PER_LN * ln(v)
_LOG2_10_OVER_20 = math.log2(10.0) / 20.0  # 10**(g/20) == 2**(_LOG2_10_OVER_20 * g)
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # float64 bits of sqrt(0.5)
_ROUND_MAGIC_BITS = 0x4338000000000000  # bits of 1.5 * 2**52: int -> float without cvt
_ROUND_MAGIC = 6755399441055744.0


@numba.njit(inline="always", **_JIT)
def _fast_ln(v: float) -> float:  # pragma: no cover - compiled
    """Natural log of a positive normal float64 (abs. error < 4e-15)."""
    # v = 2**e * m, m in [sqrt(0.5), sqrt(2)); ln m = 2 atanh(z), z = (m-1)/(m+1), |z| < 0.172
    # numba's stub types an intrinsic's call with the typing context first; compiled code passes only x
    ix = _f64_bits(v) - _SQRT_HALF_BITS  # type: ignore[call-arg]
    e = _bits_f64(_ROUND_MAGIC_BITS + _ashr52(ix)) - _ROUND_MAGIC
    m = _bits_f64(_mantissa_bits(ix) + _SQRT_HALF_BITS)
    z = (m - 1.0) / (m + 1.0)
    z2 = z * z
    p = 1.0 / 17.0
    p = p * z2 + 1.0 / 15.0
    p = p * z2 + 1.0 / 13.0
    p = p * z2 + 1.0 / 11.0
    p = p * z2 + 1.0 / 9.0
    p = p * z2 + 1.0 / 7.0
    p = p * z2 + 1.0 / 5.0
    p = p * z2 + 1.0 / 3.0
    p = p * z2 + 1.0
    return e * _LN2 + 2.0 * z * p


@numba.njit(inline="always", **_JIT)
def _fast_exp2(y: float) -> float:  # pragma: no cover - compiled
    """2**y for -1000 <= y <= 1000 (rel. error < 1e-14); exactly 1.0 for y == 0."""
    n = math.floor(y + 0.5)
    t = (y - n) * _LN2  # |t| <= 0.347
    p = 1.0 / 39916800.0
    p = p * t + 1.0 / 3628800.0
    p = p * t + 1.0 / 362880.0
    p = p * t + 1.0 / 40320.0
    p = p * t + 1.0 / 5040.0
    p = p * t + 1.0 / 720.0
    p = p * t + 1.0 / 120.0
    p = p * t + 1.0 / 24.0
    p = p * t + 1.0 / 6.0
    p = p * t + 0.5
    p = p * t + 1.0
    p = p * t + 1.0
    return p * _bits_f64(_shl52(np.int64(n) + 1023))  # type: ignore[call-arg]  # as in _fast_ln


# --- kernels ------------------------------------------------------------------------------------

@numba.njit(**_JIT)
def _side_chain_block(x: np.ndarray, start: int, stop: int, ring: np.ndarray, scal: np.ndarray, p_lo: float,
                      thr_db: float, knee_db: float, slope: float, a_att: float, a_rel: float,
                      buf: np.ndarray, g: np.ndarray) -> None:  # pragma: no cover - compiled
    """Gain (dB) for samples start..stop of x into g[0:stop-start]; state in ring/scal."""
    n_ch = x.shape[0]
    m = stop - start
    # detector power, stereo-linked by the channel maximum
    for k in range(m):
        v = np.float64(x[0, start + k])
        buf[k] = v * v
    for c in range(1, n_ch):
        for k in range(m):
            v = np.float64(x[c, start + k])
            buf[k] = max(buf[k], v * v)
    # sliding rectangular mean (RMS window); serial
    window = ring.shape[0]
    if window > 1:
        inv_window = 1.0 / window
        s = scal[_SUM]
        j = int(scal[_IDX])
        for k in range(m):
            p = buf[k]
            s += p - ring[j]
            ring[j] = p
            j += 1
            if j == window:
                # re-sum once per window so rounding in the running sum cannot drift
                j = 0
                s = 0.0
                for q in range(window):
                    s += ring[q]
            buf[k] = s * inv_window
        scal[_SUM] = s
        scal[_IDX] = j
    # idle block (nothing above the knee, no gain reduction pending): unity gain, same
    # numbers as the full path below, at a fraction of the cost
    loudest = 0.0
    for k in range(m):
        loudest = max(loudest, buf[k])
    if loudest <= p_lo and scal[_REL] == 0.0 and scal[_GR] == 0.0:
        g[:m] = 0.0
        scal[_POS] = (int(scal[_POS]) + m) & 63
        return
    # static gain computer -> wanted gain reduction in dB (>= 0)
    k_slope = -slope
    half_knee = 0.5 * knee_db
    inv_two_knee = 0.5 / knee_db if knee_db > 0.0 else 0.0
    for k in range(m):
        ms = buf[k]
        d = _DB_PER_LN * _fast_ln(max(ms, p_lo)) - thr_db
        t = max(d + half_knee, 0.0)
        target = k_slope * d if 2.0 * d >= knee_db else k_slope * t * t * inv_two_knee
        buf[k] = target if ms > p_lo else 0.0
    # smooth decoupled peak detector (Giannoulis et al. eq. 17) in the dB domain; serial
    rel = scal[_REL]
    gr = scal[_GR]
    pos = int(scal[_POS])
    b_att = 1.0 - a_att
    b_rel = 1.0 - a_rel
    for k in range(m):
        target = buf[k]
        rel = max(target, a_rel * rel + b_rel * target)
        gr = a_att * gr + b_att * rel
        # Flushing every sample would lengthen the recursion's latency chain; every
        # 64th sample of the stream (block-split independent) is enough against subnormals.
        if ((pos + k) & 63) == 0:
            if rel < _FLUSH_DB:
                rel = 0.0
            if gr < _FLUSH_DB:
                gr = 0.0
        g[k] = -gr if gr >= _FLUSH_DB else 0.0
    scal[_REL] = rel
    scal[_GR] = gr
    scal[_POS] = (pos + m) & 63


@numba.njit(**_JIT)
def _apply_block(x: np.ndarray, start: int, stop: int, g: np.ndarray, wet: float, dry: float, y: np.ndarray,
                 accumulate: bool) -> None:  # pragma: no cover - compiled
    m = stop - start
    for k in range(m):
        # g >= -6000 dB keeps 2**y in the normal float range; such a gain is silence anyway
        g[k] = dry + wet * _fast_exp2(_LOG2_10_OVER_20 * max(g[k], -6000.0))
    for c in range(x.shape[0]):
        if accumulate:
            for k in range(m):
                y[c, start + k] += g[k] * x[c, start + k]
        else:
            for k in range(m):
                y[c, start + k] = g[k] * x[c, start + k]


@numba.njit(**_JIT)
def _kernel(x: np.ndarray, ring: np.ndarray, scal: np.ndarray, p_lo: float, thr_db: float, knee_db: float,
            slope: float, a_att: float, a_rel: float, g_out: np.ndarray, wet: float, dry: float, y: np.ndarray,
            mode: int) -> None:  # pragma: no cover - compiled
    """mode 0: gain in dB into g_out (full length); 1: y = gain*x; 2: y += gain*x."""
    n = x.shape[1]
    buf = np.empty(_BLOCK, dtype=np.float64)
    g = np.empty(_BLOCK, dtype=np.float64)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        _side_chain_block(x, start, stop, ring, scal, p_lo, thr_db, knee_db, slope, a_att, a_rel, buf, g)
        if mode == 0:
            g_out[start:stop] = g[: stop - start]
        else:
            _apply_block(x, start, stop, g, wet, dry, y, mode == 2)


# --- Python API ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SideChain:
    """Side-chain settings in kernel form; build with :func:`side_chain`."""

    window: int  # RMS window in samples (1 = peak)
    p_lo: float  # detector power at the knee's lower edge; at or below it no gain reduction
    threshold_db: float
    knee_db: float
    slope: float  # 1/ratio - 1, in [-1, 0]
    a_att: float
    a_rel: float


def side_chain(
    sample_rate: int,
    *,
    threshold_db: float,
    ratio: float,
    knee_db: float,
    attack_ms: float,
    release_ms: float,
    rms_ms: float,
) -> SideChain:
    """Kernel constants. ``ratio`` in [1, inf] (inf = limiting); times and knee >= 0."""
    if not ratio >= 1.0:
        raise ParameterError(f"ratio = {ratio:g} must be at least 1")
    if not min(knee_db, attack_ms, release_ms, rms_ms) >= 0.0:
        raise ParameterError("knee_db, attack_ms, release_ms and rms_ms must not be negative")
    knee_db = effective_knee_db(knee_db)
    return SideChain(
        window=rms_window_samples(rms_ms, sample_rate),
        p_lo=10.0 ** ((threshold_db - 0.5 * knee_db) / 10.0),
        threshold_db=float(threshold_db),
        knee_db=float(knee_db),
        slope=1.0 / ratio - 1.0,
        a_att=one_pole_coefficient(attack_ms, sample_rate),
        a_rel=one_pole_coefficient(release_ms, sample_rate),
    )


def initial_state(sc: SideChain) -> EnvelopeState:
    """State for a fresh start: silence before the first sample, no gain reduction."""
    return EnvelopeState(ring=np.zeros(sc.window, dtype=np.float64),
                         scalars=np.zeros(_N_SCALARS, dtype=np.float64))


def _prepare(x: np.ndarray, sc: SideChain,
             state: EnvelopeState | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if x.ndim != 2:
        raise ParameterError(f"signal must be 2-D (channels, samples), got shape {x.shape}")
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    if state is None:
        state = initial_state(sc)
    elif state.window != sc.window:
        raise ParameterError("envelope state does not match rms_ms and sample_rate")
    return x, state.ring.copy(), state.scalars.copy()


def compute_gain_db(
    x: np.ndarray, sc: SideChain, state: EnvelopeState | None = None
) -> tuple[np.ndarray, EnvelopeState]:
    """Per-sample smoothed gain (dB, <= 0) of ``x`` (channels, samples), one curve for all channels.

    Returns the gain (float64, one value per sample) and the state for the next block;
    the passed state is not modified.
    """
    x, ring, scal = _prepare(x, sc, state)
    g = np.empty(x.shape[1], dtype=np.float64)
    _kernel(x, ring, scal, sc.p_lo, sc.threshold_db, sc.knee_db, sc.slope, sc.a_att, sc.a_rel,
            g, 0.0, 0.0, np.empty((1, 1)), 0)
    return g, EnvelopeState(ring=ring, scalars=scal)


def compress(
    x: np.ndarray,
    sc: SideChain,
    state: EnvelopeState | None = None,
    *,
    wet_lin: float = 1.0,
    dry_lin: float = 0.0,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, EnvelopeState]:
    """``(dry_lin + wet_lin * 10**(gain_db/20)) * x`` with the side-chain gain of ``x``.

    Result is float64 (channels, samples). With ``out`` (float64, C-contiguous, same
    shape) the result is *added* to ``out`` and ``out`` is returned (used to sum bands).
    Returns the output and the state for the next block.
    """
    x, ring, scal = _prepare(x, sc, state)
    if out is None:
        y, mode = np.empty(x.shape, dtype=np.float64), 1
    else:
        if out.shape != x.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ParameterError("out must be a C-contiguous float64 array shaped like the signal")
        y, mode = out, 2
    _kernel(x, ring, scal, sc.p_lo, sc.threshold_db, sc.knee_db, sc.slope, sc.a_att, sc.a_rel,
            np.empty(0), float(wet_lin), float(dry_lin), y, mode)
    return y, EnvelopeState(ring=ring, scalars=scal)
