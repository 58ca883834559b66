"""Long-term 1/3-octave spectrum: calibration, leakage, noise slopes, stereo measures."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from dsp.errors import (
    ChannelCountError,
    EmptyAudioError,
    NonFiniteAudioError,
    ParameterError,
    SampleRateError,
)
from dsp.measure import spectrum as S


def sine(freq_hz, seconds, sample_rate, amplitude=1.0):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def pink(n, rng, channels=2, *, sample_rate=44100, lo_hz=20.0, hi_hz=20000.0):
    """Pink noise (power density ~ 1/f) confined to lo_hz..hi_hz, 0.1 rms per channel."""
    spec = np.fft.rfft(rng.standard_normal((channels, n)), axis=-1)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spec *= np.where((f >= lo_hz) & (f <= hi_hz), 1.0 / np.sqrt(np.maximum(f, 1e-9)), 0.0)
    y = np.fft.irfft(spec, n, axis=-1)
    return 0.1 * y / np.std(y, axis=-1, keepdims=True)


def band_index(result, freq_hz):
    return int(np.argmin(np.abs(np.log(result.centers_hz / freq_hz))))


def test_band_centres_and_labels():
    c = S.THIRD_OCTAVE_CENTERS_HZ
    assert c.size == 31 == len(S.THIRD_OCTAVE_LABELS)
    assert c[17] == 1000.0 and S.THIRD_OCTAVE_LABELS[17] == "1k"
    assert c[0] == pytest.approx(19.953, abs=1e-3) and S.THIRD_OCTAVE_LABELS[0] == "20"
    assert c[-1] == pytest.approx(19952.6, abs=0.1) and S.THIRD_OCTAVE_LABELS[-1] == "20k"
    np.testing.assert_allclose(c[1:] / c[:-1], 10 ** 0.1)
    # Nominal labels are within 3 % of the exact centres.
    nominal = [float(s[:-1]) * 1000 if s.endswith("k") else float(s) for s in S.THIRD_OCTAVE_LABELS]
    np.testing.assert_allclose(nominal, c, rtol=0.03)


def test_default_nfft_gives_about_5_to_6_hz_bins():
    assert S.default_nfft(44100) == S.default_nfft(48000) == 8192
    assert S.default_nfft(96000) == 16384 and S.default_nfft(22050) == 4096
    for sr in (22050, 32000, 44100, 48000, 88200, 96000, 192000):
        assert 2.9 < sr / S.default_nfft(sr) <= 6.0


@pytest.mark.parametrize("freq_hz", [125.0, 1000.0, 3150.0, 10000.0, 16000.0])
def test_full_scale_sine_reads_0_db_in_its_own_band(freq_hz):
    sr = 44100
    c = S.THIRD_OCTAVE_CENTERS_HZ
    freq = c[np.argmin(np.abs(np.log(c / freq_hz)))]  # the exact centre of the nominal band
    s = sine(freq, 3.0, sr)
    r = S.third_octave_spectrum(np.stack([s, s]), sr)
    k = band_index(r, freq)
    assert int(np.argmax(r.level_db)) == k
    assert r.level_db[k] == pytest.approx(0.0, abs=0.05)
    far = np.abs(np.arange(r.level_db.size) - k) >= 2
    assert np.all(r.level_db[far] <= r.level_db[k] - 60.0)
    assert r.mid_db[k] == pytest.approx(0.0, abs=0.05)
    # A sine in one channel only has half the channel-average power.
    one = S.third_octave_spectrum(np.stack([s, np.zeros_like(s)]), sr)
    assert one.level_db[k] == pytest.approx(-3.01, abs=0.05)


def test_hann_window_keeps_bass_out_of_the_treble():
    # A rectangular window (Matchering) leaks a 60 Hz tone into every treble band.
    sr = 44100
    s = sine(60.0, 5.0, sr, amplitude=0.5)
    r = S.third_octave_spectrum(np.stack([s, s]), sr)
    assert r.level_db[band_index(r, 8000)] <= r.level_db[band_index(r, 63)] - 80.0


def test_pink_noise_is_flat_per_third_octave():
    r = S.third_octave_spectrum(pink(44100 * 20, np.random.default_rng(1)), 44100)
    sel = (r.centers_hz >= 50) & (r.centers_hz <= 10000)
    level = r.level_db[sel]
    assert np.all(np.abs(level - level.mean()) <= 1.5)
    # Absolute level: the bands hold all the power of a 0.1 rms signal (-17 dB re full-scale sine).
    assert S.band_energy_db(r, 20, 20000) == pytest.approx(10 * np.log10(2 * 0.01), abs=0.1)


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_white_noise_rises_one_db_per_band(sample_rate):
    rng = np.random.default_rng(sample_rate)
    x = 0.1 * rng.standard_normal((2, sample_rate * 10))
    r = S.third_octave_spectrum(x, sample_rate)
    sel = (r.centers_hz >= 100) & (r.centers_hz <= 16000)
    steps = np.diff(r.level_db[sel])
    assert steps.mean() == pytest.approx(1.0, abs=0.05)
    assert np.all(np.abs(steps - 1.0) <= 0.5)
    # Calibration: band power = variance * bandwidth / (fs / 2), shown re full-scale sine.
    k = band_index(r, 1000)
    bandwidth = 1000.0 * (10 ** 0.05 - 10 ** -0.05)
    assert r.level_db[k] == pytest.approx(10 * np.log10(2 * 0.01 * bandwidth / (sample_rate / 2)), abs=0.3)


def test_matches_scipy_welch_over_many_batches():
    # 40 s gives 430 frames: more than one batch of 256.
    sr = 44100
    rng = np.random.default_rng(9)
    x = pink(sr * 40, rng) * np.linspace(0.2, 1.0, sr * 40)
    r = S.third_octave_spectrum(x, sr)
    assert r.frames > S.BATCH_FRAMES and r.nfft == 8192
    f, psd = scipy.signal.welch(x.astype(np.float32).astype(np.float64), sr, window="hann", nperseg=8192,
                                noverlap=4096, detrend=False, axis=-1)
    # Reference band power: the same fractional bin-to-band shares, applied to Welch's PSD.
    weights, n_bands = S._band_weights(sr, 8192)
    df = f[1] - f[0]
    slice_width = np.full(f.size, df)
    slice_width[[0, -1]] = df / 2
    band = (weights @ (psd * slice_width).T).T
    want = 10 * np.log10(2 * band.mean(axis=0))
    np.testing.assert_allclose(r.level_db, want, atol=0.01)


def test_mono_and_identical_channels():
    rng = np.random.default_rng(2)
    mono = pink(44100 * 5, rng, channels=1)
    r1 = S.third_octave_spectrum(mono, 44100)
    assert np.all(r1.correlation == 1.0) and r1.correlation_overall == 1.0
    assert np.all(r1.side_mid_ratio_db == -120.0) and np.all(r1.side_db == S.LEVEL_FLOOR_DB)
    np.testing.assert_allclose(r1.mid_db, r1.level_db)
    r2 = S.third_octave_spectrum(np.vstack([mono, mono]), 44100)
    np.testing.assert_allclose(r2.level_db, r1.level_db, atol=1e-6)
    np.testing.assert_allclose(r2.correlation, 1.0, atol=1e-6)
    assert np.all(r2.side_mid_ratio_db <= -100.0)
    assert r2.correlation_overall == pytest.approx(1.0, abs=1e-6)


def test_polarity_inverted_channels():
    rng = np.random.default_rng(3)
    left = pink(44100 * 5, rng, channels=1)[0]
    r = S.third_octave_spectrum(np.stack([left, -left]), 44100)
    np.testing.assert_allclose(r.correlation, -1.0, atol=1e-6)
    assert r.correlation_overall == pytest.approx(-1.0, abs=1e-6)
    assert np.all(r.side_mid_ratio_db >= 100.0)
    np.testing.assert_allclose(r.side_db, r.level_db, atol=1e-6)


def test_uncorrelated_noise():
    r = S.third_octave_spectrum(pink(44100 * 20, np.random.default_rng(4)), 44100)
    assert abs(r.correlation_overall) < 0.01
    upper = r.centers_hz >= 200
    assert np.all(np.abs(r.correlation[upper]) < 0.1)
    assert np.all(np.abs(r.correlation) < 0.3)  # the lowest bands average only a few bins
    assert np.all(np.abs(r.side_mid_ratio_db[upper]) < 1.0)


def test_partly_correlated_stereo():
    # L = a + b/2, R = a - b/2 with independent equal-power a, b: mid = a, side = b/2, so
    # side/mid = -6 dB and correlation = (1 - 1/4) / (1 + 1/4) = 0.6.
    rng = np.random.default_rng(5)
    a, b = pink(44100 * 10, rng)
    r = S.third_octave_spectrum(np.stack([a + 0.5 * b, a - 0.5 * b]), 44100)
    upper = r.centers_hz >= 200
    assert np.all(np.abs(r.side_mid_ratio_db[upper] - 20 * np.log10(0.5)) < 1.0)
    want = (1 - 0.25) / (1 + 0.25)
    assert r.correlation_overall == pytest.approx(want, abs=0.02)
    assert np.all(np.abs(r.correlation[upper] - want) < 0.1)


@pytest.mark.parametrize("sample_rate, bands", [(22050, 28), (44100, 31), (48000, 31), (96000, 31)])
def test_sample_rates_agree(sample_rate, bands):
    # The same pink noise (20 Hz to 10 kHz) at different rates reads the same band levels,
    # down to the 31.5 Hz band, which spans only about 3 bins.
    x = pink(sample_rate * 10, np.random.default_rng(6), sample_rate=sample_rate, hi_hz=10000.0)
    r = S.third_octave_spectrum(x, sample_rate)
    assert r.centers_hz.size == bands == r.level_db.size == len(r.labels)
    assert r.centers_hz[-1] < sample_rate / 2
    assert bands == 31 or r.centers_hz[-1] * 10 ** 0.1 > sample_rate / 2  # all bands below Nyquist
    assert r.nfft == S.default_nfft(sample_rate)
    sel = (r.centers_hz >= 31) & (r.centers_hz <= 8000)
    expected = 10 * np.log10(2 * 0.01 / 27)  # 27 bands of 20 Hz to 10 kHz share the power equally
    np.testing.assert_allclose(r.level_db[sel], expected, atol=1.0)


def test_short_input_is_one_frame():
    s = sine(1000.0, 0.1, 44100)
    r = S.third_octave_spectrum(np.stack([s, s]), 44100)
    assert r.frames == 1
    assert r.level_db[band_index(r, 1000)] == pytest.approx(0.0, abs=0.3)


def test_explicit_nfft():
    s = sine(1000.0, 2.0, 48000)
    r = S.third_octave_spectrum(np.stack([s, s]), 48000, nfft=2048)
    assert r.nfft == 2048 and r.frames == 1 + (96000 - 2048) // 1024
    assert r.level_db[band_index(r, 1000)] == pytest.approx(0.0, abs=0.1)


def test_band_energy_db():
    s = sine(1000.0, 2.0, 44100, amplitude=0.5)
    r = S.third_octave_spectrum(np.stack([s, s]), 44100)
    assert S.band_energy_db(r, 500, 2000) == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert S.band_energy_db(r, 2500, 20000) < -100
    silent_side = S.band_energy_db(r, 500, 2000, component="side")
    assert silent_side == pytest.approx(S.LEVEL_FLOOR_DB + 10 * np.log10(7))  # 7 bands at the floor
    with pytest.raises(ParameterError):
        S.band_energy_db(r, 2000, 500)
    with pytest.raises(ParameterError):
        S.band_energy_db(r, 1010, 1100)
    with pytest.raises(ParameterError):
        S.band_energy_db(r, 500, 2000, component="left")


def test_refusals():
    with pytest.raises(ChannelCountError):
        S.third_octave_spectrum(np.zeros((3, 10000)), 44100)
    with pytest.raises(EmptyAudioError):
        S.third_octave_spectrum(np.zeros((2, 0)), 44100)
    with pytest.raises(SampleRateError):
        S.third_octave_spectrum(np.zeros((2, 10000)), 100)
    with pytest.raises(ParameterError):
        S.third_octave_spectrum(np.zeros((2, 10000)), 44100, nfft=1001)
    bad = np.zeros((2, 20000))
    bad[0, 5000] = np.inf
    with pytest.raises(NonFiniteAudioError):
        S.third_octave_spectrum(bad, 44100)


def test_result_is_frozen():
    r = S.third_octave_spectrum(np.zeros((2, 10000)), 44100)
    assert np.all(r.level_db == S.LEVEL_FLOOR_DB) and np.all(r.correlation == 1.0)
    with pytest.raises(AttributeError):
        r.nfft = 4
    with pytest.raises(ValueError):
        r.level_db[0] = 0.0
