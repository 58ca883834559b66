"""Stereo width per band (mid/side) and mono bass.

``M = (L + R) / 2``, ``S = (L - R) / 2``; the output is ``L = M' + S'``, ``R = M' - S'``.

* **Width** scales the side signal: ``width_pct`` 0 (mono) .. 100 (unchanged) .. 200 (side x2),
  one value per band. With equal widths nothing is split. With different widths the side is
  split by :func:`dsp.process.crossover.split_bands` (LR4) and each band scaled; the bands sum to the
  crossovers' all-pass, so the mid goes through the same all-passes to stay phase-aligned
  with the side.
* **Mono bass** (``mono_bass_hz`` > 0) high-passes the side with a Linkwitz-Riley 8th-order
  filter (two cascaded 4th-order Butterworths, -6 dB at the cutoff, 48 dB/octave) and passes
  the mid through the matching 4th-order all-pass (LR8 low + high = that all-pass), so above
  the cutoff mid and side keep their phase relation. LR8 rather than LR4: an LR4 high-pass is
  only -24.6 dB one octave below its cutoff and -0.53 dB one octave above, and subtracting an
  LR4 low-passed side from the side is worse still (+2.5 dB at half the cutoff).
* Phase: when splitting or mono bass is active, the whole output is all-passed (same phase
  shift on every channel), not bit-identical to the input in phase.

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
    side: np.ndarray  # (sections, 2) side high-pass memory


def _uniform(params: StereoParams) -> bool:
    return all(w == params.width_pct[0] for w in params.width_pct)


def _lr8_qs() -> tuple[float, ...]:
    return biquad.butterworth_qs(4)


def _mid_sos(params: StereoParams, sample_rate: int) -> np.ndarray:
    q = biquad.BUTTERWORTH_Q
    rows = [] if _uniform(params) else [biquad.all_pass(f, q, sample_rate) for f in params.crossovers_hz]
    if params.mono_bass_hz:
        rows += [biquad.all_pass(params.mono_bass_hz, qq, sample_rate) for qq in _lr8_qs()]
    return np.vstack(rows) if rows else np.zeros((0, 6))


def _side_sos(params: StereoParams, sample_rate: int) -> np.ndarray:
    if not params.mono_bass_hz:
        return np.zeros((0, 6))
    return np.vstack([biquad.high_pass(params.mono_bass_hz, q, sample_rate) for q in _lr8_qs() * 2])


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
    if state is None:
        crossover.check_crossovers(params.crossovers_hz, sample_rate)
        state = StereoState(None, np.zeros((len(cm), 2)), np.zeros((len(cs), 2)))
    elif state.mid.shape != (len(cm), 2) or state.side.shape != (len(cs), 2):
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
    return out, StereoState(xover_state, zm, zs)


SPEC = ProcessorSpec(kind="stereo", params_type=StereoParams, process=process, native_fx="")
