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


def _cli(*argv) -> int:
    from server.cli.main import main
    return main(["reaper", *argv])


def test_set_python_then_uninstall_puts_back_only_its_keys(tmp_path, capsys):
    res = tmp_path / "REAPER"
    res.mkdir()
    ini = b"[REAPER]\r\nreascript=0\r\npythonlibpath64=/old/lib\r\nfoo=bar\r\n\r\n[other]\r\npythonlibdll64=keep\r\n"
    (res / "reaper.ini").write_bytes(ini)
    before = _tree(res)
    assert _cli("install", "--resource-path", str(res), "--set-python") == 0
    libdir, lib = RI.python_lib()
    assert not lib.endswith(".a")
    text = (res / "reaper.ini").read_bytes().decode()
    main, other = text.split("[other]")
    assert "reascript=1\r\n" in main and f"pythonlibpath64={libdir}\r\n" in main
    assert f"pythonlibdll64={lib}\r\n" in main and "/old/lib" not in text and "foo=bar\r\n" in main
    assert other == "\r\npythonlibdll64=keep\r\n"
    assert text.count("pythonlibpath64") == 1
    assert os.path.join(libdir, lib) in capsys.readouterr().out
    assert _cli("uninstall", "--resource-path", str(res)) == 0
    assert _tree(res) == before  # nothing changed in between: exactly as it was


def test_uninstall_after_a_preference_change_keeps_that_change(tmp_path):
    """REAPER rewrote reaper.ini (a new preference) and the user picked another Python dll after the
    install: uninstall puts back reascript and pythonlibpath64, keeps the user's dll and preference."""
    res = tmp_path / "REAPER"
    res.mkdir()
    (res / "reaper.ini").write_text("[REAPER]\nreascript=0\nautosave=5\n")
    assert _cli("install", "--resource-path", str(res), "--set-python") == 0
    text = (res / "reaper.ini").read_text()
    text = text.replace("autosave=5", "autosave=10").replace(f"pythonlibdll64={RI.python_lib()[1]}",
                                                             "pythonlibdll64=libpython3.12.so")
    (res / "reaper.ini").write_text(text + "newpref=1\n")
    assert _cli("uninstall", "--resource-path", str(res)) == 0
    keys = RI._read_ini_keys((res / "reaper.ini").read_text())
    assert keys == {"reascript": "0", "autosave": "10", "pythonlibdll64": "libpython3.12.so", "newpref": "1"}


def test_install_refuses_while_reaper_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(RI, "reaper_running", lambda *a, **k: True)
    (tmp_path / "reaper-kb.ini").write_text("x\n")
    assert _cli("install", "--resource-path", str(tmp_path)) == 2
    assert "REAPER is running" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reaper-kb.ini"]
    assert _cli("install", "--resource-path", str(tmp_path), "--force") == 0


def test_reaper_running_reads_the_process_table(tmp_path):
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "1" / "comm").write_text("bash\n")
    (proc / "self").mkdir()
    assert not RI.reaper_running("linux", proc)
    (proc / "77").mkdir()
    (proc / "77" / "comm").write_text("reaper\n")
    assert RI.reaper_running("linux", proc)


def test_resource_path_per_os(tmp_path):
    home = tmp_path / "home"
    assert RI.resource_path("win32", {"APPDATA": r"C:\Users\u\AppData\Roaming"}, home) == \
        Path(r"C:\Users\u\AppData\Roaming") / "REAPER"
    assert RI.resource_path("win32", {}, home) == home / "AppData" / "Roaming" / "REAPER"
    assert RI.resource_path("darwin", {}, home) == home / "Library" / "Application Support" / "REAPER"
    assert RI.resource_path("linux", {}, home) == home / ".config" / "REAPER"


def _exists(*files):
    return lambda p: p in {os.path.join(*f) for f in files}


def test_python_lib_per_os_never_an_archive():
    # Linux, shared (Debian, pyenv --enable-shared): the soname in LIBDIR
    cfg = {"LIBDIR": "/usr/lib/x86_64-linux-gnu", "INSTSONAME": "libpython3.11.so.1.0", "LDLIBRARY": "libpython3.11.so"}
    assert RI.python_lib("linux", cfg, "/usr", (3, 11), _exists(("/usr/lib/x86_64-linux-gnu", "libpython3.11.so.1.0"))) \
        == ("/usr/lib/x86_64-linux-gnu", "libpython3.11.so.1.0")
    # Linux, static (conda, pyenv without --enable-shared): nothing REAPER can load
    cfg = {"LIBDIR": "/opt/py/lib", "INSTSONAME": "libpython3.11.a", "LDLIBRARY": "libpython3.11.a"}
    assert RI.python_lib("linux", cfg, "/opt/py", (3, 11), _exists(("/opt/py/lib", "libpython3.11.a"))) is None
    # macOS framework build (python.org, Homebrew): INSTSONAME names the framework binary; REAPER loads the dylib
    fw = "/Library/Frameworks"
    cfg = {"LIBDIR": f"{fw}/Python.framework/Versions/3.12/lib", "PYTHONFRAMEWORK": "Python",
           "PYTHONFRAMEWORKPREFIX": fw, "INSTSONAME": "Python.framework/Versions/3.12/Python",
           "LDLIBRARY": "Python.framework/Versions/3.12/Python"}
    lib = RI.python_lib("darwin", cfg, f"{fw}/Python.framework/Versions/3.12", (3, 12),
                        _exists((f"{fw}/Python.framework/Versions/3.12/lib", "libpython3.12.dylib")))
    assert lib == (f"{fw}/Python.framework/Versions/3.12/lib", "libpython3.12.dylib")
    # macOS static: none
    cfg = {"LIBDIR": "/opt/conda/lib", "LDLIBRARY": "libpython3.12.a"}
    assert RI.python_lib("darwin", cfg, "/opt/conda", (3, 12), _exists(("/opt/conda/lib", "libpython3.12.a"))) is None
    # Windows: python3X.dll in the base prefix
    base = r"C:\Python312"
    assert RI.python_lib("win32", {}, base, (3, 12), _exists((base, "python312.dll"))) == (base, "python312.dll")
    assert RI.python_lib("win32", {}, base, (3, 12), _exists()) is None


def test_set_python_refuses_without_a_shared_library(tmp_path, monkeypatch):
    (tmp_path / "reaper.ini").write_text("[REAPER]\n")
    monkeypatch.setattr(RI, "python_lib", lambda *a, **k: None)
    import pytest
    with pytest.raises(RI.InstallError, match="no shared library"):
        RI.set_python(tmp_path)
    assert (tmp_path / "reaper.ini").read_text() == "[REAPER]\n"


def test_location_records_the_environment():
    loc = RI.location()
    assert loc["python_version"] == "%d.%d" % sys.version_info[:2]
    assert any(Path(p, "zmq").is_dir() for p in loc["site_packages"])
    assert any(Path(p, "reapy").is_dir() for p in loc["site_packages"])


def test_without_set_python_reaper_ini_is_never_written(tmp_path, capsys):
    res = tmp_path / "REAPER"
    res.mkdir()
    (res / "reaper.ini").write_bytes(b"[REAPER]\npythonlibpath64=/nowhere\n")
    st = (res / "reaper.ini").stat()
    before = _tree(res)
    _cli("install", "--resource-path", str(res))
    assert "/nowhere" in capsys.readouterr().out
    _cli("uninstall", "--resource-path", str(res))
    assert _tree(res) == before and (res / "reaper.ini").stat().st_mtime_ns == st.st_mtime_ns


def test_set_python_without_reaper_ini_writes_nothing(tmp_path):
    assert "does not exist" in RI.set_python(tmp_path)
    assert list(tmp_path.iterdir()) == []
