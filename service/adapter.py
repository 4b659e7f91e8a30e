"""The service's one door into `fits`: every call the service makes into the fitting library is here.

The rest of `service/` handles HTTP, storage and jobs and never imports `fits` itself, so a change of the
library's API is a change of this module only. Everything law-specific is asked of the law (its inputs,
target, unit, `responds_to`); nothing here looks at a law's name.

Imports of `fits` (and through it pandas/scipy) happen inside the functions, so `import service` stays
cheap for `scalefit --help`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from scaling.errors import UserError

__all__ = [
    "backtest",
    "check_fit_options",
    "check_published",
    "fit_from_dict",
    "fit_meta",
    "fit_rows",
    "fit_runs",
    "fit_summary",
    "has_backtest",
    "is_auto",
    "is_published",
    "knowledge",
    "law_info",
    "laws",
    "predict",
    "prepare_runs",
    "profiles",
    "read_runs",
    "recommend",
    "select_rows",
]


# ------------------------------------------------------------------------------------- laws and profiles


def laws() -> list[dict[str, Any]]:
    """Every law family and published constant set: name, kind, description and what `law_info` gives."""
    import fits

    return [law_info(name, description) for name, description in fits.list_laws().items()]


def is_published(name: str) -> bool:
    """Whether `name` is a published constant set (`kumar2024`, ...)."""
    from fits.laws import PUBLISHED

    return name in PUBLISHED


def check_published(name: str) -> None:
    """A `UserError` (the library's message) unless `name` is a published constant set: a request never
    makes the server open a file by a name it was sent."""
    import fits

    if not is_published(name):
        fits.published(name)


def law_info(name: str, description: str | None = None) -> dict[str, Any]:
    """What a client needs to use law `name`: inputs, target, unit, parameters (published constants with
    their values and the ranges they were fitted on)."""
    import fits

    law = fits.get_law(name)
    info: dict[str, Any] = {
        "name": name,
        "kind": "published" if is_published(name) else "family",
        "family": law.name,
        "description": description if description is not None else fits.list_laws().get(name, ""),
        "equation": law.equation,
        "citation": law.citation,
        **_law_io(law),
        "params": None,
        "ranges": {k: [float(v[0]), float(v[1])] for k, v in law.ranges.items()},
    }
    if info["kind"] == "published":
        _, params = fits.published(name)
        info["params"] = {k: float(v) for k, v in params.items()}
    return info


def _law_io(law: Any) -> dict[str, Any]:
    """The inputs and output of a law, as the law declares them."""
    return {
        "inputs": list(law.inputs),
        "alternatives": [list(g) for g in law.alternatives],
        "optional_inputs": list(law.optional_inputs),
        "target": law.target,
        "unit": law.unit,
        "precision_inputs": law.responds_to("P_w"),
        "ptq_input": law.responds_to("P_post"),
        "param_names": list(law.param_names),
    }


def profiles() -> list[dict[str, str]]:
    """The hardware cost profiles `recommend` knows (`scalefit recommend --list-profiles`)."""
    from fits.hardware import PROFILES

    return [{"name": p.name, "summary": p.summary, "assumptions": p.assumptions} for p in PROFILES.values()]


# ------------------------------------------------------------------------------------- runs tables


def read_runs(path: str | Path) -> Any:
    """A runs table file (CSV/TSV/parquet) as a DataFrame, with the CLI's checks (`fits.read_table`)."""
    import fits

    return fits.read_table(path)


def prepare_runs(
    df: Any, mapping: Mapping[str, str] | None, derive_d: bool, where: str | None, source: str
) -> Any:
    """The CLI's `--map`, `--derive-d` and `--where` applied to a stored table."""
    from fits.dataset import prepare_table

    return prepare_table(df, dict(mapping or {}), derive_d, where, source=source)


def is_auto(law: str) -> bool:
    """Whether `law` asks the library to choose the law (`--law auto`)."""
    from fits.selection import is_auto as auto

    return auto(law)


def select_rows(df: Any, law: str, ptq_method: str | None) -> tuple[Any, list[str]]:
    """The rows `law` is fitted to (`fits.fit_data`: bad columns and too few rows are a `UserError`) and
    the notes `scalefit fit` prints about them (dropped and unused rows); with `auto` the whole table,
    which `fits.fit_auto` selects from per candidate law."""
    import fits

    if is_auto(law):  # the law is chosen by backtest among the forms the columns allow (fits.fit_auto)
        from fits.selection import candidate_rows

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fit reports dropped rows for the law it chooses
            rows = candidate_rows(df, ptq_method)  # no form has its columns: the CLI's error, now
        return df, [f"note: {count} rows not used ({reason})" for reason, count in rows.not_used.items()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = fits.fit_data(df, law, ptq_method)
    notes = [f"warning: {w.message}" for w in caught]
    notes += [f"note: {count} rows not used ({reason})" for reason, count in data.not_used.items()]
    return data, notes


# ------------------------------------------------------------------------------------- fitting


FIT_OPTIONS = ("n_boot", "seed", "holdout", "huber_delta", "fixed", "tied", "alpha", "ptq_method")
"""Options of `fits.fit` a fit job passes through (the rest of a job request selects rows)."""


def fit_runs(
    data: Any, law: str, options: Mapping[str, Any], progress: Callable[[str], None] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit `law` to the selected rows `data` (from `select_rows`) with `options` (`FIT_OPTIONS`; holdout
    0 or None skips the holdout check; `record` is added to the fit's recorded options); returns the
    fit.json content (`FitResult.to_dict`) and `fit_meta`."""
    import fits

    opts = {k: options[k] for k in FIT_OPTIONS if k in options and options[k] is not None}
    opts["holdout"] = opts.get("holdout") or None
    if is_auto(law):
        result = fits.fit_auto(data, progress=progress, **opts)
    else:
        result = fits.fit(data, law, progress=progress, **opts)
    result.options.update(dict(options.get("record") or {}))
    return result.to_dict(), fit_meta(result)


def fit_meta(result: Any) -> dict[str, Any]:
    """The registry columns of a fit: law family, data hash, rows used and bootstrap draws."""
    return {
        "law": result.law.name,
        "data_hash": str(result.data.get("hash", "")),
        "n_rows": int(result.nobs),
        "n_boot": int(result.n_boot),
    }


def check_fit_options(data: Any, options: Mapping[str, Any]) -> None:
    """The parameter names of `fixed` and `tied` exist in the law as fitted to `data` (the library's
    `UserError` otherwise), checked before a job is queued."""
    law = getattr(data, "law", None)
    if law is None:  # auto: fixed and tied name one law's parameters, refused as the CLI refuses them
        from fits.selection import check_auto_options

        check_auto_options(options.get("fixed"), options.get("tied"))
        return
    for name in (
        *(options.get("fixed") or {}),
        *(options.get("tied") or {}),
        *(options.get("tied") or {}).values(),
    ):
        law.param(name)


def has_backtest() -> bool:
    """Whether the library offers leave-future-out backtests (`fits.backtest`)."""
    import fits

    return callable(getattr(fits, "backtest", None))


BACKTEST_OPTIONS = (
    "cuts",
    "by",
    "alpha",
    "n_boot",
    "seed",
    "interval",
    "ptq_method",
    "huber_delta",
    "fixed",
    "tied",
)
"""Options of `fits.backtest` a backtest job passes through."""


def backtest(
    data: Any, law: str, options: Mapping[str, Any], progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """A leave-future-out backtest of `law` on the selected rows `data` (`fits.backtest`: fit below each
    cut, predict above it) as a JSON-ready dict (per-cut table, pooled scores and per-point errors)."""
    import fits

    if not has_backtest():
        raise UserError("this scalefit has no backtests (fits.backtest is missing)", param="kind")
    opts = {k: options[k] for k in BACKTEST_OPTIONS if options.get(k) is not None}
    report = fits.backtest(data, law, progress=progress, **opts)
    return {**report.to_dict(), "text": report.as_text()}


def fit_from_dict(content: Mapping[str, Any]) -> Any:
    """A stored fit.json content as a `FitResult` (a `UserError` when it is not one)."""
    import fits

    if not isinstance(content, Mapping) or "law" not in content or "params" not in content:
        raise UserError("not a scalefit fit.json (no law/params)")
    return fits.FitResult.from_dict(content)


def fit_summary(result: Any) -> dict[str, Any]:
    """What the API and the web page show of a fit: estimates with SE and interval, metrics, diagnostics,
    the summary as text and HTML, the fitted ranges and the law's inputs."""
    import math

    ci = result.conf_int()
    se = result.bse

    def num(x: Any) -> float | None:
        x = float(x)
        return x if math.isfinite(x) else None

    params = [
        {
            "name": name,
            "estimate": num(value),
            "std_err": num(se[name]),
            "lower": num(ci.loc[name, "lower"]),
            "upper": num(ci.loc[name, "upper"]),
            "free": name in result.free,
        }
        for name, value in result.estimates.items()
    ]
    summary = result.summary()
    metrics = result.metrics
    return {
        "law": result.law.name,
        "equation": result.law.equation,
        "citation": result.law.citation,
        **_law_io(result.law),
        "alpha": result.alpha,
        "n_boot": result.n_boot,
        "nobs": result.nobs,
        "params": params,
        "in_sample": metrics.get("in_sample") or None,
        "holdout": metrics.get("holdout") or None,
        "diagnostics": list(result.diagnostics),
        "ranges": {k: [float(v[0]), float(v[1])] for k, v in result.data.get("ranges", {}).items()},
        "summary_text": summary.as_text(),
        "summary_html": summary._repr_html_(),
        "has_rows": bool(result.rows),
    }


def fit_rows(result: Any) -> dict[str, Any] | None:
    """The fitted rows of a fit (inputs, `compute`, target `y`) as float arrays, with the labels a plot
    needs; None when the fit holds no rows (`remove_data`, format-1 fit.json)."""
    if not result.rows:
        return None
    law = result.law
    return {
        "columns": {k: v for k, v in result.rows.items()},
        "inputs": [*law.inputs, *(c for g in law.alternatives for c in g)],
        "target": law.target,
        "unit": law.unit,
        "compute_label": law.compute_label,
    }


# ------------------------------------------------------------------------------------- answers


def predict(
    source: Any, points: Mapping[str, Any], alpha: float | None, interval: str | None = None
) -> dict[str, Any]:
    """`fits.predict` at many points for a `FitResult` or a published set name: a dict with the table as
    columns (inputs, prediction, lower, upper), numeric columns as float64 arrays (NaN where a value is
    missing or not finite: null in the response), the others as lists. `interval`: calibrated, bootstrap
    or none (default: the best the fit has)."""
    import numpy as np

    import fits

    pred = fits.predict(source, points, alpha, interval)
    columns: dict[str, Any] = {}
    for name, col in pred.columns.items():
        v = np.asarray(col)
        if v.dtype.kind in "fiub":
            v = v.astype(float)
            columns[str(name)] = np.where(np.isfinite(v), v, np.nan)
        else:
            columns[str(name)] = [None if x is None or x != x else str(x) for x in v.tolist()]
    return {
        "law": pred.law,
        "target": pred.target,
        "unit": pred.unit,
        "source": pred.source,
        "alpha": pred.alpha,
        "n_boot": pred.n_boot,
        "interval": pred.interval,
        "n_points": len(pred.values),
        "points": columns,
        "warnings": list(pred.warnings),
    }


def recommend(flops: float, source: Any, law: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """`fits.recommend` for a budget, with a fit (`source`, a `FitResult`) or a published set `law`."""
    import fits

    rec = fits.recommend(flops, law=law, fit=source, **options)
    return rec.to_dict()


def knowledge(bits: float, exposures: float, source: Any, law: str | None, options: Mapping[str, Any]) -> Any:
    """`recommend --knowledge-bits`: the parameters a capacity law needs (`fits.knowledge.plan_knowledge`);
    `options` may hold corpus_tokens, ptq (serving bits or format) and the law's effect columns."""
    from fits.candidates import parse_bits
    from fits.knowledge import plan_knowledge

    extra = {k: v for k, v in options.items() if v is not None}
    if "ptq" in extra:
        extra["P_post"] = parse_bits(extra.pop("ptq"))
    return plan_knowledge(bits, exposures, law=law, fit=source, **extra).to_dict()
