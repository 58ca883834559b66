"""The companion server end to end: a real server subprocess, real ZeroMQ sockets on 127.0.0.1,
real files. Malformed input, concurrency, cancellation, dead clients, dead servers, shutdown,
keys, paths, and the --server CLI path writing the same bytes as the in-process command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zmq

from server.wire import protocol as P
from server.wire.client import Client, Progress, ServerError, ServerUnavailable
from server.wire.connection import ConnectionFileError, ConnectionInfo, pid_alive, read_connection_file
from tests.conftest import sine

REPO = Path(__file__).resolve().parent.parent
SR = 44100
FRAME_LIMIT = 1 << 18  # the shared server's max_frame_bytes (small, so oversize and upload tests stay cheap)


class Ctx:
    """A zmq context per test; every socket made through raw() is closed with linger 0."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.sockets: list[zmq.Socket] = []

    def close(self) -> None:
        for s in self.sockets:
            s.close(linger=0)
        self.context.term()


class ServerProc:
    """``python -m server.daemon ARGS`` in its own session (kill -9 takes its workers too); its log
    goes to ``tmp_dir/server.log``. ``wait``: until its connection file names it."""

    def __init__(self, cfg_dir: Path, tmp_dir: Path, *args: str, wait: bool = True) -> None:
        self.cfg_dir, self.tmp_dir = cfg_dir, tmp_dir
        cfg_dir.mkdir(parents=True, exist_ok=True)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.conn_path = cfg_dir / "server.json"
        env = dict(os.environ, REAMASTER_CONFIG_DIR=str(cfg_dir), TMPDIR=str(tmp_dir))
        self.log = open(tmp_dir / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.daemon", *args], cwd=REPO,
                                     env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        self.info: ConnectionInfo | None = self._wait_for_file() if wait else None

    def _wait_for_file(self) -> ConnectionInfo:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            with contextlib.suppress(ConnectionFileError):
                info = read_connection_file(self.conn_path)
                if info.pid == self.proc.pid:
                    return info
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"server did not start: {(self.tmp_dir / 'server.log').read_text()}")

    def client(self, **kw) -> Client:
        kw.setdefault("timeout", 2.0)
        return Client.connect(self.conn_path, **kw)

    def children(self) -> list[int]:
        """The worker processes (not multiprocessing's resource tracker)."""
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (d / "cmdline").read_bytes()
                if ppid == self.proc.pid and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                    out.append(int(d.name))
        return out

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def kill(self) -> None:
        # the server and its workers share the session started for it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


def wait_ready(c: Client, workers: int) -> None:
    end = time.monotonic() + 90  # worker warm-up (numba imports) is slow on a busy machine
    while c.status()["workers"]["ready"] < workers:
        assert time.monotonic() < end, "workers did not come up"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    base = tmp_path_factory.mktemp("srv")
    s = ServerProc(base / "cfg", base / "servertmp", "--port", "0", "--workers", "2", "--queue", "16",
                   "--max-frame-bytes", str(FRAME_LIMIT), "--client-timeout", "2")
    with s.client() as c:
        wait_ready(c, 2)
    yield s
    s.kill()


@pytest.fixture(scope="module")
def long_mix(tmp_path_factory) -> Path:
    """Six minutes of noise with a slow envelope: several seconds to master, long enough to cancel."""
    p = tmp_path_factory.mktemp("long") / "long.wav"
    rng = np.random.default_rng(7)
    block = rng.standard_normal((2, SR * 5)).astype(np.float32) * 0.1
    x = np.tile(block, (1, 72)) * (0.6 + 0.4 * np.sin(np.arange(SR * 360) / SR * 0.5))[None, :].astype(np.float32)
    sf.write(p, x.T, SR, subtype="PCM_16")
    return p


@pytest.fixture
def ctx():
    c = Ctx()
    yield c
    c.close()


def raw(ctx: Ctx, srv) -> zmq.Socket:
    s = ctx.context.socket(zmq.DEALER)
    s.linger = 0
    if srv.info.curve_server_key:  # tcp is CURVE-encrypted: the key comes from the connection file
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
        s.curve_serverkey = srv.info.curve_server_key.encode("ascii")
    s.connect(srv.info.endpoint)
    ctx.sockets.append(s)
    return s


def recv(sock, timeout_s: float = 5.0) -> list[bytes]:
    assert sock.poll(int(timeout_s * 1000)), "no reply"
    return sock.recv_multipart()


def reply_code(frames, key: bytes) -> str:
    refusal = P.refusal_code(frames)
    if refusal is not None:
        return refusal[0]
    m = P.decode(frames, key, kinds=P.REPLIES, check_finite=False)
    return m.content["code"] if m.type == "error" else m.type


def noise_mix(frames: int, sample_rate: int, *, amp: float = 0.1, seed: int = 3) -> np.ndarray:
    """Seeded stereo noise with a slow swell and a quiet bass tone, float32 (channels, frames)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / sample_rate
    x = rng.standard_normal((2, frames)) * amp * (0.7 + 0.3 * np.sin(2 * np.pi * 0.5 * t))
    x += 0.5 * amp * np.sin(2 * np.pi * 70.0 * t)
    return x.astype(np.float32)


def mix_file(folder: Path, name: str = "mix.wav", seconds: float = 3.0, amp: float = 0.1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    sf.write(p, noise_mix(int(seconds * SR), SR, amp=amp).T, SR, subtype="PCM_24")
    return p


# --- hello and malformed input ----------------------------------------------------------------------

def test_hello_advertises_capabilities_and_the_file_is_private(srv):
    assert (os.stat(srv.conn_path).st_mode & 0o777) == 0o600
    assert srv.info.endpoint.startswith("tcp://127.0.0.1:") and srv.info.pid == srv.proc.pid
    with srv.client() as c:
        h = c.info
    assert h["protocol_version"] == 1 and h["server_id"] == srv.info.server_id
    assert h["max_frame_bytes"] == FRAME_LIMIT and h["chunk_bytes"] <= FRAME_LIMIT and h["credits"] >= 1
    assert h["dtypes"] == ["<f4"] and h["max_frames"] == 8 and h["max_audio_seconds"] > 0
    assert {"hello", "analyze", "suggest", "master", "cancel", "status", "shutdown"} <= set(h["types"])
    assert {"album", "revise", "master_stems"} <= set(h["types"]) and h["reserved_types"] == []
    assert os.path.realpath(srv.tmp_dir) in h["allowed_roots"]


def test_malformed_messages_get_error_replies_and_the_server_keeps_serving(srv, ctx):
    key = srv.info.key_bytes
    s = raw(ctx, srv)
    good_audio = sine(440.0, SR, 0.5, amp=0.1).astype("<f4")
    nan_audio = good_audio.copy()
    nan_audio[1, 100] = np.nan

    def signed(t, content, bufs=()):
        return P.encode(t, content, key=key, sender="raw1", buffers=bufs)

    def resigned(header: bytes, content: bytes):
        return [P.MARKER, P.sign(key, [header, content]), header, content]

    hdr = json.dumps({"msg_id": "m1", "type": "hello", "version": 1, "sender": "raw1", "time": "t"}).encode()
    cases = [
        ([b"hello"], P.BAD_FRAME_COUNT),
        ([b"XXXX", *signed("hello", {})[1:]], P.BAD_MARKER),
        (P.encode("hello", {}, key=bytes(32), sender="raw1"), P.BAD_SIGNATURE),
        (resigned(b"{oops", b"{}"), P.BAD_JSON),
        (resigned(hdr, b"[]"), P.BAD_JSON),
        (signed("erase_disk", {}), P.UNKNOWN_TYPE),
        (signed("cancel", {}), P.BAD_MESSAGE),
        (signed("analyze", {"audio": {**P.audio_descriptor(2, good_audio.shape[1], SR), "dtype": "<f8"}},
                [good_audio.tobytes()]), P.BAD_AUDIO),
        (signed("analyze", {"audio": P.audio_descriptor(2, good_audio.shape[1] + 1, SR)}, [good_audio.tobytes()]),
         P.BAD_AUDIO),
        (signed("analyze", {"audio": P.audio_descriptor(2, good_audio.shape[1], SR)}, [nan_audio.tobytes()]),
         P.BAD_AUDIO),
        (signed("analyze", {"audio": P.audio_descriptor(2, 100, 8000)}, [b"\x00" * 800]), P.BAD_AUDIO),
        (signed("analyze", {"path": "/etc/passwd"}), P.PATH_NOT_ALLOWED),
        (signed("analyze", {}), P.BAD_MESSAGE),
        (signed("upload_chunk", {"upload_id": "nope", "offset": 0}, [b"\x00" * 8]), P.NOT_FOUND),
        (signed("master_stems", {}), P.BAD_MESSAGE),
        (signed("album", {}), P.BAD_MESSAGE),
        (signed("album", {"paths": "/x.wav", "output": "/"}), P.BAD_MESSAGE),
        (signed("revise", {}), P.BAD_MESSAGE),
        (signed("master_stems", {"audios": [{"name": "vocals", **P.audio_descriptor(2, good_audio.shape[1], SR)}]}),
         P.BAD_FRAME_COUNT),
        (signed("master_stems", {"audios": [{"name": "vocals", **P.audio_descriptor(2, good_audio.shape[1], SR)}]},
                [nan_audio.tobytes()]), P.BAD_AUDIO),
        (signed("master_stems", {"audios": [{**P.audio_descriptor(2, good_audio.shape[1], SR)}]},
                [good_audio.tobytes()]), P.BAD_AUDIO),
    ]
    for frames, code in cases:
        s.send_multipart(frames)
        assert reply_code(recv(s), key) == code, code
    # the same socket, and everybody else, are still served
    s.send_multipart(signed("hello", {}))
    assert reply_code(recv(s), key) == "ok"
    with srv.client() as c:
        assert c.status()["server_id"] == srv.info.server_id


def test_oversize_frame_is_dropped_silently_and_others_keep_working(srv, ctx):
    key = srv.info.key_bytes
    s = raw(ctx, srv)
    n = FRAME_LIMIT // 8 + 1024  # stereo float32: just over the frame limit
    big = np.zeros((2, n), dtype="<f4")
    big[:, ::100] = 0.1
    s.send_multipart(P.encode("analyze", {"audio": P.audio_descriptor(2, n, SR)}, key=key, sender="big1",
                              buffers=[big.tobytes()]))
    assert not s.poll(1000), "libzmq disconnects an oversize sender without a word"
    with srv.client() as c:  # another client is unaffected
        assert c.status()["server_id"] == srv.info.server_id
    s.send_multipart(P.encode("hello", {}, key=key, sender="big1"))  # the DEALER reconnected by itself
    assert reply_code(recv(s), key) == "ok"


def test_wrong_key_is_refused_with_bad_signature(srv):
    with pytest.raises(ServerError) as e:
        Client.connect(srv.info.endpoint, key="ab" * 32, timeout=2.0, curve_server_key=srv.info.curve_server_key)
    assert e.value.code == P.BAD_SIGNATURE and "key" in str(e.value)


def test_no_server_is_a_clear_error(tmp_path):
    with pytest.raises(ServerUnavailable) as e:
        Client.connect(tmp_path / "server.json")
    assert "reamaster serve" in str(e.value)
    with zmq.Context() as z, z.socket(zmq.ROUTER) as r:  # a port nobody serves
        port = r.bind_to_random_port("tcp://127.0.0.1")
        r.close(linger=0)
    with pytest.raises(ServerUnavailable) as e:
        Client.connect(f"tcp://127.0.0.1:{port}", key="ab" * 32, timeout=0.3, retries=1)
    assert e.value.code == P.SERVER_UNAVAILABLE and "2 tries" in str(e.value)


# --- jobs -----------------------------------------------------------------------------------------

def test_eight_clients_at_once_each_get_their_own_result(srv):
    from dsp.measure.analysis import analyze

    amps = [0.05 * (i + 1) for i in range(8)]
    signals = [(sine(300.0 + 50 * i, 48000, 1.0, amp=a) * np.linspace(0.8, 1.0, 48000)).astype(np.float32)
               for i, a in enumerate(amps)]
    results: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            with srv.client() as c:
                x = signals[i]
                results[i] = c.analyze_audio(x.tobytes(), 2, x.shape[1], 48000)
        except BaseException as exc:  # surfaced below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, x in enumerate(signals):
        got = results[i]
        assert isinstance(got, dict), got
        assert got["integrated_lufs"] == analyze(x, 48000).to_dict()["integrated_lufs"]
    lufs = [results[i]["integrated_lufs"] for i in range(8)]
    assert np.all(np.diff(lufs) > 0.5)  # every client got its own signal's loudness


def test_master_by_value_large_audio_is_uploaded_in_chunks(srv):
    from dsp.decide.presets import delivery
    from server.service.mastering import decide_and_master

    frames = int(FRAME_LIMIT * 4.5) // 8  # more than max_audio_parts x max_frame_bytes: must upload
    x = noise_mix(frames, 48000)
    with srv.client() as c:
        job = c.audio_request("master", {"preset": "broadcast"}, x.tobytes(), 2, frames, 48000)
        assert "upload_id" in job.content and "audio" not in job.content
        res = job.wait()
        c.call("upload_free", {"upload_id": job.content["upload_id"]})
        assert c.status()["uploads"] == 0
    expected = decide_and_master(x, 48000, delivery("broadcast")).audio  # no choices: the CLI's defaults
    assert (res.channels, res.frames, res.sample_rate) == (2, frames, 48000)
    assert res.audio == expected.astype("<f4").tobytes()


def test_paths_outside_the_allowed_folders_are_refused(srv, tmp_path):
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    src = mix_file(proj)
    secret = mix_file(outside, "secret.wav")
    (proj / "escape.wav").symlink_to(secret)
    with srv.client(project_dir=str(proj)) as c:
        assert str(proj.resolve()) in c.info["allowed_roots"]
        for bad in (secret, proj / ".." / "outside" / "secret.wav", proj / "escape.wav"):
            with pytest.raises(ServerError) as e:
                c.analyze_path(str(bad))
            assert e.value.code == P.PATH_NOT_ALLOWED
        with pytest.raises(ServerError) as e:
            c.master_path(src, outside / "m.wav")
        assert e.value.code == P.PATH_NOT_ALLOWED
        with pytest.raises(ServerError) as e:
            c.master_path(src, src)
        assert e.value.code == "output_exists"
        assert not (outside / "m.wav").exists()
        report = c.master_path(src, proj / "m.wav", preset="club")
        assert abs(report["after"]["integrated_lufs"] - -8.0) <= 0.2 and (proj / "m.wav").is_file()
    with srv.client() as c:  # no project declared: the same file is out of bounds
        with pytest.raises(ServerError) as e:
            c.analyze_path(src)
        assert e.value.code == P.PATH_NOT_ALLOWED


def test_cancel_stops_a_long_master_and_hello_stays_quick(srv, long_mix, tmp_path):
    out = tmp_path / "never.wav"
    folders = [str(long_mix.parent), str(tmp_path)]
    with srv.client() as a, srv.client() as b:
        job = a.submit("master", {"path": str(long_mix), "output": str(out), "project_dir": folders})
        end = time.monotonic() + 30
        while not isinstance(job.poll(), Progress) or job.progress.stage == "analysing":
            assert not job.done, job.outcome
            assert time.monotonic() < end
            time.sleep(0.01)
        # the ROUTER loop does not run DSP: another client is answered while the job runs
        b.hello()
        assert b.status(job.msg_id)["job"]["state"] == "running"
        loop = b.status()["answer_ms"]  # the loop's own time per request, while a worker masters
        assert loop["requests"] >= 3 and 0.0 < loop["p50"] <= loop["p99"] <= loop["max"]
        job.cancel()
        with pytest.raises(ServerError) as e:
            job.wait(timeout=10)
        assert e.value.code == P.CANCELLED
        assert a.status(job.msg_id)["job"]["state"] == "done"
        assert not out.exists()
        # the worker is usable again (or was replaced) and jobs run
        small = mix_file(tmp_path / "small", seconds=1.0)
        done = b.call("analyze", {"path": str(small), "project_dir": str(small.parent)}).content["analysis"]
        assert done["duration_s"] == pytest.approx(1.0)


def test_a_worker_that_does_not_stop_is_replaced(srv, tmp_path):
    # analysis has no progress callback inside: only terminating the worker can stop it in time
    p = tmp_path / "twelve.wav"
    block = np.random.default_rng(9).standard_normal((2, SR * 5)).astype(np.float32) * 0.1
    sf.write(p, np.tile(block, (1, 144)).T, SR, subtype="PCM_16")
    with srv.client() as c:
        replaced = c.status()["workers"]["replaced"]
        job = c.submit("analyze", {"path": str(p), "project_dir": str(tmp_path)})
        while not (isinstance(job.poll(), Progress) and job.progress.stage == "analysing"):
            assert not job.done, job.outcome
            time.sleep(0.005)
        job.cancel()
        with pytest.raises(ServerError) as e:
            job.wait(10)
        assert e.value.code == P.CANCELLED
        assert c.status()["workers"]["replaced"] == replaced + 1
        wait_ready(c, 2)  # the replacement comes up and serves
        small = mix_file(tmp_path / "s", seconds=1.0)
        assert c.call("analyze", {"path": str(small), "project_dir": str(small.parent)}).content["analysis"]


def test_retry_with_the_same_msg_id_is_idempotent(srv, ctx, tmp_path):
    src = mix_file(tmp_path / "p")
    dst = tmp_path / "p" / "m.wav"
    key = srv.info.key_bytes
    frames = P.encode("master", {"path": str(src), "output": str(dst), "project_dir": str(tmp_path / "p")},
                      key=key, sender="retry1", msg_id="job-1")
    s = raw(ctx, srv)
    s.send_multipart(frames)
    first = None
    end = time.monotonic() + 60
    while first is None or first.type == "progress" or first.ref != "job-1":
        assert time.monotonic() < end, "no reply"
        if not s.poll(500):  # a client with a job pings (else the server cancels it as gone)
            s.send_multipart(P.encode("ping", {"jobs": ["job-1"]}, key=key, sender="retry1"))
            continue
        first = P.decode(s.recv_multipart(), key, kinds=P.REPLIES, check_finite=False)
        assert first.sender == srv.info.server_id
        if first.type != "ok" or "jobs" not in first.content:
            assert first.ref == "job-1"  # progress and reply name the request
    assert first.type == "ok", first.content
    s.close(linger=0)
    s2 = raw(ctx, srv)  # a new socket (new routing id), the same request: the cached reply, no new job
    s2.send_multipart(frames)
    again = P.decode(recv(s2), key, kinds=P.REPLIES, check_finite=False)
    assert again.type == "ok" and again.msg_id == first.msg_id and again.content == first.content


def test_a_client_killed_mid_job_has_its_job_cancelled(srv, long_mix, tmp_path, ctx):
    out = tmp_path / "orphan.wav"
    script = textwrap.dedent(f"""
        import sys, time
        from server.wire.client import Client, Progress
        c = Client.connect({str(srv.conn_path)!r})
        job = c.submit("master", {{"path": {str(long_mix)!r}, "output": {str(out)!r},
                                   "project_dir": [{str(long_mix.parent)!r}, {str(tmp_path)!r}]}})
        while not isinstance(job.poll(), Progress):
            time.sleep(0.01)
        print(job.msg_id, c.client_id, flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()
        assert len(line) == 2, "the client never started its job"
        msg_id, client_id = line
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()
    with srv.client() as c:
        end = time.monotonic() + 20
        while c.status(msg_id)["job"]["state"] != "done":
            assert time.monotonic() < end, "the orphaned job kept running"
            time.sleep(0.1)
        assert not any(j["msg_id"] == msg_id for j in c.status()["jobs"])
    assert not out.exists()
    # had the client come back and asked again, it would have heard why
    s = raw(ctx, srv)
    s.send_multipart(P.encode("master", {}, key=srv.info.key_bytes, sender=client_id, msg_id=msg_id))
    m = P.decode(recv(s), srv.info.key_bytes, kinds=P.REPLIES)
    assert m.type == "error" and m.content["code"] == P.CANCELLED and "sent nothing" in m.content["message"]


def test_cli_master_via_server_writes_the_same_bytes(srv, tmp_path, capsys):
    from server.cli.main import _parser
    from server.cli.main import main as cli_main
    from server.cli.remote import run_master_via_server

    src = mix_file(tmp_path / "in", seconds=4.0, amp=0.2)
    local, remote = tmp_path / "local.wav", tmp_path / "remote.wav"
    assert cli_main(["master", str(src), "-o", str(local), "--preset", "cd", "--no-progress"]) == 0
    summary_local = capsys.readouterr().out
    # the real `master` options, so every decision option reaches the server as the CLI has it
    args = _parser().parse_args(["master", str(src), "-o", str(remote), "--preset", "cd", "--no-progress",
                                 "--save-chain", str(tmp_path / "chain.json")])
    args.key_file = str(srv.conn_path)
    assert run_master_via_server(srv.info.endpoint, args) == 0
    summary_remote = capsys.readouterr().out
    assert remote.read_bytes() == local.read_bytes()
    assert summary_remote.replace(str(remote), "OUT") == summary_local.replace(str(local), "OUT")
    assert json.loads((tmp_path / "chain.json").read_text())["format"] == "reamaster.chain"
    # refusals are one line and exit 2; --force replaces through a fresh file
    assert run_master_via_server(srv.info.endpoint, args) == 2
    assert "already exists" in capsys.readouterr().err
    before = remote.stat().st_ino
    args.force, args.save_chain = True, None
    assert run_master_via_server(srv.info.endpoint, args) == 0
    assert remote.read_bytes() == local.read_bytes() and remote.stat().st_ino != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_without_choices_the_server_decides_as_the_cli_and_suggest_proposes_that_chain(srv, tmp_path):
    # a client that sends no choices (a script, a REAPER action of an older release) gets the
    # decisions of `reamaster master FILE` with no options, and suggest the chain that master used
    from server.cli.main import main as cli_main

    from scipy.signal import butter, sosfilt

    src = tmp_path / "dull.wav"  # noise low-passed at 2 kHz: a mix far duller than any style
    x = sosfilt(butter(2, 2000, fs=SR, output="sos"), noise_mix(4 * SR, SR, amp=0.2), axis=-1)
    sf.write(src, (0.3 * x / np.abs(x).max()).T, SR, subtype="PCM_24")
    local, remote = tmp_path / "local.wav", tmp_path / "remote.wav"
    assert cli_main(["master", str(src), "-o", str(local), "--no-progress",
                     "--save-chain", str(tmp_path / "chain.json")]) == 0
    with srv.client(project_dir=str(tmp_path), timeout=120.0) as c:
        report = c.master_path(src, remote)
        suggested = c.suggest_path(src)["chain"]
        no_eq = c.suggest_path(src, choices={"tone_pct": 0.0})["chain"]
    assert remote.read_bytes() == local.read_bytes()
    used = json.loads((tmp_path / "chain.json").read_text())

    def without_limiter_drive(chain: dict) -> list:
        return [(st["kind"], {k: v for k, v in st["params"].items() if k != "threshold_db"})
                for st in chain["stages"] if st.get("enabled", True)]

    assert without_limiter_drive(suggested) == without_limiter_drive(used)
    assert [st["kind"] for st in report["chain"]["stages"]] == [st["kind"] for st in used["stages"]]
    assert any(st["kind"] == "eq" for st in suggested["stages"])  # this mix gets a tonal move...
    assert not any(st["kind"] == "eq" for st in no_eq["stages"])  # ...which tone 0 % leaves out


# --- servers that come and go -----------------------------------------------------------------------

def test_full_queue_is_busy_and_sigterm_shuts_down_gracefully(tmp_path, long_mix):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1", "--queue", "1",
                   "--grace", "0.3")
    try:
        folders = [str(long_mix.parent), str(tmp_path)]
        with s.client() as c:
            wait_ready(c, 1)
            running = c.submit("master", {"path": str(long_mix), "output": str(tmp_path / "a.wav"),
                                          "project_dir": folders})
            while not isinstance(running.poll(), Progress):
                assert not running.done, running.outcome
                time.sleep(0.01)
            queued = c.submit("analyze", {"path": str(long_mix), "project_dir": folders})
            with pytest.raises(ServerError) as e:
                c.call("analyze", {"path": str(long_mix), "project_dir": folders})
            assert e.value.code == P.BUSY
            assert c.status(queued.msg_id)["job"]["state"] == "queued"
            s.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ServerError) as e:
                queued.wait(10)
            assert e.value.code == P.SHUTTING_DOWN
            try:
                running.wait(10)
            except ServerError as exc:
                assert exc.code == P.SHUTTING_DOWN
        assert s.proc.wait(15) == 0
        assert not s.conn_path.exists()
    finally:
        s.kill()


def test_server_killed_and_restarted_while_a_client_waits(tmp_path, long_mix):
    cfg, tmp = tmp_path / "cfg", tmp_path / "tmp"
    src = mix_file(tmp, seconds=2.0)
    first = ServerProc(cfg, tmp, "--port", "0", "--workers", "1")
    second = None
    try:
        c = first.client(timeout=1.0, retries=1)
        wait_ready(c, 1)
        job = c.submit("analyze", {"path": str(long_mix), "project_dir": str(long_mix.parent)})
        first.kill()
        with pytest.raises(ServerUnavailable) as e:
            job.wait(20)
        assert "no answer" in str(e.value)
        second = ServerProc(cfg, tmp, "--port", "0", "--workers", "1")  # a new port and a new key in the same file
        assert second.info.key != first.info.key
        result = c.analyze_path(src)  # the client reads the connection file again and carries on
        assert result["duration_s"] == pytest.approx(2.0)
        assert c.server_id == second.info.server_id
        c.close()
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_remote_binding_needs_curve_and_a_second_server_is_refused(srv, tmp_path):
    env = dict(os.environ, REAMASTER_CONFIG_DIR=str(tmp_path))
    for extra in ([], ["--allow-remote"]):
        r = subprocess.run([sys.executable, "-m", "server.daemon", "--host", "0.0.0.0", "--port", "0", *extra],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2
        assert r.stderr.count("\n") == 1 and "--allow-remote and --curve-keys" in r.stderr
    env["REAMASTER_CONFIG_DIR"] = str(srv.cfg_dir)
    r = subprocess.run([sys.executable, "-m", "server.daemon", "--port", "0"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "already running" in r.stderr
    assert read_connection_file(srv.conn_path).server_id == srv.info.server_id


def test_curve_allows_known_clients_and_ignores_others(tmp_path):
    import zmq.auth

    keys = tmp_path / "keys"
    (keys / "clients").mkdir(parents=True)
    zmq.auth.create_certificates(str(keys), "server")
    alice_dir = tmp_path / "alice"
    alice_dir.mkdir()
    zmq.auth.create_certificates(str(alice_dir), "alice")
    os.replace(alice_dir / "alice.key", keys / "clients" / "alice.key")  # the server knows her public key
    alice = zmq.auth.load_certificate(str(alice_dir / "alice.key_secret"))
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1", "--curve-keys", str(keys))
    try:
        assert s.info.curve_server_key
        with s.client(curve_keypair=alice) as c:
            assert c.info["server_id"] == s.info.server_id
        with pytest.raises(ServerUnavailable):  # an unknown key hears nothing at all
            s.client(timeout=0.5, retries=0)
    finally:
        s.kill()


def test_autostart_spawns_a_detached_server(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    monkeypatch.setenv("REAMASTER_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("REAMASTER_SERVE_CMD", f"{sys.executable} -m server.daemon --port 0 --workers 1")
    pid = None
    try:
        with Client.connect(autostart=True) as c:
            pid = read_connection_file(cfg / "server.json").pid
            assert c.info["pid"] == pid and pid_alive(pid)
            c.shutdown()
        end = time.monotonic() + 15
        while (cfg / "server.json").exists():
            assert time.monotonic() < end
            time.sleep(0.05)
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)



# --- album, revise, master_stems -------------------------------------------------------------------

def r128_lufs(path: Path) -> float:
    """Integrated loudness of a file measured with libebur128 (pyebur128), independent of our meter."""
    import pyebur128

    data, sr = sf.read(path, dtype="float64", always_2d=True)
    state = pyebur128.R128State(data.shape[1], sr, pyebur128.MeasurementMode.MODE_I)
    state.add_frames(np.ascontiguousarray(data).ravel(), data.shape[0])
    return pyebur128.get_loudness_global(state)


@pytest.mark.timeout(90)
def test_album_by_path_masters_every_track_and_returns_the_album_report(srv, tmp_path):
    proj = tmp_path / "proj"
    loud = mix_file(proj, "single.wav", seconds=3.0, amp=0.15)
    quiet = mix_file(proj, "ballad.wav", seconds=3.0, amp=0.03)
    out = proj / "album"
    out.mkdir()
    outside = tmp_path / "outside"
    stray = mix_file(outside, "stray.wav")
    with srv.client(project_dir=str(proj)) as c:
        for paths, folder in (([loud, stray], out), ([loud, quiet], outside)):
            with pytest.raises(ServerError) as e:
                c.album_paths(paths, folder)
            assert e.value.code == P.PATH_NOT_ALLOWED
        job = c.album_paths([loud, quiet], out, preset="streaming", wait=False)
        seen = set()
        while not job.done:
            ev = job.poll()
            if isinstance(ev, Progress):
                seen.add(ev.stage)
            time.sleep(0.005)
        content = job.wait()
        with pytest.raises(ServerError) as e:  # the tracks now exist: never written over
            c.album_paths([loud, quiet], out)
        assert e.value.code == "output_exists"
    assert any(s.startswith("track ") for s in seen), seen  # the album's own progress stages came through
    doc = content.content["album"]
    assert doc["format"] == "reamaster.album" and [t["name"] for t in doc["tracks"]] == ["single", "ballad"]
    assert json.loads((out / "album.json").read_text()) == doc
    files = [out / "single.wav", out / "ballad.wav"]
    assert content.content["outputs"] == [str(f) for f in files]
    measured = [r128_lufs(f) for f in files]
    assert abs(measured[0] - -14.0) <= 0.2  # the loudest track at the target
    assert measured[1] < measured[0] - 1.0  # the ballad keeps its place under it
    assert abs(doc["tracks"][1]["after"]["integrated_lufs"] - measured[1]) <= 0.2
    assert sorted(p.name for p in out.iterdir()) == ["album.json", "ballad.wav", "single.wav"]


@pytest.mark.timeout(90)
def test_cancel_stops_an_album_job_and_writes_nothing(srv, long_mix, tmp_path):
    proj = tmp_path / "proj"
    short = mix_file(proj, "short.wav", seconds=30.0)
    out = proj / "album"
    out.mkdir()
    with srv.client(project_dir=[str(proj), str(long_mix.parent)]) as c:
        job = c.album_paths([long_mix, short], out, wait=False)
        end = time.monotonic() + 60
        # cancel inside master_album (its per-track stages), where the DSP checks the flag
        while not (isinstance(job.poll(), Progress) and job.progress.stage.startswith("track 1/2")):
            assert not job.done, job.outcome
            assert time.monotonic() < end
            time.sleep(0.01)
        assert c.status(job.msg_id)["job"]["state"] == "running"
        job.cancel()
        with pytest.raises(ServerError) as e:
            job.wait(timeout=10)
        assert e.value.code == P.CANCELLED
        assert c.status(job.msg_id)["job"]["state"] == "done"
        assert list(out.iterdir()) == []
        wait_ready(c, 2)  # the worker stopped (or was replaced) and serves again


@pytest.mark.timeout(90)
def test_revise_adds_a_version_to_the_session_and_moves_the_loudness(srv, tmp_path):
    from server.cli.main import main as cli_main

    proj = tmp_path / "proj"
    src = mix_file(proj / "in", seconds=3.0, amp=0.1)
    master = proj / "master.wav"
    assert cli_main(["master", str(src), "-o", str(master), "--no-progress"]) == 0
    session = proj / "master.session"
    v1 = json.loads((session / "session.json").read_text())["versions"][0]
    with srv.client(project_dir=str(proj)) as c:
        with pytest.raises(ServerError) as e:  # an output outside the project
            c.revise_session(session, "louder", output=tmp_path / "v2.wav")
        assert e.value.code == P.PATH_NOT_ALLOWED
        got = c.revise_session(session, "much louder, brighter")
        again = c.revise_session(session, render=1, output=proj / "again.wav")
    with srv.client() as c:  # the session is outside the allowed folders without the project
        with pytest.raises(ServerError) as e:
            c.revise_session(session, "louder")
        assert e.value.code == P.PATH_NOT_ALLOWED
    doc = json.loads((session / "session.json").read_text())
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    v2 = doc["versions"][1]
    assert got["version"] == 2 and got["parent"] == 1 and v2["words"] == "much louder, brighter"
    assert v2["changes"] == got["changes"] and any("loudness" in ch for ch in got["changes"])
    assert (session / "chain-v2.json").is_file()
    out2 = Path(got["output"])
    assert out2 == proj / "master.v2.wav" and out2.is_file()
    assert (session / v2["output"]).resolve() == out2.resolve()  # stored relative to the session folder
    # "much louder" is +2 LU: the new master moved by that much, measured independently
    assert abs(r128_lufs(out2) - r128_lufs(master) - 2.0) <= 0.3
    assert abs(v2["target_lufs"] - (v1["target_lufs"] + 2.0)) < 1e-9
    # render=1 re-renders the first version as it was
    assert again["rendered_version"] == 1 and abs(r128_lufs(proj / "again.wav") - r128_lufs(master)) <= 0.05
    assert len(json.loads((session / "session.json").read_text())["versions"]) == 2


def make_stems(seconds: float, sr: int = SR) -> dict[str, np.ndarray]:
    """Seeded drums (noise bursts), bass (a low tone) and vocals (a wobbling mid tone), float32 stereo."""
    rng = np.random.default_rng(11)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    env = np.exp(-((t % 0.5) * 18.0))
    drums = rng.standard_normal((2, n)) * 0.2 * env
    bass = np.repeat((0.15 * np.sin(2 * np.pi * 55.0 * t))[None, :], 2, axis=0)
    vox = 0.08 * np.sin(2 * np.pi * (440.0 + 20.0 * np.sin(2 * np.pi * 5.0 * t)) * t)
    vocals = np.stack([vox, 0.9 * vox]) + rng.standard_normal((2, n)) * 0.005
    return {k: v.astype(np.float32) for k, v in (("drums", drums), ("bass", bass), ("vocals", vocals))}


@pytest.mark.timeout(90)
def test_master_stems_by_value_returns_stems_that_sum_to_the_bus(srv):
    from dsp.decide.presets import delivery
    from dsp.decide.stems import master_stems

    stems = make_stems(2.0)
    with srv.client() as c:
        res = c.master_stems_audio({n: (x.tobytes(), *x.shape) for n, x in stems.items()}, SR, preset="streaming")
        assert c.status()["uploads"] == 0  # stems that did not fit the message were uploaded, then freed
    assert set(res.audios) == {"drums", "bass", "vocals", "master"}
    got = {n: np.frombuffer(s.data, dtype="<f4").reshape(s.channels, s.frames) for n, s in res.audios.items()}
    local = master_stems(stems, SR, delivery("streaming"))
    total = np.sum([got[n].astype(np.float64) for n in stems], axis=0)
    assert np.max(np.abs(total - local.bus)) <= 1e-6
    assert np.array_equal(got["master"], local.master)
    assert abs(res.content["report"]["after"]["integrated_lufs"] - -14.0) <= 0.2
    assert set(res.content["stems_report"]["stems"]) == set(stems)
    assert not any(st["enabled"] for st in res.content["bus_chain"]["stages"] if st["kind"] != "limiter")


@pytest.mark.timeout(90)
def test_master_stems_by_path_writes_the_stems_master_and_report(srv, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    named = {}
    for n, x in make_stems(2.0).items():
        named[n] = proj / f"{n}_in.wav"
        sf.write(named[n], x.T, SR, subtype="FLOAT")
    out = proj / "stems_out"
    with srv.client(project_dir=str(proj)) as c:
        with pytest.raises(ServerError) as e:
            c.master_stems_paths(named, tmp_path / "elsewhere")
        assert e.value.code == P.PATH_NOT_ALLOWED
        with pytest.raises(ServerError) as e:
            c.master_stems_paths({**named, "vocals": str(tmp_path / "x.wav")}, out)
        assert e.value.code == P.PATH_NOT_ALLOWED
        got = c.master_stems_paths(named, out, preset="club")
    assert sorted(p.name for p in out.iterdir()) == ["bass.wav", "drums.wav", "master.wav", "stems.json",
                                                     "vocals.wav"]
    doc = json.loads((out / "stems.json").read_text())
    assert doc == got["stems_report"] and doc["sum_check"]["max_abs_difference"] <= 1e-6
    assert got["outputs"] == {n: str(out / f"{n}.wav") for n in named}
    assert abs(r128_lufs(out / "master.wav") - -8.0) <= 0.2


def test_a_preview_job_masters_only_the_loudest_stretch(srv, tmp_path):
    """master with choices.preview_s: the stretch by path into an output file, its place in the
    report; by value it is refused in one reply."""
    proj = tmp_path / "proj"
    x = noise_mix(20 * SR, SR, amp=0.05)
    x[:, 12 * SR:18 * SR] *= 3.0  # the loudest six seconds
    proj.mkdir()
    sf.write(proj / "song.wav", x.T, SR, subtype="PCM_24")
    with srv.client(project_dir=str(proj)) as c:
        res = c.call("master", {"path": str(proj / "song.wav"), "output": str(proj / "prev.wav"),
                                "choices": {"preview_s": 6.0}})
        with pytest.raises(ServerError) as e:
            c._with_audio("master", {"choices": {"preview_s": 6.0}},
                          np.ascontiguousarray(x[:, : 5 * SR], dtype="<f4"), 2, 5 * SR, SR)
    assert e.value.code == "bad_parameter", str(e.value)
    window = res.content["report"]["preview"]
    assert 11.8 <= window["start_s"] and window["end_s"] <= 18.2 and window["offset_from_song_lu"] > 0
    assert sf.info(proj / "prev.wav").frames == pytest.approx(6 * SR, abs=0.11 * SR)
