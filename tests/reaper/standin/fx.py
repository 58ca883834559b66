"""Native FX of the stand-in: parameter tables, native<->display mappings, named config params.

Mappings follow REAPER_API.md section 4. Every plugin gets REAPER's three appended parameters
(Bypass, Wet, Delta). Values are stored *native* (the range ``TrackFX_GetParam`` reports at [4]/[5]);
normalised = (native - lo) / (hi - lo). Display strings are bare numbers in REAPER's style
("-inf", "+0.0", "1160.5"). Uncertain mappings (marked [?] in the doc) are chosen as noted
inline. The stand-in does not process audio through FX: renders are dry.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

# --- display helpers --------------------------------------------------------------------------------

def _db_text(db: float) -> str:
    if not math.isfinite(db) or db <= -150.0:
        return "-inf"
    return f"{db:+.1f}"


def _amp_db(amp: float) -> float:
    return 20.0 * math.log10(amp) if amp > 0 else -math.inf


def eq_freq_hz(n: float) -> float:
    """ReaEQ/ReaXcomp frequency curve: normalised 0..1 -> 20..24000 Hz."""
    return 20.0 + (24000.0 - 20.0) * (401.0 ** n - 1.0) / 400.0


def eq_freq_norm(hz: float) -> float:
    return math.log(1.0 + 400.0 * (hz - 20.0) / 23980.0) / math.log(401.0)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    lo: float
    hi: float
    default: float                      # native
    show: Callable[[float], str]        # native -> display text

    def norm(self, native: float) -> float:
        return (native - self.lo) / (self.hi - self.lo)

    def native(self, norm: float) -> float:
        return self.lo + norm * (self.hi - self.lo)


def _raw(v: float) -> str:  # parameters whose display scale is not established [?]
    return f"{v:.3f}"


def _toggle(v: float) -> str:
    return "On" if v >= 0.5 else "Off"


APPENDED = (
    ParamSpec("Bypass", 0.0, 1.0, 0.0, _toggle),
    ParamSpec("Wet", 0.0, 1.0, 1.0, lambda v: f"{100.0 * v:.1f}"),
    ParamSpec("Delta", 0.0, 1.0, 0.0, _toggle),
)
APPENDED_IDENTS = (":bypass", ":wet", ":delta")


# --- ReaEQ ------------------------------------------------------------------------------------------

# ReaEQ's internal BANDTYPEx numbering -> EQParam API numbering (section 4.1).
EQ_INTERNAL_TO_API = {0: 1, 1: 4, 2: 2, 3: 5, 4: 0, 5: 2, 6: 3, 7: 6, 8: 2, 9: 2}
_EQ_BANDS = (  # (label used in the names, internal type at creation, default freq/gain/bw normalised)
    ("Low Shelf", 0, 0.283, 0.25, 0.295),
    ("Band 2", 8, 0.290, 0.25, 0.5),
    ("Band 3", 8, 0.476, 0.25, 0.5),
    ("High Shelf 4", 1, 0.726, 0.25, 0.2),
    ("High Pass 5", 4, 0.193, 0.25, 0.5),
)


# Band types a user default preset may hold, with the label REAPER names their parameters by.
EQ_LABELS = {0: "Low Shelf", 1: "High Shelf", 3: "Low Pass", 4: "High Pass", 6: "Notch", 7: "Bandpass", 8: "Band"}


def eq_bands_for_types(types: list[int]) -> tuple:
    """A user default preset's band layout (``_EQ_BANDS`` form) from its internal band types; REAPER
    numbers bands from the second on ("Band 2", "High Shelf 4"): the parameters follow the preset."""
    out = []
    for i, ty in enumerate(types):
        label = EQ_LABELS[ty] if i == 0 else f"{EQ_LABELS[ty]} {i + 1}"
        out.append((label, ty, 0.3 + 0.1 * i, 0.25, 0.5))
    return tuple(out)


def _reaeq_params(bands: tuple = _EQ_BANDS) -> tuple[ParamSpec, ...]:
    ps = []
    for label, _t, f, g, bw in bands:
        ps.append(ParamSpec(f"Freq-{label}", 0.0, 1.0, f, lambda n: f"{eq_freq_hz(n):.1f}"))
        ps.append(ParamSpec(f"Gain-{label}", 0.0, 1.0, g, lambda n: _db_text(_amp_db(n / 0.25))))
        ps.append(ParamSpec(f"BW-{label}", 0.0, 1.0, bw, lambda n: f"{4.0 * n:.2f}"))
    ps.append(ParamSpec("Global Gain", 0.0, 4.0, 1.0, lambda a: _db_text(_amp_db(a))))
    return tuple(ps)


# --- ReaComp ----------------------------------------------------------------------------------------

def _ratio_text(v: float) -> str:
    return "inf:1" if v >= 1.0 else f"{1.0 + 99.0 * v:.1f}:1"


def _reacomp_params() -> tuple[ParamSpec, ...]:
    db = lambda a: _db_text(_amp_db(a))  # noqa: E731
    return (
        ParamSpec("Threshold", 0.0, 2.0, 1.0, db),
        ParamSpec("Ratio", 0.0, 1.0, 3.0 / 99.0, _ratio_text),
        ParamSpec("Attack", 0.0, 1.0, 0.006, lambda v: f"{500.0 * v:.1f}"),
        ParamSpec("Release", 0.0, 1.0, 0.02, lambda v: f"{5000.0 * v:.0f}"),
        ParamSpec("Pre-comp", 0.0, 1.0, 0.0, _raw),
        ParamSpec("resvd", 0.0, 1.0, 0.0, _raw),
        ParamSpec("Lowpass", 0.0, 1.0, 1.0, _raw),
        ParamSpec("Hipass", 0.0, 1.0, 0.0, _raw),
        ParamSpec("SignIn", 0.0, 1.0, 0.0, _raw),
        ParamSpec("AudIn", 0.0, 1.0, 0.0, _raw),
        ParamSpec("Dry", 0.0, 2.0, 10.0 ** (-150.0 / 20.0), db),
        ParamSpec("Wet", 0.0, 2.0, 1.0, db),
        ParamSpec("Filter Preview", 0.0, 1.0, 0.0, _toggle),
        ParamSpec("RMS size", 0.0, 10.0, 0.05, lambda v: f"{100.0 * v:.1f}"),
        ParamSpec("Knee", 0.0, 1.0, 0.0, lambda v: f"{24.0 * v:.1f}"),
        ParamSpec("Auto Make Up Gain", 0.0, 1.0, 0.0, _toggle),
        ParamSpec("Auto Release", 0.0, 1.0, 0.0, _toggle),
        ParamSpec("Legacy Attack/Knee Options", 0.0, 1.0, 0.25, _raw),
        ParamSpec("Deprecated Broken Anti-Alias", 0.0, 1.0, 0.0, _raw),
        ParamSpec("Multichannel Mode", 0.0, 1.0, 0.0, _raw),
        ParamSpec("Metering Index", 0.0, 1.0, 0.0, _raw),
    )


# --- ReaLimit ---------------------------------------------------------------------------------------

def limit_threshold_db(n: float) -> float:
    return -60.0 + 72.0 * n


def limit_ceiling_db(n: float) -> float:
    # [?] Not established: chosen linear -60..0 dB so that the documented default 1.0 reads 0 dB.
    return -60.0 + 60.0 * n


# [?] Release curve not established: ms = 1000 * n^k with k fitted so the default 0.3548 reads 15 ms.
_REL_K = math.log(0.015) / math.log(0.3548)


def _realimit_params() -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("Threshold", 0.0, 1.0, 60.0 / 72.0, lambda n: _db_text(limit_threshold_db(n))),
        ParamSpec("Ceiling", 0.0, 1.0, 1.0, lambda n: _db_text(limit_ceiling_db(n))),
        ParamSpec("Release", 0.0, 1.0, 0.3548, lambda n: f"{1000.0 * n ** _REL_K:.1f}"),
    )


# --- ReaXcomp (single LLM-assisted source, all [?]) --------------------------------------------------

def xcomp_amp(n: float) -> float:
    """Gain/threshold: 0.5 = 0 dB, amp = 2n below; above, linear in dB up to +12 dB at 1.0 [?]."""
    return 2.0 * n if n <= 0.5 else 10.0 ** (24.0 * (n - 0.5) / 20.0)


_XRATIO_PTS = ((0.25, 1.0), (0.325, 2.0), (0.5, 12.0), (1.0, 100.0))


def xcomp_ratio(n: float) -> float:
    """Piecewise log-linear through the reported points; 1:1 below 0.25 [?]."""
    if n <= 0.25:
        return 1.0
    for (x0, r0), (x1, r1) in zip(_XRATIO_PTS, _XRATIO_PTS[1:]):
        if n <= x1:
            t = (n - x0) / (x1 - x0)
            return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))
    return 100.0


def _xknee_db(n: float) -> float:
    return 12.0 * n if n <= 0.5 else 6.0 + 36.0 * (n - 0.5)


def _reaxcomp_params() -> tuple[ParamSpec, ...]:
    ps = []
    tops = (eq_freq_norm(200.0), eq_freq_norm(1000.0), eq_freq_norm(5000.0), 1.0)
    for b in range(1, 5):
        ps += [
            ParamSpec(f"{b}-Band top frequency", 0.0, 1.0, tops[b - 1], lambda n: f"{eq_freq_hz(n):.1f}"),
            ParamSpec(f"{b}-Gain", 0.0, 1.0, 0.5, lambda n: _db_text(_amp_db(xcomp_amp(n)))),
            ParamSpec(f"{b}-Threshold", 0.0, 1.0, 0.5, lambda n: _db_text(_amp_db(xcomp_amp(n)))),
            ParamSpec(f"{b}-Ratio", 0.0, 1.0, 0.325, lambda n: f"{xcomp_ratio(n):.1f}:1"),
            ParamSpec(f"{b}-Knee", 0.0, 1.0, 0.0, lambda n: f"{_xknee_db(n):.1f}"),
            ParamSpec(f"{b}-Attack", 0.0, 1.0, 15.0 / 250.0, lambda n: f"{250.0 * n:.1f}"),
            ParamSpec(f"{b}-Release", 0.0, 1.0, math.sqrt(150.0 / 2000.0), lambda n: f"{2000.0 * n * n:.1f}"),
            ParamSpec(f"{b}-RMS", 0.0, 1.0, 5.0 / 250.0, lambda n: f"{250.0 * n:.1f}"),
            ParamSpec(f"{b}-Make Up Gain", 0.0, 1.0, 1.0, _toggle),
            ParamSpec(f"{b}-Auto Release", 0.0, 1.0, 0.0, _toggle),
            ParamSpec(f"{b}-FeedBack Detector", 0.0, 1.0, 0.0, _toggle),
            ParamSpec(f"{b}-Active", 0.0, 1.0, 1.0, _toggle),
        ]
    return tuple(ps)


# --- plugin catalogue -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PluginSpec:
    full_name: str       # "ReaEQ (Cockos)"
    file_stem: str       # "reaeq"
    params: tuple[ParamSpec, ...]

    @property
    def short_name(self) -> str:
        return self.full_name.replace(" (Cockos)", "")

    @property
    def display_name(self) -> str:
        return "VST: " + self.full_name


PLUGINS = {
    "reaeq": PluginSpec("ReaEQ (Cockos)", "reaeq", _reaeq_params()),
    "reacomp": PluginSpec("ReaComp (Cockos)", "reacomp", _reacomp_params()),
    "realimit": PluginSpec("ReaLimit (Cockos)", "realimit", _realimit_params()),
    "reaxcomp": PluginSpec("ReaXcomp (Cockos)", "reaxcomp", _reaxcomp_params()),
}

_PREFIX_RE = re.compile(r"^\s*(VST2?|VST3|AU|JS|DX|CLAP|FXADD)\s*:\s*", re.IGNORECASE)


def find_plugin(fxname: str) -> PluginSpec | None:
    """Match a ``TrackFX_AddByName`` name: optional "VST:"/"VST2:" prefix, then the full name, the
    short name or the file stem, case-insensitively ([?] doc 9.11). Stock ReaPlugs are VST2 only,
    so other prefixes do not match."""
    m = _PREFIX_RE.match(fxname or "")
    if m and m.group(1).upper() not in ("VST", "VST2"):
        return None
    name = (fxname[m.end():] if m else fxname or "").strip().lower()
    for spec in PLUGINS.values():
        if name in (spec.full_name.lower(), spec.short_name.lower(), spec.file_stem):
            return spec
    return None


def param_ident(index: int, name: str) -> str:
    return f"{index}:_" + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


@dataclass
class FXInstance:
    """One FX in a chain. ``values`` are native, including Bypass/Wet/Delta."""

    spec: PluginSpec
    values: list[float] = field(default_factory=list)
    renamed: str = ""
    offline: bool = False
    band_types: list[int] = field(default_factory=list)      # ReaEQ internal BANDTYPEx
    band_enabled: list[bool] = field(default_factory=list)
    truepeak: bool = False
    eq_layout: tuple = ()   # ReaEQ: the band layout of the user's default preset (``_EQ_BANDS`` form)
    own: tuple = ()

    def __post_init__(self) -> None:
        self.own = _reaeq_params(self.eq_layout) if self.spec.file_stem == "reaeq" and self.eq_layout \
            else self.spec.params
        if not self.values:
            self.values = [p.default for p in self.all_params]
        if self.spec.file_stem == "reaeq" and not self.band_types:
            layout = self.eq_layout or _EQ_BANDS
            self.band_types = [t for _l, t, *_ in layout]
            # [?] one source says the High Pass 5 band is disabled in a fresh stock instance.
            self.band_enabled = [True] * len(layout) if self.eq_layout else [True, True, True, True, False]

    @property
    def n_bands(self) -> int:
        return len(self.band_types)

    @property
    def all_params(self) -> tuple[ParamSpec, ...]:
        return self.own + APPENDED

    @property
    def n_params(self) -> int:
        return len(self.all_params)

    @property
    def name(self) -> str:
        return self.renamed or self.spec.display_name

    @property
    def enabled(self) -> bool:
        return self.values[self.n_params - 3] < 0.5

    @enabled.setter
    def enabled(self, on: bool) -> None:
        self.values[self.n_params - 3] = 0.0 if on else 1.0

    def ident(self, i: int) -> str:
        own = len(self.own)
        return APPENDED_IDENTS[i - own] if i >= own else param_ident(i, self.own[i].name)

    def set_native(self, i: int, v: float) -> None:
        p = self.all_params[i]
        self.values[i] = min(max(float(v), p.lo), p.hi)

    def get_norm(self, i: int) -> float:
        return self.all_params[i].norm(self.values[i])

    def set_norm(self, i: int, n: float) -> None:
        self.set_native(i, self.all_params[i].native(min(max(float(n), 0.0), 1.0)))

    def format_native(self, i: int, v: float) -> str:
        p = self.all_params[i]
        return p.show(min(max(float(v), p.lo), p.hi))

    # --- named config params ------------------------------------------------------------------------
    def get_named(self, key: str) -> str | None:
        k = key.lower()
        if k == "renamed_name":
            return self.renamed
        if k == "fx_name":
            return self.spec.display_name
        if k == "fx_type":
            return "VST"
        if k == "fx_ident":
            return f"{self.spec.file_stem}.vst.so<{self.spec.short_name}>"  # [?] platform-specific
        if k == "pdc":
            return "0"
        stem = self.spec.file_stem
        if stem == "reaeq":
            m = re.fullmatch(r"(BANDTYPE|BANDENABLED)(\d+)", key)
            if m and int(m.group(2)) < len(self.band_types):
                b = int(m.group(2))
                return str(self.band_types[b] if m.group(1) == "BANDTYPE" else int(self.band_enabled[b]))
        if stem == "realimit":
            if key == "THRESHOLD":
                return f"{limit_threshold_db(self.values[0]):.2f}"
            if key == "CEILING":
                return f"{limit_ceiling_db(self.values[1]):.2f}"
            if key == "TRUEPEAK":
                return "1" if self.truepeak else "0"
        if stem in ("reacomp", "realimit", "reaxcomp") and key == "GainReduction_dB":
            return "0"  # the stand-in renders dry: no gain reduction
        return None

    def set_named(self, key: str, value: str) -> bool:
        k = key.lower()
        if k == "renamed_name":
            self.renamed = value or ""
            return True
        try:
            if self.spec.file_stem == "reaeq":
                m = re.fullmatch(r"(BANDTYPE|BANDENABLED)(\d+)", key)
                if m and int(m.group(2)) < len(self.band_types):
                    b, v = int(m.group(2)), int(float(value))
                    if m.group(1) == "BANDTYPE":
                        if v not in EQ_INTERNAL_TO_API:
                            return False
                        self.band_types[b] = v
                    else:
                        self.band_enabled[b] = v != 0
                    return True
            if self.spec.file_stem == "realimit":
                if key == "THRESHOLD":
                    self.set_native(0, (float(value) + 60.0) / 72.0)
                    return True
                if key == "CEILING":
                    self.set_native(1, (float(value) + 60.0) / 60.0)
                    return True
                if key == "TRUEPEAK":
                    self.truepeak = float(value) != 0
                    return True
        except ValueError:
            return False
        return False

    # --- ReaEQ EQParam API ----------------------------------------------------------------------------
    def eq_band_of_param(self, i: int) -> tuple[int, int, int] | None:
        """(api bandtype, bandidx among bands of that type, paramtype) of parameter ``i``."""
        if self.spec.file_stem != "reaeq":
            return None
        if i == 3 * self.n_bands:
            return (-1, 0, 0)
        if not 0 <= i < 3 * self.n_bands:
            return None
        band, ptype = divmod(i, 3)
        api = EQ_INTERNAL_TO_API[self.band_types[band]]
        idx = sum(1 for b in range(band) if EQ_INTERNAL_TO_API[self.band_types[b]] == api)
        return (api, idx, ptype)

    def eq_band_index(self, bandtype: int, bandidx: int) -> int | None:
        """Band number (0..4) of the ``bandidx``-th band whose API type is ``bandtype``."""
        if self.spec.file_stem != "reaeq":
            return None
        found = [b for b in range(self.n_bands) if EQ_INTERNAL_TO_API[self.band_types[b]] == bandtype]
        return found[bandidx] if 0 <= bandidx < len(found) else None

    def eq_set(self, bandtype: int, bandidx: int, paramtype: int, val: float, isnorm: bool) -> bool:
        """``TrackFX_SetEQParam``; real units when not normalised are [?]: Hz, dB, octaves."""
        if self.spec.file_stem != "reaeq":
            return False
        if bandtype == -1:
            g = 3 * self.n_bands
            self.set_norm(g, val) if isnorm else self.set_native(g, 10.0 ** (val / 20.0))
            return True
        band = self.eq_band_index(bandtype, bandidx)
        if band is None or paramtype not in (0, 1, 2):
            return False
        i = band * 3 + paramtype
        if isnorm:
            self.set_norm(i, val)
        elif paramtype == 0:
            self.set_native(i, eq_freq_norm(min(max(val, 20.0), 24000.0)))
        elif paramtype == 1:
            self.set_native(i, 0.25 * 10.0 ** (val / 20.0))
        else:
            self.set_native(i, val / 4.0)
        return True
