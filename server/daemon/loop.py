"""The ReaMaster companion server: one ROUTER loop, a bounded queue, a pool of worker processes.

The loop (one thread) only validates messages, answers cheap requests (hello, ping, status,
cancel, uploads) and moves jobs between clients and workers; it never runs DSP, so a huge job
never delays another client's ``hello``. Workers are separate processes (``spawn`` start
method: numba and fork do not mix) on a private backend ROUTER, signed with a per-run key.

Reliability rules (see docs/protocol.md): every reply carries the server id; final replies are
kept in a small LRU keyed by (client id, msg_id) so retries are idempotent; a client with jobs
that sends nothing for ``client_timeout_s`` has them cancelled; ``cancel`` sets the worker's
flag, and a worker that has not stopped within ``cancel_grace_s`` is terminated and replaced;
SIGTERM/SIGINT or a ``shutdown`` request stop accepting work, let running jobs finish for
``shutdown_grace_s``, answer the rest ``shutting_down``, then remove the connection file.

Run: ``python -m server.daemon [--port N] ...`` or ``reamaster serve``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import ipaddress
import logging
import multiprocessing
import os
import secrets
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from ..wire import protocol as P
from ..wire.connection import (
    DEFAULT_PORT,
    ConnectionFileError,
    ConnectionInfo,
    ServerLock,
    default_path,
    ipc_dir,
    ipc_supported,
    new_key,
    read_connection_file,
    remove_connection_file,
    secure_dir,
    write_connection_file,
)
from . import jobs as J

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

    from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("reamaster.server")

TICK_S = 0.05
# the backend carries results of any size (in parts of at most max_frame_bytes) from our own, signed workers
_BACKEND_LIMITS = P.Limits(max_frame_bytes=1 << 62, max_frames=P.HEADER_FRAMES + 65536, max_content_bytes=1 << 30,
                           max_audio_seconds=float("inf"))
BACKEND_MIN_FRAME_BYTES = 64 << 20  # a worker's report JSON may exceed a small --max-frame-bytes
CURVE_OVERHEAD_BYTES = 256
LOCK_WAIT_S = 1.0  # a client probing the lock holds it for microseconds
PING_INTERVAL_S = 1.0  # what clients are told to do while they have jobs
MAX_BATCH = 64  # messages taken from one socket before looking at the other
UPLOAD_SILENCE_S = 5.0  # an unfinished upload whose client sent nothing this long is freed
OFFLOAD_BYTES = 256 << 10  # messages at least this large are verified off the loop thread
ANSWER_TIMES = 2048  # requests whose handling time `status` summarises
DECODE_THREADS = 2
GIL_SWITCH_S = 0.0001
#: libzmq I/O threads: each connection is served by one, so a hello's connection is not read by
#: the thread busy taking in another client's 8 MiB chunks (hello p99 under two uploads: 7 runs
#: median 8.3 ms against 9.4 ms with one)
IO_THREADS = 2
#: niceness added to the decode threads (Linux: per thread), so a waking loop thread is scheduled
#: before a thread verifying a chunk when both cores are busy; still above the workers' (10), so an
#: upload is verified before a running master's next block. Hello p99 under two uploads, interleaved
#: runs (10 each): median 6.4 ms at +5, 5.0 ms at +9 (+0: 11-13 ms; upload throughput the same)
DECODE_NICE = 9


def _lower_decode_priority() -> None:
    if sys.platform.startswith("linux"):  # elsewhere nice() applies to the whole process
        with contextlib.suppress(OSError):
            os.nice(DECODE_NICE)


class StartupError(Exception):
    """The server cannot start; the message is one line for the terminal."""

    code = "cannot_start"



def _worker_entry(endpoint: str, key_hex: str, identity: bytes, cancel_event: Event, parent_pid: int,
                  max_part_bytes: int, nonce: str = "", curve_server_key: str | None = None) -> None:
    """The body of a spawned worker process: :func:`server.daemon.worker.worker_main`."""
    from .worker import worker_main  # in the worker only: the server loop stays free of numpy

    worker_main(endpoint, key_hex, identity, cancel_event, parent_pid, max_part_bytes, nonce, curve_server_key)

@dataclasses.dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: a random free port
    workers: int = 0  # 0: number of cores
    queue: int = 16
    limits: P.Limits = dataclasses.field(default_factory=P.Limits)
    allow_remote: bool = False
    curve_keys: str | None = None
    connection_file: str | None = None  # default: <config dir>/server.json
    client_timeout_s: float = 3.0
    cancel_grace_s: float = 0.5
    shutdown_grace_s: float = 3.0
    reply_cache: int = 256
    reply_cache_bytes: int = 64 << 20
    max_upload_bytes: int = 2 << 30
    upload_ttl_s: float = 300.0
    transport: str = "auto"  # auto: ipc:// in a 0700 folder where the platform has it, else tcp + CURVE
    worker_ready_timeout_s: float = 60.0  # a worker not ready by then is killed and its slot respawned


@dataclasses.dataclass
class _Worker:
    index: int
    gen: int
    process: Any  # a spawned multiprocessing Process; None only while _spawn_worker builds it
    event: Event
    ready: bool = False
    job: _Job | None = None
    started: float = 0.0
    misses: int = 0  # readiness deadlines this slot missed in a row: each doubles the next one
    # server-assigned, unguessable, new for every spawn; the worker learns both through its spawn
    # arguments (a pipe), signs w_ready with the worker key and echoes the nonce
    identity: bytes = dataclasses.field(default_factory=lambda: secrets.token_hex(12).encode("ascii"))
    nonce: str = dataclasses.field(default_factory=lambda: secrets.token_hex(16))


@dataclasses.dataclass
class _Job:
    id: str
    client: str
    route: bytes
    kind: str
    request: dict[str, Any]
    buffers: list[Any]
    audio: dict[str, Any] | None
    state: str = "queued"  # queued, running
    worker: _Worker | None = None
    submitted: float = 0.0
    cancel_deadline: float | None = None
    cancel_reason: str = ""
    cancel_code: str = P.CANCELLED
    stage: str = ""
    stage_started: float = 0.0
    fraction: float = 0.0
    last_progress_sent: float = 0.0
    uploads: list[_Upload] = dataclasses.field(default_factory=list)  # held until the job ends


@dataclasses.dataclass
class _Upload:
    id: str
    client: str
    channels: int
    frames: int
    sample_rate: int
    nbytes: int
    # offset -> the chunk's bytes, kept as received (zero-copy): the loop thread never copies audio
    chunks: dict[int, memoryview]
    received: int = 0
    last_used: float = 0.0
    refs: int = 0  # jobs holding the buffer: its bytes count against the cap until the last one ends
    freed: bool = False  # freed by the client (or expired) while jobs still held it

    @property
    def complete(self) -> bool:
        return self.received == self.nbytes

    def parts(self) -> list[memoryview]:
        """The chunks in offset order (they tile the buffer once complete)."""
        return [self.chunks[o] for o in sorted(self.chunks)]


@dataclasses.dataclass
class _Client:
    id: str
    route: bytes
    last_seen: float
    roots: list[str] = dataclasses.field(default_factory=list)


def _preload_checks(done: threading.Event) -> None:
    try:
        import dsp.decide.profiles  # noqa: F401 - check_style
        import dsp.decide.stems  # noqa: F401 - check_stem_name
        import dsp.io.audio_io  # noqa: F401 - check_path
    except Exception:  # pragma: no cover - the request that needs it reports the error
        log.exception("preloading the path checks failed")
    finally:
        done.set()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    def __init__(self, config: ServerConfig) -> None:
        self.cfg = config
        self.limits = config.limits
        self.server_id = P.new_id()
        self.key = new_key()
        self.key_bytes = bytes.fromhex(self.key)
        self.worker_key = new_key()
        self.worker_key_bytes = bytes.fromhex(self.worker_key)
        self.n_workers = config.workers or (os.cpu_count() or 1)
        self.conn_path = Path(config.connection_file) if config.connection_file else default_path()
        self.started = time.monotonic()
        self.clients: dict[str, _Client] = {}
        self.jobs: dict[str, _Job] = {}
        self.queue: collections.deque[_Job] = collections.deque()
        self.workers: list[_Worker] = []
        self.dying: list[tuple[Any, float]] = []
        self.uploads: dict[str, _Upload] = {}
        self.upload_bytes = 0
        self.cache: collections.OrderedDict[tuple[str, str], tuple[list[Any], int]] = collections.OrderedDict()
        self.cache_bytes = 0
        self.replaced = 0  # workers terminated because a cancel did not stop them in time
        self.crashed = 0
        self.stop_requested = False
        self.stopping_deadline: float | None = None
        self.mp = multiprocessing.get_context("spawn")
        self.ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self.front: zmq.Socket[bytes] | None = None
        self.back: zmq.Socket[bytes] | None = None
        self.endpoint = ""
        self.auth: ThreadAuthenticator | None = None
        self.curve_public: str | None = None
        self.lock = ServerLock(self.conn_path)
        self.run_dir: Path | None = None
        self.back_curve_public: str | None = None
        self.transport = ""
        self.back_endpoint = ""
        self._inbox: dict[tuple[str, bytes], collections.deque[tuple[Any, list[Any]]]] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._outbox: list[tuple[Any, Any]] = []
        self.preloaded = threading.Event()
        self._seen: dict[bytes, float] = {}  # route -> when its last message arrived (before verification)
        # the loop's own time per request answered on it (taken off the socket -> reply handed to
        # libzmq), ms, the latest ANSWER_TIMES (a round trip beyond this is transport and scheduling)
        self._answer_ms: collections.deque[float] = collections.deque(maxlen=ANSWER_TIMES)
        self._wake_w = -1

    # --- start and stop ---------------------------------------------------------------------------

    def _check_remote(self) -> tuple[bytes, bytes, Path] | None:
        """CURVE keys when --curve-keys is given (any host); a non-loopback host requires them."""
        if not _is_loopback(self.cfg.host) and (not self.cfg.allow_remote or not self.cfg.curve_keys):
            raise StartupError(f"binding {self.cfg.host} would expose the server beyond this machine; "
                               "that needs --allow-remote and --curve-keys DIR (CURVE encryption)")
        if not self.cfg.curve_keys:
            return None

        d = Path(self.cfg.curve_keys)
        secret_file, clients = d / "server.key_secret", d / "clients"
        if not secret_file.is_file() or not clients.is_dir():
            raise StartupError(f"--curve-keys {d} must hold server.key_secret and a clients/ folder of "
                               "allowed client public keys (made with zmq.auth.create_certificates)")
        if os.name == "posix":  # zmq.auth.create_certificates writes the secret 0644: tighten ours, refuse others'
            st = os.stat(secret_file)
            if st.st_uid != os.geteuid():
                raise StartupError(f"{secret_file} belongs to another user; use a secret key of your own")
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(secret_file, 0o600)
                log.warning("%s was readable by other users; made it 0600", secret_file)
        public, secret = zmq.auth.load_certificate(str(secret_file))
        if not secret:
            raise StartupError(f"{secret_file} holds no secret key")
        return public, secret, clients

    def _take_lock(self) -> None:
        """One server per config folder: the lock (not the pid in the file) says whether one runs."""
        try:
            secure_dir(self.conn_path.parent)
        except (ConnectionFileError, OSError) as exc:
            raise StartupError(str(exc)) from None
        end = time.monotonic() + LOCK_WAIT_S
        while not self.lock.acquire():
            if time.monotonic() > end:
                where = ""
                try:
                    other = read_connection_file(self.conn_path)
                    where = f" (pid {other.pid}) at {other.endpoint}"
                except ConnectionFileError:
                    pass
                raise StartupError(f"a ReaMaster server{where} is already running for {self.conn_path.parent}; "
                                   f"stop it first or use another REAMASTER_CONFIG_DIR")
            time.sleep(0.02)

    def _use_ipc(self) -> bool:
        t = self.cfg.transport
        if t not in ("auto", "ipc", "tcp"):
            raise StartupError(f"--transport must be auto, ipc or tcp, not {t!r}")
        if t == "ipc" and not ipc_supported():
            raise StartupError("this platform has no ipc:// transport here; use --transport tcp")
        if t == "ipc" and (self.cfg.curve_keys or not _is_loopback(self.cfg.host)):
            raise StartupError("--transport ipc is local only; --curve-keys and --host need tcp")
        return t == "ipc" or (t == "auto" and ipc_supported() and not self.cfg.curve_keys
                              and _is_loopback(self.cfg.host))

    def start(self) -> None:
        curve = self._check_remote()
        use_ipc = self._use_ipc()
        self._take_lock()
        try:
            self._start_sockets(curve, use_ipc)
        except BaseException:
            self.lock.release()
            raise

    def _start_sockets(self, curve: tuple[bytes, bytes, Path] | None, use_ipc: bool) -> None:
        self.ctx = zmq.Context(io_threads=IO_THREADS)
        front = self.ctx.socket(zmq.ROUTER)
        front.router_mandatory = 1
        front.rcvhwm = 32  # libzmq 4.3.5 can abort (stream_engine_base.cpp:310, !_io_error) when a peer drops while its pipe is at the HWM; the loop drains fast (verification is on the pool), so keep the old 32
        front.sndhwm = 1000
        front.linger = 1000
        # per frame; CURVE adds its own framing (about 40 bytes) to every frame on the wire
        front.maxmsgsize = self.limits.max_frame_bytes + CURVE_OVERHEAD_BYTES
        front.heartbeat_ivl = 1000
        front.heartbeat_timeout = 3000
        front.heartbeat_ttl = 3000
        if use_ipc:
            self.run_dir = ipc_dir(self.conn_path)
            try:
                front.bind(f"ipc://{self.run_dir / 'server.sock'}")
            except zmq.ZMQError as exc:
                front.close(linger=0)
                self._close_ctx()
                raise StartupError(f"cannot listen on {self.run_dir / 'server.sock'}: {exc}") from None
            os.chmod(self.run_dir / "server.sock", 0o600)
            self.transport = "ipc"
        else:
            if curve is not None:  # remote or explicit keys: only the allowed client keys get in (ZAP)
                public, secret, clients = curve
                self.auth = ThreadAuthenticator(self.ctx)
                self.auth.start()
                self.auth.configure_curve(domain="*", location=str(clients))
            else:  # local tcp: a per-run keypair; the public key is only in the 0600 connection file,
                # so a peer that cannot read the file cannot even finish the handshake
                public, secret = zmq.curve_keypair()
            front.curve_secretkey = secret
            front.curve_publickey = public
            front.curve_server = True
            self.curve_public = public.decode("ascii")
            host = f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host
            if ":" in self.cfg.host:
                front.ipv6 = True
            try:
                front.bind(f"tcp://{host}:{self.cfg.port if self.cfg.port else '*'}")
            except zmq.ZMQError as exc:
                front.close(linger=0)
                self._close_ctx()
                if exc.errno == zmq.EADDRINUSE:
                    raise StartupError(f"port {self.cfg.port} is in use (another ReaMaster server?); "
                                       "use --port N or --port 0 for a free one") from None
                raise StartupError(f"cannot listen on {self.cfg.host}:{self.cfg.port}: {exc}") from None
            self.transport = "tcp+curve"
        self.front = front
        self.endpoint = cast(bytes, front.last_endpoint).decode("ascii")  # pyzmq types options loosely
        back = self.ctx.socket(zmq.ROUTER)
        back.router_mandatory = 1
        back.linger = 1000
        back.maxmsgsize = max(self.limits.max_frame_bytes, BACKEND_MIN_FRAME_BYTES)
        if ipc_supported():
            if self.run_dir is None:
                self.run_dir = ipc_dir(self.conn_path)
            path = self.run_dir / f"w-{secrets.token_hex(4)}.sock"
            back.bind(f"ipc://{path}")
            os.chmod(path, 0o600)
        else:  # pragma: no cover - Windows: loopback tcp, CURVE with a key only the workers get
            bpub, bsec = zmq.curve_keypair()
            back.curve_secretkey, back.curve_publickey, back.curve_server = bsec, bpub, True
            self.back_curve_public = bpub.decode("ascii")
            back.bind("tcp://127.0.0.1:*")
        self.back = back
        self.back_endpoint = cast(bytes, back.last_endpoint).decode("ascii")
        for i in range(self.n_workers):
            self._spawn_worker(i, 0)
        # the path and name checks the loop runs import parts of dsp (numpy, numba: seconds on a busy
        # machine); import them beside the loop now rather than stall it on the first such request
        threading.Thread(target=_preload_checks, args=(self.preloaded,), name="reamaster-preload",
                         daemon=True).start()
        write_connection_file(ConnectionInfo(endpoint=self.endpoint, key=self.key, server_id=self.server_id,
                                             pid=os.getpid(), curve_server_key=self.curve_public), self.conn_path)
        log.info("listening on %s with %d workers; connection file %s", self.endpoint, self.n_workers, self.conn_path)

    def _close_ctx(self) -> None:
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        if self.ctx is not None:
            self.ctx.term()
            self.ctx = None

    def _spawn_worker(self, index: int, gen: int, misses: int = 0) -> _Worker:
        event = self.mp.Event()
        w = _Worker(index, gen, None, event, started=time.monotonic(), misses=misses)
        w.process = self.mp.Process(
            target=_worker_entry, name=f"reamaster-worker-{index}", daemon=True,
            args=(self.back_endpoint, self.worker_key, w.identity, event, os.getpid(),
                  self.limits.max_frame_bytes, w.nonce, self.back_curve_public))
        w.process.start()
        if index < len(self.workers):
            self.workers[index] = w
        else:
            self.workers.append(w)
        return w

    def _replace_worker(self, w: _Worker) -> None:
        self.replaced += 1
        try:
            w.process.terminate()
        except Exception:  # pragma: no cover - already gone
            pass
        self.dying.append((w.process, time.monotonic()))
        self._spawn_worker(w.index, w.gen + 1)

    def request_stop(self, *_: object) -> None:
        self.stop_requested = True

    def serve_forever(self) -> None:
        assert self.front is not None and self.back is not None
        poller = zmq.Poller()
        poller.register(self.front, zmq.POLLIN)
        poller.register(self.back, zmq.POLLIN)
        wake_r, self._wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        poller.register(wake_r, zmq.POLLIN)
        self._pool = concurrent.futures.ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="reamaster-decode",
                                                           initializer=_lower_decode_priority)
        # the decode threads hold the GIL in 5 ms slices by default; shorter slices let the loop
        # answer a hello between two chunks being verified (hello p99 under two uploads: over 10 ms
        # in 2 of 20 runs at 0.5 ms slices, 3 of 56 at 0.1 ms; upload throughput unchanged)
        sys.setswitchinterval(GIL_SWITCH_S)
        try:
            while True:
                events = dict(poller.poll(int(TICK_S * 1000)))
                if wake_r in events:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                if self.back in events:
                    self._drain(self.back, "back")
                if self.front in events:
                    self._drain(self.front, "front")
                self._pump_inbox()
                self._pump_outbox()
                if self._tick():
                    break
        finally:
            self._pool.shutdown(wait=True)
            self._pump_outbox()  # final replies signed on the pool still go out before the sockets close
            self._pool = None
            os.close(wake_r)
            os.close(self._wake_w)
            self._shutdown_now()

    # Messages with large frames are verified (HMAC, JSON, finite samples) on a small thread pool,
    # so a few 8 MiB chunks never hold up a hello; hashlib and numpy release the GIL while they
    # work. Messages of one peer are still handled in the order they came (a per-peer FIFO).

    def _decode(self, side: str, body: list[Any]) -> Any:
        try:
            if side == "front":
                return P.decode(body, self.key_bytes, limits=self.limits)
            return P.decode(body, self.worker_key_bytes, kinds=P.WORKER, limits=_BACKEND_LIMITS, check_finite=False)
        except P.ProtocolError as exc:
            return exc

    def _drain(self, sock: zmq.Socket[bytes], side: str) -> None:
        for _ in range(MAX_BATCH):
            try:
                frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            route, body = frames[0].bytes, frames[1:]
            if side == "front":
                self._seen[route] = time.monotonic()  # alive now, even while its message waits for the pool
            key = (side, route)
            queue = self._inbox.get(key)
            size = sum(f.buffer.nbytes for f in body[:P.HEADER_FRAMES + 64]) if len(body) <= 4096 else 1 << 62
            if size >= OFFLOAD_BYTES and self._pool is not None:
                fut = self._pool.submit(self._decode, side, body)
                fut.add_done_callback(self._wake)
                self._inbox.setdefault(key, collections.deque()).append((fut, body))
            elif queue:  # behind a large message of the same peer: keep its order
                queue.append((None, body))
            else:
                t0 = time.perf_counter()
                self._handle(side, route, self._decode(side, body))
                if side == "front":
                    self._answer_ms.append((time.perf_counter() - t0) * 1000.0)

    def _wake(self, _: Any) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _pump_inbox(self) -> None:
        for key in list(self._inbox):
            queue = self._inbox[key]
            while queue and (queue[0][0] is None or queue[0][0].done()):
                fut, body = queue.popleft()
                result = fut.result() if fut is not None else self._decode(key[0], body)
                self._handle(key[0], key[1], result)
            if not queue:
                del self._inbox[key]

    def _handle(self, side: str, route: bytes, result: Any) -> None:
        try:
            if side == "front":
                self._on_frontend(route, result)
            else:
                self._on_backend(route, result)
        except Exception:  # one bad message must never stop the loop
            log.exception("error while handling a message")

    def _shutdown_now(self) -> None:
        for w in self.workers:
            if w.process is not None and w.process.is_alive():
                self._send_worker(w, "w_stop", {})
        deadline = time.monotonic() + 1.5
        for w in self.workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(0.5)
        for p, _ in self.dying:
            if p.is_alive():
                p.kill()
            p.join(0.5)
        for s in (self.front, self.back):
            if s is not None:
                s.close(linger=1000)
        self._close_ctx()
        remove_connection_file(self.server_id, self.conn_path)
        if self.back_endpoint.startswith("ipc://"):
            with contextlib.suppress(OSError):
                os.unlink(self.back_endpoint[len("ipc://"):])
        self.lock.release()
        log.info("stopped")

    # --- sending ----------------------------------------------------------------------------------

    def _send(self, route: bytes, frames: list[Any]) -> bool:
        assert self.front is not None
        try:
            self.front.send_multipart([route, *frames], flags=zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            log.warning("client %r is not reading; a message to it was dropped", route)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
        return False  # the client is gone; a retry finds the reply in the cache

    def _reply(self, route: bytes, client: str | None, ref: str | None, msg_type: str, content: dict[str, Any],
               buffers: Sequence[Any] = (), *, cache: bool = True) -> None:
        def done(frames: list[Any]) -> None:
            if cache and client is not None and ref is not None and msg_type in ("ok", "error"):
                self._cache_put((client, ref), frames)
            self._send(route, frames)

        self._encode_then(done, msg_type, content, self.key_bytes, self.server_id, ref, buffers)

    def _encode_then(self, then: Any, msg_type: str, content: dict[str, Any], key: bytes, sender: str,
                     ref: str | None, buffers: Any) -> None:
        """Encode and sign, then ``then(frames)``; large audio is signed on the pool (the HMAC over
        hundreds of MB must not stall the loop), ``then`` always runs on the loop thread."""
        size = sum(memoryview(b).nbytes for b in buffers)
        if size < OFFLOAD_BYTES or self._pool is None:
            then(P.encode(msg_type, content, key=key, sender=sender, ref=ref, buffers=buffers))
            return
        fut = self._pool.submit(P.encode, msg_type, content, key=key, sender=sender, ref=ref, buffers=buffers)
        fut.add_done_callback(self._wake)
        self._outbox.append((fut, then))

    def _pump_outbox(self) -> None:
        if not self._outbox:
            return
        waiting = []
        for fut, then in self._outbox:
            if not fut.done():
                waiting.append((fut, then))
                continue
            try:
                then(fut.result())
            except Exception:
                log.exception("error while sending a reply")
        self._outbox = waiting

    def _error(self, route: bytes, client: str | None, ref: str | None, code: str, message: str,
               *, cache: bool = True) -> None:
        self._reply(route, client, ref, "error", P.error_content(code, message), cache=cache)

    def _cache_put(self, key: tuple[str, str], frames: list[Any]) -> None:
        size = sum(memoryview(f).nbytes for f in frames)
        old = self.cache.pop(key, None)
        if old is not None:
            self.cache_bytes -= old[1]
        self.cache[key] = (frames, size)
        self.cache_bytes += size
        cfg = self.cfg
        while self.cache and (len(self.cache) > cfg.reply_cache or self.cache_bytes > cfg.reply_cache_bytes):
            _, (_, s) = self.cache.popitem(last=False)
            self.cache_bytes -= s

    def _send_worker(self, w: _Worker, msg_type: str, content: dict[str, Any], buffers: Sequence[Any] = ()) -> bool:
        assert self.back is not None
        frames = P.encode(msg_type, content, key=self.worker_key_bytes, sender="server", buffers=buffers)
        return self._send_worker_frames(w, frames)

    def _send_worker_frames(self, w: _Worker, frames: list[Any]) -> bool:
        assert self.back is not None
        try:
            self.back.send_multipart([w.identity, *frames], copy=False)
            return True
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            return False

    def _job_sent(self, w: _Worker, j: _Job, frames: list[Any]) -> None:
        if w.job is not j or j.id not in self.jobs:
            return  # cancelled or the worker was replaced while the job was being signed
        if not self._send_worker_frames(w, frames):  # the worker is not connected: queue the job again
            w.job, w.ready = None, False
            j.state, j.worker = "queued", None
            self.queue.appendleft(j)

    # --- the client side --------------------------------------------------------------------------

    def _on_frontend(self, route: bytes, msg: P.Message | P.ProtocolError) -> None:
        if isinstance(msg, P.ProtocolError):
            exc = msg
            log.debug("refused a message: %s [%s]", exc, exc.code)
            if exc.msg_id is None:  # before or at the signature: nothing of it can be trusted
                self._send(route, P.refusal_frames(exc.code, str(exc)))
            else:
                self._error(route, None, exc.msg_id, exc.code, str(exc), cache=False)
            return
        now = time.monotonic()
        c = self.clients.get(msg.sender)
        if c is None:
            c = self.clients[msg.sender] = _Client(msg.sender, route, now)
        c.route, c.last_seen = route, now
        cached = self.cache.get((msg.sender, msg.msg_id))
        if cached is not None:  # a retry of something already answered
            self.cache.move_to_end((msg.sender, msg.msg_id))
            self._send(route, cached[0])
            return
        job = self.jobs.get(msg.msg_id)
        if job is not None and job.client == msg.sender:  # a retry of a job in flight: answer where it asks now
            job.route = route
            return
        handler = getattr(self, f"_rq_{msg.type}", None)
        try:
            if msg.type in P.RESERVED_TYPES:
                raise J.JobError(P.NOT_IMPLEMENTED, f"{msg.type} is reserved for a later version of ReaMaster "
                                                    "and not implemented by this server")
            if handler is None:  # pragma: no cover - decode only lets known types through
                raise J.JobError(P.UNKNOWN_TYPE, f"unknown message type {msg.type!r}")
            handler(route, c, msg)
        except (J.JobError, P.ProtocolError) as exc:  # every refusal is answered, never only logged
            self._error(route, c.id, msg.msg_id, exc.code, str(exc))
        except Exception as exc:  # the last resort: a bug still gets exactly one final reply
            log.exception("error while handling %s %s", msg.type, msg.msg_id)
            if msg.msg_id not in self.jobs:
                self._error(route, c.id, msg.msg_id, P.INTERNAL, f"the server failed on this request "
                                                                 f"({type(exc).__name__}); it kept running")

    def _limits_doc(self) -> dict[str, Any]:
        L = self.limits
        return {"max_frame_bytes": L.max_frame_bytes, "max_frames": L.max_frames,
                "max_audio_parts": L.max_audio_parts, "max_header_bytes": L.max_header_bytes,
                "max_content_bytes": L.max_content_bytes, "max_audio_seconds": L.max_audio_seconds,
                "chunk_bytes": L.chunk_bytes, "credits": L.credits}

    def _rq_hello(self, route: bytes, c: _Client, msg: P.Message) -> None:
        if msg.content.get("project_dir") is not None:
            c.roots = J.project_roots(msg.content["project_dir"])
        self._reply(route, c.id, msg.msg_id, "ok", {
            "protocol_version": P.PROTOCOL_VERSION, "server_id": self.server_id, "pid": os.getpid(),
            **self._limits_doc(), "limits": self._limits_doc(),
            "types": sorted(t for t in P.REQUESTS if t not in P.RESERVED_TYPES),
            "reserved_types": list(P.RESERVED_TYPES), "dtypes": [P.DTYPE],
            "allowed_roots": J.allowed_roots(c.roots), "workers": self.n_workers, "queue_limit": self.cfg.queue,
            "ping_interval_s": PING_INTERVAL_S, "client_timeout_s": self.cfg.client_timeout_s,
        }, cache=False)

    def _job_state(self, job_id: str, client: str) -> str:
        j = self.jobs.get(job_id)
        if j is not None:
            return j.state
        if (client, job_id) in self.cache or any(k[1] == job_id for k in self.cache):
            return "done"
        return "unknown"

    def _rq_ping(self, route: bytes, c: _Client, msg: P.Message) -> None:
        ids = [i for i in (msg.content.get("jobs") or []) if isinstance(i, str)][:256]
        self._reply(route, c.id, msg.msg_id, "ok", {"jobs": {i: self._job_state(i, c.id) for i in ids}},
                    cache=False)

    def _job_doc(self, j: _Job) -> dict[str, Any]:
        return {"msg_id": j.id, "type": j.kind, "state": j.state, "client": j.client, "stage": j.stage,
                "fraction": round(j.fraction, 4), "cancelling": j.cancel_deadline is not None}

    def _rq_status(self, route: bytes, c: _Client, msg: P.Message) -> None:
        target = msg.content.get("target")
        if target:
            j = self.jobs.get(target)
            if j is None:
                state = self._job_state(target, c.id)
                if state == "unknown":
                    raise J.JobError(P.NOT_FOUND, f"no job {target} on this server")
                self._reply(route, c.id, msg.msg_id, "ok", {"job": {"msg_id": target, "state": state}}, cache=False)
                return
            self._reply(route, c.id, msg.msg_id, "ok", {"job": self._job_doc(j)}, cache=False)
            return
        self._reply(route, c.id, msg.msg_id, "ok", {
            "server_id": self.server_id, "pid": os.getpid(), "uptime_s": round(time.monotonic() - self.started, 3),
            "stopping": self.stop_requested,
            "workers": {"total": len(self.workers), "ready": sum(w.ready for w in self.workers),
                        "busy": sum(w.job is not None for w in self.workers), "replaced": self.replaced,
                        "crashed": self.crashed},
            "queue": {"length": len(self.queue), "limit": self.cfg.queue},
            "jobs": [self._job_doc(j) for j in self.jobs.values()],
            "clients": len(self.clients), "uploads": len(self.uploads), "upload_bytes": self.upload_bytes,
            "transport": self.transport, "preloaded": self.preloaded.is_set(),
            "answer_ms": self._answer_stats(),
        }, cache=False)

    def _answer_stats(self) -> dict[str, float]:
        """Median, 99th percentile and largest of the loop's own time per request (see _answer_ms)."""
        v = sorted(self._answer_ms)
        if not v:
            return {"requests": 0}
        return {"requests": len(v), "p50": round(v[len(v) // 2], 3), "p99": round(v[int(0.99 * (len(v) - 1))], 3),
                "max": round(v[-1], 3)}

    def _rq_shutdown(self, route: bytes, c: _Client, msg: P.Message) -> None:
        self._reply(route, c.id, msg.msg_id, "ok", {"stopping": True, "running_jobs": len(self.jobs)})
        self.stop_requested = True

    def _rq_cancel(self, route: bytes, c: _Client, msg: P.Message) -> None:
        target = msg.content["target"]
        j = self.jobs.get(target)
        if j is None:
            if any(k[1] == target for k in self.cache):
                self._reply(route, c.id, msg.msg_id, "ok", {"target": target, "state": "done"})
                return
            raise J.JobError(P.NOT_FOUND, f"no job {target} to cancel (finished long ago or never sent)")
        state = self._cancel_job(j, "cancelled on request")
        self._reply(route, c.id, msg.msg_id, "ok", {"target": target, "state": state})

    def _cancel_job(self, j: _Job, reason: str, code: str = P.CANCELLED) -> str:
        if j.state == "queued":
            self.queue.remove(j)
            self._finish(j, "error", P.error_content(code, reason))
            return "cancelled"
        if j.cancel_deadline is None:
            j.cancel_deadline = time.monotonic() + self.cfg.cancel_grace_s
            j.cancel_reason = reason
            j.cancel_code = code
            assert j.worker is not None
            j.worker.event.set()
        return "cancelling"

    def _source(self, c: _Client, msg: P.Message,
                held: list[_Upload]) -> tuple[dict[str, Any], list[Any], dict[str, Any] | None]:
        content = dict(msg.content)
        roots = J.allowed_roots(c.roots + J.project_roots(content.get("project_dir")))
        given = [k for k in ("audio", "path", "upload_id") if content.get(k) is not None]
        if len(given) != 1:
            raise J.JobError(P.BAD_MESSAGE, f"{msg.type} needs exactly one of audio, path or upload_id")
        buffers: list[Any] = []
        audio = None
        if given[0] == "audio":
            buffers = list(msg.buffers)
            audio = msg.audio.to_dict() if msg.audio else None
        elif given[0] == "path":
            content["path"] = J.check_path(content["path"], roots)
        else:
            buffers, audio = self._upload_for(c, held)(content["upload_id"])
            content["audio"] = audio
        if msg.type == "master" and content.get("output") is not None:
            content["output"] = J.check_path(content["output"], roots, output=True)
        choices = content.get("choices")
        if msg.type == "master" and choices and choices.get("references") is not None:
            refs = choices["references"]
            if not isinstance(refs, list) or len(refs) > 16:
                raise J.JobError(P.BAD_MESSAGE, "choices.references must be a list of at most 16 file paths")
            content["choices"] = choices = {**choices, "references": [J.check_path(r, roots) for r in refs]}
        if msg.type in ("master", "suggest") and choices and choices.get("style") is not None:
            content["choices"] = {**content["choices"], "style": J.check_style(choices["style"], roots)}
        return content, buffers, audio

    def _submit(self, route: bytes, c: _Client, msg: P.Message) -> None:
        if self.stop_requested:
            raise J.JobError(P.SHUTTING_DOWN, "the server is shutting down; send the job again after it restarts")
        held: list[_Upload] = []
        content, buffers, audio = self._source(c, msg, held)
        self._enqueue(route, c, msg, content, buffers, audio, held)

    def _enqueue(self, route: bytes, c: _Client, msg: P.Message, content: dict[str, Any], buffers: Any,
                 audio: Any, held: list[_Upload]) -> None:
        """Queue a checked job, or refuse at once: a full queue answers busy, a running msg_id is refused."""
        idle = any(w.ready and w.job is None for w in self.workers)
        if len(self.queue) >= self.cfg.queue and not idle:
            raise J.JobError(P.BUSY, f"the server is busy ({len(self.queue)} jobs waiting); try again shortly")
        if msg.msg_id in self.jobs:
            raise J.JobError(P.BAD_MESSAGE, "a job with this msg_id is already running for another client")
        now = time.monotonic()
        j = _Job(msg.msg_id, c.id, route, msg.type, content, buffers, audio, submitted=now, stage_started=now,
                 uploads=list(held))
        for up in j.uploads:
            up.refs += 1
        self.jobs[j.id] = j
        self.queue.append(j)
        self._dispatch()

    _rq_analyze = _rq_suggest = _rq_master = _submit

    def _upload_for(self, c: _Client,
                    held: list[_Upload] | None = None) -> Callable[[str], tuple[list[memoryview], dict[str, Any]]]:
        def get(upload_id: str) -> tuple[list[memoryview], dict[str, Any]]:
            up = self.uploads.get(upload_id) if isinstance(upload_id, str) else None
            if up is None or up.client != c.id:
                raise J.JobError(P.NOT_FOUND, f"no upload {upload_id} (expired, freed or never begun)")
            if not up.complete:
                raise J.JobError(P.BAD_MESSAGE, f"upload {up.id} has {up.received} of {up.nbytes} bytes; "
                                                "send the rest first")
            up.last_used = time.monotonic()
            if held is not None:
                held.append(up)
            return up.parts(), P.audio_descriptor(up.channels, up.frames, up.sample_rate)
        return get

    def _submit_assistant(self, route: bytes, c: _Client, msg: P.Message) -> None:
        """album, revise and master_stems: paths checked and resolved by jobs.prepare, then queued."""
        if self.stop_requested:
            raise J.JobError(P.SHUTTING_DOWN, "the server is shutting down; send the job again after it restarts")
        roots = J.allowed_roots(c.roots + J.project_roots(msg.content.get("project_dir")))
        held: list[_Upload] = []
        content, buffers = J.prepare(msg.type, msg, roots, self._upload_for(c, held))
        if msg.type == "revise" and any(j.kind == "revise" and j.request.get("session") == content["session"]
                                        for j in self.jobs.values()):
            raise J.JobError(P.BUSY, "this session is being revised by another request; wait for it to finish")
        self._enqueue(route, c, msg, content, buffers, None, held)

    _rq_album = _rq_revise = _rq_master_stems = _submit_assistant

    def _rq_upload_begin(self, route: bytes, c: _Client, msg: P.Message) -> None:
        if self.stop_requested:
            raise J.JobError(P.SHUTTING_DOWN, "the server is shutting down")
        desc = P.check_audio_descriptor({**msg.content, "parts": 1}, self.limits, msg.msg_id)
        if desc.nbytes > self.cfg.max_upload_bytes:
            raise J.JobError(P.TOO_LARGE, f"this audio is {desc.nbytes >> 20} MiB; the server takes uploads of "
                                          f"at most {self.cfg.max_upload_bytes >> 20} MiB")
        if self.upload_bytes + desc.nbytes > self.cfg.max_upload_bytes:
            raise J.JobError(P.BUSY, "too much uploaded audio is waiting on this server; "
                                     "free uploads or retry later")
        up = _Upload(P.new_id(), c.id, desc.channels, desc.frames, desc.sample_rate, desc.nbytes, {},
                     last_used=time.monotonic())
        self.uploads[up.id] = up
        self.upload_bytes += desc.nbytes
        self._reply(route, c.id, msg.msg_id, "ok", {"upload_id": up.id, "nbytes": desc.nbytes,
                                                    "chunk_bytes": self.limits.chunk_bytes,
                                                    "credits": self.limits.credits})

    def _rq_upload_chunk(self, route: bytes, c: _Client, msg: P.Message) -> None:
        up = self.uploads.get(msg.content["upload_id"])
        if up is None or up.client != c.id:
            raise J.JobError(P.NOT_FOUND, f"no upload {msg.content['upload_id']}")
        off, data = msg.content["offset"], msg.buffers[0]
        n = data.nbytes
        if off + n > up.nbytes:
            raise J.JobError(P.BAD_AUDIO, f"chunk at {off} (+{n} bytes) goes past the upload's {up.nbytes} bytes")
        known = up.chunks.get(off)
        if known is None:
            if any(o < off + n and off < o + v.nbytes for o, v in up.chunks.items()):
                raise J.JobError(P.BAD_AUDIO, f"chunk at {off} overlaps another chunk")
            up.chunks[off] = data
            up.received += n
        elif known.nbytes != n:
            raise J.JobError(P.BAD_AUDIO, f"chunk at {off} was sent before with another size")
        elif known != data:  # a retry carries the same bytes; anything else is refused
            raise J.JobError(P.BAD_AUDIO, f"chunk at {off} was sent before with other bytes")
        up.last_used = time.monotonic()
        self._reply(route, c.id, msg.msg_id, "ok", {"upload_id": up.id, "received_bytes": up.received,
                                                    "complete": up.complete})

    def _rq_upload_free(self, route: bytes, c: _Client, msg: P.Message) -> None:
        up = self.uploads.get(msg.content["upload_id"])
        if up is None or up.client != c.id:
            raise J.JobError(P.NOT_FOUND, f"no upload {msg.content['upload_id']}")
        self._drop_upload(up)
        self._reply(route, c.id, msg.msg_id, "ok", {"upload_id": up.id, "freed": True})

    def _drop_upload(self, up: _Upload) -> None:
        """Forget the upload id; its bytes stay counted until the last job holding them ends."""
        if self.uploads.pop(up.id, None) is not None:
            up.freed = True
            if up.refs == 0:
                self.upload_bytes -= up.nbytes

    # --- jobs and workers ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        for w in self.workers:
            if not self.queue:
                return
            if not w.ready or w.job is not None:
                continue
            j = self.queue.popleft()
            w.event.clear()
            content = {"job_id": j.id, "kind": j.kind, "request": j.request}
            if j.audio is not None:
                content["audio"] = {**j.audio, "parts": len(j.buffers)}
            elif j.request.get("audios"):  # several named signals (master_stems by value)
                content["audios"] = j.request["audios"]
            j.state, j.worker, w.job = "running", w, j
            j.stage_started = time.monotonic()
            self._encode_then(lambda frames, w=w, j=j: self._job_sent(w, j, frames), "w_job", content,
                              self.worker_key_bytes, "server", None, j.buffers)

    def _finish(self, j: _Job, status: str, content: dict[str, Any], buffers: Sequence[Any] = ()) -> None:
        self.jobs.pop(j.id, None)
        if j.worker is not None and j.worker.job is j:
            j.worker.job = None
        j.buffers = []
        for up in j.uploads:
            up.refs -= 1
            if up.freed and up.refs == 0:
                self.upload_bytes -= up.nbytes  # the memory goes only now
        j.uploads = []
        self._reply(j.route, j.client, j.id, status, content, list(buffers))

    def _on_backend(self, ident: bytes, msg: P.Message | P.ProtocolError) -> None:
        w = next((w for w in self.workers if w.identity == ident), None)
        if w is None:
            return  # a replaced worker's last words
        if isinstance(msg, P.ProtocolError):
            log.warning("ignored a backend message: %s", msg)
            return
        if msg.type == "w_ready":
            # the nonce of this very spawn: a replayed or stray ready cannot claim the slot
            if msg.content["nonce"] != w.nonce or msg.content["pid"] != w.process.pid:
                log.warning("ignored a ready message that does not match worker %d's spawn", w.index)
                return
            w.ready = True
            self._dispatch()
            return
        j = w.job
        if j is None or msg.content.get("job_id") != j.id:
            return
        if msg.type == "w_progress":
            self._progress(j, msg.content["stage"], float(msg.content["fraction"]))
        elif msg.type == "w_result":
            status = msg.content["status"]
            content = msg.content.get("content") or {}
            if status == "error" and content.get("code") == P.CANCELLED and j.cancel_reason:
                content = P.error_content(getattr(j, "cancel_code", P.CANCELLED), j.cancel_reason)
            self._finish(j, "ok" if status == "ok" else "error", content, list(msg.buffers))
            self._dispatch()

    def _progress(self, j: _Job, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage != j.stage:
            j.stage, j.stage_started = stage, now
        j.fraction = fraction
        if now - j.last_progress_sent < J.PROGRESS_INTERVAL_S and fraction < 1.0:
            return
        j.last_progress_sent = now
        elapsed = now - j.stage_started
        eta = round(elapsed * (1.0 - fraction) / fraction, 2) if fraction > 0.02 else None
        self._reply(j.route, j.client, j.id, "progress", {"stage": stage, "fraction": round(fraction, 4),
                                                          "eta_s": eta}, cache=False)

    def _last_seen(self, c: _Client) -> float:
        return max(c.last_seen, self._seen.get(c.route, 0.0))

    def _tick(self) -> bool:
        """Timers: cancel deadlines, dead workers, silent clients, expiry, shutdown. True: stop now."""
        now = time.monotonic()
        for w in list(self.workers):
            j = w.job
            if j is not None and j.cancel_deadline is not None and now > j.cancel_deadline:
                log.info("worker %d did not stop within %.1f s; replacing it", w.index, self.cfg.cancel_grace_s)
                self._replace_worker(w)
                J.remove_partial_outputs(j.request)
                self._finish(j, "error", P.error_content(getattr(j, "cancel_code", P.CANCELLED), j.cancel_reason))
            elif not w.process.is_alive():
                log.warning("worker %d exited (code %s); starting another", w.index, w.process.exitcode)
                self.crashed += 1
                self.dying.append((w.process, now))
                self._spawn_worker(w.index, w.gen + 1)
                if j is not None:
                    J.remove_partial_outputs(j.request)
                    self._finish(j, "error", P.error_content(P.INTERNAL, "the worker process stopped unexpectedly "
                                                                        "(out of memory?); try again"))
            elif not w.ready and now - w.started > self.cfg.worker_ready_timeout_s * 2 ** min(w.misses, 4):
                # a stuck start (or a slot someone else holds) is killed and respawned; the deadline
                # doubles on each miss so a merely slow machine does not respawn forever
                log.warning("worker %d was not ready within %g s; starting another", w.index,
                            self.cfg.worker_ready_timeout_s * 2 ** min(w.misses, 4))
                self.crashed += 1
                try:
                    w.process.kill()
                except Exception:  # pragma: no cover - already gone
                    pass
                self.dying.append((w.process, now))
                self._spawn_worker(w.index, w.gen + 1, w.misses + 1)
        self.dying = [(p, t) for p, t in self.dying if p.is_alive()]
        for p, t in self.dying:
            if now - t > 1.0:
                p.kill()
        for j in list(self.jobs.values()):
            c = self.clients.get(j.client)
            if c is not None and now - self._last_seen(c) > self.cfg.client_timeout_s and j.cancel_deadline is None:
                log.info("client %s went silent; cancelling %s", c.id, j.id)
                self._cancel_job(j, f"cancelled: the client sent nothing for {self.cfg.client_timeout_s:g} s")
        for up in list(self.uploads.values()):
            c = self.clients.get(up.client)
            idle = max(self.cfg.client_timeout_s, UPLOAD_SILENCE_S)
            silent = c is None or now - self._last_seen(c) > idle
            # an unfinished upload of a client that went silent can never complete: free it now
            if now - up.last_used > self.cfg.upload_ttl_s or (silent and not up.complete and now - up.last_used > idle):
                self._drop_upload(up)
        for cid, c in list(self.clients.items()):
            if now - self._last_seen(c) > 600 and not any(j.client == cid for j in self.jobs.values()):
                del self.clients[cid]
        if len(self._seen) > 4 * len(self.clients) + 64:
            self._seen = {r: t for r, t in self._seen.items() if now - t < 600}
        self._dispatch()
        if self.stop_requested:
            if self.stopping_deadline is None:
                self.stopping_deadline = now + self.cfg.shutdown_grace_s
                log.info("shutting down; %d job(s) running", sum(j.state == "running" for j in self.jobs.values()))
                while self.queue:
                    j = self.queue.popleft()
                    self._finish(j, "error", P.error_content(P.SHUTTING_DOWN, "the server shut down before the job "
                                                                            "started; send it again after restart"))
            if not self.jobs:
                return True
            if now > self.stopping_deadline:
                for j in list(self.jobs.values()):
                    if j.cancel_deadline is None:
                        self._cancel_job(j, "the server shut down before the job finished", P.SHUTTING_DOWN)
        return False


# --- command line -----------------------------------------------------------------------------------

def run(config: ServerConfig) -> int:
    """Start, serve until SIGTERM/SIGINT or a shutdown request, stop cleanly. Returns the exit code."""
    srv = Server(config)
    srv.start()
    print(f"reamaster server {srv.server_id[:8]} listening on {srv.endpoint} ({srv.n_workers} workers); "
          f"connection file {srv.conn_path}", flush=True)
    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        old[sig] = signal.signal(sig, srv.request_stop)
    try:
        srv.serve_forever()
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    return 0
