"""Install the ReaMaster actions into REAPER's resource folder, undo it, and build a ReaPack index.

install: copies ``reaper_scripts/`` to ``<resource>/Scripts/ReaMaster/``, writes
``reamaster_location.json`` (this checkout and its interpreter) beside them, and appends one
``SCR 4 0 RS<id> "Custom: ..." <path>`` line per action to ``reaper-kb.ini`` (idempotent).
uninstall: removes exactly those lines (the file is deleted if install created it) and the folder.
reaper.ini (Python settings) is changed only by ``set_python`` (``install --set-python``): it backs
reaper.ini up to ``reaper.ini.reamaster-backup`` first (an existing backup is never replaced), and
uninstall puts that backup back byte for byte. Without it, ``python_advice`` says what to set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "reaper_scripts"
SUBDIR = "ReaMaster"
STATE = ".reamaster-install.json"


def resource_path() -> Path:
    """REAPER's resource folder per OS (REAPER_API.md section 6)."""
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", "~")).expanduser() / "REAPER"
    if sys.platform == "darwin":
        return Path("~/Library/Application Support/REAPER").expanduser()
    return Path("~/.config/REAPER").expanduser()


def action_files() -> list[Path]:
    return sorted(SCRIPTS.glob("ReaMaster - *.py"))


def _cmd_id(name: str) -> str:
    return "RS" + hashlib.sha1(("reamaster:" + name).encode()).hexdigest()


def kb_lines(dest: Path) -> list[str]:
    return [f'SCR 4 0 {_cmd_id(f.name)} "Custom: {f.stem}" "{dest / f.name}"' for f in action_files()]


def install(res: Path) -> Path:
    dest = res / "Scripts" / SUBDIR
    kb = res / "reaper-kb.ini"
    state = {"kb_existed": kb.exists(), "lines": []}
    if (dest / STATE).exists():  # already installed: keep the first record (what to undo)
        state = json.loads((dest / STATE).read_text())
    shutil.copytree(SCRIPTS, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dest / "reamaster_location.json").write_text(json.dumps({"root": str(REPO), "python": sys.executable}))
    text = kb.read_text(encoding="utf-8") if kb.exists() else ""
    have = set(text.splitlines())
    add = [ln for ln in kb_lines(dest) if ln not in have]
    if add:
        sep = "" if not text or text.endswith("\n") else "\n"
        kb.write_text(text + sep + "".join(ln + "\n" for ln in add), encoding="utf-8")
        state["lines"] = sorted(set(state["lines"]) | set(add))
        state["sep_added"] = state.get("sep_added") or bool(sep)
    (dest / STATE).write_text(json.dumps(state))
    return dest


def uninstall(res: Path) -> None:
    dest = res / "Scripts" / SUBDIR
    kb = res / "reaper-kb.ini"
    state = json.loads((dest / STATE).read_text()) if (dest / STATE).exists() else {"lines": [], "kb_existed": True}
    if kb.exists():
        ours = set(state["lines"]) | set(kb_lines(dest))
        text = "".join(ln for ln in kb.read_text(encoding="utf-8").splitlines(keepends=True)
                       if ln.rstrip("\n") not in ours)
        if state.get("sep_added") and text.endswith("\n"):
            text = text[:-1]
        if not text and not state.get("kb_existed", True):
            kb.unlink()
        else:
            kb.write_text(text, encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
        scripts = res / "Scripts"
        if scripts.exists() and not any(scripts.iterdir()):
            scripts.rmdir()


BACKUP = "reaper.ini.reamaster-backup"
# REAPER_API.md section 5.5/6 (from reapy's configure_reaper and README, not from Cockos' own docs)
PY_KEYS = ("reascript", "pythonlibpath64", "pythonlibdll64")


def python_lib() -> tuple[str, str]:
    """(folder, file name) of this interpreter's shared Python library, as REAPER wants them."""
    if sys.platform == "win32":
        return sys.base_prefix, f"python{sys.version_info[0]}{sys.version_info[1]}.dll"
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    names = [sysconfig.get_config_var(k) or "" for k in ("INSTSONAME", "LDLIBRARY")]
    for n in names:  # the one that exists, never a static .a
        if n and not n.endswith(".a") and os.path.isfile(os.path.join(libdir, os.path.basename(n))):
            return libdir, os.path.basename(n)
    return libdir, os.path.basename(names[1] or names[0])


def set_python(res: Path) -> str:
    """Point REAPER's Python settings in ``reaper.ini`` at this interpreter; returns what was done."""
    ini, backup = res / "reaper.ini", res / BACKUP
    if not ini.is_file():
        return (f"{ini} does not exist: start REAPER once, quit it, then run this again. reaper.ini was not "
                f"changed.\n" + python_advice(res))
    raw = ini.read_bytes()
    if not backup.exists():
        backup.write_bytes(raw)
    libdir, lib = python_lib()
    want = {"reascript": "1", "pythonlibpath64": libdir, "pythonlibdll64": lib}
    nl = "\r\n" if b"\r\n" in raw else "\n"
    lines = raw.decode("utf-8", errors="surrogateescape").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().lower() == "[reaper]"), None)
    if start is None:
        lines = ["[REAPER]"] + lines
        start = 0
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    for i in range(start + 1, end):
        key = lines[i].split("=", 1)[0].strip().lower()
        if "=" in lines[i] and key in want:
            lines[i] = f"{key}={want.pop(key)}"
    while end > start + 1 and not lines[end - 1].strip():  # new keys go before the section's blank lines
        end -= 1
    lines[end:end] = [f"{k}={v}" for k, v in want.items()]
    tmp = ini.with_name(ini.name + ".reamaster-tmp")
    tmp.write_bytes((nl.join(lines) + nl).encode("utf-8", errors="surrogateescape"))
    os.replace(tmp, ini)
    return (f"set REAPER's Python to {os.path.join(libdir, lib)} in {ini} (reascript, pythonlibpath64, "
            f"pythonlibdll64: the keys reapy's configure_reaper writes; REAPER's own documentation does not "
            f"list them). Backup: {backup}; `reamaster reaper uninstall` restores it exactly, which also undoes "
            f"any change REAPER makes to reaper.ini in between. Quit REAPER before, restart it after.")


def restore_ini(res: Path) -> bool:
    """Put back reaper.ini from the backup ``set_python`` made (byte-identical); True if there was one."""
    backup = res / BACKUP
    if not backup.is_file():
        return False
    tmp = res / "reaper.ini.reamaster-tmp"
    tmp.write_bytes(backup.read_bytes())
    os.replace(tmp, res / "reaper.ini")
    backup.unlink()
    return True


def python_advice(res: Path) -> str:
    """Compare REAPER's configured Python with this interpreter; plain words on what to change."""
    libdir, lib = python_lib()
    ini = res / "reaper.ini"
    cur = {}
    if ini.exists():
        for ln in ini.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"\s*(pythonlibpath64|pythonlibdll64|reascript)\s*=\s*(.*)", ln, re.I)
            if m:
                cur[m.group(1).lower()] = m.group(2).strip()
    if cur.get("pythonlibpath64") == libdir and cur.get("pythonlibdll64") == lib:
        return "REAPER is set to use this Python."
    return (f"In REAPER: Options > Preferences > Plug-ins > ReaScript, tick 'Enable Python', set "
            f"'Custom path to Python dll directory' to {libdir} and 'Force ReaScript to use specific Python "
            f".dll' to {lib} (now: {cur.get('pythonlibpath64', 'unset')} / {cur.get('pythonlibdll64', 'unset')}).")


def headers(path: Path) -> dict:
    tags, key = {}, None
    for ln in path.read_text(encoding="utf-8").splitlines():
        if not ln.startswith("#"):
            break
        m = re.match(r"#\s*@(\w+)\s*(.*)", ln)
        if m:
            key = m.group(1).lower()
            tags[key] = m.group(2).strip()
        elif key and ln.startswith("#   "):
            tags[key] = (tags[key] + "\n" + ln[4:]).strip()
    return tags


def reapack_index(base_url: str = "https://example.invalid/reamaster/raw/main") -> str:
    from xml.sax.saxutils import escape, quoteattr
    out = ['<?xml version="1.0" encoding="utf-8"?>', '<index version="1" name="ReaMaster">',
           '  <category name="reaper_scripts">']
    for f in action_files():
        h = headers(f)
        out.append(f'    <reapack name={quoteattr(f.name)} type="script" desc={quoteattr(h["description"])}>')
        out.append(f'      <metadata><description><![CDATA[{h.get("about", "")}]]></description></metadata>')
        out.append(f'      <version name={quoteattr(h["version"])} author={quoteattr(h.get("author", ""))}>')
        out.append(f'        <source main="main">{escape(base_url + "/reaper_scripts/" + f.name)}</source>')
        for p in h.get("provides", "").splitlines():
            p = p.replace("[nomain]", "").strip()
            for g in sorted(SCRIPTS.glob(p)) if p else []:
                rel = g.relative_to(SCRIPTS).as_posix()
                out.append(f'        <source file={quoteattr(rel)}>{escape(base_url + "/reaper_scripts/" + rel)}</source>')
        out.append("      </version>\n    </reapack>")
    out += ["  </category>", "</index>", ""]
    return "\n".join(out)
