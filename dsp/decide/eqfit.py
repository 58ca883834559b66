"""Fitting a ReaEQ-compatible parametric EQ to a tonal correction curve.

The planner knows, per 1/3-octave band, how many dB it wants to add or remove; REAPER's
ReaEQ (and a mastering engineer) think in a handful of shelves and bells. ``fit_eq`` finds
at most ``max_bands`` of them (low shelf, high shelf, bells) with bounded gain and width
whose band-averaged response matches the curve in the least-squares sense:

1. shelves from the mean correction below ~120 Hz and above ~7 kHz;
2. bells placed greedily at the largest remaining error;
3. all parameters refined together by bounded least squares (log frequency, gain, log width),
   with a small penalty on gain so that no band works harder than it must;
4. bands that end up doing less than 0.3 dB are dropped; values rounded for humans and REAPER.

Deterministic: the same curve gives the same EQ.
"""

from __future__ import annotations

import dataclasses
import math
from typing import cast

import numpy as np

from ..params import check_range
from ..process.eq import EqBand, EqParams, band_sos, eq_response_db, sos_response_db

_BAND_EDGE_POINTS = np.array([-1 / 6, -1 / 12, 0.0, 1 / 12, 1 / 6])  # octaves around a band centre
_MIN_GAIN_DB = 0.3  # bands doing less than this are dropped
_FIT_TOL = 1e-4  # least-squares stopping tolerance (relative change of cost, step and gradient)


@dataclasses.dataclass(frozen=True)
class FitResult:
    eq: EqParams
    rms_error_db: float  # weighted RMS of (fitted response - target) over the bands
    max_error_db: float


def band_response_db(params: EqParams, sample_rate: int, centers_hz: np.ndarray) -> np.ndarray:
    """The EQ's effect on each 1/3-octave band's power (power average over the band), dB."""
    return _band_average_db(eq_response_db(params, sample_rate, _band_points_hz(centers_hz, sample_rate)))


def _band_points_hz(centers_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    f = np.asarray(centers_hz, dtype=float)[:, None] * 2.0 ** _BAND_EDGE_POINTS[None, :]
    return np.minimum(f, 0.499 * sample_rate)


def _band_average_db(mag_db: np.ndarray) -> np.ndarray:
    band_db: np.ndarray = 10.0 * np.log10(np.mean(10.0 ** (mag_db / 10.0), axis=1))
    return band_db


def _bands_from_vector(v: np.ndarray, kinds: list[str]) -> tuple[EqBand, ...]:
    bands = []
    for i, kind in enumerate(kinds):
        log_f, gain, log_bw = v[3 * i: 3 * i + 3]
        bands.append(EqBand(kind, freq_hz=float(2.0 ** log_f), gain_db=float(gain), bw_oct=float(2.0 ** log_bw)))
    return tuple(bands)


def _fighting_bands(v: np.ndarray, kinds: list[str]) -> list[int]:
    """Bands with a neighbour of the opposite sign within an octave, both doing 1 dB or more."""
    out = []
    for i in range(len(kinds)):
        for j in range(len(kinds)):
            if i != j and v[3 * i + 1] * v[3 * j + 1] < 0 and abs(v[3 * i] - v[3 * j]) < 1.0 \
                    and min(abs(v[3 * i + 1]), abs(v[3 * j + 1])) >= 1.0:
                out.append(i)
                break
    return out


def _without(drop: set[int], kinds: list[str], x: list[float], lo: list[float],
             hi: list[float]) -> tuple[list[str], list[float], list[float], list[float]]:
    """``kinds``, the parameters and their bounds (three values a band) without the bands in ``drop``."""
    keep = [i for i in range(len(kinds)) if i not in drop]

    def rows(v: list[float]) -> list[float]:
        return [v[3 * i + j] for i in keep for j in range(3)]

    return [kinds[i] for i in keep], rows(x), rows(lo), rows(hi)


def _twin_bells(v: np.ndarray, kinds: list[str]) -> list[tuple[int, int]]:
    """``(keep, drop)`` pairs of same-sign bells whose centres lie within 1/12 octave of each other
    (opposite signs there shape one move, a wide boost with a narrow cut: the pruning decides)."""
    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for i, ki in enumerate(kinds):
        for j in range(i + 1, len(kinds)):
            if ki == kinds[j] == "band" and i not in used and j not in used and abs(v[3 * i] - v[3 * j]) < 1 / 12 \
                    and v[3 * i + 1] * v[3 * j + 1] > 0:
                pairs.append((i, j))
                used |= {i, j}
    return pairs


def fit_eq(
    centers_hz: np.ndarray,
    target_db: np.ndarray,
    *,
    sample_rate: int,
    weights: np.ndarray | None = None,
    max_bands: int = 6,
    max_gain_db: float = 6.0,
    min_bw_oct: float = 0.33,
    max_bw_oct: float = 3.0,
    gain_penalty: float = 0.02,
    prune_db: float = 0.2,
) -> FitResult:
    """Fit at most ``max_bands`` ReaEQ bands to ``target_db`` at the 1/3-octave ``centers_hz``.

    ``weights`` (>= 0, same length) say how much each band matters (e.g. 0 outside 30 Hz-16 kHz).
    Gains are bounded to +-``max_gain_db``; bell widths to ``min_bw_oct``..``max_bw_oct`` octaves.
    A band that fights a neighbour (opposite gains within an octave) goes while the fit without it
    is at most ``prune_db`` worse (weighted rms; 0 keeps every band the greedy fit placed).
    """
    from scipy.optimize import least_squares  # 0.13 s to load: only masters that get an EQ fit one
    check_range("max_bands", max_bands, 1, 16)
    check_range("max_gain_db", max_gain_db, 0.5, 24.0)
    f = np.asarray(centers_hz, dtype=float)
    t = np.asarray(target_db, dtype=float)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    if f.shape != t.shape or w.shape != t.shape:
        raise ValueError("centers_hz, target_db and weights must have the same length")
    f_hi = min(0.45 * sample_rate, 20000.0)
    lo_shelf_hz, hi_shelf_hz = 120.0, min(7000.0, 0.3 * sample_rate)
    sw = np.sqrt(np.maximum(w, 0.0))

    kinds: list[str] = []
    x0: list[float] = []
    lo_b: list[float] = []
    hi_b: list[float] = []

    def add(kind: str, freq: float, gain: float, bw: float, f_lo: float, f_up: float) -> None:
        kinds.append(kind)
        x0.extend([math.log2(freq), float(np.clip(gain, -max_gain_db, max_gain_db)), math.log2(bw)])
        bw_lo, bw_hi = (min_bw_oct, max_bw_oct) if kind == "band" else (0.5, 2.5)
        lo_b.extend([math.log2(f_lo), -max_gain_db, math.log2(bw_lo)])
        hi_b.extend([math.log2(f_up), max_gain_db, math.log2(bw_hi)])

    def weighted_mean(sel: np.ndarray) -> float:
        return float(np.sum(t[sel] * w[sel]) / np.sum(w[sel])) if np.sum(w[sel]) > 0 else 0.0

    low = weighted_mean(f <= lo_shelf_hz)
    high = weighted_mean(f >= hi_shelf_hz)
    if abs(low) >= _MIN_GAIN_DB:
        add("low_shelf", lo_shelf_hz * 0.75, low, 1.9, 30.0, 400.0)
    if abs(high) >= _MIN_GAIN_DB and len(kinds) < max_bands:
        add("high_shelf", hi_shelf_hz, high, 1.9, 2000.0, f_hi)

    points = _band_points_hz(f, sample_rate)

    def residual(v: np.ndarray, kinds_v: list[str]) -> np.ndarray:
        # band_response_db of the bands in v, without building (and validating) EqParams on each of
        # the fit's ~1,400 calls; the bounds keep every value in range
        rows = [band_sos(kind, 2.0 ** v[3 * i], v[3 * i + 1], 2.0 ** v[3 * i + 2], sample_rate)
                for i, kind in enumerate(kinds_v)]
        sos = np.vstack(rows) if rows else np.zeros((0, 6))
        err = (_band_average_db(sos_response_db(sos, sample_rate, points)) - t) * sw
        return np.concatenate((err, gain_penalty * v[1::3]))

    def solve(x: list[float], lo: list[float], hi: list[float], kinds_v: list[str], max_nfev: int) -> list[float]:
        # stops when a step changes the cost or the parameters by under 1e-4 (relative): the bands
        # are rounded to 0.1 dB and 1 Hz, and scipy's default 1e-8 ran 250 iterations per fit
        fit = least_squares(residual, np.clip(x, lo, hi), bounds=(lo, hi), method="trf", max_nfev=max_nfev,
                            ftol=_FIT_TOL, xtol=_FIT_TOL, gtol=_FIT_TOL, args=(kinds_v,))
        return list(fit.x)

    while len(kinds) < max_bands:
        resid = residual(np.array(x0), kinds)[: t.shape[0]]
        # smooth over 3 bands so a single noisy band does not attract a bell
        smooth = np.convolve(resid, np.ones(3) / 3, mode="same")
        i = int(np.argmax(np.abs(smooth)))
        if abs(smooth[i]) < _MIN_GAIN_DB or f[i] >= f_hi:
            break
        add("band", float(f[i]), float(-resid[i] / max(sw[i], 1e-6)), 1.0,
            max(25.0, f[i] / 2.0), min(f_hi, f[i] * 2.0))
        x0 = solve(x0, lo_b, hi_b, kinds, 400)
    if kinds:
        x0 = solve(x0, lo_b, hi_b, kinds, 800)
        # bands that fight a neighbour (opposite gains within an octave) are dropped while the fit
        # without them, settled again, is within prune_db of the fit with them: a +4/-4/+4 dB zigzag
        # over the top octave becomes the one move it adds up to
        def weighted_rms(v: list[float], kinds_v: list[str]) -> float:
            err = residual(np.array(v), kinds_v)[: t.shape[0]]
            return float(np.sqrt(np.sum(err ** 2) / max(float(np.sum(w)), 1e-12)))

        while len(kinds) > 1 and prune_db > 0:
            fighting = _fighting_bands(np.array(x0), kinds)
            if not fighting:
                break
            base = weighted_rms(x0, kinds)
            best: tuple[float, list[str], list[float], list[float], list[float]] | None = None
            for i in fighting:
                ki, xi, li, hi = _without({i}, kinds, x0, lo_b, hi_b)
                xi = solve(xi, li, hi, ki, 200)
                r = weighted_rms(xi, ki)
                if r <= base + prune_db and (best is None or r < best[0]):
                    best = (r, ki, xi, li, hi)
            if best is None:
                break
            _, kinds, x0, lo_b, hi_b = best
        # two bells the fit drove onto the same spot (within 1/12 octave) are one move: merged into
        # one (gains added, within the limit), then the fit settles again
        twins = _twin_bells(np.array(x0), kinds)
        if twins:
            for keep, drop in twins:
                x0[3 * keep + 1] = float(np.clip(x0[3 * keep + 1] + x0[3 * drop + 1], -max_gain_db, max_gain_db))
            kinds, x0, lo_b, hi_b = _without({drop for _, drop in twins}, kinds, x0, lo_b, hi_b)
            x0 = solve(x0, lo_b, hi_b, kinds, 800)

    bands = [b for b in _bands_from_vector(np.array(x0), kinds) if abs(b.gain_db) >= _MIN_GAIN_DB]
    bands = [dataclasses.replace(b, freq_hz=float(round(b.freq_hz)), gain_db=round(b.gain_db, 1),
                                 bw_oct=round(cast(float, b.bw_oct), 2)) for b in bands]
    bands.sort(key=lambda b: b.freq_hz)
    eq = EqParams(bands=tuple(bands))
    err = band_response_db(eq, sample_rate, f) - t
    sel = w > 0
    rms = float(np.sqrt(np.sum(w[sel] * err[sel] ** 2) / np.sum(w[sel]))) if sel.any() else 0.0
    return FitResult(eq, rms, float(np.max(np.abs(err[sel]))) if sel.any() else 0.0)


def fit_graphic_eq(
    centers_hz: np.ndarray,
    target_db: np.ndarray,
    *,
    sample_rate: int,
    weights: np.ndarray | None = None,
    bw_oct: float = 1.0 / 3.0,
    max_gain_db: float = 18.0,
    steps: int = 4,
) -> FitResult:
    """A match EQ: one ReaEQ bell per weighted 1/3-octave band at its centre, gains solved
    (within +-``max_gain_db``; beyond one band's 12 dB a second, equal band is stacked).

    For reference matching, where the target follows the detail of a real track's spectrum.
    The bells' mutual overlap is handled by solving with their measured influence matrix,
    then correcting the small nonlinearity in a few fixed-point steps.
    """
    from scipy.optimize import lsq_linear  # 0.13 s to load: only reference matches fit a graphic EQ
    f = np.asarray(centers_hz, dtype=float)
    t = np.asarray(target_db, dtype=float)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    active = np.flatnonzero((w > 0) & (f < 0.45 * sample_rate))
    if active.size == 0:
        return FitResult(EqParams(), 0.0, 0.0)
    probe_db = 6.0
    influence = np.empty((len(f), active.size))
    for k, i in enumerate(active):
        one = EqParams(bands=(EqBand("band", float(f[i]), probe_db, bw_oct),))
        influence[:, k] = band_response_db(one, sample_rate, f) / probe_db
    sw = np.sqrt(w)[:, None]
    goal = t.copy()
    gains = np.zeros(active.size)
    for _ in range(steps):
        sol = lsq_linear(influence * sw, goal * sw[:, 0], bounds=(-max_gain_db, max_gain_db))
        gains = sol.x
        eq = _graphic(f, active, gains, bw_oct)
        err = band_response_db(eq, sample_rate, f) - t
        goal = goal - err  # aim past what the linear model under- or over-shoots
    eq = _graphic(f, active, np.round(gains, 2), bw_oct)
    err = band_response_db(eq, sample_rate, f) - t
    sel = w > 0
    rms = float(np.sqrt(np.sum(w[sel] * err[sel] ** 2) / np.sum(w[sel])))
    return FitResult(eq, rms, float(np.max(np.abs(err[sel]))))


REAEQ_BAND_MAX_GAIN_DB = 12.0  # one ReaEQ band reaches +12.04 dB


def _graphic(f: np.ndarray, active: np.ndarray, gains: np.ndarray, bw_oct: float) -> EqParams:
    """Bells at the band centres; a gain one ReaEQ band cannot carry becomes two equal bands."""
    bands: list[EqBand] = []
    for i, g in zip(active, gains):
        if abs(g) < 0.05:
            continue
        parts = 2 if abs(g) > REAEQ_BAND_MAX_GAIN_DB else 1
        bands.extend(EqBand("band", float(round(f[i], 1)), float(g) / parts, bw_oct) for _ in range(parts))
    return EqParams(bands=tuple(bands))
