"""The oversampled soft clip stage: linear below its knee, bounded, band-limited, streaming."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsp.errors import ParameterError
from dsp.process.chain import Chain, Stage, render
from dsp.process.clipper import ClipperParams, latency_samples, process, stats
from tests.conftest import sine

SR = 44100


@pytest.mark.parametrize("split_hz", [0.0, 3000.0])
def test_below_the_knee_it_is_a_pure_delay(rng, split_hz):
    x = rng.standard_normal((2, 5000)) * 0.05  # peaks about -12 dBFS, knee starts at -9
    p = ClipperParams(ceiling_db=-6.0, knee_db=3.0, split_hz=split_hz)
    y, state = process(x, SR, p)
    lat = latency_samples(p, SR)
    assert np.array_equal(y[:, lat:], x[:, :-lat])
    assert stats(state)["clipped_pct"] == 0.0


@given(st.floats(-12, 0), st.floats(0.5, 6), st.floats(0, 18))
def test_clipped_peaks_stay_near_the_ceiling(ceiling_db, knee_db, drive_db):
    # The curve never passes the ceiling; band-limiting the residual may ring a little over it
    # (music-like material: noise with a 12 kHz top).
    import scipy.signal as ss

    sos = ss.butter(8, 12000, fs=SR, output="sos")
    x = ss.sosfilt(sos, np.random.default_rng(3).standard_normal((2, 6000)), axis=-1)
    y, _ = process(x, SR, ClipperParams(drive_db=drive_db, ceiling_db=ceiling_db, knee_db=knee_db))
    peak_db = 20 * np.log10(np.abs(y).max())
    assert peak_db <= ceiling_db + 3.0  # measured worst: +2.54 dB, noise driven 10-13 dB into a 1 dB knee
    assert peak_db <= 20 * np.log10(np.abs(x).max()) + drive_db + 1e-9  # never louder than its input


def test_takes_the_top_off_a_hit_and_leaves_the_bed():
    bed = sine(1000, SR, 1.0, amp=0.1)
    x = bed.copy()
    x[:, SR // 2: SR // 2 + 100] += 0.8 * np.hanning(100)
    p = ClipperParams(ceiling_db=-6.0, knee_db=3.0)
    y = render(Chain((Stage("clipper", p),)), x, SR)
    assert np.abs(y[:, SR // 2: SR // 2 + 100]).max() < 0.6  # the hit is held near -6 dBFS (0.5)
    assert np.array_equal(y[:, : SR // 4], x[:, : SR // 4].astype(np.float32))  # the bed before it is untouched


def test_harmonics_are_band_limited_not_folded():
    # A 5 kHz sine clipped 6 dB: odd harmonics at 15, 25, 35 kHz... fold to 19.1, 9.1, ... kHz when
    # clipped at the base rate; oversampled, the folded products stay far under the kept harmonic.
    x = sine(5000, SR, 1.0, amp=1.0)
    y, _ = process(x, SR, ClipperParams(ceiling_db=-6.0, knee_db=1.0))
    seg = y[0, 2000: 2000 + 32768]
    sp = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    f = np.fft.rfftfreq(len(seg), 1 / SR)

    def level(hz):
        return 20 * np.log10(sp[np.abs(f - hz) < 20].max() / sp.max())

    assert level(15000) > -40  # the kept third harmonic is there
    assert level(44100 - 25000) < level(15000) - 30  # 25 kHz folded to 19.1 kHz: filtered, not aliased
    assert level(35000 - 22050) < level(15000) - 30  # 35 kHz folded to 9.1 kHz


@pytest.mark.parametrize("p", [ClipperParams(ceiling_db=-3.0, knee_db=2.0, drive_db=3.0),
                               ClipperParams(ceiling_db=-3.0, knee_db=2.0, split_hz=3000.0)])
@given(st.lists(st.integers(0, 6000), min_size=1, max_size=5))
def test_blockwise_equals_whole(p, cuts):
    x = np.random.default_rng(9).standard_normal((2, 6000)) * 0.6
    whole, st_whole = process(x, SR, p)
    edges = sorted({0, 6000, *cuts})
    state, parts = None, []
    for a, b in zip(edges[:-1], edges[1:]):
        y, state = process(x[:, a:b], SR, p, state)
        parts.append(y)
    if p.split_hz:  # the clipped band is filtered in float32
        assert np.allclose(np.concatenate(parts, axis=1), whole, atol=1e-6)
    else:
        assert np.array_equal(np.concatenate(parts, axis=1), whole)
        assert stats(state) == stats(st_whole)


def test_chain_json_round_trip():
    c = Chain((Stage("clipper", ClipperParams(ceiling_db=-4.5, knee_db=2.0), label="soft clip"),))
    assert Chain.from_json(c.to_json()) == c


@pytest.mark.parametrize("bad", [dict(ceiling_db=1.0), dict(knee_db=0.0), dict(drive_db=30.0), dict(split_hz=500.0)])
def test_parameter_ranges(bad):
    with pytest.raises(ParameterError):
        ClipperParams(**bad)


def _reference_clip(x, p):
    """The clip stage written plainly: zero-stuff, filter, curve, filter the residual, decimate."""
    from dsp.process.clipper import OVERSAMPLING as F, _TAPS as T, _filter

    h = _filter()
    g = 10 ** (p.drive_db / 20)
    c = 10 ** (p.ceiling_db / 20)
    k = c * 10 ** (-p.knee_db / 20)
    out = []
    for ch in x * g:
        xp = np.concatenate((np.zeros(2 * T), ch))
        s = np.zeros(F * len(xp))
        s[::F] = xp
        v = np.convolve(s, h)
        a = np.abs(v)
        bent = np.where(a > k, k + (c - k) * np.tanh((a - k) / (c - k)), a)
        e = np.convolve(np.sign(v) * (bent - a), h) / F
        n = len(ch)
        out.append(xp[T:T + n] + e[F * np.arange(n) + 2 * F * T])
    return np.array(out)


@pytest.mark.parametrize("amp", [0.05, 0.5, 1.5])
def test_equals_the_plain_reference(amp):
    # the kernel skips what cannot reach the knee; that must not change one sample
    x = np.random.default_rng(4).standard_normal((2, 20000)) * amp
    x[:, 5000:9000] *= 0.1  # quiet stretches between loud ones (pieces skipped, runs restarted)
    p = ClipperParams(ceiling_db=-4.0, knee_db=2.0, drive_db=1.0)
    y, state = process(x, SR, p)
    assert np.abs(y - _reference_clip(x, p)).max() < 1e-9
    if amp > 0.1:
        assert stats(state)["clipped_pct"] > 0.0


def test_bursts_in_one_channel_equal_the_plain_reference():
    # one channel clipping all along, the other quiet with short hits, fed in uneven blocks: the work
    # space the kernel keeps between channels and blocks must not leak into the quiet channel
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 30000))
    x[1] *= 0.01
    for at in (700, 4100, 9000, 9500, 20000):
        x[1, at:at + 300] = 1.5 * rng.standard_normal(300)
    p = ClipperParams(ceiling_db=-4.0, knee_db=2.0)
    state, parts = None, []
    for a, b in zip((0, 3000, 3001, 11000, 25000), (3000, 3001, 11000, 25000, 30000)):
        y, state = process(x[:, a:b], SR, p, state)
        parts.append(y)
    assert np.abs(np.concatenate(parts, axis=1) - _reference_clip(x, p)).max() < 1e-9


def test_clipped_share_counts_every_channel():
    x = sine(1000, SR, 0.5, amp=1.0)  # (2, n): the same sine in both channels
    p = ClipperParams(ceiling_db=-12.0, knee_db=1.0)
    _, st_stereo = process(x, SR, p)
    _, st_mono = process(x[:1], SR, p)
    assert stats(st_stereo)["clipped_pct"] == stats(st_mono)["clipped_pct"]
    assert 50.0 < stats(st_stereo)["clipped_pct"] <= 100.0


def test_split_clips_the_low_band_and_lets_the_treble_pass_clean():
    """Kicks clipped 4 dB over a steady 6 kHz partial: the full-band clip modulates the partial
    riding on each kick (sidebands); clipping under 2 kHz leaves it clean, and takes the kicks'
    top just the same."""
    t = np.arange(2 * SR) / SR
    x = 0.05 * np.sin(2 * np.pi * 6000 * t)
    for onset in np.arange(0.05, 1.7, 0.25):
        i = int(onset * SR)
        tt = t[: int(0.3 * SR)]
        x[i: i + tt.size] += 0.8 * np.sin(2 * np.pi * 55 * tt) * np.exp(-tt / 0.08)
    x = x[None].repeat(2, 0)

    def sidebands_db(y):
        seg = y[0, SR // 4: SR // 4 + SR]
        sp = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
        k = np.arange(sp.size) * SR / seg.size
        return 10 * np.log10(sp[(np.abs(k - 6000) >= 20) & (np.abs(k - 6000) <= 1000)].sum()
                             / sp[np.abs(k - 6000) <= 3].sum())

    full = ClipperParams(ceiling_db=-6.0, knee_db=3.0)
    split = ClipperParams(ceiling_db=-6.0, knee_db=3.0, split_hz=2000.0)
    y_full, _ = process(x, SR, full)
    y_split, st_split = process(x, SR, split)
    assert stats(st_split)["max_reduction_db"] > 3.0  # the kicks are clipped
    assert np.abs(y_split).max() < 0.6  # held near the -6 dBFS ceiling (0.5) with the partial on top
    assert sidebands_db(y_split) < sidebands_db(y_full) - 15.0
