"""`reamaster batch` on real Dask clusters (a LocalCluster of 2 worker processes, and a scheduler and
worker started as separate processes on loopback), on short generated files.

Every batch output is compared byte for byte with what `reamaster master` / `reamaster album`
write for the same file (run in-process through the real command line); loudness figures in the
ledger are checked against libebur128 on the written files.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyebur128
import pytest
import soundfile as sf

from server.batch import ledger
from server.batch.run import BatchOptions, run_batch
from server.cli.main import main

SR = 22050
SECONDS = 2.5
VENV_BIN = Path(sys.executable).parent


def _track(path: Path, seed: int, *, level: float, freq_hz: float) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * SECONDS)) / SR
    x = level * (np.sin(2 * np.pi * freq_hz * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
                 + 0.25 * rng.standard_normal(t.size))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([x, 0.8 * x + 0.05 * rng.standard_normal(t.size)]).T, SR, subtype="PCM_24")


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """src/album/{t1,t2}.wav (an album), src/one/s1.wav and src/two/s2.wav (singles: one per folder),
    src/bad/broken.wav (corrupt); ref/ holds what `reamaster master` and `reamaster album` write."""
    root = tmp_path_factory.mktemp("batch")
    src = root / "src"
    _track(src / "album" / "t1.wav", 1, level=0.30, freq_hz=220.0)
    _track(src / "album" / "t2.wav", 2, level=0.08, freq_hz=330.0)
    _track(src / "one" / "s1.wav", 3, level=0.15, freq_hz=110.0)
    _track(src / "two" / "s2.wav", 4, level=0.05, freq_hz=440.0)
    (src / "bad").mkdir()
    (src / "bad" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt junk that is not audio")
    ref = root / "ref"
    ref.mkdir()
    for name in ("one/s1", "two/s2"):
        out = ref / f"{name.replace('/', '_')}.wav"
        assert main(["master", str(src / f"{name}.wav"), "-o", str(out), "--no-session", "--no-progress"]) == 0
    assert main(["album", str(src / "album" / "t1.wav"), str(src / "album" / "t2.wav"), "-o", str(ref / "album"),
                 "--no-progress"]) == 0
    return {"root": root, "src": src, "ref": ref}


def _reference(material: dict[str, Path], rel: str) -> Path:
    ref = material["ref"]
    return ref / "album" / Path(rel).name if rel.startswith("album/") else ref / rel.replace("/", "_")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0", memory_limit="2GiB")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _opts(material: dict[str, Path], out: Path, **kw) -> BatchOptions:
    return BatchOptions(source=str(material["src"]), out=str(out), album_by="folder", progress=False, **kw)


def _lufs_of(path: str) -> float:
    x, sr = sf.read(path, always_2d=True)
    st = pyebur128.R128State(x.shape[1], sr, pyebur128.MeasurementMode.MODE_I)
    st.add_frames(np.ascontiguousarray(x, dtype=np.float64).ravel(), x.shape[0])
    return pyebur128.get_loudness_global(st)


def _stamp(path: str) -> tuple[int, int]:
    s = os.stat(path)
    return s.st_ino, s.st_mtime_ns


def _no_temp_files(out: Path) -> None:
    leftovers = [p for p in out.rglob("*.tmp")]
    assert leftovers == []


def test_batch_equals_master_and_album_then_resume_does_nothing(material, client, tmp_path):
    out = tmp_path / "out"
    res = run_batch(_opts(material, out), client=client, echo=lambda s: None)
    rows = {r["rel"]: r for r in res.rows}
    assert sorted(rows) == ["album/t1.wav", "album/t2.wav", "bad/broken.wav", "one/s1.wav", "two/s2.wav"]
    assert rows["bad/broken.wav"]["status"] == "failed"
    assert rows["bad/broken.wav"]["error_code"] == "corrupt_file"
    album_doc = json.loads((material["ref"] / "album" / "album.json").read_text())
    album_targets = {Path(t["output"]).name: t["target_lufs"] for t in album_doc["tracks"]}
    for rel in ("album/t1.wav", "album/t2.wav", "one/s1.wav", "two/s2.wav"):
        r = rows[rel]
        assert r["status"] == "done", r
        # sample-identical (byte-identical files) to `reamaster master` / `reamaster album`
        assert Path(r["output"]).read_bytes() == _reference(material, rel).read_bytes(), rel
        # the ledger's figures are the written file's, on an independent meter
        assert r["after_lufs"] == pytest.approx(_lufs_of(r["output"]), abs=0.05)
        assert r["after_true_peak_dbtp"] <= r["ceiling_dbtp"] + 1e-6
        assert r["output_hash"] and r["input_hash"] and r["worker"] and r["seconds"] > 0
    # album rows: the album rules' targets (the quiet track keeps 75% of its distance to the loudest)
    for rel in ("album/t1.wav", "album/t2.wav"):
        assert rows[rel]["album"] == "album"
        assert rows[rel]["target_lufs"] == pytest.approx(album_targets[Path(rel).name], abs=0.01)
    assert rows["album/t1.wav"]["target_lufs"] != rows["album/t2.wav"]["target_lufs"]
    assert rows["one/s1.wav"]["target_lufs"] == -14.0
    # the ledger file holds the same rows; the report counts them
    on_disk = ledger.read_ledger(res.ledger_path)
    assert [r["key"] for r in on_disk] == [r["key"] for r in res.rows]
    page = Path(res.report_path).read_text()
    assert "4 of 4 mastered tracks" in page and "corrupt_file" in page and "<svg" in page
    _no_temp_files(out)

    # --resume: nothing is mastered again, no output is touched
    stamps = {rel: _stamp(rows[rel]["output"]) for rel in rows if rows[rel]["status"] == "done"}
    again = run_batch(_opts(material, out, resume=True), client=client, echo=lambda s: None)
    statuses = {r["rel"]: (r["status"], r["error_code"]) for r in again.rows}
    assert statuses == {"album/t1.wav": ("skipped", "unchanged"), "album/t2.wav": ("skipped", "unchanged"),
                        "one/s1.wav": ("skipped", "unchanged"), "two/s2.wav": ("skipped", "unchanged"),
                        "bad/broken.wav": ("failed", "corrupt_file")}
    assert {rel: _stamp(rows[rel]["output"]) for rel in stamps} == stamps
    skipped = {r["rel"]: r for r in again.rows}
    assert skipped["one/s1.wav"]["after_lufs"] == rows["one/s1.wav"]["after_lufs"]  # figures carried over

    # an output damaged behind our back is redone; other tracks stay untouched
    Path(rows["two/s2.wav"]["output"]).write_bytes(b"damaged")
    third = run_batch(_opts(material, out, resume=True), client=client, echo=lambda s: None)
    st = {r["rel"]: r["status"] for r in third.rows}
    assert st["two/s2.wav"] == "done" and st["one/s1.wav"] == "skipped" and st["album/t1.wav"] == "skipped"
    assert Path(rows["two/s2.wav"]["output"]).read_bytes() == _reference(material, "two/s2.wav").read_bytes()


def test_manifest_with_duplicate_path_and_per_row_preset(material, client, tmp_path):
    src = material["src"]
    manifest = tmp_path / "list.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "preset", "output"])
        w.writerow([str(src / "one" / "s1.wav"), "", "first.wav"])
        w.writerow([str(src / "one" / "s1.wav"), "", "again.wav"])  # the same file twice
        w.writerow([str(src / "two" / "s2.wav"), "apple", "quiet.wav"])
    out = tmp_path / "out"
    res = run_batch(BatchOptions(source=str(manifest), out=str(out), progress=False), client=client,
                    echo=lambda s: None)
    rows = res.rows
    assert [(r["rel"], r["status"], r["error_code"]) for r in rows] == [
        ("first.wav", "done", None), ("again.wav", "skipped", "duplicate_input"), ("quiet.wav", "done", None)]
    assert not (out / "again.wav").exists()
    assert (out / "first.wav").read_bytes() == _reference(material, "one/s1.wav").read_bytes()
    assert rows[2]["target_lufs"] == -16.0
    assert _lufs_of(str(out / "quiet.wav")) == pytest.approx(-16.0, abs=0.2)
    assert sorted(p.name for p in out.glob("*.wav")) == ["first.wav", "quiet.wav"]


def _make_read_only(path: Path) -> bool:
    path.chmod(0o555)
    if os.geteuid() != 0:
        return True
    # root ignores permission bits; the immutable attribute stops root too
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def test_read_only_output_folder_is_refused_before_any_work(material, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    if not _make_read_only(out):
        pytest.skip("cannot make a read-only folder here (no chattr as root)")
    try:
        status = main(["batch", str(material["src"]), "-o", str(out), "--workers", "1", "--no-progress"])
        err = capsys.readouterr().err
        assert status == 2
        assert "cannot write into the output folder" in err and "[bad_output]" in err
        assert list(out.iterdir()) == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(out)], check=False)
        out.chmod(0o755)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(material, client, tmp_path):
    killed: list[str] = []

    def kill_a_busy_worker(rec: dict) -> None:
        if killed:
            return
        busy = [addr for addr, keys in client.processing().items() if keys]
        if busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(busy[0])

    out = tmp_path / "out"
    res = run_batch(_opts(material, out), client=client, echo=lambda s: None, on_record=kill_a_busy_worker)
    assert killed, "no worker was busy when the first record arrived"
    rows = {r["rel"]: r for r in res.rows}
    assert len(res.rows) == 5 and len({r["key"] for r in res.rows}) == 5
    for rel in ("album/t1.wav", "album/t2.wav", "one/s1.wav", "two/s2.wav"):
        assert rows[rel]["status"] == "done", rows[rel]
        assert Path(rows[rel]["output"]).read_bytes() == _reference(material, rel).read_bytes()
    assert len(ledger.read_ledger(res.ledger_path)) == 5
    assert list(ledger.records_dir(str(out)).glob("*.json")) == []  # compacted into the ledger
    _no_temp_files(out)


def test_client_killed_mid_batch_then_resume(material, client, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([str(VENV_BIN / "reamaster"), "batch", str(material["src"]), "-o", str(out),
                             "--album-by", "folder", "--workers", "1", "--no-progress"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = ledger.records_dir(str(out))
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            done = [p for p in records.glob("*.json") if json.loads(p.read_text())["status"] == "done"] \
                if records.is_dir() else []
            if done or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its whole local cluster
        proc.wait()
    before = {json.loads(p.read_text())["key"]: json.loads(p.read_text()) for p in records.glob("*.json")}
    done_before = {k: r for k, r in before.items() if r["status"] == "done"}
    assert done_before, "the batch was killed before any track was recorded"
    stamps = {k: _stamp(r["output"]) for k, r in done_before.items()}

    res = run_batch(_opts(material, out, resume=True), client=client, echo=lambda s: None)
    rows = {r["rel"]: r for r in res.rows}
    assert len(res.rows) == 5 and len({r["key"] for r in res.rows}) == 5
    for rel in ("album/t1.wav", "album/t2.wav", "one/s1.wav", "two/s2.wav"):
        r = rows[rel]
        assert r["status"] in ("done", "skipped")
        assert Path(r["output"]).read_bytes() == _reference(material, rel).read_bytes()
    for key, r in done_before.items():
        row = next(x for x in res.rows if x["key"] == key)
        assert row["status"] == "skipped"  # recorded before the kill: not mastered again
        assert _stamp(r["output"]) == stamps[key]
    assert rows["bad/broken.wav"]["status"] == "failed"
    _no_temp_files(out)


def test_separately_started_scheduler_and_worker(material, tmp_path):
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                               "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 120
        address = ""
        while not address and time.monotonic() < deadline:  # dask writes the file in place: wait for all of it
            try:
                address = json.loads(sched_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen([str(VENV_BIN / "dask"), "worker", address, "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                                       "--host", "127.0.0.1",
                                       "--memory-limit", "2GiB"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        out = tmp_path / "out"
        status = main(["batch", str(material["src"] / "one"), "-o", str(out), "--scheduler", address,
                       "--no-progress"])
        assert status == 0
        assert (out / "s1.wav").read_bytes() == _reference(material, "one/s1.wav").read_bytes()
        row, = ledger.read_ledger(str(out / "ledger.parquet"))
        assert row["status"] == "done" and "127.0.0.1" in row["worker"]
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_dry_run_writes_nothing(material, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(material["src"]), "-o", str(out), "--album-by", "folder", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "5 row(s)" in text and "album/t1.wav" in text and "album album" in text
    assert not out.exists()


def test_album_by_tag_groups_tagged_files_with_the_album_rules(material, client, tmp_path):
    src = tmp_path / "tagged"
    src.mkdir()
    for name, tag in (("album/t1", "Record"), ("album/t2", "Record"), ("one/s1", None)):
        x, sr = sf.read(material["src"] / f"{name}.wav", always_2d=True)
        with sf.SoundFile(src / f"{Path(name).name}.wav", "w", sr, x.shape[1], "PCM_24") as f:
            if tag:
                f.album = tag
            f.write(x)  # the same samples, now with an album tag
    out = tmp_path / "out"
    res = run_batch(BatchOptions(source=str(src), out=str(out), album_by="tag", progress=False), client=client,
                    echo=lambda s: None)
    rows = {r["rel"]: r for r in res.rows}
    assert rows["t1.wav"]["album"] == rows["t2.wav"]["album"] == "Record"
    assert rows["s1.wav"]["album"] is None
    assert (out / "t1.wav").read_bytes() == _reference(material, "album/t1.wav").read_bytes()
    assert (out / "t2.wav").read_bytes() == _reference(material, "album/t2.wav").read_bytes()
    assert (out / "s1.wav").read_bytes() == _reference(material, "one/s1.wav").read_bytes()
