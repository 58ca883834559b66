"""The actions in a REAPER-like host: install/reaper_host.c, built here with the system compiler,
dlopen()s the Python library that `reamaster reaper install --set-python` wrote into reaper.ini, calls
Py_InitializeEx(0) and runs each installed action's text with PyRun_SimpleString (as __main__, no
__file__, RPR_* in __main__), then REAPER's main loop for its deferred steps. The stand-in is
REAPER's side; nothing of the test venv is on sys.path: reapy, pyzmq and ReaMaster come only through
what the install put in place. A real server, real DSP."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyebur128
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "install"))
import reaper_install as RI  # noqa: E402
from real_server import running_server  # noqa: E402

pytestmark = pytest.mark.timeout(300)
ACTIONS = {name: f"ReaMaster - {name}.py" for name in (
    "Master mix (one click)", "Master mix (dialog)", "Suggest settings to native FX", "A-B compare",
    "Master selected tracks as stems", "Revise master...", "Open report", "Cancel")}


def _no_host_reason() -> str | None:
    if shutil.which("cc") is None:
        return "no C compiler (cc) to build the REAPER-like host"
    if RI.python_lib() is None:
        return ("this Python has no shared libpython (static build): REAPER could not load it either; "
                "see `reamaster reaper doctor`")
    return None


@pytest.fixture(scope="module")
def host_bin(tmp_path_factory):
    reason = _no_host_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("host") / "reaper_host"
    subprocess.run(["cc", "-O1", "-o", str(out), str(REPO / "install" / "reaper_host.c"), "-ldl"], check=True,
                   capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def server_cfg(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("rm_cfg_embedded")) as cfg:
        yield cfg


def _cli(*argv, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from server.cli.main import main; sys.exit(main())",
                           *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _host_env(server_cfg, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(REAMASTER_CONFIG_DIR=str(server_cfg), PYTHONNOUSERSITE="1", **extra)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def _installed(tmp_path, server_cfg) -> tuple[Path, Path]:
    """A REAPER resource folder with ReaMaster installed by the real CLI, --set-python; returns
    (REAPER root for the stand-in, the library reaper.ini names)."""
    root = tmp_path / "reaper"
    res = root / "resource"
    res.mkdir(parents=True)
    (res / "reaper.ini").write_text("[REAPER]\nreascript=0\n")
    r = _cli("reaper", "install", "--resource-path", str(res), "--set-python",
             env=dict(os.environ, REAMASTER_CONFIG_DIR=str(tmp_path / "install_cfg")))
    assert r.returncode == 0, r.stderr
    keys = RI._read_ini_keys((res / "reaper.ini").read_text())
    lib = Path(keys["pythonlibpath64"], keys["pythonlibdll64"])
    assert lib.is_file() and not lib.name.endswith(".a"), lib
    return root, lib


def _run_host(host_bin, lib, root, tmp_path, server_cfg, steps: list[tuple[str, str]], scripts: Path | None = None,
              **env_extra) -> dict:
    out = tmp_path / "dump.json"
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    venv_site = [p for p in RI.site_packages()]
    cfg = {"internal_paths": [str(HERE), str(REPO)] + venv_site, "root": str(root), "data": str(data),
           "out": str(out), "seconds": 3.0}
    side = HERE / "embedded" / "reaper_side.py"
    argv = [str(host_bin), str(lib),
            "--code", f"exec(compile(open({str(side)!r}).read(), {str(side)!r}, 'exec'), {{'__name__': 'reaper_side'}})"]
    scripts = scripts or root / "resource" / "Scripts" / "ReaMaster"
    for kind, what in steps:
        if kind == "action":
            argv += ["--action", str(scripts / ACTIONS[what])]
        else:
            argv += ["--code", f"__import__('reaper_side').{what}"]
    argv += ["--code", "__import__('reaper_side').dump()"]
    env = _host_env(server_cfg, REAPER_SIDE_CONFIG=json.dumps(cfg), **env_extra)
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=280, cwd=str(tmp_path))
    assert out.exists(), f"host exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    rec = json.loads(out.read_text())
    rec["_stderr"], rec["_rc"] = p.stderr, p.returncode
    return rec


def _lufs(path: str) -> float:
    x, sr = sf.read(path, always_2d=True)
    m = pyebur128.R128State(x.shape[1], sr, pyebur128.MeasurementMode.MODE_I)
    m.add_frames(np.ascontiguousarray(x, dtype=np.float64).ravel(), x.shape[0])
    return pyebur128.get_loudness_global(m)


def test_without_install_the_host_has_nothing_of_reamaster(host_bin, tmp_path, server_cfg):
    """The control: the library REAPER would load has no reapy and no pyzmq of its own, so only the
    install can make the actions work (otherwise this whole file would prove nothing)."""
    lib = os.path.join(*RI.python_lib())
    p = subprocess.run([str(host_bin), lib, "--code",
                        "import sys, importlib.util as u\n"
                        "print([m for m in ('reapy', 'zmq', 'server') if u.find_spec(m)], '__file__' in dir())"],
                       env=_host_env(server_cfg), capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[] False"


def test_every_action_completes_in_a_reaper_like_host(host_bin, tmp_path, server_cfg):
    root, lib = _installed(tmp_path, server_cfg)
    opened = tmp_path / "opened.txt"
    opener = tmp_path / "opener.sh"
    opener.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    opener.chmod(0o755)
    steps = [("code", "build_song()"),
             ("code", "step('switch_tab_soon')"), ("action", "Master mix (one click)"), ("code", "step('back_to_song')"),
             ("code", "step('heard_A')"),
             ("action", "A-B compare"), ("code", "step('heard_B')"),
             ("action", "A-B compare"), ("code", "step('heard_A_again')"),
             ("action", "Suggest settings to native FX"), ("code", "step('suggest_1')"),
             ("action", "Suggest settings to native FX"), ("code", "step('suggest_2')"),
             ("action", "Master mix (one click)"), ("code", "step('master_after_suggest')"),
             ("action", "Open report"),
             ("code", "step('answer_quieter')"), ("action", "Revise master..."),
             ("code", "step('answer_defaults')"), ("action", "Master mix (dialog)"),
             ("code", "step('select_keys_and_master')"), ("action", "Master selected tracks as stems"),
             ("action", "Cancel")]
    rec = _run_host(host_bin, lib, root, tmp_path, server_cfg, steps, REAMASTER_OPENER=str(opener))
    console = rec["console"]
    assert "Traceback" not in console and "internal error" not in console, console + rec["_stderr"]
    assert rec["errors"] == [] and rec["blocked"] == [], (rec["errors"], rec["blocked"])
    assert not any(d.get("kind") != "GetUserInputs" for d in rec["dialogs"]), rec["dialogs"]
    # the interpreter REAPER loaded saw nothing of the venv until the bootstrap added what the install recorded
    assert not any(".venv" in p for p in rec["start_path"]) and rec["leaked_before_scripts"] == []
    assert rec["file_in_main"] is False
    loc = json.loads((root / "resource" / "Scripts" / "ReaMaster" / "reamaster_location.json").read_text())
    for mod in ("reapy", "zmq"):
        assert any(rec["modules"][mod].startswith(sp) for sp in loc["site_packages"]), rec["modules"]
    song, other = rec["projects"]
    names = [t["name"] for t in song["tracks"]]
    assert other["tracks"] and [t["name"] for t in other["tracks"]] == ["Other"]  # the tab switch changed nothing there
    assert rec["steps"]["back_to_song"]["current_was"] == 1                        # ... and it did happen mid-job
    assert names[:3] == ["Drums", "Keys", "Keys"]
    for want in ("ReaMaster master (previous)", "ReaMaster master", "ReaMaster master v2", "ReaMaster stems",
                 "ReaMaster stems master"):
        assert want in names, names
    # no default track FX (a ReaComp in the default track template) on anything ReaMaster inserted
    assert all(t["fx"] == [] for t in song["tracks"][3:]), [(t["name"], t["fx"]) for t in song["tracks"][3:]]
    # stems: the two "Keys" tracks (the selected master is no stem), both processed
    stems = [t for t in song["tracks"] if t["name"].startswith("ReaMaster stem:")]
    assert [t["name"] for t in stems] == ["ReaMaster stem: Keys", "ReaMaster stem: Keys 2"], names
    assert song["master_selected"] and [t["name"] for t in song["tracks"] if t["selected"]] == ["Keys", "Keys"]
    # the user's master FX are still there, untouched, with ReaMaster's after them
    user = [f for f in song["master_fx"] if not f["renamed"].startswith("ReaMaster ")]
    assert [f["name"] for f in user] == ["VST: ReaComp (Cockos)", "VST: ReaEQ (Cockos)"]
    assert rec["user_reaeq_params"] == 16 and len(user[1]["bands"]) == 4
    assert user[1]["shown"][12].startswith("+2.5") or user[1]["shown"][12].startswith("2.5"), user[1]["shown"]
    # Suggest twice: the same settings (its own FX are out of the render it plans from)
    s1 = [f for f in rec["steps"]["suggest_1"]["master_fx"] if f["renamed"].startswith("ReaMaster ")]
    s2 = [f for f in rec["steps"]["suggest_2"]["master_fx"] if f["renamed"].startswith("ReaMaster ")]
    assert s1 and s1 == s2
    eqs = [f for f in s1 if "ReaEQ" in f["renamed"] or " EQ" in f["renamed"]]
    for f in eqs:  # a 4-band ReaEQ: Global Gain (index 12) reads what the chain asked, never a frequency
        assert len(f["bands"]) == 4 and len(f["shown"]) == 16
        assert -30.0 <= float(f["shown"][12].split()[0]) <= 12.0, f["shown"]
    # every render ReaMaster made went through the user's master FX but none of ReaMaster's own
    for e in rec["renders"]:
        assert not any(name.startswith("ReaMaster ") for _t, name in (e["fx_applied"] or [])), e
    assert any(("MASTER", "VST: ReaComp (Cockos)") in [tuple(x) for x in e["fx_applied"]] for e in rec["renders"])
    # A/B at matched loudness with the user's master FX present: B is the master as rendered
    last = json.loads(song["ext_last_master"])
    la, lb = _lufs(rec["steps"]["heard_A"]["file"]), _lufs(rec["steps"]["heard_B"]["file"])
    assert abs(la - lb) <= 0.5, (la, lb)
    assert _lufs(rec["steps"]["heard_A_again"]["file"]) == pytest.approx(la, abs=0.01)
    assert song["master_fxen"] == 1
    # the report opened with the OS opener is the HTML page
    assert opened.read_text().strip().endswith(".report.html")
    assert "done:" in console and rec["console_opened"]
    assert "nothing to cancel" in console
    assert last["master"].endswith(".wav") and os.path.isfile(last["master"])


def test_doctor_and_the_bootstrap_name_both_pythons_on_a_mismatch(host_bin, tmp_path, server_cfg):
    root, lib = _installed(tmp_path, server_cfg)
    res = root / "resource"
    env = dict(os.environ, REAMASTER_CONFIG_DIR=str(tmp_path / "install_cfg"))
    r = _cli("reaper", "doctor", "--resource-path", str(res), env=env)
    assert r.returncode == 0 and "all well" in r.stdout and "the way REAPER loads it" in r.stdout, r.stdout + r.stderr
    assert "zmq, reapy" in r.stdout
    # ReaMaster's environment recorded as another X.Y: the bootstrap refuses, naming both
    loc_path = res / "Scripts" / "ReaMaster" / "reamaster_location.json"
    loc = json.loads(loc_path.read_text())
    loc_path.write_text(json.dumps(dict(loc, python_version="3.10", python="/opt/py310/bin/python")))
    r = _cli("reaper", "doctor", "--resource-path", str(res), env=env)
    have = "%d.%d" % sys.version_info[:2]
    assert r.returncode == 1 and f"REAPER loaded Python {have}" in r.stdout and "Python 3.10" in r.stdout, r.stdout
    rec = _run_host(host_bin, lib, root, tmp_path, server_cfg, [("code", "build_song()"),
                                                                ("action", "Master mix (one click)")])
    msgs = [d.get("msg", "") for d in rec["dialogs"]]
    assert any(f"REAPER loaded Python {have}" in m and "Python 3.10" in m for m in msgs), msgs
    assert rec["modules"]["reapy"] is None and rec["undo"] == []  # nothing loaded, nothing changed
    # reaper.ini naming an archive: said plainly
    loc_path.write_text(json.dumps(loc))
    ini = res / "reaper.ini"
    ini.write_text(ini.read_text().replace(lib.name, "libpython3.11.a"))
    r = _cli("reaper", "doctor", "--resource-path", str(res), env=env)
    assert r.returncode == 1 and "static archive" in r.stdout, r.stdout


def test_a_reapack_install_finds_everything(host_bin, tmp_path, server_cfg):
    """ReaPack puts the package's files in Scripts/<index>/<category>/ and cannot write the location
    file; `reamaster reaper install` wrote it into ReaMaster's config folder. An action run from there,
    without __file__, finds its bootstrap, the environment and the client."""
    import xml.etree.ElementTree as ET
    from urllib.parse import unquote
    root, lib = _installed(tmp_path, server_cfg)
    res = root / "resource"
    loc = (res / "Scripts" / "ReaMaster" / "reamaster_location.json").read_bytes()
    shutil.rmtree(res / "Scripts" / "ReaMaster")  # only what ReaPack installs stays
    base = "https://example.org/raw/abc"
    dest = res / "Scripts" / "ReaMaster index" / "ReaMaster"
    for s in ET.fromstring(RI.reapack_index(base)).iter("source"):
        rel = unquote(s.text[len(base) + 1:])
        (dest / s.get("file")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, dest / s.get("file"))
    cfg = tmp_path / "cfg_copy"
    shutil.copytree(server_cfg, cfg, ignore=shutil.ignore_patterns("*.log", "run"))  # run/: live sockets
    (cfg / "reamaster_location.json").write_bytes(loc)
    try:
        rec = _run_host(host_bin, lib, root, tmp_path, cfg, [("code", "build_song()"),
                                                             ("action", "Master mix (one click)")], scripts=dest)
    finally:  # the action started its own server for this config folder: stop it
        from server.wire.client import Client
        with contextlib.suppress(Exception), Client.connect(cfg / "server.json", timeout=5, retries=1) as c:
            c.shutdown()
    assert "Traceback" not in rec["console"] and "done:" in rec["console"], rec["console"] + rec["_stderr"]
    assert "ReaMaster master" in [t["name"] for t in rec["projects"][0]["tracks"]]
    assert rec["modules"]["reamaster_reaper"].startswith(str(dest))
