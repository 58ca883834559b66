"""``reamaster serve`` and the ``--server`` client path of ``reamaster master``.

For server/cli.py::

    add_serve_parser(subparsers)            # adds the `serve` command
    add_server_flags(parser)                # adds --server ENDPOINT|auto and --key-file to the top parser
    cmd_serve(args) -> int
    run_master_via_server(endpoint_or_None, args) -> int   # args: the `master` namespace (+ key_file)

``reamaster --server auto master mix.wav -o master.wav`` masters through the running server and
writes the same file, byte for byte, as the in-process command (both call dsp.decide.master.master
with the same inputs); it prints the same summary.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

EXIT_REFUSED = 2


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    from .connection import DEFAULT_PORT

    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else needs --allow-remote "
                        "and --curve-keys)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT}; 0 = a free one)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: number of cores)")
    p.add_argument("--queue", type=int, default=16, help="jobs that may wait for a worker (default 16)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (needs --curve-keys)")
    p.add_argument("--curve-keys", default=None, metavar="DIR",
                   help="CURVE keys: DIR/server.key_secret and DIR/clients/*.key (zmq.auth.create_certificates)")
    p.add_argument("--max-frame-bytes", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--client-timeout", type=float, default=3.0, help=argparse.SUPPRESS)
    p.add_argument("--grace", type=float, default=3.0,
                   help="seconds running jobs get to finish on shutdown (default 3)")
    p.add_argument("--log-level", default="WARNING", help=argparse.SUPPRESS)


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("serve", help="run the companion server (REAPER scripts and --server use it)")
    add_serve_arguments(p)
    return p


def add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=None, metavar="ENDPOINT",
                   help="run the command through a ReaMaster server: 'auto' (its connection file) or tcp://HOST:PORT")
    p.add_argument("--key-file", default=None, help="the server's connection file (for a bare --server ENDPOINT)")


def _fail(message: str, code: str) -> int:
    print(f"reamaster: {message} [{code}]", file=sys.stderr)
    return EXIT_REFUSED


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from . import protocol as P
    from .server import ServerConfig, StartupError, run

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="reamaster serve: %(message)s")
    if args.workers < 0 or args.queue < 1 or not 0 <= args.port <= 65535:
        return _fail("--workers must be >= 0, --queue >= 1 and --port 0..65535", "bad_parameter")
    limits = P.Limits()
    if args.max_frame_bytes is not None:
        if args.max_frame_bytes < 65536:
            return _fail("--max-frame-bytes must be at least 65536", "bad_parameter")
        limits = P.Limits(max_frame_bytes=args.max_frame_bytes,
                          chunk_bytes=min(limits.chunk_bytes, args.max_frame_bytes))
    cfg = ServerConfig(host=args.host, port=args.port, workers=args.workers, queue=args.queue, limits=limits,
                       allow_remote=args.allow_remote, curve_keys=args.curve_keys,
                       client_timeout_s=args.client_timeout, shutdown_grace_s=args.grace)
    try:
        return run(cfg)
    except StartupError as exc:
        return _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return 130


def run_master_via_server(endpoint_or_none: str | None, args: argparse.Namespace) -> int:
    """``reamaster [--server E] master ...`` through the server: same checks, same file, same summary."""
    from dsp.errors import ChainError, FileMissingError, ReaMasterError
    from dsp.io.audio_io import atomic_write_text, audio_info, output_format_for
    from dsp.process.chain import Chain

    from .cli import _check_destinations, _show_progress, build_choices, format_summary, html_path_for
    from .client import Client, Progress, ServerError
    from .progress import ProgressBar

    try:
        output_format_for(args.output, args.bits)  # refuse a bad name before contacting anyone
        force = bool(getattr(args, "force", False))
        html = html_path_for(args.report)
        _check_destinations([args.output, args.save_chain, args.report, html], inputs=[args.file], force=force)
        if not os.path.isfile(args.file):
            raise FileMissingError(f"file not found: {args.file}")
        choices = build_choices(args)
        session = None
        if not getattr(args, "no_session", True):
            from .session import session_dir_for

            session = str(session_dir_for(args.output))
            _check_destinations([session], inputs=[args.file], force=force)
        chain = None
        if args.chain is not None:
            try:
                with open(args.chain, encoding="utf-8") as f:
                    chain = Chain.from_json(f.read()).to_dict()
            except FileNotFoundError:
                raise FileMissingError(f"chain file not found: {args.chain}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ChainError(f"cannot read chain file {args.chain}: {exc}") from None
    except ReaMasterError as err:
        return _fail(str(err), err.code)

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
        return _fail(str(err), err.code)
    bar = ProgressBar(enabled=_show_progress(args, duration_s))
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
        return _fail(str(err), err.code)
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
                from .report import render_html

                atomic_write_text(html, render_html(doc), force=force, protect=[src])
    except ReaMasterError as err:
        return _fail(str(err), err.code)
    try:
        if session:
            from .session import create

            create(Path(session), input_path=str(args.file), output=str(args.output),
                   delivery=doc["delivery"] | {"bit_format": doc["output_format"]},
                   chain_json=Chain.from_dict(doc["chain"]).to_json(), after=doc["after"], force=force)
    except ReaMasterError as err:
        return _fail(str(err), err.code)
    print(format_summary(doc, title=str(args.file)))
    return 0


__all__ = ["add_serve_parser", "add_serve_arguments", "add_server_flags", "cmd_serve", "run_master_via_server"]
