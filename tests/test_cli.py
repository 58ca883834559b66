"""The real `reamaster` console script, end to end: success paths and every refusal."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp.demo import demo_mix

SR = 44100
REAMASTER = str(Path(sys.executable).with_name("reamaster"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([REAMASTER, *args], capture_output=True, text=True, cwd=cwd, timeout=240)


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("mix") / "mix.wav"
    sf.write(p, demo_mix(SR, seconds=12.0).T, SR, subtype="PCM_24")
    return p


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_help_is_cheap():
    # --help must not pull in numpy/scipy/numba (lazy imports keep it fast).
    code = "import sys, server.cli.main; print(sorted(m for m in ('numpy', 'scipy', 'numba', 'dsp.decide.master') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    r = run("--help")
    assert r.returncode == 0 and "master" in r.stdout and "analyze" in r.stdout


def test_analyze_text_and_json(mix):
    r = run("analyze", str(mix))
    assert r.returncode == 0, r.stderr
    assert "integrated loudness" in r.stdout and "true peak" in r.stdout
    r = run("analyze", str(mix), "--json", "--series")
    doc = json.loads(r.stdout)
    assert -27 < doc["integrated_lufs"] < -22  # 12 s of the demo: the quiet intro and the verse
    assert len(doc["spectrum"]["centers_hz"]) == len(doc["spectrum"]["level_db"]) == 31
    assert len(doc["loudness_series"]["short_term_lufs"]) > 50


def test_master_writes_audio_chain_and_report(mix, tmp_path):
    out, chain, report = tmp_path / "m.wav", tmp_path / "c.json", tmp_path / "r.json"
    r = run("master", str(mix), "-o", str(out), "--save-chain", str(chain), "--report", str(report), "--progress")
    assert r.returncode == 0, r.stderr
    assert "[" in r.stderr and "%" in r.stderr  # the progress bar went to stderr
    assert "integrated loudness" in r.stdout and "what the chain did" in r.stdout
    info = sf.info(out)
    assert info.samplerate == SR and info.subtype == "PCM_24" and info.frames == 12 * SR
    doc = json.loads(report.read_text())
    assert abs(doc["after"]["integrated_lufs"] + 14.0) <= 0.2
    assert doc["after"]["true_peak_dbtp"] <= -1.0
    assert json.loads(chain.read_text())["stages"][-1]["kind"] == "limiter"
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 3
    # re-rendering the saved chain gives the same master
    out2 = tmp_path / "m2.flac"
    r = run("master", str(mix), "-o", str(out2), "--chain", str(chain))
    assert r.returncode == 0, r.stderr
    a, _ = sf.read(out, dtype="float32")
    b, _ = sf.read(out2, dtype="float32")
    assert np.max(np.abs(a - b)) < 2e-6 * 10  # both 24-bit, one LSB apart at most


def test_cd_preset_writes_dithered_16_bit(mix, tmp_path):
    out = tmp_path / "cd.wav"
    r = run("master", str(mix), "-o", str(out), "--preset", "cd", "--report", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert sf.info(out).subtype == "PCM_16"
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["dithered"] is True and abs(doc["after"]["integrated_lufs"] + 9.0) <= 0.2


def write_float(path: Path, data: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, data.T, sr, subtype="FLOAT")
    return path


def bad_inputs(folder: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (arguments after 'master', expected error code)."""
    ok = write_float(folder / "ok.wav", demo_mix(SR, seconds=3.0))
    (folder / "text.wav").write_text("this is not audio\n" * 10)
    (folder / "song.mp3").write_bytes(b"ID3" + bytes(200))
    nan = demo_mix(SR, seconds=2.0)
    nan[0, 100:105] = np.nan
    write_float(folder / "nan.wav", nan)
    write_float(folder / "inf.wav", np.full((2, SR), np.inf, dtype=np.float32))
    sf.write(folder / "empty.wav", np.zeros((0, 2)), SR)
    write_float(folder / "short.wav", demo_mix(SR, seconds=1.0)[:, : SR // 5])
    write_float(folder / "silent.wav", np.zeros((2, 2 * SR), dtype=np.float32))
    write_float(folder / "nine.wav", np.tile(demo_mix(SR, seconds=1.0)[:1], (9, 1)))
    write_float(folder / "lowrate.wav", demo_mix(22050, seconds=2.0)[:, ::2], sr=11025)
    (folder / "broken_chain.json").write_text("{ not json")
    existing = folder / "exists.wav"
    existing.write_bytes(b"keep me")
    (folder / "exists.html").write_text("my own page")  # the HTML beside report exists.json
    return {
        "missing": (["nope.wav", "-o", "o1.wav"], "file_missing"),
        "corrupt": (["text.wav", "-o", "o2.wav"], "corrupt_file"),
        "unsupported": (["song.mp3", "-o", "o3.wav"], "unsupported_format"),
        "nan": (["nan.wav", "-o", "o4.wav"], "non_finite_audio"),
        "inf": (["inf.wav", "-o", "o4b.wav"], "non_finite_audio"),
        "empty": (["empty.wav", "-o", "o5.wav"], "empty_audio"),
        "too_short": (["short.wav", "-o", "o6.wav"], "too_short"),
        "silent": (["silent.wav", "-o", "o7.wav"], "silent_audio"),
        "nine_channels": (["nine.wav", "-o", "o8.wav"], "channel_count"),
        "sample_rate": (["lowrate.wav", "-o", "o9.wav"], "sample_rate"),
        "unreachable": ([ok.name, "-o", "o10.wav", "--lufs", "-3", "--ceiling", "-6"], "target_unreachable"),
        "exists": ([ok.name, "-o", existing.name], "output_exists"),
        "is_input": ([ok.name, "-o", ok.name, "--force"], "output_is_input"),
        "no_folder": ([ok.name, "-o", "missing/dir/o11.wav"], "bad_output"),
        "bad_extension": ([ok.name, "-o", "o12.mp3"], "bad_parameter"),
        "bad_lufs": ([ok.name, "-o", "o13.wav", "--lufs", "5"], "bad_parameter"),
        "bad_chain": ([ok.name, "-o", "o14.wav", "--chain", "broken_chain.json"], "bad_chain"),
        "missing_chain": ([ok.name, "-o", "o15.wav", "--chain", "nochain.json"], "file_missing"),
        "report_exists": ([ok.name, "-o", "o16.wav", "--report", existing.name], "output_exists"),
        "report_html_exists": ([ok.name, "-o", "o17.wav", "--report", "exists.json"], "output_exists"),
    }


def test_every_bad_input_gets_one_line_and_nothing_is_written(tmp_path):
    cases = bad_inputs(tmp_path)
    before = snapshot(tmp_path)
    for name, (args, code) in cases.items():
        r = run("master", *args, cwd=tmp_path)
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("reamaster: "), (name, r.stderr)
        assert lines[0].endswith(f"[{code}]"), (name, lines[0])
        assert snapshot(tmp_path) == before, name  # nothing written, nothing changed, no temp files


def test_analyze_refuses_bad_input_too(tmp_path):
    (tmp_path / "text.wav").write_text("nope")
    r = run("analyze", str(tmp_path / "text.wav"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "[corrupt_file]" in r.stderr


def test_force_replaces_an_existing_output(mix, tmp_path):
    out = tmp_path / "m.wav"
    out.write_bytes(b"old")
    r = run("master", str(mix), "-o", str(out), "--force", "--preset", "broadcast")
    assert r.returncode == 0, r.stderr
    assert sf.info(out).frames == 12 * SR


def test_demo_command(tmp_path):
    r = run("demo", "--out", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    names = set(os.listdir(tmp_path / "demo"))
    assert {"mix.wav", "master.wav", "chain.json", "report.json"} <= names
    doc = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert abs(doc["after"]["integrated_lufs"] + 14.0) <= 0.2 and doc["after"]["true_peak_dbtp"] <= -1.0
    assert "before" in r.stdout and "after" in r.stdout
    # the closing hints name the report page and a command the user can run as printed, from here
    assert str(tmp_path / "demo" / "report.html") in r.stdout and (tmp_path / "demo" / "report.html").exists()
    hint = next(line for line in r.stdout.splitlines() if line.startswith("revise it in words: "))
    words = shlex.split(hint.removeprefix("revise it in words: "))
    assert words[1:3] == ["revise", str(tmp_path / "demo" / "master.session")]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # a shell where the venv is not activated
    listed = subprocess.run([*words[:3], "--list"], capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("v1: first master"), listed.stderr


def test_style_reference_amounts_and_codec_safe(mix, tmp_path):
    # A built-in style is named in the chain and the report.
    r = run("master", str(mix), "-o", str(tmp_path / "pop.wav"), "--style", "pop", "--report", str(tmp_path / "p.json"),
            "--no-session")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["chain"]["meta"]["style"]["style"] == "pop" and doc["comparison"]["target"] == "pop profile"
    # Auto style says what it heard and how sure it is.
    r = run("master", str(mix), "-o", str(tmp_path / "auto.wav"), "--report", str(tmp_path / "a.json"), "--no-session")
    style = json.loads((tmp_path / "a.json").read_text())["chain"]["meta"]["style"]
    assert style["style"] == "auto" and 0 < style["confidence"] <= 1 and style["heard"] in style["probabilities"]
    # A reference sets the loudness target; amounts of 0 switch the corrections off.
    ref = tmp_path / "ref.wav"
    sf.write(ref, (demo_mix(SR, seconds=12.0) * 2.0).T, SR, subtype="FLOAT")
    r = run("master", str(mix), "-o", str(tmp_path / "ref_m.wav"), "--reference", str(ref), "--dynamics", "0",
            "--report", str(tmp_path / "r.json"), "--no-session")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["chain"]["meta"]["reference"] == ["ref.wav"]
    assert abs(doc["after"]["integrated_lufs"] - doc["chain"]["meta"]["reference_lufs"]) <= 0.2
    assert "compressor" not in [s["kind"] for s in doc["chain"]["stages"]]
    # Loudness off: the level stays, the ceiling is still guarded.
    r = run("master", str(mix), "-o", str(tmp_path / "keep.wav"), "--no-loudness", "--report", str(tmp_path / "k.json"),
            "--no-session")
    doc = json.loads((tmp_path / "k.json").read_text())
    assert abs(doc["after"]["integrated_lufs"] - doc["before"]["integrated_lufs"]) < 1.0
    assert doc["after"]["true_peak_dbtp"] <= -1.0
    # Codec-safe: every decoded version at or under -0.5 dBTP, listed in the report.
    r = run("master", str(mix), "-o", str(tmp_path / "cs.wav"), "--preset", "club", "--codec-safe",
            "--report", str(tmp_path / "c.json"), "--no-session")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    assert {c["codec"] for c in doc["codecs"]} == {"mp3_320", "vorbis_320", "opus_160"}
    assert all(c["true_peak_dbtp"] <= -0.5 for c in doc["codecs"])
    assert any(p["platform"] == "spotify" and p["gain_db"] < -5 for p in doc["platforms"])


def test_bad_amounts_and_styles_are_refused(mix, tmp_path):
    for args, code in ((["--tone", "150"], "bad_parameter"), (["--style", "polka"], "file_missing"),
                       (["--reference", str(tmp_path / "none.wav")], "file_missing")):
        r = run("master", str(mix), "-o", str(tmp_path / "x.wav"), *args)
        assert r.returncode == 2 and r.stderr.strip().endswith(f"[{code}]"), (args, r.stderr)
        assert not (tmp_path / "x.wav").exists()


def test_profile_build_and_list(tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"t{i}.wav", demo_mix(SR, seconds=6.0, seed=i).T, SR, subtype="PCM_24")
    r = run("profile", "build", str(folder), "-o", str(tmp_path / "mine.json"), "--name", "mine")
    assert r.returncode == 0, r.stderr
    r = run("master", str(folder / "t0.wav"), "-o", str(tmp_path / "m.wav"), "--style", str(tmp_path / "mine.json"),
            "--report", str(tmp_path / "r.json"), "--no-session")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["chain"]["meta"]["style"]["style"] == "mine"
    assert "orchestral" in run("profile", "list").stdout
