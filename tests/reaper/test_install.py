"""Install/uninstall on a fake REAPER resource folder; the ReaPack index against the headers."""

from __future__ import annotations

import os
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


def _cli(*argv) -> int:
    from server.cli.main import main
    return main(["reaper", *argv])


def test_set_python_then_uninstall_restores_reaper_ini_exactly(tmp_path, capsys):
    res = tmp_path / "REAPER"
    res.mkdir()
    ini = b"[REAPER]\r\nreascript=0\r\npythonlibpath64=/old/lib\r\nfoo=bar\r\n\r\n[other]\r\npythonlibdll64=keep\r\n"
    (res / "reaper.ini").write_bytes(ini)
    before = _tree(res)
    assert _cli("install", "--resource-path", str(res), "--set-python") == 0
    libdir, lib = RI.python_lib()
    assert (res / RI.BACKUP).read_bytes() == ini
    text = (res / "reaper.ini").read_bytes().decode()
    main, other = text.split("[other]")
    assert "reascript=1\r\n" in main and f"pythonlibpath64={libdir}\r\n" in main
    assert f"pythonlibdll64={lib}\r\n" in main and "/old/lib" not in text and "foo=bar\r\n" in main
    assert other == "\r\npythonlibdll64=keep\r\n"
    assert text.count("pythonlibpath64") == 1
    assert os.path.join(libdir, lib) in capsys.readouterr().out
    # a second install never replaces the backup of the original
    (res / "reaper.ini").write_bytes(b"[REAPER]\nchanged=1\n")
    _cli("install", "--resource-path", str(res), "--set-python")
    assert (res / RI.BACKUP).read_bytes() == ini
    assert _cli("uninstall", "--resource-path", str(res)) == 0
    assert _tree(res) == before


def test_without_set_python_reaper_ini_is_never_written(tmp_path, capsys):
    res = tmp_path / "REAPER"
    res.mkdir()
    (res / "reaper.ini").write_bytes(b"[REAPER]\npythonlibpath64=/nowhere\n")
    st = (res / "reaper.ini").stat()
    before = _tree(res)
    _cli("install", "--resource-path", str(res))
    assert "/nowhere" in capsys.readouterr().out
    assert not (res / RI.BACKUP).exists()
    _cli("uninstall", "--resource-path", str(res))
    assert _tree(res) == before and (res / "reaper.ini").stat().st_mtime_ns == st.st_mtime_ns


def test_set_python_without_reaper_ini_writes_nothing(tmp_path):
    assert "does not exist" in RI.set_python(tmp_path)
    assert list(tmp_path.iterdir()) == []
