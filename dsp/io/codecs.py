"""Lossy codec round trips in memory: encode the way streaming services do, decode.

Encodes with the libsndfile that ships inside ``soundfile`` (LAME, libvorbis, libopus; mpg123 to
decode). The codecs and why these settings (nominal rates are for stereo):

* ``mp3_320``: MPEG-1 Layer III, **320 kbps CBR** (LAME ``vbr_off``, ``brate 320``); the
  download-store and legacy-player format. Verified: every frame header carries 320 kbps.
* ``vorbis_320``: Ogg Vorbis **quality 9** (VBR, nominal 320 kbps), Spotify's "Very high".
* ``opus_160``: Ogg Opus **160 kbps** VBR (80 kbps per channel), YouTube's best audio.

AAC (Apple Music, Spotify's 256 kbps AAC) is not covered: no maintained AAC encoder is
available as a Python package here.

Sample rates: MP3 and Vorbis are encoded at 32/44.1/48 kHz as they come; any other rate is
resampled to 44.1 kHz (multiples of 11025 Hz) or 48 kHz (all others), as services transcode
high-rate masters. Opus only works at 48 kHz, so everything else is resampled to 48 kHz
with ``scipy.signal.resample_poly`` first.

The decoders here are gapless (no delay, no padding: the decoded length equals the input
length and the lag is 0), so excerpts line up with the source sample for sample. Measuring
what the codecs do to a master's peaks is :mod:`dsp.decide.codec_safe`.
"""

from __future__ import annotations

import dataclasses
import io
from fractions import Fraction

import numpy as np
import soundfile as sf

from ..errors import CodecError, ParameterError

_WRITE_FRAMES = 8192  # libsndfile 1.2.2's Vorbis encoder crashes on one multi-million-frame write


@dataclasses.dataclass(frozen=True)
class CodecSpec:
    name: str
    label: str
    format: str  # soundfile container
    subtype: str  # soundfile codec
    compression_level: float  # libsndfile's 0 (best) .. 1 (smallest)
    bitrate_mode: str | None
    nominal_kbps: float  # stereo
    opus_rates_only: bool
    note: str


_SPECS: dict[str, CodecSpec] = {
    s.name: s
    for s in (
        # libsndfile: CBR bitrate = 320 - level * (320 - 32) for MPEG-1 rates.
        CodecSpec("mp3_320", "MP3 320 kbps CBR", "MP3", "MPEG_LAYER_III", 0.0, "CONSTANT", 320.0, False,
                  "LAME via libsndfile, constant 320 kbps; download stores and older players"),
        # libsndfile: Vorbis quality = 1 - level; libvorbis quality 0.9 is "q9", nominal 320 kbps.
        CodecSpec("vorbis_320", "Ogg Vorbis q9 (~320 kbps)", "OGG", "VORBIS", 0.1, None, 320.0, False,
                  "libvorbis quality 9 (VBR, nominal 320 kbps); Spotify 'Very high'"),
        # libsndfile: Opus bitrate = ((1 - level) * 250000 + 6000) * channels -> 80 kbps per channel.
        CodecSpec("opus_160", "Ogg Opus 160 kbps", "OGG", "OPUS", 1.0 - 74000.0 / 250000.0, None, 160.0, True,
                  "libopus VBR, 80 kbps per channel at 48 kHz; YouTube's best audio stream"),
    )
}
CODECS: tuple[str, ...] = tuple(_SPECS)


def codec_spec(name: str) -> CodecSpec:
    spec = _SPECS.get(name)
    if spec is None:
        raise ParameterError(f"unknown codec {name!r}; choose from: {', '.join(CODECS)}")
    return spec


# --- helpers -----------------------------------------------------------------------------------

def codec_rate(sample_rate: int, spec: CodecSpec) -> int:
    """Sample rate (Hz) the codec runs at for a source at ``sample_rate``."""
    if spec.opus_rates_only:
        return 48000
    if sample_rate in (32000, 44100, 48000):
        return sample_rate
    return 44100 if sample_rate % 11025 == 0 else 48000


def resample(x: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    if rate == sample_rate:
        return x
    from scipy.signal import resample_poly  # slow to import; only needed off the native rates

    ratio = Fraction(rate, sample_rate)
    y: np.ndarray = resample_poly(x, ratio.numerator, ratio.denominator, axis=1).astype(np.float32)
    return y


def encode_decode(x: np.ndarray, rate: int, spec: CodecSpec) -> tuple[np.ndarray, bytes]:
    """Encode ``(channels, samples)`` at ``rate`` in memory, decode; returns (decoded, encoded file)."""
    buf = io.BytesIO()
    frames = np.ascontiguousarray(x.T, dtype=np.float32)
    try:
        with sf.SoundFile(buf, "w", samplerate=rate, channels=x.shape[0], format=spec.format,
                          subtype=spec.subtype, compression_level=spec.compression_level,
                          bitrate_mode=spec.bitrate_mode) as f:
            for start in range(0, frames.shape[0], _WRITE_FRAMES):
                f.write(frames[start:start + _WRITE_FRAMES])
        data = buf.getvalue()
        buf.seek(0)
        decoded, decoded_rate = sf.read(buf, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise CodecError(f"the {spec.label} encoder in this soundfile/libsndfile build failed ({err}); "
                             f"soundfile 0.13+ with its bundled libsndfile 1.2 is needed") from err
    if decoded_rate != rate:
        raise CodecError(
            f"the {spec.label} decoder returned {decoded_rate} Hz audio for a {rate} Hz encode")
    return np.ascontiguousarray(decoded.T), data


def round_trip(x: np.ndarray, sample_rate: int, codec: str) -> tuple[np.ndarray, int, bytes]:
    """Encode ``(channels, samples)`` to ``codec`` in memory and decode it.

    Returns ``(decoded float32 (channels, samples), its sample rate in Hz, the encoded file)``;
    the source is resampled first when the codec runs at another rate (see :func:`codec_rate`).
    """
    spec = codec_spec(codec)
    rate = codec_rate(sample_rate, spec)
    decoded, data = encode_decode(resample(np.asarray(x, dtype=np.float32), sample_rate, rate), rate, spec)
    return decoded, rate, data



__all__ = ["CODECS", "CodecSpec", "codec_rate", "codec_spec", "encode_decode", "resample", "round_trip"]
