"""Throughput of `reamaster batch` on Dask: tracks per minute with 1 and 2 workers on real music,
the scaling efficiency, the scheduler's overhead per task, the resume (skip) cost per track, and
the per-track storage and ledger figures docs/scale.md works from.

    .venv/bin/python benchmarks/bench_batch.py [--tracks 6] [--music-dir DIR ...] [--noop-tasks 2000]

Inputs are Debian game-music OGG files (read as they are: decoding is part of the cost). Each
configuration gets a fresh LocalCluster (processes, one thread each); workers are warmed up
(imports and numba caches loaded) before the clock starts, so the figure is the steady state a
long batch sees. Every master goes through the real `run_batch` path (scan + hash, master,
record, ledger).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MUSIC_DIRS = ["/usr/share/games/warzone2100/music", "/usr/share/games/singularity/music",
              "/usr/share/games/ufoai/music"]


def _warm() -> bool:
    """Load the mastering path (imports, numba caches) on a worker: a 3-second master in memory."""
    import numpy as np

    from dsp.decide.master import master
    from dsp.decide.presets import delivery

    sr = 44100
    t = np.arange(3 * sr) / sr
    x = np.stack([0.1 * np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
    master(x, sr, delivery())
    import server.batch.tasks  # noqa: F401
    return True


def _noop(i: int) -> int:
    return i


def pick_tracks(dirs: list[str], n: int) -> list[Path]:
    found = []
    for d in dirs:
        p = Path(d)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix.lower() in (".ogg", ".flac", ".wav"))
    if len(found) < n:
        sys.exit(f"bench_batch: needs {n} tracks in {dirs} (./install/setup.sh bench installs Debian's music)")
    # spread over the folders: every other file, then the first n
    return found[::max(1, len(found) // n)][:n]


def run_config(src: Path, workers: int, out: Path) -> dict:
    from distributed import Client, LocalCluster

    from server.batch.run import BatchOptions, run_batch

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0", memory_limit="3GiB", silence_logs=logging.ERROR)
    client = Client(cluster)
    client.wait_for_workers(workers)
    client.run(_warm)
    startup = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        res = run_batch(BatchOptions(source=str(src), out=str(out), progress=False), client=client,
                        echo=lambda s: None)
        wall = time.perf_counter() - t1
        t2 = time.perf_counter()
        again = run_batch(BatchOptions(source=str(src), out=str(out), progress=False, resume=True), client=client,
                          echo=lambda s: None)
        resume_wall = time.perf_counter() - t2
    finally:
        client.close()
        cluster.close()
    done = [r for r in res.rows if r["status"] == "done"]
    assert len(done) == len(res.rows), [r for r in res.rows if r["status"] != "done"]
    assert all(r["status"] == "skipped" for r in again.rows)
    audio_min = sum(r["duration_s"] for r in done) / 60
    return {"workers": workers, "tracks": len(done), "audio_min": audio_min, "wall_s": wall,
            "startup_s": startup, "tracks_per_min": len(done) / wall * 60,
            "audio_min_per_min": audio_min / wall, "task_s_sum": sum(r["seconds"] for r in done),
            "cpu_s_sum": sum(r["cpu_seconds"] for r in done),
            "resume_s": resume_wall, "rows": done, "ledger_bytes": os.path.getsize(res.ledger_path)}


def scheduler_overhead(n_tasks: int) -> dict:
    from distributed import Client, LocalCluster, wait

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    client.wait_for_workers(2)
    try:
        client.gather(client.map(_noop, range(50), pure=False))  # warm the connections
        t0 = time.perf_counter()
        futs = client.map(_noop, range(n_tasks), pure=False)
        wait(futs)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        for i in range(min(200, n_tasks)):  # one at a time: the round trip a lone task pays
            client.submit(_noop, i, pure=False).result()
        rtt = (time.perf_counter() - t1) / min(200, n_tasks)
    finally:
        client.close()
        cluster.close()
    return {"tasks": n_tasks, "wall_s": wall, "per_task_ms": wall / n_tasks * 1000, "round_trip_ms": rtt * 1000}


def ledger_scale(template: dict, work: Path, n_rows: int, n_records: int) -> dict:
    """The ledger at catalog size: compacting ``n_rows`` rows like ``template`` into Parquet, and
    writing + loading ``n_records`` record files (what a resume reads)."""
    from server.batch import ledger

    out = work / "ledger_scale"
    (out / ledger.STATE_DIR / "records").mkdir(parents=True)
    import random
    import re

    rnd = random.Random(0)

    def jitter(text: str) -> str:  # every track's chain differs in its numbers, as real ones do
        return re.sub(r"-?\d+\.\d+", lambda m: f"{float(m.group()) * (1 + rnd.uniform(-0.2, 0.2)):.4f}", text)

    rows = [dict(template, key=f"{i:020d}", row=i, input=f"{template['input']}.{i}", rel=f"{template['rel']}.{i}",
                 output=f"{template['output']}.{i}", input_hash=f"{rnd.getrandbits(256):064x}",
                 output_hash=f"{rnd.getrandbits(256):064x}", chain=jitter(template["chain"]),
                 **{k: (template[k] or 0.0) + rnd.uniform(-1, 1) for k in (
                     "before_lufs", "after_lufs", "before_true_peak_dbtp", "after_true_peak_dbtp", "before_lra_lu",
                     "after_lra_lu", "before_plr_db", "after_plr_db", "seconds", "finished_at")})
            for i in range(n_rows)]
    t0 = time.perf_counter()
    path = ledger.compact(str(out), rows)
    compact_s = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    t1 = time.perf_counter()
    for r in rows[:n_records]:
        ledger.write_record(str(out), r)
    write_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    loaded = ledger.load(str(out))
    load_s = time.perf_counter() - t2
    assert len(loaded) == n_records
    rec_bytes = sum(p.stat().st_size for p in (out / ledger.STATE_DIR / "records").glob("*.json")) / n_records
    return {"rows": n_rows, "compact_s": compact_s, "parquet_bytes": size, "records": n_records,
            "record_write_ms": write_s / n_records * 1000, "record_load_ms": load_s / n_records * 1000,
            "record_bytes": rec_bytes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=6)
    ap.add_argument("--music-dir", nargs="+", default=MUSIC_DIRS)
    ap.add_argument("--noop-tasks", type=int, default=2000)
    ap.add_argument("--ledger-rows", type=int, default=100_000)
    ap.add_argument("--ledger-records", type=int, default=5_000)
    ap.add_argument("--keep", action="store_true", help="keep the output folders")
    args = ap.parse_args()
    tracks = pick_tracks(args.music_dir, args.tracks)
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    src = work / "src"
    src.mkdir()
    for i, t in enumerate(tracks):
        os.symlink(t, src / f"{i:02d}_{t.name.replace(' ', '_')}")
    in_bytes = sum(t.stat().st_size for t in tracks)
    print(f"bench_batch: {len(tracks)} tracks ({in_bytes / 1e6:.1f} MB of OGG) from {', '.join(args.music_dir)}; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    try:
        results = [run_config(src, w, work / f"out{w}") for w in (1, 2)]
        for r in results:
            print(f"  {r['workers']} worker(s): {r['tracks']} tracks ({r['audio_min']:.1f} min of audio) in "
                  f"{r['wall_s']:.1f} s = {r['tracks_per_min']:.2f} tracks/min, {r['audio_min_per_min']:.2f} min of "
                  f"audio per minute; sum of task times {r['task_s_sum']:.1f} s; cluster start + warm-up "
                  f"{r['startup_s']:.1f} s; --resume of all {r['resume_s']:.2f} s "
                  f"({r['resume_s'] / r['tracks'] * 1000:.0f} ms per track)")
        one, two = results
        speedup = two["tracks_per_min"] / one["tracks_per_min"]
        print(f"  scaling 1 -> 2 workers: {speedup:.2f}x (efficiency {speedup / 2 * 100:.0f}%)")
        per_track = [row["seconds"] for row in one["rows"]]
        per_audio_min = one["task_s_sum"] / one["audio_min"]
        cpu_audio_min = [r["cpu_s_sum"] / r["audio_min"] for r in results]
        out_bytes = sum(os.path.getsize(row["output"]) for row in one["rows"])
        print(f"  per track (1 worker): {min(per_track):.1f}-{max(per_track):.1f} s, "
              f"{per_audio_min:.2f} worker-s per minute of audio; "
              f"mean track {one['audio_min'] / one['tracks']:.2f} min; CPU per minute of audio "
              f"{cpu_audio_min[0]:.2f} s (1 worker), {cpu_audio_min[1]:.2f} s (2 workers) - the cost a quiet "
              f"machine would show as wall time")
        print(f"  storage per track: read {in_bytes / len(tracks) / 1e6:.1f} MB (OGG input) + hash read, "
              f"write {out_bytes / len(tracks) / 1e6:.1f} MB (24-bit WAV); "
              f"ledger {one['ledger_bytes'] / one['tracks'] / 1e3:.1f} kB per row (Parquet, zstd, {one['tracks']} rows)")
        ls = ledger_scale(one["rows"][0], work, args.ledger_rows, args.ledger_records)
        print(f"  ledger at scale: {ls['rows']} rows compacted in {ls['compact_s']:.1f} s to "
              f"{ls['parquet_bytes'] / 1e6:.1f} MB; a record file is {ls['record_bytes'] / 1e3:.1f} kB, written "
              f"(atomic, fsync) in {ls['record_write_ms']:.2f} ms and loaded in {ls['record_load_ms']:.3f} ms "
              f"({ls['records']} files)")
        o = scheduler_overhead(args.noop_tasks)
        print(f"  scheduler overhead: {o['tasks']} no-op tasks on 2 workers in {o['wall_s']:.2f} s = "
              f"{o['per_task_ms']:.2f} ms per task; one task at a time {o['round_trip_ms']:.1f} ms round trip")
        print(f"  load average at end {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
