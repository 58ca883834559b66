# @noindex
"""Makes ReaMaster importable inside REAPER's Python, then runs an action (reamaster_reaper.actions).

REAPER loads the shared Python library named in its preferences; an interpreter started that way
sees that Python's own site-packages only. ``reamaster_location.json`` (written by ``reamaster reaper
install`` beside this file and in ReaMaster's config folder, where a ReaPack install finds it) names
ReaMaster's environment: its Python X.Y and site-packages. They are added to ``sys.path`` only when
REAPER's Python has the same X.Y; otherwise the action refuses, saying which Python REAPER loaded and
which one is needed. REAMASTER_HOME (a checkout) overrides the recorded root."""

import json
import os
import site
import sys

_here = os.path.dirname(os.path.abspath(__file__))
LOCATION = "reamaster_location.json"


def config_dir():
    """ReaMaster's config folder (the same rule as server.wire.connection.config_dir)."""
    if os.environ.get("REAMASTER_CONFIG_DIR"):
        return os.environ["REAMASTER_CONFIG_DIR"]
    if sys.platform == "win32":
        return os.path.join(os.environ.get("APPDATA") or os.path.expanduser("~/AppData/Roaming"), "reamaster")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Application Support/reamaster")
    return os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "reamaster")


def location():
    """The install record: beside this file first, then ReaMaster's config folder; {} if none."""
    for d in (_here, config_dir()):
        try:
            with open(os.path.join(d, LOCATION), encoding="utf-8") as f:
                loc = json.load(f)
            if isinstance(loc, dict):
                return loc
        except (OSError, ValueError):
            continue
    return {}


def this_python():
    """A line naming the Python REAPER loaded."""
    return "Python %s (%s)" % (sys.version.split()[0], sys.base_prefix)


def prepare(loc=None):
    """Put ReaMaster's environment on sys.path. Returns None, or a message saying what is wrong."""
    loc = location() if loc is None else loc
    if not loc:
        return ("ReaMaster is not installed for REAPER yet (no %s found beside the scripts or in %s).\n"
                "In a terminal, in the ReaMaster folder: reamaster reaper install --set-python (REAPER closed), "
                "then `reamaster reaper doctor`." % (LOCATION, config_dir()))
    need, have = loc.get("python_version", ""), "%d.%d" % sys.version_info[:2]
    if need and need != have:
        return ("REAPER loaded %s, but ReaMaster's environment is Python %s (%s), and its packages only load in "
                "the same Python version.\nQuit REAPER, run `reamaster reaper install --set-python` (it points REAPER "
                "at %s), then start REAPER again. `reamaster reaper doctor` checks it."
                % (this_python(), need, loc.get("python", "?"), loc.get("libpython") or "that Python's library"))
    root = os.environ.get("REAMASTER_HOME") or loc.get("root")
    before = list(sys.path)
    for sp in loc.get("site_packages", []):
        if os.path.isdir(sp) and sp not in sys.path:
            site.addsitedir(sp)  # also runs its .pth files (the editable install of ReaMaster)
    added = [p for p in sys.path if p not in before]
    # ReaMaster's pinned packages win over whatever REAPER's Python has of its own
    sys.path[:] = [p for p in sys.path if p in added] + [p for p in sys.path if p not in added]
    for p in (_here, root):  # the checkout first: its client matches the server it starts
        if p and p not in sys.path:
            sys.path.insert(0, p)
    return None


def _show(text):
    main = sys.modules["__main__"]
    show = getattr(main, "RPR_ShowMessageBox", None) or getattr(main, "RPR_MB", None)
    if show is not None:
        show(text, "ReaMaster", 0)
    else:
        sys.stderr.write(text + "\n")


def run(name):
    problem = prepare()
    if problem:
        _show(problem)
        return None
    try:
        # only now: prepare() has put ReaMaster's packages on sys.path
        from reamaster_reaper.actions import run as run_action
    except ImportError as exc:
        _show("ReaMaster cannot load what its actions need (%s) in %s, with ReaMaster's environment %s.\n"
              "Run `reamaster reaper doctor` in a terminal: it says what to change."
              % (exc, this_python(), ", ".join(location().get("site_packages", [])) or "(none recorded)"))
        return None
    return run_action(name)
