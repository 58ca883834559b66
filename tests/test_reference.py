"""Reference mode: tonal balance and loudness of the reference, at a true-peak ceiling."""

import numpy as np
import pytest
import scipy.signal as ss

from dsp.decide.eqfit import band_response_db, fit_graphic_eq
from dsp.decide.presets import delivery
from dsp.decide.reference import master_to_reference, reference_target, tonal_error_db
from dsp.demo import demo_mix
from dsp.errors import ParameterError
from dsp.measure.analysis import analyze
from dsp.measure.spectrum import THIRD_OCTAVE_CENTERS_HZ
from dsp.process.eq import EqBand, EqParams, process

SR = 44100


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return demo_mix(SR, seconds=16.0)


def recolour(x: np.ndarray, *bands: EqBand, gain_db: float = 0.0) -> np.ndarray:
    y, _ = process(x, SR, EqParams(bands=bands, gain_db=gain_db))
    return y.astype(np.float32)


def tp8_db(x):
    return float(20 * np.log10(np.abs(ss.resample_poly(x.astype(np.float64), 8, 1, axis=-1)).max()))


def test_graphic_fit_follows_a_jagged_curve():
    f = np.asarray(THIRD_OCTAVE_CENTERS_HZ, dtype=float)
    w = ((f >= 40) & (f <= 16000)).astype(float)
    target = np.where(np.arange(len(f)) % 2 == 0, 3.0, -2.0) * w  # alternating band to band
    fit = fit_graphic_eq(f, target, sample_rate=SR, weights=w)
    got = band_response_db(fit.eq, SR, f)
    assert np.max(np.abs(got - target)[w > 0]) < 0.3


def test_matches_a_brighter_louder_reference(song):
    # The reference is the same music with a different tonal balance and 6 dB more level.
    ref = recolour(song, EqBand("low_shelf", 120.0, -3.0), EqBand("band", 2500.0, 4.0, 1.5),
                   EqBand("high_shelf", 8000.0, 5.0), gain_db=6.0)
    target = reference_target([analyze(ref, SR)], ("brighter",))
    mix_a = analyze(song, SR)
    before = tonal_error_db(mix_a, target.level_db)
    result, err = master_to_reference(song, SR, target, delivery("streaming"), before=mix_a)
    assert before > 1.5  # measured 1.92 dB
    assert err <= 0.3
    # err is against the smoothed, capped goal; against the reference itself the error stays small too
    assert tonal_error_db(result.after, target.level_db) <= 0.5
    assert result.after.integrated_lufs == pytest.approx(target.loudness_lufs, abs=0.2)
    assert tp8_db(result.audio) <= -1.0
    assert result.chain.meta["reference"] == ["brighter"]


def test_a_far_reference_is_matched_only_up_to_the_cap_with_a_warning(song):
    # 12 dB more top than the mix: the smoothed match stops at +/-6 dB and says so.
    from dsp.decide.reference import MATCH_CAP_DB

    ref = recolour(song, EqBand("high_shelf", 4000.0, 12.0), EqBand("low_shelf", 150.0, -10.0))
    target = reference_target([analyze(ref, SR)], ("far",))
    result, _ = master_to_reference(song, SR, target, delivery("streaming"))
    eq = next(s for s in result.chain.stages if s.label == "reference match EQ")
    f = np.asarray(THIRD_OCTAVE_CENTERS_HZ, dtype=float)
    f = f[(f >= 40) & (f <= 16000)]
    assert np.max(np.abs(band_response_db(eq.params, SR, f))) <= MATCH_CAP_DB + 0.5
    assert any("capped" in w for w in result.chain.meta["warnings"])


def test_tone_amount_zero_keeps_the_mix_tone(song):
    ref = recolour(song, EqBand("high_shelf", 6000.0, 6.0))
    target = reference_target([analyze(ref, SR)])
    a = analyze(song, SR)
    result, err = master_to_reference(song, SR, target, delivery(), tone_pct=0.0, before=a)
    assert result.chain.find("eq") is None or all(
        s.label != "reference match EQ" for s in result.chain.stages)
    assert abs(err) < 0.6  # measured against the mix's own shape: only the dynamics moved it


def test_several_references_are_averaged(song):
    bright = analyze(recolour(song, EqBand("high_shelf", 6000.0, 4.0)), SR)
    dark = analyze(recolour(song, EqBand("high_shelf", 6000.0, -4.0)), SR)
    both = reference_target([bright, dark])
    alone = reference_target([analyze(song, SR)])
    f = both.centers_hz
    sel = (f >= 40) & (f <= 16000)
    assert np.max(np.abs((both.level_db - alone.level_db)[sel])) < 0.3


def test_bad_amount_and_no_reference():
    with pytest.raises(ParameterError):
        reference_target([])
    with pytest.raises(ParameterError):
        master_to_reference(np.zeros((2, SR), np.float32), SR, reference_target([analyze(demo_mix(SR, seconds=2.0), SR)]),
                            delivery(), tone_pct=150.0)
