"""The mastering chain as data: an ordered, versioned, JSON-serialisable list of stages.

This is the document ``reamaster master --save-chain`` writes, the server returns and the
REAPER scripts turn into native FX. Example::

    {"format": "reamaster.chain", "version": 1,
     "stages": [{"kind": "eq", "enabled": true, "label": "corrective EQ", "why": "...",
                 "params": {"bands": [...], "gain_db": 0.0}}, ...],
     "meta": {"target_lufs": -14.0, "ceiling_dbtp": -1.0}}

``render`` runs it block by block with carried state, compensates look-ahead latency and
never holds more than the input, the output and a few blocks in memory.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import CancelledError, ChainError, ParameterError
from ..params import Params
from ..streams import one_core, prefetch
from .processor import ProcessorSpec

CHAIN_FORMAT = "reamaster.chain"
CHAIN_VERSION = 1
BLOCK_SIZE = 1 << 16

# kind -> module exposing SPEC (or SPECS for modules with several processors)
_MODULES = {
    "gain": "dsp.process.utility",
    "dc": "dsp.process.utility",
    "high_pass": "dsp.process.utility",
    "eq": "dsp.process.eq",
    "compressor": "dsp.process.compressor",
    "multiband": "dsp.process.multiband",
    "stereo": "dsp.process.stereo",
    "bass_limiter": "dsp.process.bass_limiter",
    "clipper": "dsp.process.clipper",
    "limiter": "dsp.process.limiter",
}

ProgressFn = Callable[[float], bool | None]  # fraction 0..1; False cancels


def processor_spec(kind: str) -> ProcessorSpec:
    """The processor registered under ``kind``; ChainError for unknown kinds."""
    module_name = _MODULES.get(kind)
    if module_name is None:
        raise ChainError(f"unknown processor kind {kind!r} (known: {', '.join(sorted(_MODULES))})")
    module = importlib.import_module(module_name)
    specs: tuple[ProcessorSpec, ...] = getattr(module, "SPECS", None) or (module.SPEC,)
    for spec in specs:
        if spec.kind == kind:
            return spec
    raise ChainError(f"processor kind {kind!r} is not provided by {module_name}")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One processor in the chain with its settings and the reason it is there."""

    kind: str
    params: Params
    enabled: bool = True
    label: str = ""
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "enabled": self.enabled,
            "label": self.label,
            "why": self.why,
            "params": self.params.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Stage:
        if not isinstance(data, dict) or "kind" not in data:
            raise ChainError("each stage must be an object with a 'kind'")
        unknown = set(data) - {"kind", "enabled", "label", "why", "params"}
        if unknown:
            raise ChainError(f"stage {data['kind']!r}: unknown field(s) {', '.join(sorted(unknown))}")
        spec = processor_spec(data["kind"])
        try:
            params = spec.params_type.from_dict(data.get("params", {}))
        except ParameterError as exc:
            raise ChainError(f"stage {data['kind']!r}: {exc}") from None
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ChainError(f"stage {data['kind']!r}: enabled must be true or false")
        return cls(spec.kind, params, enabled, str(data.get("label", "")), str(data.get("why", "")))


@dataclasses.dataclass(frozen=True)
class Chain:
    stages: tuple[Stage, ...] = ()
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHAIN_FORMAT,
            "version": CHAIN_VERSION,
            "stages": [s.to_dict() for s in self.stages],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Chain:
        if not isinstance(data, dict) or data.get("format") != CHAIN_FORMAT:
            raise ChainError(f"not a ReaMaster chain (expected \"format\": \"{CHAIN_FORMAT}\")")
        version = data.get("version")
        if version != CHAIN_VERSION:
            raise ChainError(f"chain version {version!r} is not supported (this ReaMaster reads {CHAIN_VERSION})")
        stages = data.get("stages")
        if not isinstance(stages, list):
            raise ChainError("chain 'stages' must be a list")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise ChainError("chain 'meta' must be an object")
        return cls(tuple(Stage.from_dict(s) for s in stages), meta)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Chain:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChainError(f"chain file is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data)

    def replace_stage(self, kind: str, stage: Stage) -> Chain:
        """A copy with the first stage of ``kind`` replaced (or ``stage`` appended)."""
        stages = list(self.stages)
        for i, s in enumerate(stages):
            if s.kind == kind:
                stages[i] = stage
                return dataclasses.replace(self, stages=tuple(stages))
        return dataclasses.replace(self, stages=(*stages, stage))

    def without(self, kind: str) -> Chain:
        return dataclasses.replace(self, stages=tuple(s for s in self.stages if s.kind != kind))

    def find(self, kind: str) -> Stage | None:
        return next((s for s in self.stages if s.kind == kind), None)


def latency_samples(chain: Chain, sample_rate: int) -> int:
    return sum(processor_spec(s.kind).latency_samples(s.params, sample_rate) for s in chain.stages if s.enabled)


def render(
    chain: Chain,
    audio: np.ndarray,
    sample_rate: int,
    *,
    block_size: int = BLOCK_SIZE,
    progress: ProgressFn | None = None,
    states: list[object] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Process ``(channels, samples)`` through the chain; float32 output aligned with the input.

    ``out`` (float32, same shape) receives the result; it may be ``audio`` itself, which saves
    a full-length buffer: each block is read before any output lands on it.

    ``progress(fraction)`` is called after each block; if it returns ``False`` the render stops
    with CancelledError. If ``states`` is a list, the final state of each enabled stage is
    appended to it (meters such as the limiter's gain-reduction statistics live there).
    """
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise ParameterError("audio must be a (channels, samples) array")
    active = [(processor_spec(s.kind), s.params) for s in chain.stages if s.enabled]
    lat = sum(spec.latency_samples(p, sample_rate) for spec, p in active)
    n_ch, n = audio.shape
    if out is None:
        out = np.empty((n_ch, n), dtype=np.float32)
    elif out.shape != (n_ch, n) or out.dtype != np.float32:
        raise ParameterError("render: out must be a float32 array shaped like the audio")
    stage_states: list[object] = [None] * len(active)
    written = 0  # output samples produced so far, including the latency to discard
    total = n + lat
    pos = 0
    while pos < total:
        stop = min(total, pos + block_size)
        if pos < n:
            block = np.asarray(audio[:, pos : min(stop, n)], dtype=np.float64)
            if stop > n:
                block = np.concatenate((block, np.zeros((n_ch, stop - n))), axis=1)
        else:
            block = np.zeros((n_ch, stop - pos))
        for i, (spec, params) in enumerate(active):
            block, stage_states[i] = spec.process(block, sample_rate, params, stage_states[i])
        # drop the first `lat` samples of output (latency compensation)
        lo = max(0, lat - written)
        if lo < block.shape[1]:
            dst = written + lo - lat
            out[:, dst : dst + block.shape[1] - lo] = block[:, lo:]
        written += block.shape[1]
        pos = stop
        if progress is not None and progress(min(1.0, pos / total)) is False:
            raise CancelledError("rendering was cancelled")
    if states is not None:
        states.extend(stage_states)
    return out


def render_blocks(
    chain: Chain,
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    *,
    block_size: int = BLOCK_SIZE,
    states: list[Any] | None = None,
) -> Iterator[np.ndarray]:
    """:func:`render` as a stream: takes ``(channels, n)`` blocks of any length and yields float32
    blocks aligned with the input (look-ahead latency removed), as many samples in all as came in.

    The chain sees exactly the blocks :func:`render` gives it (``block_size`` pieces from the
    start, the latency's zeros after the end), so the output equals ``render``'s sample for sample.
    If ``states`` is a list, the final state of each enabled stage is appended when the stream ends.
    """
    active = [(processor_spec(s.kind), s.params) for s in chain.stages if s.enabled]
    if not active:  # nothing to run: the blocks as they came, as float32
        for b in blocks:
            if np.ndim(b) != 2:
                raise ParameterError("audio must be a (channels, samples) array")
            yield np.ascontiguousarray(b, dtype=np.float32)
        return
    lat = sum(spec.latency_samples(p, sample_rate) for spec, p in active)
    stage_states: list[Any] = [None] * len(active)
    drop = lat

    def aligned() -> Iterator[np.ndarray]:
        """The input in ``block_size`` pieces from the start, then the latency's zeros."""
        rest: np.ndarray | None = None
        n_ch = 0
        for b in blocks:
            b = np.asarray(b, dtype=np.float64)
            if b.ndim != 2:
                raise ParameterError("audio must be a (channels, samples) array")
            n_ch = b.shape[0]
            if rest is not None and rest.shape[1]:
                b = np.concatenate((rest, b), axis=1)
            full = (b.shape[1] // block_size) * block_size
            for s in range(0, full, block_size):
                yield b[:, s:s + block_size]
            rest = b[:, full:]
        if rest is None:
            rest = np.zeros((n_ch, 0))
        tail = np.concatenate((rest, np.zeros((rest.shape[0], lat))), axis=1)
        for s in range(0, tail.shape[1], block_size):
            yield tail[:, s:s + block_size]

    def aligned_out(block: np.ndarray) -> np.ndarray | None:
        nonlocal drop
        if drop:
            k = min(drop, block.shape[1])
            block = block[:, k:]
            drop -= k
        return block.astype(np.float32) if block.shape[1] else None

    ahead = active[-1][0].ahead if active else None
    if ahead is not None and not one_core():
        # the last stage's input-only work (the limiter's detector) runs a block ahead on another
        # thread, with the stages before it; the rest of it here
        last, last_params = active[-1]

        def fronts() -> Iterator[tuple[np.ndarray, Any]]:
            ahead_state = None
            for block in aligned():
                for i, (spec, params) in enumerate(active[:-1]):
                    block, stage_states[i] = spec.process(block, sample_rate, params, stage_states[i])
                found, ahead_state = ahead(block, sample_rate, last_params, ahead_state)
                yield block, found

        for block, found in prefetch(fronts()):
            block, stage_states[-1] = last.process(block, sample_rate, last_params, stage_states[-1], ahead=found)
            y = aligned_out(block)
            if y is not None:
                yield y
    else:
        for block in aligned():
            for i, (spec, params) in enumerate(active):
                block, stage_states[i] = spec.process(block, sample_rate, params, stage_states[i])
            y = aligned_out(block)
            if y is not None:
                yield y
    if states is not None:
        states.extend(stage_states)
