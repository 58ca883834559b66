"""Gain, DC blocker and subsonic high-pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.errors import ParameterError
from dsp.process import biquad, eq
from dsp.process.utility import (
    SPECS,
    DcParams,
    GainParams,
    HighPassParams,
    high_pass_eq_bands,
    high_pass_sos,
    process_dc,
    process_gain,
    process_high_pass,
)

RATES = (44100, 48000, 96000)


def dtft_gain_db(x, y, freq_hz, sample_rate):
    n = np.arange(x.shape[-1])
    e = np.exp(-2j * np.pi * freq_hz / sample_rate * n)
    return 20 * np.log10(abs(y @ e) / abs(x @ e))


# --- gain ------------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(gain_db=st.floats(-60.0, 36.0), channels=st.integers(1, 8))
def test_gain_is_exact(gain_db, channels):
    x = np.random.default_rng(1).standard_normal((channels, 257))
    y, state = process_gain(x, 48000, GainParams(gain_db))
    np.testing.assert_array_equal(y, x * 10.0 ** (gain_db / 20.0))
    assert state is None and y.dtype == np.float64


def test_zero_gain_is_identity_copy(rng):
    x = rng.standard_normal((2, 50)).astype(np.float32)
    y, _ = process_gain(x, 48000, GainParams())
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.float64 and y is not x
    assert process_gain(np.zeros((2, 0)), 48000, GainParams(6.0))[0].shape == (2, 0)


@pytest.mark.parametrize("gain_db", [-60.5, 36.5, float("nan"), "3"])
def test_bad_gain_is_refused(gain_db):
    with pytest.raises(ParameterError):
        GainParams(gain_db)


# --- DC blocker ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", RATES)
def test_dc_blocker_removes_offset_and_passes_50_hz(sample_rate):
    n = 2 * sample_rate
    t = np.arange(n) / sample_rate
    tone = 0.5 * np.sin(2 * np.pi * 50 * t)
    x = np.vstack([tone + 0.3, tone - 0.2])
    y, _ = process_dc(x, sample_rate, DcParams())
    tail = slice(sample_rate, n)  # after 1 s; a whole number of 50 Hz periods
    assert np.max(np.abs(y[:, tail].mean(axis=1))) < 1e-4
    for c in range(2):
        assert dtft_gain_db(tone[tail], y[c, tail], 50.0, sample_rate) == pytest.approx(0.0, abs=0.1)
    # a pure offset decays below 1e-4 within a second
    z, _ = process_dc(np.full((1, n), 0.5), sample_rate, DcParams())
    assert np.max(np.abs(z[0, sample_rate:])) < 1e-4


@pytest.mark.parametrize("sample_rate", RATES)
def test_dc_blocker_corner_is_about_5_hz(sample_rate):
    from dsp.process.utility import dc_sos

    freqs = np.array([5.0, 1000.0, 0.5 * sample_rate])
    h = np.abs(biquad.sos_response(dc_sos(sample_rate), sample_rate, freqs))
    assert 20 * np.log10(h[0]) == pytest.approx(-3.01, abs=0.05)
    assert h[1:] == pytest.approx([1.0, 1.0], abs=1e-4)


# --- high-pass -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("order", [2, 4, 6, 8])
@pytest.mark.parametrize("freq_hz", [20.0, 35.0, 150.0])
def test_high_pass_corner_and_slope(sample_rate, order, freq_hz):
    p = HighPassParams(freq_hz, order)
    sos = high_pass_sos(p, sample_rate)
    assert sos.shape == (order // 2, 6)
    h = np.abs(biquad.sos_response(sos, sample_rate, np.array([freq_hz, freq_hz / 4, freq_hz * 4, 1000.0])))
    db = 20 * np.log10(h)
    assert db[0] == pytest.approx(-3.01, abs=0.05)
    # Butterworth: -20*order*log10(4) = -12.04 dB per order two octaves below the corner
    assert db[1] == pytest.approx(-12.04 * order, abs=0.3)
    assert db[2] == pytest.approx(-10 * np.log10(1 + 4.0 ** (-2 * order)), abs=0.005)
    assert abs(db[3]) < 0.01
    # and the filter is maximally flat: never above 0 dB
    f = np.geomspace(5, 20000, 300)
    assert np.max(20 * np.log10(np.abs(biquad.sos_response(sos, sample_rate, f)))) < 1e-9


def test_steeper_order_attenuates_more():
    levels = []
    for order in (2, 4, 6, 8):
        sos = high_pass_sos(HighPassParams(40.0, order), 48000)
        levels.append(np.abs(biquad.sos_response(sos, 48000, np.array([20.0])))[0])
    assert levels == sorted(levels, reverse=True) and levels[-1] < levels[0] / 10


def test_high_pass_measured_on_signal_matches_design():
    sample_rate = 44100
    p = HighPassParams(30.0, 4)
    n = 4 * sample_rate
    t = np.arange(n) / sample_rate
    x = np.vstack([np.sin(2 * np.pi * 30.0 * t), np.sin(2 * np.pi * 15.0 * t)])
    y, _ = process_high_pass(x, sample_rate, p)
    tail = slice(2 * sample_rate, n)
    assert dtft_gain_db(x[0, tail], y[0, tail], 30.0, sample_rate) == pytest.approx(-3.01, abs=0.05)
    assert dtft_gain_db(x[1, tail], y[1, tail], 15.0, sample_rate) == pytest.approx(-24.1, abs=0.3)


def test_high_pass_as_reaeq_bands():
    bands = high_pass_eq_bands(HighPassParams(30.0, 6))
    assert len(bands) == 3 and all(b.type == "high_pass" and b.freq_hz == 30.0 for b in bands)
    qs = [biquad.bw_oct_to_q(b.bw_oct) for b in bands]
    assert qs == pytest.approx([0.5176, 0.7071, 1.9319], abs=1e-4)
    assert all(eq.BW_RANGE_OCT[0] <= b.bw_oct <= eq.BW_RANGE_OCT[1] for b in bands)


@pytest.mark.parametrize("kwargs", [dict(order=3), dict(order=10), dict(order=True), dict(order=4.0),
                                    dict(freq_hz=19.0), dict(freq_hz=1001.0)])
def test_bad_high_pass_is_refused(kwargs):
    with pytest.raises(ParameterError):
        HighPassParams(**kwargs)


# --- shared ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("process,params", [
    (process_dc, DcParams()),
    (process_high_pass, HighPassParams(25.0, 8)),
    (process_gain, GainParams(-4.0)),
])
@pytest.mark.parametrize("channels", [1, 2, 8])
def test_blockwise_equals_whole(process, params, channels, rng):
    x = rng.standard_normal((channels, 7000))
    whole, _ = process(x, 48000, params)
    state, parts = None, []
    for a, b in [(0, 0), (0, 3), (3, 4096), (4096, 4096), (4096, 7000)]:
        y, state = process(x[:, a:b], 48000, params, state)
        assert y.shape == (channels, b - a) and y.dtype == np.float64
        parts.append(y)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_specs_and_json_round_trip():
    kinds = {s.kind: s for s in SPECS}
    assert set(kinds) == {"gain", "dc", "high_pass"}
    assert kinds["high_pass"].native_fx == "ReaEQ (Cockos)"
    for p in (GainParams(-3.5), DcParams(), HighPassParams(31.5, 6)):
        spec = next(s for s in SPECS if s.params_type is type(p))
        assert spec.params_type.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_input_is_not_modified(rng):
    x = rng.standard_normal((2, 100))
    before = x.copy()
    for process, params in ((process_dc, DcParams()), (process_high_pass, HighPassParams()),
                            (process_gain, GainParams(3.0))):
        process(x, 48000, params)
    np.testing.assert_array_equal(x, before)
