"""Linear-phase FIR low-pass for band splits that must not move the bass in time (mono bass, the
bass limiter): ``low = fir(x)`` delayed by ``(taps - 1) / 2``, ``high = delayed x - low``, so the
two bands sum back to the delayed input exactly (an IIR crossover rotates the bass's phase and
delays it against the rest)."""

from __future__ import annotations

import functools

import numpy as np

TAPS_PER_CYCLE = 8.0  # FIR length in periods of the cutoff: sets the transition width
KAISER_BETA = 6.0  # about -60 dB stop band


@functools.lru_cache(maxsize=16)
def lowpass_fir(cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Kaiser-windowed low-pass, ``8 * sample_rate / cutoff_hz`` taps (odd), -6 dB at the cutoff,
    unit DC gain, stop band about -60 dB from twice the cutoff."""
    import scipy.signal  # 0.4 s to load: only the band splits need it, and few masters get one

    taps = int(TAPS_PER_CYCLE * sample_rate / cutoff_hz) | 1
    h: np.ndarray = np.asarray(scipy.signal.firwin(taps, cutoff_hz, window=("kaiser", KAISER_BETA),
                                                  fs=sample_rate), dtype=np.float64)
    h.setflags(write=False)
    return h


def split_delay_samples(cutoff_hz: float, sample_rate: int) -> int:
    """The delay (samples) of both bands of a split at ``cutoff_hz``: the FIR's group delay."""
    return int((lowpass_fir(cutoff_hz, sample_rate).shape[0] - 1) // 2)


def filter_valid(ext: np.ndarray, h: np.ndarray, *, single: bool = False) -> np.ndarray:
    """``h`` over each row of ``ext`` (channels, taps - 1 + n): the n outputs that need no padding.
    ``single``: in float32 (about 4x faster, errors about 1e-7 of full scale: for a band that only
    steers a gain or a clip, never one that is summed back as it is)."""
    import scipy.signal  # already loaded by lowpass_fir

    if single:
        ext, h = ext.astype(np.float32), h.astype(np.float32)
    out: np.ndarray = scipy.signal.oaconvolve(ext, h[None, :], mode="valid", axes=1)
    return out


def split_low(ext: np.ndarray, h: np.ndarray, *, single: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The split of a streamed block: ``ext`` (channels, taps - 1 + n) is the block with the
    ``taps - 1`` input samples before it. Returns the low band of the n samples the FIR can finish
    and the input samples they belong to (both ``(taps - 1) / 2`` late): ``high = centre - low``.
    ``single``: as :func:`filter_valid`'s."""
    taps = h.shape[0]
    n = ext.shape[1] - (taps - 1)
    d = (taps - 1) // 2
    low = filter_valid(ext, h, single=single) if n > 0 else np.zeros((ext.shape[0], 0))
    return low, ext[:, d: d + n]
