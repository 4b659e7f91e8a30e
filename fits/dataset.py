"""Reading fit inputs: a sweep's results.parquet or an external CSV/parquet, with a column mapping.

`read_table(path, mapping, derive_d)` loads the table, renames columns (`{"N": "Model Size"}` takes the
law's column N from the file's column "Model Size") and, when asked, derives D = C / (6·N) from a
compute column C (Kaplan et al. 2020 / Hoffmann et al. 2022 FLOP estimate).

`fit_data(table, law_name)` picks the rows and target for a law (docs/design.md, results schema):

- `chinchilla`: task "lm" rows with ptq_method "none", trained without quantization (P_w, P_a, P_kv ≥ 16
  where those columns exist): the law has no precision term; target `loss`.
- `precision`: task "lm" rows with no PTQ or one PTQ method (`ptq_method`; default GPTQ when present, as
  Kumar et al. used, else the only one): the law's δ_PTQ has no method term; target `loss_post` (falls
  back to `loss`), P_post NaN meaning no PTQ; P_w / P_a / P_kv missing or NaN mean 16 bits.
- `capacity`: task "bios" rows; target `bits`; one R per (exposures, precision, PTQ) group.

Rows with a failed status, NaN or non-positive values in a needed column are dropped with one
`DataWarning` that counts them; too few rows or distinct N / D values for the law is a `UserError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaling.errors import UserError

READABLE = (".parquet", ".pq", ".csv", ".tsv")
MIN_DISTINCT = 3  # distinct N and D values needed to separate the parameter and data terms


class DataWarning(UserWarning):
    """Rows were dropped from the fit input (the message counts them by reason)."""


@dataclass
class FitData:
    """The rows a law is fitted to: input columns `X`, positive targets `y`, and bookkeeping."""

    X: dict[str, np.ndarray]
    y: np.ndarray
    compute: np.ndarray
    target: str
    n_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    not_used: dict[str, int] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return int(self.y.size)

    def ranges(self) -> dict[str, list[float]]:
        """[min, max] of each input column and of compute (recommend warns when it extrapolates)."""
        out = {k: [float(np.nanmin(v)), float(np.nanmax(v))] for k, v in self.X.items() if k != "group"}
        out["C"] = [float(self.compute.min()), float(self.compute.max())]
        return out


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """`["N=Model Size", "C=Training FLOP"]` -> {"N": "Model Size", "C": "Training FLOP"}."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f'--map expects COLUMN=SOURCE (e.g. N="Model Size"), got {item!r}')
        out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def read_table(path: str | Path, mapping: Mapping[str, str] | None = None, derive_d: bool = False) -> Any:
    """Load a results table (parquet/CSV/TSV; a sweep directory means its results.parquet) as a DataFrame."""
    import pandas as pd

    p = Path(path)
    if p.is_dir() and (p / "results.parquet").is_file():
        p = p / "results.parquet"
    if not p.exists():
        raise UserError(f"input not found: {p}")
    if p.suffix.lower() not in READABLE:
        raise UserError(f"cannot read {p.name}: expected a .parquet, .csv or .tsv file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
    except Exception as exc:  # pyarrow / pandas parser errors have many types
        raise UserError(f"cannot read {p.name} as {p.suffix[1:]}: {str(exc).splitlines()[0][:120]}") from None
    for target, source in (mapping or {}).items():
        if source not in df.columns:
            raise UserError(f"--map {target}={source!r}: no column {source!r} in {p.name}")
        df[target] = df[source]
    if derive_d:
        if "C" not in df.columns or "N" not in df.columns:
            raise UserError("--derive-d needs columns C (compute, FLOPs) and N (use --map C=... --map N=...)")
        df["D"] = pd.to_numeric(df["C"], errors="coerce") / (6.0 * pd.to_numeric(df["N"], errors="coerce"))
    return df


def _numeric(df: Any, name: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def fit_data(df: Any, law_name: str, ptq_method: str | None = None) -> FitData:
    """Select rows and columns of `df` for the law family `law_name`; see the module docstring."""
    n_read = len(df)
    not_used: dict[str, int] = {}
    keep = np.ones(n_read, dtype=bool)

    def exclude(mask: np.ndarray, reason: str, store: dict[str, int]) -> None:
        count = int((keep & mask).sum())
        if count:
            store[reason] = store.get(reason, 0) + count
        keep[mask] = False

    task = "bios" if law_name == "capacity" else "lm"
    if "task" in df.columns:
        exclude(df["task"].astype(str).to_numpy() != task, f"task other than {task!r}", not_used)
    if law_name == "chinchilla" and "ptq_method" in df.columns:
        exclude(df["ptq_method"].astype(str).to_numpy() != "none", "post-training-quantized rows", not_used)
    if law_name == "chinchilla":
        for kind in ("P_w", "P_a", "P_kv"):
            if kind in df.columns:
                exclude(_numeric(df, kind) < 16, "quantized-training rows", not_used)
    if law_name == "precision" and "ptq_method" in df.columns:
        methods = df["ptq_method"].astype(str).to_numpy()
        present = sorted(set(methods) - {"none"})
        chosen = ptq_method or ("gptq" if "gptq" in present else (present[0] if present else None))
        if ptq_method and ptq_method not in present:
            raise UserError(
                f"--ptq-method {ptq_method!r} not in the data (has: {', '.join(present) or 'none'})"
            )
        if chosen is not None:
            exclude(
                (methods != "none") & (methods != chosen),
                f"PTQ rows of methods other than {chosen}",
                not_used,
            )
    dropped: dict[str, int] = {}
    if "status" in df.columns:
        exclude(df["status"].astype(str).to_numpy() != "ok", "failed status", dropped)

    if law_name == "capacity":
        target = "bits"
        size_col = "params_paper" if "params_paper" in df.columns else "N"
        needed = [size_col, "bits_available", target]
        optional: list[str] = []
    else:
        target = "loss_post" if law_name == "precision" and "loss_post" in df.columns else "loss"
        needed = ["N", "D", target]
        optional = ["P_w", "P_a", "P_kv"] if law_name == "precision" else []
    missing = [c for c in needed if c not in df.columns]
    if missing:
        have = ", ".join(map(str, list(df.columns)[:12]))
        raise UserError(
            f"missing column(s) {', '.join(missing)} for the {law_name} law (have: {have}; use --map)"
        )
    values = {c: _numeric(df, c) for c in needed + [c for c in optional if c in df.columns]}
    for c in needed:
        exclude(np.isnan(values[c]) | np.isinf(values[c]), f"NaN/inf {c}", dropped)
        exclude(values[c] <= 0, f"non-positive {c}", dropped)
    for c in optional:
        if c in values:
            exclude(values[c] <= 0, f"non-positive {c}", dropped)
    if law_name == "precision" and "P_post" in df.columns:
        values["P_post"] = _numeric(df, "P_post")
        exclude(values["P_post"] <= 0, "non-positive P_post", dropped)

    if dropped:
        detail = ", ".join(f"{v} {k}" for k, v in dropped.items())
        warnings.warn(
            f"dropped {sum(dropped.values())} of {n_read} rows: {detail}", DataWarning, stacklevel=2
        )

    X = {c: v[keep] for c, v in values.items() if c != target}
    y = values[target][keep]
    groups: list[str] = []
    if law_name == "capacity":
        X, groups = _capacity_groups(df, keep, X, size_col)
    n_free_min = 2 if law_name == "capacity" else 7
    if y.size < n_free_min:
        raise UserError(f"only {y.size} usable rows for the {law_name} law (need at least {n_free_min})")
    if law_name != "capacity":
        for c in ("N", "D"):
            distinct = np.unique(X[c]).size
            if distinct < MIN_DISTINCT:
                raise UserError(
                    f"only {distinct} distinct {c} value(s) among {y.size} rows; the {law_name} law needs "
                    f">= {MIN_DISTINCT} to separate its N and D terms"
                )
        flops = _numeric(df, "flops")[keep] if "flops" in df.columns else None
        compute = flops if flops is not None and np.all(np.isfinite(flops)) else 6.0 * X["N"] * X["D"]
    else:
        size = X["params_paper"] if "params_paper" in X else X["N"]
        compute = size * (_numeric(df, "exposures")[keep] if "exposures" in df.columns else 1.0)
    return FitData(
        X=X,
        y=y,
        compute=np.asarray(compute, dtype=float),
        target=target,
        n_read=n_read,
        dropped=dropped,
        not_used=not_used,
        groups=groups,
    )


def _capacity_groups(
    df: Any, keep: np.ndarray, X: dict[str, np.ndarray], size_col: str
) -> tuple[dict, list[str]]:
    """One group per (exposures, precision, ptq_method, P_post) combination present in the kept rows."""
    keys = [c for c in ("exposures", "precision", "ptq_method", "P_post") if c in df.columns]
    X = dict(X)
    if size_col != "params_paper":
        X["N"] = X.pop(size_col)
    if not keys:
        return X, []
    sub = df.loc[keep, keys].astype(str)
    labels = sub.apply(lambda r: ", ".join(f"{k}={r[k]}" for k in keys), axis=1).to_numpy()
    uniq = sorted(set(labels))
    if len(uniq) <= 1:
        return X, uniq
    index = {lab: i for i, lab in enumerate(uniq)}
    X["group"] = np.array([index[lab] for lab in labels], dtype=float)
    return X, uniq
