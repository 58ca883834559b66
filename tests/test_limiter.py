"""The true-peak limiter: never over its ceiling at 8x, transparent below threshold, streaming."""

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dsp.errors import ParameterError
from dsp.process.limiter import LimiterParams, latency_samples, limit, process
from tests.conftest import sine


def tp8_db(y: np.ndarray) -> float:
    """Independent 8x reference meter (scipy's polyphase resampler)."""
    return float(20 * np.log10(np.abs(ss.resample_poly(y, 8, 1, axis=-1)).max()))


def adversarial(sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = np.arange(sr)
    return {
        "full_scale_noise": np.clip(rng.standard_normal((2, sr)), -1, 1),
        "square_441": np.sign(np.sin(2 * np.pi * 441 * n / sr))[None].repeat(2, 0),
        "fs4_45deg": np.sin(2 * np.pi * n / 4 + np.pi / 4)[None].repeat(2, 0),
        "fs4_abrupt_after_silence": np.concatenate((np.zeros((2, 500)), np.sin(2 * np.pi * n / 4 + np.pi / 4)[None].repeat(2, 0)), 1),
        "clicks": np.where(rng.random((2, sr)) < 0.002, rng.choice([-1.0, 1.0], (2, sr)), 0.0),
        "mono_bass": np.sin(2 * np.pi * 40 * n / sr)[None] * 1.0,
        "hot_8ch": np.clip(rng.standard_normal((8, sr // 4)) * 2, -4, 4),
    }


@pytest.mark.parametrize("sr", [44100, 48000, 96000])
@pytest.mark.parametrize("threshold_db", [0.0, -8.0, -20.0])
def test_never_over_ceiling_on_adversarial_signals(sr, threshold_db, rng):
    ceiling = -1.0
    for name, x in adversarial(sr, rng).items():
        y = limit(x, sr, LimiterParams(threshold_db=threshold_db, ceiling_dbtp=ceiling, release_ms=50.0))
        assert tp8_db(y) <= ceiling + 1e-3, name


@given(
    arrays(np.float64, (2, 4000), elements={"min_value": -4, "max_value": 4, "allow_nan": False}),
    st.floats(-24, 6), st.floats(-6, 0), st.floats(1, 500), st.floats(0.5, 10),
)
def test_never_over_ceiling_property(x, threshold_db, ceiling, release_ms, lookahead_ms):
    p = LimiterParams(threshold_db=threshold_db, ceiling_dbtp=ceiling, release_ms=release_ms, lookahead_ms=lookahead_ms)
    y = limit(x, 44100, p)
    if np.any(y):
        assert tp8_db(y) <= ceiling + 1e-3


def test_transparent_below_threshold():
    # Peaks 6 dB under the threshold: the limiter is a pure gain (ceiling - threshold) and a delay.
    sr = 48000
    x = sine(1000, sr, 0.5, amp=10 ** (-12 / 20), fade_s=0.01)
    p = LimiterParams(threshold_db=-6.0, ceiling_dbtp=-1.0)
    y = limit(x, sr, p)
    assert np.allclose(y, x * 10 ** (5 / 20), atol=1e-9)


def test_reduction_recovers_with_release():
    sr = 48000
    burst = sine(1000, sr, 0.2, amp=1.0)
    quiet = sine(1000, sr, 1.0, amp=0.1)
    x = np.concatenate((burst, quiet), axis=1)
    p = LimiterParams(threshold_db=-6.0, ceiling_dbtp=-1.0, release_ms=50.0)
    y = limit(x, sr, p)
    gain_db = 20 * np.log10(np.abs(y[0, -2000:]).max() / 0.1)
    assert gain_db == pytest.approx(5.0, abs=0.05)  # fully recovered to the static gain
    half = sr * 2 // 10 + int(0.05 * sr)  # one release time after the burst
    g_release = 20 * np.log10(np.abs(y[0, half: half + 200]).max() / 0.1)
    assert 5.0 - 7.0 < g_release < 5.0 - 1.0  # still recovering (about 1/e of 6 dB left)


@given(st.lists(st.integers(0, 9000), min_size=1, max_size=6))
def test_blockwise_equals_whole(cuts):
    x = np.random.default_rng(7).standard_normal((2, 9000)) * 0.8
    p = LimiterParams(threshold_db=-6.0)
    whole, _ = process(x, 44100, p)
    edges = sorted({0, 9000, *cuts})
    state, parts = None, []
    for a, b in zip(edges[:-1], edges[1:]):
        y, state = process(x[:, a:b], 44100, p, state)
        parts.append(y)
    assert np.allclose(np.concatenate(parts, axis=1), whole, atol=1e-12)


def test_latency_is_reported_and_removed():
    sr = 44100
    p = LimiterParams(lookahead_ms=5.0)
    assert latency_samples(p, sr) == 10 + 10 + round(0.005 * sr) - 1
    x = np.zeros((1, 2000))
    x[0, 700] = 0.1
    y = limit(x, sr, p)
    assert int(np.argmax(np.abs(y[0]))) == 700


@pytest.mark.parametrize("bad", [dict(ceiling_dbtp=0.5), dict(release_ms=0.0), dict(threshold_db=float("nan")),
                                 dict(lookahead_ms=50.0)])
def test_parameter_ranges(bad):
    with pytest.raises(ParameterError):
        LimiterParams(**bad)


def test_gain_reduction_trace_is_blocking_independent():
    from dsp.process.limiter import stats

    sr = 44100
    x = np.concatenate((sine(1000, sr, 0.5, amp=1.0), sine(1000, sr, 1.0, amp=0.05)), axis=1)
    p = LimiterParams(threshold_db=-6.0, ceiling_dbtp=-1.0, release_ms=30.0)
    _, whole = process(x, sr, p)
    state = None
    for a in range(0, x.shape[1], 1234):
        _, state = process(x[:, a: a + 1234], sr, p, state)
    t1, t2 = stats(whole), stats(state)
    assert t1["trace_db"] == t2["trace_db"] and len(t1["trace_db"]) == 15
    assert min(t1["trace_db"][1:5]) > 4.5  # the loud half second is limited by about 6 dB
    assert max(t1["trace_db"][-5:]) == 0.0  # then fully released
