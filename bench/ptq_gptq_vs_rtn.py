"""GPTQ vs round-to-nearest weight PTQ on a small model trained on the default corpus.

Trains one model with `scaling.train.train`, then for each post-training format reports
- per layer: the relative reconstruction error ‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖² on the calibration inputs X
  (through the already-quantized earlier layers) of RTN and of GPTQ (`scaling.ptq.ptq_quantize`);
- the validation loss before PTQ and after it with RTN, GPTQ and GPTQ with act_order, and δ_PTQ.

Prints markdown (paste into docs/ptq.md). Usage:
    python bench/ptq_gptq_vs_rtn.py [--d-model 64] [--n-layers 2] [--tokens 300000] [--formats int8,int4,...]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from scaling.data import load_corpus
from scaling.ptq import (
    calibration_batches,
    effective_weight,
    layer_hessians,
    ptq_quantize,
    reconstruction_error,
)
from scaling.quant import fake_quant
from scaling.train import TrainConfig, evaluate_loss, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--tokens", type=float, default=300_000)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--calib-tokens", type=int, default=32_768)
    ap.add_argument("--eval-tokens", type=int, default=65_536)
    ap.add_argument("--formats", default="int8,int4,int3,int2,fp4-e2m1")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    data = load_corpus("default")
    cfg = TrainConfig(
        n=None,
        d_model=args.d_model,
        n_layers=args.n_layers,
        tokens=args.tokens,
        seq_len=args.seq_len,
        batch_size=32,
        eval_tokens=args.eval_tokens,
        n_evals=1,
        threads=args.threads,
    )
    t0 = time.perf_counter()
    run = train(cfg, data)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s)"
    )
    print(
        f"model: d_model={args.d_model}, n_layers={args.n_layers}, N={run.n_params:,} non-embedding, "
        f"D={run.tokens:,} tokens of the default corpus, bf16 training, {time.perf_counter() - t0:.0f} s"
    )
    val = data.val_batches(32, args.seq_len, args.eval_tokens)
    calib = calibration_batches(data, args.seq_len, n_tokens=args.calib_tokens)
    base = evaluate_loss(run.model, val)
    print(
        f"calibration: {args.calib_tokens:,} training-split tokens; validation: {args.eval_tokens:,} tokens; "
        f"loss before PTQ {base:.4f} nats/token\n"
    )

    rows = []
    for fmt in args.formats.split(","):
        t0 = time.perf_counter()
        gptq = ptq_quantize(run.model, fmt, "gptq", calib)
        t_gptq = time.perf_counter() - t0
        act = ptq_quantize(run.model, fmt, "gptq", calib, act_order=True)
        rtn = ptq_quantize(run.model, fmt, "rtn")
        losses = [evaluate_loss(r.model, val) for r in (rtn, gptq, act)]
        rows.append((fmt, losses, t_gptq))
        held_out = layer_hessians(
            gptq.model, val
        )  # validation inputs through GPTQ's quantized earlier layers
        modules, qmodules = dict(run.model.named_modules()), dict(gptq.model.named_modules())
        print(f"### {fmt}: relative reconstruction error ‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖² per layer\n")
        print("| layer | shape | RTN (calib) | GPTQ (calib) | GPTQ / RTN (calib) | GPTQ / RTN (held-out) |")
        print("|---|---|---|---|---|---|")
        for layer in gptq.layers:
            w, h = effective_weight(modules[layer.name]), held_out[layer.name]
            rtn_val = reconstruction_error(w, fake_quant(w, gptq.fmt, axis=0), h)
            gptq_val = reconstruction_error(w, qmodules[layer.name].weight, h)
            print(
                f"| {layer.name} | {layer.shape[0]}×{layer.shape[1]} | {layer.rtn_rel:.3e} | "
                f"{layer.gptq_rel:.3e} | {layer.gptq_err / layer.rtn_err:.3f} | {gptq_val / rtn_val:.3f} |"
            )
        print()
    print("### validation loss after weight PTQ (nats/token; δ_PTQ = loss after − loss before)\n")
    print("| format | RTN | GPTQ | GPTQ act_order | δ RTN | δ GPTQ | δ GPTQ act_order | GPTQ time |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt, (lr, lg, la), t in rows:
        print(
            f"| {fmt} | {lr:.4f} | {lg:.4f} | {la:.4f} | {lr - base:+.4f} | {lg - base:+.4f} | "
            f"{la - base:+.4f} | {t:.1f} s |"
        )


if __name__ == "__main__":
    main()
