"""`scalefit predict`: the predicted loss of one configuration with its interval, from a fit or a law."""

from __future__ import annotations

import json
from typing import Annotated

import typer

FLAGS = {"alpha": "--alpha", "law": "--law", "N": "--n", "D": "--tokens", "points": "--n/--tokens"}
"""Library parameter -> the flag that sets it (errors name the flag)."""


def predict(
    n: Annotated[float, typer.Option("--n", help="Non-embedding parameters N.")],
    tokens: Annotated[float, typer.Option("--tokens", "-D", help="Training tokens D.")],
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
) -> None:
    """Predict the loss of N parameters trained on D tokens at a precision, optionally after PTQ."""
    import fits
    from scaling.errors import UserError

    if (fit_path is None) == (law is None):
        raise UserError("give exactly one of --fit fit.json or --law NAME")
    point = {"N": [n], "D": [tokens], "precision": [precision], "ptq": [ptq]}
    pred = fits.predict(fit_path if fit_path is not None else law, point, alpha)
    row = pred.table.iloc[0]
    if as_json:
        out = {
            "prediction": float(row["prediction"]),
            "target": pred.target,
            "unit": pred.unit,
            "law": pred.law,
            "source": pred.source,
            "N": n,
            "D": tokens,
            "precision": precision,
            "P_post": None if row.isna().get("P_post", True) else float(row["P_post"]),
            "warnings": pred.warnings,
        }
        if pred.n_boot:
            out.update({"lower": float(row["lower"]), "upper": float(row["upper"]), "alpha": pred.alpha})
            out["n_boot"] = pred.n_boot
        typer.echo(json.dumps(out))
        return
    ptq_text = "" if row.isna().get("P_post", True) else f", PTQ {row['P_post']:g} bits"
    what = f"N={n:.4g}, D={tokens:.4g}, precision {precision}{ptq_text}"
    line = f"predicted {pred.target}: {row['prediction']:.4f} {pred.unit}  ({what}; {pred.source})"
    if pred.n_boot:
        line += (
            f"\n{100 * (1 - pred.alpha):g}% interval: {row['lower']:.4f} .. {row['upper']:.4f}  "
            f"({pred.n_boot} bootstrap draws)"
        )
    elif fit_path is None:
        line += "\nno interval: published constants carry no uncertainty here (fit your data for one)"
    else:
        line += "\nno interval: the fit has no bootstrap draws"
    typer.echo(line)
    for w in pred.warnings:
        typer.echo(f"warning: {w}", err=True)


COMMANDS = {"predict": predict}
