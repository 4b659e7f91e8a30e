"""Which process × thread layout runs a CPU sweep fastest? Times the same runs under each layout.

    python bench/sweep_layout.py --n 2.5e4 --tokens 2e5 --runs 4 --precision bf16 --layouts 1x2 2x1

Each layout runs the same `--runs` runs (seeds 0..runs-1, so they are distinct) through the real sweep
driver and local executor into a fresh store, and reports wall time and runs per minute, with the load
average before each layout (numbers are only comparable on an otherwise quiet machine). Writes the table
to the "## Sweep executor layout" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=2.5e4)
    ap.add_argument("--tokens", type=float, default=2e5)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--layouts", nargs="+", default=["1x2", "2x1"], help="WORKERSxTHREADS")
    args = ap.parse_args()

    from sweeps.driver import run_sweep
    from sweeps.executors import LocalExecutor
    from sweeps.plan import plan
    from sweeps.runner import execute
    from sweeps.spec import parse_spec
    from sweeps.store import RunStore

    spec = parse_spec({
        "sweep": {"name": "layout-bench"},
        "grid": {"n": [args.n], "tokens": [args.tokens]},
        "axes": {"precision": [args.precision], "seed": list(range(args.runs))},
        "train": {"batch_size": 32, "seq_len": 128, "eval_tokens": 16384, "n_evals": 2},
        "ptq": {"methods": ["rtn"], "formats": ["int4"]},
    })  # fmt: skip
    runs = plan(spec)
    lines = [
        "## Sweep executor layout",
        "",
        f"`python bench/sweep_layout.py {' '.join(sys.argv[1:])}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs: {len(runs)} runs of N={runs[0].n_params} D={runs[0].tokens} "
        f"{args.precision} "
        "(batch 32 × 128, RTN int4 PTQ), through the sweep driver and local executor.",
        "",
        "| layout (workers × threads) | wall time (s) | runs/min | load avg before |",
        "|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for layout in args.layouts:
        workers, threads = (int(x) for x in layout.split("x"))
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore(Path(tmp) / "r.parquet")
            start = time.perf_counter()
            s = run_sweep(runs, store, LocalExecutor(execute, workers, threads), show_progress=False)
            wall = time.perf_counter() - start
        assert s.complete, s.failures
        lines.append(f"| {workers} × {threads} | {wall:.1f} | {60 * len(runs) / wall:.2f} | {load:.1f} |")
        print(lines[-1], flush=True)
    write_section(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md", lines[0], "\n".join(lines))


if __name__ == "__main__":
    main()
