"""What the server's worker processes do, and which paths a request may touch.

* :func:`check_path` / :func:`project_roots`: a local client may name files instead of sending
  audio, but only inside the allowed roots (the project folder(s) it declares plus the system
  temp folder), after resolving symlinks; ``..`` is refused outright.
* :func:`prepare` checks the paths and names of an ``album`` / ``revise`` / ``master_stems``
  request in the server loop (no audio is read there).
* :func:`execute` runs one job (analyze, suggest, master, album, revise, master_stems) with the
  DSP library; it is a plain function so tests and the benchmark can call it in-process.
* the album report comes from :func:`server.service.mastering.album_document`, shared with ``reamaster album``.
* :func:`worker_main` is the body of a worker process (started with the ``spawn`` method): a
  DEALER socket on the server's private backend, signed with a per-run key, one job at a time,
  a shared cancel flag checked in the DSP progress callback, and exit when the server is gone.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..wire import protocol as P

if TYPE_CHECKING:  # dsp is imported where used: the server starts before numpy loads
    from multiprocessing.synchronize import Event

    from dsp.decide.master import MasterResult
    from dsp.decide.presets import Delivery
    from dsp.process.chain import Chain

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
        _check_encodable(p)
        real = os.path.realpath(p)
        if not os.path.isdir(real):
            raise JobError(P.PATH_NOT_ALLOWED, f"project folder {p} does not exist")
        if os.path.dirname(real) == real:
            raise JobError(P.PATH_NOT_ALLOWED, f"{p} is the root of a file system; declare the project folder")
        roots.append(real)
    return roots


def allowed_roots(project_dirs: Iterable[str]) -> list[str]:
    return [*project_dirs, os.path.realpath(tempfile.gettempdir())]


def _check_encodable(path: str) -> None:
    try:
        path.encode("utf-8")  # a lone surrogate (JSON "\\ud800") names no file
    except UnicodeEncodeError:
        raise JobError(P.PATH_NOT_ALLOWED, "a path holds characters that are not valid Unicode") from None


def _check_plain_absolute(path: Any, what: str) -> None:
    if not isinstance(path, str) or not path or "\x00" in path:
        raise JobError(P.PATH_NOT_ALLOWED, f"{what} must be a non-empty string")
    _check_encodable(path)
    if not os.path.isabs(path):
        raise JobError(P.PATH_NOT_ALLOWED, f"{path} is relative; send an absolute path")
    if ".." in Path(path).parts:
        raise JobError(P.PATH_NOT_ALLOWED, f"{path} contains '..'; send the plain path")


def _check_inside(real: str, path: str, roots: list[str]) -> None:
    if not any(_is_within(real, r) for r in roots):
        raise JobError(P.PATH_NOT_ALLOWED, f"{path} is outside the allowed folders ({', '.join(roots)}); "
                                           "declare its folder as project_dir")


def check_path(path: Any, roots: list[str], *, output: bool = False, audio: bool = True) -> str:
    """The resolved path if it lies inside one of ``roots``; JobError(path_not_allowed) if not.

    For outputs the folder is resolved and the file must not exist yet (results never
    replace a file). For inputs the extension must be a readable audio format.
    """
    _check_plain_absolute(path, "a path")
    if output:
        if os.path.islink(path):
            raise JobError(P.PATH_NOT_ALLOWED, f"{path} is a symbolic link; results are not written through links")
        real: str = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    else:
        real = os.path.realpath(path)
    _check_inside(real, path, roots)
    if output:
        if not os.path.isdir(os.path.dirname(real)):
            raise JobError("bad_output", f"cannot write {path}: the folder does not exist")
        if os.path.lexists(real):
            raise JobError("output_exists", f"{path} already exists; the server never replaces a file")
    else:
        from dsp.io.audio_io import SUPPORTED_READ

        if audio and os.path.splitext(real)[1].lower() not in SUPPORTED_READ:
            raise JobError("unsupported_format", f"{path} is not an audio file the server reads "
                                                 f"({', '.join(SUPPORTED_READ)})")
        if not os.path.isfile(real):
            raise JobError("file_missing", f"file not found: {path}")
    return real


def check_style(style: Any, roots: list[str]) -> str:
    """A style choice: ``auto``, a built-in style name, or an absolute path to a profile JSON inside
    the allowed roots. A relative path would be read from the server's working folder, past every
    check, so it is refused."""
    from dsp.decide.profiles import builtin_names

    if not isinstance(style, str) or not style:
        raise JobError("bad_parameter", "style must be auto, a built-in style name or a profile path")
    _check_encodable(style)
    if style == "auto" or style in builtin_names():
        return style
    if not os.path.isabs(style):
        raise JobError(P.PATH_NOT_ALLOWED, f"style {style[:80]!r} is neither a built-in style "
                                           f"({', '.join(sorted(builtin_names()))}) nor an absolute profile path")
    return check_path(style, roots, audio=False)


def output_files(req: dict[str, Any]) -> list[str]:
    """Every file a job request will write (resolved paths), for cleaning up after a killed worker."""
    out: list[str] = []
    for k in ("outputs",):
        out.extend(p for p in req.get(k) or [] if isinstance(p, str))
    for k in ("album_json",):
        if isinstance(req.get(k), str):
            out.append(req[k])
    o = req.get("output")
    if isinstance(o, str):
        if req.get("stems") is not None:  # master_stems by path: a folder
            out.extend(os.path.join(o, n) for n in [*(f"{s}.wav" for s in req["stems"]), "master.wav", "stems.json"])
        elif req.get("paths") is None:  # master / revise: a file (album's output is its folder)
            out.append(o)
    return out


def remove_partial_outputs(req: dict[str, Any]) -> list[str]:
    """Remove the hidden temp files (``.NAME.*.tmp``, see dsp.io.audio_io) a killed worker left
    next to the outputs of ``req``; returns what was removed."""
    import glob

    removed = []
    for path in output_files(req):
        folder, base = os.path.split(path)
        for tmp in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(base)}.*.tmp")):
            try:
                os.unlink(tmp)
                removed.append(tmp)
            except OSError:
                pass
    return removed


def check_folder(path: Any, roots: list[str], *, create: bool = False) -> str:
    """The resolved folder if it lies inside one of ``roots`` and exists (or, with ``create``, its
    parent exists: the job makes it); JobError(path_not_allowed / bad_output) if not."""
    _check_plain_absolute(path, "a folder path")
    real: str = os.path.realpath(path)
    _check_inside(real, path, roots)
    if os.path.isdir(real):
        return real
    if os.path.lexists(real):
        raise JobError("bad_output", f"{path} exists and is not a folder; choose another output folder")
    if not create or not os.path.isdir(os.path.dirname(real)):
        raise JobError("bad_output", f"the folder {path} does not exist; create it first")
    return real


def _outputs(folder: str, names: list[str], roots: list[str]) -> list[str]:
    """``folder/name`` for each name, each checked as a new output (never over an existing file)."""
    return [check_path(os.path.join(folder, n), roots, output=True) for n in names]


def prepare(kind: str, msg: P.Message, roots: list[str],
            upload: Callable[[str], tuple[list[memoryview], dict[str, Any]]]) -> tuple[dict[str, Any], list[Any]]:
    """Check an ``album`` / ``revise`` / ``master_stems`` request in the server loop (cheap: paths
    and names only, no audio is read) and resolve every path; returns (request for the worker,
    binary parts). ``upload(upload_id)`` gives (parts, descriptor) of a complete upload of the
    client or raises JobError. The worker checks again what only it reads (session files)."""
    content = dict(msg.content)
    content.pop("project_dir", None)
    content["allowed_roots"] = roots
    if kind == "album":
        paths = content["paths"]
        if not 2 <= len(paths) <= 64 or not all(isinstance(p, str) for p in paths):
            raise JobError("bad_parameter", "an album needs 2 to 64 track paths")
        content["paths"] = [check_path(p, roots) for p in paths]
        folder = check_folder(content["output"], roots)
        names = [Path(p).stem for p in content["paths"]]
        if len(set(names)) != len(names):
            raise JobError("bad_parameter", "two album tracks have the same file name; rename one")
        content["output"] = folder
        content["outputs"] = _outputs(folder, [f"{n}.wav" for n in names], roots)
        content["album_json"] = _outputs(folder, ["album.json"], roots)[0]
        if content.get("style") is not None:
            content["style"] = check_style(content["style"], roots)
        return content, []
    if kind == "revise":
        content["session"] = check_folder(content["session"], roots)
        if content.get("output") is not None:
            content["output"] = check_path(content["output"], roots, output=True)
        return content, []
    if kind != "master_stems":  # pragma: no cover - the server only prepares these three
        raise JobError(P.UNKNOWN_TYPE, f"unknown job kind {kind!r}")
    by_path = content.get("stems") is not None
    if by_path == bool(content.get("audios") or content.get("uploads")):
        raise JobError(P.BAD_MESSAGE, "master_stems needs either stems (name -> path, with output) or audios "
                                      "and/or uploads (the stems by value)")
    if by_path:
        from dsp.decide.stems import check_stem_name
        from dsp.errors import ReaMasterError

        stems = content["stems"]
        if not 1 <= len(stems) <= P.MAX_AUDIO_SET:
            raise JobError("bad_parameter", f"give 1 to {P.MAX_AUDIO_SET} stems")
        if content.get("output") is None:
            raise JobError(P.BAD_MESSAGE, "master_stems by path needs output (a folder)")
        try:
            for name in stems:
                check_stem_name(name)
        except ReaMasterError as exc:
            raise JobError(exc.code, str(exc)) from None
        if len({n.lower() for n in stems}) != len(stems):
            raise JobError("bad_input", "two stems differ only in case; name them apart")
        content["stems"] = {n: check_path(p, roots) for n, p in stems.items()}
        folder = check_folder(content["output"], roots, create=True)
        content["output"] = folder
        if os.path.isdir(folder):  # a new folder (made by the job) has nothing in it to collide with
            _outputs(folder, [f"{n}.wav" for n in stems] + ["master.wav", "stems.json"], roots)
        return content, []
    if content.get("output") is not None:
        raise JobError(P.BAD_MESSAGE, "master_stems by value sends the results back; leave out output")
    entries = [dict(d) for d in content.get("audios") or []]
    buffers: list[Any] = [b for _, _, parts in msg.audio_set() for b in parts]
    for name, uid in (content.get("uploads") or {}).items():
        if not isinstance(uid, str):
            raise JobError(P.BAD_MESSAGE, "uploads maps stem names to upload ids")
        if any(e["name"] == name for e in entries):
            raise JobError(P.BAD_MESSAGE, f"stem {name[:64]!r} is sent twice")
        parts, desc = upload(uid)
        entries.append({**desc, "name": name, "parts": len(parts)})
        buffers.extend(parts)
    if len(entries) > P.MAX_AUDIO_SET:
        raise JobError("bad_parameter", f"give at most {P.MAX_AUDIO_SET} stems")
    content["audios"] = entries
    content.pop("uploads", None)
    return content, buffers


# --- one job --------------------------------------------------------------------------------------

ProgressFn = Callable[[str, float], bool | None]  # (stage, fraction 0..1); False cancels


def native_fx(chain_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage of a chain: the REAPER FX it maps onto (empty list when there is none)."""
    from dsp.process.chain import processor_spec

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

    from dsp.errors import CancelledError
    from dsp.io.audio_io import check_audio, output_format_for, read_audio, write_audio

    def checkpoint(stage: str) -> None:
        if progress(stage, 0.0) is False:
            raise CancelledError(f"{kind} was cancelled")

    if kind in ASSISTANT_KINDS:
        return ASSISTANT_KINDS[kind](req, audio, progress, max_part_bytes)
    src = req.get("path")
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
        from dsp.measure.analysis import analyze

        checkpoint("analysing")
        return {"analysis": analyze(x, sr).to_dict(series=bool(req.get("series")))}, []

    from dsp.decide.presets import delivery

    d = delivery(req.get("preset"), target_lufs=req.get("lufs"), ceiling_dbtp=req.get("ceiling"))
    deliv = {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp, "note": d.note}
    if kind == "suggest":
        from dsp.decide.master import plan_chain
        from dsp.measure.analysis import analyze

        checkpoint("analysing")
        a = analyze(x, sr)
        chain_doc = plan_chain(a, d).to_dict()
        return {"chain": chain_doc, "native_fx": native_fx(chain_doc), "analysis": a.to_dict(), "delivery": deliv}, []

    if kind != "master":  # pragma: no cover - the server only dispatches job types
        raise JobError(P.UNKNOWN_TYPE, f"unknown job kind {kind!r}")
    from dsp.process.chain import Chain

    from ..service.report import build_report

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
    from ..service.mastering import decide_and_master  # the decision path of the in-process command

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


def _execute_streaming(kind: str, req: dict[str, Any], progress: ProgressFn) -> tuple[dict[str, Any], list[Any]]:
    from dsp.decide.presets import delivery
    from dsp.io.audio_io import AudioSource, output_format_for
    from dsp.measure.analysis import analyze_source

    src = req["path"]
    source = AudioSource(src)  # reading and measuring are one pass: its stage is "analysing"
    # analysis reports no progress inside and is stopped by replacing the worker, as before streaming
    _checkpoint(progress, "analysing")
    if kind == "analyze":
        a = analyze_source(source)
        return {"analysis": a.to_dict(series=bool(req.get("series")))}, []
    d = delivery(req.get("preset"), target_lufs=req.get("lufs"), ceiling_dbtp=req.get("ceiling"))
    if kind == "suggest":
        from dsp.decide.master import plan_chain

        deliv = {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp, "note": d.note}
        a = analyze_source(source)
        chain = plan_chain(a, d).to_dict()
        return {"chain": chain, "native_fx": native_fx(chain), "analysis": a.to_dict(), "delivery": deliv}, []
    from dsp.process.chain import Chain

    from ..service.mastering import master_file
    from ..service.report import build_report

    out_path, bits = req["output"], req.get("bits")
    fmt = output_format_for(out_path, bits)  # the same rule as the in-process command
    if bits is None and d.bit_depth == 16 and fmt in ("wav24", "flac24"):
        fmt = output_format_for(out_path, 16)
    given = Chain.from_dict(req["chain"]) if req.get("chain") else None
    result, written = master_file(src, out_path, d, fmt=fmt, force=False, progress=progress, chain=given,
                                  choices=req.get("choices") or None)
    return {"report": build_report(src, out_path, d, result, written), "output": out_path}, []


# --- album, revise, stems -------------------------------------------------------------------------

def _checkpoint(progress: ProgressFn, stage: str, fraction: float = 0.0) -> None:
    from dsp.errors import CancelledError

    if progress(stage, fraction) is False:
        raise CancelledError(f"cancelled while {stage}")


def _delivery(req: dict[str, Any]) -> Delivery:
    from dsp.decide.presets import delivery

    return delivery(req.get("preset"), target_lufs=req.get("lufs"), ceiling_dbtp=req.get("ceiling"))




def _album(req: dict[str, Any], audio: Any, progress: ProgressFn, max_part_bytes: int) -> tuple[dict[str, Any], list[memoryview]]:
    import json

    from dsp.decide.album import master_album
    from dsp.io.audio_io import atomic_write_text, check_audio, output_format_for, read_audio, write_audio

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
    from ..service.mastering import album_document

    doc = album_document(d, result, paths, outputs, written)
    atomic_write_text(req["album_json"], json.dumps(doc, indent=2, allow_nan=False) + "\n", force=False,
                      protect=paths)
    return {"album": doc, "outputs": outputs, "album_json": req["album_json"]}, []


def _render_to_file(src: str, dst: str, d: Delivery, fmt: str, progress: ProgressFn, *, chain: Chain | None = None,
                    planned: Chain | None = None) -> tuple[MasterResult, dict[str, Any]]:
    from ..service.mastering import render_and_write

    return render_and_write(src, dst, d, fmt=fmt, force=False, progress=progress, chain=chain, planned=planned)


def _revise(req: dict[str, Any], audio: Any, progress: ProgressFn, max_part_bytes: int) -> tuple[dict[str, Any], list[memoryview]]:
    from dsp.decide.presets import delivery
    from dsp.decide.revise import revise_chain
    from dsp.errors import ParameterError

    from ..service import session as sess

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
    import time as _time

    import numpy as np

    from dsp.decide.stems import master_stems, read_stems
    from dsp.errors import ParameterError, SampleRateError
    from dsp.io.audio_io import output_format_for

    from ..service.stems import STEM_FORMATS, bus_report, output_paths, write_stems

    d = _delivery(req)
    t0 = _time.perf_counter()
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
            elapsed_s=_time.perf_counter() - t0)
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
    import numpy as np

    from dsp.decide.master import master  # noqa: F401 - the import is the point
    from dsp.decide.presets import delivery
    from dsp.measure.analysis import analyze

    t = np.arange(24000) / 48000.0
    x = (0.25 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :].repeat(2, axis=0)
    analyze(x, 48000)
    # the streaming path's kernels too (measuring, model, limiter, writer), on a second of audio
    import tempfile

    from dsp.io.audio_io import write_audio

    from ..service.mastering import master_file

    with tempfile.TemporaryDirectory(prefix="reamaster-warm-") as tmp:
        src = os.path.join(tmp, "warm.wav")
        noise = np.random.default_rng(0).standard_normal((2, 48000)).astype(np.float32) * 0.05
        write_audio(src, np.concatenate((x, x), axis=1) + noise, 48000, fmt="wav24")
        master_file(src, os.path.join(tmp, "out.wav"), delivery("streaming"), fmt="wav24", force=False)


def _parent_alive(parent_pid: int) -> bool:
    if os.name == "posix":
        return os.getppid() == parent_pid
    from ..wire.connection import pid_alive

    return pid_alive(parent_pid)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the server dies (even by kill -9), so no job of a
    dead server goes on to commit a file its client was never told about. Elsewhere the worker
    checks its parent at every progress step and right before writing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

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
    if not _parent_alive(parent_pid):
        return
    import zmq

    from dsp.errors import CancelledError, ReaMasterError

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
