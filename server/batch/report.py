"""The catalog report: ``OUT/report.html``, self-contained (inline SVG, no scripts, no fetches).

What a catalog manager asks first: how many tracks are within +/-0.2 LU of their target and at or
under the ceiling; the distributions before and after (loudness, true peak, limiter load, tonal
distance to the house style); which tracks to listen to first (heaviest limiting, largest EQ, the
failed files); and per album the spread of loudness and tonal balance.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any

from dsp.decide.album import spread_of_shapes_db
from dsp.io.audio_io import atomic_write_text

from . import ledger

TARGET_TOLERANCE_LU = 0.2  # the same tolerance the master's loudness convergence guarantees
OUTLIERS_SHOWN = 10


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures of a ledger (done and skipped rows carry the figures of their master)."""
    ok = [r for r in rows if r["status"] in ("done", "skipped") and r.get("after_lufs") is not None]
    within = [r for r in ok if abs(r["after_lufs"] - r["target_lufs"]) <= TARGET_TOLERANCE_LU + 1e-9]
    under = [r for r in ok if r["after_true_peak_dbtp"] <= r["ceiling_dbtp"] + 1e-9]
    return {"rows": len(rows), "done": sum(r["status"] == "done" for r in rows),
            "skipped": sum(r["status"] == "skipped" for r in rows), "failed": sum(r["status"] == "failed" for r in rows),
            "mastered": len(ok), "within_target": len(within), "under_ceiling": len(under)}


def albums(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per album: tracks, loudness range before/after (LU), tonal spread before/after (dB)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("album") and r["status"] in ("done", "skipped") and r.get("after_lufs") is not None:
            by.setdefault(r["album"], []).append(r)
    out = []
    for name, rs in sorted(by.items()):
        shapes = [json.loads(r["album_shapes"]) for r in rs if r.get("album_shapes")]
        lb = [r["before_lufs"] for r in rs]
        la = [r["after_lufs"] for r in rs]
        out.append({"album": name, "tracks": len(rs), "loudness_range_before_lu": max(lb) - min(lb),
                    "loudness_range_after_lu": max(la) - min(la),
                    "tonal_spread_before_db": spread_of_shapes_db([s["before"] for s in shapes]) if len(shapes) > 1 else None,
                    "tonal_spread_after_db": spread_of_shapes_db([s["after"] for s in shapes]) if len(shapes) > 1 else None})
    return out


def write_report(out: str, rows: list[dict[str, Any]], opts: Any = None) -> Path:
    dest = Path(out) / ledger.REPORT_NAME
    atomic_write_text(dest, render(rows, source=getattr(opts, "source", "")), force=True)
    return dest


def _hist(before: list[float], after: list[float] | None, *, title: str, unit: str, bins: int = 24) -> str:
    vals = [v for v in before + (after or []) if v is not None and math.isfinite(v)]
    if not vals:
        return f"<p>{html.escape(title)}: no data</p>"
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins

    def counts(xs: list[float]) -> list[int]:
        c = [0] * bins
        for v in xs:
            if v is not None and math.isfinite(v):
                c[min(bins - 1, int((v - lo) / width))] += 1
        return c

    cb, ca = counts(before), counts(after or [])
    top = max(cb + ca) or 1
    W, H, P = 560, 180, 36
    bw = (W - 2 * P) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">',
             f'<text x="{P}" y="14" font-size="12">{html.escape(title)}</text>']
    for series, colour, off in ((cb, "#9aa9bd", 0.0), (ca, "#c0392b", 0.5)):
        if series is ca and after is None:
            continue
        for i, n in enumerate(series):
            if n:
                h = (H - 2 * P) * n / top
                x = P + i * bw + off * bw * (1 if after is not None else 0)
                parts.append(f'<rect x="{x:.1f}" y="{H - P - h:.1f}" width="{bw * (0.5 if after is not None else 1) - 1:.1f}" '
                             f'height="{h:.1f}" fill="{colour}"><title>{lo + i * width:.2f}..{lo + (i + 1) * width:.2f} '
                             f'{unit}: {n}</title></rect>')
    parts.append(f'<line x1="{P}" y1="{H - P}" x2="{W - P}" y2="{H - P}" stroke="#333"/>')
    parts.append(f'<text x="{P}" y="{H - P + 14}" font-size="11">{lo:.1f}</text>')
    parts.append(f'<text x="{W - P}" y="{H - P + 14}" font-size="11" text-anchor="end">{hi:.1f} {html.escape(unit)}</text>')
    parts.append(f'<text x="{W - P}" y="14" font-size="11" text-anchor="end">max {top} per bin'
                 + ('; grey before, red after' if after is not None else '') + '</text></svg>')
    return "".join(parts)


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in cols)
    body = []
    for r in rows:
        cells = []
        for _, k in cols:
            v = r.get(k)
            cells.append(f"<td>{v:.2f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v if v is not None else ''))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(rows: list[dict[str, Any]], *, source: str = "") -> str:
    s = summary(rows)
    ok = [r for r in rows if r["status"] in ("done", "skipped") and r.get("after_lufs") is not None]
    failed = [r for r in rows if r["status"] == "failed"]

    def col(k: str) -> list[float]:
        return [r[k] for r in ok if r.get(k) is not None]

    heavy = sorted(ok, key=lambda r: -(r.get("limiter_max_reduction_db") or 0.0))[:OUTLIERS_SHOWN]
    eq = sorted(ok, key=lambda r: -(r.get("max_eq_gain_db") or 0.0))[:OUTLIERS_SHOWN]
    off = [r for r in ok if abs(r["after_lufs"] - r["target_lufs"]) > TARGET_TOLERANCE_LU + 1e-9
           or r["after_true_peak_dbtp"] > r["ceiling_dbtp"] + 1e-9]
    deltas = [dict(r, loudness_error_lu=r["after_lufs"] - r["target_lufs"]) for r in ok]
    al = albums(rows)

    def pct(n: int) -> str:
        return f"{100.0 * n / s['mastered']:.1f}%" if s["mastered"] else "-"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ReaMaster catalog report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:left}th{background:#f3f3f3}.big{font-size:20px}.grid{display:flex;"
        "flex-wrap:wrap;gap:12px}</style></head><body>",
        "<h1>Catalog report</h1>",
        f"<p>{html.escape(str(source))} - {s['rows']} rows, written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
        " The ledger with every figure is <code>ledger.parquet</code> beside this page.</p>",
        f"<p class='big'>{s['within_target']} of {s['mastered']} mastered tracks ({pct(s['within_target'])}) are within "
        f"&plusmn;{TARGET_TOLERANCE_LU} LU of their target; {s['under_ceiling']} ({pct(s['under_ceiling'])}) are at or "
        f"under their true-peak ceiling. {s['failed']} failed.</p>",
        f"<p>done this run {s['done']}, unchanged and skipped {s['skipped']}, failed {s['failed']}.</p>",
        "<h2>Distributions</h2><div class='grid'>",
        _hist(col("before_lufs"), col("after_lufs"), title="integrated loudness", unit="LUFS"),
        _hist([d["loudness_error_lu"] for d in deltas], None, title="after minus target", unit="LU"),
        _hist(col("before_true_peak_dbtp"), col("after_true_peak_dbtp"), title="true peak", unit="dBTP"),
        _hist(col("limiter_max_reduction_db"), None, title="limiter load (max gain reduction)", unit="dB"),
        _hist(col("tonal_distance_before_db"), col("tonal_distance_after_db"),
              title="tonal distance to the house style / album target", unit="dB"),
        _hist(col("before_plr_db"), col("after_plr_db"), title="PLR", unit="dB"),
        "</div>",
        "<h2>Listen to these first</h2><h3>Failed files</h3>",
        _table(failed, [("row", "row"), ("file", "rel"), ("code", "error_code"), ("what happened", "error")]),
        "<h3>Outside the target or over the ceiling</h3>",
        _table(off, [("file", "rel"), ("target LUFS", "target_lufs"), ("after LUFS", "after_lufs"),
                     ("ceiling dBTP", "ceiling_dbtp"), ("true peak dBTP", "after_true_peak_dbtp")]),
        "<h3>Heaviest limiting</h3>",
        _table(heavy, [("file", "rel"), ("max reduction dB", "limiter_max_reduction_db"),
                       ("limiting % of time", "limiter_active_pct"), ("PLR before", "before_plr_db"),
                       ("PLR after", "after_plr_db")]),
        "<h3>Largest EQ</h3>",
        _table(eq, [("file", "rel"), ("largest band |gain| dB", "max_eq_gain_db"),
                    ("tonal distance before dB", "tonal_distance_before_db"),
                    ("after dB", "tonal_distance_after_db"), ("target", "tonal_target")]),
    ]
    if al:
        parts += ["<h2>Albums</h2>", _table(al, [
            ("album", "album"), ("tracks", "tracks"), ("loudness range before LU", "loudness_range_before_lu"),
            ("after LU", "loudness_range_after_lu"), ("tonal spread before dB", "tonal_spread_before_db"),
            ("after dB", "tonal_spread_after_db")])]
    parts.append("<h2>Every track</h2>")
    parts.append(_table(rows, [("row", "row"), ("file", "rel"), ("status", "status"), ("album", "album"),
                               ("before LUFS", "before_lufs"), ("after LUFS", "after_lufs"),
                               ("true peak dBTP", "after_true_peak_dbtp"), ("LRA LU", "after_lra_lu"),
                               ("limiter dB", "limiter_max_reduction_db"), ("seconds", "seconds"),
                               ("worker", "worker"), ("error", "error")]))
    parts.append("</body></html>\n")
    return "\n".join(parts)
