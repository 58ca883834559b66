"""``reamaster revise SESSION "words"`` (or ``--list``, ``--render N``): a new version of a master
from words, kept in its session folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from dsp.decide.presets import delivery
from dsp.decide.revise import revise_chain
from dsp.errors import ParameterError

from ..service import session as sess
from .common import check_destinations, format_summary, render_with_progress


def run(args: argparse.Namespace) -> int:
    doc = sess.load(args.session)
    if args.list:
        for v in doc["versions"]:
            said = f'"{v["words"]}"' if v["words"] else "first master"
            print(f"v{v['version']}: {said} -> {v['output']} ({v['integrated_lufs']:.1f} LUFS, "
                  f"{v['true_peak_dbtp']:.2f} dBTP)")
            for c in v["changes"]:
                print(f"      {c}")
        return 0
    if (args.words is None) == (args.render is None):
        raise ParameterError("say what to change in words, or --render N to render a version again (not both)")
    src = doc["input"]
    dlv = doc["delivery"]
    fmt = dlv.get("bit_format", "wav24")
    first_out = Path(doc["versions"][0]["output"])
    if args.render is not None:
        entry = sess.version(doc, args.render)
        dst = args.output or str(first_out.with_name(f"{first_out.stem}.v{entry['version']}.render{first_out.suffix}"))
        check_destinations([dst], inputs=[src], force=args.force)
        d = delivery(dlv["preset"], target_lufs=entry["target_lufs"], ceiling_dbtp=dlv["ceiling_dbtp"])
        _, report = render_with_progress(src, dst, d, fmt=fmt, force=args.force, progress_flag=args.progress,
                                         chain=sess.load_chain(args.session, entry))
        print(format_summary(report, title=f"{args.session} v{entry['version']}"))
        return 0
    base = sess.version(doc, args.from_version)
    revision = revise_chain(sess.load_chain(args.session, base), args.words)
    n = max(v["version"] for v in doc["versions"]) + 1
    dst = args.output or str(first_out.with_name(f"{first_out.stem}.v{n}{first_out.suffix}"))
    check_destinations([dst], inputs=[src], force=args.force)
    target = base["target_lufs"] + revision.loudness_change_lu
    d = delivery(dlv["preset"], target_lufs=target, ceiling_dbtp=dlv["ceiling_dbtp"])
    result, report = render_with_progress(src, dst, d, fmt=fmt, force=args.force, progress_flag=args.progress,
                                          planned=revision.chain)
    n = sess.add_version(args.session, doc, chain_json=result.chain.to_json(), output=dst, words=args.words,
                         changes=list(revision.changes), after=report["after"], target_lufs=target,
                         parent=base["version"])
    print(f"v{n} from v{base['version']}: \"{args.words}\"")
    for c in revision.changes:
        print(f"  {c}")
    print(format_summary(report, title=f"{args.session} v{n}"))
    return 0
