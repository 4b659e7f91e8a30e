"""The 1-D optimiser behind `recommend`: many bounded minimisations in x = log N, solved at once.

For each precision spec the budget fixes N·D, so the optimum is a 1-D problem in x = log N on the interval
the constraints leave. A dense grid brackets each minimum (robust for a non-convex user law) and
golden-section search refines it (the bracket shrinks by 0.618 per step, ~1e-11 in x after 56 steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["GOLDEN_ITERS", "GRID_POINTS", "finite", "minimise_log_n"]

GRID_POINTS = 97
GOLDEN_ITERS = 56


def finite(v: np.ndarray) -> np.ndarray:
    """`v` as float with every non-finite value replaced by +inf (infeasible)."""
    v = np.asarray(v, dtype=float)
    return np.where(np.isfinite(v), v, np.inf)


def minimise_log_n(
    loss: Callable[[np.ndarray], np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    grid: int = GRID_POINTS,
    iters: int = GOLDEN_ITERS,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise m independent 1-D functions on [lo_i, hi_i], vectorised over the m rows.

    `loss(x)` takes x of shape (m, k) and returns (m, k) values (non-finite = infeasible). A grid of `grid`
    points brackets each minimum, golden-section search refines it (bracket shrinks by 0.618 per step).
    Returns (x_opt, loss_opt), shape (m,); rows with lo > hi or no finite value get NaN and inf.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    ok = lo <= hi
    lo_, hi_ = np.where(ok, lo, 0.0), np.where(ok, hi, 0.0)
    t = np.linspace(0.0, 1.0, grid)
    xs = lo_[:, None] + (hi_ - lo_)[:, None] * t[None, :]
    vals = finite(loss(xs))
    i = np.argmin(vals, axis=1)
    rows = np.arange(len(lo_))
    best_x, best_v = xs[rows, i], vals[rows, i]
    a = xs[rows, np.maximum(i - 1, 0)]
    b = xs[rows, np.minimum(i + 1, grid - 1)]
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = finite(loss(np.stack([c, d], 1))).T
    for _ in range(iters):
        left = fc <= fd  # minimum in [a, d]
        a, b = np.where(left, a, c), np.where(left, d, b)
        c_new = np.where(left, b - inv_phi * (b - a), d)
        d_new = np.where(left, c, a + inv_phi * (b - a))
        fx = finite(loss(np.stack([np.where(left, c_new, d_new)], 1)))[:, 0]
        fc, fd = np.where(left, fx, fd), np.where(left, fc, fx)
        c, d = c_new, d_new
    mid = 0.5 * (a + b)
    f_mid = finite(loss(mid[:, None]))[:, 0]
    better = f_mid < best_v
    x_opt, f_opt = np.where(better, mid, best_x), np.where(better, f_mid, best_v)
    bad = ~ok | ~np.isfinite(f_opt)
    return np.where(bad, np.nan, x_opt), np.where(bad, np.inf, f_opt)
