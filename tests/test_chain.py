"""The chain document: JSON round trips, strict validation, rendering equals processing."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsp.errors import CancelledError, ChainError
from dsp.process.chain import Chain, Stage, latency_samples, processor_spec, render
from dsp.process.limiter import LimiterParams, limit
from dsp.process.utility import GainParams


def full_chain() -> Chain:
    from dsp.process.compressor import CompressorParams
    from dsp.process.eq import EqBand, EqParams
    from dsp.process.multiband import MultibandParams
    from dsp.process.stereo import StereoParams
    from dsp.process.utility import DcParams, HighPassParams

    return Chain((
        Stage("dc", DcParams(), label="DC"),
        Stage("high_pass", HighPassParams(freq_hz=25.0, order=4)),
        Stage("eq", EqParams(bands=(EqBand("low_shelf", 100.0, 2.0, 1.0), EqBand("band", 300.0, -2.5, 1.5),
                                    EqBand("high_shelf", 9000.0, 1.5, 1.0)))),
        Stage("compressor", CompressorParams(threshold_db=-20.0, ratio=2.0, attack_ms=20.0, release_ms=150.0,
                                             knee_db=6.0)),
        Stage("multiband", MultibandParams()),
        Stage("stereo", StereoParams(width_pct=(100.0, 110.0), crossovers_hz=(500.0,), mono_bass_hz=100.0)),
        Stage("gain", GainParams(gain_db=3.0)),
        Stage("limiter", LimiterParams(threshold_db=-6.0, ceiling_dbtp=-1.0), why="loudness"),
    ), {"target_lufs": -14.0})


def test_json_round_trip_is_lossless():
    c = full_chain()
    again = Chain.from_json(c.to_json())
    assert again == c
    assert json.loads(again.to_json()) == json.loads(c.to_json())


def test_every_kind_is_registered():
    for stage in full_chain().stages:
        assert processor_spec(stage.kind).kind == stage.kind


@pytest.mark.parametrize("doc, fragment", [
    ("{", "not valid JSON"),
    ('{"format": "other"}', "not a ReaMaster chain"),
    ('{"format": "reamaster.chain", "version": 99, "stages": []}', "version 99"),
    ('{"format": "reamaster.chain", "version": 1, "stages": [{"kind": "fuzz"}]}', "unknown processor kind"),
    ('{"format": "reamaster.chain", "version": 1, "stages": [{"kind": "gain", "params": {"gain_db": "loud"}}]}', "must be a number"),
    ('{"format": "reamaster.chain", "version": 1, "stages": [{"kind": "gain", "params": {"gain_db": 99}}]}', "outside"),
    ('{"format": "reamaster.chain", "version": 1, "stages": [{"kind": "gain", "params": {"volume": 1}}]}', "unknown parameter"),
    ('{"format": "reamaster.chain", "version": 1, "stages": {}}', "must be a list"),
    ('{"format": "reamaster.chain", "version": 1, "stages": [{"kind": "eq", "params": {"bands": [{"type": "band", "freq_hz": 100, "bw_oct": "x"}]}}]}', "must be a number"),
])
def test_malformed_documents_are_refused_with_a_reason(doc, fragment):
    with pytest.raises(ChainError, match=fragment):
        Chain.from_json(doc)


def test_render_equals_stage_by_stage_processing(rng):
    x = (rng.standard_normal((2, 30000)) * 0.2).astype(np.float32)
    sr = 44100
    c = full_chain()
    y = render(c, x, sr, block_size=4096)
    # Reference: each stage on the whole signal at once, latency removed at the end.
    # The input is padded once with the whole chain's latency, so a stage with a long tail (the
    # linear-phase mono bass) rings on into the padding as it does in a render.
    lat = sum(processor_spec(s.kind).latency_samples(s.params, sr) for s in c.stages)
    ref = np.concatenate((x.astype(np.float64), np.zeros((2, lat))), axis=1)
    for s in c.stages:
        ref, _ = processor_spec(s.kind).process(ref, sr, s.params, None)
    ref = ref[:, lat: lat + x.shape[1]]
    assert latency_samples(c, sr) == lat
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - ref)) < 1e-5


@given(st.integers(64, 20000))
def test_block_size_does_not_change_the_output(block_size):
    x = np.random.default_rng(1).standard_normal((2, 12000)).astype(np.float32) * 0.3
    c = full_chain()
    assert np.allclose(render(c, x, 48000, block_size=block_size), render(c, x, 48000, block_size=1 << 16), atol=1e-6)


def test_disabled_stage_is_skipped_and_latency_compensated(rng):
    x = (rng.standard_normal((1, 5000)) * 0.1).astype(np.float32)
    c = Chain((Stage("gain", GainParams(gain_db=6.0), enabled=False),
               Stage("limiter", LimiterParams(threshold_db=0.0, ceiling_dbtp=0.0))))
    y = render(c, x, 44100)
    assert np.allclose(y, limit(x.astype(np.float64), 44100, LimiterParams(threshold_db=0.0, ceiling_dbtp=0.0)), atol=1e-6)


def test_progress_and_cancel(rng):
    x = (rng.standard_normal((2, 50000)) * 0.1).astype(np.float32)
    seen = []
    render(Chain((Stage("gain", GainParams()),)), x, 44100, block_size=10000, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 5
    with pytest.raises(CancelledError):
        render(Chain((Stage("gain", GainParams()),)), x, 44100, block_size=10000, progress=lambda f: False)


def test_render_in_place_equals_render(rng):
    x = (rng.standard_normal((2, 40000)) * 0.3).astype(np.float32)
    c = full_chain()
    want = render(c, x, 44100, block_size=3000)
    buf = x.copy()
    got = render(c, buf, 44100, block_size=3000, out=buf)
    assert got is buf and np.array_equal(got, want)
