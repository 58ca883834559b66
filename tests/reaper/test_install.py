"""Install/uninstall on a fake REAPER resource folder; the ReaPack index against the headers."""

from __future__ import annotations

import os
import subprocess
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


# --- the ReaPack index, checked by the rules of ReaPack's loader (cfillion/reapack src/index_v1.cpp,
# package.cpp, version.cpp, source.cpp) and reapack-index's metadata checks ------------------------------

PACKAGE_TYPES = {"script", "extension", "effect", "data", "theme", "langpack", "webinterface", "projecttpl",
                 "tracktpl", "midinotenames", "autoitem"}
SECTIONS = {"main", "midi_editor", "midi_inlineeditor", "midi_eventlisteditor", "mediaexplorer",
            "crossfade_editor", "true", "false"}


def _reapack_errors(xml: str, base: str) -> list[str]:
    import re
    from urllib.parse import unquote, urlsplit
    errs = []
    root = ET.fromstring(xml)
    if root.tag != "index" or root.get("version") != "1":
        errs.append("root must be <index version=\"1\">")
    for cat in root.iter("category"):
        if not cat.get("name"):
            errs.append("empty category name")
        for pkg in cat.iter("reapack"):
            name = pkg.get("name") or ""
            if not name or "/" in name or "\\" in name:
                errs.append(f"invalid package name {name!r}")
            if pkg.get("type") not in PACKAGE_TYPES:
                errs.append(f"{name}: unknown type {pkg.get('type')!r}")
            desc = pkg.find("metadata/description")
            if desc is None or not (desc.text or "").startswith("{\\rtf1"):
                errs.append(f"{name}: about is not RTF")
            versions = pkg.findall("version")
            if not versions:
                errs.append(f"{name}: no version")
            for v in versions:
                if not re.fullmatch(r"\d+(\.\w+)*", v.get("name") or ""):
                    errs.append(f"{name}: invalid version name {v.get('name')!r}")
                srcs = v.findall("source")
                if not srcs:
                    errs.append(f"{name} {v.get('name')}: empty version (no source)")
                targets = []
                for s in srcs:
                    url = (s.text or "").strip()
                    target = s.get("file") or name
                    targets.append(target)
                    if not url:
                        errs.append(f"{target}: empty source url")
                    if re.search(r"[\s\"<>\\^`{|}]", url):
                        errs.append(f"{target}: URL not percent-encoded: {url}")
                    if ".." in target.split("/") or target.startswith("/"):
                        errs.append(f"{target}: file outside the package's folder")
                    for sec in (s.get("main") or "").split():
                        if sec not in SECTIONS:
                            errs.append(f"{target}: unknown section {sec!r}")
                    rel = unquote(urlsplit(url).path)[len(urlsplit(base).path):].lstrip("/")
                    if not (REPO / rel).is_file():
                        errs.append(f"{target}: {url} names no file of the repository ({rel})")
                if len(set(targets)) != len(targets):
                    errs.append(f"{name}: duplicate file in one version")
    return errs


REPO = Path(__file__).resolve().parents[2]


def test_reapack_index_installs_every_file_from_percent_encoded_urls(tmp_path):
    base = "https://example.org/me/ReaMaster/raw/0123abc"
    out = tmp_path / "index.xml"
    assert _cli("index", "--base-url", base, "-o", str(out)) == 0
    xml = out.read_text()
    assert _reapack_errors(xml, base) == []
    root = ET.fromstring(xml)
    pkgs = list(root.iter("reapack"))
    assert len(pkgs) == 1  # ReaPack refuses two packages that own one file: one package holds them all
    srcs = {s.get("file"): s for s in root.iter("source")}
    for f in RI.action_files():  # every action is a main-section action of that package
        assert srcs[f.name].get("main") == "main"
        assert srcs[f.name].text == base + "/reaper_scripts/" + f.name.replace(" ", "%20").replace(
            "(", "%28").replace(")", "%29")
    for need in ("reamaster_bootstrap.py", "reamaster_reaper/actions.py", "server/wire/client.py",
                 "server/wire/connection.py", "server/wire/protocol.py", "server/service/report.py"):
        assert need in srcs and not srcs[need].get("main"), need
    for f in RI.action_files():
        h = RI.headers(f)
        assert h["version"] and h["description"] and h["author"] and h["about"]
        if f.name != RI.MAIN_PACKAGE:
            assert "noindex" in h  # reapack-index must not make a second package of it
    for f in (REPO / "reaper_scripts" / "reamaster_reaper").glob("*.py"):
        assert f.read_text().startswith("# @noindex"), f


def test_the_validator_catches_what_reapack_refuses():
    bad = ('<index version="1"><category name="c"><reapack name="a/b" type="nope">'
           '<version name="x1"><source file="../up.py">https://h/a b.py</source><source file="../up.py">'
           'https://h/x.py</source></version></reapack></category></index>')
    errs = " | ".join(_reapack_errors(bad, "https://h"))
    for want in ("invalid package name", "unknown type", "not RTF", "invalid version name", "not percent-encoded",
                 "outside the package", "duplicate file", "names no file"):
        assert want in errs, (want, errs)


def test_index_base_url_from_the_git_remote(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:me/ReaMaster.git"], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   check=True)
    rev = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert RI.git_base_url(tmp_path) == f"https://raw.githubusercontent.com/me/ReaMaster/{rev}"


def test_windows_route_and_doctor_fallback_paths(tmp_path):
    sys.path.insert(0, str(REPO / "install"))
    import importlib.util

    import reaper_doctor
    spec = importlib.util.spec_from_file_location("reamaster_setup", REPO / "install" / "setup.py")
    win_setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(win_setup)
    assert win_setup.venv_python(Path("/r/.venv"), "win32") == Path("/r/.venv/Scripts/python.exe")
    assert win_setup.venv_python(Path("/r/.venv"), "darwin") == Path("/r/.venv/bin/python")
    # no compiler: the doctor runs the interpreter that belongs to the library REAPER loads
    (tmp_path / "lib").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3.11").write_text("")
    assert reaper_doctor._interpreter_for(tmp_path / "lib" / "libpython3.11.so.1.0") == tmp_path / "bin" / "python3.11"
    (tmp_path / "win").mkdir()
    (tmp_path / "win" / "python.exe").write_text("")
    assert reaper_doctor._interpreter_for(tmp_path / "win" / "python312.dll") == tmp_path / "win" / "python.exe"
