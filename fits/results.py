"""`FitResult`: a fitted law with its uncertainty, in the spirit of statsmodels' results objects.

`.params` (point estimates), `.bse` (bootstrap standard errors), `.conf_int()` (percentile intervals),
`.summary()` (a readable table), `.predict(X)`, `.predict_draws(X)` (one prediction per bootstrap
replicate, for propagating intervals), `.derived(budget)` (compute-optimal allocation with CIs), and
`.to_json(path)` / `FitResult.from_json(path)`. fit.json holds the law spec, params, CIs, bootstrap draws,
metrics, the data hash and ranges, the scalefit version and the fit options. Non-finite floats are stored
as the strings "inf", "-inf", "nan" so the file is strict JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fits.bootstrap import percentile_interval, standard_error
from fits.laws import Law, derived_quantities, law_from_spec
from scaling.errors import UserError

FORMAT_VERSION = 1


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


@dataclass
class FitResult:
    """A fitted scaling law. `params` are natural values (A, not log A); `draws` bootstrap replicates."""

    law: Law
    params: dict[str, float]
    free: list[str]
    fixed: dict[str, float] = field(default_factory=dict)
    tied: dict[str, str] = field(default_factory=dict)
    draws: dict[str, np.ndarray] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    alpha: float = 0.05

    # ---------------------------------------------------------------- estimates and uncertainty
    @property
    def n_boot(self) -> int:
        return 0 if not self.draws else int(next(iter(self.draws.values())).size)

    @property
    def bse(self) -> dict[str, float]:
        """Bootstrap standard error per parameter (NaN without bootstrap; 0 for fixed parameters)."""
        if not self.draws:
            return {n: float("nan") for n in self.params}
        return {n: 0.0 if n in self.fixed else standard_error(self.draws[n]) for n in self.params}

    def conf_int(self, alpha: float | None = None) -> Any:
        """Percentile bootstrap intervals: a pandas DataFrame indexed by parameter, columns lower/upper."""
        import pandas as pd

        a = self.alpha if alpha is None else alpha
        rows = {
            n: percentile_interval(self.draws[n], a) if self.draws else (math.nan, math.nan)
            for n in self.params
        }
        return pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])

    def derived(self, budget: float | None = None, alpha: float | None = None) -> Any:
        """Compute-optimal quantities (a, b, G; N_opt, D_opt, D/N at `budget` FLOPs) with SE and CI."""
        import pandas as pd

        if not {"A", "B", "alpha", "beta"} <= set(self.params):
            raise UserError(f"law {self.law.name!r} has no Chinchilla-form compute-optimal allocation")
        a = self.alpha if alpha is None else alpha
        point = derived_quantities(self.params, budget)
        boot = derived_quantities(self.draws, budget) if self.draws else {}
        rows = {}
        for k, v in point.items():
            lo, hi = percentile_interval(boot[k], a) if boot else (math.nan, math.nan)
            rows[k] = (v, standard_error(boot[k]) if boot else math.nan, lo, hi)
        return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "std_err", "lower", "upper"])

    # ---------------------------------------------------------------- prediction
    def predict(self, X: Mapping[str, Any]) -> np.ndarray:
        """Point prediction of the target (loss or bits) for each row of `X`."""
        return self.law.predict(self.params, X)

    def predict_draws(self, X: Mapping[str, Any]) -> np.ndarray:
        """One prediction per bootstrap replicate: array (n_boot, n_rows)."""
        if not self.draws:
            raise UserError("this fit has no bootstrap draws (fit with --bootstrap > 0 to get intervals)")
        cols = self.law.prepare(X)
        theta = self.law.draws_to_fit_space(self.draws)
        with np.errstate(all="ignore"):
            return np.exp(self.law.log_predict_theta(theta, cols))

    def predict_interval(self, X: Mapping[str, Any], alpha: float | None = None) -> tuple[np.ndarray, ...]:
        """(prediction, lower, upper): point prediction and the percentile interval over replicates."""
        a = self.alpha if alpha is None else alpha
        point = self.predict(X)
        draws = self.predict_draws(X)
        lo, hi = np.nanquantile(draws, [a / 2, 1 - a / 2], axis=0)
        return point, lo, hi

    # ---------------------------------------------------------------- report
    def summary(self, budget: float | None = None) -> str:
        """A readable table: law, data, objective, parameters with SE and CI, derived quantities, metrics."""
        m = self.metrics
        ci = self.conf_int()
        se = self.bse
        pct = f"{100 * self.alpha / 2:g}%", f"{100 * (1 - self.alpha / 2):g}%"
        lines = [
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
            lines.append(
                f"bootstrap: {requested} row resamples (seed {self.options.get('seed', 0)}), "
                f"{kept} converged; percentile intervals and SEs from the converged refits only"
            )
            if kept < 0.9 * requested:
                lines.append(
                    f"warning: only {kept} of {requested} bootstrap refits converged "
                    f"({kept / requested:.0%}); the intervals may be too narrow or unreliable"
                )
        else:
            lines.append("bootstrap: none (no standard errors or intervals)")
        lines.append("")
        lines.append(f"{'param':<12}{'estimate':>14}{'std err':>12}{pct[0]:>14}{pct[1]:>14}  note")
        for name, value in self.params.items():
            note = "fixed" if name in self.fixed else (f"= {self.tied[name]}" if name in self.tied else "")
            if name.startswith("R["):  # capacity: one R per group; say which
                note = self.law.spec["groups"][int(name[2:-1])]
            lines.append(
                f"{name:<12}{_fmt(value):>14}{_fmt(se[name]):>12}"
                f"{_fmt(ci.loc[name, 'lower']):>14}{_fmt(ci.loc[name, 'upper']):>14}  {note}"
            )
        if {"A", "B", "alpha", "beta"} <= set(self.params):
            d = self.derived(budget)
            title = "derived (C = 6·N·D" + (f", budget {budget:.3g} FLOPs)" if budget else ")")
            lines += ["", title]
            for name, row in d.iterrows():
                lines.append(
                    f"{name:<16}{_fmt(row['estimate']):>10}{_fmt(row['std_err']):>12}"
                    f"{_fmt(row['lower']):>14}{_fmt(row['upper']):>14}"
                )
        ins = m.get("in_sample")
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
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

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
                "params": self.params,
                "free": self.free,
                "fixed": self.fixed,
                "tied": self.tied,
                "alpha": self.alpha,
                "bse": self.bse,
                "conf_int": {n: [ci.loc[n, "lower"], ci.loc[n, "upper"]] for n in self.params},
                "metrics": self.metrics,
                "data": self.data,
                "options": self.options,
                "bootstrap_draws": {n: v for n, v in self.draws.items()} if self.draws else None,
            }
        )

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitResult:
        try:
            law = law_from_spec(d["law"])
            params = {k: _num(v) for k, v in d["params"].items()}
            draws = d.get("bootstrap_draws")
            return cls(
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
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"not a scalefit fit.json ({type(exc).__name__}: {exc})") from None

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
