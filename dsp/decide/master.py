"""Deciding a first mastering chain from an analysis, and hitting the loudness target.

``plan_chain`` turns measurements, a tonal target (a balanced master, a style profile or a
reference) and the artist's intent into a chain (DC removal, subsonic high-pass, resonance
cuts, corrective EQ, glue compression, mono bass, true-peak limiter), each stage carrying the
measurement that caused it and every correction not made listed with its measurement.
``master`` renders it and converges the limiter's drive until the integrated loudness is
within ``LOUDNESS_TOLERANCE_LU`` of the target at the ceiling.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import CancelledError, ChainError, TargetUnreachableError
from ..measure.analysis import Analysis, analyze
from ..measure.loudness import (
    LoudnessResult,
    gated_loudness_of_hops,
    hop_samples,
    k_weighted_power,
    measure_loudness,
)
from ..process import limiter as lim
from ..process.chain import Chain, Stage, render
from ..process.compressor import CompressorParams
from ..process.eq import EqBand, EqParams
from ..process.stereo import StereoParams
from ..process.utility import DcParams, HighPassParams
from .eqfit import fit_eq
from .presets import Delivery

if TYPE_CHECKING:  # codec_safe imports this module
    from .codec_safe import CodecCheck

LOUDNESS_TOLERANCE_LU = 0.2  # the promise
_AIM_LU = 0.05  # what the convergence aims for, inside the promise
_MAX_LIMITING_DB = 24.0  # more peak reduction than this is not mastering any more
_MODEL_DECIMATION = 32

ProgressFn = Callable[[str, float], bool | None]  # (stage, fraction 0..1); False cancels

# A generic balanced-master tonal shape: 1/3-octave band level relative to the 1 kHz region,
# dB, as (frequency, level) points; flat-ish lows, about -3.5 dB/oct through the top.
_BALANCED_SHAPE = ((31.5, 2.0), (63, 4.0), (125, 3.5), (250, 1.5), (500, 0.5), (1000, 0.0),
                   (2000, -2.5), (4000, -5.5), (8000, -9.5), (16000, -17.0))


def balanced_shape_db(freqs_hz: np.ndarray) -> np.ndarray:
    f, v = np.array(_BALANCED_SHAPE).T
    shape_db: np.ndarray = np.interp(np.log2(freqs_hz), np.log2(f), v)
    return shape_db


@dataclasses.dataclass(frozen=True)
class MasterResult:
    audio: np.ndarray  # float32 (channels, samples)
    chain: Chain
    before: Analysis
    after: Analysis
    limiter: dict[str, Any]
    iterations: int
    codec_checks: tuple[CodecCheck, ...] = ()  # of the delivered audio, when checked


def _region_deviation(dev: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> float:
    sel = (freqs >= lo) & (freqs <= hi)
    return float(np.mean(dev[sel])) if sel.any() else 0.0


INTENSITIES = ("gentle", "balanced", "loud")


@dataclasses.dataclass(frozen=True)
class TonalTarget:
    """What the mix is steered toward: a 1/3-octave shape (level removed) with tolerances, and
    typical dynamics. The generic one is a balanced master; styles and references supply others."""

    name: str
    centers_hz: tuple[float, ...]
    level_db: tuple[float, ...]
    tolerance_db: tuple[float, ...]
    plr_db: float = 12.0  # compression is considered above plr_db + 1 dB
    lra_lu: float = 6.0  # ... or above lra_lu + 3 LU

    def at(self, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shape and tolerance interpolated onto ``freqs`` (log frequency)."""
        lf = np.log2(np.asarray(self.centers_hz, dtype=float))
        x = np.log2(np.asarray(freqs, dtype=float))
        return np.interp(x, lf, self.level_db), np.interp(x, lf, self.tolerance_db)


# Measured style profiles come from lightly mastered game music; their dynamics are guidance for
# the shape of the decision, not targets to compress toward.
_MAX_TARGET_PLR_DB, _MAX_TARGET_LRA_LU = 12.0, 8.0
SUGGESTED_EQ_AMOUNT = 0.7  # of the deviation beyond tolerance; --tone scales it
SUGGESTED_EQ_MAX_DB = 4.0


def style_target(a: Analysis, style: str | None = None) -> tuple[TonalTarget, dict[str, Any]]:
    """The tonal target for ``style``: a built-in style name, a profile JSON path, or None/"auto"
    (classify the mix and blend the nearest styles by confidence). Also says what was heard."""
    from . import profiles
    from . import style as style_model

    if style in (None, "", "auto"):
        guess = style_model.classify(a)
        prof = style_model.blend_profiles(guess)
        info = {"style": "auto", "heard": guess.style, "confidence": round(guess.confidence, 2),
                "probabilities": {k: round(v, 3) for k, v in sorted(guess.probabilities.items())}}
        name = f"{guess.style} profile (auto, {guess.confidence:.0%} sure)"
    elif style in profiles.builtin_names():
        prof = profiles.load_builtin(style)
        info = {"style": style, "source": prof.source}
        name = f"{style} profile"
    else:
        prof = profiles.load_profile(style)
        info = {"style": prof.name, "file": str(style), "source": prof.source}
        name = f"{prof.name} profile"
    f = np.asarray(prof.centers_hz, dtype=float)
    # A profile's spread across its tracks says how much songs differ, not where a problem starts:
    # never let it be more than 1 dB wider than the generic tolerance.
    tolerance = np.minimum(np.asarray(prof.tolerance_db, dtype=float), generic_tolerance_db(f) + 1.0)
    target = TonalTarget(name, tuple(float(v) for v in f), tuple(float(v) for v in prof.level_db),
                         tuple(float(v) for v in tolerance), plr_db=min(prof.plr_db, _MAX_TARGET_PLR_DB),
                         lra_lu=min(prof.lra_lu, _MAX_TARGET_LRA_LU))
    return target, info


def balanced_target(freqs: np.ndarray) -> TonalTarget:
    f = np.asarray(freqs, dtype=float)
    return TonalTarget("balanced master", tuple(f), tuple(balanced_shape_db(f)), tuple(generic_tolerance_db(f)))


@dataclasses.dataclass(frozen=True)
class Intent:
    """What the artist asked for beyond the delivery target.

    tone_pct, dynamics_pct, width_pct: 0-100 % of the suggested correction applied.
    intensity: gentle | balanced | loud - how hard the dynamics are worked (not the loudness).
    loudness: False keeps the mix's integrated loudness (the limiter only guards the ceiling).
    target: the tonal target (None = a balanced master).
    """

    tone_pct: float = 100.0
    dynamics_pct: float = 100.0
    width_pct: float = 100.0
    intensity: str = "balanced"
    loudness: bool = True
    target: TonalTarget | None = None
    style_info: dict[str, Any] = dataclasses.field(default_factory=dict)  # what style was heard or chosen

    def __post_init__(self) -> None:
        from ..params import check_choice, check_range

        for name in ("tone_pct", "dynamics_pct", "width_pct"):
            check_range(name, getattr(self, name), 0.0, 100.0)
        check_choice("intensity", self.intensity, INTENSITIES)


def plan_chain(a: Analysis, d: Delivery, intent: Intent | None = None) -> Chain:
    """A first, rule-based chain for the measured mix, the delivery target and the intent.

    Every stage carries the measurement that caused it (``why``); every correction not made is
    listed with its measurement in ``meta["left_alone"]``.
    """
    intent = intent or Intent()
    stages: list[Stage] = []
    left_alone: list[str] = []

    dc = max(abs(v) for v in a.dc_offset)
    if dc > 1e-3:
        stages.append(Stage("dc", DcParams(), label="DC removal",
                            why=f"DC offset of {20 * math.log10(dc):.1f} dBFS measured; it wastes headroom"))
    else:
        left_alone.append(f"no DC removal: offset {dc:.5f} (under 0.001)")

    s = a.spectrum
    freqs = np.asarray(s.centers_hz, dtype=float)
    levels = np.asarray(s.level_db, dtype=float)
    ref = _region_deviation(levels, freqs, 700, 1400)
    rel = levels - ref
    sub = _region_deviation(rel, freqs, 15, 25)
    bass = _region_deviation(rel, freqs, 50, 80)
    if sub > bass - 10:
        stages.append(Stage("high_pass", HighPassParams(freq_hz=28.0, order=4), label="subsonic filter",
                            why=f"energy below 25 Hz only {bass - sub:.1f} dB under the 50-80 Hz bass; "
                                "inaudible rumble eats limiter headroom"))
    else:
        left_alone.append(f"no subsonic filter: energy below 25 Hz is {bass - sub:.1f} dB under the 50-80 Hz bass")

    # corrective EQ toward the target shape: (70% of what lies beyond the tolerance) x tone_pct,
    # level removed, fitted as at most six ReaEQ bands
    target = intent.target or balanced_target(freqs)
    target_db, tolerance_db = target.at(freqs)
    stages_eq = None
    if intent.tone_pct > 0:
        stages_eq = corrective_eq(freqs, levels, a.sample_rate, target_db=target_db, tolerance_db=tolerance_db,
                                  amount=SUGGESTED_EQ_AMOUNT * intent.tone_pct / 100.0)
    if a.resonances and intent.tone_pct > 0:
        cuts = tuple(EqBand("band", freq_hz=round(r.freq_hz, 1), gain_db=-round(min(6.0, r.excess_db), 1)
                            * intent.tone_pct / 100.0, bw_oct=0.1) for r in a.resonances)
        stages.append(Stage("eq", EqParams(bands=cuts), label="resonance control", why="; ".join(
            f"{r.freq_hz:.0f} Hz rings {r.excess_db:.1f} dB above its octave in {r.persistence:.0%} of the track: "
            f"narrow cut {min(6.0, r.excess_db) * intent.tone_pct / 100.0:.1f} dB" for r in a.resonances)))
    else:
        left_alone.append("no resonance control: no narrow peak stands 6 dB above its octave through "
                          "90% of the track" + ("" if a.resonances == () else " (tone amount 0%)"))
    if stages_eq is not None:
        stages.append(stages_eq)
    elif intent.tone_pct == 0:
        left_alone.append("no EQ: tone amount set to 0%")
    else:
        left_alone.append(f"no EQ: the tonal balance is within tolerance of the {target.name} everywhere")

    # glue compression when the mix is more dynamic than its target, or than its delivery allows:
    # a loud target at a ceiling leaves room for a PLR of about (ceiling - target); whatever the mix
    # has beyond that the limiter alone would take, so the compressor takes a share first.
    plr_excess = a.plr_db - (target.plr_db + 1.0)
    lra_excess = a.lra_lu - (target.lra_lu + 3.0)
    limiter_load = a.plr_db - (d.ceiling_dbtp - d.target_lufs) - 4.0 if intent.loudness else 0.0
    push = {"gentle": 0.5, "balanced": 1.0, "loud": 1.5}[intent.intensity] * intent.dynamics_pct / 100.0
    if (plr_excess > 0 or lra_excess > 0 or limiter_load > 0) and push > 0:
        need = max(plr_excess, lra_excess, limiter_load, 0.0)
        ratio = round(1.0 + push * min(2.0, 0.5 + 0.15 * need), 2)
        st = a.loudness.short_term_lufs
        st = st[np.isfinite(st)]
        loud_part = float(np.percentile(st, 90)) if st.size else a.integrated_lufs
        # short-term loudness tracks RMS level within a few dB; start compressing just under the loud
        # parts, deeper when the limiter would otherwise carry a heavy load
        threshold = float(np.clip(loud_part - 1.0 - 2.0 * push - 0.5 * max(limiter_load, 0.0), -50.0, -6.0))
        reasons = [f"PLR {a.plr_db:.1f} dB (target about {target.plr_db:g})",
                   f"LRA {a.lra_lu:.1f} LU (target about {target.lra_lu:g})"]
        if limiter_load > 0:
            reasons.append(f"{d.target_lufs:g} LUFS at {d.ceiling_dbtp:g} dBTP leaves room for a PLR of about "
                           f"{d.ceiling_dbtp - d.target_lufs:.1f} dB, so the compressor shares the work")
        stages.append(Stage("compressor", CompressorParams(threshold_db=round(threshold, 1), ratio=ratio,
                                                           attack_ms=30.0, release_ms=200.0, knee_db=6.0,
                                                           rms_ms=10.0), label="glue compression",
                            why=f"{'; '.join(reasons)}: {ratio:g}:1 above {threshold:.1f} dB so the limiter does "
                                f"less of the work ({intent.intensity}, dynamics {intent.dynamics_pct:g}%)"))
    elif push == 0:
        left_alone.append("no glue compression: dynamics amount set to 0%")
    else:
        left_alone.append(f"no glue compression: PLR {a.plr_db:.1f} dB and LRA {a.lra_lu:.1f} LU are within "
                          f"reach of the target ({target.plr_db:g} dB, {target.lra_lu:g} LU)")

    low_side = [r for f, r in zip(freqs, s.side_mid_ratio_db, strict=True) if 30 <= f <= 100]
    if a.channels == 2 and low_side and max(low_side) > -15.0 and intent.width_pct > 0:
        stages.append(Stage("stereo", StereoParams(mono_bass_hz=100.0), label="mono bass",
                            why=f"side energy below 100 Hz only {-max(low_side):.1f} dB under the mid; "
                                "mono bass keeps vinyl, clubs and phones solid"))
    elif a.channels == 2 and intent.width_pct == 0:
        left_alone.append("bass width unchanged: width amount set to 0%")
    elif a.channels == 2:
        left_alone.append(f"bass width unchanged: side energy below 100 Hz is {-max(low_side, default=-120):.1f} dB "
                          "under the mid, already mono enough")
    left_alone.append(f"stereo width unchanged: correlation {s.correlation_overall:.2f}")

    release = (120.0 if a.lra_lu < 5 else 60.0) * {"gentle": 1.5, "balanced": 1.0, "loud": 0.75}[intent.intensity]
    if intent.loudness:
        why = f"target {d.target_lufs:g} LUFS at {d.ceiling_dbtp:g} dBTP ({d.name})"
    else:
        why = (f"keeps the mix's own loudness ({a.integrated_lufs:.1f} LUFS) and guards the "
               f"{d.ceiling_dbtp:g} dBTP ceiling")
    stages.append(Stage("limiter", lim.LimiterParams(threshold_db=0.0, ceiling_dbtp=d.ceiling_dbtp,
                                                     release_ms=release, lookahead_ms=3.0),
                        label="true-peak limiter", why=why))
    return Chain(tuple(stages), {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp,
                                 "left_alone": left_alone,
                                 "style": intent.style_info or {"style": "none", "target": target.name},
                                 "intent": {"tone_pct": intent.tone_pct, "dynamics_pct": intent.dynamics_pct,
                                            "width_pct": intent.width_pct, "intensity": intent.intensity,
                                            "loudness": intent.loudness},
                                 "tonal_target": {"name": target.name,
                                                  "level_db": [round(float(v), 2) for v in target_db]}})


def tonal_deviation_db(freqs: np.ndarray, levels_db: np.ndarray, target_db: np.ndarray) -> np.ndarray:
    """Band level minus target, with the mean over 40 Hz-16 kHz removed (level does not count)."""
    dev = np.asarray(levels_db, dtype=float) - target_db
    sel = (freqs >= 40) & (freqs <= 16000)
    out: np.ndarray = dev - float(np.mean(dev[sel]))
    return out


def generic_tolerance_db(freqs: np.ndarray) -> np.ndarray:
    """How far a band may sit from the target before it is a problem: songs differ most in the
    deep lows (kick and bass notes) and the extreme top, least in the mids."""
    f = np.asarray(freqs, dtype=float)
    tol_db: np.ndarray = np.interp(np.log2(f), np.log2([50, 100, 6000, 14000]), [3.0, 1.5, 1.5, 2.5])
    return tol_db


def eq_weights(freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    """Which bands the corrective EQ listens to: none under 40 Hz (boosting sub-bass only eats
    headroom), half weight at the very ends."""
    f = np.asarray(freqs, dtype=float)
    top = min(16000.0, 0.45 * sample_rate)
    w = np.interp(np.log2(f), np.log2([40, 60, 12000, top]), [0.5, 1.0, 1.0, 0.5])
    return np.where((f < 40) | (f > top), 0.0, w)


def corrective_eq(freqs: np.ndarray, levels_db: np.ndarray, sample_rate: int, *, target_db: np.ndarray,
                  tolerance_db: np.ndarray, amount: float, max_bands: int = 6,
                  max_gain_db: float = SUGGESTED_EQ_MAX_DB) -> Stage | None:
    """An EQ stage moving the tonal shape ``amount`` (0..1) of the way toward ``target_db``.

    The deviation is smoothed over half an octave (mastering EQ moves are broad; narrow
    resonances are a different tool); what lies inside ``tolerance_db`` is left alone; the rest
    is fitted as ReaEQ bands. Returns None when no band would do at least 0.3 dB.
    """
    dev = tonal_deviation_db(freqs, levels_db, target_db)
    smooth = np.convolve(np.pad(dev, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    beyond = np.sign(smooth) * np.maximum(np.abs(smooth) - tolerance_db, 0.0)
    target = np.clip(-amount * beyond, -max_gain_db, max_gain_db)  # bounds the total, not just each band
    fit = fit_eq(freqs, target, sample_rate=sample_rate, weights=eq_weights(freqs, sample_rate),
                 max_bands=max_bands, max_gain_db=max_gain_db, min_bw_oct=0.5)
    if not fit.eq.bands:
        return None
    from .eqfit import band_response_db

    net_db = band_response_db(fit.eq, sample_rate, freqs)
    reasons = []
    for b in fit.eq.bands:
        if b.type == "low_shelf":
            region, where = (freqs >= 40) & (freqs <= b.freq_hz), f"40-{b.freq_hz:g} Hz"
        elif b.type == "high_shelf":
            region, where = (freqs >= b.freq_hz) & (freqs <= 16000), f"{b.freq_hz:g} Hz-16 kHz"
        else:
            region = np.abs(np.log2(freqs / b.freq_hz)) <= max(b.bw_oct or 1.0, 1 / 3) / 2
            where = f"around {b.freq_hz:g} Hz"
        measured = float(np.mean(smooth[region])) if region.any() else 0.0
        net = float(np.mean(net_db[region])) if region.any() else b.gain_db
        reasons.append(f"{b.type.replace('_', ' ')} {b.freq_hz:g} Hz {b.gain_db:+.1f} dB (mix {measured:+.1f} dB "
                       f"from the target {where}; the whole EQ moves it {net:+.1f} dB)")
    return Stage("eq", fit.eq, label="corrective EQ", why="; ".join(reasons))


class _LoudnessModel:
    """Predicts the integrated loudness after the limiter for a given threshold, cheaply.

    Works on 32x decimated series of the detector (sample peaks) and of the K-weighted power:
    the limiter's gain is slow next to the K-filter, so K(x * g) ~ K(x) * g. Inter-sample
    peaks and the decimation make it slightly optimistic; exact renders confirm the answer.
    """

    def __init__(self, pre: np.ndarray, sample_rate: int, params: lim.LimiterParams) -> None:
        self.sample_rate = sample_rate
        self.params = params
        dec = _MODEL_DECIMATION
        hop = hop_samples(sample_rate)  # 100 ms hops, as the loudness gating uses
        self.n_hops = pre.shape[1] // hop
        n_groups = self.n_hops * hop // dec
        env = np.empty(n_groups, dtype=np.float32)
        power = np.empty(n_groups)
        state = None
        chunk = dec * 32768  # whole groups per chunk; no full-length temporaries
        for g0 in range(0, n_groups, chunk // dec):
            g1 = min(n_groups, g0 + chunk // dec)
            block = pre[:, g0 * dec: g1 * dec]
            env[g0:g1] = np.abs(block).max(axis=0).reshape(g1 - g0, dec).max(axis=1)
            p, state = k_weighted_power(block, sample_rate, state=state)
            power[g0:g1] = p.reshape(g1 - g0, dec).sum(axis=1)
        self.peak_db = 20 * math.log10(max(float(env.max()) if env.size else 0.0, 1e-12))
        self.env_dec = env
        self.group_power = power
        self.group_hop = (np.arange(n_groups) * dec) // hop
        self.hop = hop

    def loudness(self, threshold_db: float) -> float:
        p = dataclasses.replace(self.params, threshold_db=threshold_db)
        dec = _MODEL_DECIMATION
        look = max(1, math.ceil(lim.lookahead_samples(p, self.sample_rate) / dec))
        hold = max(1, math.ceil(lim.HOLD_SAMPLES / dec))
        red, _ = lim.reduction_curve(
            np.concatenate((self.env_dec, np.zeros(hold + look - 1, dtype=np.float32))),
            over_db=p.drive_db - (p.ceiling_dbtp - lim.MARGIN_DB),
            release_per_sample=lim.release_coefficient(p.release_ms, self.sample_rate / dec),
            lookahead=look, hold=hold, state=lim.new_gain_state(look, hold),
        )
        g2 = np.power(10.0, (p.drive_db - red[hold + look - 1:]) / 10.0)
        hop_energy = np.bincount(self.group_hop, weights=self.group_power * g2, minlength=self.n_hops)
        return gated_loudness_of_hops(hop_energy[: self.n_hops] / self.hop)


def _solve_increasing(f: Callable[[float], float], lo: float, hi: float, f_lo: float, f_hi: float,
                      *, xtol: float = 0.01) -> float:
    """Root of an increasing-in-``-x`` function between ``lo`` and ``hi`` (f_lo > 0 > f_hi):
    regula falsi with the Illinois fix, bounded to 40 steps."""
    side = 0
    for _ in range(40):
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
        fx = f(x)
        if abs(fx) < 0.005 or hi - lo < xtol:
            return x
        if fx > 0:
            lo, f_lo = x, fx
            if side == -1:
                f_hi *= 0.5
            side = -1
        else:
            hi, f_hi = x, fx
            if side == 1:
                f_lo *= 0.5
            side = 1
    return x


def converge_limiter(
    pre: np.ndarray,
    sample_rate: int,
    params: lim.LimiterParams,
    target_lufs: float,
    *,
    progress: ProgressFn | None = None,
    remake_pre: Callable[[], np.ndarray] | None = None,
) -> tuple[np.ndarray, lim.LimiterParams, LoudnessResult, list[object], int]:
    """Find the limiter threshold that lands on ``target_lufs``; returns the rendered master,
    its settings, its measured loudness, the limiter's final state and the renders it took.

    With ``remake_pre``, each render overwrites ``pre`` in place (one full-length buffer less)
    and ``remake_pre()`` rebuilds the pre-limiter signal when another render is needed.

    Raises TargetUnreachableError, saying what was reached, when even ``_MAX_LIMITING_DB``
    of peak reduction cannot get there.
    """
    model = _LoudnessModel(pre, sample_rate, params)
    lo_thr = max(-60.0, model.peak_db - _MAX_LIMITING_DB)
    hi_thr = min(12.0, model.peak_db + 30.0)  # turns everything down, no limiting
    f_lo = model.loudness(lo_thr) - target_lufs
    if f_lo < -LOUDNESS_TOLERANCE_LU:
        raise TargetUnreachableError(
            f"cannot reach {target_lufs:g} LUFS at {params.ceiling_dbtp:g} dBTP: "
            f"{_MAX_LIMITING_DB:g} dB of limiting reaches only {f_lo + target_lufs:.1f} LUFS")
    f_hi = model.loudness(hi_thr) - target_lufs
    if f_hi > 0:
        raise TargetUnreachableError(f"cannot turn the mix down to {target_lufs:g} LUFS")
    thr = (_solve_increasing(lambda t: model.loudness(t) - target_lufs, lo_thr, hi_thr, f_lo, f_hi)
           if f_lo > 0 else lo_thr)
    history: list[tuple[float, float]] = []
    measured = math.nan
    for iteration in range(1, 5):
        p = dataclasses.replace(params, threshold_db=float(np.clip(thr, -60.0, 12.0)))
        states: list[object] = []
        if iteration > 1 and remake_pre is not None:
            pre = remake_pre()
        out = render(Chain((Stage("limiter", p),)), pre, sample_rate, states=states,
                     progress=(lambda f: progress("limiting", f)) if progress else None,
                     out=pre if remake_pre is not None else None)
        loud = measure_loudness(out, sample_rate)
        measured = loud.integrated_lufs
        history.append((p.threshold_db, measured))
        err = measured - target_lufs
        if abs(err) <= _AIM_LU or (abs(err) <= LOUDNESS_TOLERANCE_LU and iteration == 4):
            return out, p, loud, states, iteration
        if len(history) >= 2 and abs(history[-1][0] - history[-2][0]) > 1e-6:
            (t0, l0), (t1, l1) = history[-2], history[-1]
            slope = (l1 - l0) / (t1 - t0)
        else:
            slope = -1.0  # one dB lower threshold gives about one LU more, before limiting dominates
        thr = p.threshold_db - err / min(slope, -0.05)
        if thr < lo_thr:
            break
    raise TargetUnreachableError(
        f"loudness did not settle on {target_lufs:g} LUFS at {params.ceiling_dbtp:g} dBTP: "
        f"reached {measured:.2f} LUFS")


def master(
    x: np.ndarray,
    sample_rate: int,
    delivery: Delivery,
    *,
    chain: Chain | None = None,
    before: Analysis | None = None,
    progress: ProgressFn | None = None,
    planned: Chain | None = None,
    intent: Intent | None = None,
) -> MasterResult:
    """Master ``(channels, samples)`` audio for ``delivery``.

    With ``chain`` given it is rendered as is (no decisions, no convergence). Otherwise the
    chain is ``planned`` (a chain ending in a limiter, decided elsewhere) or planned here from
    the analysis, and the limiter's drive is converged onto the loudness target.
    """
    if before is None:
        before = analyze(x, sample_rate, resonances=True)
    iterations = 0
    if intent is not None and not intent.loudness:
        delivery = dataclasses.replace(delivery, target_lufs=float(before.integrated_lufs))
    if chain is not None:
        states: list[object] = []
        out = render(chain, x, sample_rate, states=states,
                     progress=(lambda f: progress("rendering", f)) if progress else None)
        final_chain = chain
    else:
        if planned is None:
            planned = plan_chain(before, delivery, intent)
        lim_stage = planned.find("limiter")
        if lim_stage is None:
            raise ChainError("a planned chain must end in a limiter to converge on the loudness target")

        def make_pre() -> np.ndarray:
            return render(planned.without("limiter"), x, sample_rate,
                          progress=(lambda f: progress("processing", f)) if progress else None)

        out, lim_params, loud, states, iterations = converge_limiter(
            make_pre(), sample_rate, cast(lim.LimiterParams, lim_stage.params), delivery.target_lufs, progress=progress,
            remake_pre=make_pre)
        final_chain = planned.replace_stage("limiter", dataclasses.replace(lim_stage, params=lim_params))
    limiter_state = next((s for s in states if isinstance(s, lim.LimiterState)), None)
    after = analyze(out, sample_rate, true_peak_factor=8, loudness=loud if chain is None else None)
    return MasterResult(out, final_chain, before, after, lim.stats(limiter_state), iterations)


__all__ = ["MasterResult", "master", "plan_chain", "converge_limiter", "CancelledError"]
