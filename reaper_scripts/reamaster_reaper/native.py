# @noindex
"""A ReaMaster chain (the ``suggest`` reply) written onto REAPER's own FX: ReaEQ, ReaComp, ReaLimit.

Every FX ReaMaster adds is renamed "ReaMaster <what>" (``renamed_name``); running again removes
exactly those and adds fresh ones, so the user's own FX are never touched. Parameters are set by
the value REAPER displays (:mod:`.fxparam`); ReaEQ band types go through ``BANDTYPEx`` with
ReaEQ's internal numbering, ReaLimit's threshold and ceiling through its named config params."""

from __future__ import annotations

from reapy import reascript_api as RPR

from .fxparam import set_by_display, set_named

PREFIX = "ReaMaster "
# ReaEQ's internal BANDTYPEx numbering (not the TrackFX_*EQParam numbering), REAPER_API.md 4.1
REAEQ_BANDTYPE = {"low_shelf": 0, "high_shelf": 1, "low_pass": 3, "high_pass": 4, "notch": 6,
                  "band_pass": 7, "band": 8}
REAEQ_BANDS = 5
REAEQ_GLOBAL_GAIN = 15


def fx_renamed(track: str, fx: int) -> str:
    r = RPR.TrackFX_GetNamedConfigParm(track, fx, "renamed_name", "", 256)
    return r[4] if r[0] else ""


def remove_ours(track: str) -> int:
    """Delete the FX ReaMaster added earlier on ``track``; returns how many."""
    n = 0
    for fx in reversed(range(RPR.TrackFX_GetCount(track))):
        if fx_renamed(track, fx).startswith(PREFIX):
            RPR.TrackFX_Delete(track, fx)
            n += 1
    return n


def _add(track: str, plugin: str, name: str) -> int:
    fx = RPR.TrackFX_AddByName(track, plugin, False, -1)  # -1: always a new instance, at the end
    if fx < 0:
        raise RuntimeError(f"REAPER could not add {plugin}")
    RPR.TrackFX_SetNamedConfigParm(track, fx, "renamed_name", PREFIX + name)
    return fx


def _unique(base: str, taken: list[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base} {k}", k + 1
    return name


def _write_reaeq(track: str, bands: list[dict], gain_db: float, name: str) -> int:
    fx = _add(track, "ReaEQ (Cockos)", name)
    for i in range(REAEQ_BANDS):
        if i >= len(bands):
            RPR.TrackFX_SetNamedConfigParm(track, fx, f"BANDENABLED{i}", "0")
            continue
        b = bands[i]
        RPR.TrackFX_SetNamedConfigParm(track, fx, f"BANDTYPE{i}", str(REAEQ_BANDTYPE[b["type"]]))
        RPR.TrackFX_SetNamedConfigParm(track, fx, f"BANDENABLED{i}", "1")
        set_by_display(track, fx, 3 * i, float(b["freq_hz"]))
        set_by_display(track, fx, 3 * i + 1, float(b.get("gain_db", 0.0)))
        if b.get("bw_oct") is not None:
            set_by_display(track, fx, 3 * i + 2, float(b["bw_oct"]))
    set_by_display(track, fx, REAEQ_GLOBAL_GAIN, gain_db)
    return fx


def write_eq(track: str, params: dict, name: str, notes: list[str], taken: list[str]) -> list[str]:
    """Every enabled band lands: ReaEQ has 5, so bands 6.. go on further instances "<name> 2", ...
    (in series, so the response is the same); the stage's output gain goes on the first."""
    bands = sorted((b for b in params.get("bands", []) if b.get("enabled", True)),
                   key=lambda b: float(b["freq_hz"]))
    names: list[str] = []
    for k in range(0, max(len(bands), 1), REAEQ_BANDS):
        n = _unique(name, taken + names)
        _write_reaeq(track, bands[k:k + REAEQ_BANDS], float(params.get("gain_db", 0.0)) if k == 0 else 0.0, n)
        names.append(n)
    return names


def write_high_pass(track: str, params: dict, name: str, notes: list[str], taken: list[str]) -> list[str]:
    band = {"type": "high_pass", "freq_hz": params.get("freq_hz", 30.0)}
    return write_eq(track, {"bands": [band]}, name, notes, taken)


def write_compressor(track: str, params: dict, name: str, notes: list[str], taken: list[str]) -> list[str]:
    fx = _add(track, "ReaComp (Cockos)", name)
    for pname, key in (("Threshold", "threshold_db"), ("Ratio", "ratio"), ("Attack", "attack_ms"),
                       ("Release", "release_ms"), ("Knee", "knee_db")):
        if key in params and set_named(track, fx, pname, float(params[key])) is None:
            notes.append(f"{name}: ReaComp has no '{pname}' parameter here")
    if float(params.get("makeup_db", 0.0)):
        set_named(track, fx, "Wet", float(params["makeup_db"]))
    return [name]


def write_limiter(track: str, params: dict, name: str, notes: list[str], taken: list[str]) -> list[str]:
    fx = _add(track, "ReaLimit (Cockos)", name)
    RPR.TrackFX_SetNamedConfigParm(track, fx, "THRESHOLD", f"{float(params.get('threshold_db', 0.0)):.2f}")
    RPR.TrackFX_SetNamedConfigParm(track, fx, "CEILING", f"{float(params.get('ceiling_dbtp', -1.0)):.2f}")
    RPR.TrackFX_SetNamedConfigParm(track, fx, "TRUEPEAK", "1")
    if "release_ms" in params:
        set_named(track, fx, "Release", float(params["release_ms"]))
    return [name]


WRITERS = {"eq": ("EQ", write_eq), "high_pass": ("high-pass", write_high_pass),
           "compressor": ("compressor", write_compressor), "limiter": ("limiter", write_limiter)}


def write_chain(track: str, chain: dict) -> tuple[list[str], list[str]]:
    """Replace ReaMaster's FX on ``track`` by the chain's stages; returns (names added, notes on
    stages with no native equivalent here)."""
    remove_ours(track)
    added, notes = [], []
    for st in chain.get("stages", []):
        if not st.get("enabled", True):
            continue
        kind = st["kind"]
        if kind not in WRITERS:
            notes.append(f"{st.get('label') or kind}: no native REAPER FX for '{kind}' yet; left out")
            continue
        label, writer = WRITERS[kind]
        if kind == "eq" and st.get("label") == "resonance control":  # its narrow cuts on their own instance
            label = "resonance EQ"
        added += writer(track, st.get("params", {}), _unique(label, added), notes, added)
    return added, notes
