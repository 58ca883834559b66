"""LR4 band splitting: flat sum, -6 dB crossovers, slopes, streaming, validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.errors import ParameterError
from dsp.process import biquad, crossover
from dsp.process.crossover import CrossoverState, check_crossovers, split_bands

RATES = (44100, 48000, 96000)
SETS = ((1000.0,), (150.0, 2500.0), (120.0, 1000.0, 6000.0), (60.0, 250.0, 1000.0, 4000.0))


def impulse_bands(sample_rate, crossovers, n=1 << 16, channels=1):
    x = np.zeros((channels, n))
    x[:, 0] = 1.0
    bands, _ = split_bands(x, sample_rate, crossovers)
    return bands


def gain_db_at(h: np.ndarray, sample_rate: int, freq_hz: float) -> float:
    """Magnitude (dB) of an impulse response at one exact frequency (DTFT)."""
    n = np.arange(h.shape[-1])
    return 20 * np.log10(abs(h @ np.exp(-2j * np.pi * freq_hz / sample_rate * n)))


def reference_bands(x, sample_rate, crossovers):
    """Independent LR4 tree from scipy Butterworth designs (HP designed directly, not as AP - LP)."""
    def lr4(f, kind):
        return np.vstack([scipy.signal.butter(2, f, kind, fs=sample_rate, output="sos")] * 2)

    lps = [lr4(f, "low") for f in crossovers]
    hps = [lr4(f, "high") for f in crossovers]
    aps = [biquad.all_pass(f, biquad.BUTTERWORTH_Q, sample_rate)[None, :] for f in crossovers]
    bands, h = [], x
    for k in range(len(crossovers)):
        low = scipy.signal.sosfilt(lps[k], h)
        for j in range(k + 1, len(crossovers)):
            low = scipy.signal.sosfilt(aps[j], low)
        bands.append(low)
        h = scipy.signal.sosfilt(hps[k], h)
    return [*bands, h]


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("crossovers", SETS[:3])
def test_sum_of_bands_is_flat(sample_rate, crossovers):
    bands = impulse_bands(sample_rate, crossovers)
    assert len(bands) == len(crossovers) + 1
    total = np.sum(bands, axis=0)[0]
    spec = np.fft.rfft(total)
    freqs = np.fft.rfftfreq(total.size, 1 / sample_rate)
    sel = (freqs >= 20) & (freqs <= 20000)
    assert np.max(np.abs(20 * np.log10(np.abs(spec[sel])))) < 0.1
    # ... and it is exactly the cascade of the crossovers' all-passes (same phase path)
    aps = np.vstack([biquad.all_pass(f, biquad.BUTTERWORTH_Q, sample_rate) for f in crossovers])
    expected = scipy.signal.sosfilt(aps, np.eye(1, total.size)[0])
    np.testing.assert_allclose(total, expected, atol=1e-12)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("crossovers", SETS)
def test_matches_independent_lr4_tree(sample_rate, crossovers, rng):
    x = rng.standard_normal((2, 8000))
    bands, _ = split_bands(x, sample_rate, crossovers)
    for got, want in zip(bands, reference_bands(x, sample_rate, crossovers), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("sample_rate", RATES)
def test_each_band_is_minus_6_db_at_its_crossovers(sample_rate):
    crossovers = (100.0, 1000.0, 8000.0)  # >= 3 octaves apart so neighbours do not interfere
    bands = impulse_bands(sample_rate, crossovers)
    for k, f in enumerate(crossovers):
        for b in (k, k + 1):
            assert gain_db_at(bands[b][0], sample_rate, f) == pytest.approx(-6.02, abs=0.1)


def test_lr4_slopes_and_passbands():
    sample_rate = 48000
    low, high = impulse_bands(sample_rate, (500.0,))
    # 24 dB/octave: two octaves from the crossover an LR4 section is down 48.2 dB
    assert gain_db_at(low[0], sample_rate, 2000.0) == pytest.approx(-48.2, abs=1.0)
    assert gain_db_at(high[0], sample_rate, 125.0) == pytest.approx(-48.2, abs=0.5)
    assert gain_db_at(low[0], sample_rate, 50.0) > -0.01
    assert gain_db_at(high[0], sample_rate, 5000.0) > -0.01


@pytest.mark.parametrize("crossovers", SETS)
@pytest.mark.parametrize("channels", [1, 2, 5, 8])
def test_blockwise_equals_whole(crossovers, channels, rng):
    x = rng.standard_normal((channels, 6000))
    whole, _ = split_bands(x, 44100, crossovers)
    state = None
    parts = []
    for a, b in [(0, 0), (0, 1), (1, 1000), (1000, 1000), (1000, 4093), (4093, 6000)]:
        bands, state = split_bands(x[:, a:b], 44100, crossovers, state)
        assert len(bands) == len(crossovers) + 1 and all(band.shape == (channels, b - a) for band in bands)
        parts.append(np.stack(bands))
    np.testing.assert_array_equal(np.concatenate(parts, axis=-1), np.stack(whole))


def test_long_multichannel_blocks_match_per_channel_processing(rng):
    # every channel must equal its own mono result (channels are independent)
    x = rng.standard_normal((3, 70000))
    bands, _ = split_bands(x, 48000, (200.0, 3000.0))
    for c in range(3):
        mono, _ = split_bands(x[c:c + 1], 48000, (200.0, 3000.0))
        for got, want in zip(bands, mono, strict=True):
            np.testing.assert_array_equal(got[c:c + 1], want)


@pytest.mark.parametrize("crossovers", SETS[:3])
def test_unrolled_kernels_equal_the_generic_one(crossovers, rng):
    x = rng.standard_normal((2, 3000))
    lp, ap = crossover._coefficients(crossovers, 48000)
    outs, states = [], []
    for kernel in (crossover._KERNELS[len(crossovers)], crossover._kernel_any):
        z = np.full((2, crossover._n_signals(len(crossovers)), 2), 0.25)  # non-zero start state
        out = np.empty((len(crossovers) + 1, *x.shape))
        kernel(x, lp, ap, z, out, 0, 2)
        outs.append(out)
        states.append(z)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(states[0], states[1])


def test_no_crossovers_gives_a_copy(rng):
    x = rng.standard_normal((2, 100))
    bands, state = split_bands(x, 48000, ())
    assert len(bands) == 1
    np.testing.assert_array_equal(bands[0], x)
    assert bands[0] is not x and bands[0].dtype == np.float64
    assert isinstance(state, CrossoverState)


def test_input_is_not_modified_and_output_is_float64(rng):
    x = rng.standard_normal((2, 500)).astype(np.float32)
    before = x.copy()
    bands, _ = split_bands(x, 48000, (1000.0,))
    np.testing.assert_array_equal(x, before)
    assert all(b.dtype == np.float64 for b in bands)


def test_state_is_not_mutated(rng):
    x = rng.standard_normal((1, 1000))
    _, state = split_bands(x, 48000, (300.0, 3000.0))
    a, _ = split_bands(x, 48000, (300.0, 3000.0), state)
    b, _ = split_bands(x, 48000, (300.0, 3000.0), state)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


@pytest.mark.parametrize("bad", [
    (1000.0, 500.0),          # descending
    (500.0, 500.0),           # repeated
    (19.0,),                  # below 20 Hz
    (21600.0,),               # >= 0.45 * 48000
    (1000.0, 1200.0),         # closer than 1/3 octave
    (float("nan"),),
    (True,),
    ("100",),
])
def test_bad_crossovers_are_refused(bad):
    with pytest.raises(ParameterError):
        check_crossovers(bad, 48000)
    with pytest.raises(ParameterError):
        split_bands(np.zeros((1, 10)), 48000, bad)


def test_good_crossovers_are_accepted():
    check_crossovers((), 44100)
    check_crossovers((20.0, 20.0 * 2 ** (1 / 3), 19000.0), 44100)


def test_state_from_other_settings_is_refused(rng):
    _, state = split_bands(rng.standard_normal((2, 10)), 48000, (1000.0,))
    with pytest.raises(ParameterError):
        split_bands(np.zeros((2, 10)), 48000, (2000.0,), state)
    with pytest.raises(ParameterError):
        split_bands(np.zeros((1, 10)), 48000, (1000.0,), state)
    with pytest.raises(ParameterError):
        split_bands(np.zeros((2, 10)), 44100, (1000.0,), state)


@st.composite
def crossover_sets(draw):
    sample_rate = draw(st.sampled_from(RATES))
    count = draw(st.integers(1, 4))
    lo = np.log2(20.0)
    hi = np.log2(0.45 * sample_rate * 0.999)
    # positions in octaves with at least 1/3 octave between neighbours
    slack = hi - lo - (count - 1) / 3
    gaps = draw(st.lists(st.floats(0.0, 1.0), min_size=count + 1, max_size=count + 1))
    gaps = np.asarray(gaps) + 1e-3
    offsets = np.cumsum(gaps)[:-1] / gaps.sum() * slack
    octs = lo + offsets + np.arange(count) / 3
    return sample_rate, tuple(float(2 ** o) for o in octs)


@settings(max_examples=30, deadline=None)
@given(crossover_sets())
def test_random_crossover_sets_sum_flat(case):
    sample_rate, crossovers = case
    check_crossovers(crossovers, sample_rate)
    bands = impulse_bands(sample_rate, crossovers, n=1 << 15)
    spec = np.fft.rfft(np.sum(bands, axis=0)[0])
    freqs = np.fft.rfftfreq(1 << 15, 1 / sample_rate)
    sel = (freqs >= 20) & (freqs <= 20000)
    assert np.max(np.abs(20 * np.log10(np.abs(spec[sel])))) < 0.1
    # both bands meeting at a crossover are at most -6.02 dB there (other sections only subtract)
    for k, f in enumerate(crossovers):
        assert gain_db_at(bands[k][0], sample_rate, f) < -6.0
        assert gain_db_at(bands[k + 1][0], sample_rate, f) < -6.0
