"""``reamaster master FILE -o OUT [options]``: decide a chain (or render ``--chain``), master, write
the audio, the optional chain, report and session, and print the summary."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from dsp.decide.presets import delivery
from dsp.errors import ChainError, FileMissingError
from dsp.io.audio_io import output_format_for
from dsp.process.chain import Chain

from ..service import mastering
from ..service import session as sess
from ..service.report import build_report, html_path_for
from .common import build_choices, check_destinations, format_summary, render_with_progress


def run(args: argparse.Namespace) -> int:
    if args.preview is not None:
        return run_preview(args)
    fmt = output_format_for(args.output, args.bits)
    session = None if args.no_session else str(sess.session_dir_for(args.output))
    check_destinations([args.output, args.save_chain, args.report, html_path_for(args.report), session],
                       inputs=[args.file], force=args.force)
    choices = build_choices(args)
    run_master(
        args.file, args.output, fmt=fmt, preset=args.preset, lufs=args.lufs, ceiling=args.ceiling,
        chain_path=args.chain, save_chain=args.save_chain, report=args.report, force=args.force,
        progress_flag=args.progress, bits_given=args.bits is not None, session=session, choices=choices,
    )
    return 0


def read_chain_file(chain_path: str) -> Chain:
    """A chain JSON file, or a one-line error that says what is wrong with it."""
    try:
        text = Path(chain_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileMissingError(f"chain file not found: {chain_path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChainError(f"cannot read chain file {chain_path}: {exc}") from None
    return Chain.from_json(text)


def run_master(
    src: str, dst: str, *, fmt: str, preset: str | None, lufs: float | None, ceiling: float | None,
    chain_path: str | None, save_chain: str | None, report: str | None, force: bool,
    progress_flag: bool | None, bits_given: bool, title: str | None = None, session: str | None = None,
    choices: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Master ``src`` into ``dst`` with the summary printed; returns the report document."""
    d = delivery(preset, target_lufs=lufs, ceiling_dbtp=ceiling)
    if not bits_given:
        fmt = mastering.output_format(dst, None, d)
    chain = read_chain_file(chain_path) if chain_path is not None else None
    result, doc = render_with_progress(src, dst, d, fmt=fmt, force=force, progress_flag=progress_flag, chain=chain,
                                       save_chain=save_chain, report=report, choices=choices)
    if session:
        sess.create(Path(session), input_path=src, output=dst, delivery=doc["delivery"] | {"bit_format": fmt},
                    chain_json=result.chain.to_json(), after=doc["after"], force=force)
    print(format_summary(doc, title=title or src))
    return doc


def run_preview(args: argparse.Namespace) -> int:
    """``master --preview SECONDS``: the loudest stretch, mastered in a second or two (no session)."""
    t0 = time.perf_counter()
    d = delivery(args.preset, target_lufs=args.lufs, ceiling_dbtp=args.ceiling)
    fmt = mastering.output_format(args.output, args.bits, d)
    check_destinations([args.output, args.save_chain, args.report, html_path_for(args.report)],
                       inputs=[args.file], force=args.force)
    chain = read_chain_file(args.chain) if args.chain is not None else None
    result, written, window = mastering.preview_file(args.file, args.output, d, seconds=args.preview, fmt=fmt,
                                                     force=args.force, chain=chain, choices=build_choices(args))
    doc = build_report(args.file, args.output, d, result, written)
    doc["preview"] = mastering.preview_document(window)
    mastering.write_side_files(args.file, result, doc, save_chain=args.save_chain, report=args.report,
                               force=args.force)

    def mmss(t: float) -> str:
        return f"{int(t // 60)}:{t % 60:04.1f}"

    print(format_summary(doc, title=f"{args.file} [preview {mmss(window.start_s)}-{mmss(window.end_s)}]"))
    print(f"  preview: the loudest {window.end_s - window.start_s:.0f} s, {window.offset_lu:+.1f} LU from the "
          f"song's loudness in the mix, so mastered to {doc['after']['integrated_lufs']:.1f} LUFS (the full "
          f"master aims the whole song at {d.target_lufs:g}); chain decided from the whole file; "
          f"{time.perf_counter() - t0:.1f} s")
    return 0
