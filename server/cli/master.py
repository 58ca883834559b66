"""``reamaster master FILE -o OUT [options]``: decide a chain (or render ``--chain``), master, write
the audio, the optional chain, report and session, and print the summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dsp.decide.presets import delivery
from dsp.errors import ChainError, FileMissingError
from dsp.io.audio_io import output_format_for
from dsp.process.chain import Chain

from ..service import session as sess
from ..service.report import html_path_for
from .common import build_choices, check_destinations, format_summary, render_with_progress


def run(args: argparse.Namespace) -> int:
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
    if not bits_given and d.bit_depth == 16 and fmt in ("wav24", "flac24"):
        fmt = output_format_for(dst, 16)
    chain = read_chain_file(chain_path) if chain_path is not None else None
    result, doc = render_with_progress(src, dst, d, fmt=fmt, force=force, progress_flag=progress_flag, chain=chain,
                                       save_chain=save_chain, report=report, choices=choices)
    if session:
        sess.create(Path(session), input_path=src, output=dst, delivery=doc["delivery"] | {"bit_format": fmt},
                    chain_json=result.chain.to_json(), after=doc["after"], force=force)
    print(format_summary(doc, title=title or src))
    return doc
