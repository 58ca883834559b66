"""Streams of blocks: compute the next blocks on the second core while this one uses the last.

The streaming master is a chain of generators (read -> process -> limit -> measure -> write).
:func:`prefetch` runs one end of such a chain in a background thread, a few blocks ahead, so the
processing (numba kernels and numpy release the GIL) overlaps with what consumes its blocks. The
blocks and their order are unchanged: results are bit-identical with and without it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_one_core = os.environ.get("REAMASTER_ONE_CORE") == "1"


def use_one_core(enabled: bool = True) -> None:
    """Keep this process's work on one core: no prefetch thread, no split true-peak kernel. For
    processes that are one of as many workers as there are cores (a catalog batch), where a second
    thread per task only competes with the other workers. Same results either way."""
    global _one_core
    _one_core = bool(enabled)


def one_core() -> bool:
    """Whether :func:`use_one_core` (or ``REAMASTER_ONE_CORE=1``) is in force."""
    return _one_core


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], *, depth: int = 2) -> Iterator[T]:
    """Yield ``items``, produced in a background thread at most ``depth`` (1..64) items ahead.

    An exception raised while producing is raised here, where that item would have come. Closing
    this generator early (a ``break``, an exception in the consumer, cancelling) stops the producer
    at its next item and waits for it, so nothing runs on after the consumer has gone."""
    if not 1 <= depth <= 64:
        raise ValueError(f"depth must be 1..64, got {depth}")
    if _one_core:
        yield from items
        return
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    source = iter(items)

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    break
            else:
                put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Raised(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:  # a generator stopped early runs its cleanup here, in its own thread
                close()

    worker = threading.Thread(target=produce, name="reamaster-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]  # anything else is a produced item
    finally:
        stop.set()
        worker.join()
