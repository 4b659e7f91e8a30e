"""`FitResult`: a fitted law with its uncertainty, in the spirit of statsmodels' and lmfit's results.

Everything a scientist asks of a fit, without passing the data again:

- estimates: `params`, `bse` (bootstrap standard errors; pandas Series), `conf_int(alpha)` (percentile
  intervals), `cov_params()` and `corr_params()` (from the bootstrap draws), `derived(budget)` (the law's
  compute-optimal allocation with intervals);
- goodness of fit (log targets, the scale the fit works on): `nobs`, `df_resid`, `fittedvalues`, `resid`
  (log y − log ŷ), `r2_log`, `aic`, `bic`; `diagnostics` (parameters on bounds, poorly identified
  parameters, strong correlations, low R²; `fits.diagnostics`), computed once at fit time;
- prediction: `predict(X)` (array), `predict_interval(X, alpha)` (DataFrame: prediction, lower, upper),
  `predict_draws(X)` (one prediction per bootstrap replicate);
- report: `summary()` (a `Summary`: text via `as_text()`, an HTML table in a notebook);
- persistence: `to_json(path)` / `FitResult.from_json(path)`, `remove_data()` for small files.

fit.json (docs/fit_json.md) is versioned: `format` 2 adds `diagnostics` and `rows` (the fitted rows) to
format 1, and format-1 files still load (diagnostics are then recomputed, rows are absent). Non-finite
floats are stored as the strings "inf", "-inf", "nan" so the file is strict JSON.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fits.bootstrap import percentile_interval, standard_error
from fits.law import Law
from fits.laws import law_from_spec
from scaling.errors import UserError
from scaling.files import atomic_write_text

FORMAT_VERSION = 2


def data_hash(columns: Mapping[str, np.ndarray]) -> str:
    """sha256 over the named float64 columns actually used by the fit (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(columns):
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.asarray(columns[name], dtype=np.float64)).tobytes())
    return h.hexdigest()


def _enc(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _enc(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_enc(v) for v in x]
    if isinstance(x, np.ndarray):
        return _enc(x.tolist())
    if isinstance(x, np.generic):
        return _enc(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _dec_float(x: Any) -> float:
    return float(x) if x is not None else float("nan")


class Summary(str):
    """`FitResult.summary()`: the report as text (`as_text()`, `print`) and as HTML in a notebook."""

    def __new__(cls, text: str, html: str = "") -> Summary:
        obj = super().__new__(cls, text)
        obj._html = html
        return obj

    def as_text(self) -> str:
        return str.__str__(self)

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self.as_text()


class FitResult:
    """A fitted scaling law (see the module docstring for what it offers).

    `params` given to the constructor are natural values (A, not log A); `draws` bootstrap replicates per
    parameter; `rows` the fitted columns (inputs, `compute`, target `y`), kept for `fittedvalues`/`resid`.
    """

    def __init__(
        self,
        law: Law,
        params: Mapping[str, float],
        free: list[str],
        fixed: Mapping[str, float] | None = None,
        tied: Mapping[str, str] | None = None,
        draws: Mapping[str, np.ndarray] | None = None,
        metrics: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        version: str = "",
        alpha: float = 0.05,
        rows: Mapping[str, np.ndarray] | None = None,
        diagnostics: list[dict[str, Any]] | None = None,
        calibration: Mapping[str, Any] | None = None,
    ) -> None:
        self.law = law
        self.estimates: dict[str, float] = {k: float(v) for k, v in params.items()}
        self.free = list(free)
        self.fixed = dict(fixed or {})
        self.tied = dict(tied or {})
        self.draws = {k: np.asarray(v, dtype=float) for k, v in draws.items()} if draws else None
        self.metrics = dict(metrics or {})
        self.data = dict(data or {})
        self.options = dict(options or {})
        self.version = version
        self.alpha = float(alpha)
        self.rows = {k: np.asarray(v, dtype=float) for k, v in rows.items()} if rows else None
        self.diagnostics = list(diagnostics or [])
        self.calibration = dict(calibration) if calibration else None  # fits.calibration.calibrate

    def __repr__(self) -> str:
        objective = self.metrics.get("objective", math.nan)
        return (
            f"<FitResult {self.law.name}: nobs={self.nobs}, objective={objective:.4g}, "
            f"bootstrap={self.n_boot}, diagnostics={len(self.diagnostics)}>"
        )

    # ---------------------------------------------------------------- estimates and uncertainty
    @property
    def params(self) -> Any:
        """Point estimates (natural values) as a pandas Series indexed by parameter."""
        import pandas as pd

        return pd.Series(self.estimates, name="estimate", dtype=float)

    @property
    def n_boot(self) -> int:
        return 0 if not self.draws else int(next(iter(self.draws.values())).size)

    @property
    def bse(self) -> Any:
        """Bootstrap standard error per parameter (NaN without bootstrap; 0 for fixed parameters)."""
        import pandas as pd

        if not self.draws:
            values = {n: math.nan for n in self.estimates}
        else:
            values = {n: 0.0 if n in self.fixed else standard_error(self.draws[n]) for n in self.estimates}
        return pd.Series(values, name="std_err", dtype=float)

    def conf_int(self, alpha: float | None = None) -> Any:
        """Percentile bootstrap intervals: a pandas DataFrame indexed by parameter, columns lower/upper."""
        import pandas as pd

        a = self.alpha if alpha is None else alpha
        rows = {
            n: percentile_interval(self.draws[n], a) if self.draws else (math.nan, math.nan)
            for n in self.estimates
        }
        return pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])

    def _draw_frame(self, space: str) -> Any:
        import pandas as pd

        if not self.draws:
            raise UserError("this fit has no bootstrap draws (fit with n_boot > 0)", param="n_boot")
        if space not in ("fit", "natural"):
            raise UserError(f"space must be 'fit' or 'natural', got {space!r}", param="space")
        cols = {}
        for n in self.free:
            v = self.draws[n]
            cols[n] = self.law.param(n).to_fit(v) if space == "fit" else v
        return pd.DataFrame(cols)

    def cov_params(self, space: str = "natural") -> Any:
        """Covariance of the free parameters over the bootstrap draws (DataFrame); `space="fit"` uses the
        fit-space values (logs of the scale constants), where the draws are closer to normal."""
        return self._draw_frame(space).cov()

    def corr_params(self, space: str = "fit") -> Any:
        """Correlation matrix of the free parameters over the bootstrap draws (fit space by default)."""
        return self._draw_frame(space).corr()

    def derived(self, budget: float | None = None, alpha: float | None = None) -> Any:
        """The law's compute-optimal quantities (a, b, G; N_opt, D_opt, D/N at `budget` FLOPs) with SE and
        CI over the bootstrap draws; only for laws with a closed-form allocation (`Law.allocation`)."""
        import pandas as pd

        if self.law.allocation is None:
            raise UserError(f"law {self.law.name!r} has no closed-form compute-optimal allocation")
        a = self.alpha if alpha is None else alpha
        point = self.law.allocation(self.estimates, budget)
        boot = self.law.allocation(self.draws, budget) if self.draws else {}
        rows = {}
        for k, v in point.items():
            lo, hi = percentile_interval(boot[k], a) if boot else (math.nan, math.nan)
            rows[k] = (v, standard_error(boot[k]) if boot else math.nan, lo, hi)
        return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "std_err", "lower", "upper"])

    # ---------------------------------------------------------------- goodness of fit
    @property
    def _in_sample(self) -> dict[str, Any]:
        return self.metrics.get("in_sample") or {}

    @property
    def nobs(self) -> int:
        return int(self.data.get("n_rows", self._in_sample.get("n", 0)) or 0)

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom: rows minus free parameters."""
        return self.nobs - len(self.free)

    def _rows(self) -> dict[str, np.ndarray]:
        if not self.rows:
            raise UserError("this fit holds no data (remove_data() was called, or an old fit.json)")
        return self.rows

    @property
    def fittedvalues(self) -> np.ndarray:
        """The law's prediction of each fitted row (target units)."""
        rows = self._rows()
        return self.predict({k: v for k, v in rows.items() if k not in ("y", "compute")})

    @property
    def resid(self) -> np.ndarray:
        """Log residuals log y − log ŷ of the fitted rows (the scale the fit minimises)."""
        return np.log(self._rows()["y"]) - np.log(self.fittedvalues)

    @property
    def r2_log(self) -> float:
        return float(self._in_sample.get("r2_log", math.nan))

    @property
    def aic(self) -> float:
        return float(self._in_sample.get("aic", math.nan))

    @property
    def bic(self) -> float:
        return float(self._in_sample.get("bic", math.nan))

    def remove_data(self) -> FitResult:
        """Drop the fitted rows (fit.json becomes small; fittedvalues/resid are then unavailable)."""
        self.rows = None
        return self

    # ---------------------------------------------------------------- prediction
    def predict(self, X: Mapping[str, Any]) -> np.ndarray:
        """Point prediction of the target (loss or bits) for each row of `X`."""
        return self.law.predict(self.estimates, X)

    def _theta_draws(self, dtype: Any = float) -> dict[str, np.ndarray]:
        """The bootstrap draws in the law's fit space, arrays (S, 1) of `dtype` (float64 or float32):
        converted once per fit, not per call."""
        if not self.draws:
            raise UserError("this fit has no bootstrap draws (fit with n_boot > 0 to get intervals)")
        cached = getattr(self, "_theta_cache", None)
        if cached is None or cached[0] is not self.draws or cached[1] != len(self.draws):
            theta = self.law.draws_to_fit_space(self.draws)
            theta32 = {k: v.astype(np.float32) for k, v in theta.items()}
            cached = (self.draws, len(self.draws), theta, theta32)
            self._theta_cache = cached
        return cached[3] if np.dtype(dtype) == np.float32 else cached[2]

    def predict_draws(self, X: Mapping[str, Any]) -> np.ndarray:
        """One prediction per bootstrap replicate: array (n_boot, n_rows), float64."""
        theta = self._theta_draws()
        cols = self.law.prepare(X)
        with np.errstate(all="ignore"):
            return np.exp(self.law.log_predict_theta(theta, cols))

    def bootstrap_bounds(self, X: Mapping[str, Any], alpha: float | None = None) -> tuple[np.ndarray, ...]:
        """(lower, upper): the (α/2, 1 − α/2) percentiles of the bootstrap replicates' predictions at each
        row of `X` (parameter uncertainty only; `fits.bootstrap.prediction_percentiles`)."""
        from fits.bootstrap import prediction_percentiles

        a = self.alpha if alpha is None else alpha
        theta = self._theta_draws()
        cols = self.law.prepare(X)
        theta32 = self._theta_draws(np.float32)
        lo, hi = prediction_percentiles(self.law.log_predict_theta, theta, cols, [a / 2, 1 - a / 2], theta32)
        return lo, hi

    def predict_interval(self, X: Mapping[str, Any], alpha: float | None = None) -> Any:
        """DataFrame with columns prediction, lower, upper: the point prediction and the percentile
        interval of the bootstrap replicates' predictions (parameter uncertainty only)."""
        import pandas as pd

        lo, hi = self.bootstrap_bounds(X, alpha)
        index = getattr(X, "index", None)
        return pd.DataFrame({"prediction": self.predict(X), "lower": lo, "upper": hi}, index=index)

    # ---------------------------------------------------------------- report
    def _notes(self) -> dict[str, list[str]]:
        notes: dict[str, list[str]] = {n: [] for n in self.estimates}
        for name in self.estimates:
            if name in self.fixed:
                notes[name].append("fixed")
            elif name in self.tied:
                notes[name].append(f"= {self.tied[name]}")
            if name.startswith("R[") and self.law.spec.get("groups"):  # capacity: one R per group
                notes[name].append(self.law.spec["groups"][int(name[2:-1])])
        labels = {"bound": "ON BOUND", "unidentified": "poorly identified", "correlated": "corr"}
        for d in self.diagnostics:
            label = labels.get(d["kind"])
            if label is None:
                continue
            for name in d["params"]:
                if name in notes:
                    other = [p for p in d["params"] if p != name]
                    notes[name].append(f"{label} {other[0]}" if other else label)
        return notes

    def summary(self, budget: float | None = None) -> Summary:
        """The report: law, data, objective, parameters with SE, CI and notes, derived quantities, metrics,
        then one warning line per diagnostic. Prints as text; shows as a table in a notebook."""
        m = self.metrics
        ci = self.conf_int()
        se = self.bse
        notes = self._notes()
        pct = f"{100 * self.alpha / 2:g}%", f"{100 * (1 - self.alpha / 2):g}%"
        head = [
            f"scalefit fit: {self.law.name}   {self.law.equation}   [{self.law.citation}]",
            f"rows used: {self.data.get('n_rows', '?')}   dropped: {self.data.get('n_dropped', 0)}   "
            f"target: {self.law.target}   data sha256: {str(self.data.get('hash', ''))[:12]}",
            f"objective (sum of Huber, delta={self.options.get('huber_delta', 1e-3):g}, log residuals): "
            f"{m.get('objective', math.nan):.6e}   converged: {'yes' if m.get('converged') else 'NO'}   "
            f"starts: {m.get('n_starts', '?')}",
        ]
        requested = int(self.options.get("bootstrap") or self.n_boot)
        if requested:
            kept = int(m.get("bootstrap_converged", self.n_boot))
            head.append(
                f"bootstrap: {requested} row resamples (seed {self.options.get('seed', 0)}), "
                f"{kept} converged; percentile intervals and SEs from the converged refits only"
            )
        else:
            head.append("bootstrap: none (no standard errors or intervals)")
        table = [f"{'param':<12}{'estimate':>14}{'std err':>12}{pct[0]:>14}{pct[1]:>14}  note"]
        html_rows = []
        for name, value in self.estimates.items():
            note = "; ".join(notes[name])
            cells = (_fmt(value), _fmt(se[name]), _fmt(ci.loc[name, "lower"]), _fmt(ci.loc[name, "upper"]))
            table.append(f"{name:<12}{cells[0]:>14}{cells[1]:>12}{cells[2]:>14}{cells[3]:>14}  {note}")
            html_rows.append((name, *cells, note))
        lines = [*head, "", *table]
        if self.law.allocation is not None:
            d = self.derived(budget)
            title = "derived (C = 6·N·D" + (f", budget {budget:.3g} FLOPs)" if budget else ")")
            lines += ["", title]
            for name, row in d.iterrows():
                lines.append(
                    f"{name:<16}{_fmt(row['estimate']):>10}{_fmt(row['std_err']):>12}"
                    f"{_fmt(row['lower']):>14}{_fmt(row['upper']):>14}"
                )
        ins = self._in_sample
        if ins:
            lines += [
                "",
                f"in-sample: R²(log) {ins['r2_log']:.4f}   log-RMSE {ins['rmse_log']:.4g}   "
                f"mean |rel err| {ins['mean_abs_rel_error']:.3%}   "
                f"AIC {ins['aic']:.1f}   BIC {ins['bic']:.1f}",
            ]
        ho = m.get("holdout")
        if ho:
            lines.append(
                f"holdout (largest-compute {ho['fraction']:.0%}, {ho['n']} rows, fit on {ho['n_train']}): "
                f"mean rel err {ho['mean_rel_error']:.3%}   max {ho['max_rel_error']:.3%}   "
                f"signed {ho['mean_signed_rel_error']:+.3%}"
            )
        for stage in m.get("stages", []):
            lines.append(f"stage: {stage['stage']} ({stage['rows']} rows)")
        warnings = [f"warning: {d['message']}" for d in self.diagnostics]
        if warnings:
            lines += ["", *warnings]
        return Summary("\n".join(lines), _html(head, pct, html_rows, warnings))

    def __str__(self) -> str:
        return self.summary().as_text()

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        ci = self.conf_int()
        return _enc(
            {
                "format": FORMAT_VERSION,
                "scalefit_version": self.version,
                "law": self.law.spec,
                "law_equation": self.law.equation,
                "citation": self.law.citation,
                "target": self.law.target,
                "params": self.estimates,
                "free": self.free,
                "fixed": self.fixed,
                "tied": self.tied,
                "alpha": self.alpha,
                "bse": dict(self.bse),
                "conf_int": {n: [ci.loc[n, "lower"], ci.loc[n, "upper"]] for n in self.estimates},
                "diagnostics": self.diagnostics,
                "metrics": self.metrics,
                "data": self.data,
                "options": self.options,
                "bootstrap_draws": dict(self.draws) if self.draws else None,
                "rows": dict(self.rows) if self.rows else None,
                "calibration": self.calibration,
            }
        )

    def to_json(self, path: str | Path) -> None:
        """Write fit.json atomically (scaling.files: a temporary file in the same directory, then a rename;
        a device such as /dev/null is written in place)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitResult:
        try:
            fmt = int(d.get("format", 1))
            if fmt > FORMAT_VERSION:
                raise UserError(
                    f"fit.json format {fmt} is newer than this scalefit reads ({FORMAT_VERSION}); upgrade"
                )
            law = law_from_spec(d["law"])
            params = {k: _num(v) for k, v in d["params"].items()}
            draws = d.get("bootstrap_draws")
            rows = d.get("rows")
            result = cls(
                law=law,
                params=params,
                free=list(d.get("free", list(params))),
                fixed={k: _num(v) for k, v in d.get("fixed", {}).items()},
                tied=dict(d.get("tied", {})),
                draws={k: np.array([_num(x) for x in v]) for k, v in draws.items()} if draws else None,
                metrics=dict(d.get("metrics", {})),
                data=dict(d.get("data", {})),
                options=dict(d.get("options", {})),
                version=str(d.get("scalefit_version", "")),
                alpha=float(d.get("alpha", 0.05)),
                rows={k: np.array([_num(x) for x in v]) for k, v in rows.items()} if rows else None,
                diagnostics=list(d.get("diagnostics") or []),
                calibration=d.get("calibration"),
            )
        except UserError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"not a scalefit fit.json ({type(exc).__name__}: {exc})") from None
        if "diagnostics" not in d:  # format 1: computed now from what the file holds
            from fits.diagnostics import diagnose

            result.diagnostics = diagnose(result)
        return result

    @classmethod
    def from_json(cls, path: str | Path) -> FitResult:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"fit file not found: {p}")
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{p} is not valid JSON ({exc.__class__.__name__})") from None
        if not isinstance(d, dict) or "law" not in d or "params" not in d:
            raise UserError(f"{p} is not a scalefit fit.json (no law/params)")
        return cls.from_dict(d)


def _html(head: list[str], pct: tuple[str, str], rows: list[tuple[str, ...]], warnings: list[str]) -> str:
    esc = html.escape
    cells = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        "<div class='scalefit-summary'>"
        + "".join(f"<div>{esc(h)}</div>" for h in head)
        + "<table><thead><tr><th>param</th><th>estimate</th><th>std err</th>"
        + f"<th>{esc(pct[0])}</th><th>{esc(pct[1])}</th><th>note</th></tr></thead>"
        + f"<tbody>{cells}</tbody></table>"
        + "".join(f"<div style='color:#a60'>{esc(w)}</div>" for w in warnings)
        + "</div>"
    )


def _num(x: Any) -> float:
    if isinstance(x, str):
        return float(x)  # "inf", "-inf", "nan"
    return _dec_float(x)


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if not math.isfinite(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{x:.4e}"
    return f"{x:.5g}"
