"""``reamaster``: parse the arguments, then import and run the one command asked for.

Each command is a module of this package with ``run(args) -> exit status``; it is imported only
when it runs, so ``reamaster --help`` and light commands stay fast. Every refusal is one line on
stderr, ``reamaster: <message> [code]``, and exit status 2; nothing is written when a command fails.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dsp.errors import ReaMasterError

from .parser import build_parser

EXIT_REFUSED = 2

#: command -> the module of this package that runs it
COMMANDS = {"analyze": "analyze", "master": "master", "revise": "revise", "album": "album", "stems": "stems",
            "profile": "profile", "demo": "demo", "serve": "serve", "reaper": "reaper",
            "batch": "batch"}


def _parser() -> argparse.ArgumentParser:
    return build_parser()


def fail(err: ReaMasterError | Exception) -> int:
    """Print the one-line refusal and return the refusal status."""
    print(f"reamaster: {err} [{getattr(err, 'code', 'error')}]", file=sys.stderr)
    return EXIT_REFUSED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = COMMANDS[args.command]
    if args.command == "master" and args.server:
        module = "remote"  # the same command through the companion server
    try:
        run = importlib.import_module(f"{__package__}.{module}").run
        status: int = run(args)
        return status
    except ReaMasterError as err:
        return fail(err)
    except KeyboardInterrupt:
        print("reamaster: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
