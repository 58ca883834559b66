"""The "REAPER binary": C-level implementations of the API functions, with their C signatures.

Each function is registered with the signature from ``reaper_plugin_functions.h``; the boundary
(:mod:`.abi`) hands it model objects for pointers (``None`` for NULL, wrong-type or stale
pointers), ``str`` for ``const char*``, :class:`~.abi.StrBuf`/:class:`~.abi.Ref` for outputs.
A NULL ``ReaProject*`` means the current project. On a NULL object the functions do nothing and
return 0/""/false, as REAPER does.
"""

from __future__ import annotations

import os
import time

from . import render as _render
from .abi import Boundary, Ref, StrBuf
from .fx import FXInstance, find_plugin
from .project import (
    ITEM_DEFAULTS,
    TAKE_DEFAULTS,
    TRACK_DEFAULTS,
    Project,
    Reaper,
    Source,
    Track,
    UserInputsAnswer,
)

B = Boundary()
api = B.api
APP: Reaper | None = None


def A() -> Reaper:
    if APP is None:
        raise RuntimeError("REAPER stand-in not started (standin.reset)")
    return APP


B.resolve = lambda addr, ctype: A().lookup(addr, ctype) if addr else None
B.to_address = lambda obj: obj.addr


def P(proj: Project | None) -> Project:
    return A().project_or_current(proj)


# --- pointers -----------------------------------------------------------------------------------------

@api("bool ValidatePtr(void* pointer, const char* ctypename)", wrap=False)
def ValidatePtr(pointer, ctypename):
    obj = A().objects.get(pointer)
    return obj is not None and (ctypename in ("void*", obj.ptr_type))


@api("bool ValidatePtr2(ReaProject* proj, void* pointer, const char* ctypename)")
def ValidatePtr2(proj, pointer, ctypename):
    obj = A().objects.get(pointer)
    if obj is None or obj.ptr_type != ctypename:
        return False
    if isinstance(obj, Project):
        return True
    if isinstance(obj, Source):
        return True
    return P(proj).owns(obj)


# --- application ----------------------------------------------------------------------------------------

@api("const char* GetResourcePath()")
def GetResourcePath():
    return A().resource_path


@api("const char* GetExePath()")
def GetExePath():
    return os.path.join(A().root, "reaper-exe")


@api("const char* GetAppVersion()")
def GetAppVersion():
    return A().app_version


@api("const char* GetOS()")
def GetOS():
    return "linux-x86_64"


@api("const char* get_ini_file()")
def get_ini_file():
    path = os.path.join(A().resource_path, "reaper.ini")
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as f:
            f.write("[reaper]\n")
    return path


@api("bool APIExists(const char* function_name)")
def APIExists(function_name):
    # SWS registers its functions with REAPER (so APIExists is true) but ships their Python
    # wrappers in sws_python64.py, which neither reaper_python nor reapy import.
    return function_name in B.bindings or (A().sws and (function_name or "").startswith(("CF_", "BR_", "SNM_", "NF_")))


@api("double time_precise()")
def time_precise():
    return time.perf_counter()


@api("bool GetAudioDeviceInfo(const char* attribute, char* desc, int desc_sz)")
def GetAudioDeviceInfo(attribute, desc: StrBuf, desc_sz):
    a = A()
    if not a.device_open:
        return False
    values = {"MODE": "dummy", "IDENT_IN": "standin", "IDENT_OUT": "standin", "BSIZE": "512",
              "SRATE": f"{a.device_srate:g}", "BPS": "24"}
    if attribute not in values:
        return False
    desc.value = values[attribute]
    return True


@api("void UpdateArrange()")
def UpdateArrange():
    pass


@api("void UpdateTimeline()")
def UpdateTimeline():
    pass


@api("void TrackList_AdjustWindows(bool isMinor)")
def TrackList_AdjustWindows(isMinor):
    pass


@api("void PreventUIRefresh(int prevent_count)")
def PreventUIRefresh(prevent_count):
    a = A()
    a.ui_refresh_count += prevent_count
    a.ui_refresh_log.append(prevent_count)


@api("int RecursiveCreateDirectory(const char* path, int ignored)")
def RecursiveCreateDirectory(path, ignored):
    try:
        existed = os.path.isdir(path)
        os.makedirs(path, exist_ok=True)
        return 1 if existed else 2  # [?] "returns positive value on success"
    except OSError:
        return 0


# --- projects -----------------------------------------------------------------------------------------

@api("ReaProject* EnumProjects(int idx, char* projfnOutOptional, int projfnOutOptional_sz)")
def EnumProjects(idx, buf: StrBuf, sz):
    a = A()
    if idx == -1:
        p = a.project
    elif 0 <= idx < len(a.projects):
        p = a.projects[idx]
    else:
        return None  # includes 0x40000000 (no render in progress)
    buf.value = p.rpp_path
    return p


@api("void SelectProjectInstance(ReaProject* proj)")
def SelectProjectInstance(proj):
    if proj is not None:
        A().current = A().projects.index(proj)


@api("void GetProjectPath(char* buf, int buf_sz)")
def GetProjectPath(buf: StrBuf, buf_sz):
    buf.value = A().project.record_path


@api("void GetProjectPathEx(ReaProject* proj, char* buf, int buf_sz)")
def GetProjectPathEx(proj, buf: StrBuf, buf_sz):
    buf.value = P(proj).record_path


@api("void GetProjectName(ReaProject* proj, char* buf, int buf_sz)")
def GetProjectName(proj, buf: StrBuf, buf_sz):
    buf.value = P(proj).rpp_name


@api("double GetProjectLength(ReaProject* proj)")
def GetProjectLength(proj):
    return P(proj).length()


@api("bool IsProjectDirty(ReaProject* proj)")
def IsProjectDirty(proj):
    return P(proj).dirty


@api("void MarkProjectDirty(ReaProject* proj)")
def MarkProjectDirty(proj):
    P(proj).dirty = True


@api("void Main_SaveProject(ReaProject* proj, bool forceSaveAsInOptional)")
def Main_SaveProject(proj, forceSaveAs):
    p = P(proj)
    if forceSaveAs:
        A().blocked_dialogs.append({"kind": "save_as", "project": p.folder})
        return
    A().save_project(p)


@api("double GetSetProjectInfo(ReaProject* project, const char* desc, double value, bool is_set)")
def GetSetProjectInfo(proj, desc, value, is_set):
    p = P(proj)
    if desc in p.render_num:
        if is_set:
            p.render_num[desc] = float(value)
        return p.render_num[desc]
    if desc == "PROJECT_SRATE":
        if is_set:
            p.srate = float(value)
        return p.srate
    if desc == "PROJECT_SRATE_USE":
        if is_set:
            p.srate_use = 1.0 if value else 0.0
        return p.srate_use
    return 0.0


@api("bool GetSetProjectInfo_String(ReaProject* project, const char* desc, char* valuestrNeedBig, bool is_set)")
def GetSetProjectInfo_String(proj, desc, buf: StrBuf, is_set):
    p = P(proj)
    if desc in p.render_str:
        if is_set:
            p.render_str[desc] = buf.value
        else:
            buf.value = p.render_str[desc]
        return True
    if desc in p.info_str:
        if is_set:
            p.info_str[desc] = buf.value
        else:
            buf.value = p.info_str[desc]
        return True
    if desc == "PROJECT_NAME" and not is_set:
        buf.value = p.rpp_name
        return True
    if desc == "RENDER_TARGETS" and not is_set:
        targets, _problem = _render.plan_targets(p)
        buf.value = ";".join(t.path for t in targets)
        return True
    if desc in ("RENDER_STATS", "RENDER_STATS_SUMMARY") and not is_set:
        cmd = buf.value.strip()
        if cmd.isdigit():
            run_action(p, int(cmd), 0)
        buf.value = p.last_render_stats
        return True
    return False


@api("double GetCursorPosition()")
def GetCursorPosition():
    return A().project.cursor


@api("double GetCursorPositionEx(ReaProject* proj)")
def GetCursorPositionEx(proj):
    return P(proj).cursor


@api("void SetEditCurPos(double time, bool moveview, bool seekplay)")
def SetEditCurPos(t, moveview, seekplay):
    A().project.cursor = max(0.0, t)


@api("void SetEditCurPos2(ReaProject* proj, double time, bool moveview, bool seekplay)")
def SetEditCurPos2(proj, t, moveview, seekplay):
    P(proj).cursor = max(0.0, t)


def _loop_range(p: Project, is_set, is_loop, start: Ref, end: Ref):
    attr = "loop" if is_loop else "time_sel"
    if is_set:
        s, e = float(start.value), float(end.value)
        if e < s:
            s, e = e, s
        setattr(p, attr, (max(s, 0.0), max(e, 0.0)))
    start.value, end.value = getattr(p, attr)


@api("void GetSet_LoopTimeRange(bool isSet, bool isLoop, double* startOut, double* endOut, bool allowautoseek)")
def GetSet_LoopTimeRange(is_set, is_loop, start, end, allowautoseek):
    _loop_range(A().project, is_set, is_loop, start, end)


@api("void GetSet_LoopTimeRange2(ReaProject* proj, bool isSet, bool isLoop, double* startOut, double* endOut, bool allowautoseek)")
def GetSet_LoopTimeRange2(proj, is_set, is_loop, start, end, allowautoseek):
    _loop_range(P(proj), is_set, is_loop, start, end)


@api("void GetProjectTimeSignature2(ReaProject* proj, double* bpmOut, double* bpiOut)")
def GetProjectTimeSignature2(proj, bpm: Ref, bpi: Ref):
    bpm.value, bpi.value = 120.0, 4.0


@api("double Master_GetTempo()")
def Master_GetTempo():
    return 120.0


@api("int GetPlayState()")
def GetPlayState():
    return 0


@api("int GetPlayStateEx(ReaProject* proj)")
def GetPlayStateEx(proj):
    return 0


# --- tracks -------------------------------------------------------------------------------------------

@api("int CountTracks(ReaProject* proj)")
def CountTracks(proj):
    return len(P(proj).tracks)


@api("int GetNumTracks()")
def GetNumTracks():
    return len(A().project.tracks)


@api("MediaTrack* GetTrack(ReaProject* proj, int trackidx)")
def GetTrack(proj, idx):
    tr = P(proj).tracks
    return tr[idx] if 0 <= idx < len(tr) else None


@api("MediaTrack* GetMasterTrack(ReaProject* proj)")
def GetMasterTrack(proj):
    return P(proj).master


@api("void InsertTrackAtIndex(int idx, bool wantDefaults)")
def InsertTrackAtIndex(idx, want_defaults):
    t = A().insert_track(A().project, idx)
    if want_defaults:  # the default track template's FX (Preferences > Track/send defaults)
        _default_fx(t)


def _default_fx(t) -> None:
    for name in A().default_track_fx:
        spec = find_plugin(name)
        if spec is not None:
            t.fx.append(A().new_fx(spec))


@api("void InsertTrackInProject(ReaProject* proj, int idx, int flags)")
def InsertTrackInProject(proj, idx, flags):
    p = P(proj)
    t = A().insert_track(p, len(p.tracks) if idx < 0 else idx)
    if flags & 1:
        _default_fx(t)


@api("void DeleteTrack(MediaTrack* tr)")
def DeleteTrack(tr):
    if tr is not None:
        A().delete_track(tr)


def _track_name(tr: Track) -> str:
    if tr.is_master:
        return "MASTER"
    return tr.name or f"Track {tr.index + 1}"


@api("bool GetTrackName(MediaTrack* track, char* bufOut, int bufOut_sz)")
def GetTrackName(tr, buf: StrBuf, sz):
    if tr is None:
        return False
    buf.value = _track_name(tr)
    return True


@api("bool GetSetMediaTrackInfo_String(MediaTrack* tr, const char* parmname, char* stringNeedBig, bool setNewValue)")
def GetSetMediaTrackInfo_String(tr, parm, buf: StrBuf, set_new):
    if tr is None:
        return False
    if parm == "P_NAME":
        if tr.is_master:
            return False
        if set_new:
            tr.name = buf.value
            tr.project.dirty = True
        else:
            buf.value = tr.name
        return True
    if parm == "GUID":
        if not set_new:
            buf.value = tr.guid
        return not set_new
    if parm.startswith("P_EXT:"):
        if set_new:
            tr.ext[parm] = buf.value
        else:
            if parm not in tr.ext:
                return False
            buf.value = tr.ext[parm]
        return True
    return False


@api("double GetMediaTrackInfo_Value(MediaTrack* tr, const char* parmname)")
def GetMediaTrackInfo_Value(tr, parm):
    if tr is None:
        return 0.0
    if parm == "IP_TRACKNUMBER":
        return -1.0 if tr.is_master else float(tr.index + 1)
    if parm == "I_SELECTED":
        return 1.0 if tr.selected else 0.0
    return float(tr.attrs.get(parm, 0.0))


@api("bool SetMediaTrackInfo_Value(MediaTrack* tr, const char* parmname, double newvalue)")
def SetMediaTrackInfo_Value(tr, parm, value):
    if tr is None:
        return False
    if parm == "I_SELECTED":
        tr.selected = bool(value)
        return True
    if parm not in TRACK_DEFAULTS:
        return False
    if parm.startswith(("I_", "B_")):
        value = float(int(value))
    tr.attrs[parm] = float(value)
    tr.project.dirty = True
    return True


@api("bool IsTrackSelected(MediaTrack* track)")
def IsTrackSelected(tr):
    return tr is not None and tr.selected


@api("void SetTrackSelected(MediaTrack* track, bool selected)")
def SetTrackSelected(tr, sel):
    if tr is not None:
        tr.selected = sel


@api("void SetOnlyTrackSelected(MediaTrack* track)")
def SetOnlyTrackSelected(tr):
    if tr is None:
        return
    for t in tr.project.all_tracks():
        t.selected = t is tr


def _selected(p: Project, want_master: bool) -> list:
    ts = [t for t in p.tracks if t.selected]
    if want_master and p.master.selected:
        ts.insert(0, p.master)
    return ts


@api("int CountSelectedTracks(ReaProject* proj)")
def CountSelectedTracks(proj):
    return len(_selected(P(proj), False))


@api("int CountSelectedTracks2(ReaProject* proj, bool wantmaster)")
def CountSelectedTracks2(proj, want_master):
    return len(_selected(P(proj), want_master))


@api("MediaTrack* GetSelectedTrack(ReaProject* proj, int seltrackidx)")
def GetSelectedTrack(proj, i):
    s = _selected(P(proj), False)
    return s[i] if 0 <= i < len(s) else None


@api("MediaTrack* GetSelectedTrack2(ReaProject* proj, int seltrackidx, bool wantmaster)")
def GetSelectedTrack2(proj, i, want_master):
    s = _selected(P(proj), want_master)
    return s[i] if 0 <= i < len(s) else None


@api("MediaTrack* GetLastTouchedTrack()")
def GetLastTouchedTrack():
    t = A().last_touched
    return t if t is not None and A().project.owns(t) else None


@api("bool AnyTrackSolo(ReaProject* proj)")
def AnyTrackSolo(proj):
    return any(t.attrs["I_SOLO"] for t in P(proj).tracks)


@api("void SoloAllTracks(int solo)")
def SoloAllTracks(solo):
    for t in A().project.tracks:
        t.attrs["I_SOLO"] = float(solo)


@api("void MuteAllTracks(bool mute)")
def MuteAllTracks(mute):
    for t in A().project.tracks:
        t.attrs["B_MUTE"] = 1.0 if mute else 0.0


def _parents(p: Project) -> dict:
    parent, stack = {}, []
    for t in p.tracks:
        parent[t] = stack[-1] if stack else None
        d = int(t.attrs["I_FOLDERDEPTH"])
        if d == 1:
            stack.append(t)
        elif d < 0:
            del stack[max(len(stack) + d, 0):]
    return parent


@api("MediaTrack* GetParentTrack(MediaTrack* track)")
def GetParentTrack(tr):
    return None if tr is None or tr.is_master else _parents(tr.project).get(tr)


@api("int GetTrackDepth(MediaTrack* track)")
def GetTrackDepth(tr):
    if tr is None or tr.is_master:
        return 0
    par, d, t = _parents(tr.project), 0, tr
    while par.get(t) is not None:
        t, d = par[t], d + 1
    return d


# --- items, takes, sources ------------------------------------------------------------------------------

@api("MediaItem* AddMediaItemToTrack(MediaTrack* tr)")
def AddMediaItemToTrack(tr):
    return None if tr is None or tr.is_master else A().add_item(tr)


@api("int CountTrackMediaItems(MediaTrack* track)")
def CountTrackMediaItems(tr):
    return 0 if tr is None else len(tr.items)


def _sorted_items(tr: Track) -> list:
    return sorted(tr.items, key=lambda it: it.attrs["D_POSITION"])


@api("MediaItem* GetTrackMediaItem(MediaTrack* tr, int itemidx)")
def GetTrackMediaItem(tr, i):
    if tr is None:
        return None
    items = _sorted_items(tr)
    return items[i] if 0 <= i < len(items) else None


def _all_items(p: Project) -> list:
    return [it for t in p.tracks for it in _sorted_items(t)]


@api("int CountMediaItems(ReaProject* proj)")
def CountMediaItems(proj):
    return len(_all_items(P(proj)))


@api("MediaItem* GetMediaItem(ReaProject* proj, int itemidx)")
def GetMediaItem(proj, i):
    items = _all_items(P(proj))
    return items[i] if 0 <= i < len(items) else None


@api("int CountSelectedMediaItems(ReaProject* proj)")
def CountSelectedMediaItems(proj):
    return sum(1 for it in _all_items(P(proj)) if it.attrs["B_UISEL"])


@api("MediaItem* GetSelectedMediaItem(ReaProject* proj, int selitem)")
def GetSelectedMediaItem(proj, i):
    items = [it for it in _all_items(P(proj)) if it.attrs["B_UISEL"]]
    return items[i] if 0 <= i < len(items) else None


@api("void SetMediaItemSelected(MediaItem* item, bool selected)")
def SetMediaItemSelected(it, sel):
    if it is not None:
        it.attrs["B_UISEL"] = 1.0 if sel else 0.0


@api("bool IsMediaItemSelected(MediaItem* item)")
def IsMediaItemSelected(it):
    return it is not None and bool(it.attrs["B_UISEL"])


@api("bool DeleteTrackMediaItem(MediaTrack* tr, MediaItem* it)")
def DeleteTrackMediaItem(tr, it):
    if tr is None or it is None or it not in tr.items:
        return False
    tr.items.remove(it)
    A().unregister(it)
    return True


@api("double GetMediaItemInfo_Value(MediaItem* item, const char* parmname)")
def GetMediaItemInfo_Value(it, parm):
    if it is None:
        return 0.0
    if parm == "I_CURTAKE":
        return float(it.active)
    return float(it.attrs.get(parm, 0.0))


@api("bool SetMediaItemInfo_Value(MediaItem* item, const char* parmname, double newvalue)")
def SetMediaItemInfo_Value(it, parm, value):
    if it is None:
        return False
    if parm == "I_CURTAKE":
        if 0 <= int(value) < len(it.takes):
            it.active = int(value)
            return True
        return False
    if parm not in ITEM_DEFAULTS:
        return False
    if parm in ("D_POSITION", "D_LENGTH"):
        value = max(0.0, value)
    it.attrs[parm] = float(value)
    return True


@api("bool SetMediaItemPosition(MediaItem* item, double position, bool refreshUI)")
def SetMediaItemPosition(it, pos, refresh):
    return SetMediaItemInfo_Value(it, "D_POSITION", pos)


@api("bool SetMediaItemLength(MediaItem* item, double length, bool refreshUI)")
def SetMediaItemLength(it, length, refresh):
    return SetMediaItemInfo_Value(it, "D_LENGTH", length)


@api("MediaTrack* GetMediaItem_Track(MediaItem* item)")
def GetMediaItem_Track(it):
    return None if it is None else it.track


@api("MediaTrack* GetMediaItemTrack(MediaItem* item)")
def GetMediaItemTrack(it):
    return None if it is None else it.track


@api("MediaItem_Take* AddTakeToMediaItem(MediaItem* item)")
def AddTakeToMediaItem(it):
    if it is None:
        return None
    tk = A().add_take(it)
    it.active = len(it.takes) - 1  # [?] the new take becomes active
    return tk


@api("int CountTakes(MediaItem* item)")
def CountTakes(it):
    return 0 if it is None else len(it.takes)


@api("int GetMediaItemNumTakes(MediaItem* item)")
def GetMediaItemNumTakes(it):
    return CountTakes(it)


@api("MediaItem_Take* GetTake(MediaItem* item, int takeidx)")
def GetTake(it, i):
    return it.takes[i] if it is not None and 0 <= i < len(it.takes) else None


@api("MediaItem_Take* GetMediaItemTake(MediaItem* item, int tk)")
def GetMediaItemTake(it, i):
    return GetTake(it, i)


@api("MediaItem_Take* GetActiveTake(MediaItem* item)")
def GetActiveTake(it):
    return None if it is None else it.active_take


@api("void SetActiveTake(MediaItem_Take* take)")
def SetActiveTake(tk):
    if tk is not None:
        tk.item.active = tk.item.takes.index(tk)


@api("MediaItem* GetMediaItemTake_Item(MediaItem_Take* take)")
def GetMediaItemTake_Item(tk):
    return None if tk is None else tk.item


@api("MediaTrack* GetMediaItemTake_Track(MediaItem_Take* take)")
def GetMediaItemTake_Track(tk):
    return None if tk is None else tk.item.track


@api("PCM_source* GetMediaItemTake_Source(MediaItem_Take* take)")
def GetMediaItemTake_Source(tk):
    return None if tk is None else tk.source


def _source_in_use(src: Source) -> bool:
    for p in A().projects:
        for t in p.tracks:
            for it in t.items:
                if any(tk.source is src for tk in it.takes):
                    return True
    return False


@api("bool SetMediaItemTake_Source(MediaItem_Take* take, PCM_source* source)")
def SetMediaItemTake_Source(tk, src):
    if tk is None or src is None:
        return False
    if _source_in_use(src):  # SDK: a source already used in a project is duplicated
        src = A().register(Source(src.filename, src.length_s, src.sample_rate, src.channels))
    tk.source = src
    return True


@api("double GetMediaItemTakeInfo_Value(MediaItem_Take* take, const char* parmname)")
def GetMediaItemTakeInfo_Value(tk, parm):
    return 0.0 if tk is None else float(tk.attrs.get(parm, 0.0))


@api("bool SetMediaItemTakeInfo_Value(MediaItem_Take* take, const char* parmname, double newvalue)")
def SetMediaItemTakeInfo_Value(tk, parm, value):
    if tk is None or parm not in TAKE_DEFAULTS:
        return False
    tk.attrs[parm] = float(value)
    return True


@api("bool GetSetMediaItemTakeInfo_String(MediaItem_Take* tk, const char* parmname, char* stringNeedBig, bool setNewValue)")
def GetSetMediaItemTakeInfo_String(tk, parm, buf: StrBuf, set_new):
    if tk is None:
        return False
    if parm == "P_NAME":
        if set_new:
            tk.name = buf.value
        else:
            buf.value = tk.name
        return True
    if parm == "GUID" and not set_new:
        buf.value = tk.guid
        return True
    return False


@api("bool GetSetMediaItemInfo_String(MediaItem* item, const char* parmname, char* stringNeedBig, bool setNewValue)")
def GetSetMediaItemInfo_String(it, parm, buf: StrBuf, set_new):
    if it is None:
        return False
    if parm == "GUID" and not set_new:
        buf.value = it.guid
        return True
    return False


@api("const char* GetTakeName(MediaItem_Take* take)")
def GetTakeName(tk):
    return "" if tk is None else tk.name


@api("PCM_source* PCM_Source_CreateFromFile(const char* filename)")
def PCM_Source_CreateFromFile(filename):
    src = Source.from_file(filename or "")
    return None if src is None else A().register(src)


@api("PCM_source* PCM_Source_CreateFromFileEx(const char* filename, bool forcenoMidiImp)")
def PCM_Source_CreateFromFileEx(filename, force_no_midi):
    return PCM_Source_CreateFromFile(filename)


@api("void PCM_Source_Destroy(PCM_source* src)")
def PCM_Source_Destroy(src):
    if src is not None:
        A().unregister(src)


@api("void GetMediaSourceFileName(PCM_source* source, char* filenamebuf, int filenamebuf_sz)")
def GetMediaSourceFileName(src, buf: StrBuf, sz):
    if src is not None:
        buf.value = src.filename


@api("double GetMediaSourceLength(PCM_source* source, bool* lengthIsQNOut)")
def GetMediaSourceLength(src, is_qn: Ref):
    if src is None:
        return 0.0
    is_qn.value = 0
    return src.length_s


@api("int GetMediaSourceSampleRate(PCM_source* source)")
def GetMediaSourceSampleRate(src):
    return 0 if src is None else src.sample_rate


@api("int GetMediaSourceNumChannels(PCM_source* source)")
def GetMediaSourceNumChannels(src):
    return 0 if src is None else src.channels


@api("void GetMediaSourceType(PCM_source* source, char* typebuf, int typebuf_sz)")
def GetMediaSourceType(src, buf: StrBuf, sz):
    if src is not None:
        buf.value = "WAVE"


@api("int InsertMedia(const char* file, int mode)")
def InsertMedia(file, mode):
    """Modes 0 (current track) and 1 (new track) at the edit cursor; &512 = track index in the
    high word. The current track is the first selected track, else the last touched one [?]."""
    a, p = A(), A().project
    src = Source.from_file(file or "")
    if src is None:
        return 0
    low = mode & 3
    if low not in (0, 1):
        raise NotImplementedError(f"InsertMedia mode {mode} is not modelled by the stand-in")
    sel = _selected(p, False)
    current = sel[0] if sel else (a.last_touched if a.last_touched in p.tracks else None)
    if mode & 512 and low == 0:
        i = mode >> 16
        track = p.tracks[i] if 0 <= i < len(p.tracks) else None
        if track is None:
            return 0
    elif low == 1 or current is None:
        idx = current.index + 1 if current is not None else len(p.tracks)
        track = a.insert_track(p, idx)
        SetOnlyTrackSelected(track)
    else:
        track = current
    a.register(src)
    for t in p.tracks:
        for it in t.items:
            it.attrs["B_UISEL"] = 0.0
    it = a.add_item(track)
    tk = a.add_take(it)
    tk.source, tk.name = src, os.path.basename(src.filename)
    it.attrs.update(D_POSITION=p.cursor, D_LENGTH=src.length_s, B_UISEL=1.0)
    p.cursor += src.length_s  # [?] "move edit cursor after insert" preference assumed on
    a.last_touched = track
    return 1


# --- ext state -------------------------------------------------------------------------------------------

@api("const char* GetExtState(const char* section, const char* key)")
def GetExtState(section, key):
    return A().ext_state.get((section, key), "")


@api("void SetExtState(const char* section, const char* key, const char* value, bool persist)")
def SetExtState(section, key, value, persist):
    a = A()
    a.ext_state[(section, key)] = value or ""
    if persist:
        a.ext_persist.add((section, key))


@api("bool HasExtState(const char* section, const char* key)")
def HasExtState(section, key):
    return (section, key) in A().ext_state


@api("void DeleteExtState(const char* section, const char* key, bool persist)")
def DeleteExtState(section, key, persist):
    A().ext_state.pop((section, key), None)
    if persist:
        A().ext_persist.discard((section, key))


@api("int GetProjExtState(ReaProject* proj, const char* extname, const char* key, char* valOutNeedBig, int valOutNeedBig_sz)")
def GetProjExtState(proj, extname, key, buf: StrBuf, sz):
    v = P(proj).ext.get((extname.upper(), key.upper()))
    if v is None:
        buf.value = ""
        return 0
    buf.value = v
    return len(v)  # [?] SDK does not spell the return value out


@api("int SetProjExtState(ReaProject* proj, const char* extname, const char* key, const char* value)")
def SetProjExtState(proj, extname, key, value):
    p = P(proj)
    ext = extname.upper()
    if not key:
        for k in [k for k in p.ext if k[0] == ext]:
            del p.ext[k]
    elif not value:
        p.ext.pop((ext, key.upper()), None)
    else:
        p.ext[(ext, key.upper())] = value
    p.dirty = True
    return sum(1 for k in p.ext if k[0] == ext)


# --- console and dialogs ---------------------------------------------------------------------------------

@api("void ShowConsoleMsg(const char* msg)")
def ShowConsoleMsg(msg):
    a = A()
    msg = msg or ""
    if msg == "":
        a.console = ""
        return
    if msg.startswith("!SHOW:"):
        a.console_write(msg[len("!SHOW:"):])
        return
    a.console_opened = True
    a.console_write(msg)


@api("void ClearConsole()")
def ClearConsole():
    A().console = ""


_MB_CANCEL = {0: 1, 1: 2, 2: 3, 3: 2, 4: 7, 5: 2}


def _message_box(kind, msg, title, typ):
    a = A()
    entry = {"kind": kind, "msg": msg, "title": title, "type": typ}
    a.dialog_log.append(entry)
    if a.mb_answers:
        entry["answer"] = a.mb_answers.pop(0)
        return entry["answer"]
    # A modal box with nobody to click it: recorded, answered with the "cancel"-like button.
    a.blocked_dialogs.append(dict(entry, kind="unanswered_" + kind))
    return _MB_CANCEL.get(typ, 1)


@api("int MB(const char* msg, const char* title, int type)")
def MB(msg, title, typ):
    return _message_box("MB", msg, title, typ)


@api("int ShowMessageBox(const char* msg, const char* title, int type)")
def ShowMessageBox(msg, title, typ):
    return _message_box("ShowMessageBox", msg, title, typ)


@api("bool GetUserInputs(const char* title, int num_inputs, const char* captions_csv, char* retvals_csv, int retvals_csv_sz)")
def GetUserInputs(title, num_inputs, captions_csv, buf: StrBuf, sz):
    a = A()
    sep = ","
    captions = []
    for c in (captions_csv or "").split(","):
        if c.startswith("extrawidth="):
            continue
        if c.startswith("separator="):
            sep = c[len("separator="):] or ","
            continue
        captions.append(c)
    defaults = buf.value.split(sep) if buf.value else []
    entry = {"kind": "GetUserInputs", "title": title, "num_inputs": num_inputs,
             "captions": captions[:num_inputs], "defaults": defaults, "separator": sep}
    a.dialog_log.append(entry)
    if not 1 <= num_inputs <= 16:
        entry["answer"] = "invalid num_inputs"
        return False
    if not a.input_answers:
        a.blocked_dialogs.append(dict(entry, kind="unanswered_GetUserInputs"))
        return False
    ans: UserInputsAnswer = a.input_answers.pop(0)
    entry["answer"] = ans.values
    if ans.values is None:
        return False
    values = list(defaults) + [""] * num_inputs if ans.values == "defaults" else list(ans.values)
    values = [str(v) for v in values[:num_inputs]]
    if ans.values != "defaults" and len(ans.values) != num_inputs:
        raise ValueError(f"scripted answer has {len(ans.values)} fields, dialog has {num_inputs}")
    buf.value = sep.join(values)
    return True


# --- undo ------------------------------------------------------------------------------------------------

def _begin(p):
    a = A()
    a.undo_depth += 1
    a.undo_log.append({"kind": "begin", "project": p.addr, "depth": a.undo_depth})


def _end(p, desc, flags):
    a = A()
    if a.undo_depth <= 0:
        a.undo_log.append({"kind": "unbalanced_end", "project": p.addr, "desc": desc, "flags": flags})
        return
    a.undo_log.append({"kind": "end", "project": p.addr, "desc": desc, "flags": flags,
                       "depth": a.undo_depth})
    a.undo_depth -= 1


@api("void Undo_BeginBlock()")
def Undo_BeginBlock():
    _begin(A().project)


@api("void Undo_BeginBlock2(ReaProject* proj)")
def Undo_BeginBlock2(proj):
    _begin(P(proj))


@api("void Undo_EndBlock(const char* descchange, int extraflags)")
def Undo_EndBlock(desc, flags):
    _end(A().project, desc, flags)


@api("void Undo_EndBlock2(ReaProject* proj, const char* descchange, int extraflags)")
def Undo_EndBlock2(proj, desc, flags):
    _end(P(proj), desc, flags)


@api("void Undo_OnStateChange(const char* descchange)")
def Undo_OnStateChange(desc):
    A().undo_log.append({"kind": "state_change", "project": A().project.addr, "desc": desc})


@api("void Undo_OnStateChange2(ReaProject* proj, const char* descchange)")
def Undo_OnStateChange2(proj, desc):
    A().undo_log.append({"kind": "state_change", "project": P(proj).addr, "desc": desc})


@api("const char* Undo_CanUndo2(ReaProject* proj)")
def Undo_CanUndo2(proj):
    done = [e for e in A().undo_log if e["kind"] in ("end", "state_change") and e.get("depth", 1) == 1]
    return done[-1]["desc"] if done else ""


# --- actions ---------------------------------------------------------------------------------------------

ACTION_NAMES = {
    7: "Track: Toggle solo for selected tracks",
    40001: "Track: Insert new track",
    40015: "File: Render project to disk...",
    40026: "File: Save project",
    40042: "Transport: Go to start of project",
    40047: "Peaks: Build any missing peaks",
    40280: "Track: Mute/unmute tracks",
    40289: "Item: Unselect all items",
    40296: "Track: Select all tracks",
    40297: "Track: Unselect (clear selection of) all tracks",
    40632: "Transport: Go to start of loop",
    40635: "Time selection: Remove (unselect) time selection",
    40913: "Track: Vertical scroll selected tracks into view",
    41824: "File: Render project, using the most recent render settings",
    42230: "File: Render project, using the most recent render settings, auto-close render dialog",
}


def run_action(p: Project, cmd: int, flag: int) -> None:
    a = A()
    entry = {"command": cmd, "flag": flag, "project": p.addr, "name": ACTION_NAMES.get(cmd, "")}
    a.action_log.append(entry)
    sel = [t for t in p.tracks if t.selected]
    if cmd == 7:
        for t in sel:
            t.attrs["I_SOLO"] = 0.0 if t.attrs["I_SOLO"] else 1.0
    elif cmd == 40280:
        for t in sel:
            t.attrs["B_MUTE"] = 0.0 if t.attrs["B_MUTE"] else 1.0
    elif cmd == 40001:
        idx = sel[-1].index + 1 if sel else len(p.tracks)
        t = a.insert_track(p, idx)
        SetOnlyTrackSelected(t)
        a.last_touched = t
    elif cmd == 40296:
        for t in p.tracks:
            t.selected = True
    elif cmd == 40297:
        for t in p.all_tracks():
            t.selected = False
    elif cmd == 40289:
        for t in p.tracks:
            for it in t.items:
                it.attrs["B_UISEL"] = 0.0
    elif cmd == 40042:
        p.cursor = 0.0
    elif cmd == 40632:
        p.cursor = p.loop[0]
    elif cmd == 40635:
        p.time_sel = (0.0, 0.0)
    elif cmd == 40026:
        a.save_project(p)
    elif cmd == 40015:
        a.blocked_dialogs.append({"kind": "render_dialog", "action": cmd})
    elif cmd in (41824, 42230):
        entry["render"] = _render.render(a, p, cmd)
    elif cmd in (40047, 40913):
        pass
    elif cmd in a.named_commands.values():
        pass
    else:
        entry["unknown"] = True


@api("void Main_OnCommand(int command, int flag)")
def Main_OnCommand(cmd, flag):
    run_action(A().project, cmd, flag)


@api("void Main_OnCommandEx(int command, int flag, ReaProject* proj)")
def Main_OnCommandEx(cmd, flag, proj):
    run_action(P(proj), cmd, flag)


@api("int NamedCommandLookup(const char* command_name)")
def NamedCommandLookup(name):
    name = name or ""
    if name.isdigit():
        return int(name)
    return A().named_commands.get(name.lstrip("_"), 0)


@api("const char* ReverseNamedCommandLookup(int command_id)")
def ReverseNamedCommandLookup(cmd):
    for k, v in A().named_commands.items():
        if v == cmd:
            return k
    return ""


@api("int GetToggleCommandState(int command_id)")
def GetToggleCommandState(cmd):
    return -1


# --- track FX --------------------------------------------------------------------------------------------

def _fx(tr, fx) -> FXInstance | None:
    return None if tr is None else tr.fx_at(fx)


@api("int TrackFX_AddByName(MediaTrack* track, const char* fxname, bool recFX, int instantiate)")
def TrackFX_AddByName(tr, fxname, rec, inst):
    if tr is None:
        return -1
    chain, base = (tr.rec_fx, 0x1000000) if rec else (tr.fx, 0)
    spec = find_plugin(fxname or "")
    existing = next((i for i, f in enumerate(chain)
                     if f.spec is spec or (f.renamed and f.renamed == fxname)), -1)
    if inst == 0 or (inst > 0 and existing >= 0):
        return existing + base if existing >= 0 else -1
    if spec is None:
        A().unknown_fx.append(fxname or "")
        return -1
    pos = len(chain) if inst > -1000 else min(max(-1000 - inst, 0), len(chain))
    chain.insert(pos, A().new_fx(spec))
    tr.project.dirty = True
    return pos + base


@api("int TrackFX_GetByName(MediaTrack* track, const char* fxname, bool instantiate)")
def TrackFX_GetByName(tr, fxname, inst):
    return TrackFX_AddByName(tr, fxname, False, 1 if inst else 0)


@api("int TrackFX_GetEQ(MediaTrack* track, bool instantiate)")
def TrackFX_GetEQ(tr, inst):
    return TrackFX_AddByName(tr, "ReaEQ (Cockos)", False, 1 if inst else 0)


@api("int TrackFX_GetCount(MediaTrack* track)")
def TrackFX_GetCount(tr):
    return 0 if tr is None else len(tr.fx)


@api("int TrackFX_GetRecCount(MediaTrack* track)")
def TrackFX_GetRecCount(tr):
    return 0 if tr is None else len(tr.rec_fx)


@api("int TrackFX_GetInstrument(MediaTrack* track)")
def TrackFX_GetInstrument(tr):
    return -1


@api("int TrackFX_GetChainVisible(MediaTrack* track)")
def TrackFX_GetChainVisible(tr):
    return -1


@api("bool TrackFX_GetOpen(MediaTrack* track, int fx)")
def TrackFX_GetOpen(tr, fx):
    return False


@api("void TrackFX_SetOpen(MediaTrack* track, int fx, bool open)")
def TrackFX_SetOpen(tr, fx, is_open):
    pass


@api("void TrackFX_Show(MediaTrack* track, int index, int showFlag)")
def TrackFX_Show(tr, index, flag):
    pass


@api("bool TrackFX_GetFXName(MediaTrack* track, int fx, char* bufOut, int bufOut_sz)")
def TrackFX_GetFXName(tr, fx, buf: StrBuf, sz):
    f = _fx(tr, fx)
    if f is None:
        return False
    buf.value = f.name
    return True


@api("bool TrackFX_Delete(MediaTrack* track, int fx)")
def TrackFX_Delete(tr, fx):
    if _fx(tr, fx) is None:
        return False
    chain, i = tr.chain(fx)
    del chain[i]
    return True


@api("void TrackFX_SetEnabled(MediaTrack* track, int fx, bool enabled)")
def TrackFX_SetEnabled(tr, fx, enabled):
    f = _fx(tr, fx)
    if f is not None:
        f.enabled = enabled


@api("bool TrackFX_GetEnabled(MediaTrack* track, int fx)")
def TrackFX_GetEnabled(tr, fx):
    f = _fx(tr, fx)
    return f is not None and f.enabled


@api("bool TrackFX_GetOffline(MediaTrack* track, int fx)")
def TrackFX_GetOffline(tr, fx):
    f = _fx(tr, fx)
    return f is not None and f.offline


@api("void TrackFX_SetOffline(MediaTrack* track, int fx, bool offline)")
def TrackFX_SetOffline(tr, fx, offline):
    f = _fx(tr, fx)
    if f is not None:
        f.offline = offline


@api("int TrackFX_GetNumParams(MediaTrack* track, int fx)")
def TrackFX_GetNumParams(tr, fx):
    f = _fx(tr, fx)
    return 0 if f is None else f.n_params


def _fxp(tr, fx, param):
    f = _fx(tr, fx)
    return f if f is not None and 0 <= param < f.n_params else None


@api("bool TrackFX_GetParamName(MediaTrack* track, int fx, int param, char* bufOut, int bufOut_sz)")
def TrackFX_GetParamName(tr, fx, param, buf: StrBuf, sz):
    f = _fxp(tr, fx, param)
    if f is None:
        return False
    buf.value = f.all_params[param].name
    return True


@api("bool TrackFX_GetParamIdent(MediaTrack* track, int fx, int param, char* bufOut, int bufOut_sz)")
def TrackFX_GetParamIdent(tr, fx, param, buf: StrBuf, sz):
    f = _fxp(tr, fx, param)
    if f is None:
        return False
    buf.value = f.ident(param)
    return True


@api("int TrackFX_GetParamFromIdent(MediaTrack* track, int fx, const char* ident_str)")
def TrackFX_GetParamFromIdent(tr, fx, ident):
    f = _fx(tr, fx)
    if f is None:
        return -1
    for i in range(f.n_params):
        if f.ident(i) == ident:
            return i
    return -1


@api("double TrackFX_GetParam(MediaTrack* track, int fx, int param, double* minvalOut, double* maxvalOut)")
def TrackFX_GetParam(tr, fx, param, mn: Ref, mx: Ref):
    f = _fxp(tr, fx, param)
    if f is None:
        return 0.0
    p = f.all_params[param]
    mn.value, mx.value = p.lo, p.hi
    return f.values[param]


@api("double TrackFX_GetParamEx(MediaTrack* track, int fx, int param, double* minvalOut, double* maxvalOut, double* midvalOut)")
def TrackFX_GetParamEx(tr, fx, param, mn: Ref, mx: Ref, mid: Ref):
    f = _fxp(tr, fx, param)
    if f is None:
        return 0.0
    p = f.all_params[param]
    mn.value, mx.value, mid.value = p.lo, p.hi, 0.5 * (p.lo + p.hi)
    return f.values[param]


@api("bool TrackFX_SetParam(MediaTrack* track, int fx, int param, double val)")
def TrackFX_SetParam(tr, fx, param, val):
    f = _fxp(tr, fx, param)
    if f is None:
        return False
    f.set_native(param, val)
    return True


@api("double TrackFX_GetParamNormalized(MediaTrack* track, int fx, int param)")
def TrackFX_GetParamNormalized(tr, fx, param):
    f = _fxp(tr, fx, param)
    return -1.0 if f is None else f.get_norm(param)


@api("bool TrackFX_SetParamNormalized(MediaTrack* track, int fx, int param, double value)")
def TrackFX_SetParamNormalized(tr, fx, param, val):
    f = _fxp(tr, fx, param)
    if f is None:
        return False
    f.set_norm(param, val)
    return True


@api("bool TrackFX_GetFormattedParamValue(MediaTrack* track, int fx, int param, char* bufOut, int bufOut_sz)")
def TrackFX_GetFormattedParamValue(tr, fx, param, buf: StrBuf, sz):
    f = _fxp(tr, fx, param)
    if f is None:
        return False
    buf.value = f.format_native(param, f.values[param])
    return True


@api("bool TrackFX_FormatParamValue(MediaTrack* track, int fx, int param, double val, char* bufOut, int bufOut_sz)")
def TrackFX_FormatParamValue(tr, fx, param, val, buf: StrBuf, sz):
    f = _fxp(tr, fx, param)
    if f is None:
        return False
    buf.value = f.format_native(param, val)
    return True


@api("bool TrackFX_FormatParamValueNormalized(MediaTrack* track, int fx, int param, double value, char* buf, int buf_sz)")
def TrackFX_FormatParamValueNormalized(tr, fx, param, val, buf: StrBuf, sz):
    f = _fxp(tr, fx, param)
    if f is None:
        return False
    p = f.all_params[param]
    buf.value = f.format_native(param, p.native(min(max(val, 0.0), 1.0)))
    return True


@api("bool TrackFX_GetNamedConfigParm(MediaTrack* track, int fx, const char* parmname, char* bufOutNeedBig, int bufOutNeedBig_sz)")
def TrackFX_GetNamedConfigParm(tr, fx, parm, buf: StrBuf, sz):
    f = _fx(tr, fx)
    if f is None:
        return False
    v = f.get_named(parm or "")
    if v is None:
        return False
    buf.value = v
    return True


@api("bool TrackFX_SetNamedConfigParm(MediaTrack* track, int fx, const char* parmname, const char* value)")
def TrackFX_SetNamedConfigParm(tr, fx, parm, value):
    f = _fx(tr, fx)
    return f is not None and f.set_named(parm or "", value or "")


@api("bool TrackFX_GetEQParam(MediaTrack* tr, int fxidx, int paramidx, int* bandtypeOut, int* bandidxOut, int* paramtypeOut, double* normvalOut)")
def TrackFX_GetEQParam(tr, fx, param, bandtype: Ref, bandidx: Ref, ptype: Ref, normval: Ref):
    f = _fxp(tr, fx, param)
    info = None if f is None else f.eq_band_of_param(param)
    if info is None:
        return False
    bandtype.value, bandidx.value, ptype.value = info
    normval.value = f.get_norm(param)
    return True


@api("bool TrackFX_SetEQParam(MediaTrack* tr, int fxidx, int bandtype, int bandidx, int paramtype, double val, bool isnorm)")
def TrackFX_SetEQParam(tr, fx, bandtype, bandidx, ptype, val, isnorm):
    f = _fx(tr, fx)
    return f is not None and f.eq_set(bandtype, bandidx, ptype, val, isnorm)


@api("bool TrackFX_GetEQBandEnabled(MediaTrack* tr, int fxidx, int bandtype, int bandidx)")
def TrackFX_GetEQBandEnabled(tr, fx, bandtype, bandidx):
    f = _fx(tr, fx)
    band = None if f is None else f.eq_band_index(bandtype, bandidx)
    return band is not None and f.band_enabled[band]


@api("bool TrackFX_SetEQBandEnabled(MediaTrack* tr, int fxidx, int bandtype, int bandidx, bool enable)")
def TrackFX_SetEQBandEnabled(tr, fx, bandtype, bandidx, enable):
    f = _fx(tr, fx)
    band = None if f is None else f.eq_band_index(bandtype, bandidx)
    if band is None:
        return False
    f.band_enabled[band] = enable
    return True


@api("bool TrackFX_GetPreset(MediaTrack* track, int fx, char* presetnameOut, int presetnameOut_sz)")
def TrackFX_GetPreset(tr, fx, buf: StrBuf, sz):
    if _fx(tr, fx) is None:
        return False
    buf.value = ""
    return False


@api("void TrackFX_CopyToTrack(MediaTrack* src_track, int src_fx, MediaTrack* dest_track, int dest_fx, bool is_move)")
def TrackFX_CopyToTrack(src, src_fx, dst, dst_fx, is_move):
    f = _fx(src, src_fx)
    if f is None or dst is None:
        return
    import copy
    g = copy.deepcopy(f)
    if is_move:
        TrackFX_Delete(src, src_fx)
    chain, i = dst.chain(dst_fx)
    chain.insert(min(max(i, 0), len(chain)), g)
