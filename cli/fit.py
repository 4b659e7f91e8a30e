"""`scalefit fit`: fit a scaling law to a results table, print the summary, write fit.json and plots."""

from __future__ import annotations

from typing import Annotated

import typer

FLAGS = {
    "n_boot": "--bootstrap",
    "huber_delta": "--huber-delta",
    "alpha": "--alpha",
    "ptq_method": "--ptq-method",
    "mapping": "--map",
    "derive_d": "--derive-d",
    "where": "--where",
    "law": "--law",
    "holdout": "--holdout",
    "group_by": "--group-by",
    "tied": "--tie",
    "fixed": "--fix",
}
"""Library parameter -> the flag that sets it (errors name the flag)."""


Map = Annotated[
    list[str] | None,
    typer.Option("--map", help='Take a column from the file: --map N="Model Size" --map C="Training FLOP".'),
]
DeriveD = Annotated[bool, typer.Option("--derive-d", help="Derive tokens D = C / (6 N) from compute C.")]
Where = Annotated[
    str | None, typer.Option("--where", help='Keep the rows a pandas query selects, e.g. "N > 1e8".')
]
LawName = Annotated[
    str,
    typer.Option(
        "--law",
        help="Law to fit: auto (the default: the loss-law form that backtests best on these rows; prints "
        "the comparison), chinchilla, chinchilla-tied, kaplan2020, muennighoff2023, gadre2024, precision, "
        "capacity.",
    ),
]
Tie = Annotated[
    list[str] | None,
    typer.Option(
        "--tie", help="Tie parameters, e.g. --tie beta=alpha (precision default); --tie none unties."
    ),
]
Fix = Annotated[
    list[str] | None, typer.Option("--fix", help="Fix a parameter at a value, e.g. --fix E=1.69.")
]
Alpha = Annotated[float, typer.Option("--alpha", help="Interval level: 1 - alpha (default 95%).")]
PtqMethod = Annotated[
    str | None,
    typer.Option(
        "--ptq-method", help="Precision law: PTQ method whose rows to fit (default gptq when present)."
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Bootstrap seed.")]


def read_runs(results: str, mapping: list[str] | None, derive_d: bool, where: str | None):
    """(table, column mapping) for a command that reads runs (fit, backtest): --map, --derive-d, --where."""
    from fits.dataset import parse_mapping, read_table

    columns = parse_mapping(mapping)
    return read_table(results, columns, derive_d, where), columns


def constraints(tie: list[str] | None, fix: list[str] | None) -> tuple[dict | None, dict[str, float]]:
    """(tied, fixed) from --tie / --fix: None keeps the law's default ties, --tie none unties."""
    from fits.dataset import parse_pairs
    from scaling.errors import UserError

    ties = parse_pairs([t for t in (tie or []) if t != "none"], "--tie") if tie else None
    try:
        fixed = {k: float(v) for k, v in parse_pairs(fix, "--fix").items()}
    except ValueError:
        raise UserError(f"--fix values must be numbers, got {fix}") from None
    return ties, fixed


def select_rows(table, law: str, ptq_method: str | None, console):
    """`fits.fit_data` with its dropped-row warnings and not-used notes printed to `console`."""
    import warnings

    import fits

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = fits.fit_data(table, law, ptq_method)
    for w in caught:
        console.print(f"warning: {w.message}", style="yellow", markup=False, highlight=False)
    for reason, count in data.not_used.items():
        console.print(f"note: {count} rows not used ({reason})", markup=False, highlight=False)
    return data


def fit(
    results: Annotated[str, typer.Argument(help="results.parquet from a sweep, or a CSV/parquet of runs.")],
    law: LawName = "auto",
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples for SEs and CIs (0: none).")
    ] = 1000,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout",
            help="Fraction of largest-compute runs held out for the extrapolation check (0: skip).",
        ),
    ] = 0.2,
    mapping: Map = None,
    derive_d: DeriveD = False,
    where: Where = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Where to write fit.json.")] = "fit.json",
    plots: Annotated[str | None, typer.Option("--plots", help="Directory for PNG diagnostic plots.")] = None,
    seed: Seed = 0,
    huber_delta: Annotated[
        float, typer.Option("--huber-delta", help="Huber loss threshold on log residuals.")
    ] = 1e-3,
    tie: Tie = None,
    fix: Fix = None,
    budget: Annotated[
        float | None, typer.Option("--budget", help="FLOPs at which to report compute-optimal N and D.")
    ] = None,
    isoflop: Annotated[
        bool,
        typer.Option(
            "--isoflop",
            help="Also run Approach 2 (IsoFLOP parabolas per compute budget, 3 significant digits).",
        ),
    ] = False,
    alpha: Alpha = 0.05,
    ptq_method: PtqMethod = None,
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            "--group-by",
            help="Fit one law per value (or combination, comma-separated) of these columns; "
            "fit.json becomes fit.<group>.json per group.",
        ),
    ] = None,
) -> None:
    """Fit a scaling law with bootstrap uncertainty and a holdout check; write fit.json (and plots)."""
    from pathlib import Path

    from rich.console import Console

    from fits.grouping import group_path, split_groups

    console = Console(stderr=True)
    ties, fixed = constraints(tie, fix)
    table, columns = read_runs(results, mapping, derive_d, where)
    groups = split_groups(table, group_by) if group_by else [("", {}, table)]
    settings = {
        "n_boot": bootstrap,
        "seed": seed,
        "holdout": holdout or None,
        "huber_delta": huber_delta,
        "fixed": fixed,
        "tied": ties,
        "alpha": alpha,
        "ptq_method": ptq_method,
    }
    for label, values, rows in groups:
        path = group_path(out, label) if label else Path(out)
        options = {"input": str(results), "map": columns, "derive_d": derive_d, "where": where}
        if label:
            typer.echo(
                f"== group {label} ({', '.join(f'{k}={v}' for k, v in values.items())}; {len(rows)} rows)"
            )
            options["group"] = {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}
        where_plots = None if plots is None else Path(plots) / label if label else Path(plots)
        _fit_one(rows, law, settings, path, console, isoflop, budget, options, where_plots)


def _fit_one(table, law, settings, out, console, isoflop, budget, options, plots) -> None:
    """Fit one table (all rows, or one --group-by group) with `settings` (`fits.fit` options), write
    its fit file, print its summary."""
    import fits
    from fits.backtest import drop_smallest
    from fits.selection import check_auto_options, is_auto, record_selection
    from scaling.errors import UserError

    selection = None
    fits.pipeline.check_fit_options(**settings)
    if is_auto(law):
        check_auto_options(settings["fixed"], settings["tied"])
        with console.status("choosing the law") as status:
            selection = fits.select_law(
                table,
                ptq_method=settings["ptq_method"],
                huber_delta=settings["huber_delta"],
                progress=lambda msg: status.update(msg),
            )
        typer.echo(selection.as_text() + "\n")
        law = selection.law.name
    data = select_rows(table, law, settings["ptq_method"], console)
    if selection is not None:
        data = drop_smallest(data, selection.trim)  # the rows auto chose, as fits.fit_auto
    with console.status("fitting") as status:
        result = fits.fit(data, law, **settings, progress=lambda msg: status.update(msg))
    if selection is not None:
        record_selection(result, selection)
    iso = None
    if isoflop:
        try:
            iso = _isoflop(data)
            result.metrics["isoflop"] = iso.to_dict()
        except UserError as exc:
            console.print(f"warning: --isoflop skipped: {exc}", style="yellow", markup=False, highlight=False)
    result.options.update(options)
    result.to_json(out)
    typer.echo(result.summary(budget).as_text())
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
