"""Stereo width per band (mid/side) and mono bass.

``M = (L + R) / 2``, ``S = (L - R) / 2``; the output is ``L = M' + S'``, ``R = M' - S'``.

* **Width** scales the side signal: ``width_pct`` 0 (mono) .. 100 (unchanged) .. 200 (side x2),
  one value per band. With equal widths nothing is split. With different widths the side is
  split by :func:`dsp.process.crossover.split_bands` (LR4) and each band scaled; the bands sum to the
  crossovers' all-pass, so the mid goes through the same all-passes to stay phase-aligned
  with the side.
* **Mono bass** (``mono_bass_hz`` > 0) removes the side below the cutoff with a linear-phase
  split: a Kaiser-windowed FIR low-pass (``8 * sample_rate / cutoff`` taps, odd, -6 dB at the
  cutoff, stop band about -60 dB from half the cutoff) is subtracted from the side delayed by
  its group delay, and the mid is delayed by the same amount. Nothing is phase-rotated: the
  bass keeps its timing and waveform (so its crest factor), the side above about 1.5x the
  cutoff passes within 0.01 dB, and the whole output lags by ``latency_samples`` (about 80
  ms at 100 Hz), which the chain renderer compensates; those first outputs (before the input's
  time zero, where the FIR pre-rings) are silence, so a chain gives what its stages give one after
  another on the aligned signal. (An IIR crossover - LR8 - delays
  everything under the cutoff by 8-12 ms against the rest and rotates the bass's phase.)
* Phase: when splitting widths, the whole output is all-passed (same phase shift on every
  channel), not bit-identical to the input in phase.

Only 2-channel audio is processed; every other channel count passes through unchanged
(M/S is not defined for it). REAPER has no native FX for this (``native_fx`` is empty).
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from ..errors import ParameterError
from ..params import Params, check_range
from . import biquad, crossover
from .fir import filter_valid, lowpass_fir, split_delay_samples
from .processor import ProcessorSpec

WIDTH_RANGE_PCT = (0.0, 200.0)
MONO_BASS_RANGE_HZ = (20.0, 1000.0)  # or 0 = off
CROSSOVER_RANGE_HZ = (20.0, 24000.0)


@dataclasses.dataclass(frozen=True)
class StereoParams(Params):
    """width_pct: one width per band (0..200 %), ``len(crossovers_hz) + 1`` values;
    crossovers_hz: LR4 band edges (ascending, >= 1/3 octave apart);
    mono_bass_hz: 0 = off, else 20..1000 Hz."""

    width_pct: tuple[float, ...] = (100.0,)
    crossovers_hz: tuple[float, ...] = ()
    mono_bass_hz: float = 0.0

    def __post_init__(self) -> None:
        for name in ("width_pct", "crossovers_hz"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        super().__post_init__()

    def validate(self) -> None:
        for name in ("width_pct", "crossovers_hz"):
            if not isinstance(getattr(self, name), tuple):
                raise ParameterError(f"{name} must be a list of numbers")
        if len(self.width_pct) != len(self.crossovers_hz) + 1:
            raise ParameterError(
                f"width_pct needs one value per band: {len(self.crossovers_hz) + 1} for "
                f"{len(self.crossovers_hz)} crossover(s), got {len(self.width_pct)}"
            )
        for i, w in enumerate(self.width_pct):
            check_range(f"width_pct[{i}]", w, *WIDTH_RANGE_PCT)
        for i, f in enumerate(self.crossovers_hz):
            check_range(f"crossovers_hz[{i}]", f, *CROSSOVER_RANGE_HZ)
        # Order and spacing; the Nyquist limit is checked against the real rate at process time.
        crossover.check_crossovers(self.crossovers_hz, 10**9)
        if self.mono_bass_hz != 0.0:
            check_range("mono_bass_hz", self.mono_bass_hz, *MONO_BASS_RANGE_HZ)

    @property
    def is_identity(self) -> bool:
        return all(w == 100.0 for w in self.width_pct) and self.mono_bass_hz == 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class StereoState:
    """Filter memory between blocks (opaque)."""

    xover: crossover.CrossoverState | None
    mid: np.ndarray  # (sections, 2) mid all-pass memory
    side: np.ndarray  # (sections, 2) side high-pass memory (unused: mono bass is linear-phase)
    tail: np.ndarray | None = None  # (2, taps - 1): the last mid and side samples, for the mono-bass FIR
    pre: int = 0  # output samples still before time zero (the FIR's pre-ringing): emitted as silence


def _uniform(params: StereoParams) -> bool:
    return all(w == params.width_pct[0] for w in params.width_pct)


def latency_samples(params: StereoParams, sample_rate: int) -> int:
    """Output lag: the mono-bass FIR's group delay (0 without mono bass)."""
    if not params.mono_bass_hz:
        return 0
    return split_delay_samples(params.mono_bass_hz, sample_rate)


def _mid_sos(params: StereoParams, sample_rate: int) -> np.ndarray:
    q = biquad.BUTTERWORTH_Q
    rows = [] if _uniform(params) else [biquad.all_pass(f, q, sample_rate) for f in params.crossovers_hz]
    return np.vstack(rows) if rows else np.zeros((0, 6))


def _side_sos(params: StereoParams, sample_rate: int) -> np.ndarray:
    return np.zeros((0, 6))


def _mono_bass(y: np.ndarray, sample_rate: int, cutoff_hz: float, tail: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Linear-phase mono bass on L/R ``y``: delayed mid + (delayed side - FIR low-passed side)."""
    h = lowpass_fir(cutoff_hz, sample_rate)
    n_taps = h.shape[0]
    delay = split_delay_samples(cutoff_hz, sample_rate)
    if tail is None:
        tail = np.zeros((2, n_taps - 1))
    msig = np.vstack(((y[0] + y[1]) * 0.5, (y[0] - y[1]) * 0.5))
    ext = np.concatenate((tail, msig), axis=1)  # (2, taps - 1 + n)
    n = y.shape[1]
    mid = ext[0, n_taps - 1 - delay: n_taps - 1 - delay + n]
    side = ext[1, n_taps - 1 - delay: n_taps - 1 - delay + n]
    if n:
        side = side - filter_valid(ext[1:2], h)[0]
    out = np.vstack((mid + side, mid - side))
    return out, ext[:, ext.shape[1] - (n_taps - 1):].copy()


@numba.njit(cache=True, nogil=True, fastmath=False)
def _ms_kernel(x: np.ndarray, side_in: np.ndarray, width: float, cm: np.ndarray, cs: np.ndarray, zm: np.ndarray,
               zs: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    # One pass: M/S from x (or the given side), mid and side filter cascades (direct form II
    # transposed, rows b0 b1 b2 a1 a2), then back to L/R. The two cascades overlap in the CPU.
    n = x.shape[1]
    own_side = side_in.shape[1] == 0
    for i in range(n):
        m = (x[0, i] + x[1, i]) * 0.5
        if own_side:
            s = (x[0, i] - x[1, i]) * 0.5 * width
        else:
            s = side_in[0, i]
        for j in range(cm.shape[0]):
            y = cm[j, 0] * m + zm[j, 0]
            zm[j, 0] = cm[j, 1] * m - cm[j, 3] * y + zm[j, 1]
            zm[j, 1] = cm[j, 2] * m - cm[j, 4] * y
            m = y
        for j in range(cs.shape[0]):
            y = cs[j, 0] * s + zs[j, 0]
            zs[j, 0] = cs[j, 1] * s - cs[j, 3] * y + zs[j, 1]
            zs[j, 1] = cs[j, 2] * s - cs[j, 4] * y
            s = y
        out[0, i] = m + s
        out[1, i] = m - s


def process(x: np.ndarray, sample_rate: int, params: StereoParams,
            state: StereoState | None = None) -> tuple[np.ndarray, StereoState | None]:
    """Apply width/mono bass to stereo ``x`` (2, samples); other channel counts pass unchanged."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ParameterError(f"audio must be (channels, samples), got shape {x.shape}")
    if x.shape[0] != 2 or params.is_identity:
        return x.copy(), state
    split = not _uniform(params)
    cm = _mid_sos(params, sample_rate)
    cs = _side_sos(params, sample_rate)
    n_tail = lowpass_fir(params.mono_bass_hz, sample_rate).shape[0] - 1 if params.mono_bass_hz else 0
    if state is None:
        crossover.check_crossovers(params.crossovers_hz, sample_rate)
        state = StereoState(None, np.zeros((len(cm), 2)), np.zeros((len(cs), 2)),
                            np.zeros((2, n_tail)) if n_tail else None, n_tail // 2)
    elif (state.mid.shape != (len(cm), 2) or state.side.shape != (len(cs), 2)
          or (state.tail.shape[1] if state.tail is not None else 0) != n_tail):
        raise ParameterError("stereo state does not match these parameters; they changed between blocks")
    out = np.empty(x.shape)
    xover_state = state.xover
    side = np.zeros((1, 0))
    if split:
        bands, xover_state = crossover.split_bands(
            (x[0:1] - x[1:2]) * 0.5, sample_rate, params.crossovers_hz, xover_state
        )
        side = bands[0] * (params.width_pct[0] / 100.0)
        for w, band in zip(params.width_pct[1:], bands[1:], strict=True):
            side += band * (w / 100.0)
    zm, zs = state.mid.copy(), state.side.copy()
    cols = [0, 1, 2, 4, 5]
    _ms_kernel(x, side, params.width_pct[0] / 100.0,
               np.ascontiguousarray(cm[:, cols]), np.ascontiguousarray(cs[:, cols]), zm, zs, out)
    tail, pre = state.tail, state.pre
    if params.mono_bass_hz:
        out, tail = _mono_bass(out, sample_rate, params.mono_bass_hz, state.tail)
        if pre:
            # the first ``latency`` outputs lie before the input's time zero (the chain renderer drops
            # them); silence there, so later stages start from rest exactly as on the aligned signal
            k = min(pre, int(x.shape[1]))
            out[:, :k] = 0.0
            pre -= k
    return out, StereoState(xover_state, zm, zs, tail, pre)


SPEC = ProcessorSpec(kind="stereo", params_type=StereoParams, process=process, latency_samples=latency_samples,
                     native_fx="")
