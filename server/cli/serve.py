"""``reamaster serve``: run the companion server in the foreground (see :mod:`server.daemon.loop`)."""

from __future__ import annotations

import argparse
import logging
import sys

from ..daemon.loop import ServerConfig, StartupError
from ..daemon.loop import run as run_server
from ..wire import protocol as P
from ..wire.connection import DEFAULT_PORT

EXIT_REFUSED = 2


def _fail(message: str, code: str) -> int:
    print(f"reamaster: {message} [{code}]", file=sys.stderr)
    return EXIT_REFUSED


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="reamaster serve: %(message)s")
    port_given = args.port is not None
    port = args.port if port_given else DEFAULT_PORT
    if args.workers < 0 or args.queue < 1 or not 0 <= port <= 65535:
        return _fail("--workers must be >= 0, --queue >= 1 and --port 0..65535", "bad_parameter")
    limits = P.Limits()
    if args.max_frame_bytes is not None:
        if args.max_frame_bytes < 65536:
            return _fail("--max-frame-bytes must be at least 65536", "bad_parameter")
        limits = P.Limits(max_frame_bytes=args.max_frame_bytes,
                          chunk_bytes=min(limits.chunk_bytes, args.max_frame_bytes))
    transport = getattr(args, "transport", "auto")
    if transport == "auto" and (port_given or args.curve_keys or args.host not in ("127.0.0.1", "localhost", "::1")):
        transport = "tcp"  # a port, keys or a host all mean tcp (CURVE-encrypted)
    cfg = ServerConfig(host=args.host, port=port, workers=args.workers, queue=args.queue, limits=limits,
                       allow_remote=args.allow_remote, curve_keys=args.curve_keys,
                       client_timeout_s=args.client_timeout, shutdown_grace_s=args.grace, transport=transport,
                       worker_ready_timeout_s=getattr(args, "worker_ready_timeout", 60.0),
                       max_upload_bytes=getattr(args, "max_upload_bytes", 2 << 30))
    try:
        return run_server(cfg)
    except StartupError as exc:
        return _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return 130
