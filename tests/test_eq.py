"""ReaEQ-shaped parametric EQ: band shapes, response agreement, streaming, parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.errors import ChainError, ParameterError
from dsp.process import biquad, eq
from dsp.process.eq import EqBand, EqParams, eq_response_db, eq_sos, process

RATES = (44100, 48000, 96000)


def resp(params, sample_rate, *freqs):
    return eq_response_db(params, sample_rate, np.asarray(freqs, dtype=float))


def impulse_response(params, sample_rate, n=1 << 16):
    x = np.zeros((1, n))
    x[0, 0] = 1.0
    y, _ = process(x, sample_rate, params)
    return y[0]


def sine_gain_db(params, sample_rate, freq_hz, seconds=1.0):
    """Steady-state gain of process() on a sine (last half second, DTFT at the sine frequency)."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = np.sin(2 * np.pi * freq_hz * t)[None, :]
    y, _ = process(x, sample_rate, params)
    tail = slice(n // 2, n)
    e = np.exp(-2j * np.pi * freq_hz * t[tail])
    return 20 * np.log10(abs(y[0, tail] @ e) / abs(x[0, tail] @ e))


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("freq_hz", [40.0, 1000.0, 12000.0])
@pytest.mark.parametrize("gain_db", [-18.0, -3.0, 2.5, 12.0])
@pytest.mark.parametrize("bw_oct", [0.1, 1.0, 3.0])
def test_band_gain_at_centre(sample_rate, freq_hz, gain_db, bw_oct):
    p = EqParams(bands=(EqBand("band", freq_hz, gain_db, bw_oct),))
    assert resp(p, sample_rate, freq_hz)[0] == pytest.approx(gain_db, abs=0.05)
    assert np.all(np.abs(resp(p, sample_rate, 20.0 * 2 ** np.arange(10)) <= abs(gain_db) + 1e-9))


@pytest.mark.parametrize("sample_rate", [44100, 96000])
@pytest.mark.parametrize("freq_hz", [100.0, 1000.0, 4000.0])
@pytest.mark.parametrize("bw_oct", [0.3, 1.0, 2.0])
def test_band_bandwidth_is_between_half_gain_points(sample_rate, freq_hz, bw_oct):
    # the cookbook digital correction keeps the analog bandwidth definition close below fs/8
    p = EqParams(bands=(EqBand("band", freq_hz, 8.0, bw_oct),))
    top = min(freq_hz * 2 ** (bw_oct + 1), 0.49 * sample_rate)
    freqs = np.geomspace(freq_hz / 2 ** (bw_oct + 1), top, 40001)
    above = freqs[resp(p, sample_rate, *freqs) >= 4.0]
    assert np.log2(above[-1] / above[0]) == pytest.approx(bw_oct, rel=0.02)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("gain_db", [-12.0, -4.0, 3.0, 9.0])
@pytest.mark.parametrize("bw_oct", [None, 1.0, 2.5])
def test_shelves(sample_rate, gain_db, bw_oct):
    low = EqParams(bands=(EqBand("low_shelf", 300.0, gain_db, bw_oct),))
    high = EqParams(bands=(EqBand("high_shelf", 3000.0, gain_db, bw_oct),))
    # gain/2 at the corner (cookbook shelf midpoint property)
    assert resp(low, sample_rate, 300.0)[0] == pytest.approx(gain_db / 2, abs=0.1)
    assert resp(high, sample_rate, 3000.0)[0] == pytest.approx(gain_db / 2, abs=0.1)
    # full gain far into the shelf, 0 dB far outside it
    assert resp(low, sample_rate, 5.0)[0] == pytest.approx(gain_db, abs=0.1)
    assert resp(low, sample_rate, 15000.0)[0] == pytest.approx(0.0, abs=0.1)
    assert resp(high, sample_rate, 0.5 * sample_rate - 1)[0] == pytest.approx(gain_db, abs=0.1)
    assert resp(high, sample_rate, 60.0)[0] == pytest.approx(0.0, abs=0.1)


def test_default_shelf_is_monotonic():
    p = EqParams(bands=(EqBand("low_shelf", 200.0, 6.0),))
    r = resp(p, 48000, *np.geomspace(5, 20000, 500))
    assert np.all(np.diff(r) <= 1e-9)
    assert p.bands[0].bw_oct == pytest.approx(eq.BUTTERWORTH_BW_OCT)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("freq_hz", [30.0, 1000.0, 15000.0])
def test_passes_are_minus_3_db_at_corner_with_butterworth_q(sample_rate, freq_hz):
    assert biquad.bw_oct_to_q(eq.BUTTERWORTH_BW_OCT) == pytest.approx(1 / np.sqrt(2), rel=1e-12)
    for kind in ("low_pass", "high_pass"):
        default = EqParams(bands=(EqBand(kind, freq_hz),))
        explicit = EqParams(bands=(EqBand(kind, freq_hz, bw_oct=1.9),))
        assert resp(default, sample_rate, freq_hz)[0] == pytest.approx(-3.01, abs=0.01)
        assert resp(explicit, sample_rate, freq_hz)[0] == pytest.approx(-3.01, abs=0.05)
    lp = EqParams(bands=(EqBand("low_pass", freq_hz),))
    hp = EqParams(bands=(EqBand("high_pass", freq_hz),))
    # 12 dB/octave: two octaves out a Butterworth 2nd order is down ~24 dB (bilinear makes LP steeper)
    if freq_hz * 4 < 0.2 * sample_rate:
        assert resp(lp, sample_rate, freq_hz * 4)[0] < -23.5
    if freq_hz < 0.05 * sample_rate:
        assert resp(hp, sample_rate, freq_hz / 4)[0] == pytest.approx(-24.1, abs=0.3)


def test_smaller_bandwidth_makes_a_resonant_pass():
    p = EqParams(bands=(EqBand("high_pass", 100.0, bw_oct=0.5),))
    q = biquad.bw_oct_to_q(0.5)
    assert resp(p, 48000, 100.0)[0] == pytest.approx(20 * np.log10(q), abs=0.05)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("freq_hz", [50.0, 1000.0, 10000.0])
def test_notch_is_deep_at_centre(sample_rate, freq_hz):
    p = EqParams(bands=(EqBand("notch", freq_hz, 6.0, 0.5),))  # the gain is ignored for notches
    assert resp(p, sample_rate, freq_hz)[0] < -100
    assert sine_gain_db(p, sample_rate, freq_hz, seconds=2.0 if freq_hz < 100 else 0.5) < -60
    assert resp(p, sample_rate, freq_hz / 4)[0] > -0.5


def test_band_pass_peaks_at_zero_db():
    p = EqParams(bands=(EqBand("band_pass", 2000.0, bw_oct=1.0),))
    assert resp(p, 48000, 2000.0)[0] == pytest.approx(0.0, abs=1e-9)
    lo, hi = resp(p, 48000, 2000 / np.sqrt(2), 2000 * np.sqrt(2))
    assert lo == pytest.approx(-3.01, abs=0.1) and hi == pytest.approx(-3.01, abs=0.1)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["band", "low_shelf", "high_shelf"]),
    freq_hz=st.floats(20.0, 24000.0),
    bw_oct=st.floats(0.01, 4.0),
    sample_rate=st.sampled_from(RATES),
)
def test_zero_db_band_is_identity(kind, freq_hz, bw_oct, sample_rate):
    x = np.random.default_rng(7).standard_normal((2, 300))
    p = EqParams(bands=(EqBand(kind, freq_hz, 0.0, bw_oct),))
    y, _ = process(x, sample_rate, p)
    np.testing.assert_array_equal(y, x)
    # and the underlying biquad with 0 dB is flat, so skipping it changes nothing
    f = min(freq_hz, 0.49 * sample_rate)
    if kind == "band":
        row = biquad.peaking(f, 0.0, bw_oct, sample_rate)
    elif kind == "low_shelf":
        row = biquad.low_shelf(f, 0.0, biquad.bw_oct_to_q(bw_oct), sample_rate)
    else:
        row = biquad.high_shelf(f, 0.0, biquad.bw_oct_to_q(bw_oct), sample_rate)
    h = biquad.sos_response(row[None, :], sample_rate, np.geomspace(10, 0.499 * sample_rate, 50))
    np.testing.assert_allclose(np.abs(h), 1.0, atol=1e-9)


MIXED = EqParams(
    bands=(
        EqBand("high_pass", 30.0),
        EqBand("low_shelf", 120.0, -3.0, 1.5),
        EqBand("band", 400.0, 4.0, 0.7),
        EqBand("notch", 3150.0, bw_oct=0.2),
        EqBand("band_pass", 900.0, bw_oct=3.5),
        EqBand("high_shelf", 8000.0, 2.0),
        EqBand("low_pass", 18000.0, bw_oct=1.2),
        EqBand("band", 1000.0, 12.0, enabled=False),
    ),
    gain_db=-2.5,
)


@pytest.mark.parametrize("sample_rate", RATES)
def test_response_agrees_with_processed_impulse(sample_rate):
    h = impulse_response(MIXED, sample_rate)
    measured = 20 * np.log10(np.maximum(np.abs(np.fft.rfft(h)), 1e-15))
    freqs = np.fft.rfftfreq(h.size, 1 / sample_rate)
    predicted = eq_response_db(MIXED, sample_rate, freqs)
    sel = (freqs >= 20) & (predicted > -80)
    assert np.max(np.abs(measured[sel] - predicted[sel])) < 0.01
    # the global gain and the disabled band are accounted for
    assert len(eq_sos(MIXED, sample_rate)) == 7
    assert predicted[np.argmin(np.abs(freqs - 1000))] < 3.0


def test_global_gain():
    p = EqParams(gain_db=-6.0)
    x = np.random.default_rng(3).standard_normal((2, 100))
    y, _ = process(x, 48000, p)
    np.testing.assert_allclose(y, x * 10 ** (-6 / 20), rtol=1e-15)
    assert resp(p, 48000, 100.0, 10000.0) == pytest.approx([-6.0, -6.0])


@pytest.mark.parametrize("channels", [1, 2, 3, 8])
def test_blockwise_equals_whole(channels, rng):
    x = rng.standard_normal((channels, 5000))
    whole, _ = process(x, 44100, MIXED)
    state, parts = None, []
    for a, b in [(0, 0), (0, 17), (17, 2048), (2048, 2048), (2048, 5000)]:
        y, state = process(x[:, a:b], 44100, MIXED, state)
        assert y.shape == (channels, b - a) and y.dtype == np.float64
        parts.append(y)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_state_from_other_settings_is_refused(rng):
    _, state = process(rng.standard_normal((2, 10)), 44100, MIXED)
    with pytest.raises(ParameterError):
        process(np.zeros((1, 10)), 44100, MIXED, state)
    with pytest.raises(ParameterError):
        process(np.zeros((2, 10)), 44100, EqParams(bands=MIXED.bands[:2]), state)


def test_input_is_not_modified(rng):
    x = rng.standard_normal((2, 100)).astype(np.float32)
    before = x.copy()
    for p in (MIXED, EqParams()):
        y, _ = process(x, 48000, p)
        assert y.dtype == np.float64 and y is not x
    np.testing.assert_array_equal(x, before)


def test_frequency_above_049_fs_is_clamped():
    # a chain made at 96 kHz rendered at 44.1 kHz: 23 kHz becomes 0.49 * 44100 = 21609 Hz
    high = EqParams(bands=(EqBand("band", 23000.0, 6.0, 0.5),))
    clamped = EqParams(bands=(EqBand("band", 0.49 * 44100, 6.0, 0.5),))
    np.testing.assert_array_equal(eq_sos(high, 44100), eq_sos(clamped, 44100))
    assert resp(high, 44100, 0.49 * 44100)[0] == pytest.approx(6.0, abs=0.05)
    y, _ = process(np.ones((1, 10)), 44100, high)
    assert np.all(np.isfinite(y))
    # at 96 kHz nothing is clamped
    assert resp(high, 96000, 23000.0)[0] == pytest.approx(6.0, abs=0.05)


def test_json_round_trip():
    data = json.loads(json.dumps(MIXED.to_dict()))
    back = EqParams.from_dict(data)
    assert back == MIXED
    np.testing.assert_array_equal(eq_sos(back, 48000), eq_sos(MIXED, 48000))
    assert data["bands"][0]["bw_oct"] == pytest.approx(eq.BUTTERWORTH_BW_OCT)  # defaults are written out
    assert data["bands"][2] == {
        "type": "band", "freq_hz": 400.0, "gain_db": 4.0, "bw_oct": 0.7, "enabled": True,
    }


def test_defaults_per_type():
    assert EqBand("band", 1000.0).bw_oct == 1.0
    assert EqBand("notch", 1000.0).bw_oct == 1.0
    assert EqBand("high_pass", 1000.0).bw_oct == pytest.approx(1.8999686, abs=1e-6)
    assert EqBand("high_shelf", 1000.0).bw_oct == pytest.approx(eq.BUTTERWORTH_BW_OCT)
    assert set(eq.REAEQ_BANDTYPE) == set(eq.BAND_TYPES)


@pytest.mark.parametrize("kwargs", [
    dict(type="peak", freq_hz=1000.0),
    dict(type="band", freq_hz=19.0),
    dict(type="band", freq_hz=24001.0),
    dict(type="band", freq_hz=float("nan")),
    dict(type="band", freq_hz=1000.0, gain_db=12.5),
    dict(type="band", freq_hz=1000.0, gain_db=-25.0),
    dict(type="band", freq_hz=1000.0, bw_oct=0.0),
    dict(type="band", freq_hz=1000.0, bw_oct=4.5),
    dict(type="band", freq_hz=1000.0, bw_oct="1"),
    dict(type="band", freq_hz=1000.0, enabled=1),
])
def test_bad_band_is_refused(kwargs):
    with pytest.raises(ParameterError):
        EqBand(**kwargs)


def test_bad_params_are_refused():
    with pytest.raises(ParameterError):
        EqParams(gain_db=12.5)
    with pytest.raises(ParameterError):
        EqParams(gain_db=-61.0)
    with pytest.raises(ParameterError):
        EqParams(bands=({"type": "band", "freq_hz": 100.0},))
    with pytest.raises(ChainError):
        EqParams.from_dict({"bands": [{"type": "band", "freq_hz": 100.0, "q": 2.0}]})
    with pytest.raises(ParameterError):
        EqParams.from_dict({"bands": [{"type": "band", "freq_hz": 100.0, "gain_db": 30.0}]})
    assert EqParams(bands=[EqBand("band", 100.0)]).bands == (EqBand("band", 100.0),)


def test_zero_length_block():
    y, state = process(np.zeros((2, 0)), 48000, MIXED)
    assert y.shape == (2, 0)
    y2, _ = process(np.ones((2, 5)), 48000, MIXED, state)
    y3, _ = process(np.ones((2, 5)), 48000, MIXED)
    np.testing.assert_array_equal(y2, y3)
