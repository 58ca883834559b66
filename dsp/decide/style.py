"""Which style a mix sounds like, from its measured tonal shape and dynamics, and the blended target.

**Features** (:func:`style_features`, 13 values, fixed order = ``FEATURE_NAMES``):

* 0-8 ``shape_<f>``: the tonal shape (dB) averaged over 9 octave-wide groups of three
  1/3-octave bands centred at 50, 100, 200, 400, 800, 1600, 3150, 6300 and 12500 Hz (the 27
  bands with nominal centres 40 Hz-16 kHz), the mean of the 27 removed, so the 9 sum to 0. At
  sample rates whose Nyquist lies below 16 kHz the missing top bands repeat the highest one;
* 9 ``lra_lu``: loudness range, LU; 10 ``plr_db``: true peak minus integrated loudness, dB;
* 11 ``side_mid_db``: side over mid power, 40 Hz-16 kHz, clipped to -30..0 dB (mono reads -30);
* 12 ``correlation``: broadband L/R correlation (1 for mono).

**Model**: nearest centroid with one pooled within-style standard deviation per feature (a
diagonal linear discriminant), uniform priors. ``probability[c]`` is the softmax of
``-0.5 * d_c / temperature`` where ``d_c`` is the squared standardised distance to the style's
centroid; the temperature is chosen by ``install/build_profiles.py`` to minimise the
leave-one-out log loss, and the leave-one-out accuracy is stored beside the weights in
``dsp/data/style_model.json``. Only styles measured from real tracks are in the model; a
profile synthesised from published guidance can be chosen by name but is never guessed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ProfileError
from .profiles import Profile, builtin_profiles, side_mid_db

if TYPE_CHECKING:
    from ..measure.analysis import Analysis

MODEL_FORMAT = "reamaster-style-model"
MODEL_VERSION = 1
GROUP_CENTERS_HZ = (50, 100, 200, 400, 800, 1600, 3150, 6300, 12500)
FEATURE_NAMES = tuple(f"shape_{c}" for c in GROUP_CENTERS_HZ) + (
    "lra_lu", "plr_db", "side_mid_db", "correlation")
N_FEATURES = len(FEATURE_NAMES)
# Smallest pooled spread per feature: keeps a feature that barely varies in the corpus from
# dominating the distance (dB for the shape, LU, dB, dB, correlation units).
FEATURE_FLOORS = np.array([0.5] * 9 + [0.5, 0.5, 1.0, 0.02])
SIDE_MID_RANGE_DB = (-30.0, 0.0)
MIN_BLEND_WEIGHT = 0.05  # styles below this probability are left out of the blend

_FIRST_BAND_K = -14  # the 40 Hz band: centre 1000 * 10 ** (k / 10)


@dataclasses.dataclass(frozen=True)
class StyleGuess:
    style: str  # the most probable style
    confidence: float  # its probability, 0..1
    probabilities: dict[str, float]  # every modelled style, summing to 1


@dataclasses.dataclass(frozen=True, eq=False)
class StyleModel:
    classes: tuple[str, ...]
    centroids: np.ndarray  # (n_classes, N_FEATURES), feature units
    scale: np.ndarray  # (N_FEATURES,) pooled within-style standard deviation, floored
    temperature: float = 1.0


# --- features ------------------------------------------------------------------------------------

def features_from_measurements(centers_hz: Sequence[float] | np.ndarray, level_db: Sequence[float] | np.ndarray, *, lra_lu: float,
                               plr_db: float, side_mid_db: float, correlation: float) -> np.ndarray:
    """The feature vector from a band-level array (any normalisation) and the dynamics figures."""
    f = np.asarray(centers_hz, dtype=np.float64)
    lv = np.asarray(level_db, dtype=np.float64)
    ks = np.round(10.0 * np.log10(f / 1000.0)).astype(int)
    want = np.arange(_FIRST_BAND_K, _FIRST_BAND_K + 27)
    if ks.size == 0 or ks[0] > want[0]:
        raise ProfileError("style features need the 1/3-octave bands from 40 Hz up")
    # Bands above the Nyquist frequency repeat the highest one there is.
    idx = np.clip(np.searchsorted(ks, want), 0, ks.size - 1)
    bands = lv[idx]
    shape = bands - float(np.mean(bands))  # over exactly the 27 bands the groups use
    out = np.empty(N_FEATURES)
    out[:9] = shape.reshape(9, 3).mean(axis=1)
    out[9] = lra_lu if np.isfinite(lra_lu) else 0.0
    out[10] = plr_db if np.isfinite(plr_db) else 0.0
    out[11] = np.clip(side_mid_db if np.isfinite(side_mid_db) else SIDE_MID_RANGE_DB[0], *SIDE_MID_RANGE_DB)
    out[12] = correlation if np.isfinite(correlation) else 1.0
    return out


def style_features(analysis: Analysis) -> np.ndarray:
    """The 13 style features of an :class:`dsp.measure.analysis.Analysis`; see the module docstring."""
    s = analysis.spectrum
    return features_from_measurements(s.centers_hz, s.level_db, lra_lu=float(analysis.lra_lu),
                                      plr_db=float(analysis.plr_db), side_mid_db=side_mid_db(s),
                                      correlation=float(s.correlation_overall))


def profile_features(profile: Profile) -> np.ndarray:
    """The features a mix shaped exactly like ``profile`` (its typical figures) would have."""
    return features_from_measurements(profile.centers_hz, profile.level_db, lra_lu=profile.lra_lu,
                                      plr_db=profile.plr_db, side_mid_db=profile.side_mid_db,
                                      correlation=profile.correlation)


# --- model ---------------------------------------------------------------------------------------

def train(features: np.ndarray, labels: Sequence[str], classes: Sequence[str], *,
          temperature: float = 1.0) -> StyleModel:
    """Centroids and pooled within-style spread of ``features`` (n, N_FEATURES) labelled by ``labels``."""
    x = np.asarray(features, dtype=np.float64)
    lab = np.asarray(labels)
    cents, resid = [], []
    for c in classes:
        xc = x[lab == c]
        if xc.shape[0] == 0:
            raise ProfileError(f"style {c!r} has no training tracks")
        mu = xc.mean(axis=0)
        cents.append(mu)
        resid.append(xc - mu)
    r = np.concatenate(resid)
    dof = max(1, x.shape[0] - len(classes))
    scale = np.maximum(np.sqrt(np.sum(r * r, axis=0) / dof), FEATURE_FLOORS)
    return StyleModel(tuple(classes), np.array(cents), scale, float(temperature))


def squared_distances(model: StyleModel, features: np.ndarray) -> np.ndarray:
    """(n, n_classes) squared standardised distances of feature rows to every centroid."""
    x = np.atleast_2d(np.asarray(features, dtype=np.float64))
    z = (x[:, None, :] - model.centroids[None, :, :]) / model.scale
    d2: np.ndarray = np.sum(z * z, axis=-1)
    return d2


def probabilities_from_distances(d: np.ndarray, temperature: float) -> np.ndarray:
    logits = -0.5 * np.asarray(d, dtype=np.float64) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    prob: np.ndarray = p / p.sum(axis=-1, keepdims=True)
    return prob


def leave_one_out_distances(features: np.ndarray, labels: Sequence[str],
                            classes: Sequence[str]) -> np.ndarray:
    """Row i: distances of track i to the centroids of a model trained without it."""
    x = np.asarray(features, dtype=np.float64)
    out = np.empty((x.shape[0], len(classes)))
    idx = np.arange(x.shape[0])
    for i in idx:
        keep = idx != i
        out[i] = squared_distances(train(x[keep], np.asarray(labels)[keep], classes), x[i])[0]
    return out


def leave_one_out_accuracy(features: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> float:
    """Share of tracks whose style the model trained on all the others guesses right."""
    d = leave_one_out_distances(features, labels, classes)
    guess = np.asarray(classes)[np.argmin(d, axis=1)]
    return float(np.mean(guess == np.asarray(labels)))


# --- the shipped model ---------------------------------------------------------------------------

def model_from_dict(doc: Any) -> StyleModel:
    """Validate a style-model document; problems are :class:`dsp.decide.profiles.ProfileError`."""
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ProfileError(f"not a ReaMaster style model (format must be {MODEL_FORMAT!r})")
    if doc.get("version") != MODEL_VERSION:
        raise ProfileError(
            f"style model version {doc.get('version')!r}; this ReaMaster reads {MODEL_VERSION}")
    if tuple(doc.get("feature_names", ())) != FEATURE_NAMES:
        raise ProfileError("the style model was trained on different features")
    try:
        classes = tuple(str(c) for c in doc["classes"])
        cents = np.asarray(doc["centroids"], dtype=np.float64)
        scale = np.asarray(doc["scale"], dtype=np.float64)
        temperature = float(doc["temperature"])
    except (KeyError, TypeError, ValueError):
        raise ProfileError("the style model lacks classes, centroids, scale or temperature") from None
    if cents.shape != (len(classes), N_FEATURES) or scale.shape != (N_FEATURES,) or not classes:
        raise ProfileError("the style model's arrays have the wrong shape")
    if not (np.all(np.isfinite(cents)) and np.all(scale > 0)
            and np.isfinite(temperature) and temperature > 0):
        raise ProfileError("the style model holds values that are not finite or not positive")
    return StyleModel(classes, cents, scale, temperature)


def model_document() -> dict[str, Any]:
    """The shipped model file, parsed (includes the training features and the LOO accuracy)."""
    doc: dict[str, Any] = json.loads((resources.files("dsp") / "data" / "style_model.json").read_text(encoding="utf-8"))
    return doc


@functools.lru_cache(maxsize=1)
def load_model() -> StyleModel:
    return model_from_dict(model_document())


# --- classification and blending -----------------------------------------------------------------

def classify_features(features: np.ndarray, model: StyleModel | None = None) -> StyleGuess:
    m = model if model is not None else load_model()
    p = probabilities_from_distances(squared_distances(m, features), m.temperature)[0]
    best = int(np.argmax(p))  # ties go to the first class in the model's order: deterministic
    return StyleGuess(m.classes[best], float(p[best]), {c: float(v) for c, v in zip(m.classes, p)})


def classify(analysis: Analysis, model: StyleModel | None = None) -> StyleGuess:
    """The style the mix is closest to, its probability and every style's probability."""
    return classify_features(style_features(analysis), model)


def blend_profiles(guess: StyleGuess, profiles: Mapping[str, Profile] | None = None, *,
                   min_weight: float = MIN_BLEND_WEIGHT) -> Profile:
    """One target from the guessed styles, weighted by probability.

    Styles under ``min_weight`` are dropped and the rest renormalised. Shapes and figures are
    probability-weighted means; each band's tolerance is the mixture's spread
    ``sqrt(sum w * (tol**2 + (level - blended)**2))``, so bands where the styles disagree get
    more room. A 100 % guess returns that profile's numbers unchanged.
    """
    profs = profiles if profiles is not None else builtin_profiles()
    items = sorted(((w, n) for n, w in guess.probabilities.items() if w >= min_weight and n in profs),
                   key=lambda t: (-t[0], t[1]))
    if not items:
        if guess.style in profs:
            items = [(1.0, guess.style)]
        else:
            raise ProfileError(f"no profile for the guessed style {guess.style!r}")
    w = np.array([t[0] for t in items])
    w = w / w.sum()
    chosen = [profs[t[1]] for t in items]
    n = min(len(p.centers_hz) for p in chosen)
    f = chosen[0].centers_hz[:n]
    for p in chosen[1:]:
        if not np.allclose(p.centers_hz[:n], f, rtol=1e-6):
            raise ProfileError(f"profiles {chosen[0].name!r} and {p.name!r} use different bands")
    levels = np.array([p.level_db[:n] for p in chosen])
    tols = np.array([p.tolerance_db[:n] for p in chosen])
    level = w @ levels
    tol = np.sqrt(w @ (tols ** 2 + (levels - level) ** 2))
    if len(chosen) == 1:
        return chosen[0]

    def mean(attr: str) -> float:
        return float(w @ np.array([getattr(p, attr) for p in chosen]))

    name = " + ".join(f"{p.name} {100 * wi:.0f}%" for p, wi in zip(chosen, w))
    return Profile(name=f"auto ({name})", centers_hz=f, level_db=level, tolerance_db=tol,
                   lra_lu=mean("lra_lu"), plr_db=mean("plr_db"), side_mid_db=mean("side_mid_db"),
                   correlation=mean("correlation"), source="blend of " + ", ".join(p.name for p in chosen),
                   n_tracks=sum(p.n_tracks for p in chosen),
                   description=f"style heard: {guess.style} ({100 * guess.confidence:.0f}% confidence)")
