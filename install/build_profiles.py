#!/usr/bin/env python3
"""Rebuild the built-in style profiles and the style classifier from real recordings.

Writes ``dsp/data/profiles/<style>.json``, ``dsp/data/profile_sources.json`` and
``dsp/data/style_model.json``. Deterministic: the same files give the same JSON.

It installs nothing. It reads the full mixed tracks of these Debian packages, wherever they
are installed (install them first, as root)::

    apt-get install -y ufoai-music warzone2100-music singularity-music \\
        hyperrogue-music planetblupi-music-ogg drascula-music

and looks in (see ``CORPUS`` below)::

    /usr/share/games/ufoai/base/0music.pk3          (zip of .ogg, read in place)
    /usr/share/games/warzone2100/music/albums/*/    (.opus, album.json for the titles)
    /usr/share/games/warzone2100/music/menu.opus
    /usr/share/games/singularity/music/             (.ogg, with win/ and lose/)
    /usr/share/hyperrogue/music/                    (.ogg)
    /usr/share/planetblupi/music/                   (.ogg)
    /usr/share/scummvm/drascula/audio/              (.ogg; the language folders hold copies)

A package that is missing is reported and skipped; every assignment needs its track, so a
missing package changes the profiles (the script says which ones). ``fb-music-high`` holds a
tracker module (.xm), not a mixed recording, and is not used.

Usage::

    .venv/bin/python install/build_profiles.py [--cache FILE] [--jobs 2] [--check]

``--cache`` (default ``~/.cache/reamaster/profile_measurements.json``) keeps each track's
measurement (with the file's SHA-256) keyed by its path, so re-running after changing an
assignment takes seconds; delete it after a package upgrade. Measuring all 168 files from
scratch takes about 3 minutes on 2 cores. ``--check`` rebuilds in memory and exits 1 if the shipped files differ.

Normalisation of the tonal balance (the same one the tonal error and the reference mode use):
a band's level minus the mean of the band levels (dB) over the 1/3-octave bands 40 Hz-16 kHz.
It needs no loudness gate, does not depend on which instrument sits in a "reference region",
and is what ``profile_distance_db`` compares.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# the repository's dsp, also when run as a plain script
from dsp.decide import profiles as prof  # noqa: E402
from dsp.decide import style  # noqa: E402
from dsp.decide.master import balanced_shape_db, generic_tolerance_db  # noqa: E402
from dsp.decide.profiles import track_measurement  # noqa: E402
from dsp.measure.analysis import analyze  # noqa: E402
from dsp.measure.spectrum import THIRD_OCTAVE_CENTERS_HZ  # noqa: E402

DATA = ROOT / "dsp" / "data"
MIN_DURATION_S = 30.0  # stingers and loops shorter than this are not mixes
MIN_SAMPLE_RATE = 44100  # every profile band up to 20 kHz must exist
FEATURE_KEYS = ("integrated_lufs", "lra_lu", "plr_db", "crest_db", "true_peak_dbtp", "side_mid_db",
                "correlation", "tilt_db_per_oct", "low_db", "high_db", "silent_pct", "shape_db")

# --- the corpus ----------------------------------------------------------------------------------

CORPUS = {
    "ufoai-music": "/usr/share/games/ufoai/base/0music.pk3",
    "warzone2100-music": "/usr/share/games/warzone2100/music",
    "singularity-music": "/usr/share/games/singularity/music",
    "hyperrogue-music": "/usr/share/hyperrogue/music",
    "planetblupi-music-ogg": "/usr/share/planetblupi/music",
    "drascula-music": "/usr/share/scummvm/drascula/audio",
}


def discover() -> tuple[list[dict], list[str]]:
    """Every candidate track as {package, file, title, path, member}; and the missing packages."""
    tracks: list[dict] = []
    missing: list[str] = []
    for package, where in CORPUS.items():
        p = Path(where)
        if not p.exists():
            missing.append(package)
            continue
        if package == "ufoai-music":
            with zipfile.ZipFile(p) as z:
                for m in sorted(z.namelist()):
                    if m.endswith(".ogg"):
                        tracks.append(dict(package=package, file=f"{p}:{m}", title=Path(m).stem,
                                           path=str(p), member=m))
        elif package == "warzone2100-music":
            titles = {}
            for album in sorted((p / "albums").glob("*/album.json")):
                doc = json.loads(album.read_text())
                for t in doc.get("tracks", []):
                    name = f'{doc.get("title", "")}: {t.get("title", "")}'
                    titles[str(album.parent / t["filename"])] = name
            for f in sorted(p.rglob("*.opus")):
                tracks.append(dict(package=package, file=str(f), title=titles.get(str(f), f.stem),
                                   path=str(f), member=None))
        else:
            for f in sorted(p.rglob("*.ogg")):
                tracks.append(dict(package=package, file=str(f), title=f.stem, path=str(f), member=None))
    return tracks, missing


def _read_bytes(t: dict) -> bytes:
    if t["member"] is not None:
        with zipfile.ZipFile(t["path"]) as z:
            return z.read(t["member"])
    return Path(t["path"]).read_bytes()


def measure_one(t: dict) -> dict:
    """Decode one track and measure it with dsp.measure.analysis.analyze (the engine's own meter)."""
    data = _read_bytes(t)
    sha = hashlib.sha256(data).hexdigest()
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    x = np.ascontiguousarray(x.T)
    out = dict(sha256=sha, sample_rate=int(sr), channels=int(x.shape[0]),
               duration_s=round(x.shape[1] / sr, 2))
    if x.shape[1] < sr * 1.0 or not np.any(x):
        return out
    a = analyze(x[:2], int(sr))
    out.update(track_measurement(a))
    return out


def measure_all(tracks: list[dict], cache_path: Path, jobs: int) -> list[dict]:
    cache: dict = {}
    if cache_path.exists():
        cache = json.loads(cache_path.read_text())
    todo = [t for t in tracks if t["file"] not in cache]
    if todo:
        print(f"measuring {len(todo)} tracks ({len(tracks) - len(todo)} cached) ...", file=sys.stderr)
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(measure_one, t): t for t in todo}
            for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                t = futures[fut]
                cache[t["file"]] = fut.result()
                print(f"  [{i}/{len(todo)}] {t['file']}", file=sys.stderr)
                if i % 10 == 0 or i == len(todo):
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    cache_path.write_text(json.dumps(cache, indent=0, sort_keys=True))
    return [dict(t, **cache[t["file"]]) for t in tracks]



# --- style assignments ---------------------------------------------------------------------------
# Nobody listened: each rule cites the written evidence (package and album descriptions, titles,
# tags read with ffprobe) and the measured features that agree with it. Rules are tried in order;
# the first whose package matches and whose pattern occurs in the file path wins.

STYLE_INFO = {
    "orchestral": "acoustic/orchestral: cinematic game score (orchestral and hybrid sample-library "
                  "orchestration; the corpus holds no acoustic concert recordings)",
    "electronic": "electronic: synth- and sequencer-based instrumental music with a steady pulse",
    "ambient": "ambient: slow, evolving electronic soundscapes with a wide loudness range "
               "(the corpus holds no jazz)",
}

_WZ_OST = ("Warzone 2100 OST by Martin Severn (1999), album.json: 'The original Warzone 2100 soundtrack'; "
           "a sequenced synth/breakbeat game score")
_WZ_LUPUS = ("LupusMechanicus community albums for Warzone 2100 (album.json gives every track a tempo, "
             "80-130 bpm, and the album holds 'Enhanced' remakes of Severn's electronic tracks)")
_SING = ("Endgame: Singularity soundtrack by Maxstack (Vorbis tags: ALBUM 'Endgame: Singularity Original "
         "Soundtrack'/'Advanced Research'); a synth score for a game about an AI")
_UFO_SCORE = "UFO: Alien Invasion in-game score (tactical sci-fi strategy), debian/copyright credits"
_LOCATION = "location theme (Golgotha, public domain)"

RULES = [
    # (package, substring of the file, style or None for unused, confidence, reason)
    ("ufoai-music", "dynamictest", None, "-", "engine test loop, not a piece of music"),
    ("ufoai-music", "Psymong", "ambient", "medium",
     "Simon Green (Psymong), tracks from his albums 'Lost Sense of Community' and 'Another Hour Lost' "
     "(Vorbis tags); measured: the widest loudness range of the corpus (LRA median about 13 LU)"),
    ("ufoai-music", "van_", "orchestral", "medium",
     f"{_UFO_SCORE}: Manuel 'Vanethian' Marino, main/geoscape/mission themes, Vorbis tag GENRE=Soundtrack"),
    ("ufoai-music", "David0", "orchestral", "low",
     f"{_UFO_SCORE}: David Reeves (Destructavator), rendered in REAPER; "
     "measured: uncompressed (PLR 10-14 dB), "
     "narrow image (correlation about 0.8)"),
    ("ufoai-music", "Marine", "orchestral", "low",
     f"{_UFO_SCORE}: 'Marine' Baklund battle themes, rendered in REAPER; measured: PLR 10-17 dB, "
     "correlation about 0.8-0.9"),
    ("ufoai-music", "Crystan-", "orchestral", "low",
     f"{_UFO_SCORE}: Christian 'Crystan' Hoffmann battlescape/geosphere/credits themes (FL Studio, "
     "tagged as the game's music)"),
    ("ufoai-music", "karlmacklin_geoscape", "orchestral", "low",
     f"{_UFO_SCORE}: Karl Macklin 'Geoscape theme #1' (tag GENRE=Game)"),
    ("ufoai-music", "azrael1", "orchestral", "low", f"{_UFO_SCORE}: azrael1322 theme"),
    ("ufoai-music", "TheThings-Slippycurb", "orchestral", "low", f"{_UFO_SCORE}: Slippycurb"),
    ("ufoai-music", "returnjourney", "orchestral", "low", f"{_UFO_SCORE}: Gren, 'Return Journey'"),
    ("ufoai-music", "alBasrahM", "orchestral", "low", f"{_UFO_SCORE}: {_LOCATION}"),
    ("ufoai-music", "turinItalyM", "orchestral", "low", f"{_UFO_SCORE}: {_LOCATION}"),
    ("ufoai-music", "greecei", "orchestral", "low", f"{_UFO_SCORE}: {_LOCATION}"),
    ("ufoai-music", "", None, "-",
     "no written evidence of the style (AlexFightmare, dawn, space, dbsea, ufo1/2: arena/tracker remakes "
     "and themes of unknown instrumentation); measured only"),
    ("warzone2100-music", "original_soundtrack", "electronic", "medium", _WZ_OST),
    ("warzone2100-music", "music/menu.opus", "electronic", "medium", _WZ_OST + "; the original menu theme"),
    ("warzone2100-music", "albums/", "electronic", "medium", _WZ_LUPUS),
    ("singularity-music", "/win/", None, "-", "win stinger (under 2 minutes), not a full piece"),
    ("singularity-music", "/lose/", None, "-", "lose stinger (43 s), not a full piece"),
    ("singularity-music", "", "electronic", "medium", _SING),
    ("hyperrogue-music", "", None, "-",
     "HyperRogue land themes (NeonCorridor, Will Savino, Lincoln Domina): one-minute loops of mixed "
     "instrumentation; no written evidence of a style"),
    ("planetblupi-music-ogg", "", None, "-",
     "Planet Blupi (1997 children's game) music000-009: untitled, no description of the style"),
    ("drascula-music", "", None, "-",
     "Drascula (1996 adventure game) track1-31: untitled cues, no description of the style"),
]

# Styles the corpus cannot fill: synthesised, clearly labelled, from the engine's generic balanced
# master curve (dsp.decide.master.balanced_shape_db) with the adjustments mastering guidance commonly
# gives for the style. Not measured; wide tolerances.
SYNTHESISED = {
    "rock": dict(adjust=((40, 0.0), (80, 0.0), (250, 0.0), (1000, 0.5), (2500, 1.5), (5000, 1.0),
                         (10000, 0.0), (16000, -1.0)),
                 lra_lu=6.0, plr_db=9.5, side_mid_db=-7.0, correlation=0.55,
                 description="rock: guitars and drums, dense upper mids, wide double-tracked guitars"),
    "pop": dict(adjust=((40, 0.0), (80, 0.5), (250, -0.5), (1000, 0.0), (5000, 0.5), (10000, 1.5),
                        (16000, 1.5)),
                lra_lu=5.0, plr_db=8.5, side_mid_db=-9.0, correlation=0.7,
                description="pop: vocal-led, controlled low end, bright open top"),
    "hiphop": dict(adjust=((40, 3.0), (63, 3.5), (100, 2.5), (160, 0.5), (400, -0.5), (1000, 0.0),
                           (8000, -1.0), (16000, -1.5)),
                   lra_lu=5.0, plr_db=8.5, side_mid_db=-11.0, correlation=0.8,
                   description="hip-hop: heavy sub-bass and kick, centred vocal, softer top"),
}
SYNTH_SOURCE = ("synthesised from published guidance: not measured (this corpus of game music holds "
                "no {style}); the engine's generic balanced-master curve with the commonly advised "
                "{style} emphasis, tolerances widened by 1 dB")
PROFILE_TOP_HZ = 16000.0  # the 20 kHz band is set by each file's encoder low-pass, not by the style


def assign(t: dict) -> tuple[str | None, str, str]:
    for package, pattern, style_name, confidence, reason in RULES:
        if t["package"] == package and pattern in t["file"]:
            if style_name is not None and t.get("duration_s", 0.0) < MIN_DURATION_S:
                return None, "-", f"shorter than {MIN_DURATION_S:g} s"
            if style_name is not None and t.get("sample_rate", 0) < MIN_SAMPLE_RATE:
                return None, "-", f"sample rate under {MIN_SAMPLE_RATE} Hz"
            return style_name, confidence, reason
    return None, "-", "no rule"


def _features(t: dict, centers: np.ndarray) -> np.ndarray:
    return np.round(style.features_from_measurements(
        centers[:len(t["shape_db"])], t["shape_db"], lra_lu=t["lra_lu"], plr_db=t["plr_db"],
        side_mid_db=t["side_mid_db"], correlation=t["correlation"]), 4)


def _synthesised(name: str, centers: np.ndarray):
    spec = SYNTHESISED[name]
    f_adj, v_adj = np.array(spec["adjust"]).T
    shape = balanced_shape_db(centers) + np.interp(np.log2(centers), np.log2(f_adj), v_adj)
    return prof.Profile(
        name=name, centers_hz=centers, level_db=prof.tonal_shape_db(centers, shape),
        tolerance_db=generic_tolerance_db(centers) + 1.0, lra_lu=spec["lra_lu"], plr_db=spec["plr_db"],
        side_mid_db=spec["side_mid_db"], correlation=spec["correlation"],
        source=SYNTH_SOURCE.format(style=name), n_tracks=0, description=spec["description"])


def build(measured: list[dict], missing: list[str], *, check: bool) -> int:
    centers_all = np.asarray(THIRD_OCTAVE_CENTERS_HZ, dtype=np.float64)
    centers = centers_all[centers_all <= PROFILE_TOP_HZ]
    used, unused = [], []
    for t in measured:
        name, confidence, reason = assign(t)
        measured_keys = {k: t[k] for k in FEATURE_KEYS if k in t}
        row = dict(package=t["package"], file=t["file"], title=t["title"], sha256=t["sha256"],
                   duration_s=t["duration_s"], sample_rate=t["sample_rate"], channels=t["channels"],
                   style=name, confidence=confidence, reason=reason, features=measured_keys)
        (used if name is not None else unused).append(row)
    for row in unused:
        del row["style"], row["confidence"]

    files: dict[str, str] = {}
    profiles: dict[str, prof.Profile] = {}
    measured_styles = sorted(STYLE_INFO)
    for name in measured_styles:
        rows = [r for r in used if r["style"] == name]
        if not rows:
            print(f"error: no tracks for {name} (missing packages: {', '.join(missing) or 'none'})",
                  file=sys.stderr)
            return 1
        ms = [dict(r["features"], shape_db=r["features"]["shape_db"][:len(centers)]) for r in rows]
        pkgs = sorted({r["package"] for r in rows})
        profiles[name] = prof.profile_from_measurements(
            name, centers, ms, description=STYLE_INFO[name],
            source=f"measured: {len(rows)} tracks from Debian {', '.join(pkgs)} (see profile_sources.json)")
    for name in sorted(SYNTHESISED):
        profiles[name] = _synthesised(name, centers)
    for name, p in profiles.items():
        files[f"profiles/{name}.json"] = p.to_json()

    # The style model: measured styles only.
    x = np.array([_features(r["features"], centers_all) for r in used])
    labels = [r["style"] for r in used]
    d_loo = style.leave_one_out_distances(x, labels, measured_styles)
    truth = np.array([measured_styles.index(s) for s in labels])
    temps = np.geomspace(0.5, 64.0, 43)
    rows = np.arange(len(truth))
    losses = [float(-np.mean(np.log(np.maximum(
        style.probabilities_from_distances(d_loo, tt)[rows, truth], 1e-12)))) for tt in temps]
    temperature = float(np.round(temps[int(np.argmin(losses))], 4))
    guess = np.argmin(d_loo, axis=1)
    accuracy = float(np.mean(guess == truth))
    model = style.train(x, labels, measured_styles, temperature=temperature)
    confusion = {a: {b: int(np.sum((truth == i) & (guess == j))) for j, b in enumerate(measured_styles)}
                 for i, a in enumerate(measured_styles)}
    mistakes = [dict(file=used[i]["file"], style=labels[i], guessed=measured_styles[int(guess[i])])
                for i in np.flatnonzero(guess != truth)]
    model_doc = {
        "format": style.MODEL_FORMAT, "version": style.MODEL_VERSION,
        "method": "nearest centroid, pooled within-style standard deviation per feature (floored), "
                  "softmax of -0.5 * squared standardised distance / temperature, uniform priors",
        "feature_names": list(style.FEATURE_NAMES), "classes": measured_styles,
        "centroids": model.centroids.tolist(), "scale": model.scale.tolist(), "temperature": temperature,
        "loo_accuracy": accuracy, "loo_log_loss": round(min(losses), 4), "loo_confusion": confusion,
        "loo_mistakes": mistakes, "n_training": len(used),
        "training": {"files": [r["file"] for r in used], "labels": labels, "features": x.tolist()},
    }
    files["style_model.json"] = json.dumps(model_doc, indent=1) + "\n"

    sources = {
        "format": "reamaster-profile-sources", "version": 1,
        "built_by": "install/build_profiles.py",
        "normalisation": "shape_db = band level minus the mean band level over 40 Hz-16 kHz, dB",
        "packages": CORPUS, "missing_packages": missing,
        "styles": {n: {"source": p.source, "n_tracks": p.n_tracks, "description": p.description}
                   for n, p in sorted(profiles.items())},
        "tracks": used, "unused": unused,
    }
    files["profile_sources.json"] = json.dumps(sources, indent=1) + "\n"

    differ = []
    for rel, text in sorted(files.items()):
        path = DATA / rel
        old = path.read_text() if path.exists() else None
        if old != text:
            differ.append(rel)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text)
                os.replace(tmp, path)
    stale = [p for p in (DATA / "profiles").glob("*.json") if p.stem not in profiles]
    print(f"{len(used)} tracks in {len(measured_styles)} measured styles "
          f"({', '.join(f'{n}: {profiles[n].n_tracks}' for n in measured_styles)}), {len(unused)} unused; "
          f"synthesised: {', '.join(sorted(SYNTHESISED))}; leave-one-out accuracy {accuracy:.3f}, "
          f"temperature {temperature:g}")
    if check:
        if differ or stale:
            print(f"differs from the shipped files: {', '.join(differ + [str(p) for p in stale])}",
                  file=sys.stderr)
            return 1
        print("shipped files match the rebuild")
        return 0
    for p in stale:
        print(f"note: {p} is not built by this script any more", file=sys.stderr)
    print(f"wrote {', '.join(differ) or 'nothing (unchanged)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path,
                    default=Path.home() / ".cache" / "reamaster" / "profile_measurements.json")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--measure-only", action="store_true",
                    help="measure and print the features; write nothing")
    ap.add_argument("--check", action="store_true", help="exit 1 if the shipped files differ from a rebuild")
    args = ap.parse_args(argv)

    tracks, missing = discover()
    for m in missing:
        print(f"warning: {m} is not installed ({CORPUS[m]}); its tracks are skipped", file=sys.stderr)
    measured = measure_all(tracks, args.cache, args.jobs)
    if args.measure_only:
        for t in measured:
            if "shape_db" in t:
                keys = ("package", "title", "duration_s", "sample_rate", "channels", "tilt_db_per_oct",
                        "low_db", "lra_lu", "plr_db", "crest_db", "side_mid_db", "correlation")
                print(json.dumps({k: t[k] for k in keys}))
        return 0
    return build(measured, missing, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
