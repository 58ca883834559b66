"""Judgement on real music: does the planner do no harm, repair in the right direction, and match
a reference's movement? Prints the figures of issue 10's "done when".

    .venv/bin/python benchmarks/bench_judgement.py [--tracks 6] [--seconds 60]

Material: finished masters from Debian's game-music packages (singularity-music,
warzone2100-music, ufoai-music, fb-music-high, hyperrogue-music; never wesnoth, nexuiz or
xonotic music, kept for independent evaluation), one excerpt of ``--seconds`` from each track
(from 30 % into the track), alternating between packages. Everything is measured with meters
independent of the code under test: loudness and LRA by libebur128 (pyebur128), the tonal
shape by scipy's Welch PSD summed into 1/3-octave bands, side/mid by the same PSD over 40 Hz-16 kHz.

1. **Finished masters at -14 LUFS** (default settings, auto style): tonal change (mean |shape
   difference| over 40 Hz-16 kHz, level removed), |LRA change|, |side/mid change|; goal <= 0.3 dB,
   <= 1 LU, <= 0.5 dB. Also which stages the planner chose.
2. **Broadcast -23 LUFS**: how many masters got a compressor (goal: none that the limiter alone
   handles) and the LRA change.
3. **Damaged mixes**: each original is damaged by a known move (tilt, low shelf, high shelf,
   bell bump, side cut) and mastered; the distance to the original (tonal distance + |side/mid
   difference|) must be smaller for the master than for the damaged mix, on every one.
4. **Reference mode**: same-song pairs (damaged mix, its original as reference): |LRA - ref|
   <= 1 LU, |side/mid - ref| <= 1 dB, tonal error <= 0.5 dB; different-song pairs: no EQ move
   beyond +/-6 dB.
5. **Resonance control** on a real track with a held note (a harmonic tone added throughout) and
   a 1 kHz test tone added: no cut near them.
6. With ``--survey N``: the EQ decisions alone on N tracks (finished masters and five damaged
   mixes of each), read off the planned EQ's response; ``--spreads 1.0,0.7`` adds tighter
   tolerances to show the trade between repairing damage and leaving finished masters alone.
7. With ``--bound 0.1,0.25,0.5``: what the best estimate of an EQ damage from the long-term
   spectrum alone (Bayes, from the profiles' own corpus, leave-one-out) could do, in part 6's
   terms: the ceiling on "every damaged mix closer" for any planner that hears only the average
   spectrum.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCES = [
    ("singularity", "/usr/share/games/singularity/music"),
    ("warzone2100", "/usr/share/games/warzone2100/music"),
    ("ufoai", "/usr/share/games/ufoai/base/0music.pk3"),
    ("frozen-bubble", "/usr/share/games/frozen-bubble/snd/music"),
    ("hyperrogue", "/usr/share/games/hyperrogue"),
]
EXCLUDED = ("wesnoth", "nexuiz", "xonotic")  # kept for independent evaluation
FS = 48000


def _candidates(path: str) -> list[tuple[str, object]]:
    p = Path(path)
    if any(e in str(p).lower() for e in EXCLUDED):
        return []
    if p.suffix == ".pk3" and p.is_file():
        with zipfile.ZipFile(p) as z:
            return [(f"{p.name}:{n}", (p, n)) for n in sorted(z.namelist()) if n.endswith(".ogg")]
    if p.is_dir():
        return [(str(f), f) for f in sorted(p.rglob("*")) if f.suffix in (".ogg", ".opus", ".flac", ".wav")]
    return []


def load_excerpt(item: object, seconds: float) -> tuple[np.ndarray, int] | None:
    import soundfile as sf

    if isinstance(item, tuple):
        pk3, name = item
        with zipfile.ZipFile(pk3) as z:
            data, sr = sf.read(io.BytesIO(z.read(name)), dtype="float64", always_2d=True)
    else:
        data, sr = sf.read(str(item), dtype="float64", always_2d=True)
    if data.shape[1] != 2 or data.shape[0] < seconds * sr * 1.2:
        return None
    start = int(0.3 * data.shape[0])
    start = min(start, data.shape[0] - int(seconds * sr))
    return np.ascontiguousarray(data[start:start + int(seconds * sr)].T), sr


def pick_tracks(n: int, seconds: float) -> list[tuple[str, np.ndarray, int]]:
    groups = [(name, _candidates(path)) for name, path in SOURCES]
    picked: list[tuple[str, np.ndarray, int]] = []
    idx = [0] * len(groups)
    while len(picked) < n and any(idx[g] < len(groups[g][1]) for g in range(len(groups))):
        for g, (src, cands) in enumerate(groups):
            while idx[g] < len(cands) and len(picked) < n:
                label, item = cands[idx[g]]
                idx[g] += 1
                got = load_excerpt(item, seconds)
                if got is not None:
                    picked.append((f"{src}/{Path(label.split(':')[-1]).stem}", got[0], got[1]))
                    break
    return picked


# --- independent meters ---------------------------------------------------------------------------

def ebur128(x: np.ndarray, sr: int) -> tuple[float, float]:
    """Integrated loudness and LRA by libebur128."""
    import pyebur128

    m = pyebur128.R128State(x.shape[0], sr, pyebur128.MeasurementMode.MODE_I | pyebur128.MeasurementMode.MODE_LRA)
    m.add_frames(np.ascontiguousarray(x.T, dtype=np.float64).ravel(), x.shape[1])
    return float(pyebur128.get_loudness_global(m)), float(pyebur128.get_loudness_range(m))


_EDGES = None


def third_octave_shape(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Mid-channel 1/3-octave band levels (Welch PSD, scipy), 40 Hz-16 kHz, mean removed."""
    from scipy.signal import welch

    f, p = welch(np.mean(x, axis=0), fs=sr, nperseg=16384, noverlap=8192)
    centers = 1000.0 * 10 ** (np.arange(-14, 13) / 10)  # 40 Hz .. 16 kHz
    lv = []
    for c in centers:
        sel = (f >= c * 2 ** (-1 / 6)) & (f < c * 2 ** (1 / 6))
        lv.append(10 * np.log10(max(float(np.sum(p[sel])), 1e-30)))
    lv = np.array(lv)
    return centers, lv - lv.mean()


def side_mid_db(x: np.ndarray, sr: int) -> float:
    """Side over mid power, 40 Hz-16 kHz (Welch PSD, scipy): the width a listener hears. A DC
    offset is not width (read from the raw samples, removing a -21 dBFS offset from one track
    "narrowed" it by 1.8 dB)."""
    from scipy.signal import welch

    f, p = welch(np.vstack(((x[0] + x[1]) / 2, (x[0] - x[1]) / 2)), fs=sr, nperseg=16384, noverlap=8192)
    band = (f >= 40 * 2 ** (-1 / 6)) & (f < 16000 * 2 ** (1 / 6))
    return float(10 * np.log10(max(np.sum(p[1, band]), 1e-30) / max(np.sum(p[0, band]), 1e-30)))


def tonal_distance(a: np.ndarray, b: np.ndarray, sr: int) -> float:
    return float(np.mean(np.abs(third_octave_shape(a, sr)[1] - third_octave_shape(b, sr)[1])))


# --- damage ---------------------------------------------------------------------------------------

def rbj(sr: int, kind: str, f0: float, gain_db: float, q: float = 0.707) -> np.ndarray:
    """One RBJ biquad ("bell", "low" or "high" shelf) as an sos row, written here (not the code under test)."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    cw, sw = np.cos(w0), np.sin(w0)
    alpha = sw / (2 * q)
    if kind == "bell":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        d = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    else:
        sa = 2 * np.sqrt(a) * alpha
        if kind == "low":
            b = [a * ((a + 1) - (a - 1) * cw + sa), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - sa)]
            d = [(a + 1) + (a - 1) * cw + sa, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sa]
        else:
            b = [a * ((a + 1) + (a - 1) * cw + sa), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - sa)]
            d = [(a + 1) - (a - 1) * cw + sa, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sa]
    b, d = np.array(b) / d[0], np.array(d) / d[0]
    return np.concatenate((b, d))[None, :]


def damage_sos(sr: int, kind: str) -> np.ndarray:
    """The filter of a known EQ damage: a tilt, a shelf or a bell bump."""
    if kind == "dull tilt":  # -5 dB at 10 kHz, +2 dB at 100 Hz: two shelves
        return np.vstack((rbj(sr, "high", 2500, -5.0), rbj(sr, "low", 150, 2.0)))
    if kind == "bright tilt":
        return np.vstack((rbj(sr, "high", 3000, 5.0), rbj(sr, "low", 150, -2.0)))
    if kind == "boomy shelf":
        return rbj(sr, "low", 200, 6.0)
    if kind == "harsh bump":
        return rbj(sr, "bell", 3000, 6.0, q=1.0)
    if kind == "muddy bump":
        return rbj(sr, "bell", 300, 5.0, q=0.9)
    raise ValueError(kind)


def damage(x: np.ndarray, sr: int, kind: str) -> np.ndarray:
    """A known mix problem: tilt, shelves, a bell bump, a side cut."""
    from scipy.signal import sosfilt

    if kind == "side cut":
        m, s = (x[0] + x[1]) / 2, (x[0] - x[1]) / 2 * 10 ** (-6 / 20)
        return np.vstack((m + s, m - s))
    return sosfilt(damage_sos(sr, kind), x, axis=-1)


DAMAGES = ("dull tilt", "bright tilt", "boomy shelf", "harsh bump", "muddy bump", "side cut")


# --- runs -----------------------------------------------------------------------------------------

def run_master(x: np.ndarray, sr: int, preset: str, style: str = "auto"):
    from dsp.decide.master import Intent, master, style_target
    from dsp.decide.presets import delivery
    from dsp.measure.analysis import analyze

    a = analyze(x, sr, resonances=True)
    target, info = style_target(a, style)
    return master(x, sr, delivery(preset), before=a, intent=Intent(target=target, style_info=info))


def stages_of(result) -> str:
    labels = [s.label for s in result.chain.stages if s.kind != "limiter"]
    return ", ".join(labels) or "limiter only"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--survey", type=int, default=0, help="also the EQ alone on this many tracks (part 6)")
    ap.add_argument("--spreads", default="1.0", help="part 6: tolerances as multiples of the styles' spread")
    ap.add_argument("--bound", default="", help="part 7 at these shrinks (e.g. 0.25,0.5,1): what a Bayes estimate "
                                                "from the long-term spectrum could do on the corpus")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: masters,broadcast,damaged,reference,resonance")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()
    tracks = pick_tracks(args.tracks, args.seconds)
    print(f"# bench_judgement: {len(tracks)} tracks, {args.seconds:g} s excerpts "
          f"(command: .venv/bin/python benchmarks/bench_judgement.py --tracks {args.tracks} --seconds {args.seconds:g})")
    if not tracks:
        print("no music found: install singularity-music warzone2100-music ufoai-music (benchmarks/run.sh does)")
        return 1
    ok_all = True

    if "masters" not in skip:
        print("\n## 1. finished masters at -14 LUFS (goal: tone <= 0.3 dB, |dLRA| <= 1 LU, |d side/mid| <= 0.5 dB)")
        worst = [0.0, 0.0, 0.0]
        for name, x, sr in tracks:
            r = run_master(x, sr, "streaming")
            y = r.audio.astype(np.float64)
            _, lra0 = ebur128(x, sr)
            _, lra1 = ebur128(y, sr)
            tone = tonal_distance(x, y, sr)
            dw = side_mid_db(y, sr) - side_mid_db(x, sr)
            worst = [max(worst[0], tone), max(worst[1], abs(lra1 - lra0)), max(worst[2], abs(dw))]
            heard = r.chain.meta.get("style", {})
            print(f"{name:32s} tone {tone:4.2f} dB  LRA {lra0:5.1f} -> {lra1:5.1f} LU  side/mid {dw:+5.2f} dB  "
                  f"style {heard.get('heard', '?')} {heard.get('confidence', '')}  [{stages_of(r)}]")
        ok = worst[0] <= 0.3 and worst[1] <= 1.0 and worst[2] <= 0.5
        ok_all &= ok
        print(f"worst: tone {worst[0]:.2f} dB, |dLRA| {worst[1]:.2f} LU, |d side/mid| {worst[2]:.2f} dB -> "
              f"{'PASS' if ok else 'FAIL'}")

    if "broadcast" not in skip:
        print("\n## 2. broadcast -23 LUFS (goal: no compression where the limiter alone reaches the target)")
        compressed = 0
        for name, x, sr in tracks:
            r = run_master(x, sr, "broadcast")
            comp = r.chain.find("compressor") is not None
            compressed += comp
            _, lra0 = ebur128(x, sr)
            lufs1, lra1 = ebur128(r.audio.astype(np.float64), sr)
            print(f"{name:32s} {lufs1:6.2f} LUFS  LRA {lra0:5.1f} -> {lra1:5.1f} LU  limiter max GR "
                  f"{r.limiter.get('max_reduction_db', float('nan')):.1f} dB  compressor: {'YES' if comp else 'no'}")
        ok_all &= compressed == 0
        print(f"compressed: {compressed}/{len(tracks)} -> {'PASS' if compressed == 0 else 'FAIL'}")

    if "damaged" not in skip:
        print("\n## 3. damaged mixes (goal: every master closer to its original than the mix)")
        closer = total = 0
        for i, (name, x, sr) in enumerate(tracks):
            for kind in (DAMAGES[i % len(DAMAGES)], DAMAGES[(i + 3) % len(DAMAGES)]):
                mix = damage(x, sr, kind)
                r = run_master(mix, sr, "streaming")
                y = r.audio.astype(np.float64)
                d_mix = tonal_distance(mix, x, sr) + abs(side_mid_db(mix, sr) - side_mid_db(x, sr))
                d_out = tonal_distance(y, x, sr) + abs(side_mid_db(y, sr) - side_mid_db(x, sr))
                total += 1
                closer += d_out < d_mix
                print(f"{name:32s} {kind:12s} distance mix {d_mix:4.2f} -> master {d_out:4.2f} dB "
                      f"{'closer' if d_out < d_mix else 'NOT closer'}  [{stages_of(r)}]")
        ok_all &= closer == total
        print(f"closer: {closer}/{total} -> {'PASS' if closer == total else 'FAIL'}")

    if "reference" not in skip:
        print("\n## 4. reference mode (same-song: |dLRA| <= 1 LU, |d width| <= 1 dB, tone <= 0.5 dB; "
              "different-song: no band beyond +/-6 dB)")
        from dsp.decide.presets import delivery
        from dsp.decide.reference import master_to_reference, reference_target
        from dsp.measure.analysis import analyze

        worst = [0.0, 0.0, 0.0]
        for i, (name, x, sr) in enumerate(tracks):
            kind = DAMAGES[i % len(DAMAGES)]
            mix = damage(x, sr, kind)
            res, err = master_to_reference(mix, sr, reference_target([analyze(x, sr)]), delivery("streaming"))
            y = res.audio.astype(np.float64)
            _, lra_ref = ebur128(x, sr)
            _, lra_out = ebur128(y, sr)
            dw = side_mid_db(y, sr) - side_mid_db(x, sr)
            tone = tonal_distance(y, x, sr)
            worst = [max(worst[0], abs(lra_out - lra_ref)), max(worst[1], abs(dw)), max(worst[2], tone)]
            print(f"{name:32s} same song, {kind:12s}: LRA {lra_out:5.1f} vs ref {lra_ref:5.1f} LU, width {dw:+5.2f} dB, "
                  f"tone {tone:4.2f} dB")
        ok_same = worst[0] <= 1.0 and worst[1] <= 1.0 and worst[2] <= 0.5
        print(f"same-song worst: |dLRA| {worst[0]:.2f} LU, |d width| {worst[1]:.2f} dB, tone {worst[2]:.2f} dB -> "
              f"{'PASS' if ok_same else 'FAIL'}")
        from dsp.decide.eqfit import band_response_db

        worst_band = 0.0
        for i, (name, x, sr) in enumerate(tracks):
            rname, rx, rsr = tracks[(i + 1) % len(tracks)]
            res, err = master_to_reference(x, sr, reference_target([analyze(rx, rsr)]), delivery("streaming"))
            eq = next((s for s in res.chain.stages if s.kind == "eq" and "match" in s.label), None)
            move = 0.0
            if eq is not None:
                f = np.asarray(res.before.spectrum.centers_hz, dtype=float)
                f = f[(f >= 40) & (f <= 16000)]
                move = float(np.max(np.abs(band_response_db(eq.params, sr, f))))
            worst_band = max(worst_band, move)
            print(f"{name:32s} against {rname:28s}: largest EQ move {move:4.1f} dB")
        ok_diff = worst_band <= 6.05
        ok_all &= ok_same and ok_diff
        print(f"different-song worst band: {worst_band:.1f} dB -> {'PASS' if ok_diff else 'FAIL'}")

    if "resonance" not in skip:
        print("\n## 5. resonance control on real music with a held note and a test tone (goal: no cut near them)")
        from dsp.measure.resonance import find_resonances

        cut_near = 0
        for name, x, sr in tracks[:3]:
            t = np.arange(x.shape[1]) / sr
            level = np.sqrt(np.mean(x ** 2))
            note = sum(a * np.sin(2 * np.pi * 397.0 * h * t) for h, a in ((1, 1.0), (2, 0.5), (3, 0.3)))
            tone = np.sin(2 * np.pi * 1000.0 * t)
            for label, add in (("held note 397 Hz", note), ("test tone 1 kHz", tone)):
                y = x + 0.7 * level * add / np.sqrt(np.mean(add ** 2))
                found = find_resonances(y, sr)
                cuts = [r for r in found if not r.left_alone]
                near = [r for r in cuts if min(abs(np.log2(r.freq_hz / f)) for f in (397, 794, 1191, 1000)) < 1 / 12]
                cut_near += bool(near)
                alone = [f"{r.freq_hz:.0f}" for r in found if r.left_alone]
                print(f"{name:32s} + {label:17s}: cuts {[round(r.freq_hz) for r in cuts]}, near the added tone "
                      f"{'YES' if near else 'none'}; left alone {alone}")
        ok_all &= cut_near == 0
        print(f"cuts on the added notes/tones: {cut_near} -> {'PASS' if cut_near == 0 else 'FAIL'}")

    if args.survey:
        eq_survey(args.survey, args.seconds, [float(v) for v in args.spreads.split(",")])
    if args.bound:
        estimator_bound([float(v) for v in args.bound.split(",")])

    print(f"\n# {time.perf_counter() - t0:.0f} s; overall {'PASS' if ok_all else 'FAIL (see above)'}")
    return 0


def fighting_pair(bands) -> bool:
    """Two bands of opposite gain, 1 dB or more each, centres within an octave."""
    return any(x.gain_db * y.gain_db < 0 and abs(np.log2(x.freq_hz / y.freq_hz)) < 1.0
               and min(abs(x.gain_db), abs(y.gain_db)) >= 1.0 for i, x in enumerate(bands) for y in bands[i + 1:])


def eq_survey(n_tracks: int, seconds: float, spreads: list[float]) -> None:
    """The EQ decisions alone on many tracks: each finished master and five damaged mixes made from
    it (no side cut: the EQ does not act on width), planned at -14 LUFS; the outcome is read off the
    planned EQ stages' response on the meter's 1/3-octave bands (no render: the limiter would add
    its own few hundredths). ``spreads``: the tolerance as multiples of the styles' measured spread
    (1.0 is what ships), to show what a tighter one trades."""
    from dsp.decide import master as planner
    from dsp.decide.presets import delivery
    from dsp.measure.analysis import analyze
    from dsp.process.eq import eq_response_db

    print(f"\n## 6. the EQ alone on {n_tracks} tracks (finished masters: tone change; damaged mixes: closer?)")
    cases = []
    for name, x, sr in pick_tracks(n_tracks, seconds):
        c, orig = third_octave_shape(x, sr)
        for kind in ("none",) + tuple(k for k in DAMAGES if k != "side cut"):
            mix = x if kind == "none" else damage(x, sr, kind)
            cases.append((name, kind, sr, c, orig, third_octave_shape(mix, sr)[1], analyze(mix, sr, resonances=True)))
    shipped = planner.SPREAD_TOLERANCE
    try:
        for spread in spreads:
            planner.SPREAD_TOLERANCE = spread
            harm, moved, plan_s, eqs, fighting = [], [], [], 0, 0
            for name, kind, sr, c, orig, shape, a in cases:
                target, info = planner.style_target(a, "auto")
                t_plan = time.perf_counter()
                chain = planner.plan_chain(a, delivery("streaming"), planner.Intent(target=target, style_info=info))
                plan_s.append((time.perf_counter() - t_plan, kind))
                eq = next((st for st in chain.stages if st.label == "corrective EQ"), None)
                if eq is not None:
                    eqs += 1
                    fighting += fighting_pair(eq.params.bands)
                resp = sum((eq_response_db(st.params, sr, c) for st in chain.stages if st.kind == "eq"),
                           np.zeros(len(c)))
                out = shape + resp
                out = out - out.mean()
                if kind == "none":
                    harm.append((float(np.mean(np.abs(out - orig))), name))
                else:
                    moved.append(float(np.mean(np.abs(shape - orig)) - np.mean(np.abs(out - orig))))
            h, m = np.array([v for v, _ in harm]), np.array(moved)
            print(f"tolerance {spread:g} x the spread{' (shipped)' if spread == shipped else ''}: finished masters' "
                  f"tone change p90 {np.percentile(h, 90):.2f} dB, worst {h.max():.2f} dB, over 0.3 dB: "
                  f"{int((h > 0.3).sum())}/{len(h)}; damaged mixes closer {int((m > 0.02).sum())}/{len(m)}, further "
                  f"{int((m < -0.02).sum())}, by {m.mean():+.2f} dB on average")
            print("   over 0.3 dB: " + ", ".join(f"{n} {v:.2f}" for v, n in sorted(harm, reverse=True) if v > 0.3))
            fin = [v for v, k in plan_s if k == "none"]
            dam = [v for v, k in plan_s if k != "none"]
            print(f"   corrective EQs with bands fighting a neighbour (opposite gains of 1 dB or more within an "
                  f"octave): {fighting} of {eqs}; planning time, finished masters mean {np.mean(fin):.3f} s, worst "
                  f"{max(fin):.2f} s; damaged mixes mean {np.mean(dam):.3f} s, worst {max(dam):.2f} s")
    finally:
        planner.SPREAD_TOLERANCE = shipped



def estimator_bound(shrinks: list[float]) -> None:
    """What any EQ deciding from the long-term spectrum alone could achieve on these damages, on the
    corpus the styles were measured from (``dsp/data/profile_sources.json``, no audio needed).

    Leave-one-out: each finished track is compared with its own style's mean and covariance built
    from the other tracks (the style known, which the planner is not), damaged by each of the five
    EQ damages, and repaired by the Bayes (Wiener) estimate of the damage, ``D (S + D)^-1 (x - mean)``,
    where ``S`` is the finished tracks' covariance and ``D`` that of random mastering-sized EQ
    moves (shelves and bells, gains of sd 4 dB) times ``shrink``. The repair is the least-squares
    best for those priors; ``shrink`` trades touching finished masters against repairing damage.
    Prints, per shrink, the finished masters' tone change and how many damaged mixes end closer."""
    import json
    from scipy.signal import sosfreqz

    doc = json.loads((ROOT / "dsp" / "data" / "profile_sources.json").read_text(encoding="utf-8"))
    rows = [t for t in doc["tracks"] if t.get("style")]
    centers = 1000.0 * 10 ** ((np.arange(len(rows[0]["features"]["shape_db"])) - 17) / 10)
    sel = (centers >= 39.0) & (centers <= 16500.0)
    shapes = np.array([t["features"]["shape_db"] for t in rows])[:, sel]
    shapes -= shapes.mean(axis=1, keepdims=True)
    labels = np.array([t["style"] for t in rows])
    f = centers[sel]
    n = len(f)

    def response(sos: np.ndarray) -> np.ndarray:
        pts = f[:, None] * 2 ** np.linspace(-1 / 6, 1 / 6, 9)[None, :]
        _, h = sosfreqz(sos, worN=pts.ravel(), fs=FS)
        r = 10 * np.log10(np.mean(np.abs(h.reshape(pts.shape)) ** 2, axis=1))
        return r - r.mean()

    rng = np.random.default_rng(1)
    moves = []
    for _ in range(2000):
        k = rng.choice(["low", "high", "bell", "bell"])
        f0 = float(np.exp(rng.uniform(*np.log({"low": (60, 400), "high": (1500, 10000), "bell": (80, 10000)}[k]))))
        q = 0.707 if k != "bell" else float(rng.uniform(0.5, 2.0))
        moves.append(response(rbj(FS, k, f0, rng.normal(0.0, 4.0), q)))
    damage_cov = np.cov(np.array(moves).T, bias=True)
    damages = {k: response(damage_sos(FS, k)) for k in DAMAGES if k != "side cut"}
    centre = np.eye(n) - 1.0 / n

    print(f"\n## 7. the bound: a Bayes estimate of the damage from the long-term spectrum ({len(rows)} corpus tracks, "
          "leave-one-out, style known)")
    for shrink in shrinks:
        changed, moved = [], []
        for i in range(len(shapes)):
            others, ol = np.delete(shapes, i, axis=0), np.delete(labels, i)
            mean = others[ol == labels[i]].mean(axis=0)
            resid = np.vstack([others[ol == st] - others[ol == st].mean(axis=0) for st in set(ol)])
            cov = resid.T @ resid / len(resid)
            d = damage_cov * shrink
            gain = d @ np.linalg.pinv(centre @ (cov + d) @ centre + 1e-6 * np.eye(n))

            def repaired(x: np.ndarray) -> np.ndarray:
                c = gain @ (x - mean)
                return x - (c - c.mean())

            changed.append(float(np.mean(np.abs(repaired(shapes[i]) - shapes[i]))))
            for r in damages.values():
                mix = shapes[i] + r
                moved.append(float(np.mean(np.abs(r)) - np.mean(np.abs(repaired(mix) - shapes[i]))))
        h, m = np.array(changed), np.array(moved)
        print(f"shrink {shrink:g}: finished masters' tone change p90 {np.percentile(h, 90):.2f} dB, worst {h.max():.2f} "
              f"dB, over 0.3 dB: {int((h > 0.3).sum())}/{len(h)}; damaged mixes closer {int((m > 0.02).sum())}/{len(m)}, "
              f"further {int((m < -0.02).sum())}, by {m.mean():+.2f} dB on average")

if __name__ == "__main__":
    raise SystemExit(main())
