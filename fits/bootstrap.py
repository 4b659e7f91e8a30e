"""Nonparametric bootstrap of a fit: resample rows, refit, summarise with percentile CIs and SEs.

Each replicate draws n rows with replacement (Efron 1979), expressed as multinomial row counts w_i used as
weights in the Huber objective (identical to refitting on the resampled table). Every refit starts from
the point estimate (warm start) and all replicates are polished together by `fitter.refine_batched`,
so 1,000 refits cost about as much as a handful of sequential L-BFGS-B runs. This is how Besiroglu et al.
2024 obtain their standard errors for the Chinchilla fit (their Table 1). Percentile intervals are the
(α/2, 1 − α/2) quantiles of the replicate estimates; SEs are their standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def standard_error(samples: np.ndarray) -> float:
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    return float(np.std(s, ddof=1)) if s.size > 1 else float("nan")
