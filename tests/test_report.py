"""The report: JSON with every decision and a loudness-matched check; a self-contained HTML page."""

import json
import re

from dsp.decide.master import master
from dsp.decide.presets import delivery
from dsp.demo import demo_mix
from dsp.io.audio_io import WriteResult
from server.service.report import build_report, loudness_matched_check, render_html, tonal_distance_db

SR = 44100


def fake_written(fmt="wav24"):
    return WriteResult(path="m.wav", fmt=fmt, sample_rate=SR, channels=2, frames=1, clipped_samples=0, dithered=False)


def test_report_explains_and_compares():
    x = demo_mix(SR, seconds=12.0)
    d = delivery()
    r = master(x, SR, d)
    doc = build_report("mix.wav", "m.wav", d, r, fake_written())
    json.dumps(doc, allow_nan=False)
    assert all(s["why"] for s in doc["chain"]["stages"])  # every decision says why
    assert doc["left_alone"] and all(":" in line for line in doc["left_alone"])  # and every non-decision too
    comp = doc["comparison"]
    assert comp["tonal_distance_after_db"] < comp["tonal_distance_before_db"]
    assert comp["verdict"].startswith("better")
    assert len(doc["limiter"]["trace_db"]) >= 100  # 12 s at 10 points a second
    page = render_html(doc)
    assert page.count("<svg") == 3 and page.count("<polyline") >= 5
    assert "<script" not in page and "http" not in page  # self-contained, nothing fetched
    for stage in doc["chain"]["stages"]:
        assert stage["label"] in page


def test_only_louder_is_called_out():
    # The same spectrum before and after: the verdict must not claim an improvement.
    spec = {"centers_hz": [50.0, 100.0, 1000.0, 8000.0], "level_db": [-10.0, -12.0, -20.0, -30.0]}
    before = {"spectrum": spec, "integrated_lufs": -20.0, "plr_db": 14.0, "lra_lu": 6.0}
    after = {"spectrum": spec, "integrated_lufs": -14.0, "plr_db": 9.0, "lra_lu": 5.0}
    chain = {"meta": {"tonal_target": {"name": "balanced master", "level_db": [-8.0, -10.0, -25.0, -30.0]}}}
    comp = loudness_matched_check(before, after, chain)
    assert comp["verdict"].startswith("only louder") and comp["loudness_difference_lu"] == 6.0
    assert tonal_distance_db(before, chain["meta"]["tonal_target"]["level_db"]) > 1.0


def test_html_escapes_file_names():
    x = demo_mix(SR, seconds=4.0)
    d = delivery("broadcast")
    doc = build_report("<script>alert(1)</script>.wav", "m.wav", d, master(x, SR, d), fake_written())
    page = render_html(doc)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert re.search(r"-23 LUFS at -1 dBTP", page)
