"""The synthesised demo song: deterministic, well-formed and deliberately unmastered."""

from __future__ import annotations

import numpy as np
import pyebur128
import pyloudnorm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.demo import DEMO_SAMPLE_RATE, DEMO_SECONDS, demo_mix
from dsp.errors import ParameterError, SampleRateError

SR = DEMO_SAMPLE_RATE
MINUS_3_DBFS = 10.0 ** (-3.0 / 20.0)
A_MINOR_PITCH_CLASSES = (0, 2, 4, 5, 7, 9, 11)  # C D E F G A B


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return demo_mix()


def integrated_lufs(x: np.ndarray, sr: int) -> float:
    return pyloudnorm.Meter(sr, filter_class="DeMan").integrated_loudness(x.T.astype(np.float64))


def short_term_lufs(x: np.ndarray, sr: int, hop_s: float = 1.0) -> np.ndarray:
    """3-s short-term loudness every ``hop_s`` (one 3-s gating block per window)."""
    meter = pyloudnorm.Meter(sr, filter_class="DeMan", block_size=3.0)
    w, h = int(3 * sr), int(hop_s * sr)
    return np.array([meter.integrated_loudness(x[:, s:s + w].T.astype(np.float64))
                     for s in range(0, x.shape[1] - w + 1, h)])


def octave_density_db(x: np.ndarray, sr: int, lo_hz: float, hi_hz: float) -> float:
    """Energy per octave between ``lo_hz`` and ``hi_hz`` in dB: equal in every band for pink noise."""
    power = np.abs(np.fft.rfft(x.astype(np.float64), axis=1)) ** 2
    f = np.fft.rfftfreq(x.shape[1], 1.0 / sr)
    return 10.0 * np.log10(power[:, (f >= lo_hz) & (f < hi_hz)].sum() / np.log2(hi_hz / lo_hz))


def pink_noise(n: int, sr: int, seed: int = 7) -> np.ndarray:
    white = np.fft.rfft(np.random.default_rng(seed).standard_normal((2, n)), axis=1)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = f[1]
    return np.fft.irfft(white / np.sqrt(f), n=n, axis=1)


# --- determinism and form ----------------------------------------------------------------------

def test_same_arguments_give_bit_identical_output(song):
    again = demo_mix(SR, seconds=DEMO_SECONDS, seed=2026)
    assert again.tobytes() == song.tobytes()


def test_different_seed_gives_different_output():
    a = demo_mix(SR, seconds=6.0, seed=1)
    b = demo_mix(SR, seconds=6.0, seed=2)
    assert a.shape == b.shape
    assert not np.array_equal(a, b)
    # Only noise and humanisation change: the song itself (level, notes) stays the same.
    assert integrated_lufs(a, SR) == pytest.approx(integrated_lufs(b, SR), abs=0.5)


@pytest.mark.parametrize(("rate", "seconds"), [(44100, 40.0), (48000, 12.0), (22050, 40.0), (96000, 4.0)])
def test_shape_dtype_finite_and_peak(rate, seconds):
    x = demo_mix(rate, seconds=seconds)
    assert x.shape == (2, round(seconds * rate))
    assert x.dtype == np.float32
    assert x.flags.c_contiguous
    assert np.isfinite(x).all()
    assert 0.0 < np.max(np.abs(x)) < MINUS_3_DBFS


@settings(max_examples=8, deadline=None)
@given(rate=st.integers(22050, 192000), seconds=st.floats(1.0, 2.5))
def test_any_rate_and_short_length(rate, seconds):
    x = demo_mix(rate, seconds=seconds)
    n = round(seconds * rate)
    assert x.shape == (2, n)
    assert np.isfinite(x).all()
    assert np.max(np.abs(x)) < MINUS_3_DBFS
    # The last 10 ms fade out: the final sample is silent, the final millisecond nearly so.
    assert np.all(x[:, -1] == 0.0)
    assert np.max(np.abs(x[:, -rate // 1000:])) < 0.1 * np.max(np.abs(x))


def test_shorter_render_is_a_prefix_of_the_song(song):
    short = demo_mix(SR, seconds=12.0)
    keep = short.shape[1] - int(0.010 * SR)  # before the short render's fade-out
    assert np.array_equal(short[:, :keep], song[:, :keep])


def test_song_loops_after_40_seconds(song):
    longer = demo_mix(SR, seconds=50.0)
    assert longer.shape == (2, 50 * SR)
    assert np.isfinite(longer).all()
    st_lufs = short_term_lufs(longer, SR)
    chorus = st_lufs[34]  # 34-37 s
    second_intro = st_lufs[42]  # 42-45 s: the intro again, no drums
    assert second_intro < chorus - 4.0
    assert second_intro == pytest.approx(st_lufs[2], abs=1.0)


def test_nothing_near_nyquist_at_high_rate():
    x = demo_mix(96000, seconds=6.0).astype(np.float64)
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2
    f = np.fft.rfftfreq(x.shape[1], 1.0 / 96000)
    assert power[:, f > 20000].sum() < 1e-5 * power.sum()  # below -50 dB


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sample_rate": 8000}, SampleRateError),
        ({"sample_rate": 384000}, SampleRateError),
        ({"sample_rate": 44100.0}, SampleRateError),
        ({"seconds": 0.5}, ParameterError),
        ({"seconds": float("nan")}, ParameterError),
        ({"seed": -1}, ParameterError),
        ({"seed": 1.5}, ParameterError),
    ],
)
def test_refuses_bad_arguments(kwargs, error):
    with pytest.raises(error):
        demo_mix(**kwargs)


# --- the problems a mastering engineer should find ------------------------------------------------

def test_quiet_with_headroom_and_transients(song):
    lufs = integrated_lufs(song, SR)
    peak_db = 20.0 * np.log10(np.max(np.abs(song)))
    assert -24.0 <= lufs <= -20.0
    assert peak_db < -3.0
    # A limited master has a peak-to-loudness ratio of about 8-10 dB; the raw drums keep it high.
    assert peak_db - lufs >= 14.0


def test_dull_top_and_muddy_low_mid_against_pink(song):
    """Band energy per octave relative to 1-2 kHz.

    Pink noise scores 0 dB in both measures (checked here, so the measure itself is sound);
    a balanced mix stays within a few dB of pink (its tilt is gentle: a few dB up at
    250-400 Hz, several dB down at 8-16 kHz). The demo must be clearly outside that: at
    least 8 dB of extra low-mid and at least 18 dB less top. It measures about +11 and
    -24 dB; without its 300 Hz bump the low-mid falls to +7 dB and this test fails.
    """
    def measures(x):
        ref = octave_density_db(x, SR, 1000.0, 2000.0)
        return (octave_density_db(x, SR, 250.0, 400.0) - ref,
                octave_density_db(x, SR, 8000.0, 16000.0) - ref)

    pink_mud, pink_top = measures(pink_noise(song.shape[1], SR))
    assert abs(pink_mud) < 0.5 and abs(pink_top) < 0.5
    mud, top = measures(song)
    assert mud >= pink_mud + 8.0
    assert top <= pink_top - 18.0


def test_loudness_changes_with_the_arrangement(song):
    st_lufs = short_term_lufs(song, SR)
    assert st_lufs.max() - st_lufs.min() >= 3.0
    intro = st_lufs[0:6].mean()  # windows inside 0-8 s: pad and bass only
    verse = st_lufs[9:20].mean()  # 9-23 s
    chorus = st_lufs[25:].mean()  # 25-40 s
    assert intro + 2.0 < verse < chorus - 1.5


def test_loudness_range_is_realistic(song):
    state = pyebur128.R128State(2, SR, pyebur128.MeasurementMode.MODE_LRA)
    state.add_frames(np.ascontiguousarray(song.T, dtype=np.float64).ravel(), song.shape[1])
    assert 4.0 <= pyebur128.get_loudness_range(state) <= 8.0


def test_stereo_image_is_neither_mono_nor_unrelated(song):
    corr = np.corrcoef(song.astype(np.float64))[0, 1]
    assert 0.2 <= corr <= 0.9
    # The low end (kick, bass) is centred: below 100 Hz the channels are nearly the same.
    spec = np.fft.rfft(song.astype(np.float64), axis=1)
    f = np.fft.rfftfreq(song.shape[1], 1.0 / SR)
    low = (f > 30.0) & (f < 100.0)
    side = np.sum(np.abs(spec[0, low] - spec[1, low]) ** 2)
    mid = np.sum(np.abs(spec[0, low] + spec[1, low]) ** 2)
    assert side < 0.1 * mid


def test_intro_notes_are_in_a_minor(song):
    """Tonal energy of the drum-less intro falls on A-minor pitch classes, near equal temperament."""
    seg = song[:, : 8 * SR].astype(np.float64).sum(axis=0) * np.hanning(8 * SR)
    power = np.abs(np.fft.rfft(seg)) ** 2
    f = np.fft.rfftfreq(seg.size, 1.0 / SR)
    band = (f > 50.0) & (f < 2000.0)
    power, f = power[band], f[band]
    semitones = 12.0 * np.log2(f / 440.0) + 69.0
    near_note = np.abs(semitones - np.round(semitones)) < 0.3
    in_scale = np.isin(np.round(semitones).astype(int) % 12, A_MINOR_PITCH_CLASSES)
    tonal = power[near_note].sum()
    assert tonal > 0.9 * power.sum()  # noise would give about 60 %
    assert power[near_note & in_scale].sum() > 0.95 * tonal  # random notes would give about 58 %
