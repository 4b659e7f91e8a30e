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
    """Predicted target at each point: `table` (inputs, prediction, lower, upper), `warnings`, metadata."""

    table: Any
    law: str
    target: str
    unit: str
    source: str
    alpha: float
    n_boot: int = 0
    warnings: list[str] = field(default_factory=list)
    interval: str = "none"  # calibrated | bootstrap | none (fits.calibration.KINDS)

    @property
    def values(self) -> np.ndarray:
        return self.table["prediction"].to_numpy()

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


def prediction_inputs(law: Law, points: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """The points as a DataFrame with the columns `law` reads (precision specs and PTQ formats turned into
    bits), and notes on inputs the law does not use."""
    import pandas as pd

    from scaling.formats import PrecisionSpec

    df = pd.DataFrame(dict(points)) if not isinstance(points, pd.DataFrame) else points.copy()
    if df.empty:
        raise UserError("no points to predict", param="points")
    notes: list[str] = []
    spec_col = _column(df, "precision")
    if spec_col is not None:
        specs = {s: PrecisionSpec.parse(str(s)) for s in pd.unique(df["precision"].astype(str))}
        for k in KINDS:
            df[f"P_{k}"] = [specs[str(s)].bits(k) for s in df["precision"].astype(str)]
        quantized = any(s.quantized for s in specs.values())
        if quantized and not law.responds_to("P_w"):
            notes.append(f"the {law.name} law has no precision terms: the training precision is ignored")
    ptq = _column(df, "ptq")
    if ptq is not None:
        df["P_post"] = [math.nan if _missing(v) else parse_bits(v) for v in ptq]
    if "P_post" in df.columns:
        df["P_post"] = pd.to_numeric(df["P_post"], errors="coerce")
        if df["P_post"].notna().any() and not law.responds_to("P_post"):
            notes.append(f"the {law.name} law has no PTQ term: the serving precision is ignored")
    for c in (*law.inputs, *(g[0] for g in law.alternatives)):
        if c in df.columns:
            v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
            if not np.all(np.isfinite(v) & (v > 0)):
                raise UserError(f"{c} must be positive and finite at every point", param=c)
            df[c] = v
    return df, notes


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def extrapolation_notes(df: Any, ranges: Mapping[str, Any]) -> list[str]:
    """One warning per input that leaves the fitted range at some point: every ranged column present in
    the points (N, D, params_paper, exposures, ...) and compute C = 6·N·D when N and D are given."""
    values = {c: df[c].to_numpy(dtype=float) for c in ranges if c in df.columns and c not in ("C", "P")}
    if "N" in df.columns and "D" in df.columns:
        values["C"] = 6.0 * df["N"].to_numpy(dtype=float) * df["D"].to_numpy(dtype=float)
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
    point = src.law.predict(src.params, df)
    table = df.copy()
    table["prediction"] = point
    n_boot, kind = 0, "none"
    if src.result is not None:
        _, lower, upper, kind = prediction_interval(src.result, df, level, interval)
        table["lower"], table["upper"] = lower, upper
        n_boot = src.result.n_boot
    else:
        interval_kind(None, interval)  # checks the name
        table["lower"] = np.nan
        table["upper"] = np.nan
    warnings = [f"fit: {d['message']}" for d in src.diagnostics]
    warnings += notes
    warnings += extrapolation_notes(df, src.data_range or {})
    if kind == "calibrated":
        warnings += calibration_notes(src.result, df, level)
    return Prediction(
        table=table,
        law=src.law.name,
        target=src.law.target,
        unit=src.law.unit,
        source=src.label,
        alpha=level,
        n_boot=n_boot,
        warnings=warnings,
        interval=kind,
    )
