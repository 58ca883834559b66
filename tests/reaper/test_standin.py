"""The REAPER stand-in: real python-reapy on top of it, REAPER's calling rules, rendering, native FX."""

from __future__ import annotations

import math
import os
import re
import sys

import numpy as np
import pytest
import soundfile as sf
import standin
from standin.fx import eq_freq_norm

SR = 48000
pytestmark = pytest.mark.timeout(60)


def _wav(path, x: np.ndarray, sr: int = SR) -> str:
    sf.write(str(path), x.T.astype(np.float32), sr, subtype="FLOAT")
    return str(path)


def _noise(rng, seconds: float, channels: int = 2, amp: float = 0.1) -> np.ndarray:
    return (amp * rng.standard_normal((channels, int(round(seconds * SR))))).astype(np.float32)


def _add_item(rpr, track, path, pos):
    item = rpr.RPR_AddMediaItemToTrack(track)
    take = rpr.RPR_AddTakeToMediaItem(item)
    src = rpr.RPR_PCM_Source_CreateFromFile(path)
    assert rpr.RPR_SetMediaItemTake_Source(take, src) == 1
    length = rpr.RPR_GetMediaSourceLength(src, False)[0]
    rpr.RPR_SetMediaItemInfo_Value(item, "D_POSITION", pos)
    rpr.RPR_SetMediaItemInfo_Value(item, "D_LENGTH", length)
    return item


def _new_track(rpr, name):
    n = rpr.RPR_CountTracks(0)
    rpr.RPR_InsertTrackAtIndex(n, True)
    tr = rpr.RPR_GetTrack(0, n)
    rpr.RPR_GetSetMediaTrackInfo_String(tr, "P_NAME", name, True)
    return tr


def _set_render(rpr, folder, pattern, settings=0, bounds=1, fmt="ZXZhdyAAAA==", srate=0):
    rpr.RPR_GetSetProjectInfo(0, "RENDER_SETTINGS", settings, True)
    rpr.RPR_GetSetProjectInfo(0, "RENDER_BOUNDSFLAG", bounds, True)
    rpr.RPR_GetSetProjectInfo(0, "RENDER_SRATE", srate, True)
    rpr.RPR_GetSetProjectInfo(0, "RENDER_CHANNELS", 2, True)
    rpr.RPR_GetSetProjectInfo(0, "RENDER_TAILFLAG", 0, True)
    rpr.RPR_GetSetProjectInfo_String(0, "RENDER_FILE", str(folder), True)
    rpr.RPR_GetSetProjectInfo_String(0, "RENDER_PATTERN", pattern, True)
    rpr.RPR_GetSetProjectInfo_String(0, "RENDER_FORMAT", fmt, True)


@pytest.fixture
def three_tracks(reaper, rpr, tmp_path, rng):
    """Three tracks of generated audio at different positions; the 2nd at -6 dB, plus a muted 4th."""
    reaper.save_as(reaper.project, "song")
    clips = [_noise(rng, 1.0), _noise(rng, 0.75), _noise(rng, 1.25, channels=1), _noise(rng, 1.0)]
    pos = [0.0, 0.5, 0.25, 0.0]
    names = ["Drums", "Bass", "Vox", "Muted"]
    tracks = []
    for i, (x, p, n) in enumerate(zip(clips, pos, names)):
        tr = _new_track(rpr, n)
        _add_item(rpr, tr, _wav(tmp_path / f"clip{i}.wav", x), p)
        tracks.append(tr)
    rpr.RPR_SetMediaTrackInfo_Value(tracks[1], "D_VOL", 0.5)
    rpr.RPR_SetMediaTrackInfo_Value(tracks[3], "B_MUTE", 1)

    def expected(start, end, which=(0, 1, 2)):
        n = int(round(end * SR)) - int(round(start * SR))
        out = np.zeros((2, n))
        gains = [1.0, 0.5, 1.0, 0.0]
        for i in which:
            x = clips[i].astype(np.float64)
            x = np.vstack([x, x]) if x.shape[0] == 1 else x
            i0 = int(round(pos[i] * SR)) - int(round(start * SR))
            a, b = max(i0, 0), min(i0 + x.shape[1], n)
            out[:, a:b] += gains[i] * x[:, a - i0:b - i0]
        return out

    return tracks, expected


# --- reapy on the stand-in ------------------------------------------------------------------------------

def test_reapy_takes_the_inside_path(reaper, reapy):
    assert reapy.is_inside_reaper()
    assert not reapy.dist_api_is_enabled()
    assert callable(reapy.reascript_api.GetTrack)
    project = reapy.Project()
    assert project.id.startswith("(ReaProject*)0x") and project.n_tracks == 0
    assert project.name == "" and project.path == reaper.default_record_path  # unsaved project
    reaper.save_as(reaper.project, "song")
    assert reapy.Project().name == "song.rpp"
    assert reapy.Project().path == os.path.join(reaper.project.folder, "Media")


def test_reapy_tracks_items_and_sources(reaper, reapy, rpr, tmp_path, rng):
    project = reapy.Project()
    drums = project.add_track(0, "Drums")
    bass = project.add_track(1, "Bass")
    assert [t.name for t in project.tracks] == ["Drums", "Bass"]
    assert project.tracks["Bass"].index == 1
    path = _wav(tmp_path / "kick.wav", _noise(rng, 0.5))
    _add_item(rpr, drums.id, path, 1.5)
    assert len(drums.items) == 1 and len(bass.items) == 0
    item = drums.items[0]
    assert item.position == pytest.approx(1.5) and item.length == pytest.approx(0.5)
    assert item.active_take.source.filename == os.path.abspath(path)
    drums.select()
    assert [t.name for t in project.selected_tracks] == ["Drums"]
    assert reapy.Project().master_track.name == "MASTER"
    bass.delete()
    assert project.n_tracks == 1


def test_reapy_mute_and_solo_go_through_actions(reaper, reapy):
    project = reapy.Project()
    a, b = project.add_track(0, "A"), project.add_track(1, "B")
    b.select()
    a.mute()
    assert a.is_muted and not b.is_muted
    assert [t.name for t in project.selected_tracks] == ["B"]  # selection restored
    a.solo()
    assert a.is_solo
    assert {e["command"] for e in reaper.action_log} >= {40280, 7}


def test_reapy_fx_and_params(reaper, reapy):
    track = reapy.Project().add_track(0, "Mix")
    eq = track.add_fx("ReaEQ")
    assert eq.name == "VST: ReaEQ (Cockos)" and eq.n_params == 19
    names = [p.name for p in eq.params]
    assert names[:3] == ["Freq-Low Shelf", "Gain-Low Shelf", "BW-Low Shelf"]
    assert names[15:] == ["Global Gain", "Bypass", "Wet", "Delta"]
    assert float(eq.params[6].formatted) == pytest.approx(1000.0, abs=5.0)
    assert eq.params[15].range == (0.0, 4.0)
    eq.params[15] = 2.0  # native: linear amplitude
    assert eq.params[15].formatted == "+6.0"
    comp = track.add_fx("ReaComp (Cockos)")
    assert comp.index == 1 and track.n_fxs == 2
    assert track.add_fx("ReaComp", even_if_exists=False).index == 1
    comp.disable()
    assert not comp.is_enabled
    with pytest.raises(ValueError):
        track.add_fx("NoSuchPlugin")
    assert reaper.unknown_fx == ["NoSuchPlugin"]


def test_reapy_defer_runs_on_main_loop_ticks(reaper, reapy, reaper_host):
    seen = []

    def step(n):
        seen.append(n)
        if n < 3:
            reapy.defer(step, n + 1)

    reapy.defer(step, 1)
    assert seen == [] and len(reaper_host.deferred) == 1
    assert isinstance(reaper_host.deferred[0], str)  # REAPER gets Python source, not a callable
    assert reaper_host.run_deferred(max_steps=10) == 3
    assert seen == [1, 2, 3]
    reapy.at_exit(seen.append, "bye")
    assert seen[-1] == 3
    assert reaper_host.run_atexit() == 1 and seen[-1] == "bye"


def test_defer_takes_code_strings_only(reaper, reaper_host):
    main = sys.modules["__main__"]
    main.counter = 0
    main.RPR_defer("counter += 1")
    main.RPR_defer("counter += 10; RPR_defer('counter += 100')")
    assert reaper_host.tick() == 2 and main.counter == 11
    assert reaper_host.run_deferred(5) == 1 and main.counter == 111
    with pytest.raises(TypeError):
        main.RPR_defer(lambda: None)
    main.RPR_defer("1/0")
    with pytest.raises(standin.DeferredError):
        reaper_host.run_deferred(5)
    assert "ZeroDivisionError" in reaper.console


def test_reapy_get_user_inputs_scripted(reaper, reapy):
    standin.answer_inputs(["-14", "-1.0"], None)
    got = reapy.get_user_inputs("Master", ["Target LUFS", "Ceiling dBTP"])
    assert got == {"Target LUFS": "-14", "Ceiling dBTP": "-1.0"}
    with pytest.raises(RuntimeError):
        reapy.get_user_inputs("Master", ["Target LUFS"])
    assert [d["captions"] for d in reaper.dialog_log] == [["Target LUFS", "Ceiling dBTP"], ["Target LUFS"]]
    with pytest.raises(RuntimeError):  # nobody answers: recorded, treated as Cancel
        reapy.get_user_inputs("Again", ["x"])
    assert reaper.blocked_dialogs[-1]["kind"] == "unanswered_GetUserInputs"


def test_get_user_inputs_defaults_separator_and_buffer_size(reaper, rpr):
    standin.answer_inputs("defaults", ["a;b", "c"])
    r = rpr.RPR_GetUserInputs("T", 2, "One,Two,extrawidth=100", "2,7", 5)
    assert r[0] == 1 and r[4] == "2,7" and len(r) == 6
    r = rpr.RPR_GetUserInputs("T", 2, "One,Two,separator=|", "", 4)
    assert r[4] == "a;b"  # truncated to buf_sz - 1 bytes, like REAPER


def test_reapy_undo_block_and_console(reaper, reapy):
    with reapy.undo_block("ReaMaster: apply chain"):
        reapy.Project().add_track(0, "x")
    ends = [e for e in reaper.undo_log if e["kind"] == "end"]
    assert [(e["desc"], e["flags"]) for e in ends] == [("ReaMaster: apply chain", 0)]
    reapy.print("hello")
    assert reaper.console == "hello\n" and reaper.console_opened
    reaper.console_opened = False
    reapy.reascript_api.ShowConsoleMsg("!SHOW:quiet")
    assert reaper.console.endswith("quiet") and not reaper.console_opened
    reapy.reascript_api.ClearConsole()
    assert reaper.console == ""


def test_reapy_time_selection(reaper, reapy, rpr):
    project = reapy.Project()
    project.time_selection = 1.25, 3.5
    assert rpr.RPR_GetSet_LoopTimeRange2(0, False, False, 0, 0, False)[3:5] == (1.25, 3.5)
    assert project.time_selection.start == 1.25 and project.time_selection.end == 3.5
    del project.time_selection
    assert project.time_selection.length == 0


# --- calling convention -----------------------------------------------------------------------------------

def test_tuple_shapes_match_the_generated_module(reaper, rpr_pristine):
    rpr = rpr_pristine
    reaper.save_as(reaper.project, "shapes")
    rpr.RPR_InsertTrackAtIndex(0, False)
    tr = rpr.RPR_GetTrack(0, 0)
    fx = rpr.RPR_TrackFX_AddByName(tr, "ReaComp", False, -1)
    proj, _idx, rpp, sz = rpr.RPR_EnumProjects(-1, "", 4096)
    assert proj.startswith("(ReaProject*)0x") and rpp.endswith("shapes.rpp") and sz == 4096
    assert rpr.RPR_GetTrackName(tr, "", 512) == (1, tr, "Track 1", 512)
    assert rpr.RPR_GetSetMediaTrackInfo_String(tr, "P_NAME", "", False) == (1, tr, "P_NAME", "", 0)
    assert rpr.RPR_GetProjectPath("", 512)[1] == 512 and len(rpr.RPR_GetProjectPath("", 512)) == 2
    assert rpr.RPR_GetProjectPathEx(0, "", 512)[0] == 0
    assert rpr.RPR_GetProjectName(0, "", 512) == (0, "shapes.rpp", 512)
    v, t2, f2, p2, lo, hi = rpr.RPR_TrackFX_GetParam(tr, fx, 0, 0, 0)
    assert (v, lo, hi) == (1.0, 0.0, 2.0) and (t2, f2, p2) == (tr, fx, 0)
    assert rpr.RPR_TrackFX_GetFXName(tr, fx, "", 64)[3] == "VST: ReaComp (Cockos)"
    assert rpr.RPR_TrackFX_GetParamName(tr, fx, 1, "", 64)[4] == "Ratio"
    assert rpr.RPR_TrackFX_FormatParamValueNormalized(tr, fx, 0, 1.0, "", 64)[5] == "+6.0"
    assert rpr.RPR_TrackFX_GetNamedConfigParm(tr, fx, "fx_name", "", 64)[4] == "VST: ReaComp (Cockos)"
    assert rpr.RPR_GetAudioDeviceInfo("SRATE", "", 64) == (1, "SRATE", "48000", 64)
    assert rpr.RPR_GetSetProjectInfo_String(0, "RENDER_FORMAT", "", False)[3] == "ZXZhdxgAAA=="
    assert isinstance(rpr.RPR_GetSetProjectInfo(0, "PROJECT_SRATE", 0, False), float)
    assert rpr.RPR_GetMediaSourceLength("(PCM_source*)0x0000000000000000", False) == (0.0, "(PCM_source*)0x0000000000000000", 0)
    assert rpr.RPR_ShowConsoleMsg("x") is None
    assert rpr.RPR_GetExtState("s", "k") == "" and isinstance(rpr.RPR_GetResourcePath(), str)
    assert rpr.RPR_IsTrackSelected(tr) == 0 and type(rpr.RPR_IsTrackSelected(tr)) is int
    with pytest.raises(TypeError):  # c_int(1.0), as in the generated module
        rpr.RPR_GetTrack(0, 1.0)


def test_pointer_strings_and_null_rules(reaper, rpr_pristine):
    rpr = rpr_pristine
    assert rpr.rpr_packp is rpr._generated_rpr_packp
    rpr.RPR_InsertTrackAtIndex(0, False)
    tr = rpr.RPR_GetTrack(0, 0)
    assert re.fullmatch(r"\(MediaTrack\*\)0x[0-9A-F]{16}", tr)
    assert rpr.RPR_GetTrack(0, 5) == "(MediaTrack*)0x0000000000000000"
    # NULL / wrong tag / lowercase hex for a ReaProject* all mean the current project
    assert rpr.RPR_CountTracks(0) == rpr.RPR_CountTracks(None) == 1
    assert rpr.RPR_CountTracks(tr) == 1
    assert rpr.RPR_CountTracks(rpr.RPR_EnumProjects(-1, "", 1)[0].lower().replace("reaproject", "ReaProject")) == 1
    # for other types they mean NULL: the call does nothing
    proj = rpr.RPR_EnumProjects(-1, "", 1)[0]
    assert rpr.RPR_GetTrackName(proj.replace("ReaProject", "MediaTrack"), "keep", 64)[0] == 0
    assert rpr.RPR_GetTrackName(tr.lower().replace("mediatrack", "MediaTrack"), "", 64)[0] == 0
    assert rpr.RPR_ValidatePtr2(0, tr, "MediaTrack*") == 1
    assert rpr.RPR_ValidatePtr2(0, tr, "MediaItem*") == 0
    assert rpr.rpr_packp("MediaTrack*", tr) == int(tr[-16:], 16)
    rpr.RPR_DeleteTrack(tr)
    assert rpr.rpr_packp("MediaTrack*", tr) == 0  # the generated packer validates: stale -> NULL
    assert rpr.RPR_ValidatePtr2(0, tr, "MediaTrack*") == 0
    assert rpr.RPR_GetTrackName(tr, "keep", 64) == (0, tr, "keep", 64)  # buffer untouched
    assert rpr.RPR_SetMediaTrackInfo_Value(tr, "D_VOL", 0.5) == 0
    assert rpr.RPR_TrackFX_AddByName(tr, "ReaEQ", False, -1) == -1
    assert rpr.RPR_CountTracks(0) == 0


def test_stale_pointer_is_silent_after_reapy_replaces_rpr_packp(reaper, reapy, rpr):
    assert rpr.rpr_packp.__module__ == "reapy.additional_api"  # reapy drops the ValidatePtr check
    t = reapy.Project().add_track(0, "gone")
    tid = t.id
    t.delete()
    assert rpr.RPR_SetMediaTrackInfo_Value(tid, "B_MUTE", 1) == 0
    assert rpr.RPR_GetTrackName(tid, "", 64)[0] == 0
    assert not reapy.Track(tid).has_valid_id


def test_ext_state_dialogs_and_actions(reaper, rpr):
    rpr.RPR_SetExtState("ReaMaster", "port", "5555", False)
    assert rpr.RPR_HasExtState("ReaMaster", "port") == 1 and rpr.RPR_GetExtState("ReaMaster", "port") == "5555"
    rpr.RPR_DeleteExtState("ReaMaster", "port", True)
    assert rpr.RPR_HasExtState("ReaMaster", "port") == 0
    assert rpr.RPR_SetProjExtState(0, "ReaMaster", "chain", '{"a": 1}') == 1
    assert rpr.RPR_GetProjExtState(0, "ReaMaster", "chain", "", 100)[4] == '{"a": 1}'
    standin.answer_mb(6)
    assert rpr.RPR_MB("Apply?", "ReaMaster", 4) == 6
    assert rpr.RPR_ShowMessageBox("Again?", "ReaMaster", 4) == 7  # unanswered: "No", recorded
    assert reaper.blocked_dialogs[-1]["kind"] == "unanswered_ShowMessageBox"
    rpr.RPR_Main_OnCommand(40001, 0)
    assert rpr.RPR_CountTracks(0) == 1 and rpr.RPR_GetLastTouchedTrack() == rpr.RPR_GetTrack(0, 0)
    rpr.RPR_Main_OnCommand(12345, 0)
    assert [(e["command"], e.get("unknown", False)) for e in reaper.action_log] == [(40001, False), (12345, True)]


def test_insert_media_at_edit_cursor(reaper, rpr, tmp_path, rng):
    path = _wav(tmp_path / "a.wav", _noise(rng, 0.5))
    rpr.RPR_SetEditCurPos(2.0, False, False)
    assert rpr.RPR_InsertMedia(path, 0) == 1  # no track yet: REAPER makes one
    tr = rpr.RPR_GetTrack(0, 0)
    rpr.RPR_SetOnlyTrackSelected(tr)
    assert rpr.RPR_InsertMedia(path, 0) == 1
    items = [rpr.RPR_GetTrackMediaItem(tr, i) for i in range(rpr.RPR_CountTrackMediaItems(tr))]
    assert [rpr.RPR_GetMediaItemInfo_Value(i, "D_POSITION") for i in items] == [2.0, 2.5]
    assert rpr.RPR_InsertMedia(path, 1) == 1 and rpr.RPR_CountTracks(0) == 2
    assert rpr.RPR_InsertMedia(str(tmp_path / "missing.wav"), 0) == 0


def test_run_script_file_with_defer(reaper, reaper_host, tmp_path):
    script = tmp_path / "poll.py"
    script.write_text(
        "from reaper_python import *\n"
        "n = 0\n"
        "def poll():\n"
        "    global n\n"
        "    n += 1\n"
        "    if n < 4:\n"
        "        RPR_defer('poll()')\n"
        "    else:\n"
        "        RPR_SetExtState('t', 'done', str(n), False)\n"
        "RPR_atexit(\"RPR_ShowConsoleMsg('bye')\")\n"
        "poll()\n")
    reaper_host.run_script(str(script))
    assert reaper_host.run_deferred(max_steps=2) == 2 and reaper.ext_state.get(("t", "done")) is None
    reaper_host.run_deferred(max_steps=10)
    assert reaper.ext_state[("t", "done")] == "4"
    reaper_host.run_atexit()
    assert reaper.console == "bye"


# --- rendering ------------------------------------------------------------------------------------------

def test_master_mix_render_equals_numpy_sum(three_tracks, reaper, rpr, tmp_path):
    _tracks, expected = three_tracks
    out = tmp_path / "renders"
    _set_render(rpr, out, "$project-master")
    targets = rpr.RPR_GetSetProjectInfo_String(0, "RENDER_TARGETS", "", False)[3]
    assert targets == str(out / "song-master.wav")
    rpr.RPR_Main_OnCommand(42230, 0)
    y, sr = sf.read(targets, dtype="float64", always_2d=True)
    assert sr == SR and sf.info(targets).subtype == "FLOAT"
    want = expected(0.0, 1.5)
    assert y.T.shape == want.shape
    np.testing.assert_allclose(y.T, want, atol=1e-6)
    assert reaper.render_log[-1]["files"] == [targets]
    assert "PEAK:" in rpr.RPR_GetSetProjectInfo_String(0, "RENDER_STATS", "", False)[3]


def test_time_selection_bounds_and_24bit(three_tracks, reaper, rpr, tmp_path):
    _tracks, expected = three_tracks
    rpr.RPR_GetSet_LoopTimeRange2(0, True, False, 0.4, 1.1, False)
    _set_render(rpr, tmp_path, "sel", bounds=2, fmt="ZXZhdxgAAA==")
    rpr.RPR_Main_OnCommand(41824, 0)
    path = tmp_path / "sel.wav"
    y, _ = sf.read(path, dtype="float64", always_2d=True)
    assert sf.info(path).subtype == "PCM_24"
    assert y.shape[0] == int(round(1.1 * SR)) - int(round(0.4 * SR))
    np.testing.assert_allclose(y.T, expected(0.4, 1.1), atol=2 ** -22)


def test_stems_of_selected_tracks(three_tracks, reaper, rpr, tmp_path):
    tracks, expected = three_tracks
    for t in tracks[:2]:
        rpr.RPR_SetTrackSelected(t, True)
    _set_render(rpr, tmp_path / "stems", "$track", settings=2)
    predicted = rpr.RPR_GetSetProjectInfo_String(0, "RENDER_TARGETS", "", False)[3].split(";")
    assert [os.path.basename(p) for p in predicted] == ["Drums.wav", "Bass.wav"]
    rpr.RPR_Main_OnCommand(42230, 0)
    assert reaper.render_log[-1]["files"] == predicted
    for path, which in zip(predicted, ((0,), (1,))):
        y, _ = sf.read(path, dtype="float64", always_2d=True)
        np.testing.assert_allclose(y.T, expected(0.0, 1.5, which), atol=1e-6)
    # stems + master (1) and selected tracks via master (128)
    _set_render(rpr, tmp_path / "both", "$track", settings=1)
    rpr.RPR_Main_OnCommand(42230, 0)
    assert [os.path.basename(p) for p in reaper.render_log[-1]["files"]] == ["Master.wav", "Drums.wav", "Bass.wav"]
    _set_render(rpr, tmp_path / "via", "bus", settings=128)
    rpr.RPR_Main_OnCommand(42230, 0)
    y, _ = sf.read(tmp_path / "via" / "bus.wav", dtype="float64", always_2d=True)
    np.testing.assert_allclose(y.T, expected(0.0, 1.5, (0, 1)), atol=1e-6)


def test_existing_target_blocks_the_render(three_tracks, reaper, rpr, tmp_path):
    _set_render(rpr, tmp_path, "taken")
    (tmp_path / "taken.wav").write_bytes(b"")
    rpr.RPR_Main_OnCommand(42230, 0)
    assert (tmp_path / "taken.wav").stat().st_size == 0
    assert reaper.blocked_dialogs == [{"kind": "render_overwrite", "files": [str(tmp_path / "taken.wav")],
                                       "action": 42230}]
    assert reaper.render_log[-1]["files"] == []


def test_render_settings_read_back_and_add_to_project(three_tracks, reaper, rpr, tmp_path):
    values = {"RENDER_SETTINGS": 128, "RENDER_BOUNDSFLAG": 0, "RENDER_STARTPOS": 0.25, "RENDER_ENDPOS": 1.0,
              "RENDER_SRATE": 44100, "RENDER_CHANNELS": 1, "RENDER_TAILFLAG": 4, "RENDER_ADDTOPROJ": 1,
              "RENDER_NORMALIZE": 1 | 6, "RENDER_DITHER": 1}
    for k, v in values.items():
        rpr.RPR_GetSetProjectInfo(0, k, v, True)
    strings = {"RENDER_FILE": str(tmp_path), "RENDER_PATTERN": "x/$project", "RENDER_FORMAT": "evaw"}
    for k, v in strings.items():
        rpr.RPR_GetSetProjectInfo_String(0, k, v, True)
    assert {k: rpr.RPR_GetSetProjectInfo(0, k, 0, False) for k in values} == values
    assert {k: rpr.RPR_GetSetProjectInfo_String(0, k, "", False)[3] for k in strings} == strings
    rpr.RPR_SetTrackSelected(rpr.RPR_GetTrack(0, 0), True)
    n = rpr.RPR_CountTracks(0)
    rpr.RPR_Main_OnCommand(42230, 0)
    out = tmp_path / "x" / "song.wav"
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames) == (44100, 1, int(round(0.75 * 44100)))
    assert rpr.RPR_CountTracks(0) == n + 1  # RENDER_ADDTOPROJ: the render comes back as the last track
    assert reaper.render_log[-1]["ignored"] == ["RENDER_NORMALIZE", "RENDER_DITHER"]


@pytest.mark.parametrize("fmt,subtype", [("ZXZhdxAAAA==", "PCM_16"), ("ZXZhdxgAAQ==", "PCM_24"),
                                         ("evaw", "PCM_24"), ("ZXZhdyAAAA==", "FLOAT")])
def test_wav_format_strings(three_tracks, reaper, rpr, tmp_path, fmt, subtype):
    _set_render(rpr, tmp_path, "f", fmt=fmt)
    rpr.RPR_Main_OnCommand(42230, 0)
    assert sf.info(tmp_path / "f.wav").subtype == subtype


def test_unmodelled_format_and_empty_time_selection_write_nothing(three_tracks, reaper, rpr, tmp_path):
    _set_render(rpr, tmp_path, "mp3", fmt="l3pm")
    rpr.RPR_Main_OnCommand(42230, 0)
    assert reaper.render_log[-1]["status"] == "unsupported"
    _set_render(rpr, tmp_path, "sel", bounds=2)
    rpr.RPR_Main_OnCommand(42230, 0)
    assert reaper.render_log[-1]["status"] == "empty_bounds"
    assert not any(f.endswith(".wav") and f.startswith(("mp3", "sel")) for f in os.listdir(tmp_path))


def _render_peak_db(rpr, folder, pattern):
    _set_render(rpr, folder, pattern)
    rpr.RPR_Main_OnCommand(42230, 0)
    x, _ = sf.read(str(folder / f"{pattern}.wav"), always_2d=True)
    return 20 * np.log10(np.max(np.abs(x)))


def test_master_fx_are_applied_and_bypass_is_honoured(three_tracks, reaper, rpr, tmp_path):
    """As in REAPER, a master-mix render goes through the master FX (here a ReaEQ whose Global Gain
    is set by its displayed value, and a ReaLimit by display): the level moves by what they show."""
    master = rpr.RPR_GetMasterTrack(0)
    dry = _render_peak_db(rpr, tmp_path, "dry")
    eq = rpr.RPR_TrackFX_AddByName(master, "ReaEQ", False, -1)
    for b in range(5):
        rpr.RPR_TrackFX_SetNamedConfigParm(master, eq, f"BANDENABLED{b}", "0")
    rpr.RPR_TrackFX_SetParam(master, eq, 15, 0.5)  # Global Gain native 0.5 = -6.02 dB
    assert rpr.RPR_TrackFX_GetFormattedParamValue(master, eq, 15, "", 64)[4].startswith("-6.0")
    assert _render_peak_db(rpr, tmp_path, "eq") == pytest.approx(dry - 6.02, abs=0.05)
    assert ("MASTER", "VST: ReaEQ (Cockos)") in reaper.render_log[-1]["fx_applied"]
    rpr.RPR_TrackFX_SetEnabled(master, eq, False)
    assert _render_peak_db(rpr, tmp_path, "bypassed") == pytest.approx(dry, abs=1e-4)
    rpr.RPR_TrackFX_SetEnabled(master, eq, True)
    rpr.RPR_SetMediaTrackInfo_Value(master, "I_FXEN", 0)
    assert _render_peak_db(rpr, tmp_path, "chain_off") == pytest.approx(dry, abs=1e-4)
    rpr.RPR_SetMediaTrackInfo_Value(master, "I_FXEN", 1)
    rpr.RPR_TrackFX_SetEnabled(master, eq, False)
    lim = rpr.RPR_TrackFX_AddByName(master, "ReaLimit", False, -1)
    assert rpr.RPR_TrackFX_SetNamedConfigParm(master, lim, "CEILING", "-12")
    assert _render_peak_db(rpr, tmp_path, "limited") <= -12.0 + 0.05 < dry - 1.0
    assert ("MASTER", "VST: ReaLimit (Cockos)") in reaper.render_log[-1]["fx_applied"]
    rpr.RPR_TrackFX_AddByName(master, "ReaXcomp", False, -1)  # not rendered: said so
    _render_peak_db(rpr, tmp_path, "xcomp")
    assert ("MASTER", "VST: ReaXcomp (Cockos)") in reaper.render_log[-1]["fx_not_applied"]


def test_reaeq_follows_the_user_default_preset(reaper, rpr):
    """A user default preset with 4 bands: 4x3 + Global Gain + Bypass/Wet/Delta = 16 parameters,
    Global Gain at 12, BANDTYPE4 unknown (TrackFX_GetNamedConfigParm fails)."""
    reaper.reaeq_default_types = [4, 0, 8, 1]
    rpr.RPR_InsertTrackAtIndex(0, False)
    tr = rpr.RPR_GetTrack(0, 0)
    fx = rpr.RPR_TrackFX_AddByName(tr, "ReaEQ (Cockos)", False, -1)
    assert rpr.RPR_TrackFX_GetNumParams(tr, fx) == 16
    assert rpr.RPR_TrackFX_GetParamName(tr, fx, 12, "", 64)[4] == "Global Gain"
    assert rpr.RPR_TrackFX_GetParamName(tr, fx, 0, "", 64)[4] == "Freq-High Pass"
    assert rpr.RPR_TrackFX_GetNamedConfigParm(tr, fx, "BANDTYPE3", "", 8)[:1] == (1,)
    assert rpr.RPR_TrackFX_GetNamedConfigParm(tr, fx, "BANDTYPE4", "", 8)[0] == 0
    assert not rpr.RPR_TrackFX_SetNamedConfigParm(tr, fx, "BANDENABLED4", "1")


def test_default_track_template_fx_and_sws(reaper, rpr):
    reaper.default_track_fx = ["ReaComp (Cockos)"]
    rpr.RPR_InsertTrackAtIndex(0, True)
    rpr.RPR_InsertTrackAtIndex(1, False)
    assert [rpr.RPR_TrackFX_GetCount(rpr.RPR_GetTrack(0, i)) for i in range(2)] == [1, 0]
    assert not rpr.RPR_APIExists("CF_ShellExecute")
    reaper.sws = True
    assert rpr.RPR_APIExists("CF_ShellExecute") and not hasattr(rpr, "RPR_CF_ShellExecute")


# --- native FX ------------------------------------------------------------------------------------------

@pytest.fixture
def fxtrack(reaper, rpr):
    rpr.RPR_InsertTrackAtIndex(0, False)
    return rpr.RPR_GetTrack(0, 0)


def _fmt(rpr, tr, fx, p):
    return rpr.RPR_TrackFX_GetFormattedParamValue(tr, fx, p, "", 64)[4]


def test_add_by_name_semantics(fxtrack, rpr):
    tr = fxtrack
    assert rpr.RPR_TrackFX_AddByName(tr, "ReaEQ", False, 0) == -1  # query only
    assert rpr.RPR_TrackFX_AddByName(tr, "VST: ReaEQ (Cockos)", False, 1) == 0
    assert rpr.RPR_TrackFX_AddByName(tr, "ReaEQ (Cockos)", False, 1) == 0  # exists: not added
    assert rpr.RPR_TrackFX_AddByName(tr, "ReaXcomp (Cockos)", False, -1) == 1
    assert rpr.RPR_TrackFX_AddByName(tr, "ReaComp", False, -1000) == 0  # first in chain
    assert rpr.RPR_TrackFX_GetCount(tr) == 3
    assert [rpr.RPR_TrackFX_GetFXName(tr, i, "", 64)[3] for i in range(3)] == [
        "VST: ReaComp (Cockos)", "VST: ReaEQ (Cockos)", "VST: ReaXcomp (Cockos)"]
    assert [rpr.RPR_TrackFX_GetNumParams(tr, i) for i in range(3)] == [24, 19, 51]
    assert rpr.RPR_TrackFX_AddByName(tr, "ReaLimit", True, -1) == 0x1000000
    assert rpr.RPR_TrackFX_GetRecCount(tr) == 1 and rpr.RPR_TrackFX_GetCount(tr) == 3
    assert rpr.RPR_TrackFX_SetNamedConfigParm(tr, 1, "renamed_name", "My EQ") == 1
    assert rpr.RPR_TrackFX_GetFXName(tr, 1, "", 64)[3] == "My EQ"
    assert rpr.RPR_TrackFX_GetNamedConfigParm(tr, 1, "fx_name", "", 64)[4] == "VST: ReaEQ (Cockos)"
    rpr.RPR_TrackFX_SetEnabled(tr, 1, False)
    assert rpr.RPR_TrackFX_GetEnabled(tr, 1) == 0 and rpr.RPR_TrackFX_GetParam(tr, 1, 16, 0, 0)[0] == 1.0
    assert rpr.RPR_TrackFX_Delete(tr, 0) == 1 and rpr.RPR_TrackFX_GetCount(tr) == 2
    assert rpr.RPR_TrackFX_GetParamNormalized(tr, 7, 0) == -1.0


@pytest.mark.parametrize("plugin,param,norm,text", [
    ("ReaEQ", 6, 0.476, r"^99\d\.\d$|^100\d\.\d$"),         # about 1000 Hz
    ("ReaEQ", 0, 0.5, r"^1160\.\d$"),
    ("ReaEQ", 1, 0.25, r"^\+0\.0$"),
    ("ReaEQ", 1, 0.0, r"^-inf$"),
    ("ReaEQ", 1, 1.0, r"^\+12\.0$"),
    ("ReaEQ", 5, 0.5, r"^2\.00$"),
    ("ReaComp", 0, 0.5, r"^\+0\.0$"),
    ("ReaComp", 0, 1.0, r"^\+6\.0$"),
    ("ReaComp", 1, 3 / 99, r"^4\.0:1$"),
    ("ReaComp", 1, 1.0, r"^inf:1$"),
    ("ReaComp", 2, 0.006, r"^3\.0$"),
    ("ReaComp", 3, 0.02, r"^100$"),
    ("ReaLimit", 0, 0.73611, r"^-7\.0$"),
    ("ReaLimit", 2, 0.3548, r"^15\.0$"),
    ("ReaXcomp", 0, 0.5, r"^1160\.\d$"),
    ("ReaXcomp", 2, 0.25, r"^-6\.0$"),
])
def test_normalized_to_formatted(fxtrack, rpr, plugin, param, norm, text):
    fx = rpr.RPR_TrackFX_AddByName(fxtrack, plugin, False, -1)
    assert rpr.RPR_TrackFX_SetParamNormalized(fxtrack, fx, param, norm) == 1
    assert re.match(text, _fmt(rpr, fxtrack, fx, param)), _fmt(rpr, fxtrack, fx, param)
    assert rpr.RPR_TrackFX_GetParamNormalized(fxtrack, fx, param) == pytest.approx(norm)


def test_native_vs_normalized(fxtrack, rpr):
    comp = rpr.RPR_TrackFX_AddByName(fxtrack, "ReaComp", False, -1)
    rpr.RPR_TrackFX_SetParam(fxtrack, comp, 0, 2.0)
    assert rpr.RPR_TrackFX_GetParamNormalized(fxtrack, comp, 0) == 1.0 and _fmt(rpr, fxtrack, comp, 0) == "+6.0"
    rpr.RPR_TrackFX_SetParam(fxtrack, comp, 0, -12.0)  # a dB number into SetParam clamps: garbage
    assert rpr.RPR_TrackFX_GetParam(fxtrack, comp, 0, 0, 0)[0] == 0.0 and _fmt(rpr, fxtrack, comp, 0) == "-inf"
    assert rpr.RPR_TrackFX_FormatParamValue(fxtrack, comp, 13, 0.05, "", 64)[5] == "5.0"
    assert rpr.RPR_TrackFX_GetParamIdent(fxtrack, comp, 22, "", 64)[4] == ":wet"
    assert rpr.RPR_TrackFX_GetParamFromIdent(fxtrack, comp, ":bypass") == 21


def _number(text: str) -> float:
    if text.startswith("-inf"):
        return -math.inf
    return float(re.match(r"[-+]?\d+(\.\d+)?", text).group(0))


def _bisect(rpr, tr, fx, p, target, iters=40):
    lo, hi = 0.0, 1.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        v = _number(rpr.RPR_TrackFX_FormatParamValueNormalized(tr, fx, p, mid, "", 64)[5])
        lo, hi = (mid, hi) if v < target else (lo, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("plugin,param,target,expect", [
    ("ReaEQ", 3, 250.0, eq_freq_norm(250.0)),
    ("ReaEQ", 4, -3.0, 0.25 * 10 ** (-3 / 20)),
    ("ReaComp", 0, -12.0, 10 ** (-12 / 20) / 2),
    ("ReaLimit", 0, -3.0, 57 / 72),
])
def test_bisection_on_formatted_values_converges(fxtrack, rpr, plugin, param, target, expect):
    fx = rpr.RPR_TrackFX_AddByName(fxtrack, plugin, False, -1)
    n = _bisect(rpr, fxtrack, fx, param, target)
    assert n == pytest.approx(expect, abs=2e-3)
    rpr.RPR_TrackFX_SetParamNormalized(fxtrack, fx, param, n)
    assert _number(_fmt(rpr, fxtrack, fx, param)) == pytest.approx(target, abs=0.11)


def test_reaeq_band_config_and_eq_param_api(fxtrack, rpr):
    tr = fxtrack
    eq = rpr.RPR_TrackFX_GetEQ(tr, True)
    assert eq == 0 and rpr.RPR_TrackFX_GetEQ(tr, True) == 0
    get = lambda k: rpr.RPR_TrackFX_GetNamedConfigParm(tr, eq, k, "", 64)  # noqa: E731
    assert [get(f"BANDTYPE{b}")[4] for b in range(5)] == ["0", "8", "8", "1", "4"]
    assert get("BANDENABLED4")[4] == "0" and get("NUMBANDS")[0] == 0
    # EQParam numbering: param 6 = Freq of the 2nd "band" (API type 2)
    assert rpr.RPR_TrackFX_GetEQParam(tr, eq, 6, 0, 0, 0, 0)[:7] == (1, tr, eq, 6, 2, 1, 0)
    assert rpr.RPR_TrackFX_GetEQParam(tr, eq, 15, 0, 0, 0, 0)[4:7] == (-1, 0, 0)
    assert rpr.RPR_TrackFX_SetEQParam(tr, eq, 2, 1, 1, -6.0, False) == 1
    assert _fmt(rpr, tr, eq, 7) == "-6.0"
    assert rpr.RPR_TrackFX_SetEQParam(tr, eq, 6, 0, 0, 0.5, True) == 0  # no band-pass band
    assert rpr.RPR_TrackFX_SetNamedConfigParm(tr, eq, "BANDTYPE0", "8") == 1
    assert rpr.RPR_TrackFX_GetEQParam(tr, eq, 3, 0, 0, 0, 0)[4:7] == (2, 1, 0)
    assert rpr.RPR_TrackFX_SetNamedConfigParm(tr, eq, "BANDENABLED4", "1") == 1
    assert rpr.RPR_TrackFX_GetEQBandEnabled(tr, eq, 0, 0) == 1
    assert rpr.RPR_TrackFX_GetParamName(tr, eq, 0, "", 64)[4] == "Freq-Low Shelf"  # names keep creation type
    assert rpr.RPR_TrackFX_GetParamIdent(tr, eq, 0, "", 64)[4] == "0:_Freq_Low_Shelf"


def test_realimit_named_config_in_db(fxtrack, rpr):
    lim = rpr.RPR_TrackFX_AddByName(fxtrack, "ReaLimit", False, -1)
    assert rpr.RPR_TrackFX_SetNamedConfigParm(fxtrack, lim, "THRESHOLD", "-6.0") == 1
    assert _fmt(rpr, fxtrack, lim, 0) == "-6.0"
    assert rpr.RPR_TrackFX_SetNamedConfigParm(fxtrack, lim, "CEILING", "-1.0") == 1
    assert _fmt(rpr, fxtrack, lim, 1) == "-1.0"
    assert rpr.RPR_TrackFX_SetNamedConfigParm(fxtrack, lim, "TRUEPEAK", "1") == 1
    assert rpr.RPR_TrackFX_GetNamedConfigParm(fxtrack, lim, "TRUEPEAK", "", 8)[4] == "1"
    assert float(rpr.RPR_TrackFX_GetNamedConfigParm(fxtrack, lim, "THRESHOLD", "", 16)[4]) == pytest.approx(-6.0)
    assert rpr.RPR_TrackFX_SetNamedConfigParm(fxtrack, lim, "THRESHOLD", "loud") == 0
