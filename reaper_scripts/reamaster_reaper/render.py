# @noindex
"""Rendering from a script (REAPER_API.md section 3.4): every render key touched is saved and
restored afterwards, even on error; a fresh file name per render (REAPER's overwrite prompt cannot
be dismissed from a script); RENDER_TARGETS read first and the files checked afterwards.

A master-mix render goes through the master FX: ReaMaster's own FX ("ReaMaster ..." on any track or
the master) are bypassed for every render and put back in the same ``finally``, so a rerun of
Suggest, or one-click mastering after Suggest, never plans from audio ReaMaster already processed.
Whole-project renders keep a tail (reverb past the last item). Stems are named by ``$tracknumber``
(unique, unlike track names) and the master is deselected while they render."""

from __future__ import annotations

import os
import secrets
import time

from reapy import reascript_api as RPR

from . import host as H
from .host import UserError, time_selection

FLOAT32_WAV = "ZXZhdyAAAA=="  # base64 of "evaw" + 32 (float) + flags 0 + large-file 0
RENDER_CMD = 42230            # render with the most recent settings, auto-close the dialog

NUM_KEYS = ("RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_STARTPOS", "RENDER_ENDPOS", "RENDER_SRATE",
            "RENDER_CHANNELS", "RENDER_TAILFLAG", "RENDER_TAILMS", "RENDER_ADDTOPROJ", "RENDER_NORMALIZE",
            "RENDER_DITHER")
TAIL_MS = 3000.0           # whole-project renders: reverb and delay tails past the last item
TAIL_BIT_PROJECT = 2       # RENDER_TAILFLAG bit for "entire project" bounds (SDK)
OWN_PREFIX = "ReaMaster "  # the renamed_name of every FX ReaMaster adds (native.PREFIX)
STR_KEYS = ("RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT", "RENDER_FORMAT2")

MASTER_MIX, STEMS_SELECTED = 0, 2


def save_settings() -> dict:
    p = H.proj()
    saved = {k: RPR.GetSetProjectInfo(p, k, 0.0, False) for k in NUM_KEYS}
    saved.update({k: RPR.GetSetProjectInfo_String(p, k, "", False)[3] for k in STR_KEYS})
    return saved


def restore_settings(saved: dict) -> None:
    p = H.proj()
    for k in NUM_KEYS:
        RPR.GetSetProjectInfo(p, k, saved[k], True)
    for k in STR_KEYS:
        RPR.GetSetProjectInfo_String(p, k, saved[k], True)


def own_fx() -> list[tuple[str, int]]:
    """(track, fx index) of every enabled FX ReaMaster added, on the master and on every track."""
    out = []
    for tr in [H.master_track()] + H.tracks():
        for fx in range(RPR.TrackFX_GetCount(tr)):
            r = RPR.TrackFX_GetNamedConfigParm(tr, fx, "renamed_name", "", 256)
            if r[0] and r[4].startswith(OWN_PREFIX) and RPR.TrackFX_GetEnabled(tr, fx):
                out.append((tr, fx))
    return out


def set_enabled(fxs: list[tuple[str, int]], on: bool) -> None:
    for tr, fx in fxs:
        RPR.TrackFX_SetEnabled(tr, fx, on)


def unique_stem(folder: str, prefix: str) -> str:
    """A file-name stem no file in ``folder`` starts with (so no render can hit an existing name)."""
    while True:
        stem = f"{prefix}_{time.strftime('%Y%m%d-%H%M%S')}_{secrets.token_hex(3)}"
        if not any(n.startswith(stem) for n in os.listdir(folder)):
            return stem


def bounds() -> tuple[float, float]:
    """The time selection if there is one, else the whole project (s)."""
    sel = time_selection()
    if sel:
        return sel
    length = H.project_length()
    if length <= 0:
        raise UserError("The project is empty: there is nothing to render.")
    return 0.0, length


def render(folder: str, prefix: str, stems: list[str] | None = None) -> tuple[list[str], float]:
    """Render the master mix (``stems`` None) or each track in ``stems`` to its own 32-bit float WAV
    in ``folder`` at the project sample rate, with ReaMaster's own FX bypassed. Returns (files in the
    order of ``stems``, start position in s)."""
    if not H.is_current():  # REAPER renders the project in the current tab
        raise UserError("Switch back to the project tab this action started in, then run it again.")
    start, end = bounds()
    sel = time_selection()
    stem = unique_stem(folder, prefix)
    p = H.proj()
    saved = save_settings()
    saved_sel = (H.selected_tracks(), H.master_selected()) if stems is not None else None
    ours = own_fx()
    try:
        set_enabled(ours, False)
        RPR.GetSetProjectInfo(p, "RENDER_SETTINGS", STEMS_SELECTED if stems is not None else MASTER_MIX, True)
        RPR.GetSetProjectInfo(p, "RENDER_BOUNDSFLAG", 2 if sel else 1, True)
        RPR.GetSetProjectInfo(p, "RENDER_STARTPOS", start, True)
        RPR.GetSetProjectInfo(p, "RENDER_ENDPOS", end, True)
        RPR.GetSetProjectInfo(p, "RENDER_SRATE", 0, True)  # 0 = the project rate
        RPR.GetSetProjectInfo(p, "RENDER_CHANNELS", 2, True)
        RPR.GetSetProjectInfo(p, "RENDER_TAILFLAG", 0 if sel else TAIL_BIT_PROJECT, True)
        RPR.GetSetProjectInfo(p, "RENDER_TAILMS", TAIL_MS, True)
        for k in ("RENDER_ADDTOPROJ", "RENDER_NORMALIZE", "RENDER_DITHER"):
            RPR.GetSetProjectInfo(p, k, 0, True)
        RPR.GetSetProjectInfo_String(p, "RENDER_FILE", folder, True)
        RPR.GetSetProjectInfo_String(p, "RENDER_PATTERN", stem + ("_$tracknumber" if stems is not None else ""), True)
        RPR.GetSetProjectInfo_String(p, "RENDER_FORMAT", FLOAT32_WAV, True)
        RPR.GetSetProjectInfo_String(p, "RENDER_FORMAT2", "", True)
        if stems is not None:
            H.set_selected_tracks(stems, master=False)
        targets = [t for t in RPR.GetSetProjectInfo_String(p, "RENDER_TARGETS", "", False)[3].split(";") if t]
        if not targets:
            raise UserError("REAPER reports nothing to render with these settings.")
        existing = [t for t in targets if os.path.exists(t)]
        if existing:  # would open REAPER's overwrite prompt
            raise UserError(f"{existing[0]} already exists; run the action again.")
        RPR.Main_OnCommand(RENDER_CMD, 0)
    finally:
        restore_settings(saved)
        set_enabled(ours, True)
        if saved_sel is not None:
            H.set_selected_tracks(*saved_sel)
    missing = [t for t in targets if not os.path.isfile(t)]
    if missing:
        raise UserError(f"REAPER did not write {missing[0]}; was the render cancelled?")
    if stems is None:
        return targets, start
    by_number = {}
    for t in targets:  # <stem>_<tracknumber>.wav
        num = os.path.splitext(os.path.basename(t))[0][len(stem) + 1:]
        by_number[num] = t
    files = []
    for tr in stems:
        f = by_number.get(f"{H.track_number(tr):02d}") or by_number.get(str(H.track_number(tr)))
        if f is None:
            raise UserError(f"REAPER did not render a stem for track {H.track_number(tr)}.")
        files.append(f)
    return files, start
