"""Install the ReaMaster actions into REAPER's resource folder, undo it, and build a ReaPack index.

install: copies ``reaper_scripts/`` to ``<resource>/Scripts/ReaMaster/``, writes
``reamaster_location.json`` (this checkout, its interpreter, its Python X.Y and site-packages) beside
them and in ReaMaster's config folder (where a ReaPack-installed bootstrap finds it), and appends one
``SCR 4 0 RS<id> "Custom: ..." <path>`` line per action to ``reaper-kb.ini`` (idempotent).
uninstall: removes exactly those lines (the file is deleted if install created it) and the folder,
and puts back only the ``reaper.ini`` keys ``--set-python`` changed (when nobody changed them since).
REAPER rewrites both ini files when it quits, so every command that writes them refuses while a
REAPER process runs (``force=True`` overrides)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "reaper_scripts"
SUBDIR = "ReaMaster"
STATE = ".reamaster-install.json"
LOCATION = "reamaster_location.json"


class InstallError(Exception):
    """A one-line reason the install cannot go on, with what to do."""


def resource_path(platform: str = sys.platform, env: dict | None = None, home: Path | None = None) -> Path:
    """REAPER's resource folder per OS (REAPER_API.md section 6): %APPDATA%\\REAPER on Windows,
    ~/Library/Application Support/REAPER on macOS, ~/.config/REAPER elsewhere."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if platform == "win32":
        return Path(env["APPDATA"]) / "REAPER" if env.get("APPDATA") else home / "AppData" / "Roaming" / "REAPER"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "REAPER"
    return home / ".config" / "REAPER"


def reaper_running(platform: str = sys.platform, proc: Path = Path("/proc")) -> bool:
    """True when a REAPER process runs (it rewrites reaper.ini and reaper-kb.ini when it quits)."""
    try:
        if platform == "win32":
            out = subprocess.run(["tasklist", "/FI", "IMAGENAME eq reaper.exe", "/NH"], capture_output=True,
                                 text=True, timeout=10).stdout
            return "reaper.exe" in out.lower()
        if platform == "darwin":
            return subprocess.run(["pgrep", "-x", "REAPER"], capture_output=True, timeout=10).returncode == 0
        for d in proc.iterdir() if proc.is_dir() else []:
            if d.name.isdigit():
                try:
                    if (d / "comm").read_text().strip().lower() == "reaper":
                        return True
                except OSError:
                    continue
    except (OSError, subprocess.SubprocessError):
        return False
    return False


def _refuse_if_running(force: bool, what: str) -> None:
    if not force and reaper_running():
        raise InstallError(f"REAPER is running: quit it first ({what}; REAPER rewrites its ini files when it "
                           f"quits, which would undo or garble the change), or pass --force.")


def action_files() -> list[Path]:
    return sorted(SCRIPTS.glob("ReaMaster - *.py"))


def _cmd_id(name: str) -> str:
    return "RS" + hashlib.sha1(("reamaster:" + name).encode()).hexdigest()


def kb_lines(dest: Path) -> list[str]:
    return [f'SCR 4 0 {_cmd_id(f.name)} "Custom: {f.stem}" "{dest / f.name}"' for f in action_files()]


def site_packages() -> list[str]:
    """The folders this interpreter (ReaMaster's environment) imports packages from."""
    paths = sysconfig.get_paths()
    out = []
    for k in ("purelib", "platlib"):
        p = paths.get(k)
        if p and os.path.isdir(p) and p not in out:
            out.append(p)
    return out


def location() -> dict:
    """What the REAPER side needs to find ReaMaster: the checkout, the interpreter, its X.Y, its
    site-packages and the shared library REAPER should load."""
    lib = python_lib()
    return {"root": str(REPO), "python": sys.executable, "python_version": "%d.%d" % sys.version_info[:2],
            "site_packages": site_packages(), "libpython": os.path.join(*lib) if lib else ""}


def config_location_path() -> Path:
    """ReaMaster's own copy of the location file (its config folder), for ReaPack installs."""
    sys.path.insert(0, str(REPO))
    try:
        from server.wire.connection import config_dir  # from the repository, on sys.path just for this
    finally:
        sys.path.remove(str(REPO))
    return config_dir() / LOCATION


def install(res: Path, force: bool = False) -> Path:
    _refuse_if_running(force, "install edits reaper-kb.ini")
    dest = res / "Scripts" / SUBDIR
    kb = res / "reaper-kb.ini"
    state = {"kb_existed": kb.exists(), "lines": []}
    if (dest / STATE).exists():  # already installed: keep the first record (what to undo)
        state = json.loads((dest / STATE).read_text())
    shutil.copytree(SCRIPTS, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    loc = json.dumps(location(), indent=1)
    (dest / LOCATION).write_text(loc)
    try:
        cfg = config_location_path()
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(loc)
    except OSError:
        pass
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


def uninstall(res: Path, force: bool = False) -> list[str]:
    """Undo ``install`` (and ``set_python``); returns what was put back in reaper.ini."""
    _refuse_if_running(force, "uninstall edits reaper-kb.ini and reaper.ini")
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
    restored = restore_ini(res, state.get("ini") or {})
    if dest.exists():
        shutil.rmtree(dest)
        scripts = res / "Scripts"
        if scripts.exists() and not any(scripts.iterdir()):
            scripts.rmdir()
    return restored


# --- REAPER's Python ---------------------------------------------------------------------------------

# REAPER_API.md section 5.5/6 (from reapy's configure_reaper and README, not from Cockos' own docs)
PY_KEYS = ("reascript", "pythonlibpath64", "pythonlibdll64")


def python_lib(platform: str = sys.platform, cfg: dict | None = None, base_prefix: str | None = None,
               version: tuple[int, int] | None = None, exists=os.path.isfile) -> tuple[str, str] | None:
    """(folder, file name) of this interpreter's *shared* Python library as REAPER loads it, or None
    when there is none (a static build: REAPER cannot load ``libpython3.x.a``).

    Windows: ``python3X.dll`` in the base prefix. macOS: ``lib/libpython3.x.dylib`` (framework builds
    name ``Python.framework/Versions/3.x/Python`` in INSTSONAME, cpython#92794; the dylib beside it in
    ``lib/`` is what REAPER loads). Linux and others: INSTSONAME or LDLIBRARY in LIBDIR."""
    cfg = sysconfig.get_config_vars() if cfg is None else cfg
    base_prefix = sys.base_prefix if base_prefix is None else base_prefix
    major, minor = sys.version_info[:2] if version is None else version
    xy = f"{major}.{minor}"
    if platform == "win32":
        folder, name = base_prefix, f"python{major}{minor}.dll"
        return (folder, name) if exists(os.path.join(folder, name)) else None
    libdir = cfg.get("LIBDIR") or os.path.join(base_prefix, "lib")
    cands: list[tuple[str, str]] = []
    if platform == "darwin":
        cands.append((libdir, f"libpython{xy}.dylib"))
        if cfg.get("PYTHONFRAMEWORK"):
            fw = os.path.join(cfg.get("PYTHONFRAMEWORKPREFIX") or "", cfg["PYTHONFRAMEWORK"] + ".framework",
                              "Versions", xy, "lib")
            cands.append((fw, f"libpython{xy}.dylib"))
        for k in ("LDLIBRARY", "INSTSONAME"):
            n = os.path.basename(cfg.get(k) or "")
            if n.endswith(".dylib"):
                cands.append((libdir, n))
    else:
        for k in ("INSTSONAME", "LDLIBRARY"):
            n = os.path.basename(cfg.get(k) or "")
            if ".so" in n:
                cands.append((libdir, n))
    for folder, name in cands:
        if not name.endswith(".a") and exists(os.path.join(folder, name)):
            return folder, name
    return None


def no_shared_library_advice(platform: str = sys.platform) -> str:
    xy = "%d.%d" % sys.version_info[:2]
    where = {"win32": f"install Python {xy} from python.org (it ships python{xy.replace('.', '')}.dll)",
             "darwin": f"install Python {xy} from python.org or Homebrew (python@{xy}); both ship "
                       f"lib/libpython{xy}.dylib"}.get(
        platform, f"install your system's shared Python library (Debian/Ubuntu: apt install libpython{xy}; "
                  f"pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install {xy})")
    return (f"This Python ({sys.executable}, {xy}) has no shared library (a static build, e.g. conda or pyenv "
            f"without --enable-shared); REAPER can only load a shared one. To fix it, {where}, make ReaMaster's "
            f"environment with that Python, and run `reamaster reaper install --set-python` again.")


def _read_ini_keys(raw: str) -> dict[str, str]:
    """The [REAPER] section's keys (lower case) and values."""
    out, inside = {}, False
    for ln in raw.splitlines():
        s = ln.strip()
        if s.startswith("["):
            inside = s.lower() == "[reaper]"
        elif inside and "=" in ln:
            k, v = ln.split("=", 1)
            out.setdefault(k.strip().lower(), v.strip())
    return out


def _edit_ini(raw: bytes, changes: dict[str, str | None]) -> bytes:
    """``raw`` with the [REAPER] keys in ``changes`` set (None: removed); every other byte kept."""
    nl = "\r\n" if b"\r\n" in raw else "\n"
    want = dict(changes)
    lines = raw.decode("utf-8", errors="surrogateescape").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().lower() == "[reaper]"), None)
    if start is None:
        if not any(v is not None for v in want.values()):
            return raw
        lines = ["[REAPER]"] + lines
        start = 0
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    drop = []
    for i in range(start + 1, end):
        key = lines[i].split("=", 1)[0].strip().lower()
        if "=" in lines[i] and key in want:
            v = want.pop(key)
            if v is None:
                drop.append(i)
            else:
                lines[i] = f"{key}={v}"
    for i in reversed(drop):
        del lines[i]
        end -= 1
    while end > start + 1 and not lines[end - 1].strip():  # new keys go before the section's blank lines
        end -= 1
    lines[end:end] = [f"{k}={v}" for k, v in want.items() if v is not None]
    return (nl.join(lines) + nl).encode("utf-8", errors="surrogateescape")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".reamaster-tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def set_python(res: Path, force: bool = False) -> str:
    """Point REAPER's Python settings in ``reaper.ini`` at this interpreter's shared library; the keys
    changed and their old values are recorded (``uninstall`` puts back only those). Returns what was done."""
    ini = res / "reaper.ini"
    if not ini.is_file():
        return (f"{ini} does not exist: start REAPER once, quit it, then run this again. reaper.ini was not "
                f"changed.\n" + python_advice(res))
    lib = python_lib()
    if lib is None:
        raise InstallError(no_shared_library_advice() + " reaper.ini was not changed.")
    _refuse_if_running(force, "--set-python edits reaper.ini")
    libdir, name = lib
    raw = ini.read_bytes()
    cur = _read_ini_keys(raw.decode("utf-8", errors="replace"))
    want = {"reascript": "1", "pythonlibpath64": libdir, "pythonlibdll64": name}
    state_path = res / "Scripts" / SUBDIR / STATE
    state = json.loads(state_path.read_text()) if state_path.exists() else {"lines": [], "kb_existed": True}
    rec = state.setdefault("ini", {})
    for k, v in want.items():
        if k not in rec:  # the first install's old value is what uninstall puts back
            rec[k] = {"old": cur.get(k), "new": v}
        else:
            rec[k]["new"] = v
    _write_atomic(ini, _edit_ini(raw, want))
    if state_path.parent.is_dir():
        state_path.write_text(json.dumps(state))
    return (f"set REAPER's Python to {os.path.join(libdir, name)} in {ini} (reascript, pythonlibpath64, "
            f"pythonlibdll64: the keys reapy's configure_reaper writes; REAPER's own documentation does not "
            f"list them). `reamaster reaper uninstall` puts back only these keys, and only where they still "
            f"hold what ReaMaster wrote. Quit REAPER before, restart it after.")


def restore_ini(res: Path, recorded: dict) -> list[str]:
    """Put back the reaper.ini keys ``set_python`` changed, where they still hold ReaMaster's value
    (a value changed since, in REAPER's preferences, is the user's and stays). Returns what was done."""
    ini = res / "reaper.ini"
    if not recorded or not ini.is_file():
        return []
    raw = ini.read_bytes()
    cur = _read_ini_keys(raw.decode("utf-8", errors="replace"))
    changes, done = {}, []
    for k, r in recorded.items():
        if cur.get(k) == r["new"]:
            changes[k] = r["old"]
            done.append(f"{k}: back to {r['old']!r}" if r["old"] is not None else f"{k}: removed")
        else:
            done.append(f"{k}: kept {cur.get(k)!r} (changed since install)")
    if changes:
        _write_atomic(ini, _edit_ini(raw, changes))
    return done


def reaper_python_setting(res: Path) -> dict[str, str]:
    ini = res / "reaper.ini"
    if not ini.exists():
        return {}
    cur = _read_ini_keys(ini.read_text(encoding="utf-8", errors="replace"))
    return {k: cur[k] for k in PY_KEYS if k in cur}


def python_advice(res: Path) -> str:
    """Compare REAPER's configured Python with this interpreter; plain words on what to change."""
    lib = python_lib()
    if lib is None:
        return no_shared_library_advice()
    libdir, name = lib
    cur = reaper_python_setting(res)
    if cur.get("pythonlibpath64") == libdir and cur.get("pythonlibdll64") == name:
        return "REAPER is set to use this Python."
    return (f"In REAPER: Options > Preferences > Plug-ins > ReaScript, tick 'Enable Python', set "
            f"'Custom path to Python dll directory' to {libdir} and 'Force ReaScript to use specific Python "
            f".dll' to {name} (now: {cur.get('pythonlibpath64', 'unset')} / {cur.get('pythonlibdll64', 'unset')}), "
            f"or run `reamaster reaper install --set-python` with REAPER closed.")


# --- ReaPack ---------------------------------------------------------------------------------------------

# Files outside reaper_scripts/ that the actions import inside REAPER (stdlib + pyzmq + reapy).
SERVER_SUPPORT = ("server/__init__.py", "server/wire/__init__.py", "server/wire/client.py",
                  "server/wire/connection.py", "server/wire/protocol.py", "server/service/__init__.py",
                  "server/service/session.py", "server/service/report.py")
MAIN_PACKAGE = "ReaMaster - Master mix (one click).py"


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


def rtf(text: str) -> str:
    """Plain text (one paragraph per line) as the RTF ReaPack shows in its About window."""
    def esc(s: str) -> str:
        out = []
        for ch in s:
            if ch in "\\{}":
                out.append("\\" + ch)
            elif ord(ch) > 127:
                code = ord(ch)
                out.append(f"\\u{code - 65536 if code > 32767 else code}?")
            else:
                out.append(ch)
        return "".join(out)
    body = "\n".join(f"\\pard {esc(ln.strip())}\\par" for ln in text.splitlines() if ln.strip())
    return "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 \\fswiss Helvetica;}}\\f0\\fs20\n" + body + "\n}"


def support_files() -> list[str]:
    """Repository paths (posix) of the files every action needs besides itself."""
    h = headers(SCRIPTS / MAIN_PACKAGE)
    out = []
    for p in h.get("provides", "").splitlines():
        p = re.sub(r"\[[^]]*\]", "", p).strip()
        for g in sorted(SCRIPTS.glob(p)) if p else []:
            out.append(g.relative_to(REPO).as_posix())
    return [p for p in out if not p.startswith("reaper_scripts/ReaMaster - ")] + list(SERVER_SUPPORT)


def git_base_url(repo: Path = REPO) -> str | None:
    """A raw-file base URL from the git remote "origin" (GitHub/GitLab/Codeberg forms), or None."""
    try:
        url = subprocess.run(["git", "-C", str(repo), "remote", "get-url", "origin"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"(?:https://|git@)([^/:]+)[/:]([^/]+)/(.+?)(?:\.git)?$", url)
    if not m or not rev:
        return None
    host, owner, name = m.groups()
    if host == "github.com":
        return f"https://raw.githubusercontent.com/{owner}/{name}/{rev}"
    return f"https://{host}/{owner}/{name}/raw/{rev}"


def url_for(base_url: str, repo_path: str) -> str:
    """``base_url`` + the path, every segment percent-encoded (spaces, parentheses, ...)."""
    return base_url.rstrip("/") + "/" + "/".join(quote(seg, safe="") for seg in repo_path.split("/"))


def reapack_index(base_url: str) -> str:
    """One ReaPack package ("ReaMaster") holding every action (each a main source, registered in the
    Main section) and the support files they import; ReaPack refuses two packages owning one file,
    so the support files live in exactly one package. Support files carry ``@noindex``."""
    if not re.match(r"^https?://[^\s]+$", base_url):
        raise InstallError(f"--base-url must be an http(s) URL without spaces (got {base_url!r})")
    main = headers(SCRIPTS / MAIN_PACKAGE)
    about = "\n".join(f"{f.stem[len('ReaMaster - '):]}: {headers(f).get('about', '').splitlines()[0]}"
                      for f in action_files())
    out = ['<?xml version="1.0" encoding="utf-8"?>', '<index version="1" name="ReaMaster">',
           '  <category name="ReaMaster">',
           f'    <reapack name={quoteattr(MAIN_PACKAGE)} type="script" desc="ReaMaster: local mastering assistant">',
           f'      <metadata><description><![CDATA[{rtf(about)}]]></description></metadata>',
           f'      <version name={quoteattr(main["version"])} author={quoteattr(main.get("author", ""))}>']
    for f in action_files():
        out.append(f'        <source main="main" file={quoteattr(f.name)}>'
                   f'{escape(url_for(base_url, "reaper_scripts/" + f.name))}</source>')
    for p in support_files():
        rel = p[len("reaper_scripts/"):] if p.startswith("reaper_scripts/") else p
        out.append(f'        <source file={quoteattr(rel)}>{escape(url_for(base_url, p))}</source>')
    out += ["      </version>", "    </reapack>", "  </category>", "</index>", ""]
    return "\n".join(out)
