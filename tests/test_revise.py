"""Revisions in words: bounded, explained changes; sessions keep every version renderable."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from dsp.decide.revise import MAX_EQ_GAIN_DB, VOCABULARY, parse_words, revise_chain
from dsp.demo import demo_mix
from dsp.errors import ParameterError
from dsp.process.chain import Chain, Stage
from dsp.process.compressor import CompressorParams
from dsp.process.eq import EqBand, EqParams, eq_response_db
from dsp.process.limiter import LimiterParams

REAMASTER = str(Path(sys.executable).with_name("reamaster"))
SR = 44100


def base_chain() -> Chain:
    return Chain((Stage("eq", EqParams(bands=(EqBand("high_shelf", 6000.0, 1.0),))),
                  Stage("compressor", CompressorParams(threshold_db=-20.0, ratio=2.0)),
                  Stage("limiter", LimiterParams())))


def test_parsing_with_modifiers_and_synonyms():
    assert parse_words("Brighter, a bit less squashed and much wider") == [
        ("brighter", 1.0), ("less squashed", 0.5), ("wider", 2.0)]
    assert parse_words("punchier") == [("more punch", 1.0)]
    with pytest.raises(ParameterError, match="I understand"):
        parse_words("more cowbell")
    with pytest.raises(ParameterError):
        parse_words(" , ")


def test_brighter_moves_the_existing_shelf_and_says_so():
    r = revise_chain(base_chain(), "brighter")
    eq = r.chain.find("eq").params
    assert [b.gain_db for b in eq.bands] == [2.5]
    assert r.changes == ("brighter: high shelf at 6000 Hz +1.0 -> +2.5 dB",)
    hi = eq_response_db(eq, SR, np.array([12000.0]))[0] - eq_response_db(EqParams(bands=base_chain().find("eq").params.bands), SR, np.array([12000.0]))[0]
    assert hi == pytest.approx(1.5, abs=0.1)


def test_less_squashed_loosens_compression_and_lowers_loudness():
    r = revise_chain(base_chain(), "less squashed")
    assert r.chain.find("compressor").params.threshold_db == -18.0
    assert r.loudness_change_lu == -1.0


@given(st.lists(st.sampled_from(sorted(VOCABULARY)), min_size=1, max_size=12),
       st.sampled_from(["", "a bit ", "much "]))
def test_no_sequence_of_words_leaves_the_bounds(words, modifier):
    chain = base_chain()
    total = 0.0
    for w in words:
        r = revise_chain(chain, modifier + w)
        chain, total = r.chain, max(-6.0, min(6.0, total + r.loudness_change_lu))
    for b in chain.find("eq").params.bands:
        assert abs(b.gain_db) <= MAX_EQ_GAIN_DB
    c = chain.find("compressor").params
    assert -50 <= c.threshold_db <= 0 and 1.1 <= c.ratio <= 8 and 1 <= c.attack_ms <= 100
    s = chain.find("stereo")
    if s is not None:
        assert all(50 <= w <= 150 for w in s.params.width_pct)
    assert Chain.from_json(chain.to_json()) == chain  # still a valid chain document


def run(*args, cwd=None):
    return subprocess.run([REAMASTER, *args], capture_output=True, text=True, cwd=cwd, timeout=240)


def test_session_round_trip_through_the_cli(tmp_path):
    mix = tmp_path / "mix.wav"
    sf.write(mix, demo_mix(SR, seconds=8.0).T, SR, subtype="PCM_24")
    out = tmp_path / "master.wav"
    assert run("master", str(mix), "-o", str(out)).returncode == 0
    session = tmp_path / "master.session"
    r = run("revise", str(session), "darker, quieter")
    assert r.returncode == 0, r.stderr
    assert "darker: " in r.stdout and "loudness target -1.0 LU" in r.stdout
    v2 = tmp_path / "master.v2.wav"
    doc = json.loads((session / "session.json").read_text())
    assert [v["version"] for v in doc["versions"]] == [1, 2] and doc["versions"][1]["parent"] == 1
    assert doc["versions"][1]["integrated_lufs"] == pytest.approx(-15.0, abs=0.2)
    a, _ = sf.read(out)
    b, _ = sf.read(v2)
    assert not np.allclose(a, b)
    # version 1 renders again to the same audio it first produced
    r = run("revise", str(session), "--render", "1", "-o", str(tmp_path / "again.wav"))
    assert r.returncode == 0, r.stderr
    c, _ = sf.read(tmp_path / "again.wav")
    assert np.max(np.abs(a - c)) < 1e-5
    # nothing is overwritten: the next revision gets a new name; an explicit existing name is refused
    r = run("revise", str(session), "brighter", "-o", str(v2))
    assert r.returncode == 2 and "[output_exists]" in r.stderr
    listing = run("revise", str(session), "--list").stdout
    assert 'v2: "darker, quieter"' in listing


def test_revise_refuses_a_missing_session(tmp_path):
    r = run("revise", str(tmp_path / "nothing.session"), "brighter")
    assert r.returncode == 2 and "[file_missing]" in r.stderr


def test_explanations_are_regenerated_for_each_revision():
    from dsp.decide.revise import revise_chain
    from dsp.process.chain import Chain, Stage
    from dsp.process.eq import EqBand, EqParams
    from dsp.process.limiter import LimiterParams

    c = Chain((Stage("eq", EqParams(bands=(EqBand("high_shelf", 8000.0, 1.0),)), label="corrective EQ",
                     why="mix 3 dB dull above 8 kHz"),
               Stage("limiter", LimiterParams(threshold_db=-3.0, ceiling_dbtp=-1.0), label="true-peak limiter",
                     why="target -14 LUFS")), {})
    r1 = revise_chain(c, "brighter")
    eq1 = r1.chain.find("eq")
    assert eq1.why.startswith("mix 3 dB dull above 8 kHz") and '"brighter"' in eq1.why
    assert r1.chain.find("limiter").why == "target -14 LUFS"  # untouched stage, untouched reason
    r2 = revise_chain(r1.chain, "louder")
    assert '"brighter"' not in r2.chain.find("eq").why  # the earlier revision's note is not carried on
    assert '"louder"' in r2.chain.find("limiter").why


@pytest.mark.parametrize("words,kind", [("more compression", "compressor"), ("wider", "stereo")])
def test_what_a_revision_adds_goes_before_the_peak_stage(words, kind):
    from dsp.process.bass_limiter import BassLimiterParams
    from dsp.process.clipper import ClipperParams

    for peak in (Stage("bass_limiter", BassLimiterParams(threshold_db=-12.0)), Stage("clipper", ClipperParams())):
        chain = Chain((Stage("eq", EqParams(bands=(EqBand("high_shelf", 6000.0, 1.0),))), peak,
                       Stage("limiter", LimiterParams())))
        kinds = [s.kind for s in revise_chain(chain, words).chain.stages]
        assert kinds.index(kind) < kinds.index(peak.kind) < kinds.index("limiter")
