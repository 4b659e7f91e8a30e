"""Goodness of fit and out-of-sample checks for a fitted law.

In-sample metrics are computed on log targets, the scale the fit works on:

- R² = 1 − Σ(log L − log L̂)² / Σ(log L − mean log L)²
- log-RMSE = sqrt(mean (log L − log L̂)²)
- AIC = n·log(RSS/n) + 2k and BIC = n·log(RSS/n) + k·log n (Gaussian log residuals, constants dropped;
  comparable only between laws fitted to the same rows), k = number of free parameters.

Extrapolation check: `split_by_compute` holds out the largest-compute fraction of runs (ties kept
together); the caller fits on the rest and `holdout_errors` reports the relative error |L̂ − L|/L of
the predicted loss on the held-out runs, the test that matters for a law used to plan larger runs.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.errors import UserError


def in_sample_metrics(y: np.ndarray, y_hat: np.ndarray, n_free: int) -> dict[str, float]:
    """R², log-RMSE, AIC and BIC of predictions `y_hat` for observations `y` (both positive)."""
    r = np.log(y) - np.log(y_hat)
    n = r.size
    rss = float(np.sum(r * r))
    tss = float(np.sum((np.log(y) - np.mean(np.log(y))) ** 2))
    log_lik_term = n * math.log(max(rss, 1e-300) / n)
    return {
        "n": n,
        "k": n_free,
        "r2_log": 1.0 - rss / tss if tss > 0 else float("nan"),
        "rmse_log": math.sqrt(rss / n),
        "mean_abs_rel_error": float(np.mean(np.abs(y_hat - y) / y)),
        "aic": log_lik_term + 2 * n_free,
        "bic": log_lik_term + n_free * math.log(n),
    }


def split_by_compute(compute: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of held-out rows: the largest-compute `fraction` of rows (at least one, ties included).

    The train set keeps every row with compute strictly below the threshold.
    """
    if not 0.0 < fraction < 1.0:
        raise UserError(f"--holdout must be a fraction in (0, 1), got {fraction:g}")
    c = np.asarray(compute, dtype=float)
    n_hold = max(1, round(fraction * c.size))
    threshold = np.sort(c)[c.size - n_hold]
    mask = c >= threshold
    if mask.all():
        raise UserError("cannot hold out the largest-compute runs: every run has the same compute")
    return mask


def holdout_errors(y: np.ndarray, y_hat: np.ndarray) -> dict[str, float]:
    """Relative errors |ŷ − y| / y of held-out predictions: mean, median, max, and the log-RMSE."""
    rel = np.abs(y_hat - y) / y
    r = np.log(y) - np.log(y_hat)
    return {
        "n": int(rel.size),
        "mean_rel_error": float(np.mean(rel)),
        "median_rel_error": float(np.median(rel)),
        "max_rel_error": float(np.max(rel)),
        "mean_signed_rel_error": float(np.mean((y_hat - y) / y)),
        "rmse_log": float(np.sqrt(np.mean(r * r))),
    }
