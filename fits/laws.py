"""The registry of scaling laws and their published constant sets.

Each builder returns a `fits.law.Law` that declares, besides its formula, everything specific to it: the
rows and target it is fitted to, its fit strategy and default ties, its closed-form compute-optimal
allocation, and the inputs it responds to. Nothing outside this module asks for a law's name.

- `chinchilla`  L = E + A·N^−α + B·D^−β                     (Hoffmann et al. 2022)
- `precision`   L = A·N_eff^−α + B·D^−β + E + δ_PTQ           (Kumar et al. 2024, Scaling Laws for Precision)
- `capacity`    bits = min(R(E)·P, bits_available)            (Allen-Zhu & Li 2024, Physics of LMs 3.3;
                                                              `fits.capacity`)

Published constant sets (`published(name)`): `chinchilla-hoffmann2022`, `chinchilla-epoch2024`,
`kumar2024`, `capacity-allenzhu2024`, each with the input ranges its paper fitted it on. Only numpy is
imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fits.capacity import PUBLISHED_CAPACITY, capacity_law
from fits.law import (
    HIGH_PRECISION_BITS,
    KINDS,
    Columns,
    Law,
    Param,
    broadcast,
    column,
    value_only,
)
from scaling.errors import UserError

__all__ = [
    "HIGH_PRECISION_BITS",
    "KINDS",
    "PUBLISHED",
    "PUBLISHED_RANGES",
    "Law",
    "Param",
    "capacity_law",
    "chinchilla_law",
    "derived_quantities",
    "get_law",
    "law_from_spec",
    "list_laws",
    "precision_law",
    "published",
    "register_law",
]


# ----------------------------------------------------------------------------------------------- chinchilla

_SCALE_GRID = tuple(float(v) for v in range(0, 30, 5))  # a, b in {0, 5, ..., 25}  (Hoffmann / Epoch grid)
_EXP_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)  # alpha, beta in {0, 0.5, ..., 2}
_E_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # e in {-1, -0.5, ..., 1}


def _lse3(t1: np.ndarray, t2: np.ndarray, t3: np.ndarray, partials: bool = True) -> tuple[Any, ...]:
    """log(e^t1 + e^t2 + e^t3), computed stably, and its softmax weights s1, s2, s3 (the partials).

    `partials=False`: the value alone (weights None), as log of the plain sum when that is finite
    everywhere (a third of the passes over the arrays), else the stable form.
    """
    if not partials:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            value = np.log(np.exp(t1) + np.exp(t2) + np.exp(t3))
        if np.isfinite(value).all():
            return value, None, None, None
        t3 = t3 + 0 * t1
    m = np.maximum(np.maximum(t1, t2), t3)
    e1, e2, e3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(t3 - m)
    total = e1 + e2 + e3
    if not partials:
        return m + np.log(total), None, None, None
    return m + np.log(total), e1 / total, e2 / total, e3 / total


def _chinchilla_prepare(X: Mapping[str, Any]) -> Columns:
    cols = broadcast({"N": column(X, "N"), "D": column(X, "D")})
    return {"logN": np.log(cols["N"]), "logD": np.log(cols["D"])}


def _chinchilla_jacobian(
    theta: Mapping[str, Any], c: Columns, partials: bool = True
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """log L = LSE(a − α·log N, b − β·log D, e) and its fit-space partials: the softmax weights s_i of
    the three terms (times −log N, −log D for the exponents); `partials=False`: the value, {}."""
    e = theta["E"] if not partials else theta["E"] + 0 * c["logN"]
    value, s1, s2, s3 = _lse3(
        theta["A"] - theta["alpha"] * c["logN"], theta["B"] - theta["beta"] * c["logD"], e, partials
    )
    if not partials:
        return value, {}
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
        log_formula=value_only(_chinchilla_jacobian),
        log_jacobian=_chinchilla_jacobian,
        prepare_columns=_chinchilla_prepare,
        citation="Hoffmann et al. 2022, Approach 3",
        equation="L = E + A·N^-alpha + B·D^-beta",
        spec={"name": "chinchilla"},
        row_filter=_unquantized_rows,
        allocation=derived_quantities,
    )


def _numeric(df: Any, name: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def _unquantized_rows(df: Any, options: Mapping[str, Any]) -> list[tuple[np.ndarray, str]]:
    """A law without precision terms fits runs trained and evaluated at high precision only: no PTQ rows
    and no quantized training (P_w, P_a, P_kv >= 16 where those columns exist)."""
    out = []
    if "ptq_method" in df.columns:
        out.append((df["ptq_method"].astype(str).to_numpy() != "none", "post-training-quantized rows"))
    for kind in (f"P_{k}" for k in KINDS):
        if kind in df.columns:
            out.append((_numeric(df, kind) < HIGH_PRECISION_BITS, "quantized-training rows"))
    return out


# ------------------------------------------------------------------------------------------------ precision


def _precision_prepare(X: Mapping[str, Any]) -> Columns:
    raw = {"N": column(X, "N"), "D": column(X, "D"), "P_post": column(X, "P_post", np.nan)}
    for k in KINDS:
        raw[f"P_{k}"] = column(X, f"P_{k}", HIGH_PRECISION_BITS)
    raw = broadcast(raw)
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


def _precision_jacobian(
    theta: Mapping[str, Any], c: Columns, partials: bool = True
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """log L of the precision law and its analytic fit-space partials.

    With T = LSE(a − α·log N_eff, b − β·log D, e), s_i its softmax weights, δ = δ_PTQ and
    q = δ / (e^T + δ): ∂log L = (1 − q)·∂T + q·∂log δ, where ∂log N_eff/∂γ_x = −g_x·P_x/γ_x²,
    ∂log N_eff/∂n_x = −g_x with g_x = e^(−u_x)/(1 − e^(−u_x)), u_x = P_x/γ_x − n_x (0 where floored).
    `partials=False`: the value, {} (what prediction needs).
    """
    log_n = c["logN"]
    g = {}
    for k in KINDS:
        u = c[f"P_{k}"] / theta[f"gamma_{k}"] - theta[f"n_{k}"]
        factor = -np.expm1(-u)
        floored = factor < 1e-12
        log_n = log_n + np.log(np.maximum(factor, 1e-12))
        if partials:
            g[k] = np.where(floored, 0.0, np.exp(-u) / np.where(floored, 1.0, factor))
    e = theta["E"] if not partials else theta["E"] + 0 * log_n
    log_train, s1, s2, s3 = _lse3(
        theta["A"] - theta["alpha"] * log_n, theta["B"] - theta["beta"] * c["logD"], e, partials
    )
    log_robust = 0.0
    d_robust = {}
    for k in KINDS:
        cx = np.exp(theta[f"C_{k}"]) * c[f"gap_{k}"]
        term = -np.expm1(-cx)
        on = c[f"gap_on_{k}"] > 0
        with np.errstate(divide="ignore"):  # log 0 = -inf: no δ_PTQ from this kind (exp(-inf) = 0 below)
            log_robust = log_robust + np.log(np.where(on, term, 0.0))
        if partials:
            # ∂ log(1 − e^(−C·gap)) / ∂ log C = C·gap·e^(−C·gap) / (1 − e^(−C·gap)); 0 as C -> inf
            big = np.maximum(term, 1e-300)
            ratio = np.where(np.isfinite(cx), cx * np.exp(-np.minimum(cx, 700.0)) / big, 0.0)
            d_robust[k] = np.where(on, ratio, 0.0)
    log_delta = (
        theta["C_T"]
        - c["P_post"] / theta["gamma_post"]
        + theta["gamma_D"] * c["logD"]
        - theta["gamma_N"] * log_n
    )
    delta = c["ptq"] * np.exp(log_delta + log_robust)
    value = log_train + np.log1p(delta * np.exp(-log_train))
    if not partials:
        return value, {}
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
        log_formula=value_only(_precision_jacobian),
        log_jacobian=_precision_jacobian,
        prepare_columns=_precision_prepare,
        citation="Kumar et al. 2024, Scaling Laws for Precision",
        equation="L = A·N_eff^-alpha + B·D^-beta + E + delta_PTQ",
        spec={"name": "precision"},
        target_fallbacks=("loss",),
        row_filter=_one_ptq_method,
        default_ties={"beta": "alpha"},
        fit_strategy=_staged_fit,
        allocation=_precision_allocation,
    )


def _one_ptq_method(df: Any, options: Mapping[str, Any]) -> list[tuple[np.ndarray, str]]:
    """δ_PTQ has no method term: rows without PTQ plus those of one method (`ptq_method`; default GPTQ
    when present, as Kumar et al. used, else the only one)."""
    if "ptq_method" not in df.columns:
        return []
    methods = df["ptq_method"].astype(str).to_numpy()
    present = sorted(set(methods) - {"none"})
    wanted = options.get("ptq_method")
    if wanted and wanted not in present:
        raise UserError(
            f"ptq_method {wanted!r} not in the data (has: {', '.join(present) or 'none'})", param="ptq_method"
        )
    chosen = wanted or ("gptq" if "gptq" in present else (present[0] if present else None))
    if chosen is None:
        return []
    return [((methods != "none") & (methods != chosen), f"PTQ rows of methods other than {chosen}")]


def _staged_fit(law: Law, X: Mapping[str, Any], y: np.ndarray, **options: Any) -> tuple[Any, Any]:
    """Kumar et al.'s staged fit (`fitter.staged_precision_fit`); what the data cannot identify is held at
    the kumar2024 constants."""
    from fits.fitter import staged_precision_fit

    return staged_precision_fit(law, X, y, defaults=PUBLISHED["kumar2024"][1], **options)


def _precision_allocation(params: Mapping[str, Any], budget: float | None = None) -> dict[str, Any]:
    """Compute-optimal allocation of the precision law at high precision (P_w = P_a = P_kv = 16, no PTQ).

    There N_eff = k·N with k = Π_x (1 − e^(−(16/γ_x − n_x))), so L = (A·k^−α)·N^−α + B·D^−β + E is the
    Chinchilla form with A' = A·k^−α, and Hoffmann et al.'s closed form applies exactly.
    """
    log_k = 0.0
    for k in KINDS:
        u = HIGH_PRECISION_BITS / np.asarray(params[f"gamma_{k}"], dtype=float) - np.asarray(params[f"n_{k}"])
        log_k = log_k + np.log(np.maximum(-np.expm1(-u), 1e-12))
    scaled = dict(params)
    scaled["A"] = np.asarray(params["A"], dtype=float) * np.exp(-np.asarray(params["alpha"]) * log_k)
    return derived_quantities(scaled, budget)


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
    "capacity-allenzhu2024": (
        "capacity",
        dict(PUBLISHED_CAPACITY),
        "Allen-Zhu & Li 2024, Physics of Language Models 3.3: 2 bits/param at 1000 exposures, 1 at 100 "
        "(interpolated in log exposures), int8 lossless, int4 0.7, junk, gated MLP, MoE (fits.capacity)",
    ),
}

PUBLISHED_OPTIONS: dict[str, dict[str, Any]] = {
    "capacity-allenzhu2024": {"exposures": True, "published": True},
}
"""Builder options of a published set whose family takes some (the published capacity law's effects)."""


PUBLISHED_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    # The data each published constant set was fitted on, as its paper states it.
    # Kumar et al. 2024: N in {30, 60, 110, 220}M, D in {1.5, ..., 26}B tokens, 3..16 bits (checked to 1.7B).
    "kumar2024": {"N": (3.0e7, 2.2e8), "D": (1.5e9, 2.6e10), "P": (3.0, 16.0)},
    # Hoffmann et al. 2022: >400 models, 70M..16B parameters, 5B..500B tokens (Epoch refit the same runs).
    "chinchilla-hoffmann2022": {"N": (7.0e7, 1.6e10), "D": (5.0e9, 5.0e11)},
    "chinchilla-epoch2024": {"N": (7.0e7, 1.6e10), "D": (5.0e9, 5.0e11)},
    # Allen-Zhu & Li 2024: GPT-2-style models of ~1M..~1B parameters, 100..1000 exposures (their Figs. 1-2).
    "capacity-allenzhu2024": {"params_paper": (1.0e6, 1.0e9), "exposures": (100.0, 1000.0)},
}


def list_laws() -> dict[str, str]:
    """Law families and published constant sets, name -> one-line description."""
    out = {name: build().describe() for name, build in _BUILDERS.items()}
    for name, (family, _, source) in PUBLISHED.items():
        out[name] = f"{family} with published constants [{source}]"
    return out


def register_law(name: str, builder: Callable[..., Law]) -> None:
    """Add a law family to the registry: `get_law(name)` (and fit.json files naming it) then build it.

    `builder(**spec_options)` must return a `Law` whose `spec` is `{"name": name, **spec_options}`.
    """
    if name in PUBLISHED:
        raise UserError(f"{name!r} names a published constant set")
    _BUILDERS[name] = builder


def get_law(name: str | Law, **options: Any) -> Law:
    """The law family `name` (`chinchilla`, `precision`, `capacity`, or one added by `register_law`); a
    published set's name gives its family with the input ranges its constants were fitted on. A `Law`
    object is returned as it is."""
    if isinstance(name, Law):
        return name
    if not isinstance(name, str):
        raise UserError(f"law must be a law name or a Law, got {type(name).__name__}", param="law")
    if name in PUBLISHED:
        build = _BUILDERS[PUBLISHED[name][0]]
        return build(**{**PUBLISHED_OPTIONS.get(name, {}), **options}).with_ranges(
            PUBLISHED_RANGES.get(name, {})
        )
    if name not in _BUILDERS:
        raise UserError(f"unknown law {name!r}; choose one of {', '.join(list_laws())}", param="law")
    return _BUILDERS[name](**options)


def law_from_spec(spec: Mapping[str, Any]) -> Law:
    """Rebuild a law from `law.spec` (as stored in fit.json)."""
    spec = dict(spec)
    return get_law(spec.pop("name"), **spec)


def published(name: str) -> tuple[Law, dict[str, float]]:
    """A published, citable constant set: `(law, params)`, usable without any data; the law carries the
    input ranges the constants were fitted on (`law.ranges`)."""
    if name not in PUBLISHED:
        raise UserError(f"unknown published law {name!r}; choose one of {', '.join(PUBLISHED)}", param="law")
    return get_law(name), dict(PUBLISHED[name][1])


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
