"""Fitting ReaEQ bands to a correction curve: it recovers known EQs and respects its bounds."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.decide.eqfit import band_response_db, fit_eq
from dsp.measure.spectrum import THIRD_OCTAVE_CENTERS_HZ
from dsp.process.eq import EqBand, EqParams

F = np.asarray(THIRD_OCTAVE_CENTERS_HZ, dtype=float)
SR = 44100
W = ((F >= 40) & (F <= 16000)).astype(float)


def test_recovers_a_known_three_band_eq():
    truth = EqParams(bands=(EqBand("low_shelf", 90.0, 2.5), EqBand("band", 320.0, -3.5, 1.2),
                            EqBand("high_shelf", 8000.0, 3.0)))
    target = band_response_db(truth, SR, F)
    r = fit_eq(F, target, sample_rate=SR, weights=W)
    assert r.max_error_db < 0.25
    assert len(r.eq.bands) <= 6


def test_flat_curve_gives_no_eq():
    r = fit_eq(F, np.zeros_like(F), sample_rate=SR, weights=W)
    assert r.eq.bands == ()


def test_bounds_are_respected():
    target = np.where(F < 200, 15.0, -15.0)  # asks for far more than allowed
    r = fit_eq(F, target, sample_rate=SR, weights=W, max_bands=4, max_gain_db=6.0)
    assert len(r.eq.bands) <= 4
    for b in r.eq.bands:
        assert abs(b.gain_db) <= 6.0 + 1e-9
        assert b.bw_oct <= 3.0 + 1e-9 and b.freq_hz < 0.45 * SR


def test_deterministic():
    target = 3 * np.sin(np.log2(F / 30))
    a = fit_eq(F, target, sample_rate=SR, weights=W)
    b = fit_eq(F, target.copy(), sample_rate=SR, weights=W)
    assert a == b


@settings(max_examples=15)
@given(st.lists(st.floats(-4, 4), min_size=5, max_size=5), st.sampled_from([44100, 48000, 96000]))
def test_never_worse_than_no_eq(knots, sr):
    # A random smooth correction: the fit always reduces the weighted error below doing nothing.
    target = np.interp(np.log2(F), np.linspace(np.log2(20), np.log2(20000), 5), knots)
    r = fit_eq(F, target, sample_rate=sr, weights=W)
    before = np.sqrt(np.sum(W * target ** 2) / W.sum())
    assert r.rms_error_db <= before + 1e-9
    assert r.rms_error_db < 0.5 * before + 0.3
    # one move per place: no two same-sign bells within 1/12 octave of each other (the fit once
    # stacked +3.0 and +2.1 dB at 9263 and 9264 Hz)
    for sign in (1, -1):
        bells = sorted(b.freq_hz for b in r.eq.bands if b.type == "band" and b.gain_db * sign > 0)
        assert all(np.log2(hi / lo) >= 1 / 12 for lo, hi in zip(bells, bells[1:]))


def test_a_target_that_draws_two_bells_to_one_spot_gets_one():
    # a narrow, deep boost with tight limits: the greedy fit places a second bell on the first
    target = np.where(np.abs(np.log2(F / 9000.0)) < 0.4, 5.0, 0.0)
    r = fit_eq(F, target, sample_rate=SR, weights=W, max_gain_db=3.0, min_bw_oct=0.5)
    bells = sorted(b.freq_hz for b in r.eq.bands if b.type == "band" and b.gain_db > 0)
    assert all(np.log2(hi / lo) >= 1 / 12 for lo, hi in zip(bells, bells[1:])), r.eq


def fighting_pairs(eq: EqParams) -> int:
    b = eq.bands
    return sum(1 for i, x in enumerate(b) for y in b[i + 1:]
               if x.gain_db * y.gain_db < 0 and abs(np.log2(x.freq_hz / y.freq_hz)) < 1
               and min(abs(x.gain_db), abs(y.gain_db)) >= 1)


@pytest.mark.parametrize("seed", [0, 2, 4, 5])
def test_bands_that_only_fight_each_other_go(seed):
    # rough targets (seeded): the greedy fit places bands of opposite sign within an octave of each
    # other; those it can do without (the fit settled again is at most 0.2 dB rms worse) go
    rng = np.random.default_rng(seed)
    target = np.convolve(rng.uniform(-5, 5, F.size), np.ones(3) / 3, mode="same")
    kept = fit_eq(F, target, sample_rate=SR, weights=W, max_gain_db=4.0, min_bw_oct=0.5, prune_db=0.0)
    pruned = fit_eq(F, target, sample_rate=SR, weights=W, max_gain_db=4.0, min_bw_oct=0.5)
    assert fighting_pairs(kept.eq) > 0  # the case exists
    assert fighting_pairs(pruned.eq) < fighting_pairs(kept.eq)
    dropped = len(kept.eq.bands) - len(pruned.eq.bands)
    assert dropped >= 1 and pruned.rms_error_db <= kept.rms_error_db + 0.2 * dropped + 0.05
