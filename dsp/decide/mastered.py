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

from ..measure.analysis import BRICKWALL_WITHIN_DB, Analysis

CLIPPED_RUNS_PER_MIN = 2.0
LOW_PLR_DB = 10.0
BRICKWALL_SHARE = 0.25


@dataclasses.dataclass(frozen=True)
class MasteredCheck:
    looks_mastered: bool
    findings: tuple[str, ...]  # the signs that showed, in words with their measurements
    clipped_runs_per_min: float
    plr_db: float
    brickwall_share: float

    def to_dict(self) -> dict[str, object]:
        return {"looks_mastered": self.looks_mastered, "findings": list(self.findings),
                "clipped_runs_per_min": round(self.clipped_runs_per_min, 2), "plr_db": round(self.plr_db, 1),
                "brickwall_share": round(self.brickwall_share, 3)}

    def summary(self) -> str:
        if not self.looks_mastered:
            return "does not look mastered"
        return "looks already mastered: " + "; ".join(self.findings)


def check_mastered(a: Analysis) -> MasteredCheck:
    """Look for the three signs in the analysis (the same whether it was measured in memory or streamed)."""
    minutes = max(a.duration_s / 60.0, 1e-6)
    runs_per_min = a.clipped_runs / minutes
    share = a.brickwall_share
    findings = []
    if runs_per_min >= CLIPPED_RUNS_PER_MIN:
        findings.append(f"{a.clipped_runs} clipped runs ({runs_per_min:.1f} per minute)")
    if np.isfinite(a.plr_db) and a.plr_db <= LOW_PLR_DB:
        findings.append(f"PLR {a.plr_db:.1f} dB (finished masters 6-10 dB)")
    if share >= BRICKWALL_SHARE and a.sample_peak_dbfs > -3.0:
        findings.append(f"brickwalled: {share:.0%} of the loud 100-ms stretches peak within "
                        f"{BRICKWALL_WITHIN_DB:g} dB of the track's peak")
    return MasteredCheck(len(findings) >= 2, tuple(findings), runs_per_min, float(a.plr_db), share)
