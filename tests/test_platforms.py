"""Platform preview: playback gain per streaming service and mode."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsp.decide.platforms import PLATFORMS, Platform, platform_preview, predict
from dsp.errors import ParameterError


def find(preds, platform, mode="normal"):
    (p,) = [p for p in preds if p.platform == platform and p.mode == mode]
    return p


def test_platform_table():
    keys = {(p.platform, p.mode) for p in PLATFORMS}
    assert keys == {("spotify", "normal"), ("spotify", "loud"), ("spotify", "quiet"),
                    ("apple", "sound check"), ("youtube", "normal"), ("tidal", "normal"),
                    ("amazon", "normal"), ("deezer", "normal")}
    ref = {(p.platform, p.mode): p.reference_lufs for p in PLATFORMS}
    assert ref[("spotify", "normal")] == -14 and ref[("spotify", "loud")] == -11
    assert ref[("spotify", "quiet")] == -19 and ref[("apple", "sound check")] == -16
    assert ref[("deezer", "normal")] == -15
    for p in PLATFORMS:
        assert p.confidence in ("published", "third-party", "assumption")
        assert p.source and p.note
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.reference_lufs = 0.0  # type: ignore[misc]
    # every rule we could not verify is flagged as such, in the data and in the note
    apple = next(p for p in PLATFORMS if p.platform == "apple")
    assert apple.confidence == "assumption" and "ASSUMPTION" in apple.note
    amazon = next(p for p in PLATFORMS if p.platform == "amazon")
    assert "LOW CONFIDENCE" in amazon.note


def test_spotify_raises_quiet_tracks_only_up_to_one_db_of_peak_headroom():
    # LANDSCAPE.md section 2: a -20 LUFS track peaking at -5 dBTP is raised only to -16 LUFS
    p = find(platform_preview(-20.0, -5.0), "spotify")
    assert p.gain_db == pytest.approx(4.0)
    assert p.playback_lufs == pytest.approx(-16.0)
    assert p.playback_peak_dbtp == pytest.approx(-1.0)
    assert not p.limited and "raised only 4.0 of 6.0 dB" in p.note
    # with enough headroom the full gain is given
    p = find(platform_preview(-20.0, -9.0), "spotify")
    assert p.gain_db == pytest.approx(6.0) and p.playback_lufs == pytest.approx(-14.0)


def test_loud_master_is_turned_down_six_db_on_spotify_normal():
    preds = platform_preview(-8.0, -0.5)
    p = find(preds, "spotify")
    assert p.gain_db == pytest.approx(-6.0)
    assert p.playback_lufs == pytest.approx(-14.0) and p.playback_peak_dbtp == pytest.approx(-6.5)
    assert "-2 dBTP" in p.note  # Spotify's guidance for masters louder than -14 LUFS
    assert find(preds, "youtube").gain_db == pytest.approx(-6.0)
    assert find(preds, "apple", "sound check").gain_db == pytest.approx(-8.0)
    assert find(preds, "deezer").gain_db == pytest.approx(-7.0)


@pytest.mark.parametrize("lufs, peak", [(-30.0, -12.0), (-20.0, -5.0), (-15.5, -1.0), (-16.0, -20.0)])
def test_turn_down_only_services_never_turn_up(lufs, peak):
    preds = platform_preview(lufs, peak)
    for name in ("youtube", "tidal", "amazon", "deezer"):
        p = find(preds, name)
        assert p.gain_db == 0.0 and p.playback_lufs == lufs and p.playback_peak_dbtp == peak
        assert "does not turn up" in p.note


def test_spotify_loud_mode_turns_up_past_the_peaks_and_limits():
    p = find(platform_preview(-14.0, -1.0), "spotify", "loud")
    assert p.gain_db == pytest.approx(3.0) and p.playback_lufs == pytest.approx(-11.0)
    assert p.limited and p.playback_peak_dbtp == pytest.approx(-1.0)
    assert "3.0 dB off the peaks" in p.note
    # a quiet, peaky master: no headroom rule in loud mode, the limiter takes it
    p = find(platform_preview(-20.0, -5.0), "spotify", "loud")
    assert p.gain_db == pytest.approx(9.0) and p.limited
    # enough headroom: no limiting
    p = find(platform_preview(-13.0, -6.0), "spotify", "loud")
    assert p.gain_db == pytest.approx(2.0) and not p.limited and p.playback_peak_dbtp == pytest.approx(-4.0)
    # louder than -11: turned down, never limited
    p = find(platform_preview(-8.0, -0.1), "spotify", "loud")
    assert p.gain_db == pytest.approx(-3.0) and not p.limited


def test_spotify_quiet_and_apple_follow_the_headroom_rule():
    p = find(platform_preview(-20.0, -1.5), "spotify", "quiet")
    assert p.gain_db == pytest.approx(0.5) and p.playback_peak_dbtp == pytest.approx(-1.0)
    p = find(platform_preview(-20.0, -1.5), "apple", "sound check")
    assert p.gain_db == pytest.approx(0.5)  # assumed: Sound Check stops at -1 dBTP too
    p = find(platform_preview(-20.0, -0.5), "apple", "sound check")
    assert p.gain_db == 0.0  # peaks already above -1 dBTP: no gain at all, never a cut


@given(lufs=st.floats(-70.0, 5.0), peak=st.floats(-60.0, 3.0))
def test_every_prediction_is_finite_and_consistent(lufs, peak):
    preds = platform_preview(lufs, peak)
    assert len(preds) == len(PLATFORMS)
    for p, spec in zip(preds, PLATFORMS):
        vals = (p.reference_lufs, p.gain_db, p.playback_lufs, p.playback_peak_dbtp)
        assert all(math.isfinite(v) for v in vals)
        assert p.playback_lufs == pytest.approx(lufs + p.gain_db, abs=1e-9)
        assert p.gain_db <= spec.reference_lufs - lufs + 1e-9  # never past the reference
        if not spec.turns_up:
            assert p.gain_db <= 0.0
        if spec.peak_headroom_db is not None and p.gain_db > 0:
            assert peak + p.gain_db <= -spec.peak_headroom_db + 1e-9
        if p.limited:
            assert p.playback_peak_dbtp == spec.limiter_db < peak + p.gain_db
        else:
            assert p.playback_peak_dbtp == pytest.approx(peak + p.gain_db, abs=1e-9)
        if p.gain_db < 0:  # turning down always reaches the reference exactly
            assert p.playback_lufs == pytest.approx(spec.reference_lufs)
        assert isinstance(p.to_dict(), dict) and p.note


def test_refusals():
    for bad in (math.nan, math.inf, -math.inf, "loud", True):
        with pytest.raises(ParameterError):
            platform_preview(bad, -1.0)  # type: ignore[arg-type]
        with pytest.raises(ParameterError):
            platform_preview(-14.0, bad)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        platform_preview(-80.0, -1.0)


def test_custom_platform():
    club = Platform("club", "normal", -8.0, True, None, None, -0.5, None, "assumption", "-", "-")
    p = predict(club, -12.0, -3.0)
    assert p.gain_db == pytest.approx(4.0) and p.playback_peak_dbtp == pytest.approx(1.0) and not p.limited
