"""Delivery presets: loudness target and true-peak ceiling per destination.

Figures follow the platform table in ``shared/design/LANDSCAPE.md`` section 2.
"""

from __future__ import annotations

import dataclasses

from ..errors import ParameterError


@dataclasses.dataclass(frozen=True)
class Delivery:
    name: str
    target_lufs: float
    ceiling_dbtp: float
    bit_depth: int  # default output word length
    note: str


PRESETS: dict[str, Delivery] = {
    d.name: d
    for d in (
        Delivery("streaming", -14.0, -1.0, 24, "Spotify, Tidal, Amazon, YouTube Music normalise to about -14 LUFS; "
                 "-1 dBTP leaves room for lossy encoding"),
        Delivery("apple", -16.0, -1.0, 24, "Apple Music Sound Check plays near -16 LUFS; Apple asks for -1 dBTP "
                 "because AAC raises peaks"),
        Delivery("youtube", -14.0, -1.0, 24, "YouTube turns louder uploads down to about -14 LUFS and never up"),
        Delivery("club", -8.0, -0.5, 24, "club and DJ stores do not normalise; masters run -6 to -9 LUFS"),
        Delivery("cd", -9.0, -0.3, 16, "CD has no normalisation; 16-bit with TPDF dither, -0.3 dBTP ceiling"),
        Delivery("broadcast", -23.0, -1.0, 24, "EBU R128: -23 LUFS integrated, -1 dBTP maximum"),
    )
}
DEFAULT_PRESET = "streaming"


def delivery(name: str | None = None, *, target_lufs: float | None = None,
             ceiling_dbtp: float | None = None) -> Delivery:
    """The named preset (default streaming) with optional overrides, validated."""
    base = PRESETS.get(name or DEFAULT_PRESET)
    if base is None:
        raise ParameterError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    d = dataclasses.replace(
        base,
        target_lufs=base.target_lufs if target_lufs is None else float(target_lufs),
        ceiling_dbtp=base.ceiling_dbtp if ceiling_dbtp is None else float(ceiling_dbtp),
    )
    if not -40.0 <= d.target_lufs <= -3.0:
        raise ParameterError(f"loudness target {d.target_lufs:g} LUFS is outside -40 to -3 LUFS")
    if not -20.0 <= d.ceiling_dbtp <= 0.0:
        raise ParameterError(f"ceiling {d.ceiling_dbtp:g} dBTP is outside -20 to 0 dBTP")
    return d
