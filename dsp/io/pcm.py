"""WAV sample bytes to and from the ``(channels, n)`` float32 layout, without libsndfile's conversions.

libsndfile still opens, parses and finishes every file (header, chunks, RF64, the sizes written at
close); only the sample bytes of little-endian WAV files pass through its raw calls
(``sf_read_raw`` / ``sf_write_raw``), converted here by numba kernels. Its own float conversion of
24-bit PCM costs about 6 ns per sample and its 24-bit writing 4 (measured on this machine);
these kernels 1-2, and de-interleave on the way. The results are libsndfile's, bit for bit:
reading multiplies the integer by 2^-(bits-1) in float32, as libsndfile does; writing quantises
exactly as :func:`dsp.io.audio_io.write_audio` always has (x 2^(bits-1), TPDF dither at 16 bits,
round half to even, clip to the integer range) and stores the little-endian bytes libsndfile
would (both checked against libsndfile in ``tests/test_audio_io.py``). Anything else (FLAC, AIFF,
big-endian, 8-bit, double) goes through libsndfile's own conversions.
"""

from __future__ import annotations

import numba
import numpy as np
import soundfile as sf

_CONTAINERS = frozenset({"WAV", "WAVEX", "RF64"})  # little-endian chunk formats with a plain data chunk
_WIDTH = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}
# the raw calls and the handle are soundfile internals (present from 0.9 to 0.14): without them,
# libsndfile converts, as before
_RAW_IO = all(hasattr(sf, name) for name in ("_snd", "_ffi")) and hasattr(getattr(sf, "_snd", None), "sf_read_raw")


def raw_width(f: sf.SoundFile) -> int:
    """Bytes per sample when ``f``'s samples can pass as raw little-endian bytes, else 0."""
    if not _RAW_IO or f.format not in _CONTAINERS or f.endian not in ("FILE", "LITTLE") or not hasattr(f, "_file"):
        return 0
    return _WIDTH.get(f.subtype, 0)


@numba.njit(cache=True, nogil=True)
def _unpack(raw: np.ndarray, width: int, is_float: bool, out: np.ndarray) -> None:
    ch, n = out.shape
    step = width * ch
    if is_float:
        f32 = raw[: n * step].view(np.float32)
        for c in range(ch):
            for i in range(n):
                out[c, i] = f32[i * ch + c]
        return
    # each sample moved to the int32's top and scaled by 2^-31, as libsndfile does for every width
    for c in range(ch):
        o = out[c]
        if width == 3:
            for i in range(n):
                k = i * step + 3 * c
                v = (np.uint32(raw[k]) << np.uint32(8) | np.uint32(raw[k + 1]) << np.uint32(16)
                     | np.uint32(raw[k + 2]) << np.uint32(24))
                o[i] = np.float32(np.int32(v)) * np.float32(1.0 / 2147483648.0)
        elif width == 2:
            for i in range(n):
                k = i * step + 2 * c
                v = np.uint32(raw[k]) << np.uint32(16) | np.uint32(raw[k + 1]) << np.uint32(24)
                o[i] = np.float32(np.int32(v)) * np.float32(1.0 / 2147483648.0)
        else:
            for i in range(n):
                k = i * step + 4 * c
                v = (np.uint32(raw[k]) | np.uint32(raw[k + 1]) << np.uint32(8) | np.uint32(raw[k + 2]) << np.uint32(16)
                     | np.uint32(raw[k + 3]) << np.uint32(24))
                o[i] = np.float32(np.int32(v)) * np.float32(1.0 / 2147483648.0)


_ROUND = 6755399441055744.0  # 1.5 x 2^52: adding and removing it rounds a float64 below 2^51 half to even


@numba.njit(cache=True, nogil=True)
def _pack(x: np.ndarray, scale: np.ndarray, noise_a: np.ndarray, noise_b: np.ndarray, width: int,
          out: np.ndarray) -> int:
    """Quantise ``x`` (channels, n) into ``out`` as interleaved little-endian integers of ``width``
    (2 or 3) bytes; ``scale`` (1,) in x's dtype = 2^(bits-1); noise (n, channels) TPDF halves, or
    (0, 0). The arithmetic is x's dtype's, as numpy's was (x scale, + a, - b, rint, clip)."""
    ch, n = x.shape
    sc = scale[0]
    lo, hi = -np.float64(sc), np.float64(sc) - 1.0
    dither = noise_a.shape[0] > 0
    clipped = 0
    for c in range(ch):
        xc = x[c]
        for i in range(n):
            v = xc[i] * sc
            if v > sc or v < -sc:
                clipped += 1
            if dither:
                v = v + noise_a[i, c]
                v = v - noise_b[i, c]
            # beyond 2^51 (absurd input) the rounding is off but the clip below decides anyway
            r = min(max((np.float64(v) + _ROUND) - _ROUND, lo), hi)
            q = np.int32(r)
            k = (i * ch + c) * width
            out[k] = np.uint8(q & 255)
            out[k + 1] = np.uint8((q >> 8) & 255)
            if width == 3:
                out[k + 2] = np.uint8((q >> 16) & 255)
    return clipped


class RawReader:
    """Reads ``f``'s samples as raw bytes into ``(channels, n)`` float32 (see :func:`raw_width`)."""

    def __init__(self, f: sf.SoundFile, width: int, max_frames: int) -> None:
        self._f, self._width = f, width
        self._is_float = f.subtype == "FLOAT"
        self._raw = np.empty(max(1, max_frames) * f.channels * width, dtype=np.uint8)
        self._ptr = sf._ffi.from_buffer(self._raw)

    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (channels, n) float32 from the current position; returns the frames read
        (fewer at the end of the data)."""
        nbytes = out.shape[1] * out.shape[0] * self._width
        got = int(sf._snd.sf_read_raw(self._f._file, self._ptr, nbytes))
        frames = int(max(0, got) // (out.shape[0] * self._width))
        _unpack(self._raw[: frames * out.shape[0] * self._width], self._width, self._is_float, out[:, :frames])
        return frames


def write_raw(f: sf.SoundFile, x: np.ndarray, *, bits: int, noise: tuple[np.ndarray, np.ndarray] | None,
              scratch: np.ndarray) -> int:
    """Quantise ``x`` (channels, n, float32 or float64) to ``bits`` (16 or 24) and append it to the
    WAV file ``f`` (opened for writing with that PCM subtype); returns how many samples lay beyond
    full scale (clipped). ``noise``: the TPDF halves, (n, channels) float32 each, or None.
    ``scratch``: a uint8 buffer of at least n x channels x bits/8 bytes. Raises OSError when the
    file takes fewer bytes than given (disk full)."""
    width = bits // 8
    scale = np.array([float(1 << (bits - 1))], dtype=x.dtype)
    none = np.zeros((0, 0), dtype=x.dtype)
    na, nb = (none, none) if noise is None else (noise[0].astype(x.dtype, copy=False),
                                                 noise[1].astype(x.dtype, copy=False))
    nbytes = x.shape[0] * x.shape[1] * width
    out = scratch[:nbytes]
    clipped = int(_pack(x, scale, na, nb, width, out))
    put = int(sf._snd.sf_write_raw(f._file, sf._ffi.from_buffer(out), nbytes))
    if put != nbytes:
        reason = sf._ffi.string(sf._snd.sf_strerror(f._file)).decode("utf-8", "replace")
        raise OSError(reason or "the file took fewer bytes than written")
    return clipped
