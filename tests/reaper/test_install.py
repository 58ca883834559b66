"""Install/uninstall on a fake REAPER resource folder; the ReaPack index against the headers."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "install"))
import reaper_install as RI  # noqa: E402


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_uninstall_round_trip(tmp_path):
    res = tmp_path / "REAPER"
    res.mkdir()
    (res / "reaper-kb.ini").write_text('KEY 1 65 _RSabc 0\nSCR 4 0 RSmine "Custom: mine.lua" mine.lua')
    (res / "reaper.ini").write_text("[REAPER]\nreascript=1\n")
    before = _tree(res)
    dest = RI.install(res)
    RI.install(res)  # idempotent
    kb = (res / "reaper-kb.ini").read_text()
    for f in RI.action_files():
        assert kb.count(f'"Custom: {f.stem}"') == 1
        assert (dest / f.name).read_bytes() == f.read_bytes()
    assert (dest / "reamaster_reaper" / "actions.py").exists()
    RI.uninstall(res)
    assert _tree(res) == before


def test_uninstall_removes_a_kb_file_install_created(tmp_path):
    RI.install(tmp_path)
    RI.uninstall(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_python_advice_says_what_to_set(tmp_path):
    (tmp_path / "reaper.ini").write_text("[REAPER]\npythonlibpath64=/nowhere\n")
    assert "/nowhere" in RI.python_advice(tmp_path) and "Preferences" in RI.python_advice(tmp_path)


def test_reapack_index_matches_headers():
    root = ET.fromstring(RI.reapack_index())
    pkgs = {p.get("name"): p for p in root.iter("reapack")}
    assert set(pkgs) == {f.name for f in RI.action_files()}
    for f in RI.action_files():
        h = RI.headers(f)
        assert h["version"] and h["description"] and h["author"] and h["about"]
        assert pkgs[f.name].get("desc") == h["description"]
        assert pkgs[f.name].find("version").get("name") == h["version"]
    sources = [s.get("file") for s in root.iter("source") if s.get("file")]
    assert "reamaster_bootstrap.py" in sources and "reamaster_reaper/actions.py" in sources
