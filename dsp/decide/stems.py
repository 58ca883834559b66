"""Stem mastering: per-stem corrections, a level balance, then one master from their sum.

``master_stems(stems, sample_rate, delivery)`` takes named stems (roles drums, bass, music,
vocals, other; any other name is an "other" stem unless a role word is in it, e.g.
``song_vocals``), measures each and their balance, and decides, per stem, bounded
corrections that each carry the measurement that caused them:

* **mono low end** (bass, drums): a stereo stage with ``mono_bass_hz`` = 120 Hz when the
  side signal below 120 Hz is less than 15 dB under the mid (the whole-mix planner's rule);
* **corrective EQ** only for clear problems, one peaking cut (1 octave wide) per problem of
  1 dB plus half the excess over the threshold, at most 3 dB, scaled by the tone amount.
  Low-mid **mud** in music and other stems: the 200-500 Hz region of the half-octave smoothed
  1/3-octave spectrum stands more than 3 dB above the straight line (in log frequency) through
  100-160 Hz and 630 Hz-1 kHz, so an overall tilt does not count (not for vocals: their
  fundamentals live there). **Harshness** in vocals: 2-5 kHz stands over the 500 Hz-1.6 kHz
  mids at all (a voice's long-term spectrum falls above 1-2 kHz);
* **vocal compression** (2:1 to 3:1, soft knee, no make-up) when the vocal's loudness range
  (EBU Tech 3342 LRA) exceeds 8 LU;
* **level balance**, a rule of thumb and not a standard or a measurement of ours (mixing guides
  agree there is no formula; rough-mix level guides put a lead vocal a few dB over the harmonic
  instruments): a lead vocal usually sits about 0 to +2 LU against the music stem (integrated
  loudness, each gated on its own). A vocal more than 3 LU under that window or more than 2 LU
  over it is moved toward the window's nearer edge by at most 3 dB. Likewise the bass usually
  sits within +-3 LU of the drums; one more than 3 LU outside that is moved toward it by at
  most 3 dB (the bass moves, the drums stay). Music, drums and other stems keep their level.

Then the sum of the processed stems is measured and :func:`dsp.decide.master.plan_chain` plans the
bus. Only its **linear, time-invariant** stages (DC removal, subsonic filter, EQ, mono bass /
width) are kept, and they are applied to every stem (so they appear, enabled, at the end of
each stem's chain and, disabled, in ``bus_chain`` with a note); glue compression is left out
and said so. Hence the returned stems sum exactly (float32 rounding) to the pre-limiter bus,
and the master is the true-peak limiter on that bus, converged onto the loudness target.

Stems must share the sample rate, channel count (a mono stem joins stereo ones as two equal
channels, and the report says so) and length: stems of different lengths are **refused**
(a length mismatch usually means stems rendered over different ranges, which would no
longer line up; REAPER renders stems of one time selection at equal length). Silent stems
are passed through and reported as silent.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import soundfile as sf

from ..errors import (
    CancelledError,
    ChannelCountError,
    InputError,
    LengthMismatchError,
    ParameterError,
    SampleRateError,
    SilentAudioError,
)
from ..io.audio_io import check_audio, read_audio
from ..measure.analysis import Analysis, analyze
from ..measure.loudness import LoudnessResult, measure_loudness
from ..measure.spectrum import SpectrumResult, third_octave_spectrum
from ..process.chain import Chain, Stage, render
from ..process.compressor import CompressorParams
from ..process.eq import EqBand, EqParams
from ..process.stereo import StereoParams
from ..process.utility import GainParams
from .master import Intent, MasterResult, master, plan_chain
from .presets import Delivery

ROLES = ("drums", "bass", "music", "vocals", "other")
_ROLE_WORDS = {
    "drums": "drums", "drum": "drums", "percussion": "drums", "perc": "drums",
    "bass": "bass",
    "music": "music", "instrumental": "music", "instruments": "music", "inst": "music",
    "vocals": "vocals", "vocal": "vocals", "vox": "vocals", "voice": "vocals", "vocs": "vocals",
    "other": "other",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,63}$")
RESERVED_NAMES = ("master", "stems", "report")  # the CLI writes files with these names

MONO_BASS_HZ = 120.0
_WIDE_LOW_DB = -15.0  # side/mid below 120 Hz above this is "wide" (as in dsp.decide.master.plan_chain)
_LOW_END_PRESENT_DB = -30.0  # low bands this far under the loudest band: no low end to speak of
MAX_EQ_CUT_DB = 3.0
MAX_LEVEL_MOVE_DB = 3.0
VOCAL_LRA_LU = 8.0
VOCAL_WINDOW_LU = (0.0, 2.0)  # vocal minus music, typical (rule of thumb)
VOCAL_SLACK_LU = (3.0, 2.0)  # act only this far under / over the window
BASS_WINDOW_LU = (-3.0, 3.0)  # bass minus drums, typical (rule of thumb)
BASS_SLACK_LU = (3.0, 3.0)
SILENT_DBFS = -90.0
LINEAR_KINDS = ("dc", "high_pass", "eq", "stereo", "gain")  # kinds whose stages are linear & time-invariant

ProgressFn = Callable[[str, float], bool | None]  # (stage, fraction 0..1); False cancels


@dataclasses.dataclass(frozen=True)
class _Check:
    """A spectral problem in ``region_hz``, measured against ``reference_hz`` (see :func:`_excess_db`)."""

    name: str
    roles: tuple[str, ...]
    region_hz: tuple[float, float]
    reference_hz: tuple[tuple[float, float], ...]  # two flanks: a bump above their line; one band: a level over it
    threshold_db: float
    what: str
    measure: str  # how the measurement reads in a sentence


_CHECKS = (
    # Not for vocals: a voice's fundamentals live in 200-500 Hz and would read as a bump.
    _Check("mud", ("music", "other"), (200.0, 500.0), ((100.0, 160.0), (630.0, 1000.0)), 3.0,
           "low-mid mud", "above the line through the neighbouring octaves"),
    # A voice's long-term spectrum falls above 1-2 kHz; 2-5 kHz standing over the 500 Hz-1.6 kHz
    # mids is harsh. (A bump over a flank line would also flag an ordinary low-pass roll-off.)
    _Check("harshness", ("vocals",), (2000.0, 5000.0), ((500.0, 1600.0),), 0.0,
           "harshness", "over the 500 Hz-1.6 kHz mids"),
)


@dataclasses.dataclass(frozen=True)
class StemsResult:
    """What :func:`master_stems` made.

    stems: processed stems, float32 (channels, samples); they sum to ``bus``.
    bus: the pre-limiter master bus (float32), ``sum(stems)``.
    master: the limited master, float32.
    chains: each stem's own chain (rendering the input stem through it gives the processed stem).
    bus_chain: the folded-in linear bus stages (disabled: already in every stem's chain) and the
        converged limiter; rendering its enabled stages on ``bus`` gives ``master``.
    before / after: analyses of the unprocessed sum of the stems and of the master.
    stem_report: JSON-ready per-stem measurements, decisions, what was left alone and why.
    limiter: the limiter's statistics (:func:`dsp.process.limiter.stats`).
    """

    stems: dict[str, np.ndarray]
    bus: np.ndarray
    master: np.ndarray
    chains: dict[str, Chain]
    bus_chain: Chain
    before: Analysis
    after: Analysis
    stem_report: dict[str, Any]
    limiter: dict[str, Any]
    iterations: int

    def as_master_result(self) -> MasterResult:
        """The bus seen as an ordinary master (for :func:`server.service.report.build_report`)."""
        return MasterResult(self.master, self.bus_chain, self.before, self.after, self.limiter, self.iterations)


# --- names and input checks ----------------------------------------------------------------------

def stem_role(name: str) -> str:
    """The role a stem name stands for: an exact role word (``vocals``, ``vox``, ...), else the
    single role word found among its words (``song_vocals`` -> vocals), else ``other``."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    whole = "".join(words)
    if whole in _ROLE_WORDS:
        return _ROLE_WORDS[whole]
    found = {_ROLE_WORDS[w] for w in words if w in _ROLE_WORDS}
    return found.pop() if len(found) == 1 else "other"


def check_stem_name(name: Any) -> str:
    """A stem name usable as a file name: 1-64 letters, digits, space . _ + -, not reserved."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.strip() != name:
        raise InputError(f"stem name {name!r} is not usable: use 1-64 letters, digits, '.', '_', '-', '+' "
                         "or spaces (e.g. vocals)")
    if name.lower() in RESERVED_NAMES:
        raise InputError(f"a stem cannot be called {name!r}: that name is taken by the output files")
    return name


def conform_stems(stems: Mapping[str, np.ndarray], sample_rate: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """Check the stems and give them one layout: float32 (channels, samples), mono stems duplicated
    to stereo when the others are stereo. Returns the stems and notes on what was conformed.

    Refuses (one-line errors): no stems, bad names (also names equal but for case), stems that are
    not (channels, samples) float audio or hold NaN/inf, mismatched channel counts or lengths,
    audio shorter than 0.4 s, and a set in which every stem is silent.
    """
    if not isinstance(stems, Mapping) or not stems:
        raise InputError("give at least one stem (e.g. vocals, drums, bass, music)")
    seen: dict[str, str] = {}
    for name in stems:
        check_stem_name(name)
        if name.lower() in seen:
            raise InputError(f"stems {seen[name.lower()]!r} and {name!r} differ only in case; name them apart")
        seen[name.lower()] = name
    out: dict[str, np.ndarray] = {}
    silent = 0
    for name, x in stems.items():
        try:
            check_audio(x, sample_rate, what=f"stem {name!r}")
        except SilentAudioError:
            silent += 1
        out[name] = np.ascontiguousarray(x, dtype=np.float32)
    if silent == len(out):
        raise SilentAudioError("every stem is silent; there is nothing to master")
    notes: list[str] = []
    channels = max(x.shape[0] for x in out.values())
    for name, x in out.items():
        if x.shape[0] == channels:
            continue
        if x.shape[0] == 1 and channels == 2:
            out[name] = np.ascontiguousarray(np.repeat(x, 2, axis=0))
            notes.append(f"{name}: mono stem placed in the centre of the stereo mix (both channels equal)")
            continue
        other = next(n for n, y in out.items() if y.shape[0] == channels)
        raise ChannelCountError(f"stem {name!r} has {x.shape[0]} channel(s) but {other!r} has {channels}; "
                                "all stems need the same channels (mono stems can join stereo ones)")
    lengths = {name: x.shape[1] for name, x in out.items()}
    longest = max(lengths, key=lengths.__getitem__)
    for name, n in lengths.items():
        if n != lengths[longest]:
            raise LengthMismatchError(
                f"stem {name!r} is {n / sample_rate:.3f} s ({n} samples) but {longest!r} is "
                f"{lengths[longest] / sample_rate:.3f} s ({lengths[longest]} samples); render every stem "
                "over the same time range so they line up")
    return out, notes


def read_stems(paths: Mapping[str, str | os.PathLike[str]]) -> tuple[dict[str, np.ndarray], int]:
    """Read named stem files; all must have the same sample rate. Silent files are allowed
    (a stem may be empty in this song); every other refusal is :func:`dsp.io.audio_io.read_audio`'s."""

    stems: dict[str, np.ndarray] = {}
    rates: dict[str, int] = {}
    for name, path in paths.items():
        try:
            x, sr = read_audio(path)
        except SilentAudioError:
            data, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
            x = np.ascontiguousarray(data.T)
        stems[name], rates[name] = x, int(sr)
    first = next(iter(rates))
    for name, sr in rates.items():
        if sr != rates[first]:
            raise SampleRateError(
                f"{os.fspath(paths[name])} is {sr} Hz but {os.fspath(paths[first])} is {rates[first]} Hz; "
                "export every stem at the same sample rate")
    return stems, rates[first]


# --- measurements --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StemMeasure:
    loudness: LoudnessResult
    spectrum: SpectrumResult
    sample_peak_dbfs: float
    silent: bool


def _measure(x: np.ndarray, sample_rate: int) -> StemMeasure:
    peak = max(float(x.max()), -float(x.min()))
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    loud = measure_loudness(x, sample_rate)
    spec = third_octave_spectrum(x[:2], sample_rate)
    return StemMeasure(loud, spec, peak_db, peak_db < SILENT_DBFS or not math.isfinite(loud.integrated_lufs))


def _excess_db(spec: SpectrumResult, check: _Check) -> tuple[float, float] | None:
    """(how far the region's top stands out, dB; its frequency, Hz), on the half-octave smoothed
    1/3-octave spectrum, or None when the region or the reference has no energy to speak of (more
    than 60 dB under the loudest band).

    Two reference bands: the region's height above the straight line (in log frequency) through
    their means, so an overall tilt does not count. One reference band: the region's height over
    its mean level.
    """
    f = np.asarray(spec.centers_hz, dtype=float)
    lv = np.asarray(spec.level_db, dtype=float)
    refs = [(f >= lo) & (f <= hi) for lo, hi in check.reference_hz]
    reg = (f >= check.region_hz[0]) & (f <= check.region_hz[1])
    used = reg.copy()
    for r in refs:
        used |= r
    if not reg.any() or not all(r.any() for r in refs) or float(lv[used].min()) < float(lv.max()) - 60.0:
        return None
    if len(refs) == 2:
        x0, y0 = float(np.mean(np.log2(f[refs[0]]))), float(np.mean(lv[refs[0]]))
        x1, y1 = float(np.mean(np.log2(f[refs[1]]))), float(np.mean(lv[refs[1]]))
        base = y0 + (np.log2(f) - x0) * (y1 - y0) / (x1 - x0)
    else:
        base = np.full_like(lv, float(np.mean(lv[refs[0]])))
    resid = lv - base
    smooth = np.convolve(np.pad(resid, 1, mode="edge"), np.ones(3) / 3, mode="valid")  # half an octave
    k = int(np.argmax(np.where(reg, smooth, -np.inf)))
    return float(smooth[k]), float(f[k])


def _low_end(spec: SpectrumResult) -> tuple[float, float]:
    """(low end level relative to the loudest band, dB; widest side/mid ratio below 120 Hz, dB)."""
    f = np.asarray(spec.centers_hz, dtype=float)
    lv = np.asarray(spec.level_db, dtype=float)
    sel = (f >= 30.0) & (f <= 100.0)
    low = float(lv[sel].max()) if sel.any() else -200.0
    live = sel & (lv >= low - 20.0)  # bands that carry the low end, not empty ones
    ratio = float(np.asarray(spec.side_mid_ratio_db)[live].max()) if live.any() else -120.0
    return low - float(lv.max()), ratio


def _side_phrase(ratio_db: float) -> str:
    if ratio_db <= -100.0:
        return "no side signal below 120 Hz (mono)"
    if ratio_db < 0:
        return f"side {-ratio_db:.1f} dB under the mid below 120 Hz"
    return f"side {ratio_db:.1f} dB over the mid below 120 Hz"


def _r(v: float, digits: int = 2) -> float | None:
    return round(float(v), digits) if math.isfinite(v) else None


# --- decisions ----------------------------------------------------------------------------------

def _stem_stages(name: str, role: str, m: StemMeasure, channels: int, sample_rate: int,
                 intent: Intent) -> tuple[list[Stage], list[str], dict[str, Any]]:
    """Tone, dynamics and width decisions for one stem (level comes later, from the balance)."""
    stages: list[Stage] = []
    alone: list[str] = []
    found: dict[str, Any] = {}
    if m.silent:
        return stages, [f"nothing processed: the stem is silent (peak {m.sample_peak_dbfs:.1f} dBFS)"], found

    # corrective EQ: one cut per clear problem
    bands: list[EqBand] = []
    whys: list[str] = []
    for check in _CHECKS:
        if role not in check.roles:
            continue
        measured = _excess_db(m.spectrum, check)
        found[f"{check.name}_db"] = _r(measured[0]) if measured else None
        lo, hi = check.region_hz
        if measured is None:
            alone.append(f"no {check.what} cut: too little energy around {lo:g}-{hi:g} Hz to judge")
            continue
        level, freq = measured
        said = f"{lo:g}-{hi:g} Hz peaks {level:+.1f} dB near {freq:.0f} Hz {check.measure}"
        if level <= check.threshold_db:
            alone.append(f"no {check.what} cut: {said} (a problem above {check.threshold_db:+g} dB)")
            continue
        if intent.tone_pct == 0:
            alone.append(f"no {check.what} cut ({said}): tone amount set to 0%")
            continue
        cut = round(min(MAX_EQ_CUT_DB, 1.0 + 0.5 * (level - check.threshold_db)) * intent.tone_pct / 100.0, 1)
        if cut < 0.3:
            alone.append(f"no {check.what} cut ({said}): under 0.3 dB at tone {intent.tone_pct:g}%")
            continue
        bands.append(EqBand("band", freq_hz=float(round(freq)), gain_db=-cut, bw_oct=1.0))
        whys.append(f"{check.what}: {said} (a problem above {check.threshold_db:+g} dB); cut {cut:.1f} dB at "
                    f"{freq:.0f} Hz, 1 octave wide")
    if bands:
        stages.append(Stage("eq", EqParams(tuple(bands)), label=f"{name} corrective EQ", why="; ".join(whys)))
    elif role in ("drums", "bass"):
        alone.append(f"no EQ: the {role} stem's spectrum is its own (only mud in music and other stems and "
                     "harshness in vocals are corrected)")

    # dynamics: gentle vocal compression when the vocal's loudness range is large
    lra = m.loudness.lra_lu
    found["lra_lu"] = _r(lra, 1)
    if role == "vocals":
        push = {"gentle": 0.5, "balanced": 1.0, "loud": 1.5}[intent.intensity] * intent.dynamics_pct / 100.0
        if lra > VOCAL_LRA_LU and push > 0:
            ratio = round(1.0 + push * min(2.0, 1.0 + 0.125 * (lra - VOCAL_LRA_LU)), 2)
            st = np.asarray(m.loudness.short_term_lufs)
            present = st[np.isfinite(st) & (st > m.loudness.integrated_lufs - 20.0)]
            median = float(np.median(present)) if present.size else m.loudness.integrated_lufs
            # LUFS of a centred stereo signal reads about 2.3 dB over the detector's RMS (0.7 dB under, mono)
            rms_offset = 2.3 if channels >= 2 else -0.7
            threshold = float(np.clip(median - rms_offset - 2.0, -60.0, 0.0))
            stages.append(Stage("compressor", CompressorParams(
                threshold_db=round(threshold, 1), ratio=ratio, attack_ms=10.0, release_ms=150.0, knee_db=6.0,
                rms_ms=10.0), label=f"{name} compression",
                why=f"vocal loudness range {lra:.1f} LU (a problem above {VOCAL_LRA_LU:g} LU): {ratio:g}:1 above "
                    f"{threshold:.1f} dB RMS (2 dB under the median short-term loudness "
                    f"{median:.1f} LUFS), so words stay at one distance"))
        elif lra > VOCAL_LRA_LU:
            alone.append(f"no compression (vocal loudness range {lra:.1f} LU): dynamics amount set to 0%")
        else:
            alone.append(f"no compression: vocal loudness range {lra:.1f} LU (compressed above "
                         f"{VOCAL_LRA_LU:g} LU)")
    else:
        alone.append(f"no compression: only vocals are compressed per stem (loudness range {lra:.1f} LU)")

    # width: mono low end for bass and drums
    if channels == 2:
        low_db, ratio_db = _low_end(m.spectrum)
        found["low_end_db"] = _r(low_db, 1)
        found["low_side_mid_db"] = _r(ratio_db, 1)
        side = _side_phrase(ratio_db)
        if low_db < _LOW_END_PRESENT_DB:
            alone.append(f"low-end width unchanged: little low end (below 120 Hz {-low_db:.0f} dB under the "
                         "loudest band)")
        elif role not in ("bass", "drums"):
            alone.append(f"low-end width unchanged: only bass and drums are made mono per stem ({side})")
        elif ratio_db <= _WIDE_LOW_DB:
            alone.append(f"low-end width unchanged: {side}, already mono enough (wide above {_WIDE_LOW_DB:g} dB)")
        elif intent.width_pct == 0:
            alone.append(f"low-end width unchanged ({side}): width amount set to 0%")
        else:
            stages.append(Stage("stereo", StereoParams(mono_bass_hz=MONO_BASS_HZ), label=f"{name} mono low end",
                                why=f"{side} (wide above {_WIDE_LOW_DB:g} dB): mono below {MONO_BASS_HZ:g} Hz "
                                    "keeps the low end solid on mono playback, vinyl and in clubs"))
    return stages, alone, found


def _move(rel: float, window: tuple[float, float], slack: tuple[float, float]) -> float:
    """Gain (dB) toward the nearer window edge when ``rel`` lies beyond the slack; bounded."""
    if rel < window[0] - slack[0]:
        return min(MAX_LEVEL_MOVE_DB, window[0] - rel)
    if rel > window[1] + slack[1]:
        return -min(MAX_LEVEL_MOVE_DB, rel - window[1])
    return 0.0


def _balance(roles: dict[str, str], lufs: dict[str, float], mix_lufs: float) -> tuple[dict[str, tuple[float, str]],
                                                                       dict[str, list[str]], dict[str, Any]]:
    """Level moves {stem: (gain_db, why)}, reasons left alone {stem: [...]} and the balance summary."""
    moves: dict[str, tuple[float, str]] = {}
    alone: dict[str, list[str]] = {}
    summary: dict[str, Any] = {}

    def single(role: str) -> str | None:
        names = [n for n, r in roles.items() if r == role and math.isfinite(lufs[n])]
        return names[0] if len(names) == 1 else None

    pairs = (("vocals", "music", VOCAL_WINDOW_LU, VOCAL_SLACK_LU, "vocals_vs_music_lu"),
             ("bass", "drums", BASS_WINDOW_LU, BASS_SLACK_LU, "bass_vs_drums_lu"))
    for mover, ref_role, window, slack, key in pairs:
        movers = [n for n, r in roles.items() if r == mover]
        a, b = single(mover), single(ref_role)
        rule = (f"{mover} usually sit {window[0]:+g} to {window[1]:+g} LU against the {ref_role} (integrated "
                f"loudness; a rule of thumb); moved only when more than {slack[0]:g} LU under or "
                f"{slack[1]:g} LU over that, by at most {MAX_LEVEL_MOVE_DB:g} dB")
        if a is None or b is None:
            why = (f"no {mover} level balance: needs exactly one sounding {mover} stem and one sounding "
                   f"{ref_role} stem")
            for n in movers:
                alone.setdefault(n, []).append(why)
            summary[key] = {"rule": rule, "measured": None, "note": why}
            continue
        rel = lufs[a] - lufs[b]
        gain = round(_move(rel, window, slack), 1)
        summary[key] = {"rule": rule, "typical_lu": list(window), "measured": _r(rel), "move_db": gain}
        if gain:
            side = "under" if gain > 0 else "over"
            moves[a] = (gain, f"{a} {rel:+.1f} LU against {b} ({lufs[a]:.1f} vs {lufs[b]:.1f} LUFS): more than "
                              f"{slack[0] if gain > 0 else slack[1]:g} LU {side} the usual {window[0]:+g} to "
                              f"{window[1]:+g} LU (rule of thumb); {'raised' if gain > 0 else 'lowered'} "
                              f"{abs(gain):.1f} dB (at most {MAX_LEVEL_MOVE_DB:g})")
        else:
            alone.setdefault(a, []).append(
                f"level unchanged: {a} {rel:+.1f} LU against {b}, within reach of the usual {window[0]:+g} to "
                f"{window[1]:+g} LU (moved only beyond {window[0] - slack[0]:+g} / {window[1] + slack[1]:+g} LU)")
    for n, r in roles.items():
        if r in ("drums", "music", "other") and math.isfinite(lufs[n]):
            alone.setdefault(n, []).append(f"level unchanged: {r} stems are the reference the vocals and bass "
                                           f"are balanced against ({lufs[n]:.1f} LUFS, {lufs[n] - mix_lufs:+.1f} LU "
                                           "against the whole unprocessed mix)")
    return moves, alone, summary


# --- the whole job ------------------------------------------------------------------------------

def _tick(progress: ProgressFn | None, what: str, fraction: float) -> None:
    if progress is not None and progress(what, fraction) is False:
        raise CancelledError("stem mastering was cancelled")


def _part(progress: ProgressFn | None, what: str, i: int, n: int) -> Callable[[float], bool | None] | None:
    """A render progress callback reporting stem ``i`` of ``n`` as part of ``what``."""
    if progress is None:
        return None
    return lambda f: progress(what, (i + f) / n)


def _sum(stems: Mapping[str, np.ndarray], block: int = 1 << 16) -> np.ndarray:
    """float32 sum of the stems, added in float64 block by block (cache-sized, no big temporaries)."""
    arrays = list(stems.values())
    out: np.ndarray = np.empty(arrays[0].shape, dtype=np.float32)
    acc: np.ndarray = np.empty((arrays[0].shape[0], block), dtype=np.float64)
    for i in range(0, out.shape[1], block):
        a = acc[:, : min(block, out.shape[1] - i)]
        a[:] = arrays[0][:, i:i + block]
        for x in arrays[1:]:
            a += x[:, i:i + block]
        out[:, i:i + block] = a
    return out


def master_stems(
    stems: Mapping[str, np.ndarray],
    sample_rate: int,
    delivery: Delivery,
    *,
    intent: Intent | None = None,
    progress: ProgressFn | None = None,
) -> StemsResult:
    """Master named stems (see the module docstring): per-stem corrections, level balance, the
    bus's linear corrections applied to every stem, and the limiter on their exact sum.

    ``stems``: name -> float (channels, samples) at ``sample_rate`` Hz. ``intent``'s tone, dynamics and
    width amounts scale the per-stem corrections as they do the whole-mix planner's (the level balance
    is not scaled); its tonal target and loudness switch apply to the bus. ``progress(stage, fraction)``
    returning False cancels (CancelledError).
    """
    intent = intent or Intent()
    if not isinstance(delivery, Delivery):
        raise ParameterError("delivery must be a dsp.decide.presets.Delivery (see dsp.decide.presets.delivery)")
    x, notes = conform_stems(stems, sample_rate)
    names = list(x)
    roles = {n: stem_role(n) for n in names}
    channels = next(iter(x.values())).shape[0]

    _tick(progress, "analysing stems", 0.0)
    raw_sum = _sum(x)
    with ThreadPoolExecutor(max_workers=2) as pool:
        before_job = pool.submit(analyze, raw_sum, sample_rate)
        measures = dict(zip(names, pool.map(lambda n: _measure(x[n], sample_rate), names), strict=True))
        before = before_job.result()
    del raw_sum
    mix_lufs = before.integrated_lufs

    # per-stem tone, dynamics and width
    chains_own: dict[str, list[Stage]] = {}
    alone: dict[str, list[str]] = {}
    found: dict[str, dict[str, Any]] = {}
    processed: dict[str, np.ndarray] = {}
    for i, n in enumerate(names):
        _tick(progress, "processing stems", i / len(names))
        stages, alone[n], found[n] = _stem_stages(n, roles[n], measures[n], channels, sample_rate, intent)
        chains_own[n] = stages
        processed[n] = (render(Chain(tuple(stages)), x[n], sample_rate, progress=_part(progress, "processing stems",
                                                                                      i, len(names)))
                        if stages else x[n].copy())

    # level balance on the processed stems
    def loudness_now(n: str) -> float:
        if measures[n].silent:
            return -math.inf
        if not chains_own[n]:
            return measures[n].loudness.integrated_lufs  # untouched: the first measurement stands
        return measure_loudness(processed[n], sample_rate).integrated_lufs

    with ThreadPoolExecutor(max_workers=2) as pool:
        mid_loud = dict(zip(names, pool.map(loudness_now, names), strict=True))
    moves, balance_alone, balance = _balance(roles, mid_loud, before.integrated_lufs)
    for n, (gain_db, why) in moves.items():
        chains_own[n].append(Stage("gain", GainParams(gain_db=gain_db), label=f"{n} level", why=why))
        processed[n] *= np.float32(10.0 ** (gain_db / 20.0))
    for n, lines in balance_alone.items():
        alone[n].extend(lines)

    # the bus: plan on the processed sum, keep only linear stages, apply them to every stem
    _tick(progress, "planning the bus", 0.0)
    bus_analysis = analyze(_sum(processed), sample_rate)
    plan = plan_chain(bus_analysis, delivery, intent)
    linear = [s for s in plan.stages if s.kind in LINEAR_KINDS]
    bus_alone = list(plan.meta.get("left_alone", []))
    for s in plan.stages:
        if s.kind not in LINEAR_KINDS and s.kind != "limiter":
            bus_alone.append(f"no bus {s.label or s.kind}: it would act on the sum, and the stems must add up "
                             f"to the bus exactly (the planner's reason was: {s.why})")
    folded = tuple(dataclasses.replace(s, label=f"bus {s.label or s.kind}",
                                       why=f"{s.why} (applied to every stem, so the stems still sum to the bus)")
                   for s in linear)
    chains: dict[str, Chain] = {}
    for i, n in enumerate(names):
        _tick(progress, "applying the bus corrections", i / len(names))
        if folded:
            render(Chain(folded), processed[n], sample_rate, out=processed[n],
                   progress=_part(progress, "applying the bus corrections", i, len(names)))
        chains[n] = Chain(tuple(chains_own[n]) + folded,
                          {"stem": n, "role": roles[n], "left_alone": alone[n]})
    bus = _sum(processed)

    # the limiter on the exact sum, converged onto the target
    lim_stage = cast(Stage, plan.find("limiter"))  # plan_chain always ends in a limiter
    result = master(bus, sample_rate, delivery, planned=Chain((lim_stage,)), before=before, intent=intent,
                    progress=progress)
    converged = cast(Stage, result.chain.find("limiter"))  # master keeps the planned limiter
    meta = {k: v for k, v in plan.meta.items() if k != "left_alone"}
    meta.update(left_alone=bus_alone, stems=names,
                folded_into_stems=[s.label for s in folded],
                note="disabled stages are applied in every stem's chain; the enabled limiter runs on the sum")
    bus_chain = Chain(tuple(dataclasses.replace(s, enabled=False) for s in folded) + (converged,), meta)

    report = _report(names, roles, measures, found, chains, alone, processed, mid_loud, mix_lufs, bus, balance,
                     notes, sample_rate)
    return StemsResult(processed, bus, result.audio, chains, bus_chain, before, result.after, report,
                       result.limiter, result.iterations)


def _report(names: list[str], roles: dict[str, str], measures: dict[str, StemMeasure], found: dict[str, dict[str, Any]],
            chains: dict[str, Chain], alone: dict[str, list[str]], processed: dict[str, np.ndarray],
            mid_loud: dict[str, float], mix_lufs: float, bus: np.ndarray, balance: dict[str, Any], notes: list[str],
            sample_rate: int) -> dict[str, Any]:
    after_loud = {n: (measure_loudness(processed[n], sample_rate).integrated_lufs if not measures[n].silent
                      else -math.inf) for n in names}
    bus_lufs = measure_loudness(bus, sample_rate).integrated_lufs
    stems_doc: dict[str, Any] = {}
    for n in names:
        m = measures[n]
        lufs = m.loudness.integrated_lufs
        stems_doc[n] = {
            "role": roles[n],
            "measured": {
                "integrated_lufs": _r(lufs), "relative_to_mix_lu": _r(lufs - mix_lufs),
                "max_short_term_lufs": _r(m.loudness.max_short_term_lufs), "sample_peak_dbfs": _r(m.sample_peak_dbfs),
                "silent": m.silent, **found[n],
            },
            "after": {"integrated_lufs": _r(after_loud[n]), "relative_to_bus_lu": _r(after_loud[n] - bus_lufs),
                      "before_bus_corrections_lufs": _r(mid_loud[n])},
            "decisions": [{"stage": s.label or s.kind, "kind": s.kind, "why": s.why} for s in chains[n].stages],
            "left_alone": list(alone[n]),
            "chain": chains[n].to_dict(),
        }
    return {"stems": stems_doc, "balance": balance, "notes": notes,
            "mix_lufs": _r(mix_lufs), "bus_lufs": _r(bus_lufs)}


__all__ = ["ROLES", "StemsResult", "master_stems", "stem_role", "check_stem_name", "conform_stems", "read_stems"]
