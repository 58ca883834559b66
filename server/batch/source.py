"""What a batch masters: SOURCE (a folder tree, a glob, a CSV/Parquet manifest or one file)
expanded into ordered items, each with its output path under OUT.

Output names keep the source's folder structure (``SOURCE/a/b.flac`` -> ``OUT/a/b.wav``), so two
files with the same name in different folders never collide. The same input listed twice (same
real path) is kept once; the later rows are marked as duplicates. Two inputs that would be written
to the same output are refused per row (the later one), never silently overwritten.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import os
from pathlib import Path

import pyarrow.parquet as pq

from dsp.errors import FileMissingError, ParameterError

AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff", ".ogg")
MANIFEST_COLUMNS = ("path", "preset", "style", "reference", "album", "output", "lufs", "ceiling")


@dataclasses.dataclass(frozen=True)
class Item:
    """One row of the batch. Paths are absolute; ``rel`` is the name shown and used under OUT."""

    row: int
    input: str
    rel: str
    output: str
    preset: str | None = None
    style: str | None = None
    references: tuple[str, ...] = ()
    album: str | None = None  # from the manifest or the folder (--album-by folder)
    lufs: float | None = None
    ceiling: float | None = None
    duplicate_of: int | None = None  # row of the first listing of the same file
    error_code: str | None = None  # refused while listing (output collision)
    error: str | None = None

    @property
    def key(self) -> str:
        """The ledger key of this row: stable across runs for the same input and output."""
        return hashlib.sha1(f"{self.input}\0{self.output}\0{self.row if self.duplicate_of is not None else ''}"
                            .encode()).hexdigest()[:20]


def is_manifest(source: str) -> bool:
    return source.lower().endswith((".csv", ".parquet")) and os.path.isfile(source)


def list_source(source: str, out: str, *, album_by: str = "none", output_ext: str = ".wav") -> list[Item]:
    """Expand SOURCE into items (sorted, deterministic); see the module docstring."""
    out_abs = os.path.abspath(out)
    if is_manifest(source):
        rows = _read_manifest(source)
        base = os.path.dirname(os.path.abspath(source))
        items = []
        for i, r in enumerate(rows):
            p = os.path.abspath(os.path.join(base, r["path"]))
            rel = r.get("output") or (os.path.relpath(p, base) if _inside(p, base) else os.path.basename(p))
            if not r.get("output"):
                rel = str(Path(rel).with_suffix(output_ext))
            refs = tuple(os.path.abspath(os.path.join(base, x.strip()))
                         for x in (r.get("reference") or "").split(";") if x.strip())
            album = r.get("album") or (_folder_album(rel) if album_by == "folder" else None)
            items.append(Item(i, p, rel, os.path.join(out_abs, rel), preset=r.get("preset") or None,
                              style=r.get("style") or None, references=refs,
                              album=None if album_by == "none" else album,
                              lufs=_float_or_none(r.get("lufs"), "lufs", i),
                              ceiling=_float_or_none(r.get("ceiling"), "ceiling", i)))
        return _mark(items)
    if os.path.isdir(source):
        root = os.path.abspath(source)
        paths = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and not _inside(os.path.join(folder, d), out_abs))
            paths += [os.path.join(folder, f) for f in files
                      if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith(".")]
        paths.sort(key=lambda p: os.path.relpath(p, root))
    elif glob.has_magic(source):
        paths = sorted(os.path.abspath(p) for p in glob.glob(source, recursive=True)
                       if os.path.isfile(p) and p.lower().endswith(AUDIO_EXTENSIONS))
        root = os.path.abspath(_glob_root(source))
    elif os.path.isfile(source):
        paths, root = [os.path.abspath(source)], os.path.dirname(os.path.abspath(source))
    else:
        raise FileMissingError(f"{source} is not a folder, a glob, a manifest (.csv/.parquet) or an audio file")
    if not paths:
        raise FileMissingError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in {source}")
    items = []
    for i, p in enumerate(paths):
        rel = str(Path(os.path.relpath(p, root)).with_suffix(output_ext))
        album = _folder_album(rel) if album_by == "folder" else None
        items.append(Item(i, p, rel, os.path.join(out_abs, rel), album=album))
    return _mark(items)


def _folder_album(rel: str) -> str:
    parent = str(Path(rel).parent)
    return parent if parent != "." else "(top folder)"


def _mark(items: list[Item]) -> list[Item]:
    """Mark duplicate inputs (same real path) and output collisions; keep the first of each."""
    seen_in: dict[str, int] = {}
    seen_out: dict[str, int] = {}
    marked = []
    for it in items:
        real = os.path.realpath(it.input)
        if real in seen_in:
            marked.append(dataclasses.replace(it, duplicate_of=seen_in[real]))
            continue
        seen_in[real] = it.row
        out_real = os.path.normcase(os.path.realpath(it.output))
        if out_real in seen_out:
            marked.append(dataclasses.replace(it, error_code="output_collision", error=(
                f"{it.rel} would overwrite the output of row {seen_out[out_real]}; give it another output name")))
            continue
        if out_real == os.path.normcase(real):
            marked.append(dataclasses.replace(it, error_code="output_is_input", error=(
                f"the output {it.output} is the input; choose another output folder")))
            continue
        seen_out[out_real] = it.row
        marked.append(it)
    return marked


def _inside(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), folder]) == folder
    except ValueError:
        return False


def _glob_root(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _float_or_none(v: object, column: str, row: int) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and v != v):
        return None
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"manifest row {row + 1}: {column} = {v!r} is not a number") from None


def _read_manifest(path: str) -> list[dict[str, str]]:
    """Rows of a CSV or Parquet manifest as dicts of strings (missing columns are absent)."""
    if path.lower().endswith(".parquet"):
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise ParameterError(f"cannot read the manifest {path}: {exc}") from None
        rows = table.to_pylist()
    else:
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ParameterError(f"cannot read the manifest {path}: {exc}") from None
    if not rows or "path" not in rows[0]:
        raise ParameterError(f"the manifest {path} needs a 'path' column and at least one row")
    out = []
    for i, r in enumerate(rows):
        clean = {k.strip().lower(): ("" if v is None else str(v).strip()) for k, v in r.items() if k}
        if not clean.get("path"):
            raise ParameterError(f"manifest row {i + 1} has no path")
        out.append(clean)
    return out
