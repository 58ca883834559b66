"""Look-ahead true-peak limiter, shaped like REAPER's ReaLimit.

Level convention (ReaLimit / L2 style): the input is raised by
``ceiling_dbtp - threshold_db``, so a peak at ``threshold_db`` comes out exactly at
the ceiling and louder peaks are held there. Lowering the threshold drives the
limiter harder.

How the gain is computed, per sample ``n`` (all in dB of gain reduction):

1. detector: the 8x-oversampled true-peak envelope (:mod:`dsp.measure.truepeak`), the same
   interpolation an 8x reference meter uses;
2. required reduction ``req[n] = max(0, level[n] - (ceiling - margin))``;
3. release: ``red[n] = max(req[n], a * red[n-1])`` (exponential return in dB);
4. hold: the maximum of ``red`` over ``lookahead + 2 * 10`` samples, so every sample
   the interpolator touches around a peak gets at least that peak's reduction;
5. attack: a moving average over the look-ahead, which ramps the gain down smoothly
   and, being an average of values each at least ``req``, never lets a peak through.

Output is the input delayed by ``latency_samples`` times the gain.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numba
import numpy as np

from ..measure.truepeak import FUTURE_SAMPLES, PAST_SAMPLES, envelope_with_context
from ..params import Params, check_range
from .processor import ProcessorSpec

OVERSAMPLING = 8
HOLD_SAMPLES = FUTURE_SAMPLES  # covers the interpolator's reach on each side of a peak
MARGIN_DB = 0.03  # aim this far under the ceiling: absorbs the gain's own slope across the interpolator
_SUB_BLOCK = 1 << 16


@dataclasses.dataclass(frozen=True)
class LimiterParams(Params):
    """ReaLimit-shaped controls.

    threshold_db: -60..+12 dB; input peaks at this level reach the ceiling.
    ceiling_dbtp: -20..0 dBTP; no true peak (8x) of the output exceeds it.
    release_ms: 1..2000 ms; time constant of the gain's return, in dB.
    lookahead_ms: 0.5..20 ms; attack ramp length and delay.
    """

    threshold_db: float = 0.0
    ceiling_dbtp: float = -1.0
    release_ms: float = 60.0
    lookahead_ms: float = 3.0

    def validate(self) -> None:
        check_range("threshold_db", self.threshold_db, -60.0, 12.0)
        check_range("ceiling_dbtp", self.ceiling_dbtp, -20.0, 0.0)
        check_range("release_ms", self.release_ms, 1.0, 2000.0)
        check_range("lookahead_ms", self.lookahead_ms, 0.5, 20.0)

    @property
    def drive_db(self) -> float:
        """Gain applied before limiting, dB."""
        return self.ceiling_dbtp - self.threshold_db


def lookahead_samples(params: LimiterParams, sample_rate: int) -> int:
    return max(1, round(params.lookahead_ms * 1e-3 * sample_rate))


def latency_samples(params: LimiterParams, sample_rate: int) -> int:
    return FUTURE_SAMPLES + HOLD_SAMPLES + lookahead_samples(params, sample_rate) - 1


@dataclasses.dataclass
class GainState:
    """Carried between blocks by the gain computer (steps 2-5)."""

    red: float  # last released reduction, dB
    red_hist: np.ndarray  # last (window - 1) released reductions, for the hold
    hold_hist: np.ndarray  # last (lookahead - 1) held reductions, for the moving average


@dataclasses.dataclass
class LimiterState:
    x_hist: np.ndarray  # (C, 19) detector context
    delay: np.ndarray  # (C, latency) delay line of the input
    gain: GainState
    max_reduction_db: float = 0.0
    reduced_samples: int = 0  # samples with more than 0.1 dB of reduction
    total_samples: int = 0
    trace_hop: int = 4410  # samples per point of the gain-reduction trace (100 ms)
    trace_hop_s: float = 0.1
    trace_db: list[float] = dataclasses.field(default_factory=list)  # max reduction per hop
    _trace_max: float = 0.0
    _trace_fill: int = 0

    def _record(self, red: np.ndarray) -> None:
        hop, n, i = self.trace_hop, red.shape[0], 0
        if self._trace_fill:
            i = min(hop - self._trace_fill, n)
            self._trace_max = max(self._trace_max, float(red[:i].max()) if i else 0.0)
            self._trace_fill += i
            if self._trace_fill == hop:
                self.trace_db.append(self._trace_max)
                self._trace_fill, self._trace_max = 0, 0.0
        full = (n - i) // hop
        if full:
            self.trace_db.extend(red[i: i + full * hop].reshape(full, hop).max(axis=1).tolist())
            i += full * hop
        if i < n:
            self._trace_max, self._trace_fill = float(red[i:].max()), n - i


def new_gain_state(lookahead: int, hold: int) -> GainState:
    return GainState(0.0, np.zeros(lookahead + 2 * hold - 1), np.zeros(lookahead - 1))


@numba.njit(cache=True, nogil=True)
def _reduction_kernel(env: np.ndarray, over_lin: float, rel_mult: float, lookahead: int, hold: int, red: float,
                      red_hist: np.ndarray, hold_hist: np.ndarray,
                      out: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:  # pragma: no cover
    n = env.shape[0]
    window = lookahead + 2 * hold
    total = window - 1 + n
    red_ext = np.empty(total)
    red_ext[: window - 1] = red_hist
    for i in range(n):  # 2-3: required reduction with exponential release
        red *= rel_mult
        e = env[i] * over_lin
        if e > 1.0:
            req = 20.0 * math.log10(e)
            if req > red:
                red = req
        red_ext[window - 1 + i] = red
    held = np.empty(lookahead - 1 + n)
    held[: lookahead - 1] = hold_hist
    dq = np.empty(total, dtype=np.int64)  # 4: causal sliding maximum (monotonic deque)
    head = 0
    tail = 0
    for j in range(total):
        v = red_ext[j]
        while tail > head and red_ext[dq[tail - 1]] <= v:
            tail -= 1
        dq[tail] = j
        tail += 1
        if j >= window - 1:
            while dq[head] <= j - window:
                head += 1
            held[lookahead - 1 + j - (window - 1)] = red_ext[dq[head]]
    acc = 0.0  # 5: moving average over the look-ahead
    for i in range(lookahead - 1):
        acc += held[i]
    for i in range(n):
        acc += held[lookahead - 1 + i]
        out[i] = acc / lookahead
        acc -= held[i]
    return red, red_ext[total - (window - 1) :].copy(), held[n:].copy()


@numba.njit(cache=True, nogil=True)
def _apply_gain(ext: np.ndarray, red: np.ndarray, drive_db: float,
                out: np.ndarray) -> tuple[float, int]:  # pragma: no cover - jitted
    """out = ext[:, :n] * 10**((drive - red) / 20); returns (max reduction, samples over 0.1 dB)."""
    n = red.shape[0]
    drive = 10.0 ** (drive_db / 20.0)
    k = -math.log(10.0) / 20.0
    gain = np.empty(n)
    peak = 0.0
    count = 0
    for i in range(n):
        r = red[i]
        if r > 0.0:
            gain[i] = drive * math.exp(k * r)
            if r > peak:
                peak = r
            if r > 0.1:
                count += 1
        else:
            gain[i] = drive
    for c in range(ext.shape[0]):
        for i in range(n):
            out[c, i] = ext[c, i] * gain[i]
    return peak, count


def reduction_curve(
    env: np.ndarray, *, over_db: float, release_per_sample: float, lookahead: int, hold: int, state: GainState
) -> tuple[np.ndarray, GainState]:
    """Gain reduction (dB, >= 0) for a linear detector envelope; steps 2-5 of the module doc.

    ``over_db`` is added to the envelope's level before comparing it with 0 dB (drive minus
    the limit). ``release_per_sample`` is the one-pole release multiplier. The output lags the
    envelope by ``hold + lookahead - 1`` samples.
    """
    out = np.empty(env.shape[0])
    red, red_hist, hold_hist = _reduction_kernel(
        np.ascontiguousarray(env, dtype=np.float32), 10.0 ** (over_db / 20.0), release_per_sample,
        lookahead, hold, state.red, state.red_hist, state.hold_hist, out,
    )
    return out, GainState(red, red_hist, hold_hist)


def release_coefficient(release_ms: float, sample_rate: float) -> float:
    """Per-sample multiplier of a one-pole release with time constant ``release_ms``."""
    return math.exp(-1.0 / (release_ms * 1e-3 * sample_rate))


def _process_sub_block(x: np.ndarray, sample_rate: int, p: LimiterParams, st: LimiterState) -> np.ndarray:
    n = x.shape[1]
    xp = np.concatenate((st.x_hist, x.astype(np.float32)), axis=1)
    env = envelope_with_context(xp, factor=OVERSAMPLING)  # env of the input, 10 samples late
    st.x_hist = xp[:, xp.shape[1] - (PAST_SAMPLES + FUTURE_SAMPLES) :]
    red, st.gain = reduction_curve(
        env,
        over_db=p.drive_db - (p.ceiling_dbtp - MARGIN_DB),
        release_per_sample=release_coefficient(p.release_ms, sample_rate),
        lookahead=lookahead_samples(p, sample_rate),
        hold=HOLD_SAMPLES,
        state=st.gain,
    )
    ext = np.concatenate((st.delay, x), axis=1)
    y = np.empty_like(x)
    peak, count = _apply_gain(ext, red, p.drive_db, y)
    st.delay = ext[:, n:]
    st._record(red)
    st.max_reduction_db = max(st.max_reduction_db, peak)
    st.reduced_samples += count
    st.total_samples += n
    return y


def process(
    x: np.ndarray, sample_rate: int, params: LimiterParams, state: LimiterState | None = None
) -> tuple[np.ndarray, LimiterState]:
    """Limit ``(channels, samples)``; the output is delayed by :func:`latency_samples`."""
    x = np.asarray(x, dtype=np.float64)
    n_ch = x.shape[0]
    if state is None:
        look = lookahead_samples(params, sample_rate)
        state = LimiterState(
            x_hist=np.zeros((n_ch, PAST_SAMPLES + FUTURE_SAMPLES), dtype=np.float32),
            delay=np.zeros((n_ch, latency_samples(params, sample_rate))),
            gain=new_gain_state(look, HOLD_SAMPLES),
            trace_hop=max(1, sample_rate // 10),
            trace_hop_s=max(1, sample_rate // 10) / sample_rate,
        )
    out = np.empty_like(x)
    for start in range(0, x.shape[1], _SUB_BLOCK):
        stop = min(x.shape[1], start + _SUB_BLOCK)
        out[:, start:stop] = _process_sub_block(x[:, start:stop], sample_rate, params, state)
    return out, state


def limit(x: np.ndarray, sample_rate: int, params: LimiterParams) -> np.ndarray:
    """Whole-signal convenience: limit and remove the latency (output aligned with input)."""
    lat = latency_samples(params, sample_rate)
    y, st = process(x, sample_rate, params)
    tail, _ = process(np.zeros((x.shape[0], lat)), sample_rate, params, st)
    return np.concatenate((y, tail), axis=1)[:, lat:]


def stats(state: object) -> dict[str, Any]:
    """What the limiter did, for reports: peak reduction, share of time limiting, and the
    gain-reduction trace (largest reduction in each 100 ms, dB)."""
    if not isinstance(state, LimiterState) or state.total_samples == 0:
        return {"max_reduction_db": 0.0, "limiting_pct": 0.0, "trace_hop_s": 0.1, "trace_db": []}
    return {
        "max_reduction_db": round(state.max_reduction_db, 2),
        "limiting_pct": round(100.0 * state.reduced_samples / state.total_samples, 1),
        "trace_hop_s": state.trace_hop_s,
        "trace_db": [round(v, 2) for v in state.trace_db],
    }


SPEC = ProcessorSpec(
    kind="limiter",
    params_type=LimiterParams,
    process=process,
    latency_samples=latency_samples,
    native_fx="ReaLimit (Cockos)",
)
