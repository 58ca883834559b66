"""The bass limiter (low band only, linear-phase split) and the band-peak measurement that plans it:
the low band's peaks held, everything above the split untouched, a steady gain on bass notes,
streaming; planned only where the peaks are the bass, and then a pad over kicks does not pump."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.decide.master import Intent, master, plan_chain
from dsp.decide.presets import delivery
from dsp.measure.analysis import AnalysisMeter, analyze
from dsp.measure.bands import band_peaks
from dsp.process.bass_limiter import BassLimiterParams, latency_samples, process
from dsp.process.chain import Chain, Stage, render

SR = 44100


def kicks_over_pad(seconds: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """55 Hz kicks (120 ms decay) every 500 ms over a steady pad with a 2 kHz partial (the probe)."""
    t = np.arange(int(seconds * SR)) / SR
    pad = 0.05 * (np.sin(2 * np.pi * 220 * t) + 0.7 * np.sin(2 * np.pi * 330 * t) + 0.5 * np.sin(2 * np.pi * 2000 * t))
    kick = np.zeros_like(t)
    onsets = np.arange(1.0, seconds - 0.5, 0.5)
    tt = t[: int(0.4 * SR)]
    k = 0.8 * np.sin(2 * np.pi * 55 * tt) * np.exp(-tt / 0.12) * np.minimum(1, tt / 0.002)
    for o in onsets:
        i = int(o * SR)
        kick[i: i + len(tt)] += k[: len(kick) - i]
    return np.vstack((pad + kick, pad + kick)), onsets


def probe_db(y: np.ndarray, win_s: float = 0.01) -> np.ndarray:
    """Level of the 2 kHz probe per 10 ms (scipy band-pass, zero phase)."""
    b = ss.sosfiltfilt(ss.butter(4, (1700, 2300), "bandpass", fs=SR, output="sos"), y[0])
    w = int(win_s * SR)
    n = b.shape[0] // w
    return 10 * np.log10((b[: n * w] ** 2).reshape(n, w).mean(axis=1) + 1e-12)


def pad_duck_db(x: np.ndarray, y: np.ndarray, onsets: np.ndarray) -> float:
    """Median over kicks of how far the probe's gain drops 20-300 ms after each, against before it."""
    d = probe_db(y) - probe_db(x)
    out = []
    for o in onsets:
        i = int(o / 0.01)
        out.append(float(np.median(d[i - 10: i]) - d[i + 2: i + 30].min()))
    return float(np.median(out))


def low_band(y: np.ndarray) -> np.ndarray:
    return ss.sosfiltfilt(ss.butter(4, 90, fs=SR, output="sos"), y, axis=-1)


def test_below_threshold_it_is_a_delay():
    x = kicks_over_pad(2.0)[0] * 0.5
    y = render(Chain((Stage("bass_limiter", BassLimiterParams(threshold_db=0.0)),)), x, SR)
    assert np.max(np.abs(y - x)) < 1e-6


def test_low_band_is_held_and_the_rest_untouched():
    x, onsets = kicks_over_pad()
    p = BassLimiterParams(threshold_db=-14.0)
    y = render(Chain((Stage("bass_limiter", p),)), x, SR)
    assert 20 * np.log10(np.abs(low_band(x)).max()) > -5.0
    assert 20 * np.log10(np.abs(low_band(y)).max()) < -14.0 + 0.5  # the kick's peaks held (another meter)
    assert pad_duck_db(x, y, onsets) < 0.2  # the pad over it does not move


@pytest.mark.parametrize("freq_hz", [40.0, 60.0])
def test_bass_note_keeps_a_steady_gain(freq_hz):
    t = np.arange(2 * SR) / SR
    x = np.vstack([0.5 * np.sin(2 * np.pi * freq_hz * t)] * 2)
    y = render(Chain((Stage("bass_limiter", BassLimiterParams(threshold_db=-16.0)),)), x, SR)
    seg = y[0, SR // 2: SR // 2 + SR]
    sp = np.abs(np.fft.rfft(seg * np.hanning(seg.shape[0])))
    f = np.arange(sp.shape[0]) * SR / seg.shape[0]
    fund = sp[np.abs(f - freq_hz) < 3].max()
    harm = np.sqrt(sum(sp[np.abs(f - h * freq_hz) < 3].max() ** 2 for h in range(2, 20)))
    assert 100 * harm / fund < 0.3
    assert 20 * np.log10(np.abs(seg).max()) == pytest.approx(-16.0, abs=0.5)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 20000), min_size=1, max_size=5))
def test_blockwise_equals_whole(cuts):
    x = kicks_over_pad(0.5)[0][:, :20000]
    p = BassLimiterParams(threshold_db=-12.0)
    whole, _ = process(x, SR, p)
    edges = sorted({0, 20000, *cuts})
    state, parts = None, []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        y, state = process(x[:, a:b], SR, p, state)
        parts.append(y)
    # the split is an FFT convolution: block boundaries change its rounding, nothing else
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=0, atol=1e-12)
    assert latency_samples(p, SR) > 0


def test_band_peaks_agree_with_scipy_and_stream(rng):
    x = np.vstack([0.6 * np.sin(2 * np.pi * 50 * np.arange(SR) / SR)] * 2) + 0.05 * rng.standard_normal((2, SR))
    bp = band_peaks(x, SR)
    low = ss.sosfilt(np.vstack([ss.butter(2, 120, fs=SR, output="sos")] * 2), x, axis=-1)
    high = ss.sosfilt(ss.butter(4, 120, "high", fs=SR, output="sos"), x, axis=-1)
    assert bp.low_dbfs == pytest.approx(20 * np.log10(np.abs(low).max()), abs=0.01)
    assert bp.high_dbfs == pytest.approx(20 * np.log10(np.abs(high).max()), abs=0.01)
    meter = AnalysisMeter(2, SR, x.shape[1])
    for a in range(0, x.shape[1], 7000):
        meter.feed(x[:, a:a + 7000])
    streamed, whole = meter.result(), analyze(x, SR)
    assert (streamed.low_band_peak_dbfs, streamed.high_band_peak_dbfs) == pytest.approx(
        (whole.low_band_peak_dbfs, whole.high_band_peak_dbfs), abs=1e-5)  # float32 blocks, float64 whole


def test_planned_only_where_the_peaks_are_the_bass(rng):
    x, onsets = kicks_over_pad()
    a = analyze(x, SR)
    chain = plan_chain(a, delivery("club"), Intent())
    assert chain.find("bass_limiter") is not None and chain.find("clipper") is None
    # broadband peaks (noise bursts over a bass line): the full-band stages as before
    t = np.arange(6 * SR) / SR
    mix = 0.2 * np.sin(2 * np.pi * 55 * t) + 0.3 * rng.standard_normal(t.shape) * (t % 0.5 < 0.05)
    assert plan_chain(analyze(np.vstack((mix, mix)), SR), delivery("club"), Intent()).find("bass_limiter") is None
    # a target the limiter reaches with little peak reduction: none
    assert plan_chain(a, delivery("broadcast"), Intent()).find("bass_limiter") is None


def test_club_master_of_kicks_does_not_pump_the_pad():
    from tests.test_limiter import meters_db

    x, onsets = kicks_over_pad()
    r = master(x, SR, delivery("club"))
    y = r.audio.astype(np.float64)
    assert r.chain.find("bass_limiter") is not None
    assert pad_duck_db(x, y, onsets) <= 2.0
    assert r.after.integrated_lufs == pytest.approx(-8.0, abs=0.1)
    assert meters_db(y, SR)["libebur128"] <= -0.5 + 1e-3


def _bass_to_probe_db(y: np.ndarray) -> float:
    """Energy under 90 Hz over that of the 2 kHz probe (scipy filters: an independent meter)."""
    low = low_band(y)
    probe = ss.sosfiltfilt(ss.butter(4, (1700, 2300), "bandpass", fs=SR, output="sos"), y, axis=-1)
    return float(10 * np.log10(np.sum(low ** 2) / np.sum(probe ** 2)))


def sustained_bass(seconds: float = 6.0) -> np.ndarray:
    """808-like notes (45 Hz, 0.7 s each, slow decay) over the same steady 2 kHz probe."""
    t = np.arange(int(seconds * SR)) / SR
    b808 = 0.8 * np.sin(2 * np.pi * 45 * t) * ((t % 1.0) < 0.7) * np.exp(-(t % 1.0) / 1.5)
    return np.vstack([b808 + 0.05 * np.sin(2 * np.pi * 2000 * t)] * 2)


@pytest.mark.parametrize("signal", ["kicks", "808"])
def test_kicks_are_held_sustained_bass_is_not_thinned(signal):
    """Short kicks are held deep (a full-band limiter would pump under them); sustained 808 notes,
    over any deep threshold most of the time, are barely touched (a full-band limiter holds a steady
    gain there, a bass limiter would only thin the bass). The energy the planner expects the low band
    to lose is checked on the rendered stage with scipy's filters (bass-to-probe energy)."""
    from dsp.decide.master import bass_limiter_take_db

    x = kicks_over_pad()[0] if signal == "kicks" else sustained_bass()
    a = analyze(x, SR)
    take = bass_limiter_take_db(a, 6.0)  # a target that needs 6 dB off the peaks
    threshold = a.low_band_peak_dbfs - take
    assert a.band_peaks.held_share(threshold) <= 0.4
    if signal == "kicks":
        assert take >= 9.0
    else:
        assert take <= 3.0
        return
    predicted = a.band_peaks.energy_drop_db(threshold)
    y = render(Chain((Stage("bass_limiter", BassLimiterParams(threshold_db=threshold)),)), x, SR)
    measured = _bass_to_probe_db(x) - _bass_to_probe_db(y)
    assert predicted <= 6.0
    assert measured == pytest.approx(predicted, abs=1.0)
