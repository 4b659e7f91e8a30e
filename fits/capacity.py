"""The knowledge-capacity law of Allen-Zhu & Li 2024 ("Physics of Language Models: Part 3.3, Knowledge
Capacity Scaling Laws"), fitted or with the paper's published figures.

    bits = min(R(E) · F · P, bits_available)

P: parameters counted as the paper counts them (transformer plus the embedding rows of tokens that occur:
column `params_paper`, else `N`); bits_available: the information content of the training facts (absent =
no cap: the bits the model *can* store); E: exposures (how often each fact is seen in training).

R(E), bits per parameter at E exposures. With an `exposures` input the law is one form across exposure
levels: log R(E) = log R₁₀₀₀ + κ · log(E / 1000), R₁₀₀₀ the capacity at 1000 exposures and κ ≥ 0 how
fast it is reached. The published set `capacity-allenzhu2024` takes the paper's headline figures, ≈ 2 bits
per parameter at 1000 exposures and ≈ 1 at 100 (Results 1–2), so κ = log10(2) = 0.301: this is an
*interpolation* of two figures, a straight line in (log E, log R). Beyond 1000 exposures it stays at 2
(the paper finds no gain past 1000: "2 bits per parameter" is a ceiling, `saturate=True`); below 100 it is
extrapolated along the same line (R(10) = 0.5), which the paper does not measure.

F: the paper's multiplicative effects on capacity (published set only; a fit has one R per group instead),
each interpolated linearly in log E between the exposures at which the paper states it and held constant
beyond them:
- post-training quantization of the weights (`P_post`): int8 lossless (factor 1 at ≥ 8 bits, Result 5);
  int4 ≈ 0.7 bits/param at 1000 exposures, factor 0.7 / 2 = 0.35; linear in bits between 4 and 8; no
  figure below 4 bits (refused);
- junk data (`junk` = junk tokens per useful token): at 7:1, capacity ÷ 20 / 3 / 1.5 / 1.3 at 100 / 300 /
  600 / 1000 exposures (Result 10); only 0 and 7 are published. A domain token on the useful data
  recovers most of the loss (Result 12) but the paper's figure is not carried here, so `domain_token` with
  junk is refused: fit your own runs (`bench/capacity.py` measures both);
- gated MLPs (`mlp` = swiglu / gated): capacity ÷ 1.3 at 100 exposures, no loss at 1000 (Result 6);
- mixture of experts (`moe` = 1), per total parameter: ÷ 1.5 at 100 exposures, ÷ 1.3 at 1000 (Result 9).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fits.law import Columns, Law, LogFormula, Param, broadcast, column
from scaling.errors import UserError

__all__ = ["GROUP_KEYS", "PUBLISHED_CAPACITY", "capacity_law"]

E_REF = 1000.0
KAPPA_PAPER = math.log10(2.0)
PUBLISHED_CAPACITY = {"R": 2.0, "kappa": KAPPA_PAPER}
"""Allen-Zhu & Li 2024: 2 bits/param at 1000 exposures, 1 at 100 (the interpolation in the docstring)."""

# (exposures, capacity factor) pairs the paper states; interpolated in log E, constant beyond the ends.
JUNK7 = ((100.0, 1 / 20), (300.0, 1 / 3), (600.0, 1 / 1.5), (1000.0, 1 / 1.3))
GATED_MLP = ((100.0, 1 / 1.3), (1000.0, 1.0))
MOE = ((100.0, 1 / 1.5), (1000.0, 1 / 1.3))
INT4_FACTOR = 0.7 / 2.0
GATED = ("swiglu", "gated", "geglu", "gatedmlp")
EFFECTS = ("P_post", "junk", "domain_token", "mlp", "moe")

GROUP_KEYS = ("precision", "ptq_method", "P_post", "junk", "domain_token", "mlp", "moe", "shape")
"""Columns whose combinations get their own R (bits per parameter depends on each); `exposures` is an
input of the law when it varies, else a group key too."""


def _factor_in_exposures(points: tuple[tuple[float, float], ...], log_e: np.ndarray) -> np.ndarray:
    xs = np.log([p[0] for p in points])
    ys = np.log([p[1] for p in points])
    return np.interp(log_e, xs, ys)  # log factor; np.interp holds the end values beyond the range


def _published_log_factor(X: Mapping[str, Any], log_e: np.ndarray) -> np.ndarray:
    """log F of the published effects for each row (module docstring); refuses what the paper lacks."""
    n = log_e.shape
    out = np.zeros(n)
    post = _optional(X, "P_post", n)
    if post is not None:
        bad = post < 4
        if np.any(bad & ~np.isnan(post)):
            raise UserError(
                "capacity-allenzhu2024 has no figure below 4-bit PTQ (int8 lossless, int4 0.7 bits/param)"
            )
        f = np.where(np.isnan(post) | (post >= 8), 1.0, INT4_FACTOR + (1 - INT4_FACTOR) * (post - 4) / 4)
        out = out + np.log(f)
    junk = _optional(X, "junk", n)
    if junk is not None:
        junk = np.nan_to_num(junk)
        if not np.all(np.isin(junk, (0.0, 7.0))):
            raise UserError(
                "capacity-allenzhu2024 states junk effects at a 7:1 junk ratio only (junk 0 or 7)"
            )
        tagged = _optional(X, "domain_token", n)
        if tagged is not None and np.any((np.nan_to_num(tagged) > 0) & (junk > 0)):
            raise UserError(
                "capacity-allenzhu2024 carries no figure for a domain token with junk (the paper reports it "
                "recovers most of the loss); fit your own runs for it"
            )
        out = out + np.where(junk > 0, _factor_in_exposures(JUNK7, log_e), 0.0)
    mlp = _get(X, "mlp")
    if mlp is not None:
        gated = np.broadcast_to(np.isin(np.char.lower(np.asarray(mlp, dtype=str)), GATED), n)
        out = out + np.where(gated, _factor_in_exposures(GATED_MLP, log_e), 0.0)
    moe = _optional(X, "moe", n)
    if moe is not None:
        out = out + np.where(np.nan_to_num(moe) > 0, _factor_in_exposures(MOE, log_e), 0.0)
    return out


def _get(X: Mapping[str, Any], name: str) -> Any:
    try:
        return X[name]
    except (KeyError, IndexError, TypeError):
        return None


def _optional(X: Mapping[str, Any], name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    value = _get(X, name)
    if value is None:
        return None
    return np.broadcast_to(np.asarray(value, dtype=float), shape).astype(float)


def _prepare(exposures: bool, published: bool):
    def prepare(X: Mapping[str, Any]) -> Columns:
        size = _get(X, "params_paper")
        raw = {
            "P": column(X, "N") if size is None else np.atleast_1d(np.asarray(size, dtype=float)),
            "bits_available": column(X, "bits_available", math.inf),
            "group": column(X, "group", 0.0),
        }
        if exposures:
            raw["E"] = column(X, "exposures")
        cols = broadcast(raw)
        if exposures and not np.all(np.isfinite(cols["E"]) & (cols["E"] > 0)):
            raise UserError("exposures must be positive and finite", param="exposures")
        with np.errstate(divide="ignore"):
            out = {
                "logP": np.log(cols["P"]),
                "log_avail": np.log(cols["bits_available"]),
                "group": cols["group"],
            }
        if exposures:
            out["logE"] = np.log(cols["E"] / E_REF)
            out["log_factor"] = (
                _published_log_factor(X, np.log(cols["E"])) if published else np.zeros_like(out["logP"])
            )
        return out

    return prepare


def _formula(groups: int, exposures: bool, saturate: bool) -> LogFormula:
    def formula(theta: Mapping[str, Any], c: Columns) -> np.ndarray:
        if groups == 1:
            log_r = theta["R"] + 0 * c["logP"]
        else:
            stacked = np.stack([np.asarray(theta[f"R[{g}]"], dtype=float) for g in range(groups)], axis=-1)
            log_r = stacked[..., c["group"].astype(int)]
            if log_r.ndim == 3:  # theta arrays of shape (S, 1) -> (S, 1, n)
                log_r = log_r[:, 0, :]
        if exposures:
            x = np.minimum(c["logE"], 0.0) if saturate else c["logE"]
            log_r = log_r + theta["kappa"] * x + c["log_factor"]
        return np.minimum(log_r + c["logP"], c["log_avail"] + 0 * log_r)

    return formula


def capacity_law(groups: Sequence[str] = (), exposures: bool = False, published: bool = False) -> Law:
    """The capacity law (module docstring): one R per group (`R[0]`, `R[1]`, ...; group index in column
    `group`, labels kept in `law.spec`), and with `exposures` the exposures input and κ; `published`
    applies the paper's effects (quantization, junk, gated MLP, MoE) and its ceiling at 1000 exposures."""
    labels = list(groups)
    grid = tuple(float(v) for v in np.linspace(-4.0, 2.0, 13))
    what = "bits per parameter" + (" at 1000 exposures" if exposures else "")
    if len(labels) <= 1:
        params: list[Param] = [Param("R", 1e-4, 1e3, grid, log=True, doc=what)]
    else:
        params = [
            Param(f"R[{i}]", 1e-4, 1e3, grid, log=True, doc=f"{what}, {lab}") for i, lab in enumerate(labels)
        ]
    if exposures:
        params.append(Param("kappa", 0.0, 3.0, (0.0, 0.3, 0.6, 1.0), doc="growth of R with log exposures"))
    eq = "bits = min(R·(E/1000)^kappa·P, bits_available)" if exposures else "bits = min(R·P, bits_available)"
    return Law(
        name="capacity",
        params=tuple(params),
        inputs=("exposures",) if exposures else (),
        fit_inputs=("bits_available",),
        optional_inputs=("bits_available", *EFFECTS) if published else ("bits_available", "group"),
        target="bits",
        log_formula=_formula(max(len(labels), 1), exposures, saturate=published),
        prepare_columns=_prepare(exposures, published),
        citation="Allen-Zhu & Li 2024, Physics of Language Models 3.3",
        equation=eq,
        spec={"name": "capacity", "groups": labels, "exposures": exposures, "published": published},
        task="bios",
        alternatives=(("params_paper", "N"),),
        min_rows=2,
        min_distinct={"exposures": 2} if exposures else {},
        compute=_compute,
        compute_label="N · exposures",
        specialize=_specialize,
        unit="bits",
        fit_strategy=_fit_groups if len(labels) > 1 else None,
    )


def _fit_groups(law: Law, X: Mapping[str, Any], y: np.ndarray, **options: Any) -> tuple[Any, Any]:
    """Multi-start fit with one R per group: the Cartesian grid over G groups' R would be 13^G starts, so
    each start takes every group's R from its rows instead (median of log(bits / (P · (E/1000)^κ))) for
    each κ of the grid, shifted by a common factor e^{-1}, 1 or e. The rows at the cap bits_available pull
    R down only, which the polish (all rows, the law's min) corrects."""
    from fits.fitter import fit_law

    fixed, tied = dict(options.get("fixed") or {}), dict(options.get("tied") or {})
    free = [n for n in law.param_names if n not in fixed and n not in tied]
    cols = law.prepare(X)
    log_y = np.log(np.asarray(y, dtype=float))
    group = cols["group"].astype(int)
    kappas = law.param("kappa").grid if "kappa" in law.param_names and "kappa" not in fixed else (
        float(fixed.get("kappa", 0.0)),)  # fmt: skip
    starts = []
    for kappa in kappas:
        log_r = log_y - cols["logP"] - (kappa * cols["logE"] if "logE" in cols else 0.0)
        overall = float(np.median(log_r))
        per = {f"R[{g}]": float(np.median(log_r[group == g])) if np.any(group == g) else overall
               for g in range(len(law.spec["groups"]))}  # fmt: skip
        for shift in (-1.0, 0.0, 1.0):
            value = {**{k: v + shift for k, v in per.items()}, "kappa": float(kappa)}
            starts.append([value[n] for n in free])
    return fit_law(law, X, y, starts=np.array(starts), **options)


def _numeric(rows: Any, name: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)


def _compute(X: Mapping[str, np.ndarray], rows: Any) -> np.ndarray:
    """Training effort of a capacity run: parameters × exposures (each fact seen `exposures` times)."""
    size = X["params_paper"] if "params_paper" in X else X["N"]
    if "exposures" in X:
        return size * X["exposures"]
    if rows is not None and "exposures" in rows.columns:
        return size * _numeric(rows, "exposures")
    return np.asarray(size, dtype=float)


def _specialize(law: Law, rows: Any, X: dict[str, np.ndarray]) -> tuple[Law, dict[str, np.ndarray]]:
    """For data: exposures becomes an input when it takes ≥ 2 values (one form across exposure levels),
    else a group key; one R per combination of the other `GROUP_KEYS` present in the rows."""
    X = {k: v for k, v in X.items() if k in ("params_paper", "N", "bits_available")}
    varied = "exposures" in rows.columns and np.unique(_numeric(rows, "exposures")).size >= 2
    keys = [c for c in GROUP_KEYS if c in rows.columns]
    if "exposures" in rows.columns and not varied:
        keys = ["exposures", *keys]
    if varied:
        X["exposures"] = _numeric(rows, "exposures")
    labels = (
        rows[keys].astype(str).apply(lambda r: ", ".join(f"{k}={r[k]}" for k in keys), axis=1).to_numpy()
        if keys
        else np.array([""] * len(rows))
    )
    uniq = sorted(set(labels)) if keys else []
    fitted = capacity_law(uniq if len(uniq) > 1 else uniq[:1], exposures=varied)
    if len(uniq) > 1:
        index = {lab: i for i, lab in enumerate(uniq)}
        X["group"] = np.array([index[lab] for lab in labels], dtype=float)
    return fitted, X
