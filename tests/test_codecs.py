"""Codec-safe delivery: real MP3/Vorbis/Opus round trips through soundfile's libsndfile."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from dsp.decide.codec_safe import codec_checks, codec_safe_master
from dsp.decide.master import master
from dsp.decide.presets import delivery
from dsp.demo import demo_mix
from dsp.errors import ChannelCountError, ParameterError, TargetUnreachableError, TooShortError
from dsp.io.codecs import CODECS, codec_rate, codec_spec, round_trip
from dsp.measure.loudness import integrated_loudness
from dsp.measure.truepeak import true_peak_dbtp

pytestmark = pytest.mark.timeout(120)

SR = 44100
MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


@pytest.fixture(scope="module")
def hot_master() -> np.ndarray:
    """A loud, limited 6 s master (club preset: -8 LUFS at a -0.5 dBTP ceiling)."""
    return master(demo_mix(SR, seconds=6.0), SR, delivery("club")).audio


def mp3_frame_bitrates(data: bytes) -> list[int]:
    """kbps of every MPEG-1 Layer III frame, walking the headers (ID3v2 skipped, ID3v1 ends)."""
    pos = 0
    if data[:3] == b"ID3":
        size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]
        pos = 10 + size
    rates = []
    while pos + 4 <= len(data) and data[pos:pos + 3] != b"TAG":
        b1, b2 = data[pos + 1], data[pos + 2]
        assert data[pos] == 0xFF and b1 & 0xE0 == 0xE0, f"lost frame sync at byte {pos}"
        assert (b1 >> 3) & 3 == 3 and (b1 >> 1) & 3 == 1, "not an MPEG-1 Layer III frame"
        kbps = MPEG1_L3_KBPS[b2 >> 4]
        sr = (44100, 48000, 32000)[(b2 >> 2) & 3]
        rates.append(kbps)
        pos += 144000 * kbps // sr + ((b2 >> 1) & 1)
    return rates


def test_decoded_peaks_rise_above_the_master_and_loudness_holds(hot_master):
    source_tp = true_peak_dbtp(hot_master, factor=8)
    source_lufs = integrated_loudness(hot_master, SR)
    checks = codec_checks(hot_master, SR)
    assert [c.codec for c in checks] == list(CODECS)
    for c in checks:
        # observed here: every codec adds peak (MP3 ~0.04 dB, Vorbis ~0.2 dB, Opus ~0.45 dB)
        assert c.overshoot_db > 0.0, c
        assert c.true_peak_dbtp == pytest.approx(source_tp + c.overshoot_db, abs=1e-9)
        assert abs(c.loudness_lufs - source_lufs) < 0.5, c
        assert c.encoded_seconds == pytest.approx(6.0)
    by = {c.codec: c for c in checks}
    assert by["opus_160"].overshoot_db > by["mp3_320"].overshoot_db  # Opus is the least waveform-true
    assert by["opus_160"].sample_rate_hz == 48000 and by["mp3_320"].sample_rate_hz == SR


def test_bitrates_are_what_the_names_claim(hot_master):
    by = {c.codec: c for c in codec_checks(hot_master, SR)}
    assert by["mp3_320"].bitrate_kbps == pytest.approx(320, rel=0.02)  # CBR plus header/tag bytes
    assert 250 < by["vorbis_320"].bitrate_kbps < 380  # VBR quality 9, nominal 320
    assert by["opus_160"].bitrate_kbps == pytest.approx(160, rel=0.06)  # VBR around the target
    _, rate, data = round_trip(hot_master, SR, "mp3_320")
    frames = mp3_frame_bitrates(data)
    assert rate == SR and len(frames) > 6.0 * SR / 1152
    assert set(frames) == {320}  # true constant bitrate, every frame


def test_round_trip_is_gapless_and_in_memory(hot_master, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for codec in CODECS:
        decoded, rate, data = round_trip(hot_master, SR, codec)
        expected = math.ceil(hot_master.shape[1] * rate / SR)
        assert decoded.shape == (2, expected) and decoded.dtype == np.float32
        assert len(data) > 1000
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("sample_rate", [44100, 48000, 96000])
def test_every_sample_rate(sample_rate):
    x = demo_mix(sample_rate, seconds=3.0)
    x = (x * 10 ** ((-1.0 - true_peak_dbtp(x, factor=8)) / 20)).astype(np.float32)  # peaks at -1 dBTP
    checks = codec_checks(x, sample_rate)
    lufs = integrated_loudness(x, sample_rate)
    for c in checks:
        assert c.sample_rate_hz == codec_rate(sample_rate, codec_spec(c.codec))
        assert c.sample_rate_hz in (44100, 48000)
        if c.codec == "opus_160":
            assert c.sample_rate_hz == 48000
        assert all(math.isfinite(v) for v in (c.true_peak_dbtp, c.loudness_lufs, c.bitrate_kbps))
        assert abs(c.loudness_lufs - lufs) < 0.5, c
        assert -1.5 < c.true_peak_dbtp < 0.5, c
    assert codec_rate(96000, codec_spec("mp3_320")) == 48000
    assert codec_rate(88200, codec_spec("vorbis_320")) == 44100
    assert codec_rate(44100, codec_spec("opus_160")) == 48000


def test_mono():
    x = demo_mix(SR, seconds=3.0)[:1]
    x = (x * 10 ** ((-1.0 - true_peak_dbtp(x, factor=8)) / 20)).astype(np.float32)
    checks = codec_checks(x, SR)
    by = {c.codec: c for c in checks}
    assert by["mp3_320"].bitrate_kbps == pytest.approx(320, rel=0.03)  # CBR stays 320 in mono
    assert by["opus_160"].bitrate_kbps == pytest.approx(80, rel=0.1)  # 80 kbps per channel
    lufs = integrated_loudness(x, SR)
    for c in checks:
        assert abs(c.loudness_lufs - lufs) < 0.5, c
    decoded, _, _ = round_trip(x, SR, "vorbis_320")
    assert decoded.shape[0] == 1


def test_codec_safe_master_keeps_every_decoded_peak_under_the_limit():
    # The chorus: club loudness is a fair ask there (the bass-and-pad intro cannot reach -8 LUFS
    # at a -1.5 dBTP ceiling even with 24 dB of limiting, which the engine rightly refuses).
    x = demo_mix(SR, seconds=30.0)[:, 24 * SR:]
    ceilings = []

    def render(ceiling_dbtp: float) -> np.ndarray:
        ceilings.append(ceiling_dbtp)
        return master(x, SR, delivery("club", ceiling_dbtp=ceiling_dbtp)).audio

    audio, used, checks = codec_safe_master(render, SR, -0.3, max_decoded_dbtp=-0.5)
    assert len(ceilings) >= 2  # -0.3 dBTP did decode above -0.5 dBTP, so it had to step down
    assert ceilings[0] == -0.3 and used == ceilings[-1] < -0.3
    assert all(b < a for a, b in zip(ceilings, ceilings[1:]))
    # the decoded measurements themselves, re-made independently of the returned checks
    for codec in CODECS:
        decoded, rate, _ = round_trip(audio, SR, codec)
        assert true_peak_dbtp(decoded, factor=8) <= -0.5, codec
        assert integrated_loudness(decoded, rate) == pytest.approx(-8.0, abs=0.5)
    assert max(c.true_peak_dbtp for c in checks) <= -0.5
    assert true_peak_dbtp(audio, factor=8) <= used + 0.05


def test_codec_safe_master_says_what_it_reached_when_it_cannot(hot_master):
    calls = []

    def render(ceiling_dbtp: float) -> np.ndarray:
        calls.append(ceiling_dbtp)
        return hot_master  # ignores the ceiling: can never get safer

    with pytest.raises(TargetUnreachableError, match=r"decoded peaks stay above -0.5 dBTP") as err:
        codec_safe_master(render, SR, -0.5, max_steps=2)
    assert len(calls) == 2 and calls[1] < calls[0]
    assert "opus_160" in str(err.value) and "\n" not in str(err.value)
    assert err.value.code == "target_unreachable"


def test_long_audio_is_checked_on_excerpts_that_hold_the_peaks():
    x = master(demo_mix(SR, seconds=24.0), SR, delivery("club")).audio
    full = {c.codec: c for c in codec_checks(x, SR, max_seconds=None)}
    part = {c.codec: c for c in codec_checks(x, SR, max_seconds=12.0)}
    for codec in CODECS:
        f, p = full[codec], part[codec]
        assert f.encoded_seconds == pytest.approx(24.0)
        assert 12.0 <= p.encoded_seconds < 16.0
        # An excerpt encoded on its own sees slightly different codec state: it may read a little
        # high (MP3 +0.006 dB and +0.06 dB on two versions of this master), which only makes the
        # codec-safe ceiling a touch more careful; reading low is what must not happen (below).
        assert p.true_peak_dbtp <= f.true_peak_dbtp + 0.15
        # ... and find most of the overshoot. A sample can miss a spike: on a limited master every
        # window touches the ceiling, and Opus put one isolated +1.0 dB overshoot in one window of 24
        # (the others +0.2-0.6) that the 12 s of excerpts do not hold: 0.43 dB low (module docstring)
        assert p.true_peak_dbtp > f.true_peak_dbtp - 0.5
        assert p.loudness_lufs == pytest.approx(f.loudness_lufs, abs=0.1)
        assert p.overshoot_db - f.overshoot_db == pytest.approx(p.true_peak_dbtp - f.true_peak_dbtp)


def test_refusals():
    x = demo_mix(SR, seconds=2.0)
    with pytest.raises(ChannelCountError):
        codec_checks(np.concatenate([x, x]), SR)
    with pytest.raises(ParameterError, match="unknown codec"):
        codec_checks(x, SR, codecs=("aac_256",))
    with pytest.raises(ParameterError):
        codec_checks(x, SR, codecs=())
    with pytest.raises(TooShortError):
        codec_checks(x[:, :1000], SR)
    with pytest.raises(ParameterError):
        codec_safe_master(lambda c: x, SR, -1.0, max_steps=0)
