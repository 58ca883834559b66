# @noindex
"""A ReaMaster chain (the ``suggest`` reply) written onto REAPER's own FX: ReaEQ, ReaComp, ReaLimit.

Every FX ReaMaster adds is renamed "ReaMaster <what>" (``renamed_name``); running again removes
exactly those and adds fresh ones, so the user's own FX are never touched. Parameters are set by
the value REAPER displays (:mod:`.fxparam`) and read back. ReaEQ's band count follows the user's
default preset, so it is read (``BANDTYPE<n>`` until ``TrackFX_GetNamedConfigParm`` fails, as OSARA
does) and its parameters are found by name (the n-th "Freq-", "Gain-", "BW-"/"Q-" parameter is band
n's; "Global Gain" by name), never by a fixed index. Band types go through ``BANDTYPEx`` (ReaEQ's
internal numbering); every ``TrackFX_SetNamedConfigParm`` return is checked."""

from __future__ import annotations

from reapy import reascript_api as RPR

from .fxparam import param_index, set_by_display, set_named
from .host import UserError

PREFIX = "ReaMaster "
# ReaEQ's internal BANDTYPEx numbering (not the TrackFX_*EQParam numbering), REAPER_API.md 4.1
REAEQ_BANDTYPE = {"low_shelf": 0, "high_shelf": 1, "low_pass": 3, "high_pass": 4, "notch": 6,
                  "band_pass": 7, "band": 8}
MAX_BANDS = 64  # enumeration bound (ReaEQ allows many bands; a preset with more is not expected)
DB_TOLERANCE = 0.06  # displayed dB values are shown to 0.1 dB


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
    set_config(track, fx, "renamed_name", PREFIX + name)
    return fx


def set_config(track: str, fx: int, key: str, value: str) -> None:
    """``TrackFX_SetNamedConfigParm``, checked: REAPER returns false when the FX does not take it."""
    if not RPR.TrackFX_SetNamedConfigParm(track, fx, key, value):
        raise UserError(f"REAPER refused setting {key}={value} on {RPR.TrackFX_GetFXName(track, fx, '', 256)[3]}; "
                        f"nothing after it was written (ReaMaster's FX so far are named 'ReaMaster ...').")


def reaeq_band_count(track: str, fx: int) -> int:
    """How many bands this ReaEQ has (its default preset decides): BANDTYPE<n> until it fails."""
    n = 0
    while n < MAX_BANDS and RPR.TrackFX_GetNamedConfigParm(track, fx, f"BANDTYPE{n}", "", 64)[0]:
        n += 1
    return n


def reaeq_params(track: str, fx: int) -> dict:
    """{"freq": [...], "gain": [...], "bw": [...], "global": idx or -1}: parameter indices by name."""
    out: dict = {"freq": [], "gain": [], "bw": [], "global": -1}
    for i in range(RPR.TrackFX_GetNumParams(track, fx)):
        name = RPR.TrackFX_GetParamName(track, fx, i, "", 256)[4]
        if name == "Global Gain":
            out["global"] = i
        elif name.startswith("Freq-"):
            out["freq"].append(i)
        elif name.startswith("Gain-"):
            out["gain"].append(i)
        elif name.startswith(("BW-", "Q-")):
            out["bw"].append(i)
    return out


def _unique(base: str, taken: list[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base} {k}", k + 1
    return name


def _check(name: str, what: str, got: float | None, want: float, tol: float, notes: list[str]) -> None:
    if got is None or abs(got - want) > tol:
        notes.append(f"{name}: {what} shows {got} instead of {want:g}")


def _write_reaeq(track: str, fx: int, bands: list[dict], gain_db: float, name: str, notes: list[str]) -> None:
    n = reaeq_band_count(track, fx)
    ps = reaeq_params(track, fx)
    if min(len(ps["freq"]), len(ps["gain"])) < n or ps["global"] < 0:
        raise UserError(f"{name}: ReaEQ's parameters are not the ones ReaMaster knows (Freq-/Gain-/Global Gain); "
                        f"nothing more was written.")
    for i in range(n):
        if i >= len(bands):
            set_config(track, fx, f"BANDENABLED{i}", "0")
            continue
        b = bands[i]
        set_config(track, fx, f"BANDTYPE{i}", str(REAEQ_BANDTYPE[b["type"]]))
        set_config(track, fx, f"BANDENABLED{i}", "1")
        f = float(b["freq_hz"])
        _check(name, f"band {i + 1} frequency", set_by_display(track, fx, ps["freq"][i], f), f, 0.01 * f + 0.5, notes)
        if b["type"] in ("low_shelf", "high_shelf", "band"):
            g = float(b.get("gain_db", 0.0))
            _check(name, f"band {i + 1} gain", set_by_display(track, fx, ps["gain"][i], g), g, DB_TOLERANCE, notes)
        if b.get("bw_oct") is not None and i < len(ps["bw"]):
            set_by_display(track, fx, ps["bw"][i], float(b["bw_oct"]))
    _check(name, "global gain", set_by_display(track, fx, ps["global"], gain_db), gain_db, DB_TOLERANCE, notes)


def write_eq(track: str, params: dict, name: str, notes: list[str], taken: list[str]) -> list[str]:
    """Every enabled band lands: bands beyond one ReaEQ's count (its default preset's) go on further
    instances "<name> 2", ... (in series, so the response is the same); the stage's gain on the first."""
    bands = sorted((b for b in params.get("bands", []) if b.get("enabled", True)),
                   key=lambda b: float(b["freq_hz"]))
    names: list[str] = []
    k = 0
    while True:
        n = _unique(name, taken + names)
        fx = _add(track, "ReaEQ (Cockos)", n)
        count = reaeq_band_count(track, fx)
        if count == 0:
            raise UserError(f"{n}: this ReaEQ reports no bands (BANDTYPE0 unknown); nothing more was written.")
        _write_reaeq(track, fx, bands[k:k + count], float(params.get("gain_db", 0.0)) if k == 0 else 0.0, n, notes)
        names.append(n)
        k += count
        if k >= len(bands):
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
    """ReaLimit by displayed value (Threshold, Ceiling, Release), each read back; true-peak mode on."""
    fx = _add(track, "ReaLimit (Cockos)", name)
    for pname, key, default in (("Threshold", "threshold_db", 0.0), ("Ceiling", "ceiling_dbtp", -1.0),
                                ("Release", "release_ms", None)):
        if key not in params and default is None:
            continue
        want = float(params.get(key, default))
        if param_index(track, fx, pname) < 0:
            raise UserError(f"{name}: ReaLimit has no '{pname}' parameter here; nothing more was written.")
        got = set_named(track, fx, pname, want)
        if key == "release_ms":
            _check(name, "release", got, want, 0.02 * want + 0.5, notes)
        elif got is None or abs(got - want) > DB_TOLERANCE:
            raise UserError(f"{name}: ReaLimit's {pname} shows {got} instead of {want:g}; check it by hand.")
    set_config(track, fx, "TRUEPEAK", "1")
    split_hz = float(params.get("treble_split_hz", 0.0))
    if split_hz:
        notes.append(f"{name}: ReaLimit has one full-band gain; ReaMaster's steady treble above {split_hz:g} Hz "
                     "is left out, so here the hats and cymbals move with every peak it takes")
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
