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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from dsp.decide.presets import delivery
from dsp.decide.stems import check_stem_name, master_stems, read_stems
from dsp.errors import FileMissingError, InputError, OutputError
from dsp.io.audio_io import atomic_write_text, output_format_for

from ..service.report import render_html
from ..service.stems import STEM_FORMATS, output_paths, write_stems
from .common import check_destinations, format_summary
from .progress import ProgressBar


def parse_stem_args(specs: list[str]) -> dict[str, str]:
    """``NAME=FILE`` or ``FILE`` arguments -> {name: path}. An argument that names an existing
    file is a file even when it holds '='."""
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


def _check_folder(folder: Path, paths: dict[str, Path], inputs: list[str], force: bool) -> None:
    for p in inputs:
        if not os.path.exists(p):
            raise FileMissingError(f"file not found: {p}")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; choose another output folder")
    if not folder.exists():
        if not folder.absolute().parent.is_dir():
            raise OutputError(f"the folder {folder.absolute().parent} does not exist; create it first")
        return  # a new folder: nothing in it to collide with
    check_destinations([str(p) for p in paths.values()], inputs=inputs, force=force)


def run(args: argparse.Namespace) -> int:
    named = parse_stem_args(args.stems)
    folder = Path(args.output)
    paths = output_paths(folder, list(named), report=args.report)
    inputs = list(named.values())
    _check_folder(folder, paths, inputs, args.force)
    d = delivery(args.preset, target_lufs=args.lufs, ceiling_dbtp=args.ceiling)
    master_fmt = output_format_for(paths["master"], args.bits if args.bits else (16 if d.bit_depth == 16 else None))
    stem_fmt = STEM_FORMATS[args.stem_bits]

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

    doc, report, _, _ = write_stems(named, paths, d, result, stem_fmt=stem_fmt, master_fmt=master_fmt,
                                    force=args.force, elapsed_s=elapsed)
    if args.report:
        atomic_write_text(paths["report.json"], json.dumps(report, indent=2, allow_nan=False) + "\n",
                          force=args.force, protect=inputs)
        atomic_write_text(paths["report.html"], render_html(report), force=args.force, protect=inputs)
    print(format_stems_summary(doc, report))
    return 0


def format_stems_summary(doc: dict[str, Any], report: dict[str, Any]) -> str:
    """The text printed after a run: the usual before/after table, then one block per stem."""
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
