"""The ReaMaster wire protocol (RMP1): framing, signing and validation. Standard library only.

A message is a ZeroMQ multipart message (the ROUTER adds the routing id in front)::

    [b"RMP1", signature, header JSON, content JSON, audio part 0, audio part 1, ...]

``signature`` is the lowercase hex HMAC-SHA256, keyed with the connection file's key
(``bytes.fromhex(key)``), over every frame after it, each fed as an 8-byte little-endian
length followed by the frame bytes (audio included; the length prefix makes frame
boundaries part of what is signed). Audio is float32 little-endian, planar
``(channels, frames)`` C-order bytes, described by ``content["audio"]``.

:func:`decode` is a pure function ``frames -> Message`` or :class:`ProtocolError` and checks
in this order: frame count, marker, signature (constant time, before anything is parsed),
JSON size caps then ``json.loads``, schema (version, known type, required keys and their
types), audio descriptors (dtype ``'<f4'`` only, byte count, 1..8 channels, 22050..192000 Hz,
duration, finite samples). The full description is ``docs/protocol.md``.

This module must import only the standard library: the client runs inside REAPER.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import hmac
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

MARKER = b"RMP1"
PROTOCOL_VERSION = 1
DTYPE = "<f4"
BYTES_PER_SAMPLE = 4
MIN_CHANNELS, MAX_CHANNELS = 1, 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 22050, 192000
HEADER_FRAMES = 4  # marker, signature, header, content

# Error codes added by the protocol (DSP failures reuse dsp.errors codes).
BAD_SIGNATURE = "bad_signature"
BAD_FRAME_COUNT = "bad_frame_count"
BAD_MARKER = "bad_marker"
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"  # schema: a required key is missing or has the wrong type
UNKNOWN_TYPE = "unknown_type"
BAD_AUDIO = "bad_audio"
TOO_LARGE = "too_large"
BUSY = "busy"
CANCELLED = "cancelled"
NOT_FOUND = "not_found"
UNSUPPORTED_VERSION = "unsupported_version"
PATH_NOT_ALLOWED = "path_not_allowed"
NOT_IMPLEMENTED = "not_implemented"
SHUTTING_DOWN = "shutting_down"
INTERNAL = "internal_error"
SERVER_UNAVAILABLE = "server_unavailable"  # client side only: nobody answered

PROTOCOL_CODES = (BAD_SIGNATURE, BAD_FRAME_COUNT, BAD_MARKER, BAD_JSON, BAD_MESSAGE, UNKNOWN_TYPE, BAD_AUDIO,
                  TOO_LARGE, BUSY, CANCELLED, NOT_FOUND, UNSUPPORTED_VERSION, PATH_NOT_ALLOWED,
                  NOT_IMPLEMENTED, SHUTTING_DOWN, INTERNAL, SERVER_UNAVAILABLE)


class ProtocolError(Exception):
    """A message that breaks the protocol; ``code`` is one of the codes above."""

    def __init__(self, code: str, message: str, *, msg_id: str | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code
        self.msg_id = msg_id  # the request's id when it was already known (after the signature)

    @property
    def message(self) -> str:
        return str(self)


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one side accepts; the server advertises its limits in the ``hello`` reply."""

    max_frame_bytes: int = 64 << 20  # also the socket's maxmsgsize (libzmq enforces it per frame)
    max_frames: int = 8  # marker, signature, header, content and up to 4 audio parts
    max_header_bytes: int = 4096
    max_content_bytes: int = 1 << 20
    max_audio_seconds: float = 1800.0
    chunk_bytes: int = 8 << 20  # upload_chunk payload
    credits: int = 4  # upload chunks a client may have unacknowledged

    @property
    def max_audio_parts(self) -> int:
        return self.max_frames - HEADER_FRAMES


# --- message types and their content schemas -------------------------------------------------------

_NUM = (int, float)
_OPT_STR = (str, type(None))
_OPT_NUM = (int, float, type(None))
_SOURCE = {"path": _OPT_STR, "upload_id": _OPT_STR, "project_dir": (str, list, type(None))}

# type -> {key: (allowed types, required)}; unknown extra keys are allowed (forward compatibility).
REQUESTS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "hello": {"project_dir": ((str, list, type(None)), False), "client_name": (_OPT_STR, False)},
    "ping": {"jobs": ((list, type(None)), False)},
    "status": {"target": (_OPT_STR, False)},
    "cancel": {"target": ((str,), True)},
    "shutdown": {},
    "analyze": {**{k: (v, False) for k, v in _SOURCE.items()}, "series": ((bool,), False)},
    "suggest": {**{k: (v, False) for k, v in _SOURCE.items()}, "preset": (_OPT_STR, False),
                "lufs": (_OPT_NUM, False), "ceiling": (_OPT_NUM, False), "choices": ((dict, type(None)), False)},
    "master": {**{k: (v, False) for k, v in _SOURCE.items()}, "preset": (_OPT_STR, False),
               "lufs": (_OPT_NUM, False), "ceiling": (_OPT_NUM, False), "bits": ((int, type(None)), False),
               "chain": ((dict, type(None)), False), "output": (_OPT_STR, False),
               "choices": ((dict, type(None)), False)},
    "upload_begin": {"dtype": ((str,), True), "shape": ((list,), True), "sample_rate": ((int,), True)},
    "upload_chunk": {"upload_id": ((str,), True), "offset": ((int,), True)},
    "upload_free": {"upload_id": ((str,), True)},
    "album": {"paths": ((list,), True), "output": ((str,), True), "preset": (_OPT_STR, False),
              "lufs": (_OPT_NUM, False), "ceiling": (_OPT_NUM, False), "style": (_OPT_STR, False),
              "bits": ((int, type(None)), False), "project_dir": ((str, list, type(None)), False)},
    "revise": {"session": ((str,), True), "words": (_OPT_STR, False), "from_version": ((int, type(None)), False),
               "render": ((int, type(None)), False), "output": (_OPT_STR, False),
               "project_dir": ((str, list, type(None)), False)},
    # by path: stems {name: path} + output folder; by value: audios (named descriptors) and/or uploads
    "master_stems": {"stems": ((dict, type(None)), False), "audios": ((list, type(None)), False),
                     "uploads": ((dict, type(None)), False), "output": (_OPT_STR, False),
                     "preset": (_OPT_STR, False), "lufs": (_OPT_NUM, False), "ceiling": (_OPT_NUM, False),
                     "bits": ((int, type(None)), False), "stem_bits": ((int, type(None)), False),
                     "project_dir": ((str, list, type(None)), False)},
}
RESERVED_TYPES: tuple[str, ...] = ()  # none left; a future version may reserve names here
JOB_TYPES = ("analyze", "suggest", "master", "album", "revise", "master_stems")
# messages that may carry several named audio signals (content["audios"], parts in list order)
AUDIO_SET_TYPES = ("master_stems", "ok", "w_job", "w_result")
MAX_AUDIO_SET = 16  # named signals in one message
REPLIES: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "ok": {},
    "error": {"code": ((str,), True), "message": ((str,), True)},
    "progress": {"stage": ((str,), True), "fraction": (_NUM, True), "eta_s": (_OPT_NUM, False)},
}
# between the server and its worker processes (same framing, a separate per-run key)
WORKER: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "w_ready": {"pid": ((int,), True), "nonce": ((str,), True)},
    "w_job": {"job_id": ((str,), True), "kind": ((str,), True), "request": ((dict,), True)},
    "w_progress": {"job_id": ((str,), True), "stage": ((str,), True), "fraction": (_NUM, True)},
    "w_result": {"job_id": ((str,), True), "status": ((str,), True)},
    "w_stop": {},
}

_ID_RE = re.compile(r"[0-9A-Za-z_.:-]{1,64}")  # always used with fullmatch (no "$" before a newline)


@dataclasses.dataclass(frozen=True)
class Audio:
    """A validated audio descriptor; ``parts`` frames of the message hold the bytes in order."""

    channels: int
    frames: int
    sample_rate: int
    parts: int = 1
    dtype: str = DTYPE

    @property
    def nbytes(self) -> int:
        return self.channels * self.frames * BYTES_PER_SAMPLE

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": [self.channels, self.frames], "sample_rate": self.sample_rate,
                "parts": self.parts}


@dataclasses.dataclass(frozen=True)
class Message:
    type: str
    msg_id: str
    sender: str
    version: int
    time: str
    ref: str | None
    content: dict[str, Any]
    buffers: tuple[Any, ...] = ()  # bytes-like binary frames (memoryview, bytes or zmq.Frame buffers)
    audio: Audio | None = None
    audios: tuple[tuple[str, Audio], ...] = ()  # named signals (content["audios"]), parts in this order

    def audio_set(self) -> list[tuple[str, Audio, list[Any]]]:
        """(name, descriptor, its binary parts) for each named signal of ``content["audios"]``."""
        out, i = [], 0
        for name, a in self.audios:
            out.append((name, a, list(self.buffers[i:i + a.parts])))
            i += a.parts
        return out

    def audio_bytes(self) -> bytes:
        """The audio parts joined (a copy); empty when there is no audio."""
        return b"".join(bytes(b) for b in self.buffers) if self.audio is not None else b""


# --- encoding -------------------------------------------------------------------------------------

def new_id() -> str:
    """A fresh random 128-bit id, hex."""
    return os.urandom(16).hex()


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def sign(key: bytes, frames: Iterable[Any]) -> bytes:
    """Hex HMAC-SHA256 over the frames, each prefixed by its 8-byte little-endian length."""
    h = hmac.new(key, digestmod=hashlib.sha256)
    for f in frames:
        mv = memoryview(f)
        h.update(mv.nbytes.to_bytes(8, "little"))
        h.update(mv)
    return h.hexdigest().encode("ascii")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode(
    msg_type: str,
    content: dict[str, Any] | None,
    *,
    key: bytes,
    sender: str,
    msg_id: str | None = None,
    ref: str | None = None,
    buffers: Sequence[Any] = (),
) -> list[Any]:
    """Frames for one message (without routing id). ``buffers`` are bytes-like audio parts."""
    header = {"msg_id": msg_id or new_id(), "type": msg_type, "version": PROTOCOL_VERSION,
              "sender": sender, "time": now_iso()}
    if ref is not None:
        header["ref"] = ref
    body = [_dumps(header), _dumps(content or {}), *buffers]
    return [MARKER, sign(key, body), *body]


def split_parts(data: Any, max_part_bytes: int) -> list[memoryview]:
    """Split bytes-like audio into parts of at most ``max_part_bytes`` (whole samples)."""
    mv = memoryview(data).cast("B")
    step = max(BYTES_PER_SAMPLE, max_part_bytes - max_part_bytes % BYTES_PER_SAMPLE)
    return [mv[i:i + step] for i in range(0, mv.nbytes, step)] or [mv]


def audio_descriptor(channels: int, frames: int, sample_rate: int, parts: int = 1) -> dict[str, Any]:
    return Audio(channels, frames, sample_rate, parts).to_dict()


# --- decoding -------------------------------------------------------------------------------------

def _as_bytes(frame: Any) -> bytes:
    buf = getattr(frame, "buffer", None)  # zmq.Frame
    return bytes(buf if buf is not None else frame)


def _as_view(frame: Any) -> memoryview:
    buf = getattr(frame, "buffer", None)
    return memoryview(buf if buf is not None else frame).cast("B")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _load_json(raw: bytes, cap: int, what: str, msg_id: str | None) -> dict[str, Any]:
    if len(raw) > cap:
        raise ProtocolError(TOO_LARGE, f"{what} JSON is {len(raw)} bytes; at most {cap} are accepted", msg_id=msg_id)
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_JSON, f"{what} is not valid JSON ({type(exc).__name__})", msg_id=msg_id) from None
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_JSON, f"{what} must be a JSON object", msg_id=msg_id)
    return obj


def _is_type(v: Any, types: tuple[type, ...]) -> bool:
    if isinstance(v, bool) and bool not in types:
        return False  # JSON true is not a number here
    if isinstance(v, float) and not math.isfinite(v):
        return False
    return isinstance(v, types)


def _check_schema(content: dict[str, Any], schema: dict[str, tuple[tuple[type, ...], bool]], msg_type: str,
                  msg_id: str) -> None:
    for name, (types, required) in schema.items():
        if name not in content:
            if required:
                raise ProtocolError(BAD_MESSAGE, f"{msg_type}: the key {name!r} is required", msg_id=msg_id)
            continue
        if not _is_type(content[name], types):
            want = "/".join(sorted("null" if t is type(None) else t.__name__ for t in types))
            raise ProtocolError(BAD_MESSAGE, f"{msg_type}: {name!r} must be {want}", msg_id=msg_id)


def check_audio_descriptor(desc: Any, limits: Limits, msg_id: str | None = None) -> Audio:
    """Validate ``content["audio"]``: dtype, shape, channels, sample rate, duration, parts."""
    if not isinstance(desc, dict):
        raise ProtocolError(BAD_AUDIO, "audio must be an object with dtype, shape and sample_rate", msg_id=msg_id)
    if desc.get("dtype") != DTYPE:
        raise ProtocolError(BAD_AUDIO, f"audio dtype must be {DTYPE!r} (float32 little-endian), "
                                       f"got {desc.get('dtype')!r}", msg_id=msg_id)
    shape = desc.get("shape")
    if (not isinstance(shape, list) or len(shape) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)):
        raise ProtocolError(BAD_AUDIO, "audio shape must be [channels, frames]", msg_id=msg_id)
    channels, frames = shape
    if not MIN_CHANNELS <= channels <= MAX_CHANNELS:
        raise ProtocolError(BAD_AUDIO, f"audio has {channels} channels; 1 to {MAX_CHANNELS} are supported",
                            msg_id=msg_id)
    if frames < 1:
        raise ProtocolError(BAD_AUDIO, "audio must hold at least one frame", msg_id=msg_id)
    sr = desc.get("sample_rate")
    if not isinstance(sr, int) or isinstance(sr, bool) or not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise ProtocolError(BAD_AUDIO, f"sample rate {sr!r} Hz is not supported; "
                                       f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz", msg_id=msg_id)
    if frames / sr > limits.max_audio_seconds:
        raise ProtocolError(TOO_LARGE, f"audio is {frames / sr:.0f} s long; this server takes at most "
                                       f"{limits.max_audio_seconds:g} s", msg_id=msg_id)
    parts = desc.get("parts", 1)
    if not isinstance(parts, int) or isinstance(parts, bool) or not 1 <= parts <= limits.max_audio_parts:
        raise ProtocolError(BAD_AUDIO, f"audio parts must be 1 to {limits.max_audio_parts}", msg_id=msg_id)
    return Audio(channels, frames, sr, parts)


def check_audio_set(descs: Any, limits: Limits, msg_id: str | None = None) -> tuple[tuple[str, Audio], ...]:
    """Validate ``content["audios"]``: a list of 1..MAX_AUDIO_SET audio descriptors, each with a
    unique non-empty ``name`` (at most 64 characters)."""
    if not isinstance(descs, list) or not 1 <= len(descs) <= MAX_AUDIO_SET:
        raise ProtocolError(BAD_AUDIO, f"audios must be a list of 1 to {MAX_AUDIO_SET} named audio descriptors",
                            msg_id=msg_id)
    out: list[tuple[str, Audio]] = []
    for d in descs:
        name = d.get("name") if isinstance(d, dict) else None
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise ProtocolError(BAD_AUDIO, "every entry of audios needs a name of 1-64 characters", msg_id=msg_id)
        if any(n == name for n, _ in out):
            raise ProtocolError(BAD_AUDIO, f"audios names {name[:64]!r} twice", msg_id=msg_id)
        out.append((name, check_audio_descriptor(d, limits, msg_id)))
    return tuple(out)


def all_finite(buffers: Iterable[Any]) -> bool:
    """True when every float32 sample in the buffers is finite (numpy when available)."""
    try:
        import numpy as np  # optional: REAPER's Python may have no numpy
    except ImportError:  # pragma: no cover - REAPER's Python without numpy

        for b in buffers:
            samples = array.array("f")
            samples.frombytes(bytes(b))
            if sys.byteorder == "big":
                samples.byteswap()
            if not all(math.isfinite(v) for v in samples):
                return False
        return True
    step = 1 << 20
    for b in buffers:
        a = np.frombuffer(b, dtype="<f4")
        for i in range(0, a.size, step):
            if not np.isfinite(a[i:i + step]).all():
                return False
    return True


def decode(
    frames: Sequence[Any],
    key: bytes,
    *,
    kinds: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = REQUESTS,
    limits: Limits = Limits(),
    check_finite: bool = True,
) -> Message:
    """Validate and parse one message (routing id already removed); raises ProtocolError."""
    n = len(frames)
    if n < HEADER_FRAMES or n > limits.max_frames:
        raise ProtocolError(BAD_FRAME_COUNT, f"a message has {HEADER_FRAMES} to {limits.max_frames} frames, got {n}")
    if _as_bytes(frames[0]) != MARKER:
        raise ProtocolError(BAD_MARKER, f"the first frame must be the protocol marker {MARKER.decode()}")
    body = [_as_view(f) for f in frames[2:]]
    sig = _as_bytes(frames[1])
    if not hmac.compare_digest(sig, sign(key, body)):
        raise ProtocolError(BAD_SIGNATURE, "the message signature does not match the key "
                                           "(wrong or stale key: read the connection file again)")
    header = _load_json(body[0].tobytes(), limits.max_header_bytes, "header", None)
    msg_id = header.get("msg_id")
    if not isinstance(msg_id, str) or not _ID_RE.fullmatch(msg_id):
        raise ProtocolError(BAD_MESSAGE, "header msg_id must be 1-64 letters, digits or _.:-")
    version = header.get("version")
    if type(version) is not int or version != PROTOCOL_VERSION:  # not true, not 1.0
        raise ProtocolError(UNSUPPORTED_VERSION, f"protocol version {version!r} is not supported "
                                                 f"(this side speaks {PROTOCOL_VERSION})", msg_id=msg_id)
    for name in ("type", "sender", "time"):
        if not isinstance(header.get(name), str):
            raise ProtocolError(BAD_MESSAGE, f"header {name!r} must be a string", msg_id=msg_id)
    if not _ID_RE.fullmatch(header["sender"]):
        raise ProtocolError(BAD_MESSAGE, "header sender must be 1-64 letters, digits or _.:-", msg_id=msg_id)
    ref = header.get("ref")
    if ref is not None and not (isinstance(ref, str) and _ID_RE.fullmatch(ref)):
        raise ProtocolError(BAD_MESSAGE, "header ref must be a message id", msg_id=msg_id)
    content = _load_json(body[1].tobytes(), limits.max_content_bytes, "content", msg_id)
    msg_type = header["type"]
    schema = kinds.get(msg_type)
    if schema is None:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {msg_type[:40]!r}", msg_id=msg_id)
    _check_schema(content, schema, msg_type, msg_id)

    buffers = tuple(body[2:])
    audio = None
    audios: tuple[tuple[str, Audio], ...] = ()
    if content.get("audios") is not None and msg_type in AUDIO_SET_TYPES:
        if content.get("audio") is not None:
            raise ProtocolError(BAD_MESSAGE, "a message carries audio or audios, not both", msg_id=msg_id)
        audios = check_audio_set(content["audios"], limits, msg_id)
        want = sum(a.parts for _, a in audios)
        if len(buffers) != want:
            raise ProtocolError(BAD_FRAME_COUNT, f"audios announce {want} part(s) but {len(buffers)} binary "
                                                 "frame(s) came", msg_id=msg_id)
        i = 0
        for name, a in audios:
            sizes = [b.nbytes for b in buffers[i:i + a.parts]]
            i += a.parts
            if any(s % BYTES_PER_SAMPLE for s in sizes) or sum(sizes) != a.nbytes:
                raise ProtocolError(BAD_AUDIO, f"audio {name[:64]!r} holds {sum(sizes)} bytes; shape "
                                               f"[{a.channels}, {a.frames}] float32 needs {a.nbytes}", msg_id=msg_id)
        if check_finite and not all_finite(buffers):
            raise ProtocolError(BAD_AUDIO, "audio contains NaN or infinite samples", msg_id=msg_id)
    elif "audio" in content and content["audio"] is not None:
        audio = check_audio_descriptor(content["audio"], limits, msg_id)
        if len(buffers) != audio.parts:
            raise ProtocolError(BAD_FRAME_COUNT, f"the audio descriptor announces {audio.parts} part(s) but "
                                                 f"{len(buffers)} binary frame(s) came", msg_id=msg_id)
        sizes = [b.nbytes for b in buffers]
        if any(s % BYTES_PER_SAMPLE for s in sizes) or sum(sizes) != audio.nbytes:
            raise ProtocolError(BAD_AUDIO, f"audio holds {sum(sizes)} bytes; shape [{audio.channels}, "
                                           f"{audio.frames}] float32 needs {audio.nbytes}", msg_id=msg_id)
        if check_finite and not all_finite(buffers):
            raise ProtocolError(BAD_AUDIO, "audio contains NaN or infinite samples", msg_id=msg_id)
    elif msg_type == "upload_chunk":
        if len(buffers) != 1:
            raise ProtocolError(BAD_FRAME_COUNT, "upload_chunk carries exactly one binary frame", msg_id=msg_id)
        size = buffers[0].nbytes
        if size == 0 or size > limits.chunk_bytes or size % BYTES_PER_SAMPLE:
            raise ProtocolError(BAD_AUDIO if size <= limits.chunk_bytes else TOO_LARGE,
                                f"an upload chunk holds 4 to {limits.chunk_bytes} bytes of whole float32 samples, "
                                f"got {size}", msg_id=msg_id)
        if content["offset"] < 0 or content["offset"] % BYTES_PER_SAMPLE:
            raise ProtocolError(BAD_MESSAGE, "upload_chunk offset must be a non-negative multiple of 4",
                                msg_id=msg_id)
        if check_finite and not all_finite(buffers):
            raise ProtocolError(BAD_AUDIO, "audio contains NaN or infinite samples", msg_id=msg_id)
    elif buffers:
        raise ProtocolError(BAD_FRAME_COUNT, f"{msg_type} carries no binary frames, got {len(buffers)}",
                            msg_id=msg_id)
    return Message(msg_type, msg_id, header["sender"], version, header["time"], ref, content, buffers, audio, audios)


def error_content(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": " ".join(str(message).split()), **extra}


def refusal_frames(code: str, message: str) -> list[bytes]:
    """The reply to a message refused at or before its signature check: unsigned (empty
    signature frame), since the peer may not hold our key; it carries nothing from the
    request. Clients treat it only as a hint (e.g. "your key is wrong"), never as data."""
    header = {"msg_id": new_id(), "type": "error", "version": PROTOCOL_VERSION, "sender": "server",
              "time": now_iso()}
    return [MARKER, b"", _dumps(header), _dumps(error_content(code, message))]


def refusal_code(frames: Sequence[Any]) -> tuple[str, str] | None:
    """(code, message) of an unsigned refusal (see :func:`refusal_frames`), else None."""
    if len(frames) != HEADER_FRAMES or _as_bytes(frames[0]) != MARKER or _as_bytes(frames[1]) != b"":
        return None
    try:
        content = json.loads(_as_bytes(frames[3]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(content, dict) or content.get("code") not in PROTOCOL_CODES:
        return None
    return content["code"], str(content.get("message", ""))[:300]


__all__ = [
    "MARKER", "PROTOCOL_VERSION", "DTYPE", "Limits", "Audio", "Message", "ProtocolError", "REQUESTS", "REPLIES",
    "WORKER", "RESERVED_TYPES", "JOB_TYPES", "AUDIO_SET_TYPES", "encode", "decode", "sign", "new_id", "split_parts",
    "audio_descriptor", "check_audio_descriptor", "check_audio_set", "all_finite", "error_content", "refusal_frames",
    "refusal_code", "MAX_AUDIO_SET",
]
