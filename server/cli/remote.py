"""``reamaster --server auto master mix.wav -o master.wav``: the ``master`` command through the
companion server. It writes the same file, byte for byte, as the in-process command (both call
:func:`server.service.mastering.decide_and_master` with the same inputs) and prints the same summary."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from dsp.errors import FileMissingError, ParameterError, ReaMasterError
from dsp.io.audio_io import atomic_write_text, audio_info, output_format_for
from dsp.process.chain import Chain

from ..service import session as sess
from ..service.report import html_path_for, render_html
from ..wire.client import Client, Progress, ServerError
from .common import build_choices, check_destinations, format_summary, show_progress
from .main import fail
from .master import read_chain_file
from .progress import ProgressBar


def run(args: argparse.Namespace) -> int:
    """``reamaster --server E master ...`` through the server: same checks, same file, same summary."""
    return run_master_via_server(args.server, args)


def run_master_via_server(endpoint_or_none: str | None, args: argparse.Namespace) -> int:
    """Master through the server at ``endpoint_or_none`` (None or "auto": its connection file)."""
    try:
        if getattr(args, "preview", None) is not None:
            raise ParameterError("--preview runs here, not through the server (it takes a second or two); "
                                 "leave out --server")
        output_format_for(args.output, args.bits)  # refuse a bad name before contacting anyone
        force = bool(getattr(args, "force", False))
        html = html_path_for(args.report)
        check_destinations([args.output, args.save_chain, args.report, html], inputs=[args.file], force=force)
        if not os.path.isfile(args.file):
            raise FileMissingError(f"file not found: {args.file}")
        choices = build_choices(args)
        session = None
        if not getattr(args, "no_session", True):
            session = str(sess.session_dir_for(args.output))
            check_destinations([session], inputs=[args.file], force=force)
        chain = read_chain_file(args.chain).to_dict() if args.chain is not None else None
    except ReaMasterError as err:
        return fail(err)

    src, dst = os.path.abspath(args.file), os.path.abspath(args.output)
    # The server never replaces a file: with --force the master goes to a fresh name next to the
    # output, which we then move into place ourselves.
    target = dst
    if force and os.path.lexists(dst):
        stem, ext = os.path.splitext(os.path.basename(dst))
        target = os.path.join(os.path.dirname(dst), f".{stem}.{secrets.token_hex(4)}.partial{ext}")
    folders = {os.path.dirname(src), os.path.dirname(dst)}
    for p in [*((choices or {}).get("references") or []), (choices or {}).get("style") or ""]:
        if os.path.isabs(p):
            folders.add(os.path.dirname(p))
    content: dict[str, Any] = {"path": src, "output": target, "project_dir": sorted(folders)}
    for k, v in (("preset", args.preset), ("lufs", args.lufs), ("ceiling", args.ceiling), ("bits", args.bits),
                 ("chain", chain), ("choices", choices)):
        if v is not None:
            content[k] = v
    try:
        duration_s = audio_info(args.file).duration_s
    except ReaMasterError as err:
        return fail(err)
    bar = ProgressBar(enabled=show_progress(args, duration_s))
    try:
        with Client.connect(endpoint_or_none or "auto", key_file=getattr(args, "key_file", None),
                            client_name="reamaster-cli") as client:
            job = client.submit("master", content)
            while not job.done:
                client.pump(50)
                if isinstance(job.progress, Progress):
                    bar(job.progress.stage, job.progress.fraction)
            bar.close()
            doc = job.wait().content["report"]
    except ServerError as err:
        bar.close()
        return fail(err)
    except KeyboardInterrupt:
        print("reamaster: interrupted; nothing was written", file=sys.stderr)
        return 130
    if target != dst:
        os.replace(target, dst)
    doc["input"], doc["output"] = str(args.file), str(args.output)
    try:
        if args.save_chain:
            atomic_write_text(args.save_chain, Chain.from_dict(doc["chain"]).to_json(), force=force, protect=[src])
        if args.report:
            atomic_write_text(args.report, json.dumps(doc, indent=2, allow_nan=False) + "\n", force=force,
                              protect=[src])
            if html is not None:
                atomic_write_text(html, render_html(doc), force=force, protect=[src])
    except ReaMasterError as err:
        return fail(err)
    try:
        if session:
            sess.create(Path(session), input_path=str(args.file), output=str(args.output),
                   delivery=doc["delivery"] | {"bit_format": doc["output_format"]},
                   chain_json=Chain.from_dict(doc["chain"]).to_json(), after=doc["after"], force=force)
    except ReaMasterError as err:
        return fail(err)
    print(format_summary(doc, title=str(args.file)))
    return 0
