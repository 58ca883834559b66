"""True peak (ITU-R BS.1770-4 Annex 2 style) by polyphase oversampling.

The interpolator is a Kaiser-windowed sinc (beta 5) with 24 zero crossings each side, the
design ``scipy.signal.resample_poly(x, factor, 1, window=("kaiser", 5.0))`` uses with
``half_len = 24 * factor`` (its default, 10 zero crossings, under-reads content above 0.8 of
Nyquist by up to a dB and ripples by 0.04 dB; this one is within 0.02 dB of an ideal
fractional delay up to 0.9 of Nyquist), evaluated polyphase without ever building the
oversampled signal: memory stays ``O(n)`` and the oversampled copy exists only one short
block at a time.

``true_peak_envelope`` gives, for each sample index ``n``, the largest absolute
value over all channels of the band-limited signal on ``[n, n + 1)``. The limiter
uses it as its detector; ``true_peak_dbtp`` is its maximum in dB.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..streams import one_core

#: taps per polyphase branch (``2 * 24`` zero crossings)
TAPS_PER_PHASE = 48
ZERO_CROSSINGS = TAPS_PER_PHASE // 2
#: context the interpolator needs before / after a sample
PAST_SAMPLES = TAPS_PER_PHASE // 2 - 1  # 23
FUTURE_SAMPLES = TAPS_PER_PHASE // 2  # 24
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
    """Branches 1..factor-1 of the interpolator, shape ``(factor - 1, 48)``, float32.

    Row ``p - 1`` evaluates the signal at ``n + p / factor`` from ``x[n - 23 .. n + 24]``.
    Branch 0 is the sample itself and is not stored.
    """
    if factor < 2 or factor > 32:
        raise ValueError("oversampling factor must be 2..32")
    half_len = ZERO_CROSSINGS * factor
    h = kaiser_lowpass(2 * half_len + 1, 1.0 / factor) * factor
    taps = np.empty((factor - 1, TAPS_PER_PHASE), dtype=np.float64)
    for p in range(1, factor):
        for t in range(TAPS_PER_PHASE):
            j = (PAST_SAMPLES - t) * factor + p
            taps[p - 1, t] = h[j + half_len] if abs(j) <= half_len else 0.0
    return np.ascontiguousarray(taps, dtype=np.float32)


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _fir(acc: np.ndarray, row: np.ndarray, taps: np.ndarray, m: int) -> None:  # pragma: no cover - jitted
    # acc[:m] = sum over t of taps[t] * row[t : t + m], zero taps skipped. Four taps per pass over
    # acc (1.5x faster than one: a quarter of the loads and stores of acc); fast-math turns the
    # four into the same chain of fused multiply-adds as one tap per pass, so the sums are the same.
    for s in range(m):
        acc[s] = 0.0
    n = taps.shape[0]
    t = 0
    while t + 4 <= n:
        w0, w1, w2, w3 = taps[t], taps[t + 1], taps[t + 2], taps[t + 3]
        if w0 != 0.0 or w1 != 0.0 or w2 != 0.0 or w3 != 0.0:
            s0, s1, s2, s3 = row[t: t + m], row[t + 1: t + 1 + m], row[t + 2: t + 2 + m], row[t + 3: t + 3 + m]
            for s in range(m):
                acc[s] += (w0 * s0[s] + w1 * s1[s]) + (w2 * s2[s] + w3 * s3[s])
        t += 4
    while t < n:
        wt = taps[t]
        if wt != 0.0:
            seg = row[t: t + m]
            for s in range(m):
                acc[s] += wt * seg[s]
        t += 1


@numba.njit(cache=True, nogil=True, fastmath=True)
def _envelope_kernel(xp: np.ndarray, taps: np.ndarray, out: np.ndarray, first: int,
                     stop: int) -> None:  # pragma: no cover - jitted
    # xp: (C, B + 47) float32 with 23 samples of past and 24 of future context around the B outputs;
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
                v = abs(row[i + PAST_SAMPLES])
                if v > peak[i]:
                    peak[i] = v
            for p in range(n_br):
                _fir(acc, row, taps[p], nb)
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


def envelope_with_context(xp: np.ndarray, *, factor: int, two_cores: bool = True) -> np.ndarray:
    """Envelope of the samples ``xp[:, 23:-24]`` given 23 past and 24 future samples of context.
    ``two_cores=False`` keeps it on the calling thread (a caller that runs it beside other work)."""
    xp = np.ascontiguousarray(xp, dtype=np.float32)
    n_out = xp.shape[1] - (TAPS_PER_PHASE - 1)
    out = np.empty(max(n_out, 0), dtype=np.float32)
    _on_two_cores(_envelope_kernel, (xp, polyphase_taps(factor), out), n_out, two_cores=two_cores)
    return out


def _on_two_cores(kernel: Callable[..., None], args: tuple[object, ...], n_out: int, *,
                  two_cores: bool = True) -> None:
    """``kernel(*args, first, stop)`` over ``0..n_out``: in two halves on two threads (the kernels
    release the GIL) when there is enough work and the process may use a second core."""
    if two_cores and n_out >= 2 * _BLOCK and not one_core():
        half = (n_out // 2 // _BLOCK) * _BLOCK
        job = _pool().submit(kernel, *args, half, n_out)
        kernel(*args, 0, half)
        job.result()
    elif n_out > 0:
        kernel(*args, 0, n_out)


#: samples per piece the true-peak meter considers skipping
TRUE_PEAK_PIECE = 4096


class TruePeakMeter:
    """The largest true peak (dBTP) of a stream, equal to :func:`true_peak_dbtp` of the whole signal.

    The interpolator's output can never exceed ``gain`` (the largest sum of |taps| over the
    polyphase branches, 2.8) times the largest |sample| in its reach, nor a bound the caller
    knows (``feed(bound=...)``), so pieces of ``TRUE_PEAK_PIECE`` samples whose bound stays at or
    under the peak already found are not interpolated at all (``skipped`` counts them); the
    loudest pieces are measured first.
    """

    def __init__(self, channels: int, *, factor: int = 4, lead_in: int = 0, two_cores: bool = True) -> None:
        """``lead_in``: samples fed before the signal starts (a processor's delay), not measured.
        ``two_cores=False``: interpolate on the feeding thread only, for a meter that runs beside
        other work which already keeps both cores busy (splitting then only adds hand-offs)."""
        self.factor = factor
        self.two_cores = two_cores
        self.context = PAST_SAMPLES + FUTURE_SAMPLES
        self.gain = max(1.0, float(np.abs(polyphase_taps(factor)).sum(axis=1).max()))
        self._hist = np.zeros((channels, self.context), dtype=np.float32)
        self._lead = FUTURE_SAMPLES + lead_in  # envelope values before the first sample, not part of the signal
        self._bound_hist: np.ndarray | None = None
        self.peak = 0.0
        self.pieces = 0
        self.skipped = 0

    def feed(self, x: np.ndarray, *, bound: np.ndarray | None = None) -> None:
        """Take the next ``(channels, n)`` block. ``bound`` (n,), when the caller knows one (the
        limiter, from its own detector), is an upper bound of the envelope at each sample of ``x``
        (inf where unknown); give it with every block or with none."""
        xp = np.concatenate((self._hist, np.asarray(x, dtype=np.float32)), axis=1)
        self._hist = xp[:, xp.shape[1] - self.context:]
        known = None
        if bound is not None:
            if self._bound_hist is None:
                self._bound_hist = np.full(self.context, np.inf, dtype=np.float32)
            known = np.concatenate((self._bound_hist, np.asarray(bound, dtype=np.float32)))
            self._bound_hist = known[known.shape[0] - self.context:]
        n_out = xp.shape[1] - self.context  # envelope positions this block can settle
        if n_out <= 0:
            return
        mag = np.abs(xp).max(axis=0)
        first = self._lead  # positions before the signal's start are not measured
        self._lead = max(0, self._lead - n_out)
        if first >= n_out:
            return
        # envelope position j is the band-limited signal on [xp j+23, j+24), computed from xp[j .. j+47];
        # the sample itself is one of its points, so the samples give a lower bound for free
        half = self.context // 2
        self.peak = max(self.peak, float(mag[first + half: n_out + half].max()))
        starts = np.arange(first, n_out, TRUE_PEAK_PIECE)
        ends = np.minimum(starts + TRUE_PEAK_PIECE, n_out)
        reach = np.maximum.reduceat(mag, starts)  # mag[start, next start); the last runs to the end
        # mag[end, end + context) of every piece: the even entries of a reduceat over those bounds
        # (the last end + context is mag's end, where reduceat's last segment stops anyway)
        tails = np.maximum.reduceat(mag, np.stack((ends, ends + self.context), axis=1).ravel()[:-1])[::2]
        bound = np.maximum(reach, tails) * (self.gain * (1.0 + 1e-5))  # float32 rounding margin
        if known is not None:
            bound = np.minimum(bound, np.maximum.reduceat(known[half: n_out + half], starts))
        # the loudest piece first (it usually sets the peak), then every piece that could still pass
        # it, adjacent ones interpolated in one call (fewer, longer calls use both cores better)
        top = int(np.argmax(bound))
        measured = 0
        todo = bound > self.peak
        if todo[top]:
            self._measure(xp, int(starts[top]), int(ends[top]))
            measured += 1
            todo[top] = False
            todo &= bound > self.peak
        measured += int(todo.sum())
        self.pieces += len(bound)
        self.skipped += len(bound) - measured
        i = 0
        while i < len(todo):
            if not todo[i]:
                i += 1
                continue
            j = i
            while j < len(todo) and todo[j]:
                j += 1
            self._measure(xp, int(starts[i]), int(ends[j - 1]))
            i = j

    def _measure(self, xp: np.ndarray, s0: int, e0: int) -> None:
        env = envelope_with_context(xp[:, s0:e0 + self.context], factor=self.factor, two_cores=self.two_cores)
        self.peak = max(self.peak, float(env.max()))

    def finish(self) -> float:
        """Flushes the last samples' reach; returns the true peak in dBTP."""
        unknown = np.full(FUTURE_SAMPLES, np.inf, dtype=np.float32) if self._bound_hist is not None else None
        self.feed(np.zeros((self._hist.shape[0], FUTURE_SAMPLES), dtype=np.float32), bound=unknown)
        return to_db(self.peak)


def true_peak_envelope(x: np.ndarray, *, factor: int = 8, chunk: int = 1 << 18) -> np.ndarray:
    """Per-sample true-peak envelope (linear, float32, shape ``(samples,)``) of ``(channels, samples)``.

    The signal is taken as zero outside its ends (as a file played from silence).
    Works through the signal in chunks, so memory is a few chunk-sized buffers.
    """
    return _in_chunks(x, PAST_SAMPLES, FUTURE_SAMPLES, chunk, lambda xp: envelope_with_context(xp, factor=factor))


def _in_chunks(x: np.ndarray, past: int, future: int, chunk: int,
               envelope: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``envelope`` (of a chunk with ``past`` / ``future`` samples of context) over a whole
    ``(channels, samples)`` signal taken as zero outside its ends, a chunk at a time."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError("audio must be (channels, samples)")
    n_ch, n = x.shape
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        lo, hi = start - past, stop + future
        xp = np.zeros((n_ch, hi - lo), dtype=np.float32)
        src_lo, src_hi = max(lo, 0), min(hi, n)
        xp[:, src_lo - lo: src_hi - lo] = x[:, src_lo:src_hi]
        out[start:stop] = envelope(xp)
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


# --- the limiter's detector: at least what every meter a user checks with reads ---------------------
#
# Meters disagree by a tenth of a dB on treble-heavy material (measured, tests/test_truepeak.py):
# libebur128's 4x interpolator (49-tap Hann-windowed sinc, not normalised) reads up to about
# +0.1 dB over the ideal band-limited peak around 15-17 kHz, while resample_poly's short 8x
# filter (the meter above) under-reads content above 0.8 of Nyquist by up to a dB and its 8x
# grid misses the crest of a 20 kHz burst by 0.14 dB. The detector therefore takes, per sample,
# the largest of
#   * a near-ideal 8x interpolator: Kaiser (beta 5) sinc with 24 zero crossings each side, whose
#     every branch is within 0.02 dB of an ideal fractional delay up to 0.9 of Nyquist, with a
#     parabolic refinement of each local maximum on the 8x grid (removes the grid miss);
#   * libebur128's own interpolator, emulated tap for tap at the factor it uses for the rate
#     (4x below 96 kHz, 2x below 192 kHz, none above).
# What remains (branch error, content above 0.9 of Nyquist, other meters such as ffmpeg's
# swresample) is measured against those meters and an ideal 16x reference; the limiter's margin
# (dsp.process.limiter.MARGIN_DB) comes from that measurement.

DETECTOR_FACTOR = 8
DETECTOR_TAPS = TAPS_PER_PHASE  # the meter's interpolator, 8x
#: context the detector needs before / after a sample (one extra each side for the refinement)
DETECTOR_PAST = DETECTOR_TAPS // 2  # 24
DETECTOR_FUTURE = DETECTOR_TAPS // 2 + 1  # 25
_DETECTOR_WIDTH = DETECTOR_TAPS  # the kernel's tap window, x[n - 23 .. n + 24]
_EBU_TAPS = 49


def ebur128_factor(sample_rate: int) -> int:
    """Oversampling libebur128 uses for its true peak at ``sample_rate`` (1 = none)."""
    return 4 if sample_rate < 96000 else 2 if sample_rate < 192000 else 1


def ebur128_branches(factor: int) -> np.ndarray:
    """libebur128's interpolator (``interp_create(49, factor)``) as branches on the detector's
    tap window: row ``p - 1`` gives the value at ``n + p / factor`` from ``x[n - 23 .. n + 24]``."""
    j = np.arange(_EBU_TAPS)
    m = j - (_EBU_TAPS - 1) / 2.0
    c = np.where(np.abs(m) > 1e-9, np.sinc(m / factor), 1.0) * 0.5 * (1 - np.cos(2 * np.pi * j / (_EBU_TAPS - 1)))
    # y[k] = sum_j c[j] up[k - j]; up[q * factor] = x[q]; the filter delays by 24 up-samples, so
    # the value at time n + p/factor is y[(n + delay_in) * factor + p] with delay_in = 24 / factor
    delay = (_EBU_TAPS - 1) // 2
    rows = np.zeros((factor - 1, _DETECTOR_WIDTH))
    for p in range(1, factor):
        k = delay + p  # up-sample index relative to n * factor
        for jj in range(_EBU_TAPS):
            q = k - jj  # must be a multiple of factor: input sample n + q / factor
            if q % factor == 0:
                t = q // factor + (DETECTOR_TAPS // 2 - 1)  # column of x[n + q/factor]
                rows[p - 1, t] += c[jj]
    return rows


@functools.lru_cache(maxsize=8)
def detector_taps(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ideal, ebu)``: the near-ideal 8x branches ``(7, 48)`` and libebur128's ``(factor-1, 48)``,
    float64, columns over ``x[n - 23 .. n + 24]``."""
    f = DETECTOR_FACTOR
    half = DETECTOR_TAPS * f // 2
    h = kaiser_lowpass(2 * half + 1, 1.0 / f) * f  # the meter's filter at 8x (polyphase_taps(8))
    ideal = np.zeros((f - 1, DETECTOR_TAPS))
    for p in range(1, f):
        for t in range(DETECTOR_TAPS):
            j = p - (t - (DETECTOR_TAPS // 2 - 1)) * f
            if abs(j) <= half:
                ideal[p - 1, t] = h[j + half]
    ebu_f = ebur128_factor(sample_rate)
    ebu = ebur128_branches(ebu_f) if ebu_f > 1 else np.zeros((0, DETECTOR_TAPS))
    return np.ascontiguousarray(ideal, dtype=np.float32), np.ascontiguousarray(ebu, dtype=np.float32)


#: how far a parabolic refinement can lift a grid value ``b`` with neighbours ``a, c`` in ``[0, b]``:
#: ``b + (b - a - (b - c))**2 / (8 * (2b - a - c)) <= b + (2b - a - c) / 8 <= 1.25 b``
_REFINE_BOUND = 1.25
#: float32 rounding allowance on the bounds that decide what may be skipped
_BOUND_SLACK = 1.0 + 1e-4
#: samples per piece the detector screens (and interpolates, when the screen cannot rule it out)
_SCREEN_PIECE = 256
#: the 2x screen's four-point Lagrange interpolation, nodes at -1/2, 0, 1/2, 1 of a sample from
#: the reading's sample (0, 1/2, 1, 3/2 past the half-way point): the most its weights add up to
_LAGRANGE_L1 = 1.25


def _lagrange(t: float, nodes: tuple[float, ...]) -> np.ndarray:
    return np.array([np.prod([(t - b) / (a - b) for j, b in enumerate(nodes) if j != i]) for i, a in enumerate(nodes)])


def _window_taps(row: np.ndarray, k: int) -> np.ndarray:
    """Taps of a branch reading ``k`` samples later (``row``'s columns over ``x[n - 23 .. n + 24]``)
    on the window ``x[n - 24 .. n + 25]``."""
    v = np.zeros(row.shape[0] + 2)
    v[1 + k: 1 + k + row.shape[0]] = row
    return v


def _sample_taps(width: int, k: int) -> np.ndarray:
    """``x[n + k]`` on the window ``x[n - 24 .. n + 25]`` (``width``: the branches' tap count)."""
    v = np.zeros(width + 2)
    v[width // 2 + k] = 1.0
    return v


def _screen_residual(rows: np.ndarray, half: np.ndarray, factor: int) -> float:
    """The largest L1 norm, over the branches ``rows`` (readings at ``n + p / factor``), of the
    branch minus its four-point Lagrange estimate from the 2x grid (the samples and ``half``'s
    readings at ``n - 1/2 .. n + 3/2``). A reading is then at most ``_LAGRANGE_L1`` x the largest
    |value| of those grid points plus this x the largest |sample| in ``x[n - 24 .. n + 25]``."""
    w = rows.shape[1]
    grid = {-0.5: _window_taps(half, -1), 0.0: _sample_taps(w, 0), 0.5: _window_taps(half, 0),
            1.0: _sample_taps(w, 1), 1.5: _window_taps(half, 1)}
    worst = 0.0
    for p in range(rows.shape[0]):
        t = (p + 1) / factor
        nodes = (-0.5, 0.0, 0.5, 1.0) if t <= 0.5 else (0.0, 0.5, 1.0, 1.5)
        estimate = sum(wi * grid[a] for wi, a in zip(_lagrange(t, nodes), nodes))
        worst = max(worst, float(np.abs(_window_taps(rows[p], 0) - estimate).sum()))
    return worst


@functools.lru_cache(maxsize=8)
def _screen_constants(sample_rate: int) -> tuple[float, float, float]:
    """``(ideal residual, ebu residual, refinement)``: :func:`_screen_residual` of the near-ideal and
    libebur128 branches, and the most a parabolic refinement can add per unit of the largest
    |sample|: it lifts a grid value by at most an eighth of the (absolute) second difference on
    the 8x grid, which the L1 norm of that difference's taps bounds."""
    ideal, ebu = (r.astype(np.float64) for r in detector_taps(sample_rate))
    f = ideal.shape[0] + 1
    r_id = _screen_residual(ideal, ideal[f // 2 - 1], f)
    r_eb = _screen_residual(ebu, ebu[ebu.shape[0] // 2], ebu.shape[0] + 1) if ebu.shape[0] else 0.0
    w = ideal.shape[1]
    grid = [_window_taps(ideal[-1], -1), _sample_taps(w, 0), *(_window_taps(r, 0) for r in ideal), _sample_taps(w, 1)]
    d2 = max(float(np.abs(grid[p - 1] - 2.0 * grid[p] + grid[p + 1]).sum()) for p in range(1, len(grid) - 1))
    return r_id, r_eb, d2 / 8.0


@numba.njit(cache=True, nogil=True, fastmath=True)
def _detector_kernel(xp: np.ndarray, ideal: np.ndarray, ebu: np.ndarray, floor: float, out: np.ndarray,
                     grid_max: np.ndarray, screen: np.ndarray, first: int,
                     stop: int) -> None:  # pragma: no cover - jitted
    # xp: (C, B + 49) float32, 24 samples of past and 25 of future context around B outputs.
    # What provably stays at or under `floor` is not computed (see detector_envelope_with_context),
    # in two screens: a block whose largest |sample| times the branches' L1 norm stays under it;
    # else each piece of _SCREEN_PIECE whose 2x grid (the samples and the half-way readings of
    # both interpolators, exact) bounds every reading under it (see _screen_residual:
    # screen = (ideal residual, ebu residual, refinement), per unit of the largest |sample|).
    # grid_max (B,) gets the 8x grid's largest |value| (the true-peak meter's envelope), or a bound
    # of it where the sample was not interpolated.
    n_ch = xp.shape[0]
    n_id = ideal.shape[0]
    f = n_id + 1
    n_eb = ebu.shape[0]
    w = ideal.shape[1]
    mid_id = f // 2 - 1
    mid_eb = n_eb // 2
    r_id, r_eb, lift = screen[0], screen[1], screen[2]
    l1_id = 1.0
    for p in range(n_id):
        l1_id = max(l1_id, np.abs(ideal[p]).sum())
    l1_eb = 0.0
    for p in range(n_eb):
        l1_eb = max(l1_eb, np.abs(ebu[p]).sum())
    grid = np.empty((f, _SCREEN_PIECE + 2), dtype=np.float32)
    acc = np.empty(_BLOCK + 2, dtype=np.float32)
    h_id = np.empty((n_ch, _BLOCK + 2), dtype=np.float32)  # |half-way readings| at samples start-1 ..
    h_eb = np.empty((n_ch, _BLOCK + 2), dtype=np.float32)
    for start in range(first, stop, _BLOCK):
        nb = min(_BLOCK, stop - start)
        m = nb + 2  # samples start-1 .. start+nb (neighbours for the refinement)
        xmax = 0.0
        for c in range(n_ch):
            row = xp[c, start: start + m + w - 1]
            for s in range(row.shape[0]):
                v = abs(row[s])
                if v > xmax:
                    xmax = v
        if xmax * max(l1_id * _REFINE_BOUND, l1_eb) * _BOUND_SLACK <= floor:
            _sample_peaks(xp, start, nb, w, out, grid_max, xmax * l1_id * _BOUND_SLACK)
            continue
        for c in range(n_ch):  # the 2x grid's half-way readings
            row = xp[c, start: start + m + w - 1]
            _fir(acc, row, ideal[mid_id], m)
            for s in range(m):
                h_id[c, s] = abs(acc[s])
            if n_eb:
                _fir(acc, row, ebu[mid_eb], m)
                for s in range(m):
                    h_eb[c, s] = abs(acc[s])
        for q in range(0, nb, _SCREEN_PIECE):
            npc = min(_SCREEN_PIECE, nb - q)
            # grid points n - 1/2 .. n + 3/2 of the piece's samples: half-way readings q .. q + npc + 1
            # (h_*[s] is the reading at sample start - 1 + s + 1/2), samples start + q .. + npc
            g_id = 0.0
            g_eb = 0.0
            xw = 0.0  # the largest |sample| any reading of the piece (or its neighbours) uses
            for c in range(n_ch):
                for s in range(q, q + npc + 2):
                    g_id = max(g_id, h_id[c, s])
                    if n_eb:
                        g_eb = max(g_eb, h_eb[c, s])
                for s in range(q + w // 2, q + w // 2 + npc + 1):
                    v = abs(xp[c, start + s])
                    g_id = max(g_id, v)
                    g_eb = max(g_eb, v)
                for s in range(q, q + npc + w + 1):
                    xw = max(xw, abs(xp[c, start + s]))
            grid_bound = (_LAGRANGE_L1 * g_id + r_id * xw) * _BOUND_SLACK
            reading_bound = max(grid_bound + lift * xw * _BOUND_SLACK,
                                (_LAGRANGE_L1 * g_eb + r_eb * xw) * _BOUND_SLACK if n_eb else 0.0)
            if reading_bound <= floor:
                _sample_peaks(xp, start + q, npc, w, out, grid_max, grid_bound)
                continue
            _interpolate(xp, ideal, ebu, floor, out, grid_max, start + q, npc, w, f, n_eb, xmax * l1_eb * _BOUND_SLACK > floor,
                         grid, acc)


@numba.njit(cache=True, nogil=True, inline="always")
def _sample_peaks(xp: np.ndarray, start: int, nb: int, w: int, out: np.ndarray, grid_max: np.ndarray,
                  bound: float) -> None:  # pragma: no cover - jitted
    # nothing here can reach the floor: the samples themselves, and the bound of the 8x grid
    for i in range(nb):
        peak = 0.0
        for c in range(xp.shape[0]):
            peak = max(peak, abs(xp[c, start + w // 2 + i]))
        out[start + i] = peak
        grid_max[start + i] = bound


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _interpolate(xp: np.ndarray, ideal: np.ndarray, ebu: np.ndarray, floor: float, out: np.ndarray,
                 grid_max: np.ndarray, start: int, nb: int, w: int, f: int, n_eb: int, ebu_on: bool,
                 grid: np.ndarray, acc: np.ndarray) -> None:  # pragma: no cover - jitted
    # the readings of samples start .. start + nb - 1 (nb <= grid's width - 2), exactly
    m = nb + 2
    peak = np.zeros(nb, dtype=np.float32)
    gmax = np.zeros(nb, dtype=np.float32)
    for c in range(xp.shape[0]):
        row = xp[c, start: start + m + w - 1]  # grid sample s uses row[s .. s + w - 1]
        for s in range(m):
            grid[0, s] = row[s + w // 2 - 1]
        for p in range(f - 1):
            _fir(acc, row, ideal[p], m)
            for s in range(m):
                grid[p + 1, s] = acc[s]
        for p in range(n_eb if ebu_on else 0):
            _fir(acc, row, ebu[p], m)
            for i in range(nb):
                v = abs(acc[i + 1])
                if v > peak[i]:
                    peak[i] = v
        for i in range(nb):
            s = i + 1
            best = peak[i]
            top = 0.0
            for p in range(f):
                b = abs(grid[p, s])
                if b > top:
                    top = b
            if top > best:
                best = top
            gmax[i] = max(gmax[i], top)
            if top * _REFINE_BOUND * _BOUND_SLACK > floor:
                for p in range(f):
                    b = abs(grid[p, s])
                    a = abs(grid[p - 1, s]) if p > 0 else abs(grid[f - 1, s - 1])
                    cc = abs(grid[p + 1, s]) if p < f - 1 else abs(grid[0, s + 1])
                    if b >= a and b >= cc:
                        curv = a - 2.0 * b + cc
                        if curv < 0.0:
                            v = b - (cc - a) * (cc - a) / (8.0 * curv)
                            if v > best:
                                best = v
            peak[i] = best
    for i in range(nb):
        out[start + i] = peak[i]
        grid_max[start + i] = gmax[i]


def detector_envelope_with_context(xp: np.ndarray, sample_rate: int, *, floor: float = 0.0,
                                   grid_max: np.ndarray | None = None, two_cores: bool = True) -> np.ndarray:
    """Detector envelope of ``xp[:, 24:-25]`` given 24 past and 25 future samples of context:
    per sample ``n``, the largest reading on ``[n, n + 1)`` of the meters described above (linear).

    ``floor`` (linear, >= 0): readings that provably stay at or under it are not computed; where the
    exact reading is at most ``floor`` the value returned is at most ``floor`` too (a lower reading),
    elsewhere it is exact. A limiter that only asks which readings pass its limit loses nothing.
    ``grid_max`` (float32, one per output), when given, receives an upper bound of
    :func:`true_peak_envelope` (8x) at each sample: exact where the sample was interpolated.
    ``two_cores=False`` keeps it on the calling thread (a caller that runs it beside other work)."""
    xp = np.ascontiguousarray(xp, dtype=np.float32)
    n_out = xp.shape[1] - (DETECTOR_PAST + DETECTOR_FUTURE)
    out = np.empty(max(n_out, 0), dtype=np.float32)
    gm = grid_max if grid_max is not None else np.empty(max(n_out, 0), dtype=np.float32)
    ideal, ebu = detector_taps(int(sample_rate))
    args = (xp, ideal, ebu, float(floor), out, gm, np.array(_screen_constants(int(sample_rate))))
    _on_two_cores(_detector_kernel, args, n_out, two_cores=two_cores)
    return out


def detector_envelope(x: np.ndarray, sample_rate: int, *, chunk: int = 1 << 18) -> np.ndarray:
    """:func:`detector_envelope_with_context` of a whole ``(channels, samples)`` signal (zero outside)."""
    return _in_chunks(x, DETECTOR_PAST, DETECTOR_FUTURE, chunk,
                      lambda xp: detector_envelope_with_context(xp, sample_rate))


def detector_peak_dbtp(x: np.ndarray, sample_rate: int) -> float:
    """The highest true peak any of the modelled meters reads, dBTP (see the section comment)."""
    if x.shape[-1] == 0:
        return -200.0
    return to_db(float(detector_envelope(x, sample_rate).max()))
