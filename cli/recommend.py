"""`scalefit recommend`: compute-optimal parameters, tokens and precision for a budget."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.predict import DomainToken, Exposures, Junk, Mlp, Moe, effects, interval_text


def _count(x: float) -> str:
    """1234567 -> '1.23M' (parameters and tokens)."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _span(lo: float | None, hi: float | None) -> str:
    """An interval of counts; an end that is None (on the optimiser's search limit) is unbounded."""
    if lo is None and hi is None:
        return "unbounded"
    if lo is None:
        return f"≤ {_count(hi)} (lower end unbounded)"
    if hi is None:
        return f"≥ {_count(lo)} (upper end unbounded)"
    return f"{_count(lo)}–{_count(hi)}"


FLAGS = {
    "flops": "--flops",
    "law": "--law",
    "max_params": "--max-params",
    "max_tokens": "--max-tokens",
    "memory_gb": "--memory-gb",
    "n_params": "--params",
    "serve_bits": "--serve-precision",
    "precisions": "--precision",
    "per_kind": "--per-kind",
    "knowledge_bits": "--knowledge-bits",
    "exposures": "--exposures",
    "corpus_tokens": "--corpus-tokens",
}
"""Library parameter -> the flag that sets it (errors name the flag)."""


def recommend(
    flops: Annotated[
        float | None,
        typer.Option(
            "--flops", "-C", help="Compute budget in FLOPs (bf16-equivalent: a run costs 6·N·D / throughput)."
        ),
    ] = None,
    law: Annotated[
        str | None,
        typer.Option(
            "--law", help="Published law: kumar2024 (default), chinchilla-epoch2024, chinchilla-hoffmann2022."
        ),
    ] = None,
    fit: Annotated[
        str | None,
        typer.Option("--fit", help="Use your own fit.json (from `scalefit fit`) instead of --law."),
    ] = None,
    profile: Annotated[
        str,
        typer.Option("--profile", help="Hardware cost profile: bits (Kumar et al.), a100, h100, b200, cpu."),
    ] = "bits",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="Comma-separated precisions to search (default: int3..int15, bf16, fp8/fp6/fp4 formats). "
            "With --per-kind, the formats each tensor kind may take.",
        ),
    ] = None,
    per_kind: Annotated[
        bool, typer.Option("--per-kind", help="Search weight, activation and KV precisions independently.")
    ] = False,
    serve_precision: Annotated[
        str | None,
        typer.Option(
            "--serve-precision", help="Bits (or format) the weights are served at: optimise post-PTQ loss."
        ),
    ] = None,
    max_params: Annotated[
        float | None, typer.Option("--max-params", help="Upper limit on N (non-embedding parameters).")
    ] = None,
    max_tokens: Annotated[
        float | None, typer.Option("--max-tokens", help="Upper limit on D (the data you have).")
    ] = None,
    memory_gb: Annotated[
        float | None,
        typer.Option(
            "--memory-gb", help="Weights (N at the serving precision) must fit in this many GB (1e9 bytes)."
        ),
    ] = None,
    params: Annotated[
        float | None, typer.Option("--params", help="Fix N; only tokens and precision are chosen.")
    ] = None,
    top: Annotated[
        int, typer.Option("--top", help="Alternatives to show (each precision's best allocation).")
    ] = 6,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="Write isoloss contours over (N, P) with the budget to a PNG."),
    ] = None,
    list_profiles: Annotated[
        bool, typer.Option("--list-profiles", help="Describe the hardware profiles and exit.")
    ] = False,
    knowledge_bits: Annotated[
        float | None,
        typer.Option(
            "--knowledge-bits",
            help="Knowledge to store (bits): recommend the parameters a capacity law needs.",
        ),
    ] = None,
    exposures: Exposures = None,
    corpus_tokens: Annotated[
        float | None,
        typer.Option(
            "--corpus-tokens",
            help="With --knowledge-bits: tokens of the knowledge corpus (training = exposures × it).",
        ),
    ] = None,
    ptq: Annotated[
        str | None,
        typer.Option("--ptq", help="With --knowledge-bits: weights served at these bits (4, int8)."),
    ] = None,
    junk: Junk = None,
    domain_token: DomainToken = False,
    mlp: Mlp = None,
    moe: Moe = False,
) -> None:
    """Recommend model size N, tokens D and training precision for a compute budget."""
    from rich.console import Console
    from rich.table import Table

    from fits.hardware import PROFILES, get_profile
    from fits.plots import plot_recommendation
    from fits.recommendation import recommend_with
    from fits.sources import load_law, loss_source
    from scaling.errors import UserError

    console = Console()
    if list_profiles:
        for p in PROFILES.values():
            console.print(f"[bold]{p.name}[/bold]: {p.summary}\n  {p.assumptions}\n")
        return
    if knowledge_bits is not None:
        _knowledge(
            knowledge_bits, exposures, law, fit, corpus_tokens, ptq, junk, domain_token, mlp, moe, as_json
        )
        return
    if flops is None:
        raise UserError("--flops is required (the compute budget in FLOPs, e.g. --flops 1e21)")
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    hw = get_profile(profile)
    source = loss_source(load_law(law, fit))
    rec = recommend_with(
        source,
        flops,
        profile=hw,
        precisions=[p for p in precision.split(",") if p.strip()] if precision is not None else None,
        per_kind=per_kind,
        serve_bits=serve_precision,
        max_params=max_params,
        max_tokens=max_tokens,
        memory_gb=memory_gb,
        n_params=params,
    )
    if plot is not None:
        plot_recommendation(rec, source, plot, profile=hw.name)
    if as_json:
        typer.echo(json.dumps(rec.to_dict()))
        return

    best = rec.best
    serve = f", served at {rec.serve_bits:g} bits" if rec.serve_bits is not None else ""
    table = Table(
        title=f"{rec.law}, C = {rec.flops:.3g} FLOPs{serve}",
        caption=f"profile {hw.describe()}",
    )
    shown = rec.options[:top]
    limits = any(o.bound for o in shown)
    table.add_column("#")
    table.add_column("precision", no_wrap=True)
    table.add_column("w/a/kv", justify="right", no_wrap=True)
    for col in ("speed", "N", "D", "D/N", "loss", "+loss"):
        table.add_column(col, justify="right", no_wrap=True)
    if limits:
        table.add_column("limit", no_wrap=True)
    for i, o in enumerate(shown):
        row = [
            str(i + 1),
            o.precision,
            f"{o.P_w:g}/{o.P_a:g}/{o.P_kv:g}",
            f"{o.throughput:.2f}x",
            _count(o.N),
            _count(o.D),
            f"{o.tokens_per_param:.3g}",
            f"{o.loss:.4f}",
            f"{o.penalty:.4f}" if i else "",
        ]
        table.add_row(*row, *([o.bound] if limits else []), style="bold" if i == 0 else None)
    console.print(table)
    line = (
        f"Train [bold]{_count(best.N)}[/bold] parameters on [bold]{_count(best.D)}[/bold] tokens "
        f"({best.tokens_per_param:.3g} tokens/param) at [bold]{best.precision}[/bold]: "
        f"predicted {rec.objective} {best.loss:.4f} nats/token"
    )
    if rec.loss_interval is not None:
        lo, hi = rec.loss_interval
        kind = "calibrated: bootstrap + extrapolation error" if rec.interval == "calibrated" else "bootstrap"
        line += f" (95% interval {interval_text(lo, hi, sep='–')}, {kind}, over {rec.n_draws} bootstrap fits"
        if rec.n_interval is not None:
            line += f"; optimal N {_span(*rec.n_interval)}"
        line += ")"
    else:
        line += " (no bootstrap draws: no interval)"
    console.print(line + ".")
    if len(rec.options) > len(shown):
        more = len(rec.options) - len(shown)
        console.print(f"[dim]{more} more precisions feasible (--top, --json).[/dim]")
    if rec.infeasible:
        console.print(
            f"[dim]infeasible under the constraints: {', '.join(rec.infeasible[:12])}"
            f"{' ...' if len(rec.infeasible) > 12 else ''}[/dim]"
        )
    for w in rec.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if plot is not None:
        console.print(f"wrote {plot}")


def _knowledge(bits, exposures, law, fit, corpus_tokens, ptq, junk, domain_token, mlp, moe, as_json) -> None:
    """`recommend --knowledge-bits`: the parameters a capacity law needs to store that much knowledge."""
    from fits.candidates import parse_bits
    from fits.knowledge import plan_knowledge
    from scaling.errors import UserError

    if exposures is None:
        raise UserError("--knowledge-bits needs --exposures (how often training shows each fact)")
    extra = {k: v[0] for k, v in effects(junk, domain_token, mlp, moe).items()}
    if ptq is not None:
        extra["P_post"] = parse_bits(ptq)
    plan = plan_knowledge(bits, exposures, law=law, fit=fit, corpus_tokens=corpus_tokens, **extra)
    if as_json:
        typer.echo(json.dumps(plan.to_dict()))
        return
    line = (
        f"Store {bits:.3g} bits at {exposures:g} exposures: {_count(plan.params)} parameters "
        f"(counted with the embedding rows in use; {plan.bits_per_param:.3g} bits/param; {plan.law})"
    )
    if plan.params_interval is not None:
        lo, hi = plan.params_interval
        level = f"{100 * (1 - plan.alpha):g}%"
        line += f"\n{level} interval: {_count(lo)}–{_count(hi)} ({plan.n_boot} bootstrap fits)"
    elif fit is None:
        line += "\nno interval: published constants carry no uncertainty here (fit your data for one)"
    if plan.tokens is not None:
        line += (
            f"\ntraining tokens: {_count(plan.tokens)} "
            f"({exposures:g} exposures × {_count(plan.corpus_tokens)} corpus tokens)"
        )
    else:
        line += f"\ntraining tokens: {exposures:g} × your corpus's tokens (pass --corpus-tokens)"
    typer.echo(line)
    for w in plan.warnings:
        typer.echo(f"warning: {w}", err=True)


COMMANDS = {"recommend": recommend}
