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
    """Independent reference: scipy's polyphase resampler, whole signal at once."""
    return float(20 * np.log10(np.abs(ss.resample_poly(x.astype(np.float64), factor, 1, axis=-1)).max()))


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

    want = ss.firwin(20 * factor + 1, 1.0 / factor, window=("kaiser", 5.0))
    assert np.allclose(kaiser_lowpass(20 * factor + 1, 1.0 / factor), want, atol=1e-15)
