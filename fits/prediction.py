"""`predict`: a law's prediction at many points, with intervals and the warnings that go with them.

`predict(source, points, alpha)` takes a fit (`FitResult` or fit.json path) or a published constant set,
and points as a DataFrame or a mapping of columns: the law's inputs (N, D, ...), optionally `precision`
(a training precision spec such as `w4a8kv8`, giving P_w, P_a, P_kv) and `ptq` / `P_post` (serving bits or
a format such as `int4`; absent or NaN = no PTQ). It returns a `Prediction`: a table of the inputs with
`prediction`, `lower`, `upper` and warnings: the fit's diagnostics, inputs the law ignores, and
extrapolation beyond the N, D and compute ranges the parameters were fitted on.

Intervals (`Prediction.interval` says which): `calibrated` — the bootstrap percentile interval widened by
an extrapolation error term measured by a nested backtest on the fitted rows (`fits.calibration`,
docs/intervals.md), what a fit with a bootstrap gives; `bootstrap` — parameter uncertainty only (a fit
without calibration, or `interval="bootstrap"`); `none` — published constants, or a fit without draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.calibration import calibration_notes, interval_kind, prediction_interval
from fits.candidates import parse_bits
from fits.law import KINDS, Law
from fits.sources import LawSource, law_source
from scaling.errors import UserError

__all__ = ["Prediction", "extrapolation_notes", "predict", "prediction_inputs"]


@dataclass
class Prediction:
    """Predicted target at each point: `table` (inputs, prediction, lower, upper), `warnings`, metadata.

    `columns` holds the same as arrays (numeric inputs and the three results float64); `table` is the
    DataFrame of them, built on first use.
    """

    columns: dict[str, Any]
    law: str
    target: str
    unit: str
    source: str
    alpha: float
    n_boot: int = 0
    warnings: list[str] = field(default_factory=list)
    interval: str = "none"  # calibrated | bootstrap | none (fits.calibration.KINDS)
    index: Any = None

    @property
    def table(self) -> Any:
        cached = self.__dict__.get("_table")
        if cached is None:
            import pandas as pd

            cached = pd.DataFrame(self.columns, index=self.index)
            self.__dict__["_table"] = cached
        return cached

    @property
    def values(self) -> np.ndarray:
        return np.asarray(self.columns["prediction"])

    def to_dict(self) -> dict[str, Any]:
        rows = self.table.replace({np.nan: None}).to_dict(orient="records")
        return {
            "law": self.law,
            "target": self.target,
            "unit": self.unit,
            "source": self.source,
            "alpha": self.alpha,
            "n_boot": self.n_boot,
            "interval": self.interval,
            "points": rows,
            "warnings": self.warnings,
        }


def _column(points: Mapping[str, Any], name: str) -> Any:
    try:
        return points[name]
    except (KeyError, IndexError, TypeError):
        return None


def _as_column(name: str, value: Any) -> np.ndarray:
    v = np.asarray(value)
    if v.ndim > 1:
        raise UserError(f"column {name!r} must be one value per point", param=name)
    return np.atleast_1d(v)


def prediction_inputs(law: Law, points: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The points as columns (arrays of one length) with the columns `law` reads (precision specs and
    PTQ formats turned into bits), and notes on inputs the law does not use. A DataFrame or a mapping of
    equal-length columns (scalars repeat)."""
    from scaling.formats import PrecisionSpec

    raw = {str(k): _as_column(str(k), points[k]) for k in points.keys()}
    if not raw:
        raise UserError("no points to predict", param="points")
    lengths = {v.size for v in raw.values() if v.size != 1}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {v.size}" for k, v in raw.items())
        raise UserError(f"columns of different lengths ({sizes})", param="points")
    n = lengths.pop() if lengths else 1
    if n == 0:
        raise UserError("no points to predict", param="points")
    cols = {k: np.repeat(v, n) if v.size != n else v for k, v in raw.items()}
    notes: list[str] = []
    if "precision" in cols:
        names = [str(s) for s in cols["precision"].tolist()]
        specs = {s: PrecisionSpec.parse(s) for s in set(names)}
        for k in KINDS:
            bits = {s: float(spec.bits(k)) for s, spec in specs.items()}
            cols[f"P_{k}"] = np.array([bits[s] for s in names])
        if any(s.quantized for s in specs.values()) and not law.responds_to("P_w"):
            notes.append(f"the {law.name} law has no precision terms: the training precision is ignored")
    if "ptq" in cols:
        cols["P_post"] = np.array([math.nan if _missing(v) else parse_bits(v) for v in cols["ptq"].tolist()])
    if "P_post" in cols:
        cols["P_post"] = _numeric(cols["P_post"])
        if np.isfinite(cols["P_post"]).any() and not law.responds_to("P_post"):
            notes.append(f"the {law.name} law has no PTQ term: the serving precision is ignored")
    for c in (*law.inputs, *(g[0] for g in law.alternatives)):
        if c in cols:
            v = _numeric(cols[c])
            if not np.all(np.isfinite(v) & (v > 0)):
                raise UserError(f"{c} must be positive and finite at every point", param=c)
            cols[c] = v
    return cols, notes


def _numeric(v: np.ndarray) -> np.ndarray:
    """float64 values; NaN where an entry is not a number (pandas' to_numeric(errors="coerce"))."""
    if v.dtype.kind in "fiub":
        return v.astype(float)
    import pandas as pd

    return pd.to_numeric(pd.Series(v, dtype=object), errors="coerce").to_numpy(dtype=float)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def extrapolation_notes(df: Any, ranges: Mapping[str, Any]) -> list[str]:
    """One warning per input that leaves the fitted range at some point: every ranged column present in
    the points (N, D, params_paper, exposures, ...) and compute C = 6·N·D when N and D are given."""
    names = set(df.keys())
    values = {c: np.asarray(df[c], dtype=float) for c in ranges if c in names and c not in ("C", "P")}
    if "N" in names and "D" in names:
        values["C"] = 6.0 * np.asarray(df["N"], dtype=float) * np.asarray(df["D"], dtype=float)
    out = []
    for key, v in values.items():
        if key not in ranges:
            continue
        lo, hi = (float(x) for x in ranges[key])
        if not (lo > 0 and hi > 0):
            continue
        above, below = v > hi * (1 + 1e-9), v < lo * (1 - 1e-9)
        n = len(v)
        if above.any():
            out.append(
                f"extrapolating: {int(above.sum())} of {n} point(s) have {key} above the fitted range "
                f"(up to {np.nanmax(v) / hi:.3g}x the largest fitted {key}, {hi:.3g})"
            )
        if below.any():
            out.append(
                f"extrapolating: {int(below.sum())} of {n} point(s) have {key} below the fitted range "
                f"(down to {lo / np.nanmin(v):.3g}x below the smallest fitted {key}, {lo:.3g})"
            )
    return out


def predict(
    source: Any, points: Mapping[str, Any], alpha: float | None = None, interval: str | None = None
) -> Prediction:
    """The law's prediction at `points` with intervals and warnings; see the module docstring.

    `source`: a `FitResult`, a fit.json path, a published set name (`kumar2024`) or a `LawSource`.
    `alpha`: interval level 1 − alpha (default: the fit's, 0.05). `interval`: "calibrated" (default when
    the fit has a calibration), "bootstrap" or "none".
    """
    src: LawSource = law_source(source)
    level = src.alpha if alpha is None else float(alpha)
    if not 0 < level < 1:
        raise UserError(f"alpha must be in (0, 1), got {level:g}", param="alpha")
    df, notes = prediction_inputs(src.law, points)
    n_boot, kind = 0, "none"
    if src.result is not None:
        point, lower, upper, kind = prediction_interval(src.result, df, level, interval)
        n_boot = src.result.n_boot
    else:
        interval_kind(None, interval)  # checks the name
        point = src.law.predict(src.params, df)
        lower, upper = np.full(point.shape, np.nan), np.full(point.shape, np.nan)
    columns = {**df, "prediction": point, "lower": lower, "upper": upper}
    warnings = [f"fit: {d['message']}" for d in src.diagnostics]
    warnings += notes
    warnings += extrapolation_notes(df, src.data_range or {})
    if kind == "calibrated":
        warnings += calibration_notes(src.result, df, level)
    return Prediction(
        columns=columns,
        law=src.law.name,
        target=src.law.target,
        unit=src.law.unit,
        source=src.label,
        alpha=level,
        n_boot=n_boot,
        warnings=warnings,
        interval=kind,
        index=getattr(points, "index", None),
    )
