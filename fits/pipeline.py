"""The whole fit of one law to one table: point estimate, bootstrap, in-sample metrics and holdout check.

`fit(data, law_name, ...) -> FitResult` is what `scalefit fit` runs:

1. point estimate: multi-start robust fit (`fitter.fit_objective` over the law's full start grid); for
   the precision law Kumar et al.'s staged fit (`fitter.staged_precision_fit`), α = β tied by default;
2. bootstrap: `n_boot` row resamples refitted from the point estimate (`bootstrap.bootstrap_objective`);
3. in-sample R², log-RMSE, AIC/BIC (`validation.in_sample_metrics`);
4. holdout: refit (point estimate only) without the largest-compute `holdout` fraction of rows and
   report the relative error on them (`validation.split_by_compute`, `validation.holdout_errors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fits.bootstrap import bootstrap_objective
from fits.dataset import FitData
from fits.fitter import DEFAULT_HUBER_DELTA, FitOutcome, Objective, fit_law, staged_precision_fit
from fits.laws import PUBLISHED, Law, get_law
from fits.results import FitResult, data_hash
from fits.validation import holdout_errors, in_sample_metrics, split_by_compute
from scaling.errors import UserError
from scaling.version import __version__

DEFAULT_TIES: dict[str, dict[str, str]] = {"precision": {"beta": "alpha"}}  # Kumar et al. 2024 tie α = β


def build_law(law_name: str, data: FitData) -> Law:
    if law_name == "capacity":
        return get_law("capacity", groups=data.groups)
    return get_law(law_name)


def point_fit(
    law: Law,
    X: Mapping[str, np.ndarray],
    y: np.ndarray,
    *,
    fixed: Mapping[str, float] | None = None,
    tied: Mapping[str, str] | None = None,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    n_refine: int = 32,
) -> tuple[FitOutcome, Objective]:
    """The point estimate and the objective it minimises (all rows, free parameters of the final stage)."""
    fixed = dict(fixed or {})
    tied = dict(tied or {})
    if law.name == "precision":
        defaults = PUBLISHED["kumar2024"][1]
        return staged_precision_fit(
            law, X, y, fixed=fixed, tied=tied, defaults=defaults, huber_delta=huber_delta, n_refine=n_refine
        )
    return fit_law(law, X, y, fixed=fixed, tied=tied, huber_delta=huber_delta, n_refine=n_refine)


def fit(
    data: FitData,
    law_name: str = "chinchilla",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    holdout: float | None = 0.2,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    fixed: Mapping[str, float] | None = None,
    tied: Mapping[str, str] | None = None,
    n_refine: int = 32,
    alpha: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Fit `law_name` to `data` with bootstrap uncertainty and validation; see the module docstring."""
    say = progress or (lambda _msg: None)
    if n_boot < 0:
        raise UserError(f"--bootstrap must be >= 0, got {n_boot}")
    if huber_delta <= 0:
        raise UserError(f"--huber-delta must be positive, got {huber_delta:g}")
    law = build_law(law_name, data)
    tied = dict(DEFAULT_TIES.get(law.name, {}) if tied is None else tied)
    for name in (*tied, *tied.values()):  # unknown names -> UserError listing the law's parameters
        law.param(name)
    fixed = dict(fixed or {})
    for name in fixed:
        law.param(name)
        tied.pop(name, None)
    t0 = time.perf_counter()
    say(f"fitting {law.name} to {data.n_rows} rows")
    outcome, obj = point_fit(
        law, data.X, data.y, fixed=fixed, tied=tied, huber_delta=huber_delta, n_refine=n_refine
    )
    t_fit = time.perf_counter() - t0
    params = {k: float(v) for k, v in law.from_fit_space(outcome.theta).items()}
    held = [n for n in law.param_names if n not in obj.free and n not in tied and n not in fixed]
    fixed_all = {**{n: params[n] for n in held}, **{n: float(v) for n, v in fixed.items()}}

    draws = None
    boot_ok = 0
    if n_boot > 0:
        say(f"bootstrap: {n_boot} refits")
        z_hat = np.array([outcome.theta[n] for n in obj.free])
        bd = bootstrap_objective(obj, z_hat, n_boot=n_boot, seed=seed)
        boot_ok = int(bd.converged.sum())  # intervals come from the converged refits only
        draws = bd.converged_draws() if boot_ok else None
        for name in fixed_all if draws else ():  # exactly constant (not exp(log(value)))
            draws[name] = np.full(boot_ok, params[name])
    t_boot = time.perf_counter() - t0 - t_fit

    y_hat = law.predict(params, data.X)
    metrics: dict[str, Any] = {
        "objective": outcome.objective,
        "converged": outcome.converged,
        "optimizer": outcome.message,
        "n_starts": outcome.n_starts,
        "n_refined": outcome.n_refined,
        "bootstrap_converged": boot_ok,
        "in_sample": in_sample_metrics(data.y, y_hat, len(obj.free)),
        "stages": outcome.stages,
        "seconds": {"fit": t_fit, "bootstrap": t_boot},
    }
    if holdout:
        say(f"holdout: refit without the largest-compute {holdout:.0%}")
        mask = split_by_compute(data.compute, holdout)
        train = {k: v[~mask] for k, v in data.X.items()}
        test = {k: v[mask] for k, v in data.X.items()}
        try:
            out_h, _ = point_fit(
                law, train, data.y[~mask], fixed=fixed, tied=tied, huber_delta=huber_delta, n_refine=n_refine
            )
            p_h = law.from_fit_space(out_h.theta)
            metrics["holdout"] = {
                "fraction": holdout,
                "n_train": int((~mask).sum()),
                "compute_threshold": float(data.compute[mask].min()),
                **holdout_errors(data.y[mask], law.predict(p_h, test)),
                "params": {k: float(v) for k, v in p_h.items()},
            }
        except UserError as exc:
            metrics["holdout"] = None
            metrics["holdout_error"] = str(exc)

    return FitResult(
        law=law,
        params=params,
        free=list(obj.free),
        fixed=fixed_all,
        tied=tied,
        draws=draws,
        metrics=metrics,
        data={
            "hash": data_hash({**data.X, "y": data.y}),
            "n_rows": data.n_rows,
            "n_read": data.n_read,
            "n_dropped": sum(data.dropped.values()),
            "dropped": data.dropped,
            "not_used": data.not_used,
            "target": data.target,
            "groups": data.groups,
            "ranges": data.ranges(),
        },
        options={
            "law": law_name,
            "bootstrap": n_boot,
            "seed": seed,
            "holdout": holdout,
            "huber_delta": huber_delta,
            "n_refine": n_refine,
            "fixed": dict(fixed),
            "tied": tied,
        },
        version=__version__,
        alpha=alpha,
    )
