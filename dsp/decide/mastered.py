"""Does the input already look mastered?

Three independent signs, each a measurement a musician can check:

* **clipped runs**: runs of at least 3 samples at full scale (``Analysis.clipped_runs``), per
  minute; a master clipped on purpose or a mix bounced too hot;
* **low PLR**: true peak minus integrated loudness at or under ``LOW_PLR_DB`` (finished loud
  masters sit at 6-10 dB, unmastered mixes usually at 12-20);
* **brickwalled envelope**: the share of non-silent 100-ms stretches whose sample peak lies
  within ``BRICKWALL_WITHIN_DB`` of the whole track's peak; a limiter flattens every loud
  stretch onto its ceiling (masters 30-90 %, mixes with free transients a few %).

Two of the three make the input "look mastered": the planner then proposes loudness only (gain
and the limiter, no EQ, compression or width changes) and says what it found.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..measure.analysis import Analysis

CLIPPED_RUNS_PER_MIN = 2.0
LOW_PLR_DB = 10.0
BRICKWALL_WITHIN_DB = 1.0
BRICKWALL_SHARE = 0.25
_HOP_S = 0.1
_SILENT_DBFS = -50.0


@dataclasses.dataclass(frozen=True)
class MasteredCheck:
    looks_mastered: bool
    findings: tuple[str, ...]  # the signs that showed, in words with their measurements
    clipped_runs_per_min: float
    plr_db: float
    brickwall_share: float | None  # None when the audio was not available

    def to_dict(self) -> dict[str, object]:
        return {"looks_mastered": self.looks_mastered, "findings": list(self.findings),
                "clipped_runs_per_min": round(self.clipped_runs_per_min, 2), "plr_db": round(self.plr_db, 1),
                "brickwall_share": None if self.brickwall_share is None else round(self.brickwall_share, 3)}

    def summary(self) -> str:
        if not self.looks_mastered:
            return "does not look mastered"
        return "looks already mastered: " + "; ".join(self.findings)


def brickwall_share(x: np.ndarray, sample_rate: int, *, within_db: float = BRICKWALL_WITHIN_DB) -> float:
    """Share (0..1) of non-silent 100-ms hops whose peak is within ``within_db`` of the track's peak."""
    hop = max(1, int(round(_HOP_S * sample_rate)))
    n = (x.shape[1] // hop) * hop
    if n == 0:
        return 0.0
    peaks = np.abs(np.asarray(x[:, :n], dtype=np.float32)).max(axis=0).reshape(-1, hop).max(axis=1)
    top = float(peaks.max())
    if top <= 0.0:
        return 0.0
    loud = peaks > 10 ** (_SILENT_DBFS / 20) * 1.0
    if not loud.any():
        return 0.0
    return float(np.mean(peaks[loud] >= top * 10 ** (-within_db / 20)))


def check_mastered(a: Analysis, x: np.ndarray | None = None) -> MasteredCheck:
    """Look for the three signs in ``a`` (and in the audio ``x``, for the envelope)."""
    minutes = max(a.duration_s / 60.0, 1e-6)
    runs_per_min = a.clipped_runs / minutes
    share = brickwall_share(x, a.sample_rate) if x is not None else None
    findings = []
    if runs_per_min >= CLIPPED_RUNS_PER_MIN:
        findings.append(f"{a.clipped_runs} clipped runs ({runs_per_min:.1f} per minute)")
    if np.isfinite(a.plr_db) and a.plr_db <= LOW_PLR_DB:
        findings.append(f"PLR {a.plr_db:.1f} dB (finished masters 6-10 dB)")
    if share is not None and share >= BRICKWALL_SHARE and a.sample_peak_dbfs > -3.0:
        findings.append(f"brickwalled: {share:.0%} of the loud 100-ms stretches peak within "
                        f"{BRICKWALL_WITHIN_DB:g} dB of the track's peak")
    return MasteredCheck(len(findings) >= 2, tuple(findings), runs_per_min, float(a.plr_db), share)
