"""``reamaster serve``: run the companion server in the foreground (see :mod:`server.daemon.loop`)."""

from __future__ import annotations

import argparse
import logging
import sys

from ..daemon.loop import ServerConfig, StartupError
from ..daemon.loop import run as run_server
from ..wire import protocol as P

EXIT_REFUSED = 2


def _fail(message: str, code: str) -> int:
    print(f"reamaster: {message} [{code}]", file=sys.stderr)
    return EXIT_REFUSED


def run(args: argparse.Namespace) -> int:
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
        return run_server(cfg)
    except StartupError as exc:
        return _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return 130
