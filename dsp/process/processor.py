"""The processor contract shared by every stage of a chain.

A processor is a pure function plus a parameter dataclass::

    y, state = process(x, sample_rate, params, state=None)

* ``x``: float array ``(channels, samples)``; ``y`` has the same shape, ``float64``.
* ``state``: ``None`` for a fresh start, else what the previous block returned. Feeding a
  signal in blocks, carrying ``state``, gives exactly the output of one whole call.
* ``latency_samples(params, sample_rate)``: how many samples the output lags the input
  (only look-ahead processors are non-zero); the chain renderer compensates.
* ``ahead(x, sample_rate, params, ahead_state=None) -> (found, ahead_state)`` (optional): the part
  of the work that depends on the input alone (the limiter's detector), which a streaming
  renderer runs on another thread, a block ahead; it then calls
  ``process(x, sample_rate, params, state, ahead=found)`` for every block of that stream.

Each processor module exposes ``SPEC = ProcessorSpec(...)``; :mod:`dsp.process.chain` finds them by ``kind``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ..params import Params

ProcessFn = Callable[..., tuple[np.ndarray, Any]]
AheadFn = Callable[[np.ndarray, int, Any, Any], tuple[Any, Any]]


def _no_latency(params: Any, sample_rate: int) -> int:
    return 0


@dataclasses.dataclass(frozen=True)
class ProcessorSpec:
    kind: str  # the name used in chain JSON, e.g. "eq", "compressor", "limiter"
    params_type: type[Params]
    process: ProcessFn
    latency_samples: Callable[[Any, int], int] = _no_latency
    native_fx: str = ""  # the REAPER FX this maps onto, e.g. "ReaEQ (Cockos)"
    ahead: AheadFn | None = None  # input-only work a renderer may run ahead (see the module doc)
