"""Stem mastering's files and documents, shared by ``reamaster stems`` and the server's
``master_stems`` job: where each file goes, writing the stems and the master, ``stems.json``,
and the check that the written stems still sum to the pre-limiter bus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dsp.decide.presets import Delivery
from dsp.decide.stems import StemsResult
from dsp.io.audio_io import WriteResult, atomic_write_text, write_audio

from .report import WrittenAudio, build_report

STEMS_REPORT_FORMAT = "reamaster.stems"
STEMS_REPORT_VERSION = 1
STEM_FORMATS = {32: "wav32f", 24: "wav24"}


def output_paths(folder: Path, names: list[str], *, report: bool) -> dict[str, Path]:
    """Every file a stems run writes, keyed by what it is (stem names, master, stems.json, reports)."""
    paths = {f"stem:{n}": folder / f"{n}.wav" for n in names}
    paths["master"] = folder / "master.wav"
    paths["stems.json"] = folder / "stems.json"
    if report:
        paths["report.json"] = folder / "report.json"
        paths["report.html"] = folder / "report.html"
    return paths


def written_sum_error(stems: dict[str, np.ndarray], bus: np.ndarray, fmt: str, block: int = 1 << 16) -> float:
    """Largest |sum of the stems as written (``fmt``) - bus|: float32 rounding for wav32f,
    24-bit quantisation (and any clipping) for wav24."""
    arrays = list(stems.values())
    worst = 0.0
    for i in range(0, bus.shape[1], block):
        acc = np.zeros((bus.shape[0], min(block, bus.shape[1] - i)))
        for x in arrays:
            seg = x[:, i:i + block].astype(np.float64)
            if fmt == "wav24":
                seg = np.clip(np.rint(seg * 2.0**23), -2.0**23, 2.0**23 - 1) / 2.0**23
            acc += seg
        worst = max(worst, float(np.max(np.abs(acc - bus[:, i:i + block]))))
    return worst


def bus_report(src: str, dst: str, d: Delivery, result: StemsResult, written: WrittenAudio) -> dict[str, Any]:
    """The mastering report of the bus with each stem's decisions. ``written`` is the master's
    :class:`WriteResult` (or an object with its ``fmt``, ``dithered`` and ``clipped_samples``)."""
    report = build_report(src, dst, d, result.as_master_result(), written)
    report["stems"] = {n: {"role": s["role"], "decisions": s["decisions"], "left_alone": s["left_alone"]}
                       for n, s in result.stem_report["stems"].items()}
    return report


def stems_document(named: dict[str, str], d_report: dict[str, Any], result: StemsResult,
                   written: dict[str, WriteResult], master_written: WriteResult, sum_error: float,
                   elapsed_s: float) -> dict[str, Any]:
    """The stems.json document; ``d_report`` is the bus report from :func:`bus_report`."""
    stems = {}
    for n, entry in result.stem_report["stems"].items():
        w = written[n]
        stems[n] = {"input": named[n], "output": w.path, "clipped_samples": w.clipped_samples, **entry}
    return {
        "format": STEMS_REPORT_FORMAT,
        "version": STEMS_REPORT_VERSION,
        "sample_rate": result.before.sample_rate,
        "channels": result.before.channels,
        "duration_s": result.before.duration_s,
        "delivery": d_report["delivery"],
        "master": {"output": master_written.path, "output_format": master_written.fmt,
                   "dithered": master_written.dithered, "clipped_samples": master_written.clipped_samples},
        "stem_format": next(iter(written.values())).fmt if written else None,
        "sum_check": {
            "what": "largest |sum of the written stems - pre-limiter master bus|",
            "max_abs_difference": float(f"{sum_error:.3g}"),
        },
        "stems": stems,
        "balance": result.stem_report["balance"],
        "notes": result.stem_report["notes"],
        "mix_lufs": result.stem_report["mix_lufs"],
        "bus_lufs": result.stem_report["bus_lufs"],
        "bus_chain": result.bus_chain.to_dict(),
        "before": d_report["before"],
        "after": d_report["after"],
        "limiter": result.limiter,
        "loudness_iterations": result.iterations,
        "comparison": d_report["comparison"],
        "processing_seconds": round(elapsed_s, 2),
    }


def write_stems(named: dict[str, str], paths: dict[str, Path], d: Delivery, result: StemsResult, *,
                stem_fmt: str, master_fmt: str, force: bool,
                elapsed_s: float) -> tuple[dict[str, Any], dict[str, Any], dict[str, WriteResult], WriteResult]:
    """Write every processed stem, the master and stems.json into ``paths`` (atomically, never over
    an input); returns ``(stems.json document, bus report, stems written, master written)``."""
    inputs = list(named.values())
    paths["master"].parent.mkdir(exist_ok=True)
    written = {n: write_audio(paths[f"stem:{n}"], x, result.before.sample_rate, fmt=stem_fmt, force=force,
                              protect=inputs)
               for n, x in result.stems.items()}
    master_written = write_audio(paths["master"], result.master, result.before.sample_rate, fmt=master_fmt,
                                 force=force, protect=inputs)
    sum_error = written_sum_error(result.stems, result.bus, stem_fmt)
    report = bus_report(" + ".join(inputs), str(paths["master"]), d, result, master_written)
    doc = stems_document(named, report, result, written, master_written, sum_error, elapsed_s)
    atomic_write_text(paths["stems.json"], json.dumps(doc, indent=2, allow_nan=False) + "\n", force=force,
                      protect=inputs)
    return doc, report, written, master_written
