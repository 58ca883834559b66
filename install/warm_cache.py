"""Compile ReaMaster's numba kernels into their on-disk cache at set-up (``install/setup.sh``), so a
user's first master runs as fast as the tenth instead of spending half a minute compiling.

Runs the paths the commands take on a few seconds of the generated demo song: the streaming
``master``/``analyze`` of a file (float32 blocks) and the whole-signal analysis and master that
album, stems, reference mode and the server's by-value jobs use. Writes only into a temporary folder.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_stamp() -> str:
    """A hash of every dsp/ and server/ source file (names and bytes): the cache is warmed again
    when it changes. Plain Python, so set-up needs no GNU tools."""
    h = hashlib.sha256()
    for p in sorted(q for d in ("dsp", "server") for q in (ROOT / d).rglob("*.py")):
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def main() -> int:
    if sys.argv[1:] == ["--stamp"]:
        print(source_stamp())
        return 0
    t0 = time.perf_counter()
    # after the clock starts: loading the cached kernels is part of what is measured
    from dsp.decide.master import master
    from dsp.decide.presets import delivery
    from dsp.demo import demo_mix
    from dsp.io.audio_io import AudioSource, read_audio, write_audio
    from dsp.measure.analysis import analyze, analyze_source
    from server.service.mastering import master_file

    with tempfile.TemporaryDirectory(prefix="reamaster-warm-") as tmp:
        src = Path(tmp) / "mix.wav"
        write_audio(src, demo_mix(48000, seconds=8), 48000, fmt="wav24")
        master_file(str(src), str(Path(tmp) / "master.wav"), delivery("streaming"), fmt="wav24", force=False,
                    choices={"style": "auto"})
        analyze_source(AudioSource(src))
        x, sr = read_audio(src)
        write_audio(Path(tmp) / "mix16.wav", x.astype("float64"), sr, fmt="wav16")  # float64 and dithered packing
        analyze(x, sr, resonances=True)
        master(x, sr, delivery("streaming"))
    print(f"numba kernels compiled and cached ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
