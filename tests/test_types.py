"""The type checker passes: ``python -m mypy`` with the project's strict configuration (pyproject.toml
``[tool.mypy]``: strict on ``dsp`` and ``server``) reports no error.

The cache lives in the repository's ``.mypy_cache`` (git-ignored), so a run after a small change
re-checks only what changed; a cold run takes tens of seconds on a loaded machine.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN_PACKAGES = ("dsp", "server")


def _mypy_config() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["mypy"]


def test_the_configured_check_is_strict_on_our_packages() -> None:
    cfg = _mypy_config()
    assert cfg.get("strict") is True
    assert sorted(cfg["files"]) == sorted(OWN_PACKAGES)
    for override in cfg.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        # relaxations are only for third-party packages without type information
        assert not any(m.split(".")[0] in OWN_PACKAGES for m in modules), override
        assert set(override) <= {"module", "ignore_missing_imports"}, override


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True,
                          timeout=280)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mypy --strict found problems:\n{output}"
    assert "Success: no issues found" in proc.stdout, output
