# @noindex
"""Thin access to REAPER (through reapy's raw API): console, dialogs, project facts, ext state."""

from __future__ import annotations

import json
import os

from reapy import reascript_api as RPR

SECTION = "ReaMaster"  # ExtState / ProjExtState section

MB_OK, MB_OKCANCEL, MB_YESNO = 0, 1, 4
ID_OK, ID_CANCEL, ID_YES, ID_NO = 1, 2, 6, 7


class UserError(Exception):
    """Something the user can fix; shown in a message box, nothing else happens."""


def log(text: str) -> None:
    """A progress line in the ReaScript console without stealing focus."""
    RPR.ShowConsoleMsg("!SHOW:ReaMaster: " + text + "\n")


def message(text: str, title: str = "ReaMaster", kind: int = MB_OK) -> int:
    return int(RPR.ShowMessageBox(text, title, kind))


# --- project ----------------------------------------------------------------------------------------

def project_file() -> str:
    """The current project's .rpp path, "" when unsaved."""
    return RPR.EnumProjects(-1, "", 4096)[2]


def project_dir() -> str:
    return os.path.dirname(project_file())


def media_dir() -> str:
    """The project's recording (media) folder."""
    return RPR.GetProjectPathEx(0, "", 4096)[1]


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
    r = RPR.GetSet_LoopTimeRange2(0, False, False, 0.0, 0.0, False)
    start, end = float(r[3]), float(r[4])
    return (start, end) if end > start else None


def project_length() -> float:
    return float(RPR.GetProjectLength(0))


# --- tracks -----------------------------------------------------------------------------------------

def tracks() -> list[str]:
    return [RPR.GetTrack(0, i) for i in range(RPR.CountTracks(0))]


def selected_tracks() -> list[str]:
    return [RPR.GetSelectedTrack(0, i) for i in range(RPR.CountSelectedTracks(0))]


def track_name(tr: str) -> str:
    return RPR.GetSetMediaTrackInfo_String(tr, "P_NAME", "", False)[3]


def find_track(name: str) -> str | None:
    for tr in tracks():
        if track_name(tr) == name:
            return tr
    return None


def set_selected_tracks(trs: list[str]) -> None:
    for tr in tracks():
        RPR.SetTrackSelected(tr, tr in trs)


def insert_audio_track(path: str, name: str, position: float) -> str:
    """A new track at the end named ``name`` holding ``path`` as one item at ``position`` (s)."""
    idx = RPR.CountTracks(0)
    RPR.InsertTrackAtIndex(idx, True)
    tr = RPR.GetTrack(0, idx)
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
    r = RPR.GetProjExtState(0, SECTION, key, "", 65536)
    return r[4] if r[0] else ""


def set_proj_ext(key: str, value: str) -> None:
    RPR.SetProjExtState(0, SECTION, key, value)


def get_json(getter, key: str) -> dict:
    try:
        v = json.loads(getter(key) or "{}")
        return v if isinstance(v, dict) else {}
    except ValueError:
        return {}
