"""The ``reamaster`` command line.

    reamaster analyze FILE [--json]
    reamaster master FILE -o OUT [--preset P] [--lufs X] [--ceiling Y] [--chain C] [--save-chain C]
                                 [--report R] [--bits 16|24|32] [--force]
    reamaster demo [--out DIR]

Heavy modules are imported inside the commands so ``reamaster --help`` stays fast.
Every refusal is one line on stderr, ``reamaster: <message> [code]``, and exit status 2;
nothing is written when a command fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from .report import html_path_for

PRESET_NAMES = ("streaming", "apple", "youtube", "club", "cd", "broadcast")
EXIT_REFUSED = 2
# what `reamaster master` decides with no options (the demo uses the same)
DEFAULT_CHOICES = {"style": "auto", "references": None, "tone_pct": 100.0, "dynamics_pct": 100.0,
                   "width_pct": 100.0, "intensity": "balanced", "loudness": True, "codec_safe": False}
PROGRESS_MIN_SECONDS = 30.0  # files at least this long show a progress bar on a terminal


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reamaster", description="Local, explainable mastering (ReaMaster).")
    p.add_argument("--version", action="version", version="reamaster 0.1.0")
    from .serve_cli import add_serve_parser, add_server_flags

    add_server_flags(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_parser(sub)

    a = sub.add_parser("analyze", help="measure a mix: loudness, true peak, LRA, spectrum, stereo, problems")
    a.add_argument("file")
    a.add_argument("--json", action="store_true", help="print the full measurements as JSON")
    a.add_argument("--series", action="store_true", help="with --json: include the loudness time series")

    m = sub.add_parser("master", help="master a mix to a delivery target")
    m.add_argument("file")
    m.add_argument("-o", "--output", required=True, help="output file (.wav or .flac)")
    m.add_argument("--preset", choices=PRESET_NAMES, default=None, help="delivery target (default: streaming)")
    m.add_argument("--lufs", type=float, default=None, help="integrated loudness target, LUFS (overrides the preset)")
    m.add_argument("--ceiling", type=float, default=None, help="true-peak ceiling, dBTP (overrides the preset)")
    m.add_argument("--style", default="auto",
                   help="tonal target: auto (classify the mix; default), a built-in style "
                        "(orchestral, electronic, ambient, rock, pop, hiphop) or a profile JSON")
    m.add_argument("--reference", nargs="+", default=None, metavar="REF",
                   help="match the tonal balance and loudness of these reference tracks")
    m.add_argument("--intensity", choices=("gentle", "balanced", "loud"), default="balanced",
                   help="how hard the dynamics are worked (not the loudness target)")
    m.add_argument("--tone", type=float, default=100.0, metavar="PCT", help="percent of the suggested EQ applied")
    m.add_argument("--dynamics", type=float, default=100.0, metavar="PCT",
                   help="percent of the suggested compression applied")
    m.add_argument("--width", type=float, default=100.0, metavar="PCT",
                   help="percent of the suggested width correction applied")
    m.add_argument("--no-loudness", dest="loudness", action="store_false",
                   help="keep the mix's loudness; the limiter only guards the ceiling")
    m.add_argument("--codec-safe", action="store_true",
                   help="encode to MP3 320, Vorbis and Opus, and lower the ceiling until every decoded "
                        "version stays at or under -0.5 dBTP")
    m.add_argument("--chain", default=None, help="render this chain JSON instead of deciding one")
    m.add_argument("--save-chain", default=None, help="write the chain used as JSON")
    m.add_argument("--report", default=None,
                   help="write a JSON report (before/after, decisions) and an HTML page beside it")
    m.add_argument("--bits", type=int, choices=(16, 24, 32), default=None,
                   help="output word length (default: the preset's; 32 = float WAV)")
    m.add_argument("--force", action="store_true", help="overwrite existing output files (never the input)")
    m.add_argument("--no-session", action="store_true",
                   help="do not keep the <output>.session/ folder that `reamaster revise` works from")
    _progress_flags(m)

    r = sub.add_parser("revise", help="revise a master in words: reamaster revise SESSION \"brighter, less squashed\"")
    r.add_argument("session", help="the session folder written beside a master (<output>.session)")
    r.add_argument("words", nargs="?", default=None, help="what to change, e.g. \"brighter, a bit less squashed\"")
    r.add_argument("--from", dest="from_version", type=int, default=None, help="start from this version (default: latest)")
    r.add_argument("--render", type=int, default=None, metavar="N", help="render version N again as it was")
    r.add_argument("--list", action="store_true", help="list the versions and what changed")
    r.add_argument("-o", "--output", default=None, help="output file (default: <first output>.vN.wav)")
    r.add_argument("--force", action="store_true", help="overwrite an existing output file (never the input)")
    _progress_flags(r)

    al = sub.add_parser("album", help="master several tracks as one album: reamaster album A.wav B.wav ... -o DIR")
    al.add_argument("files", nargs="+")
    al.add_argument("-o", "--output", required=True, help="folder for the mastered tracks and album.json")
    al.add_argument("--preset", choices=PRESET_NAMES, default=None)
    al.add_argument("--lufs", type=float, default=None, help="loudness of the loudest track (overrides the preset)")
    al.add_argument("--ceiling", type=float, default=None)
    al.add_argument("--style", default="auto")
    al.add_argument("--bits", type=int, choices=(16, 24, 32), default=None)
    al.add_argument("--force", action="store_true")
    _progress_flags(al)

    from .reaper_cli import add_reaper_parser
    from .stems_cli import add_stems_parser

    add_stems_parser(sub)
    add_reaper_parser(sub)

    pr = sub.add_parser("profile", help="style profiles: reamaster profile build DIR -o my.json")
    prs = pr.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    pb = prs.add_parser("build", help="learn a tonal/dynamics profile from a folder of reference tracks")
    pb.add_argument("folder")
    pb.add_argument("-o", "--output", required=True, help="profile JSON to write")
    pb.add_argument("--name", default=None, help="the profile's name (default: the folder's name)")
    pb.add_argument("--force", action="store_true", help="overwrite an existing profile file")
    prs.add_parser("list", help="list the built-in styles and where they come from")

    d = sub.add_parser("demo", help="master the embedded demo mix into out/demo/")
    d.add_argument("--out", default="out/demo",
                   help="folder for mix.wav, master.wav, chain.json, report.json and report.html")
    _progress_flags(d)
    return p


def _progress_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show the progress bar")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")


def _fail(err: Any) -> int:
    code = getattr(err, "code", "error")
    print(f"reamaster: {err} [{code}]", file=sys.stderr)
    return EXIT_REFUSED


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from dsp.errors import ReaMasterError

    try:
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.command == "serve":
            from .serve_cli import cmd_serve

            return cmd_serve(args)
        if args.command == "master" and args.server:
            from .serve_cli import run_master_via_server

            return run_master_via_server(args.server, args)
        if args.command == "master":
            return cmd_master(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "revise":
            return cmd_revise(args)
        if args.command == "profile":
            return cmd_profile(args)
        if args.command == "album":
            return cmd_album(args)
        if args.command == "stems":
            from .stems_cli import cmd_stems

            return cmd_stems(args)
        if args.command == "reaper":
            return args.func(args)
    except ReaMasterError as err:
        return _fail(err)
    except KeyboardInterrupt:
        print("reamaster: interrupted; nothing was written", file=sys.stderr)
        return 130
    return EXIT_REFUSED  # pragma: no cover - argparse guarantees a command


# --- analyze ------------------------------------------------------------------------------------

def cmd_analyze(args: argparse.Namespace) -> int:
    from dsp.io.audio_io import check_audio, read_audio
    from dsp.measure.analysis import analyze

    x, sr = read_audio(args.file)
    check_audio(x, sr, what=args.file)
    a = analyze(x, sr, resonances=True)  # the same resonances master acts on
    if args.json:
        print(json.dumps(a.to_dict(series=args.series), indent=2, allow_nan=False))
    else:
        print(format_analysis(a, title=str(args.file)))
    return 0


def _db(v: float, unit: str, digits: int = 1) -> str:
    return f"{v:.{digits}f} {unit}" if math.isfinite(v) else f"-inf {unit}"


def format_analysis(a: Any, *, title: str) -> str:
    s = a.spectrum
    lines = [
        f"{title}: {a.duration_s:.1f} s, {a.sample_rate} Hz, {a.channels} ch",
        f"  integrated loudness  {_db(a.integrated_lufs, 'LUFS')}",
        f"  loudness range       {_db(a.lra_lu, 'LU')}",
        f"  max short-term       {_db(a.max_short_term_lufs, 'LUFS')}   max momentary {_db(a.max_momentary_lufs, 'LUFS')}",
        f"  true peak            {_db(a.true_peak_dbtp, 'dBTP', 2)} ({a.true_peak_oversampling}x)"
        f"   sample peak {_db(a.sample_peak_dbfs, 'dBFS', 2)}",
        f"  PLR / crest factor   {a.plr_db:.1f} dB / {a.crest_db:.1f} dB",
        f"  stereo correlation   {s.correlation_overall:.2f}",
        f"  DC offset            {max(abs(v) for v in a.dc_offset):.5f}",
        f"  clipping             {a.clipped_runs} runs, {a.clipped_samples} samples",
        f"  silence              {a.leading_silence_s:.1f} s lead, {a.trailing_silence_s:.1f} s tail, "
        f"{a.silent_pct:.0f}% of the track",
    ]
    return "\n".join(lines)


# --- master -------------------------------------------------------------------------------------

def _check_destinations(paths: list[str | None], *, inputs: list[str], force: bool) -> None:
    """Refuse before any work is done: existing outputs without --force, outputs that are inputs,
    missing folders, the same output named twice."""
    from dsp.errors import OutputError, OutputExistsError, OutputIsInputError

    seen: set[str] = set()
    in_real = {os.path.realpath(p) for p in inputs}
    for p in paths:
        if p is None:
            continue
        real = os.path.realpath(p)
        if real in in_real:
            raise OutputIsInputError(f"refusing to write over the input {p}; choose another output name")
        if real in seen:
            raise OutputError(f"{p} is named twice as an output")
        seen.add(real)
        if os.path.exists(p) and not force:
            raise OutputExistsError(f"{p} already exists; use --force to replace it")
        parent = Path(p).parent
        if not parent.is_dir():
            raise OutputError(f"the folder {parent} does not exist; create it first")


def _show_progress(args: argparse.Namespace, duration_s: float) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    return duration_s >= PROGRESS_MIN_SECONDS and sys.stderr.isatty()


def cmd_master(args: argparse.Namespace) -> int:
    from dsp.io.audio_io import output_format_for

    fmt = output_format_for(args.output, args.bits)
    from .session import session_dir_for

    session = None if args.no_session else str(session_dir_for(args.output))
    _check_destinations([args.output, args.save_chain, args.report, html_path_for(args.report), session],
                        inputs=[args.file], force=args.force)
    choices = build_choices(args)
    run_master(
        args.file, args.output, fmt=fmt, preset=args.preset, lufs=args.lufs, ceiling=args.ceiling,
        chain_path=args.chain, save_chain=args.save_chain, report=args.report, force=args.force,
        progress_flag=args.progress, bits_given=args.bits is not None, session=session, choices=choices,
    )
    return 0


def build_choices(args: argparse.Namespace) -> dict[str, Any]:
    """The decision choices of `master` (style, references, amounts), checked before any work, with
    file paths made absolute (the server resolves them in its own working folder)."""
    from dsp.decide.master import Intent
    from dsp.errors import FileMissingError

    refs = [os.path.abspath(p) for p in (args.reference or [])]
    for p in refs:
        if not os.path.exists(p):
            raise FileMissingError(f"reference file not found: {p}")
    style = args.style
    if isinstance(style, str) and (style.lower().endswith(".json") or os.sep in style):
        style = os.path.abspath(style)
    choices = {"style": style, "references": refs or None, "tone_pct": args.tone, "dynamics_pct": args.dynamics,
               "width_pct": args.width, "intensity": args.intensity, "loudness": args.loudness,
               "codec_safe": args.codec_safe}
    Intent(tone_pct=args.tone, dynamics_pct=args.dynamics, width_pct=args.width, intensity=args.intensity,
           loudness=args.loudness)
    return choices


def run_master(
    src: str, dst: str, *, fmt: str, preset: str | None, lufs: float | None, ceiling: float | None,
    chain_path: str | None, save_chain: str | None, report: str | None, force: bool,
    progress_flag: bool | None, bits_given: bool, title: str | None = None, session: str | None = None,
    choices: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from dsp.decide.presets import delivery
    from dsp.errors import ChainError, FileMissingError
    from dsp.io.audio_io import output_format_for
    from dsp.process.chain import Chain

    d = delivery(preset, target_lufs=lufs, ceiling_dbtp=ceiling)
    if not bits_given and d.bit_depth == 16 and fmt in ("wav24", "flac24"):
        fmt = output_format_for(dst, 16)
    chain = None
    if chain_path is not None:
        try:
            text = Path(chain_path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileMissingError(f"chain file not found: {chain_path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ChainError(f"cannot read chain file {chain_path}: {exc}") from None
        chain = Chain.from_json(text)
    result, doc = render_and_write(src, dst, d, fmt=fmt, force=force, progress_flag=progress_flag, chain=chain,
                                   save_chain=save_chain, report=report, choices=choices)
    if session:
        from .session import create

        create(Path(session), input_path=src, output=dst, delivery=doc["delivery"] | {"bit_format": fmt},
               chain_json=result.chain.to_json(), after=doc["after"], force=force)
    print(format_summary(doc, title=title or src))
    return doc


def render_and_write(src: str, dst: str, d: Any, *, fmt: str, force: bool, progress_flag: bool | None,
                     **options: Any) -> tuple[Any, dict[str, Any]]:
    """server.mastering.render_and_write with a progress bar on stderr for long files."""
    from dsp.io.audio_io import audio_info

    from .mastering import render_and_write as render
    from .progress import ProgressBar

    show = progress_flag if progress_flag is not None else (
        audio_info(src).duration_s >= PROGRESS_MIN_SECONDS and sys.stderr.isatty())
    bar = ProgressBar(enabled=bool(show))
    try:
        return render(src, dst, d, fmt=fmt, force=force, progress=bar, **options)
    finally:
        bar.close()


def cmd_album(args: argparse.Namespace) -> int:
    from dsp.decide.album import master_album
    from dsp.decide.presets import delivery
    from dsp.errors import OutputError, ParameterError
    from dsp.io.audio_io import atomic_write_text, check_audio, output_format_for, read_audio, write_audio

    from .progress import ProgressBar

    d = delivery(args.preset, target_lufs=args.lufs, ceiling_dbtp=args.ceiling)
    out = Path(args.output)
    if not out.is_dir():
        raise OutputError(f"the album folder {out} does not exist; create it first")
    stems = [Path(f).stem for f in args.files]
    if len(set(stems)) != len(stems):
        raise ParameterError("two album tracks have the same file name; rename one")
    bits = args.bits or d.bit_depth
    outputs = [str(out / f"{st}.wav") for st in stems]
    _check_destinations([*outputs, str(out / "album.json")], inputs=list(args.files), force=args.force)
    fmt = output_format_for(outputs[0], bits)
    tracks = []
    for f in args.files:
        x, sr = read_audio(f)
        check_audio(x, sr, what=f)
        tracks.append((Path(f).stem, x, sr))
    bar = ProgressBar(enabled=bool(args.progress))
    try:
        result = master_album(tracks, d, style=args.style, progress=bar)
    finally:
        bar.close()
    from .mastering import album_document

    written = [write_audio(dst, t.result.audio, t.result.after.sample_rate, fmt=fmt, force=args.force,
                           protect=list(args.files)) for t, dst in zip(result.tracks, outputs, strict=True)]
    doc = album_document(d, result, list(args.files), outputs, written)
    rows = doc["tracks"]
    spread = (doc["tonal_spread_db"]["before"], doc["tonal_spread_db"]["after"])
    atomic_write_text(out / "album.json", json.dumps(doc, indent=2, allow_nan=False) + "\n", force=args.force)
    print(f"album of {len(rows)} tracks -> {out}  ({d.name}: loudest track at {d.target_lufs:g} LUFS, "
          f"{d.ceiling_dbtp:g} dBTP)")
    for r in rows:
        print(f"  {r['name'][:28]:28} {r['before']['integrated_lufs']:7.1f} -> {r['after']['integrated_lufs']:6.1f} LUFS"
              f"  {r['after']['true_peak_dbtp']:6.2f} dBTP")
    print(f"  album loudness {doc['album_lufs']['before']:.1f} -> {doc['album_lufs']['after']:.1f} LUFS; "
          f"tonal spread between tracks {spread[0]:.1f} -> {spread[1]:.1f} dB")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from dsp.decide import profiles

    if args.profile_command == "list":
        for name in profiles.builtin_names():
            p = profiles.load_builtin(name)
            print(f"{name:12} {p.n_tracks:3d} tracks  {p.source}")
        return 0
    _check_destinations([args.output], inputs=[], force=args.force)
    prof = profiles.build_profile_from_folder(args.folder, name=args.name)
    profiles.save_profile(prof, args.output, force=args.force)
    print(f"profile {prof.name!r} from {prof.n_tracks} tracks -> {args.output} "
          f"(LRA {prof.lra_lu:.1f} LU, PLR {prof.plr_db:.1f} dB)")
    return 0


# --- revise -------------------------------------------------------------------------------------

def cmd_revise(args: argparse.Namespace) -> int:
    from dsp.decide.presets import delivery
    from dsp.decide.revise import revise_chain
    from dsp.errors import ParameterError

    from . import session as sess

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
        _check_destinations([dst], inputs=[src], force=args.force)
        d = delivery(dlv["preset"], target_lufs=entry["target_lufs"], ceiling_dbtp=dlv["ceiling_dbtp"])
        _, report = render_and_write(src, dst, d, fmt=fmt, force=args.force, progress_flag=args.progress,
                                     chain=sess.load_chain(args.session, entry))
        print(format_summary(report, title=f"{args.session} v{entry['version']}"))
        return 0
    base = sess.version(doc, args.from_version)
    revision = revise_chain(sess.load_chain(args.session, base), args.words)
    n = max(v["version"] for v in doc["versions"]) + 1
    dst = args.output or str(first_out.with_name(f"{first_out.stem}.v{n}{first_out.suffix}"))
    _check_destinations([dst], inputs=[src], force=args.force)
    target = base["target_lufs"] + revision.loudness_change_lu
    d = delivery(dlv["preset"], target_lufs=target, ceiling_dbtp=dlv["ceiling_dbtp"])
    result, report = render_and_write(src, dst, d, fmt=fmt, force=args.force, progress_flag=args.progress,
                                      planned=revision.chain)
    n = sess.add_version(args.session, doc, chain_json=result.chain.to_json(), output=dst, words=args.words,
                         changes=list(revision.changes), after=report["after"], target_lufs=target,
                         parent=base["version"])
    print(f"v{n} from v{base['version']}: \"{args.words}\"")
    for c in revision.changes:
        print(f"  {c}")
    print(format_summary(report, title=f"{args.session} v{n}"))
    return 0


def format_summary(doc: dict[str, Any], *, title: str) -> str:
    b, a = doc["before"], doc["after"]
    rows = [
        ("integrated loudness", "integrated_lufs", "LUFS", 1),
        ("true peak (8x after)", "true_peak_dbtp", "dBTP", 2),
        ("loudness range", "lra_lu", "LU", 1),
        ("PLR", "plr_db", "dB", 1),
    ]
    d = doc["delivery"]
    out = [f"{title} -> {doc['output']}  ({d['preset']}: {d['target_lufs']:g} LUFS, {d['ceiling_dbtp']:g} dBTP)",
           f"  {'':22}{'before':>12}{'after':>12}"]
    for label, key, unit, digits in rows:
        out.append(f"  {label:22}{b[key]:>9.{digits}f} {unit:<3}{a[key]:>8.{digits}f} {unit}")
    verdict = (doc.get("comparison") or {}).get("verdict")
    if verdict:
        out.append(f"  {verdict}")
    out.append("  what the chain did:")
    for st in doc["chain"]["stages"]:
        if st["enabled"]:
            out.append(f"    - {st['label'] or st['kind']}: {st['why'] or _describe(st)}")
    codecs = doc.get("codecs") or []
    if codecs:
        out.append("  after lossy encoding: " + ", ".join(
            f"{c['codec']} {c['true_peak_dbtp']:+.2f} dBTP" for c in codecs))
    plays = [p for p in doc.get("platforms") or [] if p["mode"] in ("normal", "sound check", "default")]
    if plays:
        out.append("  plays at: " + ", ".join(f"{p['platform']} {p['playback_lufs']:.1f} LUFS ({p['gain_db'] + 0.0:+.1f} dB)"
                                             for p in plays))
    lim = doc.get("limiter") or {}
    if lim:
        out.append(f"  limiter: up to {lim.get('max_reduction_db', 0):.1f} dB of reduction, "
                   f"active {lim.get('limiting_pct', 0):.0f}% of the time")
    return "\n".join(out)


def _describe(stage: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in stage["params"].items() if not isinstance(v, list))


# --- demo ---------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from dsp.demo import DEMO_SAMPLE_RATE, demo_mix
    from dsp.io.audio_io import write_audio

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mix_path, master_path = out / "mix.wav", out / "master.wav"
    # The demo's own files are regenerated on every run (they are ours, not the user's).
    write_audio(mix_path, demo_mix(DEMO_SAMPLE_RATE), DEMO_SAMPLE_RATE, fmt="wav24", force=True)
    print(f"demo mix (unmastered on purpose: quiet, dull top, muddy low-mid) -> {mix_path}")
    run_master(
        str(mix_path), str(master_path), fmt="wav24", preset="streaming", lufs=None, ceiling=None,
        chain_path=None, save_chain=str(out / "chain.json"), report=str(out / "report.json"), force=True,
        progress_flag=args.progress, bits_given=True, title=str(mix_path), session=str(out / "master.session"),
        choices=DEFAULT_CHOICES,
    )
    print(f'revise it in words: reamaster revise {out / "master.session"} "brighter, a bit less squashed"')
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
