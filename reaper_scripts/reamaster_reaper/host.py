# @noindex
"""Thin access to REAPER (through reapy's raw API): console, dialogs, project facts, ext state.

Every call names the project the action started in (``capture()``, REAPER's ``ReaProject*``), never
``0`` (the *current* tab): a user who switches project tabs while a job runs must not get the master
inserted into the other project. ``check_project()`` (``ValidatePtr2``) runs before every write."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

from reapy import reascript_api as RPR

SECTION = "ReaMaster"  # ExtState / ProjExtState section

MB_OK, MB_OKCANCEL, MB_YESNO = 0, 1, 4
ID_OK, ID_CANCEL, ID_YES, ID_NO = 1, 2, 6, 7


class UserError(Exception):
    """Something the user can fix; shown in a message box, nothing else happens."""


def log(text: str) -> None:
    """A progress line in the ReaScript console (which opens, so progress and "done" are seen)."""
    RPR.ShowConsoleMsg("ReaMaster: " + text + "\n")


def message(text: str, title: str = "ReaMaster", kind: int = MB_OK) -> int:
    return int(RPR.ShowMessageBox(text, title, kind))


# --- project ----------------------------------------------------------------------------------------

_PROJ: list = [None]  # the ReaProject* the running action works on


def capture() -> str:
    """Remember the current project as the one this action works on; returns its pointer."""
    _PROJ[0] = RPR.EnumProjects(-1, "", 4096)[0]
    return _PROJ[0]


def proj():
    """The captured project (the current one if none was captured)."""
    return _PROJ[0] if _PROJ[0] is not None else capture()


def check_project() -> None:
    """Refuse to write when the project the job started in has been closed."""
    # reapy's ValidatePtr2 takes the pointer as an integer (its ctypes override), the project as a string
    p = proj()
    addr = int(p.rsplit("0x", 1)[1], 16) if isinstance(p, str) and "0x" in p else 0
    if not addr or not RPR.ValidatePtr2(0, addr, "ReaProject*"):
        raise UserError("The project this ReaMaster job started in was closed; nothing was changed.")


def is_current() -> bool:
    return RPR.EnumProjects(-1, "", 4096)[0] == proj()


def project_file() -> str:
    """The captured project's .rpp path, "" when unsaved."""
    i = 0
    while True:
        r = RPR.EnumProjects(i, "", 4096)
        if r[0] == proj() or r[0].endswith("0x0000000000000000"):
            return r[2] if r[0] == proj() else ""
        i += 1


def project_dir() -> str:
    return os.path.dirname(project_file())


def media_dir() -> str:
    """The project's recording (media) folder."""
    return RPR.GetProjectPathEx(proj(), "", 4096)[1]


def require_saved_project() -> str:
    rpp = project_file()
    if not rpp:
        raise UserError("Save the project first: ReaMaster writes its masters into the project's "
                        "media folder, and an unsaved project has none.")
    return rpp


def output_dir() -> str:
    """<media folder>/ReaMaster, created if needed (never a temp folder)."""
    d = os.path.join(media_dir(), "ReaMaster")
    os.makedirs(d, exist_ok=True)
    return d


def time_selection() -> tuple[float, float] | None:
    r = RPR.GetSet_LoopTimeRange2(proj(), False, False, 0.0, 0.0, False)
    start, end = float(r[3]), float(r[4])
    return (start, end) if end > start else None


def project_length() -> float:
    return float(RPR.GetProjectLength(proj()))


# --- tracks -----------------------------------------------------------------------------------------

def tracks() -> list[str]:
    return [RPR.GetTrack(proj(), i) for i in range(RPR.CountTracks(proj()))]


def master_track() -> str:
    return RPR.GetMasterTrack(proj())


def selected_tracks() -> list[str]:
    """Selected tracks, never the master (CountSelectedTracks ignores it)."""
    return [RPR.GetSelectedTrack(proj(), i) for i in range(RPR.CountSelectedTracks(proj()))]


def track_number(tr: str) -> int:
    """1-based track number (REAPER's $tracknumber), -1 for the master."""
    return int(RPR.GetMediaTrackInfo_Value(tr, "IP_TRACKNUMBER"))


def track_name(tr: str) -> str:
    return RPR.GetSetMediaTrackInfo_String(tr, "P_NAME", "", False)[3]


def find_track(name: str) -> str | None:
    for tr in tracks():
        if track_name(tr) == name:
            return tr
    return None


def set_selected_tracks(trs: list[str], master: bool = False) -> None:
    for tr in tracks():
        RPR.SetTrackSelected(tr, tr in trs)
    RPR.SetTrackSelected(master_track(), master)


def master_selected() -> bool:
    return bool(RPR.IsTrackSelected(master_track()))


def insert_track() -> str:
    """A new empty track at the end of the captured project, without the user's default track FX
    or envelopes (flags 0: a master played back through a default ReaComp would not be the master)."""
    check_project()
    idx = RPR.CountTracks(proj())
    RPR.InsertTrackInProject(proj(), idx, 0)
    return RPR.GetTrack(proj(), idx)


def insert_audio_track(path: str, name: str, position: float) -> str:
    """A new track at the end named ``name`` holding ``path`` as one item at ``position`` (s)."""
    tr = insert_track()
    RPR.GetSetMediaTrackInfo_String(tr, "P_NAME", name, True)
    src = RPR.PCM_Source_CreateFromFile(path)
    if src.endswith("0x0000000000000000"):
        raise UserError(f"REAPER could not open {path}")
    item = RPR.AddMediaItemToTrack(tr)
    take = RPR.AddTakeToMediaItem(item)
    RPR.SetMediaItemTake_Source(take, src)
    length = float(RPR.GetMediaSourceLength(src, False)[0])
    RPR.SetMediaItemInfo_Value(item, "D_POSITION", position)
    RPR.SetMediaItemInfo_Value(item, "D_LENGTH", length)
    RPR.GetSetMediaItemTakeInfo_String(take, "P_NAME", os.path.basename(path), True)
    RPR.TrackList_AdjustWindows(False)
    RPR.UpdateArrange()
    return tr


# --- remembered settings ------------------------------------------------------------------------------

def get_ext(key: str) -> str:
    return RPR.GetExtState(SECTION, key)


def set_ext(key: str, value: str, persist: bool = False) -> None:
    RPR.SetExtState(SECTION, key, value, persist)


def get_proj_ext(key: str) -> str:
    r = RPR.GetProjExtState(proj(), SECTION, key, "", 65536)
    return r[4] if r[0] else ""


def set_proj_ext(key: str, value: str) -> None:
    RPR.SetProjExtState(proj(), SECTION, key, value)


def undo_begin() -> None:
    RPR.Undo_BeginBlock2(proj())


def undo_end(desc: str) -> None:
    RPR.Undo_EndBlock2(proj(), desc, -1)


_OPENERS: list = []  # running opener processes (kept until they end: REAPER's Python never waits on them)


def open_file(path: str) -> None:
    """Open ``path`` with the operating system's own opener, without waiting for it
    ($REAMASTER_OPENER, a command, replaces it: for tests and unusual desktops)."""
    _OPENERS[:] = [p for p in _OPENERS if p.poll() is None]
    env = os.environ.get("REAMASTER_OPENER")
    if env:
        _OPENERS.append(subprocess.Popen(shlex.split(env) + [path], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True))
    elif sys.platform == "win32":
        os.startfile(path)  # noqa: S606 - the user's default program for the file
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        try:
            _OPENERS.append(subprocess.Popen([opener, path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True))
        except OSError:
            raise UserError(f"Could not open {path} ({opener} is missing); open it yourself.") from None


def get_json(getter, key: str) -> dict:
    try:
        v = json.loads(getter(key) or "{}")
        return v if isinstance(v, dict) else {}
    except ValueError:
        return {}
