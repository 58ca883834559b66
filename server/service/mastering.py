"""The mastering decision path shared by the command line and the server's workers.

``decide_and_master`` turns the user's choices (style or references, amounts, codec safety) into a
master; ``render_and_write`` reads, masters, writes the audio and the optional chain and report
files; ``album_document`` is the album report. Progress goes to a ``progress(stage, fraction)``
callback (a bar on the command line, progress events on the server); returning False cancels.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, cast

import numpy as np

from dsp.decide.album import AlbumResult
from dsp.decide.codec_safe import codec_safe_master
from dsp.decide.master import (
    Intent,
    MasterResult,
    ModelSeries,
    ProgressFn,
    master,
    master_stream,
    plan_chain,
    style_target,
)
from dsp.decide.presets import Delivery
from dsp.decide.preview import PreviewWindow, check_preview_seconds, loudest_window
from dsp.decide.reference import master_to_reference, reference_target
from dsp.errors import CancelledError, ParameterError
from dsp.io.audio_io import (
    AudioSource,
    AudioWriter,
    WriteResult,
    atomic_write_text,
    channel_mask,
    check_audio,
    output_format_for,
    read_audio,
    write_audio,
)
from dsp.measure.analysis import Analysis, analyze, analyze_source
from dsp.process.chain import Chain, Stage
from dsp.process.limiter import LimiterParams

from .report import build_report, html_path_for, render_html

#: the largest limiter-model series gathered during the analysis read (32 MB: 44 minutes at 48 kHz)
SERIES_ON_READ_MAX_BYTES = 32 << 20
#: what `reamaster master` decides with no options (the demo and `reamaster batch` use the same)
DEFAULT_CHOICES: dict[str, Any] = {"style": "auto", "references": None, "tone_pct": 100.0, "dynamics_pct": 100.0,
                                   "width_pct": 100.0, "intensity": "balanced", "loudness": True,
                                   "codec_safe": False, "mono_as": "dual"}
_ALBUM_KEYS = ("integrated_lufs", "true_peak_dbtp", "lra_lu", "plr_db")


def _step(progress: ProgressFn | None, stage: str, fraction: float) -> None:
    if progress is not None and progress(stage, fraction) is False:
        raise CancelledError(f"cancelled while {stage}")


def render_and_write(src: str, dst: str, d: Delivery, *, fmt: str, force: bool, progress: ProgressFn | None = None,
                     chain: Chain | None = None, planned: Chain | None = None, save_chain: str | None = None,
                     report: str | None = None,
                     choices: dict[str, Any] | None = None) -> tuple[MasterResult, dict[str, Any]]:
    """Read, master (rendering ``chain`` as is, or converging ``planned`` / a new plan made from
    ``choices``: style, references and amounts), write the audio and the optional chain and report
    files; returns the result and the report.

    The audio streams (bounded memory at any length: one measuring read, then passes that read,
    process and write block by block) except with references or codec-safe checks, which hold the
    whole signal (their refinement renders and encodes it as a whole)."""

    if choices and (choices.get("references") or choices.get("codec_safe")):
        result, written = _master_in_memory(src, dst, d, fmt=fmt, force=force, progress=progress, chain=chain,
                                            planned=planned, choices=choices)
    else:
        result, written = master_file(src, dst, d, fmt=fmt, force=force, progress=progress, chain=chain,
                                      planned=planned, choices=choices)
    doc = build_report(src, dst, d, result, written)
    write_side_files(src, result, doc, save_chain=save_chain, report=report, force=force)
    return result, doc


def write_side_files(src: str, result: MasterResult, doc: dict[str, Any], *, save_chain: str | None,
                     report: str | None, force: bool) -> None:
    """The optional chain JSON, report JSON and its HTML page of a master of ``src``."""
    if save_chain:
        atomic_write_text(save_chain, result.chain.to_json(), force=force, protect=[src])
    if report:
        atomic_write_text(report, json.dumps(doc, indent=2, allow_nan=False) + "\n", force=force, protect=[src])
        atomic_write_text(html_path_for(report), render_html(doc), force=force, protect=[src])


def _master_in_memory(src: str, dst: str, d: Delivery, *, fmt: str, force: bool, progress: ProgressFn | None,
                      chain: Chain | None, planned: Chain | None,
                      choices: dict[str, Any] | None) -> tuple[MasterResult, WriteResult]:
    _step(progress, "reading", 0.0)
    x, sr = read_audio(src, mono_as=_mono_as(choices))
    check_audio(x, sr, what=src)
    _step(progress, "analysing", 0.0)
    result = decide_and_master(x, sr, d, chain=chain, planned=planned, choices=choices, progress=progress)
    _step(progress, "writing", 1.0)
    return result, write_audio(dst, result.audio, sr, fmt=fmt, force=force, protect=[src],
                               channel_mask=_layout(src, result.audio.shape[0]))


def output_format(path: str, bits: int | None, d: Delivery) -> str:
    """The format ``path`` is written in: ``bits`` when given, else the preset's word length (a
    16-bit preset such as cd writes 16-bit WAV/FLAC). Every path that writes a master uses this."""
    fmt = output_format_for(path, bits)
    if bits is None and d.bit_depth == 16 and fmt in ("wav24", "flac24"):
        fmt = output_format_for(path, 16)
    return fmt


def _mono_as(choices: dict[str, Any] | None) -> str:
    """How a mono input is mastered: "dual" (two identical channels, as heard) or "single"."""
    return str((choices or {}).get("mono_as", "dual"))


def _layout(src: str, channels: int) -> int | None:
    """The input's speaker layout, kept for outputs of more than two channels (5.1 and others)."""
    return channel_mask(src) if channels > 2 else None


def master_file(src: str, dst: str, d: Delivery, *, fmt: str, force: bool, progress: ProgressFn | None = None,
                chain: Chain | None = None, planned: Chain | None = None,
                choices: dict[str, Any] | None = None) -> tuple[MasterResult, WriteResult]:
    """The streaming master of a file: the same decisions as :func:`decide_and_master` (style and
    amounts from ``choices``; no references or codec checks), peak memory independent of length.
    Returns the result (``audio`` empty: it is in the file) and the WriteResult."""
    choices = with_defaults(choices)
    source = AudioSource(src, mono_as=_mono_as(choices))
    _step(progress, "analysing", 0.0)
    # the limiter's model of the input, gathered on the same read: when the plan puts nothing
    # before the limiter, the master needs no pass of its own for it. Not for long files: held
    # beside the analysis it would raise the peak memory (86 MB more at two hours); they pay the pass.
    series = (ModelSeries(source.sample_rate, source.frames)
              if chain is None and ModelSeries.nbytes_for(source.frames) <= SERIES_ON_READ_MAX_BYTES else None)
    before = analyze_source(source, resonances=True, taps=[series.feed] if series is not None else [],
                            progress=(lambda f: progress("analysing", f)) if progress is not None else None)
    intent = _intent(before, choices) if chain is None and planned is None else None

    def sink() -> AudioWriter:
        return AudioWriter(dst, source.sample_rate, source.channels, fmt=fmt, force=force, protect=[src],
                           channel_mask=_layout(src, source.channels))

    result, written = master_stream(source.blocks, source.sample_rate, source.channels, source.frames, d, sink,
                                    before=before, chain=chain, planned=planned, intent=intent, progress=progress,
                                    spill_dir=os.path.dirname(os.path.abspath(dst)), input_series=series)
    _step(progress, "writing", 1.0)
    return result, written


def _amounts(choices: dict[str, Any]) -> dict[str, Any]:
    return dict(tone_pct=choices.get("tone_pct", 100.0), dynamics_pct=choices.get("dynamics_pct", 100.0),
                width_pct=choices.get("width_pct", 100.0), intensity=choices.get("intensity", "balanced"),
                loudness=choices.get("loudness", True))


def with_defaults(choices: dict[str, Any] | None) -> dict[str, Any]:
    """``choices`` with what is missing taken from DEFAULT_CHOICES: a client that sends none gets
    the decisions `reamaster master` makes with no options, never a different planner."""
    return {**DEFAULT_CHOICES, **(choices or {})}


def suggest_chain(before: Analysis, d: Delivery, choices: dict[str, Any] | None) -> Chain:
    """The chain a master with these ``choices`` would start from (style and amounts; references
    are not matched here), for applying to native FX. ``before`` measured with resonances, as the
    master measures it."""
    return plan_chain(before, d, _intent(before, with_defaults(choices)))


def _intent(before: Analysis, choices: dict[str, Any]) -> Intent:
    """The user's style and amounts, with the style's target for this mix."""
    target, info = style_target(before, choices.get("style"))
    return Intent(**_amounts(choices), target=target, style_info=info)


#: fades at the preview's ends (no click where the excerpt starts and stops), s
PREVIEW_FADE_S = 0.02
#: the stretch read before the preview starts, so filters and the compressor have settled, s
PREVIEW_PREROLL_S = 1.0


def preview_file(src: str, dst: str, d: Delivery, *, seconds: float, fmt: str, force: bool,
                 chain: Chain | None = None,
                 choices: dict[str, Any] | None = None) -> tuple[MasterResult, WriteResult, PreviewWindow]:
    """Master the loudest ``seconds`` of ``src`` into ``dst`` in a second or two: the chain decided
    from the whole file (one block-wise analysis read), the stretch read by seeking and mastered
    to its loudness relative to the whole song (see :mod:`dsp.decide.preview`)."""
    choices = choices or {}
    if choices.get("references") or choices.get("codec_safe"):
        raise ParameterError("--preview works with styles and amounts; reference mode and --codec-safe "
                             "need the full master")
    seconds = check_preview_seconds(seconds)  # before the analysis read, not after it
    source = AudioSource(src, mono_as=_mono_as(choices))
    before = analyze_source(source, resonances=True)
    window = loudest_window(before, seconds)
    sr = source.sample_rate
    start = int(round(window.start_s * sr))
    pre = min(start, int(PREVIEW_PREROLL_S * sr))
    x = source.section(start - pre, int(round((window.end_s - window.start_s) * sr)) + pre)
    base = before.integrated_lufs if choices.get("loudness", True) is False else d.target_lufs
    section_d = dataclasses.replace(d, target_lufs=min(base + window.offset_lu, d.ceiling_dbtp - 1.0))
    if chain is not None:
        result = master(x, sr, section_d, chain=chain)
    else:
        result = master(x, sr, section_d, planned=suggest_chain(before, d, choices))
    y = np.array(result.audio[:, pre:], dtype=np.float32)
    fade = min(int(PREVIEW_FADE_S * sr), y.shape[1] // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        y[:, :fade] *= ramp
        y[:, y.shape[1] - fade:] *= ramp[::-1]
    written = write_audio(dst, y, sr, fmt=fmt, force=force, protect=[src], channel_mask=_layout(src, y.shape[0]))
    return dataclasses.replace(result, audio=y), written, window


def preview_document(window: PreviewWindow) -> dict[str, float]:
    """The report's ``preview`` part: where the stretch lies and how loud it stands in the mix."""
    return {"start_s": round(window.start_s, 2), "end_s": round(window.end_s, 2),
            "section_lufs_in_mix": round(window.section_lufs, 2), "offset_from_song_lu": round(window.offset_lu, 2)}


def decide_and_master(x: np.ndarray, sr: int, d: Delivery, *, chain: Chain | None = None, planned: Chain | None = None,
                      choices: dict[str, Any] | None = None, progress: ProgressFn | None = None) -> MasterResult:
    """The decision path shared by the CLI and the server: style or references, amounts, master."""
    if chain is not None or planned is not None:
        return master(x, sr, d, chain=chain, planned=planned, progress=progress)
    choices = with_defaults(choices)
    result = _decide(x, sr, d, choices, progress)
    return make_codec_safe(x, sr, d, result, progress) if choices.get("codec_safe") else result


def make_codec_safe(x: np.ndarray, sr: int, d: Delivery, result: MasterResult,
                    progress: ProgressFn | None = None) -> MasterResult:
    """Lower the limiter's ceiling until MP3/Vorbis/Opus decodes stay <= -0.5 dBTP; keep the checks."""
    results = {d.ceiling_dbtp: result}

    def render(ceiling: float) -> np.ndarray:
        if ceiling not in results:
            lim = cast("Stage", result.chain.find("limiter"))  # every master ends in a limiter
            chain = result.chain.replace_stage("limiter", dataclasses.replace(
                lim, params=dataclasses.replace(cast("LimiterParams", lim.params), ceiling_dbtp=ceiling),
                why=lim.why + f"; ceiling lowered to {ceiling:.2f} dBTP so lossy decodes stay under -0.5 dBTP"))
            results[ceiling] = master(x, sr, dataclasses.replace(d, ceiling_dbtp=ceiling), planned=chain,
                                      before=result.before, progress=progress)
        return results[ceiling].audio

    _, used, checks = codec_safe_master(render, sr, d.ceiling_dbtp)
    return dataclasses.replace(results[used], codec_checks=tuple(checks))


def _decide(x: np.ndarray, sr: int, d: Delivery, choices: dict[str, Any], progress: ProgressFn | None) -> MasterResult:
    a = analyze(x, sr, resonances=True)
    amounts = _amounts(choices)
    if choices.get("references"):
        refs = []
        for p in choices["references"]:
            rx, rsr = read_audio(p)
            refs.append(analyze(rx, rsr))
        ref_target = reference_target(refs, tuple(Path(p).name for p in choices["references"]))
        result, _ = master_to_reference(x, sr, ref_target, d, tone_pct=amounts["tone_pct"],
                                        match_loudness=amounts["loudness"], before=a, progress=progress,
                                        intent=Intent(**{**amounts, "loudness": True}))
        return result
    target, info = style_target(a, choices.get("style"))
    return master(x, sr, d, before=a, progress=progress, intent=Intent(**amounts, target=target, style_info=info))


def album_document(d: Delivery, result: AlbumResult, inputs: list[str], outputs: list[str],
                   written: list[WriteResult]) -> dict[str, Any]:
    """The album report (``album.json``): delivery, album loudness and tonal spread before/after,
    and per track its target, before/after, tonal distance, limiter and chain.
    ``written``: the WriteResults in track order.
    (Shared with ``reamaster album``, whose document this is.)"""
    rows = []
    for t, dst, src, w in zip(result.tracks, outputs, inputs, written, strict=True):
        before, after = t.result.before.to_dict(), t.result.after.to_dict()
        rows.append({"name": t.name, "input": src, "output": dst, "output_format": w.fmt,
                     "target_lufs": round(t.target_lufs, 2),
                     "before": {k: before[k] for k in _ALBUM_KEYS},
                     "after": {k: after[k] for k in _ALBUM_KEYS},
                     "tonal_distance_to_album_target_db": [round(t.distance_before_db, 2),
                                                           round(t.distance_after_db, 2)],
                     "limiter": {k: v for k, v in t.result.limiter.items() if k != "trace_db"},
                     "chain": t.result.chain.to_dict()})
    spread = result.spread_db()
    return {"format": "reamaster.album", "version": 1,
            "delivery": {"preset": d.name, "loudest_track_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp},
            "album_lufs": {"before": round(result.album_lufs_before, 2), "after": round(result.album_lufs_after, 2)},
            "tonal_spread_db": {"before": round(spread[0], 2), "after": round(spread[1], 2)},
            "album_target": result.target.name, "style": result.style, "tracks": rows}


