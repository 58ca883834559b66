"""REAPER's own side inside the C host (install/reaper_host.c): the stand-in, a project a real user
could have, scripted user steps between actions, and a JSON dump of what happened.

Run by the host as ``--setup`` text (REAPER's C code, not a script): it imports the stand-in with its
own helpers (numpy, soundfile, dsp) on a temporary sys.path, then puts sys.path back to what the
embedded interpreter started with, so every action finds ``reapy``, ``zmq`` and ReaMaster only through
what ``reamaster reaper install`` put in place."""

from __future__ import annotations

import json
import os
import sys

CFG = json.loads(os.environ["REAPER_SIDE_CONFIG"])
START_PATH = list(sys.path)
RECORD: dict = {"start_path": START_PATH, "steps": {}}
SR = 48000
OWN = ("reapy", "zmq", "server", "reamaster_reaper", "reamaster_bootstrap")


def _boot() -> None:
    sys.path[:0] = CFG["internal_paths"]
    try:
        import numpy  # noqa: F401 - REAPER's internals: loaded before the scripts run
        import soundfile  # noqa: F401
        import standin
        import standin.fxrender  # noqa: F401
        from dsp.process import compressor, eq, limiter  # noqa: F401
    finally:
        sys.path[:] = START_PATH
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in OWN)
    for m in leaked:  # the stand-in must not hand the scripts what the install has to provide
        del sys.modules[m]
    RECORD["leaked_before_scripts"] = leaked
    standin.install(main=sys.modules["__main__"])
    standin.reset(CFG["root"])


def _rpr():
    return sys.modules["reaper_python"]


def _app():
    return sys.modules["standin"].app()


def _track(rpr, name: str, x, proj=0):
    import soundfile as sf
    n = rpr.RPR_CountTracks(proj)
    rpr.RPR_InsertTrackInProject(proj, n, 0)
    tr = rpr.RPR_GetTrack(proj, n)
    rpr.RPR_GetSetMediaTrackInfo_String(tr, "P_NAME", name, True)
    path = os.path.join(CFG["data"], f"{name}_{n}.wav")
    sf.write(path, x.T, SR, subtype="FLOAT")
    item = rpr.RPR_AddMediaItemToTrack(tr)
    take = rpr.RPR_AddTakeToMediaItem(item)
    src = rpr.RPR_PCM_Source_CreateFromFile(path)
    rpr.RPR_SetMediaItemTake_Source(take, src)
    rpr.RPR_SetMediaItemInfo_Value(item, "D_POSITION", 0.0)
    rpr.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", rpr.RPR_GetMediaSourceLength(src, False)[0])
    return tr


def build_song() -> None:
    """A user's REAPER: a 4-band ReaEQ default preset, a default track template with ReaComp, SWS,
    a master with the user's own ReaComp and ReaEQ, two tracks named "Keys", a second open project."""
    import numpy as np
    app, rpr = _app(), _rpr()
    app.reaeq_default_types = [4, 0, 8, 1]  # high pass, low shelf, band, high shelf
    app.default_track_fx = ["ReaComp (Cockos)"]
    app.sws = True
    app.save_as(app.project, "song")
    rng = np.random.default_rng(3)
    t = np.arange(int(CFG.get("seconds", 3.0) * SR)) / SR
    kick = 0.5 * np.sin(2 * np.pi * 55 * t) * (np.mod(t, 0.5) < 0.15)
    hats = 0.03 * rng.standard_normal(t.size) * (np.mod(t, 0.25) < 0.05)
    keys = 0.08 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 660 * t + 1.0)
    for name, x in (("Drums", kick + hats), ("Keys", keys), ("Keys", 0.7 * np.roll(keys, 999))):
        _track(rpr, name, np.stack([x, 0.9 * x]).astype(np.float32))
    m = rpr.RPR_GetMasterTrack(0)
    comp = rpr.RPR_TrackFX_AddByName(m, "ReaComp (Cockos)", False, -1)  # the user's own master FX
    rpr.RPR_TrackFX_SetParam(m, comp, 0, 10 ** (-18 / 20))                # threshold -18 dB
    rpr.RPR_TrackFX_SetParamNormalized(m, comp, 1, 2.0 / 99.0)            # 3:1
    ueq = rpr.RPR_TrackFX_AddByName(m, "ReaEQ (Cockos)", False, -1)       # 4 bands (default preset)
    rpr.RPR_TrackFX_SetParam(m, ueq, 12, 10 ** (2.5 / 20))                # Global Gain +2.5 dB (index 12 here)
    RECORD["user_master_fx"] = [rpr.RPR_TrackFX_GetFXName(m, i, "", 256)[3] for i in range(rpr.RPR_TrackFX_GetCount(m))]
    RECORD["user_reaeq_params"] = rpr.RPR_TrackFX_GetNumParams(m, ueq)
    other = app.new_project("other")  # a second tab; the song tab is current again
    _track(rpr, "Other", np.zeros((2, SR), dtype=np.float32), proj=rpr.RPR_EnumProjects(1, "", 512)[0])
    app.current = 0
    RECORD["other_project"] = other.rpp_path


def _fx_settings(rpr, tr) -> list:
    out = []
    for i in range(rpr.RPR_TrackFX_GetCount(tr)):
        r = rpr.RPR_TrackFX_GetNamedConfigParm(tr, i, "renamed_name", "", 256)
        shown = [rpr.RPR_TrackFX_GetFormattedParamValue(tr, i, p, "", 64)[4]
                 for p in range(rpr.RPR_TrackFX_GetNumParams(tr, i))]
        bands = []
        b = 0
        while rpr.RPR_TrackFX_GetNamedConfigParm(tr, i, f"BANDTYPE{b}", "", 16)[0]:
            bands.append((rpr.RPR_TrackFX_GetNamedConfigParm(tr, i, f"BANDTYPE{b}", "", 16)[4],
                          rpr.RPR_TrackFX_GetNamedConfigParm(tr, i, f"BANDENABLED{b}", "", 16)[4]))
            b += 1
        out.append({"name": rpr.RPR_TrackFX_GetFXName(tr, i, "", 256)[3], "renamed": r[4] if r[0] else "",
                    "enabled": bool(rpr.RPR_TrackFX_GetEnabled(tr, i)), "shown": shown, "bands": bands})
    return out


def _render_master(label: str) -> str:
    """What the listener hears right now: a master-mix render of the project as it stands."""
    rpr = _rpr()
    folder = os.path.join(CFG["data"], "heard")
    os.makedirs(folder, exist_ok=True)
    for k, v in (("RENDER_SETTINGS", 0), ("RENDER_BOUNDSFLAG", 1), ("RENDER_SRATE", 0), ("RENDER_CHANNELS", 2),
                 ("RENDER_TAILFLAG", 0)):
        rpr.RPR_GetSetProjectInfo(0, k, v, True)
    for k, v in (("RENDER_FILE", folder), ("RENDER_PATTERN", label), ("RENDER_FORMAT", "ZXZhdyAAAA==")):
        rpr.RPR_GetSetProjectInfo_String(0, k, v, True)
    rpr.RPR_Main_OnCommand(42230, 0)
    return os.path.join(folder, label + ".wav")


def step(name: str) -> None:
    """A user's step between two actions."""
    app, rpr = _app(), _rpr()
    host = sys.modules["standin"].host()
    rec = RECORD["steps"].setdefault(name, {})
    if name.startswith("suggest"):
        rec["master_fx"] = _fx_settings(rpr, rpr.RPR_GetMasterTrack(0))
        rec["render"] = app.render_log[-1]["fx_applied"] if app.render_log else None
    elif name == "switch_tab_soon":
        app.tab_switch = (host.ticks + 3, 1)  # the user clicks the other tab while the job runs
    elif name == "back_to_song":
        rec["current_was"] = app.current
        app.current = 0
        app.tab_switch = None
    elif name.startswith("heard_"):
        rec["file"] = _render_master(name)
    elif name == "answer_quieter":
        sys.modules["standin"].answer_inputs(["quieter"])
    elif name == "answer_defaults":
        sys.modules["standin"].answer_inputs("defaults")
    elif name == "select_keys_and_master":
        for i in range(rpr.RPR_CountTracks(0)):
            tr = rpr.RPR_GetTrack(0, i)
            rpr.RPR_SetTrackSelected(tr, rpr.RPR_GetTrackName(tr, "", 256)[2] == "Keys")
        rpr.RPR_SetTrackSelected(rpr.RPR_GetMasterTrack(0), True)
    rec["console_len"] = len(app.console)


def dump() -> None:
    app, rpr = _app(), _rpr()
    projects = []
    for pi in range(len(app.projects)):
        p = rpr.RPR_EnumProjects(pi, "", 512)[0]
        trs = []
        for i in range(rpr.RPR_CountTracks(p)):
            tr = rpr.RPR_GetTrack(p, i)
            items = []
            for k in range(rpr.RPR_CountTrackMediaItems(tr)):
                take = rpr.RPR_GetActiveTake(rpr.RPR_GetTrackMediaItem(tr, k))
                items.append(rpr.RPR_GetMediaSourceFileName(rpr.RPR_GetMediaItemTake_Source(take), "", 4096)[1])
            trs.append({"name": rpr.RPR_GetTrackName(tr, "", 256)[2], "mute": rpr.RPR_GetMediaTrackInfo_Value(tr, "B_MUTE"),
                        "vol": rpr.RPR_GetMediaTrackInfo_Value(tr, "D_VOL"), "fx": _fx_settings(rpr, tr), "items": items,
                        "selected": bool(rpr.RPR_IsTrackSelected(tr))})
        m = rpr.RPR_GetMasterTrack(p)
        projects.append({"tracks": trs, "master_fx": _fx_settings(rpr, m), "master_fxen": rpr.RPR_GetMediaTrackInfo_Value(m, "I_FXEN"),
                         "master_selected": bool(rpr.RPR_IsTrackSelected(m)),
                         "ext_last_master": rpr.RPR_GetProjExtState(p, "ReaMaster", "last_master", "", 65536)[4]})
    mods = {k: getattr(sys.modules.get(k), "__file__", None) for k in ("reapy", "zmq", "server", "reamaster_reaper")}
    RECORD.update(console=app.console, console_opened=app.console_opened, dialogs=app.dialog_log,
                  blocked=app.blocked_dialogs, errors=list(sys.modules["standin"].errors()), projects=projects,
                  renders=[{k: e.get(k) for k in ("status", "files", "fx_applied", "fx_not_applied", "targets")}
                           for e in app.render_log],
                  undo=[e.get("desc") for e in app.undo_log if e.get("kind") == "end"], modules=mods,
                  end_path=list(sys.path), version="%d.%d" % sys.version_info[:2], file_in_main="__file__" in
                  sys.modules["__main__"].__dict__)
    with open(CFG["out"], "w", encoding="utf-8") as f:
        json.dump(RECORD, f, indent=1, default=str)


_boot()
sys.modules["reaper_side"] = sys.modules.get("reaper_side") or type(sys)("reaper_side")
sys.modules["reaper_side"].__dict__.update(build_song=build_song, step=step, dump=dump, RECORD=RECORD)
