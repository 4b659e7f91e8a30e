"""Memory a training run needs, estimated before anything is allocated, and the memory this machine has.

A run of a GPT with P parameters in all (`ModelConfig.n_params_total`, embedding and head included),
N_h of them in the hidden `QLinear` weights, L layers of width d, MLP width f, H heads, vocabulary V,
trained on batches of n = B·T tokens, holds at its peak (the backward pass) about

    M = 4·P                      fp32 master weights
      + 4·P                      fp32 gradients
      + 4·s·P                    optimizer state: AdamW keeps two fp32 moments (s = 2; Loshchilov & Hutter
                                 2019); Muon one momentum buffer for the hidden weights (s = 1 on N_h)
      + 4·N_h·[w quantized]      the fake-quantized weight copies autograd keeps
      + 4·n·[L·(c_d·d + c_f·f + H) + 4·V + 2·d]     activations kept for the backward pass

bytes. Per layer and token the forward pass keeps the residual stream, the two RMSNorm inputs and outputs,
q, k, v before and after RoPE, the attention output and its reshaped copy and the projection's input
(c_d = ACT_PER_D = 20 d-wide tensors, counted with the temporaries of RoPE and RMSNorm; plus 2·d with
quantized activations or KV cache: their fake-quantized copies), the MLP's hidden
activations (c_f = 2 for GELU: the up projection's output and GELU's output; 4 for SwiGLU: the gated pair,
SiLU's output and the product) and the attention's log-sum-exp (one per head: the CPU and CUDA kernels of
`scaled_dot_product_attention` never materialise the T×T matrix). The head adds the fp32 logits, their
log-softmax, the logits' gradient and a temporary of the loss (4·V) and the final norm (2·d). Everything is
counted at 4 bytes: under bf16 autocast the matmul outputs take 2, so the estimate is an upper bound there.

Checked against the peak resident memory (VmHWM) two real training steps add to a warmed-up process
(`tests/test_memory.py` asserts a factor 1.5 either way). Measured estimate / peak on the AMD EPYC (AVX2)
machine, 1 thread, torch 2.13: N = 1e6, 32×128 tokens 0.97; 1e7, 16×256 1.10; 3e7, 8×128 1.15; 1e6, 64×512
1.05; 5e6 SwiGLU + Muon 1.02; 5e6 w4a8kv8 1.04; 2e6 with V = 32000 1.05; 1e8, 2×64 1.01 (fp32); 1e6 under
bf16 autocast 1.41 (the upper bound above). Not counted: the Python/torch process itself (a few hundred
MB, already resident when a run starts) and the token data (`load_corpus` keeps it once per process).

`available_bytes()` is what this machine can give a new allocation: `MemAvailable` of /proc/meminfo (the
kernel's estimate of memory available without swapping), lowered to the cgroup's limit minus its usage
when the process runs in a memory-limited container; `os.sysconf` where /proc is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scaling.errors import UserError

if TYPE_CHECKING:
    from scaling.model import ModelConfig

__all__ = ["MemoryEstimate", "available_bytes", "check_fits", "estimate_training", "format_bytes"]

BYTES = 4  # fp32: master weights, gradients, optimizer state; activations counted at fp32 too
ACT_PER_D = 20  # d-wide fp32 tensors kept per layer and token (see the module docstring)
HEAD_PER_V = 4  # logits, their log-softmax, the logits' gradient and a temporary of the loss
SKIP_ENV = "SCALEFIT_SKIP_MEMORY_CHECK"  # "1": do not refuse runs (the estimate is then only reported)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training run needs, by part (see the module docstring for the formula)."""

    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def parts(self) -> dict[str, int]:
        return {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
        }

    def breakdown(self) -> str:
        """`weights 1.0 TiB, gradients 1.0 TiB, optimizer 2.0 TiB, activations 12 GiB`."""
        return ", ".join(f"{k} {format_bytes(v)}" for k, v in self.parts().items())


def estimate_training(config: ModelConfig, batch_size: int, optimizer: str = "adamw") -> MemoryEstimate:
    """The memory one training step of a model of this shape needs (formula in the module docstring)."""
    d, f, L, H, V = config.d_model, config.d_ff, config.n_layers, config.n_heads, config.vocab_size
    P = config.n_params_total
    hidden = L * (4 * d * d + (3 if config.mlp == "swiglu" else 2) * d * f)  # the QLinear weights
    spec = config.precision
    state = 2 * P if optimizer == "adamw" else hidden + 2 * (P - hidden)  # Muon: one buffer on the hidden
    per_layer = (ACT_PER_D + (2 if spec.a is not None or spec.kv is not None else 0)) * d
    per_layer += (4 if config.mlp == "swiglu" else 2) * f + H
    tokens = batch_size * config.seq_len
    activations = tokens * (L * per_layer + HEAD_PER_V * V + 2 * d)
    return MemoryEstimate(
        weights=BYTES * P,
        gradients=BYTES * P,
        optimizer=BYTES * state + (BYTES * hidden if spec.w is not None else 0),
        activations=BYTES * activations,
    )


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`),
    None when unlimited or unknown."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            base = f"/sys/fs/cgroup{path}"
            limit, usage = _read_int(f"{base}/memory.max"), _read_int(f"{base}/memory.current")
        elif "memory" in controllers.split(","):
            base = f"/sys/fs/cgroup/memory{path}"
            limit = _read_int(f"{base}/memory.limit_in_bytes")
            usage = _read_int(f"{base}/memory.usage_in_bytes")
        else:
            continue
        if limit is not None and usage is not None and limit < 1 << 60:  # "max" / 2^63 mean no limit
            return max(0, limit - usage)
    return None


def available_bytes() -> tuple[int, str]:
    """(bytes available to a new allocation, where that number comes from), see the module docstring."""
    found = _meminfo_available()
    source = "MemAvailable"
    if found is None:
        found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        source = "free physical memory"
    room = _cgroup_room()
    if room is not None and room < found:
        return room, "the cgroup memory limit"
    return found, source


def gpu_available_bytes(device: object) -> tuple[int, str]:
    """Free memory of a CUDA device (torch.cuda.mem_get_info)."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)  # type: ignore[arg-type]
    return int(free), f"free on {torch.cuda.get_device_name(device)}"  # type: ignore[arg-type]


def check_fits(
    need: int,
    what: str,
    *,
    detail: str = "",
    hint: str = "",
    available: tuple[int, str] | None = None,
) -> None:
    """Refuse `what` (UserError, one line with both numbers) when it needs more memory than is available.

    `need`: bytes (e.g. `MemoryEstimate.total`); `detail`: its breakdown; `hint`: what to change;
    `available`: (bytes, source), default `available_bytes()`. SCALEFIT_SKIP_MEMORY_CHECK=1 turns the
    refusal off (for a machine where the estimate is known to be wrong).
    """
    if os.environ.get(SKIP_ENV) == "1":
        return
    have, source = available if available is not None else available_bytes()
    if need > have:
        raise UserError(
            f"{what} needs an estimated {format_bytes(need)} of memory{f' ({detail})' if detail else ''} "
            f"but this machine has {format_bytes(have)} available ({source}){'; ' + hint if hint else ''}"
        )


def format_bytes(n: float) -> str:
    """Bytes in binary units with 3 significant digits: `1.5 GiB`, `812 MiB`."""
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"
