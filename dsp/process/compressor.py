"""Glue compressor with ReaComp's controls (maps onto ``ReaComp (Cockos)``).

Feed-forward, log-domain design (see :mod:`dsp.process.envelope`): a stereo-linked RMS or peak
detector, a soft-knee static curve and attack/release smoothing of the gain reduction in
dB. Parameters and their ReaComp counterparts (REAPER_API.md section 4.3):

* ``threshold_db`` -60..0 dBFS (Threshold).
* ``ratio`` 1..100; **100 means infinity:1 (limiting)**, as ReaComp's top setting (JSON
  has no infinity).
* ``attack_ms`` 0..500, ``release_ms`` 0..5000 (Attack, Release): one-pole time
  constants, the time to reach 1 - 1/e of a step.
* ``knee_db`` 0..24 (Knee): full width of the quadratic knee, centred on the threshold.
* ``rms_ms`` 0..1000 (RMS size): detector averaging window; 0 = peak detection.
* ``makeup_db`` -24..+6 (Wet acts as make-up; its native range 0..2 linear tops out at
  +6.02 dB, so more cannot be mapped); ``auto_makeup`` (Auto Make Up Gain)
  adds the static gain reduction of a 0 dBFS detector level, i.e. 0 dBFS in gives 0 dBFS
  out (Giannoulis et al. 2012); ReaComp's exact auto make-up law is not documented.
* ``mix_pct`` 0..100: parallel compression. ReaComp: Wet = mix * make-up, Dry = 1 - mix
  (both linear amplitudes).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import numpy as np

from ..errors import ParameterError
from ..params import Params, check_range
from . import envelope
from .processor import ProcessorSpec

THRESHOLD_RANGE_DB = (-60.0, 0.0)
RATIO_RANGE = (1.0, 100.0)
LIMIT_RATIO = 100.0  # this ratio (the top of the range) means infinity:1
ATTACK_RANGE_MS = (0.0, 500.0)
RELEASE_RANGE_MS = (0.0, 5000.0)
KNEE_RANGE_DB = (0.0, 24.0)
RMS_RANGE_MS = (0.0, 1000.0)
MAKEUP_RANGE_DB = (-24.0, 6.0)  # ReaComp Wet is 0..2 linear, i.e. at most +6.02 dB
MIX_RANGE_PCT = (0.0, 100.0)


def effective_ratio(ratio: float) -> float:
    """The ratio the gain computer uses: ``ratio``, or infinity at :data:`LIMIT_RATIO` and above."""
    return math.inf if ratio >= LIMIT_RATIO else float(ratio)


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ParameterError(f"{name} must be true or false, got {value!r}")


@dataclasses.dataclass(frozen=True)
class CompressorParams(Params):
    """ReaComp-shaped settings; ranges in the module docstring."""

    threshold_db: float = 0.0
    ratio: float = 4.0
    attack_ms: float = 3.0
    release_ms: float = 100.0
    knee_db: float = 0.0
    rms_ms: float = 5.0
    makeup_db: float = 0.0
    auto_makeup: bool = False
    mix_pct: float = 100.0

    def validate(self) -> None:
        check_range("threshold_db", self.threshold_db, *THRESHOLD_RANGE_DB)
        check_range("ratio", self.ratio, *RATIO_RANGE)
        check_range("attack_ms", self.attack_ms, *ATTACK_RANGE_MS)
        check_range("release_ms", self.release_ms, *RELEASE_RANGE_MS)
        check_range("knee_db", self.knee_db, *KNEE_RANGE_DB)
        check_range("rms_ms", self.rms_ms, *RMS_RANGE_MS)
        check_range("makeup_db", self.makeup_db, *MAKEUP_RANGE_DB)
        check_bool("auto_makeup", self.auto_makeup)
        check_range("mix_pct", self.mix_pct, *MIX_RANGE_PCT)


class SideChainParams(Protocol):
    """The compressor's side-chain fields, shared by CompressorParams and the multiband's BandCompParams."""

    @property
    def threshold_db(self) -> float: ...
    @property
    def ratio(self) -> float: ...
    @property
    def attack_ms(self) -> float: ...
    @property
    def release_ms(self) -> float: ...
    @property
    def knee_db(self) -> float: ...
    @property
    def rms_ms(self) -> float: ...
    @property
    def makeup_db(self) -> float: ...


def side_chain(params: SideChainParams, sample_rate: int) -> envelope.SideChain:
    """Kernel constants for any params with the compressor's side-chain fields."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return envelope.side_chain(
        int(sample_rate),
        threshold_db=params.threshold_db,
        ratio=effective_ratio(params.ratio),
        knee_db=params.knee_db,
        attack_ms=params.attack_ms,
        release_ms=params.release_ms,
        rms_ms=params.rms_ms,
    )


def static_gain_db(level_db: float | np.ndarray, params: SideChainParams) -> np.ndarray:
    """Static gain reduction (dB, <= 0) for detector levels ``level_db``; no make-up."""
    return envelope.static_gain_db(
        level_db,
        threshold_db=params.threshold_db,
        ratio=effective_ratio(params.ratio),
        knee_db=params.knee_db,
    )


def total_makeup_db(params: SideChainParams) -> float:
    """``makeup_db`` plus, with ``auto_makeup``, the gain reduction at a 0 dBFS detector level."""
    auto = -float(static_gain_db(0.0, params)) if getattr(params, "auto_makeup", False) else 0.0
    return float(params.makeup_db) + auto


def _wet_dry(params: CompressorParams) -> tuple[float, float]:
    mix = params.mix_pct / 100.0
    return mix * 10.0 ** (total_makeup_db(params) / 20.0), 1.0 - mix


def process(
    x: np.ndarray, sample_rate: int, params: CompressorParams, state: envelope.EnvelopeState | None = None
) -> tuple[np.ndarray, envelope.EnvelopeState]:
    """Compress ``x`` (channels, samples); one gain for all channels. Returns float64 output and state."""
    x = np.asarray(x)
    sc = side_chain(params, sample_rate)
    wet, dry = _wet_dry(params)
    return envelope.compress(x, sc, state, wet_lin=wet, dry_lin=dry)


def gain_reduction_db(x: np.ndarray, sample_rate: int, params: CompressorParams) -> np.ndarray:
    """Per-sample gain reduction (dB, <= 0, make-up and mix excluded) over the whole of ``x``."""
    g, _ = envelope.compute_gain_db(np.asarray(x), side_chain(params, sample_rate))
    return g


def static_curve_db(level_db: float | np.ndarray, params: CompressorParams) -> np.ndarray:
    """Steady-state output level (dB) for a detector level ``level_db`` (dB), make-up and mix included.

    Dry and wet are the same signal scaled, so the parallel mix adds in amplitude.
    """
    level = np.asarray(level_db, dtype=np.float64)
    wet, dry = _wet_dry(params)
    with np.errstate(divide="ignore"):
        return level + 20.0 * np.log10(dry + wet * 10.0 ** (static_gain_db(level, params) / 20.0))


SPEC = ProcessorSpec(
    kind="compressor", params_type=CompressorParams, process=process, native_fx="ReaComp (Cockos)"
)
