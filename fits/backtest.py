"""Leave-future-out backtests: fit on the smaller runs, predict the larger ones, score the predictions.

`backtest(data, law, cuts=(0.5, 0.6, 0.7, 0.8), by="compute")`: for each cut q, the runs whose compute
(or, with `by="N"`, model size N) lies below the q-quantile are fitted — with the same options and the
same interval machinery as `fits.fit` — and every run at or above it is predicted (ties stay together,
as in `validation.split_by_compute`). Per point it records the observed and predicted target, the
interval, and the extrapolation distance d = log10(C / largest fitted C) in decades of compute. Per cut
and pooled over all cuts (one row per (cut, point) pair) it reports rows, median / max / mean signed
relative error (ŷ − y)/y, the share of points inside the interval at level 1 − α, and the median
relative interval width (upper − lower)/ŷ (an interval that covers by being useless shows here).

`trim=f` leaves the smallest-compute fraction f of each cut's training rows out of its fit
(`drop_smallest`): the backtest of a fit that uses only the larger runs, which `fits.selection` compares
with fits on all of them.

`law="auto"` (with `data` a table of runs) backtests what `fits.fit_auto` does: at each cut the law form
and trim are chosen on that cut's training rows alone (`fits.selection.auto_backtest`), then fitted and
calibrated there; each cut's row records the law and trim it chose.

Cost: one fit per cut. `n_boot=0` fits point estimates only (no intervals, no calibration): the cheap
mode used to compare law forms. With `n_boot > 0` each cut's fit is calibrated by its own nested backtest
on that cut's training rows (`fits.calibration`), so the held-out runs never inform their own interval.

This is the test that matters for a law used to plan larger runs (Hoffmann et al. 2022 validate their
fits by predicting larger models; Besiroglu et al. 2024 §4; Porian et al. 2024 compare compute-optimal
extrapolations the same way).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fits.calibration import distance, enough_rows, prediction_interval
from fits.dataset import FitData
from fits.law import Law
from fits.laws import get_law
from fits.validation import split_by_compute
from scaling.errors import UserError

__all__ = ["BY", "BacktestResult", "backtest", "drop_smallest", "score"]

BY = ("compute", "N")
DEFAULT_CUTS = (0.5, 0.6, 0.7, 0.8)


def score(observed: np.ndarray, prediction: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> dict:
    """rows, median/max/mean signed relative error, coverage and median relative width of predictions
    (coverage and width are NaN without intervals)."""
    y, p = np.asarray(observed, dtype=float), np.asarray(prediction, dtype=float)
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if y.size == 0:
        nan = math.nan
        return {"rows": 0, "median_rel_error": nan, "max_rel_error": nan, "mean_signed_rel_error": nan,
                "coverage": nan, "median_rel_width": nan}  # fmt: skip
    signed = (p - y) / y
    has = ~np.isnan(lo) & ~np.isnan(hi)  # an infinite bound (too few backtest scores) is unbounded
    covered = (lo <= y) & (y <= hi)
    return {
        "rows": int(y.size),
        "median_rel_error": float(np.median(np.abs(signed))),
        "max_rel_error": float(np.max(np.abs(signed))),
        "mean_signed_rel_error": float(np.mean(signed)),
        "coverage": float(np.mean(covered)) if has.all() else math.nan,
        "median_rel_width": float(np.median((hi - lo) / p)) if has.all() else math.nan,
    }


@dataclass
class BacktestResult:
    """A backtest: `table` (one row per cut), `overall` (pooled scores), `points` (one row per predicted
    run and cut: cut, threshold, inputs, compute, observed, prediction, lower, upper, rel_error,
    distance, covered), and how it was run."""

    law: str
    by: str
    alpha: float
    interval: str
    table: Any
    overall: dict[str, Any]
    points: Any
    n_boot: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from fits.results import _enc

        return _enc(
            {
                "law": self.law,
                "by": self.by,
                "alpha": self.alpha,
                "level": 1.0 - self.alpha,
                "interval": self.interval,
                "n_boot": self.n_boot,
                "seconds": self.seconds,
                "overall": self.overall,
                "cuts": self.table.to_dict(orient="records"),
                "points": self.points.to_dict(orient="records"),
                "skipped": self.skipped,
            }
        )

    def as_text(self) -> str:
        """The per-cut table and the pooled row, as printed by `scalefit backtest`."""
        level = f"{100 * (1 - self.alpha):g}%"
        head = (
            f"backtest: {self.law}, leave-future-out by {self.by}, {self.interval} intervals at {level}"
            + (f" ({self.n_boot} bootstrap draws)" if self.n_boot else "")
        )
        cols = f"{'cut':>6}{'threshold':>12}{'train':>7}{'test':>6}{'med err':>9}{'max err':>9}"
        cols += f"{'signed':>9}{'cover':>8}{'width':>8}{'max d':>7}"
        lines = [head, cols]
        rows = [*self.table.to_dict(orient="records"), {"cut": "all", **self.overall}]
        for r in rows:
            cut = r["cut"] if isinstance(r["cut"], str) else f"{r['cut']:.2f}"
            thr = "" if r.get("threshold") is None else f"{r['threshold']:.3g}"
            train = "" if r.get("n_train") is None else str(r["n_train"])
            lines.append(
                f"{cut:>6}{thr:>12}{train:>7}{r['rows']:>6}{_pct(r['median_rel_error']):>9}"
                f"{_pct(r['max_rel_error']):>9}{_pct(r['mean_signed_rel_error'], True):>9}"
                f"{_pct(r['coverage'], digits=0):>8}{_pct(r['median_rel_width']):>8}"
                f"{_num(r.get('max_distance')):>7}"
            )
        lines.append(
            "err = |ŷ − y|/y, signed = mean (ŷ − y)/y, cover = share inside the interval, width = median "
            "(upper − lower)/ŷ, d = log10(C / largest fitted C)"
        )
        if self.law == "auto" and len(self.table):
            chosen = [f"{r['cut']:.2f} {r['law']}" + (f" (trim {r['trim']:g})" if r["trim"] else "")
                      for r in self.table.to_dict(orient="records")]  # fmt: skip
            lines.append("law chosen at each cut (on that cut's training rows): " + ", ".join(chosen))
        lines += [f"skipped: {s}" for s in self.skipped]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def plot(self, path: str) -> None:
        """Relative error (and interval half-width) against extrapolation distance, to a PNG."""
        from fits.plots import plot_backtest

        plot_backtest(self, path)


def _pct(x: Any, signed: bool = False, digits: int = 2) -> str:
    if x is None or math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{100 * x:+.{digits}f}%" if signed else f"{100 * x:.{digits}f}%"


def _num(x: Any) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _as_fit_data(data: Any, law: str | Law, ptq_method: str | None) -> FitData:
    from fits.pipeline import _as_fit_data as as_fit_data

    return as_fit_data(data, law, ptq_method)


def _subset(data: FitData, mask: np.ndarray) -> FitData:
    """The rows `mask` of `data`; its bookkeeping (dropped rows, groups, law, pooled set-ups) kept."""
    return replace(
        data,
        X={k: v[mask] for k, v in data.X.items()},
        y=data.y[mask],
        compute=data.compute[mask],
        n_read=int(mask.sum()),
        groups=list(data.groups),
    )


def drop_smallest(data: FitData, fraction: float) -> FitData:
    """The rows of `data` whose compute is at or above the `fraction`-quantile of its compute (ties kept;
    `fraction` 0 keeps every row)."""
    if not 0.0 <= fraction < 1.0:
        raise UserError(f"trim must be a fraction in [0, 1), got {fraction:g}", param="trim")
    if fraction == 0.0:
        return data
    return _subset(data, data.compute >= np.quantile(data.compute, fraction))


def _law_fitter(data: FitData, law: Law, fit_options: dict[str, Any]) -> Callable[..., tuple[Any, FitData]]:
    """fit_below(mask, trim, **fit_kwargs): `law` fitted to the rows of `data` in `mask` without their
    smallest `trim` fraction; returns (FitResult, data)."""
    from fits.pipeline import fit

    def fit_below(mask: np.ndarray, trim: float = 0.0, **fit_kwargs: Any) -> tuple[Any, FitData]:
        train = drop_smallest(_subset(data, mask), trim)
        why = enough_rows(law, train.X, int(train.y.size))
        if why:
            raise UserError(f"too few training rows ({why})")
        return fit(train, law, **fit_kwargs, **fit_options), data

    return fit_below


def backtest(
    data: Any,
    law: str | Law = "chinchilla",
    *,
    cuts: Iterable[float] = DEFAULT_CUTS,
    by: str = "compute",
    alpha: float = 0.05,
    n_boot: int = 200,
    seed: int = 0,
    interval: str | None = None,
    ptq_method: str | None = None,
    trim: float = 0.0,
    progress: Callable[[str], None] | None = None,
    **fit_options: Any,
) -> BacktestResult:
    """Leave-future-out backtest of `law` on `data` (module docstring).

    `data`: a DataFrame of runs, a path, or `FitData`. `cuts`: quantiles in (0, 1) of compute (or of N
    with `by="N"`) below which runs are fitted. `n_boot`: bootstrap draws per fit (0: point estimates
    only, no intervals). `interval`: "calibrated" (default when n_boot > 0), "bootstrap" (parameter
    uncertainty only) or "none". `fit_options` go to `fits.fit` (huber_delta, fixed, tied, n_refine).
    """
    say = progress or (lambda _msg: None)
    if by not in BY:
        raise UserError(f"by must be one of {', '.join(BY)}, got {by!r}", param="by")
    cuts = tuple(float(c) for c in cuts)
    if not cuts or any(not 0.0 < c < 1.0 for c in cuts):
        raise UserError(f"cuts must be fractions in (0, 1), got {list(cuts)}", param="cuts")
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be in (0, 1), got {alpha:g}", param="alpha")
    if n_boot < 0:
        raise UserError(f"n_boot must be >= 0, got {n_boot}", param="n_boot")
    if interval is not None and interval not in ("calibrated", "bootstrap", "none"):
        raise UserError(f"interval must be calibrated, bootstrap or none, got {interval!r}", param="interval")
    kind = "none" if n_boot == 0 else (interval or "calibrated")
    if isinstance(law, str) and law == "auto":
        from fits.selection import auto_backtest  # lazily: fits.selection builds on this module

        data, fit_below = auto_backtest(data, ptq_method, **fit_options)
        name = "auto"
    else:
        data = _as_fit_data(data, law, ptq_method)
        law = data.law if data.law is not None else get_law(law)
        fit_below, name = _law_fitter(data, law, fit_options), law.name
    if by == "N" and "N" not in data.X:
        raise UserError(f"by='N' needs a column N; the {name} law's rows have none", param="by")
    key = data.compute if by == "compute" else data.X["N"]
    t0 = time.perf_counter()
    rows, frames, skipped, seen = [], [], [], set()
    import pandas as pd

    for cut in sorted(set(cuts)):
        test = split_by_compute(key, 1.0 - cut)
        n_train = int((~test).sum())
        if n_train in seen:
            skipped.append(f"cut {cut:.2f}: same split as a lower cut")
            continue
        seen.add(n_train)
        say(f"cut {cut:.2f}: fitting up to {n_train} rows, predicting {int(test.sum())}")
        try:
            res, rows_of_law = fit_below(
                ~test, trim, n_boot=n_boot, seed=seed, holdout=None, alpha=alpha,
                calibrate=kind == "calibrated", keep_data=False,
            )  # fmt: skip
        except UserError as exc:
            skipped.append(f"cut {cut:.2f}: {exc}")
            continue
        n_train = int(res.nobs)
        X_test = {k: v[test] for k, v in rows_of_law.X.items()}
        point, lower, upper, got = prediction_interval(res, X_test, alpha, kind)
        y = data.y[test]
        d = distance(data.compute[test], data.compute[~test].max())
        frame = pd.DataFrame({k: v for k, v in X_test.items() if k != "group"})
        frame.insert(0, "cut", cut)
        frame["compute"] = data.compute[test]
        frame["observed"] = y
        frame["prediction"] = point
        frame["lower"] = lower
        frame["upper"] = upper
        frame["rel_error"] = (point - y) / y
        frame["distance"] = d
        frame["covered"] = (lower <= y) & (y <= upper) if got != "none" else np.nan
        frames.append(frame)
        threshold = float(key[test].min())
        rows.append(
            {
                "cut": cut,
                "threshold": threshold,
                "n_train": n_train,
                **score(y, point, lower, upper),
                "max_distance": float(np.max(d)),
                "interval": got,
                "law": res.law.name,
                "trim": float((res.options.get("law_selection") or {}).get("trim", trim)),
            }
        )
    if not frames:
        raise UserError("no cut left enough rows to fit: " + "; ".join(skipped), param="cuts")
    points = pd.concat(frames, ignore_index=True)
    overall = score(points["observed"], points["prediction"], points["lower"], points["upper"])
    overall["max_distance"] = float(points["distance"].max())
    return BacktestResult(
        law=name,
        by=by,
        alpha=alpha,
        interval=kind,
        table=pd.DataFrame(rows),
        overall=overall,
        points=points,
        n_boot=n_boot,
        seconds=time.perf_counter() - t0,
        skipped=skipped,
    )
