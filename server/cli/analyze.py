"""``reamaster analyze FILE [--json [--series]]``: measure a mix and print what was measured."""

from __future__ import annotations

import argparse
import json
import math

from dsp.io.audio_io import AudioSource
from dsp.measure.analysis import Analysis, analyze_source


def run(args: argparse.Namespace) -> int:
    # one block-wise read (memory independent of length), with the same resonances master acts on
    a = analyze_source(AudioSource(args.file), resonances=True)
    if args.json:
        print(json.dumps(a.to_dict(series=args.series), indent=2, allow_nan=False))
    else:
        print(format_analysis(a, title=str(args.file)))
    return 0


def _db(v: float, unit: str, digits: int = 1) -> str:
    return f"{v:.{digits}f} {unit}" if math.isfinite(v) else f"-inf {unit}"


def format_analysis(a: Analysis, *, title: str) -> str:
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
