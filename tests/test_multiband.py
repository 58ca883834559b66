"""Multiband compressor: idle = crossover all-pass, per-band action, streaming, parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.errors import ChainError, ParameterError
from dsp.process import crossover
from dsp.process import multiband as mb
from dsp.process.multiband import BandCompParams, MultibandParams

FS = 48000


def tone_level_db(y: np.ndarray, freq_hz: float) -> float:
    """Amplitude (dBFS) of the component at ``freq_hz`` in channel 0 (whole periods, least squares)."""
    t = np.arange(y.shape[1]) / FS
    basis = np.vstack((np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t)))
    coef = basis @ y[0] / (y.shape[1] / 2)
    return float(20 * np.log10(np.hypot(*coef)))


def two_tones(low_amp: float, high_amp: float, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    s = low_amp * np.sin(2 * np.pi * 100 * t) + high_amp * np.sin(2 * np.pi * 3000 * t)
    return np.vstack((s, 0.9 * s))


def all_bands(n: int = 4, **kw) -> tuple[BandCompParams, ...]:
    return tuple(BandCompParams(**kw) for _ in range(n))


def test_idle_is_the_crossover_all_pass(rng):
    x = rng.standard_normal((2, 3 * mb._CHUNK + 123)) * 0.05
    parts, _ = crossover.split_bands(x, FS, (200.0, 1000.0, 5000.0))
    band_sum = np.sum(parts, axis=0)
    off, _ = mb.process(x, FS, MultibandParams(bands=all_bands(enabled=False)))
    np.testing.assert_allclose(off, band_sum, rtol=0, atol=1e-15)
    # enabled, but the signal stays below the 0 dBFS thresholds: exactly the same
    quiet, _ = mb.process(x, FS, MultibandParams())
    np.testing.assert_array_equal(quiet, off)
    assert not np.allclose(off, x, atol=1e-3)  # the all-pass does shift phase


def test_idle_magnitude_is_flat():
    x = np.zeros((1, 1 << 15))
    x[0, 0] = 0.5
    y, _ = mb.process(x, FS, MultibandParams(crossovers_hz=(120.0, 900.0, 7000.0)))
    mag_db = 20 * np.log10(np.abs(np.fft.rfft(y[0])) / 0.5)
    assert np.max(np.abs(mag_db)) < 1e-6


def test_loud_band_is_compressed_and_quiet_band_is_not():
    x = two_tones(10 ** (-6 / 20), 10 ** (-40 / 20))
    p = MultibandParams(bands=all_bands(threshold_db=-30.0, ratio=4.0, attack_ms=5.0, release_ms=100.0,
                                        rms_ms=10.0))
    y, _ = mb.process(x, FS, p)
    tail = slice(FS // 2, None)  # settled; 1 s = whole periods of both tones
    low_drop = tone_level_db(x[:, tail], 100) - tone_level_db(y[:, tail], 100)
    high_change = tone_level_db(y[:, tail], 3000) - tone_level_db(x[:, tail], 3000)
    # the 100 Hz band's RMS (-9.5 dB) is 20.5 dB over the threshold: 4:1 takes about 15 dB off
    assert 12.0 < low_drop < 17.0
    assert abs(high_change) < 0.02
    # the other way round: only 3 kHz drops. Less than 15 dB, because a tenth of the
    # 3 kHz tone's amplitude sits in the >5 kHz band (LR4 skirt), which compresses less.
    x2 = two_tones(10 ** (-40 / 20), 10 ** (-6 / 20))
    y2, _ = mb.process(x2, FS, p)
    assert abs(tone_level_db(y2[:, tail], 100) - tone_level_db(x2[:, tail], 100)) < 0.02
    assert 8.0 < tone_level_db(x2[:, tail], 3000) - tone_level_db(y2[:, tail], 3000) < 17.0


def test_disabling_the_loud_band_leaves_it_alone():
    x = two_tones(10 ** (-6 / 20), 10 ** (-40 / 20))
    bands = list(all_bands(threshold_db=-30.0, ratio=4.0))
    bands[0] = BandCompParams(threshold_db=-30.0, ratio=4.0, enabled=False)
    y, _ = mb.process(x, FS, MultibandParams(bands=tuple(bands)))
    tail = slice(FS // 2, None)
    assert abs(tone_level_db(y[:, tail], 100) - tone_level_db(x[:, tail], 100)) < 0.02


def test_band_makeup_scales_only_its_band(rng):
    x = rng.standard_normal((2, 20000)) * 0.05
    parts, _ = crossover.split_bands(x, FS, (200.0, 1000.0, 5000.0))
    bands = list(all_bands())
    bands[2] = BandCompParams(makeup_db=6.0)
    y, _ = mb.process(x, FS, MultibandParams(bands=tuple(bands)))
    expected = parts[0] + parts[1] + parts[2] * 10 ** (6 / 20) + parts[3]
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("xs", [(1000.0,), (300.0, 4000.0), (100.0, 800.0, 6000.0)])
def test_one_to_three_crossovers(rng, xs):
    x = rng.standard_normal((2, 5000)) * 0.5
    p = MultibandParams(crossovers_hz=xs, bands=all_bands(len(xs) + 1, threshold_db=-20.0, ratio=3.0))
    y, _ = mb.process(x, FS, p)
    parts, _ = crossover.split_bands(x, FS, xs)
    idle = np.sum(parts, axis=0)
    assert y.shape == x.shape and y.dtype == np.float64
    assert np.sqrt(np.mean(y**2)) < np.sqrt(np.mean(idle**2)) * 10 ** (-3 / 20)  # it compresses


@given(seed=st.integers(0, 2**31), cuts=st.lists(st.integers(0, 40000), max_size=5),
       rms=st.sampled_from([0.0, 5.0]), release=st.floats(0, 300))
@settings(max_examples=10, deadline=None)
def test_blockwise_equals_whole(seed, cuts, rms, release):
    rng = np.random.default_rng(seed)
    n = 40000  # spans several internal chunks
    x = rng.standard_normal((2, n)) * np.repeat(10 ** rng.uniform(-3, 0, n // 1000), 1000)
    bands = (
        BandCompParams(threshold_db=-30, ratio=4, rms_ms=rms, release_ms=release),
        BandCompParams(threshold_db=-20, ratio=2, knee_db=6, makeup_db=2),
        BandCompParams(enabled=False),
        BandCompParams(threshold_db=-40, ratio=100, attack_ms=0, rms_ms=rms, auto_makeup=True),
    )
    p = MultibandParams(crossovers_hz=(150.0, 2000.0, 8000.0), bands=bands)
    whole, _ = mb.process(x, FS, p)
    state, parts = None, []
    bounds = [0, *sorted(cuts), n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        y, state = mb.process(x[:, a:b], FS, p, state)
        parts.append(y)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


band_strategy = st.builds(
    BandCompParams,
    threshold_db=st.floats(-60, 0), ratio=st.floats(1, 100), attack_ms=st.floats(0, 250),
    release_ms=st.floats(0, 2000), knee_db=st.floats(0, 24), rms_ms=st.floats(0, 250),
    makeup_db=st.floats(-24, 12), auto_makeup=st.booleans(), enabled=st.booleans(),
)


@given(xs=st.sampled_from([(200.0,), (90.0, 2500.0), (200.0, 1000.0, 5000.0), (25.0, 400.0, 20000.0)]),
       data=st.data())
@settings(max_examples=25, deadline=None)
def test_json_round_trip(xs, data):
    bands = tuple(data.draw(band_strategy) for _ in range(len(xs) + 1))
    p = MultibandParams(crossovers_hz=xs, bands=bands)
    assert MultibandParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_defaults_are_reaxcomp_like():
    p = MultibandParams()
    assert p.crossovers_hz == (200.0, 1000.0, 5000.0)
    assert len(p.bands) == 4
    assert (p.bands[0].ratio, p.bands[0].attack_ms, p.bands[0].release_ms) == (2.0, 15.0, 150.0)


@pytest.mark.parametrize("kwargs", [
    dict(crossovers_hz=(200.0, 1000.0), bands=all_bands(4)),
    dict(crossovers_hz=(), bands=all_bands(1)),
    dict(crossovers_hz=(100.0, 200.0, 400.0, 800.0), bands=all_bands(5)),
    dict(crossovers_hz=(1000.0, 200.0, 5000.0)),
    dict(crossovers_hz=(200.0, 210.0, 5000.0)),
    dict(crossovers_hz=(10.0, 1000.0, 5000.0)),
    dict(crossovers_hz=(200.0, 1000.0, 25000.0)),
])
def test_bad_multiband_parameters(kwargs):
    with pytest.raises(ParameterError):
        MultibandParams(**kwargs)


@pytest.mark.parametrize("field,value", [
    ("attack_ms", 251.0), ("release_ms", 2001.0), ("rms_ms", 251.0), ("makeup_db", 12.5), ("ratio", 0.5),
    ("threshold_db", 0.1), ("enabled", 1),
])
def test_band_ranges_follow_reaxcomp(field, value):
    with pytest.raises(ParameterError):
        BandCompParams(**{field: value})


def test_crossover_must_fit_the_sample_rate():
    p = MultibandParams(crossovers_hz=(200.0, 1000.0, 20000.0))
    with pytest.raises(ParameterError):
        mb.process(np.zeros((2, 100)), 44100, p)
    y, _ = mb.process(np.zeros((2, 100)), 48000, p)
    assert np.array_equal(y, np.zeros((2, 100)))


def test_from_dict_errors():
    with pytest.raises(ChainError):
        MultibandParams.from_dict({"crossovers_hz": 200.0})
    with pytest.raises(ChainError):
        MultibandParams.from_dict({"bands": [{"thresh": -10}] * 4})


def test_empty_and_state_mismatch():
    y, state = mb.process(np.zeros((2, 0)), FS, MultibandParams())
    assert y.shape == (2, 0)
    with pytest.raises(ParameterError):
        mb.process(np.zeros((2, 10)), FS, MultibandParams(crossovers_hz=(500.0,), bands=all_bands(2)), state)


def test_spec():
    assert mb.SPEC.kind == "multiband"
    assert mb.SPEC.params_type is MultibandParams
    assert mb.SPEC.native_fx == "ReaXcomp (Cockos)"
    assert mb.SPEC.latency_samples(MultibandParams(), FS) == 0
