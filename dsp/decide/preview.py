"""The fast preview: which stretch of a song to master, and how loud it should play.

A preview masters only the loudest ``seconds`` of the song (where the limiter and the tone
decisions are heard most), with the chain decided from the whole file. The stretch is mastered
to the loudness it has relative to the whole mix, so a chorus 3 LU above the song's integrated
loudness previews 3 LU above the target; the limiter's depth is then close to, not exactly,
what the whole song gets (the full master converges on the whole file).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import ParameterError
from ..measure.analysis import Analysis
from ..measure.loudness import gated_loudness_of_hops

#: the preview lengths a user may ask for, s
PREVIEW_SECONDS_MIN, PREVIEW_SECONDS_MAX = 5.0, 120.0
#: how far above the target a loud stretch may preview, LU (a stretch far louder than the song
#: would otherwise be limited much harder than it will be in the master)
MAX_OFFSET_LU = 6.0


@dataclasses.dataclass(frozen=True)
class PreviewWindow:
    """The stretch to preview: ``start_s``..``end_s`` of the file, its loudness in the mix and how
    far that stands from the song's integrated loudness (``offset_lu``, bounded by MAX_OFFSET_LU)."""

    start_s: float
    end_s: float
    section_lufs: float
    offset_lu: float


def check_preview_seconds(seconds: float) -> float:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)
            and PREVIEW_SECONDS_MIN <= seconds <= PREVIEW_SECONDS_MAX):
        raise ParameterError(f"--preview takes {PREVIEW_SECONDS_MIN:g} to {PREVIEW_SECONDS_MAX:g} seconds, "
                             f"got {seconds!r}")
    return float(seconds)


def loudest_window(a: Analysis, seconds: float) -> PreviewWindow:
    """The ``seconds`` (5-120 s; the whole song when it is shorter) of highest mean K-weighted
    power, on the analysis' 100 ms loudness hops."""
    seconds = check_preview_seconds(seconds)
    energy = np.asarray(a.loudness.hop_energy, dtype=np.float64)
    hop_s = a.loudness.hop_s
    n = max(1, int(round(seconds / hop_s)))
    if energy.size <= n:
        return PreviewWindow(0.0, a.duration_s, a.integrated_lufs, 0.0)
    csum = np.concatenate(([0.0], np.cumsum(energy)))
    k = int(np.argmax(csum[n:] - csum[:-n]))
    section = gated_loudness_of_hops(energy[k:k + n])
    offset = section - a.integrated_lufs if math.isfinite(section) and math.isfinite(a.integrated_lufs) else 0.0
    return PreviewWindow(start_s=k * hop_s, end_s=min(a.duration_s, (k + n) * hop_s), section_lufs=section,
                         offset_lu=float(np.clip(offset, -MAX_OFFSET_LU, MAX_OFFSET_LU)))
