"""Write the precision-cpu section of docs/benchmarks.md from a finished sweep and the precision-law fit.

    scalefit sweep --preset precision-cpu --out examples/precision-cpu.parquet --workers 2 --threads 1
    python bench/precision_cpu_report.py examples/precision-cpu.parquet --wall 512.3 --load "0.9-1.6" \
        --when "2026-12-03 20:10 UTC"

It runs `scalefit fit <file> --law precision` (the fitter as it stands, default options) and puts its
printed summary in the section, with the sweep's size (trunks, branches, rows), the validation loss of every
(N, D, training precision) and δ_PTQ against D, so the section is rebuilt from the file alone. Wall time and
load are measured by whoever ran the sweep and passed in (`--compare`: a baseline timed the same way).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

from fits import FitResult

HEADING = "## precision-cpu sweep (examples/precision-cpu.parquet)"


def _table(frame, fmt: str = "{:.4f}") -> list[str]:
    cols = list(frame.columns)
    label = ", ".join(str(n) for n in frame.index.names if n is not None)
    out = ["| " + " | ".join(str(c) for c in [label, *cols]) + " |"]
    out.append("|" + "---|" * (len(cols) + 1))
    for idx, row in frame.iterrows():
        cells = ["" if v != v else fmt.format(v) for v in row.to_numpy()]
        label = ", ".join(f"{x:,}" for x in idx) if isinstance(idx, tuple) else f"{idx:,}"
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def _fitted_delta(high, fit: FitResult):
    """The fitted law's δ_PTQ for the GPTQ rows of `high` (one precision, one seed), by (N, D): its
    prediction for each quantized row − its prediction for the same run unquantized."""
    import pandas as pd

    pred = pd.Series(fit.predict(high), index=high.index)
    none = high.ptq_method == "none"
    base = pred[none].set_axis(high.run_id[none])  # by run_id
    gptq = high[high.ptq_method == "gptq"]
    gptq = gptq.assign(fitted=pred[gptq.index].to_numpy() - base.loc[gptq.run_id].to_numpy())
    out = gptq.pivot_table(index=["N", "D"], columns="fmt_post", values="fitted")
    out.columns = [f"GPTQ {f} fitted" for f in out.columns]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--wall", type=float, required=True, help="sweep wall time (s), from its summary line")
    ap.add_argument("--load", required=True, help="load average while it ran, e.g. 0.9-1.6")
    ap.add_argument("--when", required=True, help="when it ran")
    ap.add_argument("--machine", default="AMD EPYC, 2 vCPUs, AVX2 only (no native bf16); torch 2.13.0 CPU")
    ap.add_argument("--command", default="scalefit sweep --preset precision-cpu --out results.parquet "
                    "--workers 2 --threads 1")  # fmt: skip
    ap.add_argument("--fit-output", type=Path, help="a saved `scalefit fit` output to print (fit run anyway)")
    ap.add_argument("--compare", default="", help="a paragraph on a baseline timed under the same conditions")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/benchmarks.md")
    args = ap.parse_args()

    import pandas as pd

    df = pd.read_parquet(args.results)
    runs = df[df.ptq_method == "none"]
    trunks = runs["parent_run_id"].replace("", pd.NA).dropna().nunique()
    per_point = runs.groupby(["N", "D", "precision"]).size()  # results (seeds) per (N, D, precision)
    points = len(per_point)
    with tempfile.TemporaryDirectory() as scratch:
        out = str(Path(scratch) / "fit.json")
        cmd = ["scalefit", "fit", str(args.results), "--law", "precision", "--out", out]
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        fit_text = args.fit_output.read_text() if args.fit_output else run.stdout
        fit = FitResult.from_json(out)
    seeds = per_point.value_counts().sort_index()
    seed_text = ", ".join(f"{count} point(s) × {k} seed(s)" for k, count in seeds.items())
    lines = [
        HEADING,
        "",
        f"Command: `{args.command}` on {args.when}, on this project's machine ({args.machine}), load average "
        f"{args.load} while it ran. **Wall time {args.wall:.1f} s** for {len(runs)} results "
        f"({runs.status.eq('ok').sum()} ok) from {trunks} WSD trunks: {points} distinct (N, D, training "
        f"precision) points, {len(df)} rows with the RTN and GPTQ rows. The file is committed as "
        "`examples/precision-cpu.parquet`.",
        "",
        f"N {runs.N.min():,}–{runs.N.max():,}, D {runs.D.min():,}–{runs.D.max():,} (D/N "
        f"{(runs.D / runs.N).min():.0f}–{(runs.D / runs.N).max():.0f}); {seed_text}"
        f". Validation: {runs.eval_fraction.mean():.1%} of each result's compute on average "
        "(`eval_fraction`).",
        "",
        *([args.compare, ""] if args.compare else []),
        "### The precision law: `scalefit fit examples/precision-cpu.parquet --law precision`",
        "",
        "```",
        fit_text.rstrip(),
        "```",
        "",
        "### Validation loss (nats/byte) by training precision, seed 0",
        "",
    ]
    seed0 = runs[runs.seed == runs.seed.min()]
    loss = seed0.pivot_table(index=["N", "D"], columns="precision", values="loss")
    lines += _table(loss)
    high = df[df.precision == df.precision[df.P_w == df.P_w.max()].iloc[0]]
    high = high[high.seed == high.seed.min()]
    ptq = high[high.ptq_method != "none"]
    delta = ptq.pivot_table(index=["N", "D"], columns=["ptq_method", "fmt_post"], values="delta_ptq")
    delta.columns = [f"{m.upper()} {f}" for m, f in delta.columns]
    delta = delta.join(_fitted_delta(high, fit), how="left")
    lines += ["", "### δ_PTQ = loss after − loss before weight PTQ, high-precision runs, seed 0", ""]
    lines += [
        "Measured, and as the fitted law has it for the GPTQ rows it fits (its δ_PTQ term: the law's "
        "prediction for the quantized row − its prediction for the same run unquantized).",
        "",
    ]
    lines += _table(delta, "{:+.4f}")
    text = "\n".join(lines)
    print(text)
    write_section(args.out, HEADING, text)


if __name__ == "__main__":
    main()
