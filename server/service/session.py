"""Mastering sessions: the history of a master, one chain per version, kept beside the output.

A session folder (``<output stem>.session/``) holds ``session.json`` and ``chain-vN.json`` for
every version: the input it was made from, the delivery, the words that made each revision and
what they changed. Any version can be rendered again from its chain. Files are written
atomically; nothing in a session is ever overwritten except ``session.json`` itself, which only
grows: ``master --force`` over an existing session adds a fresh version (no parent) instead of
wiping the history, so later revisions never collide with files of earlier ones.

Paths (the input, each version's output) are stored relative to the session folder, so a
session copied or moved together with its audio still points at its own files; :func:`load`
returns them absolute.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsp.errors import ChainError, FileMissingError, OutputExistsError, ParameterError

if TYPE_CHECKING:
    from dsp.process.chain import Chain  # numpy loads only here: REAPER's side imports this module

SESSION_FORMAT = "reamaster.session"
SESSION_VERSION = 1


def session_dir_for(output: str | os.PathLike[str]) -> Path:
    p = Path(output)
    return p.with_name(p.stem + ".session")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def create(folder: Path, *, input_path: str, output: str, delivery: dict[str, Any], chain_json: str,
           after: dict[str, Any], force: bool) -> Path:
    """Start a session with version 1. An existing session is replaced only with ``force``."""
    from dsp.io.audio_io import atomic_write_text  # numpy loads only here: REAPER's side imports this module

    if folder.exists() and not force:
        raise OutputExistsError(f"the session {folder} already exists; use --force to start it again")
    if (folder / "session.json").is_file():
        try:
            doc = load(folder)
        except Exception:  # an unreadable session is started again; its chain files stay
            doc = None
        if doc is not None:
            doc["input"] = str(Path(input_path).resolve())
            doc["delivery"] = delivery
            add_version(folder, doc, chain_json=chain_json, output=output, words=None,
                        changes=["mastered again from the input (--force); earlier versions kept"], after=after,
                        target_lufs=delivery["target_lufs"], parent=None)
            return folder
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while (folder / f"chain-v{n}.json").exists():  # never overwrite a chain of an unreadable session
        n += 1
    atomic_write_text(folder / f"chain-v{n}.json", chain_json, force=True)
    doc = new_session_document(input_path=input_path, output=output, delivery=delivery, after=after, folder=folder)
    if n != 1:
        doc["versions"][0].update(version=n, chain=f"chain-v{n}.json")
    atomic_write_text(folder / "session.json", json.dumps(doc, indent=2) + "\n", force=True)
    return folder


def _rel(path: str, folder: Path | None) -> str:
    """``path`` relative to the session folder (as given when there is no folder)."""
    if folder is None:
        return str(Path(path).resolve())
    try:
        return os.path.relpath(Path(path).resolve(), Path(folder).resolve())
    except ValueError:  # another drive on Windows
        return str(Path(path).resolve())


def _abs(path: str, folder: Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (Path(folder).resolve() / p).resolve())


def _write(folder: Path, doc: dict[str, Any]) -> None:
    from dsp.io.audio_io import atomic_write_text  # numpy loads only here: REAPER's side imports this module

    out = dict(doc, input=_rel(doc["input"], folder),
               versions=[dict(v, output=_rel(v["output"], folder)) for v in doc["versions"]])
    atomic_write_text(folder / "session.json", json.dumps(out, indent=2) + "\n", force=True)


def new_session_document(*, input_path: str, output: str, delivery: dict[str, Any],
                         after: dict[str, Any], folder: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``session.json`` of a new session (version 1), paths relative to ``folder`` when given.
    Standard library only: REAPER's side uses it."""
    f = Path(folder) if folder is not None else None
    return {
        "format": SESSION_FORMAT, "version": SESSION_VERSION,
        "input": _rel(input_path, f),
        "delivery": delivery,
        "versions": [_entry(1, _rel(output, f), None, [], after, delivery["target_lufs"])],
    }


def _entry(n: int, output: str, words: str | None, changes: list[str], after: dict[str, Any],
           target_lufs: float, parent: int | None = None) -> dict[str, Any]:
    return {"version": n, "parent": parent, "chain": f"chain-v{n}.json", "output": output, "words": words,
            "changes": changes, "target_lufs": target_lufs, "created": _now(),
            "integrated_lufs": after.get("integrated_lufs"), "true_peak_dbtp": after.get("true_peak_dbtp")}


def load(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / "session.json"
    if not path.is_file():
        raise FileMissingError(f"no ReaMaster session at {folder} (expected {path})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChainError(f"the session file {path} cannot be read ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SESSION_FORMAT or doc.get("version") != SESSION_VERSION:
        raise ChainError(f"{path} is not a ReaMaster session of version {SESSION_VERSION}")
    if not doc.get("versions"):
        raise ChainError(f"the session {folder} has no versions")
    doc["input"] = _abs(doc["input"], Path(folder))
    for v in doc["versions"]:
        v["output"] = _abs(v["output"], Path(folder))
    return doc


def version(doc: dict[str, Any], n: int | None) -> dict[str, Any]:
    versions: list[dict[str, Any]] = doc["versions"]
    if n is None:
        return versions[-1]
    for v in versions:
        if v["version"] == n:
            return v
    have = ", ".join(str(v["version"]) for v in doc["versions"])
    raise ParameterError(f"the session has no version {n} (it has {have})")


def load_chain(folder: str | os.PathLike[str], entry: dict[str, Any]) -> Chain:
    from dsp.process.chain import Chain  # numpy loads only here: REAPER's side imports this module

    path = Path(folder) / entry["chain"]
    if not path.is_file():
        raise FileMissingError(f"the chain of version {entry['version']} is missing: {path}")
    return Chain.from_json(path.read_text(encoding="utf-8"))


def add_version(folder: str | os.PathLike[str], doc: dict[str, Any], *, chain_json: str, output: str,
                words: str | None, changes: list[str], after: dict[str, Any], target_lufs: float,
                parent: int | None) -> int:
    """Append version n+1 (its chain file and entry); ``doc`` is what :func:`load` returned."""
    from dsp.io.audio_io import atomic_write_text  # numpy loads only here: REAPER's side imports this module

    n: int = max(v["version"] for v in doc["versions"]) + 1
    folder = Path(folder)
    atomic_write_text(folder / f"chain-v{n}.json", chain_json, force=False)
    doc["versions"].append(_entry(n, str(Path(output).resolve()), words, changes, after, target_lufs, parent))
    _write(folder, doc)
    return n
