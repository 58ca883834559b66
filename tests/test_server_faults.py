"""The companion server against another local user, its own restarts, kill -9 at each stage and
every request it refuses (issue 12). Real server processes, real ZeroMQ sockets, real files; a
second OS user (created with useradd when we are root) plays the attacker."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zmq

from server.wire import protocol as P
from server.wire.client import Client, Progress, ServerError, ServerUnavailable
from server.wire import connection as C
from server.wire.connection import ConnectionInfo, write_connection_file
from tests.test_server import REPO, SR, ServerProc, mix_file, noise_mix, recv, reply_code

ATTACKER = "rmattack"
SITE = next(p for p in sys.path if p.endswith("site-packages"))


def wait_settled(s: "ServerProc") -> None:
    """Until the server has imported what its path checks need (its memory then stays put)."""
    with s.client() as c:
        end = time.monotonic() + 90
        while not c.status().get("preloaded"):
            assert time.monotonic() < end, "the server never finished its start"
            time.sleep(0.1)


def wait_ready(c: Client, n: int, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while c.status()["workers"]["ready"] < n:
        assert time.monotonic() < end, "workers did not come up"
        time.sleep(0.05)


def wait_stage(job, stages: tuple[str, ...] | None = None, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while True:
        ev = job.poll()
        assert not job.done, job.outcome
        if isinstance(ev, Progress) and (stages is None or ev.stage in stages):
            return
        assert time.monotonic() < end, f"the job never reached {stages}"
        time.sleep(0.005)


def long_file(folder: Path, seconds: float = 90.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "long.wav"
    rng = np.random.default_rng(7)
    block = rng.standard_normal((2, SR * 5)).astype(np.float32) * 0.1
    x = np.tile(block, (1, int(seconds // 5)))
    sf.write(p, x.T, SR, subtype="PCM_16")
    return p


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def free_port() -> int:
    with zmq.Context() as z, z.socket(zmq.ROUTER) as r:
        port = r.bind_to_random_port("tcp://127.0.0.1")
        r.close(linger=0)
    return port


def raw_dealer(z: zmq.Context, info: ConnectionInfo) -> zmq.Socket:
    s = z.socket(zmq.DEALER)
    s.linger = 0
    if info.curve_server_key:
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
        s.curve_serverkey = info.curve_server_key.encode("ascii")
    s.connect(info.endpoint)
    return s


# --- a second local user ---------------------------------------------------------------------------

def attacker_uid() -> int | None:
    """The uid of a second, unprivileged user (made with useradd when we are root), else None."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    try:
        return pwd.getpwnam(ATTACKER).pw_uid
    except KeyError:
        pass
    if not shutil.which("useradd"):
        return None
    r = subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", ATTACKER], capture_output=True)
    if r.returncode not in (0, 9):  # 9: made meanwhile by a parallel test
        return None
    try:
        return pwd.getpwnam(ATTACKER).pw_uid
    except KeyError:
        return None


@functools.cache
def attacker_site() -> str:
    """A copy of this environment's pyzmq that the second user can read: the checkout (and its
    .venv) may sit in a folder only we may enter, as a clone into ``mktemp -d`` does."""
    d = Path(tempfile.mkdtemp(prefix="rmf-site-", dir="/tmp"))
    atexit.register(shutil.rmtree, d, True)
    for name in ("zmq", "pyzmq.libs"):
        if (Path(SITE) / name).is_dir():
            shutil.copytree(Path(SITE) / name, d / name)
    for p in [d, *d.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644 | (p.stat().st_mode & 0o111))
    return str(d)


def as_attacker(script: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """Run ``script`` as the second user with the system Python and a read-only pyzmq."""
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    env = {"PYTHONPATH": attacker_site(), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(["setpriv", f"--reuid={ATTACKER}", f"--regid={ATTACKER}", "--clear-groups", py, "-c",
                           textwrap.dedent(script)], capture_output=True, text=True, timeout=timeout_s, env=env,
                          cwd="/tmp")


@pytest.fixture
def shared_base():
    """A folder every user may enter (like a home folder with 0755), outside pytest's 0700 tree, so
    that only the server's own permissions stand between the attacker and its files."""
    d = Path(tempfile.mkdtemp(prefix="rmf-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_FLOOD = """
    import sys, time, zmq
    endpoint = sys.argv[1] if len(sys.argv) > 1 else {endpoint!r}
    z = zmq.Context()
    s = z.socket(zmq.DEALER)
    s.linger = 0
    s.sndtimeo = 20000
    s.connect(endpoint)
    frame = b"\\x00" * (1 << 20)
    sent = 0
    try:
        s.send_multipart([b"RMP1", b"x" * 64, b"{{}}", b"{{}}"] + [frame] * {frames})  # 4 + n frames of 1 MiB
        sent = 1
    except zmq.Again:
        pass
    got = s.poll(3000)
    print("sent", sent, "reply", bool(got))
"""


# --- 1. transport authentication -----------------------------------------------------------------

def test_ipc_endpoints_are_private_and_another_user_cannot_connect_or_read_the_key(shared_base):
    cfg = shared_base / "cfg"
    cfg.mkdir(mode=0o777)
    os.chmod(cfg, 0o777)  # a config folder left world-writable: the server tightens it
    s = ServerProc(cfg, shared_base / "tmp", "--transport", "ipc", "--workers", "1")
    try:
        assert s.info.endpoint.startswith("ipc://")
        sock = Path(s.info.endpoint[len("ipc://"):])
        assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        with s.client() as c:
            assert c.status()["transport"] == "ipc"
            backs = [p for p in sock.parent.iterdir() if p.name.startswith("w-")]
            assert len(backs) == 1, "the worker backend is an ipc socket in the same private folder"
            assert tcp_listening(s.proc.pid) == [], "the server listens on no TCP port at all"
        if attacker_uid() is None:
            pytest.skip("no second OS user: not root, or useradd/setpriv missing")
        r = as_attacker(f"""
            import socket
            for path in {[str(sock), str(backs[0])]!r}:
                u = socket.socket(socket.AF_UNIX)
                try:
                    u.connect(path)
                    print("connected", path)
                except OSError as e:
                    print("refused", e.errno)
            try:
                open({str(s.conn_path)!r}).read()
                print("read the key")
            except OSError as e:
                print("no key", e.errno)
        """)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:3] == ["refused 13", "refused 13", "no key 13"], r.stdout
        # and a zmq peer of that user never gets a message in: the server's memory does not move
        wait_settled(s)
        before = s.peak_rss_kib()
        r = as_attacker(_FLOOD.format(endpoint=s.info.endpoint, frames=96))
        assert "reply False" in r.stdout, (r.stdout, r.stderr)
        assert s.peak_rss_kib() - before < 64 * 1024
        with s.client() as c:
            assert c.status()["workers"]["total"] == 1
    finally:
        s.kill()


def tcp_listening(pid: int) -> list[int]:
    """TCP ports in LISTEN state held by process ``pid`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            t = os.readlink(fd)
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and f[9] in inodes:
                    ports.append(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_tcp_peer_without_the_key_cannot_deliver_a_byte_or_raise_memory(tmp_path):
    """No root needed: the server's tcp endpoint is CURVE; a peer that has not read the 0600
    connection file (no server key) fails the handshake before libzmq accepts any message."""
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1",
               "--max-frame-bytes", str(1 << 20))
    try:
        assert s.info.curve_server_key and s.info.endpoint.startswith("tcp://127.0.0.1:")
        assert tcp_listening(s.proc.pid) == [int(s.info.endpoint.rsplit(":", 1)[1])], "no backend port"
        wait_settled(s)
        before = s.peak_rss_kib()
        for _ in range(2):  # two senders, 100 MiB each, in plain ZMTP (NULL) as anyone could
            r = subprocess.run([sys.executable, "-c", textwrap.dedent(_FLOOD.format(endpoint=s.info.endpoint,
                                                                                   frames=100))],
                               capture_output=True, text=True, timeout=60)
            assert "reply False" in r.stdout, (r.stdout, r.stderr)
        # a CURVE peer with a guessed server key is no better off
        with zmq.Context() as z:
            d = z.socket(zmq.DEALER)
            d.linger = 0
            d.curve_publickey, d.curve_secretkey = zmq.curve_keypair()
            d.curve_serverkey = zmq.curve_keypair()[0]
            d.connect(s.info.endpoint)
            d.send_multipart(P.encode("hello", {}, key=s.info.key_bytes, sender="guess"))
            assert not d.poll(1500)
            d.close(linger=0)
        grew_kib = s.peak_rss_kib() - before
        assert grew_kib < 64 * 1024, f"the server grew by {grew_kib} KiB"
        with s.client() as c:
            assert c.status()["transport"] == "tcp+curve"
    finally:
        s.kill()


# --- 2. worker slots -------------------------------------------------------------------------------

def test_a_worker_that_never_becomes_ready_is_replaced_and_the_job_runs(tmp_path):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1",
               "--worker-ready-timeout", "6")
    try:
        end = time.monotonic() + 10
        while not s.children():
            assert time.monotonic() < end, "no worker was spawned"
            time.sleep(0.01)
        stuck = s.children()[0]
        os.kill(stuck, signal.SIGSTOP)  # before its warm-up ends: it holds the slot but never says ready
        src = mix_file(tmp_path / "p", seconds=1.0)
        with s.client(timeout=2.0) as c:
            assert c.status()["workers"]["ready"] == 0
            job = c.submit("analyze", {"path": str(src), "project_dir": str(src.parent)})
            res = job.wait(120)
            assert res.content["analysis"]["duration_s"] == pytest.approx(1.0)
            st = c.status()["workers"]
            assert st["ready"] == 1 and st["crashed"] >= 1
        assert stuck not in s.children()
    finally:
        s.kill()


def test_a_forged_ready_message_cannot_take_a_worker_slot(tmp_path):
    """A peer connecting to the backend with a worker-like identity (the old ids were w0.0, w0.1,
    ...) cannot get in: the backend is an ipc socket in the 0700 folder, identities are random and
    w_ready must carry the spawn's nonce, signed with the worker key."""
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--transport", "ipc", "--workers", "1")
    try:
        with s.client() as c:
            wait_ready(c, 1)
            run = Path(s.info.endpoint[len("ipc://"):]).parent
            back = next(p for p in run.iterdir() if p.name.startswith("w-"))
            with zmq.Context() as z:  # root can reach the socket; it still lacks the key and nonce
                for ident in (b"w0.0", b"w0.1"):
                    d = z.socket(zmq.DEALER)
                    d.routing_id, d.linger = ident, 0
                    d.connect(f"ipc://{back}")
                    d.send_multipart(P.encode("w_ready", {"pid": 1, "nonce": "0" * 32}, key=b"k" * 32,
                                              sender="w"))
                    d.close(linger=0)
            time.sleep(0.5)
            src = mix_file(tmp_path / "p", seconds=1.0)
            assert c.call("analyze", {"path": str(src), "project_dir": str(src.parent)}).content["analysis"]
            assert c.status()["workers"]["ready"] == 1
    finally:
        s.kill()


# --- 3. restarts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["ipc-same-endpoint", "tcp-same-port", "tcp-new-port"])
def test_a_waiting_client_survives_a_server_restart_and_gets_its_result(tmp_path, how):
    cfg, tmp = tmp_path / "cfg", tmp_path / "tmp"
    proj = tmp_path / "proj"
    src = long_file(proj, 40.0)
    out = proj / "master.wav"
    port = str(free_port())
    args = {"ipc-same-endpoint": ["--transport", "ipc"], "tcp-same-port": ["--port", port],
            "tcp-new-port": ["--port", "0"]}[how]
    first = ServerProc(cfg, tmp, *args, "--workers", "1")
    second = None
    try:
        # the project folder is declared once, in hello; the restarted server must hear it again
        c = first.client(timeout=1.5, retries=4, project_dir=str(proj))
        wait_ready(c, 1)
        job = c.submit("master", {"path": str(src), "output": str(out)})
        wait_stage(job)
        first.kill()  # kill -9 of the server and its workers mid-job
        time.sleep(0.3)
        second = ServerProc(cfg, tmp, *args, "--workers", "1")
        assert second.info.key != first.info.key
        if how != "tcp-new-port":
            assert second.info.endpoint == first.info.endpoint
        res = job.wait(120)
        assert res.content["output"] == str(out)
        assert c.server_id == second.info.server_id
        assert sf.info(str(out)).frames == sf.info(str(src)).frames
        assert temp_files(proj) == []
        c.close()
    finally:
        first.kill()
        if second is not None:
            second.kill()


# --- 4. every request gets one final reply -------------------------------------------------------

def test_refused_uploads_and_unencodable_paths_are_answered(tmp_path):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1")
    try:
        key = s.info.key_bytes
        cases = [
            ("upload_begin", {"dtype": "<f4", "shape": [2, 1000], "sample_rate": 1000}, P.BAD_AUDIO),
            ("upload_begin", {"dtype": "<f4", "shape": [9, 1000], "sample_rate": 48000}, P.BAD_AUDIO),
            ("upload_begin", {"dtype": "<f4", "shape": [2, 48000 * 60 * 31], "sample_rate": 48000}, P.TOO_LARGE),
            ("master", {"path": "/tmp/\ud800.wav"}, P.PATH_NOT_ALLOWED),
            ("hello", {"project_dir": "/tmp/\udfff"}, P.PATH_NOT_ALLOWED),
            ("master", {"path": str(tmp_path / "x.wav"), "choices": {"style": "rock\ud800"}}, P.PATH_NOT_ALLOWED),
        ]
        with zmq.Context() as z:
            d = raw_dealer(z, s.info)
            for i, (t, content, code) in enumerate(cases):
                d.send_multipart(P.encode(t, content, key=key, sender="probe", msg_id=f"r{i}"))
                m = P.decode(recv(d, 5), key, kinds=P.REPLIES, check_finite=False)
                assert (m.ref, m.type, m.content["code"]) == (f"r{i}", "error", code), m.content
            d.close(linger=0)
    finally:
        s.kill()


def test_the_client_fails_a_request_the_server_never_received(tmp_path):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1",
               "--max-frame-bytes", str(1 << 16))
    try:
        with s.client() as c:
            n = (1 << 16) // 8 + 1000  # one frame over the limit: libzmq drops it and says nothing
            x = noise_mix(n, SR)
            job = c.submit("analyze", {"audio": P.audio_descriptor(2, n, SR)}, [x.tobytes()])
            with pytest.raises(ServerError) as e:
                job.wait(30)
            assert e.value.code == P.INTERNAL and "never received" in str(e.value)
            assert c.status()["server_id"] == s.info.server_id
    finally:
        s.kill()


# --- 5. liveness --------------------------------------------------------------------------------

def test_a_stale_connection_file_naming_a_live_pid_does_not_lock_the_user_out(tmp_path):
    cfg = tmp_path / "cfg"
    stale = ConnectionInfo(endpoint="tcp://127.0.0.1:1", key="ab" * 32, server_id="0" * 32, pid=os.getpid())
    write_connection_file(stale, cfg / "server.json")  # its pid is alive (ours), as after pid reuse
    assert not C.server_running(cfg / "server.json")
    with pytest.raises(ServerUnavailable) as e:
        Client.connect(cfg / "server.json", timeout=0.5)
    assert "stale" in str(e.value)
    s = ServerProc(cfg, tmp_path / "tmp", "--port", "0", "--workers", "1")
    try:
        assert C.server_running(s.conn_path)
        with s.client() as c:
            assert c.info["server_id"] == s.info.server_id
        again = subprocess.run([sys.executable, "-m", "server.daemon", "--port", "0"], cwd=REPO,
                               env=dict(os.environ, REAMASTER_CONFIG_DIR=str(cfg)), capture_output=True,
                               text=True, timeout=30)
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        s.kill()
    assert not C.server_running(cfg / "server.json"), "kill -9 releases the lock"


# --- 6. the upload cap ---------------------------------------------------------------------------

def test_freed_upload_bytes_count_until_the_job_holding_them_ends(tmp_path):
    proj = tmp_path / "proj"
    src = long_file(proj, 40.0)
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1",
               "--max-upload-bytes", str(3 << 20))
    try:
        with s.client(project_dir=str(proj)) as c:
            wait_ready(c, 1)
            blocker = c.submit("master", {"path": str(src), "output": str(proj / "b.wav")})
            wait_stage(blocker)
            n = (2 << 20) // 8  # 2 MiB of stereo float32
            x = noise_mix(n, SR)
            uid = c.upload(x.tobytes(), 2, n, SR)
            queued = c.submit("analyze", {"upload_id": uid})
            assert c.status(queued.msg_id)["job"]["state"] == "queued"
            c.call("upload_free", {"upload_id": uid})
            assert c.status()["upload_bytes"] == 2 << 20, "the queued job still holds the bytes"
            with pytest.raises(ServerError) as e:
                c.upload(x.tobytes(), 2, n, SR)
            assert e.value.code == P.BUSY
            with pytest.raises(ServerError) as e:  # more than the cap could ever hold
                c.upload(np.zeros((2, 4 << 20 >> 3), "<f4").tobytes(), 2, 4 << 20 >> 3, SR)
            assert e.value.code == P.TOO_LARGE
            blocker.cancel()
            assert queued.wait(60).content["analysis"]["duration_s"] == pytest.approx(n / SR, rel=1e-3)
            assert c.status()["upload_bytes"] == 0
            uid2 = c.upload(x.tobytes(), 2, n, SR)  # room again
            c.call("upload_free", {"upload_id": uid2})
    finally:
        s.kill()


def test_a_resent_chunk_with_other_bytes_is_refused(tmp_path):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1")
    try:
        with s.client() as c:
            n = SR
            x = noise_mix(n, SR)
            uid = c.upload(x.tobytes(), 2, n, SR)
            same = c.call("upload_chunk", {"upload_id": uid, "offset": 0}, [x.tobytes()])  # a plain retry
            assert same.content["complete"]
            with pytest.raises(ServerError) as e:
                c.call("upload_chunk", {"upload_id": uid, "offset": 0}, [bytes(x.nbytes)])
            assert e.value.code == P.BAD_AUDIO and "other bytes" in str(e.value)
            res = c.call("analyze", {"upload_id": uid}).content["analysis"]
            from dsp.measure.analysis import analyze
            assert res["integrated_lufs"] == pytest.approx(analyze(x, SR).integrated_lufs, abs=0.01)
    finally:
        s.kill()


# --- 7. smaller items ------------------------------------------------------------------------------

def test_style_paths_are_checked_even_when_relative(tmp_path):
    proj = tmp_path / "proj"
    src = mix_file(proj, seconds=1.0)
    src2 = mix_file(proj, "b.wav", seconds=1.0)
    album = proj / "album"
    album.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.json").write_text("{}")
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1")
    try:
        with s.client(project_dir=str(proj)) as c:
            for style in ("evil.json", "../outside/evil.json", str(outside / "evil.json")):
                with pytest.raises(ServerError) as e:
                    c.call("master", {"path": str(src), "output": str(proj / "m.wav"), "choices": {"style": style}})
                assert e.value.code == P.PATH_NOT_ALLOWED, style
                with pytest.raises(ServerError) as e:
                    c.call("album", {"paths": [str(src), str(src2)], "output": str(album), "style": style})
                assert e.value.code == P.PATH_NOT_ALLOWED, style
    finally:
        s.kill()


def test_the_client_refuses_a_connection_file_others_could_have_written(tmp_path):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1")
    try:
        with s.client() as c:
            assert c.info["server_id"] == s.info.server_id
        os.chmod(s.cfg_dir, 0o777)
        with pytest.raises(ServerUnavailable) as e:
            Client.connect(s.conn_path, timeout=0.5)
        assert "writable by other users" in str(e.value)
        os.chmod(s.cfg_dir, 0o700)
        os.chmod(s.conn_path, 0o644)
        with pytest.raises(ServerUnavailable):
            Client.connect(s.conn_path, timeout=0.5)
        os.chmod(s.conn_path, 0o600)
        uid = attacker_uid()
        if uid is not None:
            os.chown(s.conn_path, uid, -1)
            with pytest.raises(ServerUnavailable) as e:
                Client.connect(s.conn_path, timeout=0.5)
            assert "another user" in str(e.value)
            os.chown(s.conn_path, 0, -1)
        with s.client() as c:
            assert c.info["server_id"] == s.info.server_id
    finally:
        s.kill()


def test_curve_secret_key_file_is_made_private(tmp_path):
    import zmq.auth

    keys = tmp_path / "keys"
    (keys / "clients").mkdir(parents=True)
    zmq.auth.create_certificates(str(keys), "server")
    assert stat.S_IMODE(os.stat(keys / "server.key_secret").st_mode) & 0o044  # pyzmq writes it 0644
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--workers", "1", "--curve-keys", str(keys))
    try:
        assert stat.S_IMODE(os.stat(keys / "server.key_secret").st_mode) == 0o600
    finally:
        s.kill()


def test_strict_version_and_ids_through_the_socket(tmp_path):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1")
    try:
        key = s.info.key_bytes

        def send(header_patch: dict) -> str:
            frames = P.encode("hello", {}, key=key, sender="v")
            header = json.loads(frames[2])
            header.update(header_patch)
            body = [json.dumps(header).encode(), frames[3]]
            d.send_multipart([P.MARKER, P.sign(key, body), *body])
            return reply_code(recv(d, 5), key)

        with zmq.Context() as z:
            d = raw_dealer(z, s.info)
            assert send({}) == "ok"
            assert send({"version": True}) == P.UNSUPPORTED_VERSION
            assert send({"version": 1.0}) == P.UNSUPPORTED_VERSION
            assert send({"msg_id": "abc\n"}) == P.BAD_MESSAGE
            assert send({"sender": "v\n"}) == P.BAD_MESSAGE
            d.close(linger=0)
    finally:
        s.kill()


# --- fault injection: kill -9 of a worker at each stage, clients that vanish -----------------------

def test_kill_9_of_a_worker_while_queued_running_and_writing(tmp_path):
    proj = tmp_path / "proj"
    src = long_file(proj, 40.0)
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1")
    try:
        with s.client(project_dir=str(proj)) as c:
            wait_ready(c, 1)
            running = c.submit("master", {"path": str(src), "output": str(proj / "run.wav")})
            queued = c.submit("master", {"path": str(src), "output": str(proj / "queued.wav")})
            wait_stage(running)
            assert c.status(queued.msg_id)["job"]["state"] == "queued"
            # a temp file as a worker leaves it when killed mid-write (dsp.io.audio_io's naming)
            (proj / ".run.wav.deadbeef.tmp").write_bytes(b"RIFF")
            os.kill(s.children()[0], signal.SIGKILL)
            with pytest.raises(ServerError) as e:
                running.wait(30)
            assert e.value.code == P.INTERNAL and "try again" in str(e.value)
            # the queued job runs on the replacement, exactly once
            assert queued.wait(120).content["output"] == str(proj / "queued.wav")
            st = c.status()
            assert st["workers"]["crashed"] == 1 and st["workers"]["ready"] == 1 and st["jobs"] == []
            assert temp_files(proj) == []
            assert not (proj / "run.wav").exists()
            # writing: kill the worker as it reaches the writing stage
            w = c.submit("master", {"path": str(src), "output": str(proj / "w.wav")})
            wait_stage(w, ("writing",), timeout_s=120)
            os.kill(s.children()[0], signal.SIGKILL)
            try:
                w.wait(30)
                assert (proj / "w.wav").exists()  # it had committed before the kill: told ok
            except ServerError as exc:
                assert exc.code == P.INTERNAL
                assert not (proj / "w.wav").exists(), "told failed, yet the file was committed"
            assert temp_files(proj) == []
    finally:
        s.kill()


@pytest.mark.parametrize("stage", ["running", "writing"])
def test_kill_9_of_the_server_with_jobs_queued_and_running_loses_none_and_runs_none_twice(tmp_path, stage):
    """The server dies with one job queued and one running (analysing, or writing its file): the
    restarted server runs both once, and the half-written file of the first is gone."""
    cfg, tmp = tmp_path / "cfg", tmp_path / "tmp"
    proj = tmp_path / "proj"
    src = long_file(proj, 30.0 if stage == "running" else 90.0)
    first = ServerProc(cfg, tmp, "--transport", "ipc", "--workers", "1")
    second = None
    try:
        c = first.client(timeout=1.5, retries=4, project_dir=str(proj))
        wait_ready(c, 1)
        jobs = [c.submit("master", {"path": str(src), "output": str(proj / f"m{i}.wav")}) for i in range(2)]
        wait_stage(jobs[0], ("writing",) if stage == "writing" else None, timeout_s=120)
        if stage == "writing":  # the worker's temp file is there: the kill lands mid-write
            end = time.monotonic() + 30
            while not temp_files(proj):
                assert time.monotonic() < end, "no temp file while writing"
                time.sleep(0.01)
        workers = first.children()
        assert len(workers) == 1
        first.kill()
        time.sleep(0.5)
        for pid in workers:  # the workers died with the server (PR_SET_PDEATHSIG): nothing commits late
            st = Path(f"/proc/{pid}/stat")
            assert not st.exists() or st.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        second = ServerProc(cfg, tmp, "--transport", "ipc", "--workers", "1")
        for i, j in enumerate(jobs):
            assert j.wait(180).content["output"] == str(proj / f"m{i}.wav")
        assert sorted(p.name for p in proj.iterdir()) == ["long.wav", "m0.wav", "m1.wav"]
        st = c.status()
        assert st["jobs"] == [] and st["workers"]["crashed"] == 0
        c.close()
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_a_client_that_vanishes_mid_upload_leaves_nothing_behind(tmp_path):
    s = ServerProc(tmp_path / "cfg", tmp_path / "tmp", "--port", "0", "--workers", "1", "--client-timeout", "1")
    try:
        script = textwrap.dedent(f"""
            from server.wire.client import Client
            c = Client.connect({str(s.conn_path)!r})
            b = c.call("upload_begin", {{"dtype": "<f4", "shape": [2, 1 << 21], "sample_rate": 48000}}).content
            c.call("upload_chunk", {{"upload_id": b["upload_id"], "offset": 0}}, [bytes(b["chunk_bytes"])])
            print("half", flush=True)
            import os; os._exit(0)  # gone without a word
        """)
        r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert "half" in r.stdout, r.stderr
        with s.client() as c:
            end = time.monotonic() + 30
            while c.status()["uploads"]:
                assert time.monotonic() < end, "the unfinished upload was never freed"
                time.sleep(0.1)
            assert c.status()["upload_bytes"] == 0
    finally:
        s.kill()
