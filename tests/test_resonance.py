"""Resonance control spares music: a resonance stays put while the notes change; held notes,
harmonic series and steady test tones are left alone (seeded generated signals)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import sosfilt

from dsp.decide.master import Intent, plan_chain, resonance_cut_db
from dsp.decide.presets import delivery
from dsp.measure.analysis import analyze
from dsp.measure.resonance import find_resonances

FS = 44100
SECONDS = 16


def changing_music(rng: np.random.Generator, seconds: int = SECONDS) -> np.ndarray:
    """Notes that change every 0.5 s (three partials each, random pitches 150-2000 Hz) over
    noise whose level moves from note to note: music whose spectrum keeps changing."""
    n = seconds * FS
    t = np.arange(FS // 2) / FS
    out = np.zeros(n)
    for start in range(0, n, FS // 2):
        seg = np.zeros(FS // 2)
        for _ in range(3):
            f0 = 150.0 * 2 ** rng.uniform(0, 3.7)
            for h, a in ((1, 0.2), (2, 0.08), (3, 0.04)):
                seg += a * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3))
        seg += 10 ** (rng.uniform(-6, 6) / 20) * 0.2 * rng.standard_normal(FS // 2)
        out[start:start + FS // 2] = seg[: n - start]
    return np.vstack((out, out)) * 0.5


def held_note(f0_hz: float, seconds: int = SECONDS) -> np.ndarray:
    t = np.arange(seconds * FS) / FS
    x = sum(a * np.sin(2 * np.pi * f0_hz * h * t) for h, a in ((1, 0.12), (2, 0.06), (3, 0.04)))
    return np.vstack((x, x))


def rbj_peaking_sos(freq_hz: float, gain_db: float, q: float) -> np.ndarray:
    """The RBJ Audio-EQ-Cookbook peaking filter, written out here (independent of dsp.process)."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq_hz / FS
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return np.concatenate((b / den[0], den / den[0]))[None, :]


def cuts(x: np.ndarray) -> list:
    return [r for r in find_resonances(x, FS) if not r.left_alone]


@pytest.mark.parametrize(("freq_hz", "gain_db", "q"), [(2500.0, 12.0, 8.0), (3000.0, 14.0, 60.0)])
def test_a_real_resonance_is_found_and_cut(rng, freq_hz, gain_db, q):
    """A broad ring and one far narrower than the 0.1-octave cut (nearly a line)."""
    music = changing_music(rng)
    ringing = sosfilt(rbj_peaking_sos(freq_hz, gain_db, q), music, axis=-1)
    found = cuts(ringing)
    assert found and abs(np.log2(found[0].freq_hz / freq_hz)) < 1 / 12
    a = analyze(ringing, FS, resonances=True)
    chain = plan_chain(a, delivery(), Intent())
    (stage,) = [s for s in chain.stages if s.label == "resonance control"]
    (cut,) = [b for b in stage.params.bands if abs(np.log2(b.freq_hz / freq_hz)) < 1 / 12]
    assert cut.gain_db < 0
    # analyze --json reports what master acts on (analyze reads the resonance statistics off the
    # spectrum's frames, find_resonances takes its own FFT of the mid: the same figures)
    assert [(r["freq_hz"], r["excess_db"], r["persistence"]) for r in a.to_dict()["resonances"]] == \
        [(round(r.freq_hz, 1), round(r.excess_db, 1), round(r.persistence, 2)) for r in found]
    # the cut tames the ring without re-voicing its third-octave band (scipy's Welch as the meter)
    from scipy.signal import welch

    from dsp.process.chain import Chain, render

    y = render(Chain((stage,)), ringing, FS)
    f, p_in = welch(ringing[0], FS, nperseg=8192)
    _, p_out = welch(y[0], FS, nperseg=8192)
    band = np.abs(np.log2(np.maximum(f, 1.0) / cut.freq_hz)) <= 1 / 6
    change_db = 10 * np.log10(p_out[band].sum() / p_in[band].sum())
    assert -1.55 <= change_db < -0.5
    # and the explanation states what the meter reads
    depth, claimed_db = resonance_cut_db(a.spectrum, cut.freq_hz, min(6.0, found[0].excess_db))
    assert depth == -cut.gain_db and abs(claimed_db - change_db) < 0.05


def test_no_resonance_in_the_music_alone(rng):
    assert cuts(changing_music(rng)) == []


def test_a_held_note_is_music_not_a_resonance(rng):
    x = changing_music(rng) + held_note(397.0)
    found = find_resonances(x, FS)
    assert [r for r in found if not r.left_alone] == []
    assert any(abs(np.log2(r.freq_hz / 397.0)) < 1 / 12 and r.left_alone for r in found)
    a = analyze(x, FS, resonances=True)
    chain = plan_chain(a, delivery(), Intent())
    assert chain.find("eq") is None or all(s.label != "resonance control" for s in chain.stages)
    assert any("397 Hz" in line and "left alone" in line for line in chain.meta["left_alone"])
    assert a.to_dict()["resonances"] == [] and a.to_dict()["peaks_left_alone"]


@pytest.mark.parametrize("background", ["steady noise", "changing music"])
def test_a_test_tone_is_left_alone(background, rng):
    t = np.arange(SECONDS * FS) / FS
    tone = 0.3 * np.sin(2 * np.pi * 1000.0 * t)
    bed = 0.02 * rng.standard_normal((2, t.size)) if background == "steady noise" else changing_music(rng)
    x = bed + np.vstack((tone, tone))
    found = find_resonances(x, FS)
    assert [r for r in found if not r.left_alone] == []
