"""Nonparametric bootstrap of a fit: resample rows, refit, summarise with percentile CIs and SEs.

Each replicate draws n rows with replacement (Efron 1979), expressed as multinomial row counts w_i used as
weights in the Huber objective (identical to refitting on the resampled table). Every refit starts from
the point estimate (warm start) and all replicates are polished together by `fitter.refine_batched`,
so 1,000 refits cost about as much as a handful of sequential L-BFGS-B runs. This is how Besiroglu et al.
2024 obtain their standard errors for the Chinchilla fit (their Table 1). Percentile intervals are the
(α/2, 1 − α/2) quantiles of the replicate estimates; SEs are their standard deviations.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from fits.fitter import _BIG, Objective, _minimize, refine_batched


@dataclass
class BootstrapDraws:
    """Replicate estimates: `draws[name]` is an array (n_boot,) of natural parameter values."""

    draws: dict[str, np.ndarray]
    converged: np.ndarray
    objective: np.ndarray
    seed: int

    @property
    def n_boot(self) -> int:
        return int(self.converged.size)

    def converged_draws(self) -> dict[str, np.ndarray]:
        """The replicate estimates of the converged refits only (what percentile CIs should be taken from)."""
        return {name: v[self.converged] for name, v in self.draws.items()}


def resample_weights(n_rows: int, n_boot: int, seed: int) -> np.ndarray:
    """Row counts of `n_boot` bootstrap resamples of `n_rows` rows: array (n_boot, n_rows), rows sum to n."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=n_boot).astype(float)


def bootstrap_objective(
    obj: Objective,
    z_hat: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    chunk: int = 500,
    ftol: float = 1e-10,
) -> BootstrapDraws:
    """Refit `obj` on `n_boot` row resamples, warm-started at the free fit-space estimate `z_hat`.

    `ftol` (relative objective decrease at which a refit stops) is looser than the point fit's 1e-13:
    on Kumar-law test data it moves the replicate estimates by < 0.5% of their bootstrap SE. Replicates
    the batched pass leaves unconverged are continued by `finish_stragglers`; `converged` says which
    refits converged in the end (use `converged_draws()` for intervals).
    """
    W = resample_weights(obj.log_y.size, n_boot, seed)
    Z = np.empty((n_boot, len(obj.free)))
    F = np.empty(n_boot)
    ok = np.empty(n_boot, dtype=bool)
    for lo in range(0, n_boot, chunk):
        hi = min(lo + chunk, n_boot)
        Z[lo:hi], F[lo:hi], ok[lo:hi] = refine_batched(
            obj, np.repeat(z_hat[None, :], hi - lo, axis=0), W[lo:hi], ftol=ftol
        )
    finish_stragglers(obj, W, Z, F, ok, ftol=ftol)
    theta = obj.theta(Z)
    natural = obj.law.from_fit_space(theta)
    draws = {name: np.asarray(natural[name], dtype=float).reshape(-1) for name in obj.law.param_names}
    return BootstrapDraws(draws=draws, converged=ok, objective=F, seed=seed)


def finish_stragglers(
    obj: Objective,
    W: np.ndarray,
    Z: np.ndarray,
    F: np.ndarray,
    ok: np.ndarray,
    *,
    ftol: float,
    max_iter: int = 3000,
    max_scipy: int = 10,
) -> None:
    """Continue the replicates that did not converge (in place): first all together with `refine_batched`
    for up to `max_iter` more iterations, then, when at most `max_scipy` are left, each with scipy's
    L-BFGS-B (bounded) from where it stopped. A replicate counts as converged only if one of them says so.
    """
    bad = np.flatnonzero(~ok & (F < _BIG))
    if bad.size:
        Z[bad], F[bad], ok[bad] = refine_batched(obj, Z[bad], W[bad], ftol=ftol, max_iter=max_iter)
    bad = np.flatnonzero(~ok & (F < _BIG))
    if 0 < bad.size <= max_scipy:
        for i in bad:
            res = _minimize(obj, Z[i], W[i], 5000)
            f = float(obj.values(res.x[None, :], W[i : i + 1])[0])
            if f <= F[i]:
                Z[i], F[i] = res.x, f
            ok[i] = bool(res.success)


def percentile_interval(samples: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """(α/2, 1 − α/2) percentile interval of finite samples (NaN, NaN when there are none)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def order_statistics(
    block: np.ndarray, probs: Sequence[float], transform: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """Quantiles `probs` of each row of `transform(block)` (rows = points, columns = draws, no NaN),
    numpy's default ("linear", Hyndman & Fan 1996 type 7): x_(j) + f·(x_(j+1) − x_(j)) at
    j + f = p·(S − 1). `transform` must be increasing: order statistics are taken on `block` and only
    the selected ones are transformed (e.g. `np.exp` of log predictions).

    Only the needed order statistics are selected (introselect on the part not yet fixed, then the
    neighbour below as a maximum), not a sort: each pair (j, j+1) costs one partial partition.
    Returns float64 (len(probs), rows).
    """
    x = np.array(block)  # partitioned in place
    s = x.shape[1]
    pos = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0) * (s - 1)
    low = np.floor(pos).astype(int)
    frac = pos - low
    pairs = list(zip(low.tolist(), frac, strict=True))
    need = sorted({*low.tolist(), *(j + 1 for j, f in pairs if f > 0 and j + 1 < s)})
    got: dict[int, np.ndarray] = {}
    start = 0
    for k in need:
        if k in got:
            continue
        x[:, start:].partition(k - start, axis=1)
        got[k] = x[:, k].astype(float)
        if k - 1 in need and k - 1 not in got and k - 1 >= start:
            got[k - 1] = x[:, start:k].max(axis=1).astype(float)
        start = k + 1
    if transform is not None:
        got = {k: transform(v) for k, v in got.items()}
    out = np.empty((len(pos), x.shape[0]))
    for i, (j, f) in enumerate(pairs):
        a = got[j]
        out[i] = a if f == 0 else a + f * (got[min(j + 1, s - 1)] - a)
    return out


_NARROW = 1e-3  # relative width below which percentiles are recomputed in float64
_BLOCK = 256  # points per block: S draws x 256 float32 (1 MB at S = 1,000) stays in cache


def _workers() -> int:
    try:
        return max(1, min(2, len(os.sched_getaffinity(0))))
    except (AttributeError, OSError):
        return 1


def prediction_percentiles(
    log_predict: Callable[[Mapping[str, Any], Mapping[str, np.ndarray]], np.ndarray],
    theta: Mapping[str, np.ndarray],
    cols: Mapping[str, np.ndarray],
    probs: Sequence[float],
    theta32: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Percentiles `probs` over S parameter draws of the prediction exp(log_predict(θ_s, x)) at each
    point x: array (len(probs), n). `theta`: fit-space arrays (S, 1); `cols`: prepared columns (n,).

    The draws are evaluated in blocks of points, in log space and float32 (rounding ~1e-7 of the value,
    far below the Monte-Carlo error of a percentile of S = 1,000 draws, ~2% of a 95% interval's width),
    with two threads (numpy releases the GIL). A block where float32 gives a non-finite value, and any
    point whose percentiles lie within 0.1% of each other (where float32 rounding would be a visible part
    of the interval: a noiseless fit), is done in float64 exactly as before: `np.nanquantile` over the
    draws (NaN = a failed draw, ignored).
    """
    n = int(np.broadcast_shapes(*(np.shape(v) for v in cols.values()))[-1]) if cols else 1
    if theta32 is None:  # `theta` in float32 (callers that predict often pass it converted once)
        theta32 = {k: np.asarray(v, dtype=np.float32) for k, v in theta.items()}
    cols_b = {k: np.broadcast_to(np.asarray(v), (n,)) for k, v in cols.items()}
    n_draws = max((np.shape(v)[0] for v in theta.values() if np.ndim(v)), default=1)
    # the formula evaluated with draws along the last axis, (points, draws): the rows order_statistics
    # selects in are then contiguous without a transpose (an elementwise formula broadcasts either way;
    # one that does not gives another shape and takes the (draws, points) layout)
    theta_t = {k: np.reshape(v, (1, -1)) if np.ndim(v) == 2 else v for k, v in theta32.items()}
    out = np.empty((len(probs), n))

    theta64 = {k: np.asarray(v, dtype=float) for k, v in theta.items()}

    def exact(idx: np.ndarray) -> np.ndarray:
        """float64 percentiles at the points `idx`, as np.(nan)quantile over the draws."""
        with np.errstate(all="ignore"):
            y = np.exp(log_predict(theta64, {k: np.asarray(v[idx], dtype=float) for k, v in cols_b.items()}))
            y = np.broadcast_to(y, (n_draws, idx.size))
            quantile = np.nanquantile if np.isnan(y).any() else np.quantile
            return quantile(y, list(probs), axis=0)

    def block(lo: int) -> None:
        sl = slice(lo, min(lo + _BLOCK, n))
        size = sl.stop - lo
        with np.errstate(all="ignore"):
            log_y = log_predict(theta_t, {k: v[sl, None].astype(np.float32) for k, v in cols_b.items()})
            if np.shape(log_y) not in ((size, n_draws), (size, 1), (1, n_draws)):
                log_y = log_predict(theta32, {k: v[sl].astype(np.float32) for k, v in cols_b.items()})
                log_y = np.ascontiguousarray(np.broadcast_to(log_y, (n_draws, size)).T)
        log_y = np.broadcast_to(log_y, (size, n_draws))
        if not (log_y.dtype == np.float32 and np.isfinite(log_y).all()):
            out[:, sl] = exact(np.arange(lo, sl.stop))
            return
        # percentiles of exp(log y) are exp of those of log y (exp is increasing): exp of 2 per point
        q = order_statistics(log_y, probs, np.exp)
        if len(probs) > 1:
            # where the draws agree to within 0.1% float32's rounding would be a visible part of the
            # interval (a noiseless fit: every draw equal): those points are done in float64
            narrow = np.flatnonzero(q.max(axis=0) - q.min(axis=0) <= _NARROW * np.abs(q).max(axis=0))
            if narrow.size:
                q[:, narrow] = exact(lo + narrow)
        out[:, sl] = q

    starts = range(0, n, _BLOCK)
    workers = _workers() if n >= 4 * _BLOCK else 1
    if workers == 1:
        for lo in starts:
            block(lo)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(block, starts))
    return out


def standard_error(samples: np.ndarray) -> float:
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    return float(np.std(s, ddof=1)) if s.size > 1 else float("nan")
