"""Compressor: static curve, time constants, identities, stereo link, streaming, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.errors import ChainError, ParameterError
from dsp.process import compressor as comp
from dsp.process import envelope
from dsp.process.compressor import CompressorParams

FS = 48000


def db(v):
    return 20.0 * np.log10(v)


def dc(level_db: float, seconds: float, channels: int = 2) -> np.ndarray:
    return np.full((channels, int(round(seconds * FS))), 10.0 ** (level_db / 20.0))


def sine(freq_hz: float, amp: float, seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * FS))) / FS
    return np.repeat((amp * np.sin(2 * np.pi * freq_hz * t))[None, :], 2, axis=0)


# --- static curve -------------------------------------------------------------------------------

@given(thr=st.floats(-60, 0), ratio=st.floats(1, 99.9), makeup=st.floats(-24, 6))
@settings(max_examples=30, deadline=None)
def test_hard_knee_static_curve(thr, ratio, makeup):
    p = CompressorParams(threshold_db=thr, ratio=ratio, knee_db=0.0, makeup_db=makeup)
    below = np.linspace(thr - 40, thr, 50)
    above = np.linspace(thr, thr + 40, 50)
    np.testing.assert_allclose(comp.static_curve_db(below, p), below + makeup, atol=1e-9)
    out = comp.static_curve_db(above, p)
    np.testing.assert_allclose(out, thr + (above - thr) / ratio + makeup, atol=1e-9)
    np.testing.assert_allclose(np.diff(out) / np.diff(above), 1.0 / ratio, rtol=1e-6)


def test_ratio_100_is_a_limit():
    p = CompressorParams(threshold_db=-12.0, ratio=100.0)
    np.testing.assert_allclose(comp.static_curve_db(np.array([-12.0, -6.0, 0.0, 10.0]), p), -12.0, atol=1e-12)
    assert comp.effective_ratio(100.0) == math.inf


@given(thr=st.floats(-60, 0), ratio=st.floats(1.1, 100), knee=st.floats(0.5, 24))
@settings(max_examples=30, deadline=None)
def test_soft_knee_static_curve(thr, ratio, knee):
    soft = CompressorParams(threshold_db=thr, ratio=ratio, knee_db=knee)
    hard = CompressorParams(threshold_db=thr, ratio=ratio, knee_db=0.0)
    lv = np.linspace(thr - 2 * knee - 10, thr + 2 * knee + 10, 4001)
    s, h = comp.static_curve_db(lv, soft), comp.static_curve_db(lv, hard)
    outside = np.abs(lv - thr) >= knee / 2
    np.testing.assert_allclose(s[outside], h[outside], atol=1e-9)
    # inside the knee the soft curve bends below the hard corner, never above it
    assert np.all(s[~outside] <= h[~outside] + 1e-12)
    assert np.any(s[~outside] < h[~outside] - 1e-3)
    # continuous with a continuous slope (C1): no jumps in the finite-difference slope
    slope = np.diff(s) / np.diff(lv)
    assert np.max(np.abs(np.diff(slope))) < 0.02
    assert 1.0 / comp.effective_ratio(ratio) - 1e-6 <= slope.min() and slope.max() <= 1.0 + 1e-6


# --- the kernel implements the static curve --------------------------------------------------------

@given(seed=st.integers(0, 2**31), thr=st.floats(-60, 0), ratio=st.floats(1, 100), knee=st.floats(0, 24))
@settings(max_examples=25, deadline=None)
def test_instant_gain_follows_static_curve_of_linked_peak(seed, thr, ratio, knee):
    # attack = release = 0 and peak detection: gain(t) is the static curve of max_c |x_c(t)|
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3000)) * 10.0 ** rng.uniform(-4, 0, (1, 3000))
    p = CompressorParams(threshold_db=thr, ratio=ratio, knee_db=knee, attack_ms=0, release_ms=0, rms_ms=0)
    g = comp.gain_reduction_db(x, FS, p)
    level = db(np.max(np.abs(x), axis=0))
    np.testing.assert_allclose(g, comp.static_gain_db(level, p), atol=1e-9)
    assert np.all(g <= 0.0)


def test_output_is_input_times_the_gain_curve(rng):
    x = rng.standard_normal((2, 20000)) * np.repeat(10 ** rng.uniform(-4, 0.5, 20), 1000)
    p = CompressorParams(threshold_db=-40, ratio=100, knee_db=3, attack_ms=1, release_ms=50, makeup_db=-2)
    y, _ = comp.process(x, FS, p)
    g = comp.gain_reduction_db(x, FS, p)
    assert g.min() < -20.0
    np.testing.assert_allclose(y, x * 10 ** ((g - 2.0) / 20), rtol=1e-13, atol=0)


@pytest.mark.parametrize("rms_ms", [0.5, 5.0, 21.3])
def test_rms_window_is_a_sliding_mean_of_the_linked_power(rng, rms_ms):
    x = rng.standard_normal((2, 6000)) * np.linspace(0.01, 1.0, 6000)
    p = CompressorParams(threshold_db=-30, ratio=3, knee_db=6, attack_ms=0, release_ms=0, rms_ms=rms_ms)
    n = envelope.rms_window_samples(rms_ms, FS)
    power = np.max(x * x, axis=0)
    mean = np.convolve(power, np.ones(n) / n)[: x.shape[1]]  # zeros before the start
    np.testing.assert_allclose(comp.gain_reduction_db(x, FS, p), comp.static_gain_db(10 * np.log10(mean), p),
                               atol=1e-9)


# --- dynamics -----------------------------------------------------------------------------------

@given(attack=st.floats(0.5, 40), release=st.floats(20, 1000), ratio=st.floats(1.5, 100),
       thr=st.floats(-50, -20))
@settings(max_examples=20, deadline=None)
def test_steady_sine_reaches_static_gain(attack, release, ratio, thr):
    # 1 kHz at 48 kHz: the 5 ms RMS window holds exactly 5 periods, so the RMS level is steady
    rms_level = thr + 20.0
    x = sine(1000.0, 10 ** (rms_level / 20) * math.sqrt(2), (10 * attack + 5.0) / 1000 + 0.2)
    p = CompressorParams(threshold_db=thr, ratio=ratio, attack_ms=attack, release_ms=release, rms_ms=5.0)
    g = comp.gain_reduction_db(x, FS, p)
    settled = g[int((10 * attack + 5.0) * FS / 1000):]
    assert np.max(np.abs(settled - comp.static_gain_db(rms_level, p))) < 0.5
    y, _ = comp.process(x, FS, p)
    tail = slice(-FS // 10, None)
    out_rms = db(np.sqrt(np.mean(y[0, tail] ** 2)))
    assert abs(out_rms - comp.static_curve_db(rms_level, p)) < 0.5


def test_steady_sine_peak_mode_uses_the_peak_level():
    x = sine(1000.0, 10 ** (-10 / 20), 0.5)
    p = CompressorParams(threshold_db=-30, ratio=4, attack_ms=2, release_ms=200, rms_ms=0)
    g = comp.gain_reduction_db(x, FS, p)[FS // 10:]
    assert np.max(np.abs(g - comp.static_gain_db(-10.0, p))) < 0.5


def _crossing_ms(curve: np.ndarray, fraction: float, start: int) -> float:
    """Time (ms) after ``start`` when ``curve`` first reaches ``fraction`` of its value at the end."""
    seg = curve[start:]
    final = seg[-1]
    idx = np.argmax(seg <= fraction * final) if final < 0 else 0
    return float(1000.0 * (idx + 1) / FS)


@pytest.mark.parametrize("attack_ms", [1.0, 5.0, 30.0, 200.0])
def test_attack_time_constant(attack_ms):
    lead = FS // 10
    x = np.concatenate((np.zeros((2, lead)), dc(-10.0, 12 * attack_ms / 1000 + 0.01)), axis=1)
    p = CompressorParams(threshold_db=-30, ratio=4, attack_ms=attack_ms, release_ms=500, rms_ms=0)
    g = comp.gain_reduction_db(x, FS, p)
    assert np.all(g[:lead] == 0.0)
    assert g[-1] == pytest.approx(comp.static_gain_db(-10.0, p), abs=1e-3)
    assert _crossing_ms(g, 1 - 1 / math.e, lead) == pytest.approx(attack_ms, rel=0.2)


@pytest.mark.parametrize("release_ms", [30.0, 100.0, 1000.0])
def test_release_time_constant(release_ms):
    on = dc(-10.0, 0.2)
    x = np.concatenate((on, np.zeros((2, int(8 * release_ms * FS / 1000)))), axis=1)
    p = CompressorParams(threshold_db=-30, ratio=4, attack_ms=0.5, release_ms=release_ms, rms_ms=0)
    g = comp.gain_reduction_db(x, FS, p)
    start = on.shape[1]
    g0 = g[start - 1]
    assert g0 == pytest.approx(comp.static_gain_db(-10.0, p), abs=1e-3)
    t63 = float(1000.0 * np.argmax(g[start:] >= g0 / math.e) / FS)  # 63 % of the way back to 0 dB
    assert t63 == pytest.approx(release_ms, rel=0.2)
    assert g[-1] > 0.01 * g0  # and it does go back


# --- identities ---------------------------------------------------------------------------------

@given(seed=st.integers(0, 2**31), thr=st.floats(-50, 0), knee=st.floats(0, 24),
       rms=st.sampled_from([0.0, 3.0]))
@settings(max_examples=20, deadline=None)
def test_identity_below_knee(seed, thr, knee, rms):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (2, 4000))
    edge = 10 ** ((thr - knee / 2) / 20)
    x *= 0.999 * edge / np.max(np.abs(x))
    p = CompressorParams(threshold_db=thr, ratio=8, knee_db=knee, rms_ms=rms, attack_ms=1, release_ms=10)
    y, _ = comp.process(x, FS, p)
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-9 * edge)
    # ... and a little louder it does compress
    y2, _ = comp.process(x * 10 ** (3 / 20), FS, p)
    assert np.max(np.abs(y2 - x * 10 ** (3 / 20))) > 1e-4 * edge


def test_ratio_one_is_identity(rng):
    x = rng.standard_normal((2, 20000)) * 2.0
    for knee in (0.0, 12.0):
        y, _ = comp.process(x, FS, CompressorParams(threshold_db=-60, ratio=1.0, knee_db=knee))
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=0)


def test_makeup_adds_exactly_makeup_db(rng):
    x = rng.standard_normal((2, 20000)) * 0.3
    base = CompressorParams(threshold_db=-20, ratio=3, knee_db=6)
    y0, _ = comp.process(x, FS, base)
    for m in (-24.0, -3.5, 2.25, 6.0):
        y, _ = comp.process(x, FS, CompressorParams(threshold_db=-20, ratio=3, knee_db=6, makeup_db=m))
        np.testing.assert_allclose(y, y0 * 10 ** (m / 20), rtol=1e-12)


def test_auto_makeup_keeps_full_scale_at_full_scale():
    p = CompressorParams(threshold_db=-24, ratio=5, knee_db=6, rms_ms=0, attack_ms=0, release_ms=0,
                         auto_makeup=True)
    y, _ = comp.process(dc(0.0, 0.01), FS, p)
    np.testing.assert_allclose(y, 1.0, rtol=1e-12)
    assert comp.total_makeup_db(p) == pytest.approx(-float(comp.static_gain_db(0.0, p)))
    assert comp.total_makeup_db(p) > 15.0


def test_mix(rng):
    x = rng.standard_normal((2, 20000)) * 0.5
    kw = dict(threshold_db=-30, ratio=10, makeup_db=6)
    y0, _ = comp.process(x, FS, CompressorParams(mix_pct=0, **kw))
    assert np.array_equal(y0, x)
    wet, _ = comp.process(x, FS, CompressorParams(mix_pct=100, **kw))
    half, _ = comp.process(x, FS, CompressorParams(mix_pct=25, **kw))
    np.testing.assert_allclose(half, 0.75 * x + 0.25 * wet, rtol=1e-12, atol=1e-15)
    lv = np.linspace(-60, 0, 13)
    p = CompressorParams(mix_pct=25, **kw)
    expected = db(0.75 + 0.25 * 10 ** ((comp.static_gain_db(lv, p) + 6) / 20)) + lv
    np.testing.assert_allclose(comp.static_curve_db(lv, p), expected, atol=1e-12)


# --- stereo link, dtypes, streaming ---------------------------------------------------------------

def test_stereo_link(rng):
    n = 30000
    left = rng.standard_normal(n) * 0.5
    right = rng.standard_normal(n) * 0.01  # quiet: alone it would not be compressed
    x = np.vstack((left, right))
    p = CompressorParams(threshold_db=-20, ratio=4, rms_ms=10)
    y, _ = comp.process(x, FS, p)
    np.testing.assert_allclose(y[0] / x[0], y[1] / x[1], rtol=1e-12)
    assert np.min(y[1] / x[1]) < 10 ** (-5 / 20)  # the quiet side follows the loud side
    ys, _ = comp.process(x[::-1], FS, p)  # the link is symmetric
    np.testing.assert_array_equal(ys, y[::-1])
    alone, _ = comp.process(x[1:], FS, p)
    np.testing.assert_array_equal(alone, x[1:])


def test_float32_input_matches_float64(rng):
    x = (rng.standard_normal((2, 5000)) * 0.4).astype(np.float32)
    p = CompressorParams(threshold_db=-25, ratio=6, knee_db=3)
    y32, _ = comp.process(x, FS, p)
    y64, _ = comp.process(x.astype(np.float64), FS, p)
    assert y32.dtype == np.float64
    np.testing.assert_array_equal(y32, y64)


@given(
    seed=st.integers(0, 2**31),
    cuts=st.lists(st.integers(0, 6000), max_size=6),
    rms=st.sampled_from([0.0, 0.7, 5.0]),
    attack=st.floats(0, 20),
    release=st.floats(0, 200),
    knee=st.floats(0, 12),
    mix=st.floats(0, 100),
)
@settings(max_examples=30, deadline=None)
def test_blockwise_equals_whole(seed, cuts, rms, attack, release, knee, mix):
    rng = np.random.default_rng(seed)
    n = 6000
    x = rng.standard_normal((2, n)) * np.repeat(10 ** rng.uniform(-3, 0, n // 500), 500)
    p = CompressorParams(threshold_db=-30, ratio=5, attack_ms=attack, release_ms=release, knee_db=knee,
                         rms_ms=rms, mix_pct=mix, makeup_db=3)
    whole, _ = comp.process(x, FS, p)
    state, parts = None, []
    bounds = [0, *sorted(cuts), n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        y, state = comp.process(x[:, a:b], FS, p, state)
        parts.append(y)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_state_is_not_mutated(rng):
    x = rng.standard_normal((2, 4000))
    p = CompressorParams(threshold_db=-20)
    _, st0 = comp.process(x, FS, p)
    ring, scal = st0.ring.copy(), st0.scalars.copy()
    a, _ = comp.process(x, FS, p, st0)
    b, _ = comp.process(x, FS, p, st0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(st0.ring, ring)
    np.testing.assert_array_equal(st0.scalars, scal)


def test_state_must_match_parameters(rng):
    _, state = comp.process(rng.standard_normal((2, 100)), FS, CompressorParams(rms_ms=5))
    with pytest.raises(ParameterError):
        comp.process(rng.standard_normal((2, 100)), FS, CompressorParams(rms_ms=10), state)


def test_empty_and_bad_input():
    y, _ = comp.process(np.zeros((2, 0)), FS, CompressorParams())
    assert y.shape == (2, 0)
    with pytest.raises(ParameterError):
        comp.process(np.zeros(100), FS, CompressorParams())
    with pytest.raises(ParameterError):
        comp.process(np.zeros((2, 100)), 0, CompressorParams())


# --- parameters ---------------------------------------------------------------------------------

@given(
    thr=st.floats(-60, 0), ratio=st.floats(1, 100), attack=st.floats(0, 500), release=st.floats(0, 5000),
    knee=st.floats(0, 24), rms=st.floats(0, 1000), makeup=st.floats(-24, 6), auto=st.booleans(),
    mix=st.floats(0, 100),
)
@settings(max_examples=30, deadline=None)
def test_json_round_trip(thr, ratio, attack, release, knee, rms, makeup, auto, mix):
    p = CompressorParams(threshold_db=thr, ratio=ratio, attack_ms=attack, release_ms=release, knee_db=knee,
                         rms_ms=rms, makeup_db=makeup, auto_makeup=auto, mix_pct=mix)
    assert CompressorParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p


@pytest.mark.parametrize("field,value", [
    ("threshold_db", 1.0), ("threshold_db", -61.0), ("ratio", 0.9), ("ratio", 101.0), ("ratio", math.inf),
    ("attack_ms", -1.0), ("release_ms", 5001.0), ("knee_db", 25.0), ("rms_ms", 1001.0), ("makeup_db", 6.5),
    ("mix_pct", 100.5), ("threshold_db", math.nan), ("auto_makeup", 1),
])
def test_out_of_range_parameters_are_refused(field, value):
    with pytest.raises(ParameterError):
        CompressorParams(**{field: value})


def test_from_dict_rejects_unknown_and_wrong_types():
    with pytest.raises(ChainError):
        CompressorParams.from_dict({"threshold": -10})
    with pytest.raises(ChainError):
        CompressorParams.from_dict({"auto_makeup": "yes"})


def test_spec():
    assert comp.SPEC.kind == "compressor"
    assert comp.SPEC.params_type is CompressorParams
    assert comp.SPEC.native_fx == "ReaComp (Cockos)"
    assert comp.SPEC.latency_samples(CompressorParams(), FS) == 0


@pytest.mark.parametrize("knee", [0.0, 5e-324, 2.2250738585e-313, 1e-12, 9e-7])
def test_vanishing_knees_are_hard_knees(knee):
    # Regression: a subnormal knee width (found by hypothesis) gave a different curve depending on
    # the CPU's denormal handling in the worker; below a micro-dB the knee is now exactly hard.
    x = np.random.default_rng(3).standard_normal((2, 2000))
    hard = CompressorParams(threshold_db=-10.0, ratio=2.0, knee_db=0.0, attack_ms=0, release_ms=0, rms_ms=0)
    tiny = CompressorParams(threshold_db=-10.0, ratio=2.0, knee_db=knee, attack_ms=0, release_ms=0, rms_ms=0)
    assert np.array_equal(comp.gain_reduction_db(x, FS, tiny), comp.gain_reduction_db(x, FS, hard))
