"""Auto style: features, the shipped classifier (its stored accuracy), classification and blending."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_profiles import shaped_noise

from dsp.decide import profiles as P
from dsp.decide import style as S
from dsp.demo import demo_mix
from dsp.measure.analysis import analyze
from dsp.measure.spectrum import THIRD_OCTAVE_CENTERS_HZ


@pytest.fixture(scope="module")
def demo_analysis():
    return analyze(demo_mix(44100, seconds=4.0), 44100)


def _independent_loo_accuracy(x: np.ndarray, labels: list[str], classes: list[str],
                              floors: np.ndarray) -> float:
    """Leave-one-out nearest centroid with pooled within-class spread, written out plainly."""
    y = np.array([classes.index(c) for c in labels])
    right = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        xs, ys = x[keep], y[keep]
        cents = np.array([xs[ys == k].mean(axis=0) for k in range(len(classes))])
        resid = xs - cents[ys]
        var = (resid ** 2).sum(axis=0) / (len(xs) - len(classes))
        scale = np.maximum(np.sqrt(var), floors)
        d = (((x[i] - cents) / scale) ** 2).sum(axis=1)
        right += int(np.argmin(d) == y[i])
    return right / len(x)


def test_features_are_fixed_length_and_documented(demo_analysis):
    v = S.style_features(demo_analysis)
    assert v.shape == (S.N_FEATURES,) == (len(S.FEATURE_NAMES),) == (13,)
    assert np.all(np.isfinite(v))
    assert abs(np.mean(v[:9])) < 1e-9  # the 9 shape groups cover 40 Hz-16 kHz, mean removed
    assert v[9] == pytest.approx(demo_analysis.lra_lu) and v[10] == pytest.approx(demo_analysis.plr_db)
    assert v[12] == pytest.approx(demo_analysis.spectrum.correlation_overall)
    # A gain change moves nothing.
    quieter = analyze(demo_mix(44100, seconds=4.0) * np.float32(0.25), 44100)
    assert np.allclose(S.style_features(quieter)[:9], v[:9], atol=1e-3)


def test_features_at_a_low_sample_rate_repeat_the_top_band():
    a = analyze(demo_mix(22050, seconds=3.0), 22050)
    v = S.style_features(a)
    assert v.shape == (13,) and np.all(np.isfinite(v))


def test_stored_leave_one_out_accuracy_is_recomputed():
    doc = S.model_document()
    x = np.asarray(doc["training"]["features"])
    labels = doc["training"]["labels"]
    classes = doc["classes"]
    assert x.shape == (doc["n_training"], S.N_FEATURES) and len(labels) == len(x)
    assert set(labels) == set(classes) and set(classes) <= set(P.builtin_names())
    independent = _independent_loo_accuracy(x, labels, classes, S.FEATURE_FLOORS)
    assert independent == pytest.approx(doc["loo_accuracy"], abs=1e-12)
    assert S.leave_one_out_accuracy(x, labels, classes) == pytest.approx(doc["loo_accuracy"], abs=1e-12)
    # Better than always answering the most common style.
    assert doc["loo_accuracy"] > max(labels.count(c) for c in classes) / len(labels)
    # The shipped weights are the model trained on all the stored features.
    m = S.load_model()
    again = S.train(x, labels, classes)
    assert np.allclose(again.centroids, m.centroids, atol=1e-9)
    assert np.allclose(again.scale, m.scale, atol=1e-9)
    cm = doc["loo_confusion"]
    assert sum(cm[a][a] for a in classes) == round(doc["loo_accuracy"] * len(labels))


def test_training_tracks_are_the_listed_sources():
    import json
    from importlib import resources

    src = json.loads((resources.files("dsp") / "data" / "profile_sources.json").read_text(encoding="utf-8"))
    doc = S.model_document()
    by_file = {t["file"]: t for t in src["tracks"]}
    assert sorted(doc["training"]["files"]) == sorted(by_file)
    f = np.asarray(THIRD_OCTAVE_CENTERS_HZ)
    tr = doc["training"]
    for file, label, feat in zip(tr["files"], tr["labels"], tr["features"]):
        t = by_file[file]
        assert t["style"] == label
        m = t["features"]
        v = S.features_from_measurements(f[:len(m["shape_db"])], m["shape_db"], lra_lu=m["lra_lu"],
                                         plr_db=m["plr_db"], side_mid_db=m["side_mid_db"],
                                         correlation=m["correlation"])
        assert np.allclose(v, feat, atol=6e-5)


def test_classify_is_deterministic(demo_analysis):
    a = S.classify(demo_analysis)
    b = S.classify(demo_analysis)
    assert a == b
    assert a.style in a.probabilities and a.confidence == max(a.probabilities.values())
    assert sum(a.probabilities.values()) == pytest.approx(1.0, abs=1e-12)
    assert set(a.probabilities) == set(S.load_model().classes)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["ambient", "electronic", "orchestral"])
def test_a_mix_shaped_like_a_profile_is_classified_as_it(name, rng):
    """Noise with the profile's tonal shape and width; LRA and PLR set to the profile's figures
    (stationary noise has no loudness range of its own)."""
    p = P.load_builtin(name)
    sr = 44100
    x = shaped_noise(rng, sr, 4.0, p.centers_hz, p.level_db, side_mid_db=p.side_mid_db)
    a = analyze(x, sr)
    assert P.profile_distance_db(a, p) < 0.6  # the signal really has the profile's shape
    a = dataclasses.replace(a, lra_lu=p.lra_lu, plr_db=p.plr_db)
    g = S.classify(a)
    assert g.style == name
    others = sorted((v for k, v in g.probabilities.items() if k != name), reverse=True)
    # Calibrated on overlapping styles, so even the centroid is not near 100 %: it must clearly lead.
    assert g.confidence > 0.45 and g.confidence > 1.2 * others[0]


def test_blend_of_a_certain_guess_is_the_profile():
    profs = P.builtin_profiles()
    for name in ("rock", "ambient"):
        g = S.StyleGuess(name, 1.0, {n: (1.0 if n == name else 0.0) for n in profs})
        b = S.blend_profiles(g, profs)
        p = profs[name]
        assert b.name == p.name and b.source == p.source
        assert np.array_equal(b.level_db, p.level_db) and np.array_equal(b.tolerance_db, p.tolerance_db)
        assert (b.lra_lu, b.plr_db, b.side_mid_db, b.correlation) == (p.lra_lu, p.plr_db, p.side_mid_db,
                                                                     p.correlation)


def test_blend_weights_by_probability_and_widens_where_styles_disagree():
    profs = P.builtin_profiles()
    a, b = profs["electronic"], profs["orchestral"]
    g = S.StyleGuess("electronic", 0.7, {"electronic": 0.7, "orchestral": 0.28, "ambient": 0.02})
    m = S.blend_profiles(g, profs)
    assert "electronic 71%" in m.name and "orchestral 29%" in m.name and "ambient" not in m.name
    w = 0.7 / 0.98
    assert np.allclose(m.level_db, w * a.level_db + (1 - w) * b.level_db)
    assert m.lra_lu == pytest.approx(w * a.lra_lu + (1 - w) * b.lra_lu)
    assert np.all(m.tolerance_db >= np.minimum(a.tolerance_db, b.tolerance_db) - 1e-9)
    gap = np.abs(a.level_db - b.level_db)
    k = int(np.argmax(gap))
    assert m.tolerance_db[k] > w * a.tolerance_db[k] + (1 - w) * b.tolerance_db[k]
    assert m.n_tracks == a.n_tracks + b.n_tracks


def test_classify_then_blend_end_to_end(demo_analysis):
    g = S.classify(demo_analysis)
    target = S.blend_profiles(g)
    assert np.all(np.isfinite(target.level_db)) and np.all(target.tolerance_db >= 1.0)
    assert P.profile_distance_db(demo_analysis, target) >= 0.0


def test_bad_model_documents_are_refused():
    doc = S.model_document()
    for bad in (dict(doc, version=9), dict(doc, format="x"), dict(doc, feature_names=["a"]),
                dict(doc, scale=[0.0] * S.N_FEATURES), dict(doc, centroids=[[0.0]])):
        with pytest.raises(P.ProfileError) as e:
            S.model_from_dict(bad)
        assert e.value.code == "bad_profile"
