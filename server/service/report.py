"""The mastering report: a JSON document and a self-contained HTML page drawn from it.

The JSON carries every measurement before and after, the chain with the reason for each stage,
what was left alone and why, the limiter's gain-reduction trace, and a loudness-matched check
("better, or only louder?"). The HTML page needs nothing but a browser: plots are inline SVG.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

if TYPE_CHECKING:
    from dsp.decide.master import MasterResult
    from dsp.decide.presets import Delivery

REPORT_FORMAT = "reamaster.report"
REPORT_VERSION = 1


class WrittenAudio(Protocol):
    """What the report needs of the written file: a :class:`dsp.io.audio_io.WriteResult`, or the
    server's stand-in when the audio goes back over the wire instead."""

    @property
    def fmt(self) -> str: ...
    @property
    def dithered(self) -> bool: ...
    @property
    def clipped_samples(self) -> int: ...



@overload
def html_path_for(report: str) -> str: ...
@overload
def html_path_for(report: None) -> None: ...
def html_path_for(report: str | None) -> str | None:
    """The HTML page written beside a JSON report: ``r.json`` -> ``r.html``."""
    if report is None:
        return None
    p = Path(report)
    return str(p.with_suffix(".html") if p.suffix.lower() != ".html" else p.with_suffix(".report.html"))


def tonal_distance_db(analysis: dict[str, Any], target_db: list[float]) -> float | None:
    """Mean |band level - target| over 40 Hz-16 kHz with the level removed (loudness-independent)."""
    f = analysis["spectrum"]["centers_hz"]
    lv = analysis["spectrum"]["level_db"]
    pairs = [(lv[i] - target_db[i]) for i in range(min(len(f), len(target_db), len(lv)))
             if 40 <= f[i] <= 16000 and lv[i] is not None]
    if not pairs:
        return None
    mean = sum(pairs) / len(pairs)
    distance_db: float = sum(abs(p - mean) for p in pairs) / len(pairs)
    return distance_db


DEEP_LIMITING_DB = 6.0  # peak reduction beyond this is heard as squashing on most material
ACTIVE_LIMITING_PCT = 40.0  # limiting more than this share of the time is no longer peak control
LOST_LRA_LU = 1.0  # more loudness range lost than this is counted against the master
LOST_WIDTH_DB = 0.5  # side/mid lost beyond this is counted against the master
REUSED_CHAIN_LU = 0.5  # a chain landing this far from the loudness it was made for was made for another song


def side_mid_db(analysis: dict[str, Any]) -> float | None:
    """Level-weighted side/mid power ratio over 40 Hz-16 kHz from an analysis dict, dB."""
    sp = analysis.get("spectrum") or {}
    f, lv, sm = sp.get("centers_hz") or [], sp.get("level_db") or [], sp.get("side_mid_ratio_db") or []
    num = den = 0.0
    for fi, li, si in zip(f, lv, sm):
        if 40 <= fi <= 16000 and li is not None and si is not None:
            w = 10 ** (li / 10)
            num += w * 10 ** (max(min(si, 40.0), -120.0) / 10)
            den += w
    return 10 * math.log10(max(num / den, 1e-12)) if den > 0 else None


def loudness_matched_check(before: dict[str, Any], after: dict[str, Any], chain: dict[str, Any]) -> dict[str, Any]:
    """Compare before and after at equal loudness: tonal distance to the target, and what the
    master costs in dynamics (LRA, PLR) and width (side/mid). The verdict says "better" only
    when the tone got closer, and names every loss beside it."""
    target = (chain.get("meta") or {}).get("tonal_target") or {}
    diff = round(after["integrated_lufs"] - before["integrated_lufs"], 2)
    out: dict[str, Any] = {"loudness_difference_lu": diff}
    head = None
    if target.get("level_db"):
        d0 = tonal_distance_db(before, target["level_db"])
        d1 = tonal_distance_db(after, target["level_db"])
        if d0 is not None and d1 is not None:
            name = target.get("name", "target")
            out.update(target=name, tonal_distance_before_db=round(d0, 2), tonal_distance_after_db=round(d1, 2))
            if d1 < d0 - 0.2:
                head = (f"better, not only louder: at equal loudness the tonal balance is {d0 - d1:.1f} dB closer to "
                        f"the {name} ({d0:.1f} -> {d1:.1f} dB)")
            elif d1 > d0 + 0.2:
                head = f"tonally further from the {name} ({d0:.1f} -> {d1:.1f} dB): check the EQ amount"
            else:
                change = ("only louder" if diff > 0.5 else "only quieter" if diff < -0.5 else "unchanged in level")
                head = f"{change}: the tonal balance is unchanged at equal loudness ({d0:.1f} -> {d1:.1f} dB from the {name})"
    out["plr_change_db"] = round(after["plr_db"] - before["plr_db"], 1)
    out["lra_change_lu"] = round(after["lra_lu"] - before["lra_lu"], 1)
    w0, w1 = side_mid_db(before), side_mid_db(after)
    if w0 is not None and w1 is not None:
        out["side_mid_change_db"] = round(w1 - w0, 2)
    losses = []
    if out["lra_change_lu"] < -LOST_LRA_LU:
        losses.append(f"loses {-out['lra_change_lu']:.1f} LU of loudness range")
    if out.get("side_mid_change_db", 0.0) < -LOST_WIDTH_DB:
        losses.append(f"is {-out['side_mid_change_db']:.1f} dB narrower (side against mid)")
    if out["plr_change_db"] < -3.0:
        losses.append(f"has {-out['plr_change_db']:.1f} dB less peak-to-loudness ratio")
    out["losses"] = losses
    if head is None:
        head = "no tonal target to compare with"
    out["verdict"] = head + ("; but it " + ", ".join(losses) if losses else "")
    return out


def stop_warnings(result: MasterResult, d: Delivery, chain: dict[str, Any]) -> list[str]:
    """When to stop: deep or constant limiting, an input that looks mastered, a reference far off,
    a chain reused from another song (it does not land on the loudness it was made for)."""
    warnings = list((chain.get("meta") or {}).get("warnings", []))
    lim = result.limiter or {}
    depth, active = float(lim.get("max_reduction_db", 0.0) or 0.0), float(lim.get("limiting_pct", 0.0) or 0.0)
    if depth > DEEP_LIMITING_DB:
        warnings.append(f"the limiter takes up to {depth:.1f} dB off the peaks (over {DEEP_LIMITING_DB:g} dB is heard as "
                        "squashing): a quieter target, or a mix with tamer peaks, would sound better")
    if active > ACTIVE_LIMITING_PCT:
        warnings.append(f"the limiter is working {active:.0f}% of the time (over {ACTIVE_LIMITING_PCT:g}%): it is "
                        "compressing, not catching peaks; consider a quieter target")
    made_for = (chain.get("meta") or {}).get("target_lufs")
    landed = result.after.integrated_lufs
    if made_for is not None and math.isfinite(landed) and abs(landed - float(made_for)) > REUSED_CHAIN_LU:
        warnings.append(f"this chain lands at {landed:.1f} LUFS, not the {float(made_for):g} LUFS it was made for: it "
                        "was decided for another song; master this one afresh")
    elif math.isfinite(landed) and abs(landed - d.target_lufs) > REUSED_CHAIN_LU and (chain.get("meta") or {}).get(
            "intent", {}).get("loudness", True):
        warnings.append(f"the master lands at {landed:.1f} LUFS, not the {d.target_lufs:g} LUFS asked for")
    return warnings


def build_report(src: str, dst: str, d: Delivery, result: MasterResult, written: WrittenAudio) -> dict[str, Any]:
    """The JSON report of a mastering run."""
    # numpy loads only here: REAPER's side imports this module
    from dsp.decide.platforms import platform_preview

    before = result.before.to_dict(series=True)
    after = result.after.to_dict(series=True)
    chain = result.chain.to_dict()
    platforms = [p.to_dict() for p in platform_preview(result.after.integrated_lufs, result.after.true_peak_dbtp)]
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "input": str(src),
        "output": str(dst),
        "output_format": written.fmt,
        "dithered": written.dithered,
        "clipped_samples": written.clipped_samples,
        "delivery": {"preset": d.name, "target_lufs": d.target_lufs, "ceiling_dbtp": d.ceiling_dbtp,
                     "note": d.note},
        "before": before,
        "after": after,
        "limiter": result.limiter,
        "loudness_iterations": result.iterations,
        "chain": chain,
        "left_alone": list((chain.get("meta") or {}).get("left_alone", [])),
        "comparison": loudness_matched_check(before, after, chain),
        "assessment": (chain.get("meta") or {}).get("assessment", {}),
        "warnings": stop_warnings(result, d, chain),
        "platforms": platforms,
        "codecs": [c.to_dict() for c in getattr(result, "codec_checks", ())],
    }


# --- HTML ---------------------------------------------------------------------------------------

_W, _H, _PAD = 720, 260, 44


def _svg_plot(series: list[tuple[str, str, list[tuple[float, float]]]], *, x_log: bool, x_label: str,
              y_label: str, title: str, y_range: tuple[float, float] | None = None) -> str:
    """A small line chart as inline SVG. ``series``: (name, colour, [(x, y), ...])."""
    pts = [(x, y) for _, _, s in series for x, y in s if y is not None and math.isfinite(y) and (x > 0 or not x_log)]
    if not pts:
        return f"<p>{html.escape(title)}: no data.</p>"
    fx = (lambda v: math.log10(v)) if x_log else (lambda v: v)
    x0, x1 = min(fx(x) for x, _ in pts), max(fx(x) for x, _ in pts)
    y0, y1 = y_range or (min(y for _, y in pts), max(y for _, y in pts))
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x: float) -> float:
        return _PAD + (fx(x) - x0) / (x1 - x0) * (_W - 2 * _PAD)

    def py(y: float) -> float:
        y = min(max(y, y0), y1)
        return _H - _PAD + (y - y0) / (y1 - y0) * -(_H - 2 * _PAD)

    parts = [f'<svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" aria-label="{html.escape(title)}">',
             f'<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" fill="#fafafa" stroke="#ccc"/>']
    digits = 0 if y1 - y0 >= 8 else 1
    for k in range(5):  # y grid
        yv = y0 + (y1 - y0) * k / 4
        parts.append(f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{_PAD - 6}" y="{py(yv) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{yv + 0.0:.{digits}f}</text>')
    ticks = [31.5, 63, 125, 250, 500, 1000, 2000, 4000, 8000, 16000] if x_log else \
        [x0 + (x1 - x0) * k / 5 for k in range(6)]
    for t in ticks:
        if (fx(t) if x_log else t) < x0 - 1e-9 or (fx(t) if x_log else t) > x1 + 1e-9:
            continue
        lab = (f"{t / 1000:g}k" if t >= 1000 else f"{t:g}") if x_log else f"{t:.0f}"
        parts.append(f'<text x="{px(t):.1f}" y="{_H - _PAD + 14}" font-size="10" text-anchor="middle">{lab}</text>')
    for name, colour, s in series:
        p = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s if y is not None and math.isfinite(y)
                     and (x > 0 or not x_log))
        if p:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{p}"/>')
    for k, (name, colour, _) in enumerate(series):
        parts.append(f'<rect x="{_PAD + 8 + 150 * k}" y="{_PAD - 16}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{_PAD + 22 + 150 * k}" y="{_PAD - 7}" font-size="11">{html.escape(name)}</text>')
    parts.append(f'<text x="{_W / 2}" y="{_H - 6}" font-size="11" text-anchor="middle">{html.escape(x_label)}</text>'
                 f'<text x="12" y="{_H / 2}" font-size="11" transform="rotate(-90 12 {_H / 2})" '
                 f'text-anchor="middle">{html.escape(y_label)}</text></svg>')
    return "".join(parts)


def _shape(analysis: dict[str, Any]) -> list[tuple[float, float]]:
    f, lv = analysis["spectrum"]["centers_hz"], analysis["spectrum"]["level_db"]
    sel = [v for x, v in zip(f, lv) if 40 <= x <= 16000 and v is not None]
    mean = sum(sel) / len(sel) if sel else 0.0
    return [(x, v - mean) for x, v in zip(f, lv) if v is not None and v > -150]


def _series(values: list[float | None], hop_s: float) -> list[tuple[float, float]]:
    return [(i * hop_s, v) for i, v in enumerate(values) if v is not None and v > -70]


def _platform_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{html.escape(r['platform'])}</td><td>{html.escape(r['mode'])}</td>"
        f"<td>{r['gain_db']:+.1f} dB</td><td>{r['playback_lufs']:.1f} LUFS</td>"
        f"<td>{html.escape(r.get('note', ''))}</td></tr>" for r in rows)
    return ("<table><tr><th>platform</th><th>mode</th><th>playback gain</th><th>plays at</th><th></th></tr>"
            f"{body}</table>")


def _codec_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>Codec check not run (use <code>--codec-safe</code>).</p>"
    body = "".join(f"<tr><td>{html.escape(r['codec'])}</td><td>{r['bitrate_kbps']:.0f} kbps</td>"
                   f"<td>{r['true_peak_dbtp']:+.2f} dBTP</td><td>{r['overshoot_db']:+.2f} dB</td></tr>" for r in rows)
    return ("<h3>After lossy encoding</h3><table><tr><th>codec</th><th>bitrate</th><th>decoded true peak</th>"
            f"<th>overshoot</th></tr>{body}</table>")


def render_html(report: dict[str, Any]) -> str:
    b, a = report["before"], report["after"]
    d = report["delivery"]
    target = (report["chain"].get("meta") or {}).get("tonal_target") or {}
    spectrum_series = [("before", "#999999", _shape(b)), ("after", "#d2452b", _shape(a))]
    if target.get("level_db"):
        f = a["spectrum"]["centers_hz"]
        t = target["level_db"]
        n = min(len(f), len(t))
        sel = [t[i] for i in range(n) if 40 <= f[i] <= 16000]
        m = sum(sel) / len(sel) if sel else 0.0
        spectrum_series.append((target.get("name", "target"), "#2b6cd2", [(f[i], t[i] - m) for i in range(n)]))
    spec_svg = _svg_plot(spectrum_series, x_log=True, x_label="frequency (Hz)", y_label="dB (level removed)",
                         title="Long-term 1/3-octave spectrum")
    ls_b, ls_a = b.get("loudness_series", {}), a.get("loudness_series", {})
    loud_svg = _svg_plot([("before", "#999999", _series(ls_b.get("short_term_lufs", []), ls_b.get("hop_s", 0.1))),
                          ("after", "#d2452b", _series(ls_a.get("short_term_lufs", []), ls_a.get("hop_s", 0.1)))],
                         x_log=False, x_label="time (s)", y_label="short-term LUFS", title="Loudness over time")
    lim = report.get("limiter") or {}
    gr_svg = _svg_plot([("limiter gain reduction", "#7a3fb0",
                         [(i * lim.get("trace_hop_s", 0.1), -v) for i, v in enumerate(lim.get("trace_db", []))])],
                       x_log=False, x_label="time (s)", y_label="dB", title="Limiter gain reduction",
                       y_range=(min([-1.0] + [-v for v in lim.get("trace_db", [])]), 0.0))

    def row(label: str, key: str, unit: str, digits: int = 1) -> str:
        return (f"<tr><td>{label}</td><td>{b[key]:.{digits}f} {unit}</td><td>{a[key]:.{digits}f} {unit}</td></tr>")

    stages = "".join(
        f"<li><b>{html.escape(s.get('label') or s['kind'])}</b> "
        f"<span class=k>({html.escape(s['kind'])})</span>: {html.escape(s.get('why') or '')}</li>"
        for s in report["chain"]["stages"] if s.get("enabled", True))
    alone = "".join(f"<li>{html.escape(x)}</li>" for x in report.get("left_alone", []))
    comp = report.get("comparison") or {}
    verdict = html.escape(comp.get("verdict", ""))
    warn = "".join(f"<li>{html.escape(x)}</li>" for x in report.get("warnings", []))
    warn_html = f"<h2>Before you ship it</h2><ul class=w>{warn}</ul>" if warn else ""
    summary = html.escape((report.get("assessment") or {}).get("summary", ""))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ReaMaster report: {html.escape(str(report['input']))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:780px;margin:24px auto;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:3px 12px;border-bottom:1px solid #eee;text-align:left}}
.k{{color:#888}}.v{{background:#f3f7ee;padding:8px 12px;border-left:4px solid #6a3}}</style></head><body>
<h1>Mastering report</h1>
<p><b>{html.escape(str(report['input']))}</b> &rarr; <b>{html.escape(str(report['output']))}</b><br>
Delivery: {html.escape(d['preset'])}, {d['target_lufs']:g} LUFS at {d['ceiling_dbtp']:g} dBTP. {html.escape(d.get('note', ''))}</p>
<p class=v>{verdict}</p>
<p>{summary}</p>{warn_html}
<table><tr><th></th><th>before</th><th>after</th></tr>
{row('integrated loudness', 'integrated_lufs', 'LUFS')}{row('true peak', 'true_peak_dbtp', 'dBTP', 2)}
{row('loudness range', 'lra_lu', 'LU')}{row('peak-to-loudness ratio', 'plr_db', 'dB')}
{row('max short-term', 'max_short_term_lufs', 'LUFS')}</table>
<h2>What was done</h2><ol>{stages}</ol>
<h2>What was left alone</h2><ul>{alone}</ul>
<h2>What listeners will hear</h2>{_platform_table(report.get("platforms", []))}
{_codec_table(report.get("codecs", []))}
<h2>Tonal balance</h2>{spec_svg}
<h2>Loudness over time</h2>{loud_svg}
<h2>Limiter</h2><p>Up to {lim.get('max_reduction_db', 0):.1f} dB of gain reduction, limiting
{lim.get('limiting_pct', 0):.0f}% of the time.</p>{gr_svg}
</body></html>
"""
