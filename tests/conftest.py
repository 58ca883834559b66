"""Shared fixtures: seeded randomness, generated signals, a deterministic hypothesis profile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "reamaster", derandomize=True, deadline=None, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("reamaster")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(440)


def sine(freq_hz: float, sample_rate: int, seconds: float, *, amp: float = 1.0, phase: float = 0.0,
         channels: int = 2, fade_s: float = 0.0) -> np.ndarray:
    """A (channels, samples) sine, optionally with raised-cosine fades."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    s = amp * np.sin(2 * np.pi * freq_hz * t + phase)
    if fade_s > 0:
        k = min(n // 2, int(fade_s * sample_rate))
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        s[:k] *= ramp
        s[n - k:] *= ramp[::-1]
    return np.repeat(s[None, :], channels, axis=0)
