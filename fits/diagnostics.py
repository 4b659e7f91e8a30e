"""Fit diagnostics, computed once when a law is fitted and stored in fit.json.

Each diagnostic is a dict `{"kind", "params", "message"}` that `FitResult.summary()` shows in its note
column and as a warning line, and that `predict` / `recommend` repeat when they use the fit:

- `bound`: a free parameter ends on, or within 1e-6 (relative, or absolute in fit space) of, a bound: the
  optimum is the constraint, not the data, and its interval is not a sampling interval;
- `unidentified`: the parameter's bootstrap interval spans more than `SPAN_FRACTION` of its allowed
  range (measured in fit space, i.e. log space for scale constants): the data hardly constrain it;
- `correlated`: two free parameters whose bootstrap draws (fit space) correlate with |r| > `MAX_CORR`:
  only a combination of them is determined;
- `low_r2`: R² of log targets below `MIN_R2_LOG`: the law's form does not describe these data;
- `bootstrap`: fewer than 90% of the bootstrap refits converged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fits.results import FitResult

BOUND_TOL = 1e-6
SPAN_FRACTION = 0.5
MAX_CORR = 0.95
MIN_R2_LOG = 0.9


def _bound_side(p: Any, value: float) -> str:
    """ "lower" / "upper" when `value` of parameter `p` is within `BOUND_TOL` of that bound, else ""."""
    if not math.isfinite(value):
        return "upper" if value > 0 else "lower"
    z = p.to_fit(value) if (value > 0 or not p.log) else -math.inf
    for side, nat, fb in (("lower", p.lower, p.fit_bounds[0]), ("upper", p.upper, p.fit_bounds[1])):
        if abs(value - nat) <= BOUND_TOL * max(abs(nat), 1e-300) or abs(z - fb) <= BOUND_TOL:
            return side
    return ""


def diagnose(result: FitResult) -> list[dict[str, Any]]:
    """The diagnostics of a fitted result (module docstring); an empty list for a clean fit."""
    law = result.law
    out: list[dict[str, Any]] = []
    for name in result.free:
        p = law.param(name)
        value = result.estimates[name]
        side = _bound_side(p, value)
        if side:
            bound = p.lower if side == "lower" else p.upper
            out.append(
                {
                    "kind": "bound",
                    "params": [name],
                    "message": f"{name} = {value:.4g} is on its {side} bound {bound:g}: the constraint, not "
                    "the data, sets it",
                }
            )
    draws = result.draws or {}
    fit_draws = {}
    for name in result.free:
        if name not in draws:
            continue
        p = law.param(name)
        with np.errstate(divide="ignore", invalid="ignore"):
            fit_draws[name] = np.asarray(p.to_fit(np.asarray(draws[name], dtype=float)), dtype=float)
        z = fit_draws[name][np.isfinite(fit_draws[name])]
        if z.size < 10:
            continue
        lo, hi = np.quantile(z, [result.alpha / 2, 1 - result.alpha / 2])
        width = p.fit_bounds[1] - p.fit_bounds[0]
        if width > 0 and (hi - lo) > SPAN_FRACTION * width:
            out.append(
                {
                    "kind": "unidentified",
                    "params": [name],
                    "message": f"{name} is poorly identified: its {1 - result.alpha:.0%} interval spans "
                    f"{(hi - lo) / width:.0%} of its allowed range",
                }
            )
    names = list(fit_draws)
    if len(names) >= 2:
        Z = np.column_stack([fit_draws[n] for n in names])
        Z = Z[np.all(np.isfinite(Z), axis=1)]
        if len(Z) >= 10:
            sd = Z.std(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.corrcoef(Z, rowvar=False)
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    if sd[i] > 0 and sd[j] > 0 and abs(corr[i, j]) > MAX_CORR:
                        out.append(
                            {
                                "kind": "correlated",
                                "params": [names[i], names[j]],
                                "message": f"{names[i]} and {names[j]} are strongly correlated "
                                f"(r = {corr[i, j]:+.3f}): only a combination of them is determined",
                            }
                        )
    r2 = (result.metrics.get("in_sample") or {}).get("r2_log")
    if r2 is not None and math.isfinite(r2) and r2 < MIN_R2_LOG:
        out.append(
            {
                "kind": "low_r2",
                "params": [],
                "message": f"R²(log) = {r2:.3f} < {MIN_R2_LOG}: the law describes these data poorly",
            }
        )
    requested = int(result.options.get("bootstrap") or 0)
    kept = int(result.metrics.get("bootstrap_converged", requested))
    if requested and kept < 0.9 * requested:
        out.append(
            {
                "kind": "bootstrap",
                "params": [],
                "message": f"only {kept} of {requested} bootstrap refits converged ({kept / requested:.0%}); "
                "the intervals may be too narrow or unreliable",
            }
        )
    return out
