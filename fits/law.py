"""`Law`: one scaling law, with everything that is specific to it declared on the object.

A law is declarative (scikit-learn's and lmfit's rule: the model owns its behaviour, nothing outside the
registry of laws asks for a law's name):

- the formula: parameters (`Param`: bounds, multi-start grid, log or linear fit space), the columns it
  reads (`inputs` required, `optional_inputs` used when present) and one function `log_formula(θ, cols)`
  giving log(target) from *fit-space* parameters (positive scale constants carried as natural logs, as in
  Hoffmann et al. 2022 Approach 3 and Besiroglu et al. 2024), optionally with its analytic Jacobian;
- the data it is fitted to: `target` and its `target_fallbacks`, the results-store `task` whose rows it
  fits, a `row_filter` for rows of other kinds (e.g. quantized training for a law without precision
  terms), `min_rows` and `min_distinct` values per column, the `compute` proxy used to order runs for
  holdouts and backtests, and `specialize` to adapt the law to a data set (one R per group);
- how it is fitted: `default_ties` (Kumar et al. tie α = β) and `fit_strategy` (plain multi-start, or a
  staged fit);
- what it can answer: `allocation`, an optional closed-form compute-optimal allocation, `responds_to`
  (whether `recommend` can rank precisions with it), and `ranges`, the input ranges its constants were
  fitted on (published sets).

Only numpy is imported here, so `predict` and `recommend` start fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scaling.errors import UserError

KINDS = ("w", "a", "kv")
HIGH_PRECISION_BITS = 16.0  # a missing P_w / P_a / P_kv means "not quantized" under bf16 compute


@dataclass(frozen=True)
class Param:
    """One law parameter.

    `lower`/`upper` bound the natural value; `log=True` means it is fitted as its natural log (then the
    bounds must be positive). `grid` holds the multi-start initial values *in fit space* (log values for
    log parameters), as Hoffmann et al. and Epoch specify theirs.
    """

    name: str
    lower: float
    upper: float
    grid: tuple[float, ...]
    log: bool = False
    doc: str = ""

    @property
    def fit_bounds(self) -> tuple[float, float]:
        if self.log:
            return (math.log(self.lower), math.log(self.upper))
        return (self.lower, self.upper)

    def to_fit(self, value: Any) -> Any:
        if np.ndim(value):
            arr = np.asarray(value, dtype=float)
            with np.errstate(divide="ignore"):
                return np.log(arr) if self.log else arr
        return math.log(value) if self.log else float(value)

    def from_fit(self, value: Any) -> Any:
        return np.exp(value) if self.log else value


Columns = dict[str, np.ndarray]
LogFormula = Callable[[Mapping[str, Any], Columns], np.ndarray]
LogJacobian = Callable[[Mapping[str, Any], Columns], tuple[np.ndarray, dict[str, np.ndarray]]]
RowFilter = Callable[[Any, Mapping[str, Any]], list[tuple[np.ndarray, str]]]
"""(table, options) -> [(mask of rows not to use, reason), ...]; options carry e.g. `ptq_method`."""
ComputeProxy = Callable[[Mapping[str, np.ndarray], Any], np.ndarray]
"""(fitted columns X, the kept rows of the table) -> compute per row (orders runs for holdouts)."""
Specializer = Callable[["Law", Any, dict[str, np.ndarray]], tuple["Law", dict[str, np.ndarray]]]
"""(law, the kept rows of the table, X) -> (the law for this data, X), e.g. one parameter per group."""
FitStrategy = Callable[..., tuple[Any, Any]]
"""(law, X, y, *, fixed, tied, huber_delta, n_refine) -> (FitOutcome, Objective)."""
Allocation = Callable[[Mapping[str, Any], float | None], dict[str, Any]]
"""(params, budget FLOPs or None) -> {a, b, G[, N_opt, D_opt, tokens_per_param]} in closed form."""


def training_compute(X: Mapping[str, np.ndarray], rows: Any) -> np.ndarray:
    """The run's recorded `flops` when every kept row has one, else C = 6·N·D (Kaplan et al. 2020)."""
    if rows is not None and "flops" in getattr(rows, "columns", ()):
        import pandas as pd

        flops = pd.to_numeric(rows["flops"], errors="coerce").to_numpy(dtype=float)
        if flops.size and np.all(np.isfinite(flops)) and np.all(flops > 0):
            return flops
    return 6.0 * np.asarray(X["N"], dtype=float) * np.asarray(X["D"], dtype=float)


@dataclass(frozen=True)
class Law:
    """A scaling law: `log_formula(theta, cols)` gives log(target) from fit-space parameters.

    `theta` values may be scalars or arrays of shape (S, 1) (S parameter vectors evaluated at once against
    the n data rows, giving an (S, n) result): the fitter evaluates its whole start grid in one call.
    `prepare_columns(X)` turns a user table into the columns the formula reads (filling defaults, taking
    logs). The fields after `spec` declare the law's data, fitting and planning behaviour (module
    docstring); their defaults describe a loss law in N and D fitted to language-model runs.
    """

    name: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    target: str
    log_formula: LogFormula
    prepare_columns: Callable[[Mapping[str, Any]], Columns]
    citation: str
    equation: str
    optional_inputs: tuple[str, ...] = ()
    log_jacobian: LogJacobian | None = None  # analytic (log target, {param: ∂ log target / ∂ fit param})
    spec: dict[str, Any] = field(default_factory=dict)  # what `get_law` needs to rebuild this law
    # --- the data it is fitted to
    target_fallbacks: tuple[str, ...] = ()
    fit_inputs: tuple[str, ...] = ()  # columns needed to fit the law but not to predict with it
    task: str | None = "lm"
    row_filter: RowFilter | None = None
    alternatives: tuple[tuple[str, ...], ...] = ()  # groups of columns of which the first present is read
    min_rows: int = 7
    min_distinct: Mapping[str, int] = field(default_factory=lambda: {"N": 3, "D": 3})
    compute: ComputeProxy = training_compute
    compute_label: str = "compute C (FLOPs)"
    specialize: Specializer | None = None
    # --- how it is fitted and what it can answer
    default_ties: Mapping[str, str] = field(default_factory=dict)
    fit_strategy: FitStrategy | None = None  # None: multi-start over the whole grid (`fitter.fit_law`)
    allocation: Allocation | None = None
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    unit: str = "nats/token"

    def __post_init__(self) -> None:
        if not self.spec:  # a law built in user code is rebuilt by its name (see `fits.laws.register_law`)
            object.__setattr__(self, "spec", {"name": self.name})

    # ------------------------------------------------------------------ parameters
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise UserError(f"law {self.name!r} has no parameter {name!r} (it has {', '.join(self.param_names)})")

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """Natural-value bounds per parameter."""
        return {p.name: (p.lower, p.upper) for p in self.params}

    def to_fit_space(self, params: Mapping[str, float]) -> dict[str, float]:
        missing = [n for n in self.param_names if n not in params]
        if missing:
            raise UserError(f"law {self.name!r} needs parameter(s) {', '.join(missing)}")
        return {p.name: p.to_fit(params[p.name]) for p in self.params}

    def draws_to_fit_space(self, draws: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Fit-space arrays of shape (S, 1) from S draws per parameter (e.g. bootstrap replicates): the
        batch form `log_predict_theta` evaluates against n rows at once, giving (S, n)."""
        arrays = {name: np.asarray(draws[name], dtype=float).reshape(-1) for name in self.param_names}
        return {name: v[:, None] for name, v in self.to_fit_space(arrays).items()}

    def from_fit_space(self, theta: Mapping[str, Any]) -> dict[str, Any]:
        return {p.name: p.from_fit(theta[p.name]) for p in self.params}

    def start_grid(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Cartesian product of the fit-space grids of `names` (default: all), shape (S, len(names))."""
        chosen = [self.param(n) for n in (names or self.param_names)]
        mesh = np.meshgrid(*[np.asarray(p.grid, dtype=float) for p in chosen], indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    # ------------------------------------------------------------------ inputs and prediction
    def responds_to(self, column: str) -> bool:
        """Whether the law's prediction depends on `column` (e.g. `P_w`: it can rank training precisions)."""
        return column in self.inputs or column in self.optional_inputs

    @property
    def targets(self) -> tuple[str, ...]:
        """The target column and the columns read in its place when it is absent."""
        return (self.target, *self.target_fallbacks)

    def prepare(self, X: Mapping[str, Any]) -> Columns:
        """Check the needed columns are present and build the formula's input arrays (float64)."""
        missing = [c for c in self.inputs if _get(X, c) is None]
        missing += [" or ".join(g) for g in self.alternatives if all(_get(X, c) is None for c in g)]
        if missing:
            raise UserError(f"law {self.name!r} needs column(s) {', '.join(missing)}")
        return self.prepare_columns(X)

    def log_predict_theta(self, theta: Mapping[str, Any], cols: Columns) -> np.ndarray:
        """log(target) from fit-space parameters and prepared columns (no input checks: the fitter's path)."""
        return self.log_formula(theta, cols)

    def predict(self, params: Mapping[str, float], X: Mapping[str, Any]) -> np.ndarray:
        """Predicted target (loss in nats/token, or bits) for each row of `X` (a mapping of columns).

        Missing P_w / P_a / P_kv are taken as 16 (not quantized); a missing or NaN P_post means no PTQ.
        """
        cols = self.prepare(X)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.exp(self.log_formula(self.to_fit_space(params), cols))

    # ------------------------------------------------------------------ fitting
    def for_data(self, rows: Any, X: dict[str, np.ndarray]) -> tuple[Law, dict[str, np.ndarray]]:
        """The law as fitted to these rows (e.g. one parameter per group) and the columns it reads."""
        return (self, X) if self.specialize is None else self.specialize(self, rows, X)

    def fit(self, X: Mapping[str, Any], y: np.ndarray, **options: Any) -> tuple[Any, Any]:
        """Point estimate of the parameters on (X, y) with the law's own strategy (`fitter.fit_law` by
        default): returns (FitOutcome, Objective). Options: fixed, tied, huber_delta, n_refine."""
        if self.fit_strategy is not None:
            return self.fit_strategy(self, X, y, **options)
        from fits.fitter import fit_law

        return fit_law(self, X, y, **options)

    def with_ranges(self, ranges: Mapping[str, tuple[float, float]]) -> Law:
        """A copy that knows the input ranges its constants were fitted on."""
        return replace(self, ranges=dict(ranges))

    def describe(self) -> str:
        return f"{self.name}: {self.equation}  [{self.citation}]"

    def __repr__(self) -> str:
        return f"Law({self.name!r}, {self.equation!r}, params={list(self.param_names)})"


def _get(X: Mapping[str, Any], name: str) -> Any:
    try:
        return X[name]
    except (KeyError, IndexError, TypeError):
        return None


def column(X: Mapping[str, Any], name: str, default: float | None = None) -> np.ndarray:
    """Column `name` of `X` as a float64 array (at least 1-d); `default` fills a missing column."""
    value = _get(X, name)
    if value is None:
        if default is None:
            raise UserError(f"missing column {name!r}")
        value = default
    return np.atleast_1d(np.asarray(value, dtype=float))


def broadcast(cols: dict[str, np.ndarray]) -> Columns:
    """The columns broadcast to one common shape (scalars and length-1 columns repeat)."""
    try:
        shape = np.broadcast_shapes(*(v.shape for v in cols.values()))
    except ValueError:
        sizes = ", ".join(f"{k}: {v.size}" for k, v in cols.items())
        raise UserError(f"columns of different lengths ({sizes})") from None
    return {k: np.broadcast_to(v, shape).astype(float) for k, v in cols.items()}


def value_only(formula: LogJacobian) -> LogFormula:
    """The log-target part of a formula that returns (log target, partials): each law's equation is
    written once, in the function that also gives its analytic Jacobian. A formula with a `partials`
    keyword is asked to skip them (prediction over bootstrap draws needs values only)."""
    import inspect

    skip = "partials" in inspect.signature(formula).parameters

    def value(theta: Mapping[str, Any], c: Columns) -> np.ndarray:
        return formula(theta, c, partials=False)[0] if skip else formula(theta, c)[0]

    return value
