"""Stem mastering: exact stem sum, loudness and ceiling, bounded explained decisions, refusals, the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pyebur128
import pytest
import scipy.signal as ss
import soundfile as sf
from server.cli.main import main as stems_main

from dsp import demo
from dsp.decide.presets import delivery
from dsp.decide.stems import conform_stems, master_stems, read_stems, stem_role
from dsp.errors import ChannelCountError, InputError, SampleRateError
from dsp.measure.spectrum import band_energy_db, third_octave_spectrum
from dsp.process.chain import Chain, render

pytestmark = pytest.mark.timeout(120)

SR = 44100
STEP = int(0.125 * SR)  # a sixteenth note at 120 BPM
BAR = 16 * STEP


def _voice(midi: int, dur_s: float, rng: np.random.Generator) -> np.ndarray:
    """A bright sung-vowel-like note: sawtooth-like harmonics to 8 kHz, vibrato, a little breath noise."""
    n = int(dur_s * SR)
    t = np.arange(n) / SR
    f0 = demo._midi_hz(midi) * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    k_max = int(8000 / demo._midi_hz(midi))
    wave = sum(np.sin(k * phase) / k for k in range(1, k_max + 1)) + 0.02 * rng.standard_normal(n)
    env = demo._envelope(n - int(0.05 * SR), int(0.05 * SR), SR, attack_s=0.03)
    return np.stack([wave * env, wave * env]) * 0.15


def build_stems(seconds: float = 6.0, *, seed: int = 7, vocal_db: float = 0.0, wide_bass: bool = False,
                vocal: str = "lead") -> dict[str, np.ndarray]:
    """Drums (mono kick/snare, spread hats), bass, a muddy pad ("music") and a vocal, from dsp.demo's
    building blocks. ``wide_bass`` puts a delayed, inverted copy of the bass in the right channel (a low
    end that falls apart in mono). ``vocal``: "lead" (the demo's soft lead), "voice" (bright, to 8 kHz)
    or "harsh" (the voice with +12 dB at 3.5 kHz)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    pad = 3 * SR
    drums, bass, music, vocals = (np.zeros((2, n + pad)) for _ in range(4))
    kit = demo._Kit(SR, rng)
    for s in range(n // STEP):
        if s % 4 == 0:
            demo._add(drums, s * STEP, kit.kick, 0.8)
        if s % 8 == 4:
            demo._add(drums, s * STEP, kit.snares[s % 3], 0.8)
        if s % 2 == 0:
            demo._add(drums, s * STEP, kit.hats[s % 4], 1.0)
    delay = int(0.004 * SR)
    for b in range(n // BAR + 1):
        root = demo._BASS_ROOTS[b % 4]
        for k in range(0, 16, 2):
            note = demo._bass_note(root, 0.2, SR)
            if wide_bass:
                note = np.stack([note[0], np.concatenate((np.zeros(delay), -note[1][:-delay]))])
            demo._add(bass, b * BAR + k * STEP, note, 1.0)
        demo._add(music, b * BAR, demo._pad_chord(demo._PAD_CHORDS[b % 4], SR), 0.7)
        for st, length, midi in demo._VERSE_LEAD[b % 4]:
            note = (demo._lead_note(midi, length * 0.125, SR) if vocal == "lead"
                    else _voice(midi, length * 0.125 + 0.05, rng))
            demo._add(vocals, b * BAR + st * STEP, note, 0.8 * 10 ** (vocal_db / 20))
    if vocal == "harsh":
        vocals = ss.sosfilt(demo._peaking_sos(3500.0, 12.0, 1.0, SR), vocals, axis=1)
    return {k: np.ascontiguousarray(v[:, :n] * 0.3, dtype=np.float32)
            for k, v in (("drums", drums), ("bass", bass), ("music", music), ("vocals", vocals))}


def libebur128_lufs(x: np.ndarray, sr: int = SR) -> float:
    st = pyebur128.R128State(x.shape[0], sr, pyebur128.MeasurementMode.MODE_I)
    st.add_frames(np.ascontiguousarray(x.T, dtype=np.float64).ravel(), x.shape[1])
    return pyebur128.get_loudness_global(st)


def tp8_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.abs(ss.resample_poly(x.astype(np.float64), 8, 1, axis=-1)).max()))


def own_stages(chain: Chain) -> Chain:
    """The stem's own stages, without the bus corrections folded into it."""
    return Chain(tuple(s for s in chain.stages if not s.label.startswith("bus ")))


@pytest.fixture(scope="module")
def quiet_vocal_wide_bass():
    stems = build_stems(vocal_db=-12.0, wide_bass=True)
    return stems, master_stems(stems, SR, delivery("streaming"))


@pytest.fixture(scope="module")
def tidy():
    """Vocal in a usual place, mono bass, and a silent extra stem named 'fx'."""
    stems = build_stems()
    stems["fx"] = np.zeros_like(stems["drums"])
    return stems, master_stems(stems, SR, delivery("apple"))


# --- the exact sum and the master ----------------------------------------------------------------

@pytest.mark.parametrize("case", ["quiet_vocal_wide_bass", "tidy"])
def test_stems_sum_to_the_bus_and_chains_reproduce_everything(case, request):
    raw, r = request.getfixturevalue(case)
    total = sum(x.astype(np.float64) for x in r.stems.values())
    assert np.max(np.abs(total - r.bus)) < 1e-6
    assert set(r.stems) == set(raw) == set(r.chains)
    for name, x in raw.items():
        assert r.stems[name].dtype == np.float32 and r.stems[name].shape == x.shape
        # each stem's chain, rendered on the input stem, gives the returned stem
        assert np.max(np.abs(render(r.chains[name], x, SR) - r.stems[name])) < 1e-5
    # the bus chain's only live stage is the limiter; its linear stages live inside every stem's chain
    live = [s for s in r.bus_chain.stages if s.enabled]
    assert [s.kind for s in live] == ["limiter"]
    for s in r.bus_chain.stages[:-1]:
        assert s.kind in ("dc", "high_pass", "eq", "stereo", "gain")
        assert all(any(t.kind == s.kind and t.params == s.params for t in c.stages) for c in r.chains.values())
    assert np.max(np.abs(render(r.bus_chain, r.bus, SR) - r.master)) < 1e-6


@pytest.mark.parametrize("case,preset", [("quiet_vocal_wide_bass", "streaming"), ("tidy", "apple")])
def test_master_meets_loudness_and_true_peak(case, preset, request):
    _, r = request.getfixturevalue(case)
    d = delivery(preset)
    assert libebur128_lufs(r.master) == pytest.approx(d.target_lufs, abs=0.2)
    assert tp8_db(r.master) <= d.ceiling_dbtp
    assert r.before.integrated_lufs < d.target_lufs - 2  # the stems were quiet: the limiter did the work


# --- decisions ------------------------------------------------------------------------------------

def test_quiet_vocal_is_raised_by_a_bounded_amount_and_says_why(quiet_vocal_wide_bass):
    raw, r = quiet_vocal_wide_bass
    rel_before = libebur128_lufs(raw["vocals"]) - libebur128_lufs(raw["music"])
    assert rel_before < -6  # far under the usual 0..+2 LU
    gains = [s for s in r.chains["vocals"].stages if s.kind == "gain"]
    assert len(gains) == 1 and gains[0].params.gain_db == 3.0  # bounded: it would need more
    rep = r.stem_report["stems"]["vocals"]
    why = next(d["why"] for d in rep["decisions"] if d["kind"] == "gain")
    measured = r.stem_report["balance"]["vocals_vs_music_lu"]["measured"]
    assert measured == pytest.approx(rel_before, abs=1.5)  # the music stem's own mud cut moves it a little
    assert f"{measured:+.1f} LU" in why and "raised 3.0 dB" in why and "rule of thumb" in why
    # independent meter: the vocal's own stages raise it by exactly the stated gain
    own = render(own_stages(r.chains["vocals"]), raw["vocals"], SR)
    assert libebur128_lufs(own) - libebur128_lufs(raw["vocals"]) == pytest.approx(3.0, abs=0.05)


def test_loud_vocal_is_lowered_by_a_bounded_amount():
    stems = build_stems(seconds=4.0, vocal_db=10.0)
    r = master_stems(stems, SR, delivery("streaming"))
    gains = [s.params.gain_db for s in r.chains["vocals"].stages if s.kind == "gain"]
    assert gains and -3.0 <= gains[0] < 0
    bal = r.stem_report["balance"]["vocals_vs_music_lu"]
    assert bal["measured"] > 4.0 and bal["move_db"] == gains[0]


def test_wide_bass_gets_a_mono_low_end_and_mono_drums_do_not(quiet_vocal_wide_bass):
    raw, r = quiet_vocal_wide_bass
    stereo = [s for s in r.chains["bass"].stages if s.kind == "stereo" and s.label == "bass mono low end"]
    assert len(stereo) == 1 and stereo[0].params.mono_bass_hz == 120.0
    ratio = r.stem_report["stems"]["bass"]["measured"]["low_side_mid_db"]
    assert ratio > -15 and f"{ratio:.1f} dB over the mid" in stereo[0].why
    side_in = band_energy_db(third_octave_spectrum(raw["bass"], SR), 30, 100, component="side")
    own = render(own_stages(r.chains["bass"]), raw["bass"], SR)
    side_out = band_energy_db(third_octave_spectrum(own, SR), 30, 100, component="side")
    assert side_out < side_in - 30
    # the kick is mono already: left alone, with the measurement
    assert not own_stages(r.chains["drums"]).stages
    assert any(re.search(r"width unchanged: side \d+\.\d dB under the mid", x)
               for x in r.stem_report["stems"]["drums"]["left_alone"])


def test_stems_that_need_nothing_are_left_alone_with_reasons(tidy):
    raw, r = tidy
    for name in ("drums", "bass"):
        rep = r.stem_report["stems"][name]
        assert not own_stages(r.chains[name]).stages, rep["decisions"]
        for topic in ("no EQ", "no compression", "width unchanged", "level unchanged"):
            (line,) = [x for x in rep["left_alone"] if topic in x]
            if topic != "no EQ":  # a policy; the others carry the measurement behind them
                assert re.search(r"\d+\.\d (dB|LU)|\(mono\)", line), line
        # nothing but the bus corrections touched it
        bus_only = Chain(tuple(s for s in r.chains[name].stages if s.label.startswith("bus ")))
        assert np.max(np.abs(render(bus_only, raw[name], SR) - r.stems[name])) < 1e-5
    vox = r.stem_report["stems"]["vocals"]
    assert not [d for d in vox["decisions"] if d["kind"] == "gain"]
    assert any(x.startswith("level unchanged: vocals") for x in vox["left_alone"])
    # a name that is no role is "other"; silent, it passes through as silence
    fx = r.stem_report["stems"]["fx"]
    assert fx["role"] == "other" and fx["measured"]["silent"]
    assert "silent" in fx["left_alone"][0]
    assert not np.any(r.stems["fx"])


def test_muddy_music_gets_one_bounded_cut(tidy):
    raw, r = tidy
    m = r.stem_report["stems"]["music"]
    assert m["measured"]["mud_db"] > 3.0
    (eq,) = [s for s in own_stages(r.chains["music"]).stages if s.kind == "eq"]
    (band,) = eq.params.bands
    assert 200 <= band.freq_hz <= 500 and -3.0 <= band.gain_db < 0
    assert f"{m['measured']['mud_db']:+.1f} dB" in eq.why
    lv_in = third_octave_spectrum(raw["music"], SR)
    lv_out = third_octave_spectrum(render(own_stages(r.chains["music"]), raw["music"], SR), SR)
    drop = band_energy_db(lv_in, 200, 500) - band_energy_db(lv_out, 200, 500)
    assert 0.5 < drop <= 3.0


def test_harsh_vocal_gets_a_cut_and_a_plain_one_does_not():
    harsh = master_stems(build_stems(seconds=4.0, vocal="harsh"), SR, delivery())
    h = harsh.stem_report["stems"]["vocals"]
    assert h["measured"]["harshness_db"] > 0
    (eq,) = [s for s in own_stages(harsh.chains["vocals"]).stages if s.kind == "eq"]
    (band,) = [b for b in eq.params.bands if 2000 <= b.freq_hz <= 5000]
    assert -3.0 <= band.gain_db < 0 and f"{h['measured']['harshness_db']:+.1f} dB" in eq.why
    # the same voice without the 3.5 kHz boost: measured, under the threshold, left alone
    plain = master_stems(build_stems(seconds=4.0, vocal="voice"), SR, delivery())
    p = plain.stem_report["stems"]["vocals"]
    assert p["measured"]["harshness_db"] < 0
    assert not [s for s in own_stages(plain.chains["vocals"]).stages if s.kind == "eq"]
    assert any(x.startswith("no harshness cut") for x in p["left_alone"])


def test_vocal_with_a_wide_loudness_range_is_compressed_gently():
    stems = build_stems(seconds=12.0)
    n = stems["vocals"].shape[1]
    ramp = np.where(np.arange(n) < n // 2, 10 ** (-16 / 20), 1.0).astype(np.float32)  # a quiet verse, a loud chorus
    stems["vocals"] = stems["vocals"] * ramp
    r = master_stems(stems, SR, delivery())
    lra = r.stem_report["stems"]["vocals"]["measured"]["lra_lu"]
    assert lra > 8
    (comp,) = [s for s in r.chains["vocals"].stages if s.kind == "compressor"]
    assert 1.5 <= comp.params.ratio <= 3.0 and f"{lra:.1f} LU" in comp.why
    assert not [s for s in r.chains["drums"].stages if s.kind == "compressor"]


# --- names and refusals ---------------------------------------------------------------------------

def test_roles_from_names():
    assert [stem_role(n) for n in ("vocals", "Vox", "Song - Vocals", "drums", "perc", "bass", "Instrumental",
                                   "guitars", "drums and bass")] == \
        ["vocals", "vocals", "vocals", "drums", "drums", "bass", "music", "other", "other"]


def test_mismatched_stems_are_refused_with_one_line_errors(tmp_path):
    a = np.full((2, SR), 0.1, dtype=np.float32)
    with pytest.raises(InputError, match=r"stem 'vocals' is 0\.900 s .* 'drums' is 1\.000 s") as e:
        conform_stems({"drums": a, "vocals": a[:, : int(0.9 * SR)]}, SR)
    assert e.value.code == "length_mismatch" and "\n" not in str(e.value)
    with pytest.raises(ChannelCountError, match="same channels"):
        conform_stems({"drums": a, "music": np.full((6, SR), 0.1, dtype=np.float32)}, SR)
    with pytest.raises(InputError, match="at least one stem"):
        conform_stems({}, SR)
    with pytest.raises(InputError, match="taken by the output files"):
        conform_stems({"master": a}, SR)
    with pytest.raises(InputError, match="differ only in case"):
        conform_stems({"Vocals": a, "vocals": a}, SR)
    out, notes = conform_stems({"drums": a, "bass": a[:1]}, SR)  # a mono stem joins stereo ones
    assert out["bass"].shape == (2, SR) and notes and "mono" in notes[0]
    sf.write(tmp_path / "drums.wav", a.T, 44100)
    sf.write(tmp_path / "bass.wav", a.T, 48000)
    with pytest.raises(SampleRateError, match=r"bass\.wav is 48000 Hz but .*drums\.wav is 44100 Hz") as e:
        read_stems({"drums": tmp_path / "drums.wav", "bass": tmp_path / "bass.wav"})
    assert e.value.code == "sample_rate"


# --- the CLI --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stem_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stems_in")
    stems = build_stems(seconds=4.0, vocal_db=-12.0)
    paths = {}
    for name, x in stems.items():
        paths[name] = folder / (f"{name}.wav" if name != "vocals" else "take3.wav")
        sf.write(paths[name], x.T, SR, subtype="PCM_24")
    return paths


def _args(paths) -> list[str]:
    return [str(paths[n]) for n in ("drums", "bass", "music")] + [f"vocals={paths['vocals']}"]


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_cli_writes_every_file_and_refuses_to_overwrite(stem_files, tmp_path, capsys):
    out = tmp_path / "mastered"
    assert stems_main(["stems", *_args(stem_files), "-o", str(out), "--report"]) == 0
    printed = capsys.readouterr().out
    assert "vocals level" in printed and "raised 3.0 dB" in printed
    names = {"drums.wav", "bass.wav", "music.wav", "vocals.wav", "master.wav", "stems.json", "report.json",
             "report.html"}
    assert {p.name for p in out.iterdir()} == names
    doc = json.loads((out / "stems.json").read_text())
    assert doc["format"] == "reamaster.stems" and doc["stem_format"] == "wav32f"
    assert set(doc["stems"]) == {"drums", "bass", "music", "vocals"}
    assert all(s["chain"]["format"] == "reamaster.chain" for s in doc["stems"].values())
    # read back what was written: the float stems sum to the bus, the bus chain makes master.wav
    stems = {n: sf.read(out / f"{n}.wav", dtype="float32", always_2d=True)[0].T for n in doc["stems"]}
    bus = sum(x.astype(np.float64) for x in stems.values()).astype(np.float32)
    master, sr = sf.read(out / "master.wav", dtype="float32", always_2d=True)
    assert sr == SR and sf.info(out / "master.wav").subtype == "PCM_24"
    assert doc["sum_check"]["max_abs_difference"] < 1e-6
    again = render(Chain.from_dict(doc["bus_chain"]), bus, SR)
    assert np.max(np.abs(again - master.T)) < 2e-6  # 24-bit quantisation of master.wav
    assert libebur128_lufs(master.T) == pytest.approx(-14.0, abs=0.2)
    # a second run refuses, one line with a code, and changes nothing
    before = snapshot(out)
    assert stems_main(["stems", *_args(stem_files), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith("[output_exists]") and "--force" in err
    assert snapshot(out) == before
    # --force replaces; the 24-bit stems option says how far their sum is from the bus
    assert stems_main(["stems", *_args(stem_files), "-o", str(out), "--force", "--stem-bits", "24"]) == 0
    doc = json.loads((out / "stems.json").read_text())
    assert doc["stem_format"] == "wav24" and 0 < doc["sum_check"]["max_abs_difference"] < 1e-6


def test_cli_never_writes_over_inputs_and_refuses_before_work(stem_files, tmp_path, capsys):
    folder = stem_files["drums"].parent
    before = snapshot(folder)
    assert stems_main(["stems", *_args(stem_files), "-o", str(folder), "--force"]) == 2
    assert capsys.readouterr().err.strip().endswith("[output_is_input]")
    assert snapshot(folder) == before
    # mismatched sample rates: refused, and the output folder is not even created
    other = tmp_path / "other.wav"
    sf.write(other, np.full((SR, 2), 0.1, dtype=np.float32), 48000)
    out = tmp_path / "never"
    assert stems_main(["stems", str(stem_files["drums"]), f"music={other}", "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("[sample_rate]")
    assert not out.exists()
    assert stems_main(["stems", str(tmp_path / "missing.wav"), "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("[file_missing]")
    assert stems_main(["stems", str(stem_files["drums"]), f"drums={stem_files['bass']}", "-o", str(out)]) == 2
    assert "name them apart" in capsys.readouterr().err


def test_amounts_at_zero_leave_each_stem_alone_and_progress_can_cancel():
    from dsp.decide.master import Intent
    from dsp.errors import CancelledError

    stems = build_stems(seconds=4.0, vocal_db=-12.0, wide_bass=True)
    r = master_stems(stems, SR, delivery(), intent=Intent(tone_pct=0, dynamics_pct=0, width_pct=0))
    kinds = {n: [s.kind for s in own_stages(c).stages] for n, c in r.chains.items()}
    assert kinds["music"] == [] and kinds["bass"] == [] and kinds["vocals"] == ["gain"]  # balance is not an amount
    assert any("tone amount set to 0%" in x for x in r.stem_report["stems"]["music"]["left_alone"])
    assert any("width amount set to 0%" in x for x in r.stem_report["stems"]["bass"]["left_alone"])
    seen = []

    def stop(stage, fraction):
        seen.append(stage)
        return stage != "processing stems"

    with pytest.raises(CancelledError):
        master_stems(stems, SR, delivery(), progress=stop)
    assert seen[0] == "analysing stems"
