# @noindex
"""The actions behind the scripts in ``reaper_scripts/``: ``run(name)`` starts one."""

from __future__ import annotations

import json
import os
import re

from reapy import reascript_api as RPR

from . import host as H
from .link import Link
from .native import write_chain
from .render import render
from .revise import revise_master, start_session
from .task import CANCEL_KEY, Task

MASTER_TRACK_NAME = "ReaMaster master"
DEFAULTS = {"preset": "streaming", "style": "auto", "intensity": "balanced", "reference": "",
            "tone_pct": "100", "dynamics_pct": "100", "width_pct": "100"}


def _settings() -> dict:
    """Last-used settings: this project's (ProjExtState), else the last ones anywhere (ExtState)."""
    s = dict(DEFAULTS)
    s.update(H.get_json(H.get_ext, "last_settings"))
    s.update(H.get_json(H.get_proj_ext, "settings"))
    return s


def _request(s: dict, src: str, out: str) -> dict:
    choices: dict = {"intensity": s["intensity"]}
    if s.get("style") and s["style"] != "auto":
        choices["style"] = s["style"]
    if s.get("reference"):
        choices["references"] = [s["reference"]]
    for k in ("tone_pct", "dynamics_pct", "width_pct"):
        choices[k] = float(s[k])
    return {"path": src, "output": out, "preset": s["preset"], "choices": choices}


def _dirs() -> list[str]:
    return sorted({H.project_dir(), H.media_dir()})


def _connect(task: Task):
    link = Link(_dirs())
    task.cleanups.append(link.close)
    while True:
        c = link.poll()
        if c is not None:
            return c
        yield


def _master_flow(settings: dict):
    def flow(task: Task):
        H.require_saved_project()
        out_dir = H.output_dir()
        H.log("rendering the mix ...")
        (mix,), start = render(out_dir, "mix")
        client = yield from _connect(task)
        out = os.path.splitext(mix)[0].replace("mix_", "master_", 1) + ".wav"
        H.log("mastering " + os.path.basename(mix) + " ...")
        res = yield from task.wait(client.submit("master", _request(settings, mix, out)), "mastering")
        report = res.content["report"]
        if not os.path.isfile(out):
            raise H.UserError(f"The server reported success but {out} is missing.")
        report_path = os.path.splitext(out)[0] + ".report.json"
        with open(report_path, "x", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        session = start_session(report, mix, out)
        RPR.Undo_BeginBlock2(0)
        try:
            old = H.find_track(MASTER_TRACK_NAME)
            if old is not None:  # the previous master stays in the project, muted and renamed
                RPR.GetSetMediaTrackInfo_String(old, "P_NAME", MASTER_TRACK_NAME + " (previous)", True)
                RPR.SetMediaTrackInfo_Value(old, "B_MUTE", 1)
            tr = H.insert_audio_track(out, MASTER_TRACK_NAME, start)
            RPR.SetMediaTrackInfo_Value(tr, "B_MUTE", 1)  # A/B compare un-mutes it at matched loudness
            H.set_proj_ext("settings", json.dumps(settings))
            H.set_proj_ext("last_master", json.dumps({
                "mix": mix, "master": out, "report": report_path, "session": session, "start": start,
                "mix_lufs": report["before"]["integrated_lufs"], "master_lufs": report["after"]["integrated_lufs"]}))
        finally:
            RPR.Undo_EndBlock2(0, "ReaMaster: master mix", -1)
        H.set_ext("last_settings", json.dumps(settings), True)
        a = report["after"]
        H.log(f"done: {os.path.basename(out)} at {a['integrated_lufs']:.1f} LUFS, "
              f"{a['true_peak_dbtp']:.1f} dBTP (track '{MASTER_TRACK_NAME}', muted; use A/B compare)")
    return flow


def master_one_click() -> Task:
    return Task("Master mix (one click)", _master_flow(_settings()))


INTENSITIES = ("gentle", "balanced", "loud")
DIALOG_FIELDS = ("preset", "style", "intensity", "reference", "tone_pct", "dynamics_pct", "width_pct")


def master_dialog() -> Task | None:
    s = _settings()
    captions = "Delivery preset,Style (auto or a name),Intensity (gentle/balanced/loud),Reference file (optional)," \
               "Tone amount %,Dynamics amount %,Width amount %,separator=|,extrawidth=200"
    r = RPR.GetUserInputs("ReaMaster: Master mix", len(DIALOG_FIELDS), captions,
                          "|".join(str(s[k]) for k in DIALOG_FIELDS), 4096)
    if not r[0]:
        return None
    vals = r[4].split("|")
    s.update({k: v.strip() for k, v in zip(DIALOG_FIELDS, vals)})
    if s["intensity"] not in INTENSITIES:
        H.message(f"Intensity '{s['intensity']}' is not one of {', '.join(INTENSITIES)}; nothing was changed.")
        return None
    for k in ("tone_pct", "dynamics_pct", "width_pct"):
        try:
            ok = 0.0 <= float(s[k]) <= 100.0
        except ValueError:
            ok = False
        if not ok:
            H.message(f"{k.replace('_pct', '').capitalize()} amount '{s[k]}' must be a number from 0 to 100 (%); "
                      "nothing was changed.")
            return None
    return Task("Master mix", _master_flow(s))


def suggest_native_fx() -> Task:
    def flow(task: Task):
        H.require_saved_project()
        sel = H.selected_tracks()
        target = sel[0] if sel else RPR.GetMasterTrack(0)
        out_dir = H.output_dir()
        H.log("rendering " + ("the selected track" if sel else "the mix") + " ...")
        files, _ = render(out_dir, "suggest", stems=[target] if sel else None)
        client = yield from _connect(task)
        res = yield from task.wait(client.submit("suggest", {"path": files[0], "preset": _settings()["preset"]}),
                                   "analysing")
        RPR.Undo_BeginBlock2(0)
        try:
            added, notes = write_chain(target, res.content["chain"])
        finally:
            RPR.Undo_EndBlock2(0, "ReaMaster: suggest settings to native FX", -1)
        H.log("added " + (", ".join(added) or "nothing") + ("; " + "; ".join(notes) if notes else ""))
    return Task("Suggest settings to native FX", flow)


def ab_compare() -> None:
    """Toggle between the mix and the ReaMaster master at matched loudness."""
    last = H.get_json(H.get_proj_ext, "last_master")
    tr = H.find_track(MASTER_TRACK_NAME)
    if tr is None or not last:
        H.message("There is no ReaMaster master in this project yet: run 'ReaMaster: Master mix' first.")
        return
    others = [t for t in H.tracks() if t != tr]
    RPR.Undo_BeginBlock2(0)
    try:
        if RPR.GetMediaTrackInfo_Value(tr, "B_MUTE"):  # A -> B: the master, turned down to the mix's loudness
            H.set_proj_ext("ab_mutes", json.dumps([int(RPR.GetMediaTrackInfo_Value(t, "B_MUTE")) for t in others]))
            for t in others:
                RPR.SetMediaTrackInfo_Value(t, "B_MUTE", 1)
            gain_db = float(last["mix_lufs"]) - float(last["master_lufs"])
            RPR.SetMediaTrackInfo_Value(tr, "D_VOL", 10.0 ** (gain_db / 20.0))
            RPR.SetMediaTrackInfo_Value(tr, "B_MUTE", 0)
            H.log(f"B: the master, at {gain_db:+.1f} dB to match the mix's loudness")
            desc = "ReaMaster: A/B - master"
        else:  # B -> A: the mix, every track's own mute state back
            mutes = json.loads(H.get_proj_ext("ab_mutes") or "[]")
            for t, m in zip(others, mutes + [0] * (len(others) - len(mutes))):
                RPR.SetMediaTrackInfo_Value(t, "B_MUTE", m)
            RPR.SetMediaTrackInfo_Value(tr, "B_MUTE", 1)
            RPR.SetMediaTrackInfo_Value(tr, "D_VOL", 1.0)
            H.log("A: the mix")
            desc = "ReaMaster: A/B - mix"
    finally:
        RPR.Undo_EndBlock2(0, desc if "desc" in locals() else "ReaMaster: A/B", -1)


def master_stems() -> Task | None:
    def flow(task: Task):
        H.require_saved_project()
        sel = H.selected_tracks()
        if not sel:
            raise H.UserError("Select the tracks to master as stems first.")
        out_dir = H.output_dir()
        H.log(f"rendering {len(sel)} stems ...")
        files, start = render(out_dir, "stem", stems=sel)
        names: dict = {}
        for tr, f in zip(sel, files):
            base = re.sub(r"[^A-Za-z0-9 _-]+", "_", H.track_name(tr)).strip() or "stem"
            name, k = base, 2
            while name.lower() in {n.lower() for n in names}:
                name, k = f"{base} {k}", k + 1
            names[name] = f
        folder = os.path.join(out_dir, os.path.basename(files[0]).split("_")[0] + "_" +
                              "_".join(os.path.basename(files[0]).split("_")[1:3]) + "_stems")
        client = yield from _connect(task)
        res = yield from task.wait(client.submit("master_stems", {"stems": names, "output": folder,
                                                                  "preset": _settings()["preset"]}),
                                   "mastering stems")
        outs, master = res.content["outputs"], res.content["master"]
        RPR.Undo_BeginBlock2(0)
        try:
            idx = RPR.CountTracks(0)
            RPR.InsertTrackAtIndex(idx, True)
            parent = RPR.GetTrack(0, idx)
            RPR.GetSetMediaTrackInfo_String(parent, "P_NAME", "ReaMaster stems", True)
            RPR.SetMediaTrackInfo_Value(parent, "I_FOLDERDEPTH", 1)
            RPR.SetMediaTrackInfo_Value(parent, "B_MUTE", 1)
            last = None
            for n in names:
                last = H.insert_audio_track(outs[n], "ReaMaster stem: " + n, start)
            mtr = H.insert_audio_track(master, "ReaMaster stems master", start)
            RPR.SetMediaTrackInfo_Value(mtr, "B_MUTE", 1)
            RPR.SetMediaTrackInfo_Value(last, "I_FOLDERDEPTH", -1)
        finally:
            RPR.Undo_EndBlock2(0, "ReaMaster: master stems", -1)
        H.log(f"done: {len(names)} processed stems in the muted folder 'ReaMaster stems', and their master")
    return Task("Master selected tracks as stems", flow)


def open_report() -> None:
    last = H.get_json(H.get_proj_ext, "last_master")
    path = last.get("report", "")
    if not path or not os.path.isfile(path):
        H.message("There is no ReaMaster report for this project yet: run 'ReaMaster: Master mix' first.")
        return
    RPR.CF_ShellExecute(path) if RPR_has("CF_ShellExecute") else H.message("The report is at\n" + path)


def RPR_has(name: str) -> bool:
    return bool(RPR.APIExists(name))


def cancel() -> None:
    if H.get_ext("running"):
        H.set_ext(CANCEL_KEY, "1")
        H.log("cancel requested")
    else:
        H.log("nothing to cancel")


ACTIONS = {"master_one_click": master_one_click, "master_dialog": master_dialog,
           "suggest_native_fx": suggest_native_fx, "ab_compare": ab_compare, "master_stems": master_stems,
           "open_report": open_report, "cancel": cancel,
           "revise_master": lambda: revise_master(_connect)}


def run(name: str):
    """Entry point of every action script."""
    try:
        task = ACTIONS[name]()
    except H.UserError as exc:
        H.message(str(exc))
        return None
    if isinstance(task, Task):
        task.start()
    return task
