"""Row groups: one law per group (`fit_groups`), and a warning when differently-run rows are pooled.

A results table often holds runs of several set-ups (Porian et al. 2024's file: 15 configurations of
dataset, hyperparameters, warmup, decay, parameter count and loss split). One law fitted to all of them
describes none. `pooled_diagnostics(rows, law)` flags, among the rows a fit actually used, every
obvious grouping column (`GROUPING_COLUMNS`: data set, optimiser, precision or PTQ method, loss, and
hyperparameter-like columns) that takes more than one value, unless the law models it (a precision law
pools training precisions by design; PTQ rows of one method beside unquantized rows are one set-up). The
diagnostic is stored with the fit and repeated by `predict` / `recommend`.

`fit_groups(table, by, law, **fit_options)` fits one law per combination of the `by` columns and returns
{label: FitResult}; `scalefit fit --group-by COL` writes each to its own file (`group_path`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scaling.errors import UserError

__all__ = [
    "GROUPING_COLUMNS",
    "fit_groups",
    "group_label",
    "group_path",
    "pooled_diagnostics",
    "split_groups",
]

GROUPING_COLUMNS = (
    "dataset",
    "data",
    "corpus",
    "tokenizer",
    "optimizer",
    "optimiser",
    "schedule",
    "lr_schedule",
    "warmup",
    "decay",
    "hparams",
    "config",
    "param_count",
    "precision",
    "ptq_method",
    "quant_method",
    "loss_fn",
    "loss_function",
    "loss_split",
    "split",
    "source_pickle",
)
"""Columns whose values mark different set-ups rather than points on one scaling curve."""


MODELLED_BY = {"precision": "P_w"}
"""A grouping column a law models through another input: the training precision spec through its bits."""


def _modelled(column: str, law: Any) -> bool:
    """Whether the law accounts for `column` varying (a precision law and the training precision)."""
    if law.responds_to("group"):  # the law fits one parameter per group of its own keys (capacity)
        return column in ("precision", "ptq_method")
    return law.responds_to(MODELLED_BY.get(column, column))


def pooled_diagnostics(rows: Any, law: Any) -> list[dict[str, Any]]:
    """A `pooled` diagnostic when grouping columns (`GROUPING_COLUMNS`) that `law` does not model take
    several values among `rows` (a DataFrame of the rows a fit uses); "none" is no PTQ method. One
    diagnostic names every such column, its values and the number of distinct set-ups."""
    varied: dict[str, list[str]] = {}
    for column in GROUPING_COLUMNS:
        if column not in getattr(rows, "columns", ()) or _modelled(column, law):
            continue
        values = sorted({str(v) for v in rows[column].dropna().unique()})
        if column in ("ptq_method", "quant_method"):
            values = [v for v in values if v != "none"]
        if len(values) > 1:
            varied[column] = values
    if not varied:
        return []
    setups = len(rows[list(varied)].astype(str).drop_duplicates())
    detail = "; ".join(f"{c}: {', '.join(v[:4])}{', ...' if len(v) > 4 else ''}" for c, v in varied.items())
    return [
        {
            "kind": "pooled",
            "params": [],
            "message": f"rows of {setups} different set-ups are pooled into one fit ({detail}); fit "
            f"them separately (--group-by {','.join(varied)}) or select some (--where)",
        }
    ]


def group_label(values: Sequence[Any]) -> str:
    """A file-name-safe label of one group's values: ("rw", "base") -> "rw-base"."""
    text = "-".join(str(v) for v in values)
    return re.sub(r"[^A-Za-z0-9._]+", "_", text).strip("_") or "group"


def group_path(out: str | Path, label: str) -> Path:
    """fit.json -> fit.<label>.json (beside it)."""
    p = Path(out)
    return p.with_name(f"{p.stem}.{label}{p.suffix or '.json'}")


def split_groups(table: Any, by: Sequence[str]) -> list[tuple[str, dict[str, Any], Any]]:
    """[(label, {column: value}, rows)] for each combination of the `by` columns present in `table`
    (rows with a missing value in a `by` column form no group)."""
    by = [c for part in by for c in str(part).split(",") if c.strip()]
    by = [c.strip() for c in by]
    missing = [c for c in by if c not in table.columns]
    if not by or missing:
        have = ", ".join(map(str, list(table.columns)[:12]))
        raise UserError(f"group_by: no column(s) {', '.join(missing) or '(none given)'} (have: {have})")
    out, labels = [], set()
    for values, rows in table.groupby(by, sort=True, dropna=True):
        values = values if isinstance(values, tuple) else (values,)
        label = group_label(values)
        if label in labels:
            raise UserError(f"group_by: two groups have the same file label {label!r}")
        labels.add(label)
        out.append((label, dict(zip(by, values, strict=True)), rows))
    return out


def fit_groups(table: Any, by: Sequence[str], law: Any = "chinchilla", **fit_options: Any) -> dict[str, Any]:
    """{label: FitResult}: `fits.fit` of `law` to each group of rows (`split_groups`); a group the law
    cannot be fitted to raises its `UserError` with the group named."""
    from fits.pipeline import fit

    results = {}
    for label, values, rows in split_groups(table, by):
        try:
            result = fit(rows, law, **fit_options)
        except UserError as exc:
            raise UserError(f"group {label}: {exc}") from None
        result.options["group"] = {k: _plain(v) for k, v in values.items()}
        results[label] = result
    return results


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
