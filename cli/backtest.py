"""`scalefit backtest`: fit the smaller runs, predict the larger ones, report errors and interval coverage."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.fit import FLAGS as FIT_FLAGS
from cli.fit import Alpha, DeriveD, Fix, LawName, Map, PtqMethod, Seed, Tie, Where

FLAGS = {**FIT_FLAGS, "cuts": "--cuts", "by": "--by", "interval": "--interval"}
"""Library parameter -> the flag that sets it (errors name the flag)."""


def parse_cuts(text: str) -> list[float]:
    """ "0.5,0.6,0.7,0.8" -> [0.5, 0.6, 0.7, 0.8] (a `UserError` names --cuts otherwise)."""
    from scaling.errors import UserError

    try:
        cuts = [float(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise UserError(f"--cuts expects comma-separated fractions such as 0.5,0.8, got {text!r}") from None
    if not cuts:
        raise UserError("--cuts is empty")
    return cuts


def backtest(
    results: Annotated[str, typer.Argument(help="results.parquet from a sweep, or a CSV/parquet of runs.")],
    law: LawName = "auto",
    cuts: Annotated[
        str,
        typer.Option("--cuts", help="Quantiles of compute (or N) below which runs are fitted, e.g. 0.5,0.8."),
    ] = "0.5,0.6,0.7,0.8",
    by: Annotated[
        str, typer.Option("--by", help="Cut by training compute (compute) or by model size (N).")
    ] = "compute",
    bootstrap: Annotated[
        int,
        typer.Option("--bootstrap", help="Bootstrap resamples per fit for intervals (0: point errors only)."),
    ] = 200,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval", help="Interval to score: calibrated (default with a bootstrap), bootstrap, none."
        ),
    ] = None,
    mapping: Map = None,
    derive_d: DeriveD = False,
    where: Where = None,
    tie: Tie = None,
    fix: Fix = None,
    alpha: Alpha = 0.05,
    ptq_method: PtqMethod = None,
    seed: Seed = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result (cuts, overall, points) as JSON.")
    ] = False,
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="Write relative error against extrapolation distance to a PNG."),
    ] = None,
) -> None:
    """Leave-future-out backtest: for each cut, fit the runs below it and predict every run above it."""
    from rich.console import Console

    import fits
    from cli.fit import constraints, read_runs, select_rows
    from fits.selection import candidate_rows, check_auto_options, is_auto

    console = Console(stderr=True)
    ties, fixed = constraints(tie, fix)
    table, _ = read_runs(results, mapping, derive_d, where)
    if is_auto(law):  # the candidates' common rows: their notes now, the table to the backtest
        check_auto_options(fixed, ties)
        rows = candidate_rows(table, ptq_method)
        for reason, count in rows.not_used.items():
            console.print(f"note: {count} rows not used ({reason})", markup=False, highlight=False)
        data = table
    else:
        data = rows = select_rows(table, law, ptq_method, console)
    for d in rows.pooled:
        console.print(f"warning: {d['message']}", style="yellow", markup=False, highlight=False)
    with console.status("backtest") as status:
        res = fits.backtest(
            data,
            law,
            cuts=parse_cuts(cuts),
            by=by,
            alpha=alpha,
            n_boot=bootstrap,
            seed=seed,
            interval=interval,
            ptq_method=ptq_method,
            tied=ties,
            fixed=fixed,
            progress=lambda msg: status.update(msg),
        )
    if plot is not None:
        res.plot(plot)
    if as_json:
        typer.echo(json.dumps(res.to_dict()))
    else:
        typer.echo(res.as_text())
    if plot is not None:
        console.print(f"wrote {plot}", markup=False, highlight=False)


COMMANDS = {"backtest": backtest}
