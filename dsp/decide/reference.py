"""Reference mastering: match the tonal balance and loudness of one or more reference tracks.

The reference's long-term 1/3-octave shape (level removed, averaged over the references) is the
tonal target; its integrated loudness (mean over the references) the loudness target; the
ceiling stays a true-peak ceiling (-1 dBTP by default), which the peer Matchering does not have.

The EQ is a smoothed match: the difference to the reference is smoothed over about half an
octave above 200 Hz and a full octave below (a reference's notes are not its tonal balance),
capped at ``MATCH_CAP_DB`` (+/-6 dB by default, times ``--tone``; a warning says when the
difference went beyond the cap), and fitted as one ReaEQ bell per 1/3-octave band. The master is
rendered, its tonal error against that goal measured, and the fit refined on what is left, at
most ``refine_steps`` times.

Movement, not only colour: the reference's own LRA is the dynamics target (glue compression
only when the mix moves more than the reference by over 1 LU) and its side/mid ratio the width
target (a uniform width change when the mix is more than 1 dB off). Lossy references (MP3, Ogg,
Opus) are read like any other file.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ParameterError
from ..measure.analysis import Analysis, analyze
from ..process.chain import Chain, Stage
from ..process.stereo import StereoParams
from .eqfit import band_response_db, fit_graphic_eq
from .master import (
    Intent,
    MasterResult,
    ProgressFn,
    TonalTarget,
    generic_tolerance_db,
    master,
    plan_chain,
    tonal_deviation_db,
)
from .presets import Delivery

TONAL_BAND_LO_HZ, TONAL_BAND_HI_HZ = 40.0, 16000.0
_GOOD_ENOUGH_DB = 0.2  # stop refining once the mean tonal error is this small


@dataclasses.dataclass(frozen=True)
class ReferenceTarget:
    centers_hz: np.ndarray
    level_db: np.ndarray  # mean band level of the references (each with its own level removed)
    loudness_lufs: float
    names: tuple[str, ...]
    lra_lu: float = float("nan")  # mean loudness range of the references
    plr_db: float = float("nan")  # mean PLR
    side_mid_db: float = float("nan")  # mean side/mid power ratio (stereo width), dB


MATCH_CAP_DB = 6.0  # largest smoothed match move at --tone 100
WIDTH_MATCH_TOLERANCE_DB = 1.0


def side_mid_db(a: Analysis, weights_db: np.ndarray | None = None) -> float:
    """Level-weighted side/mid power ratio over 40 Hz-16 kHz from the analysis' band figures, dB.
    ``weights_db`` (per band) weighs the bands by another tonal balance (the reference's: after the
    match EQ the mix has it, so its width is compared band for band, not skewed by its own colour)."""
    f = np.asarray(a.spectrum.centers_hz, dtype=float)
    lv = np.asarray(a.spectrum.level_db, dtype=float) if weights_db is None else np.asarray(weights_db, dtype=float)
    n = min(len(f), len(lv))
    f, lv = f[:n], lv[:n]
    sm = np.asarray(a.spectrum.side_mid_ratio_db, dtype=float)[:n]
    sel = (f >= 40) & (f <= 16000) & np.isfinite(lv) & np.isfinite(sm)
    if a.channels < 2 or not sel.any():
        return -120.0
    w = 10 ** (lv[sel] / 10)
    return float(10 * np.log10(max(np.sum(w * 10 ** (np.clip(sm[sel], -120, 40) / 10)) / np.sum(w), 1e-12)))


def smooth_match_db(freqs: np.ndarray, diff_db: np.ndarray) -> np.ndarray:
    """``diff_db`` smoothed over about 1/2 octave above 200 Hz and 1 octave below (log frequency)."""
    f = np.asarray(freqs, dtype=float)
    d = np.asarray(diff_db, dtype=float)
    lf = np.log2(f)
    out = np.empty_like(d)
    for i in range(len(f)):
        half = 0.25 if f[i] >= 200 else 0.5
        sel = np.abs(lf - lf[i]) <= half + 1e-9
        out[i] = float(np.mean(d[sel]))
    return out


def tonal_error_db(a: Analysis, target_level_db: np.ndarray) -> float:
    """Mean absolute difference of 1/3-octave band levels, 40 Hz-16 kHz, level removed."""
    f = np.asarray(a.spectrum.centers_hz, dtype=float)
    n = min(len(f), len(target_level_db))
    f = f[:n]
    dev = tonal_deviation_db(f, np.asarray(a.spectrum.level_db, dtype=float)[:n], target_level_db[:n])
    sel = (f >= TONAL_BAND_LO_HZ) & (f <= TONAL_BAND_HI_HZ)
    return float(np.mean(np.abs(dev[sel])))


def reference_target(refs: list[Analysis], names: tuple[str, ...] = ()) -> ReferenceTarget:
    """Average shape and loudness of the references (bands present in all of them)."""
    if not refs:
        raise ParameterError("reference mode needs at least one reference track")
    n = min(len(r.spectrum.centers_hz) for r in refs)
    f = np.asarray(refs[0].spectrum.centers_hz, dtype=float)[:n]
    sel = (f >= TONAL_BAND_LO_HZ) & (f <= TONAL_BAND_HI_HZ)
    shapes = []
    for r in refs:
        lv = np.asarray(r.spectrum.level_db, dtype=float)[:n]
        shapes.append(lv - float(np.mean(lv[sel])))
    return ReferenceTarget(f, np.mean(shapes, axis=0), float(np.mean([r.integrated_lufs for r in refs])), names,
                           lra_lu=float(np.mean([r.lra_lu for r in refs])),
                           plr_db=float(np.mean([r.plr_db for r in refs])),
                           side_mid_db=float(np.mean([side_mid_db(r) for r in refs])))


def master_to_reference(
    x: np.ndarray,
    sample_rate: int,
    target: ReferenceTarget,
    delivery: Delivery,
    *,
    tone_pct: float = 100.0,
    match_loudness: bool = True,
    refine_steps: int = 2,
    before: Analysis | None = None,
    progress: ProgressFn | None = None,
    intent: Intent | None = None,
) -> tuple[MasterResult, float]:
    """Master ``x`` toward the reference; returns the result and its tonal error (dB).

    ``tone_pct`` (0-100) is how much of the tonal correction is applied; ``match_loudness``
    takes the reference's loudness as the target instead of the delivery preset's.
    """
    if not 0.0 <= tone_pct <= 100.0:
        raise ParameterError(f"tone amount {tone_pct:g}% is outside 0-100%")
    a = before if before is not None else analyze(x, sample_rate)
    d = dataclasses.replace(delivery, target_lufs=target.loudness_lufs) if match_loudness else delivery
    f = target.centers_hz
    n = len(f)
    levels = np.asarray(a.spectrum.level_db, dtype=float)[:n]
    intent = intent or Intent()
    ref_name = ", ".join(target.names) or "the reference"
    tonal = TonalTarget(f"reference: {ref_name}", tuple(float(v) for v in f), tuple(float(v) for v in target.level_db),
                        tuple(float(v) for v in generic_tolerance_db(f)),
                        plr_db=target.plr_db if np.isfinite(target.plr_db) else 12.0,
                        lra_lu=target.lra_lu if np.isfinite(target.lra_lu) else 6.0, style="reference",
                        reference=bool(np.isfinite(target.lra_lu)))
    base = plan_chain(a, d, dataclasses.replace(intent, target=tonal, tone_pct=0.0))
    base = dataclasses.replace(base, meta=dict(base.meta, left_alone=[
        s_ for s_ in base.meta.get("left_alone", []) if "tone amount set to 0%" not in s_]))
    warnings = list(base.meta.get("warnings", []))
    # width: the reference's side/mid, by a uniform side gain (no band split, no phase change)
    if a.channels == 2 and np.isfinite(target.side_mid_db) and intent.width_pct > 0:
        mix_width = side_mid_db(a, target.level_db)
        off = target.side_mid_db - mix_width
        if abs(off) > WIDTH_MATCH_TOLERANCE_DB and mix_width > -40.0:
            width = float(np.clip(100.0 * 10 ** (off * intent.width_pct / 100.0 / 20), 50.0, 200.0))
            stages = list(base.stages)
            stages.insert(len(stages) - 1, Stage(
                "stereo", StereoParams(width_pct=(round(width, 1),)), label="width match",
                why=f"the reference's side is {-target.side_mid_db:.1f} dB under its mid, the mix's "
                    f"{-mix_width:.1f} dB (at the reference's tonal balance): side x{width / 100:.2f}"))
            base = dataclasses.replace(base, stages=tuple(stages))
    # The target the EQ must reach: the mix's shape moved tone_pct of the way to the reference,
    # smoothed (1/2 octave above 200 Hz, 1 octave below) and capped
    cap = MATCH_CAP_DB * tone_pct / 100.0
    move = smooth_match_db(f, (tone_pct / 100.0) * -tonal_deviation_db(f, levels, target.level_db))
    band = (f >= TONAL_BAND_LO_HZ) & (f <= TONAL_BAND_HI_HZ)
    over = float(np.max(np.abs(move[band]))) if band.any() else 0.0
    if over > cap + 0.05:
        warnings.append(f"the reference differs from the mix by up to {over:.1f} dB in tonal balance (smoothed); the "
                        f"match is capped at +/-{cap:.1f} dB. A different-sounding reference or a mix problem?")
    goal = levels + np.clip(move, -cap, cap)
    eq_target = goal  # what the EQ is fitted to, corrected after each measurement
    best: tuple[MasterResult, float] | None = None
    weights = ((f >= TONAL_BAND_LO_HZ) & (f <= min(TONAL_BAND_HI_HZ, 0.45 * sample_rate))).astype(float)
    for step in range(refine_steps + 1):
        fit = fit_graphic_eq(f, -tonal_deviation_db(f, levels, eq_target), sample_rate=sample_rate,
                             weights=weights, max_gain_db=max(cap + 1.0, 0.5))
        eq_params = fit.eq
        if eq_params.bands:  # overlapping bells may add past the cap: scale them back together
            peak = float(np.max(np.abs(band_response_db(eq_params, sample_rate, f[weights > 0]))))
            if peak > cap + 0.05:
                eq_params = dataclasses.replace(eq_params, bands=tuple(
                    dataclasses.replace(b, gain_db=b.gain_db * cap / peak) for b in eq_params.bands))
            fit = dataclasses.replace(fit, eq=eq_params)
        chain = base.without("eq")
        if fit.eq.bands:
            stages = list(chain.stages)
            stages.insert(_eq_position(chain), Stage(
                "eq", fit.eq, label="reference match EQ",
                why=f"match the tonal balance of {', '.join(target.names) or 'the reference'} "
                    f"({tone_pct:g}% of the difference, smoothed over 1/2 octave above 200 Hz and 1 octave below, "
                    f"capped at +/-{cap:.1f} dB; {len(fit.eq.bands)} third-octave bands, "
                    f"fit within {fit.rms_error_db:.2f} dB RMS)"))
            chain = dataclasses.replace(chain, stages=tuple(stages))
        planned = master(x, sample_rate, d, chain=None, before=a, progress=progress, planned=chain, intent=intent)
        err = tonal_error_db(planned.after, goal)
        if best is None or err < best[1]:
            best = (planned, err)
        if err <= _GOOD_ENOUGH_DB or step == refine_steps:
            break
        # What is still off, measured on the master itself, is added to what the EQ aims for.
        out_levels = np.asarray(planned.after.spectrum.level_db, dtype=float)[:n]
        eq_target = eq_target - smooth_match_db(f, tonal_deviation_db(f, out_levels, goal))
        eq_target = levels + np.clip(eq_target - levels, -cap, cap)  # the cap holds through the refinement
    assert best is not None
    result, err = best
    meta = dict(result.chain.meta, reference=list(target.names), reference_lufs=round(target.loudness_lufs, 2),
                tonal_error_db=round(err, 3), warnings=warnings,
                reference_movement={"lra_lu": round(target.lra_lu, 1), "plr_db": round(target.plr_db, 1),
                                    "side_mid_db": round(target.side_mid_db, 1)},
                tonal_target={"name": "reference: " + (", ".join(target.names) or "reference"),
                              "level_db": [round(float(v), 2) for v in goal]})
    return dataclasses.replace(result, chain=dataclasses.replace(result.chain, meta=meta)), err


def _eq_position(chain: Chain) -> int:
    """Just after DC removal and the subsonic filter, before dynamics."""
    pos = 0
    for i, s in enumerate(chain.stages):
        if s.kind in ("dc", "high_pass"):
            pos = i + 1
    return pos


__all__ = ["ReferenceTarget", "reference_target", "master_to_reference", "tonal_error_db"]
