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
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from ..denormals import flushing_denormals
from ..errors import CancelledError, ChainError, TargetUnreachableError
from ..measure.analysis import Analysis, AnalysisMeter, analyze
from ..measure.bands import BASS_SPLIT_HZ
from ..measure.loudness import (
    LoudnessResult,
    add_limited_groups_to_hops,
    gated_loudness_of_hops,
    hop_samples,
    k_weighted_groups,
    measure_loudness,
)
from ..measure.spectrum import SpectrumResult
from ..params import check_choice, check_range
from ..process import limiter as lim
from ..process.bass_limiter import BassLimiterParams
from ..process.chain import Chain, Stage, render, render_blocks
from ..process.clipper import ClipperParams
from ..process.compressor import CompressorParams
from ..process.eq import EqBand, EqParams, eq_response_db
from ..process.stereo import StereoParams
from ..process.utility import DcParams, HighPassParams
from ..streams import prefetch
from . import profiles
from . import style as style_model
from .eqfit import band_response_db, fit_eq
from .evidence import bass_width, dynamics_need, lra_range_for, peak_reduction_db
from .mastered import check_mastered
from .presets import Delivery

if TYPE_CHECKING:  # codec_safe imports this module
    from .codec_safe import CodecCheck

LOUDNESS_TOLERANCE_LU = 0.2  # the promise
_AIM_LU = 0.05  # what the convergence aims for, inside the promise
_MAX_LIMITING_DB = 24.0  # more peak reduction than this is not mastering any more
_MODEL_DECIMATION = 32
_MODEL_CHUNK = 1 << 16  # groups per step of the model evaluation (44 s at 48 kHz; ~3 MB of temporaries)
_WOBBLE_CHUNK = 1 << 13  # the same for the gain's wobble, which runs once (a few hundred kB)

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
    audio: np.ndarray  # float32 (channels, samples); (channels, 0) when streamed to a file (master_stream)
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
    plr_db: float = 12.0  # typical PLR of the target's music (information; the delivery drives the limiter)
    lra_lu: float = 6.0  # typical LRA, LU
    style: str = ""  # the style the target stands for ("" = generic)
    confidence: float = 1.0  # how sure the planner is that this is the right target, 0..1
    lra_range_lu: tuple[float, float] | None = None  # LRA a finished master of this music has; None = by style
    reference: bool = False  # a reference track's own figures: match its movement (LRA), not a range

    def at(self, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shape and tolerance interpolated onto ``freqs`` (log frequency)."""
        lf = np.log2(np.asarray(self.centers_hz, dtype=float))
        x = np.log2(np.asarray(freqs, dtype=float))
        return np.interp(x, lf, self.level_db), np.interp(x, lf, self.tolerance_db)


SUGGESTED_EQ_AMOUNT = 0.7  # of the deviation beyond tolerance; --tone scales it
SUGGESTED_EQ_MAX_DB = 4.0
SPREAD_TOLERANCE = 1.0  # x the profile's per-band standard deviation
MAX_TOLERANCE_DB = 8.0
UNSURE_STYLE_CONFIDENCE = 0.6  # below this the heard style gives a broad target
UNSURE_EXTRA_TOLERANCE_DB = 1.5  # ... whose tolerance is this much wider


def style_target(a: Analysis, style: str | None = None) -> tuple[TonalTarget, dict[str, Any]]:
    """The tonal target for ``style``: a built-in style name, a profile JSON path, or None/"auto"
    (classify the mix and blend the nearest styles by confidence). Also says what was heard."""
    confidence = 1.0
    if style in (None, "", "auto"):
        guess = style_model.classify(a)
        prof = style_model.blend_profiles(guess)
        confidence = float(guess.confidence)
        heard = guess.style
        info = {"style": "auto", "heard": guess.style, "confidence": round(guess.confidence, 2),
                "probabilities": {k: round(v, 3) for k, v in sorted(guess.probabilities.items())}}
        name = f"{guess.style} profile (auto, {guess.confidence:.0%} sure)"
    elif style in profiles.builtin_names():
        prof = profiles.load_builtin(style)
        heard = style
        info = {"style": style, "source": prof.source}
        name = f"{style} profile"
    else:
        prof = profiles.load_profile(style)
        heard = prof.name
        info = {"style": prof.name, "file": str(style), "source": prof.source}
        name = f"{prof.name} profile"
    f = np.asarray(prof.centers_hz, dtype=float)
    # A profile's spread (one standard deviation across its finished tracks) says how far finished
    # music of this style sits from the mean: a region within SPREAD_TOLERANCE x that spread is not
    # evidence of a problem (first, do no harm). Never narrower than the generic tolerance, never
    # wider than MAX_TOLERANCE_DB (the encoders' low-pass makes the top band's spread meaningless).
    tolerance = np.clip(SPREAD_TOLERANCE * np.asarray(prof.tolerance_db, dtype=float), generic_tolerance_db(f),
                        MAX_TOLERANCE_DB)
    if confidence < UNSURE_STYLE_CONFIDENCE:
        # unsure which music this is: a broad target (the blend) with a wide tolerance, not the nearest narrow one
        tolerance = tolerance + UNSURE_EXTRA_TOLERANCE_DB
        name = f"broad target (style unsure: {heard} {confidence:.0%})"
        info["broad"] = True
    lra_range, range_source = lra_range_for(heard, confidence)
    info["dynamics_range_lu"] = list(lra_range)
    info["dynamics_source"] = range_source
    target = TonalTarget(name, tuple(float(v) for v in f), tuple(float(v) for v in prof.level_db),
                         tuple(float(v) for v in tolerance), plr_db=prof.plr_db, lra_lu=prof.lra_lu,
                         style=heard, confidence=confidence, lra_range_lu=lra_range)
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
        for name in ("tone_pct", "dynamics_pct", "width_pct"):
            check_range(name, getattr(self, name), 0.0, 100.0)
        check_choice("intensity", self.intensity, INTENSITIES)


def plan_chain(a: Analysis, d: Delivery, intent: Intent | None = None) -> Chain:
    """A first, rule-based chain for the measured mix, the delivery target and the intent.

    First, do no harm: every corrective stage needs evidence a listener would hear (with a
    confidence that shrinks or drops the move); a mix within its target's tolerance gets gain
    and the limiter only, and an input that looks mastered (clipped runs, low PLR, a brickwalled
    envelope: :mod:`dsp.decide.mastered`) gets loudness only. Every stage carries the measurement that caused it (``why``);
    every correction not made is listed with its measurement in ``meta["left_alone"]``;
    ``meta["assessment"]`` says what was found.
    """
    intent = intent or Intent()
    stages: list[Stage] = []
    left_alone: list[str] = []
    warnings: list[str] = []
    mastered = check_mastered(a)
    loudness_only = mastered.looks_mastered
    if loudness_only:
        warnings.append(f"the input {mastered.summary()}: proposing loudness only (gain and the limiter; no EQ, "
                        "compression or width changes). Master from the unmastered mix if you have it.")

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
    deep = _region_deviation(rel, freqs, 30, 45)
    bass = _region_deviation(rel, freqs, 50, 80)
    # rumble rises toward the infrasound: above the 30-45 Hz region, not the bottom of a bass line
    # that reaches down there (electronic sub-bass falls off below 30 Hz)
    rumble = sub > bass - SUBSONIC_UNDER_BASS_DB and sub > deep + SUBSONIC_OVER_DEEP_DB
    if rumble and not loudness_only:
        stages.append(Stage("high_pass", HighPassParams(freq_hz=28.0, order=4), label="subsonic filter",
                            why=f"energy below 25 Hz only {bass - sub:.1f} dB under the 50-80 Hz bass and "
                                f"{sub - deep:.1f} dB above 30-45 Hz (rising toward infrasound: rumble, not "
                                "music); inaudible, it eats limiter headroom"))
    elif rumble:
        left_alone.append(f"no subsonic filter: energy below 25 Hz is {bass - sub:.1f} dB under the 50-80 Hz bass, "
                          "but the input looks mastered")
    elif sub > bass - SUBSONIC_UNDER_BASS_DB:
        left_alone.append(f"no subsonic filter: energy below 25 Hz is {deep - sub:.1f} dB under 30-45 Hz, "
                          "the bottom of the bass line, not rumble")
    else:
        left_alone.append(f"no subsonic filter: energy below 25 Hz is {bass - sub:.1f} dB under the 50-80 Hz bass")

    # corrective EQ toward the target shape: (70% of what lies audibly beyond the tolerance) x tone_pct
    # x the confidence in the target, level removed, fitted as at most six ReaEQ bands
    target = intent.target or balanced_target(freqs)
    target_db, tolerance_db = target.at(freqs)
    stages_eq = None
    eq_conf = 0.5 + 0.5 * min(1.0, target.confidence / UNSURE_STYLE_CONFIDENCE)
    if intent.tone_pct > 0 and not loudness_only:
        stages_eq = corrective_eq(freqs, levels, a.sample_rate, target_db=target_db, tolerance_db=tolerance_db,
                                  amount=SUGGESTED_EQ_AMOUNT * intent.tone_pct / 100.0 * eq_conf)
        if stages_eq is not None and eq_conf < 1.0:
            stages_eq = dataclasses.replace(stages_eq, why=stages_eq.why + (
                f"; moves scaled to {eq_conf:.0%}: the style is uncertain ({target.confidence:.0%})"))
    resonances = [r for r in a.resonances if not getattr(r, "left_alone", "")]
    for r in a.resonances:
        if getattr(r, "left_alone", ""):
            left_alone.append(f"peak at {r.freq_hz:.0f} Hz ({r.excess_db:.1f} dB above its octave) left alone: "
                              f"{r.left_alone}")
    if resonances and intent.tone_pct > 0 and not loudness_only:
        cuts, whys = [], []
        for r in resonances:
            depth, band_db = resonance_cut_db(s, r.freq_hz, min(6.0, r.excess_db) * intent.tone_pct / 100.0)
            if depth < RESONANCE_MIN_CUT_DB:
                left_alone.append(f"peak at {r.freq_hz:.0f} Hz ({r.excess_db:.1f} dB above its octave) left alone: it "
                                  f"carries most of its third-octave band (a {RESONANCE_MIN_CUT_DB:g} dB notch would "
                                  f"move the band over {RESONANCE_MAX_BAND_DB:g} dB): a tonal element of the "
                                  "music, not a ring")
                continue
            cuts.append(EqBand("band", freq_hz=round(r.freq_hz, 1), gain_db=-depth, bw_oct=0.1))
            capped = depth < round(min(6.0, r.excess_db) * intent.tone_pct / 100.0, 1)
            whys.append(f"{r.freq_hz:.0f} Hz rings {r.excess_db:.1f} dB above its octave in {r.persistence:.0%} of "
                        f"the track and stays put while the music around it changes: narrow cut {depth:.1f} dB "
                        f"(its third-octave band {-band_db:.1f} dB" + (
                            f", capped at {RESONANCE_MAX_BAND_DB:g} dB: the peak carries much of its band)"
                            if capped else ")"))
        if cuts:
            stages.append(Stage("eq", EqParams(bands=tuple(cuts)), label="resonance control",
                                why="; ".join(whys)))
    else:
        left_alone.append("no resonance control: no narrow peak stands 6 dB above its octave through 90% of the "
                          "track while the music around it changes (held notes, harmonic series and steady tones "
                          "are music, left alone)" + ("" if not resonances else
                                                      " (tone amount 0% or input looks mastered)"))
    eq_dev, empty = eq_deviation_db(freqs, levels, target_db, a.sample_rate)
    unlifted = empty & (eq_dev < -tolerance_db)
    if unlifted.any() and intent.tone_pct > 0 and not loudness_only:
        left_alone.append(f"no boost at {freqs[unlifted].min():.0f}-{freqs[unlifted].max():.0f} Hz although it lies "
                          f"under the {target.name}: over {EMPTY_BAND_DB:g} dB under the median band, nothing there "
                          "to lift (a boost would raise noise and codec artefacts, not music)")
    if stages_eq is not None:
        stages.append(stages_eq)
    elif loudness_only:
        left_alone.append("no EQ: the input looks mastered")
    elif intent.tone_pct == 0:
        left_alone.append("no EQ: tone amount set to 0%")
    else:
        left_alone.append(f"no EQ: the tonal balance is within tolerance of the {target.name} everywhere "
                          "(no region of 2/3 octave or more audibly beyond it)")

    # glue compression only when the delivery (limiter load), the style (loudness range above what
    # that music has when finished) or the reference (its own LRA) needs it
    if target.reference:
        lra_range, range_source = (target.lra_lu, target.lra_lu), "the reference"
    elif target.lra_range_lu is not None:
        lra_range, range_source = target.lra_range_lu, f"{target.style or 'this'} music"
    else:
        lra_range, range_source = lra_range_for(target.style or None, target.confidence)
    peak_need = peak_reduction_db(a, target_lufs=d.target_lufs, ceiling_dbtp=d.ceiling_dbtp, loudness=intent.loudness)
    need = dynamics_need(a, target_lufs=d.target_lufs, ceiling_dbtp=d.ceiling_dbtp, loudness=intent.loudness,
                         lra_range_lu=lra_range, range_source=range_source,
                         bass_limiter_db=bass_limiter_take_db(a, peak_need) / _BASS_NEED_FACTOR,
                         reference_lra_lu=target.lra_lu if target.reference else None,
                         looks_mastered=loudness_only)
    push = {"gentle": 0.5, "balanced": 1.0, "loud": 1.5}[intent.intensity] * intent.dynamics_pct / 100.0
    if need.compress and push > 0:
        ratio = round(1.0 + push * min(2.0, 0.5 + 0.15 * need.need_db), 2)
        st = a.loudness.short_term_lufs
        st = st[np.isfinite(st)]
        loud_part = float(np.percentile(st, 90)) if st.size else a.integrated_lufs
        load = max(need.limiter_load_db, 0.0)
        # short-term loudness tracks RMS level within a few dB; start compressing just under the loud
        # parts, deeper when the limiter would otherwise carry a heavy load
        threshold = float(np.clip(loud_part - 1.0 - 2.0 * push - 0.5 * load, -50.0, -6.0))
        stages.append(Stage("compressor", CompressorParams(threshold_db=round(threshold, 1), ratio=ratio,
                                                           attack_ms=30.0, release_ms=200.0, knee_db=6.0,
                                                           rms_ms=10.0), label="glue compression",
                            why=f"{'; '.join(need.reasons)}: {ratio:g}:1 above {threshold:.1f} dB "
                                f"({intent.intensity}, dynamics {intent.dynamics_pct:g}%)"))
    elif need.compress:
        left_alone.append("no glue compression: dynamics amount set to 0%")
    else:
        left_alone.append(need.why_not)

    bw = bass_width(a)
    if a.channels == 2 and intent.width_pct > 0 and bw.apply and not loudness_only:
        stages.append(Stage("stereo", StereoParams(mono_bass_hz=100.0), label="mono bass", why=bw.why))
    elif a.channels == 2 and intent.width_pct == 0:
        left_alone.append("bass width unchanged: width amount set to 0%")
    elif a.channels == 2 and bw.apply:
        left_alone.append(f"bass width unchanged: the input looks mastered ({bw.why})")
    elif a.channels == 2:
        left_alone.append(bw.why)
    left_alone.append(f"stereo width unchanged: correlation {s.correlation_overall:.2f}")

    # the EQ before the peak stage moves the bass the bass limiter holds (a corrective low shelf)
    bass_f = np.geomspace(40.0, BASS_SPLIT_HZ, 8)
    low_gain_db = sum(float(np.mean(eq_response_db(st_.params, a.sample_rate, bass_f)))
                      for st_ in stages if st_.kind == "eq" and isinstance(st_.params, EqParams))
    peak, peak_notes = plan_peak_stages(a, d, intent, low_gain_db=low_gain_db)
    stages.extend(peak)
    left_alone.extend(peak_notes)
    corrective = [st_.label for st_ in stages if st_.kind not in ("limiter", "clipper", "bass_limiter", "dc")]
    if loudness_only:
        summary = f"loudness only: the input {mastered.summary()}"
    elif not corrective:
        summary = ("gain and limiter only: tone, dynamics and width are within the target's tolerance, "
                   "so nothing else is changed")
        left_alone.insert(0, summary)
    else:
        summary = "corrected: " + ", ".join(corrective)
    return Chain(tuple(stages), {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp,
                                 "left_alone": left_alone,
                                 "assessment": {"summary": summary, "mastered": mastered.to_dict(),
                                                "bass_correlation": round(bw.correlation, 3),
                                                "limiter_load_db": round(need.limiter_load_db, 1),
                                                "dynamics_range_lu": [round(v, 1) for v in lra_range],
                                                "dynamics_source": range_source},
                                 "warnings": warnings,
                                 "style": intent.style_info or {"style": "none", "target": target.name},
                                 "intent": {"tone_pct": intent.tone_pct, "dynamics_pct": intent.dynamics_pct,
                                            "width_pct": intent.width_pct, "intensity": intent.intensity,
                                            "loudness": intent.loudness},
                                 "tonal_target": {"name": target.name,
                                                  "level_db": [round(float(v), 2) for v in target_db]}})


#: the subsonic filter needs energy below 25 Hz within this of the 50-80 Hz bass, dB ...
SUBSONIC_UNDER_BASS_DB = 10.0
#: ... and this far above the 30-45 Hz region (rumble rises toward infrasound), dB
SUBSONIC_OVER_DEEP_DB = 3.0
#: most the clip stage takes off the loudest transient, dB (by intensity); beyond it the curve's
#: distortion would fall under the 25 dB treble margin the benchmark measures
_CLIP_MAX_DB = {"gentle": 1.5, "balanced": 3.0, "loud": 4.0}
#: share of the needed peak reduction the clip stage takes (the rest is the limiter's)
_CLIP_SHARE = 0.5
#: below this much needed peak reduction there is nothing for a clip stage to do, dB
_CLIP_MIN_NEED_DB = 1.0
#: how far the true peak must stand above the loudest 400 ms (momentary loudness) before anything
#: is left to clip: a sustained tone stands about 3-4 dB above it (clipping it is plain distortion),
#: drum-led mixes 8-12 dB (their peaks are short hits)
_SUSTAINED_PEAK_DB = 6.0
#: above this much limiting the limiter's slow (sustained) release path is left off, dB
_SUSTAIN_MAX_NEED_DB = 3.0
#: a bass limiter is planned when the target needs at least this much off the peaks, dB ...
_BASS_MIN_NEED_DB = 3.0
#: ... and the low band's peaks stand this far above the rest's (kick and bass carry the peaks), dB
_BASS_DOMINANT_DB = 6.0
#: it takes the low band's peaks down by up to twice the needed reduction (the bass also carries
#: the loudness, so the drive rises after it: measured on kicks over a pad, 1x still left the
#: full-band limiter ducking the pad 4.7 dB, 2x 1.3 dB), at most to this far above the rest, and
#: never more than _BASS_MAX_DB
_BASS_NEED_FACTOR = 2.0
_BASS_ABOVE_REST_DB = 3.0
_BASS_MAX_DB = 12.0
#: ... and only while the low band is over the bass limiter's threshold at most this share of the
#: time: short kicks are (kicks over a pad: 9.1 dB off the peaks, over it 21% of the time), and
#: there a full-band limiter pumps; sustained 808s or bass notes are over it most of the time, and
#: there a full-band limiter holds a steady gain while a bass limiter would only thin the bass
_BASS_MAX_HELD_SHARE = 0.4
#: ... and never so far that the low band loses more than this much of its energy, dB
_BASS_MAX_ENERGY_DROP_DB = 6.0
#: a limiter event (reduction held from its first over until it has gone) shorter than this lets
#: go proportionally faster: a click or a lone snare crack does not duck what follows for the
#: full release, a kick's long over or a dense passage gets the full release, ms
_TRANSIENT_MS = 100.0
#: from this much needed peak reduction the clip stage clips only under TREBLE_SPLIT_HZ: a full-band
#: clip bends the hats and cymbals riding on every clipped hit (its output alone read 18-30 dB of
#: treble margin on six real tracks at -8 LUFS, where 5.7-10.1 dB were needed). Under it the split
#: would cost its FIR for little, dB
_TREBLE_SPLIT_MIN_NEED_DB = 5.0
#: the limiter holds the treble apart (its step 6) where its gain, as the loudness model predicts it
#: at the drive that reaches the target, would move more than this inside 50 ms (rms over the
#: windows, weighted by their loudness): a gain wobbling by g dB rms puts modulation products
#: about 20 log10(8.7 / g) dB under every treble partial, 27 dB at 0.4 dB. Predicted on nine real
#: tracks: 0.00-0.22 dB at -14 LUFS (measured margins 27 dB or more with one gain), 0.56-2.03 dB
#: at -8 (15-22 dB with one gain, 24-35 dB with the treble apart), dB
_TREBLE_WOBBLE_DB = 0.4
_WOBBLE_WINDOW_S = 0.05
TREBLE_SPLIT_HZ = 2000.0


def bass_limiter_take_db(a: Analysis, need_db: float) -> float:
    """How much the bass limiter takes off the low band's peaks (0: no bass limiter): when the
    target needs ``need_db`` (>= _BASS_MIN_NEED_DB) off the peaks and those peaks are the bass (the
    low band's stand _BASS_DOMINANT_DB or more above the rest's), up to _BASS_NEED_FACTOR x
    ``need_db``, keeping the low band _BASS_ABOVE_REST_DB above the rest, at most _BASS_MAX_DB, and only
    while the bass is over the threshold a short share of the time (_BASS_MAX_HELD_SHARE: kicks, not
    sustained notes) and loses at most _BASS_MAX_ENERGY_DROP_DB of its energy."""
    over = a.low_band_peak_dbfs - a.high_band_peak_dbfs
    if a.channels > 2:  # the bands are measured on the front pair; an LFE would be held blind
        return 0.0
    if not (need_db >= _BASS_MIN_NEED_DB and math.isfinite(over) and over >= _BASS_DOMINANT_DB):
        return 0.0
    take = round(min(_BASS_MAX_DB, _BASS_NEED_FACTOR * need_db, over - _BASS_ABOVE_REST_DB), 1)
    bands = a.band_peaks
    while take >= 1.0:
        threshold = a.low_band_peak_dbfs - take
        if (bands.held_share(threshold) <= _BASS_MAX_HELD_SHARE
                and bands.energy_drop_db(threshold) <= _BASS_MAX_ENERGY_DROP_DB):
            break
        take = round(take - 0.5, 1)
    return take if take >= 1.0 else 0.0


def plan_bass_limiter(a: Analysis, need_db: float, *, low_gain_db: float = 0.0) -> Stage | None:
    """The bass limiter stage (see :func:`bass_limiter_take_db`), or None. Where the loudest peaks
    are the bass, a full-band limiter turns everything down under each kick (a pad or vocal
    pumps); taking the low band's peaks instead leaves it little to do. ``low_gain_db``: what the
    stages before it do to the bass (its threshold moves with them)."""
    take = bass_limiter_take_db(a, need_db)
    if take <= 0.0:
        return None
    over = a.low_band_peak_dbfs - a.high_band_peak_dbfs
    cost = a.band_peaks.energy_drop_db(a.low_band_peak_dbfs - take)
    held = a.band_peaks.held_share(a.low_band_peak_dbfs - take)
    threshold = round(float(np.clip(a.low_band_peak_dbfs + low_gain_db - take, -60.0, 0.0)), 2)
    p = BassLimiterParams(crossover_hz=BASS_SPLIT_HZ, threshold_db=threshold)
    return Stage("bass_limiter", p, label="bass limiter", why=(
        f"the target needs about {need_db:.1f} dB off the loudest peaks and they are the bass: below "
        f"{BASS_SPLIT_HZ:g} Hz the peaks reach {a.low_band_peak_dbfs:.1f} dBFS, {over:.1f} dB above everything "
        f"else's ({a.high_band_peak_dbfs:.1f} dBFS). A full-band limiter would turn the whole mix down under "
        f"each kick (what plays over it pumps), so the low band alone is held at {threshold:.1f} dBFS "
        f"({take:.1f} dB off its peaks"
        + (f", after the EQ's {low_gain_db:+.1f} dB there" if abs(low_gain_db) >= 0.1 else "")
        + f"; the bass is over it {held:.0%} of the time, short hits, and loses about {cost:.1f} dB of its energy; "
        f"linear-phase split, {p.hold_ms:g} ms hold so bass notes keep a steady "
        f"gain, {p.release_ms:g} ms release) and the full-band limiter has little left to do. In REAPER: "
        "ReaXcomp with only its lowest band active (ratio infinity, fast attack) comes close; its IIR "
        "crossover shifts the bass's phase"))


def plan_peak_stages(a: Analysis, d: Delivery, intent: Intent, *,
                     low_gain_db: float = 0.0) -> tuple[list[Stage], list[str]]:
    """The peak stage: a bass limiter where the peaks to take are the bass (:func:`plan_bass_limiter`),
    else an oversampled soft clip (when the target needs peak reduction), and the true-peak
    limiter; returns the stages and the notes on what was left alone. ``low_gain_db``: what the
    stages before it do to the bass.

    The load is split by measurement: reaching ``target`` at ``ceiling`` with the mix's
    peak-to-loudness ratio needs about ``PLR - (ceiling - target)`` dB off the loudest peaks. The
    clip stage takes ``_CLIP_SHARE`` of that, at most ``_CLIP_MAX_DB`` (short transients lose their
    top with a distortion too brief to hear; the limiter would duck everything under them for
    its hold and release); the limiter does the rest and owns the ceiling. The clip level is set
    from the mix's measured true peak; stages before it (EQ, compression) move the real peak by
    about their own gain, so the clip stage's share moves with it.
    """
    notes: list[str] = []
    stages: list[Stage] = []
    scale = {"gentle": 1.5, "balanced": 1.0, "loud": 0.75}[intent.intensity]
    need = peak_reduction_db(a, target_lufs=d.target_lufs, ceiling_dbtp=d.ceiling_dbtp, loudness=intent.loudness)
    transient_db = a.true_peak_dbtp - a.max_momentary_lufs  # how far short peaks stand above the body
    bass = plan_bass_limiter(a, need, low_gain_db=low_gain_db)
    if bass is not None:
        stages.append(bass)
        notes.append("no clip stage: the bass limiter takes the peaks, which are the kick and bass")
    split_hz = TREBLE_SPLIT_HZ if need >= _TREBLE_SPLIT_MIN_NEED_DB else 0.0
    clip_db = 0.0
    if need >= _CLIP_MIN_NEED_DB and bass is None:
        clip_db = round(min(_CLIP_MAX_DB[intent.intensity], _CLIP_SHARE * need,
                            max(0.0, transient_db - _SUSTAINED_PEAK_DB)), 1)
    if clip_db >= 0.5:
        ceiling = float(np.clip(a.true_peak_dbtp - clip_db, -30.0, 0.0))
        under = (f" under {split_hz:g} Hz (the treble passes clean, not bent by each clipped hit)"
                 if split_hz else "")
        stages.append(Stage("clipper", ClipperParams(drive_db=0.0, ceiling_db=round(ceiling, 2), knee_db=3.0,
                                                     split_hz=split_hz),
                            label="soft clip (transients)",
                            why=f"{d.target_lufs:g} LUFS at {d.ceiling_dbtp:g} dBTP needs about {need:.1f} dB off the "
                                f"loudest peaks (PLR {a.plr_db:.1f} dB) and they stand {transient_db:.1f} dB above the loudest "
                                f"400 ms, so they are short hits; a 4x-oversampled soft clip{under} takes up to "
                                f"{clip_db:.1f} dB of the short transients (peaks at {a.true_peak_dbtp:.1f} dBTP; "
                                f"held under {ceiling:.1f} dBFS, linear below {ceiling - 3.0:.1f}), the limiter "
                                f"the other {max(need - clip_db, 0.0):.1f} dB or more, so it ducks less after each hit. In "
                                "REAPER: a JS soft clipper with 4x FX oversampling comes close; "
                                f"{'this split and ' if split_hz else 'this exact '}curve {'are' if split_hz else 'is'} "
                                "ReaMaster's own"))
    elif bass is None:
        if not intent.loudness:
            notes.append("no clip stage: the mix keeps its own loudness, the limiter only guards the ceiling")
        elif need < _CLIP_MIN_NEED_DB:
            notes.append(f"no clip stage: the target needs only {max(need, 0.0):.1f} dB off the peaks (PLR "
                         f"{a.plr_db:.1f} dB), which the limiter takes alone")
        else:
            notes.append(f"no clip stage: the peaks stand only {transient_db:.1f} dB above the loudest 400 ms "
                         f"(sustained, not short hits: clipping them would be heard as distortion)")
    dense = a.lra_lu < 5
    release = (60.0 if dense else 40.0) * scale
    sustain_release = (400.0 if dense else 300.0) * scale
    # the slow path holds a steady gain through sustained overs, at the price of about half a LU at
    # heavy limiting; beyond _SUSTAIN_MAX_NEED_DB of needed reduction that price can put the target
    # out of reach, so the limiter keeps only its hold and fast release there
    hold_ms = 10.0
    if need - clip_db > _SUSTAIN_MAX_NEED_DB:
        sustain_release = 0.0
        hold_ms = 4.0  # still a steady gain on 50 Hz (measured THD 0.12% at 6 dB, 0.19% at 12 dB)
    if intent.loudness:
        why = f"target {d.target_lufs:g} LUFS at {d.ceiling_dbtp:g} dBTP ({d.name})"
    else:
        why = (f"keeps the mix's own loudness ({a.integrated_lufs:.1f} LUFS) and guards the "
               f"{d.ceiling_dbtp:g} dBTP ceiling")
    slow = (f"and of sustained overs in {sustain_release:.0f} ms" if sustain_release else
            f"(no slow release: {need - clip_db:.1f} dB of limiting needs every dB of loudness it can get)")
    why += (f"; holds each reduction {hold_ms:g} ms (bass down to {30 if hold_ms >= 10 else 50} Hz keeps a "
            f"steady gain), lets go of transients "
            f"in {release:.0f} ms (an isolated click or crack held under {_TRANSIENT_MS:.0f} ms faster, in "
            f"proportion) {slow} (LRA {a.lra_lu:.1f} LU, "
            f"{intent.intensity}); reads true peak as libebur128 and an ideal 8x meter do. In REAPER: ReaLimit at "
            f"the same ceiling and threshold with a {release:.0f} ms release comes close (it has no hold or "
            "second release)")
    stages.append(Stage("limiter", lim.LimiterParams(threshold_db=0.0, ceiling_dbtp=d.ceiling_dbtp,
                                                     release_ms=release, lookahead_ms=3.0, hold_ms=hold_ms,
                                                     sustain_attack_ms=1000.0, sustain_release_ms=sustain_release,
                                                     transient_ms=_TRANSIENT_MS),
                        label="true-peak limiter", why=why))
    return stages, notes


#: a resonance cut may lower its third-octave band by at most this much: at mastering it tames a
#: ring, it does not re-voice the band (deeper is a fix for the mix; a 6 dB notch on a narrow peak
#: carrying most of its band changed a finished master's 8 kHz band by 3.4 dB), dB
RESONANCE_MAX_BAND_DB = 1.5
#: a capped cut shallower than this is not worth a band: the peak is left alone, dB
RESONANCE_MIN_CUT_DB = 1.0


def resonance_cut_db(s: SpectrumResult, freq_hz: float, depth_db: float) -> tuple[float, float]:
    """``(depth, band change)``: the narrow cut at ``freq_hz`` (0.1 octave), at most ``depth_db``
    deep and shallow enough that the third octave centred on it loses at most
    RESONANCE_MAX_BAND_DB of its long-term power, worked out on the mix's bin spectrum."""
    bin_db = np.asarray(s.bin_db, dtype=float)
    f = np.arange(bin_db.size) * s.sample_rate / s.nfft
    sel = np.abs(np.log2(np.maximum(f, 1e-9) / freq_hz)) <= 1 / 6
    if not np.any(sel):
        return round(depth_db, 1), 0.0
    f, power = f[sel], 10 ** (bin_db[sel] / 10)

    def band_change(depth: float) -> float:
        cut = EqParams(bands=(EqBand("band", freq_hz=freq_hz, gain_db=-depth, bw_oct=0.1),))  # as planned
        gain = 10 ** (eq_response_db(cut, s.sample_rate, f) / 10)
        return float(10 * np.log10(np.sum(power * gain) / np.sum(power)))

    depth = round(depth_db, 1)
    while depth > 0 and band_change(depth) < -RESONANCE_MAX_BAND_DB:
        depth = round(depth - 0.1, 1)
    return max(depth, 0.0), band_change(max(depth, 0.0)) if depth > 0 else 0.0


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


AUDIBLE_MIN_DB = 0.5  # a region must lie at least this far beyond its tolerance ...
AUDIBLE_MIN_BANDS = 2  # ... over at least this many adjacent 1/3-octave bands (2/3 octave)
WRONG_WAY_DB = 0.25  # an EQ that moves a region away from the target by more than this is refitted
EMPTY_LEAK_DB = 0.5  # most a boost's skirt may lift a band with nothing to lift, dB


def audible_regions(beyond_db: np.ndarray, *, min_db: float = AUDIBLE_MIN_DB,
                    min_bands: int = AUDIBLE_MIN_BANDS) -> np.ndarray:
    """``beyond_db`` with every run of same-signed bands shorter than ``min_bands`` (or under
    ``min_db``) zeroed: a listener hears broad tonal differences, not one band's wobble."""
    b = np.asarray(beyond_db, dtype=float)
    sign = np.where(np.abs(b) >= min_db, np.sign(b), 0.0)
    out = np.zeros_like(b)
    i = 0
    while i < len(b):
        j = i
        while j + 1 < len(b) and sign[j + 1] == sign[i]:
            j += 1
        if sign[i] != 0 and j - i + 1 >= min_bands:
            out[i:j + 1] = b[i:j + 1]
        i = j + 1
    return out


#: a band this far under the mix's median third octave holds nothing a boost would bring up (a
#: low-passed file's or a very dark master's top octave sits 40-55 dB under it, a dark but whole
#: one's 25-35); the median, not the loudest band, so a boomy low end does not empty the top, dB
EMPTY_BAND_DB = 40.0


def nothing_to_lift(freqs: np.ndarray, levels_db: np.ndarray, sample_rate: int) -> np.ndarray:
    """Bands the EQ listens to that lie over EMPTY_BAND_DB under the median of them: a boost there
    raises noise and codec artefacts, not music, so the corrective EQ never boosts them."""
    lv = np.asarray(levels_db, dtype=float)
    heard = eq_weights(freqs, sample_rate) > 0
    if not heard.any():
        return np.zeros(len(lv), dtype=bool)
    out: np.ndarray = heard & (lv < float(np.median(lv[heard])) - EMPTY_BAND_DB)
    return out


def eq_deviation_db(freqs: np.ndarray, levels_db: np.ndarray, target_db: np.ndarray,
                    sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``(deviation, empty)``: :func:`tonal_deviation_db` with the level set by the bands that hold
    music (an empty top octave 50 dB down would otherwise put every other band "above the target"),
    and the :func:`nothing_to_lift` mask."""
    dev = tonal_deviation_db(freqs, levels_db, target_db)
    empty = nothing_to_lift(freqs, levels_db, sample_rate)
    music = (freqs >= 40) & (freqs <= 16000) & ~empty
    if music.any():
        dev = dev - float(np.mean(dev[music]))
    return dev, empty


def wrong_way_bands(net_db: np.ndarray, deviation_db: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Bands where the EQ (smoothed over an octave) boosts what is already above the target or cuts
    what is already below it, by more than ``WRONG_WAY_DB``."""
    net = np.convolve(np.pad(net_db, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    wrong: np.ndarray = (net * deviation_db > 0) & (np.abs(net) > WRONG_WAY_DB) & (weights > 0)
    return wrong


def corrective_eq(freqs: np.ndarray, levels_db: np.ndarray, sample_rate: int, *, target_db: np.ndarray,
                  tolerance_db: np.ndarray, amount: float, max_bands: int = 6,
                  max_gain_db: float = SUGGESTED_EQ_MAX_DB) -> Stage | None:
    """An EQ stage moving the tonal shape ``amount`` (0..1) of the way toward ``target_db``.

    The deviation is smoothed over half an octave (mastering EQ moves are broad; narrow
    resonances are a different tool); what lies inside ``tolerance_db``, or beyond it by less than
    ``AUDIBLE_MIN_DB`` or over less than 2/3 octave, is left alone; the rest is fitted as ReaEQ
    bands. The fit never boosts a region already above the target nor cuts one already below it
    (refitted with that region held at 0 dB), and the bands together never exceed ``max_gain_db``.
    Returns None when no band would do at least 0.3 dB.
    """
    dev, empty = eq_deviation_db(freqs, levels_db, target_db, sample_rate)
    weights = eq_weights(freqs, sample_rate)
    # smoothed over the bands the EQ listens to only: a band above them (a lossy file's empty top
    # octave, 20 kHz on a 44.1 kHz file) would otherwise drag its neighbour down and draw a boost
    heard = (weights > 0).astype(float)
    smooth = (np.convolve(np.pad(dev * heard, 1), np.ones(3), mode="valid")
              / np.maximum(np.convolve(np.pad(heard, 1), np.ones(3), mode="valid"), 1.0))
    smooth = np.where(heard > 0, smooth, 0.0)
    excess = np.sign(smooth) * np.maximum(np.abs(smooth) - tolerance_db, 0.0)
    beyond = audible_regions(np.where(empty & (excess < 0), 0.0, excess))  # below the target: a boost
    if not np.any(beyond):
        return None
    target = np.clip(-amount * beyond, -max_gain_db, max_gain_db)  # bounds the total, not just each band

    def forbidden(net: np.ndarray) -> np.ndarray:
        """Bands pushed the wrong way, or lifted where there is nothing to lift."""
        out: np.ndarray = wrong_way_bands(net, smooth, weights) | (empty & (net > WRONG_WAY_DB))
        return out

    held = empty.copy()  # and no shelf reaching into them either
    fit = None
    for _ in range(4):
        w = np.where(held, 4.0 * np.maximum(weights, 0.25), weights)
        fit = fit_eq(freqs, np.where(held, 0.0, target), sample_rate=sample_rate, weights=w,
                     max_bands=max_bands, max_gain_db=max_gain_db, min_bw_oct=0.5)
        net_db = band_response_db(fit.eq, sample_rate, freqs)
        wrong = forbidden(net_db)
        if not wrong.any():
            break
        held |= wrong
    assert fit is not None
    eq = fit.eq
    net_db = band_response_db(eq, sample_rate, freqs)
    if forbidden(net_db).any():
        # still pushing somewhere the wrong way: keep only the bands whose own move is right where they act
        keep = []
        for b in eq.bands:
            own = band_response_db(EqParams(bands=(b,)), sample_rate, freqs)
            main = np.abs(own) >= 0.5 * abs(b.gain_db)  # where the band does most of its work
            if not (forbidden(own) & main).any():
                keep.append(b)
        eq = EqParams(bands=tuple(keep))
        net_db = band_response_db(eq, sample_rate, freqs)
    if empty.any() and eq.bands and float(np.max(net_db[empty])) > EMPTY_LEAK_DB:
        # a boost's skirt still lifting an empty band: the boosts shrink together until it does not
        lo, hi = 0.0, 1.0
        for _ in range(12):
            mid = 0.5 * (lo + hi)
            trial = EqParams(bands=tuple(dataclasses.replace(b, gain_db=b.gain_db * mid) if b.gain_db > 0 else b
                                         for b in eq.bands))
            lo, hi = (mid, hi) if float(np.max(band_response_db(trial, sample_rate, freqs)[empty])) <= EMPTY_LEAK_DB \
                else (lo, mid)
        eq = EqParams(bands=tuple(dataclasses.replace(b, gain_db=math.floor(b.gain_db * lo * 10) / 10)
                                  if b.gain_db > 0 else b for b in eq.bands))
        net_db = band_response_db(eq, sample_rate, freqs)
    peak = float(np.max(np.abs(net_db[weights > 0]))) if eq.bands else 0.0
    if peak > max_gain_db + 0.05:  # bands stacking past the limit: scale them back together
        k = max_gain_db / peak
        eq = EqParams(bands=tuple(dataclasses.replace(b, gain_db=round(b.gain_db * k, 1)) for b in eq.bands))
        net_db = band_response_db(eq, sample_rate, freqs)
    eq = EqParams(bands=tuple(b for b in eq.bands if abs(b.gain_db) >= 0.3))
    if not eq.bands:
        return None
    net_db = band_response_db(eq, sample_rate, freqs)
    reasons = []
    for b in eq.bands:
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
    return Stage("eq", eq, label="corrective EQ", why="; ".join(reasons))


class _LoudnessModel:
    """Predicts the integrated loudness after the limiter for a given threshold, cheaply.

    Works on 32x decimated series of the detector (sample peaks) and of the K-weighted power:
    the limiter's gain is slow next to the K filter, so K(x * g) ~ K(x) * g. Inter-sample
    peaks and the decimation make it slightly optimistic; exact renders confirm the answer.
    Built block by block (:class:`ModelSeries`), it holds 8 bytes per 32 samples (86 MB for
    two hours of 48 kHz audio) and evaluates in chunks, so nothing full-length is made.
    """

    def __init__(self, pre: np.ndarray, sample_rate: int, params: lim.LimiterParams) -> None:
        builder = ModelSeries(sample_rate, pre.shape[1])
        builder.feed(pre)
        self._take(builder, params)

    @classmethod
    def from_builder(cls, builder: ModelSeries, params: lim.LimiterParams) -> _LoudnessModel:
        """The model on ``builder``'s series, which it takes: the builder is left empty, so the
        series go with the model however long the caller keeps the builder."""
        model = cls.__new__(cls)
        model._take(builder, params)
        return model

    def _take(self, b: ModelSeries, params: lim.LimiterParams) -> None:
        self.sample_rate, self.params = b.sample_rate, params
        self.n_hops, self.hop = b.n_hops, b.hop
        self.env_dec, self.group_power = b.env, b.power
        b.env = b.power = np.zeros(0, dtype=np.float32)
        b.taken = True
        self.peak_db = 20 * math.log10(max(float(self.env_dec.max()) if self.env_dec.size else 0.0, 1e-12))

    def _reductions(self, threshold_db: float, *, chunk: int = _MODEL_CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        """The limiter's reduction (dB) at ``threshold_db`` on the decimated envelope, in chunks of
        about ``chunk`` groups: ``(first group, reductions)``, covering groups 0 .. n - 1 in order."""
        p = dataclasses.replace(self.params, threshold_db=threshold_db)
        cs = lim.curve_settings(p, self.sample_rate, decimation=_MODEL_DECIMATION)
        look, hold = cs["lookahead"], cs["hold"]
        lag = hold + look - 1  # the reduction curve lags the envelope by this many groups
        state = lim.new_gain_state(look, hold, cs["hold_extra"])
        n = self.env_dec.shape[0]
        pos = -lag  # group of the next reduction value
        for start in range(0, n + lag, chunk):
            piece = self.env_dec[start:start + chunk] if start < n else np.zeros(0, dtype=np.float32)
            if start + chunk > n:  # the look-ahead's zeros after the end
                piece = np.concatenate((piece, np.zeros(min(start + chunk, n + lag) - max(start, n),
                                                        dtype=np.float32)))
            red, state = lim.reduction_curve(piece, state=state, **cs)
            lo = max(0, -pos)
            g0, g1 = pos + lo, min(pos + red.shape[0], n)
            pos += red.shape[0]
            if g1 > g0:
                yield g0, red[lo: lo + g1 - g0]

    def loudness(self, threshold_db: float) -> float:
        drive_db = dataclasses.replace(self.params, threshold_db=threshold_db).drive_db
        dec = _MODEL_DECIMATION
        hop_energy = np.zeros(self.n_hops + 1)
        for g0, red in self._reductions(threshold_db):
            add_limited_groups_to_hops(self.group_power, g0, red, drive_db, group=dec, hop=self.hop, out=hop_energy)
        return gated_loudness_of_hops(hop_energy[: self.n_hops] / self.hop)

    def gain_wobble_db(self, threshold_db: float) -> float:
        """How much the limiter's gain would move inside each 50 ms at ``threshold_db``: the rms,
        over the windows weighted by their (pre-limiter) loudness power, of the reduction's
        deviation from its own mean in the window, dB. Works in small chunks (a few hundred kB)."""
        w = max(1, round(_WOBBLE_WINDOW_S * self.sample_rate / _MODEL_DECIMATION))
        weighted, total = 0.0, 0.0
        carry = np.zeros(0)
        done = 0  # groups in whole windows so far
        for _, red in self._reductions(threshold_db, chunk=_WOBBLE_CHUNK):
            seg = np.concatenate((carry, red))  # starts on a window boundary
            k = seg.shape[0] // w
            if k:
                var = seg[: k * w].reshape(k, w).var(axis=1)
                power = self.group_power[done: done + k * w].reshape(k, w).sum(axis=1, dtype=np.float64)
                weighted += float(np.dot(var, power))
                total += float(power.sum())
                done += k * w
            carry = seg[k * w:]  # the partial last window is left out
        return math.sqrt(weighted / total) if total > 0.0 else 0.0


class ModelSeries:
    """The loudness model's decimated series (the largest |sample| and the K-weighted power of
    every 32 samples) of a pre-limiter signal, fed ``(channels, n)`` blocks of any length in order."""

    @staticmethod
    def nbytes_for(frames: int) -> int:
        """Memory the series of ``frames`` samples take (8 bytes per 32 samples)."""
        return max(0, frames) // _MODEL_DECIMATION * 8

    def __init__(self, sample_rate: int, frames: int) -> None:
        self.sample_rate = sample_rate
        self.hop = hop_samples(sample_rate)  # 100 ms hops, as the loudness gating uses
        self.n_hops = frames // self.hop
        n_groups = self.n_hops * self.hop // _MODEL_DECIMATION
        self.env = np.zeros(n_groups, dtype=np.float32)
        self.power = np.zeros(n_groups, dtype=np.float32)  # 24 bits of a 32-sample sum: ample for a model
        self._g = 0
        self._rest: np.ndarray | None = None
        self._kstate: np.ndarray | None = None
        self.taken = False  # a model took the series (they are gone from here)

    def feed(self, x: np.ndarray) -> None:
        dec = _MODEL_DECIMATION
        n_groups = self.env.shape[0]
        if self._g >= n_groups:
            return
        if self._rest is not None and self._rest.shape[1]:
            x = np.concatenate((self._rest, x), axis=1)
        avail = min(x.shape[1] // dec, n_groups - self._g)
        g0, g1 = self._g, self._g + avail
        power, env, self._kstate = k_weighted_groups(x, self.sample_rate, group=dec, state=self._kstate)
        self.power[g0:g1], self.env[g0:g1] = power[:avail], env[:avail]  # past avail: after the last hop
        self._g += avail
        self._rest = x[:, avail * dec:].copy() if self._g < n_groups else None

    @property
    def complete(self) -> bool:
        """Whether every group up to the last whole 100 ms hop has been fed (and is still here)."""
        return not self.taken and self._g >= self.env.shape[0]


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


def _model_threshold(model: _LoudnessModel, params: lim.LimiterParams, target_lufs: float) -> tuple[float, float]:
    """The model's threshold for ``target_lufs`` and the lowest threshold allowed; raises
    TargetUnreachableError when even ``_MAX_LIMITING_DB`` of limiting cannot get there."""
    lo_thr = max(-60.0, model.peak_db - _MAX_LIMITING_DB)
    hi_thr = min(12.0, model.peak_db + 30.0)  # turns everything down, no limiting

    def f(t: float) -> float:
        return model.loudness(t) - target_lufs

    # At the model's peak nothing is limited yet, and above it loudness falls 1 LU per dB.
    top = min(hi_thr, model.peak_db)
    f_top = f(top)
    if f_top > 0:  # no limiting needed: the answer lies in the straight part above the peak
        f_hi = f(hi_thr)
        if f_hi > 0:
            raise TargetUnreachableError(f"cannot turn the mix down to {target_lufs:g} LUFS")
        return _solve_increasing(f, top, hi_thr, f_top, f_hi), lo_thr
    # Under it: first where that straight line meets the target (light limiting lands within
    # the tolerance there), then secant steps down the curve (limiting takes part of each dB of
    # drive); a reading past the target brackets the answer. After six steps short of it, the
    # lowest threshold is read (can it get there at all?) and the bracket closed from there.
    a, fa = top, f_top
    t = top + f_top
    for _ in range(6):
        if t <= lo_thr:
            break
        ft = f(t)
        if abs(ft) < 0.005:
            return t, lo_thr
        if ft > 0:
            return _solve_increasing(f, t, a, ft, fa), lo_thr
        if ft <= fa:  # no louder for more drive
            break
        a, fa, t = t, ft, t - ft * (t - a) / (ft - fa)
    f_lo = f(lo_thr)
    if f_lo < -LOUDNESS_TOLERANCE_LU:
        raise TargetUnreachableError(
            f"cannot reach {target_lufs:g} LUFS at {params.ceiling_dbtp:g} dBTP: "
            f"{_MAX_LIMITING_DB:g} dB of limiting reaches only {f_lo + target_lufs:.1f} LUFS")
    if f_lo <= 0:
        return lo_thr, lo_thr  # within the promise at the most limiting allowed
    return _solve_increasing(f, lo_thr, a, f_lo, fa), lo_thr


def _faster_variants(params: lim.LimiterParams) -> Iterator[lim.LimiterParams]:
    """Quicker limiter timings, gentlest first, for when the planned ones cannot reach the target:
    the slow (sustained) release off and a 4 ms hold (50 Hz still keeps a steady gain), then
    shorter fast releases. On a dense mix a long release keeps the gain down between peaks, so
    loudness stops rising however hard it is driven."""
    quick = dataclasses.replace(params, sustain_release_ms=0.0, hold_ms=min(params.hold_ms, 4.0))
    yield quick
    for release_ms in (30.0, 15.0):
        if release_ms < params.release_ms:
            yield dataclasses.replace(quick, release_ms=release_ms)


def _reachable(model: _LoudnessModel, params: lim.LimiterParams,
               target_lufs: float) -> tuple[lim.LimiterParams, float, float]:
    """``(params, threshold, lowest threshold)``: the planned timings when the model says they reach
    ``target_lufs``, else the first of :func:`_faster_variants` that does; TargetUnreachableError
    (about the planned timings) when none does."""
    try:
        return (params, *_model_threshold(model, params, target_lufs))
    except TargetUnreachableError as first:
        for quicker in _faster_variants(params):
            model.params = quicker
            try:
                return (quicker, *_model_threshold(model, quicker, target_lufs))
            except TargetUnreachableError:
                continue
        model.params = params
        raise first from None


def _with_treble_split(model: _LoudnessModel, params: lim.LimiterParams,
                       threshold_db: float) -> tuple[lim.LimiterParams, str]:
    """``params`` with the treble held apart (limiter step 6) where the model says the gain would
    wobble by more than _TREBLE_WOBBLE_DB inside 50 ms at ``threshold_db``, and the reason (empty
    when it is not, or when the limiter already has a split)."""
    if params.treble_split_hz > 0.0:
        return params, ""
    wobble = model.gain_wobble_db(threshold_db)
    if wobble <= _TREBLE_WOBBLE_DB:
        return params, ""
    return dataclasses.replace(params, treble_split_hz=TREBLE_SPLIT_HZ), (
        f"; at this drive its gain would move {wobble:.1f} dB rms inside every 50 ms (over "
        f"{_TREBLE_WOBBLE_DB:g} dB: modulation products less than 27 dB under every hat and cymbal), so above "
        f"{TREBLE_SPLIT_HZ:g} Hz it applies the same reduction averaged over 100 ms: the treble is not "
        "modulated by each kick and snare but comes down as much on average (the balance stays), and a "
        "quick second pass at the ceiling catches what the treble then adds to a peak. ReaLimit has no "
        "band split; in REAPER this part cannot be reproduced")


#: with the treble split on, exact renders whose loudness rose less than this per dB of drive
#: short of the target: a dense mix whose gain never recovers between peaks, where the catching
#: pass also takes part of what more drive gives (0.09 LU on a test mix), so the split is dropped
#: and the full-band gain converged instead, LU per dB
_SPLIT_STALL_LU_PER_DB = 0.1
_SPLIT_DROPPED = ("; the treble is not held apart here: the loudness stopped rising with the drive short of the "
                  "target (a dense mix whose gain never recovers between peaks), and one full-band gain gets closer")


def _split_stalled(p: lim.LimiterParams, history: list[tuple[float, float]]) -> bool:
    """Whether the last two exact renders with the treble split show it stalling (see above)."""
    if p.treble_split_hz <= 0.0 or len(history) < 2:
        return False
    (t0, l0), (t1, l1) = history[-2:]
    return abs(t1 - t0) > 1e-6 and abs((l1 - l0) / (t1 - t0)) < _SPLIT_STALL_LU_PER_DB


def _limiter_stage(planned: Stage, used: lim.LimiterParams, target_lufs: float, split_why: str = "") -> Stage:
    """The limiter stage as rendered; when its timings had to be quickened, the reason is added,
    and ``split_why`` (:func:`_with_treble_split`)."""
    was = cast(lim.LimiterParams, planned.params)
    why = planned.why + split_why
    if (used.release_ms, used.hold_ms, used.sustain_release_ms) != (was.release_ms, was.hold_ms,
                                                                      was.sustain_release_ms):
        why += (f"; quickened to a {used.release_ms:g} ms release, {used.hold_ms:g} ms hold and no slow "
                f"release: with the planned timings even {_MAX_LIMITING_DB:g} dB of limiting could not "
                f"bring this dense mix to {target_lufs:g} LUFS (the gain never recovered between peaks)")
    return dataclasses.replace(planned, params=used, why=why)


def _settled(err_lu: float, iteration: int, *, at_bound: bool) -> bool:
    """Whether an exact render ``err_lu`` off the target is kept: within the aim, or within the
    promise on the last try or when the next try would need more limiting than allowed."""
    return abs(err_lu) <= _AIM_LU or (abs(err_lu) <= LOUDNESS_TOLERANCE_LU and (iteration == 4 or at_bound))


def _next_threshold(history: list[tuple[float, float]], err: float) -> float:
    """The threshold for the next exact render from (threshold, measured LUFS) so far."""
    if len(history) >= 2 and abs(history[-1][0] - history[-2][0]) > 1e-6:
        (t0, l0), (t1, l1) = history[-2], history[-1]
        slope = (l1 - l0) / (t1 - t0)
    else:
        slope = -1.0  # one dB lower threshold gives about one LU more, before limiting dominates
    return history[-1][0] - err / min(slope, -0.05)


def converge_limiter(
    pre: np.ndarray,
    sample_rate: int,
    params: lim.LimiterParams,
    target_lufs: float,
    *,
    progress: ProgressFn | None = None,
    remake_pre: Callable[[], np.ndarray] | None = None,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, lim.LimiterParams, LoudnessResult, list[object], int]:
    """Find the limiter threshold that lands on ``target_lufs``; returns the rendered master,
    its settings, its measured loudness, the limiter's final state and the renders it took.

    With ``remake_pre``, each render overwrites ``pre`` in place (one full-length buffer less)
    and ``remake_pre()`` rebuilds the pre-limiter signal when another render is needed. The
    limiter gets the treble split where the model calls for it (:func:`_with_treble_split`); its
    reason goes to ``notes``.

    Raises TargetUnreachableError, saying what was reached, when even ``_MAX_LIMITING_DB``
    of peak reduction cannot get there.
    """
    model = _LoudnessModel(pre, sample_rate, params)
    params, thr, lo_thr = _reachable(model, params, target_lufs)
    params, split_why = _with_treble_split(model, params, thr)
    model_thr = thr
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
        thr = _next_threshold(history, err)
        settled = _settled(err, iteration, at_bound=thr < lo_thr)
        if not settled and _split_stalled(p, history):
            params, thr, split_why, history = dataclasses.replace(params, treble_split_hz=0.0), model_thr, \
                _SPLIT_DROPPED, []
            continue
        if settled:
            if notes is not None and split_why:
                notes.append(split_why)
            return out, p, loud, states, iteration
        if thr < lo_thr:
            break
    raise TargetUnreachableError(
        f"loudness did not settle on {target_lufs:g} LUFS at {params.ceiling_dbtp:g} dBTP: "
        f"reached {measured:.2f} LUFS")


def _plan_with_limiter(planned: Chain | None, before: Analysis, delivery: Delivery,
                       intent: Intent | None) -> tuple[Chain, Stage]:
    """The planned chain (planned now when not given) and its limiter, which the loudness
    convergence drives; ChainError when it has none."""
    if planned is None:
        planned = plan_chain(before, delivery, intent)
    lim_stage = planned.find("limiter")
    if lim_stage is None:
        raise ChainError("a planned chain must end in a limiter to converge on the loudness target")
    return planned, lim_stage


@flushing_denormals
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
        planned, lim_stage = _plan_with_limiter(planned, before, delivery, intent)

        def make_pre() -> np.ndarray:
            return render(planned.without("limiter"), x, sample_rate,
                          progress=(lambda f: progress("processing", f)) if progress else None)

        split_notes: list[str] = []
        out, lim_params, loud, states, iterations = converge_limiter(
            make_pre(), sample_rate, cast(lim.LimiterParams, lim_stage.params), delivery.target_lufs, progress=progress,
            remake_pre=make_pre, notes=split_notes)
        final_chain = planned.replace_stage("limiter", _limiter_stage(lim_stage, lim_params, delivery.target_lufs,
                                                                      "".join(split_notes)))
    limiter_state = next((s for s in states if isinstance(s, lim.LimiterState)), None)
    metered = lim.output_true_peak_dbtp(states[-1]) if states and _ends_in_limiter(final_chain) else None
    after = analyze(out, sample_rate, true_peak_factor=8, loudness=loud if chain is None else None, band_peaks=False,
                    true_peak=metered)
    return MasterResult(out, final_chain, before, after, lim.stats(limiter_state), iterations)


def _ends_in_limiter(chain: Chain) -> bool:
    """Whether the chain's last enabled stage is the limiter, which meters the output's true peak
    as it makes it (cheaply: see :func:`dsp.process.limiter.output_true_peak_dbtp`)."""
    enabled = [st for st in chain.stages if st.enabled]
    return bool(enabled) and enabled[-1].kind == "limiter"


class _Spill:
    """The pre-limiter signal parked on disk (float32, an anonymous temporary file) between the
    model pass and the exact renders, so the stages before the limiter run once, not once per
    render. The page cache holds it, not the process: peak memory does not grow with length."""

    def __init__(self, folder: str) -> None:
        self._file = tempfile.TemporaryFile(dir=folder)
        self._sizes: list[tuple[int, int]] = []

    def write(self, block: np.ndarray) -> None:
        b = np.ascontiguousarray(block, dtype=np.float32)
        self._file.write(b.tobytes())
        self._sizes.append(b.shape)

    def blocks(self) -> Iterator[np.ndarray]:
        self._file.flush()
        self._file.seek(0)
        for shape in self._sizes:
            b = np.empty(shape, dtype=np.float32)
            if self._file.readinto(b.data.cast("B")) != b.nbytes:
                raise OSError("the temporary pre-limiter file came back short")
            yield b

    def close(self) -> None:
        self._file.close()


class BlockSink(Protocol):
    """Where a streamed master goes: ``write`` blocks, then ``commit`` (or ``abort`` to drop them)."""

    def write(self, block: np.ndarray) -> None: ...

    def commit(self) -> Any: ...

    def abort(self) -> None: ...


@flushing_denormals
def master_stream(
    blocks: Callable[[], Iterable[np.ndarray]],
    sample_rate: int,
    channels: int,
    frames: int,
    delivery: Delivery,
    sink: Callable[[], BlockSink],
    *,
    before: Analysis,
    chain: Chain | None = None,
    planned: Chain | None = None,
    intent: Intent | None = None,
    progress: ProgressFn | None = None,
    spill_dir: str | None = None,
    input_series: ModelSeries | None = None,
) -> tuple[MasterResult, Any]:
    """:func:`master` for audio too long to hold: the same decisions and the same master, in passes
    that read, process and write block by block. Returns the result (``audio`` empty) and what
    ``sink().commit()`` returned.

    ``blocks()`` starts a fresh pass over the ``(channels, n)`` input (``frames`` in all);
    ``before`` is its analysis (:func:`dsp.measure.analysis.analyze_source`). One pass renders the
    chain without its limiter into the loudness model (decimated series, see
    :class:`_LoudnessModel`); each exact render then renders the whole chain into ``sink()`` and
    measures the result on the way (the after-analysis, 8x true peak); a render that misses the
    loudness aim is dropped (``abort``) and redone with a corrected drive, as :func:`converge_limiter`.
    With ``spill_dir`` (a folder with room for the audio as float32), the model pass also parks the
    pre-limiter signal there and the exact renders limit it instead of rendering the stages again.
    ``input_series``: the input's own :class:`ModelSeries`, gathered on the analysis read
    (``analyze_source(taps=...)``); when no stage precedes the limiter the input is the pre-limiter
    signal, so the model needs no pass of its own and the renders read the input.
    """
    if intent is not None and not intent.loudness:
        delivery = dataclasses.replace(delivery, target_lufs=float(before.integrated_lufs))

    def ticking(stage: str, it: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        done = 0
        for b in it:
            yield b
            done += b.shape[1]
            if progress is not None and progress(stage, min(1.0, done / max(1, frames))) is False:
                raise CancelledError(f"cancelled while {stage}")

    spill: _Spill | None = None

    def render_into_sink(final: Chain, stage: str, *, split: bool) -> tuple[Analysis, list[Any], Any]:
        """One exact render: blocks -> chain -> (after-meter, sink); returns the analysis, stage
        states and the open sink (the caller commits or aborts it)."""
        by_limiter = _ends_in_limiter(final)  # else the output's true peak is metered here
        meter = AnalysisMeter(channels, sample_rate, frames, true_peak_factor=8, band_peaks=False,
                              true_peak=not by_limiter)
        out = sink()
        states: list[Any] = []
        try:
            if split:
                # as master(): the stages before the limiter rendered to float32, then the limiter
                pre = spill.blocks() if spill is not None else render_blocks(final.without("limiter"), blocks(),
                                                                              sample_rate)
                stream = render_blocks(Chain((final.stages[-1],)), pre, sample_rate, states=states)
            else:
                stream = render_blocks(final, blocks(), sample_rate, states=states)
            for y in ticking(stage, prefetch(stream)):  # the chain on one core, measuring and writing on the other
                meter.feed(y)
                out.write(y)
            return meter.result(true_peak=lim.output_true_peak_dbtp(states[-1]) if by_limiter else None), states, out
        except BaseException:
            out.abort()
            raise

    iterations = 0
    if chain is not None:
        after, states, out = render_into_sink(chain, "writing", split=False)  # each exact render writes the file
        final_chain = chain
    else:
        planned, lim_stage = _plan_with_limiter(planned, before, delivery, intent)
        pre_chain = planned.without("limiter")
        if input_series is not None and input_series.complete and not any(s.enabled for s in pre_chain.stages):
            builder = input_series
        else:
            builder = ModelSeries(sample_rate, frames)
            if spill_dir is not None:
                try:
                    spill = _Spill(spill_dir)
                except OSError:
                    spill = None
            for y in ticking("processing", prefetch(render_blocks(pre_chain, blocks(), sample_rate))):
                builder.feed(y)
                if spill is not None:
                    try:
                        spill.write(y)
                    except OSError:  # no room: the renders run the stages again instead
                        spill.close()
                        spill = None
        lim_params = cast(lim.LimiterParams, lim_stage.params)
        model = _LoudnessModel.from_builder(builder, lim_params)
        del builder
        target = delivery.target_lufs
        lim_params, thr, lo_thr = _reachable(model, lim_params, target)
        lim_params, split_why = _with_treble_split(model, lim_params, thr)
        model_thr = thr
        del model
        history: list[tuple[float, float]] = []
        measured = math.nan
        out = None
        for iteration in range(1, 5):
            p = dataclasses.replace(lim_params, threshold_db=float(np.clip(thr, -60.0, 12.0)))
            lim_final = dataclasses.replace(lim_stage, params=p)
            # the limiter last, as master() renders it (planned chains end in their limiter)
            final_chain = dataclasses.replace(planned, stages=(
                *(st for st in planned.stages if st.kind != "limiter"), lim_final))
            after, states, out = render_into_sink(final_chain, "writing", split=True)
            measured = after.integrated_lufs
            history.append((p.threshold_db, measured))
            err = measured - target
            iterations = iteration
            thr = _next_threshold(history, err)
            if _settled(err, iteration, at_bound=thr < lo_thr):
                break
            out.abort()
            out = None
            if _split_stalled(p, history):  # as converge_limiter
                lim_params, thr, split_why, history = dataclasses.replace(lim_params, treble_split_hz=0.0), \
                    model_thr, _SPLIT_DROPPED, []
                continue
            if thr < lo_thr:
                break
        if spill is not None:
            spill.close()
        if out is None:
            raise TargetUnreachableError(
                f"loudness did not settle on {target:g} LUFS at {lim_params.ceiling_dbtp:g} dBTP: "
                f"reached {measured:.2f} LUFS")
        final_chain = planned.replace_stage("limiter", _limiter_stage(lim_stage, p, target, split_why))
    written = out.commit()
    limiter_state = next((s for s in states if isinstance(s, lim.LimiterState)), None)
    return (MasterResult(np.zeros((channels, 0), dtype=np.float32), final_chain, before, after,
                         lim.stats(limiter_state), iterations), written)


__all__ = ["MasterResult", "ModelSeries", "master", "master_stream", "plan_chain", "converge_limiter", "CancelledError"]
