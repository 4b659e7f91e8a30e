"""Calibrated prediction intervals: bootstrap parameter uncertainty joined with a conformal error term.

A bootstrap percentile interval of the fitted curve (`FitResult.predict_interval`) covers the *mean* law
under the assumption that the law's form is right; a held-out run differs from it by its own noise (seed,
data order, digitisation) and, further from the fitted runs, by the form's misfit, which grows with the
distance extrapolated. Measured on public data, 95% bootstrap intervals held 17% (Chinchilla) and 31%
(Porian et al.) of the largest-compute runs. The interval here adds an error term whose size is measured
by a nested backtest on the fitted rows alone (never on the points being predicted):

1. inner splits (`INNER_CUTS`): for each fraction f, refit the law (point estimate, same options) on
   the fitted rows below the f-quantile of compute and predict the rows at or above it, giving log
   residuals r_j = log y_j − log ŷ_j at extrapolation distances d_j = log10(C_j / max C of that inner fit);
2. scale: g(d) = sqrt(σ² + κ²·max(d, 0)²), where σ is the root-mean-square in-sample log residual of
   the fit that made the prediction (run-to-run noise and misfit seen in the fitted range, degrees of
   freedom corrected: σ_k for inner fit k, σ₀ for the final fit) and κ (log error per decade of compute
   extrapolated) comes from the moment equation E[r²] = σ_k² + κ²·d² by least squares through the
   origin (κ ≥ 0);
3. split conformal with normalised scores (Vovk, Gammerman & Shafer 2005, *Algorithmic Learning in a
   Random World*; Lei, G'Sell, Rinaldo, Tibshirani & Wasserman 2018, "Distribution-free predictive
   inference for regression", JASA, §5.2 locally weighted residuals): s_j = |r_j| / g_k(d_j). Each
   split k gives the conformal quantile q_k, the ⌈(n_k + 1)(1 − α)⌉-th smallest of its n_k scores
   (infinite when that exceeds n_k); the multiplier q is the q_k of the latest split (the largest
   inner cut) whose quantile is finite, or, when no split alone has enough scores, the quantile of all
   splits' scores pooled (infinite if even those are too few: the interval is then unbounded). The runs
   are ordered by compute, not exchangeable, and errors drift with scale; the latest split is the one
   most like the final fit (the most rows, the shortest extrapolation), which is the weighting towards
   the most recent scores that conformal prediction under drift uses (Barber, Candès, Ramdas &
   Tibshirani 2023, "Conformal prediction beyond exchangeability", Ann. Statist. 51(2), §4: weights
   that decay away from the test point bound the coverage gap by the drift between the weighted scores
   and the test point's), here taken to its end: weight one on the latest split;
4. at a new point x with distance d(x) from the largest fitted compute, the extrapolation half-width in
   log space is h_e = q·g₀(d(x)), and the interval is the union of ŷ·exp(±h_e) and the final fit's
   bootstrap percentile interval of the curve (parameter uncertainty; it is the wider one only where the
   parameters are poorly determined, e.g. far beyond the inner splits' distances).

The inner residuals already carry the parameter error of fits on fewer rows, which is why the bootstrap
interval is joined as a union rather than added in quadrature (that double-counts: 99% coverage of
nominal 95% on a well-specified synthetic law, against 96% for the union). The splits overlap and runs
are not exchangeable across compute, so the conformal guarantee does not hold exactly: the coverage
actually reached on held-out runs is measured by `fits.backtest` and reported in docs/intervals.md. The
scores are stored in fit.json (key `calibration`), so any interval level can be asked for later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fits.law import Law
from fits.validation import split_by_compute
from scaling.errors import UserError

__all__ = [
    "INNER_CUTS",
    "KINDS",
    "calibrate",
    "calibration_notes",
    "conformal_multiplier",
    "distance",
    "extrapolation_halfwidth",
    "interval_kind",
    "prediction_interval",
]

INNER_CUTS = (0.5, 0.6, 0.7, 0.8)
"""Fractions of the fitted rows (by compute) below which the inner fits are trained."""
METHOD = (
    "split conformal, normalised scores, compute-ordered inner splits, latest split; union with bootstrap"
)
MAX_METHOD = (
    "split conformal, normalised scores, compute-ordered inner splits, max over splits; union with bootstrap"
)
"""The rule of fit.json files written before 2026-12-04 (the largest split quantile), kept for them."""
CALIBRATION_KEYS = ("sigma0", "kappa", "compute_max", "max_inner_distance", "split_scores", "n_scores")
KINDS = ("calibrated", "bootstrap", "none")
"""Interval kinds: bootstrap joined with the conformal term; bootstrap (parameters only); none."""


def distance(compute: np.ndarray, compute_max: float) -> np.ndarray:
    """Extrapolation distance in decades of compute: log10(C / largest fitted C) (≤ 0 inside the range)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.asarray(compute, dtype=float) / float(compute_max))


def _scale(d: np.ndarray, sigma: Any, kappa: float) -> np.ndarray:
    ahead = np.maximum(np.asarray(d, dtype=float), 0.0)
    return np.sqrt(np.asarray(sigma, dtype=float) ** 2 + (kappa * ahead) ** 2)


def _subset(X: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[mask] for k, v in X.items()}


def enough_rows(law: Law, X: Mapping[str, np.ndarray], n: int) -> str:
    """Why `law` cannot be fitted to these n rows (too few rows or distinct values), or ""."""
    if n < law.min_rows:
        return f"{n} rows (the {law.name} law needs {law.min_rows})"
    for c, need in law.min_distinct.items():
        if c in X and np.unique(X[c]).size < need:
            return f"{np.unique(X[c]).size} distinct {c} (needs {need})"
    return ""


def noise_scale(
    law: Law, params: Mapping[str, float], X: Mapping[str, Any], y: np.ndarray, n_free: int
) -> float:
    """σ: root-mean-square in-sample log residual of a fit, degrees of freedom corrected (n − k)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(np.asarray(y, dtype=float)) - np.log(law.predict(params, X))
    r = r[np.isfinite(r)]
    return float(math.sqrt(np.sum(r**2) / max(r.size - n_free, 1))) if r.size else 0.0


def inner_residuals(
    law: Law,
    X: Mapping[str, np.ndarray],
    y: np.ndarray,
    compute: np.ndarray,
    options: Mapping[str, Any],
    cuts: tuple[float, ...] = INNER_CUTS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log residuals, distances and the inner fit's own noise scale σ_k for the rows above each inner cut,
    predicted by a fit on the rows below (point estimates with the same `options`). Returns
    (residuals, distances, sigmas, split index k) per predicted row."""
    res, dist, sig, split, used, seen = [], [], [], [], 0, set()
    for cut in cuts:
        test = split_by_compute(compute, 1.0 - cut)
        key = int(test.sum())
        train = _subset(X, ~test)
        if key in seen or enough_rows(law, train, int((~test).sum())):
            continue
        seen.add(key)
        try:
            outcome, obj = law.fit(train, y[~test], **options)
        except UserError:
            continue
        params = law.from_fit_space(outcome.theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(y[test]) - np.log(law.predict(params, _subset(X, test)))
        ok = np.isfinite(r)
        res.append(r[ok])
        dist.append(distance(compute[test][ok], compute[~test].max()))
        sigma = noise_scale(law, params, train, y[~test], len(obj.free))
        sig.append(np.full(int(ok.sum()), max(sigma, 1e-12)))
        split.append(np.full(int(ok.sum()), used))
        used += 1
    if not res:
        return np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=int)
    return tuple(np.concatenate(v) for v in (res, dist, sig, split))  # type: ignore[return-value]


def calibrate(
    law: Law,
    X: Mapping[str, np.ndarray],
    y: np.ndarray,
    compute: np.ndarray,
    params: Mapping[str, float],
    n_free: int,
    options: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The calibration of a fit of `law` (natural `params`, `n_free` free parameters) to rows (X, y) with
    compute `compute`: the nested backtest and conformal scores of the module docstring, as a JSON-ready
    dict, or None when the rows allow no inner split."""
    y = np.asarray(y, dtype=float)
    compute = np.asarray(compute, dtype=float)
    r, d, sig, split = inner_residuals(law, X, y, compute, options)
    if r.size == 0:
        return None
    ahead = np.maximum(d, 0.0)
    denom = float(np.sum(ahead**4))
    kappa2 = float(np.sum(ahead**2 * (r**2 - sig**2)) / denom) if denom > 0 else 0.0
    kappa = math.sqrt(max(kappa2, 0.0))
    scores = np.abs(r) / _scale(d, sig, kappa)
    return {
        "method": METHOD,
        "inner_cuts": list(INNER_CUTS),
        "splits": int(split.max()) + 1,
        "sigma0": max(noise_scale(law, params, X, y, n_free), 1e-12),
        "kappa": kappa,
        "compute_max": float(compute.max()),
        "max_inner_distance": float(d.max()),
        "n_scores": int(scores.size),
        "split_scores": [sorted(float(v) for v in scores[split == k]) for k in range(int(split.max()) + 1)],
    }


def _quantile(scores: Any, alpha: float) -> float:
    """The ⌈(n + 1)(1 − α)⌉-th smallest of n scores (Lei et al. 2018); inf when n is too small."""
    s = np.sort(np.asarray(scores, dtype=float))
    k = math.ceil((s.size + 1) * (1.0 - alpha))
    return float(s[k - 1]) if 1 <= k <= s.size else math.inf


def conformal_multiplier(calibration: Mapping[str, Any], alpha: float) -> float:
    """q: the conformal quantile of the latest split (largest inner cut) that has enough scores for a
    finite one; the quantile of all scores pooled when no split alone has enough (inf when even they are
    too few). A calibration recorded with the earlier rule (`MAX_METHOD`) keeps it: the largest finite
    split quantile."""
    splits = calibration["split_scores"]
    finite = [q for q in (_quantile(s, alpha) for s in splits) if math.isfinite(q)]
    if not finite:
        return _quantile([v for s in splits for v in s], alpha)
    return max(finite) if calibration.get("method") == MAX_METHOD else finite[-1]


def extrapolation_halfwidth(calibration: Mapping[str, Any], compute: np.ndarray, alpha: float) -> np.ndarray:
    """h_e = q·g(d) in log space at each compute value (module docstring, step 4)."""
    d = distance(compute, calibration["compute_max"])
    q = conformal_multiplier(calibration, alpha)
    return q * _scale(d, float(calibration["sigma0"]), float(calibration["kappa"]))


def combine(point: np.ndarray, lower: np.ndarray, upper: np.ndarray, h_e: np.ndarray) -> tuple:
    """The union of the bootstrap interval [lower, upper] and point·exp(±h_e) (NaN bootstrap bounds:
    the conformal interval alone)."""
    with np.errstate(invalid="ignore"):
        lo = np.fmin(np.asarray(lower, dtype=float), point * np.exp(-h_e))
        hi = np.fmax(np.asarray(upper, dtype=float), point * np.exp(h_e))
    return lo, hi


def interval_kind(result: Any, kind: str | None = None) -> str:
    """The interval a fit can give: `kind` if possible, else the best it has (calibrated > bootstrap >
    none)."""
    if kind is not None and kind not in KINDS:
        raise UserError(f"interval must be one of {', '.join(KINDS)}, got {kind!r}", param="interval")
    n_boot = getattr(result, "n_boot", 0)
    cal = getattr(result, "calibration", None)
    has_cal = cal is not None
    missing = [k for k in CALIBRATION_KEYS if k not in (cal or {})]
    if has_cal and missing:
        raise UserError(
            f"the fit's calibration lacks {', '.join(missing)}: refit (scalefit fit) to calibrate"
        )
    best = "calibrated" if has_cal and n_boot else "bootstrap" if n_boot else "none"
    if kind is None or KINDS.index(kind) < KINDS.index(best):
        return best
    return kind


def prediction_interval(
    result: Any, X: Mapping[str, Any], alpha: float | None = None, kind: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(prediction, lower, upper, kind) of a `FitResult` at points `X`: the calibrated interval when the
    fit has a calibration (module docstring), else the bootstrap percentile interval, else NaN bounds."""
    a = result.alpha if alpha is None else float(alpha)
    kind = interval_kind(result, kind)
    point = np.asarray(result.predict(X), dtype=float)
    nan = np.full(point.shape, np.nan)
    if kind == "none":
        return point, nan, nan.copy(), kind
    lower, upper = result.bootstrap_bounds(X, a)
    if kind == "calibrated":
        compute = np.asarray(result.law.compute(X, X), dtype=float)
        lower, upper = combine(point, lower, upper, extrapolation_halfwidth(result.calibration, compute, a))
    return point, lower, upper, kind


def calibration_notes(result: Any, X: Mapping[str, Any], alpha: float | None = None) -> list[str]:
    """Warnings on a calibrated interval: points further from the fitted compute than any inner backtest
    reached (the term's size there is extrapolated), or too few backtest scores for the level."""
    cal = result.calibration
    a = result.alpha if alpha is None else float(alpha)
    out = []
    if not math.isfinite(conformal_multiplier(cal, a)):
        out.append(
            f"interval: {cal['n_scores']} backtest residuals are too few for a {1 - a:.0%} interval, "
            "so it is unbounded (fit more runs, or ask for a lower level)"
        )
    d = distance(np.asarray(result.law.compute(X, X), dtype=float), cal["compute_max"])
    far = d > float(cal["max_inner_distance"]) + 1e-9
    if far.any():
        out.append(
            f"interval: {int(far.sum())} point(s) lie up to {np.nanmax(d):.2f} decades of compute beyond "
            f"the fitted runs; the nested backtest measured errors up to {cal['max_inner_distance']:.2f} "
            "decades, so the extrapolation term there is itself extrapolated (linear growth)"
        )
    return out
