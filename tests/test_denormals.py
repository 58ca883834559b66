"""dsp.denormals: denormals flushed inside the DSP's calls only, and the results unchanged by it
(figures to the last digit; samples where they were about -740 dBFS)."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from dsp import denormals
from dsp.decide.master import master, master_stream
from dsp.decide.presets import delivery
from dsp.demo import demo_mix
from dsp.measure.analysis import analyze, analyze_source

x86_64 = pytest.mark.skipif(not denormals._X86_64, reason="the flush is set on x86-64 only")
TINY = np.float64(1e-308)  # divided by 1e10: 1e-318, a denormal, or 0.0 when flushed


@x86_64
def test_flush_holds_inside_the_block_and_in_threads_started_there_only():
    assert TINY / np.float64(1e10) > 0.0
    seen = []
    with denormals.no_denormals():
        assert TINY / np.float64(1e10) == 0.0
        t = threading.Thread(target=lambda: seen.append(TINY / np.float64(1e10)))
        t.start()
        t.join()
        with denormals.no_denormals():  # nested: the outer mode comes back, still flushing
            pass
        assert TINY / np.float64(1e10) == 0.0
    assert seen == [0.0]
    assert TINY / np.float64(1e10) > 0.0  # the caller's mode is back
    with pytest.raises(ZeroDivisionError), denormals.no_denormals():
        1 / 0  # noqa: B018 - an exception inside restores the mode too
    assert TINY / np.float64(1e10) > 0.0


def ending_in_silence(sample_rate: int = 44100) -> np.ndarray:
    """Music, then 6 s of digital silence: the filters' states decay through the denormal range."""
    x = demo_mix(sample_rate, seconds=10)
    return np.concatenate((x, np.zeros((2, 6 * sample_rate), dtype=np.float32)), axis=1)


class Blocks:
    """An in-memory source read in blocks, as AudioSource is."""

    def __init__(self, x: np.ndarray, sample_rate: int) -> None:
        self.x, self.sample_rate = x, sample_rate
        self.channels, self.frames = x.shape

    def blocks(self):
        for i in range(0, self.frames, 50000):
            yield self.x[:, i:i + 50000]


class Collect:
    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def write(self, block: np.ndarray) -> None:
        self.parts.append(block.copy())

    def commit(self) -> np.ndarray:
        return np.concatenate(self.parts, axis=1)

    def abort(self) -> None:
        self.parts = []


def fingerprint(a) -> list[str]:
    """Every figure of an analysis, exactly (repr keeps every digit, and NaN equals NaN)."""
    scalars = [repr(getattr(a, f.name)) for f in dataclasses.fields(a)
               if isinstance(getattr(a, f.name), (int, float, str))]
    spec = a.spectrum
    return scalars + [v.tobytes().hex() for v in (spec.level_db, spec.side_db, spec.correlation)]


@x86_64
def test_analysis_and_masters_are_the_same_to_the_bit_with_and_without_the_flush(monkeypatch):
    x, sr = ending_in_silence(), 44100
    src = Blocks(x, sr)
    made = []
    for flush in (True, False):
        monkeypatch.setattr(denormals, "_X86_64", flush)
        a = analyze(x, sr, resonances=True)
        s = analyze_source(src, resonances=True)
        m = master(x, sr, delivery("streaming"))
        ms, streamed = master_stream(src.blocks, sr, 2, src.frames, delivery("streaming"), Collect, before=s)
        figures = [fingerprint(r) for r in (a, s, m.after, ms.after)]
        made.append((figures, m.audio, streamed))
    assert made[0][0] == made[1][0]  # every figure, to the last digit
    for flushed, kept in ((made[0][1], made[1][1]), (made[0][2], made[1][2])):
        # samples differ only where they were themselves near-denormal, about -740 dBFS
        differ = flushed != kept
        assert np.all(np.abs(kept[differ]) < 1e-36) and np.all(np.abs(flushed[differ]) < 1e-36)
        assert 0 < np.count_nonzero(differ) < 0.01 * differ.size  # the silence did reach the denormals
