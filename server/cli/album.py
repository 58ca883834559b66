"""``reamaster album A.wav B.wav ... -o DIR``: master tracks as one album (see :mod:`dsp.decide.album`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dsp.decide.album import master_album
from dsp.decide.presets import delivery
from dsp.errors import OutputError, ParameterError
from dsp.io.audio_io import atomic_write_text, check_audio, output_format_for, read_audio, write_audio

from ..service.mastering import album_document
from .common import check_destinations
from .progress import ProgressBar


def run(args: argparse.Namespace) -> int:
    d = delivery(args.preset, target_lufs=args.lufs, ceiling_dbtp=args.ceiling)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder; choose another output folder")
    if not out.absolute().parent.is_dir():
        raise OutputError(f"the folder {out.absolute().parent} does not exist; create it first")
    stems = [Path(f).stem for f in args.files]
    if len(set(stems)) != len(stems):
        raise ParameterError("two album tracks have the same file name; rename one")
    bits = args.bits or d.bit_depth
    outputs = [str(out / f"{st}.wav") for st in stems]
    if out.is_dir():
        check_destinations([*outputs, str(out / "album.json")], inputs=list(args.files), force=args.force)
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
    out.mkdir(exist_ok=True)
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
