"""Client library for the ReaMaster server. Imports only the standard library and zmq (it also
runs inside REAPER's embedded Python): audio goes in and out as bytes-like float32 planar
``(channels, frames)`` little-endian buffers plus their shape.

Blocking use::

    c = Client.connect()                       # reads the connection file (autostart=True starts a server)
    c.hello()
    report = c.master_path("/proj/mix.wav", "/proj/master.wav", preset="streaming")
    res = c.master_audio(buf, channels=2, frames=n, sample_rate=48000)   # res.audio: bytes

Non-blocking use (REAPER's UI thread; call ``poll`` from a deferred function)::

    job = c.submit("master", {"path": src, "output": dst})
    ev = job.poll()          # never blocks: None, Progress, Result or Failure
    job.cancel()

Album, revision and stems: ``album_paths``, ``revise_session``, ``master_stems_paths`` and
``master_stems_audio`` block; with ``wait=False`` they return the Job, like ``submit``.

Reliability (Lazy Pirate on a DEALER socket): while requests are pending the client pings
every second; when the server has said nothing for ``timeout`` seconds the socket is closed,
reopened (the connection file is read again: a restarted server has a new key) and hello
(with project_dir) then every pending request is sent again with the same msg_id, at most
``retries`` times; then the requests fail with ``server_unavailable``. A ``bad_signature``
refusal while the file holds a new key, or a reply from a new server id, triggers the same
replay at once; a request the server calls ``unknown`` twice fails. Use one Client per thread.
"""

from __future__ import annotations

import array
import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq

from . import protocol as P
from .connection import (
    ConnectionFileError,
    ConnectionInfo,
    default_path,
    read_connection_file,
    read_key_file,
    server_running,
)

DEFAULT_TIMEOUT_S = 2.5
DEFAULT_RETRIES = 2
PING_INTERVAL_S = 1.0
AUTOSTART_WAIT_S = 30.0
_REPLY_LIMITS = P.Limits(max_frame_bytes=1 << 62, max_frames=P.HEADER_FRAMES + 4096, max_header_bytes=1 << 16,
                         max_content_bytes=256 << 20, max_audio_seconds=float("inf"))


class ServerError(Exception):
    """The server answered with an error; ``code`` is stable (see docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code

    @property
    def message(self) -> str:
        return str(self)


class ServerUnavailable(ServerError):
    """No server answered (not running, killed, or it does not accept our key)."""

    def __init__(self, message: str) -> None:
        super().__init__(P.SERVER_UNAVAILABLE, message)


@dataclasses.dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float
    eta_s: float | None


@dataclasses.dataclass(frozen=True)
class Signal:
    """One named signal of a reply (``content["audios"]``): float32 planar little-endian bytes."""

    data: bytes
    channels: int
    frames: int
    sample_rate: int


@dataclasses.dataclass(frozen=True)
class Result:
    content: dict[str, Any]
    audio: bytes | None = None  # float32 planar little-endian
    channels: int = 0
    frames: int = 0
    sample_rate: int = 0
    audios: dict[str, Signal] = dataclasses.field(default_factory=dict)  # named signals (master_stems)

    @property
    def report(self) -> dict[str, Any] | None:
        return self.content.get("report")


@dataclasses.dataclass(frozen=True)
class Failure:
    code: str
    message: str

    def error(self) -> ServerError:
        return ServerUnavailable(self.message) if self.code == P.SERVER_UNAVAILABLE else ServerError(self.code,
                                                                                                     self.message)


class Job:
    """One request in flight. ``poll()`` never blocks; ``wait()`` does."""

    def __init__(self, client: Client, msg_type: str, content: dict[str, Any], buffers: Sequence[Any],
                 msg_id: str | None = None) -> None:
        self.client = client
        self.type = msg_type
        self.content = content
        self.buffers = list(buffers)
        self.msg_id = msg_id or P.new_id()
        self.progress: Progress | None = None
        self.outcome: Result | Failure | None = None
        self.unknown_count = 0  # pings that found the server had never heard of it

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def poll(self) -> Progress | Result | Failure | None:
        """Take what has arrived (never blocks); returns the outcome once there is one, else the
        latest progress (or None)."""
        if self.outcome is None:
            self.client.pump(0)
        return self.outcome if self.outcome is not None else self.progress

    def wait(self, timeout: float | None = None) -> Result:
        """Block until the final reply; raises ServerError / ServerUnavailable. ``timeout`` (s)
        bounds the whole wait (TimeoutError), on top of the liveness checks."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.outcome is None:
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"{self.type} {self.msg_id} did not finish within {timeout:g} s")
            self.client.pump(50)
        if isinstance(self.outcome, Failure):
            raise self.outcome.error()
        return self.outcome

    def cancel(self) -> None:
        """Ask the server to cancel this job (non-blocking); the job then ends with ``cancelled``."""
        if self.outcome is None:
            self.client.submit("cancel", {"target": self.msg_id})


def f32_bytes(samples: array.array[float]) -> bytes:
    """array('f') (planar, channel after channel) -> little-endian float32 bytes."""
    if samples.typecode != "f":
        raise TypeError("expected array('f')")
    if sys.byteorder == "big":  # pragma: no cover
        samples = array.array("f", samples)
        samples.byteswap()
    return samples.tobytes()


def f32_array(data: Any) -> array.array[float]:
    """Little-endian float32 bytes -> array('f')."""
    a = array.array("f")
    a.frombytes(bytes(data))
    if sys.byteorder == "big":  # pragma: no cover
        a.byteswap()
    return a


class Client:
    """A connection to one ReaMaster server. Not thread-safe: one Client per thread."""

    def __init__(self, endpoint: str, key: str, *, conn_file: str | os.PathLike[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 project_dir: str | list[str] | None = None, client_name: str = "python",
                 curve_server_key: str | None = None, curve_keypair: tuple[bytes, bytes] | None = None) -> None:
        self.endpoint = endpoint
        self.key = bytes.fromhex(key)
        self.conn_file = Path(conn_file) if conn_file is not None else None
        self.timeout = timeout
        self.retries = retries
        self.project_dir = project_dir
        self.client_name = client_name
        self.client_id = P.new_id()
        self.curve_server_key = curve_server_key
        self.curve_keypair = curve_keypair
        self.server_id: str | None = None
        self.info: dict[str, Any] = {}
        self._pending: dict[str, Job] = {}
        self._ctx = zmq.Context()
        self._sock: zmq.Socket[bytes] | None = None
        self._last_activity = time.monotonic()
        self._last_ping = 0.0
        self._attempts = 0
        self._needs_reconnect = False
        self._pings: dict[str, bool] = {}  # ids of our pings still unanswered (their replies list job states)
        self._hellos: set[str] = set()  # ids of hellos replayed to a restarted server
        self._said_hello = False
        self._open()

    # --- connecting ---------------------------------------------------------------------------

    @classmethod
    def connect(cls, target: str | os.PathLike[str] | None = None, *, key: str | None = None,
                key_file: str | os.PathLike[str] | None = None, autostart: bool = False,
                timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                project_dir: str | list[str] | None = None, client_name: str = "python",
                hello: bool = True, **kw: Any) -> Client:
        """Connect to a server: ``target`` is None/"auto" (the default connection file), a
        connection file path, or an endpoint (``tcp://127.0.0.1:47474``) with ``key`` or
        ``key_file``. ``autostart`` starts a local server when none runs. Says hello unless
        ``hello=False`` (raises ServerUnavailable when nobody answers)."""
        target_s = None if target is None else os.fspath(target)
        conn_path: Path | None = None
        if target_s is None or target_s == "auto" or not target_s.startswith(("tcp://", "ipc://")):
            conn_path = Path(target_s) if target_s not in (None, "auto") else default_path()
            try:
                info = read_connection_file(conn_path, trust_check=True)
                if not server_running(conn_path):  # the server's lifetime lock, not a pid that may be reused
                    raise ConnectionFileError(f"the connection file {conn_path} is stale "
                                              f"(no server holds {conn_path.name}'s lock)")
            except ConnectionFileError as exc:
                if not autostart:
                    raise ServerUnavailable(f"{exc}; start one with `reamaster serve`") from None
                info = start_server(conn_path)
            endpoint, k = info.endpoint, key or info.key
            kw.setdefault("curve_server_key", info.curve_server_key)
        else:
            endpoint = target_s
            if key is None and key_file is not None:
                key = read_key_file(key_file)
                try:  # a connection file also carries the CURVE key of a tcp server
                    kw.setdefault("curve_server_key", read_connection_file(key_file).curve_server_key)
                except ConnectionFileError:
                    pass
            if key is None or "curve_server_key" not in kw:  # the local connection file may describe it
                try:
                    info = read_connection_file(trust_check=True)
                except ConnectionFileError:
                    info = None
                if info is not None and info.endpoint == endpoint:
                    key = key or info.key
                    kw.setdefault("curve_server_key", info.curve_server_key)
                elif key is None:
                    raise ServerUnavailable(f"no key for {endpoint}: pass --key-file (the server's connection file)")
            k = key
        c = cls(endpoint, k, conn_file=conn_path, timeout=timeout, retries=retries, project_dir=project_dir,
                client_name=client_name, **kw)
        if hello:
            try:
                c.hello()
            except BaseException:
                c.close()
                raise
        return c

    def _open(self) -> None:
        s = self._ctx.socket(zmq.DEALER)
        s.linger = 0
        s.sndhwm = 1000
        s.rcvhwm = 1000
        if self.curve_server_key:
            pub, sec = self.curve_keypair or zmq.curve_keypair()
            s.curve_publickey, s.curve_secretkey = pub, sec
            s.curve_serverkey = self.curve_server_key.encode("ascii")
        s.connect(self.endpoint)
        self._sock = s

    def _read_file(self) -> ConnectionInfo | None:
        """The connection file as it is now (None without one, or when it cannot be trusted)."""
        if self.conn_file is None:
            return None
        try:
            return read_connection_file(self.conn_file, trust_check=True)
        except ConnectionFileError:
            return None

    def _reconnect(self) -> None:
        """A fresh socket to the server the connection file names now (a restarted server has a new
        key, CURVE key and maybe endpoint); then hello again and every pending request again."""
        if self._sock is not None:
            self._sock.close(linger=0)
        info = self._read_file()
        if info is not None:
            if info.server_id != self.server_id and info.key_bytes != self.key:
                self._attempts = 0  # a new server is up: give it the full number of tries
            self.endpoint, self.key = info.endpoint, info.key_bytes
            self.curve_server_key = info.curve_server_key
            self.server_id = info.server_id  # its replies then do not look like yet another restart
        self._open()
        self._last_activity = time.monotonic()
        self._resend_all()

    def _resend_all(self, skip: str | None = None) -> None:
        """Replay hello (a restarted server has not seen our project_dir), then every pending request."""
        if self._said_hello:
            hello = Job(self, "hello", self._hello_content(), ())
            self._hellos.add(hello.msg_id)
            self._send(hello)
        for job in list(self._pending.values()):
            if job.msg_id != skip:
                self._send(job)

    def close(self, linger_ms: int = 0) -> None:
        """Close the socket; ``linger_ms`` > 0 lets messages still queued (a cancel) go out first."""
        if self._sock is not None:
            self._sock.close(linger=max(0, int(linger_ms)))
            self._sock = None
        self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the message pump -------------------------------------------------------------------------

    def _send(self, job: Job) -> None:
        assert self._sock is not None
        frames = P.encode(job.type, job.content, key=self.key, sender=self.client_id, msg_id=job.msg_id,
                          buffers=job.buffers)
        try:
            self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # the liveness check resends

    def submit(self, msg_type: str, content: dict[str, Any] | None = None, buffers: Sequence[Any] = (),
               *, msg_id: str | None = None) -> Job:
        """Send a request without waiting; follow it with ``job.poll()`` or ``job.wait()``."""
        job = Job(self, msg_type, dict(content or {}), buffers, msg_id)
        if msg_type == "hello":
            self._said_hello = True
            if content and content.get("project_dir") is not None:
                self.project_dir = content["project_dir"]
        if self._needs_reconnect:
            self._needs_reconnect = False
            self._reconnect()
        if not self._pending:
            self._last_activity = time.monotonic()
            self._attempts = 0
        self._pending[job.msg_id] = job
        self._send(job)
        return job

    def pump(self, timeout_ms: int = 0) -> None:
        """Receive what has arrived (waiting up to ``timeout_ms``), ping, and apply Lazy Pirate."""
        assert self._sock is not None
        if self._sock.poll(timeout_ms, zmq.POLLIN):
            while True:
                try:
                    frames = self._sock.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_message(frames)
        self._maintain()

    def _fail_all(self, code: str, message: str) -> None:
        for job in list(self._pending.values()):
            job.outcome = Failure(code, message)
        self._pending.clear()

    def _on_message(self, frames: list[bytes]) -> None:
        refusal = P.refusal_code(frames)
        if refusal is not None:
            code, message = refusal
            if code == P.BAD_SIGNATURE:
                info = self._read_file()
                if info is not None and info.key_bytes != self.key:
                    self._reconnect()  # a restarted server (same endpoint, new key): carry on with it
                    return
                message = (f"the server at {self.endpoint} refused our key; read its connection file again "
                           f"(a restarted server has a new key)")
            self._fail_all(code, message)
            return
        try:
            msg = P.decode(frames, self.key, kinds=P.REPLIES, limits=_REPLY_LIMITS, check_finite=False)
        except P.ProtocolError:
            return  # not from our server (or not for our key): ignore
        self._last_activity = time.monotonic()
        self._attempts = 0
        new_server = self.server_id is not None and msg.sender != self.server_id
        self.server_id = msg.sender
        if new_server:
            # a new server knows nothing of our project folders or pending requests: tell it again
            self._resend_all(skip=msg.ref)
        ref = msg.ref or ""
        if ref in self._hellos:
            self._hellos.discard(ref)
            if msg.type == "ok":
                self.info = msg.content
            return
        if ref in self._pings:
            del self._pings[ref]
            if msg.type == "ok" and not new_server:
                self._on_ping_reply(msg.content.get("jobs"))
            return
        job = self._pending.get(ref)
        if job is None:
            return
        if msg.type == "progress":
            job.progress = Progress(msg.content["stage"], float(msg.content["fraction"]), msg.content.get("eta_s"))
            return
        del self._pending[job.msg_id]
        if msg.type == "error":
            job.outcome = Failure(msg.content["code"], msg.content["message"])
        elif msg.audios:
            job.outcome = Result(msg.content, audios={
                name: Signal(b"".join(parts), a.channels, a.frames, a.sample_rate)
                for name, a, parts in msg.audio_set()})
        elif msg.audio is not None:
            job.outcome = Result(msg.content, b"".join(msg.buffers), msg.audio.channels, msg.audio.frames,
                                 msg.audio.sample_rate)
        else:
            job.outcome = Result(msg.content)

    def _on_ping_reply(self, states: Any) -> None:
        """The server lists what it knows of our pending requests. One it calls ``unknown`` never
        reached it (dropped by libzmq as oversize, or lost in a reconnect): send it once more,
        then fail it rather than wait for a reply that cannot come."""
        if not isinstance(states, dict):
            return
        for msg_id, state in states.items():
            job = self._pending.get(msg_id)
            if job is None or state != "unknown":
                continue
            job.unknown_count += 1
            if job.unknown_count == 1:
                self._send(job)
            else:
                del self._pending[msg_id]
                job.outcome = Failure(P.INTERNAL, f"the server never received {job.type} {msg_id} (sent twice); "
                                                  "it may exceed the server's limits")

    def _maintain(self) -> None:
        if not self._pending:
            return
        now = time.monotonic()
        if now - self._last_ping >= PING_INTERVAL_S and any(j.type != "ping" for j in self._pending.values()):
            self._last_ping = now
            ping = Job(self, "ping", {"jobs": list(self._pending)[:256]}, ())
            if len(self._pings) > 64:
                self._pings.clear()
            self._pings[ping.msg_id] = True
            self._send(ping)  # not tracked as a job: any reply counts as a sign of life
        if now - self._last_activity > self.timeout:
            self._attempts += 1
            if self._attempts > self.retries:
                self._needs_reconnect = True  # the next request starts on a fresh socket
                self._fail_all(P.SERVER_UNAVAILABLE,
                               f"no answer from the ReaMaster server at {self.endpoint} after "
                               f"{self.retries + 1} tries of {self.timeout:g} s; is `reamaster serve` running?")
                return
            self._reconnect()

    def call(self, msg_type: str, content: dict[str, Any] | None = None, buffers: Sequence[Any] = ()) -> Result:
        """Send a request and wait for its final reply (raises ServerError)."""
        return self.submit(msg_type, content, buffers).wait()

    # --- requests -----------------------------------------------------------------------------------

    def _hello_content(self) -> dict[str, Any]:
        content: dict[str, Any] = {"client_name": self.client_name}
        if self.project_dir is not None:
            content["project_dir"] = self.project_dir
        return content

    def hello(self) -> dict[str, Any]:
        self.info = self.call("hello", self._hello_content()).content
        return self.info

    def status(self, msg_id: str | None = None) -> dict[str, Any]:
        return self.call("status", {"target": msg_id} if msg_id else {}).content

    def cancel(self, msg_id: str) -> dict[str, Any]:
        return self.call("cancel", {"target": msg_id}).content

    def shutdown(self) -> dict[str, Any]:
        return self.call("shutdown").content

    @staticmethod
    def _options(preset: str | None, lufs: float | None, ceiling: float | None) -> dict[str, Any]:
        return {k: v for k, v in (("preset", preset), ("lufs", lufs), ("ceiling", ceiling)) if v is not None}

    def analyze_path(self, path: str | os.PathLike[str], *, series: bool = False) -> dict[str, Any]:
        reply = self.call("analyze", {"path": os.path.abspath(path), "series": series})
        analysis: dict[str, Any] = reply.content["analysis"]
        return analysis

    def analyze_audio(self, data: Any, channels: int, frames: int, sample_rate: int) -> dict[str, Any]:
        reply = self._with_audio("analyze", {}, data, channels, frames, sample_rate)
        analysis: dict[str, Any] = reply.content["analysis"]
        return analysis

    def suggest_path(self, path: str | os.PathLike[str], *, preset: str | None = None, lufs: float | None = None,
                     ceiling: float | None = None, choices: dict[str, Any] | None = None) -> dict[str, Any]:
        """The chain a master with these ``choices`` (style, amounts; default: those of `reamaster
        master`) would start from, for native FX."""
        content = {"path": os.path.abspath(path), **self._options(preset, lufs, ceiling)}
        if choices is not None:
            content["choices"] = choices
        return self.call("suggest", content).content

    def suggest_audio(self, data: Any, channels: int, frames: int, sample_rate: int, *, preset: str | None = None,
                      lufs: float | None = None, ceiling: float | None = None,
                      choices: dict[str, Any] | None = None) -> dict[str, Any]:
        content = self._options(preset, lufs, ceiling)
        if choices is not None:
            content["choices"] = choices
        return self._with_audio("suggest", content, data, channels, frames, sample_rate).content

    def master_path(self, src: str | os.PathLike[str], dst: str | os.PathLike[str], *, preset: str | None = None,
                    lufs: float | None = None, ceiling: float | None = None, bits: int | None = None,
                    chain: dict[str, Any] | None = None) -> dict[str, Any]:
        """Master a file into a new file (both inside the allowed folders); returns the report."""
        content = {"path": os.path.abspath(src), "output": os.path.abspath(dst),
                   **self._options(preset, lufs, ceiling)}
        if bits is not None:
            content["bits"] = bits
        if chain is not None:
            content["chain"] = chain
        report: dict[str, Any] = self.call("master", content).content["report"]
        return report

    def master_audio(self, data: Any, channels: int, frames: int, sample_rate: int, *, preset: str | None = None,
                     lufs: float | None = None, ceiling: float | None = None,
                     chain: dict[str, Any] | None = None) -> Result:
        """Master audio sent by value; ``Result.audio`` holds the master, ``Result.report`` the report."""
        content = self._options(preset, lufs, ceiling)
        if chain is not None:
            content["chain"] = chain
        return self._with_audio("master", content, data, channels, frames, sample_rate)

    # --- album, revise, stems: blocking helpers (wait=False gives the Job, as submit() does) -----------

    def _run(self, msg_type: str, content: dict[str, Any], wait: bool, buffers: Sequence[Any] = ()) -> Any:
        job = self.submit(msg_type, content, buffers)
        return job.wait().content if wait else job

    def album_paths(self, paths: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *,
                    preset: str | None = None, lufs: float | None = None, ceiling: float | None = None,
                    style: str | None = None, bits: int | None = None, wait: bool = True) -> Any:
        """Master files as one album into the (existing) folder ``output``: one ``<name>.wav`` per
        track and ``album.json``. Returns the reply content (``album``: the album report,
        ``outputs``), or the Job with ``wait=False``."""
        content = {"paths": [os.path.abspath(p) for p in paths], "output": os.path.abspath(output),
                   **self._options(preset, lufs, ceiling)}
        content.update({k: v for k, v in (("style", style), ("bits", bits)) if v is not None})
        return self._run("album", content, wait)

    def revise_session(self, session: str | os.PathLike[str], words: str | None = None, *,
                       from_version: int | None = None, render: int | None = None,
                       output: str | os.PathLike[str] | None = None, wait: bool = True) -> Any:
        """A new version of a mastering session from ``words`` (or ``render=N``: version N again).
        Returns the reply content (``report``, ``output``, ``version``, ``changes``...), or the Job."""
        content: dict[str, Any] = {"session": os.path.abspath(session)}
        for k, v in (("words", words), ("from_version", from_version), ("render", render)):
            if v is not None:
                content[k] = v
        if output is not None:
            content["output"] = os.path.abspath(output)
        return self._run("revise", content, wait)

    def master_stems_paths(self, stems: dict[str, str | os.PathLike[str]], output: str | os.PathLike[str], *,
                           preset: str | None = None, lufs: float | None = None, ceiling: float | None = None,
                           bits: int | None = None, stem_bits: int | None = None, wait: bool = True) -> Any:
        """Master named stem files into the folder ``output`` (``<name>.wav`` per processed stem,
        ``master.wav``, ``stems.json``). Returns the reply content (``stems_report``, ``report``,
        ``outputs``, ``master``), or the Job."""
        content = {"stems": {n: os.path.abspath(p) for n, p in stems.items()}, "output": os.path.abspath(output),
                   **self._options(preset, lufs, ceiling)}
        content.update({k: v for k, v in (("bits", bits), ("stem_bits", stem_bits)) if v is not None})
        return self._run("master_stems", content, wait)

    def master_stems_audio(self, stems: dict[str, tuple[Any, int, int]], sample_rate: int, *,
                           preset: str | None = None, lufs: float | None = None, ceiling: float | None = None,
                           wait: bool = True) -> Any:
        """Master stems sent by value: ``{name: (float32 planar bytes, channels, frames)}``. Stems go
        in the message while its frames allow, the rest are uploaded first. ``Result.audios`` holds
        each processed stem by name and ``"master"``; ``content["stems_report"]`` the decisions."""
        max_frame = self._limit("max_frame_bytes", P.Limits().max_frame_bytes)
        room = self._limit("max_audio_parts", P.Limits().max_audio_parts)
        entries: list[dict[str, Any]] = []
        buffers: list[Any] = []
        uploads: dict[str, str] = {}
        for name, (data, channels, frames) in stems.items():
            mv = memoryview(data).cast("B")
            if mv.nbytes != channels * frames * 4:
                raise ValueError(f"stem {name}: {mv.nbytes} bytes do not hold {channels} x {frames} float32 samples")
            parts = P.split_parts(mv, max_frame)
            if len(parts) <= room:
                room -= len(parts)
                entries.append({"name": name, **P.audio_descriptor(channels, frames, sample_rate, len(parts))})
                buffers.extend(parts)
            else:
                uploads[name] = self.upload(mv, channels, frames, sample_rate)
        content: dict[str, Any] = self._options(preset, lufs, ceiling)
        if entries:
            content["audios"] = entries
        if uploads:
            content["uploads"] = uploads
        job = self.submit("master_stems", content, buffers)
        if not wait:
            return job
        try:
            return job.wait()
        finally:
            for uid in uploads.values():
                try:
                    self.call("upload_free", {"upload_id": uid})
                except ServerError:
                    pass

    def _limit(self, name: str, default: int) -> int:
        return int(self.info.get(name, default)) if self.info else default

    def audio_request(self, msg_type: str, content: dict[str, Any], data: Any, channels: int, frames: int,
                      sample_rate: int) -> Job:
        """Submit a job on audio: by value when it fits the advertised limits, else uploaded in
        chunks first (blocking for the upload only)."""
        mv = memoryview(data).cast("B")
        if mv.nbytes != channels * frames * 4:
            raise ValueError(f"{mv.nbytes} bytes do not hold {channels} x {frames} float32 samples")
        max_frame = self._limit("max_frame_bytes", P.Limits().max_frame_bytes)
        max_parts = self._limit("max_audio_parts", P.Limits().max_audio_parts)
        if mv.nbytes <= max_frame * max_parts:
            parts = P.split_parts(mv, max_frame)
            return self.submit(msg_type, {**content, "audio": P.audio_descriptor(channels, frames, sample_rate,
                                                                                  len(parts))}, parts)
        upload_id = self.upload(mv, channels, frames, sample_rate)
        return self.submit(msg_type, {**content, "upload_id": upload_id})

    def _with_audio(self, msg_type: str, content: dict[str, Any], data: Any, channels: int, frames: int,
                    sample_rate: int) -> Result:
        job = self.audio_request(msg_type, content, data, channels, frames, sample_rate)
        try:
            return job.wait()
        finally:
            if "upload_id" in job.content:
                try:
                    self.call("upload_free", {"upload_id": job.content["upload_id"]})
                except ServerError:
                    pass

    def upload(self, data: Any, channels: int, frames: int, sample_rate: int) -> str:
        """Upload audio in chunks with credit-based flow control; returns the upload id."""
        mv = memoryview(data).cast("B")
        begin = self.call("upload_begin", {"dtype": P.DTYPE, "shape": [channels, frames],
                                           "sample_rate": sample_rate}).content
        uid: str
        uid, chunk, credits = begin["upload_id"], int(begin["chunk_bytes"]), max(1, int(begin["credits"]))
        offsets = iter(range(0, mv.nbytes, chunk))
        outstanding: list[Job] = []
        more = True
        while more or outstanding:
            while more and len(outstanding) < credits:
                off = next(offsets, None)
                if off is None:
                    more = False
                    break
                outstanding.append(self.submit("upload_chunk", {"upload_id": uid, "offset": off},
                                               [mv[off:off + chunk]]))
            self.pump(20)
            for j in [j for j in outstanding if j.done]:
                outstanding.remove(j)
                if isinstance(j.outcome, Failure):
                    for other in outstanding:
                        self._pending.pop(other.msg_id, None)
                    raise j.outcome.error()
        return uid


# --- starting a local server ---------------------------------------------------------------------------

def serve_command() -> list[str]:
    """How to start ``reamaster serve``: $REAMASTER_SERVE_CMD, this Python, or the console script."""
    env = os.environ.get("REAMASTER_SERVE_CMD")
    if env:
        return shlex.split(env)
    if Path(sys.executable).name.lower().startswith("python"):
        return [sys.executable, "-m", "server.daemon"]
    script = shutil.which("reamaster")
    if script:
        return [script, "serve"]
    raise ServerUnavailable("cannot find how to start the ReaMaster server: set REAMASTER_SERVE_CMD "
                            "(e.g. '/path/to/.venv/bin/reamaster serve')")


_STARTED: list[subprocess.Popen[bytes]] = []


def start_server(conn_path: Path | None = None, *, wait_s: float = AUTOSTART_WAIT_S) -> ConnectionInfo:
    """Start a detached local server and wait for its connection file."""
    conn_path = conn_path or default_path()
    cmd = serve_command()
    env = dict(os.environ)
    env["REAMASTER_CONFIG_DIR"] = str(conn_path.parent)
    pkg_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    conn_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = conn_path.parent / "server.log"
    kw: dict[str, Any] = {}
    if os.name == "posix":
        kw["start_new_session"] = True
    elif sys.platform == "win32":  # pragma: no cover - Windows (os.name "nt")
        kw["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                cwd=str(conn_path.parent), close_fds=True, **kw)
    _STARTED.append(proc)  # keep the handle: the server outlives this call (and maybe this process)
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try:
            info = read_connection_file(conn_path, trust_check=True)
            if server_running(conn_path):
                return info
        except ConnectionFileError:
            pass
        if proc.poll() is not None:
            raise ServerUnavailable(f"the ReaMaster server did not start (exit status {proc.returncode}); "
                                    f"see {log_path}")
        time.sleep(0.05)
    raise ServerUnavailable(f"the ReaMaster server did not write {conn_path} within {wait_s:g} s; see {log_path}")


__all__ = ["Client", "Job", "Progress", "Result", "Signal", "Failure", "ServerError", "ServerUnavailable", "f32_bytes",
           "f32_array", "start_server", "serve_command"]
