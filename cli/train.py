"""`scalefit train`: train one model and print its result."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def train(
    n: Annotated[
        float,
        typer.Option("--n", help="Target non-embedding parameters N (the shape family picks the shape)."),
    ] = 1e6,
    tokens: Annotated[float, typer.Option("--tokens", "-D", help="Training tokens D.")] = 5e6,
    precision: Annotated[
        str, typer.Option("--precision", help="Training precision, e.g. bf16, fp32, w4a8kv8, fp8-e4m3.")
    ] = "bf16",
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw or muon.")] = "adamw",
    lr: Annotated[
        float | None, typer.Option("--lr", help="Peak learning rate (default: a size-based heuristic).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sequences per step.")] = 32,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Context length in tokens.")] = 128,
    mlp: Annotated[str, typer.Option("--mlp", help="gelu or swiglu.")] = "gelu",
    loss: Annotated[str, typer.Option("--loss", help="ce (softmax cross-entropy) or stablemax.")] = "ce",
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="'default' (packaged English text), a .txt file, a uint16 .bin, or a directory or glob of "
            "nanoGPT-style uint16/uint32 token shards (docs/data.md).",
        ),
    ] = "default",
    eval_tokens: Annotated[
        int | None,
        typer.Option(
            "--eval-tokens",
            help="Validation tokens per evaluation (default: in proportion to the run, 5% of its compute "
            "over all evaluations).",
        ),
    ] = None,
    n_evals: Annotated[
        int, typer.Option("--n-evals", help="Validation passes spread over training, the last at the end.")
    ] = 8,
    schedule: Annotated[
        str, typer.Option("--schedule", help="Learning-rate schedule: cosine or wsd (warmup-stable-decay).")
    ] = "cosine",
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (runs are deterministic for a seed on CPU).")
    ] = 0,
    threads: Annotated[
        int | None, typer.Option("--threads", help="torch threads (default: torch's choice).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train one model and print its validation loss and diagnostics."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from scaling.data import load_corpus
    from scaling.progress import LineProgress, fmt_seconds, on_terminal
    from scaling.train import TrainConfig
    from scaling.train import train as run_training

    cfg = TrainConfig(
        n=n,
        tokens=tokens,
        precision=precision,
        optimizer=optimizer,
        lr=lr,
        batch_size=batch_size,
        seq_len=seq_len,
        mlp=mlp,
        loss=loss,
        data=data,
        seed=seed,
        threads=threads,
        eval_tokens=eval_tokens,
        n_evals=n_evals,
        schedule=schedule,
    )
    corpus = load_corpus(cfg.data)  # bad paths fail here, before the progress bar draws
    if as_json or on_terminal():  # a bar on a terminal; --json prints nothing but the result
        console = Console(stderr=True)
        with Progress(
            TextColumn("training"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeRemainingColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            task = bar.add_task("train", total=cfg.n_steps, loss=float("nan"))
            result = run_training(
                cfg,
                corpus,
                on_step=lambda step, total, value: bar.update(task, completed=step + 1, loss=value),
            )
    else:  # off a terminal (a log file, a pipe): a plain line every 30 s (scaling.progress)
        lines = LineProgress("train")
        first: list[float] = []  # when the first step ended (model build and start-up excluded from the ETA)

        def report(step: int, total: int, value: float) -> None:
            done, elapsed = step + 1, lines.elapsed
            first[:] = first or [elapsed]
            eta = (elapsed - first[0]) / (done - 1) * (total - done) if done > 1 else None
            lines.update(
                f"step {done}/{total} ({done / total:.0%}) · loss {value:.3f} · {fmt_seconds(elapsed)} "
                f"elapsed · ETA {fmt_seconds(eta)}"
            )

        result = run_training(cfg, corpus, on_step=report)
        lines.close()
    summary = result.to_dict()
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    table = Table(title=f"scalefit train: {precision}, N={result.n_params:,}, D={result.tokens:,}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("status", f"{result.status}: {result.divergence}" if result.divergence else result.status),
        ("validation loss (nats/token)", f"{result.val_loss:.4f}"),
        ("best validation loss", f"{result.best_val_loss:.4f}"),
        ("non-embedding params N", f"{result.n_params:,}"),
        ("total params", f"{result.n_params_total:,}"),
        ("shape (d_model × n_layers)", f"{result.shape['d_model']} × {result.shape['n_layers']}"),
        ("training tokens D", f"{result.tokens:,}"),
        ("epochs over the corpus", f"{result.epochs:.3f}"),
        ("training FLOPs", f"{result.flops:.3g}"),
        ("validation", f"{cfg.n_evals} × {cfg.eval_tokens:,} tokens: {result.eval_fraction:.1%} of compute"),
        ("max |logit|", f"{result.max_abs_logit:.2f}"),
        ("softmax-collapsed tokens", f"{result.softmax_collapse:.2%}"),
        ("tokens/s", f"{result.tokens_per_s:,.0f}"),
        ("wall time (s)", f"{result.wall_time:.1f}"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


COMMANDS = {"train": train}
