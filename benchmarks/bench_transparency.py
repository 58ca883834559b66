"""How transparent is the peak stage at loud targets, beside a plain clipper and ffmpeg's loudnorm?

    .venv/bin/python benchmarks/bench_transparency.py [--files A.wav ...] [--limit 6] [--seconds 60]

For every track (real mixed music from Debian's game-music packages, converted by
bench_master.prepare_inputs) and for -14 LUFS / -1 dBTP and -8 LUFS / -0.5 dBTP it masters with
  * ReaMaster's peak stage alone (what the planner decides for the mix: clip stage + true-peak
    limiter, drive converged onto the target; no EQ or compression, so only the peak stage is judged);
  * a plain hard clipper at the ceiling (sample values), gain found by bisection to the same loudness;
  * ffmpeg's loudnorm (two passes; linear where it can, else its dynamic mode), same target;
and prints, per processor and target: loudness reached (libebur128), true peak on libebur128,
ffmpeg's ebur128 and an ideal 16x reference (Kaiser 8, 64 zero crossings), LRA change (ours),
envelope correlation (50 ms RMS in dB, input vs output), treble distortion margin (energy above
4 kHz of the output over that of the residual left after a per-50-ms least-squares gain fitted on
that band; a static EQ reads about 80 dB - the check line proves it - so only what changes
inside 50 ms counts: distortion and fast gain modulation), then
the synthetic figures: THD on a 50 Hz sine and IMD on 60 Hz + 7 kHz at 6 and 12 dB of reduction
(the peak stage as planned, and the full-band limiter alone without a bass limiter, which the
planner leaves off steady tones),
pad duck after kicks at -8 LUFS and click-on-a-quiet-bed duck at -14 LUFS.

Run it against another checkout (e.g. the code before a change) with PYTHONPATH=that_checkout:
without ``plan_peak_stages`` it uses that version's limiter as its planner did.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.signal as ss

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGETS = ((-14.0, -1.0), (-8.0, -0.5))


# --- meters ------------------------------------------------------------------------------------

def ebu_tp(x: np.ndarray, sr: int) -> float:
    import pyebur128

    st = pyebur128.R128State(x.shape[0], sr, pyebur128.MeasurementMode.MODE_TRUE_PEAK)
    st.add_frames(np.ascontiguousarray(x.T, dtype=np.float64).ravel(), x.shape[1])
    return 20 * math.log10(max(max(pyebur128.get_true_peak(st, c) for c in range(x.shape[0])), 1e-12))


def ebu_lufs(x: np.ndarray, sr: int) -> float:
    import pyebur128

    st = pyebur128.R128State(x.shape[0], sr, pyebur128.MeasurementMode.MODE_I)
    st.add_frames(np.ascontiguousarray(x.T, dtype=np.float64).ravel(), x.shape[1])
    return pyebur128.get_loudness_global(st)


def ideal_tp(x: np.ndarray, factor: int = 16, zero_crossings: int = 64) -> float:
    """Ideal band-limited reference, evaluated where it can matter: around every sample whose 8x
    reading (ours) is within 1 dB of the loudest (the true peak cannot be anywhere else)."""
    from dsp.measure.truepeak import true_peak_envelope

    h = ss.firwin(2 * zero_crossings * factor + 1, 1.0 / factor, window=("kaiser", 8.0))
    env = true_peak_envelope(x, factor=8)
    hot = np.flatnonzero(env >= env.max() * 10 ** (-1 / 20))
    pad = 2 * zero_crossings
    peak = 0.0
    i = 0
    while i < hot.size:  # merge nearby candidates into windows
        j = i
        while j + 1 < hot.size and hot[j + 1] - hot[j] < pad:
            j += 1
        lo, hi = max(0, hot[i] - 2 * pad), min(x.shape[1], hot[j] + 2 * pad + 1)
        y = ss.resample_poly(x[:, lo:hi].astype(np.float64), factor, 1, axis=-1, window=h)
        a, b = (hot[i] - lo - 2) * factor, (hot[j] - lo + 3) * factor
        peak = max(peak, float(np.abs(y[:, max(a, 0): b]).max()))
        i = j + 1
    return 20 * math.log10(max(peak, 1e-12))


def ffmpeg_tp(x: np.ndarray, sr: int) -> float | None:
    import soundfile as sf

    if not shutil.which("ffmpeg"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "x.wav")
        sf.write(p, x.T.astype(np.float32), sr, subtype="FLOAT")
        r = subprocess.run(["ffmpeg", "-nostats", "-hide_banner", "-i", p, "-af", "ebur128=peak=true",
                            "-f", "null", "-"], capture_output=True, text=True)
    text = r.stderr[r.stderr.rfind("Summary:"):]
    for line in text.splitlines():
        if line.strip().startswith("Peak:"):
            return float(line.split()[1])
    return None


def lra(x: np.ndarray, sr: int) -> float:
    from dsp.measure.loudness import measure_loudness

    return float(measure_loudness(x, sr).lra_lu)


def our_lufs(x: np.ndarray, sr: int) -> float:
    from dsp.measure.loudness import measure_loudness

    return float(measure_loudness(x, sr).integrated_lufs)


def env_db(x: np.ndarray, sr: int, win_s: float = 0.05) -> np.ndarray:
    w = int(win_s * sr)
    n = x.shape[1] // w
    p = (x[:, : n * w] ** 2).reshape(x.shape[0], n, w).mean(axis=(0, 2))
    return 10 * np.log10(p + 1e-12)


def envelope_correlation(x: np.ndarray, y: np.ndarray, sr: int) -> float:
    a, b = env_db(x, sr), env_db(y, sr)
    sel = a > a.max() - 60
    return float(np.corrcoef(a[sel], b[sel])[0, 1])


def treble_margin_db(x: np.ndarray, y: np.ndarray, sr: int, win_s: float = 0.05) -> float:
    """Treble (above 4 kHz) of the output over the part of it that a per-window gain of the input's
    treble cannot explain: distortion products and gain moving inside the window. The gain is
    fitted on the treble itself, so a static EQ (a band-dependent gain, no distortion) reads high;
    fitted on the whole signal, as this bench did before, a distortion-free 6 dB low cut read 10-19
    dB, worse than a limiter."""
    sos = ss.butter(6, 4000, "high", fs=sr, output="sos")
    w = int(win_s * sr)
    n = min(x.shape[1], y.shape[1]) // w
    hx = ss.sosfiltfilt(sos, x[:, : n * w], axis=-1).reshape(x.shape[0], n, w)
    hy = ss.sosfiltfilt(sos, y[:, : n * w], axis=-1).reshape(y.shape[0], n, w)
    g = (hx * hy).sum(axis=(0, 2)) / np.maximum((hx * hx).sum(axis=(0, 2)), 1e-20)
    e_r = float(np.sum((hy - g[None, :, None] * hx) ** 2))
    return min(99.0, 10 * math.log10(float(np.sum(hy ** 2)) / max(e_r, 1e-30)))


def static_eq_check(x: np.ndarray, sr: int) -> float:
    """The treble margin of a static 6 dB low cut (120 Hz, no distortion): must read high."""
    low = ss.sosfilt(ss.butter(2, 120, "low", fs=sr, output="sos"), x, axis=-1)
    return treble_margin_db(x, x - 0.5 * low, sr)


# --- processors --------------------------------------------------------------------------------

def reamaster(x: np.ndarray, sr: int, target: float, ceiling: float) -> np.ndarray | None:
    from dsp.decide import master as m
    from dsp.decide.presets import Delivery
    from dsp.measure.analysis import analyze
    from dsp.process.chain import Chain

    a = analyze(x, sr)
    d = Delivery("bench", target, ceiling, 24, "")
    if hasattr(m, "plan_peak_stages"):
        stages, _ = m.plan_peak_stages(a, d, m.Intent())
    else:  # the limiter as the planner before plan_peak_stages set it
        from dsp.process.chain import Stage
        from dsp.process.limiter import LimiterParams

        release = 120.0 if a.lra_lu < 5 else 60.0
        stages = [Stage("limiter", LimiterParams(threshold_db=0.0, ceiling_dbtp=ceiling, release_ms=release,
                                                 lookahead_ms=3.0))]
    from dsp.errors import TargetUnreachableError

    try:
        r = m.master(x, sr, d, before=a, planned=Chain(tuple(stages)))
    except TargetUnreachableError as exc:  # a row left out, said so, instead of the whole bench stopping
        print(f"  reamaster at {target:g} LUFS: {exc}", flush=True)
        return None
    return np.asarray(r.audio, dtype=np.float64)


def hard_clip(x: np.ndarray, sr: int, target: float, ceiling: float) -> np.ndarray:
    c = 10 ** (ceiling / 20)
    lo, hi = -20.0, 40.0
    for _ in range(20):
        g = 0.5 * (lo + hi)
        if our_lufs(np.clip(x * 10 ** (g / 20), -c, c), sr) < target:
            lo = g
        else:
            hi = g
        if hi - lo < 0.01:
            break
    return np.clip(x * 10 ** (0.5 * (lo + hi) / 20), -c, c)


def loudnorm(x: np.ndarray, sr: int, target: float, ceiling: float) -> np.ndarray | None:
    import json

    import soundfile as sf

    if not shutil.which("ffmpeg"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.wav")
        sf.write(src, x.T.astype(np.float32), sr, subtype="FLOAT")
        base = f"loudnorm=I={target}:TP={ceiling}:LRA=20"
        r = subprocess.run(["ffmpeg", "-nostats", "-hide_banner", "-i", src, "-af", base + ":print_format=json",
                            "-f", "null", "-"], capture_output=True, text=True)
        js = json.loads(r.stderr[r.stderr.rfind("{"): r.stderr.rfind("}") + 1])
        second = (f"{base}:measured_I={js['input_i']}:measured_TP={js['input_tp']}:measured_LRA={js['input_lra']}"
                  f":measured_thresh={js['input_thresh']}:offset={js['target_offset']}:linear=true")
        subprocess.run(["ffmpeg", "-nostats", "-hide_banner", "-y", "-i", src, "-af", second, "-ar", str(sr),
                        "-c:a", "pcm_f32le", dst], capture_output=True, check=True)
        y, _ = sf.read(dst, dtype="float64", always_2d=True)
    y = y.T
    # align (loudnorm's look-ahead is compensated, resampling may shift by a few samples)
    n = min(x.shape[1], y.shape[1], 10 * sr)
    lag = int(np.argmax(ss.correlate(y[0, :n], x[0, :n], mode="full", method="fft"))) - (n - 1)
    if lag > 0:
        y = y[:, lag:]
    out = np.zeros_like(x)
    m = min(x.shape[1], y.shape[1])
    out[:, :m] = y[:, :m]
    return out


PROCESSORS = {"reamaster": reamaster, "clipper": hard_clip, "loudnorm": loudnorm}


# --- synthetic ---------------------------------------------------------------------------------

SR = 44100


def _limit_by(x: np.ndarray, reduction_db: float, ceiling: float = -1.0, *, full_band_only: bool = False) -> np.ndarray:
    """ReaMaster's peak stage with its drive set so the input's peak is ``reduction_db`` over
    (``full_band_only``: without the bass limiter the planner puts first on bass-led signals, so
    the full-band limiter itself is measured)."""
    from dsp.decide import master as m
    from dsp.process.chain import Chain, render
    from dsp.process.limiter import LimiterParams
    from dsp.measure.truepeak import true_peak_dbtp

    peak = true_peak_dbtp(x, factor=8)
    if hasattr(m, "plan_peak_stages"):
        from dsp.decide.presets import Delivery
        from dsp.measure.analysis import analyze

        a = analyze(x, SR)
        # the planner's peak stage for a target that needs reduction_db off the peaks
        d = Delivery("bench", ceiling - a.plr_db + reduction_db, ceiling, 24, "")
        stages, _ = m.plan_peak_stages(a, d, m.Intent())
        chain = Chain(tuple(st for st in stages if not (full_band_only and st.kind == "bass_limiter")))
        lim = chain.find("limiter")
        thr = peak - reduction_db  # the loudest peak is reduction_db over, whatever the clip stage takes first
        chain = chain.replace_stage("limiter", dataclasses.replace(lim, params=dataclasses.replace(
            lim.params, threshold_db=float(thr))))
    else:
        from dsp.process.chain import Stage

        chain = Chain((Stage("limiter", LimiterParams(threshold_db=float(peak - reduction_db), ceiling_dbtp=ceiling,
                                                      release_ms=120.0, lookahead_ms=3.0)),))
    return render(chain, x, SR).astype(np.float64)


def _clip_by(x: np.ndarray, reduction_db: float) -> np.ndarray:
    c = np.abs(x).max() * 10 ** (-reduction_db / 20)
    return np.clip(x, -c, c)


def thd_pct(y: np.ndarray, f: float) -> float:
    seg = y[0, SR // 2: SR // 2 + SR]
    sp = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    k = np.arange(len(sp)) * SR / len(seg)
    fund = sp[np.abs(k - f) < 3].max()
    harm = math.sqrt(sum(sp[np.abs(k - h * f) < 3].max() ** 2 for h in range(2, 40) if h * f < SR / 2 - 100))
    return 100 * harm / fund


def imd_pct(y: np.ndarray, f1: float, f2: float) -> float:
    """Sidebands of f2 at f2 +- n f1 (n = 1..4) over the f2 component (SMPTE-like)."""
    seg = y[0, SR // 2: SR // 2 + SR]
    sp = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    k = np.arange(len(sp)) * SR / len(seg)
    ref = sp[np.abs(k - f2) < 3].max()
    side = math.sqrt(sum(sp[np.abs(k - (f2 + s * n * f1)) < 3].max() ** 2 for n in range(1, 5) for s in (-1, 1)))
    return 100 * side / ref


def distortion_figures(proc: str) -> dict[str, float]:
    t = np.arange(2 * SR) / SR
    bass = 0.5 * np.sin(2 * np.pi * 50 * t)[None].repeat(2, 0)
    two = (0.4 * np.sin(2 * np.pi * 60 * t) + 0.1 * np.sin(2 * np.pi * 7000 * t))[None].repeat(2, 0)
    out = {}
    for red in (6, 12):
        if proc == "reamaster":
            out[f"thd50_{red}"] = thd_pct(_limit_by(bass, red), 50)
            out[f"imd_{red}"] = imd_pct(_limit_by(two, red), 60, 7000)
            out[f"thd50_{red}_full"] = thd_pct(_limit_by(bass, red, full_band_only=True), 50)
            out[f"imd_{red}_full"] = imd_pct(_limit_by(two, red, full_band_only=True), 60, 7000)
        else:
            out[f"thd50_{red}"] = thd_pct(_clip_by(bass, red), 50)
            out[f"imd_{red}"] = imd_pct(_clip_by(two, red), 60, 7000)
    return out


def kicks_and_pad(seconds: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Kicks (55 Hz, 120 ms decay) every 500 ms on a steady pad whose 2 kHz partial is the probe."""
    t = np.arange(int(seconds * SR)) / SR
    pad = 0.05 * (np.sin(2 * np.pi * 220 * t) + 0.7 * np.sin(2 * np.pi * 330 * t) + 0.5 * np.sin(2 * np.pi * 2000 * t))
    kick = np.zeros_like(t)
    onsets = np.arange(1.0, seconds - 0.5, 0.5)
    for o in onsets:
        i = int(o * SR)
        tt = t[: int(0.4 * SR)]
        k = 0.8 * np.sin(2 * np.pi * 55 * tt) * np.exp(-tt / 0.12) * np.minimum(1, tt / 0.002)
        kick[i: i + len(tt)] += k[: len(kick) - i]
    return (pad + kick)[None].repeat(2, 0), onsets


def click_on_bed(seconds: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """A quiet steady bed (300 Hz + 2 kHz probe) and one click (0.5 ms burst) at 2.5 s."""
    t = np.arange(int(seconds * SR)) / SR
    bed = 0.02 * (np.sin(2 * np.pi * 300 * t) + 0.5 * np.sin(2 * np.pi * 2000 * t))
    i = int(2.5 * SR)
    n = int(0.0005 * SR)
    bed[i: i + n] += 0.9 * np.hanning(n) * np.sign(np.sin(2 * np.pi * np.arange(n) / n))
    return bed[None].repeat(2, 0), np.array([2.5])


def probe_level_db(y: np.ndarray, win_s: float = 0.01) -> np.ndarray:
    sos = ss.butter(4, (1700, 2300), "bandpass", fs=SR, output="sos")
    b = ss.sosfiltfilt(sos, y[0])
    return env_db(b[None], SR, win_s)


def duck_db(x: np.ndarray, y: np.ndarray, onsets: np.ndarray, win_s: float = 0.01) -> float:
    """Median over onsets of: probe level in the 100 ms before the onset minus its lowest level
    from 20 to 300 ms after it (the hit itself excluded), output relative to input."""
    lx, ly = probe_level_db(x, win_s), probe_level_db(y, win_s)
    d = ly - lx  # the processing's gain on the probe, per window
    out = []
    for o in onsets:
        i = int(o / win_s)
        before = float(np.median(d[i - 10: i]))
        after = d[i + 2: i + 30]
        out.append(before - float(after.min()))
    return float(np.median(out))


def synthetic(proc: str) -> dict[str, float]:
    fn = PROCESSORS[proc]
    res = distortion_figures(proc) if proc in ("reamaster", "clipper") else {}
    x, on = kicks_and_pad()
    y = fn(x, SR, -8.0, -0.5)
    res["pad_duck_db"] = duck_db(x, y, on) if y is not None else math.nan
    x, on = click_on_bed()
    y = fn(x, SR, -14.0, -1.0)
    res["click_duck_db"] = duck_db(x, y, on) if y is not None else math.nan
    return res


# --- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="*", type=Path)
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0, help="excerpt length from each track's middle")
    ap.add_argument("--processors", nargs="*", default=list(PROCESSORS))
    ap.add_argument("--no-clip", action="store_true", help="ReaMaster's limiter alone (the clip stage off)")
    args = ap.parse_args()
    if args.no_clip:
        from dsp.decide import master as m

        if hasattr(m, "_CLIP_MAX_DB"):
            m._CLIP_MAX_DB = {k: 0.0 for k in m._CLIP_MAX_DB}
    from bench_master import prepare_inputs
    from dsp.io.audio_io import read_audio

    files = args.files or prepare_inputs(args.limit, 60.0, 600.0)
    print(f"# {' '.join(sys.argv)}   (files: {len(files)}, {args.seconds:g} s from each middle)")
    rows = []
    for f in files:
        x, sr = read_audio(f)
        x = x.astype(np.float64)
        n = int(args.seconds * sr)
        if x.shape[1] > n:
            a = (x.shape[1] - n) // 2
            x = x[:, a: a + n]
        lra_in = lra(x, sr)
        print(f"{f.stem[:28]:28} check: a static 6 dB low cut reads a treble margin of {static_eq_check(x, sr):.1f} dB")
        for target, ceiling in TARGETS:
            for proc in args.processors:
                y = PROCESSORS[proc](x, sr, target, ceiling)
                if y is None:
                    continue
                row = {"file": f.stem[:28], "proc": proc, "target": target, "ceiling": ceiling,
                       "lufs": ebu_lufs(y, sr), "tp_ebu": ebu_tp(y, sr), "tp_ff": ffmpeg_tp(y, sr) or math.nan,
                       "tp_ideal": ideal_tp(y), "dlra": lra(y, sr) - lra_in,
                       "corr": envelope_correlation(x, y, sr), "treble": treble_margin_db(x, y, sr)}
                rows.append(row)
                print(f"{row['file']:28} {proc:9} {target:5g} I {row['lufs']:6.2f} TP ebu {row['tp_ebu']:6.2f} "
                      f"ff {row['tp_ff']:6.2f} ideal {row['tp_ideal']:6.2f} dLRA {row['dlra']:+5.1f} "
                      f"corr {row['corr']:.3f} treble {row['treble']:5.1f}", flush=True)
    print()
    print("## real music, mean (worst) per processor and target")
    print(f"{'processor':10} {'target':>6} {'|I-target|':>10} {'TP over ceiling: ebu/ff/ideal (worst dB)':>42} "
          f"{'dLRA LU':>8} {'env corr':>8} {'treble dB':>9}")
    for target, ceiling in TARGETS:
        for proc in args.processors:
            rs = [r for r in rows if r["proc"] == proc and r["target"] == target]
            if not rs:
                continue
            over = [sum(r[k] > ceiling + 1e-3 for r in rs) for k in ("tp_ebu", "tp_ff", "tp_ideal")]
            worst = [max(r[k] - ceiling for r in rs) for k in ("tp_ebu", "tp_ff", "tp_ideal")]
            err = max(abs(r["lufs"] - target) for r in rs)
            print(f"{proc:10} {target:6g} {err:10.2f} "
                  f"{'/'.join(f'{o}of{len(rs)}' for o in over):>20} ({'/'.join(f'{w:+.3f}' for w in worst)}) "
                  f"{np.mean([r['dlra'] for r in rs]):+8.2f} {np.mean([r['corr'] for r in rs]):8.3f} "
                  f"{np.mean([r['treble'] for r in rs]):5.1f} ({min(r['treble'] for r in rs):.1f})")
    print()
    print("## synthetic")
    print(f"{'processor':10} {'THD 50Hz 6dB':>12} {'12dB':>6} {'IMD 60+7k 6dB':>13} {'12dB':>6} "
          f"{'pad duck -8':>11} {'click duck -14':>14}")
    for proc in args.processors:
        s = synthetic(proc)
        g = lambda k: f"{s[k]:.2f}%" if k in s else "-"  # noqa: E731
        print(f"{proc:10} {g('thd50_6'):>12} {g('thd50_12'):>6} {g('imd_6'):>13} {g('imd_12'):>6} "
              f"{s['pad_duck_db']:9.2f}dB {s['click_duck_db']:12.2f}dB", flush=True)
        if "thd50_6_full" in s:
            print(f"{'  (full-band limiter alone, no bass limiter)':44} "
                  f"THD {g('thd50_6_full')} / {g('thd50_12_full')}, "
                  f"IMD {g('imd_6_full')} / {g('imd_12_full')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
