"""Stereo width per band and mono bass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.errors import ChainError, ParameterError
from dsp.process.stereo import SPEC, StereoParams, process

FS = 48000


def ms(y):
    return (y[0] + y[1]) / 2, (y[0] - y[1]) / 2


def dtft(sig, freq_hz, sample_rate=FS):
    n = np.arange(sig.shape[-1])
    return sig @ np.exp(-2j * np.pi * freq_hz / sample_rate * n)


def test_width_100_without_mono_bass_is_bit_exact_identity(rng):
    x = rng.standard_normal((2, 1000))
    for p in (StereoParams(), StereoParams(width_pct=(100.0, 100.0, 100.0), crossovers_hz=(200.0, 2000.0))):
        y, _ = process(x, FS, p)
        np.testing.assert_array_equal(y, x)
        assert y is not x and y.dtype == np.float64


@pytest.mark.parametrize("params", [
    StereoParams(width_pct=(0.0,)),
    StereoParams(width_pct=(0.0, 0.0), crossovers_hz=(500.0,)),
    StereoParams(width_pct=(0.0,), mono_bass_hz=120.0),
])
def test_width_0_gives_mono(params, rng):
    x = rng.standard_normal((2, 4000))
    y, _ = process(x, FS, params)
    np.testing.assert_array_equal(y[0], y[1])
    if params.mono_bass_hz == 0:  # no all-pass: the mono signal is exactly the mid
        np.testing.assert_allclose(y[0], (x[0] + x[1]) / 2, rtol=0, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(width=st.floats(0.0, 200.0))
def test_ms_round_trip_with_uniform_width(width):
    x = np.random.default_rng(11).standard_normal((2, 500))
    y, _ = process(x, FS, StereoParams(width_pct=(width,)))
    mid_in, side_in = ms(x)
    mid_out, side_out = ms(y)
    np.testing.assert_allclose(mid_out, mid_in, atol=1e-12)
    np.testing.assert_allclose(side_out, side_in * width / 100, atol=1e-12)


def side_and_mid_responses(params, n=1 << 16):
    """Impulse responses of the side path (L=-R input) and mid path (L=R input)."""
    # the impulse comes ``latency`` samples in, so the linear-phase filter's pre-ringing lies after
    # the input's time zero (outputs before it are silence by design)
    at = SPEC.latency_samples(params, FS)
    side_x = np.zeros((2, n))
    side_x[0, at], side_x[1, at] = 1.0, -1.0
    mid_x = np.abs(side_x)
    _, side_y = ms(process(side_x, FS, params)[0])
    mid_y, mid_side = ms(process(mid_x, FS, params)[0])
    assert np.max(np.abs(mid_side)) < 1e-15  # pure mid stays pure mid
    return np.fft.rfft(side_y), np.fft.rfft(mid_y), np.fft.rfftfreq(n, 1 / FS)


@pytest.mark.parametrize("cutoff_hz", [60.0, 120.0, 300.0])
def test_mono_bass_removes_low_side_and_keeps_the_rest(cutoff_hz):
    hs, hm, f = side_and_mid_responses(StereoParams(mono_bass_hz=cutoff_hz))
    side_db = 20 * np.log10(np.maximum(np.abs(hs), 1e-300))
    below = (f > 0) & (f <= cutoff_hz / 2)
    above = (f >= 2 * cutoff_hz) & (f <= 20000)
    assert np.max(side_db[below]) <= -30.0
    assert np.max(np.abs(side_db[above])) <= 0.5
    # the mid is untouched in magnitude (a pure delay) ...
    assert np.max(np.abs(20 * np.log10(np.abs(hm[f > 0])))) < 1e-6
    # ... and in phase the side follows the mid exactly from the cutoff up (linear phase, same delay)
    keep = (f >= cutoff_hz) & (f <= 20000)
    assert np.max(np.abs(np.angle(hs[keep] / hm[keep]))) < 1e-6
    # the delay is the same at every frequency: the mid's phase is a straight line
    lag = 2 * SPEC.latency_samples(StereoParams(mono_bass_hz=cutoff_hz), FS)  # where the impulse sat + latency
    np.testing.assert_allclose(hm, np.exp(-2j * np.pi * f * lag / FS), atol=1e-9)


def test_mono_bass_side_energy_on_noise(rng):
    n = 4 * FS
    x = rng.standard_normal((2, n))
    y, _ = process(x, FS, StereoParams(mono_bass_hz=150.0))
    _, s_in = ms(x)
    _, s_out = ms(y)
    f = np.fft.rfftfreq(n, 1 / FS)
    p_in, p_out = np.abs(np.fft.rfft(s_in)) ** 2, np.abs(np.fft.rfft(s_out)) ** 2
    low = (f > 20) & (f < 75)
    high = (f > 300) & (f < 20000)
    assert 10 * np.log10(p_out[low].sum() / p_in[low].sum()) < -30
    assert abs(10 * np.log10(p_out[high].sum() / p_in[high].sum())) < 0.5


def _kick_and_wide_pad(rng, n):
    """A mono kick (50 Hz decaying sine bursts every 0.5 s) plus a wide, decorrelated pad."""
    from scipy.signal import butter, sosfilt

    t = np.arange(n) / FS
    kick = np.zeros(n)
    for start in range(0, n - FS // 2, FS // 2):
        seg = np.arange(FS // 4) / FS
        kick[start:start + FS // 4] += 0.8 * np.sin(2 * np.pi * 50 * seg) * np.exp(-seg / 0.08)
    pad = sosfilt(butter(2, 800, "low", fs=FS, output="sos"), rng.standard_normal((2, n)), axis=-1) * 0.3
    return kick[None, :] + pad + 0.05 * np.sin(2 * np.pi * 1000 * t)[None, :]


def test_mono_bass_does_not_move_the_bass_in_time_or_change_its_crest(rng):
    # Through the chain (latency compensated): the mono kick comes out where it went in, with the
    # same crest factor; only the side's lows are gone.
    from dsp.process.chain import Chain, Stage, render

    x = _kick_and_wide_pad(rng, 4 * FS)
    y = render(Chain((Stage("stereo", StereoParams(mono_bass_hz=100.0)),)), x, FS).astype(np.float64)
    mid_x, _ = ms(x)
    mid_y, side_y = ms(y)
    np.testing.assert_allclose(mid_y, mid_x, atol=1e-6)  # the mid is untouched, not even delayed

    def crest_db(v):
        return 20 * np.log10(np.max(np.abs(v)) / np.sqrt(np.mean(v ** 2)))

    for c in range(2):
        assert abs(crest_db(y[c]) - crest_db(x[c])) < 0.5
    # cross-correlation of the channel's bass in and out peaks at lag 0
    from scipy.signal import butter, correlate, sosfiltfilt

    lp = butter(4, 80, "low", fs=FS, output="sos")
    a, b = sosfiltfilt(lp, x[0]), sosfiltfilt(lp, y[0])
    cc = correlate(b, a, mode="full", method="fft")
    assert np.argmax(cc) - (len(a) - 1) == 0


def test_mono_bass_does_not_narrow_above_the_split(rng):
    n = 4 * FS
    x = rng.standard_normal((2, n))
    y, _ = process(x, FS, StereoParams(mono_bass_hz=100.0))
    lag = SPEC.latency_samples(StereoParams(mono_bass_hz=100.0), FS)
    _, s_in = ms(x[:, : n - lag])
    _, s_out = ms(y[:, lag:])
    f = np.fft.rfftfreq(n - lag, 1 / FS)
    p_in, p_out = np.abs(np.fft.rfft(s_in)) ** 2, np.abs(np.fft.rfft(s_out)) ** 2
    for lo, hi in ((160, 320), (320, 1000), (1000, 20000)):
        sel = (f >= lo) & (f < hi)
        assert abs(10 * np.log10(p_out[sel].sum() / p_in[sel].sum())) < 0.05


def test_per_band_width_scales_side_to_mid_ratio():
    crossovers = (200.0, 2000.0)
    widths = (40.0, 100.0, 170.0)
    freqs = (50.0, 630.0, 8000.0)  # >= 1.6 octaves from any crossover
    n = 2 * FS
    t = np.arange(n) / FS
    rng = np.random.default_rng(5)
    left = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
    right = sum(0.6 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
    x = np.vstack([left, right])
    y, _ = process(x, FS, StereoParams(width_pct=widths, crossovers_hz=crossovers))
    tail = slice(n // 2, n)
    (m_in, s_in), (m_out, s_out) = ms(x[:, tail]), ms(y[:, tail])
    for f, w in zip(freqs, widths, strict=True):
        before = 20 * np.log10(abs(dtft(s_in, f)) / abs(dtft(m_in, f)))
        after = 20 * np.log10(abs(dtft(s_out, f)) / abs(dtft(m_out, f)))
        assert after - before == pytest.approx(20 * np.log10(w / 100), abs=0.2)


def test_split_widths_keep_mid_magnitude_and_side_phase_aligned():
    p = StereoParams(width_pct=(100.0, 100.0 + 1e-9, 100.0), crossovers_hz=(300.0, 3000.0))
    hs, hm, f = side_and_mid_responses(p)
    sel = (f > 20) & (f < 20000)
    np.testing.assert_allclose(np.abs(hm[sel]), 1.0, atol=1e-9)
    np.testing.assert_allclose(hs[sel], hm[sel], atol=1e-8)  # all widths ~100 %: side == mid path


@pytest.mark.parametrize("params", [
    StereoParams(width_pct=(130.0,)),
    StereoParams(mono_bass_hz=90.0),
    StereoParams(width_pct=(60.0, 140.0), crossovers_hz=(400.0,), mono_bass_hz=100.0),
    StereoParams(width_pct=(0.0, 100.0, 150.0, 200.0), crossovers_hz=(150.0, 1500.0, 7000.0)),
])
def test_blockwise_equals_whole(params, rng):
    x = rng.standard_normal((2, 9000))
    whole, _ = process(x, 44100, params)
    state, parts = None, []
    for a, b in [(0, 0), (0, 1), (1, 4096), (4096, 4096), (4096, 9000)]:
        y, state = process(x[:, a:b], 44100, params, state)
        assert y.shape == (2, b - a)
        parts.append(y)
    if params.mono_bass_hz:  # FFT convolution: equal to rounding, not bit for bit
        np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


@pytest.mark.parametrize("channels", [1, 3, 6, 8])
def test_other_channel_counts_pass_unchanged(channels, rng):
    x = rng.standard_normal((channels, 300))
    y, _ = process(x, FS, StereoParams(width_pct=(0.0,), mono_bass_hz=100.0))
    np.testing.assert_array_equal(y, x)


def test_input_not_modified_and_state_not_mutated(rng):
    x = rng.standard_normal((2, 2000))
    before = x.copy()
    p = StereoParams(width_pct=(50.0, 150.0), crossovers_hz=(1000.0,), mono_bass_hz=80.0)
    _, state = process(x, FS, p)
    a, _ = process(x, FS, p, state)
    b, _ = process(x, FS, p, state)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)


def test_state_from_other_settings_is_refused(rng):
    _, state = process(rng.standard_normal((2, 10)), FS, StereoParams(mono_bass_hz=100.0))
    with pytest.raises(ParameterError):
        process(np.zeros((2, 10)), FS, StereoParams(width_pct=(50.0, 150.0), crossovers_hz=(1000.0,)), state)


def test_zero_length_block():
    p = StereoParams(width_pct=(50.0, 150.0), crossovers_hz=(1000.0,), mono_bass_hz=80.0)
    y, state = process(np.zeros((2, 0)), FS, p)
    assert y.shape == (2, 0)
    y2, _ = process(np.ones((2, 8)), FS, p, state)
    y3, _ = process(np.ones((2, 8)), FS, p)
    np.testing.assert_array_equal(y2, y3)


@pytest.mark.parametrize("kwargs", [
    dict(width_pct=(100.0, 100.0)),                                   # one width too many
    dict(width_pct=(100.0,), crossovers_hz=(500.0,)),                 # one width too few
    dict(width_pct=(201.0,)),
    dict(width_pct=(-1.0,)),
    dict(width_pct=(100.0, 100.0, 100.0), crossovers_hz=(500.0, 550.0)),  # < 1/3 octave
    dict(width_pct=(100.0, 100.0, 100.0), crossovers_hz=(2000.0, 500.0)),
    dict(width_pct=(100.0, 100.0), crossovers_hz=(10.0,)),
    dict(mono_bass_hz=10.0),
    dict(mono_bass_hz=2000.0),
    dict(mono_bass_hz=-50.0),
])
def test_bad_params_are_refused(kwargs):
    with pytest.raises(ParameterError):
        StereoParams(**kwargs)


def test_crossover_above_rate_limit_is_refused_at_process_time():
    p = StereoParams(width_pct=(100.0, 50.0), crossovers_hz=(21000.0,))  # fine at 96 kHz
    process(np.zeros((2, 10)), 96000, p)
    with pytest.raises(ParameterError):
        process(np.zeros((2, 10)), 44100, p)


def test_json_round_trip_and_spec():
    p = StereoParams(width_pct=(80.0, 100.0, 125.0), crossovers_hz=(180.0, 5000.0), mono_bass_hz=100.0)
    back = StereoParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert StereoParams(width_pct=[50.0]).width_pct == (50.0,)
    with pytest.raises(ChainError):
        StereoParams.from_dict({"width": [100.0]})
    assert SPEC.kind == "stereo" and SPEC.params_type is StereoParams and SPEC.native_fx == ""
