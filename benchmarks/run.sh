#!/usr/bin/env bash
# Benchmark set-up and run (called by ./install/setup.sh bench). Installs, once:
#   - real mixed music and ffmpeg from Debian (for the independent ebur128 meter),
#   - the peer, Matchering, in its own venv (.venv-peer) so it cannot change ours.
# Then runs, with no argument, every benchmark below; with a name, that one (further arguments go
# to its script):
#   master        bench_master.py: speed, memory, independent meters, the peer on the same files
#   transparency  bench_transparency.py: the peak stage at -14 and -8 LUFS beside a clipper and loudnorm
#   batch         bench_batch.py: catalog mastering on Dask, 1 and 2 workers (docs/scale.md)
#   judgement     bench_judgement.py: issue 10's decision figures on real music
#   server        bench_server.py: latency under load and a hostile local client
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
what="${1:-all}"
case "$what" in
    master|transparency|batch|judgement|server) shift ;;
    *) what=all ;;
esac
if [ "$what" = judgement ] && [ "$(id -u)" = 0 ] && [ ! -d /usr/share/games/frozen-bubble ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fb-music-high hyperrogue-music >/dev/null || true
fi
if { [ "$what" = all ] || [ "$what" = master ]; } && [ ! -x .venv-peer/bin/python ]; then
    rm -rf .venv-peer
    python3 -m venv .venv-peer
    .venv-peer/bin/python -m pip install --quiet matchering==2.0.6
fi
case "$what" in
    master) exec .venv/bin/python benchmarks/bench_master.py --peer-python .venv-peer/bin/python "$@" ;;
    all)
        .venv/bin/python benchmarks/bench_master.py --peer-python .venv-peer/bin/python "$@"
        .venv/bin/python benchmarks/bench_transparency.py
        .venv/bin/python benchmarks/bench_judgement.py
        .venv/bin/python benchmarks/bench_server.py
        exec .venv/bin/python benchmarks/bench_batch.py ;;
    *) exec .venv/bin/python "benchmarks/bench_$what.py" "$@" ;;
esac
