"""BS.1770-4 / EBU Tech 3341 / Tech 3342 loudness: generated test signals and libebur128 agreement."""

from __future__ import annotations

import functools

import numpy as np
import pyebur128  # noqa: E402 - a declared test dependency: never skip silently
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.errors import ChannelCountError, InputError, NonFiniteAudioError, ParameterError, SampleRateError
from dsp.measure import loudness as L

MODE = pyebur128.MeasurementMode


# --- signal helpers ----------------------------------------------------------------------------

def tone_sequence(levels_dbfs, durations_s, sample_rate=48000, freq_hz=1000.0, channels=2):
    """Phase-continuous sine whose peak level steps through ``levels_dbfs`` (same in every channel)."""
    counts = [int(round(d * sample_rate)) for d in durations_s]
    amp = np.repeat(10.0 ** (np.asarray(levels_dbfs, dtype=np.float64) / 20.0), counts)
    t = np.arange(amp.size) / sample_rate
    return np.tile(amp * np.sin(2 * np.pi * freq_hz * t), (channels, 1))


def shaped_noise(kind, n, rng, channels=2):
    white = rng.standard_normal((channels, n))
    if kind == "white":
        y = white
    elif kind == "pink":
        spec = np.fft.rfft(white, axis=-1)
        f = np.arange(spec.shape[-1], dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f)
        spec[:, 0] = 0.0
        y = np.fft.irfft(spec, n, axis=-1)
    elif kind == "bass":  # mostly below 200 Hz: exercises the high-pass stage
        y = scipy.signal.lfilter([0.02], [1.0, -0.98], white, axis=-1)
    elif kind == "dynamic":  # loud and quiet passages: exercises both gates
        env = np.repeat(10.0 ** (rng.uniform(-45, 0, size=n // 2000 + 1) / 20.0), 2000)[:n]
        y = white * env
    else:
        raise AssertionError(kind)
    return 0.1 * y / np.std(y)


def reference_state(x, sample_rate, mode=MODE.MODE_I | MODE.MODE_LRA):
    state = pyebur128.R128State(x.shape[0], sample_rate, mode)
    state.add_frames(np.ascontiguousarray(x.T, dtype=np.float64).ravel(), x.shape[1])
    return state


# --- K weighting -------------------------------------------------------------------------------

def test_k_weighting_reproduces_bs1770_coefficients_at_48k():
    bs1770 = np.array([
        [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
        [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
    ])
    np.testing.assert_allclose(L.k_weighting_sos(48000), bs1770, rtol=0, atol=1e-6)


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000, 96000, 192000])
def test_k_weighting_response_is_rate_independent(sample_rate):
    freqs = np.array([20.0, 38.0, 100.0, 997.0, 1681.0, 4000.0, 8000.0])
    _, h = scipy.signal.sosfreqz(L.k_weighting_sos(sample_rate), worN=freqs, fs=sample_rate)
    _, h48 = scipy.signal.sosfreqz(L.k_weighting_sos(48000), worN=freqs, fs=48000)
    gain_db = 20 * np.log10(np.abs(h))
    # +0.691 dB at 997 Hz is why BS.1770 subtracts 0.691; ~+4 dB shelf on top; -3 dB near 38 Hz.
    # libebur128's design keeps the high-pass numerator at [1, -2, 1], so the pass-band gain
    # (1 + K/Q + K^2) drifts with the rate: +0.05 dB at 22.05 kHz, -0.03 dB at 192 kHz.
    assert gain_db[3] == pytest.approx(0.691, abs=0.035)
    assert gain_db[6] == pytest.approx(3.99, abs=0.2)
    assert gain_db[0] < -10.0
    tol = np.where(freqs <= sample_rate / 8, 0.06, 0.3)  # bilinear warping only matters near Nyquist
    assert np.all(np.abs(gain_db - 20 * np.log10(np.abs(h48))) <= tol)


def test_k_weighting_returns_a_private_copy():
    sos = L.k_weighting_sos(44100)
    assert sos.shape == (2, 6) and sos.dtype == np.float64
    sos[0, 0] = 99.0  # scipy's sosfilt wants writable arrays; the cache must not care
    assert L.k_weighting_sos(44100)[0, 0] != 99.0


def test_channel_weights():
    assert list(L.channel_weights(2)) == [1.0, 1.0]
    assert list(L.channel_weights(5)) == [1.0, 1.0, 1.0, 1.41, 1.41]
    assert list(L.channel_weights(6)) == [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]
    assert list(L.channel_weights(4)) == [1.0, 1.0, 1.41, 1.41]
    assert list(L.channel_weights(8)) == [1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41, 1.41]
    with pytest.raises(ChannelCountError):
        L.channel_weights(9)


# --- EBU Tech 3341 -----------------------------------------------------------------------------

@pytest.mark.parametrize("level", [-23.0, -33.0])
def test_tech3341_cases_1_and_2_constant_sine(level):
    x = tone_sequence([level], [20.0])
    r = L.measure_loudness(x, 48000)
    assert r.integrated_lufs == pytest.approx(level, abs=0.1)
    # A steady sine: every momentary and short-term value equals the integrated one.
    assert len(r.momentary_lufs) == 200 - 3 and len(r.short_term_lufs) == 200 - 29
    np.testing.assert_allclose(r.momentary_lufs, r.integrated_lufs, atol=0.01)
    np.testing.assert_allclose(r.short_term_lufs, r.integrated_lufs, atol=0.01)
    assert r.max_momentary_lufs == pytest.approx(level, abs=0.1)
    assert r.max_short_term_lufs == pytest.approx(level, abs=0.1)
    assert r.lra_lu == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("levels, durations", [
    ([-36.0, -23.0, -36.0], [10.0, 60.0, 10.0]),  # case 3: relative gate drops the quiet parts
    ([-72.0, -36.0, -23.0, -36.0, -72.0], [10.0, 10.0, 60.0, 10.0, 10.0]),  # case 4: plus the absolute gate
    ([-26.0, -20.0, -26.0], [20.0, 20.1, 20.0]),  # case 5: nothing gated, power mean
])
def test_tech3341_cases_3_to_5_gating(levels, durations):
    x = tone_sequence(levels, durations)
    assert L.integrated_loudness(x, 48000) == pytest.approx(-23.0, abs=0.1)


def test_short_loud_middle_reads_bs1770_value_not_minus_23():
    # Case 3 shortened to 5/10/5 s: the blocks straddling the steps pass the relative gate
    # and pull the result to -23.12, which is the correct BS.1770 answer (libebur128 agrees).
    x = tone_sequence([-36.0, -23.0, -36.0], [5.0, 10.0, 5.0])
    got = L.integrated_loudness(x, 48000)
    assert got == pytest.approx(-23.12, abs=0.01)
    assert got == pytest.approx(pyebur128.get_loudness_global(reference_state(x, 48000)), abs=1e-6)


# --- EBU Tech 3342 -----------------------------------------------------------------------------

@pytest.mark.parametrize("levels, expected_lu", [
    ([-20.0, -30.0], 10.0),
    ([-20.0, -15.0], 5.0),
    ([-40.0, -20.0], 20.0),
    ([-50.0, -35.0, -20.0, -35.0, -50.0], 15.0),  # the -50 dB parts fall under the -20 LU gate
])
def test_tech3342_lra_cases_1_to_4(levels, expected_lu):
    x = tone_sequence(levels, [20.0] * len(levels))
    r = L.measure_loudness(x, 48000)
    assert r.lra_lu == pytest.approx(expected_lu, abs=1.0)  # libebur128's and Tech 3342's tolerance
    assert r.lra_lu == pytest.approx(expected_lu, abs=0.1)  # what this implementation actually achieves


def test_lra_gating_and_percentiles_match_libebur128_exactly():
    # libebur128 takes one short-term value per second; feed ours the same subset.
    rng = np.random.default_rng(11)
    x = shaped_noise("dynamic", 48000 * 40, rng)
    x *= np.repeat(10.0 ** (rng.uniform(-30, 0, size=40) / 20.0), 48000)
    r = L.measure_loudness(x, 48000)
    short_term = np.lib.stride_tricks.sliding_window_view(r.hop_energy, 30).mean(axis=-1)
    want = pyebur128.get_loudness_range(reference_state(x, 48000))
    assert want > 5.0
    assert L.loudness_range_lu(short_term[::10]) == pytest.approx(want, abs=1e-6)
    assert r.lra_lu == pytest.approx(want, abs=1.5)  # 10 Hz short-term sampling differs a little


def test_loudness_range_percentile_rule():
    # Ten short-term values 1 LU apart, all within the gates: nearest rank gives
    # index int(9 * 0.95 + 0.5) = 9 and int(9 * 0.1 + 0.5) = 1 -> 9 - 1 = 8 LU.
    energies = L.lufs_to_power(np.arange(-30.0, -20.0))
    assert L.loudness_range_lu(energies) == pytest.approx(8.0, abs=1e-9)
    assert L.loudness_range_lu(np.array([])) == 0.0
    assert L.loudness_range_lu(L.lufs_to_power(np.array([-80.0, -75.0]))) == 0.0


# --- agreement with libebur128 -----------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("kind", ["white", "pink", "bass", "dynamic"])
def test_integrated_matches_libebur128(kind, sample_rate):
    rng = np.random.default_rng([sample_rate, len(kind)])
    x = shaped_noise(kind, int(sample_rate * 8.05), rng)
    got = L.integrated_loudness(x.astype(np.float32), sample_rate)
    want = pyebur128.get_loudness_global(reference_state(x.astype(np.float32), sample_rate))
    assert got == pytest.approx(want, abs=0.05)
    assert got == pytest.approx(want, abs=1e-6)  # same algorithm: only rounding differs


def test_momentary_and_short_term_match_libebur128_hop_by_hop():
    sample_rate = 44100
    hop = L.hop_samples(sample_rate)
    rng = np.random.default_rng(5)
    x = shaped_noise("dynamic", hop * 45 + 123, rng)
    r = L.measure_loudness(x, sample_rate)
    state = pyebur128.R128State(2, sample_rate, MODE.MODE_S)
    momentary, short_term = [], []
    for k in range(45):
        block = np.ascontiguousarray(x[:, k * hop:(k + 1) * hop].T).ravel()
        state.add_frames(block, hop)
        if k >= 3:
            momentary.append(pyebur128.get_loudness_momentary(state))
        if k >= 29:
            short_term.append(pyebur128.get_loudness_shortterm(state))
    np.testing.assert_allclose(r.momentary_lufs, momentary, atol=1e-6)
    np.testing.assert_allclose(r.short_term_lufs, short_term, atol=1e-6)


def test_surround_weight_and_lfe_match_libebur128():
    rng = np.random.default_rng(8)
    noise = shaped_noise("pink", 48000 * 3, rng, channels=1)[0]
    five = np.zeros((5, noise.size))
    five[0] = noise
    front = L.integrated_loudness(five, 48000)
    five[[0, 3]] = five[[3, 0]]  # same signal in Ls
    assert L.integrated_loudness(five, 48000) - front == pytest.approx(10 * np.log10(1.41), abs=1e-9)
    six = np.zeros((6, noise.size))
    six[[0, 2, 4]] = noise * np.array([[1.0], [0.5], [0.7]])
    with_lfe = six.copy()
    with_lfe[3] = 3.0 * noise  # a loud LFE must not count
    got = L.integrated_loudness(six, 48000)
    assert L.integrated_loudness(with_lfe, 48000) == got
    assert got == pytest.approx(pyebur128.get_loudness_global(reference_state(with_lfe, 48000)), abs=1e-6)


# --- properties --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _gain_signal():
    return shaped_noise("dynamic", 44100 * 6, np.random.default_rng(21)) * 0.5


@settings(max_examples=25, deadline=None)
@given(gain_db=st.floats(min_value=-20.0, max_value=20.0))
def test_gain_shifts_loudness_by_the_same_amount(gain_db):
    x = _gain_signal()
    base = L.measure_loudness(x, 44100)
    r = L.measure_loudness(x * 10.0 ** (gain_db / 20.0), 44100)
    # Every block stays above -70 LUFS, so the gates pick the same blocks.
    assert r.integrated_lufs - base.integrated_lufs == pytest.approx(gain_db, abs=1e-6)
    assert r.max_short_term_lufs - base.max_short_term_lufs == pytest.approx(gain_db, abs=1e-6)
    assert r.lra_lu == pytest.approx(base.lra_lu, abs=1e-6)


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=937), min_size=1, max_size=5),
       channels=st.integers(min_value=1, max_value=6), group=st.sampled_from([1, 5, 8, 32, 100]))
def test_k_weighted_groups_blockwise_equals_whole(cuts, channels, group):
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((channels, 937 * group + group - 1)).astype(np.float32)
    whole_power, whole_peak, whole_state = L.k_weighted_groups(x, 44100, group=group)
    assert whole_power.shape == whole_peak.shape == (937,)
    powers, peaks, state = [], [], None
    bounds = [0, *sorted(cuts), 937]
    for a, b in zip(bounds[:-1], bounds[1:]):  # whole groups per call, as the caller feeds them
        p, k, state = L.k_weighted_groups(x[:, a * group:b * group], 44100, group=group, state=state)
        powers.append(p)
        peaks.append(k)
    np.testing.assert_array_equal(np.concatenate(powers), whole_power)
    np.testing.assert_array_equal(np.concatenate(peaks), whole_peak)
    np.testing.assert_array_equal(state, whole_state)


@pytest.mark.parametrize("group", [1, 7, 8, 32, 36, 128])
def test_k_weighted_groups_agree_with_sosfilt_and_hop_energies(group):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 44100 * 2))
    power, peak, state = L.k_weighted_groups(x, 44100, group=group)
    y = scipy.signal.sosfilt(L.k_weighting_sos(44100), x, axis=-1)
    m = x.shape[1] // group * group
    per_sample = (y ** 2).sum(axis=0)[:m].reshape(-1, group)
    np.testing.assert_allclose(power, per_sample.sum(axis=1), rtol=1e-10)
    np.testing.assert_array_equal(peak, np.abs(x[:, :m]).max(axis=0).reshape(-1, group).max(axis=1).astype(np.float32))
    assert state.shape == (2, 2, 2)
    # each group summed as numpy sums a row: exactly the per-sample powers summed by numpy
    ones, _, _ = L.k_weighted_groups(x, 44100, group=1)
    np.testing.assert_array_equal(power, ones[:m].reshape(-1, group).sum(axis=1))
    hop = L.hop_samples(44100)
    np.testing.assert_allclose(L.hop_energies(x, 44100), ones.reshape(-1, hop).mean(axis=1), rtol=1e-10)
    with pytest.raises(InputError):
        L.k_weighted_groups(x, 44100, state=np.zeros((2, 1, 2)))
    with pytest.raises(InputError):
        L.k_weighted_groups(x, 44100, group=129)


def test_gated_loudness_of_hops_matches_measure_and_other_hop_sizes():
    rng = np.random.default_rng(4)
    x = shaped_noise("dynamic", 48000 * 12, rng)
    r = L.measure_loudness(x, 48000)
    assert L.gated_loudness_of_hops(r.hop_energy) == r.integrated_lufs
    # The same energies as 50 ms hops: 8-hop blocks every 2 hops are the same blocks.
    halves = np.repeat(r.hop_energy, 2)
    assert L.gated_loudness_of_hops(halves, hop_s=0.05) == pytest.approx(r.integrated_lufs, abs=1e-9)
    # Quietening the loudest hops lowers the result: the limiter loop relies on it reacting.
    squashed = np.minimum(r.hop_energy, np.median(r.hop_energy))
    assert L.gated_loudness_of_hops(squashed) < r.integrated_lufs - 1.0
    with pytest.raises(ParameterError):
        L.gated_loudness_of_hops(r.hop_energy, hop_s=0.3)


# --- edge cases --------------------------------------------------------------------------------

def test_silence_and_short_audio():
    silent = L.measure_loudness(np.zeros((2, 48000 * 4)), 48000)
    assert silent.integrated_lufs == float("-inf")
    assert silent.max_momentary_lufs == float("-inf") and silent.lra_lu == 0.0
    assert np.all(np.isneginf(silent.short_term_lufs))
    short = tone_sequence([-20.0], [0.39])
    r = L.measure_loudness(short, 48000)
    assert r.integrated_lufs == float("-inf")
    assert r.momentary_lufs.size == 0 and r.short_term_lufs.size == 0
    assert r.max_short_term_lufs == float("-inf")
    # Exactly one block; the 0.09 s tail after the last complete hop is ignored.
    assert L.integrated_loudness(tone_sequence([-20.0], [0.49]), 48000) == pytest.approx(-20.0, abs=0.1)


def test_mono_is_one_channel_and_quieter_than_dual():
    mono = tone_sequence([-20.0], [2.0], channels=1)
    assert L.integrated_loudness(mono, 48000) == pytest.approx(-23.01, abs=0.05)
    assert L.integrated_loudness(mono[0], 48000) == L.integrated_loudness(mono, 48000)


def test_refusals():
    x = np.zeros((2, 48000))
    with pytest.raises(ChannelCountError):
        L.measure_loudness(np.zeros((9, 48000)), 48000)
    with pytest.raises(SampleRateError):
        L.measure_loudness(x, 1000)
    with pytest.raises(SampleRateError):
        L.measure_loudness(x, 44100.0)
    with pytest.raises(InputError):
        L.measure_loudness(np.zeros((1, 2, 48000)), 48000)
    bad = np.ones((2, 48000))
    bad[1, 100] = np.nan
    with pytest.raises(NonFiniteAudioError):
        L.measure_loudness(bad, 48000)


def test_result_is_frozen():
    r = L.measure_loudness(tone_sequence([-20.0], [1.0]), 48000)
    with pytest.raises(AttributeError):
        r.integrated_lufs = 0.0
    with pytest.raises(ValueError):
        r.momentary_lufs[0] = 0.0


@pytest.mark.parametrize("hop", [4410, 4800, 32 * 150])
def test_limited_groups_add_into_the_hop_each_group_starts_in(hop):
    # against the same sum written plainly: each group's power turned by its gain, binned by the
    # hop its first sample falls in; reductions of exactly 0 (the unlimited stretches) included
    rng = np.random.default_rng(hop)
    power = rng.uniform(0.0, 1e-3, 5000).astype(np.float32)
    red = np.where(rng.uniform(size=3000) < 0.5, 0.0, rng.uniform(0.0, 12.0, 3000))
    first, gain_db = 1234, 3.7
    out = np.zeros(5000 * 32 // hop + 2)
    L.add_limited_groups_to_hops(power, first, red, gain_db, group=32, hop=hop, out=out)
    g = np.arange(first, first + red.shape[0])
    want = np.bincount(g * 32 // hop, weights=power[g].astype(np.float64) * 10.0 ** ((gain_db - red) / 10.0),
                       minlength=out.shape[0])
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=0.0)
    assert np.count_nonzero(out) == np.count_nonzero(want) > 10
