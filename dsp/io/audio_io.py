"""Reading, checking and safely writing audio files (via soundfile / libsndfile).

* :func:`read_audio` gives ``float32`` ``(channels, samples)`` at the file's own sample
  rate (never resampled) and refuses audio that cannot be mastered (see :func:`check_audio`).
  A mono file comes back as dual-mono (two identical channels) by default: that is how it is
  heard on two speakers, so it is measured (BS.1770 counts both channels, +3 dB) and delivered
  that way; ``mono_as="single"`` keeps one channel. A file whose header promises more audio
  than it holds (truncated, short read) is refused, never mastered quietly.
* :func:`audio_info` reports the WAVE_FORMAT_EXTENSIBLE channel mask (5.1 and other layouts);
  :func:`write_audio` writes files of more than two channels as WAVE_FORMAT_EXTENSIBLE with the
  given mask (default: the standard layout for the channel count), so the layout survives.
* :func:`write_audio` writes atomically (temp file in the destination folder, fsync,
  rename), never over an input file, and never over an existing file unless ``force``.
  16-bit output gets TPDF dither; 24-bit and float do not.
* :func:`atomic_write_text` applies the same rules to JSON reports and chain files.

Every refusal is a :mod:`dsp.errors` exception with a one-line message naming the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import soundfile as sf

from ..errors import (
    ChannelCountError,
    CorruptFileError,
    EmptyAudioError,
    FileMissingError,
    InputError,
    NonFiniteAudioError,
    OutputError,
    OutputExistsError,
    OutputIsInputError,
    ParameterError,
    ReaMasterError,
    SampleRateError,
    SilentAudioError,
    TooShortError,
    UnsupportedFormatError,
    WriteFailedError,
)
from . import pcm

SUPPORTED_READ = (".wav", ".flac", ".aif", ".aiff", ".ogg")
OUTPUT_FORMATS = frozenset({"wav16", "wav24", "wav32f", "flac16", "flac24"})
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 22050, 192000
MAX_CHANNELS = 8
#: shortest audio whose loudness can be measured (one 400 ms gating block)
MIN_DURATION_S = 0.4
#: a sample peak below this is treated as silence
SILENCE_DBFS = -90.0

# Containers libsndfile may detect inside a file with a supported extension. Anything
# else (e.g. an MP3 renamed .wav, which libsndfile would happily decode) is refused.
_READ_CONTAINERS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF", "OGG"})
_BLOCK_FRAMES = 1 << 16  # 64 k frames: a stereo float32 block stays in L2 cache


@dataclasses.dataclass(frozen=True)
class _OutFormat:
    ext: str
    container: str
    subtype: str
    bits: int  # 16, 24 or 32 (float)
    is_float: bool


_OUT = {
    "wav16": _OutFormat(".wav", "WAV", "PCM_16", 16, False),
    "wav24": _OutFormat(".wav", "WAV", "PCM_24", 24, False),
    "wav32f": _OutFormat(".wav", "WAV", "FLOAT", 32, True),
    "flac16": _OutFormat(".flac", "FLAC", "PCM_16", 16, False),
    "flac24": _OutFormat(".flac", "FLAC", "PCM_24", 24, False),
}
_OUT_ORDER = ("wav16", "wav24", "wav32f", "flac16", "flac24")


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What a file holds, from its header (no sample data read)."""

    path: str
    sample_rate: int  # Hz
    channels: int
    frames: int  # samples per channel
    duration_s: float
    format: str  # libsndfile container, e.g. "WAV", "FLAC"
    subtype: str  # e.g. "PCM_24", "FLOAT", "VORBIS"
    channel_mask: int | None = None  # WAVE_FORMAT_EXTENSIBLE speaker mask, when the file has one


@dataclasses.dataclass(frozen=True)
class WriteResult:
    path: str
    fmt: str  # one of OUTPUT_FORMATS
    sample_rate: int  # Hz
    channels: int
    frames: int
    clipped_samples: int  # samples beyond +-1.0 clipped (integer formats only; all channels)
    dithered: bool


# --- reading -----------------------------------------------------------------------------------

MONO_AS = ("dual", "single")


def read_audio(path: str | os.PathLike[str], *, mono_as: str = "dual") -> tuple[np.ndarray, int]:
    """Read a file into float32 ``(channels, samples)`` and its sample rate in Hz.

    The sample rate is kept as it comes in (no resampling). A mono file is returned as two
    identical channels (``mono_as="dual"``, the default) or as one (``"single"``). The audio
    must pass :func:`check_audio`; a truncated file is refused; every refusal names the file.
    """
    if mono_as not in MONO_AS:
        raise ParameterError(f"mono_as = {mono_as!r} is not one of: {', '.join(MONO_AS)}")
    name = _check_readable(path)
    _check_not_truncated(path, name)
    try:
        with sf.SoundFile(os.fspath(path)) as f:
            _check_container(f.format, name)
            channels, sample_rate, frames = f.channels, f.samplerate, f.frames
            # Refuse from the header before decoding anything large.
            _check_channels(channels, name)
            _check_sample_rate(sample_rate, name)
            if frames <= 0:
                raise EmptyAudioError(f"{name} contains no audio (0 samples)")
            x = _read_frames(f, channels, frames)
            if x.shape[1] < frames:
                raise CorruptFileError(f"{name} is truncated: its header promises {frames} samples but only "
                                       f"{x.shape[1]} could be read; export or copy it again")
    except RuntimeError as exc:  # soundfile.LibsndfileError and other libsndfile failures
        raise _open_error(path, name, exc) from None
    check_audio(x, sample_rate, what=name)
    if x.shape[0] == 1 and mono_as == "dual":
        x = np.repeat(x, 2, axis=0)
    return x, sample_rate


def _riff_chunks(path: str | os.PathLike[str]) -> tuple[int, list[tuple[bytes, int, int]]] | None:
    """``(file size, [(chunk id, data offset, declared size), ...])`` of a RIFF/WAVE file, else None."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        chunks: list[tuple[bytes, int, int]] = []
        pos = 12
        while pos + 8 <= size and len(chunks) < 64:
            fh.seek(pos)
            cid, n = struct.unpack("<4sI", fh.read(8))
            chunks.append((cid, pos + 8, n))
            if cid == b"data":
                break
            pos += 8 + n + (n & 1)
    return size, chunks


def _check_not_truncated(path: str | os.PathLike[str], name: str) -> None:
    """WAV: the data chunk must hold the bytes its header declares (libsndfile quietly reads
    whatever is there). Other containers are checked by the short read in read_audio."""
    try:
        info = _riff_chunks(path)
    except OSError:
        return
    if info is None:
        return
    size, chunks = info
    data = [c for c in chunks if c[0] == b"data"]
    if not data:
        raise CorruptFileError(f"{name} is truncated or damaged: it has no audio data chunk")
    _, offset, declared = data[0]
    if declared not in (0, 0xFFFFFFFF) and offset + declared > size:  # 0/-1: streamed or RF64 headers
        raise CorruptFileError(f"{name} is truncated: its header promises {declared} bytes of audio but "
                               f"only {size - offset} are there; export or copy it again")


def channel_mask(path: str | os.PathLike[str]) -> int | None:
    """The WAVE_FORMAT_EXTENSIBLE speaker mask of a WAV file (None when it has none)."""
    try:
        info = _riff_chunks(path)
        if info is None:
            return None
        for cid, offset, n in info[1]:
            if cid == b"fmt " and n >= 24:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    fmt = fh.read(24)
                if struct.unpack("<H", fmt[:2])[0] == 0xFFFE:
                    return int(struct.unpack("<I", fmt[20:24])[0])
    except OSError:
        return None
    return None


#: the standard speaker masks (Microsoft's defaults) by channel count, used when none is given
DEFAULT_CHANNEL_MASKS = {1: 0x4, 2: 0x3, 3: 0x7, 4: 0x33, 5: 0x37, 6: 0x3F, 7: 0x13F, 8: 0x63F}


def _extensible_mask(spec: _OutFormat, channels: int, channel_mask: int | None) -> int | None:
    """The speaker mask to write, or None when the file is not WAVE_FORMAT_EXTENSIBLE: WAV of more
    than two channels, or any WAV given a mask (default: the standard mask for the count)."""
    if channel_mask is not None and (isinstance(channel_mask, bool) or not isinstance(channel_mask, int)
                                     or not 0 <= channel_mask < 1 << 32):
        raise ParameterError(f"channel_mask must be a 32-bit speaker mask, got {channel_mask!r}")
    if spec.container != "WAV" or (channels <= 2 and channel_mask is None):
        return None
    return channel_mask if channel_mask is not None else DEFAULT_CHANNEL_MASKS.get(channels, 0)


def _set_channel_mask(fd: int, mask: int) -> None:
    """Patch dwChannelMask in the WAVE_FORMAT_EXTENSIBLE header of an open, written WAV file."""
    os.lseek(fd, 0, os.SEEK_SET)
    head = os.read(fd, 4096)
    i = head.find(b"fmt ")
    if i < 0 or struct.unpack("<H", head[i + 8: i + 10])[0] != 0xFFFE:
        raise WriteFailedError("could not set the channel layout: the file is not WAVE_FORMAT_EXTENSIBLE")
    os.lseek(fd, i + 8 + 20, os.SEEK_SET)
    os.write(fd, struct.pack("<I", mask))


def _frame_reader(f: sf.SoundFile, max_frames: int) -> Callable[[np.ndarray], int]:
    """``read_into(out)``: fills ``out`` (channels, n) float32 from ``f``'s current position and
    returns the frames read (fewer at the end). WAV sample bytes are converted by :mod:`.pcm`;
    anything else by libsndfile, through an interleaved buffer."""
    width = pcm.raw_width(f)
    if width:
        return pcm.RawReader(f, width, max_frames).read_into
    buf = np.empty((max(1, max_frames), f.channels), dtype=np.float32)

    def read_into(out: np.ndarray) -> int:
        got = f.read(out.shape[1], dtype="float32", always_2d=True, out=buf[:out.shape[1]])
        out[:, :len(got)] = got.T
        return len(got)

    return read_into


def _read_frames(f: sf.SoundFile, channels: int, frames: int) -> np.ndarray:
    # Block-wise de-interleaving into the final array, without a full-size interleaved copy.
    out = np.empty((channels, frames), dtype=np.float32)
    read_into = _frame_reader(f, min(_BLOCK_FRAMES, frames))
    done = 0
    while done < frames:
        n = read_into(out[:, done:min(frames, done + _BLOCK_FRAMES)])
        if n == 0:
            break  # header promised more than the file holds: keep what is there
        done += n
    if done < frames:
        out = np.ascontiguousarray(out[:, :done])  # the caller refuses the short read
    return out


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Describe a file from its header without reading its samples (no range checks)."""
    name = _check_readable(path)
    try:
        with sf.SoundFile(os.fspath(path)) as f:
            _check_container(f.format, name)
            sample_rate, frames = int(f.samplerate), int(f.frames)
            return AudioInfo(
                path=os.fspath(path),
                sample_rate=sample_rate,
                channels=int(f.channels),
                frames=frames,
                duration_s=frames / sample_rate if sample_rate > 0 else 0.0,
                format=f.format,
                subtype=f.subtype,
                channel_mask=channel_mask(path) if f.format in ("WAV", "WAVEX") else None,
            )
    except RuntimeError as exc:
        raise _open_error(path, name, exc) from None


def _supported_list() -> str:
    return ", ".join(SUPPORTED_READ)


def _check_readable(path: str | os.PathLike[str]) -> str:
    """Refuse what libsndfile should not even be asked to open; return the display name."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise FileMissingError(f"not a file path: {path!r}") from None
    name = str(p)
    if not os.path.exists(p):
        raise FileMissingError(f"file not found: {name}")
    if os.path.isdir(p):
        raise FileMissingError(f"{name} is a folder, not an audio file")
    ext = os.path.splitext(p)[1].lower()
    if ext not in SUPPORTED_READ:
        what = f"{ext} files are" if ext else "files without an extension are"
        raise UnsupportedFormatError(f"{name}: {what} not supported; supported: {_supported_list()}")
    try:
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    return name


def _check_container(container: str, name: str) -> None:
    if container not in _READ_CONTAINERS:
        raise UnsupportedFormatError(
            f"{name} holds {container} audio, which is not supported; "
            f"supported: {_supported_list()} (WAV, FLAC, AIFF or Ogg Vorbis content)"
        )


def _open_error(path: str | os.PathLike[str], name: str, exc: Exception) -> ReaMasterError:
    if not os.path.exists(os.fspath(path)):  # vanished between the checks and the open
        return FileMissingError(f"file not found: {name}")
    detail = getattr(exc, "error_string", None) or str(exc)
    return CorruptFileError(f"{name} is not valid audio or is damaged ({detail})")


# --- checks ------------------------------------------------------------------------------------

def _check_channels(channels: int, what: str, shape: tuple[int, ...] | None = None) -> None:
    if channels < 1:
        raise ChannelCountError(f"{what} has no channels")
    if channels > MAX_CHANNELS:
        hint = ""
        if shape is not None and len(shape) == 2 and shape[1] <= MAX_CHANNELS:
            hint = f" (shape {shape}: arrays must be (channels, samples), not (samples, channels))"
        raise ChannelCountError(f"{what} has {channels} channels; at most {MAX_CHANNELS} are supported{hint}")


def _check_sample_rate(sample_rate: int, what: str) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise SampleRateError(f"the sample rate of {what} must be a whole number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise SampleRateError(
            f"{what} has a sample rate of {int(sample_rate)} Hz; "
            f"supported: {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"
        )


def _check_array(x: np.ndarray, sample_rate: int, what: str) -> tuple[float, float]:
    """Layout, dtype, channels, sample rate, emptiness and finiteness; returns (max, min)."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        got = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise InputError(f"{what} must be a 2-D array (channels, samples), got {got}")
    if x.dtype not in (np.float32, np.float64):
        raise InputError(f"{what} must hold float32 or float64 samples, got {x.dtype}")
    _check_channels(x.shape[0], what, x.shape)
    _check_sample_rate(sample_rate, what)
    if x.shape[1] == 0:
        raise EmptyAudioError(f"{what} contains no audio (0 samples)")
    # max/min propagate NaN and show Inf, so the common all-finite case costs two
    # cheap reductions that the silence check needs anyway.
    hi, lo = float(x.max()), float(x.min())
    if not (math.isfinite(hi) and math.isfinite(lo)):
        bad = x.size - int(np.count_nonzero(np.isfinite(x)))
        raise NonFiniteAudioError(f"{what} contains {bad} invalid samples (NaN or infinity) out of {x.size}")
    return hi, lo


def check_audio(x: np.ndarray, sample_rate: int, *, what: str = "the audio") -> None:
    """Refuse audio that cannot be mastered.

    Requires a float32/float64 ``(channels, samples)`` array with 1..8 channels, a sample
    rate of 22050..192000 Hz, only finite samples, at least 0.4 s, and a sample peak of
    at least -90 dBFS. ``what`` names the audio (e.g. the file) in the message.
    """
    hi, lo = _check_array(x, sample_rate, what)
    frames = x.shape[1]
    duration_s = frames / sample_rate
    if duration_s < MIN_DURATION_S:
        shown = math.floor(duration_s * 1000) / 1000  # never print 0.4 for 0.3999
        raise TooShortError(
            f"{what} is only {shown:g} s long ({frames} samples at {int(sample_rate)} Hz); "
            f"at least {MIN_DURATION_S:g} s is needed to measure loudness"
        )
    peak = max(hi, -lo)
    if peak < 10.0 ** (SILENCE_DBFS / 20.0):
        level = "all samples are zero" if peak == 0.0 else f"peak {20.0 * math.log10(peak):.1f} dBFS"
        raise SilentAudioError(f"{what} is silent ({level}; below {SILENCE_DBFS:g} dBFS)")


# --- output format -----------------------------------------------------------------------------

def output_format_for(
    path: str | os.PathLike[str], bit_depth: int | None = None, *, float_output: bool = False
) -> str:
    """Pick one of OUTPUT_FORMATS from the extension (.wav/.flac) and an optional bit depth.

    ``bit_depth``: 16, 24 or 32 (32 means 32-bit float, WAV only); default 24-bit.
    ``float_output`` asks for 32-bit float WAV.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if bit_depth is not None and (isinstance(bit_depth, bool) or bit_depth not in (16, 24, 32)):
        raise ParameterError(f"bit depth {bit_depth!r} is not supported; choose 16, 24 or 32 (float)")
    if ext == ".wav":
        if float_output:
            if bit_depth not in (None, 32):
                raise ParameterError(f"float output is 32-bit; it cannot be {bit_depth}-bit (WAV: 16, 24 or 32 float)")
            return "wav32f"
        return {None: "wav24", 16: "wav16", 24: "wav24", 32: "wav32f"}[bit_depth]
    if ext == ".flac":
        if float_output or bit_depth == 32:
            raise ParameterError("FLAC cannot hold 32-bit float audio; use 16 or 24 bit, or a .wav file for float")
        return {None: "flac24", 16: "flac16", 24: "flac24"}[bit_depth]
    shown = ext if ext else "a file name without an extension"
    raise ParameterError(f"cannot write {shown}: output must be .wav (16, 24 or 32-bit float) or .flac (16 or 24 bit)")


# --- writing -----------------------------------------------------------------------------------

def write_audio(
    path: str | os.PathLike[str],
    x: np.ndarray,
    sample_rate: int,
    *,
    fmt: str = "wav24",
    force: bool = False,
    protect: Iterable[str | os.PathLike[str]] = (),
    dither_seed: int | None = 0,
    channel_mask: int | None = None,
) -> WriteResult:
    """Write ``(channels, samples)`` float audio atomically as ``fmt`` (see OUTPUT_FORMATS).

    WAV files of more than two channels (or with a ``channel_mask``) are written as
    WAVE_FORMAT_EXTENSIBLE with ``channel_mask`` (default: the standard mask for the channel
    count, e.g. 0x3F for 5.1), so players keep the speaker layout. Pass the input's
    :func:`channel_mask` to keep its layout.

    16-bit formats get TPDF dither (+-1 LSB triangular, seeded by ``dither_seed``;
    ``None`` = fresh randomness); 24-bit and float get none. Integer formats clip samples
    beyond +-1.0 and count them. Never writes over a path in ``protect`` (even with
    ``force``), nor over an existing file unless ``force``.
    """
    if fmt not in _OUT:
        raise ParameterError(f"fmt = {fmt!r} is not one of: {', '.join(_OUT_ORDER)}")
    spec = _OUT[fmt]
    dest = _fspath_out(path)
    ext = os.path.splitext(dest)[1].lower()
    if ext != spec.ext:
        raise ParameterError(f"cannot write {dest} as {fmt}: that format needs a {spec.ext} file name")
    if dither_seed is not None and (isinstance(dither_seed, bool) or not isinstance(dither_seed, (int, np.integer))):
        raise ParameterError(f"dither_seed must be a whole number or None, got {dither_seed!r}")
    _check_array(x, sample_rate, "the audio to write")
    _check_destination(dest, force=force, protect=protect)

    channels, frames = x.shape
    dithered = spec.bits == 16
    mask = _extensible_mask(spec, channels, channel_mask)
    extensible = mask is not None
    container = "WAVEX" if extensible else spec.container

    def write(fd: int) -> int:
        with sf.SoundFile(fd, "w", int(sample_rate), channels, spec.subtype, format=container, closefd=False) as f:
            clipped = _write_blocks(f, x, spec, dither_seed)
        if mask is not None:
            _set_channel_mask(fd, mask)
        return clipped

    clipped = _atomic_write(dest, force, write)
    return WriteResult(
        path=dest, fmt=fmt, sample_rate=int(sample_rate), channels=channels, frames=frames,
        clipped_samples=clipped, dithered=dithered,
    )


def _write_blocks(f: sf.SoundFile, x: np.ndarray, spec: _OutFormat, dither_seed: int | None) -> int:
    """Quantise and interleave block by block; return how many samples were clipped."""
    quantise = _BlockWriter(f, spec, x.shape[0], dither_seed)
    frames = x.shape[1]
    return sum(quantise(x[:, i:i + _BLOCK_FRAMES]) for i in range(0, frames, _BLOCK_FRAMES))


class _BlockWriter:
    """Appends ``(channels, n <= _BLOCK_FRAMES)`` float blocks to ``f``, quantised for ``spec``;
    each call returns the samples clipped. The dither sequence depends only on the block sizes, so
    the whole-signal and the streaming writers make the same file. WAV PCM is quantised and packed
    by :mod:`.pcm`; other formats by numpy and libsndfile, to the same integers."""

    def __init__(self, f: sf.SoundFile, spec: _OutFormat, channels: int, dither_seed: int | None) -> None:
        self.f, self.spec = f, spec
        self.rng = np.random.default_rng(dither_seed) if spec.bits == 16 else None
        raw = not spec.is_float and pcm.raw_width(f) == spec.bits // 8
        self.scratch = np.empty(_BLOCK_FRAMES * channels * (spec.bits // 8), dtype=np.uint8) if raw else None
        self.noise = np.empty((2, _BLOCK_FRAMES, channels), dtype=np.float32) if self.rng is not None else None

    def __call__(self, x: np.ndarray) -> int:
        spec, n = self.spec, x.shape[1]
        if spec.is_float:
            self.f.write(np.ascontiguousarray(x.T, dtype=np.float32))
            return 0
        noise = None
        if self.rng is not None and self.noise is not None:
            # TPDF: difference of two independent uniforms in [0, 1) -> triangular on (-1, 1) LSB.
            noise = (self.noise[0, :n], self.noise[1, :n])
            self.rng.random(out=noise[0], dtype=np.float32)
            self.rng.random(out=noise[1], dtype=np.float32)
        if self.scratch is not None:
            return pcm.write_raw(self.f, x, bits=spec.bits, noise=noise, scratch=self.scratch)
        scale = float(1 << (spec.bits - 1))  # 2**15 or 2**23: the reading side divides by the same
        w = np.multiply(x.T, np.float64(scale) if x.dtype == np.float64 else np.float32(scale))
        clipped = int(np.count_nonzero(w > scale)) + int(np.count_nonzero(w < -scale))
        if noise is not None:
            w += noise[0]
            w -= noise[1]
        np.rint(w, out=w)
        np.clip(w, -scale, scale - 1.0, out=w)
        q = w.astype(np.int16 if spec.bits == 16 else np.int32)
        if spec.bits == 24:
            np.left_shift(q, 8, out=q)  # libsndfile's PCM_24 takes the top 24 bits of an int32
        self.f.write(q)
        return clipped


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, force: bool = False, protect: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Write UTF-8 text (JSON reports, chain files) with write_audio's atomic/refusal rules."""
    if not isinstance(text, str):
        raise ParameterError(f"text to write must be a string, got {type(text).__name__}")
    dest = _fspath_out(path)
    _check_destination(dest, force=force, protect=protect)
    data = text.encode("utf-8")

    def write(fd: int) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    _atomic_write(dest, force, write)


# --- destination safety ------------------------------------------------------------------------

def _fspath_out(path: str | os.PathLike[str]) -> str:
    try:
        return str(os.fspath(path))
    except TypeError:
        raise OutputError(f"not a file path: {path!r}") from None


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)  # also catches hard links and case-insensitive names
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _check_destination(dest: str, *, force: bool, protect: Iterable[str | os.PathLike[str]]) -> None:
    folder = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise OutputError(f"cannot write {dest}: {folder} is not a folder")
        raise OutputError(f"cannot write {dest}: the folder {folder} does not exist")
    if os.path.isdir(dest):
        raise OutputError(f"cannot write {dest}: it is a folder")
    if isinstance(protect, (str, bytes, os.PathLike)):
        protect = (protect,)  # a lone path, not an iterable of characters
    for p in protect:
        if _same_file(dest, str(os.fspath(p))):
            raise OutputIsInputError(
                f"refusing to write {dest}: it is the input file {os.fspath(p)}; choose another output name"
            )
    if not force and os.path.lexists(dest):
        raise OutputExistsError(f"{dest} already exists; choose another name or allow overwriting")


_T = TypeVar("_T")


def _atomic_write(dest: str, force: bool, write: Callable[[int], _T]) -> _T:
    """Run ``write(fd)`` on a temp file next to ``dest``, fsync, then move it into place."""
    folder = os.path.dirname(os.path.abspath(dest))
    base = os.path.basename(dest)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # 0o666 & ~umask, like any newly created file
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteFailedError(f"could not write {dest}: {exc.strerror or exc}") from None
    try:
        try:
            result = write(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        _commit(tmp, dest, force)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, ReaMasterError):
            raise
        # AssertionError: soundfile asserts that every frame was written (fails on a full disk).
        if isinstance(exc, (OSError, RuntimeError, AssertionError)):
            reason = getattr(exc, "strerror", None) or getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
            raise WriteFailedError(f"could not write {dest}: {reason}") from exc
        raise
    _sync_folder(folder)
    return result


def _commit(tmp: str, dest: str, force: bool) -> None:
    if force:
        os.replace(tmp, dest)
        return
    # A hard link fails if dest appeared since the check: no silent overwrite in a race.
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise OutputExistsError(f"{dest} already exists; choose another name or allow overwriting") from None
    except OSError:  # file system without hard links
        if os.path.lexists(dest):
            raise OutputExistsError(f"{dest} already exists; choose another name or allow overwriting") from None
        os.replace(tmp, dest)
        return
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _sync_folder(folder: str) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- streaming: reading and writing in blocks ----------------------------------------------------

#: frames per block of the streaming passes (a multiple of 64 k: 4 MB of stereo float32)
STREAM_BLOCK_FRAMES = 1 << 18


class AudioSource:
    """A file read in blocks, as often as needed, never whole.

    Opening checks the header as :func:`read_audio` does (existence, extension, container,
    channels, sample rate, no samples); what needs the samples (finiteness, length, silence) is
    checked by the first complete pass of :meth:`blocks`. ``frames`` is the header's count until
    a full pass has counted what the file really holds.
    """

    def __init__(self, path: str | os.PathLike[str], *, mono_as: str = "dual") -> None:
        if mono_as not in MONO_AS:
            raise ParameterError(f"mono_as = {mono_as!r} is not one of: {', '.join(MONO_AS)}")
        self.name = _check_readable(path)
        self.path = os.fspath(path)
        _check_not_truncated(path, self.name)
        try:
            with sf.SoundFile(self.path) as f:
                _check_container(f.format, self.name)
                self.channels, self.sample_rate, self.frames = int(f.channels), int(f.samplerate), int(f.frames)
        except RuntimeError as exc:
            raise _open_error(path, self.name, exc) from None
        _check_channels(self.channels, self.name)
        self.file_channels = self.channels
        if self.channels == 1 and mono_as == "dual":
            self.channels = 2  # heard on two speakers: measured and delivered as dual-mono, as read_audio does
        _check_sample_rate(self.sample_rate, self.name)
        if self.frames <= 0:
            raise EmptyAudioError(f"{self.name} contains no audio (0 samples)")
        self.checked = False  # set by the first complete pass of blocks()

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def blocks(self, block_frames: int = STREAM_BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Float32 C-contiguous ``(channels, n)`` blocks of ``block_frames`` (the last may be shorter).

        A file that holds fewer frames than its header says is refused (CorruptFileError) at the
        end of the pass, as :func:`read_audio` refuses it. The first complete pass also applies
        :func:`check_audio`'s refusals (non-finite, too short, silent): they are raised after its
        last block, so a pass that measures the audio checks it on the way."""
        if block_frames <= 0:
            raise ParameterError(f"block_frames must be positive, got {block_frames}")
        check = not self.checked
        peak, invalid = 0.0, 0
        try:
            with sf.SoundFile(self.path) as f:
                read_into = _frame_reader(f, min(block_frames, self.frames))
                done = 0
                while done < self.frames:
                    block = np.empty((self.file_channels, min(block_frames, self.frames - done)), dtype=np.float32)
                    n = read_into(block)
                    if n == 0:
                        break
                    done += n
                    if n < block.shape[1]:
                        block = block[:, :n].copy()
                    if self.channels != self.file_channels:
                        block = np.repeat(block, self.channels, axis=0)
                    if check:
                        hi, lo = float(block.max()), float(block.min())
                        if math.isfinite(hi) and math.isfinite(lo):
                            peak = max(peak, hi, -lo)
                        else:
                            invalid += block.size - int(np.count_nonzero(np.isfinite(block)))
                    yield block
        except RuntimeError as exc:
            raise _open_error(self.path, self.name, exc) from None
        if done < self.frames:
            raise CorruptFileError(f"{self.name} is truncated: its header promises {self.frames} samples but only "
                                   f"{done} could be read; export or copy it again")
        if check:
            check_audio_summary(done, self.sample_rate, peak=peak, invalid=invalid, channels=self.channels,
                                what=self.name)
            self.checked = True


    def section(self, start_frame: int, frames: int) -> np.ndarray:
        """Float32 ``(channels, n)`` of ``frames`` samples from ``start_frame`` (clamped to the file),
        read by seeking: a preview needs its stretch, not the whole file."""
        start = min(max(0, int(start_frame)), self.frames)
        n = min(max(0, int(frames)), self.frames - start)
        try:
            with sf.SoundFile(self.path) as f:
                f.seek(start)
                block = _read_frames(f, self.file_channels, n)
        except RuntimeError as exc:
            raise _open_error(self.path, self.name, exc) from None
        return np.repeat(block, self.channels, axis=0) if self.channels != self.file_channels else block


def check_audio_summary(frames: int, sample_rate: int, *, peak: float, invalid: int, channels: int,
                        what: str = "the audio") -> None:
    """:func:`check_audio`'s refusals from a block-wise pass: ``peak`` (largest |sample|) and
    ``invalid`` (NaN/inf count) over all ``frames`` of ``channels`` channels; same messages."""
    if invalid:
        raise NonFiniteAudioError(
            f"{what} contains {invalid} invalid samples (NaN or infinity) out of {frames * channels}")
    duration_s = frames / sample_rate
    if duration_s < MIN_DURATION_S:
        shown = math.floor(duration_s * 1000) / 1000
        raise TooShortError(
            f"{what} is only {shown:g} s long ({frames} samples at {int(sample_rate)} Hz); "
            f"at least {MIN_DURATION_S:g} s is needed to measure loudness"
        )
    if peak < 10.0 ** (SILENCE_DBFS / 20.0):
        level = "all samples are zero" if peak == 0.0 else f"peak {20.0 * math.log10(peak):.1f} dBFS"
        raise SilentAudioError(f"{what} is silent ({level}; below {SILENCE_DBFS:g} dBFS)")


class AudioWriter:
    """Writes ``(channels, n)`` blocks as they come, atomically, into the same file
    :func:`write_audio` makes of the whole signal (same quantisation, same dither sequence).

    Use as a context manager: ``commit()`` moves the file into place and returns the
    WriteResult; leaving the block without it (or ``abort()``) removes the temporary file.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, channels: int, *, fmt: str = "wav24",
                 force: bool = False, protect: Iterable[str | os.PathLike[str]] = (),
                 dither_seed: int | None = 0, channel_mask: int | None = None) -> None:
        if fmt not in _OUT:
            raise ParameterError(f"fmt = {fmt!r} is not one of: {', '.join(_OUT_ORDER)}")
        self.spec = spec = _OUT[fmt]
        self.fmt = fmt
        self.dest = dest = _fspath_out(path)
        if os.path.splitext(dest)[1].lower() != spec.ext:
            raise ParameterError(f"cannot write {dest} as {fmt}: that format needs a {spec.ext} file name")
        if dither_seed is not None and (isinstance(dither_seed, bool)
                                        or not isinstance(dither_seed, (int, np.integer))):
            raise ParameterError(f"dither_seed must be a whole number or None, got {dither_seed!r}")
        _check_channels(channels, "the audio to write")
        _check_sample_rate(sample_rate, "the audio to write")
        _check_destination(dest, force=force, protect=protect)
        self._mask = _extensible_mask(spec, channels, channel_mask)
        self.sample_rate, self.channels, self.force = int(sample_rate), int(channels), force
        self.frames = 0
        self.clipped = 0
        self._buf = np.empty((channels, _BLOCK_FRAMES), dtype=np.float32)
        self._fill = 0
        folder = os.path.dirname(os.path.abspath(dest))
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            self._tmp = os.path.join(folder, f".{os.path.basename(dest)}.{secrets.token_hex(4)}.tmp")
            try:
                self._fd: int | None = os.open(self._tmp, flags, 0o666)
                self._tmp_live = True
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise WriteFailedError(f"could not write {dest}: {exc.strerror or exc}") from None
        self._file: sf.SoundFile | None = None
        try:
            self._file = sf.SoundFile(self._fd, "w", self.sample_rate, channels, spec.subtype,
                                      format="WAVEX" if self._mask is not None else spec.container, closefd=False)
            self._quantise = _BlockWriter(self._file, spec, channels, dither_seed)
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    def write(self, block: np.ndarray) -> None:
        """Append ``(channels, n)`` float samples; NaN or infinity is refused."""
        if self._file is None:
            raise OutputError(f"{self.dest}: the writer is closed")
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise InputError(f"blocks to write must be ({self.channels}, n), got shape {block.shape}")
        if block.shape[1] and not (math.isfinite(float(block.max())) and math.isfinite(float(block.min()))):
            bad = block.size - int(np.count_nonzero(np.isfinite(block)))
            raise NonFiniteAudioError(f"the audio to write contains {bad} invalid samples (NaN or infinity)")
        pos, n = 0, block.shape[1]
        while pos < n:
            take = min(n - pos, _BLOCK_FRAMES - self._fill)
            self._buf[:, self._fill:self._fill + take] = block[:, pos:pos + take]
            self._fill += take
            pos += take
            if self._fill == _BLOCK_FRAMES:
                self._flush()
        self.frames += n

    def _flush(self) -> None:
        n, f = self._fill, self._file
        self._fill = 0
        if n == 0 or f is None:
            return
        try:
            self.clipped += self._quantise(self._buf[:, :n])
        except (OSError, RuntimeError, AssertionError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "error_string", None) or str(exc)
            self.abort()
            raise WriteFailedError(f"could not write {self.dest}: {reason or type(exc).__name__}") from exc

    def commit(self) -> WriteResult:
        """Finish the file and move it into place; returns what was written."""
        if self._file is None:
            raise OutputError(f"{self.dest}: the writer is closed")
        self._flush()
        try:
            self._file.close()
            self._file = None
            if self._fd is not None:
                if self._mask is not None:
                    _set_channel_mask(self._fd, self._mask)
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            _commit(self._tmp, self.dest, self.force)
            self._tmp_live = False
        except BaseException as exc:
            self.abort()
            if isinstance(exc, ReaMasterError):
                raise
            if isinstance(exc, (OSError, RuntimeError, AssertionError)):
                reason = getattr(exc, "strerror", None) or getattr(exc, "error_string", None) or str(exc)
                raise WriteFailedError(f"could not write {self.dest}: {reason or type(exc).__name__}") from exc
            raise
        _sync_folder(os.path.dirname(os.path.abspath(self.dest)))
        return WriteResult(path=self.dest, fmt=self.fmt, sample_rate=self.sample_rate, channels=self.channels,
                           frames=self.frames, clipped_samples=self.clipped, dithered=self.spec.bits == 16)

    def abort(self) -> None:
        """Drop the temporary file (nothing is written at the destination). Idempotent."""
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - closing a half-written file while giving up on it
                pass
            self._file = None
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self._tmp_live:
            self._tmp_live = False
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
