"""What the server's worker processes do, and which paths a request may touch.

* :func:`check_path` / :func:`project_roots`: a local client may name files instead of sending
  audio, but only inside the allowed roots (the project folder(s) it declares plus the system
  temp folder), after resolving symlinks; ``..`` is refused outright.
* :func:`execute` runs one job (analyze, suggest, master) with the DSP library; it is a plain
  function so tests and the benchmark can call it in-process.
* :func:`worker_main` is the body of a worker process (started with the ``spawn`` method): a
  DEALER socket on the server's private backend, signed with a per-run key, one job at a time,
  a shared cancel flag checked in the DSP progress callback, and exit when the server is gone.
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import protocol as P

PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress events a second per job
PARENT_CHECK_S = 1.0


class JobError(Exception):
    """A job refused for a reason with a stable code (protocol or dsp.errors code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code


# --- paths ----------------------------------------------------------------------------------------

def _is_within(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


def project_roots(project_dirs: Any) -> list[str]:
    """Validated, resolved project folders a client declared (str or list of str)."""
    if project_dirs is None:
        return []
    items = [project_dirs] if isinstance(project_dirs, str) else project_dirs
    if not isinstance(items, list) or len(items) > 16 or not all(isinstance(p, str) for p in items):
        raise JobError(P.BAD_MESSAGE, "project_dir must be a folder path or a list of at most 16 of them")
    roots = []
    for p in items:
        if not p or "\x00" in p or not os.path.isabs(p):
            raise JobError(P.PATH_NOT_ALLOWED, f"project folder {p!r} must be an absolute path")
        real = os.path.realpath(p)
        if not os.path.isdir(real):
            raise JobError(P.PATH_NOT_ALLOWED, f"project folder {p} does not exist")
        if os.path.dirname(real) == real:
            raise JobError(P.PATH_NOT_ALLOWED, f"{p} is the root of a file system; declare the project folder")
        roots.append(real)
    return roots


def allowed_roots(project_dirs: Iterable[str]) -> list[str]:
    return [*project_dirs, os.path.realpath(tempfile.gettempdir())]


def check_path(path: Any, roots: list[str], *, output: bool = False, audio: bool = True) -> str:
    """The resolved path if it lies inside one of ``roots``; JobError(path_not_allowed) if not.

    For outputs the folder is resolved and the file must not exist yet (results never
    replace a file). For inputs the extension must be a readable audio format.
    """
    if not isinstance(path, str) or not path or "\x00" in path:
        raise JobError(P.PATH_NOT_ALLOWED, "a path must be a non-empty string")
    if not os.path.isabs(path):
        raise JobError(P.PATH_NOT_ALLOWED, f"{path} is relative; send an absolute path")
    if ".." in Path(path).parts:
        raise JobError(P.PATH_NOT_ALLOWED, f"{path} contains '..'; send the plain path")
    if output:
        if os.path.islink(path):
            raise JobError(P.PATH_NOT_ALLOWED, f"{path} is a symbolic link; results are not written through links")
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    else:
        real = os.path.realpath(path)
    if not any(_is_within(real, r) for r in roots):
        shown = ", ".join(roots)
        raise JobError(P.PATH_NOT_ALLOWED, f"{path} is outside the allowed folders ({shown}); "
                                           "declare its folder as project_dir")
    if output:
        if not os.path.isdir(os.path.dirname(real)):
            raise JobError("bad_output", f"cannot write {path}: the folder does not exist")
        if os.path.lexists(real):
            raise JobError("output_exists", f"{path} already exists; the server never replaces a file")
    else:
        from dsp.audio_io import SUPPORTED_READ

        if audio and os.path.splitext(real)[1].lower() not in SUPPORTED_READ:
            raise JobError("unsupported_format", f"{path} is not an audio file the server reads "
                                                 f"({', '.join(SUPPORTED_READ)})")
        if not os.path.isfile(real):
            raise JobError("file_missing", f"file not found: {path}")
    return real


# --- one job --------------------------------------------------------------------------------------

ProgressFn = Callable[[str, float], Any]


def native_fx(chain_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage of a chain: the REAPER FX it maps onto (empty list when there is none)."""
    from dsp.chain import processor_spec

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
    import numpy as np

    from dsp.audio_io import check_audio, output_format_for, read_audio, write_audio
    from dsp.errors import CancelledError

    def checkpoint(stage: str) -> None:
        if progress(stage, 0.0) is False:
            raise CancelledError(f"{kind} was cancelled")

    src = req.get("path")
    if audio is not None:
        ch, n = req["audio"]["shape"]
        sr = int(req["audio"]["sample_rate"])
        x = np.frombuffer(audio, dtype="<f4").reshape(ch, n)
        what = "the audio"
    else:
        checkpoint("reading")
        x, sr = read_audio(src)
        what = src
    check_audio(x, sr, what=what)
    if kind == "analyze":
        from dsp.analysis import analyze

        checkpoint("analysing")
        return {"analysis": analyze(x, sr).to_dict(series=bool(req.get("series")))}, []

    from dsp.presets import delivery

    d = delivery(req.get("preset"), target_lufs=req.get("lufs"), ceiling_dbtp=req.get("ceiling"))
    deliv = {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp, "note": d.note}
    if kind == "suggest":
        from dsp.analysis import analyze
        from dsp.master import plan_chain

        checkpoint("analysing")
        a = analyze(x, sr)
        chain = plan_chain(a, d).to_dict()
        return {"chain": chain, "native_fx": native_fx(chain), "analysis": a.to_dict(), "delivery": deliv}, []

    if kind != "master":  # pragma: no cover - the server only dispatches job types
        raise JobError(P.UNKNOWN_TYPE, f"unknown job kind {kind!r}")
    from dsp.chain import Chain
    from dsp.master import master

    try:
        from .report import build_report
    except ImportError:  # older layout
        from .cli import build_report  # type: ignore[attr-defined,no-redef]

    out_path = req.get("output")
    bits = req.get("bits")
    fmt = None
    if out_path:
        # the same rule as the in-process command, so both write the same file
        fmt = output_format_for(out_path, bits)
        if bits is None and d.bit_depth == 16 and fmt in ("wav24", "flac24"):
            fmt = output_format_for(out_path, 16)
    chain = Chain.from_dict(req["chain"]) if req.get("chain") else None
    checkpoint("analysing")
    try:  # the decision path the in-process command uses (style, references, amounts), when present
        from .cli import decide_and_master
    except ImportError:  # pragma: no cover - older command line
        decide_and_master = None
    if decide_and_master is not None:
        result = decide_and_master(x, sr, d, chain=chain, choices=req.get("choices") or None, progress=progress)
    else:  # pragma: no cover
        result = master(x, sr, d, chain=chain, progress=progress)
    if out_path:
        checkpoint("writing")
        written = write_audio(out_path, result.audio, sr, fmt=fmt, force=False, protect=[src] if src else [])
        return {"report": build_report(src or "<audio>", out_path, d, result, written), "output": out_path}, []

    class _ByValue:  # what build_report needs from a WriteResult when nothing is written
        fmt = "f32"
        dithered = False
        clipped_samples = 0

    out = np.ascontiguousarray(result.audio, dtype="<f4")
    parts = P.split_parts(out.data, max_part_bytes)
    doc = build_report(src or "<audio>", "<audio>", d, result, _ByValue())
    return {"report": doc, "audio": P.audio_descriptor(out.shape[0], out.shape[1], sr, len(parts))}, parts


# --- the worker process ---------------------------------------------------------------------------

def warm_up() -> None:
    """Pay the numpy/numba import and JIT-cache cost before the first real job."""
    import numpy as np

    from dsp.analysis import analyze
    from dsp.master import master  # noqa: F401 - the import is the point
    from dsp.presets import delivery  # noqa: F401

    t = np.arange(24000) / 48000.0
    x = (0.25 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :].repeat(2, axis=0)
    analyze(x, 48000)


def _parent_alive(parent_pid: int) -> bool:
    if os.name == "posix":
        return os.getppid() == parent_pid
    from .connection import pid_alive

    return pid_alive(parent_pid)


def worker_main(endpoint: str, key_hex: str, identity: bytes, cancel_event: Any, parent_pid: int,
                max_part_bytes: int) -> None:
    """Serve jobs from the server's backend until told to stop or the server is gone."""
    import zmq

    from dsp.errors import CancelledError, ReaMasterError

    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which stops us
    key = bytes.fromhex(key_hex)
    sender = identity.decode("ascii")
    limits = P.Limits(max_frame_bytes=1 << 62, max_frames=4 + 4096, max_content_bytes=1 << 30,
                      max_audio_seconds=math.inf)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.routing_id = identity
    sock.linger = 1000
    sock.connect(endpoint)

    def send(msg_type: str, content: dict[str, Any], buffers: list[Any] = ()) -> None:
        sock.send_multipart(P.encode(msg_type, content, key=key, sender=sender, buffers=buffers), copy=False)

    try:
        warm_up()
        send("w_ready", {"pid": os.getpid()})
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
                if now - last_parent_check > PARENT_CHECK_S:
                    last_parent_check = now
                    if not _parent_alive(parent_pid):
                        return False
                if now - last_sent[0] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                    last_sent[0] = now
                    send("w_progress", {"job_id": job_id, "stage": stage, "fraction": float(fraction)})
                return True

            audio = msg.buffers[0] if msg.audio is not None and len(msg.buffers) == 1 else (
                b"".join(bytes(b) for b in msg.buffers) if msg.audio is not None else None)
            try:
                content, parts = execute(msg.content["kind"], req, audio, progress, max_part_bytes)
                reply = {"job_id": job_id, "status": "ok", "content": content}
                if parts:
                    reply["audio"] = content["audio"]
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
