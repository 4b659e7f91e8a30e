"""`scalefit sweep`: plan and run a sweep into a resumable results store (see docs/sweeps.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def sweep(
    spec: Annotated[str | None, typer.Argument(help="Sweep spec TOML file (or use --preset).")] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="A preset from sweeps/presets/: smoke, precision-cpu, ...")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Consolidated results file (.parquet); runs go to <out>.runs/."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the sweep in --out: finished runs are kept, not redone."),
    ] = False,
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="--out holds rows from elsewhere: keep them (as finished runs) and add this sweep's.",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="--out holds rows from elsewhere: replace the file with this sweep's."
        ),
    ] = False,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan", help="Print the runs, their FLOPs and the estimated wall time; train nothing."
        ),
    ] = False,
    executor: Annotated[str, typer.Option("--executor", help="Where runs execute: local | ray.")] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (e.g. auto, ray://head:10001).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="Runs in flight at once (local default: one per GPU, else one per core)."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="torch threads per run (default: cores / workers).")
    ] = None,
    cpus_per_run: Annotated[
        float, typer.Option("--cpus-per-run", help="Ray: CPUs requested by each run.")
    ] = 1.0,
    gpus_per_run: Annotated[
        float, typer.Option("--gpus-per-run", help="Ray: GPUs requested by each run.")
    ] = 0.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress (bar on a terminal, a line every 30 s off one).")
    ] = False,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Corpus of every lm run (replaces [train] data): 'default', a text file, a uint16 .bin, or "
            "a directory or glob of nanoGPT-style uint16/uint32 token shards (docs/data.md).",
        ),
    ] = None,
) -> None:
    """Train every run of a sweep spec and write results.parquet (resumable; --plan to preview)."""
    import os

    from rich.console import Console

    from scaling.errors import UserError
    from scaling.version import __version__, git_commit
    from sweeps.plan import plan
    from sweeps.spec import load_spec, preset_path

    if (spec is None) == (preset is None):
        raise UserError("give a spec file or --preset NAME (exactly one of the two)")
    if executor not in ("local", "ray"):
        raise UserError(f"--executor must be local or ray, got {executor!r}")
    if address is not None and executor != "ray":
        raise UserError("--address is for --executor ray")
    for flag, value in (("--workers", workers), ("--threads", threads)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if append and overwrite:
        raise UserError("give --append or --overwrite, not both")
    existing = "append" if append else "overwrite" if overwrite else "refuse"
    if out is not None and not plan_only:  # fail before the slow imports of planning
        from sweeps.store import RunStore

        early = RunStore(out)
        if not resume:
            early.require_new()
        if existing == "refuse":
            early.guard_out()
    sweep_spec = load_spec(preset_path(preset) if preset else Path(spec))
    if data is not None:
        import dataclasses

        sweep_spec = dataclasses.replace(sweep_spec, train={**sweep_spec.train, "data": data})
    runs = plan(sweep_spec, check_epochs=not plan_only)  # --plan lists runs that would repeat data
    console = Console(stderr=True, soft_wrap=True)  # log lines stay whole off a terminal
    n_cpus = len(os.sched_getaffinity(0))
    if executor == "local":
        from sweeps.executors import default_layout, local_gpus

        gpus = local_gpus()
        d_workers, _ = default_layout(n_cpus, gpus)
        workers = workers or d_workers
        threads = threads or (1 if gpus else max(1, n_cpus // workers))
    else:
        threads = threads or max(1, int(cpus_per_run))
    if plan_only:
        _print_plan(sweep_spec, runs, workers or 1, threads, executor, console)
        return
    if out is None:
        raise UserError("--out is required (a .parquet file) unless --plan is given")

    from sweeps.driver import run_sweep
    from sweeps.runner import execute
    from sweeps.store import RunStore

    store = RunStore(out)
    if executor == "local":
        from sweeps.executors import LocalExecutor

        ex = LocalExecutor(execute, workers=workers, threads=threads, gpus=gpus)
    else:
        from sweeps.executors import RayExecutor

        ex = RayExecutor(execute, address=address, cpus=cpus_per_run, gpus=gpus_per_run, threads=threads,
                         max_in_flight=workers)  # fmt: skip
    header = (
        f"sweep [bold]{sweep_spec.name}[/]: {len(runs)} runs → {out} (runs in {store.root}), {ex.describe()}"
    )
    record = {"spec": sweep_spec.source, "name": sweep_spec.name, "scalefit_version": __version__,
              "git_commit": git_commit()}  # fmt: skip
    summary = run_sweep(runs, store, ex, resume=resume, existing=existing, show_progress=not quiet,
                        record=record, on_start=lambda: console.print(header))  # fmt: skip
    parts = [f"{summary.ok} ok", f"{summary.diverged} diverged", f"{summary.failed} failed"]
    if summary.already_done:
        parts.append(f"{summary.already_done} already done")
    if summary.finished_elsewhere:
        parts.append(f"{summary.finished_elsewhere} finished by another sweep")
    if summary.left_to_others:
        parts.append(f"{summary.left_to_others} running in another sweep")
    if summary.imported:
        console.print(f"appended: {summary.imported} run(s) of the existing {out} kept as finished runs")
    rec = {k: v for k, v in summary.recovered.items() if v}
    if rec:
        console.print(
            "recovered the store: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in rec.items())
        )
    console.print(
        f"[bold]{summary.planned} runs[/]: " + ", ".join(parts) + f" in {summary.wall_time:.1f} s; "
        f"{summary.rows} rows in {out}"
    )
    for run_id, error in summary.failures.items():
        console.print(f"  [red]failed[/] {run_id}: {error}  (details: {store.failed_dir / run_id}.json)")
    if summary.failed:
        console.print("failed runs are retried with --resume")
        raise typer.Exit(code=1)


def _print_plan(spec, runs, workers: int, threads: int, executor: str, console) -> None:
    """The run table, total FLOPs and the wall time estimated from timing each shape on this machine."""
    import math

    from rich.table import Table

    from sweeps.plan import estimate, makespan

    lm = [r for r in runs if r.config["task"] == "lm"]
    if lm and executor == "local":
        with console.status("timing each model shape on this machine for the estimate ...") as status:
            estimate(
                runs, threads, workers, progress=lambda i, n: status.update(f"timed shape {i + 1}/{n} ...")
            )
    from scaling.errors import UserError
    from scaling.memory import available_bytes, format_bytes
    from sweeps.driver import run_memory
    from sweeps.plan import check_data_epochs, epochs_of

    epochs = epochs_of(runs)
    memory = {r.run_id: run_memory(r).total for r in runs}
    n_points = sum(len(r.store_ids) for r in runs)
    results = f", {n_points} results" if n_points != len(runs) else ""
    table = Table(title=f"sweep {spec.name}: {len(runs)} runs{results}")
    cols = ("#", "run_id", "N", "D", "D/N", "epochs", "cooldown", "precision", "optimizer", "seed", "lr",
            "FLOPs", "memory", "est.")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="right" if col not in ("run_id", "precision", "optimizer") else "left")
    rows = [x for i, r in enumerate(runs) for x in [(str(i + 1), r, r)]
            + [(f"{i + 1}.{k + 1}", b, r) for k, b in enumerate(r.branches)]]  # fmt: skip
    for label, r, job in rows:
        t = r.config["train"]
        lr = t["lr"]
        ratio = f"{r.tokens / r.n_params:.3g}" if r.tokens else ""
        ep = f"{epochs[r.run_id]:.2g}" if r.run_id in epochs else ""
        cooldown = "trunk" if r.branches else f"{r.cooldown_tokens:.3g}" if r.parent else ""
        own = r is job  # a branch shares its trunk's memory and time
        table.add_row(
            label, r.run_id, f"{r.n_params:.3g}", f"{r.tokens:.3g}" if r.tokens else "task",
            ratio, ep, cooldown, t["precision"], t["optimizer"], str(t["seed"]),
            "default" if lr is None else f"{lr:.3g}", f"{r.flops:.3g}" if math.isfinite(r.flops) else "",
            format_bytes(memory[r.run_id]) if own else "",
            f"{r.est_seconds:.1f} s" if own and math.isfinite(r.est_seconds) else "?" if own else "",
        )  # fmt: skip
    import sys

    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 160).print(table)
    flops = sum(r.flops for r in runs if math.isfinite(r.flops))
    est = [r.est_seconds for r in runs if math.isfinite(r.est_seconds)]
    have, source = available_bytes()
    peak = format_bytes(max(memory.values(), default=0))
    lines = [
        f"runs: {len(runs)}; training FLOPs: {flops:.3g}; largest run needs an estimated {peak} of memory "
        f"({format_bytes(have)} available, {source})"
    ]
    trunks = [r for r in runs if r.branches]
    if trunks:
        separate = sum(b.flops for r in trunks for b in r.branches)
        spent = sum(r.flops for r in trunks)
        lines.append(
            f"WSD trunks: {len(trunks)} with {sum(len(r.branches) for r in trunks)} cooldown branches (each "
            f"a result) train {spent:.3g} FLOPs; as separate runs the same (N, D) points would take "
            f"{separate:.3g} ({separate / spent:.2f}×)"
        )
    try:
        check_data_epochs(runs, spec.max_epochs, spec.name)
    except UserError as exc:
        lines.append(f"warning: the sweep would refuse to start: {exc}")
    if spec.ptq_methods:
        lines.append(f"PTQ: {', '.join(spec.ptq_methods)} × {', '.join(spec.ptq_formats)} after every run")
    if est:
        from sweeps.plan import STARTUP_S

        wall = makespan(est, workers) + STARTUP_S
        lines.append(
            f"estimated wall time: {wall / 60:.1f} min with {workers} worker(s) × {threads} thread(s) "
            f"(serial {sum(est) / 60:.1f} min){'' if len(est) == len(runs) else '; some runs not estimated'}"
        )
    else:
        lines.append(
            "estimated wall time: not available (the estimate times lm runs with the local executor, "
            "and only shapes whose step this machine can time in seconds)"
        )
    typer.echo("\n".join(lines))


COMMANDS = {"sweep": sweep}
