"""Parametric EQ shaped like REAPER's ReaEQ: bands of RBJ biquads plus a global gain.

Parameter conventions follow ReaEQ (REAPER_API.md section 4.2) so a chain maps onto a
``ReaEQ (Cockos)`` instance band by band:

* ``freq_hz`` 20..24000 Hz (ReaEQ's range). At process time a frequency at or above
  0.49 x sample rate is **clamped** to 0.49 x sample rate, because a chain designed at
  96 kHz may be rendered at 44.1 kHz; :func:`eq_response_db` uses the same clamp.
* ``gain_db`` -24..+12 dB (ReaEQ allows -inf..+12.04 dB). Used by ``band`` and the shelves;
  ignored by ``low_pass``, ``high_pass``, ``notch`` and ``band_pass`` (how ReaEQ treats gain on
  those types is not established).
* ``bw_oct`` 0.01..4 octaves (ReaEQ's BW). Mapping to the cookbook Q:

  - ``band``, ``notch``, ``band_pass``: the cookbook bandwidth form with its digital
    correction, ``1/Q = 2 sinh(ln2/2 * bw * w0/sin w0)``; ``bw`` is measured between the
    gain/2 points (band) or the -3 dB points (notch, band pass).
  - shelves and passes: ``Q = 1 / (2 sinh(ln2/2 * bw))`` (no digital correction; the corner is
    pre-warped by the bilinear design). ReaEQ's exact shelf law is unknown; with this choice
    ``bw`` = :data:`BUTTERWORTH_BW_OCT` (about 1.9 octaves) gives Q = 1/sqrt 2, i.e. a
    Butterworth low/high pass (-3 dB at ``freq_hz``) and the steepest shelf that is still
    monotonic (cookbook S = 1); smaller ``bw`` gives a resonant corner.
  - Left out (``None``), ``bw_oct`` defaults to 1.0 octave for ``band``/``notch``/``band_pass``
    and to :data:`BUTTERWORTH_BW_OCT` for shelves and passes.

* ``EqParams.gain_db`` is ReaEQ's Global Gain, -60..+12 dB.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np

from ..errors import ParameterError
from ..params import Params, check_choice, check_range
from . import biquad
from .processor import ProcessorSpec

BAND_TYPES = ("low_shelf", "high_shelf", "band", "low_pass", "high_pass", "notch", "band_pass")

# ReaEQ's internal BANDTYPEx numbering (TrackFX_SetNamedConfigParm), REAPER_API.md 4.1.
REAEQ_BANDTYPE = {
    "low_shelf": 0, "high_shelf": 1, "low_pass": 3, "high_pass": 4, "notch": 6, "band_pass": 7, "band": 8,
}

BUTTERWORTH_BW_OCT = biquad.q_to_bw_oct(biquad.BUTTERWORTH_Q)  # ~1.8999 octaves
DEFAULT_BW_OCT = {
    "band": 1.0, "notch": 1.0, "band_pass": 1.0,
    "low_shelf": BUTTERWORTH_BW_OCT, "high_shelf": BUTTERWORTH_BW_OCT,
    "low_pass": BUTTERWORTH_BW_OCT, "high_pass": BUTTERWORTH_BW_OCT,
}
FREQ_RANGE_HZ = (20.0, 24000.0)
BAND_GAIN_RANGE_DB = (-24.0, 12.0)
BW_RANGE_OCT = (0.01, 4.0)
GLOBAL_GAIN_RANGE_DB = (-60.0, 12.0)
MAX_FREQ_FRACTION = 0.49  # of the sample rate, see the module docstring


@dataclasses.dataclass(frozen=True)
class EqBand(Params):
    """One ReaEQ band. ``type`` in :data:`BAND_TYPES`; freq_hz 20..24000; gain_db -24..+12;
    bw_oct 0.01..4 octaves (``None`` = the type's default)."""

    type: str
    freq_hz: float
    gain_db: float = 0.0
    bw_oct: float | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.bw_oct is None and self.type in DEFAULT_BW_OCT:
            object.__setattr__(self, "bw_oct", DEFAULT_BW_OCT[self.type])
        super().__post_init__()

    def validate(self) -> None:
        check_choice("type", self.type, BAND_TYPES)
        check_range("freq_hz", self.freq_hz, *FREQ_RANGE_HZ)
        check_range("gain_db", self.gain_db, *BAND_GAIN_RANGE_DB)
        check_range("bw_oct", self.bw_oct, *BW_RANGE_OCT)
        if not isinstance(self.enabled, bool):
            raise ParameterError(f"enabled must be true or false, got {self.enabled!r}")

    def sos(self, sample_rate: int) -> np.ndarray:
        """This band's sos rows, shape (0, 6) when it is the identity (disabled or 0 dB band/shelf)."""
        if not self.enabled:
            return np.zeros((0, 6))
        return band_sos(self.type, self.freq_hz, self.gain_db, cast(float, self.bw_oct), sample_rate)


def band_sos(kind: str, freq_hz: float, gain_db: float, bw_oct: float, sample_rate: int) -> np.ndarray:
    """The sos rows of one enabled band of ``kind`` (see :class:`EqBand`), shape (0, 6) when it is the
    identity (a 0 dB band or shelf). Callers check the ranges (EqBand does)."""
    if gain_db == 0.0 and kind in ("band", "low_shelf", "high_shelf"):
        return np.zeros((0, 6))
    f = min(float(freq_hz), MAX_FREQ_FRACTION * sample_rate)
    bw = float(bw_oct)
    if kind == "band":
        row = biquad.peaking(f, gain_db, bw, sample_rate)
    elif kind == "notch":
        row = biquad.notch(f, bw, sample_rate)
    elif kind == "band_pass":
        row = biquad.band_pass(f, bw, sample_rate)
    elif kind == "low_shelf":
        row = biquad.low_shelf(f, gain_db, biquad.bw_oct_to_q(bw), sample_rate)
    elif kind == "high_shelf":
        row = biquad.high_shelf(f, gain_db, biquad.bw_oct_to_q(bw), sample_rate)
    elif kind == "low_pass":
        row = biquad.low_pass(f, biquad.bw_oct_to_q(bw), sample_rate)
    else:
        row = biquad.high_pass(f, biquad.bw_oct_to_q(bw), sample_rate)
    return row.reshape(1, 6)


@dataclasses.dataclass(frozen=True)
class EqParams(Params):
    """ReaEQ instance: ``bands`` in order, and ``gain_db`` = Global Gain (-60..+12 dB)."""

    bands: tuple[EqBand, ...] = ()
    gain_db: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.bands, list):
            object.__setattr__(self, "bands", tuple(self.bands))
        super().__post_init__()

    def validate(self) -> None:
        if not isinstance(self.bands, tuple):
            raise ParameterError(f"bands must be a list of EQ bands, got {type(self.bands).__name__}")
        for i, band in enumerate(self.bands):
            if not isinstance(band, EqBand):
                raise ParameterError(f"band {i + 1} must be an EqBand, got {type(band).__name__}")
        check_range("gain_db", self.gain_db, *GLOBAL_GAIN_RANGE_DB)


def eq_sos(params: EqParams, sample_rate: int) -> np.ndarray:
    """Cascade of all enabled, non-identity bands: float64 sos (sections, 6). Global gain excluded."""
    rows = [band.sos(sample_rate) for band in params.bands]
    return np.vstack(rows) if rows else np.zeros((0, 6))


def eq_response_db(params: EqParams, sample_rate: int, freqs_hz: np.ndarray) -> np.ndarray:
    """Magnitude response in dB at ``freqs_hz`` (any shape), including the global gain.

    Exact zeros (a notch at its centre) are floored at -300 dB.
    """
    return sos_response_db(eq_sos(params, sample_rate), sample_rate, freqs_hz) + params.gain_db


def sos_response_db(sos: np.ndarray, sample_rate: int, freqs_hz: np.ndarray) -> np.ndarray:
    """:func:`eq_response_db` of bare sos rows (no global gain)."""
    h = biquad.sos_response(sos, sample_rate, freqs_hz)
    db: np.ndarray = 20.0 * np.log10(np.maximum(np.abs(h), 1e-15))
    return db


def process(x: np.ndarray, sample_rate: int, params: EqParams,
            state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply the EQ to ``x`` (channels, samples). ``state`` is the sos filter memory (or None)."""
    x = np.asarray(x, dtype=np.float64)
    y, state = biquad.sosfilt_block(eq_sos(params, sample_rate), x, state)
    if params.gain_db != 0.0:
        y *= 10.0 ** (params.gain_db / 20.0)
    return y, state


SPEC = ProcessorSpec(kind="eq", params_type=EqParams, process=process, native_fx="ReaEQ (Cockos)")
