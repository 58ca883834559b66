"""Album mastering: several tracks mastered as one record.

* Loudness is anchored on the loudest track (AES TD1008, Spotify album normalisation): it goes
  to the delivery target; every other track keeps ``SPREAD_KEPT`` of its loudness difference
  to it from the mixes, so a ballad stays quieter than the single, a little less so than in
  the raw mixes, and never more than ``MAX_SPREAD_LU`` under the loudest.
* Tonal coherence: every track is steered toward one shared target, half the album's own mean
  shape and half the style target, so the record sounds like one record.
* One chain style: compression and limiter release are decided once for the album.

Album loudness is measured over all tracks together (their 100-ms loudness blocks pooled),
as a player's album mode hears them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import numpy as np

from ..errors import ParameterError
from ..measure.analysis import Analysis, analyze
from ..measure.loudness import gated_loudness_of_hops
from ..process.chain import Chain, Stage
from ..process.compressor import CompressorParams
from ..process.limiter import LimiterParams
from .master import Intent, MasterResult, ProgressFn, TonalTarget, master, plan_chain, style_target
from .presets import Delivery

SPREAD_KEPT = 0.75
MAX_SPREAD_LU = 8.0


@dataclasses.dataclass(frozen=True)
class AlbumTrack:
    name: str
    target_lufs: float
    result: MasterResult
    distance_before_db: float  # tonal distance to the shared album target
    distance_after_db: float


@dataclasses.dataclass(frozen=True)
class AlbumResult:
    tracks: tuple[AlbumTrack, ...]
    album_lufs_before: float
    album_lufs_after: float
    target: TonalTarget
    style: dict[str, Any]

    def spread_db(self) -> tuple[float, float]:
        """Tonal coherence: mean pairwise tonal distance between the tracks, before and after (dB)."""
        f = np.asarray(self.target.centers_hz, dtype=float)
        return (tonal_spread_db([t.result.before for t in self.tracks], f),
                tonal_spread_db([t.result.after for t in self.tracks], f))


def tonal_spread_db(analyses: list[Analysis], freqs: np.ndarray) -> float:
    """Mean over track pairs of the level-removed mean |dB| difference of their shapes, 40 Hz-16 kHz."""
    return spread_of_shapes_db([album_shape_db(a, freqs) for a in analyses])


def album_shape_db(a: Analysis, freqs: np.ndarray) -> list[float]:
    """A track's level-removed 1/3-octave shape at ``freqs``, 40 Hz-16 kHz only (what the spread compares)."""
    sel = (freqs >= 40) & (freqs <= 16000)
    return [float(v) for v in _shape(a, freqs)[sel]]


def spread_of_shapes_db(shapes: list[Any]) -> float:
    """Mean over pairs of the level-removed mean |dB| difference of shapes from :func:`album_shape_db`."""
    shapes = [np.asarray(s, dtype=float) for s in shapes]
    d = [np.mean(np.abs((shapes[i] - shapes[j]) - np.mean(shapes[i] - shapes[j])))
         for i in range(len(shapes)) for j in range(i + 1, len(shapes))]
    return float(np.mean(d)) if d else 0.0


def _shape(a: Analysis, freqs: np.ndarray) -> np.ndarray:
    lv = np.interp(np.log2(freqs), np.log2(np.asarray(a.spectrum.centers_hz, dtype=float)),
                   np.asarray(a.spectrum.level_db, dtype=float))
    sel = (freqs >= 40) & (freqs <= 16000)
    shape_db: np.ndarray = lv - float(np.mean(lv[sel]))
    return shape_db


def distance_to_target_db(a: Analysis, target: TonalTarget) -> float:
    """Level-removed mean |dB| distance of a track's 1/3-octave shape to ``target``, 40 Hz-16 kHz."""
    return _distance(a, target)


def _distance(a: Analysis, target: TonalTarget) -> float:
    f = np.asarray(target.centers_hz, dtype=float)
    sel = (f >= 40) & (f <= 16000)
    d = _shape(a, f)[sel] - np.asarray(target.level_db)[sel]
    return float(np.mean(np.abs(d - np.mean(d))))


def album_targets(loudness_lufs: list[float], target_lufs: float) -> list[float]:
    """Per-track loudness targets: the loudest at ``target_lufs``, the rest keeping SPREAD_KEPT of
    their distance to it (at most MAX_SPREAD_LU)."""
    loudest = max(loudness_lufs)
    return [target_lufs - min(MAX_SPREAD_LU, SPREAD_KEPT * (loudest - v)) for v in loudness_lufs]


@dataclasses.dataclass(frozen=True)
class AlbumPlan:
    """The album's decisions, made from the tracks' analyses alone (no audio): per track its
    loudness target and planned chain, the shared tonal target and the style verdict. Small and
    picklable, so a cluster can decide it in one place and render the tracks elsewhere."""

    names: tuple[str, ...]
    targets_lufs: tuple[float, ...]
    plans: tuple[Chain, ...]
    target: TonalTarget
    style: dict[str, Any]

    def delivery_for(self, i: int, delivery: Delivery) -> Delivery:
        """Track ``i``'s delivery: the album's, at its own loudness target."""
        return dataclasses.replace(delivery, target_lufs=self.targets_lufs[i])


def plan_album(names: list[str], analyses: list[Analysis], delivery: Delivery, *, style: str | None = None,
               intent: Intent | None = None) -> AlbumPlan:
    """Decide the album from ``analyses`` (``analyze(x, sr, resonances=True)`` per track, in
    order); see the module docstring for the rules."""
    if len(analyses) < 2:
        raise ParameterError("an album needs at least two tracks")
    if len(set(names)) != len(names):
        raise ParameterError("two album tracks have the same name; rename one")
    # one style for the record: classify every track, use the most confident verdict
    style_infos = [style_target(a, style) for a in analyses]
    best = max(range(len(analyses)), key=lambda i: style_infos[i][1].get("confidence", 1.0))
    style_t, style_info = style_infos[best]
    f = np.asarray(style_t.centers_hz, dtype=float)
    album_mean = np.mean([_shape(a, f) for a in analyses], axis=0)
    shared = dataclasses.replace(
        style_t, name=f"album target ({style_t.name} and the album's own balance)",
        level_db=tuple(0.5 * album_mean + 0.5 * np.asarray(style_t.level_db)))
    base = intent or Intent()
    shared_intent = dataclasses.replace(base, target=shared, style_info=dict(style_info, album=True))
    # one chain style: the limiter release and compressor timing decided on the most dynamic track
    dynamic = max(range(len(analyses)), key=lambda i: analyses[i].plr_db)
    template = plan_chain(analyses[dynamic], delivery, shared_intent)
    # plan_chain always ends in a limiter
    release = cast(LimiterParams, cast(Stage, template.find("limiter")).params).release_ms
    targets = album_targets([a.integrated_lufs for a in analyses], delivery.target_lufs)
    plans = []
    for a, target in zip(analyses, targets, strict=True):
        d = dataclasses.replace(delivery, target_lufs=target)
        plan = plan_chain(a, d, shared_intent)
        lim = cast(Stage, plan.find("limiter"))
        plan = plan.replace_stage("limiter", dataclasses.replace(
            lim, params=dataclasses.replace(cast(LimiterParams, lim.params), release_ms=release),
            why=lim.why + f"; album: {target:.1f} LUFS keeps this track's place against the loudest"))
        comp = plan.find("compressor")
        tmpl_comp = template.find("compressor")
        if comp is not None and tmpl_comp is not None:
            tmpl_params = cast(CompressorParams, tmpl_comp.params)
            plan = plan.replace_stage("compressor", dataclasses.replace(comp, params=dataclasses.replace(
                cast(CompressorParams, comp.params), attack_ms=tmpl_params.attack_ms, release_ms=tmpl_params.release_ms)))
        plans.append(plan)
    return AlbumPlan(tuple(names), tuple(targets), tuple(plans), shared, style_info)


def master_album(
    tracks: list[tuple[str, np.ndarray, int]],
    delivery: Delivery,
    *,
    style: str | None = None,
    intent: Intent | None = None,
    progress: ProgressFn | None = None,
) -> AlbumResult:
    """Master ``(name, audio, sample_rate)`` tracks as an album; see the module docstring."""
    if len(tracks) < 2:
        raise ParameterError("an album needs at least two tracks")
    names = [t[0] for t in tracks]
    if len(set(names)) != len(names):
        raise ParameterError("two album tracks have the same name; rename one")
    analyses = [analyze(x, sr, resonances=True) for _, x, sr in tracks]
    plan = plan_album(names, analyses, delivery, style=style, intent=intent)
    done: list[AlbumTrack] = []
    for i, ((name, x, sr), a) in enumerate(zip(tracks, analyses, strict=True)):
        step = (lambda s, fr, i=i: progress(f"track {i + 1}/{len(tracks)} {s}", fr)) if progress else None
        r = master(x, sr, plan.delivery_for(i, delivery), before=a, planned=plan.plans[i], progress=step)
        done.append(AlbumTrack(name, plan.targets_lufs[i], r, _distance(a, plan.target),
                               _distance(r.after, plan.target)))
    pooled_before = np.concatenate([a.loudness.hop_energy for a in analyses])
    pooled_after = np.concatenate([t.result.after.loudness.hop_energy for t in done])
    return AlbumResult(tuple(done), gated_loudness_of_hops(pooled_before), gated_loudness_of_hops(pooled_after),
                       plan.target, plan.style)
