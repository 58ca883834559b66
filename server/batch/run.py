"""Run a batch on a Dask cluster: list, scan, master (singles and albums), ledger, report.

The client only submits tasks and collects small records; the workers read and write the files
(shared storage). Without a scheduler address a ``LocalCluster`` is started (processes, one thread
each, a memory limit per worker) and shut down at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from distributed import Client, LocalCluster, as_completed

from dsp.decide.presets import delivery
from dsp.errors import FileMissingError, OutputError, OutputExistsError, ParameterError, ReaMasterError
from dsp.io.audio_io import atomic_write_text

from ..service.mastering import DEFAULT_CHOICES, output_format
from . import ledger, tasks
from .report import write_report
from .source import Item, list_source


class SchedulerError(ReaMasterError):
    """The Dask scheduler given by --scheduler cannot be reached."""

    code = "scheduler_unreachable"


GIB = 1 << 30
WORKER_MEMORY_MIN_BYTES = int(1.5 * GIB)  # a 5-minute stereo master peaks near 0.6 GB; 2.5x headroom
COMPACT_EVERY_S = 10.0  # the client rewrites ledger.parquet at most this often while running
ALBUM_BY = ("folder", "tag", "none")


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """What ``reamaster batch`` was asked. ``choices`` are ``reamaster master``'s decision choices."""

    source: str
    out: str
    preset: str | None = None
    lufs: float | None = None
    ceiling: float | None = None
    bits: int | None = None
    choices: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(DEFAULT_CHOICES))
    scheduler: str | None = None
    workers: int | None = None
    album_by: str = "none"
    resume: bool = False
    dry_run: bool = False
    force: bool = False
    progress: bool | None = None
    compact_every_s: float = COMPACT_EVERY_S


@dataclasses.dataclass
class BatchSummary:
    rows: list[dict[str, Any]]
    ledger_path: str | None
    report_path: str | None
    seconds: float
    dashboard: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)


# --- per-row specs ----------------------------------------------------------------------------

def _spec(item: Item, opts: BatchOptions, run_id: str) -> dict[str, Any]:
    """The small dict a task gets for one row (validated here: a bad per-row option is that row's error)."""
    preset = item.preset or opts.preset
    lufs = item.lufs if item.lufs is not None else opts.lufs
    ceiling = item.ceiling if item.ceiling is not None else opts.ceiling
    choices = dict(opts.choices)
    if item.style:
        choices["style"] = item.style
    if item.references:
        choices["references"] = list(item.references)
    spec: dict[str, Any] = {"key": item.key, "row": item.row, "input": item.input, "rel": item.rel,
                            "output": item.output, "album": item.album, "preset": preset, "lufs": lufs,
                            "ceiling": ceiling, "choices": choices, "run_id": run_id,
                            "records_dir": str(ledger.records_dir(opts.out)), "options_hash": None,
                            "options_json": None, "fmt": None, "error_code": item.error_code, "error": item.error}
    if item.error_code:
        return spec
    try:
        d = delivery(preset, target_lufs=lufs, ceiling_dbtp=ceiling)
        fmt = output_format(item.output, opts.bits, d)  # as `reamaster master`
        for ref in choices.get("references") or []:
            if not os.path.isfile(ref):
                raise FileMissingError(f"reference file not found: {ref}")
    except ReaMasterError as exc:
        spec.update(error_code=exc.code, error=str(exc))
        return spec
    spec["fmt"] = fmt
    spec["delivery"] = {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp}
    _set_options(spec, None)
    return spec


def _set_options(spec: dict[str, Any], album: dict[str, Any] | None) -> None:
    """The options a row was mastered with; ``--resume`` redoes a row whose options changed.
    An album row's options include every member's content hash (one changed track redoes the album)."""
    opts = {"version": 1, "delivery": spec["delivery"], "fmt": spec["fmt"], "choices": spec["choices"],
            "output": spec["rel"], "album": album}
    text = json.dumps(opts, sort_keys=True, allow_nan=False)
    spec["options_json"] = text
    spec["options_hash"] = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# --- the cluster --------------------------------------------------------------------------------

def bokeh_available() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def local_cluster_size(workers: int | None) -> tuple[int, int]:
    """(workers, memory limit per worker in bytes): one per core, fewer if memory is short."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cores = os.cpu_count() or 1
    n = workers or max(1, min(cores, total // WORKER_MEMORY_MIN_BYTES))
    return int(n), int(total * 0.9 // n)


def start_cluster(opts: BatchOptions, echo: Callable[[str], None]) -> tuple[Any, Any, str | None]:
    """(client, local cluster or None, dashboard address or None)."""
    has_bokeh = bokeh_available()
    if opts.scheduler:
        try:
            client = Client(opts.scheduler, timeout=30)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"cannot reach the Dask scheduler at {opts.scheduler}: {exc}") from None
        cluster = None
        n = len(client.scheduler_info().get("workers", {}))
        echo(f"batch: scheduler {opts.scheduler} with {n} worker(s)")
    else:
        n, mem = local_cluster_size(opts.workers)
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n, threads_per_worker=1, processes=True, memory_limit=mem, host="127.0.0.1",
            dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)  # type: ignore[no-untyped-call]
        echo(f"batch: local Dask cluster, {n} worker process(es), 1 thread and {mem / GIB:.1f} GiB each")
    link = client.dashboard_link if has_bokeh else None
    if link:
        echo(f"batch: dashboard {link}")
    else:
        echo("batch: no dashboard (bokeh is not installed here; `pip install bokeh` adds it)")
    return client, cluster, link


# --- the run ------------------------------------------------------------------------------------

class _Bar:
    """One-line progress on stderr: finished rows of the total, by status, and the rate."""

    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total, self.enabled, self.stream = total, enabled, stream
        self.counts = {"done": 0, "failed": 0, "skipped": 0}
        self.t0 = time.monotonic()
        self.last = 0.0

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.2 or sum(self.counts.values()) == self.total):
            self.last = now
            n = sum(self.counts.values())
            width = 30
            fill = int(width * n / max(1, self.total))
            rate = self.counts["done"] / max(1e-9, now - self.t0) * 60
            self.stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {n}/{self.total}  done {self.counts['done']}"
                              f"  failed {self.counts['failed']}  skipped {self.counts['skipped']}"
                              f"  {rate:.1f} tracks/min ")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _check_out(opts: BatchOptions, items: list[Item], prior: dict[str, dict[str, Any]]) -> None:
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder; choose another output folder")
    if not out.absolute().parent.is_dir():
        raise OutputError(f"the folder {out.absolute().parent} does not exist; create it first")
    has_batch = (out / ledger.LEDGER_NAME).exists() or ledger.records_dir(opts.out).is_dir()
    if has_batch and not opts.resume and not opts.force:
        raise OutputExistsError(f"{out} already holds a batch; use --resume to continue it or --force to redo it")
    if not opts.resume and not opts.force:
        for it in items:
            if os.path.exists(it.output):
                raise OutputExistsError(f"{it.output} already exists; use --force to replace it")


def _prepare_out(opts: BatchOptions) -> None:
    """Create OUT and the state folder, and prove OUT is writable before any work."""
    try:
        Path(opts.out).mkdir(exist_ok=True)
        if opts.force and not opts.resume and ledger.state_dir(opts.out).is_dir():
            shutil.rmtree(ledger.state_dir(opts.out))
        ledger.records_dir(opts.out).mkdir(parents=True, exist_ok=True)
        atomic_write_text(ledger.state_dir(opts.out) / "probe", "ok\n", force=True)
    except (OSError, ReaMasterError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OutputError(f"cannot write into the output folder {opts.out}: {reason}") from None


def _client_record(spec: dict[str, Any], status: str, code: str | None, msg: str | None,
                   run_id: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {k: (base or {}).get(k) for k in ledger.CARRIED}
    rec.update({"key": spec["key"], "row": spec["row"], "input": spec["input"], "rel": spec["rel"],
                "output": spec["output"], "album": spec.get("album"), "status": status, "error_code": code,
                "error": msg, "run_id": run_id, "finished_at": time.time(), "worker": (base or {}).get("worker")})
    if spec.get("options_hash") and not base:
        rec.update(options_hash=spec["options_hash"], options=spec["options_json"])
    if spec.get("input_hash") and not base:
        rec["input_hash"] = spec["input_hash"]
    return rec


def run_batch(opts: BatchOptions, *, client: Any = None, echo: Callable[[str], None] = print,
              on_record: Callable[[dict[str, Any]], None] | None = None) -> BatchSummary:
    """Master every row of ``opts.source`` into ``opts.out``; see the module docstring.

    ``client``: an existing ``distributed.Client`` to use (left open); else one is made from
    ``opts.scheduler`` or a LocalCluster. ``on_record`` is called with each finished record."""
    if opts.album_by not in ALBUM_BY:
        raise ParameterError(f"--album-by {opts.album_by!r}: choose folder, tag or none")
    t_start = time.monotonic()
    items = list_source(opts.source, opts.out, album_by=opts.album_by)
    prior = ledger.load(opts.out) if opts.resume else {}
    _check_out(opts, items, prior)
    run_id = uuid.uuid4().hex[:12]
    specs = {it.key: _spec(it, opts, run_id) for it in items}
    if opts.dry_run:
        _print_plan(items, specs, prior, opts, echo)
        return BatchSummary([], None, None, time.monotonic() - t_start)
    _prepare_out(opts)

    results: dict[str, dict[str, Any]] = {}
    bar = _Bar(len(items), opts.progress if opts.progress is not None else sys.stderr.isatty())

    def finish(rec: dict[str, Any], *, write: bool) -> None:
        if write:
            ledger.write_record(opts.out, rec)
        results[rec["key"]] = rec
        bar.add(rec["status"])
        if on_record is not None:
            on_record(rec)

    own_client = client is None
    cluster = None
    dashboard = None
    if own_client:
        client, cluster, dashboard = start_cluster(opts, echo)
    # a worker per core (or a cluster elsewhere, sized by its owner): each task keeps to one core;
    # fewer workers than cores here: each task may use a second thread (same bits either way)
    n_workers = len(client.scheduler_info().get("workers", {}))
    one_core = opts.scheduler is not None or n_workers >= (os.cpu_count() or 1)
    for sp in specs.values():
        sp["one_core"] = one_core
    last_compact = time.monotonic()
    compact_cost = 0.0
    try:
        # rows that need no cluster: duplicates and rows refused while listing
        scans = {}
        for it in items:
            sp = specs[it.key]
            if it.duplicate_of is not None:
                first = items[it.duplicate_of]
                finish(_client_record(sp, "skipped", "duplicate_input",
                                      f"the same file as row {first.row + 1} ({first.rel}); mastered once", run_id),
                       write=False)
            elif sp["error_code"]:
                finish(_client_record(sp, "failed", sp["error_code"], sp["error"], run_id), write=True)
            else:
                old = prior.get(it.key) or {}
                scan_spec = {"key": it.key, "input": it.input, "output": it.output,
                             "want_tag": opts.album_by == "tag" and not it.album,
                             "prior_output_hash": old.get("output_hash") if old.get("status") in ("done", "skipped")
                             else None}
                scans[client.submit(tasks.scan, scan_spec, key=f"scan-{it.key}-{run_id}", pure=False)] = it.key
        ac = as_completed(list(scans))  # type: ignore[no-untyped-call]
        kinds: dict[Any, tuple[str, Any]] = {f: ("scan", k) for f, k in scans.items()}
        pending_albums: dict[str, list[str]] = {}
        album_size: dict[str, int] = {}
        scanned: dict[str, dict[str, Any]] = {}
        keep: dict[str, list[Any]] = {}  # album phase futures, held until its renders finish
        renders_left: dict[str, int] = {}
        for it in items:
            if it.key in scans.values() and it.album and opts.album_by != "tag":
                album_size[it.album] = album_size.get(it.album, 0) + 1
        scans_left = len(scans)

        def valid_prior(key: str, scan: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
            old = prior.get(key)
            if (old and old.get("status") in ("done", "skipped") and old.get("input_hash") == scan["input_hash"]
                    and old.get("options_hash") == spec["options_hash"] and scan["output_ok"]):
                return old
            return None

        def submit_single(key: str) -> None:
            sp = specs[key]
            fut = client.submit(tasks.master_track, sp, key=f"master-{key}-{run_id}", pure=False)
            kinds[fut] = ("track", key)
            ac.add(fut)  # type: ignore[no-untyped-call]

        def start_album(name: str, keys: list[str]) -> None:
            members = sorted(keys, key=lambda k: specs[k]["row"])
            if len(members) < 2:
                for k in members:
                    _set_options(specs[k], None)
                    start_single(k)
                return
            fingerprint = {"name": name, "members": [[specs[k]["rel"], specs[k]["input_hash"]] for k in members]}
            for k in members:
                specs[k]["album"] = name
                _set_options(specs[k], fingerprint)
            olds = [valid_prior(k, scanned[k], specs[k]) for k in members]
            if all(olds):
                for k, old in zip(members, olds, strict=True):
                    if old is not None:
                        finish(_skip(specs[k], old, run_id), write=False)
                return
            an = [client.submit(tasks.analyse_track, specs[k], key=f"analyse-{k}-{run_id}", pure=False)
                  for k in members]
            dec = client.submit(tasks.decide_album, [specs[k]["rel"] for k in members], an, specs[members[0]],
                                key=f"decide-{specs[members[0]]['key']}-{run_id}", pure=False)
            keep[name] = [*an, dec]
            renders_left[name] = sum(1 for old in olds if not old)
            for i, (k, old) in enumerate(zip(members, olds, strict=True)):
                if old is not None:  # rendered before with these decisions (same members, hashes, options): keep it
                    finish(_skip(specs[k], old, run_id), write=False)
                    continue
                fut = client.submit(tasks.render_album_track, specs[k], an[i], dec, i,
                                    key=f"render-{k}-{run_id}", pure=False)
                kinds[fut] = ("track", k)
                ac.add(fut)  # type: ignore[no-untyped-call]

        def start_single(key: str) -> None:
            old = valid_prior(key, scanned[key], specs[key])
            if old:
                finish(_skip(specs[key], old, run_id), write=False)
            else:
                submit_single(key)

        for fut in ac:
            kind, key = kinds.pop(fut)
            sp = specs[key]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker died on it for good (KilledWorker) or similar
                name = type(exc).__name__
                code = "worker_killed" if name == "KilledWorker" else "task_failed"
                finish(_client_record(sp, "failed", code, f"{name}: {' '.join(str(exc).split())[:300]}", run_id),
                       write=True)
                res = None
            if kind == "scan":
                scans_left -= 1
                if res is not None and res["error_code"]:
                    sp["input_hash"] = res["input_hash"]
                    finish(_client_record(sp, "failed", res["error_code"], res["error"], run_id), write=True)
                elif res is not None:
                    sp["input_hash"] = res["input_hash"]
                    scanned[key] = res
                    album = sp["album"] or (res["album_tag"] if opts.album_by == "tag" else None)
                    if album:
                        pending_albums.setdefault(album, []).append(key)
                        if opts.album_by != "tag" and len(pending_albums[album]) == album_size.get(album, 0):
                            start_album(album, pending_albums.pop(album))
                    else:
                        start_single(key)
                if scans_left == 0:  # tags known, failed members known: start what is left
                    for album, keys in list(pending_albums.items()):
                        start_album(album, keys)
                    pending_albums.clear()
            else:
                if res is not None:
                    finish(res, write=False)  # the worker wrote it
                album = sp.get("album")
                if album in keep:
                    renders_left[album] -= 1
                    if renders_left[album] == 0:
                        del keep[album]  # releases the analyses held on the workers
            if time.monotonic() - last_compact > max(opts.compact_every_s, 20 * compact_cost):
                # a view for the curious while it runs (the records are the truth); its cost grows with
                # the rows, so it runs at most 1/20 of the time
                t_c = time.monotonic()
                ledger.compact(opts.out, _ordered(items, results))
                last_compact = time.monotonic()
                compact_cost = last_compact - t_c
    finally:
        bar.close()
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
    rows = _ordered(items, results)
    lp = ledger.compact(opts.out, rows)
    ledger.prune_records(opts.out, [r["key"] for r in rows])
    rp = write_report(opts.out, rows, opts)
    return BatchSummary(rows, str(lp), str(rp), time.monotonic() - t_start, dashboard)


def _skip(spec: dict[str, Any], old: dict[str, Any], run_id: str) -> dict[str, Any]:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(old.get("mastered_at") or old.get("finished_at") or 0))
    rec = _client_record(spec, "skipped", "unchanged",
                         f"input and options unchanged and the output matches its hash (mastered {when} UTC)",
                         run_id, base=old)
    return rec


def _ordered(items: list[Item], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [results[it.key] for it in items if it.key in results]


def _print_plan(items: list[Item], specs: dict[str, dict[str, Any]], prior: dict[str, dict[str, Any]],
                opts: BatchOptions, echo: Callable[[str], None]) -> None:
    albums: dict[str, int] = {}
    for it in items:
        if it.album:
            albums[it.album] = albums.get(it.album, 0) + 1
    recorded = sum(1 for it in items if (prior.get(it.key) or {}).get("status") in ("done", "skipped"))
    echo(f"batch (dry run): {len(items)} row(s) from {opts.source} -> {opts.out}")
    for it in items:
        sp = specs[it.key]
        note = ("duplicate of row %d" % (it.duplicate_of + 1) if it.duplicate_of is not None
                else f"refused: {sp['error']} [{sp['error_code']}]" if sp["error_code"]
                else f"album {it.album}" if it.album else "single")
        d = sp.get("delivery") or {}
        echo(f"  {it.row + 1:5d}  {it.rel}  ({note}; {d.get('preset', '?')} {d.get('target_lufs', '')} LUFS)")
    if albums:
        echo(f"  albums: {len(albums)} ({', '.join(f'{k}: {v}' for k, v in sorted(albums.items()))})")
    if opts.album_by == "tag":
        echo("  albums by tag are formed when the workers read the tags")
    if opts.resume:
        echo(f"  the ledger has {recorded} finished row(s); each is skipped if its input, options and output "
             "hashes still match")
    echo("  nothing was written")
