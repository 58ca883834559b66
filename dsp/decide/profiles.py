"""Style profiles: the long-term tonal balance and dynamics a finished master of a style has.

A profile holds, per 1/3-octave band (IEC centres; the built-ins 20 Hz-16 kHz, because above
that the corpus's encoders low-pass), the typical **tonal shape** and a tolerance, plus typical
LRA, PLR and stereo width.

**Normalisation** (the same one as the tonal error of :mod:`dsp.decide.master` and :mod:`dsp.decide.reference`):
a band's shape is its level (dB, :func:`dsp.measure.spectrum.third_octave_spectrum`) minus the mean of
the band levels over the bands whose centres lie in 40 Hz-16 kHz (the exact IEC centres make
that 50 Hz ... 15.85 kHz, as in :func:`dsp.decide.master.tonal_deviation_db`). It needs no loudness
gate, no choice of a
"reference region" whose content differs between styles, and a gain change leaves it unchanged.

* ``level_db``: mean shape of the tracks (re-normalised), dB;
* ``tolerance_db``: spread (standard deviation) across the tracks, floored at 1 dB;
* ``lra_lu``, ``plr_db``: medians over the tracks (EBU Tech 3342 LRA; true peak minus loudness);
* ``side_mid_db``: median of side power over mid power, summed over 40 Hz-16 kHz, dB;
* ``correlation``: median broadband L/R correlation.

Profiles are JSON files (``format`` "reamaster-profile", ``version`` 1); the built-in ones are
in ``dsp/data/profiles`` and are rebuilt by ``install/build_profiles.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import EmptyAudioError, FileMissingError, InputError, ProfileError
from ..io.audio_io import SUPPORTED_READ, atomic_write_text, read_audio
from ..measure.analysis import analyze

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from ..measure.analysis import Analysis
    from ..measure.spectrum import SpectrumResult

FORMAT = "reamaster-profile"
VERSION = 1
TONAL_LO_HZ, TONAL_HI_HZ = 40.0, 16000.0
MIN_TOLERANCE_DB = 1.0
WIDTH_BAND_LO_HZ, WIDTH_BAND_HI_HZ = 40.0, 16000.0



@dataclasses.dataclass(frozen=True, eq=False)
class Profile:
    """One style's target; arrays follow ``centers_hz`` (ascending, Hz), read-only float64."""

    name: str
    centers_hz: np.ndarray
    level_db: np.ndarray  # tonal shape, dB (see the module docstring)
    tolerance_db: np.ndarray  # > 0
    lra_lu: float
    plr_db: float
    side_mid_db: float
    correlation: float
    source: str  # "measured: ..." or "synthesised from published guidance: ..."
    n_tracks: int
    description: str = ""

    def __post_init__(self) -> None:
        for f in ("centers_hz", "level_db", "tolerance_db"):
            a = np.array(getattr(self, f), dtype=np.float64)
            a.setflags(write=False)
            object.__setattr__(self, f, a)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "n_tracks": int(self.n_tracks),
            "normalisation": "band level minus the mean band level over 40 Hz-16 kHz, dB",
            "centers_hz": [round(float(v), 3) for v in self.centers_hz],
            "level_db": [round(float(v), 2) for v in self.level_db],
            "tolerance_db": [round(float(v), 2) for v in self.tolerance_db],
            "lra_lu": round(float(self.lra_lu), 2),
            "plr_db": round(float(self.plr_db), 2),
            "side_mid_db": round(float(self.side_mid_db), 2),
            "correlation": round(float(self.correlation), 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"


# --- the tonal measure ---------------------------------------------------------------------------

def tonal_band_mask(centers_hz: np.ndarray) -> np.ndarray:
    f = np.asarray(centers_hz, dtype=np.float64)
    return (f >= TONAL_LO_HZ) & (f <= TONAL_HI_HZ)


def tonal_shape_db(centers_hz: np.ndarray, level_db: np.ndarray) -> np.ndarray:
    """Band levels minus their mean over 40 Hz-16 kHz (dB); the profile normalisation."""
    lv = np.asarray(level_db, dtype=np.float64)
    return lv - float(np.mean(lv[tonal_band_mask(centers_hz)]))


def _common_bands(analysis: Analysis, profile: Profile) -> int:
    f = np.asarray(analysis.spectrum.centers_hz, dtype=np.float64)
    n = min(len(f), len(profile.centers_hz))
    if n == 0 or not np.allclose(f[:n], profile.centers_hz[:n], rtol=1e-3):
        raise ProfileError(f"profile {profile.name!r} does not use the analysis's 1/3-octave bands")
    return n


def profile_deviation_db(analysis: Analysis, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """(centers_hz, deviation_db) of the mix's shape from the profile, level removed (40 Hz-16 kHz mean 0)."""
    n = _common_bands(analysis, profile)
    f = profile.centers_hz[:n]
    dev = np.asarray(analysis.spectrum.level_db, dtype=np.float64)[:n] - profile.level_db[:n]
    return f, dev - float(np.mean(dev[tonal_band_mask(f)]))


def profile_distance_db(analysis: Analysis, profile: Profile) -> float:
    """Mean absolute tonal deviation (dB) over the bands 40 Hz-16 kHz, level removed.

    The same measure as :func:`dsp.decide.reference.tonal_error_db` with the profile as the target.
    """
    f, dev = profile_deviation_db(analysis, profile)
    return float(np.mean(np.abs(dev[tonal_band_mask(f)])))


# --- per-track measurements ----------------------------------------------------------------------

def side_mid_db(spectrum: SpectrumResult) -> float:
    """Side power over mid power summed over the bands 40 Hz-16 kHz, dB (-120 for mono)."""
    sel = (spectrum.centers_hz >= WIDTH_BAND_LO_HZ) & (spectrum.centers_hz <= WIDTH_BAND_HI_HZ)
    side = float(np.sum(10.0 ** (np.asarray(spectrum.side_db)[sel] / 10.0)))
    mid = float(np.sum(10.0 ** (np.asarray(spectrum.mid_db)[sel] / 10.0)))
    if side <= 1e-20 or mid <= 1e-20:
        return -120.0
    return float(np.clip(10.0 * math.log10(side / mid), -120.0, 120.0))


def track_measurement(analysis: Analysis) -> dict[str, Any]:
    """What a profile is built from, for one track (JSON-ready, rounded)."""
    s = analysis.spectrum
    f = np.asarray(s.centers_hz, dtype=np.float64)
    shape = tonal_shape_db(f, s.level_db)
    sel = tonal_band_mask(f)
    tilt = float(np.polyfit(np.log2(f[sel]), shape[sel], 1)[0])
    low = (f >= 40) & (f <= 100)
    high = (f >= 5000) & (f <= 16000)
    return {
        "integrated_lufs": round(float(analysis.integrated_lufs), 2),
        "lra_lu": round(float(analysis.lra_lu), 2),
        "plr_db": round(float(analysis.plr_db), 2),
        "crest_db": round(float(analysis.crest_db), 2),
        "true_peak_dbtp": round(float(analysis.true_peak_dbtp), 2),
        "side_mid_db": round(side_mid_db(s), 2),
        "correlation": round(float(s.correlation_overall), 3),
        "tilt_db_per_oct": round(tilt, 2),
        "low_db": round(float(np.mean(shape[low])), 2),
        "high_db": round(float(np.mean(shape[high])), 2),
        "silent_pct": round(float(analysis.silent_pct), 1),
        "shape_db": [round(float(v), 2) for v in shape],
    }


def profile_from_measurements(name: str, centers_hz: np.ndarray, measurements: list[dict[str, Any]], *,
                              source: str, description: str = "") -> Profile:
    """Aggregate per-track measurements (see :func:`track_measurement`) into a profile.

    Uses the bands every track has; the width figures only from stereo tracks (mono ones have
    ``side_mid_db`` -120); with no stereo track the width is that of a mono mix.
    """
    if not measurements:
        raise ProfileError(f"profile {name!r} needs at least one track")
    n = min(len(m["shape_db"]) for m in measurements)
    f = np.asarray(centers_hz, dtype=np.float64)[:n]
    shapes = np.array([m["shape_db"][:n] for m in measurements], dtype=np.float64)
    shapes = np.array([tonal_shape_db(f, s) for s in shapes])
    level = tonal_shape_db(f, shapes.mean(axis=0))
    spread = shapes.std(axis=0, ddof=1) if len(shapes) > 1 else np.zeros(n)
    tolerance = np.maximum(spread, MIN_TOLERANCE_DB)
    stereo = [m for m in measurements if m["side_mid_db"] > -100.0]
    return Profile(
        name=name, centers_hz=f, level_db=level, tolerance_db=tolerance,
        lra_lu=float(np.median([m["lra_lu"] for m in measurements])),
        plr_db=float(np.median([m["plr_db"] for m in measurements])),
        side_mid_db=float(np.median([m["side_mid_db"] for m in stereo])) if stereo else -120.0,
        correlation=float(np.median([m["correlation"] for m in stereo])) if stereo else 1.0,
        source=source, n_tracks=len(measurements), description=description,
    )


def build_profile_from_folder(folder: str | os.PathLike[str], *, name: str | None = None) -> Profile:
    """Learn a profile from the reference tracks in ``folder`` (WAV/FLAC/AIFF/OGG, not recursive).

    Every file is read with :func:`dsp.io.audio_io.read_audio` and measured with
    :func:`dsp.measure.analysis.analyze`; the profile is named after the folder unless ``name`` is given.
    """
    p = Path(folder)
    if not p.is_dir():
        raise FileMissingError(f"folder not found: {p}")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUPPORTED_READ)
    if not files:
        raise EmptyAudioError(f"{p} holds no audio files ({', '.join(SUPPORTED_READ)})")
    measurements: list[dict[str, Any]] = []
    centers: np.ndarray | None = None
    for f in files:
        x, sr = read_audio(f)
        a = analyze(x, sr)
        if not math.isfinite(a.integrated_lufs):
            raise InputError(f"{f.name} is too quiet to measure its loudness")
        measurements.append(track_measurement(a))
        if centers is None or len(a.spectrum.centers_hz) < len(centers):
            centers = np.asarray(a.spectrum.centers_hz, dtype=np.float64)
    n = len(measurements)
    return profile_from_measurements(
        name or p.name, cast(np.ndarray, centers), measurements,  # files is not empty, so centers is set
        source=f"measured: {n} track{'s' if n != 1 else ''} in {p.name}",
        description=f"learnt from {', '.join(f.name for f in files[:5])}{' ...' if n > 5 else ''}")


# --- files ---------------------------------------------------------------------------------------

_REQUIRED: dict[str, type | tuple[type, ...]] = {"format": str, "version": int, "name": str, "source": str, "n_tracks": int,
             "centers_hz": list, "level_db": list, "tolerance_db": list, "lra_lu": (int, float),
             "plr_db": (int, float), "side_mid_db": (int, float), "correlation": (int, float)}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {"description": str, "normalisation": str}
_RANGES = {"lra_lu": (0.0, 60.0), "plr_db": (0.0, 60.0), "side_mid_db": (-120.0, 40.0),
           "correlation": (-1.0, 1.0)}


def profile_from_dict(doc: Any, *, what: str = "the profile") -> Profile:
    """Strictly validate a profile document; every problem is a :class:`ProfileError`."""
    if not isinstance(doc, dict):
        raise ProfileError(f"{what} is not a JSON object")
    if doc.get("format") != FORMAT:
        raise ProfileError(f"{what} is not a ReaMaster profile (format must be {FORMAT!r})")
    for key, kind in _REQUIRED.items():
        if key not in doc:
            raise ProfileError(f"{what} lacks the field {key!r}")
        v = doc[key]
        if isinstance(v, bool) or not isinstance(v, kind):
            raise ProfileError(f"{what}: field {key!r} has the wrong type")
    unknown = set(doc) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise ProfileError(f"{what}: unknown field(s) {', '.join(sorted(unknown))}")
    for key, kind in _OPTIONAL.items():
        if key in doc and not isinstance(doc[key], kind):
            raise ProfileError(f"{what}: field {key!r} has the wrong type")
    if doc["version"] != VERSION:
        raise ProfileError(f"{what} has version {doc['version']}; this ReaMaster reads version {VERSION}")
    if not doc["name"].strip():
        raise ProfileError(f"{what} has an empty name")
    if doc["n_tracks"] < 0:
        raise ProfileError(f"{what}: n_tracks must not be negative")
    arrays = {}
    for key in ("centers_hz", "level_db", "tolerance_db"):
        v = doc[key]
        if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v):
            raise ProfileError(f"{what}: {key} must be a list of numbers")
        a = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ProfileError(f"{what}: {key} holds a value that is not finite")
        arrays[key] = a
    f = arrays["centers_hz"]
    if not (len(f) == len(arrays["level_db"]) == len(arrays["tolerance_db"])):
        raise ProfileError(f"{what}: centers_hz, level_db and tolerance_db must have the same length")
    if int(np.sum(tonal_band_mask(f))) < 3:
        raise ProfileError(f"{what} needs at least 3 bands between 40 Hz and 16 kHz")
    if np.any(f <= 0) or np.any(np.diff(f) <= 0):
        raise ProfileError(f"{what}: centers_hz must be positive and ascending")
    if np.any(arrays["tolerance_db"] <= 0):
        raise ProfileError(f"{what}: every tolerance_db must be greater than 0")
    for key, (lo, hi) in _RANGES.items():
        v = float(doc[key])
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ProfileError(f"{what}: {key} = {v:g} is outside {lo:g} to {hi:g}")
    return Profile(name=doc["name"], centers_hz=f, level_db=arrays["level_db"],
                   tolerance_db=arrays["tolerance_db"], lra_lu=float(doc["lra_lu"]),
                   plr_db=float(doc["plr_db"]), side_mid_db=float(doc["side_mid_db"]),
                   correlation=float(doc["correlation"]), source=doc["source"],
                   n_tracks=doc["n_tracks"], description=doc.get("description", ""))


def profile_from_json(text: str, *, what: str = "the profile") -> Profile:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{what} is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    return profile_from_dict(doc, what=what)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and strictly validate a profile file."""
    p = Path(path)
    if not p.is_file():
        raise FileMissingError(f"profile not found: {p}")
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read the profile {p.name}: {exc}") from None
    return profile_from_json(text, what=p.name)


def save_profile(profile: Profile, path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Write a profile atomically (refuses to overwrite unless ``force``)."""
    profile_from_dict(profile.to_dict(), what=f"profile {profile.name!r}")  # never write what cannot be read
    atomic_write_text(path, profile.to_json(), force=force)


# --- built-ins -----------------------------------------------------------------------------------

def _builtin_dir() -> Traversable:
    return resources.files("dsp") / "data" / "profiles"


@functools.lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    """Names of the built-in style profiles, sorted."""
    return tuple(sorted(e.name[:-5] for e in _builtin_dir().iterdir() if e.name.endswith(".json")))


@functools.lru_cache(maxsize=32)
def load_builtin(name: str) -> Profile:
    """A built-in style profile by name (see :func:`builtin_names`)."""
    if name not in builtin_names():
        raise ProfileError(f"unknown style {name!r}; built-in styles: {', '.join(builtin_names())}")
    entry = _builtin_dir() / f"{name}.json"
    return profile_from_json(entry.read_text(encoding="utf-8"), what=f"built-in profile {name}")


def builtin_profiles() -> dict[str, Profile]:
    return {n: load_builtin(n) for n in builtin_names()}
