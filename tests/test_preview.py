"""`reamaster master --preview SECONDS`: the loudest stretch, mastered with the whole file's decisions
and as loud as it will play in the full master. Loudness read back with libebur128 (pyebur128)."""

from __future__ import annotations

import json

import numpy as np
import pyebur128
import pytest
import soundfile as sf

from dsp.decide.preview import MAX_OFFSET_LU, loudest_window
from dsp.demo import demo_mix
from dsp.errors import ParameterError
from dsp.measure.analysis import analyze
from tests.test_cli import run

SR = 44100


def r128(path) -> tuple[float, float]:
    x, sr = sf.read(path, always_2d=True)
    st = pyebur128.R128State(x.shape[1], sr, pyebur128.MeasurementMode.MODE_I | pyebur128.MeasurementMode.MODE_TRUE_PEAK)
    st.add_frames(np.ascontiguousarray(x, dtype=np.float64).ravel(), x.shape[0])
    tp = max(pyebur128.get_true_peak(st, c) for c in range(x.shape[1]))
    return pyebur128.get_loudness_global(st), 20 * np.log10(tp)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """40 s: the demo's quiet start, then its chorus 6 dB up from 24 s to 34 s, then quiet again."""
    x = demo_mix(SR, seconds=40.0)
    gain = np.ones(x.shape[1], dtype=np.float32)
    gain[24 * SR:34 * SR] = 2.0
    p = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(p, (x * gain * 0.5).T, SR, subtype="PCM_24")
    return p


def test_the_loudest_stretch_is_found_and_its_offset_measured(song):
    x, _ = sf.read(song, dtype="float32", always_2d=True)
    a = analyze(np.ascontiguousarray(x.T), SR)
    w = loudest_window(a, 8.0)
    assert 24.0 - 0.2 <= w.start_s and w.end_s <= 34.0 + 0.2 and w.end_s - w.start_s == pytest.approx(8.0, abs=0.11)
    assert 0.0 < w.offset_lu <= MAX_OFFSET_LU  # louder than the song as a whole
    whole = loudest_window(a, 120.0)  # longer than the song: the whole of it, no offset
    assert (whole.start_s, whole.offset_lu) == (0.0, 0.0) and whole.end_s == pytest.approx(40.0, abs=0.01)
    with pytest.raises(ParameterError):
        loudest_window(a, 2.0)


def test_preview_masters_the_stretch_as_loud_as_the_full_master_plays_it(song, tmp_path):
    full, prev = tmp_path / "full.wav", tmp_path / "prev.wav"
    assert run("master", str(song), "-o", str(full), "--no-session", "--save-chain", str(tmp_path / "full.json")
               ).returncode == 0
    r = run("master", str(song), "-o", str(prev), "--preview", "8", "--report", str(tmp_path / "p.json"),
            "--save-chain", str(tmp_path / "prev.json"))
    assert r.returncode == 0, r.stderr
    assert "preview" in r.stdout and "loudest 8 s" in r.stdout
    info = sf.info(prev)
    assert info.frames == pytest.approx(8 * SR, abs=0.11 * SR)
    doc = json.loads((tmp_path / "p.json").read_text())["preview"]
    # the same stretch of the full master, measured independently: the preview plays about as loud
    y, _ = sf.read(full, always_2d=True)
    a, b = int(doc["start_s"] * SR), int(doc["end_s"] * SR)
    sf.write(tmp_path / "cut.wav", y[a:b], SR, subtype="FLOAT")
    lufs_prev, tp_prev = r128(prev)
    lufs_cut, _ = r128(tmp_path / "cut.wav")
    assert abs(lufs_prev - lufs_cut) <= 1.0, (lufs_prev, lufs_cut)
    assert tp_prev <= -1.0 + 0.05
    # decisions from the whole file: the same stages with the same settings, only the limiter's drive differs
    full_c, prev_c = (json.loads((tmp_path / n).read_text())["stages"] for n in ("full.json", "prev.json"))
    assert [s["kind"] for s in full_c] == [s["kind"] for s in prev_c]
    for s, t in zip(full_c, prev_c, strict=True):
        if s["kind"] != "limiter":
            assert s["params"] == t["params"]


def test_preview_refuses_what_it_cannot_do_and_writes_nothing(song, tmp_path):
    for extra, code in ((["--preview", "2"], "bad_parameter"),
                        (["--preview", "10", "--reference", str(song)], "bad_parameter"),
                        (["--preview", "10", "--codec-safe"], "bad_parameter"),
                        (["--preview", "10", "--server", "auto"], "bad_parameter")):
        if "--server" in extra:  # a global option: before the command
            r = run("--server", "auto", "master", str(song), "-o", str(tmp_path / "p.wav"), "--preview", "10")
        else:
            r = run("master", str(song), "-o", str(tmp_path / "p.wav"), *extra)
        assert r.returncode == 2 and r.stderr.strip().endswith(f"[{code}]"), (extra, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "p.wav").exists()
