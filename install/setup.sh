#!/usr/bin/env bash
# ReaMaster set-up. Idempotent.
#   ./install/setup.sh          create .venv, install the project and its dependencies, warm the numba cache
#   ./install/setup.sh demo     ... then master the embedded demo mix into out/demo/
#   ./install/setup.sh test     ... then run the whole test suite
#   ./install/setup.sh bench    ... then install benchmark extras (real music, meters, the peer) and run the benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"

pick_python() {
    for cand in python3.13 python3.12 python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$cand"; return 0
        fi
    done
    echo "setup: ReaMaster needs Python 3.11 or newer; install it and run this again." >&2
    exit 1
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$(pick_python)" -m venv "$VENV"
    fi
    # Reinstall only when the dependency list changed (the install is editable, so code changes need nothing).
    local stamp="$VENV/.reamaster-installed"
    local want
    # the hash by Python itself: sha256sum is GNU coreutils, absent on stock macOS
    want="$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' pyproject.toml)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
        "$VENV/bin/python" -m pip install --quiet -e ".[test]"
        echo "$want" > "$stamp"
    fi
}

# Compile the numba kernels into their cache once per code change, so the first master is as fast
# as the tenth (numba checks each cached kernel against its source file; a stale one recompiles).
warm_cache() {
    local stamp="$VENV/.reamaster-warm"
    local want
    want="$("$VENV/bin/python" install/warm_cache.py --stamp)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" install/warm_cache.py && echo "$want" > "$stamp"
    fi
}

ensure_venv
warm_cache
cmd="${1:-}"
case "$cmd" in
    "") echo "ReaMaster is installed in $VENV (run: $VENV/bin/reamaster --help)" ;;
    demo) shift; exec "$VENV/bin/reamaster" demo "$@" ;;
    test) shift; exec "$VENV/bin/python" -m pytest -n 2 "$@" ;;
    bench) shift; exec bash "$ROOT/benchmarks/run.sh" "$@" ;;
    *) echo "setup: unknown command '$cmd' (use: demo, test, bench)" >&2; exit 2 ;;
esac
