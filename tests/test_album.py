"""Album mode: loudness anchored on the loudest track, tracks pulled together, one chain style."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp.decide.album import MAX_SPREAD_LU, SPREAD_KEPT, album_targets, master_album
from dsp.decide.presets import delivery
from dsp.demo import demo_mix
from dsp.errors import ParameterError
from dsp.process.eq import EqBand, EqParams, process
from tests.test_master import libebur128_lufs, tp8_db

SR = 44100
REAMASTER = str(Path(sys.executable).with_name("reamaster"))


def coloured(seed: int, gain: float, *bands: EqBand) -> np.ndarray:
    y, _ = process(demo_mix(SR, seconds=10.0, seed=seed) * gain, SR, EqParams(bands=bands))
    return y.astype(np.float32)


def test_targets_keep_part_of_the_spread():
    t = album_targets([-20.0, -30.0, -18.0, -40.0], -14.0)
    assert t[2] == -14.0
    assert t[0] == pytest.approx(-14.0 - SPREAD_KEPT * 2.0)
    assert t[1] == pytest.approx(-14.0 - min(MAX_SPREAD_LU, SPREAD_KEPT * 12.0))  # 9 LU, capped at 8
    assert t[3] == pytest.approx(-14.0 - MAX_SPREAD_LU)


def test_album_master():
    tracks = [("a", coloured(1, 1.0), SR),
              ("b", coloured(2, 0.4, EqBand("high_shelf", 3000.0, 8.0), EqBand("low_shelf", 150.0, -4.0)), SR),
              ("c", coloured(3, 1.3, EqBand("high_shelf", 3000.0, -5.0), EqBand("band", 400.0, 4.0, 1.0)), SR)]
    d = delivery("streaming")
    r = master_album(tracks, d)
    measured = [libebur128_lufs(t.result.audio, SR) for t in r.tracks]
    before = [t.result.before.integrated_lufs for t in r.tracks]
    loudest = int(np.argmax(before))
    assert measured[loudest] == pytest.approx(-14.0, abs=0.2)
    for i, m in enumerate(measured):
        want = -14.0 - min(MAX_SPREAD_LU, SPREAD_KEPT * (before[loudest] - before[i]))
        assert m == pytest.approx(want, abs=0.2)
        assert tp8_db(r.tracks[i].result.audio) <= d.ceiling_dbtp
    spread_before, spread_after = r.spread_db()
    # the record hangs together better (the EQ moves only what lies beyond the style's measured spread,
    # and boosts nothing over 40 dB under a track's median band: the dull track's top octave, at -89 dBFS
    # by 16 kHz, stays as it is)
    assert spread_after < spread_before - 0.05
    releases = {t.result.chain.find("limiter").params.release_ms for t in r.tracks}
    assert len(releases) == 1  # one chain style
    assert r.album_lufs_after > r.album_lufs_before


def test_album_refusals():
    x = demo_mix(SR, seconds=3.0)
    with pytest.raises(ParameterError):
        master_album([("a", x, SR)], delivery())
    with pytest.raises(ParameterError):
        master_album([("a", x, SR), ("a", x, SR)], delivery())


def test_album_cli(tmp_path):
    files = []
    for i, g in ((1, 1.0), (2, 0.5)):
        p = tmp_path / f"song{i}.wav"
        sf.write(p, (demo_mix(SR, seconds=6.0, seed=i) * g).T, SR, subtype="FLOAT")
        files.append(str(p))
    out = tmp_path / "album"  # not there yet: album creates it, as stems does
    r = subprocess.run([REAMASTER, "album", *files, "-o", str(out)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "album.json").read_text())
    assert [t["name"] for t in doc["tracks"]] == ["song1", "song2"]
    assert max(t["after"]["integrated_lufs"] for t in doc["tracks"]) == pytest.approx(-14.0, abs=0.2)
    assert sf.info(out / "song1.wav").frames == 6 * SR
    again = subprocess.run([REAMASTER, "album", *files, "-o", str(out)], capture_output=True, text=True, timeout=240)
    assert again.returncode == 2 and "[output_exists]" in again.stderr


def test_album_cli_refuses_a_folder_whose_parent_is_missing_before_any_work(tmp_path):
    p = tmp_path / "song.wav"
    sf.write(p, demo_mix(SR, seconds=2.0, seed=3).T, SR, subtype="FLOAT")
    out = tmp_path / "no" / "such" / "album"
    r = subprocess.run([REAMASTER, "album", str(p), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "[bad_output]" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "no").exists()
