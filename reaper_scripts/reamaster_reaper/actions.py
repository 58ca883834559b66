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
    task.cleanups.append(lambda: link.close(linger_ms=task.close_linger_ms()))
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
        out = master_path_for(mix)
        H.log("mastering " + os.path.basename(mix) + " ...")
        res = yield from task.wait(client.submit("master", _request(settings, mix, out)), "mastering")
        report = res.content["report"]
        if not os.path.isfile(out):
            raise H.UserError(f"The server reported success but {out} is missing.")
        report_path = write_report(report, out)
        session = start_session(report, mix, out)
        H.undo_begin()
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
            H.set_proj_ext("ab_target", "")  # A/B compares this master (not an earlier preview)
        finally:
            H.undo_end("ReaMaster: master mix")
        H.set_ext("last_settings", json.dumps(settings), True)
        a = report["after"]
        H.log(f"done: {os.path.basename(out)} at {a['integrated_lufs']:.1f} LUFS, "
              f"{a['true_peak_dbtp']:.1f} dBTP (track '{MASTER_TRACK_NAME}', muted; use A/B compare)")
    return flow


PREVIEW_TRACK_NAME = "ReaMaster preview"
PREVIEW_S = 30.0


def preview_master() -> Task:
    """The loudest 30 s mastered with the last-used settings (the server decides the chain from the
    whole mix), inserted where it lies in the song with the edit cursor there, and A/B compare
    switched to it, at the mix's loudness over that stretch."""
    settings = _settings()

    def flow(task: Task):
        H.require_saved_project()
        H.log("rendering the mix ...")
        (mix,), start = render(H.output_dir(), "mix")
        client = yield from _connect(task)
        out = os.path.splitext(master_path_for(mix))[0] + ".preview.wav"
        request = _request(settings, mix, out)
        request["choices"]["preview_s"] = PREVIEW_S
        H.log(f"previewing the loudest {PREVIEW_S:.0f} s of {os.path.basename(mix)} ...")
        res = yield from task.wait(client.submit("master", request), "previewing")
        report = res.content["report"]
        if not os.path.isfile(out):
            raise H.UserError(f"The server reported success but {out} is missing.")
        window = report["preview"]
        at = start + float(window["start_s"])
        H.undo_begin()
        try:
            old = H.find_track(PREVIEW_TRACK_NAME)
            if old is not None:
                RPR.DeleteTrack(old)
            tr = H.insert_audio_track(out, PREVIEW_TRACK_NAME, at)
            RPR.SetMediaTrackInfo_Value(tr, "B_MUTE", 1)  # A/B compare un-mutes it at matched loudness
            RPR.SetEditCurPos2(H.proj(), at, True, False)  # not a time selection: the next render would honour it
            H.set_proj_ext("ab_target", json.dumps({
                "track": PREVIEW_TRACK_NAME, "mix_lufs": window["section_lufs_in_mix"],
                "master_lufs": report["after"]["integrated_lufs"]}))
        finally:
            H.undo_end("ReaMaster: preview master")
        H.log(f"preview: {window['start_s']:.1f}-{window['end_s']:.1f} s of the song, "
              f"{report['after']['integrated_lufs']:.1f} LUFS; use A/B compare to hear it at the mix's loudness")
    return Task("Preview master", flow)


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
        target = sel[0] if sel else H.master_track()
        out_dir = H.output_dir()
        H.log("rendering " + ("the selected track" if sel else "the mix") + " ...")
        files, _ = render(out_dir, "suggest", stems=[target] if sel else None)
        client = yield from _connect(task)
        # the choices Master would send (style, intensity, amounts), so Suggest proposes what Master does
        request = _request(_settings(), files[0], "")
        choices = {k: v for k, v in request["choices"].items() if k != "references"}
        res = yield from task.wait(client.submit("suggest", {"path": files[0], "preset": request["preset"],
                                                             "choices": choices}), "analysing")
        H.check_project()
        H.undo_begin()
        try:
            added, notes = write_chain(target, res.content["chain"])
        finally:
            H.undo_end("ReaMaster: suggest settings to native FX")
        H.log("added " + (", ".join(added) or "nothing") + ("; " + "; ".join(notes) if notes else ""))
    return Task("Suggest settings to native FX", flow)


def ab_compare() -> None:
    """Toggle between the mix and the ReaMaster master (or the preview made after it) at matched loudness."""
    last = H.get_json(H.get_proj_ext, "ab_target") or H.get_json(H.get_proj_ext, "last_master")
    tr = H.find_track(last.get("track", MASTER_TRACK_NAME)) if last else None
    if tr is None or not last:
        H.message("There is no ReaMaster master in this project yet: run 'ReaMaster: Master mix' first.")
        return
    others = [t for t in H.tracks() if t != tr]
    master = H.master_track()
    H.undo_begin()
    try:
        if RPR.GetMediaTrackInfo_Value(tr, "B_MUTE"):  # A -> B: the master, turned down to the mix's loudness
            H.set_proj_ext("ab_mutes", json.dumps([int(RPR.GetMediaTrackInfo_Value(t, "B_MUTE")) for t in others]))
            # B is the master file exactly as rendered: the master track's FX (the user's, ReaMaster's)
            # already shaped it, so they are switched off while B plays and put back for A.
            H.set_proj_ext("ab_master_fxen", str(int(RPR.GetMediaTrackInfo_Value(master, "I_FXEN"))))
            RPR.SetMediaTrackInfo_Value(master, "I_FXEN", 0)
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
            RPR.SetMediaTrackInfo_Value(master, "I_FXEN", int(H.get_proj_ext("ab_master_fxen") or 1))
            H.log("A: the mix")
            desc = "ReaMaster: A/B - mix"
    finally:
        H.undo_end(desc if "desc" in locals() else "ReaMaster: A/B")


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
        for tr, f in zip(sel, files):  # files follow sel (matched by $tracknumber in render)
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
        H.undo_begin()
        try:
            parent = H.insert_track()
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
            H.undo_end("ReaMaster: master stems")
        H.log(f"done: {len(names)} processed stems in the muted folder 'ReaMaster stems', and their master")
    return Task("Master selected tracks as stems", flow)


def open_report() -> None:
    """Open the HTML report of the last master with the operating system's own opener (not SWS:
    its Python wrappers live in sws_python64.py, which reapy does not load)."""
    last = H.get_json(H.get_proj_ext, "last_master")
    path = last.get("report", "")
    page = os.path.splitext(path)[0] + ".html" if path else ""
    if not page or not os.path.isfile(page):
        if path and os.path.isfile(path):
            page = path
        else:
            H.message("There is no ReaMaster report for this project yet: run 'ReaMaster: Master mix' first.")
            return
    H.open_file(page)
    H.log("opened " + page)


def master_path_for(mix: str) -> str:
    """``<folder>/mix_<stamp>.wav`` -> ``<folder>/master_<stamp>.wav`` (only the file name changes)."""
    folder, name = os.path.split(mix)
    stem = os.path.splitext(name)[0]
    return os.path.join(folder, ("master_" + stem[4:] if stem.startswith("mix_") else "master_" + stem) + ".wav")


def write_report(report: dict, out: str) -> str:
    """``<master>.report.json`` and the HTML page beside it (``.report.html``); returns the JSON path."""
    from server.service.report import render_html  # stdlib-only at import; loaded when a report is written
    report_path = os.path.splitext(out)[0] + ".report.json"
    with open(report_path, "x", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    try:
        page = render_html(report)
    except Exception as exc:  # the JSON is the record; the page is a view of it
        H.log(f"no HTML report ({type(exc).__name__}: {exc})")
    else:
        with open(os.path.splitext(report_path)[0] + ".html", "x", encoding="utf-8") as f:
            f.write(page)
    return report_path


def cancel() -> None:
    if H.get_ext("running"):
        H.set_ext(CANCEL_KEY, "1")
        H.log("cancel requested")
    else:
        H.log("nothing to cancel")


ACTIONS = {"master_one_click": master_one_click, "master_dialog": master_dialog,
           "suggest_native_fx": suggest_native_fx, "ab_compare": ab_compare, "master_stems": master_stems,
           "open_report": open_report, "cancel": cancel, "preview_master": preview_master,
           "revise_master": lambda: revise_master(_connect)}


def run(name: str):
    """Entry point of every action script."""
    H.capture()  # the project this action works on, whatever tab is current later
    try:
        task = ACTIONS[name]()
    except H.UserError as exc:
        H.message(str(exc))
        return None
    if isinstance(task, Task):
        task.start()
    return task
