"""`scalefit predict`: predicted loss of one configuration from a fit.json or a published law."""

from __future__ import annotations

import typer


def predict(
    fit_path: str = typer.Option(None, "--fit", help="fit.json written by `scalefit fit`."),
    law: str = typer.Option(
        None,
        "--law",
        help="Published law instead of a fit: kumar2024, chinchilla-epoch2024, chinchilla-hoffmann2022.",
    ),
    n: float = typer.Option(..., "--n", help="Non-embedding parameters N."),
    tokens: float = typer.Option(..., "--tokens", "-D", help="Training tokens D."),
    precision: str = typer.Option(
        "bf16", "--precision", help="Training precision, e.g. bf16, w8a8kv8, fp8-e4m3."
    ),
    ptq: str = typer.Option(
        None, "--ptq", help="Post-training weight quantization: bits (4) or a format (int4)."
    ),
    alpha: float = typer.Option(None, "--alpha", help="Interval level 1 - alpha (default: the fit's, 0.05)."),
    as_json: bool = typer.Option(False, "--json", help="Print the prediction as JSON."),
) -> None:
    """Predict the loss of N parameters trained on D tokens at a precision, optionally after PTQ."""
    import json
    import math

    from scaling.errors import UserError
    from scaling.formats import PrecisionSpec, parse_format

    if (fit_path is None) == (law is None):
        raise UserError("give exactly one of --fit fit.json or --law NAME")
    if not (math.isfinite(n) and n > 0 and math.isfinite(tokens) and tokens > 0):
        raise UserError(f"--n and --tokens must be positive, got N={n:g}, D={tokens:g}")
    spec = PrecisionSpec.parse(precision)
    p_post = math.nan
    if ptq is not None:
        try:
            p_post = float(ptq)
        except ValueError:
            p_post = float(parse_format(ptq).bits)
        if not p_post > 0:
            raise UserError(f"--ptq must be a positive number of bits or a format, got {ptq!r}")
    X = {
        "N": [n],
        "D": [tokens],
        "P_w": [spec.bits("w")],
        "P_a": [spec.bits("a")],
        "P_kv": [spec.bits("kv")],
        "P_post": [p_post],
    }

    interval = None
    if fit_path is not None:
        from fits.results import FitResult

        result = FitResult.from_json(fit_path)
        the_law, source = result.law, f"fit {fit_path}"
        if the_law.target == "bits":
            raise UserError("predict gives losses; a capacity fit predicts bits (use the fit.json directly)")
        value = float(result.predict(X)[0])
        level = result.alpha if alpha is None else alpha
        if result.n_boot:
            _, lo, hi = result.predict_interval(X, level)
            interval = (float(lo[0]), float(hi[0]), level, result.n_boot)
    else:
        from fits.laws import published

        the_law, params = published(law)
        source = f"published {law}"
        value = float(the_law.predict(params, X)[0])
    notes = []
    if the_law.name == "chinchilla" and (spec.quantized or ptq is not None):
        notes.append("the chinchilla law has no precision terms: --precision/--ptq are ignored")
    if as_json:
        out = {
            "loss": value,
            "law": the_law.name,
            "source": source,
            "N": n,
            "D": tokens,
            "precision": spec.name,
            "P_post": None if math.isnan(p_post) else p_post,
            "notes": notes,
        }
        if interval:
            out.update(
                {"lower": interval[0], "upper": interval[1], "alpha": interval[2], "n_boot": interval[3]}
            )
        typer.echo(json.dumps(out))
        return
    what = f"N={n:.4g}, D={tokens:.4g}, precision {spec.name}" + (
        "" if math.isnan(p_post) else f", PTQ {p_post:g} bits"
    )
    line = f"predicted loss: {value:.4f} nats/token  ({what}; {source})"
    if interval:
        lo, hi, level, draws = interval
        line += f"\n{100 * (1 - level):g}% interval: {lo:.4f} .. {hi:.4f}  ({draws} bootstrap draws)"
    elif fit_path is None:
        line += "\nno interval: published constants carry no uncertainty here (fit your data for one)"
    else:
        line += "\nno interval: the fit has no bootstrap draws"
    typer.echo(line)
    for note in notes:
        typer.echo(f"note: {note}", err=True)


COMMANDS = {"predict": predict}
