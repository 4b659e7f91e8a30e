"""More loss-law forms, registered with `fits.laws.register_law` when `fits` is imported.

- `chinchilla-tied`  L = E + A·N^−α + B·D^−α                      (Hoffmann et al. 2022 with α = β)
- `gadre2024`        L = E + (a·M^η + b·M^−η)·C^−η, M = D/N, C = 6·N·D
                                                                  (Gadre et al. 2024, "Language models scale
                                                                  reliably with over-training and on
                                                                  downstream tasks", Eq. 4)
- `muennighoff2023`  L = E + A·N'^−α + B·D'^−β with effective data D' and parameters N' from the unique
                     tokens U                                     (Muennighoff et al. 2023, "Scaling
                                                                  Data-Constrained Language Models", Eq. 5)
- `kaplan2020`       L = E + [(N_c/N)^(α_N/α_D) + D_c/D]^α_D       (Kaplan et al. 2020, Eq. 1.5, with the
                                                                  irreducible term of Henighan et al. 2020)

Each is a `fits.law.Law` and declares its own data, fit and planning behaviour (inputs, default ties,
closed-form allocation where one exists); `muennighoff2023` brings the published constant set
`muennighoff2023-c4` (`fits.laws.PUBLISHED`). `fits.selection` fits every form the columns allow and
picks one by backtest (`scalefit fit --law auto`). Only numpy is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from fits.law import Columns, Law, Param, broadcast, column, value_only
from fits.laws import (
    _E_GRID,
    _SCALE_GRID,
    PUBLISHED,
    PUBLISHED_RANGES,
    _chinchilla_prepare,
    _lse3,
    _unquantized_rows,
    chinchilla_law,
    derived_quantities,
    register_law,
)

__all__ = ["AUTO_CANDIDATES", "chinchilla_tied_law", "gadre_law", "kaplan_law", "muennighoff_law"]

LOG6 = math.log(6.0)


# ------------------------------------------------------------------------------------------ chinchilla-tied


def chinchilla_tied_law() -> Law:
    """Chinchilla's parametric loss with one exponent for parameters and data (α = β):

        L(N, D) = E + A / N^α + B / D^α.

    Hoffmann et al. 2022 (Approach 3) fit α ≈ 0.34, β ≈ 0.28 and Besiroglu et al. 2024 α ≈ 0.35,
    β ≈ 0.37 on the same runs; Muennighoff et al. 2023 and Gadre et al. 2024 tie α = β. One parameter
    fewer makes the fit steadier when the data cannot separate the two exponents. The compute-optimal
    allocation is then N_opt ∝ C^0.5, D_opt ∝ C^0.5 (`derived_quantities`). `--tie none` unties it,
    which is the `chinchilla` law.
    """
    return replace(
        chinchilla_law(),
        name="chinchilla-tied",
        spec={"name": "chinchilla-tied"},
        citation="Hoffmann et al. 2022, Approach 3, with alpha = beta",
        equation="L = E + A·N^-alpha + B·D^-alpha",
        default_ties={"beta": "alpha"},
    )


# ------------------------------------------------------------------------------------------------ gadre2024

_ETA_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # η = α/2: the Chinchilla grid α ∈ {0, 0.5, ..., 2} halved


def _gadre_prepare(X: Mapping[str, Any]) -> Columns:
    cols = broadcast({"N": column(X, "N"), "D": column(X, "D")})
    log_n, log_d = np.log(cols["N"]), np.log(cols["D"])
    return {"logM": log_d - log_n, "logC": LOG6 + log_n + log_d}


def _gadre_jacobian(theta: Mapping[str, Any], c: Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """log L = LSE(log a + η·(log M − log C), log b − η·(log M + log C), log E) and its partials."""
    up = c["logM"] - c["logC"]
    down = -c["logM"] - c["logC"]
    value, s1, s2, s3 = _lse3(
        theta["a"] + theta["eta"] * up, theta["b"] + theta["eta"] * down, theta["E"] + 0 * up
    )
    return value, {"a": s1, "b": s2, "E": s3, "eta": s1 * up + s2 * down}


def gadre_chinchilla_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The Chinchilla constants of a `gadre2024` fit: α = β = 2η, A = a·6^−η, B = b·6^−η."""
    eta = np.asarray(params["eta"], dtype=float)
    scale = np.exp(-eta * LOG6)
    return {
        "A": np.asarray(params["a"], dtype=float) * scale,
        "B": np.asarray(params["b"], dtype=float) * scale,
        "E": params["E"],
        "alpha": 2 * eta,
        "beta": 2 * eta,
    }


def _gadre_allocation(params: Mapping[str, Any], budget: float | None = None) -> dict[str, Any]:
    """Compute-optimal allocation of the `gadre2024` form: Hoffmann et al.'s closed form on the equivalent
    Chinchilla constants (`gadre_chinchilla_params`); the optimal M is (b/a)^(1/(2η))."""
    return derived_quantities(gadre_chinchilla_params(params), budget)


def gadre_law() -> Law:
    """The shared-exponent law of Gadre et al. 2024 ("Language models scale reliably with over-training and
    on downstream tasks", Eq. 4), in compute C and the token multiplier M = D/N (tokens per parameter):

        L(C, M) = E + (a·M^η + b·M^−η) · C^−η,    C = 6·N·D,  M = D/N.

    At any fixed M the reducible loss is a power law in C with the *same* exponent η, which is why
    over-trained runs (large M) extrapolate as reliably as compute-optimal ones. The paper derives it from
    Chinchilla's L = E + A·N^−α + B·D^−β with α = β: substituting N = (C/(6M))^½, D = (C·M/6)^½ gives
    this form with η = α/2, a = A·6^η, b = B·6^η. It is therefore the `chinchilla-tied` family in another
    parametrisation, with the paper's parameters (η, a, b) reported directly; fitted with the same robust
    objective it gives the same predictions. Inputs N and D (M and C are derived); fitted in log form
    log L = LSE(log a + η·log(M/C), log b − η·log(M·C), log E) from a 6·6·5·5 start grid.
    """
    params = (
        Param("a", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the M^eta·C^-eta term"),
        Param("b", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the M^-eta·C^-eta term"),
        Param("E", 1e-3, 20.0, _E_GRID, log=True, doc="irreducible loss"),
        Param("eta", 0.0, 1.5, _ETA_GRID, doc="compute exponent shared by every token multiplier M"),
    )
    return Law(
        name="gadre2024",
        params=params,
        inputs=("N", "D"),
        target="loss",
        log_formula=value_only(_gadre_jacobian),
        log_jacobian=_gadre_jacobian,
        prepare_columns=_gadre_prepare,
        citation="Gadre et al. 2024, Language models scale reliably with over-training, Eq. 4",
        equation="L = E + (a·M^eta + b·M^-eta)·C^-eta, M = D/N, C = 6·N·D",
        spec={"name": "gadre2024"},
        row_filter=_unquantized_rows,
        allocation=_gadre_allocation,
    )


# ------------------------------------------------------------------------------------------ muennighoff2023

_R_GRID = tuple(math.log(v) for v in (1.0, 5.0, 15.0, 50.0))  # R_D*, R_N* starts (fitted as logs)


def _muennighoff_prepare(X: Mapping[str, Any]) -> Columns:
    cols = broadcast({"N": column(X, "N"), "D": column(X, "D"), "U": column(X, "U")})
    unique = np.minimum(cols["U"], cols["D"])  # U_D: the unique tokens actually seen
    return {
        "logN": np.log(cols["N"]),
        "logU": np.log(unique),
        "R_D": cols["D"] / unique - 1.0,  # repetitions beyond the first epoch
    }


def _effective(log_base: np.ndarray, repeats: np.ndarray, log_star: Any) -> np.ndarray:
    """log(U + U·R*·(1 − e^(−R/R*))) = log U + log1p(R*·(1 − e^(−R/R*))) (Muennighoff et al. Eq. 5)."""
    star = np.exp(log_star)
    return log_base + np.log1p(star * -np.expm1(-repeats / star))


def _muennighoff_log(theta: Mapping[str, Any], c: Columns) -> np.ndarray:
    """log L of the data-constrained law from fit-space parameters (see `muennighoff_law`)."""
    alpha, beta = theta["alpha"], theta["beta"]
    with np.errstate(divide="ignore", invalid="ignore"):
        # U_N = min(N, N_opt(U_D)): N_opt of the Chinchilla allocation at the compute where D_opt = U_D,
        # N_opt(U) = (α·A/(β·B))^(1/α) · U^(β/α).
        log_nopt = (np.log(alpha) + theta["A"] - np.log(beta) - theta["B"]) / alpha + beta / alpha * c["logU"]
    log_un = np.minimum(c["logN"], log_nopt)
    r_n = np.expm1(c["logN"] - log_un)  # N / U_N − 1 >= 0
    log_n_eff = _effective(log_un, r_n, theta["R_N_star"])
    log_d_eff = _effective(c["logU"], c["R_D"], theta["R_D_star"])
    value, *_ = _lse3(
        theta["A"] - alpha * log_n_eff, theta["B"] - beta * log_d_eff, theta["E"] + 0 * log_d_eff
    )
    return value


def muennighoff_law() -> Law:
    """The data-constrained scaling law of Muennighoff et al. 2023 ("Scaling Data-Constrained Language
    Models", Eq. 5): Chinchilla's form in effective data D' and effective parameters N',

        L(N, D, U) = E + A / N'^α + B / D'^β,
        D' = U_D + U_D·R_D*·(1 − e^(−R_D/R_D*)),   U_D = min(U, D),  R_D = D/U_D − 1,
        N' = U_N + U_N·R_N*·(1 − e^(−R_N/R_N*)),   U_N = min(N, N_opt(U_D)),  R_N = N/U_N − 1,

    U = unique tokens available (D/U = epochs). Repeated tokens are worth less and less (R_D* is the
    number of repetitions after which they are worth ~1/e of a new token), and so are parameters beyond
    the compute-optimal size for the unique data, N_opt(U_D) = (α·A/(β·B))^(1/α)·U_D^(β/α) (Hoffmann et
    al.'s allocation at the compute where D_opt = U_D). α = β is tied by default as in the paper;
    `--tie none` unties. With U ≥ D and N ≤ N_opt(U) it is exactly Chinchilla's law.

    The paper's fit (their utils/parametric_fit.ipynb, "Fit default"): A, B, E, α = β held at their
    Chinchilla fit of the C4 IsoFLOP points of Hoffmann et al. (a, b, e = log A, log B, log E = 6.2554,
    7.3050, 0.6255; α = β = 0.3527), then R_D*, R_N* fitted to 182 of their runs by the same objective as
    Chinchilla's (Huber δ = 1e-3 on log loss, log-sum-exp form): R_D* = 15.388, R_N* = 5.310 (the
    published set `muennighoff2023-c4`). No closed-form compute-optimal allocation under a data budget.
    """
    params = (
        Param("A", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the parameter term"),
        Param("B", 1e-4, 1e17, _SCALE_GRID, log=True, doc="scale of the data term"),
        Param("E", 1e-3, 20.0, _E_GRID, log=True, doc="irreducible loss"),
        Param("alpha", 0.0, 3.0, (0.0, 0.5, 1.0, 1.5, 2.0), doc="parameter exponent"),
        Param("beta", 0.0, 3.0, (0.0, 0.5, 1.0, 1.5, 2.0), doc="data exponent"),
        Param("R_D_star", 1e-2, 1e4, _R_GRID, log=True, doc="repetitions at which repeated data decays"),
        Param("R_N_star", 1e-2, 1e4, _R_GRID, log=True, doc="excess-parameter ratio at which they decay"),
    )
    return Law(
        name="muennighoff2023",
        params=params,
        inputs=("N", "D", "U"),
        target="loss",
        log_formula=_muennighoff_log,
        prepare_columns=_muennighoff_prepare,
        citation="Muennighoff et al. 2023, Scaling Data-Constrained Language Models, Eq. 5",
        equation="L = E + A·N'^-alpha + B·D'^-beta (effective N', D' from unique tokens U)",
        spec={"name": "muennighoff2023"},
        row_filter=_unquantized_rows,
        min_distinct={"N": 3, "D": 3, "U": 2},
        default_ties={"beta": "alpha"},
    )


# ----------------------------------------------------------------------------------------------- kaplan2020

_KAPLAN_SCALE_GRID = tuple(math.log(v) for v in (1e8, 1e11, 1e14, 1e17))  # N_c, D_c starts (logs)
_KAPLAN_EXP_GRID = (0.05, 0.1, 0.3, 0.6)
_KAPLAN_E_GRID = (-1.0, 0.0, 0.5, 1.0)


def _kaplan_jacobian(theta: Mapping[str, Any], c: Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """log L = LSE(α_D·S, log E), S = LSE(u, v), u = (α_N/α_D)·(log N_c − log N), v = log D_c − log D,
    and its fit-space partials (w_u, w_v: softmax weights of S; q: weight of the reducible term)."""
    a_n, a_d = theta["alpha_N"], theta["alpha_D"]
    gap_n = theta["N_c"] - c["logN"]
    u = a_n / a_d * gap_n
    v = theta["D_c"] - c["logD"]
    m = np.maximum(u, v)
    eu, ev = np.exp(u - m), np.exp(v - m)
    s = m + np.log(eu + ev)
    w_u, w_v = eu / (eu + ev), ev / (eu + ev)
    red = a_d * s
    top = np.maximum(red, theta["E"])
    er, ee = np.exp(red - top), np.exp(theta["E"] - top)
    q = er / (er + ee)
    parts = {
        "N_c": q * a_n * w_u,
        "D_c": q * a_d * w_v,
        "alpha_N": q * w_u * gap_n,
        "alpha_D": q * (s - w_u * u),
        "E": 1.0 - q,
    }
    return top + np.log(er + ee), parts


def _kaplan_allocation(params: Mapping[str, Any], budget: float | None = None) -> dict[str, Any]:
    """Compute-optimal allocation of `kaplan2020` under C = 6·N·D (E does not move it): the outer power is
    monotone, so the optimum minimises (N_c/N)^r + D_c/D with r = α_N/α_D, which is Chinchilla's reducible
    loss with A = N_c^r, α = r, B = D_c, β = 1: a = 1/(1 + r), b = r/(1 + r), G = (r·N_c^r/D_c)^(1/(1 + r))
    (`derived_quantities`)."""
    r = np.asarray(params["alpha_N"], dtype=float) / np.asarray(params["alpha_D"], dtype=float)
    with np.errstate(all="ignore"):
        scale_n = np.asarray(params["N_c"], dtype=float) ** r
    return derived_quantities({"A": scale_n, "B": params["D_c"], "alpha": r, "beta": 1.0 + 0 * r}, budget)


def kaplan_law() -> Law:
    """Kaplan et al. 2020 ("Scaling Laws for Neural Language Models", Eq. 1.5 / 4.1) with an irreducible
    loss E, the L_∞ that Henighan et al. 2020 ("Scaling Laws for Autoregressive Generative Modeling") add
    to these power laws:

        L(N, D) = E + [(N_c/N)^(α_N/α_D) + D_c/D]^α_D.

    Unlike Chinchilla's sum of two power laws, the parameter and data terms combine inside one power, so
    the data-limited and model-limited regimes meet with a different curvature; E → its lower bound gives
    Kaplan's original form. Fitted in log form (log-sum-exp twice, analytic Jacobian) from a 4^5 grid.
    """
    params = (
        Param("N_c", 1e3, 1e30, _KAPLAN_SCALE_GRID, log=True, doc="parameter scale"),
        Param("D_c", 1e3, 1e30, _KAPLAN_SCALE_GRID, log=True, doc="data scale"),
        Param("alpha_N", 0.01, 3.0, _KAPLAN_EXP_GRID, doc="parameter exponent"),
        Param("alpha_D", 0.01, 3.0, _KAPLAN_EXP_GRID, doc="data exponent"),
        Param("E", 1e-3, 20.0, _KAPLAN_E_GRID, log=True, doc="irreducible loss"),
    )
    return Law(
        name="kaplan2020",
        params=params,
        inputs=("N", "D"),
        target="loss",
        log_formula=value_only(_kaplan_jacobian),
        log_jacobian=_kaplan_jacobian,
        prepare_columns=_chinchilla_prepare,
        citation="Kaplan et al. 2020, Eq. 1.5, with the irreducible term of Henighan et al. 2020",
        equation="L = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
        spec={"name": "kaplan2020"},
        row_filter=_unquantized_rows,
        allocation=_kaplan_allocation,
    )


# ------------------------------------------------------------------------------------- registry and constants

FORMS = {
    "chinchilla-tied": chinchilla_tied_law,
    "gadre2024": gadre_law,
    "muennighoff2023": muennighoff_law,
    "kaplan2020": kaplan_law,
}

AUTO_CANDIDATES = ("chinchilla", "chinchilla-tied", "kaplan2020", "muennighoff2023")
"""The loss laws `--law auto` (`fits.selection`) chooses from, in order of preference on ties. `gadre2024`
is left out: it is `chinchilla-tied` in another parametrisation (same predictions); `precision` and
`capacity` answer other questions (quantized runs, knowledge bits)."""

# Muennighoff et al. 2023, utils/parametric_fit.ipynb ("Fit default"): a, b, e, alpha = beta from their
# tied fit of Hoffmann et al.'s C4 IsoFLOP points, R_D*, R_N* fitted to their C4 runs with those held.
MUENNIGHOFF_C4 = {
    "A": math.exp(6.255414),
    "B": math.exp(7.3049974),
    "E": math.exp(0.6254804),
    "alpha": 0.3526596,
    "beta": 0.3526596,
    "R_D_star": 15.387756,
    "R_N_star": 5.309743,
}


def register_forms() -> None:
    """Put the forms of this module and their published constants into the law registry (idempotent)."""
    for name, builder in FORMS.items():
        register_law(name, builder)
    PUBLISHED.setdefault(
        "muennighoff2023-c4",
        (
            "muennighoff2023",
            dict(MUENNIGHOFF_C4),
            "Muennighoff et al. 2023, Scaling Data-Constrained Language Models (C4; a, b, e = 6.2554, "
            "7.3050, 0.6255, alpha = beta = 0.3527, R_D* = 15.388, R_N* = 5.310)",
        ),
    )
    # Their runs: 7M..8.7B parameters, 100M..900B tokens, 100M..178B unique tokens (up to ~1500 epochs).
    PUBLISHED_RANGES.setdefault(
        "muennighoff2023-c4", {"N": (7.0e6, 8.7e9), "D": (1.0e8, 9.0e11), "U": (1.0e8, 1.78e11)}
    )


register_forms()
