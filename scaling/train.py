"""The training engine: `train(TrainConfig) -> RunResult`.

Recipe (Kumar et al. 2024, "Scaling Laws for Precision", following OLMo): AdamW with β = (0.9, 0.95) and
weight decay 0.1, cosine decay to 10% of the peak learning rate after a 10% linear warmup, gradient clipping
at 1.0. Alternatively `torch.optim.Muon` for the 2-D hidden weights with AdamW for embeddings, head and
norm gains; Muon's update is rescaled by 0.2·sqrt(max(A, B)) to match AdamW's update RMS, so both share one
learning rate (Liu et al. 2025, "Muon is Scalable for LLM Training", the Moonlight recipe).

Numerics: fp32 master weights and optimizer state; matmuls in bf16 autocast unless the precision spec is
`fp32`; RoPE angles, RMSNorm, logits and the loss in fp32 (see scaling/model.py and scaling/losses.py).
A run whose loss turns NaN/inf stops early with status "diverged" and never raises; so is a run that
ends no better than chance (`diverged_because`: final validation loss above ln V, the loss of a uniform
guess over the vocabulary, or above the run's own initial loss).

Before the model is built the run's memory is estimated (`scaling.memory`) and a run that cannot fit is
refused with both numbers. Every result records what bit-for-bit reproduction depends on besides its
config (`runtime_info`: torch version, thread count, device, compute dtype, CPU matmul capability).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from scaling.data import TokenSource, corpus_identity, load_corpus
from scaling.errors import UserError
from scaling.flops import precision_cost, training_flops
from scaling.formats import PrecisionSpec
from scaling.losses import LOSSES, softmax_collapse_fraction, token_loss
from scaling.model import GPT, ModelConfig, QLinear, default_d_ff
from scaling.schedule import COOLDOWN_SHAPES, SCHEDULES, Schedule

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


EVAL_SHARE = 0.05  # default validation budget: this fraction of the run's training compute


def default_eval_tokens(tokens: float, n_evals: int, seq_len: int) -> int:
    """Tokens per validation pass so that the run's n_evals passes cost EVAL_SHARE of its training compute.

    A forward pass costs a third of a training step per token (2N vs 6N FLOPs, Kaplan et al. 2020), so
    n_evals·E/3 = EVAL_SHARE·D gives E = 3·EVAL_SHARE·D / n_evals, rounded up to whole windows of seq_len
    and kept within [16 windows, 2^20 tokens]: 18,816 tokens per pass for D = 1e6, 8 passes, seq_len 128.
    """
    windows = math.ceil(3.0 * EVAL_SHARE * tokens / (max(1, n_evals) * seq_len))
    return int(min(max(16, windows) * seq_len, max(16 * seq_len, 1 << 20)))


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
    schedule: str = "cosine"  # "cosine" | "wsd" (warmup-stable-decay), see scaling/schedule.py
    warmup_tokens: float | None = None  # warmup length in tokens; None: warmup_frac of the run
    cooldown_frac: float = 0.2  # wsd: fraction of the run spent in the final decay
    cooldown_shape: str = "1-sqrt"  # wsd: "1-sqrt" or "linear"
    grad_clip: float = 1.0
    loss: str = "ce"
    data: str = "default"
    eval_tokens: int | None = None  # tokens per validation pass; None: default_eval_tokens (in proportion)
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
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"lr must be a positive finite number, got {self.lr}")
        if not (0 <= self.weight_decay < math.inf):
            raise UserError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise UserError(f"betas must be two numbers in [0, 1), got {self.betas}")
        for name in ("warmup_frac", "min_lr_frac"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not (0 < self.grad_clip < math.inf):
            raise UserError(f"grad_clip must be a positive finite number, got {self.grad_clip}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"threads must be at least 1, got {self.threads}")
        if not 0 <= self.seed < 2**32:
            raise UserError(f"seed must be an integer in [0, 2^32), got {self.seed}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.cooldown_shape not in COOLDOWN_SHAPES:
            raise UserError(
                f"cooldown_shape must be one of {', '.join(COOLDOWN_SHAPES)}, got {self.cooldown_shape!r}"
            )
        if not 0.0 <= self.cooldown_frac <= 1.0:
            raise UserError(f"cooldown_frac must be in [0, 1], got {self.cooldown_frac}")
        if self.warmup_tokens is not None and not self.warmup_tokens > 0:
            raise UserError(f"warmup_tokens must be positive, got {self.warmup_tokens}")
        if self.n_evals < 1:
            raise UserError(f"n_evals must be at least 1, got {self.n_evals}")
        if self.eval_tokens is None:
            self.eval_tokens = default_eval_tokens(self.tokens, self.n_evals, self.seq_len)
        elif self.eval_tokens < 1:
            raise UserError(f"eval_tokens must be positive, got {self.eval_tokens}")
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

    def lr_schedule(self) -> Schedule:
        """The learning-rate schedule of this run (scaling/schedule.py): warmup of warmup_tokens (else
        warmup_frac of the steps), then cosine decay or, for wsd, a cooldown of cooldown_frac of the steps."""
        n = self.n_steps
        if self.warmup_tokens is not None:
            warmup = max(1, round(self.warmup_tokens / (self.batch_size * self.seq_len)))
        else:
            warmup = max(1, round(self.warmup_frac * n))
        cooldown = round(self.cooldown_frac * n) if self.schedule == "wsd" else 0
        if self.schedule == "wsd" and self.cooldown_frac > 0:
            cooldown = max(1, cooldown)
        return Schedule(self.schedule, n, warmup, self.min_lr_frac, cooldown, self.cooldown_shape)


@dataclass
class EvalStats:
    loss: float  # mean nats/token
    max_abs_logit: float
    softmax_collapse: float  # fraction of tokens with an exactly-zero fp32 softmax gradient


@dataclass
class RunResult:
    config: TrainConfig
    precision: str  # the resolved spec actually trained, e.g. "w4a8kv8@fp32" (see resolve_precision)
    status: str  # "ok" | "diverged" (see diverged_because)
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
    eval_flops: float = 0.0  # FLOPs of the validation passes (forward only)
    eval_fraction: float = 0.0  # eval_flops / (flops + eval_flops)
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)
    shape: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)  # runtime_info(): what reproduction depends on
    divergence: str = ""  # why the status is "diverged" ("" when ok)
    model: GPT | None = field(default=None, repr=False)

    def columns(self) -> dict[str, Any]:
        """The result-store columns this run determines (docs/results_schema.md): N, N_total, D, the resolved
        precision's precision/P_*/fmt_* columns, optimizer, seed, flops, cost, status, loss, wall_time,
        tokens_per_s, epochs, lr, d_model, n_layers, the schedule, the share of compute spent on
        validation (eval_fraction) and the corpus identity (corpus, corpus_tokens, corpus_checksum).
        Shared by every kind of sweep run."""
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
            "divergence": self.divergence,
            "loss": self.val_loss,
            "wall_time": self.wall_time,
            "tokens_per_s": self.tokens_per_s,
            "epochs": self.epochs,
            "lr": cfg.lr if cfg.lr is not None else default_lr(self.n_params),
            "d_model": self.shape["d_model"],
            "n_layers": self.shape["n_layers"],
            "schedule": cfg.schedule,
            "cooldown_tokens": cfg.lr_schedule().cooldown * cfg.batch_size * cfg.seq_len,
            "eval_fraction": self.eval_fraction,
            "corpus": self.data.get("name", ""),
            "corpus_tokens": self.data.get("n_train_tokens", 0),
            "corpus_checksum": self.data.get("checksum", ""),
            **self.runtime,
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
def evaluate(
    model: GPT, batches: Sequence[torch.Tensor], loss: str = "ce", diagnostics: bool = True
) -> EvalStats:
    """Mean validation loss (nats/token) and logit diagnostics over fixed batches [b, T+1].

    With diagnostics=False the largest |logit| and the softmax-collapse fraction are not computed (NaN):
    they cost about a quarter of a small model's evaluation pass and only a run's own passes report them."""
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
        if diagnostics:
            max_logit = max(max_logit, logits.abs().max().item())
            collapsed += softmax_collapse_fraction(logits, y) * n
    model.train(was_training)
    if count == 0:
        raise UserError("no validation tokens to evaluate on")
    if not diagnostics:
        max_logit = collapsed = math.nan
    return EvalStats(total / count, max_logit, collapsed / count)


def evaluate_loss(model: GPT, batches: Sequence[torch.Tensor], loss: str = "ce") -> float:
    """Mean loss in nats/token of `model` on fixed batches (used for PTQ), without the logit diagnostics."""
    return evaluate(model, batches, loss, diagnostics=False).loss


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


@dataclass
class TrainState:
    """A run in progress: the model, its optimizers and what has been measured so far. `train` is
    `start_run` → `run_steps` → `finish_run`; `scaling.branches` forks states (`fork`) at cooldown starts."""

    cfg: TrainConfig
    data: TokenSource
    device: torch.device
    model: GPT
    opts: list[torch.optim.Optimizer]
    val_batches: list[torch.Tensor]
    start: float  # perf_counter at the start of the run (inherited by forks)
    step: int = 0  # optimizer steps done
    status: str = "ok"
    train_time: float = 0.0  # seconds inside optimizer steps
    eval_tokens: int = 0  # tokens scored by validation passes so far (for the evaluation share of compute)
    last_eval: EvalStats = field(default_factory=lambda: EvalStats(math.nan, math.nan, math.nan))
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)

    def evaluate(self) -> EvalStats:
        """One validation pass on this run's fixed batches (recorded in the curve and the eval budget)."""
        self.last_eval = evaluate(self.model, self.val_batches, self.cfg.loss)
        self.eval_tokens += sum(b[:, 1:].numel() for b in self.val_batches)
        self.val_curve.append((self.step - 1, self.last_eval.loss))
        if not math.isfinite(self.last_eval.loss):
            self.status = "diverged"
        return self.last_eval

    def fork(self, cfg: TrainConfig) -> TrainState:
        """An independent copy (model and optimizer state deep-copied) that continues as `cfg` says; `cfg`
        must describe the same model and data (scaling.branches checks it)."""
        model, opts = copy.deepcopy((self.model, self.opts))
        return dataclasses.replace(
            self,
            cfg=cfg,
            model=model,
            opts=opts,
            val_batches=self.data.val_batches(cfg.batch_size, cfg.seq_len, cfg.eval_tokens),
            train_curve=list(self.train_curve),
            val_curve=list(self.val_curve),
        )


def start_run(cfg: TrainConfig, data: TokenSource | None = None) -> TrainState:
    """Build the model and optimizers of `cfg` (seeded) and its validation batches; no step taken."""
    start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = data if data is not None else load_corpus(cfg.data)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    config = cfg.model_config(data.vocab_size)
    check_memory(config, cfg, device)
    model = GPT(config).to(device)
    lr = cfg.lr if cfg.lr is not None else default_lr(model.n_params())
    opts = build_optimizers(model, cfg, lr)
    val_batches = data.val_batches(cfg.batch_size, cfg.seq_len, cfg.eval_tokens)
    model.train()
    return TrainState(cfg, data, device, model, opts, val_batches, start)


def run_steps(
    state: TrainState,
    until: int,
    schedule: Schedule | None = None,
    eval_at: set[int] | frozenset[int] = frozenset(),
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainState:
    """Take optimizer steps state.step .. until − 1 at the learning rates of `schedule` (default: the
    config's), evaluating after every step in `eval_at`; stops early when the loss turns NaN/inf."""
    cfg, model, opts = state.cfg, state.model, state.opts
    schedule = schedule or cfg.lr_schedule()
    while state.step < until and state.status == "ok":
        step = state.step
        t0 = time.perf_counter()
        factor = schedule.factor(step)
        for opt in opts:
            for group in opt.param_groups:
                group["lr"] = group["peak_lr"] * factor
        batch = state.data.train_batch(step, cfg.batch_size, cfg.seq_len, cfg.seed)
        batch = batch.to(state.device, non_blocking=True)
        x, y = batch[:, :-1], batch[:, 1:]
        with autocast_for(model):
            logits = model(x)
        loss = token_loss(cfg.loss, logits, y)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            state.status = "diverged"
            break
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        for opt in opts:
            opt.step()
            opt.zero_grad(set_to_none=True)
        state.train_time += time.perf_counter() - t0
        state.step = step + 1
        state.train_curve.append((step, loss_value))
        if on_step is not None:
            on_step(step, schedule.n_steps, loss_value)
        if step in eval_at:
            state.evaluate()
    return state


def finish_run(state: TrainState) -> RunResult:
    """The run's result: a final validation pass (unless the last step was just evaluated), FLOPs, cost,
    epochs, and the share of compute that validation took."""
    cfg, model = state.cfg, state.model
    if state.status != "ok":
        final = EvalStats(math.nan, math.nan, math.nan)
    elif state.val_curve and state.val_curve[-1][0] == state.step - 1:  # just evaluated: reuse it
        final = state.last_eval
    else:
        final = state.evaluate()
    if state.status == "ok" and not math.isfinite(final.loss):
        state.status = "diverged"
    initial = state.train_curve[0][1] if state.train_curve else math.nan
    divergence = "loss turned NaN/inf" if state.status != "ok" else ""
    if not divergence and (divergence := diverged_because(final.loss, initial, model.config.vocab_size)):
        state.status = "diverged"
    spec, mc = model.config.precision, model.config
    tokens = state.step * cfg.batch_size * cfg.seq_len
    n_params = model.n_params()
    flops = training_flops(n_params, max(tokens, 1), mc.n_layers, mc.d_model, mc.seq_len)
    # a forward pass is a third of a training step's FLOPs per token (2N + attention vs 6N + attention)
    eval_flops = (
        training_flops(n_params, state.eval_tokens, mc.n_layers, mc.d_model, mc.seq_len) / 3
        if state.eval_tokens
        else 0.0
    )
    finite_vals = [v for _, v in state.val_curve if math.isfinite(v)]
    return RunResult(
        config=cfg,
        precision=spec.name,
        status=state.status,
        val_loss=final.loss,
        best_val_loss=min(finite_vals) if finite_vals else math.nan,
        n_params=n_params,
        n_params_total=model.n_params_total(),
        tokens=tokens,
        flops=flops,
        cost=precision_cost(n_params, max(tokens, 1), spec.bits("w")),
        epochs=tokens / state.data.n_train_tokens,
        steps=state.step,
        wall_time=time.perf_counter() - state.start,
        tokens_per_s=tokens / state.train_time if state.train_time > 0 else 0.0,
        max_abs_logit=final.max_abs_logit,
        softmax_collapse=final.softmax_collapse,
        eval_flops=eval_flops,
        eval_fraction=eval_flops / (flops + eval_flops),
        train_curve=_downsample(state.train_curve),
        val_curve=state.val_curve,
        shape={
            "d_model": mc.d_model,
            "n_layers": mc.n_layers,
            "n_heads": mc.n_heads,
            "d_ff": mc.d_ff,
            "vocab_size": mc.vocab_size,
            "seq_len": mc.seq_len,
            "mlp": mc.mlp,
        },
        data=corpus_identity(state.data),
        runtime=runtime_info(state.device, spec),
        divergence=divergence,
        model=model,
    )


def diverged_because(final: float, initial: float, vocab_size: int) -> str:
    """Why a run that finished with finite loss counts as diverged, or "" when it learned something.

    A run has diverged when its final validation loss is above ln(vocab_size), the loss of a uniform guess
    over the vocabulary (ln 256 ≈ 5.55 nats for bytes), or above its own initial loss (the training loss of
    its first batch, before any update): it ended no better than chance or than where it started, and a
    scaling-law fit must not use it (docs/results_schema.md).
    """
    uniform = math.log(vocab_size)
    if final > uniform:
        return f"final loss {final:.4g} above the uniform loss ln({vocab_size}) = {uniform:.4g}"
    if math.isfinite(initial) and final > initial:
        return f"final loss {final:.4g} above the initial loss {initial:.4g}"
    return ""


def runtime_info(device: torch.device, spec: PrecisionSpec) -> dict[str, Any]:
    """What a run's numbers depend on besides its config (docs/results_schema.md, "Reproducing a run"):
    torch version, intra-op threads (reductions split differently), the device, the compute dtype and the
    CPU's matmul capability (the ISA torch dispatches its kernels to; whether oneDNN runs bf16 natively)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": name,
        "compute_dtype": spec.compute,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": native_bf16(device),
    }


def check_memory(config: ModelConfig, cfg: TrainConfig, device: torch.device) -> None:
    """Refuse (UserError) a run whose estimated memory exceeds what the machine (or the GPU) has available,
    before anything is allocated (`scaling.memory`)."""
    from scaling.memory import check_fits, estimate_training, gpu_available_bytes

    need = estimate_training(config, cfg.batch_size, cfg.optimizer)
    shape = f"N = {config.n_params:.3g}, d_model {config.d_model} × {config.n_layers} layers"
    check_fits(need.total, f"this run ({shape}, batch {cfg.batch_size} × {cfg.seq_len} tokens)",
               detail=need.breakdown(), hint="make n, batch_size or seq_len smaller",
               available=gpu_available_bytes(device) if device.type == "cuda" else None)  # fmt: skip


def eval_steps(n_steps: int, n_evals: int) -> set[int]:
    """0-based steps after which a run of n_steps evaluates: n_evals spread evenly, the last at the end."""
    return {round(n_steps * (i + 1) / n_evals) - 1 for i in range(n_evals)}


def train(
    cfg: TrainConfig,
    data: TokenSource | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> RunResult:
    """Train one model as `cfg` says and return its result (status "diverged" instead of raising on NaN)."""
    state = start_run(cfg, data)
    run_steps(state, cfg.n_steps, eval_at=eval_steps(cfg.n_steps, cfg.n_evals), on_step=on_step)
    return finish_run(state)
