"""``reamaster reaper doctor``: what REAPER will do with ReaMaster, checked, and what to change.

1. reaper.ini: is Python enabled, which library will REAPER load, does that file exist and is it a
   shared library (not an archive)?
2. The install: are the actions in ``Scripts/ReaMaster`` and registered in reaper-kb.ini, and which
   environment (Python X.Y, site-packages) did ``reamaster reaper install`` record?
3. In that very library, the way REAPER loads it: can the bootstrap put ReaMaster's environment on
   sys.path, and can ``reapy``, ``zmq`` and the ReaMaster client then be imported? With a C compiler
   this builds and runs ``install/reaper_host.c`` (dlopen + Py_InitializeEx + PyRun_SimpleString, as
   REAPER); without one it runs the interpreter that belongs to that library, isolated (-E -s)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import reaper_install as RI  # noqa: E402

PROBE = r'''
import json, sys
out = {"version": "%d.%d" % sys.version_info[:2], "full": sys.version.split()[0], "prefix": sys.base_prefix}
try:
    sys.path.insert(0, SCRIPTS)
    import reamaster_bootstrap as b
    out["problem"] = b.prepare()
    if not out["problem"]:
        import importlib, warnings
        warnings.simplefilter("ignore")
        for m in ("zmq", "reapy", "server.wire.client", "server.service.report"):
            try:
                importlib.import_module(m)
                out.setdefault("ok", []).append(m)
            except Exception as exc:
                out.setdefault("failed", {})[m] = "%s: %s" % (type(exc).__name__, exc)
except Exception as exc:
    out["problem"] = "%s: %s" % (type(exc).__name__, exc)
sys.stdout.write("REAMASTER-DOCTOR " + json.dumps(out) + "\n")
sys.stdout.flush()
'''


def _interpreter_for(lib: Path) -> Path | None:
    """The python executable that belongs to a shared library (no compiler: the next best test)."""
    m = re.search(r"python(\d)\.?(\d+)", lib.name)
    xy = f"{m.group(1)}.{m.group(2)}" if m else ""
    cands = [lib.parent / "python.exe", lib.parent.parent / "bin" / f"python{xy}", lib.parent.parent / "bin" / "python3"]
    return next((c for c in cands if c.is_file()), None)


def probe(lib: Path, scripts: Path) -> tuple[dict | None, str]:
    """Run the probe in ``lib``; returns (result or None, how it was run / why it could not)."""
    code = f"SCRIPTS = {str(scripts)!r}\n" + PROBE
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc and sys.platform != "win32":
        with tempfile.TemporaryDirectory() as d:
            exe = Path(d) / "reaper_host"
            b = subprocess.run([cc, "-O1", "-o", str(exe), str(HERE / "reaper_host.c"), "-ldl"], capture_output=True,
                               text=True, timeout=120)
            if b.returncode == 0:
                r = subprocess.run([str(exe), str(lib), "--code", code], capture_output=True, text=True, timeout=120,
                                   env=env, cwd=d)
                return _parse(r), "loaded the way REAPER loads it (install/reaper_host.c)"
    py = _interpreter_for(lib)
    if py is None:
        return None, "no C compiler and no interpreter beside the library: could not test it"
    r = subprocess.run([str(py), "-E", "-s", "-c", code], capture_output=True, text=True, timeout=120, env=env)
    return _parse(r), f"run with {py} -E -s (no C compiler to load the library itself)"


def _parse(r: subprocess.CompletedProcess) -> dict | None:
    for ln in r.stdout.splitlines():
        if ln.startswith("REAMASTER-DOCTOR "):
            return json.loads(ln[len("REAMASTER-DOCTOR "):])
    return {"problem": (r.stderr.strip().splitlines() or ["it exited with status %d" % r.returncode])[-1]}


def check(res: Path) -> tuple[bool, list[str]]:
    """(all well, report lines). Each problem line is followed by what to change."""
    lines: list[str] = [f"REAPER resource folder: {res}"]
    ok = True

    def problem(text: str, fix: str) -> None:
        nonlocal ok
        ok = False
        lines.append("PROBLEM: " + text)
        lines.append("  fix: " + fix)

    if RI.reaper_running():
        lines.append("note: REAPER is running; `install`/`uninstall` will wait for you to quit it.")
    ini = res / "reaper.ini"
    cur = RI.reaper_python_setting(res)
    lib: Path | None = None
    if not ini.is_file():
        problem(f"{ini} does not exist", "start REAPER once and quit it (or pass --resource-path to the right folder)")
    else:
        if cur.get("reascript") != "1":
            problem("Python is not enabled for ReaScript in REAPER (reascript is not 1)",
                    "quit REAPER and run `reamaster reaper install --set-python`, or tick Options > Preferences > "
                    "Plug-ins > ReaScript > Enable Python")
        if cur.get("pythonlibpath64") and cur.get("pythonlibdll64"):
            lib = Path(cur["pythonlibpath64"], cur["pythonlibdll64"])
            lines.append(f"REAPER will load: {lib}")
            if lib.suffix == ".a":
                problem(f"{lib.name} is a static archive; REAPER cannot load it", RI.no_shared_library_advice())
                lib = None
            elif not lib.is_file():
                problem(f"{lib} does not exist", "quit REAPER and run `reamaster reaper install --set-python`")
                lib = None
        else:
            problem("REAPER has no Python library set (pythonlibpath64/pythonlibdll64); it will search its defaults, "
                    "which may be another Python", "quit REAPER and run `reamaster reaper install --set-python`")
    dest = res / "Scripts" / RI.SUBDIR
    loc_path = dest / RI.LOCATION
    loc = json.loads(loc_path.read_text()) if loc_path.is_file() else {}
    if not loc:
        problem(f"ReaMaster is not installed in {dest}", "run `reamaster reaper install --set-python` (REAPER closed)")
    else:
        lines.append(f"ReaMaster's environment: Python {loc.get('python_version')} ({loc.get('python')}), "
                     f"packages in {', '.join(loc.get('site_packages', []))}")
        kb = res / "reaper-kb.ini"
        have = set(kb.read_text(encoding="utf-8", errors="replace").splitlines()) if kb.is_file() else set()
        missing = [ln for ln in RI.kb_lines(dest) if ln not in have]
        if missing:
            problem(f"{len(missing)} ReaMaster actions are not registered in {kb}",
                    "quit REAPER and run `reamaster reaper install` again")
        else:
            lines.append(f"actions registered: {len(RI.kb_lines(dest))} in {kb.name}")
    if lib is not None and loc:
        result, how = probe(lib, dest)
        lines.append(f"tested the library: {how}")
        if result is None:
            lines.append("note: " + how)
        else:
            lines.append(f"REAPER's Python: {result.get('full', '?')} ({result.get('prefix', '?')})")
            if result.get("problem"):
                problem(result["problem"].splitlines()[0], "; ".join(result["problem"].splitlines()[1:]) or
                        "quit REAPER and run `reamaster reaper install --set-python`")
            elif result.get("failed"):
                for m, why in result["failed"].items():
                    problem(f"REAPER's Python cannot import {m} ({why})",
                            "reinstall ReaMaster's environment (./install/setup.sh or py install/setup.py), then "
                            "`reamaster reaper install --set-python`")
            else:
                lines.append("imports in REAPER's Python: " + ", ".join(result.get("ok", [])) + " - all fine")
    lines.append("all well" if ok else "fix the problems above, then run `reamaster reaper doctor` again")
    return ok, lines
