"""Revisions in words: a fixed vocabulary mapped to bounded changes of a chain.

``revise_chain(chain, "brighter, a bit less squashed")`` returns the new chain, the new
loudness target and one line per change saying what moved and by how much. Every change is
bounded (EQ bands stay within +-6 dB, compression and width within sane ranges), so no
sequence of words can wreck a master; words that ask for more than the bounds allow say so.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, cast

from ..errors import ParameterError
from ..process.chain import Chain, Stage
from ..process.compressor import CompressorParams
from ..process.eq import EqBand, EqParams
from ..process.stereo import StereoParams

MAX_EQ_GAIN_DB = 6.0
MAX_LOUDNESS_CHANGE_LU = 6.0

# word -> list of moves. A move is (what, *arguments); "eq" moves are (type, freq_hz, gain_db, bw_oct or None).
# (heterogeneous tuples, told apart by their first item)
VOCABULARY: dict[str, list[tuple[Any, ...]]] = {
    "brighter": [("eq", "high_shelf", 6000.0, 1.5, None)],
    "darker": [("eq", "high_shelf", 6000.0, -1.5, None)],
    "more air": [("eq", "high_shelf", 12000.0, 1.5, None)],
    "less air": [("eq", "high_shelf", 12000.0, -1.5, None)],
    "warmer": [("eq", "band", 250.0, 1.0, 1.5), ("eq", "high_shelf", 8000.0, -0.5, None)],
    "colder": [("eq", "band", 250.0, -1.0, 1.5)],
    "more bass": [("eq", "low_shelf", 100.0, 1.5, None)],
    "less bass": [("eq", "low_shelf", 100.0, -1.5, None)],
    "less mud": [("eq", "band", 300.0, -1.5, 1.0)],
    "clearer": [("eq", "band", 300.0, -1.0, 1.0), ("eq", "band", 3000.0, 0.5, 1.5)],
    "more presence": [("eq", "band", 3000.0, 1.5, 1.5)],
    "less harsh": [("eq", "band", 3500.0, -1.5, 1.0)],
    "more mids": [("eq", "band", 1000.0, 1.5, 1.5)],
    "less mids": [("eq", "band", 1000.0, -1.5, 1.5)],
    "more punch": [("comp_attack_ms", 15.0), ("comp_threshold_db", 1.0)],
    "less compression": [("comp_threshold_db", 2.0), ("comp_ratio", -0.25)],
    "less squashed": [("comp_threshold_db", 2.0), ("loudness_lu", -1.0)],
    "more compression": [("comp_threshold_db", -2.0), ("comp_ratio", 0.25)],
    "wider": [("width_pct", 10.0)],
    "narrower": [("width_pct", -10.0)],
    "louder": [("loudness_lu", 1.0)],
    "quieter": [("loudness_lu", -1.0)],
}
SYNONYMS = {"less squashing": "less squashed", "more open": "more air", "fatter": "more bass",
            "thinner": "less bass", "less muddy": "less mud", "punchier": "more punch", "softer": "quieter",
            "less bright": "darker", "duller": "darker", "less dark": "brighter", "more bright": "brighter"}
MODIFIERS = {"a bit": 0.5, "slightly": 0.5, "a little": 0.5, "a touch": 0.5, "much": 2.0, "a lot": 2.0,
             "way": 2.0, "a lot more": 2.0}


@dataclasses.dataclass(frozen=True)
class Revision:
    chain: Chain
    loudness_change_lu: float
    changes: tuple[str, ...]  # one human line per change


def parse_words(text: str) -> list[tuple[str, float]]:
    """Split "brighter, a bit less squashed and wider" into (phrase, scale) pairs."""
    phrases = [p.strip().lower() for p in re.split(r",|;|\band\b|\+", text) if p.strip()]
    if not phrases:
        raise ParameterError("say what to change, e.g. \"brighter, less squashed\"")
    out = []
    for p in phrases:
        p = " ".join(p.split())
        scale = 1.0
        for mod in sorted(MODIFIERS, key=len, reverse=True):
            if p.startswith(mod + " "):
                scale, p = MODIFIERS[mod], p[len(mod) + 1:]
                break
        p = SYNONYMS.get(p, p)
        if p not in VOCABULARY:
            raise ParameterError(f"I do not know how to make it \"{p}\"; I understand: "
                                 f"{', '.join(sorted(VOCABULARY))} (with \"a bit\" or \"much\")")
        out.append((p, scale))
    return out


#: the peak stage, always last: what a revision adds goes before it
_PEAK_KINDS = ("bass_limiter", "clipper", "limiter")


def _eq_stage(chain: Chain) -> tuple[int, Stage]:
    for i, s in enumerate(chain.stages):
        if s.kind == "eq" and s.enabled:
            return i, s
    pos = next((i for i, s in enumerate(chain.stages) if s.kind not in ("dc", "high_pass")), len(chain.stages))
    return pos, Stage("eq", EqParams(), label="revision EQ", why="added by a revision")


def _with_stage(chain: Chain, index: int, stage: Stage, *, insert: bool) -> Chain:
    stages = list(chain.stages)
    if insert:
        stages.insert(index, stage)
    else:
        stages[index] = stage
    return dataclasses.replace(chain, stages=tuple(stages))


def _move_eq(chain: Chain, kind: str, freq: float, gain: float, bw: float | None) -> tuple[Chain, str]:
    index, stage = _eq_stage(chain)
    insert = stage not in chain.stages
    eq_params = cast(EqParams, stage.params)  # an "eq" stage
    bands = list(eq_params.bands)
    for j, b in enumerate(bands):
        if b.type == kind and abs(math.log2(b.freq_hz / freq)) <= 0.5:
            new = float(max(-MAX_EQ_GAIN_DB, min(MAX_EQ_GAIN_DB, b.gain_db + gain)))
            bands[j] = dataclasses.replace(b, gain_db=round(new, 2))
            note = f"{kind.replace('_', ' ')} at {b.freq_hz:g} Hz {b.gain_db:+.1f} -> {new:+.1f} dB"
            break
    else:
        new = float(max(-MAX_EQ_GAIN_DB, min(MAX_EQ_GAIN_DB, gain)))
        bands.append(EqBand(kind, freq_hz=freq, gain_db=round(new, 2), bw_oct=bw))
        note = f"new {kind.replace('_', ' ')} at {freq:g} Hz {new:+.1f} dB"
    if abs(new - gain) > 1e-9 and "->" not in note:
        note += f" (held at the {MAX_EQ_GAIN_DB:g} dB limit)"
    bands.sort(key=lambda b: b.freq_hz)
    stage = dataclasses.replace(stage, params=dataclasses.replace(eq_params, bands=tuple(bands)))
    return _with_stage(chain, index, stage, insert=insert), note


def _move_comp(chain: Chain, field: str, delta: float) -> tuple[Chain, str]:
    for i, s in enumerate(chain.stages):
        if s.kind == "compressor" and s.enabled:
            p = cast(CompressorParams, s.params)
            bounds = {"threshold_db": (-50.0, 0.0), "ratio": (1.1, 8.0), "attack_ms": (1.0, 100.0)}[field]
            old = getattr(p, field)
            new = round(max(bounds[0], min(bounds[1], old + delta)), 2)
            stage = dataclasses.replace(s, params=dataclasses.replace(p, **{field: new}))
            return _with_stage(chain, i, stage, insert=False), f"compressor {field} {old:g} -> {new:g}"
    if delta < 0 and field == "threshold_db" or delta > 0 and field == "ratio":
        pos = next((i for i, s in enumerate(chain.stages) if s.kind == "stereo" or s.kind in _PEAK_KINDS),
                   len(chain.stages))
        stage = Stage("compressor", CompressorParams(threshold_db=-24.0, ratio=1.5, attack_ms=30.0, release_ms=200.0,
                                                     knee_db=6.0, rms_ms=10.0),
                      label="revision compression", why="added by a revision")
        return _with_stage(chain, pos, stage, insert=True), "new gentle compressor, 1.5:1 from -24 dB"
    return chain, f"no compressor to change ({field}); the limiter alone shapes the dynamics"


def _move_width(chain: Chain, delta_pct: float) -> tuple[Chain, str]:
    for i, s in enumerate(chain.stages):
        if s.kind == "stereo" and s.enabled:
            p = cast(StereoParams, s.params)
            if p.crossovers_hz:
                widths = list(p.width_pct)
                widths[-1] = max(50.0, min(150.0, widths[-1] + delta_pct))
                new = dataclasses.replace(p, width_pct=tuple(widths))
            else:
                new = dataclasses.replace(p, crossovers_hz=(300.0,),
                                          width_pct=(p.width_pct[0], max(50.0, min(150.0, p.width_pct[0] + delta_pct))))
            stage = dataclasses.replace(s, params=new)
            return _with_stage(chain, i, stage, insert=False), f"width above 300 Hz -> {new.width_pct[-1]:g}%"
    pos = next((i for i, s in enumerate(chain.stages) if s.kind in _PEAK_KINDS), len(chain.stages))
    new = StereoParams(crossovers_hz=(300.0,), width_pct=(100.0, max(50.0, min(150.0, 100.0 + delta_pct))))
    stage = Stage("stereo", new, label="revision width", why="added by a revision")
    return _with_stage(chain, pos, stage, insert=True), f"width above 300 Hz -> {new.width_pct[-1]:g}%"


def revise_chain(chain: Chain, words: str) -> Revision:
    """Apply the words to ``chain``; see the module docstring."""
    loudness = 0.0
    notes: list[str] = []
    original = chain
    for phrase, scale in parse_words(words):
        for move in VOCABULARY[phrase]:
            what = move[0]
            if what == "eq":
                _, kind, freq, gain, bw = move
                chain, note = _move_eq(chain, kind, freq, gain * scale, bw)
            elif what.startswith("comp_"):
                chain, note = _move_comp(chain, what[5:], move[1] * scale)
            elif what == "width_pct":
                chain, note = _move_width(chain, move[1] * scale)
            else:  # loudness_lu
                loudness += move[1] * scale
                note = f"loudness target {move[1] * scale:+.1f} LU"
            notes.append(f"{phrase}: {note}")
    loudness = max(-MAX_LOUDNESS_CHANGE_LU, min(MAX_LOUDNESS_CHANGE_LU, loudness))
    return Revision(_explain(original, chain, words, notes, loudness), loudness, tuple(notes))


_REVISED = " | revised"


def _explain(before: Chain, after: Chain, words: str, notes: list[str], loudness_lu: float) -> Chain:
    """Regenerate each stage's explanation for this revision: a stage the words changed says what
    changed and why (the words), on top of the measurement that first caused it; a stage they left
    alone keeps its own reason without an earlier revision's notes."""
    old = {(s.kind, s.label): s.params for s in before.stages}
    stages = []
    for s in after.stages:
        base = (s.why or "").split(_REVISED)[0]
        changed = old.get((s.kind, s.label)) != s.params
        mine = [n for n in notes if "loudness target" not in n]
        if s.kind == "limiter" and abs(loudness_lu) > 1e-9:
            why = f"{base}{_REVISED} (\"{words}\"): loudness target {loudness_lu:+.1f} LU"
        elif changed and mine:
            why = f"{base}{_REVISED} (\"{words}\"): {'; '.join(mine)}"
        else:
            why = base
        stages.append(dataclasses.replace(s, why=why))
    return dataclasses.replace(after, stages=tuple(stages))
