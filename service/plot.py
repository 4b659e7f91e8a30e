"""The web page's plot of a fit: the fitted rows, the law's curves through them and their intervals.

Built as a plotly figure (`plotly.graph_objects`) and sent as JSON; the page draws it with the plotly.js
bundled in the plotly package, served by the app itself (nothing is fetched from the internet).

Law-agnostic: the x axis is the input the rows vary most (of the law's inputs; ties go to the last, so
D for a loss law in N and D), the y axis the law's target. Rows are grouped by the values of the other
columns the law reads (N, precision bits, ...); for each of the `MAX_CURVES` largest groups the curve is
the fit's prediction along x at the group's values, from half the group's smallest x to twice its largest,
with the fit's interval as a band.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["MAX_CURVES", "fit_figure"]

MAX_CURVES = 8
CURVE_POINTS = 60
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _label(keys: list[str], values: tuple[float, ...]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in zip(keys, values, strict=True)) or "all rows"


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def fit_figure(
    rows: Mapping[str, Any], title: str, predict: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """A plotly figure (dict with data and layout) of a fit's rows (`adapter.fit_rows`) and curves;
    `predict(points)` returns the adapter's prediction columns for a mapping of point columns."""
    import plotly.graph_objects as go

    cols = {k: np.asarray(v, dtype=float) for k, v in rows["columns"].items()}
    y = cols["y"]
    inputs = [c for c in rows["inputs"] if c in cols]
    others = [c for c in cols if c not in ("y", "compute")]
    candidates = inputs or others
    x_name = max(reversed(candidates), key=lambda c: np.unique(cols[c]).size) if candidates else "compute"
    x = cols[x_name]
    keys = [c for c in others if c != x_name and np.unique(cols[c]).size > 1]
    fixed = {c: float(cols[c][0]) for c in others if c != x_name and c not in keys}
    combos = (
        [tuple(float(v) for v in row) for row in np.stack([cols[k] for k in keys], axis=1)] if keys else []
    )
    groups: dict[tuple[float, ...], np.ndarray] = {}
    if keys:
        for value in dict.fromkeys(combos):
            groups[value] = np.array([c == value for c in combos])
    else:
        groups[()] = np.ones(y.size, dtype=bool)
    order = sorted(groups, key=lambda g: (-int(groups[g].sum()), g))
    shown, rest = order[:MAX_CURVES], order[MAX_CURVES:]

    grid_cols: dict[str, list[float]] = {c: [] for c in [x_name, *keys, *fixed]}
    for g in shown:
        xs = x[groups[g]]
        lo, hi = float(xs.min()) / 2.0, float(xs.max()) * 2.0
        grid = np.geomspace(lo, hi, CURVE_POINTS) if lo > 0 else np.linspace(lo, hi, CURVE_POINTS)
        grid_cols[x_name].extend(grid.tolist())
        for k, v in zip(keys, g, strict=True):
            grid_cols[k].extend([v] * CURVE_POINTS)
        for k, v in fixed.items():
            grid_cols[k].extend([v] * CURVE_POINTS)
    pred = {k: np.asarray(v, dtype=float).tolist() for k, v in predict(grid_cols)["points"].items()
            if k in ("prediction", "lower", "upper")}  # fmt: skip

    unit = rows["unit"]
    fig = go.Figure()
    for i, g in enumerate(shown):
        color = _COLORS[i % len(_COLORS)]
        label = _label(keys, g)
        sl = slice(i * CURVE_POINTS, (i + 1) * CURVE_POINTS)
        gx = grid_cols[x_name][sl]
        lower, upper = pred["lower"][sl], pred["upper"][sl]
        if any(v is not None and v == v for v in lower):
            fig.add_trace(
                go.Scatter(
                    x=gx,
                    y=upper,
                    mode="lines",
                    line={"width": 0},
                    showlegend=False,
                    hoverinfo="skip",
                    legendgroup=label,
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=gx,
                    y=lower,
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=_rgba(color, 0.15),
                    name=f"interval {label}",
                    showlegend=False,
                    legendgroup=label,
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=gx,
                y=pred["prediction"][sl],
                mode="lines",
                line={"color": color},
                name=f"fit {label}",
                legendgroup=label,
            )
        )
        m = groups[g]
        fig.add_trace(
            go.Scatter(
                x=x[m].tolist(),
                y=y[m].tolist(),
                mode="markers",
                marker={"color": color, "size": 7},
                name=f"runs {label}",
                legendgroup=label,
            )
        )
    if rest:
        m = np.any([groups[g] for g in rest], axis=0)
        fig.add_trace(
            go.Scatter(
                x=x[m].tolist(),
                y=y[m].tolist(),
                mode="markers",
                marker={"color": "#999", "size": 5},
                name=f"other runs ({len(rest)} groups)",
            )
        )
    positive = bool(np.all(x > 0))
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": x_name}, "type": "log" if positive else "linear"},
        yaxis={"title": {"text": f"{rows['target']} ({unit})"}, "type": "log" if np.all(y > 0) else "linear"},
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"font": {"size": 10}},
        template="plotly_white",
    )
    return fig.to_plotly_json()
