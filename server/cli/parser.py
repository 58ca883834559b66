"""Every ``reamaster`` command's arguments, in one place. Standard library only (and the stdlib-only
connection module), so building the parser - and ``reamaster --help`` - imports no numpy, scipy or numba."""

from __future__ import annotations

import argparse

from ..wire.connection import DEFAULT_PORT

PRESET_NAMES = ("streaming", "apple", "youtube", "club", "cd", "broadcast")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reamaster", description="Local, explainable mastering (ReaMaster).")
    p.add_argument("--version", action="version", version="reamaster 0.1.0")
    p.add_argument("--server", default=None, metavar="ENDPOINT",
                   help="run the command through a ReaMaster server: 'auto' (its connection file) or tcp://HOST:PORT")
    p.add_argument("--key-file", default=None, help="the server's connection file (for a bare --server ENDPOINT)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the companion server (REAPER scripts and --server use it)")
    add_serve_arguments(s)

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
    m.add_argument("--mono-as", choices=("dual", "single"), default="dual",
                   help="a mono file is measured and delivered as dual-mono, as two speakers play it "
                        "(default); 'single' keeps one channel (measured 3 dB quieter, so it gets 3 dB more gain)")
    m.add_argument("--codec-safe", action="store_true",
                   help="encode to MP3 320, Vorbis and Opus, and lower the ceiling until every decoded "
                        "version stays at or under -0.5 dBTP")
    m.add_argument("--chain", default=None, help="render this chain JSON instead of deciding one")
    m.add_argument("--preview", type=float, default=None, metavar="SECONDS",
                   help="master only the loudest SECONDS (5-120) into OUT, quickly, with the chain decided "
                        "from the whole file and the stretch as loud as it will play in the full master")
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
    al.add_argument("-o", "--output", required=True,
                    help="folder for the mastered tracks and album.json (created if its parent exists)")
    al.add_argument("--preset", choices=PRESET_NAMES, default=None)
    al.add_argument("--lufs", type=float, default=None, help="loudness of the loudest track (overrides the preset)")
    al.add_argument("--ceiling", type=float, default=None)
    al.add_argument("--style", default="auto")
    al.add_argument("--bits", type=int, choices=(16, 24, 32), default=None)
    al.add_argument("--force", action="store_true")
    _progress_flags(al)

    b = sub.add_parser("batch", help="master a catalog on Dask: reamaster batch SOURCE -o OUT (resumable, with a ledger)")
    b.add_argument("source", help="a folder (searched recursively), a glob (quote it) or a manifest "
                                  "(.csv/.parquet with a path column; optional preset, style, reference, album, "
                                  "output, lufs, ceiling)")
    b.add_argument("-o", "--output", required=True,
                   help="folder for the masters (same sub-folders as SOURCE), ledger.parquet and report.html")
    b.add_argument("--preset", choices=PRESET_NAMES, default=None, help="delivery target (default: streaming)")
    b.add_argument("--lufs", type=float, default=None, help="integrated loudness target, LUFS (overrides the preset)")
    b.add_argument("--ceiling", type=float, default=None, help="true-peak ceiling, dBTP (overrides the preset)")
    b.add_argument("--style", default="auto", help="as for master: auto, a built-in style or a profile JSON")
    b.add_argument("--reference", nargs="+", default=None, metavar="REF", help="as for master")
    b.add_argument("--intensity", choices=("gentle", "balanced", "loud"), default="balanced")
    b.add_argument("--tone", type=float, default=100.0, metavar="PCT")
    b.add_argument("--dynamics", type=float, default=100.0, metavar="PCT")
    b.add_argument("--width", type=float, default=100.0, metavar="PCT")
    b.add_argument("--no-loudness", dest="loudness", action="store_false")
    b.add_argument("--codec-safe", action="store_true")
    b.add_argument("--bits", type=int, choices=(16, 24, 32), default=None,
                   help="output word length (default: the preset's; 32 = float WAV)")
    b.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster on this machine)")
    b.add_argument("--workers", type=int, default=None,
                   help="local cluster size (default: one per core, fewer if memory is short)")
    b.add_argument("--album-by", choices=("folder", "tag", "none"), default="none",
                   help="master each folder / each album tag as one album (the rules of `reamaster album`); "
                        "default none: every file on its own, as `reamaster master`")
    b.add_argument("--resume", action="store_true",
                   help="continue a batch in OUT: skip tracks whose input, options and output are unchanged")
    b.add_argument("--dry-run", action="store_true", help="list what would be mastered; write nothing")
    b.add_argument("--force", action="store_true", help="start over in an OUT that holds a batch or files")
    _progress_flags(b)

    st = sub.add_parser("stems", help="master a song from its stems (drums, bass, music, vocals, other)")
    st.add_argument("stems", nargs="+", metavar="STEM",
                    help="stem files as NAME=FILE, or FILE (the name comes from the file: vocals.wav -> vocals)")
    st.add_argument("-o", "--output", required=True, metavar="DIR",
                    help="folder for <name>.wav per stem, master.wav and stems.json (created if missing)")
    st.add_argument("--preset", choices=PRESET_NAMES, default=None, help="delivery target (default: streaming)")
    st.add_argument("--lufs", type=float, default=None, help="integrated loudness target, LUFS (overrides the preset)")
    st.add_argument("--ceiling", type=float, default=None, help="true-peak ceiling, dBTP (overrides the preset)")
    st.add_argument("--bits", type=int, choices=(16, 24, 32), default=None,
                    help="master.wav word length (default: the preset's; 32 = float)")
    st.add_argument("--stem-bits", type=int, choices=(32, 24), default=32,
                    help="processed stems: 32 = float (default; they sum exactly to the bus) or 24-bit")
    st.add_argument("--report", action="store_true",
                    help="also write report.json and report.html (the mastering report of the bus)")
    st.add_argument("--force", action="store_true", help="overwrite existing output files (never an input)")
    _progress_flags(st)

    rp = sub.add_parser("reaper", help="install the REAPER actions, check REAPER's set-up, or build the ReaPack index")
    rp.add_argument("what", choices=["install", "uninstall", "index", "doctor"])
    rp.add_argument("--resource-path", default=None, help="REAPER's resource folder (default: per OS)")
    rp.add_argument("--set-python", action="store_true",
                    help="install: also point REAPER's Python settings in reaper.ini at this interpreter's shared "
                         "library (uninstall puts back only the keys it changed)")
    rp.add_argument("--force", action="store_true",
                    help="install/uninstall: go on even while REAPER runs (REAPER rewrites its ini files on quit)")
    rp.add_argument("-o", "--output", default="index.xml", help="index: where to write index.xml")
    rp.add_argument("--base-url", default=None,
                    help="index: the URL the repository's raw files are served under (default: from the git "
                         "remote 'origin' at HEAD)")

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


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The server's options (``reamaster serve`` and ``python -m server.daemon``)."""
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else needs --allow-remote "
                        "and --curve-keys)")
    p.add_argument("--port", type=int, default=None,
                   help=f"TCP port (default {DEFAULT_PORT}; 0 = a free one); giving a port means --transport tcp")
    p.add_argument("--transport", choices=("auto", "ipc", "tcp"), default="auto",
                   help="auto (default): ipc:// in a private folder on Linux and macOS, else tcp; "
                        "tcp is always CURVE-encrypted with a key from the connection file")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: number of cores)")
    p.add_argument("--queue", type=int, default=16, help="jobs that may wait for a worker (default 16)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (needs --curve-keys)")
    p.add_argument("--curve-keys", default=None, metavar="DIR",
                   help="CURVE keys: DIR/server.key_secret and DIR/clients/*.key (zmq.auth.create_certificates)")
    p.add_argument("--max-frame-bytes", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--client-timeout", type=float, default=3.0, help=argparse.SUPPRESS)
    p.add_argument("--worker-ready-timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--max-upload-bytes", type=int, default=2 << 30, help=argparse.SUPPRESS)
    p.add_argument("--grace", type=float, default=3.0,
                   help="seconds running jobs get to finish on shutdown (default 3)")
    p.add_argument("--log-level", default="WARNING", help=argparse.SUPPRESS)


def _progress_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show the progress bar")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
