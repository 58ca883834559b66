"""True peak (ITU-R BS.1770-4 Annex 2 style) by polyphase oversampling.

The interpolator is exactly the filter ``scipy.signal.resample_poly(x, factor, 1)``
uses (Kaiser-windowed sinc, beta 5, 10 zero crossings each side), evaluated
polyphase without ever building the oversampled signal: memory stays ``O(n)``
and the oversampled copy exists only one short block at a time.

``true_peak_envelope`` gives, for each sample index ``n``, the largest absolute
value over all channels of the band-limited signal on ``[n, n + 1)``. The limiter
uses it as its detector; ``true_peak_dbtp`` is its maximum in dB.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

#: taps per polyphase branch (``2 * 10`` zero crossings, as resample_poly's default)
TAPS_PER_PHASE = 20
#: context the interpolator needs before / after a sample
PAST_SAMPLES = TAPS_PER_PHASE // 2 - 1  # 9
FUTURE_SAMPLES = TAPS_PER_PHASE // 2  # 10
_BLOCK = 2048


def kaiser_lowpass(numtaps: int, cutoff: float, *, beta: float = 5.0) -> np.ndarray:
    """Windowed-sinc low-pass with unit DC gain; ``cutoff`` as a fraction of Nyquist.

    The same design as ``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))``
    (kept here so the meter does not import scipy.signal, which is slow to load).
    """
    m = np.arange(numtaps) - (numtaps - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    taps: np.ndarray = h / h.sum()
    return taps


@functools.lru_cache(maxsize=8)
def polyphase_taps(factor: int) -> np.ndarray:
    """Branches 1..factor-1 of resample_poly's interpolator, shape ``(factor - 1, 20)``, float32.

    Row ``p - 1`` evaluates the signal at ``n + p / factor`` from ``x[n - 9 .. n + 10]``.
    Branch 0 is the sample itself and is not stored.
    """
    if factor < 2 or factor > 32:
        raise ValueError("oversampling factor must be 2..32")
    half_len = 10 * factor
    h = kaiser_lowpass(2 * half_len + 1, 1.0 / factor) * factor
    taps = np.empty((factor - 1, TAPS_PER_PHASE), dtype=np.float64)
    for p in range(1, factor):
        for t in range(TAPS_PER_PHASE):
            j = (PAST_SAMPLES - t) * factor + p
            taps[p - 1, t] = h[j + half_len] if abs(j) <= half_len else 0.0
    return np.ascontiguousarray(taps, dtype=np.float32)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _envelope_kernel(xp: np.ndarray, taps: np.ndarray, out: np.ndarray, first: int,
                     stop: int) -> None:  # pragma: no cover - jitted
    # xp: (C, B + 19) float32 with 9 samples of past and 10 of future context around the B outputs;
    # computes out[first:stop] (the range lets two threads share one contiguous array).
    n_ch = xp.shape[0]
    n_br, n_taps = taps.shape
    for start in range(first, stop, _BLOCK):
        nb = min(_BLOCK, stop - start)
        acc = np.empty(nb, dtype=np.float32)
        peak = np.zeros(nb, dtype=np.float32)
        for c in range(n_ch):
            row = xp[c, start : start + nb + n_taps - 1]
            for i in range(nb):
                v = abs(row[i + 9])
                if v > peak[i]:
                    peak[i] = v
            for p in range(n_br):
                for i in range(nb):
                    acc[i] = 0.0
                for t in range(n_taps):
                    w = taps[p, t]
                    seg = row[t : t + nb]
                    for i in range(nb):
                        acc[i] += w * seg[i]
                for i in range(nb):
                    v = abs(acc[i])
                    if v > peak[i]:
                        peak[i] = v
        for i in range(nb):
            out[start + i] = peak[i]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    # The kernel releases the GIL; two halves on two threads use both cores.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="truepeak")


def envelope_with_context(xp: np.ndarray, *, factor: int) -> np.ndarray:
    """Envelope of the samples ``xp[:, 9:-10]`` given 9 past and 10 future samples of context."""
    xp = np.ascontiguousarray(xp, dtype=np.float32)
    n_out = xp.shape[1] - (TAPS_PER_PHASE - 1)
    out = np.empty(max(n_out, 0), dtype=np.float32)
    taps = polyphase_taps(factor)
    if n_out >= 2 * _BLOCK:
        half = (n_out // 2 // _BLOCK) * _BLOCK
        job = _pool().submit(_envelope_kernel, xp, taps, out, half, n_out)
        _envelope_kernel(xp, taps, out, 0, half)
        job.result()
    elif n_out > 0:
        _envelope_kernel(xp, taps, out, 0, n_out)
    return out


def true_peak_envelope(x: np.ndarray, *, factor: int = 8, chunk: int = 1 << 18) -> np.ndarray:
    """Per-sample true-peak envelope (linear, float32, shape ``(samples,)``) of ``(channels, samples)``.

    The signal is taken as zero outside its ends (as a file played from silence).
    Works through the signal in chunks, so memory is a few chunk-sized buffers.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError("audio must be (channels, samples)")
    n_ch, n = x.shape
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        lo, hi = start - PAST_SAMPLES, stop + FUTURE_SAMPLES
        xp = np.zeros((n_ch, hi - lo), dtype=np.float32)
        src_lo, src_hi = max(lo, 0), min(hi, n)
        xp[:, src_lo - lo : src_hi - lo] = x[:, src_lo:src_hi]
        out[start:stop] = envelope_with_context(xp, factor=factor)
    return out


def to_db(value: float, floor_db: float = -200.0) -> float:
    return 20.0 * math.log10(value) if value > 10 ** (floor_db / 20) else floor_db


def true_peak_dbtp(x: np.ndarray, *, factor: int = 4) -> float:
    """True peak in dBTP (at least 4x oversampling per BS.1770-4; 8x for ceiling checks)."""
    if x.shape[-1] == 0:
        return -200.0
    return to_db(float(true_peak_envelope(x, factor=factor).max()))


def sample_peak_db(x: np.ndarray) -> float:
    """Largest absolute sample value in dBFS."""
    if x.size == 0:
        return -200.0
    return to_db(float(np.max(np.abs(x))))
