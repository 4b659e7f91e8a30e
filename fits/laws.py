"""Scaling laws as small declarative objects: parameters (bounds, start grid), inputs, one formula.

A `Law` predicts the log of its target (loss in nats/token, or bits for `capacity`) from columns of a
table. Each law's formula is written once, in *fit space*: positive scale constants (A, B, E, C_T, C_x,
R) are carried as their natural logs so the multi-start grid and the optimiser work on comparable scales,
exactly as in Hoffmann et al. 2022 (Approach 3) and Besiroglu et al. 2024 (Epoch's replication).
`Law.predict(params, X)` takes the *natural* parameters (A, not log A) and returns the target itself.

Laws (see each builder's docstring for the equation):

- `chinchilla`  L = E + A·N^−α + B·D^−β                     (Hoffmann et al. 2022)
- `precision`   L = A·N_eff^−α + B·D^−β + E + δ_PTQ           (Kumar et al. 2024, Scaling Laws for Precision)
- `capacity`    bits = min(R·P, bits_available)               (Allen-Zhu & Li 2024, Physics of LMs 3.3)

Published constant sets (`published(name)`): `chinchilla-hoffmann2022`, `chinchilla-epoch2024`,
`kumar2024`. Only numpy is imported here, so `recommend` and `predict` start fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Law:
    """A scaling law: `log_formula(theta, cols)` gives log(target) from fit-space parameters.

    `theta` values may be scalars or arrays of shape (S, 1) (S parameter vectors evaluated at once against
    the n data rows, giving an (S, n) result): the fitter evaluates its whole start grid in one call.
    `prepare(X)` turns a user table into the columns the formula reads (filling defaults, taking logs).
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

    def prepare(self, X: Mapping[str, Any]) -> Columns:
        """Check the needed columns are present and build the formula's input arrays (float64)."""
        missing = [c for c in self.inputs if _get(X, c) is None]
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

    def start_grid(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Cartesian product of the fit-space grids of `names` (default: all), shape (S, len(names))."""
        chosen = [self.param(n) for n in (names or self.param_names)]
        mesh = np.meshgrid(*[np.asarray(p.grid, dtype=float) for p in chosen], indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def describe(self) -> str:
        return f"{self.name}: {self.equation}  [{self.citation}]"


def _get(X: Mapping[str, Any], name: str) -> Any:
    try:
        return X[name]
    except (KeyError, IndexError, TypeError):
        return None


def _column(X: Mapping[str, Any], name: str, default: float | None = None) -> np.ndarray:
    value = _get(X, name)
    if value is None:
        if default is None:
            raise UserError(f"missing column {name!r}")
        value = default
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    return arr


def _broadcast(cols: dict[str, np.ndarray]) -> Columns:
    shape = np.broadcast_shapes(*(v.shape for v in cols.values()))
    return {k: np.broadcast_to(v, shape).astype(float) for k, v in cols.items()}


def _value_only(formula: LogJacobian) -> LogFormula:
    """The log-target part of a formula that returns (log target, partials): each law's equation is
    written once, in the function that also gives its analytic Jacobian."""

    def value(theta: Mapping[str, Any], c: Columns) -> np.ndarray:
        return formula(theta, c)[0]

    return value


# ----------------------------------------------------------------------------------------------- chinchilla

_SCALE_GRID = tuple(float(v) for v in range(0, 30, 5))  # a, b in {0, 5, ..., 25}  (Hoffmann / Epoch grid)
_EXP_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)  # alpha, beta in {0, 0.5, ..., 2}
_E_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # e in {-1, -0.5, ..., 1}


def _lse3(t1: np.ndarray, t2: np.ndarray, t3: np.ndarray) -> tuple[np.ndarray, ...]:
    """log(e^t1 + e^t2 + e^t3), computed stably, and its softmax weights s1, s2, s3 (the partials)."""
    m = np.maximum(np.maximum(t1, t2), t3)
    e1, e2, e3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(t3 - m)
    total = e1 + e2 + e3
    return m + np.log(total), e1 / total, e2 / total, e3 / total


def _chinchilla_prepare(X: Mapping[str, Any]) -> Columns:
    cols = _broadcast({"N": _column(X, "N"), "D": _column(X, "D")})
    return {"logN": np.log(cols["N"]), "logD": np.log(cols["D"])}


def _chinchilla_jacobian(theta: Mapping[str, Any], c: Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """log L = LSE(a − α·log N, b − β·log D, e) and its fit-space partials: the softmax weights s_i of
    the three terms (times −log N, −log D for the exponents)."""
    value, s1, s2, s3 = _lse3(
        theta["A"] - theta["alpha"] * c["logN"],
        theta["B"] - theta["beta"] * c["logD"],
        theta["E"] + 0 * c["logN"],
    )
    return value, {"A": s1, "B": s2, "E": s3, "alpha": -s1 * c["logN"], "beta": -s2 * c["logD"]}


def chinchilla_law() -> Law:
    """Chinchilla parametric loss (Hoffmann et al. 2022, "Training Compute-Optimal LLMs", Approach 3).

        L(N, D) = E + A / N^α + B / D^β,

    fitted in its log-sum-exp form log L = LSE(a − α·log N, b − β·log D, e) with a = log A, b = log B,
    e = log E. N = non-embedding parameters, D = training tokens. The start grid is Hoffmann's/Epoch's:
    α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25} (5·5·5·6·6 = 4,500 starts).
    """
    params = (
        Param("A", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the parameter term"),
        Param("B", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the data term"),
        Param("E", 1e-3, 20.0, _E_GRID, log=True, doc="irreducible loss"),
        Param("alpha", 0.0, 3.0, _EXP_GRID, doc="parameter exponent"),
        Param("beta", 0.0, 3.0, _EXP_GRID, doc="data exponent"),
    )
    return Law(
        name="chinchilla",
        params=params,
        inputs=("N", "D"),
        target="loss",
        log_formula=_value_only(_chinchilla_jacobian),
        log_jacobian=_chinchilla_jacobian,
        prepare_columns=_chinchilla_prepare,
        citation="Hoffmann et al. 2022, Approach 3",
        equation="L = E + A·N^-alpha + B·D^-beta",
        spec={"name": "chinchilla"},
    )


# ------------------------------------------------------------------------------------------------ precision


def _precision_prepare(X: Mapping[str, Any]) -> Columns:
    raw = {"N": _column(X, "N"), "D": _column(X, "D"), "P_post": _column(X, "P_post", np.nan)}
    for k in KINDS:
        raw[f"P_{k}"] = _column(X, f"P_{k}", HIGH_PRECISION_BITS)
    raw = _broadcast(raw)
    for k in KINDS:  # NaN bits (a column present but empty for unquantized kinds) = high precision
        raw[f"P_{k}"] = np.where(np.isnan(raw[f"P_{k}"]), HIGH_PRECISION_BITS, raw[f"P_{k}"])
    has_ptq = ~np.isnan(raw["P_post"])
    p_post = np.where(has_ptq, raw["P_post"], 0.0)
    cols: Columns = {
        "logN": np.log(raw["N"]),
        "logD": np.log(raw["D"]),
        "ptq": has_ptq.astype(float),
        "P_post": p_post,
    }
    for k in KINDS:
        cols[f"P_{k}"] = raw[f"P_{k}"]
        gap = raw[f"P_{k}"] - p_post  # training bits above the serving bits; no robustness term at gap <= 0
        cols[f"gap_{k}"] = np.where(has_ptq & (gap > 0), gap, 1.0)
        cols[f"gap_on_{k}"] = (has_ptq & (gap > 0)).astype(float)
    return cols


def _precision_jacobian(theta: Mapping[str, Any], c: Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """log L of the precision law and its analytic fit-space partials.

    With T = LSE(a − α·log N_eff, b − β·log D, e), s_i its softmax weights, δ = δ_PTQ and
    q = δ / (e^T + δ): ∂log L = (1 − q)·∂T + q·∂log δ, where ∂log N_eff/∂γ_x = −g_x·P_x/γ_x²,
    ∂log N_eff/∂n_x = −g_x with g_x = e^(−u_x)/(1 − e^(−u_x)), u_x = P_x/γ_x − n_x (0 where floored).
    """
    log_n = c["logN"]
    g = {}
    for k in KINDS:
        u = c[f"P_{k}"] / theta[f"gamma_{k}"] - theta[f"n_{k}"]
        factor = -np.expm1(-u)
        floored = factor < 1e-12
        log_n = log_n + np.log(np.maximum(factor, 1e-12))
        g[k] = np.where(floored, 0.0, np.exp(-u) / np.where(floored, 1.0, factor))
    log_train, s1, s2, s3 = _lse3(
        theta["A"] - theta["alpha"] * log_n, theta["B"] - theta["beta"] * c["logD"], theta["E"] + 0 * log_n
    )
    log_robust = 0.0
    d_robust = {}
    for k in KINDS:
        cx = np.exp(theta[f"C_{k}"]) * c[f"gap_{k}"]
        term = -np.expm1(-cx)
        on = c[f"gap_on_{k}"] > 0
        with np.errstate(divide="ignore"):  # log 0 = -inf: no δ_PTQ from this kind (exp(-inf) = 0 below)
            log_robust = log_robust + np.log(np.where(on, term, 0.0))
        # ∂ log(1 − e^(−C·gap)) / ∂ log C = C·gap·e^(−C·gap) / (1 − e^(−C·gap)); 0 in the C -> inf limit
        ratio = np.where(np.isfinite(cx), cx * np.exp(-np.minimum(cx, 700.0)) / np.maximum(term, 1e-300), 0.0)
        d_robust[k] = np.where(on, ratio, 0.0)
    log_delta = (
        theta["C_T"]
        - c["P_post"] / theta["gamma_post"]
        + theta["gamma_D"] * c["logD"]
        - theta["gamma_N"] * log_n
    )
    delta = c["ptq"] * np.exp(log_delta + log_robust)
    value = log_train + np.log1p(delta * np.exp(-log_train))
    q = delta / (np.exp(log_train) + delta)
    p = 1.0 - q
    d_logn = p * (-theta["alpha"] * s1) + q * (-theta["gamma_N"])
    parts = {
        "A": p * s1,
        "B": p * s2,
        "E": p * s3,
        "alpha": -p * s1 * log_n,
        "beta": -p * s2 * c["logD"],
        "C_T": q,
        "gamma_D": q * c["logD"],
        "gamma_N": -q * log_n,
        "gamma_post": q * c["P_post"] / theta["gamma_post"] ** 2,
    }
    for k in KINDS:
        parts[f"gamma_{k}"] = d_logn * (-g[k] * c[f"P_{k}"] / theta[f"gamma_{k}"] ** 2)
        parts[f"n_{k}"] = d_logn * (-g[k])
        parts[f"C_{k}"] = q * d_robust[k]
    return value, parts


def precision_law() -> Law:
    """Unified precision-aware law of Kumar et al. 2024, "Scaling Laws for Precision" (Eq. for L(N,D,P)).

        L = A·N_eff^−α + B·D^−β + E + δ_PTQ
        N_eff = N · Π_{x∈{w,a,kv}} (1 − e^−(P_x/γ_x − n_x))
        δ_PTQ = C_T · e^(−P_post/γ_post) · D^γ_D / N_eff^γ_N · Π_x [1 − e^(−C_x·(P_x − P_post))]

    P_x: training bits of weights, activations, KV cache (16 = not quantized); P_post: bits of
    post-training weight quantization (NaN / absent = no PTQ, δ_PTQ = 0). The robustness factor of a kind
    is 0 when P_x ≤ P_post (it was already that coarse in training).

    Reading of the offset n_x: the exponent is (P_x/γ_x) − n_x, i.e. n_x shifts the *scaled* precision
    (equivalently 1 − e^(−(P_x − n_x·γ_x)/γ_x)). With the Table 2 constants this reading gives the paper's
    headline (compute-optimal training precision of 7–8 bits); the alternative (P_x − n_x)/γ_x does not
    for the activation/KV terms. A factor is floored at 1e-12 where P_x/γ_x < n_x.
    """
    params = (
        Param("A", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the parameter term"),
        Param("B", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the data term"),
        Param("E", 1e-3, 20.0, _E_GRID, log=True, doc="irreducible loss"),
        Param("alpha", 0.0, 3.0, _EXP_GRID, doc="parameter exponent"),
        Param("beta", 0.0, 3.0, _EXP_GRID, doc="data exponent"),
        Param("gamma_w", 0.05, 50.0, (0.5, 1.0, 2.0, 4.0), doc="weight precision sensitivity"),
        Param("n_w", -5.0, 20.0, (-1.0, 0.0, 1.0, 2.0), doc="weight precision offset"),
        Param("gamma_a", 0.05, 50.0, (0.5, 1.0, 2.0, 4.0), doc="activation precision sensitivity"),
        Param("n_a", -5.0, 20.0, (-1.0, 0.0, 1.0, 2.0), doc="activation precision offset"),
        Param("gamma_kv", 0.05, 50.0, (0.5, 1.0, 2.0, 4.0), doc="KV-cache precision sensitivity"),
        Param("n_kv", -5.0, 20.0, (-1.0, 0.0, 1.0, 2.0), doc="KV-cache precision offset"),
        Param("C_T", 1e-8, 1e6, (-6.0, -3.0, 0.0), log=True, doc="PTQ degradation scale"),
        Param("gamma_D", 0.0, 3.0, (0.25, 0.5, 1.0), doc="PTQ growth with tokens"),
        Param("gamma_N", 0.0, 3.0, (0.25, 0.5, 1.0), doc="PTQ shrinkage with parameters"),
        Param("gamma_post", 0.05, 50.0, (0.5, 1.0, 2.0), doc="PTQ precision sensitivity"),
        Param("C_w", 1e-3, 1e4, (-0.7, 0.7), log=True, doc="PTQ robustness from weight training bits"),
        Param("C_a", 1e-3, 1e4, (-0.7, 0.7), log=True, doc="PTQ robustness from activation training bits"),
        Param("C_kv", 1e-3, 1e4, (-0.7, 0.7), log=True, doc="PTQ robustness from KV training bits"),
    )
    return Law(
        name="precision",
        params=params,
        inputs=("N", "D"),
        optional_inputs=("P_w", "P_a", "P_kv", "P_post"),
        target="loss_post",
        log_formula=_value_only(_precision_jacobian),
        log_jacobian=_precision_jacobian,
        prepare_columns=_precision_prepare,
        citation="Kumar et al. 2024, Scaling Laws for Precision",
        equation="L = A·N_eff^-alpha + B·D^-beta + E + delta_PTQ",
        spec={"name": "precision"},
    )


# ------------------------------------------------------------------------------------------------- capacity


def _capacity_prepare(X: Mapping[str, Any]) -> Columns:
    size = _get(X, "params_paper")
    size = _column(X, "N") if size is None else np.atleast_1d(np.asarray(size, dtype=float))
    cols = {"P": size, "bits_available": _column(X, "bits_available"), "group": _column(X, "group", 0.0)}
    cols = _broadcast(cols)
    return {"logP": np.log(cols["P"]), "log_avail": np.log(cols["bits_available"]), "group": cols["group"]}


def _capacity_formula(groups: int) -> LogFormula:
    def formula(theta: Mapping[str, Any], c: Columns) -> np.ndarray:
        if groups == 1:
            log_r = theta["R"]
        else:
            stacked = np.stack([np.asarray(theta[f"R[{g}]"], dtype=float) for g in range(groups)], axis=-1)
            log_r = stacked[..., c["group"].astype(int)]
            if log_r.ndim == 3:  # theta arrays of shape (S, 1) -> (S, 1, n)
                log_r = log_r[:, 0, :]
        return np.minimum(log_r + c["logP"], c["log_avail"] + 0 * log_r)

    return formula


def capacity_law(groups: Sequence[str] = ()) -> Law:
    """Knowledge capacity (Allen-Zhu & Li 2024, "Physics of Language Models 3.3", Fig. 1 / Result 1).

        bits = min(R · P, bits_available)

    P = parameters counted as the paper does (column `params_paper`, else `N`), bits_available = the
    information content of the training facts, R = bits stored per parameter (≈ 2 at 1000 exposures,
    ≈ 1 at 100). R depends on exposures and precision, so with `groups` the law has one R per group
    (`R[0]`, `R[1]`, ...) and reads the row's group index from the column `group`; the group labels are
    kept in `law.spec` so a saved fit can rebuild the same law.
    """
    labels = list(groups)
    grid = tuple(float(v) for v in np.linspace(-4.0, 2.0, 13))
    if len(labels) <= 1:
        params: tuple[Param, ...] = (Param("R", 1e-4, 1e3, grid, log=True, doc="bits per parameter"),)
    else:
        params = tuple(
            Param(f"R[{i}]", 1e-4, 1e3, grid, log=True, doc=f"bits per parameter, {lab}")
            for i, lab in enumerate(labels)
        )
    return Law(
        name="capacity",
        params=params,
        inputs=("bits_available",),
        optional_inputs=("params_paper", "N", "group"),
        target="bits",
        log_formula=_capacity_formula(max(len(labels), 1)),
        prepare_columns=_capacity_prepare,
        citation="Allen-Zhu & Li 2024, Physics of Language Models 3.3",
        equation="bits = min(R·P, bits_available)",
        spec={"name": "capacity", "groups": labels},
    )


# ------------------------------------------------------------------------------------- registry and constants

_BUILDERS: dict[str, Callable[..., Law]] = {
    "chinchilla": chinchilla_law,
    "precision": precision_law,
    "capacity": capacity_law,
}

# Kumar et al. 2024 give no C_x in their Table 2; `kumar2024` uses the limit C_x -> inf, i.e. a kind trained
# above the serving precision contributes the full δ_PTQ factor 1 and one at or below it contributes 0.
PUBLISHED: dict[str, tuple[str, dict[str, float], str]] = {
    "chinchilla-hoffmann2022": (
        "chinchilla",
        {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28},
        "Hoffmann et al. 2022, Eq. 10 / Approach 3",
    ),
    "chinchilla-epoch2024": (
        "chinchilla",
        {"A": 482.01, "B": 2085.43, "E": 1.817, "alpha": 0.3478, "beta": 0.3658},
        "Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt",
    ),
    "kumar2024": (
        "precision",
        {
            "A": 4299.0,
            "B": 18060.0,
            "E": 2.7648,
            "alpha": 0.4965,
            "beta": 0.4965,
            "gamma_w": 2.6745,
            "n_w": 0.3037,
            "gamma_a": 2.2102,
            "n_a": 1.4072,
            "gamma_kv": 0.9578,
            "n_kv": 2.4185,
            "C_T": 0.0598,
            "gamma_D": 0.5068,
            "gamma_N": 0.3439,
            "gamma_post": 0.5907,
            "C_w": math.inf,
            "C_a": math.inf,
            "C_kv": math.inf,
        },
        "Kumar et al. 2024, Scaling Laws for Precision, Table 2 (C_x -> inf: not given in the paper)",
    ),
}


PUBLISHED_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    # The data each published constant set was fitted on, as its paper states it.
    # Kumar et al. 2024: N in {30, 60, 110, 220}M, D in {1.5, ..., 26}B tokens, 3..16 bits (checked to 1.7B).
    "kumar2024": {"N": (3.0e7, 2.2e8), "D": (1.5e9, 2.6e10), "P": (3.0, 16.0)},
    # Hoffmann et al. 2022: >400 models, 70M..16B parameters, 5B..500B tokens (Epoch refit the same runs).
    "chinchilla-hoffmann2022": {"N": (7.0e7, 1.6e10), "D": (5.0e9, 5.0e11)},
    "chinchilla-epoch2024": {"N": (7.0e7, 1.6e10), "D": (5.0e9, 5.0e11)},
}


def list_laws() -> dict[str, str]:
    """Law families and published constant sets, name -> one-line description."""
    out = {name: build().describe() for name, build in _BUILDERS.items()}
    for name, (family, _, source) in PUBLISHED.items():
        out[name] = f"{family} with published constants [{source}]"
    return out


def get_law(name: str, **options: Any) -> Law:
    """The law family `name` (`chinchilla`, `precision`, `capacity`; a published set gives its family)."""
    if name in PUBLISHED:
        name = PUBLISHED[name][0]
    if name not in _BUILDERS:
        raise UserError(f"unknown law {name!r}; choose one of {', '.join(list_laws())}")
    return _BUILDERS[name](**options)


def law_from_spec(spec: Mapping[str, Any]) -> Law:
    """Rebuild a law from `law.spec` (as stored in fit.json)."""
    spec = dict(spec)
    return get_law(spec.pop("name"), **spec)


def published(name: str) -> tuple[Law, dict[str, float]]:
    """A published, citable constant set: `(law, params)`, usable without any data."""
    if name not in PUBLISHED:
        raise UserError(f"unknown published law {name!r}; choose one of {', '.join(PUBLISHED)}")
    family, params, _ = PUBLISHED[name]
    return get_law(family), dict(params)


def derived_quantities(params: Mapping[str, Any], budget: float | None = None) -> dict[str, Any]:
    """Compute-optimal allocation implied by a Chinchilla-form law (Hoffmann et al. 2022, Eq. 4 / App. D.2).

    With C = 6·N·D: N_opt = G·(C/6)^a, D_opt = G^−1·(C/6)^b, a = β/(α+β), b = α/(α+β),
    G = (α·A / (β·B))^(1/(α+β)). Uses A, B, α, β only (the precision law at 16 bits has the same form up to
    its N_eff factor, which is ≈ 1 there). `budget` (FLOPs) adds N_opt, D_opt and tokens per parameter.
    Works elementwise on arrays (bootstrap draws) as well as on floats.
    """
    A, B, alpha, beta = (np.asarray(params[k], dtype=float) for k in ("A", "B", "alpha", "beta"))
    s = alpha + beta
    with np.errstate(all="ignore"):
        out: dict[str, Any] = {"a": beta / s, "b": alpha / s, "G": (alpha * A / (beta * B)) ** (1.0 / s)}
        if budget is not None:
            n_opt = out["G"] * (budget / 6.0) ** out["a"]
            d_opt = (budget / 6.0) ** out["b"] / out["G"]
            out.update({"N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt})
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in out.items()}
