"""Style profiles: the shipped data files, the tonal distance, folder-built profiles and file I/O."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import numpy as np
import pytest
import soundfile as sf

from dsp.decide import profiles as P
from dsp.demo import demo_mix
from dsp.errors import EmptyAudioError, FileMissingError, OutputExistsError, ParameterError
from dsp.measure.analysis import analyze
from dsp.measure.spectrum import THIRD_OCTAVE_CENTERS_HZ

REQUIRED_STYLES = {"orchestral", "rock", "pop", "hiphop", "electronic", "ambient"}
SYNTH = "synthesised from published guidance"


def _sources() -> dict:
    return json.loads((resources.files("dsp") / "data" / "profile_sources.json").read_text(encoding="utf-8"))


def shaped_noise(rng, sample_rate: int, seconds: float, centers_hz, band_level_db, *,
                 side_mid_db: float = -8.0):
    """Stereo Gaussian noise whose 1/3-octave band levels follow ``band_level_db`` (plus a constant)."""
    n = int(seconds * sample_rate)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    lf = np.log2(np.maximum(f, 1.0))
    # White noise gains 1 dB per 1/3-octave band (bandwidth grows with f): remove that.
    gain_db = np.interp(lf, np.log2(centers_hz), band_level_db) - 10.0 * np.log10(np.maximum(f, 1.0))
    gain = 10.0 ** (gain_db / 20.0)
    gain[0] = 0.0

    def one():
        spec = np.fft.rfft(rng.standard_normal(n)) * gain
        return np.fft.irfft(spec, n)

    mid, side = one(), one() * 10.0 ** (side_mid_db / 20.0)
    x = np.stack([mid + side, mid - side])
    return (0.25 * x / np.max(np.abs(x))).astype(np.float32)


def _analysis_with_levels(a, levels_db):
    spec = dataclasses.replace(a.spectrum, level_db=np.asarray(levels_db, dtype=float))
    return dataclasses.replace(a, spectrum=spec)


@pytest.fixture(scope="module")
def demo_analysis():
    return analyze(demo_mix(44100, seconds=4.0), 44100)


# --- the shipped profiles ------------------------------------------------------------------------

def test_builtin_profiles_load_and_validate():
    names = P.builtin_names()
    assert REQUIRED_STYLES <= set(names)
    for name in names:
        p = P.load_builtin(name)
        assert p.name == name
        assert np.all(np.diff(p.centers_hz) > 0)
        assert np.allclose(p.centers_hz, THIRD_OCTAVE_CENTERS_HZ[:len(p.centers_hz)], rtol=1e-4)
        assert p.centers_hz[-1] >= 15000
        assert np.all(np.isfinite(p.level_db)) and np.all(np.isfinite(p.tolerance_db))
        assert np.all(p.tolerance_db >= 1.0 - 1e-9)
        mask = P.tonal_band_mask(p.centers_hz)
        assert abs(np.mean(p.level_db[mask])) < 0.02  # the documented normalisation
        assert 0 < p.lra_lu < 40 and 0 < p.plr_db < 40
        assert -40 < p.side_mid_db < 0 and -1 <= p.correlation <= 1
        if p.source.startswith(SYNTH):
            assert p.n_tracks == 0
        else:
            assert p.source.startswith("measured") and p.n_tracks >= 10


def test_sources_list_every_track_and_rebuild_the_measured_profiles():
    src = _sources()
    names = set(P.builtin_names())
    tracks = src["tracks"]
    assert tracks and all(t["style"] in names for t in tracks)
    for t in tracks:
        assert t["package"] and t["file"] and t["reason"] and t["duration_s"] >= 30.0
        assert len(t["sha256"]) == 64 and len(t["features"]["shape_db"]) >= 30
    assert all(u["reason"] for u in src["unused"])
    files = [t["file"] for t in tracks] + [u["file"] for u in src["unused"]]
    assert len(files) == len(set(files))
    for name in names:
        p = P.load_builtin(name)
        rows = [t for t in tracks if t["style"] == name]
        assert len(rows) == p.n_tracks
        assert src["styles"][name]["source"] == p.source
        if not rows:
            continue
        # The shipped profile is exactly the aggregate of the listed tracks' measurements.
        n = len(p.centers_hz)
        ms = [dict(t["features"], shape_db=t["features"]["shape_db"][:n]) for t in rows]
        again = P.profile_from_measurements(name, p.centers_hz, ms, source=p.source)
        assert np.allclose(again.level_db, p.level_db, atol=0.006)
        assert np.allclose(again.tolerance_db, p.tolerance_db, atol=0.006)
        assert again.lra_lu == pytest.approx(p.lra_lu, abs=0.006)
        assert again.plr_db == pytest.approx(p.plr_db, abs=0.006)
        assert again.side_mid_db == pytest.approx(p.side_mid_db, abs=0.006)
        assert again.correlation == pytest.approx(p.correlation, abs=0.0006)


# --- the tonal distance --------------------------------------------------------------------------

def test_profile_distance_is_the_reference_tonal_error(demo_analysis):
    from dsp.decide.reference import tonal_error_db

    for name in ("electronic", "rock"):
        p = P.load_builtin(name)
        d = P.profile_distance_db(demo_analysis, p)
        assert d == pytest.approx(tonal_error_db(demo_analysis, p.level_db), abs=1e-9)
        assert d > 0.5


def test_profile_distance_ignores_level_and_counts_deviation(demo_analysis):
    p = P.load_builtin("orchestral")
    n = len(demo_analysis.spectrum.level_db)
    levels = np.full(n, -30.0)
    levels[:len(p.level_db)] += p.level_db
    same = _analysis_with_levels(demo_analysis, levels)
    assert P.profile_distance_db(same, p) == pytest.approx(0.0, abs=1e-9)
    # +3 dB in 9 of the 26 bands whose centres lie in 40 Hz-16 kHz (50 Hz ... 15.85 kHz; the
    # "40 Hz" band is centred at 39.8 Hz): after removing the mean 27/26 dB the mean absolute
    # deviation is (9 * (3 - 27/26) + 17 * 27/26) / 26.
    tilted = levels.copy()
    tilted[4:13] += 3.0
    want = (9 * (3 - 27 / 26) + 17 * 27 / 26) / 26
    got = P.profile_distance_db(_analysis_with_levels(demo_analysis, tilted), p)
    assert got == pytest.approx(want, abs=1e-9)


# --- building from a folder ----------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_build_profile_from_folder_gives_the_expected_shape(tmp_path, rng):
    sr = 44100
    f = np.asarray(THIRD_OCTAVE_CENTERS_HZ)
    slopes = (-3.0, -4.5, -6.0)  # dB per octave
    for i, s in enumerate(slopes):
        x = shaped_noise(rng, sr, 4.0, f, s * np.log2(f / 1000.0), side_mid_db=-6.0 - 2 * i)
        sf.write(tmp_path / f"ref{i}.wav", x.T, sr, subtype="FLOAT")
    (tmp_path / "notes.txt").write_text("not audio")
    p = P.build_profile_from_folder(tmp_path)
    assert p.name == tmp_path.name and p.n_tracks == 3 and p.source.startswith("measured")
    mask = P.tonal_band_mask(p.centers_hz)
    expected = P.tonal_shape_db(p.centers_hz, -4.5 * np.log2(p.centers_hz / 1000.0))
    assert np.max(np.abs(p.level_db[mask] - expected[mask])) < 0.8
    # The spread across the three tracks: |slope - mean| is 1.5 dB/oct, std (ddof 1) 1.5 dB/oct
    # times the distance in octaves from the normalisation's centre (about 800 Hz).
    assert np.all(p.tolerance_db >= 1.0)
    lo = int(np.argmin(np.abs(p.centers_hz - 40)))
    assert p.tolerance_db[lo] == pytest.approx(1.5 * abs(np.log2(40 / 800)), rel=0.25)
    # Median of -6, -8, -10 dB; the steep low end dominates the power sum and has few FFT bins in 4 s.
    assert p.side_mid_db == pytest.approx(-8.0, abs=1.0)
    round_trip = tmp_path / "out" / "mine.json"
    round_trip.parent.mkdir()
    P.save_profile(p, round_trip)
    q = P.load_profile(round_trip)
    assert np.allclose(q.level_db, p.level_db, atol=0.006) and q.n_tracks == 3


def test_build_profile_from_folder_refuses_empty_or_missing(tmp_path):
    with pytest.raises(EmptyAudioError):
        P.build_profile_from_folder(tmp_path)
    with pytest.raises(FileMissingError) as e:
        P.build_profile_from_folder(tmp_path / "nope")
    assert e.value.code == "file_missing"


# --- files ---------------------------------------------------------------------------------------

def test_save_is_atomic_and_refuses_overwrite(tmp_path):
    p = P.load_builtin("electronic")
    out = tmp_path / "e.json"
    P.save_profile(p, out)
    with pytest.raises(OutputExistsError):
        P.save_profile(p, out)
    P.save_profile(dataclasses.replace(p, name="renamed"), out, force=True)
    assert P.load_profile(out).name == "renamed"
    assert [f.name for f in tmp_path.iterdir()] == ["e.json"]  # no temporary left behind


def _good_doc() -> dict:
    return P.load_builtin("ambient").to_dict()


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d.pop("level_db"), "lacks the field 'level_db'"),
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d.update(format="something-else"), "not a ReaMaster profile"),
    (lambda d: d.update(extra=1), "unknown field"),
    (lambda d: d.update(centers_hz=list(reversed(d["centers_hz"]))), "ascending"),
    (lambda d: d["tolerance_db"].__setitem__(5, 0.0), "greater than 0"),
    (lambda d: d["level_db"].__setitem__(5, float("nan")), "not finite"),
    (lambda d: d.update(level_db=d["level_db"][:-1]), "same length"),
    (lambda d: d.update(correlation=1.5), "correlation"),
    (lambda d: d.update(n_tracks="3"), "wrong type"),
    (lambda d: d.update(name=" "), "empty name"),
])
def test_load_rejects_malformed_profiles(tmp_path, mutate, fragment):
    doc = _good_doc()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(P.ProfileError) as e:
        P.load_profile(path)
    assert e.value.code == "bad_profile" and isinstance(e.value, ParameterError)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_load_rejects_bad_json_and_missing_files(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "reamaster-profile",')
    with pytest.raises(P.ProfileError, match="not valid JSON"):
        P.load_profile(path)
    path.write_text("[1, 2]")
    with pytest.raises(P.ProfileError, match="not a JSON object"):
        P.load_profile(path)
    with pytest.raises(FileMissingError):
        P.load_profile(tmp_path / "absent.json")
    with pytest.raises(P.ProfileError, match="unknown style"):
        P.load_builtin("polka")
