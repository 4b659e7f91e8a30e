"""`scalefit fit`: fit a scaling law to a results table, print the summary, write fit.json and plots."""

from __future__ import annotations

import typer


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    from scaling.errors import UserError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"{what} expects NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def fit(
    results: str = typer.Argument(..., help="results.parquet from a sweep, or a CSV/parquet of runs."),
    law: str = typer.Option("chinchilla", "--law", help="Law to fit: chinchilla, precision or capacity."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for SEs and CIs (0: none)."),
    holdout: float = typer.Option(
        0.2,
        "--holdout",
        help="Fraction of largest-compute runs held out for the extrapolation check (0: skip).",
    ),
    mapping: list[str] = typer.Option(  # noqa: B008
        None, "--map", help='Take a column from the file: --map N="Model Size" --map C="Training FLOP".'
    ),
    derive_d: bool = typer.Option(False, "--derive-d", help="Derive tokens D = C / (6 N) from compute C."),
    out: str = typer.Option("fit.json", "--out", "-o", help="Where to write fit.json."),
    plots: str = typer.Option(None, "--plots", help="Directory for PNG diagnostic plots."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    huber_delta: float = typer.Option(1e-3, "--huber-delta", help="Huber loss threshold on log residuals."),
    tie: list[str] = typer.Option(  # noqa: B008
        None, "--tie", help="Tie parameters, e.g. --tie beta=alpha (precision default); --tie none unties."
    ),
    fix: list[str] = typer.Option(None, "--fix", help="Fix a parameter at a value, e.g. --fix E=1.69."),  # noqa: B008
    budget: float = typer.Option(None, "--budget", help="FLOPs at which to report compute-optimal N and D."),
    isoflop: bool = typer.Option(
        False,
        "--isoflop",
        help="Also run Approach 2 (IsoFLOP parabolas per compute budget, 3 significant digits).",
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Interval level: 1 - alpha (default 95%)."),
    ptq_method: str = typer.Option(
        None, "--ptq-method", help="Precision law: PTQ method whose rows to fit (default gptq when present)."
    ),
) -> None:
    """Fit a scaling law with bootstrap uncertainty and a holdout check; write fit.json (and plots)."""
    import warnings

    from rich.console import Console

    from fits.dataset import fit_data, parse_mapping, read_table
    from fits.pipeline import fit as run_fit
    from scaling.errors import UserError

    console = Console(stderr=True)
    if law not in ("chinchilla", "precision", "capacity"):
        raise UserError(f"--law must be chinchilla, precision or capacity, got {law!r}")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha must be in (0, 1), got {alpha:g}")
    ties = _pairs([t for t in (tie or []) if t != "none"], "--tie") if tie else None
    try:
        fixed = {k: float(v) for k, v in _pairs(fix, "--fix").items()}
    except ValueError:
        raise UserError(f"--fix values must be numbers, got {fix}") from None
    columns = parse_mapping(mapping)
    table = read_table(results, columns, derive_d)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = fit_data(table, law, ptq_method)
    for w in caught:
        console.print(f"warning: {w.message}", style="yellow", markup=False, highlight=False)
    for reason, count in data.not_used.items():
        console.print(f"note: {count} rows not used ({reason})", markup=False, highlight=False)
    with console.status("fitting") as status:
        result = run_fit(
            data,
            law,
            n_boot=bootstrap,
            seed=seed,
            holdout=holdout or None,
            huber_delta=huber_delta,
            fixed=fixed,
            tied=ties,
            alpha=alpha,
            progress=lambda msg: status.update(msg),
        )
    iso = None
    if isoflop:
        try:
            iso = _isoflop(data)
            result.metrics["isoflop"] = iso.to_dict()
        except UserError as exc:
            console.print(f"warning: --isoflop skipped: {exc}", style="yellow", markup=False, highlight=False)
    result.options["input"] = str(results)
    result.options["map"] = columns
    result.options["derive_d"] = derive_d
    result.to_json(out)
    typer.echo(result.summary(budget))
    if iso is not None:
        typer.echo("")
        typer.echo(iso.summary())
    if plots is not None:
        from fits.plots import write_plots

        paths = write_plots(result, data, plots, table=table)
        console.print(f"plots: {', '.join(str(p) for p in paths)}", markup=False, highlight=False)
    console.print(f"wrote {out}", markup=False, highlight=False)


def _isoflop(data):
    from fits.isoflop import isoflop_fit

    return isoflop_fit(data.X["N"], data.compute, data.y)


COMMANDS = {"fit": fit}
