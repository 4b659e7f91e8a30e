"""Approach 2 of Hoffmann et al. 2022 ("Training Compute-Optimal LLMs", Sec. 3.2): IsoFLOP profiles.

For each compute budget C, fit a parabola of loss against x = log N over the runs of that budget,
L ≈ c₀ + c₁·x + c₂·x², and take its vertex N_opt(C) = exp(−c₁ / (2·c₂)) (and D_opt = C / (6·N_opt)).
Then regress log N_opt and log D_opt on log C by OLS (statsmodels), giving the scaling exponents
N_opt ∝ C^a, D_opt ∝ C^b with confidence intervals. A budget is skipped (and counted) when it has fewer
than `min_points` runs, the parabola is not convex, or its vertex lies outside the sampled N range.
By default the parabola uses the runs within `window` (natural-log units of N) of the budget's lowest
loss run, which keeps the quadratic approximation local, as Porian et al. 2024 also do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaling.errors import UserError


@dataclass
class IsoFlopResult:
    """Per-budget optima and the OLS fits of log N_opt and log D_opt on log C."""

    budgets: list[dict[str, float]]
    skipped: dict[str, int]
    n_fit: Any  # statsmodels RegressionResults for log N_opt ~ log C
    d_fit: Any
    alpha: float = 0.05
    options: dict[str, Any] = field(default_factory=dict)

    def exponents(self) -> dict[str, Any]:
        """a (N_opt ∝ C^a) and b (D_opt ∝ C^b) with their OLS standard errors and (1 − α) CIs."""
        out: dict[str, Any] = {}
        for key, res in (("a", self.n_fit), ("b", self.d_fit)):
            lo, hi = res.conf_int(self.alpha)[1]
            out[key] = float(res.params[1])
            out[f"{key}_se"] = float(res.bse[1])
            out[f"{key}_ci"] = (float(lo), float(hi))
        out["n_budgets"] = len(self.budgets)
        return out

    def predict_optimum(self, compute: float) -> tuple[float, float]:
        """(N_opt, D_opt) at `compute` FLOPs from the two regressions."""
        x = np.array([[1.0, math.log(compute)]])
        return float(np.exp(self.n_fit.predict(x)[0])), float(np.exp(self.d_fit.predict(x)[0]))

    def summary(self) -> str:
        e = self.exponents()
        pct = f"{100 * (1 - self.alpha):g}%"
        lines = [
            "IsoFLOP (Hoffmann et al. 2022, Approach 2): parabola in log N per budget, OLS on log C",
            f"budgets used: {e['n_budgets']}   skipped: {sum(self.skipped.values())} {self.skipped or ''}",
            f"N_opt ∝ C^a: a = {e['a']:.4f} ± {e['a_se']:.4f}  ({pct} CI {e['a_ci'][0]:.4f} .. "
            f"{e['a_ci'][1]:.4f})",
            f"D_opt ∝ C^b: b = {e['b']:.4f} ± {e['b_se']:.4f}  ({pct} CI {e['b_ci'][0]:.4f} .. "
            f"{e['b_ci'][1]:.4f})",
            "",
            f"{'C':>12}{'N_opt':>12}{'D_opt':>12}{'loss_opt':>10}{'runs':>6}",
        ]
        for b in self.budgets:
            lines.append(
                f"{b['C']:>12.3e}{b['N_opt']:>12.3e}{b['D_opt']:>12.3e}{b['loss_opt']:>10.4f}{b['n']:>6d}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budgets": self.budgets,
            "skipped": self.skipped,
            "exponents": self.exponents(),
            **self.options,
        }


def isoflop_fit(
    N: np.ndarray,
    C: np.ndarray,
    loss: np.ndarray,
    *,
    window: float | None = 1.5,
    min_points: int = 3,
    alpha: float = 0.05,
) -> IsoFlopResult:
    """Approach-2 fit from runs (N, C, loss); see the module docstring.

    Runs are grouped into budgets by C rounded to 3 significant digits (so C = 6·N·D computed from
    rounded N and D still groups).
    """
    import statsmodels.api as sm

    N, C, loss = (np.asarray(v, dtype=float) for v in (N, C, loss))
    ok = np.isfinite(N) & np.isfinite(C) & np.isfinite(loss) & (N > 0) & (C > 0)
    N, C, loss = N[ok], C[ok], loss[ok]
    C = np.array([float(f"{c:.3g}") for c in C])
    budgets: list[dict[str, float]] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for c in np.unique(C):
        sel = C == c
        x, y = np.log(N[sel]), loss[sel]
        if window is not None:
            near = np.abs(x - x[np.argmin(y)]) <= window
            x, y = x[near], y[near]
        if np.unique(x).size < min_points:
            skip("too few runs")
            continue
        c2, c1, c0 = np.polyfit(x, y, 2)
        if c2 <= 0:
            skip("not convex")
            continue
        x_opt = -c1 / (2 * c2)
        if not x.min() <= x_opt <= x.max():
            skip("minimum outside sampled N")
            continue
        n_opt = math.exp(x_opt)
        budgets.append(
            {
                "C": float(c),
                "N_opt": n_opt,
                "D_opt": float(c) / (6 * n_opt),
                "loss_opt": float(c0 + c1 * x_opt + c2 * x_opt**2),
                "n": int(x.size),
            }
        )
    if len(budgets) < 3:
        raise UserError(
            f"IsoFLOP fit needs >= 3 usable compute budgets, got {len(budgets)} (skipped: {skipped})"
        )
    logc = np.log([b["C"] for b in budgets])
    X = sm.add_constant(logc)
    n_fit = sm.OLS(np.log([b["N_opt"] for b in budgets]), X).fit()
    d_fit = sm.OLS(np.log([b["D_opt"] for b in budgets]), X).fit()
    return IsoFlopResult(budgets, skipped, n_fit, d_fit, alpha, {"window": window, "min_points": min_points})
