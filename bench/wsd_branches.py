"""Does a WSD cooldown branch end where a separate cosine run of the same N and D ends?

    nice python bench/wsd_branches.py --n 2.5e4 --tokens 5e5 1e6 2e6 --seeds 0 1 2 3 --save b.json
    nice python bench/wsd_branches.py --n 2.5e4 --tokens 5e5 1e6 2e6 --seeds 0 1 2 --lr-mults 2 4 \
        --variants "wsd 20% 1-sqrt" --load b.json

For every N, seed and peak learning rate (default_lr(N) × each --lr-mults) this trains (a) one separate
cosine run per D (the recipe of scaling/train.py: 10% warmup, cosine to 10% of the peak) and (b) one
warmup-stable-decay trunk at the same peak rate with a cooldown branch ending at every D for each cooldown
variant (fraction of D, shape, final rate), all forked from that trunk (scaling.branches.train_branches).
A seed fixes the initialisation and the data order, and every run is scored on the same validation
tokens, so branch − cosine differences can also be paired by seed. It reports, per (N, D), the cosine loss's
mean and seed-to-seed standard deviation, each variant's mean difference from cosine, and each schedule at
its best learning rate. Writes the "## WSD cooldown branches vs cosine runs" section of docs/benchmarks.md;
--save/--load keep raw results so that several invocations make one report.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

HEADING = "## WSD cooldown branches vs cosine runs"
# label -> (cooldown fraction of D, shape, final learning-rate factor)
VARIANTS = {
    "wsd 5% 1-sqrt": (0.05, "1-sqrt", 0.1),
    "wsd 10% 1-sqrt": (0.1, "1-sqrt", 0.1),
    "wsd 20% 1-sqrt": (0.2, "1-sqrt", 0.1),
    "wsd 20% linear": (0.2, "linear", 0.1),
    "wsd 20% 1-sqrt to 0": (0.2, "1-sqrt", 0.0),
}


def _job(kind: str, n: float, seed: int, mult: float, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One cosine run per D, or one trunk with every variant's branches; returns result records."""
    import torch

    from scaling.branches import train_branches
    from scaling.data import load_corpus
    from scaling.train import TrainConfig, default_lr, train

    torch.set_num_threads(1)
    data = load_corpus("default")
    probe = TrainConfig(n=n, tokens=min(args.tokens), precision=args.precision)
    lr = default_lr(probe.model_config(data.vocab_size).n_params) * mult
    base = dict(n=n, precision=args.precision, batch_size=args.batch_size, seq_len=args.seq_len, seed=seed,
                eval_tokens=args.eval_tokens, n_evals=1, threads=1, lr=lr)  # fmt: skip
    out = []
    load0, start = os.getloadavg()[0], time.perf_counter()
    if kind == "cosine":
        for d in args.tokens:
            r = train(TrainConfig(tokens=d, **base), data)
            out.append({"method": "cosine", "D": r.tokens, "loss": r.val_loss, "N": r.n_params})
    else:
        warmup = 0.1 * min(args.tokens)  # the cosine warmup of the shortest run, fixed for the trunk
        cfgs, labels = [], []
        for label in args.variants:
            frac, shape, floor = VARIANTS[label]
            for d in args.tokens:
                cfgs.append(TrainConfig(tokens=d, schedule="wsd", warmup_tokens=warmup, cooldown_frac=frac,
                                        cooldown_shape=shape, min_lr_frac=floor, **base))  # fmt: skip
                labels.append(label)
        for label, r in zip(labels, train_branches(cfgs, data), strict=True):
            assert r is not None
            out.append({"method": label, "D": r.tokens, "loss": r.val_loss, "N": r.n_params})
    for rec in out:
        rec.update(seed=seed, lr_mult=mult, lr=lr, job_seconds=time.perf_counter() - start,
                   load=(load0, os.getloadavg()[0]))  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, nargs="+", default=[2.5e4])
    ap.add_argument("--tokens", type=float, nargs="+", default=[5e5, 1e6, 2e6])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument(
        "--lr-mults", type=float, nargs="+", default=[1.0], help="peak rate = default_lr(N) × this"
    )
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--eval-tokens", type=int, default=65536)
    ap.add_argument("--workers", type=int, default=1, help="processes (1 thread each)")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
    )
    ap.add_argument("--heading", default=HEADING, help="the section of --out to write (one per machine)")
    ap.add_argument("--save", type=Path, help="also write the raw results (JSON) here")
    ap.add_argument("--load", type=Path, nargs="*", default=[], help="merge raw results of earlier runs")
    ap.add_argument("--report-only", action="store_true", help="train nothing: report the --load results")
    args = ap.parse_args()
    if len(args.seeds) < 3:
        ap.error("the seed-to-seed spread needs at least 3 seeds")

    jobs = [(kind, n, seed, m) for m in args.lr_mults for n in args.n for seed in args.seeds
            for kind in ("trunk", "cosine")] if not args.report_only else []  # fmt: skip
    t0, when = time.perf_counter(), datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    loads = [os.getloadavg()[0]]
    records: list[dict[str, Any]] = []
    with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_job, *job, args): job for job in jobs}
        for f in cf.as_completed(futures):
            kind, n, seed, m = futures[f]
            recs = f.result()
            records += recs
            loads += list(recs[0]["load"])
            print(f"done {kind} N={n:g} seed={seed} lr×{m:g} in {recs[0]['job_seconds']:.0f} s "
                  f"(load {recs[0]['load'][0]:.1f} -> {recs[0]['load'][1]:.1f})", flush=True)  # fmt: skip
    runs = [{"command": " ".join(sys.argv[1:]), "when": when, "wall": time.perf_counter() - t0,
             "load": (min(loads), max(loads)), "nice": os.nice(0), "machine": machine(),
             "records": records}] if records else []  # fmt: skip
    if args.save:
        args.save.write_text(json.dumps(runs))
    for path in args.load:
        runs = json.loads(path.read_text()) + runs
    text = report(runs, args)
    print(text)
    write_section(args.out, args.heading, text)


def _stats(values: dict[int, float]) -> tuple[float, float]:
    v = list(values.values())
    return statistics.mean(v), statistics.stdev(v) if len(v) > 1 else float("nan")


def _difference_table(
    loss: dict[tuple, dict[int, float]], cells: list[tuple], methods: list[str], k: float
) -> list[str]:
    """Branch − cosine at peak rate default_lr(N) × k, paired by seed; with two or more WSD variants also
    each later variant − the first (paired), which says what the cooldown choice itself changes."""
    rate = "the default peak learning rate (default_lr(N))" if k == 1 else f"peak rate default_lr(N) × {k:g}"
    variants = methods[1:]
    extra = [f"{m} − {variants[0]}" for m in variants[1:]]
    also = " Last columns: one WSD variant − another, paired by seed." if extra else ""
    lines = [
        "",
        f"At {rate}: branch − cosine, mean over seeds (paired sd); ✗ where |mean difference| exceeds the "
        f"cosine runs' seed-to-seed standard deviation.{also}",
        "",
        "| N | D | cosine (mean ± sd) | " + " | ".join([f"{m} − cosine" for m in variants] + extra) + " |",
        "|---|---|---|" + "---|" * (len(variants) + len(extra)),
    ]

    def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float] | None:
        seeds = sorted(set(a) & set(b))
        if len(seeds) < 2:
            return None
        diffs = [a[s] - b[s] for s in seeds]
        return statistics.mean(diffs), statistics.stdev(diffs)

    for n, d in cells:
        cos = loss.get((n, d, "cosine", k), {})
        if len(cos) < 2:
            continue
        mu, sd = _stats(cos)
        row = [f"{mu:.4f} ± {sd:.4f}"]
        for m in variants:
            diff = paired(loss.get((n, d, m, k), {}), cos)
            flag = "" if diff is None or abs(diff[0]) <= sd else " ✗"
            row.append("" if diff is None else f"{diff[0]:+.4f} ({diff[1]:.4f}){flag}")
        first = loss.get((n, d, variants[0], k), {}) if variants else {}
        for m in variants[1:]:
            diff = paired(loss.get((n, d, m, k), {}), first)
            row.append("" if diff is None else f"{diff[0]:+.4f} ({diff[1]:.4f})")
        lines.append(f"| {n:,} | {d:,} | " + " | ".join(row) + " |")
    return lines


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import torch

    records = [r for run in runs for r in run["records"]]
    loss: dict[tuple, dict[int, float]] = {}  # (N, D, method, lr_mult) -> seed -> loss
    for r in records:
        loss.setdefault((r["N"], r["D"], r["method"], r["lr_mult"]), {})[r["seed"]] = r["loss"]
    cells = sorted({(r["N"], r["D"]) for r in records})
    methods = ["cosine"] + [m for m in VARIANTS if any(r["method"] == m for r in records)]
    mults = sorted({r["lr_mult"] for r in records})
    lines = [args.heading, ""]
    for run in runs:
        lo, hi = run["load"]
        lines.append(
            f"- `{'nice ' if run.get('nice', 1) else ''}python bench/wsd_branches.py {run['command']}` on "
            f"{run['when']}: wall time "
            f"{run['wall'] / 60:.1f} min, load average {lo:.1f}–{hi:.1f} while it ran (the benchmark's own "
            "workers count in it)"
        )
    lines += [
        "",
        f"Machine: {'; '.join(dict.fromkeys(run.get('machine', machine()) for run in runs))}; torch "
        f"{torch.__version__}, 1 thread per process. Byte-level models on "
        f"the default corpus, {args.precision}, batch {args.batch_size} × {args.seq_len}; seed = "
        f"initialisation and data order; every run scored on the same {args.eval_tokens:,} held-out "
        "tokens. Cosine: a separate run per D (10% warmup, cosine to 10% of the peak). WSD: one trunk per "
        "(N, seed, learning rate) at the peak rate after a warmup of 10% of the shortest D; every branch "
        "forks from it and cools down over the stated fraction of its D (to 10% of the peak, or to 0), so "
        "each is the separate WSD run of that length (scaling/branches.py; bit-identical, tested).",
    ]
    for k in mults:
        lines += _difference_table(loss, cells, methods, k)
    summary: list[str] = []
    if len(mults) > 1:
        lines += [
            "",
            "Each schedule at each peak learning rate (× default_lr(N)): mean ± sd over seeds, and the best "
            "WSD branch against the best cosine run.",
            "",
            "| N | D | "
            + " | ".join(f"{m} lr×{k:g}" for m in methods for k in mults)
            + " | best WSD − best cosine |",
            "|---|---|" + "---|" * (len(methods) * len(mults) + 1),
        ]
        for n, d in cells:
            row, best = [], {}
            for m in methods:
                for k in mults:
                    vals = loss.get((n, d, m, k), {})
                    if len(vals) < 2:
                        row.append("")
                        continue
                    mu, sd = _stats(vals)
                    row.append(f"{mu:.4f} ± {sd:.4f}")
                    kind = "cosine" if m == "cosine" else "wsd"
                    if kind not in best or mu < best[kind][0]:
                        best[kind] = (mu, sd, m, k)
            verdict = ""
            if {"cosine", "wsd"} <= set(best):
                (cm, csd, _, ck), (wm, _, wl, wk) = best["cosine"], best["wsd"]
                flag = "within" if abs(wm - cm) <= csd else "outside"
                verdict = f"{wm - cm:+.4f} ({wl} lr×{wk:g} vs cosine lr×{ck:g}; {flag} the spread {csd:.4f})"
                summary.append(f"N = {n:,}, D = {d:,}: WSD − cosine {wm - cm:+.4f}, {flag} the cosine runs' "
                               f"seed spread ({csd:.4f})")  # fmt: skip
            lines.append(f"| {n:,} | {d:,} | " + " | ".join(row) + f" | {verdict} |")
    if summary:
        lines += ["", "At each schedule's best peak rate: " + "; ".join(summary) + "."]
    lines += ["", "Tokens trained per (N, seed, learning rate) for these D's:", ""]
    for n in sorted({r["N"] for r in records}):
        ds = sorted({r["D"] for r in records if r["N"] == n})
        parts = [f"cosine (one run per D) {sum(ds):,}"]
        for m in methods[1:]:
            frac = VARIANTS[m][0]
            parts.append(f"{m} alone (one trunk) {(1 - frac) * max(ds) + frac * sum(ds):,.0f}")
        lines.append(f"- N = {n:,}: " + ", ".join(parts))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
