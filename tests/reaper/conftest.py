"""Fixtures that run the REAL python-reapy on the in-memory REAPER stand-in (tests/reaper/standin).

* ``reaper_host`` (module): ``reaper_python`` in ``sys.modules``, a REAPER-like ``__main__``
  (``obj``, ``RPR_*``, ``RPR_defer``/``RPR_atexit``/``RPR_runloop``), restored afterwards.
* ``reapy`` (module): a fresh ``import reapy`` that takes the inside-REAPER path; any reapy that
  was imported before (outside path) is put back afterwards. The dist API is never enabled.
* ``rpr`` / ``rpr_pristine`` (function): the stand-in ``reaper_python`` module; the pristine one
  has the generated ``rpr_packp`` back (reapy swaps in a version without the ValidatePtr check).
* ``reaper`` (function): a fresh REAPER state under ``tmp_path`` (one unsaved, empty project);
  fails the test if an API implementation raised (the C boundary swallows exceptions).
"""

from __future__ import annotations

import os
import sys

import pytest

if os.path.dirname(__file__) not in sys.path:  # also under --import-mode=importlib
    sys.path.insert(0, os.path.dirname(__file__))

import standin  # noqa: E402


def _reapy_modules() -> dict:
    return {k: v for k, v in sys.modules.items() if k == "reapy" or k.startswith("reapy.")}


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path_factory, monkeypatch):
    """No test writes ReaMaster's real config folder (install copies the location file there)."""
    if "REAMASTER_CONFIG_DIR" not in os.environ:
        monkeypatch.setenv("REAMASTER_CONFIG_DIR", str(tmp_path_factory.mktemp("rm_config")))


@pytest.fixture(scope="module")
def reaper_host(tmp_path_factory):
    host = standin.install()
    standin.reset(tmp_path_factory.mktemp("reaper_boot"))
    try:
        yield host
    finally:
        standin.uninstall()


@pytest.fixture(scope="module")
def reapy(reaper_host):
    saved = _reapy_modules()
    for k in saved:
        del sys.modules[k]
    import reapy as inside_reapy
    assert inside_reapy.is_inside_reaper(), "reapy did not take the inside-REAPER path"
    try:
        yield inside_reapy
    finally:
        for k in _reapy_modules():
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture
def reaper(reaper_host, tmp_path):
    app = standin.reset(tmp_path / "reaper")
    yield app
    errs = list(standin.errors())
    assert not errs, "REAPER stand-in API raised:\n" + "\n".join(errs)
    assert app.undo_depth == 0, "unbalanced Undo_BeginBlock/Undo_EndBlock"
    assert app.ui_refresh_count == 0, "unbalanced PreventUIRefresh"


@pytest.fixture
def rpr(reaper_host):
    """The stand-in ``reaper_python`` module (RPR_* functions)."""
    return sys.modules["reaper_python"]


@pytest.fixture
def rpr_pristine(rpr):
    """``reaper_python`` with the generated ``rpr_packp`` (pointer check via ValidatePtr) even if
    reapy, imported earlier in this process, replaced it; reapy's version is put back afterwards."""
    current = rpr.rpr_packp
    rpr.rpr_packp = rpr._generated_rpr_packp
    try:
        yield rpr
    finally:
        rpr.rpr_packp = current
