"""Speed, memory and measured correctness of `reamaster master`, beside the peer Matchering.

    ./install/setup.sh bench              # installs what it needs, then runs this
    .venv/bin/python benchmarks/bench_master.py [--files A.wav B.wav ...] [--peer-python PY]
                                                [--sweep 1,10,60,120] [--no-server]

For every track (real mixed music from Debian's game-music packages, converted once to 24-bit
WAV under bench_data/) it runs, each in a fresh process:
  * ours, whole process: exactly `reamaster master FILE -o OUT` (the console script), wall time
    and peak RSS (VmHWM of that process);
  * ours in-process: the same streaming master timed without imports, and `analyze` alone;
  * the peer Matchering 2.0.6 on the same file, with the next track as its reference;
then measures our master with independent meters (libebur128 via pyebur128, ffmpeg's ebur128
filter) and prints seconds per minute of audio, peak RSS and the ratios. Also: import time of the
master command (`python -X importtime`, and `reamaster --help` whole process), a warm server's
time per minute (a real `reamaster serve` daemon, master by path, after one warm-up job), and a
length sweep (tracks resampled to 48 kHz and concatenated to 1, 10, 60 and 120 minutes): wall
time, time per minute and peak RSS of `reamaster master` per length.
The machine is shared: compare figures from the same run (the ratio), not across runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench_data"
MUSIC_DIRS = ["/usr/share/games/warzone2100/music", "/usr/share/games/singularity/music", "/usr/share/games/ufoai"]

# Peak memory is read by each child from its own /proc/self/status (VmHWM, a fresh address space
# after exec). wait4's ru_maxrss is not used: a child forked from this (large) parent inherits the
# parent's resident high-water mark, so it over-reports.
PEAK = r"""
def peak_rss_mb():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0]) / 1024.0
"""

OURS = PEAK + r"""
import json, sys, time
t0 = time.perf_counter()
from dsp.io.audio_io import AudioSource, read_audio, write_audio, check_audio
from dsp.measure.analysis import analyze, analyze_source
from dsp.decide.presets import delivery
from server.service.mastering import master_file
t1 = time.perf_counter()
src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "reference":
    from dsp.decide.reference import master_to_reference, reference_target
    x, sr = read_audio(src)
    r, rsr = read_audio(sys.argv[4])
    res, err = master_to_reference(x, sr, reference_target([analyze(r, rsr)]), delivery("streaming"))
    write_audio(dst, res.audio, sr, fmt="wav24", force=True)
    out = {"integrated_lufs": res.after.integrated_lufs, "true_peak_dbtp": res.after.true_peak_dbtp,
           "tonal_error_db": err, "frames": x.shape[1], "sample_rate": sr}
elif mode == "analyze":  # what `reamaster analyze FILE` does: one block-wise read
    s = AudioSource(src)
    a = analyze_source(s)
    out = {"integrated_lufs": a.integrated_lufs, "true_peak_dbtp": a.true_peak_dbtp, "lra_lu": a.lra_lu,
           "frames": s.frames, "sample_rate": s.sample_rate}
elif mode == "passes":  # a warm master (the second of two) timed per pass: wall and process CPU
    import resource
    def cpu():
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    marks = []
    def progress(stage, fraction):
        if not marks or marks[-1][0] != stage:
            marks.append((stage, time.perf_counter(), cpu()))
        return True
    for _ in range(2):
        marks.clear()
        r, w = master_file(src, dst, delivery("streaming"), fmt="wav24", force=True, choices={"style": "auto"},
                           progress=progress)
        marks.append(("end", time.perf_counter(), cpu()))
    out = {"passes": [(a[0], b[1] - a[1], b[2] - a[2]) for a, b in zip(marks, marks[1:])],
           "frames": w.frames, "sample_rate": w.sample_rate}
else:  # what `reamaster master FILE -o OUT` does by default (auto style, streaming)
    r, w = master_file(src, dst, delivery("streaming"), fmt="wav24", force=True, choices={"style": "auto"})
    out = {"integrated_lufs": r.after.integrated_lufs, "true_peak_dbtp": r.after.true_peak_dbtp,
           "iterations": r.iterations, "frames": w.frames, "sample_rate": w.sample_rate}
t2 = time.perf_counter()
out.update(import_s=t1 - t0, work_s=t2 - t1, peak_rss_mb=peak_rss_mb())
print(json.dumps(out))
"""

# The console script itself, run whole (interpreter start, imports, work, exit), reporting its own VmHWM.
CLI = PEAK + r"""
import atexit, json, runpy, sys
atexit.register(lambda: sys.stderr.write("\nBENCH " + json.dumps({"peak_rss_mb": peak_rss_mb()}) + "\n"))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

PEER = PEAK + r"""
import json, sys, time
t0 = time.perf_counter()
import matchering as mg
t1 = time.perf_counter()
mg.process(target=sys.argv[1], reference=sys.argv[2], results=[mg.pcm24(sys.argv[3])])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "work_s": t2 - t1, "peak_rss_mb": peak_rss_mb()}))
"""


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[dict, float, float]:
    """Run a child; return its JSON line, wall seconds and its own peak RSS in MB (VmHWM)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {err.decode()[-2000:]}")
    doc = json.loads(out.decode().strip().splitlines()[-1])
    return doc, wall, doc["peak_rss_mb"]


REAMASTER = ROOT / ".venv" / "bin" / "reamaster"


def run_cli(args: list[str], *, importtime: bool = False) -> tuple[float, float, dict[str, float]]:
    """Run the real console script ``reamaster ARGS`` in a fresh process; return its wall seconds,
    its own peak RSS (MB) and, with ``importtime``, ``python -X importtime``'s cumulative seconds
    per top-level module it imported."""
    py = str(ROOT / ".venv" / "bin" / "python")
    argv = [py] + (["-X", "importtime"] if importtime else []) + ["-c", CLI, str(REAMASTER), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"reamaster {' '.join(args[:3])} failed: {proc.stderr[-2000:]}")
    rss = json.loads(proc.stderr.rsplit("BENCH ", 1)[1].splitlines()[0])["peak_rss_mb"]
    imports: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cum, name = line[len("import time:"):].split("|")
            if cum.strip().isdigit() and not name.startswith("  "):  # top level: one leading space
                imports[name.strip()] = imports.get(name.strip(), 0.0) + int(cum) / 1e6
    return wall, rss, imports


def warm_server_seconds(files: list[Path], repeats: int = 2) -> list[tuple[str, float, float]]:
    """A real `reamaster serve` daemon (one worker, warmed as it does at start), each file mastered
    by path ``repeats`` times after one warm-up job; returns (file, best seconds, minutes)."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT))
    from bench_server import start_server
    from server.wire.client import Client

    out = []
    with tempfile.TemporaryDirectory(prefix="reamaster-bench-srv-") as tmp:
        tmp_p = Path(tmp)
        proc, conn = start_server(tmp_p, "--port", "0", "--workers", "1")
        try:
            with Client.connect(conn, timeout=600.0, project_dir=[str(tmp_p), *sorted({str(f.parent) for f in files})]) as c:
                while c.status()["workers"]["ready"] < c.info["workers"]:
                    time.sleep(0.05)
                c.master_path(files[0], tmp_p / "warmup.wav")
                for i, f in enumerate(files):
                    best = math.inf
                    for k in range(repeats):
                        t0 = time.perf_counter()
                        c.master_path(f, tmp_p / f"srv{i}-{k}.wav")
                        best = min(best, time.perf_counter() - t0)
                    out.append((f.name, best, sf.info(str(f)).duration / 60))
                c.shutdown()
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return out


def sweep_inputs(files: list[Path], minutes: list[int]) -> list[Path]:
    """bench_data/sweep-<N>min.wav: the tracks resampled to 48 kHz (resample_poly) and concatenated,
    repeated with a little level change each round until N minutes; made once, block by block."""
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    from dsp.io.audio_io import AudioWriter

    out = []
    for m in minutes:
        dst = DATA / f"sweep-{m}min.wav"
        out.append(dst)
        if dst.exists():
            continue
        need, done, k = int(m * 60 * 48000), 0, 0
        with AudioWriter(dst, 48000, 2, fmt="wav24") as w:
            while done < need:
                f = files[k % len(files)]
                x, sr = sf.read(str(f), dtype="float32", always_2d=True)
                if sr != 48000:
                    g = math.gcd(48000, sr)
                    x = resample_poly(x, 48000 // g, sr // g, axis=0).astype(np.float32)
                x = x[: need - done].T * np.float32(10 ** (-(k // len(files) % 3) / 20))
                w.write(np.clip(x, -1.0, 1.0))
                done += x.shape[1]
                k += 1
            w.commit()
    return out


def prepare_inputs(limit: int, min_s: float, max_s: float) -> list[Path]:
    import soundfile as sf

    DATA.mkdir(exist_ok=True)
    per_dir: list[list[Path]] = []
    for d in MUSIC_DIRS:
        tracks = []
        for p in sorted(Path(d).rglob("*")) if Path(d).is_dir() else []:
            if p.suffix not in (".ogg", ".opus"):
                continue
            info = sf.info(str(p))
            if min_s <= info.duration <= max_s and info.channels == 2:
                tracks.append(p)
        per_dir.append(tracks)
    # alternate between the packages so several styles are represented
    found = [t for group in zip(*[g for g in per_dir if g]) for t in group] if any(per_dir) else []
    picked: list[Path] = []
    for p in found[: limit]:
        dst = DATA / (p.parent.name + "-" + p.stem.replace(" ", "_") + ".wav")
        if not dst.exists():
            data, sr = sf.read(str(p), dtype="float32", always_2d=True)
            tmp = dst.with_suffix(".tmp.wav")
            sf.write(str(tmp), data, sr, subtype="PCM_24")
            os.replace(tmp, dst)
        picked.append(dst)
    return picked


def ffmpeg_ebur128(path: Path) -> tuple[float, float] | None:
    if not shutil.which("ffmpeg"):
        return None
    r = subprocess.run(["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128=peak=true",
                        "-f", "null", "-"], capture_output=True, text=True)
    text = r.stderr[r.stderr.rfind("Summary:"):]
    integ = peak = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("I:"):
            integ = float(line.split()[1])
        if line.startswith("Peak:"):
            peak = float(line.split()[1])
    return (integ, peak) if integ is not None and peak is not None else None


def pyebur128_meter(path: Path) -> tuple[float, float]:
    import numpy as np
    import pyebur128 as eb
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    st = eb.R128State(data.shape[1], sr, eb.MeasurementMode.MODE_I | eb.MeasurementMode.MODE_TRUE_PEAK)
    st.add_frames(np.ascontiguousarray(data).ravel(), data.shape[0])
    tp = max(eb.get_true_peak(st, c) for c in range(data.shape[1]))
    return eb.get_loudness_global(st), 20 * float(np.log10(tp))


def quality(prefix: str, master: Path, reference: Path) -> dict:
    """Tonal error (1/3-octave, 40 Hz-16 kHz, level removed, mean |dB|), loudness difference and
    true peak of a reference-matched master, measured with libebur128 for loudness and peak."""
    from dsp.decide.reference import reference_target
    from dsp.io.audio_io import read_audio
    from dsp.measure.analysis import analyze

    m, msr = read_audio(master)
    r, rsr = read_audio(reference)
    target = reference_target([analyze(r, rsr)])
    f = target.centers_hz
    am = analyze(m, msr)
    n = min(len(f), len(am.spectrum.level_db))
    import numpy as np

    from dsp.decide.master import tonal_deviation_db
    dev = tonal_deviation_db(f[:n], np.asarray(am.spectrum.level_db)[:n], target.level_db[:n])
    sel = (f[:n] >= 40) & (f[:n] <= 16000)
    m_lufs, m_tp = pyebur128_meter(master)
    r_lufs, _ = pyebur128_meter(reference)
    return {f"{prefix}_tonal_db": float(np.mean(np.abs(dev[sel]))), f"{prefix}_lufs_diff": m_lufs - r_lufs,
            f"{prefix}_tp": m_tp}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", nargs="*", help="WAV files to use (default: Debian game music)")
    ap.add_argument("--tracks", type=int, default=6)
    ap.add_argument("--peer-python", default=None, help="python with matchering installed")
    ap.add_argument("--sweep", default="1,10,60,120", help="minutes for the length sweep ('' for none)")
    ap.add_argument("--no-server", action="store_true", help="skip the warm-server figures")
    args = ap.parse_args()
    files = [Path(f).resolve() for f in args.files] if args.files else prepare_inputs(args.tracks, 150, 330)
    if not files:
        print("no input files: install the Debian music packages or pass --files", file=sys.stderr)
        return 1
    py = str(ROOT / ".venv" / "bin" / "python")
    tmp = Path(tempfile.mkdtemp(prefix="reamaster-bench-"))
    rows = []
    for i, f in enumerate(files):
        out = tmp / f"{f.stem}.master.wav"
        wall, rss, _ = run_cli(["master", str(f), "-o", str(out), "--force"])
        ours, _, _ = run_child([py, "-c", OURS, str(f), str(tmp / "inproc.wav"), "master"])
        minutes = ours["frames"] / ours["sample_rate"] / 60
        ana, ana_wall, ana_rss = run_child([py, "-c", OURS, str(f), "-", "analyze"])
        row = {"file": f.name, "minutes": minutes, "ours_work": ours["work_s"], "ours_wall": wall, "ours_rss": rss,
               "ours_import": ours["import_s"], "iterations": ours["iterations"], "ana_work": ana["work_s"],
               "ana_rss": ana_rss, "ours_lufs": ours["integrated_lufs"], "ours_tp": ours["true_peak_dbtp"],
               "in_ours_lufs": ana["integrated_lufs"]}
        row["eb_lufs"], row["eb_tp"] = pyebur128_meter(out)
        row["in_eb_lufs"], _ = pyebur128_meter(f)
        ff = ffmpeg_ebur128(out)
        row["ff_lufs"], row["ff_tp"] = ff if ff else (None, None)
        ffin = ffmpeg_ebur128(f)
        row["in_ff_lufs"] = ffin[0] if ffin else None
        ref = files[(i + 1) % len(files)]
        ref_out = tmp / f"{f.stem}.reference.wav"
        refm, rwall, rrss = run_child([py, "-c", OURS, str(f), str(ref_out), "reference", str(ref)])
        row.update(ref_wall=rwall, ref_rss=rrss, ref_file=ref.name)
        row.update(quality("ours_ref", ref_out, ref))
        if args.peer_python:
            peer_out = tmp / f"{f.stem}.matchering.wav"
            try:
                peer, pwall, prss = run_child([args.peer_python, "-c", PEER, str(f), str(ref), str(peer_out)])
                row.update(peer_work=peer["work_s"], peer_wall=pwall, peer_rss=prss)
                row["peer_eb_lufs"], row["peer_eb_tp"] = pyebur128_meter(peer_out)
                row.update(quality("peer", peer_out, ref))
            except RuntimeError as exc:
                print(f"peer failed on {f.name}: {exc}", file=sys.stderr)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print_table(rows)

    print("\nCold start (whole process, fresh interpreter each)")
    help_wall, help_rss, _ = run_cli(["--help"])
    _, _, imports = run_cli(["master", str(files[0]), "-o", str(tmp / "imp.wav"), "--force"], importtime=True)
    _, _, ana_imports = run_cli(["analyze", str(files[0])], importtime=True)
    top = sorted(imports.items(), key=lambda kv: -kv[1])[:8]
    print(f"reamaster --help: {help_wall:.2f} s wall, {help_rss:.0f} MB")
    print(f"imports of `reamaster master` (python -X importtime, cumulative): {sum(imports.values()):.2f} s; "
          f"`reamaster analyze`: {sum(ana_imports.values()):.2f} s")
    print("  heaviest: " + ", ".join(f"{k} {v:.2f} s" for k, v in top))
    for mod in ("scipy.optimize", "numba"):
        print(f"  `reamaster analyze` imports {mod}: {'yes' if any(k.startswith(mod) for k in ana_imports) else 'no'}; "
              f"`--help`: {'yes' if mod in run_cli(['--help'], importtime=True)[2] else 'no'}")

    if not args.no_server:
        srv = warm_server_seconds(files[:2])
        print("\nWarm server (`reamaster serve`, 1 worker, master by path, best of 2 after a warm-up job)")
        for name, sec, mins in srv:
            print(f"{name[:42]:42} {mins:5.2f} min {sec:6.2f} s  {sec / mins:.3f} s per minute")
        print("Where a warm master's time goes (in-process, the second of two masters; CPU = the process, all threads)")
        labels = {"analysing": "measuring read + planning", "processing": "pre-limiter pass",
                  "writing": "limiter pass (limit, meter, write)"}
        for f in files[:2]:
            got, _, _ = run_child([py, "-c", OURS, str(f), str(tmp / "passes.wav"), "passes"])
            minutes = got["frames"] / got["sample_rate"] / 60
            parts = ", ".join(f"{labels.get(stage, stage)} {wall / minutes:.3f} s ({cpu / minutes:.3f} CPU-s)"
                              for stage, wall, cpu in got["passes"])
            total_wall, total_cpu = (sum(v[k] for v in got["passes"]) for k in (1, 2))
            print(f"{f.name[:42]:42} per minute: {parts}; total {total_wall / minutes:.3f} s, "
                  f"{total_cpu / minutes:.3f} CPU-s")

    minutes = [int(v) for v in args.sweep.split(",") if v.strip()]
    if minutes:
        print("\nLength sweep: `reamaster master` whole process on 48 kHz stereo 24-bit WAV "
              "(the tracks concatenated)")
        # "beyond first": (wall - the shortest run's wall) / (minutes - its minutes), the cost of
        # each further minute with the fixed start-up (imports, numba's one-time set-up) taken out
        print(f"{'minutes':>8} {'wall s':>8} {'s/min':>7} {'beyond first':>13} {'peak RSS MB':>12} "
              f"{'LUFS (libebur128 / ffmpeg > 10 min)':>36}")
        first: tuple[int, float] | None = None
        for m, f in zip(minutes, sweep_inputs(files, minutes), strict=True):
            out = tmp / f"sweep-{m}.master.wav"
            wall, rss, _ = run_cli(["master", str(f), "-o", str(out), "--force"])
            # libebur128 here reads the whole file; ffmpeg's ebur128 streams the long ones
            lufs = pyebur128_meter(out)[0] if m <= 10 else (ffmpeg_ebur128(out) or (float("nan"),))[0]
            beyond = f"{(wall - first[1]) / (m - first[0]):13.3f}" if first is not None and m > first[0] else f"{'-':>13}"
            first = first or (m, wall)
            print(f"{m:8d} {wall:8.1f} {wall / m:7.3f} {beyond} {rss:12.0f} {lufs:36.2f}", flush=True)
            out.unlink()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def print_table(rows: list[dict]) -> None:
    import numpy as np

    def spm(v, m):
        return f"{v / m:.3f}" if v is not None else "-"

    print("\nSpeed and memory (s per minute of audio; ours wall = `reamaster master FILE -o OUT`, whole process "
          "incl. interpreter start and imports; ours work = the same master in-process, imports excluded; "
          "RSS = peak, VmHWM)")
    print(f"{'file':42} {'min':>5} {'ours':>7} {'ours':>7} {'ours':>6} {'anlz':>6} {'peer':>7} {'peer':>7} {'peer':>6} {'ratio':>6}")
    print(f"{'':42} {'':>5} {'work':>7} {'wall':>7} {'MB':>6} {'work':>6} {'work':>7} {'wall':>7} {'MB':>6} {'wall':>6}")
    for r in rows:
        m = r["minutes"]
        pw = r.get("peer_work")
        print(f"{r['file'][:42]:42} {m:5.2f} {spm(r['ours_work'], m):>7} {spm(r['ours_wall'], m):>7} "
              f"{r['ours_rss']:6.0f} {spm(r['ana_work'], m):>6} {spm(pw, m):>7} "
              f"{spm(r.get('peer_wall'), m):>7} {r.get('peer_rss', 0):6.0f} "
              f"{(r['peer_wall'] / r['ours_wall']) if pw else float('nan'):6.1f}")
    tot = sum(r["minutes"] for r in rows)
    print("limiter renders per track: " + ", ".join(str(r["iterations"]) for r in rows)
          + "; whole-process ratio per track (peer wall / ours wall): "
          + ", ".join(f"{r['peer_wall'] / r['ours_wall']:.1f}" for r in rows if "peer_wall" in r))
    print(f"{'TOTAL / mean':42} {tot:5.2f} {sum(r['ours_work'] for r in rows) / tot:7.3f} "
          f"{sum(r['ours_wall'] for r in rows) / tot:7.3f} {max(r['ours_rss'] for r in rows):6.0f} "
          f"{sum(r['ana_work'] for r in rows) / tot:6.3f}", end="")
    if all("peer_work" in r for r in rows):
        print(f" {sum(r['peer_work'] for r in rows) / tot:7.3f} {sum(r['peer_wall'] for r in rows) / tot:7.3f} "
              f"{max(r['peer_rss'] for r in rows):6.0f} "
              f"{sum(r['peer_wall'] for r in rows) / sum(r['ours_wall'] for r in rows):6.1f}")
    else:
        print()
    print("\nLoudness and true peak of our master (target -14 LUFS, ceiling -1 dBTP), independent meters")
    print(f"{'file':42} {'ours I':>7} {'libebur128 I':>12} {'ffmpeg I':>9} {'libebur128 TP':>13} {'ffmpeg TP':>9}"
          f" {'peer TP':>8}")
    for r in rows:
        ff_i = f"{r['ff_lufs']:.1f}" if r["ff_lufs"] is not None else "-"
        ff_tp = f"{r['ff_tp']:.2f}" if r["ff_tp"] is not None else "-"
        peer_tp = f"{r['peer_eb_tp']:.2f}" if "peer_eb_tp" in r else "-"
        print(f"{r['file'][:42]:42} {r['ours_lufs']:7.2f} {r['eb_lufs']:12.2f} {ff_i:>9} {r['eb_tp']:13.2f} "
              f"{ff_tp:>9} {peer_tp:>8}")
    print("\nReference mode against the peer on the same mix/reference pairs (reference = next track)")
    print("tonal error = 1/3-octave bands 40 Hz-16 kHz, level removed, mean |dB|; loudness and true peak by libebur128")
    print(f"{'file':42} {'ours tonal':>10} {'peer tonal':>10} {'ours dLU':>8} {'peer dLU':>8} {'ours TP':>8} {'peer TP':>8}")
    for r in rows:
        pt = f"{r['peer_tonal_db']:.3f}" if "peer_tonal_db" in r else "-"
        pl = f"{r['peer_lufs_diff']:+.2f}" if "peer_lufs_diff" in r else "-"
        pp = f"{r['peer_tp']:+.2f}" if "peer_tp" in r else "-"
        print(f"{r['file'][:42]:42} {r['ours_ref_tonal_db']:10.3f} {pt:>10} {r['ours_ref_lufs_diff']:+8.2f} {pl:>8} "
              f"{r['ours_ref_tp']:+8.2f} {pp:>8}")
    ours_t = [r["ours_ref_tonal_db"] for r in rows]
    print(f"{'mean / worst':42} {np.mean(ours_t):10.3f} ", end="")
    if all("peer_tonal_db" in r for r in rows):
        peer_t = [r["peer_tonal_db"] for r in rows]
        print(f"{np.mean(peer_t):10.3f}   worst ours {max(ours_t):.3f}, peer {max(peer_t):.3f}")
    else:
        print(f"  worst ours {max(ours_t):.3f}")

    print("\nInput loudness: our meter against independent meters (LU)")
    print(f"{'file':42} {'ours':>7} {'libebur128':>10} {'ffmpeg':>7} {'|ours-eb|':>9}")
    for r in rows:
        ff = f"{r['in_ff_lufs']:.1f}" if r["in_ff_lufs"] is not None else "-"
        print(f"{r['file'][:42]:42} {r['in_ours_lufs']:7.2f} {r['in_eb_lufs']:10.2f} {ff:>7} "
              f"{abs(r['in_ours_lufs'] - r['in_eb_lufs']):9.3f}")


if __name__ == "__main__":
    sys.exit(main())
