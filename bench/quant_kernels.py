"""Fake-quant kernels on a GPU: bandwidth vs device copy, speed-up over torch, and training step overhead.

Measures, in one run on a CUDA device:
- device-to-device copy bandwidth (fp32 `copy_`, 2 bytes moved per byte of tensor): the ceiling;
- for every format and for per-tensor (activations, [16384, 4096]) and per-channel (weights, [4096, 4096])
  scaling, in fp32 and bf16: time of the fused Triton kernel (`scaling.kernels.triton_fake_quant`) and of
  the torch reference (`scaling.quant.fake_quant_reference` + cast), the kernel's bandwidth counting one
  read and one write per element (the minimum any implementation needs) as a fraction of copy bandwidth,
  the speed-up, and whether the two outputs are bit-identical (they must be);
- end-to-end training step time (forward, backward, AdamW) of a ~20M-parameter model in bf16 autocast and
  in w4a8kv8 with the Triton kernels and with the torch reference. Goals: kernels >= 70% of copy
  bandwidth; w4a8kv8 step time <= 1.10 x bf16.
Timing: `triton.testing.do_bench` (median, L2 flushed between repetitions); on the CPU best of 15 calls.

Without a CUDA device the script prints why and exits with code 2 (nothing measured), unless `--cpu` is
given: then it times the torch reference against CPU copy bandwidth (the path every CPU sweep uses) and a
small model's training step with and without fake quantization (`--steps 0` skips the latter).

Usage: python bench/quant_kernels.py [--cpu] [--threads 1] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _report import write_section  # bench/_report.py (scripts run as `python bench/...`)

from scaling.formats import FLOAT_FORMATS, IntFormat, NumberFormat, PrecisionSpec
from scaling.quant import fake_quant_reference

SECTION = "## Quant kernels (bench/quant_kernels.py)"
FORMATS: list[NumberFormat] = [IntFormat(4), IntFormat(8), *FLOAT_FORMATS.values()]


def timer(device: str) -> Callable[[Callable[[], object]], float]:
    """Seconds per call of a function on `device`: median on CUDA, best of 15 on the (shared) CPU."""
    if device == "cuda":
        import triton.testing

        return lambda fn: triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median") / 1e3

    def cpu_time(fn: Callable[[], object], reps: int = 15) -> float:
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)  # other jobs on the machine only ever add time

    return cpu_time


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    nan = a.isnan()
    if not torch.equal(nan, b.isnan()):
        return False
    bits = torch.int16 if a.element_size() == 2 else torch.int32
    return torch.equal(a[~nan].view(bits), b[~nan].view(bits))


def kernel_rows(device: str, shapes: dict[str, tuple[int, int]], dtypes: list[torch.dtype]) -> list[str]:
    """Markdown rows: format, scaling, dtype, times, bandwidth and speed-up (and exactness on CUDA)."""
    bench = timer(device)
    n_copy = max(r * c for r, c in shapes.values())
    src = torch.randn(n_copy, device=device)
    dst = torch.empty_like(src)
    copy_bw = 2 * src.numel() * 4 / bench(lambda: dst.copy_(src))
    rows = [f"Copy bandwidth (fp32 `copy_`, {n_copy:,} elements): **{copy_bw / 1e9:.1f} GB/s**", ""]
    if device == "cuda":
        from scaling.kernels import triton_fake_quant

        rows += [
            "| format | scaling | dtype | shape | Triton ms | GB/s (1 read + 1 write) | % copy | torch ms "
            "| speed-up | bit-exact |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    else:
        rows += [
            "| format | scaling | dtype | shape | torch ms | GB/s (1 read + 1 write) | % copy |",
            "|---|---|---|---|---|---|---|",
        ]
    for dtype in dtypes:
        for scaling, (r, c) in shapes.items():
            x = torch.randn(r, c, device=device).to(dtype)
            axis = 0 if scaling == "per-channel" else None
            useful_bytes = 2 * x.numel() * x.element_size()
            for fmt in FORMATS:

                def ref(x=x, fmt=fmt, axis=axis):
                    return fake_quant_reference(x, fmt, axis)[0].to(x.dtype)

                t_ref = bench(ref)
                dt = str(dtype).removeprefix("torch.")
                if device == "cuda":
                    t_k = bench(lambda x=x, fmt=fmt, axis=axis: triton_fake_quant(x, fmt, axis))
                    exact = bitwise_equal(triton_fake_quant(x, fmt, axis)[0], ref())
                    bw = useful_bytes / t_k
                    rows.append(
                        f"| {fmt.name} | {scaling} | {dt} | {r}×{c} | {t_k * 1e3:.3f} | {bw / 1e9:.1f} | "
                        f"{bw / copy_bw:.0%} | {t_ref * 1e3:.3f} | {t_ref / t_k:.1f}× | "
                        f"{'yes' if exact else 'NO'} |"
                    )
                else:
                    bw = useful_bytes / t_ref
                    rows.append(
                        f"| {fmt.name} | {scaling} | {dt} | {r}×{c} | {t_ref * 1e3:.2f} | {bw / 1e9:.2f} | "
                        f"{bw / copy_bw:.0%} |"
                    )
                print(rows[-1], flush=True)
    return rows


def step_time(
    device: str, n: float, precision: str, backend: str, batch: int, seq_len: int, steps: int
) -> float:
    """Median seconds of one training step (forward, backward, clip, AdamW) of scalefit's model."""
    from scaling.kernels import use_backend
    from scaling.losses import token_loss
    from scaling.model import GPT, ModelConfig
    from scaling.train import TrainConfig, autocast_for, build_optimizers

    torch.manual_seed(0)
    cfg = ModelConfig.for_params(n, vocab_size=256, seq_len=seq_len, precision=PrecisionSpec.parse(precision))
    model = GPT(cfg).to(device)
    opts = build_optimizers(model, TrainConfig(precision=precision, seq_len=seq_len, batch_size=batch), 1e-3)
    data = torch.randint(0, 256, (batch, seq_len + 1), device=device)
    x, y = data[:, :-1], data[:, 1:]

    def step() -> None:
        with autocast_for(model):
            loss = token_loss("ce", model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for opt in opts:
            opt.step()
            opt.zero_grad(set_to_none=True)

    times = []
    with use_backend(backend):
        for i in range(steps + 3):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def step_rows(device: str, n: float, batch: int, seq_len: int, steps: int) -> list[str]:
    cases = [("bf16", "torch"), ("w4a8kv8", "torch")]
    if device == "cuda":
        cases.append(("w4a8kv8", "triton"))
    rows = [
        f"Training step, N ≈ {n:.0e}, batch {batch} × {seq_len} tokens, median of {steps} steps:",
        "",
        "| precision | fake-quant backend | step ms | vs bf16 |",
        "|---|---|---|---|",
    ]
    base = None
    for precision, backend in cases:
        t = step_time(device, n, precision, backend, batch, seq_len, steps)
        base = base or t
        rows.append(
            f"| {precision} | {backend if precision != 'bf16' else '—'} | {t * 1e3:.1f} | {t / base:.2f}× |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="no GPU: time the torch reference on the CPU")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (with --cpu)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per case (0: skip)")
    parser.add_argument(
        "--write", type=Path, default=None, help="replace this benchmark's section in the file"
    )
    args = parser.parse_args()
    if torch.cuda.is_available():
        device = "cuda"
        machine = f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
        shapes = {"per-tensor": (16384, 4096), "per-channel": (4096, 4096)}
        steps = dict(n=2e7, batch=32, seq_len=512)
    elif args.cpu:
        device = "cpu"
        torch.set_num_threads(args.threads)
        load = os.getloadavg()[0]
        machine = (
            f"{platform.machine()} CPU ({os.cpu_count()} cores, load average {load:.1f} while measuring), "
            f"{args.threads} thread(s), torch {torch.__version__}"
        )
        shapes = {"per-tensor": (4096, 512), "per-channel": (1024, 512)}
        steps = dict(n=1e6, batch=16, seq_len=128)
    else:
        print(
            "quant_kernels: no CUDA device (torch.cuda.is_available() is False). This benchmark times the "
            "Triton kernels on a GPU; run it on a CUDA machine, or pass --cpu to time the torch reference "
            "on this CPU. Nothing was measured.",
            file=sys.stderr,
        )
        return 2
    command = "python bench/quant_kernels.py" + (" --cpu" if device == "cpu" else "")
    if device == "cpu":
        command += f" --threads {args.threads}"
    command += f" --steps {args.steps}" + (f" --write {args.write}" if args.write else "")
    lines = [SECTION, "", f"Machine: {machine}. Command: `{command}`.", ""]
    if device == "cpu":
        lines += [
            "No GPU here, so these are the torch reference's numbers on the CPU (the path CPU sweeps use: "
            "one temporary, updated in place), best of 15 calls; the machine is shared with other jobs "
            "(see the load average), so treat them as rough. The Triton kernels are not measured: run "
            "`python bench/quant_kernels.py --write docs/benchmarks.md` on a CUDA machine for them "
            "(goals: >= 70% of copy bandwidth, w4a8kv8 step <= 1.10 x bf16).",
            "",
        ]
    lines += kernel_rows(device, shapes, [torch.float32, torch.bfloat16])
    if args.steps > 0:
        lines += ["", *step_rows(device, steps=args.steps, **steps)]
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
