"""Reference mastering: match the tonal balance and loudness of one or more reference tracks.

The reference's long-term 1/3-octave shape (level removed, averaged over the references) is the
tonal target; its integrated loudness (mean over the references) the loudness target; the
ceiling stays a true-peak ceiling (-1 dBTP by default), which the peer Matchering does not have.

The EQ is a match EQ: one ReaEQ bell per 1/3-octave band from 40 Hz to 16 kHz (a real track's
spectrum is jagged with its notes; a few broad bands cannot follow it). The master is rendered,
its tonal error against the reference measured, and the fit refined on what is left, at most
``refine_steps`` times.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ParameterError
from ..measure.analysis import Analysis, analyze
from ..process.chain import Chain, Stage
from .eqfit import fit_graphic_eq
from .master import Intent, MasterResult, ProgressFn, master, plan_chain, tonal_deviation_db
from .presets import Delivery

TONAL_BAND_LO_HZ, TONAL_BAND_HI_HZ = 40.0, 16000.0
_GOOD_ENOUGH_DB = 0.2  # stop refining once the mean tonal error is this small


@dataclasses.dataclass(frozen=True)
class ReferenceTarget:
    centers_hz: np.ndarray
    level_db: np.ndarray  # mean band level of the references (each with its own level removed)
    loudness_lufs: float
    names: tuple[str, ...]


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
    return ReferenceTarget(f, np.mean(shapes, axis=0), float(np.mean([r.integrated_lufs for r in refs])), names)


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
    base = plan_chain(a, d, intent)
    # The target the EQ must reach: the mix's shape moved tone_pct of the way to the reference.
    goal = levels + (tone_pct / 100.0) * -tonal_deviation_db(f, levels, target.level_db)
    eq_target = goal  # what the EQ is fitted to, corrected after each measurement
    best: tuple[MasterResult, float] | None = None
    weights = ((f >= TONAL_BAND_LO_HZ) & (f <= min(TONAL_BAND_HI_HZ, 0.45 * sample_rate))).astype(float)
    for step in range(refine_steps + 1):
        fit = fit_graphic_eq(f, -tonal_deviation_db(f, levels, eq_target), sample_rate=sample_rate,
                             weights=weights, max_gain_db=18.0)
        chain = base.without("eq")
        if fit.eq.bands:
            stages = list(chain.stages)
            stages.insert(_eq_position(chain), Stage(
                "eq", fit.eq, label="reference match EQ",
                why=f"match the tonal balance of {', '.join(target.names) or 'the reference'} "
                    f"({tone_pct:g}% of the difference; {len(fit.eq.bands)} third-octave bands, "
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
        eq_target = eq_target - tonal_deviation_db(f, out_levels, goal)
    assert best is not None
    result, err = best
    meta = dict(result.chain.meta, reference=list(target.names), reference_lufs=round(target.loudness_lufs, 2),
                tonal_error_db=round(err, 3),
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
