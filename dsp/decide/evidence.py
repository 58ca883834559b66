"""The evidence a corrective stage needs before the planner uses it ("first, do no harm").

Each function reads measurements and returns a small frozen record: whether the move is
justified, how sure the planner is (0..1) and the sentence that goes into the report. A move
with low confidence is shrunk or dropped by the caller; a move without evidence is listed as
"left alone" with the measurement that kept it out.

* :func:`bass_width` - mono bass only where the low end is really wide or out of phase: the
  level-weighted L/R correlation of the 1/3-octave bands from 30 to 120 Hz, not side energy
  alone (a big mono kick with a little reverb has side energy and correlation near 1).
* :func:`dynamics_need` - glue compression only when the delivery needs it (the limiter alone
  would have to take more than ``LIMITER_CLEAN_DB`` of peaks) or when the style or reference
  does (the loudness range is above what that music has when finished); never at a target the
  limiter alone reaches cleanly.
* :data:`STYLE_LRA_RANGE_LU` - honest loudness ranges per style (orchestral music runs 8-25 LU,
  not the 5 LU of looped game cues): engineering guidance, labelled as such, not measured here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..measure.analysis import Analysis

# --- mono bass ------------------------------------------------------------------------------------

BASS_BAND_HZ = (30.0, 120.0)
MONO_BASS_MAX_CORRELATION = 0.2  # at or under this the low end is wide or out of phase
MONO_BASS_CUTOFF_HZ = 100.0
_BASS_PRESENT_DB = -25.0  # the 30-120 Hz region must be within this of the 40 Hz-16 kHz mean band


@dataclasses.dataclass(frozen=True)
class BassWidth:
    apply: bool
    correlation: float  # level-weighted L/R correlation over 30-120 Hz, -1..1
    side_mid_db: float  # level-weighted side/mid over 30-120 Hz
    confidence: float  # 0..1, how far below the threshold
    why: str


def bass_width(a: Analysis) -> BassWidth:
    """Is the low end wide or out of phase enough for mono bass? (stereo only)"""
    s = a.spectrum
    f = np.asarray(s.centers_hz, dtype=float)
    lv = np.asarray(s.level_db, dtype=float)
    corr = np.asarray(s.correlation, dtype=float)
    sm = np.asarray(s.side_mid_ratio_db, dtype=float)
    sel = (f >= BASS_BAND_HZ[0]) & (f <= BASS_BAND_HZ[1]) & np.isfinite(lv) & np.isfinite(corr)
    if a.channels != 2 or not sel.any():
        return BassWidth(False, 1.0, -120.0, 0.0, "not a stereo mix")
    w = 10 ** (lv[sel] / 10)
    c = float(np.sum(w * corr[sel]) / np.sum(w))
    side = float(10 * np.log10(max(np.sum(w * 10 ** (np.clip(sm[sel], -120, 40) / 10)) / np.sum(w), 1e-12)))
    mid_sel = (f >= 40) & (f <= 16000) & np.isfinite(lv)
    present = float(10 * np.log10(np.mean(w))) - float(10 * np.log10(np.mean(10 ** (lv[mid_sel] / 10))))
    if present < _BASS_PRESENT_DB:
        return BassWidth(False, c, side, 0.0, f"bass width unchanged: hardly any low end ({present:.0f} dB under "
                                              "the average band)")
    if c > MONO_BASS_MAX_CORRELATION:
        return BassWidth(False, c, side, 0.0,
                         f"bass width unchanged: the low end (30-120 Hz) is coherent, L/R correlation {c:.2f} "
                         f"(mono bass only at {MONO_BASS_MAX_CORRELATION:g} or less; side {side:.1f} dB under the mid)")
    conf = float(np.clip((MONO_BASS_MAX_CORRELATION - c) / 0.4 + 0.5, 0.5, 1.0))
    state = "out of phase" if c < 0 else "wide"
    return BassWidth(True, c, side, conf,
                     f"the low end is {state}: L/R correlation {c:.2f} over 30-120 Hz (side {side:+.1f} dB against "
                     f"the mid); mono below {MONO_BASS_CUTOFF_HZ:g} Hz, linear-phase so the bass keeps its timing "
                     f"(confidence {conf:.0%})")


# --- dynamics -------------------------------------------------------------------------------------

LIMITER_CLEAN_DB = 4.0  # peak reduction a true-peak limiter does cleanly on its own
STYLE_CONFIDENCE_FOR_DYNAMICS = 0.6  # below this the style does not drive compression
# (low, high) loudness range of finished music per style, LU: engineering guidance, not measured
# from the corpus (the corpus is game music, whose looped cues run narrower than the real styles).
STYLE_LRA_RANGE_LU: dict[str, tuple[float, float]] = {
    "orchestral": (8.0, 25.0), "ambient": (5.0, 20.0), "electronic": (3.0, 11.0),
    "rock": (3.0, 10.0), "pop": (3.0, 9.0), "hiphop": (3.0, 9.0),
}
GENERIC_LRA_RANGE_LU = (3.0, 20.0)  # when unsure: broad
STYLE_LRA_SOURCE = "engineering guidance for finished music of that style (not measured here)"


@dataclasses.dataclass(frozen=True)
class DynamicsNeed:
    compress: bool
    need_db: float  # how much dynamics should go, dB/LU (0 = none)
    limiter_load_db: float  # peak reduction the limiter alone would do beyond LIMITER_CLEAN_DB
    reasons: tuple[str, ...]  # why compress (empty when not)
    why_not: str  # why not (when not)


def lra_range_for(style: str | None, confidence: float) -> tuple[tuple[float, float], str]:
    """The loudness range a style's finished music has, or the broad generic one when unsure."""
    if style in STYLE_LRA_RANGE_LU and confidence >= STYLE_CONFIDENCE_FOR_DYNAMICS:
        return STYLE_LRA_RANGE_LU[style], f"{style} ({STYLE_LRA_SOURCE})"
    return GENERIC_LRA_RANGE_LU, "any finished music (style unsure: broad range)"


def peak_reduction_db(a: Analysis, *, target_lufs: float, ceiling_dbtp: float, loudness: bool) -> float:
    """What must come off the loudest peaks to reach ``target_lufs`` under ``ceiling_dbtp`` with
    the mix's peak-to-loudness ratio, dB (negative: room to spare; 0 when the loudness is kept)."""
    return (a.plr_db - (ceiling_dbtp - target_lufs)) if loudness else 0.0


def dynamics_need(a: Analysis, *, target_lufs: float, ceiling_dbtp: float, loudness: bool,
                  lra_range_lu: tuple[float, float], range_source: str,
                  reference_lra_lu: float | None = None, reference_plr_db: float | None = None,
                  looks_mastered: bool = False, bass_limiter_db: float = 0.0) -> DynamicsNeed:
    """Does the delivery, the style or the reference need compression, and how much?
    ``bass_limiter_db``: the part of the peak reduction a bass limiter takes before the limiter."""
    peak_reduction = peak_reduction_db(a, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp, loudness=loudness)
    load = peak_reduction - min(max(bass_limiter_db, 0.0), max(peak_reduction, 0.0)) - LIMITER_CLEAN_DB
    reasons: list[str] = []
    need = 0.0
    if load > 0:
        need = max(need, load)
        reasons.append(f"{target_lufs:g} LUFS at {ceiling_dbtp:g} dBTP needs about {peak_reduction:.1f} dB of peak "
                       f"reduction (PLR {a.plr_db:.1f} dB); more than the {LIMITER_CLEAN_DB:g} dB a limiter takes "
                       "cleanly alone, so the compressor shares the work")
    if reference_lra_lu is not None and math.isfinite(reference_lra_lu):
        excess = a.lra_lu - reference_lra_lu
        plr_excess = a.plr_db - (reference_plr_db if reference_plr_db is not None else a.plr_db)
        if excess > 1.0 or plr_excess > 1.0:
            need = max(need, excess, plr_excess)
            reasons.append(f"the reference moves less: LRA {a.lra_lu:.1f} LU against its {reference_lra_lu:.1f}"
                           + (f", PLR {a.plr_db:.1f} dB against its {reference_plr_db:.1f}"
                              if reference_plr_db is not None else ""))
    elif a.lra_lu > lra_range_lu[1]:
        need = max(need, a.lra_lu - lra_range_lu[1])
        reasons.append(f"LRA {a.lra_lu:.1f} LU is above the {lra_range_lu[1]:g} LU that {range_source} rarely exceeds")
    if looks_mastered:
        return DynamicsNeed(False, 0.0, load, (), "no glue compression: the input looks mastered already")
    if reasons:
        return DynamicsNeed(True, need, load, tuple(reasons), "")
    bass = (f" (the bass limiter takes about {min(bass_limiter_db, peak_reduction):.1f} dB of it first)"
            if bass_limiter_db > 0 else "")
    return DynamicsNeed(False, 0.0, load, (),
                        f"no glue compression: the limiter alone reaches {target_lufs:g} LUFS with about "
                        f"{max(peak_reduction, 0.0):.1f} dB of peak reduction{bass}, and LRA {a.lra_lu:.1f} LU is "
                        f"within "
                        f"{lra_range_lu[0]:g}-{lra_range_lu[1]:g} LU ({range_source})")
