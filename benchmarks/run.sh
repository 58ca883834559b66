#!/usr/bin/env bash
# Benchmark set-up and run (called by ./install/setup.sh bench). Installs, once:
#   - real mixed music and ffmpeg from Debian (for the independent ebur128 meter),
#   - the peer, Matchering, in its own venv (.venv-peer) so it cannot change ours.
# `benchmarks/run.sh judgement [--tracks N --seconds S]` runs benchmarks/bench_judgement.py instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ffmpeg >/dev/null || [ ! -d /usr/share/games/warzone2100 ] && [ ! -d /usr/share/games/ufoai ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            ufoai-music warzone2100-music singularity-music ffmpeg >/dev/null
    else
        echo "bench: needs ffmpeg and the Debian packages ufoai-music warzone2100-music singularity-music" >&2
    fi
fi
if [ "${1:-}" = judgement ]; then
    # issue 10's decision figures on real music (bench_judgement.py); more packages widen the set
    shift
    if [ "$(id -u)" = 0 ] && [ ! -d /usr/share/games/frozen-bubble ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fb-music-high hyperrogue-music >/dev/null || true
    fi
    exec .venv/bin/python benchmarks/bench_judgement.py "$@"
fi
if [ ! -x .venv-peer/bin/python ]; then
    python3 -m venv .venv-peer
    .venv-peer/bin/python -m pip install --quiet matchering==2.0.6
fi
.venv/bin/python benchmarks/bench_master.py --peer-python .venv-peer/bin/python "$@"
# catalog mastering on Dask: tracks per minute with 1 and 2 workers, scheduler overhead (docs/scale.md)
exec .venv/bin/python benchmarks/bench_batch.py
