"""``python -m server.daemon [--port N] ...``: the companion server, as ``reamaster serve`` runs it
(clients and the REAPER actions start it this way)."""

import argparse
import sys

from ..cli.parser import add_serve_arguments
from ..cli.serve import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m server.daemon", description="The ReaMaster companion server.")
    add_serve_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
