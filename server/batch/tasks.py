"""What the Dask workers run. Every function takes paths and small dicts and returns small
dicts (or an :class:`~dsp.measure.analysis.Analysis` / :class:`~dsp.decide.album.AlbumPlan` kept on
the cluster between album phases): the audio is read and written by the worker itself.

Each finished track is a *record* (one ledger row) that the worker writes atomically to
``<records_dir>/<key>.json`` *after* the output file is in place, so a record on disk always
vouches for a complete output. Failures of the track (bad input, write refused, any exception)
become failed records, never a failed task; only a dying worker fails a task, and the client then
writes the record.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from typing import Any

import numpy as np
import soundfile as sf
from distributed import get_worker

from dsp.decide.album import album_shape_db, distance_to_target_db, plan_album
from dsp.decide.master import Intent, master
from dsp.decide.presets import delivery
from dsp.errors import FileMissingError, ReaMasterError
from dsp.io.audio_io import atomic_write_text, audio_info, check_audio, read_audio, write_audio
from dsp.measure.analysis import analyze
from dsp.streams import use_one_core

from ..service.mastering import render_and_write

HASH_CHUNK_BYTES = 1 << 20
RECORD_VERSION = 1


def file_hash(path: str) -> str:
    """BLAKE2b-256 of the file's bytes, hex (read in 1 MiB chunks; bounded memory)."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def worker_name() -> str:
    try:
        w = get_worker()
        return f"{w.address} ({w.name})"
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ReaMasterError):
        return exc.code, str(exc)
    if isinstance(exc, MemoryError):
        return "out_of_memory", "the worker ran out of memory on this track; give workers more memory"
    if isinstance(exc, OSError):
        return "io_error", " ".join(f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})".split())
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
    return "internal_error", " ".join(f"{type(exc).__name__}: {exc}{where}".split())


# --- phase 0: scan ------------------------------------------------------------------------------

def scan(spec: dict[str, Any]) -> dict[str, Any]:
    """Hash the input, read its album tag, and say whether the previous output still matches the
    hash the ledger recorded for it (``spec['prior_output_hash']``)."""
    out: dict[str, Any] = {"key": spec["key"], "input_hash": None, "album_tag": None, "output_ok": False,
                           "error_code": None, "error": None}
    try:
        if not os.path.isfile(spec["input"]):
            raise FileMissingError(f"input file not found: {spec['input']}")
        out["input_hash"] = file_hash(spec["input"])
        audio_info(spec["input"])  # refuses unreadable / corrupt headers here, cheaply
        if spec.get("want_tag"):
            out["album_tag"] = _album_tag(spec["input"])
    except Exception as exc:  # noqa: BLE001 - every failure is a ledger row
        out["error_code"], out["error"] = _error(exc)
        return out
    prior = spec.get("prior_output_hash")
    if prior and os.path.isfile(spec["output"]):
        try:
            out["output_ok"] = file_hash(spec["output"]) == prior
        except OSError:
            out["output_ok"] = False
    return out


def _album_tag(path: str) -> str | None:
    try:
        with sf.SoundFile(path) as f:
            tag = getattr(f, "album", None)
    except Exception:  # noqa: BLE001 - no tag is not an error
        return None
    return str(tag).strip() or None


# --- single tracks: the `reamaster master` path ---------------------------------------------------

def _cores(spec: dict[str, Any]) -> None:
    """One core per task when the cluster has a worker per core (see dsp.streams.use_one_core)."""
    if spec.get("one_core"):
        use_one_core(True)


def master_track(spec: dict[str, Any]) -> dict[str, Any]:
    """Master one file exactly as ``reamaster master IN -o OUT [options] --no-session`` does
    (:func:`server.service.mastering.render_and_write`), then write its record."""
    _cores(spec)
    t0, c0 = time.perf_counter(), time.process_time()
    rec = _base_record(spec)
    try:

        d = delivery(spec["preset"], target_lufs=spec["lufs"], ceiling_dbtp=spec["ceiling"])
        _prepare_output(spec["output"])
        result, doc = render_and_write(spec["input"], spec["output"], d, fmt=spec["fmt"], force=True,
                                       choices=spec["choices"])
        cmp_ = doc.get("comparison") or {}
        _fill(rec, result, d.target_lufs, d.ceiling_dbtp,
              cmp_.get("tonal_distance_before_db"), cmp_.get("tonal_distance_after_db"),
              ((result.chain.meta or {}).get("tonal_target") or {}).get("name"))
        rec["output_hash"] = file_hash(spec["output"])
        rec["status"] = "done"
    except Exception as exc:  # noqa: BLE001
        rec["status"] = "failed"
        rec["error_code"], rec["error"] = _error(exc)
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    rec["cpu_seconds"] = round(time.process_time() - c0, 3)
    return finish_record(spec, rec)


# --- albums: analyse (map), decide (reduce), render (map) ---------------------------------------

def analyse_track(spec: dict[str, Any]) -> dict[str, Any]:
    """Phase 1: read and analyse one album track (as ``reamaster album`` does). Returns
    ``{"ok": True, "analysis": Analysis, "seconds": s}`` or ``{"ok": False, code, error}``."""
    _cores(spec)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        x, sr = read_audio(spec["input"])
        check_audio(x, sr, what=spec["input"])
        a = analyze(x, sr, resonances=True)
        return {"ok": True, "analysis": a, "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - c0}
    except Exception as exc:  # noqa: BLE001
        code, msg = _error(exc)
        return {"ok": False, "error_code": code, "error": msg, "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - c0}


def decide_album(names: list[str], analysed: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    """Phase 2 (reduce): the album's decisions from the analyses of the tracks that could be read
    (:func:`dsp.decide.album.plan_album`, the rules of ``reamaster album``). With fewer than two
    such tracks there is no album: the survivor is mastered on its own."""
    ok = [i for i, a in enumerate(analysed) if a["ok"]]
    if len(ok) < 2:
        return {"ok": True, "plan": None, "members": ok}
    try:
        d = delivery(spec["preset"], target_lufs=spec["lufs"], ceiling_dbtp=spec["ceiling"])
        c = spec["choices"]
        intent = Intent(tone_pct=c["tone_pct"], dynamics_pct=c["dynamics_pct"], width_pct=c["width_pct"],
                        intensity=c["intensity"], loudness=c["loudness"])
        plan = plan_album([names[i] for i in ok], [analysed[i]["analysis"] for i in ok], d,
                          style=c.get("style"), intent=intent)
        return {"ok": True, "plan": plan, "members": ok}
    except Exception as exc:  # noqa: BLE001
        code, msg = _error(exc)
        return {"ok": False, "error_code": code, "error": msg, "members": ok}


def render_album_track(spec: dict[str, Any], analysed: dict[str, Any], decided: dict[str, Any],
                       index: int) -> dict[str, Any]:
    """Phase 3: master album track ``index`` with its planned chain and loudness target, write it
    (the same calls as ``reamaster album``) and its record."""
    _cores(spec)
    t0, c0 = time.perf_counter(), time.process_time()
    rec = _base_record(spec)
    try:
        if not analysed["ok"]:
            rec.update(status="failed", error_code=analysed["error_code"], error=analysed["error"])
        elif not decided["ok"]:
            rec.update(status="failed", error_code=decided["error_code"],
                       error=f"the album could not be decided: {decided['error']}")
        elif decided["plan"] is None:
            return master_track(spec)  # the only readable track of its album: mastered on its own
        else:
            plan = decided["plan"]
            i = decided["members"].index(index)
            d_album = delivery(spec["preset"], target_lufs=spec["lufs"], ceiling_dbtp=spec["ceiling"])
            d = plan.delivery_for(i, d_album)
            a = analysed["analysis"]
            x, sr = read_audio(spec["input"])
            check_audio(x, sr, what=spec["input"])
            r = master(x, sr, d, before=a, planned=plan.plans[i])
            _prepare_output(spec["output"])
            write_audio(spec["output"], r.audio, r.after.sample_rate, fmt=spec["fmt"], force=True,
                        protect=[spec["input"]])
            _fill(rec, r, d.target_lufs, d.ceiling_dbtp, distance_to_target_db(a, plan.target),
                  distance_to_target_db(r.after, plan.target), plan.target.name)
            f = np.asarray(plan.target.centers_hz, dtype=float)
            rec["album_shapes"] = json.dumps({"before": album_shape_db(a, f), "after": album_shape_db(r.after, f)})
            rec["output_hash"] = file_hash(spec["output"])
            rec["status"] = "done"
            rec["seconds_analyse"] = round(analysed["seconds"], 3)
    except Exception as exc:  # noqa: BLE001
        rec["status"] = "failed"
        rec["error_code"], rec["error"] = _error(exc)
    rec["seconds"] = round(time.perf_counter() - t0 + analysed.get("seconds", 0.0), 3)
    rec["cpu_seconds"] = round(time.process_time() - c0 + analysed.get("cpu_seconds", 0.0), 3)
    return finish_record(spec, rec)


# --- records ------------------------------------------------------------------------------------

def _base_record(spec: dict[str, Any]) -> dict[str, Any]:
    return {"record_version": RECORD_VERSION, "key": spec["key"], "row": spec["row"], "input": spec["input"],
            "rel": spec["rel"], "input_hash": spec.get("input_hash"), "options_hash": spec["options_hash"],
            "options": spec["options_json"], "album": spec.get("album"), "output": spec["output"],
            "status": None, "error_code": None, "error": None, "output_hash": None, "run_id": spec["run_id"]}


def finish_record(spec: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    """Stamp the record (worker, time) and write it atomically beside the others."""
    rec.setdefault("worker", worker_name())
    rec["finished_at"] = time.time()
    if rec["status"] == "done":
        rec["mastered_at"] = rec["finished_at"]
    atomic_write_text(os.path.join(spec["records_dir"], f"{spec['key']}.json"),
                      json.dumps(rec, allow_nan=False) + "\n", force=True)
    return rec


def _prepare_output(path: str) -> None:
    """Create the output's folder and drop temp files a killed write left for this output."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    for name in os.listdir(folder):
        if name.startswith(f".{base}.") and name.endswith(".tmp") and len(name) == len(base) + 14:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _fill(rec: dict[str, Any], result: Any, target_lufs: float, ceiling_dbtp: float,
          dist_before: float | None, dist_after: float | None, tonal_target: str | None) -> None:
    b, a = result.before, result.after
    rec.update(
        target_lufs=round(float(target_lufs), 3), ceiling_dbtp=float(ceiling_dbtp),
        before_lufs=_r(b.integrated_lufs), after_lufs=_r(a.integrated_lufs),
        before_true_peak_dbtp=_r(b.true_peak_dbtp), after_true_peak_dbtp=_r(a.true_peak_dbtp),
        before_lra_lu=_r(b.lra_lu), after_lra_lu=_r(a.lra_lu), before_plr_db=_r(b.plr_db), after_plr_db=_r(a.plr_db),
        limiter_max_reduction_db=_r(result.limiter.get("max_reduction_db")),
        limiter_active_pct=_r(result.limiter.get("limiting_pct")),
        max_eq_gain_db=max_eq_gain_db(result.chain.to_dict()),
        tonal_distance_before_db=_r(dist_before), tonal_distance_after_db=_r(dist_after), tonal_target=tonal_target,
        chain=json.dumps(result.chain.to_dict(), allow_nan=False),
        duration_s=round(a.duration_s, 3) if hasattr(a, "duration_s") else None,
    )


def max_eq_gain_db(chain: dict[str, Any]) -> float:
    """The largest |gain_db| of any enabled EQ band in the chain (0 when there is no EQ)."""
    best = 0.0
    for st in chain.get("stages", []):
        if not st.get("enabled", True) or "eq" not in st["kind"]:
            continue
        for band in st["params"].get("bands", []):
            if band.get("enabled", True):
                best = max(best, abs(float(band.get("gain_db", 0.0))))
    return round(best, 2)


def _r(v: Any, digits: int = 4) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, digits) if v == v and abs(v) != float("inf") else None
