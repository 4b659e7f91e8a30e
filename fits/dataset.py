"""Reading fit inputs: a sweep's results.parquet or an external CSV/parquet, with a column mapping.

`read_table(path, mapping, derive_d)` loads the table, renames columns (`{"N": "Model Size"}` takes the
law's column N from the file's column "Model Size") and, when asked, derives D = C / (6·N) from a
compute column C (Kaplan et al. 2020 / Hoffmann et al. 2022 FLOP estimate).

`fit_data(table, law)` picks the rows, inputs and target the law declares (`fits.law.Law`: task, row
filter, target and fallbacks, minimum rows and distinct values, compute proxy, specialisation); rows with
a status other than "ok", NaN or non-positive values in a needed column are dropped with one
`DataWarning` that counts them by reason; too few rows or distinct values for the law is a `UserError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fits.grouping import pooled_diagnostics
from fits.law import Law
from fits.laws import get_law
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
    law: Law | None = None  # the law these rows were selected for (specialised to them, e.g. groups)
    pooled: list[dict[str, Any]] = field(default_factory=list)  # fits.grouping.pooled_diagnostics

    @property
    def n_rows(self) -> int:
        return int(self.y.size)

    def ranges(self) -> dict[str, list[float]]:
        """[min, max] of each input column and of compute (recommend warns when it extrapolates)."""
        out = {k: [float(np.nanmin(v)), float(np.nanmax(v))] for k, v in self.X.items() if k != "group"}
        out["C"] = [float(self.compute.min()), float(self.compute.max())]
        if "N" in self.X and "D" in self.X:
            ratio = self.X["D"] / self.X["N"]
            out["D/N"] = [float(np.nanmin(ratio)), float(np.nanmax(ratio))]
        return out


def parse_pairs(items: list[str] | None, what: str = "--map") -> dict[str, str]:
    """`["N=Model Size", "C=Training FLOP"]` -> {"N": "Model Size", "C": "Training FLOP"} (quotes around a
    value are dropped); `what` names the option in the error."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f'{what} expects NAME=VALUE (e.g. N="Model Size"), got {item!r}')
        out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """Column mapping items of `--map`: `parse_pairs(items, "--map")`."""
    return parse_pairs(items, "--map")


def read_table(
    path: str | Path,
    mapping: Mapping[str, str] | None = None,
    derive_d: bool = False,
    where: str | None = None,
) -> Any:
    """Load a results table (parquet/CSV/TSV; a sweep directory means its results.parquet) as a DataFrame.

    `mapping` {"N": "Model Size"} copies a file column under the name a law reads; `derive_d` adds
    D = C / (6·N) from compute C; `where` keeps the rows a pandas query selects (`"N > 1e8 and D < 1e11"`).
    """
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
            df = _read_text_table(p)
    except UserError:
        raise
    except Exception as exc:  # pyarrow / pandas parser errors have many types
        raise UserError(f"cannot read {p.name} as {p.suffix[1:]}: {str(exc).splitlines()[0][:120]}") from None
    return prepare_table(df, mapping, derive_d, where, source=p.name)


def _read_text_table(p: Path) -> Any:
    """CSV/TSV with a check that no column name repeats (pandas would silently rename `loss` to `loss.1`)."""
    import csv

    import pandas as pd

    sep = "\t" if p.suffix.lower() == ".tsv" else ","
    with p.open(newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep), [])
    seen: set[str] = set()
    for name in (h.strip() for h in header):
        if name in seen:
            raise UserError(f"{p.name}: column {name!r} appears more than once in the header")
        seen.add(name)
    return pd.read_csv(p, sep=sep)


def prepare_table(
    df: Any,
    mapping: Mapping[str, str] | None = None,
    derive_d: bool = False,
    where: str | None = None,
    source: str = "the table",
) -> Any:
    """Apply a column mapping, D = C / (6·N) and a row query to a DataFrame (what `read_table` does after
    reading; the service uses it on uploaded tables)."""
    import pandas as pd

    dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if dupes:
        raise UserError(f"{source}: column(s) {', '.join(dupes)} appear more than once")
    df = df.copy()
    for target, col in (mapping or {}).items():
        if col not in df.columns:
            raise UserError(f"mapping {target}={col!r}: no column {col!r} in {source}", param="mapping")
        df[target] = df[col]
    if derive_d:
        if "C" not in df.columns or "N" not in df.columns:
            raise UserError(
                "derive_d needs columns C (compute, FLOPs) and N (map them: C=..., N=...)", param="derive_d"
            )
        df["D"] = pd.to_numeric(df["C"], errors="coerce") / (6.0 * pd.to_numeric(df["N"], errors="coerce"))
    if where:
        try:
            selected = df.query(where, engine="python")
        except Exception as exc:  # pandas raises many types for a bad expression
            raise UserError(f"where {where!r}: {str(exc).splitlines()[0][:120]}", param="where") from None
        if not isinstance(selected, pd.DataFrame):
            raise UserError(f"where {where!r} is not a row filter", param="where")
        if selected.empty:
            raise UserError(f"where {where!r} selects none of the {len(df)} rows", param="where")
        df = selected
    return df


def _numeric(df: Any, name: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def fit_data(df: Any, law: str | Law, ptq_method: str | None = None) -> FitData:
    """Select the rows and columns of `df` that `law` (a `Law` or a registered name) is fitted to.

    Everything law-specific comes from the law: its results-store `task`, its `row_filter`, target and
    fallbacks, required inputs, alternatives and optional inputs, `min_rows`, `min_distinct`, its
    `compute` proxy and `specialize` (see `fits.law`). Generic rules: rows whose status is not "ok" and
    rows with NaN, infinite or non-positive required values are dropped with one `DataWarning`; optional
    inputs that are NaN mean their default, non-positive ones drop the row.
    """
    law = get_law(law)
    n_read = len(df)
    not_used: dict[str, int] = {}
    dropped: dict[str, int] = {}
    keep = np.ones(n_read, dtype=bool)

    def exclude(mask: np.ndarray, reason: str, store: dict[str, int]) -> None:
        count = int((keep & mask).sum())
        if count:
            store[reason] = store.get(reason, 0) + count
        keep[mask] = False

    if law.task is not None and "task" in df.columns:
        exclude(df["task"].astype(str).to_numpy() != law.task, f"task other than {law.task!r}", not_used)
    for mask, reason in law.row_filter(df, {"ptq_method": ptq_method}) if law.row_filter else ():
        exclude(mask, reason, not_used)
    if "status" in df.columns:
        status = df["status"].astype(str).to_numpy()
        for value in sorted(set(status) - {"ok"}):
            exclude(status == value, f"{value} status" if value == "diverged" else "failed status", dropped)

    target = next((c for c in law.targets if c in df.columns), law.target)
    chosen = [next((c for c in group if c in df.columns), group[0]) for group in law.alternatives]
    needed = [*law.inputs, *law.fit_inputs, *chosen, target]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UserError(_missing_message(missing, df, law))
    optional = [c for c in law.optional_inputs if c in df.columns and c not in needed]
    values = {c: _numeric(df, c) for c in needed + optional}
    for c in needed:
        exclude(np.isnan(values[c]) | np.isinf(values[c]), f"NaN/inf {c}", dropped)
        exclude(values[c] <= 0, f"non-positive {c}", dropped)
    for c in optional:
        exclude(values[c] <= 0, f"non-positive {c}", dropped)

    if dropped:
        detail = ", ".join(f"{v} {k}" for k, v in dropped.items())
        warnings.warn(
            f"dropped {sum(dropped.values())} of {n_read} rows: {detail}", DataWarning, stacklevel=2
        )

    X = {c: v[keep] for c, v in values.items() if c != target}
    y = values[target][keep]
    rows = df.loc[keep]
    law, X = law.for_data(rows, X)
    if y.size < law.min_rows:
        raise UserError(f"only {y.size} usable rows for the {law.name} law (need at least {law.min_rows})")
    for c, need in law.min_distinct.items():
        distinct = np.unique(X[c]).size
        if distinct < need:
            raise UserError(
                f"only {distinct} distinct {c} value(s) among {y.size} rows; the {law.name} law needs "
                f">= {need} to separate its terms"
            )
    return FitData(
        X=X,
        y=y,
        compute=np.asarray(law.compute(X, rows), dtype=float),
        target=target,
        n_read=n_read,
        dropped=dropped,
        not_used=not_used,
        groups=list(law.spec.get("groups", [])),
        law=law,
        pooled=pooled_diagnostics(rows, law),
    )


def _missing_message(missing: list[str], df: Any, law: Law) -> str:
    have = ", ".join(map(str, list(df.columns)[:12]))
    hint = "map columns with --map NAME=COLUMN"
    if "D" in missing and "C" in df.columns and "N" in df.columns:
        hint = "derive D = C / (6·N) from compute with --derive-d"
    return f"missing column(s) {', '.join(missing)} for the {law.name} law (have: {have}; {hint})"
