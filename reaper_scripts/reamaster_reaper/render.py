# @noindex
"""Rendering from a script (REAPER_API.md section 3.4): every render key touched is saved and
restored afterwards, even on error; a fresh file name per render (REAPER's overwrite prompt cannot
be dismissed from a script); RENDER_TARGETS read first and the files checked afterwards."""

from __future__ import annotations

import os
import secrets
import time

from reapy import reascript_api as RPR

from .host import UserError, set_selected_tracks, selected_tracks, time_selection

FLOAT32_WAV = "ZXZhdyAAAA=="  # base64 of "evaw" + 32 (float) + flags 0 + large-file 0
RENDER_CMD = 42230            # render with the most recent settings, auto-close the dialog

NUM_KEYS = ("RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_STARTPOS", "RENDER_ENDPOS", "RENDER_SRATE",
            "RENDER_CHANNELS", "RENDER_TAILFLAG", "RENDER_ADDTOPROJ", "RENDER_NORMALIZE", "RENDER_DITHER")
STR_KEYS = ("RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT", "RENDER_FORMAT2")

MASTER_MIX, STEMS_SELECTED = 0, 2


def save_settings() -> dict:
    saved = {k: RPR.GetSetProjectInfo(0, k, 0.0, False) for k in NUM_KEYS}
    saved.update({k: RPR.GetSetProjectInfo_String(0, k, "", False)[3] for k in STR_KEYS})
    return saved


def restore_settings(saved: dict) -> None:
    for k in NUM_KEYS:
        RPR.GetSetProjectInfo(0, k, saved[k], True)
    for k in STR_KEYS:
        RPR.GetSetProjectInfo_String(0, k, saved[k], True)


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
    length = float(RPR.GetProjectLength(0))
    if length <= 0:
        raise UserError("The project is empty: there is nothing to render.")
    return 0.0, length


def render(folder: str, prefix: str, stems: list[str] | None = None) -> tuple[list[str], float]:
    """Render the master mix (``stems`` None) or each track in ``stems`` to its own 32-bit float WAV
    in ``folder`` at the project sample rate. Returns (files, start position in s)."""
    start, end = bounds()
    sel = time_selection()
    stem = unique_stem(folder, prefix)
    saved = save_settings()
    saved_sel = selected_tracks() if stems is not None else None
    try:
        RPR.GetSetProjectInfo(0, "RENDER_SETTINGS", STEMS_SELECTED if stems is not None else MASTER_MIX, True)
        RPR.GetSetProjectInfo(0, "RENDER_BOUNDSFLAG", 2 if sel else 1, True)
        RPR.GetSetProjectInfo(0, "RENDER_STARTPOS", start, True)
        RPR.GetSetProjectInfo(0, "RENDER_ENDPOS", end, True)
        RPR.GetSetProjectInfo(0, "RENDER_SRATE", 0, True)  # 0 = the project rate
        RPR.GetSetProjectInfo(0, "RENDER_CHANNELS", 2, True)
        for k in ("RENDER_TAILFLAG", "RENDER_ADDTOPROJ", "RENDER_NORMALIZE", "RENDER_DITHER"):
            RPR.GetSetProjectInfo(0, k, 0, True)
        RPR.GetSetProjectInfo_String(0, "RENDER_FILE", folder, True)
        RPR.GetSetProjectInfo_String(0, "RENDER_PATTERN", stem + ("_$track" if stems is not None else ""), True)
        RPR.GetSetProjectInfo_String(0, "RENDER_FORMAT", FLOAT32_WAV, True)
        RPR.GetSetProjectInfo_String(0, "RENDER_FORMAT2", "", True)
        if stems is not None:
            set_selected_tracks(stems)
        targets = [t for t in RPR.GetSetProjectInfo_String(0, "RENDER_TARGETS", "", False)[3].split(";") if t]
        if not targets:
            raise UserError("REAPER reports nothing to render with these settings.")
        existing = [t for t in targets if os.path.exists(t)]
        if existing:  # would open REAPER's overwrite prompt
            raise UserError(f"{existing[0]} already exists; run the action again.")
        RPR.Main_OnCommand(RENDER_CMD, 0)
    finally:
        restore_settings(saved)
        if saved_sel is not None:
            set_selected_tracks(saved_sel)
    missing = [t for t in targets if not os.path.isfile(t)]
    if missing:
        raise UserError(f"REAPER did not write {missing[0]}; was the render cancelled?")
    return targets, start
