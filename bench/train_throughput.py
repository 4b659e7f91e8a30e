"""Training throughput and model FLOP utilisation (MFU) of scalefit's engine on this machine.

For models of ~0.3M, 1M and 5M non-embedding parameters it measures, in one run:
- the machine's matmul peak in fp32 and bf16 (large square matmuls, same thread count);
- tokens/s of `scaling.train.train` in fp32, in bf16 autocast (only a few steps where bf16 matmuls are
  emulated, as on AVX2-only CPUs), and with w4a8kv8 fake quantization (computing in the same dtype as the
  unquantized run it is compared with: bf16 where native, else fp32);
- tokens/s of a plain reference training step of the same architecture written the simplest way
  (fp32, explicit attention with a mask, no autocast), as a sanity baseline;
- MFU = (training FLOPs per token × tokens/s) / peak, FLOPs per token = 6·N + 6·n_layers·seq_len·d_model
  (scaling.flops.training_flops), against the measured peak of the dtype the matmuls run in.

Variants are measured round-robin and the best of `--rounds` is reported, so a load that changes during the
run does not favour one variant. Usage:
python bench/train_throughput.py [--threads 2] [--steps 12] [--rounds 3] [--write docs/benchmarks.md]
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
from scaling.train import TrainConfig, native_bf16, train

SECTION = "## Training throughput (bench/train_throughput.py)"


def matmul_peak(dtype: torch.dtype, n: int = 2048, budget_s: float = 2.0) -> float:
    """Achieved FLOP/s of an n×n @ n×n matmul in `dtype`: best of repeats within ~budget_s (at least 2)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    times: list[float] = []
    while len(times) < 2 or sum(times) < budget_s:
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times[1:])  # the first call includes one-off setup


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
    """Timed exactly as `scaling.train.train` times itself: every step, batch fetch included."""
    torch.manual_seed(0)
    model = NaiveGPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        b = data.train_batch(step, batch, cfg.seq_len, 0)
        loss = F.cross_entropy(model(b[:, :-1]).flatten(0, 1), b[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return batch * cfg.seq_len * steps / sum(times)


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
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats; the best is reported")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--sizes", type=float, nargs="+", default=[3e5, 1e6, 5e6])
    parser.add_argument(
        "--write", type=Path, default=None, help="append/replace the section in this markdown file"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_corpus("default")
    bf16_n = 2048 if native_bf16() else 1024  # an emulated 2048² bf16 matmul takes ~40 s
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16, n=bf16_n)}
    fast = "bf16" if native_bf16() else "fp32"  # the dtype training should use on this machine
    lines = [
        SECTION,
        "",
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} torch thread(s), torch "
        f"{torch.__version__}, native bf16 matmuls: {native_bf16()}. "
        f"Command: `python bench/train_throughput.py --threads {args.threads} --steps {args.steps} "
        f"--rounds {args.rounds}` "
        f"(batch {args.batch} × seq_len {args.seq_len}).",
        "",
        f"Measured matmul peak (same run; 2048² fp32, {bf16_n}² bf16): "
        f"fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s.",
        "",
        f"| N (non-emb.) | shape d×L | reference fp32 tok/s | engine fp32 tok/s | engine bf16 tok/s | "
        f"MFU {fast} (vs {fast} peak) | w4a8kv8@{fast} tok/s | fake-quant overhead vs {fast} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in args.sizes:
        # round-robin, best of `rounds`: a shared machine's load then biases no variant against another
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            r32, tps = engine_tokens_per_s(n, "fp32", args.steps, args.batch, args.seq_len, args.threads)
            best["fp32"] = max(best.get("fp32", 0.0), tps)
            _, tps = engine_tokens_per_s(
                n, f"w4a8kv8@{fast}", args.steps, args.batch, args.seq_len, args.threads
            )
            best["quant"] = max(best.get("quant", 0.0), tps)
            if fast == "bf16" or "bf16" not in best:  # emulated bf16: one short measurement shows the cost
                steps = args.steps if fast == "bf16" else 3
                _, tps = engine_tokens_per_s(n, "bf16", steps, args.batch, args.seq_len, args.threads)
                best["bf16"] = max(best.get("bf16", 0.0), tps)
            mc = r32.model.config
            ref = naive_tokens_per_s(mc, data, args.steps, args.batch)
            best["ref"] = max(best.get("ref", 0.0), ref)
        fp32, bf16, quant, ref = best["fp32"], best["bf16"], best["quant"], best["ref"]
        base = bf16 if fast == "bf16" else fp32
        flops_per_token = training_flops(r32.n_params, 1, mc.n_layers, mc.d_model, mc.seq_len)
        mfu = flops_per_token * base / peak[fast]
        lines.append(
            f"| {r32.n_params:,} | {mc.d_model}×{mc.n_layers} | {ref:,.0f} | {fp32:,.0f} | {bf16:,.0f} | "
            f"{mfu:.1%} | {quant:,.0f} | {base / quant - 1:+.1%} |"
        )
        print(lines[-1], flush=True)
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, SECTION, text)


if __name__ == "__main__":
    main()
