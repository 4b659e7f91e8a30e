"""`--law auto`: fit every candidate law form the columns allow and choose the one that backtests best.

`select_law(data)` takes the candidate forms (`fits.forms.AUTO_CANDIDATES`: chinchilla, chinchilla-tied,
kaplan2020, muennighoff2023 when unique tokens U are present), keeps those whose inputs the table has and
that select the same rows and target, and runs a leave-future-out backtest of each on the rows it is given
(`fits.backtest` in point-fit mode, `n_boot=0`) at the cuts nearest the extrapolation a fit is asked
for: fit below the 70th and the 80th compute percentile, predict every run above (`SELECTION_CUTS`).
Each form is backtested three times (`TRIMS`): fitted to all the runs below the cut, and to those runs
without the smallest-compute 25% or 50% of them (`fits.backtest.drop_smallest`). Small runs often sit
off the power law the large ones follow (warm-up and hyperparameters tuned at one size, embedding
parameters, digitisation: Kaplan et al. 2020 §3.1 and App. D.5, Porian et al. 2024 §3–4); whether
leaving them out helps the extrapolation is decided by the same backtest, per table, never assumed. The
score is the mean over the cuts of the median relative error |ŷ − y|/y of each cut (each cut counts
once, however many runs it predicts); the lowest score wins and ties go to the earlier candidate (forms
in `AUTO_CANDIDATES` order, all runs before a trim). Only the
rows handed to the fit are used, so a holdout or an outer backtest never informs the choice. The same rule
for every data set: there are no per-dataset settings.

How the rule was chosen (docs/benchmarks.md, "Extrapolation (bench/extrapolation.py)"): trims 0, 0.25
and 0.5 are round fractions fixed before the benchmark was run with them, the same for every table; with
them the median held-out error fell on Datablations (all rows) and Porian et al. and stayed the same on
Chinchilla (the trim lost the backtest there). on the public data sets of the benchmark,
the pooled median over cuts 0.5–0.8 and one-standard-error rules were compared with this one; cuts 0.5
and 0.6 extrapolate much further than a fit is used for and their many points dominated a pooled score.
Averaging the predictions of several forms was compared too and was not better than choosing one on every
family, so the selection chooses one form. The benchmark is therefore not an independent test of the
rule itself (four data families); the forms and the rule carry no constants fitted to any of them.

This is model selection by out-of-sample prediction of the *future* (larger runs), the test the law is
used for (Hoffmann et al. 2022 §3.4, Besiroglu et al. 2024 §4, Porian et al. 2024), rather than by
in-sample fit (AIC/BIC favour flexible forms that extrapolate worse). `fit_auto(data, ...)` then fits the
chosen law with `fits.fit` on the chosen rows (`Selection.fit_rows`) and records the choice, the trim
and the comparison table in the result (options `law_selection`, metrics `selection`), which fit.json
keeps.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.backtest import backtest, drop_smallest
from fits.dataset import FitData, fit_data
from fits.forms import AUTO_CANDIDATES
from fits.law import Law
from fits.laws import get_law
from scaling.errors import UserError

__all__ = [
    "AUTO",
    "CRITERION",
    "SELECTION_CUTS",
    "TRIMS",
    "Selection",
    "auto_backtest",
    "candidate_rows",
    "check_auto_options",
    "fit_auto",
    "is_auto",
    "record_selection",
    "select_law",
]

AUTO = "auto"
SELECTION_CUTS = (0.7, 0.8)
"""Compute quantiles below which each candidate is fitted in the selection backtest."""
TRIMS = (0.0, 0.25, 0.5)
"""Fractions of the smallest-compute runs each candidate form is also fitted without (0: all runs)."""
CRITERION = "mean over cuts of the median relative error"


def is_auto(law: Any) -> bool:
    """Whether `law` asks for automatic selection (`"auto"`)."""
    return isinstance(law, str) and law == AUTO


@dataclass
class Selection:
    """The outcome of `select_law`: the chosen `law`, its `data` (every row it can use) and `trim` (the
    fraction of the smallest-compute rows to leave out: `fit_rows`), and one row per candidate in `rows`
    (law, trim, equation, free parameters, rows, `score` (the criterion), pooled backtest median / max /
    mean signed relative error, seconds, chosen, note)."""

    law: Law
    data: FitData
    rows: list[dict[str, Any]]
    cuts: tuple[float, ...]
    by: str
    trim: float = 0.0
    criterion: str = CRITERION
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def fit_rows(self) -> FitData:
        """The rows the chosen law is fitted to: `data` without its smallest-compute `trim` fraction."""
        return drop_smallest(self.data, self.trim)

    @property
    def table(self) -> Any:
        """The comparison as a pandas DataFrame (one row per candidate)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict[str, Any]:
        from fits.results import _enc

        return _enc(
            {
                "chosen": self.law.name,
                "trim": self.trim,
                "rows_fitted": self.fit_rows.n_read,
                "criterion": f"lowest {self.criterion} (leave-future-out backtest by {self.by})",
                "cuts": list(self.cuts),
                "seconds": self.seconds,
                "candidates": self.rows,
                "notes": self.notes,
            }
        )

    def as_text(self) -> str:
        """The comparison table printed by `scalefit fit --law auto`."""
        head = (
            f"law selection: leave-future-out backtest by {self.by} on the fitted rows "
            f"(cuts {', '.join(f'{c:g}' for c in self.cuts)}; point fits); lowest score wins"
        )
        cols = f"  {'law':<17}{'trim':>5}{'params':>7}{'score':>8}{'med err':>9}{'max err':>9}"
        cols += f"{'signed':>9}{'time':>7}"
        lines = [head, cols + "  note"]
        for r in self.rows:
            mark = "*" if r["chosen"] else " "
            lines.append(
                f"{mark} {r['law']:<17}{r['trim']:>5.2f}{_int(r['n_params']):>7}{_pct(r['score']):>8}"
                f"{_pct(r['median_rel_error']):>9}"
                f"{_pct(r['max_rel_error']):>9}{_pct(r['mean_signed_rel_error'], True):>9}"
                f"{r['seconds']:>6.1f}s  {r['note']}"
            )
        lines.append(
            "score = mean over cuts of the median |ŷ − y|/y; med/max err and signed pooled over the cuts; "
            "trim = share of the smallest-compute runs left out of each fit"
        )
        lines.append(f"chosen: {self.law.name}   {self.law.equation}   [{self.law.citation}]")
        if self.trim:
            lines.append(
                f"fitted to the {self.fit_rows.n_read} of {self.data.n_read} runs at or above the "
                f"{self.trim:g}-quantile of compute (the smallest {self.trim:.0%} left out)"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()


def _pct(x: Any, signed: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{100 * x:+.2f}%" if signed else f"{100 * x:.2f}%"


def _int(x: Any) -> str:
    return "-" if x is None else str(x)


def _n_free(law: Law) -> int:
    return len(law.param_names) - len(law.default_ties)


def _same_rows(a: FitData, b: FitData) -> bool:
    return a.y.shape == b.y.shape and np.array_equal(a.y, b.y) and np.array_equal(a.compute, b.compute)


def _candidate_data(table: Any, names: Sequence[str | Law], ptq_method: str | None) -> list[tuple]:
    """(law, FitData or None, note) per candidate: None when the law cannot be fitted to this table
    (missing columns, too few rows or distinct values) or would fit other rows than the first candidate
    that can (laws are compared on the same rows only)."""
    out, ref = [], None
    for name in names:
        law = get_law(name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the caller reports dropped rows once, for the chosen law
                data = fit_data(table, law, ptq_method)
        except UserError as exc:
            out.append((law, None, str(exc)))
            continue
        if ref is not None and not _same_rows(ref, data):
            out.append((law, None, f"selects other rows ({data.n_rows} vs {ref.n_rows})"))
            continue
        ref = ref or data
        out.append((law, data, ""))
    return out


def select_law(
    data: Any,
    *,
    candidates: Iterable[str | Law] = AUTO_CANDIDATES,
    cuts: Iterable[float] = SELECTION_CUTS,
    by: str = "compute",
    ptq_method: str | None = None,
    trims: Iterable[float] = TRIMS,
    progress: Callable[[str], None] | None = None,
    **fit_options: Any,
) -> Selection:
    """Choose a law for `data` (a DataFrame of runs or a path) by leave-future-out backtest (module
    docstring). `candidates`: law names or `Law` objects (default `fits.forms.AUTO_CANDIDATES`);
    `trims`: fractions of the smallest-compute runs each form is also backtested without (default
    `TRIMS`; `(0,)` compares forms on all runs only). `fit_options` (huber_delta, fixed, tied, n_refine)
    go to every candidate's fits."""
    prepared = _candidate_data(_table(data), list(candidates), ptq_method)
    return _choose(prepared, cuts, by, trims, progress, fit_options)


def _table(data: Any) -> Any:
    if isinstance(data, str) or hasattr(data, "__fspath__"):
        from fits.dataset import read_table

        data = read_table(data)
    if not hasattr(data, "columns"):
        raise UserError(
            f"law auto needs the table of runs (a DataFrame or a path), got {type(data).__name__}",
            param="data",
        )
    return data


def _choose(
    prepared: list[tuple],
    cuts: Iterable[float],
    by: str,
    trims: Iterable[float],
    progress: Callable[[str], None] | None,
    fit_options: dict[str, Any],
) -> Selection:
    """The selection backtest over `prepared` candidates ((law, FitData or None, note), `_candidate_data`)."""
    say = progress or (lambda _msg: None)
    cuts = tuple(float(c) for c in cuts)
    trims = tuple(dict.fromkeys(float(f) for f in trims)) or (0.0,)
    if any(not 0.0 <= f < 1.0 for f in trims):
        raise UserError(f"trims must be fractions in [0, 1), got {list(trims)}", param="trims")
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    fitted: list[tuple[Law, FitData, float, float]] = []
    notes: list[str] = []
    for (law, rows_data, why), trim in ((p, f) for p in prepared for f in trims):
        if rows_data is None and trim:
            continue  # one row says why the form cannot be fitted
        row = {"law": law.name, "trim": trim, "equation": law.equation, "n_params": _n_free(law),
               "rows": None, "score": math.nan, "median_rel_error": math.nan, "max_rel_error": math.nan,
               "mean_signed_rel_error": math.nan, "seconds": 0.0, "chosen": False, "note": why}  # fmt: skip
        if rows_data is not None:
            say(f"backtesting {law.name} (trim {trim:g}) on {rows_data.n_rows} rows")
            t1 = time.perf_counter()
            try:
                bt = backtest(
                    rows_data, rows_data.law or law, cuts=cuts, by=by, n_boot=0, trim=trim, **fit_options
                )
            except UserError as exc:
                row["note"] = f"backtest failed: {exc}"
            else:
                row.update({k: bt.overall[k] for k in ("median_rel_error", "max_rel_error")})
                row["mean_signed_rel_error"] = bt.overall["mean_signed_rel_error"]
                row["score"] = float(np.mean(bt.table["median_rel_error"]))
                row["rows"] = rows_data.n_rows
                row["note"] = "; ".join(bt.skipped)
                if math.isfinite(row["score"]):
                    fitted.append((law, rows_data, row["score"], trim))
            row["seconds"] = time.perf_counter() - t1
        rows.append(row)
    if not fitted:  # too few rows for any selection backtest: the first form that fits all of them
        from fits.calibration import enough_rows

        whole = [(law, d) for law, d, _ in prepared if d is not None and not enough_rows(law, d.X, d.n_rows)]
        _usable(prepared)
        if not whole:
            reasons = "; ".join(
                f"{law.name}: {why or enough_rows(law, d.X, d.n_rows)}" for law, d, why in prepared
            )
            raise UserError(f"law auto: no candidate law fits these rows ({reasons})", param="law")
        law, chosen_data = whole[0]
        notes.append(
            f"{chosen_data.n_rows} rows are too few for the selection backtest (forms fitted below the "
            f"{', '.join(f'{c:g}' for c in cuts)} compute quantiles): {law.name}, the first candidate, "
            "is fitted without a comparison, its extrapolation untested"
        )
        for row in rows:
            row["chosen"] = row["law"] == law.name and row["trim"] == 0.0
        return Selection(law=chosen_data.law or law, data=chosen_data, rows=rows, cuts=cuts, by=by,
                         seconds=time.perf_counter() - t0, notes=notes)  # fmt: skip
    best = min(range(len(fitted)), key=lambda i: fitted[i][2])  # first of equal scores wins
    law, chosen_data, _, trim = fitted[best]
    for row in rows:
        row["chosen"] = row["law"] == law.name and row["trim"] == trim
    return Selection(
        law=chosen_data.law or law,
        data=chosen_data,
        rows=rows,
        cuts=cuts,
        by=by,
        trim=trim,
        seconds=time.perf_counter() - t0,
        notes=notes,
    )


def auto_backtest(
    data: Any, ptq_method: str | None, candidates: Iterable[str | Law] = AUTO_CANDIDATES, **fit_options: Any
) -> tuple[FitData, Callable[..., tuple[Any, FitData]]]:
    """What `fits.backtest(data, "auto")` needs: the rows every candidate form uses (`data` a table or a
    path), and `fit_below(mask, trim, **fit_kwargs)`, which chooses the law on those rows in `mask` exactly
    as `fit_auto` does on a table (same candidates, cuts and trims; nothing outside `mask` is seen), fits
    it and returns (FitResult, the chosen law's rows: every row of `data`, so the caller predicts the
    rest). `trim` must be 0: auto chooses its own."""
    from fits.backtest import _subset
    from fits.pipeline import fit

    check_auto_options(fit_options.get("fixed"), fit_options.get("tied"))
    prepared = _candidate_data(_table(data), list(candidates), ptq_method)
    reference = _usable(prepared)
    select_options = {k: fit_options[k] for k in ("huber_delta", "n_refine") if k in fit_options}

    def fit_below(mask: np.ndarray, trim: float = 0.0, **fit_kwargs: Any) -> tuple[Any, FitData]:
        if trim:
            raise UserError("law auto chooses its own trim of the smallest runs; pass trim=0", param="trim")
        inner = [(law, None if d is None else _subset(d, mask), why) for law, d, why in prepared]
        sel = _choose(inner, SELECTION_CUTS, "compute", TRIMS, None, select_options)
        result = fit(sel.fit_rows, sel.law, **fit_options, **fit_kwargs)
        record_selection(result, sel)
        full = next(d for law, d, _ in prepared if d is not None and law.name == sel.law.name)
        return result, full

    return reference, fit_below


def candidate_rows(
    data: Any, ptq_method: str | None = None, candidates: Iterable[str | Law] = AUTO_CANDIDATES
) -> FitData:
    """The rows law auto compares its candidate forms on (those of the first form the columns allow),
    or the `UserError` `fit_auto` would raise when no form has its columns: checked before work is queued."""
    return _usable(_candidate_data(_table(data), list(candidates), ptq_method))


def _usable(prepared: list[tuple]) -> FitData:
    usable = [d for _, d, _ in prepared if d is not None]
    if not usable:  # every form lacks columns (or rows): the first one's reason, as fits.fit would say it
        raise UserError(prepared[0][2])
    return usable[0]


def fit_auto(
    data: Any,
    *,
    candidates: Iterable[str | Law] = AUTO_CANDIDATES,
    ptq_method: str | None = None,
    progress: Callable[[str], None] | None = None,
    **fit_kwargs: Any,
) -> Any:
    """`select_law(data)`, then `fits.fit` of the chosen law to the chosen rows (`Selection.fit_rows`)
    with `fit_kwargs` (n_boot, seed, holdout, alpha, huber_delta, fixed, tied, ...). The result's options
    gain `law_selection` ("auto", the chosen law and trim) and its metrics `selection`
    (`Selection.to_dict()`, the comparison table)."""
    from fits.pipeline import check_fit_options, fit

    check_auto_options(fit_kwargs.get("fixed"), fit_kwargs.get("tied"))
    check_fit_options(**fit_kwargs)
    select_options = {k: fit_kwargs[k] for k in ("huber_delta", "n_refine") if k in fit_kwargs}
    sel = select_law(data, candidates=candidates, ptq_method=ptq_method, progress=progress, **select_options)
    result = fit(sel.fit_rows, sel.law, ptq_method=ptq_method, progress=progress, **fit_kwargs)
    record_selection(result, sel)
    return result


def check_auto_options(fixed: Any, tied: Any) -> None:
    """`fixed` and `tied` name parameters of one law, so they cannot go with `law="auto"`."""
    for key, value in (("fixed", fixed), ("tied", tied)):
        if value is not None and (key == "tied" or value):
            raise UserError(f"{key} names parameters of one law: choose the law instead of auto", param=key)


def record_selection(result: Any, selection: Selection) -> None:
    """Store the choice and the comparison table in a FitResult (kept in fit.json)."""
    chosen = {"requested": AUTO, "chosen": selection.law.name, "trim": selection.trim}
    result.options["law_selection"] = chosen
    result.metrics["selection"] = selection.to_dict()
    if not any(r["chosen"] and math.isfinite(r["score"]) for r in selection.rows):  # a fallback, untested
        message = f"law auto: {selection.notes[-1]}" if selection.notes else "law auto: no backtest"
        result.diagnostics.append({"kind": "untested_form", "params": [], "message": message})
