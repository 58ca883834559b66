"""The wire protocol as a pure function (frames -> validated message or ProtocolError), the
connection file, and the path policy. No sockets here; tests/test_server.py has those."""

from __future__ import annotations

import json
import os
import stat
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.daemon import jobs as J
from server.daemon.worker import execute
from server.wire import connection as C
from server.wire import protocol as P

KEY = bytes.fromhex("11" * 32)
LIMITS = P.Limits(max_frame_bytes=1 << 20, max_audio_seconds=60.0, chunk_bytes=1 << 16)


def audio_bytes(channels: int = 2, frames: int = 1000, seed: int = 0) -> bytes:
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (channels, frames)).astype("<f4")
    return x.tobytes()


def msg(msg_type: str = "analyze", content: dict | None = None, buffers=(), key: bytes = KEY, **kw) -> list:
    return P.encode(msg_type, content if content is not None else {}, key=key, sender="client1", buffers=buffers,
                    **kw)


def code_of(frames, **kw) -> str:
    with pytest.raises(P.ProtocolError) as e:
        P.decode(frames, KEY, limits=LIMITS, **kw)
    return e.value.code


def resign(frames: list, key: bytes = KEY) -> list:
    body = [bytes(f) for f in frames[2:]]
    return [frames[0], P.sign(key, body), *body]


# --- round trips -------------------------------------------------------------------------------------

def test_round_trip_with_audio_in_parts():
    data = audio_bytes(2, 1000)
    parts = P.split_parts(data, 3000)
    assert len(parts) == 3 and b"".join(parts) == data
    frames = msg("master", {"audio": P.audio_descriptor(2, 1000, 48000, len(parts)), "preset": "club"}, parts)
    m = P.decode(frames, KEY, limits=LIMITS)
    assert (m.type, m.sender, m.version, m.content["preset"]) == ("master", "client1", 1, "club")
    assert m.audio == P.Audio(2, 1000, 48000, 3)
    assert m.audio_bytes() == data


def test_reply_types_and_ref():
    frames = P.encode("progress", {"stage": "limiting", "fraction": 0.5, "eta_s": None}, key=KEY, sender="srv",
                      ref="abc123")
    m = P.decode(frames, KEY, kinds=P.REPLIES)
    assert m.ref == "abc123" and m.content["fraction"] == 0.5
    # a request type is not a reply and vice versa
    assert code_of(frames) == P.UNKNOWN_TYPE


# --- the validation order ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 3, 9])
def test_frame_count(n):
    frames = (msg("hello") + [b"x"] * 8)[:n]
    assert code_of(frames) == P.BAD_FRAME_COUNT


def test_marker_checked_before_signature():
    frames = msg("hello")
    assert code_of([b"RMP2", *frames[1:]]) == P.BAD_MARKER
    assert code_of([b"", *frames[1:]]) == P.BAD_MARKER


def test_signature_covers_every_frame_and_its_boundaries():
    data = audio_bytes(1, 500)
    frames = msg("analyze", {"audio": P.audio_descriptor(1, 500, 44100)}, [data])
    P.decode(frames, KEY, limits=LIMITS)
    assert code_of(msg("hello", key=bytes(32))) == P.BAD_SIGNATURE  # another key
    for i in range(2, len(frames)):  # one flipped bit anywhere after the signature, audio included
        bad = [bytes(f) for f in frames]
        b = bytearray(bad[i])
        b[len(b) // 2] ^= 1
        bad[i] = bytes(b)
        assert code_of(bad) == P.BAD_SIGNATURE
    # moving a byte from one frame to the next keeps the concatenation but not the signature
    h, c = bytes(frames[2]), bytes(frames[3])
    assert code_of([frames[0], frames[1], h[:-1], h[-1:] + c, *frames[4:]]) == P.BAD_SIGNATURE
    assert code_of([frames[0], frames[1].upper(), *frames[2:]]) == P.BAD_SIGNATURE


def test_signature_is_checked_before_anything_is_parsed():
    frames = [P.MARKER, b"0" * 64, b"{not json", b"[]"]
    assert code_of(frames) == P.BAD_SIGNATURE


@pytest.mark.parametrize("header, content, code", [
    (b"\xff\xfe", b"{}", P.BAD_JSON),
    (b"[1, 2]", b"{}", P.BAD_JSON),
    (b'{"msg_id": NaN}', b"{}", P.BAD_JSON),
    (b"[" * 5000 + b"]" * 5000, b"{}", P.TOO_LARGE),
    (json.dumps({"msg_id": "a", "type": "hello", "version": 1, "sender": "c", "time": "t"}).encode(), b"{",
     P.BAD_JSON),
    (json.dumps({"msg_id": "a", "type": "hello", "version": 1, "sender": "c", "time": "t"}).encode(),
     b" " * (LIMITS.max_content_bytes + 1), P.TOO_LARGE),
    (json.dumps({"msg_id": "a b", "type": "hello", "version": 1, "sender": "c", "time": "t"}).encode(), b"{}",
     P.BAD_MESSAGE),
    (json.dumps({"msg_id": "a", "type": "hello", "version": 2, "sender": "c", "time": "t"}).encode(), b"{}",
     P.UNSUPPORTED_VERSION),
    (json.dumps({"msg_id": "a", "type": "format_disk", "version": 1, "sender": "c", "time": "t"}).encode(), b"{}",
     P.UNKNOWN_TYPE),
    (json.dumps({"msg_id": "a", "type": 5, "version": 1, "sender": "c", "time": "t"}).encode(), b"{}",
     P.BAD_MESSAGE),
])
def test_json_and_header(header, content, code):
    assert code_of(resign([P.MARKER, b"", header, content])) == code


@pytest.mark.parametrize("msg_type, content, code", [
    ("cancel", {}, P.BAD_MESSAGE),  # required key missing
    ("cancel", {"target": 5}, P.BAD_MESSAGE),
    ("master", {"path": "/x.wav", "lufs": "loud"}, P.BAD_MESSAGE),
    ("master", {"path": "/x.wav", "bits": True}, P.BAD_MESSAGE),  # JSON true is not an int
    ("upload_begin", {"dtype": "<f4", "shape": [2, 10]}, P.BAD_MESSAGE),
    ("hello", {"project_dir": 7}, P.BAD_MESSAGE),
])
def test_schema(msg_type, content, code):
    assert code_of(msg(msg_type, content)) == code


def test_unknown_extra_fields_are_allowed():
    m = P.decode(msg("status", {"target": None, "future_field": [1, 2]}), KEY)
    assert m.content["future_field"] == [1, 2]


def bad_audio_cases():
    ok = audio_bytes(2, 100)
    d = P.audio_descriptor
    nan = np.frombuffer(ok, "<f4").copy()
    nan[7] = np.nan
    inf = nan.copy()
    inf[7] = np.inf
    return [
        ({**d(2, 100, 48000), "dtype": "<f8"}, [ok], P.BAD_AUDIO),
        ({**d(2, 100, 48000), "dtype": ">f4"}, [ok], P.BAD_AUDIO),
        ({**d(2, 100, 48000), "shape": [200]}, [ok], P.BAD_AUDIO),
        ({**d(2, 100, 48000), "shape": [2.0, 100]}, [ok], P.BAD_AUDIO),
        (d(2, 101, 48000), [ok], P.BAD_AUDIO),  # nbytes != channels * frames * 4
        (d(2, 100, 48000), [ok + b"\x00\x00"], P.BAD_AUDIO),
        (d(9, 100, 48000), [audio_bytes(9, 100)], P.BAD_AUDIO),
        (d(0, 100, 48000), [b""], P.BAD_AUDIO),
        (d(2, 100, 8000), [ok], P.BAD_AUDIO),
        (d(2, 100, 384000), [ok], P.BAD_AUDIO),
        ({**d(2, 100, 48000), "sample_rate": 48000.0}, [ok], P.BAD_AUDIO),
        (d(2, 100, 48000), [nan.tobytes()], P.BAD_AUDIO),
        (d(2, 100, 48000), [inf.tobytes()], P.BAD_AUDIO),
        (d(2, 100, 48000, 2), [ok], P.BAD_FRAME_COUNT),  # announces two parts, one came
        (d(2, 100, 48000), [ok[:400], ok[400:]], P.BAD_FRAME_COUNT),
        (d(2, 100, 48000, 2), [ok[:401], ok[401:]], P.BAD_AUDIO),  # parts must hold whole samples
        (d(2, 100, 48000, 5), [ok[:160]] * 5, P.BAD_FRAME_COUNT),  # more frames than max_frames
        (d(1, 48000 * 61, 48000), [b"\x00" * 4], P.TOO_LARGE),  # longer than max_audio_seconds
        ("float32", [ok], P.BAD_AUDIO),
    ]


@pytest.mark.parametrize("desc, bufs, code", bad_audio_cases())
def test_audio_descriptors(desc, bufs, code):
    assert code_of(msg("analyze", {"audio": desc}, bufs)) == code


def test_binary_frames_only_where_announced():
    assert code_of(msg("hello", {}, [b"\x00" * 8])) == P.BAD_FRAME_COUNT
    chunk = audio_bytes(1, 16)
    P.decode(msg("upload_chunk", {"upload_id": "u1", "offset": 64}, [chunk]), KEY, limits=LIMITS)
    assert code_of(msg("upload_chunk", {"upload_id": "u1", "offset": 0})) == P.BAD_FRAME_COUNT
    assert code_of(msg("upload_chunk", {"upload_id": "u1", "offset": 2}, [chunk])) == P.BAD_MESSAGE
    assert code_of(msg("upload_chunk", {"upload_id": "u1", "offset": 0}, [b"\x00" * 6])) == P.BAD_AUDIO
    big = b"\x00" * (LIMITS.chunk_bytes + 4)
    assert code_of(msg("upload_chunk", {"upload_id": "u1", "offset": 0}, [big])) == P.TOO_LARGE


def test_finite_check_can_be_skipped_by_trusted_readers():
    nan = np.full((1, 10), np.nan, dtype="<f4").tobytes()
    frames = msg("analyze", {"audio": P.audio_descriptor(1, 10, 44100)}, [nan])
    assert code_of(frames) == P.BAD_AUDIO
    assert P.decode(frames, KEY, limits=LIMITS, check_finite=False).audio is not None


def test_refusal_is_unsigned_and_recognised():
    frames = P.refusal_frames(P.BAD_SIGNATURE, "wrong key")
    assert P.refusal_code(frames) == (P.BAD_SIGNATURE, "wrong key")
    assert P.refusal_code(msg("hello")) is None
    with pytest.raises(P.ProtocolError):
        P.decode(frames, KEY, kinds=P.REPLIES)


# --- fuzzing the decoder -------------------------------------------------------------------------------

frame = st.one_of(st.binary(max_size=64), st.sampled_from([P.MARKER, b"", b"{}", b"[]", b"null"]))


@given(st.lists(frame, max_size=10))
def test_fuzz_raw_frames_never_crash(frames):
    try:
        P.decode(frames, KEY, limits=LIMITS)
    except P.ProtocolError as exc:
        assert exc.code in P.PROTOCOL_CODES


# JSON values nested two deep, built level by level (st.recursive's extend check warns at random
# in recent hypothesis versions, and the suite turns warnings into errors)
json_leaf = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
             | st.text(max_size=12))
json_level1 = (json_leaf | st.lists(json_leaf, max_size=4)
               | st.dictionaries(st.text(max_size=8), json_leaf, max_size=4))
json_value = (json_level1 | st.lists(json_level1, max_size=3)
              | st.dictionaries(st.text(max_size=8), json_level1, max_size=3))
known_keys = st.sampled_from(["audio", "path", "upload_id", "target", "offset", "shape", "dtype", "sample_rate",
                              "lufs", "bits", "chain", "project_dir", "jobs", "parts", "stage", "fraction"])


@given(
    msg_type=st.sampled_from([*P.REQUESTS, "ok", "bogus", ""]),
    header_extra=st.dictionaries(st.sampled_from(["msg_id", "version", "sender", "time", "ref", "type"]),
                                 json_value, max_size=3),
    content=st.dictionaries(known_keys | st.text(max_size=6), json_value, max_size=6),
    buffers=st.lists(st.binary(max_size=48), max_size=5),
)
def test_fuzz_signed_messages_validate_or_refuse(msg_type, header_extra, content, buffers):
    # an attacker holding the key: whatever JSON they sign, the decoder answers cleanly
    header = {"msg_id": "m1", "type": msg_type, "version": 1, "sender": "c1", "time": "t", **header_extra}
    body = [json.dumps(header).encode(), json.dumps(content).encode(), *buffers]
    frames = [P.MARKER, P.sign(KEY, body), *body]
    try:
        m = P.decode(frames, KEY, limits=LIMITS)
    except P.ProtocolError as exc:
        assert exc.code in P.PROTOCOL_CODES
        return
    assert m.type in P.REQUESTS
    if m.audio is not None:
        assert sum(len(b) for b in m.buffers) == m.audio.nbytes
        assert 1 <= m.audio.channels <= 8 and 22050 <= m.audio.sample_rate <= 192000
        assert np.isfinite(np.frombuffer(m.audio_bytes(), "<f4")).all()


# --- connection files --------------------------------------------------------------------------------

def test_config_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("REAMASTER_CONFIG_DIR", str(tmp_path / "cfg"))
    assert C.config_dir() == tmp_path / "cfg"
    monkeypatch.delenv("REAMASTER_CONFIG_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
        assert C.config_dir() == tmp_path / "xdg" / "reamaster"
        monkeypatch.delenv("XDG_CONFIG_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert C.config_dir() == tmp_path / "home" / ".config" / "reamaster"


def test_connection_file_is_private_and_round_trips(tmp_path):
    info = C.ConnectionInfo(endpoint="tcp://127.0.0.1:5555", key=C.new_key(), server_id=P.new_id(), pid=os.getpid())
    path = C.write_connection_file(info, tmp_path / "new" / "server.json")
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert C.read_connection_file(path) == info
    assert C.read_key_file(path) == info.key
    assert not C.remove_connection_file("another-server", path) and path.exists()
    assert C.remove_connection_file(info.server_id, path) and not path.exists()
    with pytest.raises(C.ConnectionFileError):
        C.read_connection_file(path)
    path.write_text(json.dumps({**info.to_dict(), "key": "short"}))
    with pytest.raises(C.ConnectionFileError):
        C.read_connection_file(path)


def test_pid_alive():
    assert C.pid_alive(os.getpid())
    assert not C.pid_alive(0)


# --- path policy -------------------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    proj = tmp_path / "proj"
    outside = tmp_path / "outside"
    proj.mkdir()
    outside.mkdir()
    (proj / "mix.wav").write_bytes(b"RIFF")
    (outside / "secret.wav").write_bytes(b"RIFF")
    (proj / "notes.txt").write_text("hi")
    return proj, outside


def test_paths_inside_the_project_only(tree):
    proj, outside = tree
    roots = J.project_roots(str(proj))  # no temp root: the tmp_path itself lives in the temp folder
    assert J.check_path(str(proj / "mix.wav"), roots) == os.path.realpath(proj / "mix.wav")
    cases = [
        str(outside / "secret.wav"),
        str(proj / ".." / "outside" / "secret.wav"),
        "mix.wav",  # relative
        "",
    ]
    for p in cases:
        with pytest.raises(J.JobError) as e:
            J.check_path(p, roots)
        assert e.value.code == P.PATH_NOT_ALLOWED, p
    with pytest.raises(J.JobError) as e:
        J.check_path(str(proj / "notes.txt"), roots)
    assert e.value.code == "unsupported_format"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinks_are_resolved(tree):
    proj, outside = tree
    roots = J.project_roots(str(proj))
    (proj / "link.wav").symlink_to(outside / "secret.wav")
    (proj / "linkdir").symlink_to(outside, target_is_directory=True)
    for p in (proj / "link.wav", proj / "linkdir" / "secret.wav"):
        with pytest.raises(J.JobError) as e:
            J.check_path(str(p), roots)
        assert e.value.code == P.PATH_NOT_ALLOWED
    with pytest.raises(J.JobError) as e:  # writing through a link that points outside
        J.check_path(str(proj / "linkdir" / "out.wav"), roots, output=True)
    assert e.value.code == P.PATH_NOT_ALLOWED


def test_outputs_never_replace_files(tree):
    proj, _ = tree
    roots = J.project_roots([str(proj)])
    assert J.check_path(str(proj / "master.wav"), roots, output=True).endswith("master.wav")
    with pytest.raises(J.JobError) as e:
        J.check_path(str(proj / "mix.wav"), roots, output=True)
    assert e.value.code == "output_exists"
    with pytest.raises(J.JobError) as e:
        J.check_path(str(proj / "nofolder" / "m.wav"), roots, output=True)
    assert e.value.code == "bad_output"


def test_project_roots_refuse_the_file_system_root(tmp_path):
    for bad in (os.path.abspath(os.sep), "relative/dir", str(tmp_path / "missing"), 5):
        with pytest.raises(J.JobError):
            J.project_roots([bad])


# --- the job function, in-process ----------------------------------------------------------------------

def test_execute_master_by_value_equals_the_library():
    from dsp.decide.presets import delivery
    from server.service.mastering import decide_and_master
    x = (np.random.default_rng(5).standard_normal((2, 88200)) * 0.1).astype(np.float32)
    req = {"audio": P.audio_descriptor(2, x.shape[1], 44100), "preset": "club"}
    seen = []
    content, parts = execute("master", req, x.tobytes(), lambda s, f: seen.append((s, f)) or True,
                               max_part_bytes=100_000)
    assert content["audio"]["parts"] == len(parts) > 1
    expected = decide_and_master(x, 44100, delivery("club")).audio  # no choices: the CLI's defaults
    assert b"".join(bytes(p) for p in parts) == expected.astype("<f4").tobytes()
    assert content["report"]["delivery"]["preset"] == "club"
    assert {s for s, _ in seen} >= {"analysing", "limiting"}


def test_execute_cancels_through_the_progress_callback():
    from dsp.errors import CancelledError
    from tests.conftest import sine

    x = sine(220.0, 44100, 2.0, amp=0.2).astype(np.float32)
    req = {"audio": P.audio_descriptor(2, x.shape[1], 44100)}
    with pytest.raises(CancelledError):
        execute("master", req, x.tobytes(), lambda s, f: s != "limiting")


def test_the_client_library_needs_only_the_standard_library_and_zmq():
    # it runs inside REAPER's embedded Python: no numpy, no dsp
    import subprocess

    code = ("import sys, server.wire.client, server.wire.protocol, server.wire.connection; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'dsp', 'scipy', 'soundfile')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # and with numpy out of reach, as in a REAPER whose Python has none, the protocol still checks audio
    code = ("import sys; sys.modules['numpy'] = None; from server.wire import protocol as P; "
            "import array; ok = array.array('f', [0.5, -1.0]).tobytes(); bad = array.array('f', [float('nan')]).tobytes(); "
            "print(P.all_finite([ok]), P.all_finite([ok, bad]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
