"""The server's worker processes: one job at a time, with the DSP library.

* :func:`execute` runs one job (analyze, suggest, master, album, revise, master_stems); it is a
  plain function so tests and the benchmark can call it in-process.
* the album report comes from :func:`server.service.mastering.album_document`, shared with ``reamaster album``.
* :func:`worker_main` is the body of a worker process (started with the ``spawn`` method): a
  DEALER socket on the server's private backend, signed with a per-run key, one job at a time,
  a shared cancel flag checked in the DSP progress callback, and exit when the server is gone.

The server loop never imports this module (it stays free of numpy); it names
:func:`server.daemon.jobs.worker_entry`, which loads it in the spawned process.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import zmq

from dsp.decide.album import master_album
from dsp.decide.master import MasterResult
from dsp.decide.presets import Delivery, delivery
from dsp.decide.revise import revise_chain
from dsp.decide.stems import master_stems, read_stems
from dsp.errors import CancelledError, ParameterError, ReaMasterError, SampleRateError
from dsp.io.audio_io import (
    AudioSource,
    atomic_write_text,
    check_audio,
    output_format_for,
    read_audio,
    write_audio,
)
from dsp.measure.analysis import analyze, analyze_source
from dsp.process.chain import Chain, processor_spec

from ..service import session as sess
from ..service.mastering import (
    album_document,
    decide_and_master,
    master_file,
    output_format,
    preview_document,
    preview_file,
    render_and_write,
    suggest_chain,
)
from ..service.report import build_report
from ..service.stems import STEM_FORMATS, bus_report, output_paths, write_stems
from ..wire import protocol as P
from ..wire.connection import pid_alive
from .jobs import PARENT_CHECK_S, PROGRESS_INTERVAL_S, JobError, check_path, remove_partial_outputs

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

#: niceness added to worker processes: they yield the cores to the server loop's replies and to
#: what the user is doing meanwhile (REAPER playing back); a background master only takes idle time.
#: hello p99 while two clients upload and a master runs: 7 runs at +5 median 8.3 ms (one 12.3),
#: 11 runs at +10 median 7.1 ms (10 of them under 10)
WORKER_NICE = 10


# --- one job --------------------------------------------------------------------------------------

ProgressFn = Callable[[str, float], bool | None]  # (stage, fraction 0..1); False cancels


def native_fx(chain_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage of a chain: the REAPER FX it maps onto (empty list when there is none)."""

    out = []
    for i, st in enumerate(chain_dict.get("stages", [])):
        fx = processor_spec(st["kind"]).native_fx
        out.append({"stage": i, "kind": st["kind"], "native_fx": [fx] if fx else []})
    return out


def execute(kind: str, req: dict[str, Any], audio: Any, progress: ProgressFn,
            max_part_bytes: int = 64 << 20) -> tuple[dict[str, Any], list[Any]]:
    """Run one job; returns (reply content, audio parts). Raises dsp.errors or JobError.

    ``req`` is the request content with ``path``/``output`` already resolved by the server;
    ``audio`` holds the float32 planar bytes when the audio came by value or upload.
    ``progress(stage, fraction)`` returning False cancels (CancelledError).
    """

    def checkpoint(stage: str) -> None:
        if progress(stage, 0.0) is False:
            raise CancelledError(f"{kind} was cancelled")

    if kind in ASSISTANT_KINDS:
        return ASSISTANT_KINDS[kind](req, audio, progress, max_part_bytes)
    src = req.get("path")
    if kind == "master" and (req.get("choices") or {}).get("preview_s") is not None:
        return _execute_preview(req, audio)
    if audio is None and _streams(kind, req):
        return _execute_streaming(kind, req, progress)
    if audio is not None:
        ch, n = req["audio"]["shape"]
        sr = int(req["audio"]["sample_rate"])
        x = np.frombuffer(audio, dtype="<f4").reshape(ch, n)
        what = "the audio"
    else:
        checkpoint("reading")
        x, sr = read_audio(cast(str, src))  # the server resolved a path when no audio came
        what = cast(str, src)
    check_audio(x, sr, what=what)
    if kind == "analyze":
        checkpoint("analysing")
        return {"analysis": analyze(x, sr).to_dict(series=bool(req.get("series")))}, []

    d = delivery(req.get("preset"), target_lufs=req.get("lufs"), ceiling_dbtp=req.get("ceiling"))
    deliv = {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp, "note": d.note}
    if kind == "suggest":
        checkpoint("analysing")
        a = analyze(x, sr, resonances=True)
        chain_doc = suggest_chain(a, d, req.get("choices")).to_dict()
        return {"chain": chain_doc, "native_fx": native_fx(chain_doc), "analysis": a.to_dict(), "delivery": deliv}, []

    if kind != "master":  # pragma: no cover - the server only dispatches job types
        raise JobError(P.UNKNOWN_TYPE, f"unknown job kind {kind!r}")

    out_path = req.get("output")
    bits = req.get("bits")
    fmt = output_format(out_path, bits, d) if out_path else None  # the in-process command's rule
    chain = Chain.from_dict(req["chain"]) if req.get("chain") else None
    checkpoint("analysing")

    result = decide_and_master(x, sr, d, chain=chain, choices=req.get("choices") or None, progress=progress)
    if out_path:
        checkpoint("writing")
        written = write_audio(out_path, result.audio, sr, fmt=cast(str, fmt), force=False, protect=[src] if src else [])
        return {"report": build_report(src or "<audio>", out_path, d, result, written), "output": out_path}, []

    out = np.ascontiguousarray(result.audio, dtype="<f4")
    parts = P.split_parts(out.data, max_part_bytes)
    doc = build_report(src or "<audio>", "<audio>", d, result, _ByValue())
    return {"report": doc, "audio": P.audio_descriptor(out.shape[0], out.shape[1], sr, len(parts))}, parts


def _streams(kind: str, req: dict[str, Any]) -> bool:
    """Jobs on a file that run block by block (memory independent of length): analyze, suggest,
    and master to an output file without references or codec checks."""
    choices = req.get("choices") or {}
    return kind in ("analyze", "suggest") or (
        kind == "master" and bool(req.get("output")) and not choices.get("references")
        and not choices.get("codec_safe"))


def _execute_preview(req: dict[str, Any], audio: Any) -> tuple[dict[str, Any], list[Any]]:
    """``master`` with ``choices.preview_s``: the loudest stretch, as ``reamaster master --preview``."""
    if audio is not None or not req.get("path") or not req.get("output"):
        raise JobError("bad_parameter", "a preview masters a file by path into an output file")
    choices = dict(req.get("choices") or {})
    seconds = choices.pop("preview_s")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise JobError("bad_parameter", f"preview_s must be a number of seconds, got {seconds!r}")
    src, out_path = req["path"], req["output"]
    d = _delivery(req)
    fmt = output_format(out_path, req.get("bits"), d)
    given = Chain.from_dict(req["chain"]) if req.get("chain") else None
    result, written, window = preview_file(src, out_path, d, seconds=float(seconds), fmt=fmt, force=False,
                                           chain=given, choices=choices)
    report = build_report(src, out_path, d, result, written)
    report["preview"] = preview_document(window)
    return {"report": report, "output": out_path}, []


def _execute_streaming(kind: str, req: dict[str, Any], progress: ProgressFn) -> tuple[dict[str, Any], list[Any]]:
    src = req["path"]
    source = AudioSource(src)  # reading and measuring are one pass: its stage is "analysing"
    # analysis reports no progress inside and is stopped by replacing the worker, as before streaming
    _checkpoint(progress, "analysing")
    if kind == "analyze":
        a = analyze_source(source)
        return {"analysis": a.to_dict(series=bool(req.get("series")))}, []
    d = delivery(req.get("preset"), target_lufs=req.get("lufs"), ceiling_dbtp=req.get("ceiling"))
    if kind == "suggest":
        deliv = {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp, "note": d.note}
        a = analyze_source(source, resonances=True)
        chain = suggest_chain(a, d, req.get("choices")).to_dict()
        return {"chain": chain, "native_fx": native_fx(chain), "analysis": a.to_dict(), "delivery": deliv}, []

    out_path, bits = req["output"], req.get("bits")
    fmt = output_format(out_path, bits, d)
    given = Chain.from_dict(req["chain"]) if req.get("chain") else None
    result, written = master_file(src, out_path, d, fmt=fmt, force=False, progress=progress, chain=given,
                                  choices=req.get("choices") or None)
    return {"report": build_report(src, out_path, d, result, written), "output": out_path}, []


# --- album, revise, stems -------------------------------------------------------------------------

def _checkpoint(progress: ProgressFn, stage: str, fraction: float = 0.0) -> None:
    if progress(stage, fraction) is False:
        raise CancelledError(f"cancelled while {stage}")


def _delivery(req: dict[str, Any]) -> Delivery:
    return delivery(req.get("preset"), target_lufs=req.get("lufs"), ceiling_dbtp=req.get("ceiling"))




def _album(req: dict[str, Any], audio: Any, progress: ProgressFn, max_part_bytes: int) -> tuple[dict[str, Any], list[memoryview]]:
    d = _delivery(req)
    paths, outputs = req["paths"], req["outputs"]
    fmt = output_format_for(outputs[0], req.get("bits") or d.bit_depth)
    tracks = []
    for i, p in enumerate(paths):
        _checkpoint(progress, "reading", i / len(paths))
        x, sr = read_audio(p)
        check_audio(x, sr, what=p)
        tracks.append((Path(p).stem, x, sr))
    _checkpoint(progress, "analysing")
    result = master_album(tracks, d, style=req.get("style") or "auto", progress=progress)
    del tracks
    _checkpoint(progress, "writing")
    written = [write_audio(dst, t.result.audio, t.result.after.sample_rate, fmt=fmt, force=False, protect=paths)
               for t, dst in zip(result.tracks, outputs, strict=True)]

    doc = album_document(d, result, paths, outputs, written)
    atomic_write_text(req["album_json"], json.dumps(doc, indent=2, allow_nan=False) + "\n", force=False,
                      protect=paths)
    return {"album": doc, "outputs": outputs, "album_json": req["album_json"]}, []


def _render_to_file(src: str, dst: str, d: Delivery, fmt: str, progress: ProgressFn, *, chain: Chain | None = None,
                    planned: Chain | None = None) -> tuple[MasterResult, dict[str, Any]]:

    return render_and_write(src, dst, d, fmt=fmt, force=False, progress=progress, chain=chain, planned=planned)


def _revise(req: dict[str, Any], audio: Any, progress: ProgressFn, max_part_bytes: int) -> tuple[dict[str, Any], list[memoryview]]:
    folder, roots = req["session"], req["allowed_roots"]
    words, render = req.get("words"), req.get("render")
    if (words is None) == (render is None):
        raise ParameterError("say what to change in words, or render N to render a version again (not both)")
    doc = sess.load(folder)
    # the session names its input and first output; both must lie inside the allowed folders too
    src = check_path(doc["input"], roots)
    dlv = doc["delivery"]
    fmt = dlv.get("bit_format", "wav24")
    first_out = Path(doc["versions"][0]["output"])
    def chain_of(entry: dict[str, Any]) -> Any:
        # session.json names its chain files; they must be plain files inside the session folder
        name = entry.get("chain")
        if not isinstance(name, str) or not name or os.path.basename(name) != name or name in (".", ".."):
            raise JobError("bad_chain", f"the session names a chain file {str(name)[:80]!r} outside its folder")
        real = os.path.realpath(os.path.join(folder, name))
        if os.path.dirname(real) != os.path.realpath(folder):
            raise JobError(P.PATH_NOT_ALLOWED, f"the chain file {name} of the session points outside it")
        return sess.load_chain(folder, entry)

    if render is not None:
        entry = sess.version(doc, render)
        dst = req.get("output") or str(first_out.with_name(
            f"{first_out.stem}.v{entry['version']}.render{first_out.suffix}"))
        dst = check_path(dst, roots, output=True)
        d = delivery(dlv["preset"], target_lufs=entry["target_lufs"], ceiling_dbtp=dlv["ceiling_dbtp"])
        _, report = _render_to_file(src, dst, d, fmt, progress, chain=chain_of(entry))
        return {"report": report, "output": dst, "session": folder, "rendered_version": entry["version"]}, []
    base = sess.version(doc, req.get("from_version"))
    revision = revise_chain(chain_of(base), cast(str, words))  # words, since render is None
    n = max(v["version"] for v in doc["versions"]) + 1
    dst = req.get("output") or str(first_out.with_name(f"{first_out.stem}.v{n}{first_out.suffix}"))
    dst = check_path(dst, roots, output=True)
    target = base["target_lufs"] + revision.loudness_change_lu
    d = delivery(dlv["preset"], target_lufs=target, ceiling_dbtp=dlv["ceiling_dbtp"])
    result, report = _render_to_file(src, dst, d, fmt, progress, planned=revision.chain)
    n = sess.add_version(folder, doc, chain_json=result.chain.to_json(), output=dst, words=cast(str, words),
                         changes=list(revision.changes), after=report["after"], target_lufs=target,
                         parent=base["version"])
    return {"report": report, "output": dst, "session": folder, "version": n, "parent": base["version"],
            "words": words, "changes": list(revision.changes), "target_lufs": round(target, 2),
            "loudness_change_lu": revision.loudness_change_lu}, []


class _ByValue:  # what build_report needs from a WriteResult when nothing is written
    fmt = "f32"
    dithered = False
    clipped_samples = 0


def _master_stems(req: dict[str, Any], audio: Any, progress: ProgressFn,
                  max_part_bytes: int) -> tuple[dict[str, Any], list[memoryview]]:
    d = _delivery(req)
    t0 = time.perf_counter()
    if req.get("stems") is not None:  # by path
        named = dict(req["stems"])
        stem_bits = req.get("stem_bits") or 32
        if stem_bits not in STEM_FORMATS:
            raise ParameterError(f"stem_bits {stem_bits!r} is not supported; choose 32 (float) or 24")
        folder = Path(req["output"])
        paths = output_paths(folder, list(named), report=False)
        bits = req.get("bits")
        master_fmt = output_format_for(paths["master"], bits if bits else (16 if d.bit_depth == 16 else None))
        _checkpoint(progress, "reading")
        stems, sr = read_stems(named)
        result = master_stems(stems, sr, d, progress=progress)
        del stems
        _checkpoint(progress, "writing")
        doc, report, written, master_written = write_stems(
            named, paths, d, result, stem_fmt=STEM_FORMATS[stem_bits], master_fmt=master_fmt, force=False,
            elapsed_s=time.perf_counter() - t0)
        return {"stems_report": doc, "report": report, "outputs": {n: w.path for n, w in written.items()},
                "master": master_written.path, "stems_json": str(paths["stems.json"])}, []
    # by value: audio is [(name, descriptor, bytes)] in the order of req["audios"]
    rates = {desc["sample_rate"] for _, desc, _ in audio}
    if len(rates) != 1:
        raise SampleRateError(f"the stems come at different sample rates ({', '.join(map(str, sorted(rates)))} Hz); "
                              "send every stem at the same rate")
    sr = rates.pop()
    stems = {name: np.frombuffer(buf, dtype="<f4").reshape(desc["shape"]) for name, desc, buf in audio}
    result = master_stems(stems, sr, d, progress=progress)
    del stems
    parts: list[memoryview] = []
    entries = []
    for name, x in [*result.stems.items(), ("master", result.master)]:  # "master" is never a stem name
        x = np.ascontiguousarray(x, dtype="<f4")
        p = P.split_parts(x.data, max_part_bytes)
        parts.extend(p)
        entries.append({"name": name, **P.audio_descriptor(x.shape[0], x.shape[1], sr, len(p))})
    report = bus_report("<audio>", "<audio>", d, result, _ByValue())
    return {"audios": entries, "stems_report": result.stem_report, "bus_chain": result.bus_chain.to_dict(),
            "report": report, "master": "master"}, parts


ASSISTANT_KINDS: dict[str, Callable[..., tuple[dict[str, Any], list[Any]]]] = {
    "album": _album, "revise": _revise, "master_stems": _master_stems}


# --- the worker process ---------------------------------------------------------------------------

def warm_up() -> None:
    """Pay the numpy/numba import and JIT-cache cost before the first real job."""

    t = np.arange(24000) / 48000.0
    x = (0.25 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :].repeat(2, axis=0)
    analyze(x, 48000)
    # the streaming path's kernels too (measuring, model, limiter, writer), on a second of audio

    with tempfile.TemporaryDirectory(prefix="reamaster-warm-") as tmp:
        src = os.path.join(tmp, "warm.wav")
        noise = np.random.default_rng(0).standard_normal((2, 48000)).astype(np.float32) * 0.05
        write_audio(src, np.concatenate((x, x), axis=1) + noise, 48000, fmt="wav24")
        master_file(src, os.path.join(tmp, "out.wav"), delivery("streaming"), fmt="wav24", force=False)


def _parent_alive(parent_pid: int) -> bool:
    if os.name == "posix":
        return os.getppid() == parent_pid

    return pid_alive(parent_pid)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the server dies (even by kill -9), so no job of a
    dead server goes on to commit a file its client was never told about. Elsewhere the worker
    checks its parent at every progress step and right before writing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl
        pass


def worker_main(endpoint: str, key_hex: str, identity: bytes, cancel_event: Event, parent_pid: int,
                max_part_bytes: int, nonce: str = "", curve_server_key: str | None = None) -> None:
    """Serve jobs from the server's backend until told to stop or the server is gone.

    ``identity`` and ``nonce`` are new for each spawn and come from the server through the spawn
    arguments; ``w_ready`` echoes the nonce, signed with the per-run worker key."""
    _die_with_parent()
    if hasattr(os, "nice"):  # the server loop (hello, uploads, progress) before the DSP when the cores are busy
        os.nice(WORKER_NICE)
    if not _parent_alive(parent_pid):
        return

    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which stops us
    key = bytes.fromhex(key_hex)
    sender = "worker"
    limits = P.Limits(max_frame_bytes=1 << 62, max_frames=4 + 65536, max_content_bytes=1 << 30,
                      max_audio_seconds=math.inf)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.routing_id = identity
    sock.linger = 1000
    if curve_server_key:  # pragma: no cover - Windows: the backend is tcp with CURVE
        pub, sec = zmq.curve_keypair()
        sock.curve_publickey, sock.curve_secretkey = pub, sec
        sock.curve_serverkey = curve_server_key.encode("ascii")
    sock.connect(endpoint)

    def send(msg_type: str, content: dict[str, Any], buffers: Sequence[Any] = ()) -> None:
        sock.send_multipart(P.encode(msg_type, content, key=key, sender=sender, buffers=buffers), copy=False)

    try:
        warm_up()
        send("w_ready", {"pid": os.getpid(), "nonce": nonce})
        last_parent_check = time.monotonic()
        while True:
            if not sock.poll(500):
                if not _parent_alive(parent_pid):
                    return
                continue
            frames = sock.recv_multipart(copy=False)
            try:
                msg = P.decode(frames, key, kinds=P.WORKER, limits=limits, check_finite=False)
            except P.ProtocolError:
                continue  # not from our server
            if msg.type == "w_stop":
                return
            if msg.type != "w_job":
                continue
            job_id = msg.content["job_id"]
            req = msg.content["request"]
            last_sent = [0.0]

            def progress(stage: str, fraction: float, job_id: str = job_id,
                         last_sent: list[float] = last_sent) -> bool:
                nonlocal last_parent_check
                if cancel_event.is_set():
                    return False
                now = time.monotonic()
                if now - last_parent_check > PARENT_CHECK_S or stage == "writing":
                    last_parent_check = now
                    if not _parent_alive(parent_pid):
                        return False
                if now - last_sent[0] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                    last_sent[0] = now
                    send("w_progress", {"job_id": job_id, "stage": stage, "fraction": float(fraction)})
                return True

            remove_partial_outputs(req)  # temp files of an earlier attempt killed mid-write
            audio = msg.buffers[0] if msg.audio is not None and len(msg.buffers) == 1 else (
                b"".join(msg.buffers) if msg.audio is not None else None)
            if msg.audios:  # several named signals (master_stems by value)
                audio = [(name, a.to_dict(), parts[0] if len(parts) == 1 else b"".join(parts))
                         for name, a, parts in msg.audio_set()]
            try:
                content, parts = execute(msg.content["kind"], req, audio, progress, max_part_bytes)
                reply = {"job_id": job_id, "status": "ok", "content": content}
                if parts:
                    for k in ("audio", "audios"):
                        if k in content:
                            reply[k] = content[k]
                send("w_result", reply, parts)
            except CancelledError as exc:
                send("w_result", {"job_id": job_id, "status": "error",
                                  "content": P.error_content(P.CANCELLED, str(exc))})
            except (ReaMasterError, JobError) as exc:
                send("w_result", {"job_id": job_id, "status": "error",
                                  "content": P.error_content(exc.code, str(exc))})
            except MemoryError:
                send("w_result", {"job_id": job_id, "status": "error",
                                  "content": P.error_content(P.TOO_LARGE, "not enough memory for this job")})
            except Exception as exc:  # one bad job must not take the worker down
                send("w_result", {"job_id": job_id, "status": "error",
                                  "content": P.error_content(P.INTERNAL, f"{type(exc).__name__}: {exc}")})
            del audio, msg, frames
    finally:
        sock.close(linger=1000)
        ctx.term()
