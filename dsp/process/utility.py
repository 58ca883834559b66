"""Utility stages: static gain, DC removal, subsonic high-pass.

* ``gain``: multiply by ``10^(gain_db/20)``, gain_db -60..+36 dB.
* ``dc``: 1st-order DC blocker ``H(z) = g (1 - z^-1) / (1 - R z^-1)`` with its -3 dB corner at
  :data:`DC_CORNER_HZ` (5 Hz); ``g = (1 + R) / 2`` makes the gain exactly 1 at Nyquist.
  No REAPER native FX is named for it (ReaEQ cannot go below 20 Hz).
* ``high_pass``: Butterworth high-pass of order 2/4/6/8 at freq_hz 20..1000 Hz, built from
  RBJ 2nd-order high-pass sections with the Butterworth Qs, i.e. exactly ``order/2`` ReaEQ
  ``high_pass`` bands (see :func:`high_pass_eq_bands`). Frequencies at or above 0.49 x the
  sample rate are clamped, as in :mod:`dsp.process.eq`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import ParameterError
from ..params import Params, check_range
from . import biquad, eq
from .processor import ProcessorSpec

GAIN_RANGE_DB = (-60.0, 36.0)
DC_CORNER_HZ = 5.0
HIGH_PASS_RANGE_HZ = (20.0, 1000.0)  # ReaEQ cannot go below 20 Hz
HIGH_PASS_ORDERS = (2, 4, 6, 8)


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ParameterError(f"audio must be (channels, samples), got shape {x.shape}")
    return x


# --- gain ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GainParams(Params):
    """Static gain, gain_db -60..+36 dB."""

    gain_db: float = 0.0

    def validate(self) -> None:
        check_range("gain_db", self.gain_db, *GAIN_RANGE_DB)


def process_gain(x: np.ndarray, sample_rate: int, params: GainParams,
                 state: None = None) -> tuple[np.ndarray, None]:
    """``x * 10^(gain_db/20)``; stateless (state stays None)."""
    x = _as_2d(x)
    if params.gain_db == 0.0:
        return x.copy(), None
    return x * (10.0 ** (params.gain_db / 20.0)), None


# --- DC blocker ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DcParams(Params):
    """DC removal (no parameters; corner fixed at 5 Hz)."""


def dc_sos(sample_rate: int) -> np.ndarray:
    """The DC blocker as one sos row (1, 6)."""
    # Pole radius for a -3 dB corner at DC_CORNER_HZ (exact enough: corner << sample rate).
    r = math.exp(-2.0 * math.pi * DC_CORNER_HZ / sample_rate)
    g = (1.0 + r) / 2.0
    return np.array([[g, -g, 0.0, 1.0, -r, 0.0]])


def process_dc(x: np.ndarray, sample_rate: int, params: DcParams,
               state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Remove DC from ``x`` (channels, samples); ``state`` is the filter memory."""
    return biquad.sosfilt_block(dc_sos(sample_rate), _as_2d(x), state)


# --- subsonic high-pass ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HighPassParams(Params):
    """Butterworth high-pass: freq_hz 20..1000 Hz (-3 dB point), order 2, 4, 6 or 8."""

    freq_hz: float = 25.0
    order: int = 4

    def validate(self) -> None:
        check_range("freq_hz", self.freq_hz, *HIGH_PASS_RANGE_HZ)
        if isinstance(self.order, bool) or not isinstance(self.order, int):
            raise ParameterError(f"order must be an integer, got {self.order!r}")
        if self.order not in HIGH_PASS_ORDERS:
            raise ParameterError(f"order = {self.order} is not one of: 2, 4, 6, 8")


def high_pass_eq_bands(params: HighPassParams) -> tuple[eq.EqBand, ...]:
    """The high-pass as ReaEQ ``high_pass`` bands, one per 2nd-order section (ascending Q)."""
    return tuple(
        eq.EqBand("high_pass", params.freq_hz, bw_oct=biquad.q_to_bw_oct(q))
        for q in biquad.butterworth_qs(params.order)
    )


def high_pass_sos(params: HighPassParams, sample_rate: int) -> np.ndarray:
    """The high-pass as sos rows (order/2, 6)."""
    return eq.eq_sos(eq.EqParams(bands=high_pass_eq_bands(params)), sample_rate)


def process_high_pass(
    x: np.ndarray, sample_rate: int, params: HighPassParams, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """High-pass ``x`` (channels, samples); ``state`` is the filter memory."""
    return biquad.sosfilt_block(high_pass_sos(params, sample_rate), _as_2d(x), state)


GAIN_SPEC = ProcessorSpec(kind="gain", params_type=GainParams, process=process_gain, native_fx="")
DC_SPEC = ProcessorSpec(kind="dc", params_type=DcParams, process=process_dc, native_fx="")
HIGH_PASS_SPEC = ProcessorSpec(
    kind="high_pass", params_type=HighPassParams, process=process_high_pass, native_fx="ReaEQ (Cockos)"
)
SPECS = (GAIN_SPEC, DC_SPEC, HIGH_PASS_SPEC)
