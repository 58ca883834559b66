"""Bass limiter: a look-ahead peak limiter on the low band only, split off with a linear-phase
FIR (:mod:`dsp.process.fir`), so kicks and bass notes lose their peaks without the gain moving
anything above the crossover.

At loud targets the loudest peaks of most mixes are the kick and the bass. A full-band limiter
takes them by turning *everything* down for its hold and release: a pad or a vocal under each
kick pumps, and the gain moving inside every kick modulates the treble. Taking the low band's
peaks first leaves the full-band limiter much less to do (FabFilter Pro-L 2 and Ozone's
Maximizer limit the lows apart for the same reason; broadcast processors always have).

Per block, ``x`` (channels, samples):

1. ``low = fir(x)``, ``high = x(delayed by the FIR's group delay) - low`` (they sum to the delayed
   input exactly: nothing is phase-rotated);
2. the low band's peak (channels linked) above ``threshold_db`` is the required reduction; the
   reduction is held for ``hold_ms`` (half a period of the lowest bass: no ripple at twice its
   frequency), released with ``release_ms`` and ramped in over ``lookahead_ms``
   (:func:`dsp.process.limiter.reduction_curve`, the limiter's own gain computer);
3. ``y = high + low * gain``, both delayed to line up with the gain.

Below the threshold the stage is a pure delay of :func:`latency_samples`. In REAPER: ReaXcomp
with one crossover and only its lowest band active (ratio infinity, fast attack, the same release)
comes close; its IIR crossover rotates the bass's phase, so it is not the same.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ParameterError
from ..params import Params, check_range
from . import limiter as lim
from .fir import lowpass_fir, split_delay_samples, split_low
from .processor import ProcessorSpec


@dataclasses.dataclass(frozen=True)
class BassLimiterParams(Params):
    """crossover_hz: 40..300 Hz, the top of the low band;
    threshold_db: -60..0 dBFS, the low band's peaks are held at this level;
    lookahead_ms: 0.5..20 ms, the gain's ramp in (and part of the delay);
    hold_ms: 0..100 ms, how long a reduction is held (20 ms: half a period of 25 Hz);
    release_ms: 1..2000 ms, time constant of the release, in dB."""

    crossover_hz: float = 120.0
    threshold_db: float = 0.0
    lookahead_ms: float = 5.0
    hold_ms: float = 20.0
    release_ms: float = 80.0

    def validate(self) -> None:
        check_range("crossover_hz", self.crossover_hz, 40.0, 300.0)
        check_range("threshold_db", self.threshold_db, -60.0, 0.0)
        check_range("lookahead_ms", self.lookahead_ms, 0.5, 20.0)
        check_range("hold_ms", self.hold_ms, 0.0, 100.0)
        check_range("release_ms", self.release_ms, 1.0, 2000.0)


def _lookahead(params: BassLimiterParams, sample_rate: int) -> int:
    return max(1, round(params.lookahead_ms * 1e-3 * sample_rate))


def latency_samples(params: BassLimiterParams, sample_rate: int) -> int:
    """Output lag: the FIR's group delay plus the look-ahead."""
    return split_delay_samples(params.crossover_hz, sample_rate) + _lookahead(params, sample_rate)


@dataclasses.dataclass(frozen=True, eq=False)
class BassLimiterState:
    """Carried between blocks (opaque)."""

    tail: np.ndarray  # (C, taps - 1) last input samples, for the FIR
    low_delay: np.ndarray  # (C, lookahead) low band waiting for its gain
    high_delay: np.ndarray  # (C, lookahead) high band, the same
    gain: lim.GainState
    pre: int  # outputs still before the input's time zero: emitted as silence


def _hold(params: BassLimiterParams, sample_rate: int) -> int:
    return round(params.hold_ms * 1e-3 * sample_rate)


def _reduction(env: np.ndarray, params: BassLimiterParams, sample_rate: int,
               state: lim.GainState) -> tuple[np.ndarray, lim.GainState]:
    """The limiter's gain computer on the low band's peak envelope (no detector context: hold 1)."""
    return lim.reduction_curve(env, over_db=-params.threshold_db,
                               release_per_sample=lim.release_coefficient(params.release_ms, sample_rate),
                               release_samples=params.release_ms * 1e-3 * sample_rate,
                               lookahead=_lookahead(params, sample_rate), hold=1,
                               hold_extra=_hold(params, sample_rate), state=state)


def process(x: np.ndarray, sample_rate: int, params: BassLimiterParams,
            state: BassLimiterState | None = None) -> tuple[np.ndarray, BassLimiterState]:
    """Limit the low band of ``x`` (channels, samples); the output lags by :func:`latency_samples`."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ParameterError(f"audio must be (channels, samples), got shape {x.shape}")
    if params.crossover_hz > 0.45 * sample_rate:
        raise ParameterError(f"crossover_hz = {params.crossover_hz:g} is too high for {sample_rate} Hz audio")
    h = lowpass_fir(params.crossover_hz, sample_rate)
    taps, delay = h.shape[0], split_delay_samples(params.crossover_hz, sample_rate)
    look = _lookahead(params, sample_rate)
    c, n = x.shape
    if state is None:
        state = BassLimiterState(np.zeros((c, taps - 1)), np.zeros((c, look)), np.zeros((c, look)),
                                 lim.new_gain_state(look, 1, _hold(params, sample_rate)), delay + look)
    elif state.tail.shape != (c, taps - 1) or state.low_delay.shape != (c, look):
        raise ParameterError("bass limiter state does not match these parameters; they changed between blocks")
    ext = np.concatenate((state.tail, x), axis=1)
    low, centre = split_low(ext, h)
    high = centre - low
    env = np.abs(low).max(axis=0) if c else np.zeros(n)
    red, gain_state = _reduction(env, params, sample_rate, state.gain)  # lags env by the look-ahead
    low_ext = np.concatenate((state.low_delay, low), axis=1)
    high_ext = np.concatenate((state.high_delay, high), axis=1)
    y = high_ext[:, :n] + low_ext[:, :n] * np.power(10.0, -red / 20.0)
    pre = state.pre
    if pre:
        # outputs before the input's time zero (the FIR's pre-ringing): silence, as the chain drops them
        k = min(pre, n)
        y[:, :k] = 0.0
        pre -= k
    return y, BassLimiterState(ext[:, ext.shape[1] - (taps - 1):].copy(), low_ext[:, n:].copy(),
                               high_ext[:, n:].copy(), gain_state, pre)


SPEC = ProcessorSpec(kind="bass_limiter", params_type=BassLimiterParams, process=process,
                     latency_samples=latency_samples, native_fx="")
