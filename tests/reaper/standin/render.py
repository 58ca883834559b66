"""Rendering for actions 41824/42230: real WAV files mixed from the project's items (REAPER_API.md 3).

Track FX and master FX are applied as REAPER does (track FX before the track's fader, master FX on
the summed mix before the master fader; ``I_FXEN`` 0 or a bypassed FX skips them): ReaEQ, ReaComp and
ReaLimit are rendered by ``dsp`` from their displayed parameter values (``fxrender``); FX that are not
rendered (ReaXcomp) are listed in the render-log entry under ``fx_not_applied``, the rendered ones
under ``fx_applied``. Normalisation,
dither and brickwall settings are stored and read back but not applied (listed under ``ignored``).
If any target file already exists, real REAPER opens an "overwrite?" dialog a script cannot dismiss:
here the render does not happen and the event goes to ``Reaper.blocked_dialogs``.
"""

from __future__ import annotations

import base64
import math
import os
import re
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from . import fxrender
from .project import Project, Reaper, Source, Track

_SUBTYPES = {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24", 32: "FLOAT", 64: "DOUBLE"}


def parse_format(fmt: str) -> tuple[str, str] | None:
    """RENDER_FORMAT -> (extension, soundfile subtype), or None when the sink is not modelled.

    A bare "evaw" means the WAV sink's defaults (24-bit PCM); base64 configs carry the bit depth in
    byte 5 (REAPER_API.md 3.2)."""
    s = (fmt or "").strip()
    if s == "evaw":
        return ("wav", "PCM_24")
    try:
        data = base64.b64decode(s, validate=True)
    except Exception:
        return None
    if data[:4] != b"evaw":
        return None
    bits = data[4] if len(data) > 4 else 24
    return ("wav", _SUBTYPES[bits]) if bits in _SUBTYPES else None


def track_display_name(t: Track) -> str:
    if t.is_master:
        return "Master"  # [?] what $track expands to for the master mix
    return t.name or f"Track {t.index + 1}"


_BAD_CHARS = re.compile(r'[\\:*?"<>|]')


def _expand(pattern: str, proj: Project, track: Track | None) -> str:
    name = pattern or "$project"
    subs = {
        "$project": proj.name_stem,
        "$tracknumber": "" if track is None or track.is_master else f"{track.index + 1:02d}",
        "$track": "" if track is None else track_display_name(track),
        "$title": proj.info_str.get("PROJECT_TITLE", ""),
        "$author": proj.info_str.get("PROJECT_AUTHOR", ""),
        "$item": "", "$region": "", "$marker": "",
    }
    for k in sorted(subs, key=len, reverse=True):
        name = name.replace(k, subs[k])
    parts = [_BAD_CHARS.sub("_", p) for p in name.replace("\\", "/").split("/")]
    return "/".join(parts)


@dataclass
class Target:
    path: str
    track: Track | None   # None = the master mix


def _stem_tracks(proj: Project) -> list[Track]:
    # [?] a selected master track renders as a stem too (REAPER's "Selected tracks" includes it)
    return ([proj.master] if proj.master.selected else []) + [t for t in proj.tracks if t.selected]


def plan_targets(proj: Project) -> tuple[list[Target], str | None]:
    """The files the current settings would write, or (partial list, reason) when unsupported."""
    fmt = parse_format(proj.render_str["RENDER_FORMAT"])
    if fmt is None:
        return [], "unsupported RENDER_FORMAT (the stand-in writes WAV only)"
    ext = fmt[0]
    settings = int(proj.render_num["RENDER_SETTINGS"])
    folder = proj.render_str["RENDER_FILE"]
    pattern = proj.render_str["RENDER_PATTERN"]
    if not pattern and os.path.splitext(folder)[1]:
        # [?] empty pattern + RENDER_FILE naming a file: the file is the target
        folder, pattern = os.path.split(folder)
        pattern = os.path.splitext(pattern)[0]
    if not folder:
        folder = proj.record_path
    elif not os.path.isabs(folder):
        folder = os.path.join(proj.folder, folder)
    sources: list[Track | None] = []
    if settings & 2 or settings & 1:
        if settings & 1:
            sources.append(None)
        sources += _stem_tracks(proj)
    else:  # master mix (0) or selected tracks via master (128)
        sources.append(None)
    names = [_expand(pattern, proj, s if s is not None else proj.master) for s in sources]
    paths = [os.path.normpath(os.path.join(folder, n + "." + ext)) for n in names]
    # [?] colliding names get -001, -002, ... like REAPER's auto-numbering of duplicate outputs
    for p in set(paths):
        idx = [i for i, q in enumerate(paths) if q == p]
        if len(idx) > 1:
            stem = os.path.splitext(p)[0]
            for k, i in enumerate(idx, 1):
                paths[i] = f"{stem}-{k:03d}.{ext}"
    return [Target(p, s) for p, s in zip(paths, sources)], None


def bounds(proj: Project) -> tuple[float, float]:
    flag = int(proj.render_num["RENDER_BOUNDSFLAG"])
    tail = proj.render_num["RENDER_TAILMS"] / 1000.0
    tailflag = int(proj.render_num["RENDER_TAILFLAG"])
    if flag == 0:
        s, e, bit = proj.render_num["RENDER_STARTPOS"], proj.render_num["RENDER_ENDPOS"], 1
    elif flag == 1:
        s, e, bit = 0.0, proj.length(), 2
    elif flag == 2:
        (s, e), bit = proj.time_sel, 4
    else:
        raise NotImplementedError(f"RENDER_BOUNDSFLAG={flag} is not modelled by the stand-in")
    if tailflag & bit and e > s:
        e += tail
    return float(s), float(e)


# --- mixing ----------------------------------------------------------------------------------------

def _load(path: str, cache: dict) -> tuple[np.ndarray, int]:
    if path not in cache:
        x, sr = sf.read(path, dtype="float64", always_2d=True)
        cache[path] = (np.ascontiguousarray(x.T), sr)
    return cache[path]


def _item_audio(it, start: float, n: int, sr: int, cache: dict, notes: list) -> np.ndarray:
    out = np.zeros((2, n))
    tk = it.active_take
    if tk is None or tk.source is None or it.attrs["B_MUTE"]:
        return out
    if tk.attrs["D_PLAYRATE"] != 1.0:
        notes.append("D_PLAYRATE != 1 ignored")
    x, src_sr = _load(tk.source.filename, cache)
    if src_sr != sr:
        g = math.gcd(int(sr), int(src_sr))
        x = resample_poly(x, int(sr) // g, int(src_sr) // g, axis=1)
    if x.shape[0] == 1:
        x = np.vstack([x, x])
    x = x[:2]
    pos, length = it.attrs["D_POSITION"], it.attrs["D_LENGTH"]
    i0 = int(round(pos * sr)) - int(round(start * sr))
    m = int(round(length * sr))
    off = int(round(tk.attrs["D_STARTOFFS"] * sr))
    idx = off + np.arange(m)
    if it.attrs["B_LOOPSRC"] and x.shape[1] > 0:
        idx = idx % x.shape[1]
        seg = x[:, idx]
    else:
        seg = np.zeros((2, m))
        ok = (idx >= 0) & (idx < x.shape[1])
        seg[:, ok] = x[:, idx[ok]]
    seg = seg * (it.attrs["D_VOL"] * tk.attrs["D_VOL"])
    a, b = max(i0, 0), min(i0 + m, n)
    if b > a:
        out[:, a:b] += seg[:, a - i0:b - i0]
    return out


def _pan(x: np.ndarray, pan: float) -> np.ndarray:
    # [?] simple balance law: the far side is attenuated linearly, centre is unity
    if pan == 0.0:
        return x
    g = np.array([1.0 - max(pan, 0.0), 1.0 + min(pan, 0.0)])[:, None]
    return x * g


class Mixer:
    def __init__(self, proj: Project, start: float, n: int, sr: int) -> None:
        self.proj, self.start, self.n, self.sr = proj, start, n, sr
        self.cache: dict = {}
        self.notes: list[str] = []
        self.parent: dict = {}
        stack: list[Track] = []
        for t in proj.tracks:
            self.parent[t] = stack[-1] if stack else None
            d = int(t.attrs["I_FOLDERDEPTH"])
            if d == 1:
                stack.append(t)
            elif d < 0:
                del stack[max(len(stack) + d, 0):]

    def children(self, t: Track) -> list[Track]:
        return [c for c in self.proj.tracks if self.parent.get(c) is t]

    def ancestors(self, t: Track):
        p = self.parent.get(t)
        while p is not None:
            yield p
            p = self.parent.get(p)

    def track_out(self, t: Track, audible) -> np.ndarray:
        """Post-fader output of ``t`` including its folder children."""
        out = np.zeros((2, self.n))
        if audible(t):
            for it in t.items:
                out += _item_audio(it, self.start, self.n, self.sr, self.cache, self.notes)
        for c in self.children(t):
            if c.attrs["B_MAINSEND"]:
                out += self.track_out(c, audible)
        if t.attrs["B_MUTE"]:
            return np.zeros_like(out)
        out = fxrender.apply_chain(t.fx, out, self.sr, bool(t.attrs["I_FXEN"]))
        return _pan(out * t.attrs["D_VOL"], t.attrs["D_PAN"])

    def master_mix(self, only: list[Track] | None = None) -> np.ndarray:
        if only is not None:
            chosen = set(only)
            audible = lambda t: t in chosen or any(a in chosen for a in self.ancestors(t))  # noqa: E731
        else:
            soloed = {t for t in self.proj.tracks if t.attrs["I_SOLO"]}
            audible = lambda t: (not soloed or t in soloed  # noqa: E731
                                 or any(a in soloed for a in self.ancestors(t)))
        out = np.zeros((2, self.n))
        for t in self.proj.tracks:
            if self.parent.get(t) is None and t.attrs["B_MAINSEND"]:
                out += self.track_out(t, audible)
        m = self.proj.master
        if m.attrs["B_MUTE"]:
            return np.zeros_like(out)
        out = fxrender.apply_chain(m.fx, out, self.sr, bool(m.attrs["I_FXEN"]))
        return _pan(out * m.attrs["D_VOL"], m.attrs["D_PAN"])

    def stem(self, t: Track) -> np.ndarray:
        # [?] stems ignore solo states (each stem renders its track as if soloed)
        if t.is_master:
            return self.master_mix()
        return self.track_out(t, lambda _t: True)


def _to_channels(x: np.ndarray, nch: int) -> np.ndarray:
    if nch == 1:
        return 0.5 * (x[0:1] + x[1:2])  # [?] mono downmix
    if nch == 2:
        return x
    return np.vstack([x, np.zeros((nch - 2, x.shape[1]))])


def _stats(path: str, x: np.ndarray) -> str:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    db = lambda v: -150.0 if v <= 0 else 20 * math.log10(v)  # noqa: E731
    return f"FILE:{path};PEAK:{db(peak):.2f};RMSI:{db(rms):.2f};"  # [?] REAPER's exact layout


def render(app: Reaper, proj: Project, action: int) -> dict:
    """Run one render with the project's stored settings; returns the render-log entry."""
    entry: dict = {"action": action, "settings": dict(proj.render_num),
                   "strings": dict(proj.render_str), "files": [], "status": "ok"}
    app.render_log.append(entry)
    targets, problem = plan_targets(proj)
    if problem:
        entry.update(status="unsupported", reason=problem)
        return entry
    try:
        start, end = bounds(proj)
    except NotImplementedError as e:
        entry.update(status="unsupported", reason=str(e))
        return entry
    sr = int(proj.render_num["RENDER_SRATE"]) or proj.sample_rate
    nch = max(int(proj.render_num["RENDER_CHANNELS"]), 1)
    entry.update(start=start, end=end, sample_rate=sr, channels=nch,
                 targets=[t.path for t in targets])
    if end <= start:
        entry.update(status="empty_bounds")
        return entry
    existing = [t.path for t in targets if os.path.exists(t.path)]
    if existing:
        entry.update(status="blocked_overwrite_dialog")
        app.blocked_dialogs.append({"kind": "render_overwrite", "files": existing, "action": action})
        return entry
    ignored = [k for k in ("RENDER_NORMALIZE", "RENDER_DITHER") if proj.render_num[k]]
    if ignored:
        entry["ignored"] = ignored
    settings = int(proj.render_num["RENDER_SETTINGS"])
    n = int(round(end * sr)) - int(round(start * sr))
    mixer = Mixer(proj, start, n, sr)
    subtype = parse_format(proj.render_str["RENDER_FORMAT"])[1]
    fx_used = []
    stats = []
    for tg in targets:
        if tg.track is None:
            only = _stem_tracks(proj) if settings & 128 else None
            x = mixer.master_mix(only)
            fx_used += [("MASTER", f) for f in proj.master.fx if f.enabled and proj.master.attrs["I_FXEN"]]
            fx_used += [(track_display_name(t), f) for t in proj.tracks for f in t.fx
                        if f.enabled and t.attrs["I_FXEN"]]
        else:
            x = mixer.stem(tg.track)
            fx_used += [(track_display_name(tg.track), f) for f in tg.track.fx if f.enabled and tg.track.attrs["I_FXEN"]]
        x = _to_channels(x, nch)
        os.makedirs(os.path.dirname(tg.path), exist_ok=True)
        sf.write(tg.path, x.T, sr, subtype=subtype, format="WAV")
        entry["files"].append(tg.path)
        stats.append(_stats(tg.path, x))
    entry["fx_not_applied"] = sorted({(n, f.name) for n, f in fx_used if not fxrender.renderable(f)})
    entry["fx_applied"] = sorted({(n, f.name) for n, f in fx_used if fxrender.renderable(f)})
    entry["notes"] = sorted(set(mixer.notes))
    proj.last_render_stats = "".join(stats)
    if int(proj.render_num["RENDER_ADDTOPROJ"]) & 1:
        for path in entry["files"]:
            t = app.insert_track(proj, len(proj.tracks))
            t.name = os.path.splitext(os.path.basename(path))[0]
            it = app.add_item(t)
            tk = app.add_take(it)
            tk.source = app.register(Source.from_file(path))
            it.attrs["D_POSITION"], it.attrs["D_LENGTH"] = start, tk.source.length_s
    return entry
