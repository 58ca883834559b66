"""Install the ReaMaster actions into REAPER's resource folder, undo it, and build a ReaPack index.

install: copies ``reaper_scripts/`` to ``<resource>/Scripts/ReaMaster/``, writes
``reamaster_location.json`` (this checkout and its interpreter) beside them, and appends one
``SCR 4 0 RS<id> "Custom: ..." <path>`` line per action to ``reaper-kb.ini`` (idempotent).
uninstall: removes exactly those lines (the file is deleted if install created it) and the folder.
reaper.ini (Python settings) is NOT changed by this version: ``python_advice`` says what to set.
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


def python_advice(res: Path) -> str:
    """Compare REAPER's configured Python with this interpreter; plain words on what to change."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    lib = sysconfig.get_config_var("LDLIBRARY") or ""
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
