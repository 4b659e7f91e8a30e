"""The training engine: `train(TrainConfig) -> RunResult`.

Recipe (Kumar et al. 2024, "Scaling Laws for Precision", following OLMo): AdamW with β = (0.9, 0.95) and
weight decay 0.1, cosine decay to 10% of the peak learning rate after a 10% linear warmup, gradient clipping
at 1.0. Alternatively `torch.optim.Muon` for the 2-D hidden weights with AdamW for embeddings, head and
norm gains; Muon's update is rescaled by 0.2·sqrt(max(A, B)) to match AdamW's update RMS, so both share one
learning rate (Liu et al. 2025, "Muon is Scalable for LLM Training", the Moonlight recipe).

Numerics: fp32 master weights and optimizer state; matmuls in bf16 autocast unless the precision spec is
`fp32`; RoPE angles, RMSNorm, logits and the loss in fp32 (see scaling/model.py and scaling/losses.py).
A run whose loss turns NaN/inf stops early with status "diverged" and never raises.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from scaling.data import TokenSource, load_corpus
from scaling.errors import UserError
from scaling.flops import precision_cost, training_flops
from scaling.formats import PrecisionSpec
from scaling.losses import LOSSES, softmax_collapse_fraction, token_loss
from scaling.model import GPT, ModelConfig, QLinear, default_d_ff

OPTIMIZERS = ("adamw", "muon")


def resolve_device(name: str) -> torch.device:
    """ "auto" → the current CUDA device when one is present, else the CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but no CUDA device is available")
    return torch.device(name)


def native_bf16(device: torch.device | None = None) -> bool:
    """Whether bf16 matmuls run natively on `device` (default: the "auto" device): CUDA with bf16, or a CPU
    with AVX-512-BF16/AMX through oneDNN. On an AVX2-only CPU torch emulates them 10-50x slower than fp32.
    """
    device = device if device is not None else resolve_device("auto")
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(text: str, device: torch.device | None = None) -> PrecisionSpec:
    """Parse a precision spec, choosing the compute dtype of a quantized spec that names none.

    `bf16` and `fp32` mean what they say. A quantized spec without an `@bf16`/`@fp32` suffix computes in
    bf16 where bf16 matmuls are native and in fp32 elsewhere; the resolved name (e.g. `w4a8kv8@fp32`) is
    what results record, and its unquantized kinds count 32 bits instead of 16 in `bits()`.
    """
    spec = PrecisionSpec.parse(text)
    if spec.quantized and "@" not in text and not native_bf16(device):
        spec = dataclasses.replace(spec, compute="fp32")
    return spec


def default_lr(n_params: float) -> float:
    """Peak learning rate heuristic for small models: 3e-3 at N = 1e6, ∝ N^(−1/4), clipped to [3e-4, 6e-3]."""
    return float(min(6e-3, max(3e-4, 3e-3 * (1e6 / n_params) ** 0.25)))


@dataclass
class TrainConfig:
    """Everything that defines one training run (hashable into a sweep's run_id via `asdict`)."""

    n: float | None = 1e6  # target non-embedding parameters; the shape family picks the shape
    d_model: int | None = None  # explicit shape (overrides n when given with n_layers)
    n_layers: int | None = None
    n_heads: int | None = None
    d_ff: int | None = None
    tokens: float = 5e6  # training tokens D
    precision: str = "bf16"
    mlp: str = "gelu"
    tie_embeddings: bool = False
    seq_len: int = 128
    batch_size: int = 32  # sequences per step
    optimizer: str = "adamw"
    lr: float | None = None  # None: default_lr(N)
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1
    grad_clip: float = 1.0
    loss: str = "ce"
    data: str = "default"
    eval_tokens: int = 131_072
    n_evals: int = 8  # validation evaluations spread over training (the last one at the end)
    seed: int = 0
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N"

    def __post_init__(self) -> None:
        if self.tokens <= 0 or not math.isfinite(self.tokens):
            raise UserError(f"tokens must be positive, got {self.tokens}")
        if self.n is not None and (self.n <= 0 or not math.isfinite(self.n)):
            raise UserError(f"n (parameters) must be positive, got {self.n}")
        if self.n is None and (self.d_model is None or self.n_layers is None):
            raise UserError("give either n or both d_model and n_layers")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss not in LOSSES:
            raise UserError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.batch_size <= 0 or self.seq_len <= 0:
            raise UserError("batch_size and seq_len must be positive")
        if self.device != "auto" and not (self.device == "cpu" or self.device.split(":")[0] == "cuda"):
            raise UserError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"lr must be positive, got {self.lr}")
        PrecisionSpec.parse(self.precision)  # fail early on a bad spec
        self.betas = tuple(self.betas)  # type: ignore[assignment]

    def model_config(self, vocab_size: int) -> ModelConfig:
        common = dict(
            vocab_size=vocab_size,
            seq_len=self.seq_len,
            mlp=self.mlp,
            tie_embeddings=self.tie_embeddings,
            precision=resolve_precision(self.precision, resolve_device(self.device)),
        )
        if self.d_model is not None and self.n_layers is not None:
            n_heads = self.n_heads or max(1, self.d_model // 32)
            d_ff = self.d_ff or default_d_ff(self.d_model, self.mlp)
            return ModelConfig(
                d_model=self.d_model, n_layers=self.n_layers, n_heads=n_heads, d_ff=d_ff, **common
            )
        assert self.n is not None
        return ModelConfig.for_params(self.n, **common)

    @property
    def n_steps(self) -> int:
        return max(1, round(self.tokens / (self.batch_size * self.seq_len)))


@dataclass
class EvalStats:
    loss: float  # mean nats/token
    max_abs_logit: float
    softmax_collapse: float  # fraction of tokens with an exactly-zero fp32 softmax gradient


@dataclass
class RunResult:
    config: TrainConfig
    precision: str  # the resolved spec actually trained, e.g. "w4a8kv8@fp32" (see resolve_precision)
    status: str  # "ok" | "diverged"
    val_loss: float
    best_val_loss: float
    n_params: int
    n_params_total: int
    tokens: int  # tokens actually trained on (steps × batch × seq_len)
    flops: float
    cost: float  # (6/16)·N·D·P_w (Kumar et al.), P from the weight precision
    epochs: float
    steps: int
    wall_time: float
    tokens_per_s: float
    max_abs_logit: float
    softmax_collapse: float
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)
    shape: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    model: GPT | None = field(default=None, repr=False)

    def columns(self) -> dict[str, Any]:
        """The result-store columns this run determines (docs/results_schema.md): N, N_total, D, the resolved
        precision's precision/P_*/fmt_* columns, optimizer, seed, flops, cost, status, loss, wall_time,
        tokens_per_s, epochs, lr, d_model, n_layers. Shared by every kind of sweep run."""
        cfg = self.config
        return {
            "N": self.n_params,
            "N_total": self.n_params_total,
            "D": self.tokens,
            **PrecisionSpec.parse(self.precision).columns(),  # resolved: "w4@fp32" where bf16 is not native
            "optimizer": cfg.optimizer,
            "seed": cfg.seed,
            "flops": self.flops,
            "cost": self.cost,
            "status": self.status,
            "loss": self.val_loss,
            "wall_time": self.wall_time,
            "tokens_per_s": self.tokens_per_s,
            "epochs": self.epochs,
            "lr": cfg.lr if cfg.lr is not None else default_lr(self.n_params),
            "d_model": self.shape["d_model"],
            "n_layers": self.shape["n_layers"],
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field but the model, JSON-serialisable."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        out["config"] = dataclasses.asdict(self.config)
        return out


def autocast_for(model: GPT) -> torch.autocast:
    """bf16 autocast unless the model's precision spec computes in fp32."""
    bf16 = model.config.precision.compute == "bf16"
    return torch.autocast(device_type=model.wte.weight.device.type, dtype=torch.bfloat16, enabled=bf16)


@torch.no_grad()
def evaluate(model: GPT, batches: Sequence[torch.Tensor], loss: str = "ce") -> EvalStats:
    """Mean validation loss (nats/token) and logit diagnostics over fixed batches [b, T+1]."""
    was_training = model.training
    model.eval()
    total, count, max_logit, collapsed = 0.0, 0, 0.0, 0.0
    device = model.wte.weight.device
    for batch in batches:
        batch = batch.to(device)
        x, y = batch[:, :-1], batch[:, 1:]
        with autocast_for(model):
            logits = model(x)
        n = y.numel()
        total += token_loss(loss, logits, y).item() * n
        count += n
        max_logit = max(max_logit, logits.abs().max().item())
        collapsed += softmax_collapse_fraction(logits, y) * n
    model.train(was_training)
    if count == 0:
        raise UserError("no validation tokens to evaluate on")
    return EvalStats(total / count, max_logit, collapsed / count)


def evaluate_loss(model: GPT, batches: Sequence[torch.Tensor], loss: str = "ce") -> float:
    """Mean loss in nats/token of `model` on fixed batches (used for validation and PTQ)."""
    return evaluate(model, batches, loss).loss


def build_optimizers(model: GPT, cfg: TrainConfig, lr: float) -> list[torch.optim.Optimizer]:
    """AdamW on everything, or Muon on QLinear weights + AdamW on the rest; weight decay on 2-D tensors."""
    hidden = {id(m.weight) for m in model.modules() if isinstance(m, QLinear)}
    params = list(dict.fromkeys(model.parameters()))  # tied weights appear once
    muon = [p for p in params if cfg.optimizer == "muon" and id(p) in hidden]
    rest = [p for p in params if not any(p is q for q in muon)]
    groups = [
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
    ]
    opts: list[torch.optim.Optimizer] = [torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, eps=1e-8)]
    if muon:
        opts.append(
            torch.optim.Muon(muon, lr=lr, weight_decay=cfg.weight_decay, adjust_lr_fn="match_rms_adamw")
        )
    for opt in opts:
        for group in opt.param_groups:
            group["peak_lr"] = group["lr"]
    return opts


def lr_factor(step: int, n_steps: int, warmup_frac: float, min_frac: float) -> float:
    """Linear warmup over the first warmup_frac of steps, then cosine decay from 1 to min_frac."""
    warmup = max(1, round(warmup_frac * n_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, n_steps - warmup)
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _downsample(points: list[tuple[int, float]], n: int = 100) -> list[tuple[int, float]]:
    """Average the curve into at most n bins (keeps its shape, drops the noise)."""
    if len(points) <= n:
        return points
    size = len(points) / n
    out = []
    for i in range(n):
        chunk = points[round(i * size) : round((i + 1) * size)]
        out.append((chunk[-1][0], sum(v for _, v in chunk) / len(chunk)))
    return out


def train(
    cfg: TrainConfig,
    data: TokenSource | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> RunResult:
    """Train one model as `cfg` says and return its result (status "diverged" instead of raising on NaN)."""
    start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = data if data is not None else load_corpus(cfg.data)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    model = GPT(cfg.model_config(data.vocab_size)).to(device)
    lr = cfg.lr if cfg.lr is not None else default_lr(model.n_params())
    opts = build_optimizers(model, cfg, lr)
    val_batches = data.val_batches(cfg.batch_size, cfg.seq_len, cfg.eval_tokens)
    n_steps = cfg.n_steps
    eval_at = {round(n_steps * (i + 1) / cfg.n_evals) - 1 for i in range(cfg.n_evals)}
    train_curve: list[tuple[int, float]] = []
    val_curve: list[tuple[int, float]] = []
    last_eval = EvalStats(math.nan, math.nan, math.nan)
    status, train_time, steps_done = "ok", 0.0, 0
    model.train()
    for step in range(n_steps):
        t0 = time.perf_counter()
        factor = lr_factor(step, n_steps, cfg.warmup_frac, cfg.min_lr_frac)
        for opt in opts:
            for group in opt.param_groups:
                group["lr"] = group["peak_lr"] * factor
        batch = data.train_batch(step, cfg.batch_size, cfg.seq_len, cfg.seed).to(device, non_blocking=True)
        x, y = batch[:, :-1], batch[:, 1:]
        with autocast_for(model):
            logits = model(x)
        loss = token_loss(cfg.loss, logits, y)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            status = "diverged"
            break
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for opt in opts:
            opt.step()
            opt.zero_grad(set_to_none=True)
        train_time += time.perf_counter() - t0
        steps_done = step + 1
        train_curve.append((step, loss_value))
        if on_step is not None:
            on_step(step, n_steps, loss_value)
        if step in eval_at:
            last_eval = evaluate(model, val_batches, cfg.loss)
            val_curve.append((step, last_eval.loss))
            if not math.isfinite(last_eval.loss):
                status = "diverged"
                break
    if status != "ok":
        final = EvalStats(math.nan, math.nan, math.nan)
    elif val_curve and val_curve[-1][0] == n_steps - 1:  # the last step was just evaluated: reuse it
        final = last_eval
    else:
        final = evaluate(model, val_batches, cfg.loss)
    if status == "ok" and not math.isfinite(final.loss):
        status = "diverged"
    spec, mc = model.config.precision, model.config
    tokens = steps_done * cfg.batch_size * cfg.seq_len
    n_params = model.n_params()
    finite_vals = [v for _, v in val_curve if math.isfinite(v)]
    return RunResult(
        config=cfg,
        precision=spec.name,
        status=status,
        val_loss=final.loss,
        best_val_loss=min(finite_vals) if finite_vals else math.nan,
        n_params=n_params,
        n_params_total=model.n_params_total(),
        tokens=tokens,
        flops=training_flops(n_params, max(tokens, 1), mc.n_layers, mc.d_model, mc.seq_len),
        cost=precision_cost(n_params, max(tokens, 1), spec.bits("w")),
        epochs=tokens / data.n_train_tokens,
        steps=steps_done,
        wall_time=time.perf_counter() - start,
        tokens_per_s=tokens / train_time if train_time > 0 else 0.0,
        max_abs_logit=final.max_abs_logit,
        softmax_collapse=final.softmax_collapse,
        train_curve=_downsample(train_curve),
        val_curve=val_curve,
        shape={
            "d_model": mc.d_model,
            "n_layers": mc.n_layers,
            "n_heads": mc.n_heads,
            "d_ff": mc.d_ff,
            "vocab_size": mc.vocab_size,
            "seq_len": mc.seq_len,
            "mlp": mc.mlp,
        },
        data={"name": data.name, "n_train_tokens": data.n_train_tokens},
        model=model,
    )
