"""Training throughput and model FLOP utilisation (MFU) of scalefit's engine on this machine.

For models of ~0.3M, 1M and 5M non-embedding parameters it measures, in one run:
- the machine's matmul peak in fp32 and bf16 (large square matmuls, same thread count);
- tokens/s of `scaling.train.train` in bf16 autocast, fp32, and with w4a8kv8 fake quantization;
- tokens/s of a plain reference training step of the same architecture written the simplest way
  (fp32, explicit attention with a mask, no autocast), as a sanity baseline;
- MFU = (training FLOPs per token × tokens/s) / peak, FLOPs per token = 6·N + 6·n_layers·seq_len·d_model
  (scaling.flops.training_flops), against the peak of the dtype the matmuls run in.

Usage: python bench/train_throughput.py [--threads 2] [--steps 30] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _report import write_section  # bench/_report.py (scripts run as `python bench/...`)
from torch import nn

from scaling.data import load_corpus
from scaling.flops import training_flops
from scaling.model import ModelConfig
from scaling.train import TrainConfig, train

SECTION = "## Training throughput (bench/train_throughput.py)"


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Achieved FLOP/s of an n×n @ n×n matmul in `dtype` (best of `repeats`)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


class NaiveGPT(nn.Module):
    """The same architecture (RMSNorm, RoPE, causal attention, GELU MLP) written the simplest way, in fp32."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, self.h, self.T = cfg.d_model, cfg.n_heads, cfg.seq_len
        self.wte = nn.Embedding(cfg.vocab_size, d)
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                dict(
                    qkv=nn.Linear(d, 3 * d, bias=False),
                    proj=nn.Linear(d, d, bias=False),
                    up=nn.Linear(d, cfg.d_ff, bias=False),
                    down=nn.Linear(cfg.d_ff, d, bias=False),
                    n1=nn.RMSNorm(d),
                    n2=nn.RMSNorm(d),
                )
            )
            for _ in range(cfg.n_layers)
        )
        self.norm, self.head = nn.RMSNorm(d), nn.Linear(d, cfg.vocab_size, bias=False)
        hd = d // cfg.n_heads
        ang = torch.outer(torch.arange(cfg.seq_len).float(), 10_000 ** (-torch.arange(0, hd, 2).float() / hd))
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())

    def rope(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x1 * self.cos - x2 * self.sin, x1 * self.sin + x2 * self.cos), -1).flatten(-2)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        x = self.wte(idx)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        for m in self.layers:
            q, k, v = m["qkv"](m["n1"](x)).view(B, T, 3, self.h, -1).permute(2, 0, 3, 1, 4)
            q, k = self.rope(q), self.rope(k)
            att = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(mask, -math.inf).softmax(-1)
            x = x + m["proj"]((att @ v).transpose(1, 2).reshape(B, T, -1))
            x = x + m["down"](F.gelu(m["up"](m["n2"](x))))
        return self.head(self.norm(x))


def naive_tokens_per_s(cfg: ModelConfig, data, steps: int, batch: int) -> float:
    torch.manual_seed(0)
    model = NaiveGPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    times = []
    for step in range(steps):
        b = data.train_batch(step, batch, cfg.seq_len, 0)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(b[:, :-1]).flatten(0, 1), b[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    steady = sorted(times[2:])[: max(1, len(times) // 2)]  # skip warm-up, take the faster half (less noise)
    return batch * cfg.seq_len / (sum(steady) / len(steady))


def engine_tokens_per_s(
    n: float, precision: str, steps: int, batch: int, seq_len: int, threads: int
) -> tuple:
    cfg = TrainConfig(
        n=n,
        tokens=steps * batch * seq_len,
        precision=precision,
        batch_size=batch,
        seq_len=seq_len,
        eval_tokens=seq_len * batch,
        n_evals=1,
        threads=threads,
    )
    result = train(cfg)
    return result, result.tokens_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--sizes", type=float, nargs="+", default=[3e5, 1e6, 5e6])
    parser.add_argument(
        "--write", type=Path, default=None, help="append/replace the section in this markdown file"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_corpus("default")
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    lines = [
        SECTION,
        "",
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, torch "
        f"{torch.__version__}. Command: `python bench/train_throughput.py --threads {args.threads} "
        f"--steps {args.steps}` (batch {args.batch} × seq_len {args.seq_len}).",
        "",
        f"Measured matmul peak (2048² matmul, same run): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s.",
        "",
        "| N (non-emb.) | shape d×L | reference fp32 tok/s | engine fp32 tok/s | engine bf16 tok/s | "
        "MFU bf16 (vs bf16 peak) | w4a8kv8 tok/s | fake-quant overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in args.sizes:
        r16, bf16 = engine_tokens_per_s(n, "bf16", args.steps, args.batch, args.seq_len, args.threads)
        _, fp32 = engine_tokens_per_s(n, "fp32", args.steps, args.batch, args.seq_len, args.threads)
        _, quant = engine_tokens_per_s(n, "w4a8kv8", args.steps, args.batch, args.seq_len, args.threads)
        mc = r16.model.config
        ref = naive_tokens_per_s(ModelConfig(**{**mc.__dict__}), data, args.steps, args.batch)
        flops_per_token = training_flops(r16.n_params, 1, mc.n_layers, mc.d_model, mc.seq_len)
        mfu = flops_per_token * bf16 / peak["bf16"]
        lines.append(
            f"| {r16.n_params:,} | {mc.d_model}×{mc.n_layers} | {ref:,.0f} | {fp32:,.0f} | {bf16:,.0f} | "
            f"{mfu:.1%} | {quant:,.0f} | {bf16 / quant - 1:+.1%} |"
        )
        print(lines[-1], flush=True)
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, SECTION, text)


if __name__ == "__main__":
    main()
