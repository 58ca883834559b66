"""``reamaster stems``: master a song from its stems.

    reamaster stems STEM.wav ... -o DIR [--preset P] [--lufs X] [--ceiling Y] [--bits 16|24|32]
                                        [--stem-bits 32|24] [--report] [--force]

Each STEM is ``NAME=FILE`` or a file whose name gives the stem's name (``vocals.wav`` -> vocals);
the name's role (drums, bass, music, vocals, other) decides what may be done to it (see
:mod:`dsp.decide.stems`). Writes into DIR (created when its parent exists):

* ``<name>.wav`` per processed stem, **32-bit float by default** so that the written stems add
  up to the pre-limiter master bus to float rounding (``--stem-bits 24`` gives smaller files
  whose sum is exact only to 24-bit quantisation, about 1e-7);
* ``master.wav`` (the preset's word length, or ``--bits``);
* ``stems.json``: the per-stem measurements, decisions and what was left alone, each stem's chain,
  the bus chain, before/after of the master and a check of the written stems' sum;
* with ``--report``, ``report.json`` and ``report.html``: the usual mastering report of the bus.

Existing files are refused unless ``--force``; an input is never written over, even with
``--force``. Every refusal is one line, ``reamaster: <message> [code]``, exit status 2, and is
made before any audio is processed.

Wiring into ``server/cli.py``: ``add_stems_parser(sub)`` and ``cmd_stems(args)``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_REFUSED = 2
STEMS_REPORT_FORMAT = "reamaster.stems"
STEMS_REPORT_VERSION = 1
STEM_FORMATS = {32: "wav32f", 24: "wav24"}


def add_stems_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``stems`` command to an argparse subparsers object; returns its parser."""
    from dsp.decide.presets import PRESETS

    s = subparsers.add_parser("stems", help="master a song from its stems (drums, bass, music, vocals, other)")
    s.add_argument("stems", nargs="+", metavar="STEM",
                   help="stem files as NAME=FILE, or FILE (the name comes from the file: vocals.wav -> vocals)")
    s.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for <name>.wav per stem, master.wav and stems.json (created if missing)")
    s.add_argument("--preset", choices=tuple(PRESETS), default=None, help="delivery target (default: streaming)")
    s.add_argument("--lufs", type=float, default=None, help="integrated loudness target, LUFS (overrides the preset)")
    s.add_argument("--ceiling", type=float, default=None, help="true-peak ceiling, dBTP (overrides the preset)")
    s.add_argument("--bits", type=int, choices=(16, 24, 32), default=None,
                   help="master.wav word length (default: the preset's; 32 = float)")
    s.add_argument("--stem-bits", type=int, choices=(32, 24), default=32,
                   help="processed stems: 32 = float (default; they sum exactly to the bus) or 24-bit")
    s.add_argument("--report", action="store_true",
                   help="also write report.json and report.html (the mastering report of the bus)")
    s.add_argument("--force", action="store_true", help="overwrite existing output files (never an input)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    return s


def parse_stem_args(specs: list[str]) -> dict[str, str]:
    """``NAME=FILE`` or ``FILE`` arguments -> {name: path}. An argument that names an existing
    file is a file even when it holds '='."""
    from dsp.decide.stems import check_stem_name
    from dsp.errors import InputError

    out: dict[str, str] = {}
    lower: dict[str, str] = {}
    for spec in specs:
        if "=" in spec and not os.path.exists(spec):
            name, path = spec.split("=", 1)
            if not path:
                raise InputError(f"{spec!r}: give a file after '=' (NAME=FILE)")
        else:
            name, path = Path(spec).stem, spec
        check_stem_name(name)
        if name.lower() in lower:
            raise InputError(f"two stems are called {name!r} ({lower[name.lower()]} and {path}); "
                             "name them apart with NAME=FILE")
        lower[name.lower()] = path
        out[name] = path
    return out


def output_paths(folder: Path, names: list[str], *, report: bool) -> dict[str, Path]:
    """Every file the command writes, keyed by what it is (stem names, master, stems.json, reports)."""
    paths = {f"stem:{n}": folder / f"{n}.wav" for n in names}
    paths["master"] = folder / "master.wav"
    paths["stems.json"] = folder / "stems.json"
    if report:
        paths["report.json"] = folder / "report.json"
        paths["report.html"] = folder / "report.html"
    return paths


def _check_folder(folder: Path, paths: dict[str, Path], inputs: list[str], force: bool) -> None:
    from dsp.errors import FileMissingError, OutputError

    from .cli import _check_destinations

    for p in inputs:
        if not os.path.exists(p):
            raise FileMissingError(f"file not found: {p}")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; choose another output folder")
    if not folder.exists():
        if not folder.absolute().parent.is_dir():
            raise OutputError(f"the folder {folder.absolute().parent} does not exist; create it first")
        return  # a new folder: nothing in it to collide with
    _check_destinations([str(p) for p in paths.values()], inputs=inputs, force=force)


def written_sum_error(stems: dict[str, Any], bus: Any, fmt: str, block: int = 1 << 16) -> float:
    """Largest |sum of the stems as written (``fmt``) - bus|: float32 rounding for wav32f,
    24-bit quantisation (and any clipping) for wav24."""
    import numpy as np

    arrays = list(stems.values())
    worst = 0.0
    for i in range(0, bus.shape[1], block):
        acc = np.zeros((bus.shape[0], min(block, bus.shape[1] - i)))
        for x in arrays:
            seg = x[:, i:i + block].astype(np.float64)
            if fmt == "wav24":
                seg = np.clip(np.rint(seg * 2.0**23), -2.0**23, 2.0**23 - 1) / 2.0**23
            acc += seg
        worst = max(worst, float(np.max(np.abs(acc - bus[:, i:i + block]))))
    return worst


def cmd_stems(args: argparse.Namespace) -> int:
    """Run ``reamaster stems``; returns the exit status (2 with one line on stderr when refused)."""
    from dsp.errors import ReaMasterError

    try:
        return _run(args)
    except ReaMasterError as err:
        print(f"reamaster: {err} [{err.code}]", file=sys.stderr)
        return EXIT_REFUSED


def _run(args: argparse.Namespace) -> int:
    from dsp.decide.presets import delivery
    from dsp.io.audio_io import atomic_write_text, output_format_for, write_audio

    named = parse_stem_args(args.stems)
    folder = Path(args.output)
    paths = output_paths(folder, list(named), report=args.report)
    inputs = list(named.values())
    _check_folder(folder, paths, inputs, args.force)
    d = delivery(args.preset, target_lufs=args.lufs, ceiling_dbtp=args.ceiling)
    master_fmt = output_format_for(paths["master"], args.bits if args.bits else (16 if d.bit_depth == 16 else None))
    stem_fmt = STEM_FORMATS[args.stem_bits]

    from dsp.decide.stems import master_stems, read_stems

    from .progress import ProgressBar

    t0 = time.perf_counter()
    stems, sr = read_stems(named)
    seconds = next(iter(stems.values())).shape[1] / sr
    show = args.progress if args.progress is not None else (seconds >= 30.0 and sys.stderr.isatty())
    bar = ProgressBar(enabled=bool(show))
    try:
        result = master_stems(stems, sr, d, progress=bar)
        bar("writing", 1.0)
    finally:
        bar.close()
    del stems
    elapsed = time.perf_counter() - t0

    folder.mkdir(exist_ok=True)
    written = {n: write_audio(paths[f"stem:{n}"], x, sr, fmt=stem_fmt, force=args.force, protect=inputs)
               for n, x in result.stems.items()}
    master_written = write_audio(paths["master"], result.master, sr, fmt=master_fmt, force=args.force,
                                 protect=inputs)
    sum_error = written_sum_error(result.stems, result.bus, stem_fmt)
    report = _bus_report(named, paths, d, result, master_written)
    doc = stems_document(named, paths, d, result, written, master_written, sum_error, elapsed, report)
    atomic_write_text(paths["stems.json"], json.dumps(doc, indent=2, allow_nan=False) + "\n",
                      force=args.force, protect=inputs)
    if args.report:
        from .report import render_html

        atomic_write_text(paths["report.json"], json.dumps(report, indent=2, allow_nan=False) + "\n",
                          force=args.force, protect=inputs)
        atomic_write_text(paths["report.html"], render_html(report), force=args.force, protect=inputs)
    print(format_stems_summary(doc, report))
    return 0


def _bus_report(named: dict[str, str], paths: dict[str, Path], d: Any, result: Any, written: Any) -> dict[str, Any]:
    from .report import build_report

    report = build_report(" + ".join(named.values()), str(paths["master"]), d, result.as_master_result(), written)
    report["stems"] = {n: {"role": s["role"], "decisions": s["decisions"], "left_alone": s["left_alone"]}
                       for n, s in result.stem_report["stems"].items()}
    return report


def stems_document(named: dict[str, str], paths: dict[str, Path], d: Any, result: Any, written: dict[str, Any],
                   master_written: Any, sum_error: float, elapsed_s: float, report: dict[str, Any]) -> dict[str, Any]:
    """The stems.json document."""
    sr = result.before.sample_rate
    stems = {}
    for n, entry in result.stem_report["stems"].items():
        w = written[n]
        stems[n] = {"input": named[n], "output": w.path, "clipped_samples": w.clipped_samples, **entry}
    return {
        "format": STEMS_REPORT_FORMAT,
        "version": STEMS_REPORT_VERSION,
        "sample_rate": sr,
        "channels": result.before.channels,
        "duration_s": result.before.duration_s,
        "delivery": report["delivery"],
        "master": {"output": master_written.path, "output_format": master_written.fmt,
                   "dithered": master_written.dithered, "clipped_samples": master_written.clipped_samples},
        "stem_format": next(iter(written.values())).fmt if written else None,
        "sum_check": {
            "what": "largest |sum of the written stems - pre-limiter master bus|",
            "max_abs_difference": float(f"{sum_error:.3g}"),
        },
        "stems": stems,
        "balance": result.stem_report["balance"],
        "notes": result.stem_report["notes"],
        "mix_lufs": result.stem_report["mix_lufs"],
        "bus_lufs": result.stem_report["bus_lufs"],
        "bus_chain": result.bus_chain.to_dict(),
        "before": report["before"],
        "after": report["after"],
        "limiter": result.limiter,
        "loudness_iterations": result.iterations,
        "comparison": report["comparison"],
        "processing_seconds": round(elapsed_s, 2),
    }


def format_stems_summary(doc: dict[str, Any], report: dict[str, Any]) -> str:
    """The text printed after a run: the usual before/after table, then one block per stem."""
    from .cli import format_summary

    lines = [format_summary(report, title=f"{len(doc['stems'])} stems")]
    lines.append("  stems:")
    for n, s in doc["stems"].items():
        m = s["measured"]
        rel = m.get("relative_to_mix_lu")
        own = [x for x in s["decisions"] if not x["stage"].startswith("bus ")]
        head = f"    {n} ({s['role']}" + (f", {rel:+.1f} LU against the mix)" if rel is not None else ", silent)")
        lines.append(head + (":" if own else ": left alone") + f" -> {s['output']}")
        for x in own:
            lines.append(f"      - {x['stage']}: {x['why']}")
    folded = [st for st in doc["bus_chain"]["stages"] if not st["enabled"]]
    if folded:
        lines.append("  bus corrections, applied inside every stem so the stems still sum to the bus:")
        for st in folded:
            lines.append(f"    - {st['label'] or st['kind']}: {st['why']}")
    for note in doc["notes"]:
        lines.append(f"  note: {note}")
    lines.append(f"  written stems sum to the pre-limiter bus within {doc['sum_check']['max_abs_difference']:.2g} "
                 f"({doc['stem_format']}); stems.json has every measurement and what was left alone")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m server.stems_cli`` (the same command before it is wired into ``reamaster``)."""
    p = argparse.ArgumentParser(prog="reamaster")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_stems_parser(sub)
    return cmd_stems(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
