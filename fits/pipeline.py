"""The whole fit of one law to one table: point estimate, bootstrap, in-sample metrics and holdout check.

`fit(data, law, ...) -> FitResult` is what `scalefit fit` runs, for a registered law or any `Law` object:

1. point estimate: the law's own fit strategy (`Law.fit`: multi-start robust fit over the law's full
   start grid by default; Kumar et al.'s staged fit for the precision law), with its default ties;
2. bootstrap: `n_boot` row resamples refitted from the point estimate (`bootstrap.bootstrap_objective`);
3. in-sample R², log-RMSE, AIC/BIC (`validation.in_sample_metrics`) and the fit diagnostics
   (`diagnostics.diagnose`: parameters on bounds, poorly identified parameters, strong correlations);
4. holdout: refit (point estimate only) without the largest-compute `holdout` fraction of rows and
   report the relative error on them (`validation.split_by_compute`, `validation.holdout_errors`);
5. calibration (with a bootstrap): a nested backtest on the fitted rows sizes the extrapolation error
   term of the prediction intervals (`fits.calibration`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fits.bootstrap import bootstrap_objective
from fits.calibration import calibrate as calibrate_fit
from fits.dataset import FitData, fit_data, read_table
from fits.diagnostics import diagnose
from fits.fitter import DEFAULT_HUBER_DELTA
from fits.law import Law
from fits.laws import get_law
from fits.results import FitResult, data_hash
from fits.validation import holdout_errors, in_sample_metrics, split_by_compute
from scaling.errors import UserError
from scaling.version import __version__


def _as_fit_data(data: Any, law: str | Law, ptq_method: str | None) -> FitData:
    if isinstance(data, FitData):
        return data
    if isinstance(data, str | Path):
        data = read_table(data)
    if hasattr(data, "columns"):
        return fit_data(data, law, ptq_method)
    raise UserError(f"data must be a DataFrame, a path or FitData, got {type(data).__name__}", param="data")


def check_fit_options(
    n_boot: int = 0, huber_delta: float = 1e-3, alpha: float = 0.05, holdout: float | None = None, **_: Any
) -> None:
    """The `fit` options that need no data, checked before any work (`fit_auto` checks them before its
    selection backtest)."""
    if n_boot < 0:
        raise UserError(f"n_boot must be >= 0, got {n_boot}", param="n_boot")
    if huber_delta <= 0:
        raise UserError(f"huber_delta must be positive, got {huber_delta:g}", param="huber_delta")
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be in (0, 1), got {alpha:g}", param="alpha")
    if holdout and not 0.0 < holdout < 1.0:
        raise UserError(f"--holdout must be a fraction in (0, 1), got {holdout:g}", param="holdout")


def fit(
    data: Any,
    law: str | Law = "chinchilla",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    holdout: float | None = 0.2,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    fixed: Mapping[str, float] | None = None,
    tied: Mapping[str, str] | None = None,
    n_refine: int = 32,
    alpha: float = 0.05,
    ptq_method: str | None = None,
    keep_data: bool = True,
    calibrate: bool | None = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Fit `law` (a registered name or a `Law`) to `data` with bootstrap uncertainty and validation.

    `data`: a DataFrame of runs (rows are selected as the law declares), a path to one, or `FitData`.
    `tied` defaults to the law's `default_ties` ({} unties); `fixed` holds parameters at natural values.
    `keep_data=False` leaves the fitted rows out of the result (`FitResult.remove_data`).
    `calibrate` (default: when n_boot > 0) runs the nested backtest that sizes the extrapolation term of
    the calibrated prediction intervals (`fits.calibration`; stored as `FitResult.calibration`).
    See the module docstring for the steps.
    """
    say = progress or (lambda _msg: None)
    check_fit_options(n_boot=n_boot, huber_delta=huber_delta, alpha=alpha, holdout=holdout)
    data = _as_fit_data(data, law, ptq_method)
    law = data.law if data.law is not None else get_law(law)
    tied = dict(law.default_ties if tied is None else tied)
    for name in (*tied, *tied.values()):  # unknown names -> UserError listing the law's parameters
        law.param(name)
    fixed = dict(fixed or {})
    for name in fixed:
        law.param(name)
        tied.pop(name, None)
    options = {"fixed": fixed, "tied": tied, "huber_delta": huber_delta, "n_refine": n_refine}
    t0 = time.perf_counter()
    say(f"fitting {law.name} to {data.n_rows} rows")
    outcome, obj = law.fit(data.X, data.y, **options)
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
        metrics.update(_holdout(law, data, holdout, options))
    calibration = None
    if calibrate or (calibrate is None and n_boot > 0):
        say("calibrating intervals: nested backtest on the fitted rows")
        calibration = calibrate_fit(law, data.X, data.y, data.compute, params, len(obj.free), options)

    result = FitResult(
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
            "law": law.name,
            "bootstrap": n_boot,
            "seed": seed,
            "holdout": holdout,
            "huber_delta": huber_delta,
            "n_refine": n_refine,
            "fixed": dict(fixed),
            "tied": tied,
            "ptq_method": ptq_method,
        },
        version=__version__,
        alpha=alpha,
        rows={**data.X, "compute": data.compute, "y": data.y},
        calibration=calibration,
    )
    result.diagnostics = diagnose(result) + list(data.pooled)
    if not keep_data:
        result.remove_data()
    return result


def _holdout(law: Law, data: FitData, fraction: float, options: Mapping[str, Any]) -> dict[str, Any]:
    """Refit without the largest-compute `fraction` of rows and score the prediction of those rows."""
    mask = split_by_compute(data.compute, fraction)
    train = {k: v[~mask] for k, v in data.X.items()}
    test = {k: v[mask] for k, v in data.X.items()}
    try:
        out_h, _ = law.fit(train, data.y[~mask], **options)
    except UserError as exc:
        return {"holdout": None, "holdout_error": str(exc)}
    p_h = law.from_fit_space(out_h.theta)
    return {
        "holdout": {
            "fraction": fraction,
            "n_train": int((~mask).sum()),
            "compute_threshold": float(data.compute[mask].min()),
            **holdout_errors(data.y[mask], law.predict(p_h, test)),
            "params": {k: float(v) for k, v in p_h.items()},
        }
    }
