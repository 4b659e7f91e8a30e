"""`scalefit train`: train one model and print its result."""

from __future__ import annotations

import json

import typer


def train(
    n: float = typer.Option(
        1e6, "--n", help="Target non-embedding parameters N (the shape family picks the shape)."
    ),
    tokens: float = typer.Option(5e6, "--tokens", "-D", help="Training tokens D."),
    precision: str = typer.Option("bf16", help="Training precision, e.g. bf16, fp32, w4a8kv8, fp8-e4m3."),
    optimizer: str = typer.Option("adamw", help="adamw or muon."),
    lr: float = typer.Option(None, help="Peak learning rate (default: a size-based heuristic)."),
    batch_size: int = typer.Option(32, help="Sequences per step."),
    seq_len: int = typer.Option(128, help="Context length in tokens."),
    mlp: str = typer.Option("gelu", help="gelu or swiglu."),
    loss: str = typer.Option("ce", help="ce (softmax cross-entropy) or stablemax."),
    data: str = typer.Option(
        "default", help="'default' (packaged English text), a .txt file or a uint16 .bin."
    ),
    seed: int = typer.Option(0, help="Random seed (runs are deterministic for a seed on CPU)."),
    threads: int = typer.Option(None, help="torch threads (default: torch's choice)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train one model and print its validation loss and diagnostics."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from scaling.data import load_corpus
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
    )
    corpus = load_corpus(cfg.data)  # bad paths fail here, before the progress bar draws
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
            cfg, corpus, on_step=lambda step, total, value: bar.update(task, completed=step + 1, loss=value)
        )
    summary = result.to_dict()
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    table = Table(title=f"scalefit train: {precision}, N={result.n_params:,}, D={result.tokens:,}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("status", result.status),
        ("validation loss (nats/token)", f"{result.val_loss:.4f}"),
        ("best validation loss", f"{result.best_val_loss:.4f}"),
        ("non-embedding params N", f"{result.n_params:,}"),
        ("total params", f"{result.n_params_total:,}"),
        ("shape (d_model × n_layers)", f"{result.shape['d_model']} × {result.shape['n_layers']}"),
        ("training tokens D", f"{result.tokens:,}"),
        ("epochs over the corpus", f"{result.epochs:.3f}"),
        ("training FLOPs", f"{result.flops:.3g}"),
        ("max |logit|", f"{result.max_abs_logit:.2f}"),
        ("softmax-collapsed tokens", f"{result.softmax_collapse:.2%}"),
        ("tokens/s", f"{result.tokens_per_s:,.0f}"),
        ("wall time (s)", f"{result.wall_time:.1f}"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


COMMANDS = {"train": train}
