"""`scalefit predict`: the predicted loss of one configuration with its interval, from a fit or a law."""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer

FLAGS = {
    "alpha": "--alpha",
    "law": "--law",
    "N": "--n",
    "D": "--tokens",
    "points": "--n/--tokens",
    "params_paper": "--params",
    "exposures": "--exposures",
    "where": "--where",
    "interval": "--interval",
}
"""Library parameter -> the flag that sets it (errors name the flag)."""

INTERVALS = {
    "calibrated": "calibrated: bootstrap + extrapolation error from a backtest on the fitted runs",
    "bootstrap": "bootstrap: parameter uncertainty only",
}
"""How each interval kind (`fits.calibration.KINDS`) is described next to the numbers."""


def interval_text(lo: float, hi: float, fmt: str = "{:.4f}", sep: str = " .. ") -> str:
    """An interval's two ends; an end the calibration could not bound is said to be unbounded, never printed
    as a number (too few backtest residuals: the multiplier is infinite and ŷ·exp(±inf) is 0 .. inf)."""
    if not math.isfinite(hi):
        return "unbounded" if lo <= 0 or not math.isfinite(lo) else f"{fmt.format(lo)}{sep}unbounded above"
    if not math.isfinite(lo):
        return f"unbounded below{sep}{fmt.format(hi)}"
    return f"{fmt.format(lo)}{sep}{fmt.format(hi)}"


Exposures = Annotated[
    float | None, typer.Option("--exposures", help="Capacity laws: times each fact is seen in training.")
]
Junk = Annotated[
    float | None, typer.Option("--junk", help="Capacity laws: junk tokens per useful token (e.g. 7).")
]
DomainToken = Annotated[
    bool, typer.Option("--domain-token", help="Capacity laws: the useful data carries a domain token.")
]
Mlp = Annotated[str | None, typer.Option("--mlp", help="Capacity laws: MLP type (gelu, swiglu = gated).")]
Moe = Annotated[
    bool, typer.Option("--moe", help="Capacity laws: a mixture of experts (per total parameter).")
]


def effects(junk: float | None, domain_token: bool, mlp: str | None, moe: bool) -> dict[str, list]:
    """The capacity-law columns of the options given (absent options are left out)."""
    out: dict[str, list] = {}
    if junk is not None:
        out["junk"] = [junk]
    if domain_token:
        out["domain_token"] = [1.0]
    if mlp is not None:
        out["mlp"] = [mlp]
    if moe:
        out["moe"] = [1.0]
    return out


def predict(
    n: Annotated[float | None, typer.Option("--n", help="Non-embedding parameters N (loss laws).")] = None,
    tokens: Annotated[
        float | None, typer.Option("--tokens", "-D", help="Training tokens D (loss laws).")
    ] = None,
    params: Annotated[
        float | None,
        typer.Option(
            "--params", help="Capacity laws: parameters counted as Allen-Zhu & Li do (with embeddings)."
        ),
    ] = None,
    exposures: Exposures = None,
    junk: Junk = None,
    domain_token: DomainToken = False,
    mlp: Mlp = None,
    moe: Moe = False,
    precision: Annotated[
        str, typer.Option("--precision", help="Training precision spec, e.g. w4a8kv8.")
    ] = "bf16",
    ptq: Annotated[
        str | None,
        typer.Option("--ptq", help="Post-training weight precision: bits 2-16 (4) or a format (int4)."),
    ] = None,
    fit_path: Annotated[str | None, typer.Option("--fit", help="A fit.json from `scalefit fit`.")] = None,
    law: Annotated[
        str | None, typer.Option("--law", help="A published law: kumar2024, chinchilla-epoch2024, ...")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option("--alpha", help="Interval level 1 - alpha (default: the fit's, 0.05).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON.")] = False,
    points: Annotated[
        str | None,
        typer.Option(
            "--points",
            help="A CSV/parquet of points (columns N, D[, precision, ptq, ...]): predict every row.",
        ),
    ] = None,
    where: Annotated[
        str | None, typer.Option("--where", help="With --points: keep the rows a pandas query selects.")
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option("--interval", help="calibrated (a fit's default), bootstrap (parameters only) or none."),
    ] = None,
) -> None:
    """Predict the loss of N parameters trained on D tokens at a precision, optionally after PTQ; or, with a
    capacity law, the knowledge bits a model of --params parameters can store at --exposures."""
    import fits
    from fits.sources import law_source
    from scaling.errors import UserError

    if (fit_path is None) == (law is None):
        raise UserError("give exactly one of --fit fit.json or --law NAME")
    source = fit_path if fit_path is not None else law
    if points is not None:
        if any(v is not None for v in (n, tokens, params, exposures)):
            raise UserError("give either --points FILE or --n/--tokens (--params/--exposures), not both")
        _predict_points(source, fits.read_table(points, where=where), alpha, interval, as_json)
        return
    if where is not None:
        raise UserError("--where selects rows of a --points file; give --points FILE")
    given = {"N": n, "D": tokens, "params_paper": params, "exposures": exposures}
    point: dict[str, list] = {k: [v] for k, v in given.items() if v is not None}
    point.update({"precision": [precision], "ptq": [ptq], **effects(junk, domain_token, mlp, moe)})
    src = law_source(source)
    pred = fits.predict(src, point, alpha, interval)
    row = pred.table.iloc[0]
    trained_at = src.law.responds_to("P_w")  # a law without precision terms (capacity) is not told one
    number = "{:.4f}" if pred.unit == "nats/token" else "{:.4g}"
    if as_json:
        out = {
            "prediction": float(row["prediction"]),
            "target": pred.target,
            "unit": pred.unit,
            "law": pred.law,
            "source": pred.source,
            **{k: v for k, v in given.items() if v is not None},
            **({"precision": precision} if trained_at else {}),
            "P_post": None if row.isna().get("P_post", True) else float(row["P_post"]),
            "warnings": pred.warnings,
        }
        if pred.interval != "none":
            out.update({"lower": float(row["lower"]), "upper": float(row["upper"]), "alpha": pred.alpha})
            out.update({"n_boot": pred.n_boot, "interval": pred.interval})
        typer.echo(json.dumps(out))
        return
    ptq_text = "" if row.isna().get("P_post", True) else f", PTQ {row['P_post']:g} bits"
    inputs = ", ".join(f"{k}={v:.4g}" for k, v in given.items() if v is not None)
    what = f"{inputs}, precision {precision}{ptq_text}" if trained_at else f"{inputs}{ptq_text}"
    value = number.format(row["prediction"])
    line = f"predicted {pred.target}: {value} {pred.unit}  ({what}; {pred.source})"
    if pred.interval != "none":
        span = interval_text(float(row["lower"]), float(row["upper"]), number)
        line += f"\n{100 * (1 - pred.alpha):g}% interval: {span}  ({INTERVALS[pred.interval]}, "
        line += f"{pred.n_boot} bootstrap draws)"
    elif fit_path is None:
        line += "\nno interval: published constants carry no uncertainty here (fit your data for one)"
    else:
        line += "\nno interval: the fit has no bootstrap draws"
    typer.echo(line)
    for w in pred.warnings:
        typer.echo(f"warning: {w}", err=True)


def _predict_points(source: str, table, alpha: float | None, interval: str | None, as_json: bool) -> None:
    """`predict --points FILE`: every row of the table, as a table on stdout (or JSON), warnings on stderr."""
    import fits

    pred = fits.predict(source, table, alpha, interval)
    if as_json:
        typer.echo(json.dumps(pred.to_dict()))
        return
    inputs = [c for c in ("N", "D", "params_paper", "exposures", "precision", "P_post") if c in pred.table]
    shown = pred.table[[*inputs, "prediction", "lower", "upper"]]
    typer.echo(f"predicted {pred.target} ({pred.unit}; {pred.source})")
    typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
    if pred.interval != "none":
        level = f"{100 * (1 - pred.alpha):g}%"
        typer.echo(f"{level} intervals: {INTERVALS[pred.interval]}, {pred.n_boot} bootstrap draws")
    for w in pred.warnings:
        typer.echo(f"warning: {w}", err=True)


COMMANDS = {"predict": predict}
