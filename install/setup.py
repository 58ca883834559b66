"""ReaMaster set-up without a shell: the same as install/setup.sh, for Windows (and anywhere).

    py install\\setup.py          create .venv and install the project and its dependencies
    py install\\setup.py demo     ... then master the embedded demo mix into out/demo/
    py install\\setup.py test     ... then run the whole test suite

Idempotent: reinstalls only when pyproject.toml changed (the same stamp as setup.sh)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def venv_python(venv: Path = VENV, platform: str = sys.platform) -> Path:
    return venv / ("Scripts/python.exe" if platform == "win32" else "bin/python")


def ensure_venv() -> Path:
    if sys.version_info < (3, 11):
        sys.exit("setup: ReaMaster needs Python 3.11 or newer (run it with py -3.11 or newer).")
    py = venv_python()
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp = VENV / ".reamaster-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != want:
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], cwd=ROOT)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-e", ".[test]"], cwd=ROOT, check=True)
        stamp.write_text(want + "\n")
    warm_cache(py)
    return py


def warm_cache(py: Path) -> None:
    """Compile the numba kernels once per code change, as setup.sh does (install/warm_cache.py)."""
    stamp = VENV / ".reamaster-warm"
    want = subprocess.run([str(py), "install/warm_cache.py", "--stamp"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    if not stamp.exists() or stamp.read_text().strip() != want:
        subprocess.run([str(py), "install/warm_cache.py"], cwd=ROOT, check=True)
        stamp.write_text(want + "\n")


def main(argv: list[str]) -> int:
    py = ensure_venv()
    cmd, rest = (argv[0], argv[1:]) if argv else ("", [])
    if cmd == "":
        print(f"ReaMaster is installed in {VENV} (run: {py} -m server.cli.main --help, or the reamaster command there)")
        return 0
    if cmd == "demo":
        return subprocess.run([str(py), "-c", "import sys; from server.cli.main import main; sys.exit(main())",
                               "demo", *rest], cwd=ROOT).returncode
    if cmd == "test":
        return subprocess.run([str(py), "-m", "pytest", "-n", "2", *rest], cwd=ROOT).returncode
    print(f"setup: unknown command '{cmd}' (use: demo, test)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
