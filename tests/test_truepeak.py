"""True peak: agreement with an independent 8x reference, physical cases, streaming."""

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dsp.measure.truepeak import sample_peak_db, true_peak_dbtp, true_peak_envelope
from tests.conftest import sine


def reference_tp_db(x: np.ndarray, factor: int) -> float:
    """Independent reference: scipy's polyphase resampler with the meter's design (Kaiser 5,
    24 zero crossings each side), whole signal at once."""
    h = ss.firwin(48 * factor + 1, 1.0 / factor, window=("kaiser", 5.0))
    return float(20 * np.log10(np.abs(ss.resample_poly(x.astype(np.float64), factor, 1, axis=-1, window=h)).max()))


@pytest.mark.parametrize("factor", [4, 8])
def test_matches_resample_poly_on_noise(rng, factor):
    x = (rng.standard_normal((2, 20000)) * 0.3).astype(np.float32)
    assert true_peak_dbtp(x, factor=factor) == pytest.approx(reference_tp_db(x, factor), abs=0.01)


@pytest.mark.parametrize(("div", "phase_deg", "expected"), [(4, 0, -6.0), (4, 45, -6.0), (6, 60, -6.0), (8, 67.5, -6.0)])
def test_intersample_sines(div, phase_deg, expected):
    # A -6 dBFS sine at fs/div whose samples miss the crest: sample peak is lower, true peak is -6.0.
    sr = 48000
    x = sine(sr / div, sr, 1.0, amp=10 ** (-6 / 20), phase=np.deg2rad(phase_deg), fade_s=0.05)
    assert true_peak_dbtp(x, factor=8) == pytest.approx(expected, abs=0.05)
    if phase_deg == 45:
        assert sample_peak_db(x) < -8.9  # the samples sit 3 dB under the crest


def test_fs4_45_at_full_scale_reads_plus_3():
    sr = 44100
    x = sine(sr / 4, sr, 1.0, amp=1.0, phase=np.pi / 4, fade_s=0.05)
    x = x / np.abs(x).max()  # sample peak exactly 0 dBFS
    assert true_peak_dbtp(x, factor=8) == pytest.approx(3.01, abs=0.03)


@given(arrays(np.float32, (2, 3000), elements={"min_value": -1, "max_value": 1, "allow_nan": False}))
def test_true_peak_at_least_sample_peak(x):
    assert true_peak_dbtp(x, factor=4) >= sample_peak_db(x) - 1e-6


@given(st.integers(1, 5000), st.integers(1000, 70000))
def test_chunking_does_not_change_the_envelope(chunk, n):
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    whole = true_peak_envelope(x, factor=8, chunk=1 << 20)
    assert np.array_equal(true_peak_envelope(x, factor=8, chunk=chunk), whole)


def test_envelope_is_max_over_channels(rng):
    x = (rng.standard_normal((2, 5000)) * 0.1).astype(np.float32)
    x[1] *= 5
    env = true_peak_envelope(x)
    assert np.array_equal(env, np.maximum(true_peak_envelope(x[:1]), true_peak_envelope(x[1:])))
    assert np.mean(env == true_peak_envelope(x[1:])) > 0.9  # the louder channel dominates


def test_empty_and_silent():
    assert true_peak_dbtp(np.zeros((2, 0), np.float32)) == -200.0
    assert true_peak_dbtp(np.zeros((2, 100), np.float32)) == -200.0


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_interpolator_is_scipys_resample_poly_filter(factor):
    from dsp.measure.truepeak import kaiser_lowpass

    want = ss.firwin(48 * factor + 1, 1.0 / factor, window=("kaiser", 5.0))
    assert np.allclose(kaiser_lowpass(48 * factor + 1, 1.0 / factor), want, atol=1e-15)


# --- the limiter's detector against the meters users check with ------------------------------------

def ebur128_tp_db(x: np.ndarray, sr: int) -> float:
    """libebur128 (through pyebur128): the meter most tools embed."""
    import pyebur128

    st_ = pyebur128.R128State(x.shape[0], sr, pyebur128.MeasurementMode.MODE_TRUE_PEAK)
    st_.add_frames(np.ascontiguousarray(x.T, dtype=np.float64).ravel(), x.shape[1])
    return float(20 * np.log10(max(pyebur128.get_true_peak(st_, c) for c in range(x.shape[0]))))


def ideal_tp_db(x: np.ndarray) -> float:
    """An ideal band-limited reference: 16x with a long filter (Kaiser 8, 64 zero crossings)."""
    h = ss.firwin(2 * 64 * 16 + 1, 1.0 / 16, window=("kaiser", 8.0))
    return float(20 * np.log10(np.abs(ss.resample_poly(x.astype(np.float64), 16, 1, axis=-1, window=h)).max()))


def adversarial_band_limited(sr: int, seed: int, n: int = 4096) -> dict[str, np.ndarray]:
    """Treble-heavy and adversarial material, band-limited to 0.9 of Nyquist (the detector's stated range)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    lp = ss.firwin(511, 0.9, window=("kaiser", 10.0))
    f = rng.uniform(8000, 0.88 * sr / 2)
    out = {
        "treble_burst": np.sin(2 * np.pi * f * t / sr + rng.uniform(0, 6.3)) * np.exp(-0.5 * ((t - n / 2) / rng.uniform(3, 40)) ** 2),
        "hp_noise": np.convolve(ss.sosfilt(ss.butter(8, 6000 / (sr / 2), "high", output="sos"), rng.standard_normal(n)), lp, "same"),
        "three_sines": sum(np.sin(2 * np.pi * rng.uniform(20, 0.88 * sr / 2) * t / sr + rng.uniform(0, 6.3)) for _ in range(3)),
        "clipped_noise": np.convolve(np.clip(rng.standard_normal(n) * 3, -1, 1), lp, "same"),
        "clicks": np.convolve(np.where(rng.random(n) < 0.003, rng.choice([-1.0, 1.0], n), 0.0), lp, "same"),
    }
    return {k: (v / np.abs(v).max())[None].repeat(2, 0) * np.array([[1.0], [0.7]]) for k, v in out.items()}


@pytest.mark.parametrize("sr", [44100, 48000, 96000])
def test_detector_never_reads_under_libebur128(sr):
    from dsp.measure.truepeak import detector_peak_dbtp

    for seed in range(6):
        for name, x in adversarial_band_limited(sr, seed).items():
            assert detector_peak_dbtp(x, sr) >= ebur128_tp_db(x, sr) - 1e-4, (name, seed)
    # also on full-band material (steps, white noise), where meters disagree most
    x = np.random.default_rng(sr).uniform(-1, 1, (2, 3000))
    assert detector_peak_dbtp(x, sr) >= ebur128_tp_db(x, sr) - 1e-4


@pytest.mark.parametrize("sr", [44100, 48000])
def test_margin_covers_the_detectors_measured_worst_under_read(sr):
    """The limiter's margin is derived from this: the worst under-read of an ideal 16x reference on
    band-limited adversarial material must fit inside it."""
    from dsp.measure.truepeak import detector_peak_dbtp
    from dsp.process.limiter import MARGIN_DB

    worst = max(ideal_tp_db(x) - detector_peak_dbtp(x, sr)
                for seed in range(8) for x in adversarial_band_limited(sr, 100 + seed).values())
    assert worst <= MARGIN_DB - 0.015  # room left for the gain's slope and rounding


def test_detector_reads_at_least_the_meter(rng):
    from dsp.measure.truepeak import detector_envelope

    x = (rng.standard_normal((2, 20000)) * 0.3).astype(np.float32)
    assert np.all(detector_envelope(x, 44100) >= true_peak_envelope(x, factor=8) - 1e-6)


def test_detector_refines_the_8x_grid():
    # a short 20 kHz burst at 44.1 kHz: the 8x grid alone can miss the crest by 0.14 dB
    sr = 44100
    t = np.arange(2048)
    worst = 0.0
    from dsp.measure.truepeak import detector_peak_dbtp

    for ph in np.linspace(0, np.pi, 9):
        x = (np.sin(2 * np.pi * 19000 * t / sr + ph) * np.exp(-0.5 * ((t - 1024) / 30.0) ** 2))[None]
        worst = max(worst, ideal_tp_db(x) - detector_peak_dbtp(x, sr))
    assert worst < 0.02


@pytest.mark.parametrize("sr", [44100, 96000])
@pytest.mark.parametrize("floor_db", [-12.0, -6.0, -3.0, -1.0, 0.5])
def test_detector_floor_is_exact_above_it(sr, floor_db):
    # what the limiter asks for: above the floor the exact reading, at or under it never more than
    # the floor (quiet stretches between loud ones, so whole blocks are skipped and others are not)
    from dsp.measure.truepeak import DETECTOR_FUTURE, DETECTOR_PAST, detector_envelope_with_context

    floor = 10 ** (floor_db / 20)
    for seed in range(3):
        for name, x in adversarial_band_limited(sr, 200 + seed).items():
            x = np.concatenate((x, 0.05 * x, 0.5 * x), axis=1)
            xp = np.pad(x, ((0, 0), (DETECTOR_PAST, DETECTOR_FUTURE))).astype(np.float32)
            exact = detector_envelope_with_context(xp, sr)
            fast = detector_envelope_with_context(xp, sr, floor=floor)
            over = exact > floor
            assert np.array_equal(fast[over], exact[over]), (name, seed)
            assert np.all(fast[~over] <= floor), (name, seed)
            assert np.all(fast <= exact), (name, seed)


def _screen_cases(sr: int, seed: int) -> dict[str, np.ndarray]:
    """Material beyond the detector's stated range too: full-band noise, a Nyquist square, lone
    impulses, clipped and near-Nyquist tones; loud and quiet stretches so some pieces are skipped."""
    rng = np.random.default_rng(seed)
    n = 6000
    t = np.arange(n)
    alt = np.where(t % 2 == 0, 1.0, -1.0)
    cases = {
        "white noise": rng.standard_normal((2, n)) * 0.3,
        "nyquist square": np.vstack((alt, -alt)) * 0.9,
        "impulses": np.zeros((2, n)),
        "near-nyquist tones": np.vstack((np.sin(np.pi * 0.97 * t), np.sin(np.pi * 0.93 * t + 1.0))) * 0.8,
        "clipped tone": np.clip(np.sin(2 * np.pi * 3000 / sr * t) * 3.0, -1, 1)[None].repeat(2, 0),
        "worst-case pattern": np.sign(np.sinc(np.arange(-n // 2, n // 2) / 2.0 + 0.5))[None].repeat(2, 0) * 0.7,
    }
    cases["impulses"][:, rng.integers(0, n, 20)] = rng.choice([-1.0, 1.0], size=(2, 20))
    env = np.repeat(rng.uniform(0.02, 1.0, n // 500 + 1), 500)[:n]
    return {k: v * env for k, v in cases.items()}


@pytest.mark.parametrize("sr", [44100, 48000, 96000])
@pytest.mark.parametrize("floor_db", [-9.0, -3.0, 0.0])
def test_detector_screen_never_skips_a_reading_over_the_floor(sr, floor_db):
    # the detector skips pieces its 2x screen proves stay under the floor; on any material (here
    # well outside the band-limited range it promises to read exactly) a skipped reading must
    # really be under it, and the 8x grid bound it hands the output meter must really bound
    from dsp.measure.truepeak import DETECTOR_FUTURE, DETECTOR_PAST, detector_envelope_with_context, true_peak_envelope

    floor = 10 ** (floor_db / 20)
    for seed in range(2):
        for name, x in _screen_cases(sr, 300 + seed).items():
            xp = np.pad(x, ((0, 0), (DETECTOR_PAST, DETECTOR_FUTURE))).astype(np.float32)
            exact = detector_envelope_with_context(xp, sr)
            grid = np.empty(x.shape[1], dtype=np.float32)
            fast = detector_envelope_with_context(xp, sr, floor=floor, grid_max=grid)
            over = exact > floor
            assert np.array_equal(fast[over], exact[over]), (name, seed)
            assert np.all(fast[~over] <= floor), (name, seed)
            assert np.all(fast <= exact), (name, seed)
            envelope = true_peak_envelope(x.astype(np.float32), factor=8)
            assert np.all(grid >= envelope * (1 - 1e-5)), (name, seed)


@pytest.mark.parametrize("factor", [4, 8])
def test_true_peak_meter_skipping_reads_the_whole_signals_peak(factor):
    # the streaming meter skips pieces it proves cannot pass the peak found; on any material it
    # must read exactly what the whole-signal meter reads, and it must skip some
    from dsp.measure.truepeak import TruePeakMeter

    sr = 48000
    skipped = 0
    for seed in range(2):
        for name, x in _screen_cases(sr, 400 + seed).items():
            x = np.concatenate([x, 0.3 * x, x[:, ::-1]], axis=1).astype(np.float32)
            m = TruePeakMeter(2, factor=factor)
            for i in range(0, x.shape[1], 5000):
                m.feed(x[:, i:i + 5000])
            assert m.finish() == true_peak_dbtp(x, factor=factor), (name, seed)
            skipped += m.skipped
    assert skipped > 0
    # a piece whose peak lies between the 2x grid's points (a quarter-rate sine: grid 0.924, peak
    # 1.0) after a louder-sampled one (0.96): the second must still be measured
    t = np.arange(8192)
    loud = np.sin(2 * np.pi * 0.01 * t) * 0.96
    between = np.sin(np.pi / 2 * t + np.pi / 8)
    x = np.vstack([np.concatenate((loud, between, loud))] * 2).astype(np.float32)
    m = TruePeakMeter(2, factor=factor)
    m.feed(x)
    assert m.finish() == true_peak_dbtp(x, factor=factor) > -0.1  # the quarter-rate sine, not the 0.96
