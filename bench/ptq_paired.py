"""How many tokens do δ_PTQ's evaluation and GPTQ's calibration need? (`[ptq] eval_tokens`, `calib_tokens`)

    python bench/ptq_paired.py [--d-model 32 96] [--tokens 1e6] [--reference 131072] \
        [--write docs/benchmarks.md]

Trains one `L2-hd16`-family model per --d-model (2 layers, 16-wide heads, fp32, WSD with a 10% 1-sqrt
cooldown, the precision-cpu preset's recipe and learning-rate rule), quantizes it with RTN and GPTQ to int3
and int4, and measures δ_PTQ = L(quantized, S) − L(model, S) on S = 4k ... 32k validation tokens against the
same difference on --reference tokens: the RMS of those errors says how small `[ptq] eval_tokens` can be
(scaling.ptq.evaluate_ptq). It also runs GPTQ on 4k ... 32k calibration tokens and scores each on the
reference tokens (`[ptq] calib_tokens`). Writes the "## Paired δ_PTQ on fewer validation tokens" section of
docs/benchmarks.md with --write.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, write_section

from scaling.data import load_corpus
from scaling.formats import parse_format
from scaling.ptq import calibration_batches, quantize_weights
from scaling.train import TrainConfig, evaluate_loss, train

HEADING = "## Paired δ_PTQ on fewer validation tokens"
SIZES = (4096, 8192, 16384, 32768)
SETTINGS = (("rtn", "int3"), ("rtn", "int4"), ("gptq", "int3"), ("gptq", "int4"))
CALIB = (4096, 8192, 16384, 32768)


def measure(d_model: int, tokens: float, reference: int, calib_tokens: int) -> list[dict]:
    """δ_PTQ of every setting on each of SIZES and on `reference` validation tokens, for one trained model."""
    cfg = TrainConfig(
        n=None, d_model=d_model, n_layers=2, n_heads=d_model // 16, d_ff=4 * d_model, precision="fp32",
        tokens=tokens, lr=6e-3 * 64 / d_model, eval_tokens=32768, n_evals=1, schedule="wsd",
        warmup_tokens=5e4, cooldown_frac=0.1, threads=1,
    )  # fmt: skip
    source = load_corpus(cfg.data)
    run = train(cfg, source)
    batches = {s: source.val_batches(cfg.batch_size, cfg.seq_len, s) for s in (*SIZES, reference)}
    base = {s: evaluate_loss(run.model, b) for s, b in batches.items()}
    calib = calibration_batches(source, cfg.seq_len, calib_tokens, cfg.batch_size, cfg.seed)
    rows = []
    for method, fmt in SETTINGS:
        q = quantize_weights(run.model, parse_format(fmt), method, calib if method == "gptq" else None)
        delta = {s: evaluate_loss(q, b) - base[s] for s, b in batches.items()}
        row = {"N": run.n_params, "loss": base[reference], "method": method, "fmt": fmt, "delta": delta}
        if method == "gptq":
            row["calib"] = {}
            for c in CALIB:  # calib_tokens itself is the copy scored above
                if c == calib_tokens:
                    row["calib"][c] = delta[reference]
                    continue
                cb = calibration_batches(source, cfg.seq_len, c, cfg.batch_size, cfg.seed)
                qc = quantize_weights(run.model, parse_format(fmt), method, cb)
                row["calib"][c] = evaluate_loss(qc, batches[reference]) - base[reference]
        rows.append(row)
    return rows


def report(rows: list[dict], reference: int, command: str, when: str, seconds: float) -> str:
    errors = " | ".join(f"error on {s:,}" for s in SIZES)
    head = f"| N | setting | δ_PTQ on {reference:,} | {errors}"
    lines = [head + " |", "|---|---|---|" + "---|" * len(SIZES)]
    for r in rows:
        errs = " | ".join(f"{r['delta'][s] - r['delta'][reference]:+.4f}" for s in SIZES)
        lines.append(f"| {r['N']:,} | {r['method']} {r['fmt']} | {r['delta'][reference]:.4f} | {errs} |")
    err = {s: [r["delta"][s] - r["delta"][reference] for r in rows] for s in SIZES}
    rms = {s: math.sqrt(sum(e * e for e in err[s]) / len(rows)) for s in SIZES}
    loss = sum(r["loss"] for r in rows) / len(rows)
    summary = ", ".join(f"{rms[s]:.4f} on {s:,} ({100 * rms[s] / loss:.2f}% of the loss)" for s in SIZES)
    calib = ["| N | setting | " + " | ".join(f"δ_PTQ, {c:,} calibration tokens" for c in CALIB) + " |",
             "|---|---|" + "---|" * len(CALIB)]  # fmt: skip
    for r in rows:
        if "calib" in r:
            cells = " | ".join(f"{r['calib'][c]:.4f}" for c in CALIB)
            calib.append(f"| {r['N']:,} | {r['method']} {r['fmt']} | {cells} |")
    return "\n".join([
        HEADING, "",
        f"- `{command}` on {when}: {seconds / 60:.1f} min",
        "",
        f"Machine: {machine()}; torch {torch.__version__}, 1 thread. Each model trains 2 layers with "
        "16-wide heads in fp32 on the default corpus (WSD, 10% 1-sqrt cooldown, the precision-cpu recipe), "
        "then is quantized per output channel (RTN; GPTQ on 16,384 calibration tokens). Error = δ_PTQ on the "
        f"column's token count minus δ_PTQ on {reference:,} tokens, both paired (the quantized copy and the "
        "model scored on the same tokens).",
        "", *lines, "",
        f"RMS error of the paired δ_PTQ: {summary}. The seeds of one size differ by 2–3% in loss "
        "(precision-cpu); `[ptq] eval_tokens` trades this error against 4 evaluation passes per branch end.",
        "", f"GPTQ by calibration tokens (training-split windows; δ_PTQ on {reference:,} validation tokens):",
        "", *calib,
    ])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-model", type=int, nargs="+", default=[32, 96])
    ap.add_argument("--tokens", type=float, default=1e6)
    ap.add_argument("--reference", type=int, default=131072)
    ap.add_argument("--calib-tokens", type=int, default=16384)
    ap.add_argument("--write", type=Path, help="replace this section of this markdown file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    start, when = time.perf_counter(), datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [r for d in args.d_model for r in measure(d, args.tokens, args.reference, args.calib_tokens)]
    command = "python bench/ptq_paired.py " + " ".join(sys.argv[1:])
    text = report(rows, args.reference, command.strip(), when, time.perf_counter() - start)
    print(text)
    if args.write:
        write_section(args.write, HEADING, text)


if __name__ == "__main__":
    main()
