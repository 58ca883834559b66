# @noindex
"""Puts ReaMaster's client (``server``) on sys.path, then runs an action (see reamaster_reaper.actions).

``reamaster_location.json`` beside this file (written by ``reamaster reaper install``) names the
project root and its interpreter; REAMASTER_HOME overrides it."""

import json
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))


def _root():
    if os.environ.get("REAMASTER_HOME"):
        return os.environ["REAMASTER_HOME"]
    try:
        with open(os.path.join(_here, "reamaster_location.json"), encoding="utf-8") as f:
            return json.load(f).get("root")
    except (OSError, ValueError):
        return None


def run(name):
    root = _root()
    if root and root not in sys.path:
        sys.path.append(root)
    try:
        from reamaster_reaper.actions import run as run_action
    except ImportError as exc:
        import reaper_python  # noqa: F401 - only to report the problem inside REAPER
        sys.modules["__main__"].RPR_ShowMessageBox(
            "ReaMaster cannot load its client (%s).\nRun `reamaster reaper install` again, or set "
            "REAMASTER_HOME to the ReaMaster folder." % exc, "ReaMaster", 0)
        return None
    return run_action(name)
