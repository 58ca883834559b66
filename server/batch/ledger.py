"""The batch ledger: one row per track, what survives a kill, and what ``--resume`` trusts.

Layout under OUT:

* ``.reamaster-batch/records/<key>.json`` - one record per finished track, written atomically by the
  worker that mastered it *after* the output is in place (or by the client, for a task whose worker
  died for good, and for duplicate rows). A kill at any moment leaves either no record (the track
  is redone: its output name is fixed, so redoing it replaces, never duplicates) or a complete one.
* ``ledger.parquet`` - the compaction of all records of this batch (written atomically by the
  client now and then while it runs, and at the end). While a batch runs it is a view: the records
  are the truth, so a client killed while compacting loses nothing. After the final compaction the
  records it holds are deleted, and the Parquet file is the truth for those rows.

Columns are :data:`COLUMNS`; hashes are BLAKE2b-256 of the file bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dsp.io.audio_io import atomic_write_text

STATE_DIR = ".reamaster-batch"
LEDGER_NAME = "ledger.parquet"
REPORT_NAME = "report.html"

#: (column, pyarrow type name) in ledger order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("row", "int64"), ("key", "string"), ("input", "string"), ("rel", "string"), ("input_hash", "string"),
    ("options_hash", "string"), ("options", "string"), ("album", "string"),
    ("status", "string"), ("error_code", "string"), ("error", "string"),
    ("output", "string"), ("output_hash", "string"),
    ("target_lufs", "float64"), ("ceiling_dbtp", "float64"), ("duration_s", "float64"),
    ("before_lufs", "float64"), ("after_lufs", "float64"),
    ("before_true_peak_dbtp", "float64"), ("after_true_peak_dbtp", "float64"),
    ("before_lra_lu", "float64"), ("after_lra_lu", "float64"), ("before_plr_db", "float64"), ("after_plr_db", "float64"),
    ("limiter_max_reduction_db", "float64"), ("limiter_active_pct", "float64"), ("max_eq_gain_db", "float64"),
    ("tonal_distance_before_db", "float64"), ("tonal_distance_after_db", "float64"), ("tonal_target", "string"),
    ("chain", "string"), ("album_shapes", "string"),
    ("worker", "string"), ("seconds", "float64"), ("cpu_seconds", "float64"), ("seconds_analyse", "float64"),
    ("finished_at", "float64"), ("mastered_at", "float64"), ("run_id", "string"),
)
#: a resumed row that did no work keeps these from the row that did it
CARRIED = tuple(c for c, _ in COLUMNS if c not in ("row", "key", "input", "rel", "status", "error_code", "error",
                                                  "run_id", "finished_at", "album"))


def state_dir(out: str) -> Path:
    return Path(out) / STATE_DIR


def records_dir(out: str) -> Path:
    return state_dir(out) / "records"


def load(out: str) -> dict[str, dict[str, Any]]:
    """Every known row by key: ``ledger.parquet`` first, then the record files (newer wins)."""
    rows: dict[str, dict[str, Any]] = {}
    lp = Path(out) / LEDGER_NAME
    if lp.is_file():
        try:
            for r in pq.read_table(lp).to_pylist():
                rows[r["key"]] = r
        except Exception:  # noqa: BLE001 - a damaged view is rebuilt from the records
            pass
    rd = records_dir(out)
    if rd.is_dir():
        for p in rd.glob("*.json"):
            try:
                r = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # cannot happen with atomic writes; a stray file is ignored
            old = rows.get(r.get("key"))
            if old is None or (r.get("finished_at") or 0) >= (old.get("finished_at") or 0):
                rows[r["key"]] = r
    return rows


def write_record(out: str, rec: dict[str, Any]) -> None:
    """The client's own record (dead worker, duplicate row, unchanged track), atomically."""
    atomic_write_text(records_dir(out) / f"{rec['key']}.json", json.dumps(rec, allow_nan=False) + "\n", force=True)


def compact(out: str, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` (ledger order) as ``ledger.parquet``, atomically (temp file, fsync, rename)."""
    schema = pa.schema([(c, getattr(pa, t)()) for c, t in COLUMNS])
    table = pa.Table.from_pylist([{c: r.get(c) for c, _ in COLUMNS} for r in rows], schema=schema)
    dest = Path(out) / LEDGER_NAME
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    return dest


def prune_records(out: str, keys: list[str]) -> int:
    """After a compaction that holds them, drop the record files of ``keys`` (a resume then reads one
    Parquet file instead of one small file per track). Killed before or during this, both remain and
    :func:`load` merges them."""
    n = 0
    rd = records_dir(out)
    for k in keys:
        try:
            (rd / f"{k}.json").unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def read_ledger(path: str) -> list[dict[str, Any]]:
    """The rows of a ledger file (for tests, the report and users' own tools)."""
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows
