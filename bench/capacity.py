"""Knowledge-capacity benchmark: bits per parameter on bioS at 100 exposures, before and after PTQ.

Allen-Zhu & Li 2024 ("Physics of Language Models 3.3") report about 1 bit/param at 100 exposures for
models in the saturated regime (more knowledge offered than the model can hold), that int8 PTQ keeps the
capacity and that int4 loses more than half of it. This script trains the same small GPT (tied embeddings)
on an under-capacity and a saturating bioS(N) (`scaling.capacity.run_bios`), measures bits, R (the paper's
parameter count) and R_total, then the same after int8 and int4 weight PTQ (RTN and GPTQ), and optionally
one quantization-aware (low-precision training) variant of the first (smaller) run.

Usage:
    python bench/capacity.py [--threads 1] [--workers 1] [--people 250,1000] [--exposures 100]
                             [--d-model 32] [--n-layers 2] [--pieces 0] [--qat w4a8kv8]
                             [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from _report import write_section  # bench/_report.py (scripts run as `python bench/...`)

from scaling.capacity import run_bios

SECTION = "## Knowledge capacity"


def _run(people: int, precision: str, args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    run = {
        "people": people,
        "exposures": args.exposures,
        "d_model": args.d_model,
        "n_layers": args.n_layers,
        "n_heads": max(1, args.d_model // 16),  # one 32-wide head learns far less (see docs/benchmarks.md)
        "seq_len": 128,
        "batch_size": args.batch_size,
        "precision": precision,
        "tie_embeddings": True,
        "lr": args.lr,
        "threads": args.threads,
        "n_evals": 4,
        "eval_tokens": 8192,
        "bios": {"variant": args.variant, **({"pieces": args.pieces} if args.pieces else {})},
        "ptq": {"methods": ["rtn", "gptq"], "formats": ["int8", "int4"], "calib_tokens": 8192},
    }
    t0 = time.perf_counter()
    rows = run_bios(run)
    for r in rows:
        r["bench_seconds"] = time.perf_counter() - t0
    return rows


def _table(rows: list[dict]) -> list[str]:
    out = [
        "| people | train precision | PTQ | loss | p1 (nats) | p2 (nats) | bits | bits available "
        "| params (paper) | R | ΔR vs no PTQ | R_total | bits / N |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    base: dict[tuple, float] = {}
    for r in rows:
        cap = json.loads(r["diagnostics_json"])["capacity"]
        key = (r["people"], r["precision"])
        if r["ptq_method"] == "none":
            base[key] = r["R"]
        ptq = "none" if r["ptq_method"] == "none" else f"{r['ptq_method']} {r['fmt_post']}"
        delta = "" if r["ptq_method"] == "none" else f"{100 * (r['R'] / base[key] - 1):+.1f}%"
        out.append(
            f"| {r['people']} | {r['precision']} | {ptq} | {r['loss_post']:.3f} | {cap['p1']:.2f} | "
            f"{cap['p2']:.2f} | {r['bits']:,.0f} | {r['bits_available']:,.0f} | {r['params_paper']:,.0f} | "
            f"{r['R']:.3f} | {delta} | {r['R_total']:.3f} | {r['bits'] / r['N']:.2f} |"
        )
    return out


def saturated(base: dict[int, float], tolerance: float = 0.10) -> int | None:
    """The saturated run among ``base`` (people -> bits, no PTQ): the largest people count whose bits are
    within ``tolerance`` of the most bits stored by any run with fewer people, i.e. the model stored no
    more when offered more. None when bits still grow with people (no plateau was reached)."""
    people = sorted(base)
    best = None
    for i, n in enumerate(people[1:], 1):
        before = max(base[m] for m in people[:i])
        if before > 0 and abs(base[n] / before - 1) <= tolerance:
            best = n
    return best


def _verdicts(rows: list[dict]) -> list[str]:
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    base = {r["people"]: r["bits"] for r in fp32 if r["ptq_method"] == "none"}
    n_sat = saturated(base)
    if n_sat is None:
        return [f"- no plateau: bits per people count {base} (nothing is saturated; no verdict)"]
    sat = [r for r in fp32 if r["people"] == n_sat]
    none = next(r for r in sat if r["ptq_method"] == "none")
    share = none["bits"] / none["bits_available"]
    lines = [
        f"- saturated run (N = {n_sat}: bits within 10% of a run with fewer people; stores "
        f"{100 * share:.0f}% of the bits offered): R = {none['R']:.3f} bits/param (goal ≥ 1): "
        f"{'holds' if none['R'] >= 1 else 'does not hold'}"
    ]
    for method in ("rtn", "gptq"):
        for fmt, test, goal in (
            ("int8", lambda d: abs(d) < 0.10, "|ΔR| < 10%"),
            ("int4", lambda d: d < -0.40, "ΔR < −40%"),
        ):
            r = next((x for x in sat if x["ptq_method"] == method and x["fmt_post"] == fmt), None)
            if r is not None:
                d = r["R"] / none["R"] - 1
                lines.append(
                    f"- {method} {fmt} PTQ: ΔR = {100 * d:+.1f}% (goal {goal}): "
                    f"{'holds' if test(d) else 'does not hold'}"
                )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    ap.add_argument("--workers", type=int, default=1, help="runs trained at once (one process each)")
    ap.add_argument("--people", default="250,1000", help="comma-separated people counts (smallest first)")
    ap.add_argument("--exposures", type=int, default=100)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8, help="sequences of 128 tokens per step")
    ap.add_argument(
        "--lr", type=float, default=None, help="peak learning rate (default: scaling.train.default_lr)"
    )
    ap.add_argument("--variant", default="bioS", help="bioS (multi+permute) or bioS_simple")
    ap.add_argument(
        "--pieces", type=int, default=0, help="BPE pieces for names and values (0: whole-word vocabulary)"
    )
    ap.add_argument(
        "--qat", default="", help="also train the first people count at this precision (e.g. w4a8kv8)"
    )
    ap.add_argument("--write", type=Path, default=None, help="replace this benchmark's section in the file")
    args = ap.parse_args()
    people = [int(p) for p in args.people.split(",")]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    jobs = [(n, "fp32") for n in people] + ([(people[0], args.qat)] if args.qat else [])
    rows: list[dict] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(args.workers, len(jobs)), mp_context=ctx) as pool:
        # Largest first (balances the workers); rows collected and printed in job order.
        by_size = sorted(range(len(jobs)), key=lambda j: -jobs[j][0])
        submitted = {j: pool.submit(_run, *jobs[j], args) for j in by_size}
        futures = [submitted[j] for j in range(len(jobs))]
        for fut in futures:
            rows += fut.result()
            print("\n".join(_table(rows)[-5:]), flush=True)
    wall = time.perf_counter() - t0
    r0 = rows[0]
    machine = (
        f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs (load average "
        f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end), {args.workers} run(s) at once with "
        f"{args.threads} torch thread(s) each, "
        f"torch {torch.__version__}"
    )
    command = "python bench/capacity.py " + " ".join(sys.argv[1:])
    shape = f"d_model {args.d_model}, {args.n_layers} layers, tied embeddings, N = {r0['N']:,} non-embedding"
    pieces_note = ""
    if args.pieces:
        pieces_note = f"name parts and values as {args.pieces} BPE pieces (template words whole), "
    text = "\n".join(
        [
            SECTION,
            "",
            f"Machine: {machine}. Command: `{command}`. Wall time: {wall / 60:.1f} min.",
            "",
            f"Model: {shape}; {args.variant}(N) with {args.exposures} exposures, "
            f"{pieces_note}"
            f"lr {rows[0]['lr']:.2g}, AdamW, cosine schedule, "
            f"batch {args.batch_size} × 128 tokens, fp32 unless stated. R = bits / params counted as the "
            "paper "
            "does (non-embedding + embedding rows of tokens that occur); R_total = bits / all params; "
            "bits / N divides by the non-embedding parameters only. "
            "PTQ quantizes every hidden linear weight per output channel (scaling.ptq); the embedding stays "
            "fp32.",
            "",
            *_table(rows),
            "",
            *_verdicts(rows),
            "",
        ]
    )
    print(text)
    if args.write:
        write_section(args.write, SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
