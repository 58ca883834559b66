# @noindex
"""Revise the last master in words: the session beside it, the `revise` job, a new muted track.

The server's `master` job writes no session, so the master flow starts one here from its report
(the chain it rendered and the delivery), in the format of ``server/service/session.py`` - stdlib only,
as everything on the REAPER side."""

from __future__ import annotations

import json
import os

from reapy import reascript_api as RPR

from . import host as H
from .task import Task

TRACK_PREFIX = "ReaMaster master v"


def start_session(report: dict, mix: str, master: str) -> str:
    """``<master stem>.session/`` with version 1 (never overwritten); returns the folder.

    The server's ``master`` job writes no session, so the REAPER side starts it, in the format
    server.service.session defines (that module's document builder is standard library only)."""
    from server.service.session import new_session_document, session_dir_for  # stdlib-only at import; loaded on use

    folder = str(session_dir_for(master))
    os.makedirs(folder)
    with open(os.path.join(folder, "chain-v1.json"), "x", encoding="utf-8") as f:
        f.write(json.dumps(report["chain"], indent=2, allow_nan=False) + "\n")
    d = report["delivery"]
    delivery = dict({k: d[k] for k in ("preset", "target_lufs", "ceiling_dbtp", "note") if k in d},
                    bit_format=report.get("output_format", "wav24"))
    doc = new_session_document(input_path=mix, output=master, delivery=delivery, after=report["after"],
                               folder=folder)  # paths relative to the session, as the CLI writes them
    with open(os.path.join(folder, "session.json"), "x", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
    return folder


def revise_master(connect) -> Task | None:
    """The "Revise master..." action; ``connect`` is the actions module's deferred connect."""
    last = H.get_json(H.get_proj_ext, "last_master")
    session = last.get("session", "")
    if not session or not os.path.isfile(os.path.join(session, "session.json")):
        H.message("There is no ReaMaster master to revise in this project yet: run 'ReaMaster: Master mix' first.")
        return None
    r = RPR.GetUserInputs("ReaMaster: Revise master", 1, "What to change (e.g. brighter; quieter),extrawidth=250",
                          "", 4096)
    if not r[0] or not r[4].strip():
        return None
    words = r[4].strip()

    def flow(task: Task):
        H.require_saved_project()
        client = yield from connect(task)
        H.log(f"revising the master: {words} ...")
        res = yield from task.wait(client.submit("revise", {"session": session, "words": words}), "revising")
        c = res.content
        out, n = c["output"], int(c["version"])
        if not os.path.isfile(out):
            raise H.UserError(f"The server reported success but {out} is missing.")
        from .actions import write_report  # actions imports this module
        report_path = write_report(c["report"], out)
        H.undo_begin()
        try:
            tr = H.insert_audio_track(out, f"{TRACK_PREFIX}{n}", float(last.get("start", 0.0)))
            RPR.SetMediaTrackInfo_Value(tr, "B_MUTE", 1)
            H.set_proj_ext("last_revision", json.dumps({"session": session, "version": n, "master": out,
                                                        "report": report_path, "words": words}))
        finally:
            H.undo_end(f"ReaMaster: revise master (v{n})")
        a = c["report"]["after"]
        H.log(f"done: v{n} ({'; '.join(c.get('changes') or []) or 'no change'}) at {a['integrated_lufs']:.1f} LUFS "
              f"(track '{TRACK_PREFIX}{n}', muted)")
    return Task("Revise master", flow)
