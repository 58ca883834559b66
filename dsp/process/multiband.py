"""Multiband compressor shaped like ReaXcomp (maps onto ``ReaXcomp (Cockos)``).

The signal is split by LR4 crossovers (:mod:`dsp.process.crossover`, bands sum to an all-pass),
each band is compressed on its own (stereo-linked within the band, the same side chain
as :mod:`dsp.process.compressor`), and the bands are summed. A disabled band, or one that never
reaches its threshold, passes unchanged, so an idle multiband is the crossover's all-pass:
flat magnitude, phase shifted.

Parameters follow ReaXcomp (REAPER_API.md section 4.5; that mapping comes from a single,
unverified source):

* ``crossovers_hz``: 1..3 ascending crossovers, 20..24000 Hz ("Band top frequency" of the
  lower bands; ReaXcomp's default bands end at 200 Hz, 1 kHz, 5 kHz and 24 kHz). At
  process time they must also be below 0.45 x the sample rate and 1/3 octave apart.
* per band (:class:`BandCompParams`): the compressor's threshold, ratio (100 = infinity:1),
  knee, attack, release, RMS and make-up, with **ranges narrowed to what ReaXcomp can
  represent**: attack 0..250 ms, release 0..2000 ms, RMS 0..250 ms, make-up -24..+12 dB.
  ``auto_makeup`` is ReaXcomp's per-band "Make Up Gain" toggle; ``enabled`` is "Active".
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools

import numpy as np

from ..errors import ParameterError
from ..params import Params, check_range
from . import compressor as comp
from . import crossover, envelope
from .processor import ProcessorSpec

ATTACK_RANGE_MS = (0.0, 250.0)
RELEASE_RANGE_MS = (0.0, 2000.0)
RMS_RANGE_MS = (0.0, 250.0)
MAKEUP_RANGE_DB = (-24.0, 12.0)
CROSSOVER_RANGE_HZ = (20.0, 24000.0)
MAX_CROSSOVERS = 3
_CHUNK = 1 << 14  # samples per internal chunk: the bands of one chunk stay in cache


@dataclasses.dataclass(frozen=True)
class BandCompParams(Params):
    """One band's compressor (ReaXcomp defaults: 2:1, 15 ms attack, 150 ms release)."""

    threshold_db: float = 0.0
    ratio: float = 2.0
    attack_ms: float = 15.0
    release_ms: float = 150.0
    knee_db: float = 0.0
    rms_ms: float = 5.0
    makeup_db: float = 0.0
    auto_makeup: bool = False
    enabled: bool = True

    def validate(self) -> None:
        check_range("threshold_db", self.threshold_db, *comp.THRESHOLD_RANGE_DB)
        check_range("ratio", self.ratio, *comp.RATIO_RANGE)
        check_range("attack_ms", self.attack_ms, *ATTACK_RANGE_MS)
        check_range("release_ms", self.release_ms, *RELEASE_RANGE_MS)
        check_range("knee_db", self.knee_db, *comp.KNEE_RANGE_DB)
        check_range("rms_ms", self.rms_ms, *RMS_RANGE_MS)
        check_range("makeup_db", self.makeup_db, *MAKEUP_RANGE_DB)
        comp.check_bool("auto_makeup", self.auto_makeup)
        comp.check_bool("enabled", self.enabled)


_DEFAULT_BANDS = (BandCompParams(),) * 4


@dataclasses.dataclass(frozen=True)
class MultibandParams(Params):
    """Crossovers (Hz, ascending) and one :class:`BandCompParams` per band, low to high."""

    crossovers_hz: tuple[float, ...] = (200.0, 1000.0, 5000.0)
    bands: tuple[BandCompParams, ...] = _DEFAULT_BANDS

    def __post_init__(self) -> None:
        for name in ("crossovers_hz", "bands"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        super().__post_init__()

    def validate(self) -> None:
        xs, bands = self.crossovers_hz, self.bands
        if not isinstance(xs, tuple) or not 1 <= len(xs) <= MAX_CROSSOVERS:
            raise ParameterError(f"crossovers_hz must list 1 to {MAX_CROSSOVERS} frequencies, got {xs!r}")
        for i, f in enumerate(xs):
            check_range(f"crossovers_hz[{i + 1}]", f, *CROSSOVER_RANGE_HZ)
        # order and spacing (the sample-rate ceiling is checked at process time)
        crossover.check_crossovers(xs, 1_000_000)
        if not isinstance(bands, tuple) or len(bands) != len(xs) + 1:
            n = len(bands) if isinstance(bands, tuple) else "no"
            raise ParameterError(f"{len(xs)} crossovers need {len(xs) + 1} bands, got {n}")
        for i, b in enumerate(bands):
            if not isinstance(b, BandCompParams):
                raise ParameterError(f"band {i + 1} must be a BandCompParams, got {type(b).__name__}")


@dataclasses.dataclass(frozen=True, eq=False)
class MultibandState:
    """Crossover memory plus one side-chain state per band (opaque: pass back what you got)."""

    crossover: crossover.CrossoverState | None
    bands: tuple[envelope.EnvelopeState | None, ...]


@functools.lru_cache(maxsize=64)
def _band_setup(band: BandCompParams, sample_rate: int) -> tuple[envelope.SideChain, float]:
    return comp.side_chain(band, sample_rate), 10.0 ** (comp.total_makeup_db(band) / 20.0)


def _compress_bands(parts: list[np.ndarray], params: MultibandParams, setups: list[tuple[envelope.SideChain, float]],
                    band_states: list[envelope.EnvelopeState | None]) -> np.ndarray:
    acc = np.zeros(parts[0].shape, dtype=np.float64)
    for k, (band, p) in enumerate(zip(parts, params.bands, strict=True)):
        if p.enabled:
            sc, wet = setups[k]
            _, band_states[k] = envelope.compress(band, sc, band_states[k], wet_lin=wet, out=acc)
        else:
            acc += band
    return acc


def process(
    x: np.ndarray, sample_rate: int, params: MultibandParams, state: MultibandState | None = None
) -> tuple[np.ndarray, MultibandState]:
    """Split, compress each band, sum. ``x`` (channels, samples); returns float64 output and state."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ParameterError(f"audio must be (channels, samples), got shape {x.shape}")
    crossover.check_crossovers(params.crossovers_hz, sample_rate)
    setups = [_band_setup(b, sample_rate) for b in params.bands]
    if state is None:
        state = MultibandState(None, (None,) * len(params.bands))
    elif len(state.bands) != len(params.bands):
        raise ParameterError("multiband state does not match the number of bands")
    band_states = list(state.bands)
    n = x.shape[1]
    y = np.empty(x.shape, dtype=np.float64)
    starts = range(0, max(n, 1), _CHUNK)

    def split(a: int, xo_state: crossover.CrossoverState | None) -> tuple[list[np.ndarray], crossover.CrossoverState]:
        return crossover.split_bands(x[:, a:a + _CHUNK], sample_rate, params.crossovers_hz, xo_state)

    if len(starts) == 1:
        parts, xo_state = split(0, state.crossover)
        y[:] = _compress_bands(parts, params, setups, band_states)
        return y, MultibandState(xo_state, tuple(band_states))
    # Pipeline on two cores: a worker splits chunk i+1 while this thread compresses chunk i
    # (both kernels release the GIL). The arithmetic is the same as one chunk after another.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(split, 0, state.crossover)
        for a in starts:
            parts, xo_state = job.result()
            if a + _CHUNK < n:
                job = pool.submit(split, a + _CHUNK, xo_state)
            y[:, a:a + _CHUNK] = _compress_bands(parts, params, setups, band_states)
    return y, MultibandState(xo_state, tuple(band_states))


SPEC = ProcessorSpec(
    kind="multiband", params_type=MultibandParams, process=process, native_fx="ReaXcomp (Cockos)"
)
