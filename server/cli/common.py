"""What several commands share: checking destinations before any work, the progress bar, the
decision choices of ``master``, and the before/after summary printed at the end."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from dsp.decide.master import Intent, MasterResult
from dsp.decide.presets import Delivery
from dsp.errors import FileMissingError, OutputError, OutputExistsError, OutputIsInputError
from dsp.io.audio_io import audio_info
from dsp.process.chain import Chain

from ..service import mastering
from .progress import ProgressBar

PROGRESS_MIN_SECONDS = 30.0  # files at least this long show a progress bar on a terminal


def check_destinations(paths: list[str | None], *, inputs: list[str], force: bool) -> None:
    """Refuse before any work is done: existing outputs without --force, outputs that are inputs,
    missing folders, the same output named twice."""
    seen: set[str] = set()
    in_real = {os.path.realpath(p) for p in inputs}
    for p in paths:
        if p is None:
            continue
        real = os.path.realpath(p)
        if real in in_real:
            raise OutputIsInputError(f"refusing to write over the input {p}; choose another output name")
        if real in seen:
            raise OutputError(f"{p} is named twice as an output")
        seen.add(real)
        if os.path.exists(p) and not force:
            raise OutputExistsError(f"{p} already exists; use --force to replace it")
        parent = Path(p).parent
        if not parent.is_dir():
            raise OutputError(f"the folder {parent} does not exist; create it first")


def show_progress(args: argparse.Namespace, duration_s: float) -> bool:
    """--progress / --no-progress, else a bar for long files on a terminal."""
    if args.progress is not None:
        return bool(args.progress)
    return duration_s >= PROGRESS_MIN_SECONDS and sys.stderr.isatty()


def build_choices(args: argparse.Namespace) -> dict[str, Any]:
    """The decision choices of `master` (style, references, amounts), checked before any work, with
    file paths made absolute (the server resolves them in its own working folder)."""
    refs = [os.path.abspath(p) for p in (args.reference or [])]
    for p in refs:
        if not os.path.exists(p):
            raise FileMissingError(f"reference file not found: {p}")
    style = args.style
    if isinstance(style, str) and (style.lower().endswith(".json") or os.sep in style):
        style = os.path.abspath(style)
    choices = {"style": style, "references": refs or None, "tone_pct": args.tone, "dynamics_pct": args.dynamics,
               "width_pct": args.width, "intensity": args.intensity, "loudness": args.loudness,
               "codec_safe": args.codec_safe, "mono_as": getattr(args, "mono_as", "dual")}
    Intent(tone_pct=args.tone, dynamics_pct=args.dynamics, width_pct=args.width, intensity=args.intensity,
           loudness=args.loudness)
    return choices


def render_with_progress(src: str, dst: str, d: Delivery, *, fmt: str, force: bool, progress_flag: bool | None,
                         chain: Chain | None = None, planned: Chain | None = None, save_chain: str | None = None,
                         report: str | None = None,
                         choices: dict[str, Any] | None = None) -> tuple[MasterResult, dict[str, Any]]:
    """:func:`server.service.mastering.render_and_write` with a progress bar on stderr for long files."""
    show = progress_flag if progress_flag is not None else (
        audio_info(src).duration_s >= PROGRESS_MIN_SECONDS and sys.stderr.isatty())
    bar = ProgressBar(enabled=bool(show))
    try:
        return mastering.render_and_write(src, dst, d, fmt=fmt, force=force, progress=bar, chain=chain,
                                          planned=planned, save_chain=save_chain, report=report, choices=choices)
    finally:
        bar.close()


def format_summary(doc: dict[str, Any], *, title: str) -> str:
    """The before/after table, the verdict, what each stage did, codecs, platforms and the limiter."""
    b, a = doc["before"], doc["after"]
    rows = [
        ("integrated loudness", "integrated_lufs", "LUFS", 1),
        ("true peak (8x after)", "true_peak_dbtp", "dBTP", 2),
        ("loudness range", "lra_lu", "LU", 1),
        ("PLR", "plr_db", "dB", 1),
    ]
    d = doc["delivery"]
    out = [f"{title} -> {doc['output']}  ({d['preset']}: {d['target_lufs']:g} LUFS, {d['ceiling_dbtp']:g} dBTP)",
           f"  {'':22}{'before':>12}{'after':>12}"]
    for label, key, unit, digits in rows:
        out.append(f"  {label:22}{b[key]:>9.{digits}f} {unit:<3}{a[key]:>8.{digits}f} {unit}")
    verdict = (doc.get("comparison") or {}).get("verdict")
    if verdict:
        out.append(f"  {verdict}")
    out.append("  what the chain did:")
    for st in doc["chain"]["stages"]:
        if st["enabled"]:
            out.append(f"    - {st['label'] or st['kind']}: {st['why'] or _describe(st)}")
    codecs = doc.get("codecs") or []
    if codecs:
        out.append("  after lossy encoding: " + ", ".join(
            f"{c['codec']} {c['true_peak_dbtp']:+.2f} dBTP" for c in codecs))
    plays = [p for p in doc.get("platforms") or [] if p["mode"] in ("normal", "sound check", "default")]
    if plays:
        out.append("  plays at: " + ", ".join(f"{p['platform']} {p['playback_lufs']:.1f} LUFS ({p['gain_db'] + 0.0:+.1f} dB)"
                                             for p in plays))
    lim = doc.get("limiter") or {}
    if lim:
        out.append(f"  limiter: up to {lim.get('max_reduction_db', 0):.1f} dB of reduction, "
                   f"active {lim.get('limiting_pct', 0):.0f}% of the time")
    return "\n".join(out)


def _describe(stage: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in stage["params"].items() if not isinstance(v, list))
