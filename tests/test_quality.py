"""Quality on material with known damage: the distance to the target shrinks, loudness and true
peak hold, and nothing that was already right is made worse."""

import numpy as np
import pytest

from dsp.decide.master import master
from dsp.decide.presets import delivery
from dsp.process.eq import EqBand, EqParams, process
from tests.test_master import libebur128_lufs, shaped_noise, tonal_distance_db, tp8_db

SR = 44100
SECONDS = 12


def right_mix(seed: int = 11) -> np.ndarray:
    """A 'finished mix' that is already right: balanced tone, correlated stereo, moderate dynamics."""
    rng = np.random.default_rng(seed)
    n = SECONDS * SR
    mid = shaped_noise(rng, n)
    side = 0.25 * shaped_noise(rng, n, lo_hz=200.0)
    x = np.stack((mid + side, mid - side))
    beats = np.repeat(rng.uniform(0.5, 1.0, n // (SR // 4) + 1), SR // 4)[:n]  # phrase-level movement
    x = np.tanh(1.5 * x / np.abs(x).max()) * beats
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def eq(x: np.ndarray, *bands: EqBand) -> np.ndarray:
    return process(x, SR, EqParams(bands=bands))[0].astype(np.float32)


def expand(x: np.ndarray, amount: float) -> np.ndarray:
    """Exaggerate the dynamics: quiet passages quieter (an over-dynamic mix)."""
    env = np.convolve(np.abs(x).mean(axis=0), np.ones(4410) / 4410, mode="same")
    return (x * (env / env.max()) ** amount).astype(np.float32)


def check(x: np.ndarray) -> tuple:
    d = delivery("streaming")
    r = master(x, SR, d)
    assert libebur128_lufs(r.audio, SR) == pytest.approx(d.target_lufs, abs=0.2)
    assert tp8_db(r.audio) <= d.ceiling_dbtp
    return r, [s.kind for s in r.chain.stages]


@pytest.mark.parametrize("damage", ["dark", "bright", "muddy", "thin"])
def test_tonal_damage_is_reduced(damage):
    x = right_mix()
    damaged = {
        "dark": lambda: eq(x, EqBand("high_shelf", 2500.0, -8.0)),
        "bright": lambda: eq(x, EqBand("high_shelf", 4000.0, 7.0)),
        "muddy": lambda: eq(x, EqBand("band", 300.0, 8.0, 1.0)),
        "thin": lambda: eq(x, EqBand("low_shelf", 150.0, -8.0)),
    }[damage]()
    r, kinds = check(damaged)
    assert "eq" in kinds
    # 70% of what lies beyond a 1.5 dB tolerance is corrected: at least a fifth of the distance goes
    assert tonal_distance_db(r.after) < 0.8 * tonal_distance_db(r.before)


def test_over_dynamic_mix_is_compressed():
    # so dynamic that the limiter alone would take more than the 4 dB it does cleanly at -14 LUFS
    x = expand(right_mix(), 4.5)
    r, kinds = check(x)
    assert r.before.plr_db > 17 and "compressor" in kinds
    assert r.after.plr_db < r.before.plr_db


def test_already_squashed_mix_is_not_squashed_further():
    x = right_mix()
    x = np.tanh(6 * x / np.abs(x).max()).astype(np.float32) * 0.5  # brick-walled: PLR under 8 dB
    r, kinds = check(x)
    assert r.before.plr_db < 8 and "compressor" not in kinds
    assert r.after.lra_lu >= r.before.lra_lu - 0.5


def test_a_right_mix_is_not_made_worse():
    x = right_mix()
    r, kinds = check(x)
    assert "eq" not in kinds and "compressor" not in kinds
    assert tonal_distance_db(r.after) <= tonal_distance_db(r.before) + 0.3
    assert r.after.lra_lu >= r.before.lra_lu - 1.0
    assert r.after.spectrum.correlation_overall == pytest.approx(r.before.spectrum.correlation_overall, abs=0.05)


def test_narrowed_width_is_not_narrowed_further():
    x = right_mix()
    mono_ish = 0.5 * (x[0] + x[1])
    narrow = np.stack((0.9 * mono_ish + 0.1 * x[0], 0.9 * mono_ish + 0.1 * x[1])).astype(np.float32)
    r, _ = check(narrow)
    assert r.after.spectrum.correlation_overall <= r.before.spectrum.correlation_overall + 0.02
