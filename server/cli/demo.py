"""``reamaster demo [--out DIR]``: write the built-in demo mix and master it as ``master`` would."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from dsp.demo import DEMO_SAMPLE_RATE, demo_mix
from dsp.io.audio_io import write_audio

from ..service.mastering import DEFAULT_CHOICES
from .master import run_master


def _command() -> str:
    """How the user can run ``reamaster`` again: the script beside this interpreter when it is not
    on PATH (a fresh ``.venv``), else the bare name."""
    here = Path(sys.executable).parent / ("reamaster.exe" if os.name == "nt" else "reamaster")
    found = shutil.which("reamaster")
    if found and Path(found).resolve() == here.resolve():
        return "reamaster"
    if here.exists():
        try:
            return os.path.relpath(here)
        except ValueError:  # another drive on Windows
            return str(here)
    return "reamaster"


def run(args: argparse.Namespace) -> int:
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
    cmd = _command()
    print(f"the report, with every decision and the reason for it: {out / 'report.html'}")
    print(f'revise it in words: {cmd} revise {out / "master.session"} "brighter, a bit less squashed"')
    return 0
