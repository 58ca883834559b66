"""dsp.streams.prefetch: same items in the same order, errors where they happened, and a producer
that stops when its consumer does."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dsp.streams import prefetch


def test_items_come_in_order_and_are_the_same_objects():
    blocks = [np.full((2, 8), i, dtype=np.float32) for i in range(50)]
    got = list(prefetch(iter(blocks), depth=3))
    assert len(got) == 50 and all(a is b for a, b in zip(got, blocks, strict=True))


def test_a_producer_error_is_raised_at_its_item():
    def gen():
        yield 1
        yield 2
        raise KeyError("boom")

    seen = []
    with pytest.raises(KeyError, match="boom"):
        for v in prefetch(gen()):
            seen.append(v)
    assert seen == [1, 2]


def test_closing_early_stops_the_producer_and_runs_its_cleanup():
    produced, cleaned = [], threading.Event()

    def gen():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            cleaned.set()

    it = prefetch(gen(), depth=2)
    assert next(it) == 0
    it.close()  # what a break or an exception in the consumer does
    assert cleaned.wait(5)
    n = len(produced)
    time.sleep(0.1)
    assert len(produced) == n <= 4  # nothing ran on, and it never ran far ahead


def test_depth_is_checked():
    with pytest.raises(ValueError):
        list(prefetch([1], depth=0))
