"""Look-ahead true-peak limiter, shaped like REAPER's ReaLimit.

Level convention (ReaLimit / L2 style): the input is raised by
``ceiling_dbtp - threshold_db``, so a peak at ``threshold_db`` comes out exactly at
the ceiling and louder peaks are held there. Lowering the threshold drives the
limiter harder.

How the gain is computed, per sample ``n`` (all in dB of gain reduction):

1. detector: :func:`dsp.measure.truepeak.detector_envelope_with_context`, per sample the highest
   reading of a near-ideal 8x interpolator and of libebur128's own interpolator, so the master
   reads at or under the ceiling on the meters users check with;
2. required reduction ``req[n] = max(0, level[n] - (ceiling - MARGIN_DB))``;
3. hold: the maximum of ``req`` over ``lookahead + 2 * reach + hold`` samples. ``reach`` covers the
   interpolator on each side of a peak; ``hold_ms`` covers half a period of the lowest bass
   handled (20 ms: 25 Hz), so the gain does not follow the waveform of a bass note (no ripple at
   twice its frequency, no distortion);
4. program-dependent release, two paths: ``fast`` returns with ``release_ms``, faster after a
   short event (a reduction held for ``run`` samples of an event shorter than ``transient_ms``
   lets go with ``release_ms * run / transient``: a click releases in a few ms instead of ducking
   what follows it for ``release_ms``), ``slow`` charges toward the held reduction with
   ``sustain_attack_ms`` and returns with ``sustain_release_ms``; the reduction is the larger
   of the two, so sustained overs keep a steady gain instead of pumping at the fast release;
5. attack: a moving average over the look-ahead, which ramps the gain down smoothly
   and, being an average of values each at least ``req``, never lets a peak through.

Output is the input delayed by ``latency_samples`` times the gain; its 8x true peak is metered on
the way (:func:`output_true_peak_dbtp`), so a master's after-figures need no second pass for it.
In REAPER: ReaLimit with the same ceiling and threshold approximates it (ReaLimit has one release
time and no hold setting).

6. treble held steady (``treble_split_hz`` > 0, for heavy limiting): the gain of steps 1-5 is
   applied to the band under ``treble_split_hz`` only (linear-phase FIR split,
   :mod:`dsp.process.fir`); the treble above gets the same reduction averaged over
   ``treble_smooth_ms`` (centred, in dB), so hats and cymbals are not modulated by every kick and
   snare the limiter catches (a fast full-band gain puts sidebands around every treble partial)
   and on average come down as much as the rest (the balance stays). Where the treble's own part
   of a peak then passes the ceiling, a second, quick pass of steps 1-5 at the ceiling (no drive,
   15 ms release, no slow path) catches it over the full band; it owns the ceiling and is what the
   output meter reads. Multiband maximizers (Ozone's IRC IV, broadcast processors) keep the
   treble apart for the same reason. ReaLimit has no band split: in REAPER this is not
   reproducible (ReaLimit alone, as above, is the approximation).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numba
import numpy as np

from ..errors import ParameterError
from ..measure.truepeak import (
    DETECTOR_FUTURE,
    DETECTOR_PAST,
    FUTURE_SAMPLES,
    PAST_SAMPLES,
    TruePeakMeter,
    detector_envelope_with_context,
)
from ..params import Params, check_range
from .fir import lowpass_fir, split_delay_samples, split_low
from .processor import ProcessorSpec

#: samples each side of a peak that the meters' interpolators reach (the detector's context)
REACH_SAMPLES = DETECTOR_FUTURE
#: aim this far under the ceiling. Measured (tests/test_truepeak.py, test_limiter.py): the
#: detector under-reads an ideal 16x reference by at most 0.025 dB on content below 0.9 of
#: Nyquist and never under-reads libebur128; the gain's slope across the interpolator adds
#: under 0.005 dB. 0.05 dB covers both with room for float rounding.
MARGIN_DB = 0.05
_SUB_BLOCK = 1 << 16
#: a reduction under this ends its event (the next over starts a new one, with its own release)
_EVENT_END_DB = 0.01
#: step 6: the catching pass's release. It takes only the treble's share of a peak; with the
#: planned release (40-60 ms) and slow path on every hit, dense mixes stopped getting louder with
#: more drive (-8.07 LUFS reached for -8), ms
_CATCH_RELEASE_MS = 15.0


@dataclasses.dataclass(frozen=True)
class LimiterParams(Params):
    """ReaLimit-shaped controls.

    threshold_db: -60..+12 dB; input peaks at this level reach the ceiling.
    ceiling_dbtp: -20..0 dBTP; no true peak of the output exceeds it (see the module doc).
    release_ms: 1..2000 ms; time constant of the fast (transient) release, in dB.
    transient_ms: 0..500 ms; an event of reduction held for less than this releases
        proportionally faster (0: one release time for every event, as ReaLimit).
    lookahead_ms: 0.5..20 ms; attack ramp length and delay.
    hold_ms: 0..100 ms; how long a reduction is held after a peak: half a period of the lowest
        bass handled without gain ripple (20 ms: 25 Hz).
    sustain_attack_ms: 1..2000 ms; how fast the slow (sustained) path charges.
    sustain_release_ms: 0 or 10..5000 ms; its release; 0 turns the slow path off.
    treble_split_hz: 0 or 1000..8000 Hz; above it the gain is averaged (module doc, step 6);
        0: one full-band gain, as ReaLimit.
    treble_smooth_ms: 10..400 ms; the length of that average.

    Chains saved before hold/sustain/treble existed load with the defaults.
    """

    threshold_db: float = 0.0
    ceiling_dbtp: float = -1.0
    release_ms: float = 60.0
    lookahead_ms: float = 3.0
    hold_ms: float = 10.0
    sustain_attack_ms: float = 1000.0
    sustain_release_ms: float = 300.0
    transient_ms: float = 0.0
    treble_split_hz: float = 0.0
    treble_smooth_ms: float = 100.0

    def validate(self) -> None:
        check_range("threshold_db", self.threshold_db, -60.0, 12.0)
        check_range("ceiling_dbtp", self.ceiling_dbtp, -20.0, 0.0)
        check_range("release_ms", self.release_ms, 1.0, 2000.0)
        check_range("lookahead_ms", self.lookahead_ms, 0.5, 20.0)
        check_range("hold_ms", self.hold_ms, 0.0, 100.0)
        check_range("sustain_attack_ms", self.sustain_attack_ms, 1.0, 2000.0)
        check_range("sustain_release_ms", self.sustain_release_ms, 0.0, 5000.0)
        check_range("transient_ms", self.transient_ms, 0.0, 500.0)
        if 0.0 < self.sustain_release_ms < 10.0:
            check_range("sustain_release_ms", self.sustain_release_ms, 10.0, 5000.0)
        if self.treble_split_hz != 0.0:
            check_range("treble_split_hz", self.treble_split_hz, 1000.0, 8000.0)
        check_range("treble_smooth_ms", self.treble_smooth_ms, 10.0, 400.0)

    @property
    def drive_db(self) -> float:
        """Gain applied before limiting, dB."""
        return self.ceiling_dbtp - self.threshold_db


def lookahead_samples(params: LimiterParams, sample_rate: int) -> int:
    return max(1, round(params.lookahead_ms * 1e-3 * sample_rate))


def hold_samples(params: LimiterParams, sample_rate: int) -> int:
    return round(params.hold_ms * 1e-3 * sample_rate)


def _single_latency(params: LimiterParams, sample_rate: int) -> int:
    return DETECTOR_FUTURE + REACH_SAMPLES + lookahead_samples(params, sample_rate) - 1


def _smooth_half(params: LimiterParams, sample_rate: int) -> int:
    """Half the treble average's length, samples (the average spans ``2 * half + 1``)."""
    return max(1, round(params.treble_smooth_ms * 0.5e-3 * sample_rate))


def latency_samples(params: LimiterParams, sample_rate: int) -> int:
    """Output lag: one detector and look-ahead; with the treble split, a second one plus half the
    treble average."""
    one = _single_latency(params, sample_rate)
    if params.treble_split_hz <= 0.0:
        return one
    return 2 * one + _smooth_half(params, sample_rate)


@dataclasses.dataclass
class GainState:
    """Carried between blocks by the gain computer (steps 2-5)."""

    red: float  # fast-path reduction after the last sample, dB
    red_hist: np.ndarray  # last (window - 1) required reductions, for the hold
    hold_hist: np.ndarray  # last (lookahead - 1) released reductions, for the moving average
    slow: float = 0.0  # sustained-path reduction, dB
    acc: float = 0.0  # running sum of the moving average (carried so blocks add up exactly)
    run: float = 0.0  # samples of held reduction in the current event (until the reduction ends)
    mult: float = 0.0  # the fast path's release multiplier for the current event (0: not set)


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
    # the output's 8x true peak, metered as it is made (see output_true_peak_dbtp)
    out_meter: TruePeakMeter | None = None
    grid_delay: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    gain_hist: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    mag_hist: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    # the treble split's first pass (step 6): its own detector and gain state, the input waiting
    # for its reduction (with the FIR's context) and the reductions waiting for their average
    front: LimiterState | None = None
    x_wait: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    red_wait: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    red_first: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))  # ... waiting for the second's

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


def new_gain_state(lookahead: int, hold: int, hold_extra: int = 0) -> GainState:
    """Fresh gain-computer state; ``hold`` is the reach each side of a peak, ``hold_extra`` the
    hold after it (samples)."""
    return GainState(0.0, np.zeros(lookahead + 2 * hold + hold_extra - 1), np.zeros(lookahead - 1))


@numba.njit(cache=True, nogil=True)
def _reduction_kernel(env: np.ndarray, over_lin: float, rel_mult: float, rel_samples: float, transient: float,
                      sus_charge: float, sus_mult: float, lookahead: int, window: int, red: float, slow: float,
                      acc: float, run: float, mult: float, red_hist: np.ndarray, hold_hist: np.ndarray,
                      out: np.ndarray) -> tuple[float, float, float, float, float, np.ndarray,
                                                np.ndarray]:  # pragma: no cover
    n = env.shape[0]
    total = window - 1 + n
    req_ext = np.empty(total)
    req_ext[: window - 1] = red_hist
    for i in range(n):  # 2: required reduction
        e = env[i] * over_lin
        req_ext[window - 1 + i] = 20.0 * math.log10(e) if e > 1.0 else 0.0
    rel = np.empty(lookahead - 1 + n)
    rel[: lookahead - 1] = hold_hist
    dq = np.empty(total, dtype=np.int64)  # 3: causal sliding maximum (monotonic deque)
    head = 0
    tail = 0
    for j in range(total):
        v = req_ext[j]
        while tail > head and req_ext[dq[tail - 1]] <= v:
            tail -= 1
        dq[tail] = j
        tail += 1
        if j >= window - 1:
            while dq[head] <= j - window:
                head += 1
            h = req_ext[dq[head]]
            # 4: program-dependent release; an event lasts until its reduction has gone
            if h > 0.0:
                run += 1.0
                if run < transient:
                    mult = math.exp(-transient / (rel_samples * run))
                else:
                    mult = rel_mult
            red *= mult if mult > 0.0 else rel_mult
            if h > red:
                red = h
            if red < _EVENT_END_DB:
                run = 0.0
                if red < 1e-9:
                    red = 0.0
            if sus_mult > 0.0:  # the slow path follows the held reduction's average, not its peaks
                if h > slow:
                    slow += (h - slow) * sus_charge
                else:
                    slow += (h - slow) * (1.0 - sus_mult)
                if slow < 1e-9:
                    slow = 0.0
            rel[lookahead - 1 + j - (window - 1)] = red if red > slow else slow
    inv = 1.0 / lookahead  # 5: moving average over the look-ahead
    for i in range(n):
        acc += rel[lookahead - 1 + i]
        out[i] = acc * inv if acc > 1e-12 else 0.0
        acc -= rel[i]
    return red, slow, acc, run, mult, req_ext[total - (window - 1):].copy(), rel[n:].copy()


@numba.njit(cache=True, nogil=True)
def _apply_gain(ext: np.ndarray, red: np.ndarray, drive_db: float, out: np.ndarray,
                gain: np.ndarray) -> tuple[float, int]:  # pragma: no cover - jitted
    """out = ext[:, :n] * gain, gain = 10**((drive - red) / 20); returns (max reduction, samples
    over 0.1 dB)."""
    n = red.shape[0]
    drive = 10.0 ** (drive_db / 20.0)
    k = -math.log(10.0) / 20.0
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
    env: np.ndarray, *, over_db: float, release_per_sample: float, lookahead: int, hold: int, state: GainState,
    hold_extra: int = 0, sustain_charge: float = 0.0, sustain_release_per_sample: float = 0.0,
    release_samples: float = 1.0, transient_samples: float = 0.0,
) -> tuple[np.ndarray, GainState]:
    """Gain reduction (dB, >= 0) for a linear detector envelope; steps 2-5 of the module doc.

    ``over_db`` is added to the envelope's level before comparing it with 0 dB (drive minus
    the limit). ``hold`` is the reach each side of a peak and ``hold_extra`` the hold after it,
    in samples; ``release_per_sample`` the fast path's one-pole multiplier (time constant
    ``release_samples``), quickened for events shorter than ``transient_samples``; ``sustain_charge``
    and ``sustain_release_per_sample`` the slow path's (0 = no slow path). The output lags the
    envelope by ``hold + lookahead - 1`` samples.
    """
    out = np.empty(env.shape[0])
    window = lookahead + 2 * hold + hold_extra
    if state.red_hist.shape[0] != window - 1:
        raise ValueError("gain state does not match the hold and look-ahead")
    red, slow, acc, run, mult, red_hist, hold_hist = _reduction_kernel(
        np.ascontiguousarray(env, dtype=np.float32), 10.0 ** (over_db / 20.0), release_per_sample,
        max(release_samples, 1e-3), transient_samples, sustain_charge, sustain_release_per_sample, lookahead,
        window, state.red, state.slow, state.acc, state.run, state.mult, state.red_hist, state.hold_hist, out,
    )
    return out, GainState(red, red_hist, hold_hist, slow, acc, run, mult)


def release_coefficient(release_ms: float, sample_rate: float) -> float:
    """Per-sample multiplier of a one-pole release with time constant ``release_ms`` (0 for 0 ms)."""
    if release_ms <= 0.0:
        return 0.0
    return math.exp(-1.0 / (release_ms * 1e-3 * sample_rate))


def curve_settings(p: LimiterParams, sample_rate: float, *, decimation: int = 1) -> dict[str, Any]:
    """Keyword arguments of :func:`reduction_curve` for ``p`` (on an envelope decimated by
    ``decimation``, for loudness models): everything except ``env`` and ``state``."""
    rate = sample_rate / decimation
    look = max(1, math.ceil(lookahead_samples(p, int(sample_rate)) / decimation))
    return {
        "over_db": p.drive_db - (p.ceiling_dbtp - MARGIN_DB),
        "release_per_sample": release_coefficient(p.release_ms, rate),
        "release_samples": p.release_ms * 1e-3 * rate,
        "transient_samples": p.transient_ms * 1e-3 * rate,
        "lookahead": look,
        "hold": max(1, math.ceil(REACH_SAMPLES / decimation)),
        "hold_extra": math.ceil(hold_samples(p, int(sample_rate)) / decimation),
        "sustain_charge": 1.0 - release_coefficient(p.sustain_attack_ms, rate),
        "sustain_release_per_sample": release_coefficient(p.sustain_release_ms, rate),
    }


@numba.njit(cache=True, nogil=True)
def _output_bound(gain: np.ndarray, mag: np.ndarray, grid: np.ndarray, l1: float, slack: float,
                  bound: np.ndarray) -> None:  # pragma: no cover - jitted
    """Upper bound of the output's 8x envelope at each sample ``i`` whose window ``i - 23 .. i + 24``
    is all here (``gain`` and ``mag`` run from ``i - 23``: 47 longer than ``bound``; the rest stay
    as they are). With ``g`` the gain at ``i`` and ``d`` the most it differs from ``g`` in the window,
    ``|sum h g_k x_k| <= g |sum h x_k| + d * sum |h| |x_k|``: the input's envelope (``grid``, from the
    detector) times the gain, plus the gain's movement times the L1 bound. Ranges are taken over
    64-sample pieces (a window spans at most two), which only loosens the bound."""
    piece = 64
    n = gain.shape[0]
    n_p = (n + piece - 1) // piece
    g_hi = np.empty(n_p)
    g_lo = np.empty(n_p)
    a_hi = np.empty(n_p)
    for q in range(n_p):
        hi, lo, a = -np.inf, np.inf, 0.0
        for k in range(q * piece, min(n, (q + 1) * piece)):
            hi = max(hi, gain[k])
            lo = min(lo, gain[k])
            a = max(a, mag[k])
        g_hi[q], g_lo[q], a_hi[q] = hi, lo, a
    reach = PAST_SAMPLES + FUTURE_SAMPLES
    for i in range(n - reach):
        qa, qb = i // piece, (i + reach) // piece
        d = max(g_hi[qa], g_hi[qb]) - min(g_lo[qa], g_lo[qb])
        bound[i] = (gain[i + PAST_SAMPLES] * grid[i] + d * l1 * max(a_hi[qa], a_hi[qb])) * slack


def _detect(x: np.ndarray, sample_rate: int, p: LimiterParams, x_hist: np.ndarray, *,
            two_cores: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 1 on a block: ``(envelope, grid, x_hist)``, the detector's readings and the 8x grid's
    bound (both DETECTOR_FUTURE samples late) and the context the next block needs."""
    xp = np.concatenate((x_hist, x.astype(np.float32)), axis=1)
    grid = np.empty(x.shape[1], dtype=np.float32)
    # only readings over the limit make a reduction; what provably stays under it is not interpolated
    floor = 10.0 ** (-curve_settings(p, sample_rate)["over_db"] / 20.0)
    env = detector_envelope_with_context(xp, sample_rate, floor=floor, grid_max=grid, two_cores=two_cores)
    return env, grid, xp[:, xp.shape[1] - (DETECTOR_PAST + DETECTOR_FUTURE):]


def detect_ahead(x: np.ndarray, sample_rate: int, params: LimiterParams,
                 x_hist: np.ndarray | None) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray | None]:
    """The detector (step 1) on a block, which depends on the input alone, so a renderer can run it
    on another thread ahead of :func:`process` (``process(..., ahead=found)``); ``x_hist`` is what
    the previous call returned (None at the start). With the treble split nothing is found ahead
    (its catching pass detects what the first pass makes)."""
    if params.treble_split_hz > 0.0:
        return None, None
    hist = x_hist if x_hist is not None else np.zeros((x.shape[0], DETECTOR_PAST + DETECTOR_FUTURE), dtype=np.float32)
    env, grid, hist = _detect(x, sample_rate, params, hist, two_cores=False)  # beside the rest: one core
    return (env, grid), hist


def _reduction_block(x: np.ndarray, sample_rate: int, p: LimiterParams, st: LimiterState,
                     found: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-5 on a block: the reduction (dB) for the input ``_single_latency`` samples back and
    the detector's 8x grid bound; ``found``: the detector's readings, made ahead."""
    if found is None:
        env, grid, st.x_hist = _detect(x, sample_rate, p, st.x_hist)
    else:
        env, grid = found
    red, st.gain = reduction_curve(env, state=st.gain, **curve_settings(p, sample_rate))
    return red, grid


def _process_sub_block(x: np.ndarray, sample_rate: int, p: LimiterParams, st: LimiterState,
                       earlier: np.ndarray | None = None,
                       found: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Steps 1-5 on a block; ``earlier``: the reduction the treble split's first pass gave ``x``
    (counted in the statistics, not applied again); ``found``: as :func:`_reduction_block`'s."""
    n = x.shape[1]
    red, grid = _reduction_block(x, sample_rate, p, st, found)
    ext = np.concatenate((st.delay, x), axis=1)
    y = np.empty_like(x)
    gain = np.empty(n)
    peak, count = _apply_gain(ext, red, p.drive_db, y, gain)
    st.delay = ext[:, n:]
    _meter_output(st, y, ext, gain, grid)
    if earlier is not None:  # it reached the samples `red` applies to one delay line ago
        first = np.concatenate((st.red_first, earlier))
        st.red_first = first[n:].copy()
        red = red + first[:n]
        peak = float(red.max()) if n else 0.0
        count = int(np.count_nonzero(red > 0.1))
    st._record(red)
    st.max_reduction_db = max(st.max_reduction_db, peak)
    st.reduced_samples += count
    st.total_samples += n
    return y


def _treble_front(x: np.ndarray, sample_rate: int, p: LimiterParams,
                  st: LimiterState) -> tuple[np.ndarray, np.ndarray]:
    """Step 6's first pass on a block: the band under the split on the reduction, the treble on its
    centred average; returns the output, which lags ``x`` by ``_single_latency + _smooth_half``, and
    the reduction the band got."""
    front = st.front
    assert front is not None
    n = x.shape[1]
    red, _ = _reduction_block(x, sample_rate, p, front)
    half = _smooth_half(p, sample_rate)
    red_ext = np.concatenate((st.red_wait, red))  # the reductions of the inputs ``half`` either side
    st.red_wait = red_ext[n:].copy()  # not views: the block's arrays go when it does
    h = lowpass_fir(p.treble_split_hz, sample_rate)
    x_ext = np.concatenate((st.x_wait, x), axis=1)  # input waiting for its reduction, with FIR context
    st.x_wait = x_ext[:, n:].copy()
    red_now = red_ext[half: half + n]
    drive = 10.0 ** (p.drive_db / 20.0)
    if not np.any(red_ext > 0.0):
        d = (h.shape[0] - 1) // 2
        quiet: np.ndarray = x_ext[:, d: d + n] * drive
        return quiet, red_now
    w = 2 * half + 1
    sums = np.concatenate(([0.0], np.cumsum(red_ext)))  # fresh per block: no drift between blocks
    red_avg = (sums[w: w + n] - sums[:n]) / w
    gain_avg = drive * np.power(10.0, -red_avg / 20.0)
    low, centre = split_low(x_ext[:, : n + h.shape[0] - 1], h, single=True)
    # low * gain + (centre - low) * gain_avg: the band's (float32) error counts only where they differ
    y: np.ndarray = centre * gain_avg
    y += low * (drive * np.power(10.0, -red_now / 20.0) - gain_avg)
    return y, red_now


#: relative allowance for float32 rounding between the detector's and the meter's interpolation
_OUT_BOUND_SLACK = 1.0 + 1e-4


def _meter_output(st: LimiterState, y: np.ndarray, ext: np.ndarray, gain: np.ndarray, grid: np.ndarray) -> None:
    """Feed the output to its true-peak meter with a bound per sample: where the gain holds still
    across the interpolator's window the output's envelope is the gain times the input's, which the
    detector has just computed, so the meter interpolates only where the gain moves or the bound
    could pass the peak already found (under limiting, and near it)."""
    assert st.out_meter is not None
    n = y.shape[1]
    gext = np.concatenate((st.grid_delay, grid))  # the detector runs grid_delay samples ahead of the output
    st.grid_delay = gext[n:]
    # gain and input magnitude of output samples -23 .. n - 1 (the input is the output over the gain)
    g_ext = np.concatenate((st.gain_hist, gain))
    m_ext = np.concatenate((st.mag_hist, np.abs(ext[:, :n]).max(axis=0)))
    st.gain_hist, st.mag_hist = g_ext[n:], m_ext[n:]
    bound = np.full(n, np.inf, dtype=np.float32)  # the last 24 samples' windows reach the next block
    _output_bound(g_ext, m_ext, gext[:n], st.out_meter.gain, _OUT_BOUND_SLACK, bound)
    st.out_meter.feed(y, bound=bound)


def output_true_peak_dbtp(state: object) -> float | None:
    """The 8x true peak (dBTP, as :func:`dsp.measure.truepeak.true_peak_dbtp` with ``factor=8``) of
    everything the limiter has put out, the signal taken as zero after it; call once, at the end.
    None when ``state`` is not a limiter's."""
    if not isinstance(state, LimiterState) or state.out_meter is None:
        return None
    return state.out_meter.finish()


def process(
    x: np.ndarray, sample_rate: int, params: LimiterParams, state: LimiterState | None = None, *,
    ahead: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, LimiterState]:
    """Limit ``(channels, samples)``; the output is delayed by :func:`latency_samples`. ``ahead``:
    what :func:`detect_ahead` found on this block (every block of the stream, or none)."""
    x = np.asarray(x, dtype=np.float64)
    n_ch = x.shape[0]
    split = params.treble_split_hz > 0.0
    if split and params.treble_split_hz > 0.45 * sample_rate:
        raise ParameterError(f"treble_split_hz = {params.treble_split_hz:g} is too high for {sample_rate} Hz audio")
    one = _single_latency(params, sample_rate)
    if state is None:
        # its detector running ahead on another thread, the output meter keeps to this one
        state = _new_state(params, sample_rate, n_ch, lead_in=latency_samples(params, sample_rate),
                           meter_two_cores=ahead is None)
        if split:
            state.front = _new_state(params, sample_rate, n_ch, lead_in=None)
            half = _smooth_half(params, sample_rate)
            state.x_wait = np.zeros((n_ch, one + half + split_delay_samples(params.treble_split_hz, sample_rate)))
            state.red_wait = np.zeros(2 * half)
            state.red_first = np.zeros(one)
    elif split != (state.front is not None) or state.delay.shape != (n_ch, one):
        raise ParameterError("limiter state does not match these parameters; they changed between blocks")
    if split and ahead is not None:
        raise ParameterError("the treble split's catching pass detects what its first pass makes: nothing ahead")
    last = params
    if split:  # the catching pass owns the ceiling: no drive of its own, quick
        last = dataclasses.replace(params, threshold_db=params.ceiling_dbtp, treble_split_hz=0.0,
                                   release_ms=min(params.release_ms, _CATCH_RELEASE_MS), sustain_release_ms=0.0)
    out = np.empty_like(x)
    for start in range(0, x.shape[1], _SUB_BLOCK):
        stop = min(x.shape[1], start + _SUB_BLOCK)
        block, earlier = x[:, start:stop], None
        if split:
            block, earlier = _treble_front(block, sample_rate, params, state)
        found = None if ahead is None else (ahead[0][start:stop], ahead[1][start:stop])
        out[:, start:stop] = _process_sub_block(block, sample_rate, last, state, earlier, found)
    return out, state


def _new_state(params: LimiterParams, sample_rate: int, n_ch: int, *, lead_in: int | None,
               meter_two_cores: bool = True) -> LimiterState:
    """A fresh state for one pass of steps 1-5; ``lead_in``: the output meter's (None: no meter)."""
    cs = curve_settings(params, sample_rate)
    one = _single_latency(params, sample_rate)
    hop = max(1, sample_rate // 10)
    return LimiterState(
        x_hist=np.zeros((n_ch, DETECTOR_PAST + DETECTOR_FUTURE), dtype=np.float32),
        delay=np.zeros((n_ch, one)),
        gain=new_gain_state(cs["lookahead"], cs["hold"], cs["hold_extra"]),
        trace_hop=hop, trace_hop_s=hop / sample_rate,
        out_meter=None if lead_in is None else TruePeakMeter(n_ch, factor=8, lead_in=lead_in,
                                                             two_cores=meter_two_cores),
        # output sample i was input sample i - one; the detector's values are DETECTOR_FUTURE late
        grid_delay=np.zeros(one - DETECTOR_FUTURE, dtype=np.float32),
        gain_hist=np.zeros(PAST_SAMPLES), mag_hist=np.zeros(PAST_SAMPLES),
    )


def limit(x: np.ndarray, sample_rate: int, params: LimiterParams) -> np.ndarray:
    """Whole-signal convenience: limit and remove the latency (output aligned with input)."""
    lat = latency_samples(params, sample_rate)
    y, st = process(x, sample_rate, params)
    tail, _ = process(np.zeros((x.shape[0], lat)), sample_rate, params, st)
    return np.concatenate((y, tail), axis=1)[:, lat:]


def stats(state: object) -> dict[str, Any]:
    """What the limiter did, for reports: peak reduction, share of time limiting, and the
    gain-reduction trace (largest reduction in each 100 ms, dB). With the treble split, the
    reduction of the band under it: the first pass's plus the catching pass's, sample by sample."""
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
    ahead=detect_ahead,
)
