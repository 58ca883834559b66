"""``reamaster batch SOURCE -o OUT``: master a catalog on Dask (see :mod:`server.batch`)."""

from __future__ import annotations

import argparse
import sys

from ..batch.report import summary
from ..batch.run import BatchOptions, run_batch
from .common import build_choices


def run(args: argparse.Namespace) -> int:
    opts = BatchOptions(source=args.source, out=args.output, preset=args.preset, lufs=args.lufs,
                        ceiling=args.ceiling, bits=args.bits, choices=build_choices(args), scheduler=args.scheduler,
                        workers=args.workers, album_by=args.album_by, resume=args.resume, dry_run=args.dry_run,
                        force=args.force, progress=args.progress)
    try:
        res = run_batch(opts)
    except KeyboardInterrupt:
        print(f"reamaster: batch interrupted; finished tracks are recorded in {args.output} - "
              "run the same command with --resume to continue", file=sys.stderr)
        return 130
    if args.dry_run:
        return 0
    s = summary(res.rows)
    print(f"batch: {s['rows']} rows in {res.seconds:.1f} s: done {s['done']}, skipped {s['skipped']}, "
          f"failed {s['failed']}; {s['within_target']}/{s['mastered']} within +/-0.2 LU of target, "
          f"{s['under_ceiling']}/{s['mastered']} at or under the ceiling")
    for r in res.rows:
        if r["status"] == "failed":
            print(f"  failed: {r['rel']}: {r['error']} [{r['error_code']}]")
    print(f"batch: ledger {res.ledger_path}\nbatch: report {res.report_path}")
    return 1 if s["failed"] else 0
