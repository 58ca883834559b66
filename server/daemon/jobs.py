"""Which paths a request may touch, checked in the server loop (no audio is read there).

* :func:`check_path` / :func:`project_roots`: a local client may name files instead of sending
  audio, but only inside the allowed roots (the project folder(s) it declares plus the system
  temp folder), after resolving symlinks; ``..`` is refused outright.
* :func:`prepare` checks the paths and names of an ``album`` / ``revise`` / ``master_stems``
  request.
The jobs themselves run in :mod:`server.daemon.worker`, which loads the DSP library in the worker
process only.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dsp.errors import ReaMasterError

from ..wire import protocol as P

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
        from dsp.io.audio_io import SUPPORTED_READ  # numpy loads at the first path check, not at server start

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
    from dsp.decide.profiles import builtin_names  # numpy loads at the first style check, not at server start

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
        # numpy loads at the first stems job, not at server start
        from dsp.decide.stems import check_stem_name

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
