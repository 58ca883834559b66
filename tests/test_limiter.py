"""The true-peak limiter: never over its ceiling at 8x, transparent below threshold, streaming."""

import dataclasses

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dsp.errors import ParameterError
from dsp.process.limiter import LimiterParams, latency_samples, limit, process
from tests.conftest import sine
from tests.test_truepeak import ebur128_tp_db  # at collection: importing inside a @given test nests its @given


def ideal_tp_db(y: np.ndarray, factor: int = 16) -> float:
    """Independent reference: ideal band-limited interpolation (FFT, zero-padded so nothing wraps)."""
    pad = np.zeros((y.shape[0], 2048))
    z = np.concatenate((pad, y, pad), axis=1)
    return float(20 * np.log10(np.abs(ss.resample(z, z.shape[1] * factor, axis=-1)).max()))


def meters_db(y: np.ndarray, sr: int) -> dict[str, float]:
    """What users check with: libebur128, an ideal interpolator, our own 8x meter.

    (scipy's resample_poly with its default short filter is no reference at this precision: its
    gain ripple reads up to 0.06 dB over the ideal interpolation on noise.)"""
    from dsp.measure.truepeak import true_peak_dbtp

    return {"libebur128": ebur128_tp_db(y, sr), "ideal16": ideal_tp_db(y), "ours8": true_peak_dbtp(y, factor=8)}


#: the detector is exact to MARGIN_DB for content up to 0.9 of Nyquist (dsp/process/limiter.py); a
#: master carries next to nothing above (20 kHz is 0.91 of 44.1 kHz's Nyquist)
_BAND_LIMIT = ss.butter(16, 0.9, output="sos")


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
    """As they are: never over on the BS.1770 meters; band-limited to 0.9 of Nyquist: never over
    the ideal interpolation either (see _BAND_LIMIT)."""
    ceiling = -1.0
    for name, x in adversarial(sr, rng).items():
        for band_limited in (False, True):
            src = ss.sosfiltfilt(_BAND_LIMIT, x, axis=-1) if band_limited else x
            y = limit(src, sr, LimiterParams(threshold_db=threshold_db, ceiling_dbtp=ceiling, release_ms=50.0))
            for meter, v in meters_db(y, sr).items():
                if meter != "ideal16" or band_limited:
                    assert v <= ceiling + 1e-3, (name, meter, band_limited)


@given(
    arrays(np.float64, (2, 4000), elements={"min_value": -4, "max_value": 4, "allow_nan": False}),
    st.floats(-24, 6), st.floats(-6, 0), st.floats(1, 500), st.floats(0.5, 10),
)
def test_never_over_ceiling_property(x, threshold_db, ceiling, release_ms, lookahead_ms):
    """Any signal: never over on the BS.1770 meters (libebur128 and ours). Band-limited to 0.9 of
    Nyquist: never over the ideal interpolation either. (On arbitrary full-band samples the ideal
    reading can stand far above every standard meter: +0.84 dB on a 0/1 pulse train.)"""
    p = LimiterParams(threshold_db=threshold_db, ceiling_dbtp=ceiling, release_ms=release_ms, lookahead_ms=lookahead_ms)
    for band_limited in (False, True):
        src = ss.sosfiltfilt(_BAND_LIMIT, x, axis=-1) if band_limited else x
        y = limit(src, 44100, p)
        if not np.any(y):
            continue
        for meter, v in meters_db(y, 44100).items():
            if meter == "ideal16" and not band_limited:
                continue
            assert v <= ceiling + 1e-3, (meter, band_limited)


@pytest.mark.parametrize("sr", [44100, 48000])
def test_never_over_on_an_ideal_reference_with_treble(sr):
    """Band-limited treble-heavy and adversarial material, driven 6-18 dB into the limiter: under the
    ceiling on an ideal 16x reference as well as on libebur128."""
    from tests.test_truepeak import adversarial_band_limited, ebur128_tp_db, ideal_tp_db

    for seed in range(3):
        for name, x in adversarial_band_limited(sr, 200 + seed).items():
            for thr in (-6.0, -18.0):
                y = limit(x, sr, LimiterParams(threshold_db=thr, ceiling_dbtp=-0.5, release_ms=20.0))
                assert ideal_tp_db(y) <= -0.5 + 1e-3, (name, seed, thr)
                assert ebur128_tp_db(y, sr) <= -0.5 + 1e-3, (name, seed, thr)


def thd_pct(y: np.ndarray, f: float, sr: int) -> float:
    seg = y[0, sr // 2: sr // 2 + sr]
    sp = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    k = np.arange(len(sp)) * sr / len(seg)
    fund = sp[np.abs(k - f) < 3].max()
    return 100 * float(np.sqrt(sum(sp[np.abs(k - h * f) < 3].max() ** 2 for h in range(2, 30)))) / fund


@pytest.mark.parametrize("freq_hz", [35.0, 50.0, 80.0])
@pytest.mark.parametrize("reduction_db", [6.0, 12.0])
def test_bass_gets_a_steady_gain(freq_hz, reduction_db):
    # The hold covers half a bass period: the gain does not ripple at twice the bass frequency.
    sr = 44100
    x = sine(freq_hz, sr, 2.0, amp=0.5)
    y = limit(x, sr, LimiterParams(threshold_db=-6.02 - reduction_db, ceiling_dbtp=-1.0))
    assert thd_pct(y, freq_hz, sr) <= 0.3


def test_program_dependent_release():
    """A short transient lets go quickly; a sustained over releases slowly (no pumping after it)."""
    sr = 44100
    bed = sine(1000, sr, 3.0, amp=0.05)
    short = bed.copy()
    short[:, sr: sr + 220] += sine(3000, sr, 0.005, amp=0.9)  # a 5 ms hit
    long_ = bed.copy()
    long_[:, sr // 2: 2 * sr] += sine(3000, sr, 1.5, amp=0.9)  # 1.5 s sustained over
    p = LimiterParams(threshold_db=-12.0, ceiling_dbtp=-1.0, release_ms=40.0)

    def reduction_after(y, t0_s, dt_s):
        i = int((t0_s + dt_s) * sr)
        return 20 * np.log10(0.05 * 10 ** (11 / 20) / np.abs(y[0, i: i + 200]).max())

    ys, yl = limit(short, sr, p), limit(long_, sr, p)
    assert reduction_after(ys, 1.005, 0.15) < 0.5  # the hit: nearly recovered 150 ms later
    assert reduction_after(yl, 2.0, 0.15) > 1.5 * max(reduction_after(ys, 1.005, 0.15), 0.5)  # sustained: slower


def _bed_level_db(y: np.ndarray, sr: int, t_s: float) -> float:
    i = int(t_s * sr)
    return float(20 * np.log10(np.sqrt(np.mean(y[:, i: i + sr // 100] ** 2))))


def test_a_click_does_not_duck_what_follows():
    """An isolated 0.5 ms click 30 dB over a quiet bed: with ``transient_ms`` the event is short,
    so the bed is back within 20 ms; an over longer than ``transient_ms`` gets the full release."""
    sr = 44100
    bed = sine(2000, sr, 2.0, amp=0.03)
    click = bed.copy()
    n = sr // 2000
    click[:, sr: sr + n] += 0.9 * np.hanning(n)
    long_ = bed.copy()
    long_[:, sr: sr + int(0.15 * sr)] += sine(3000, sr, 0.15, amp=0.9)
    kw = dict(threshold_db=-25.0, ceiling_dbtp=-1.0, release_ms=40.0, hold_ms=4.0, sustain_release_ms=0.0)
    steady = _bed_level_db(limit(bed, sr, LimiterParams(**kw)), sr, 0.5)
    quick = limit(click, sr, LimiterParams(**kw, transient_ms=100.0))
    plain = limit(click, sr, LimiterParams(**kw))
    assert steady - _bed_level_db(quick, sr, 1.02) < 1.0  # back within 20 ms
    assert steady - _bed_level_db(plain, sr, 1.02) > 6.0  # one release for all: still ducked
    after_long = [_bed_level_db(limit(long_, sr, LimiterParams(**kw, transient_ms=t)), sr, 1.19) for t in (0.0, 100.0)]
    assert after_long[1] == pytest.approx(after_long[0], abs=0.5)  # a long over: the full release either way


def test_event_release_keeps_bass_steady_and_streams():
    sr = 44100
    x = sine(50.0, sr, 2.0, amp=0.5)
    p = LimiterParams(threshold_db=-18.0, ceiling_dbtp=-1.0, hold_ms=10.0, transient_ms=100.0)
    assert thd_pct(limit(x, sr, p), 50.0, sr) <= 0.3
    clicks = np.where(np.random.default_rng(3).random((2, 30000)) < 0.001, 0.9, 0.0)
    clicks += sine(300, sr, 30000 / sr, amp=0.02)
    whole, _ = process(clicks, sr, p)
    state, parts = None, []
    for a, b in ((0, 7001), (7001, 7002), (7002, 30000)):
        y, state = process(clicks[:, a:b], sr, p, state)
        parts.append(y)
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


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
    p = LimiterParams(threshold_db=-6.0, ceiling_dbtp=-1.0, release_ms=50.0, hold_ms=10.0, sustain_release_ms=0.0)
    y = limit(x, sr, p)
    gain_db = 20 * np.log10(np.abs(y[0, -2000:]).max() / 0.1)
    assert gain_db == pytest.approx(5.0, abs=0.05)  # fully recovered to the static gain
    half = sr * 2 // 10 + int(0.06 * sr)  # hold + one release time after the burst
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
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_latency_is_reported_and_removed():
    sr = 44100
    p = LimiterParams(lookahead_ms=5.0)
    assert latency_samples(p, sr) == 25 + 25 + round(0.005 * sr) - 1
    x = np.zeros((1, 2000))
    x[0, 700] = 0.1
    y = limit(x, sr, p)
    assert int(np.argmax(np.abs(y[0]))) == 700


def test_chains_saved_before_hold_and_sustain_still_load():
    from dsp.process.chain import Chain

    old = {"format": "reamaster.chain", "version": 1, "stages": [{"kind": "limiter", "params": {
        "threshold_db": -6.0, "ceiling_dbtp": -1.0, "release_ms": 60.0, "lookahead_ms": 3.0}}]}
    p = Chain.from_dict(old).stages[0].params
    assert (p.threshold_db, p.release_ms) == (-6.0, 60.0) and p.hold_ms == LimiterParams().hold_ms


@pytest.mark.parametrize("bad", [dict(ceiling_dbtp=0.5), dict(release_ms=0.0), dict(threshold_db=float("nan")),
                                 dict(lookahead_ms=50.0), dict(hold_ms=-1.0), dict(sustain_release_ms=5.0),
                                 dict(transient_ms=-1.0), dict(transient_ms=600.0)])
def test_parameter_ranges(bad):
    with pytest.raises(ParameterError):
        LimiterParams(**bad)


def test_gain_reduction_trace_is_blocking_independent():
    from dsp.process.limiter import stats

    sr = 44100
    x = np.concatenate((sine(1000, sr, 0.5, amp=1.0), sine(1000, sr, 1.0, amp=0.05)), axis=1)
    p = LimiterParams(threshold_db=-6.0, ceiling_dbtp=-1.0, release_ms=30.0, sustain_release_ms=0.0)
    _, whole = process(x, sr, p)
    state = None
    for a in range(0, x.shape[1], 1234):
        _, state = process(x[:, a: a + 1234], sr, p, state)
    t1, t2 = stats(whole), stats(state)
    assert t1["trace_db"] == t2["trace_db"] and len(t1["trace_db"]) == 15
    assert min(t1["trace_db"][1:5]) > 4.5  # the loud half second is limited by about 6 dB
    assert max(t1["trace_db"][-5:]) == 0.0  # then fully released


@pytest.mark.parametrize("threshold_db", [-9.0, -3.0, 0.0])
def test_skipping_the_detector_under_the_limit_changes_nothing(monkeypatch, threshold_db):
    # the limiter lets its detector skip readings that cannot pass the limit; the output must be the
    # one the full detector gives, sample for sample
    import dsp.process.limiter as lim_mod

    rng = np.random.default_rng(11)
    x = ss.sosfilt(ss.butter(4, 15000, fs=44100, output="sos"), rng.standard_normal((2, 30000)), axis=-1)
    x *= np.repeat(rng.uniform(0.02, 0.4, 30), 1000)  # loud and quiet stretches
    x[:, 12000:12050] *= 4.0  # a hit
    p = LimiterParams(threshold_db=threshold_db, ceiling_dbtp=-1.0)
    fast = limit(x, 44100, p)
    full_detector = lim_mod.detector_envelope_with_context
    monkeypatch.setattr(lim_mod, "detector_envelope_with_context",
                        lambda xp, sr, floor=0.0, grid_max=None, **kw: full_detector(xp, sr, grid_max=grid_max, **kw))
    assert np.array_equal(fast, limit(x, 44100, p))


@pytest.mark.parametrize("threshold_db", [-12.0, -4.0, 0.0])
def test_the_output_true_peak_it_meters_is_the_outputs(threshold_db):
    # the limiter meters its own output's 8x true peak, interpolating only where its gain moves or
    # the input's envelope times the gain could pass the peak found; it must read what a meter reads
    from dsp.measure.truepeak import true_peak_dbtp
    from dsp.process.limiter import output_true_peak_dbtp

    rng = np.random.default_rng(12)
    x = ss.sosfilt(ss.butter(4, 16000, fs=44100, output="sos"), rng.standard_normal((2, 150_000)), axis=-1)
    x *= np.repeat(rng.uniform(0.02, 0.45, 50), 3000)  # loud and quiet stretches
    x[:, 70_000:70_040] *= 5.0  # a hit
    p = LimiterParams(threshold_db=threshold_db, ceiling_dbtp=-1.0, release_ms=40.0, transient_ms=100.0)
    state, parts = None, []
    for a in range(0, x.shape[1], 40_000):
        y, state = process(x[:, a:a + 40_000], 44100, p, state)
        parts.append(y)
    lat = latency_samples(p, 44100)
    y, state = process(np.zeros((2, lat)), 44100, p, state)  # the look-ahead's tail, as a render feeds it
    parts.append(y)
    out = np.concatenate(parts, axis=1)[:, lat:].astype(np.float32)
    assert out.shape == x.shape
    metered = output_true_peak_dbtp(state)
    assert metered == pytest.approx(true_peak_dbtp(out, factor=8), abs=1e-4)
    assert state.out_meter.skipped > 0


# --- step 6: the treble held steady ------------------------------------------------------------

def _kicks_and_hats(sr: int, seconds: float = 3.0) -> np.ndarray:
    """Kicks (55 Hz, 80 ms decay) every 250 ms over a steady 6 kHz partial (the hats' stand-in)."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.05 * np.sin(2 * np.pi * 6000 * t)
    for onset in np.arange(0.1, seconds - 0.3, 0.25):
        i = int(onset * sr)
        tt = t[: int(0.3 * sr)]
        x[i: i + tt.size] += 0.8 * np.sin(2 * np.pi * 55 * tt) * np.exp(-tt / 0.08)
    return x[None].repeat(2, 0)


def _sidebands_db(y: np.ndarray, sr: int, f: float = 6000.0) -> float:
    """Energy 20-1000 Hz either side of ``f`` over the energy within 3 Hz of it (Hann, 2 s)."""
    seg = y[0, sr // 2: sr // 2 + 2 * sr]
    sp = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
    k = np.arange(sp.size) * sr / seg.size
    carrier = sp[np.abs(k - f) <= 3].sum()
    side = sp[(np.abs(k - f) >= 20) & (np.abs(k - f) <= 1000)].sum()
    return float(10 * np.log10(side / carrier))


def _band_level_db(y: np.ndarray, sr: int, f: float) -> float:
    seg = y[0, sr // 2: sr // 2 + 2 * sr]
    sp = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
    k = np.arange(sp.size) * sr / seg.size
    return float(10 * np.log10(sp[np.abs(k - f) <= 3].sum()))


def test_treble_split_keeps_the_treble_steady_under_kicks():
    """Kicks limited by about 8 dB over a steady 6 kHz partial: with one full-band gain the partial is
    modulated by every kick (sidebands), with the treble apart it keeps a steady gain of the same
    average, and the kicks are held just as much."""
    sr = 44100
    x = _kicks_and_hats(sr)
    one = LimiterParams(threshold_db=-8.0, ceiling_dbtp=-1.0, release_ms=40.0, transient_ms=100.0)
    split = dataclasses.replace(one, treble_split_hz=2000.0)
    y_one, y_split = limit(x, sr, one), limit(x, sr, split)
    assert _sidebands_db(y_one, sr) > -30.0  # the problem is there to solve (measured -25.5 dB)
    assert _sidebands_db(y_split, sr) < _sidebands_db(y_one, sr) - 15.0  # measured 18 dB less
    # the same average treble level (no darkening, no brightening; measured 0.13 dB; following only
    # the reduction held 30 ms or more instead of the plain average brightened it 0.9 dB)
    assert abs(_band_level_db(y_split, sr, 6000) - _band_level_db(y_one, sr, 6000)) < 0.5
    # and the peaks: under the ceiling on libebur128 and an ideal interpolator
    for v in meters_db(y_split, sr).values():
        assert v <= -1.0 + 1e-3


@pytest.mark.parametrize("sr", [44100, 96000])
def test_treble_split_never_over_the_ceiling(sr, rng):
    """The second pass owns the ceiling: adversarial signals, band-limited to 0.9 of Nyquist, stay
    under it on libebur128 and an ideal reference, driven 8 dB in."""
    for name, x in adversarial(sr, rng).items():
        src = ss.sosfiltfilt(_BAND_LIMIT, x, axis=-1)
        y = limit(src, sr, LimiterParams(threshold_db=-8.0, ceiling_dbtp=-1.0, treble_split_hz=2000.0))
        for meter, v in meters_db(y, sr).items():
            assert v <= -1.0 + 1e-3, (name, meter)


def test_treble_split_is_a_delay_below_threshold_and_does_not_depend_on_blocks():
    sr = 48000
    x = np.random.default_rng(3).standard_normal((2, 40_000)) * 0.05
    quiet = LimiterParams(threshold_db=0.0, ceiling_dbtp=-1.0, treble_split_hz=3000.0, treble_smooth_ms=50.0)
    y, _ = process(x, sr, quiet)
    lat = latency_samples(quiet, sr)
    assert lat > latency_samples(dataclasses.replace(quiet, treble_split_hz=0.0), sr)
    assert np.allclose(y[:, lat:], x[:, :-lat] * 10 ** (quiet.drive_db / 20), atol=1e-12)
    hot = dataclasses.replace(quiet, threshold_db=-12.0)
    x = x * 8.0
    whole, _ = process(x, sr, hot)
    state, parts = None, []
    for a in range(0, x.shape[1], 7777):
        part, state = process(x[:, a: a + 7777], sr, hot, state)
        parts.append(part)
    # the split band is filtered in float32 (its error counts only where the two gains differ)
    assert np.allclose(np.concatenate(parts, axis=1), whole, atol=1e-6)


@pytest.mark.parametrize("bad", [dict(treble_split_hz=500.0), dict(treble_split_hz=9000.0),
                                 dict(treble_smooth_ms=5.0), dict(treble_smooth_ms=500.0)])
def test_treble_split_parameter_ranges(bad):
    with pytest.raises(ParameterError):
        LimiterParams(**bad)


def test_treble_split_statistics_are_the_reduction_the_band_got():
    """A 100 Hz tone (all under the split) driven 9 dB into the limiter: the statistics' peak
    reduction is what the output shows (input peak plus drive over output peak), and the trace
    has one value per 100 ms as without the split."""
    from dsp.process.limiter import stats

    sr = 48000
    x = sine(100, sr, 2.0, amp=0.9)
    p = LimiterParams(threshold_db=-9.0, ceiling_dbtp=-1.0, treble_split_hz=2000.0)
    y, state = process(np.concatenate((x, np.zeros((x.shape[0], latency_samples(p, sr)))), axis=1), sr, p)
    s = stats(state)
    steady = y[:, sr // 2 + latency_samples(p, sr): 3 * sr // 2 + latency_samples(p, sr)]
    shown = 20 * np.log10(0.9) + p.drive_db - 20 * np.log10(np.abs(steady).max())
    assert s["max_reduction_db"] == pytest.approx(shown, abs=0.3)
    assert s["limiting_pct"] > 80.0
    _, plain = process(x, sr, dataclasses.replace(p, treble_split_hz=0.0))
    assert len(stats(plain)["trace_db"]) == len(stats(process(x, sr, p)[1])["trace_db"])
