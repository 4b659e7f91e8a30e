"""Post-training weight quantization (PTQ): round-to-nearest and GPTQ, and the loss after it.

Every hidden linear layer (`scaling.model.QLinear`) of a trained model gets its weight replaced by a
quantize-dequantized copy Ŵ in the target format; the token embedding `wte` and the output head `lm_head`
stay high precision, as during training. The weight that is quantized is the one the trained model
actually multiplies with: W itself, or fake_quant(W, w_fmt, axis=0) for a model trained with quantized
weights. Activation and KV quantization of the trained model are left as they were (PTQ is weight-only).

Both methods put each output channel (row i of W, shape [d_out, d_in]) on the same grid
{q · s_i : q a code of the format}, with the absmax scale of the original row, s_i = max_j |W_ij| / q_max
(`scaling.quant.absmax_scale`); they differ only in which grid point each weight gets.

- RTN: Ŵ = fake_quant(W, fmt, axis=0), exactly the quantizer used in quantization-aware training.
- GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
  Transformers"): minimise the layer's reconstruction error on calibration inputs X (rows = tokens),

      E(Ŵ) = ‖X Wᵀ − X Ŵᵀ‖²_F / n = ½ tr(Δ H Δᵀ),   Δ = W − Ŵ,   H = 2 XᵀX / n,

  greedily, one input column at a time: quantize column j, then move the not-yet-quantized columns
  F by the optimal (Optimal Brain Surgeon) compensation δ_F = −(w_j − ŵ_j) / [H_F⁻¹]_jj · [H_F⁻¹]_{j,F}.
  The rows of the upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) hold exactly these quantities
  ([H_F⁻¹]_{j,F} / [H_F⁻¹]_jj = U_{j,F} / U_jj), and each step raises E by (w_j − ŵ_j)² / (2 U_jj²);
  summed over all columns this is ½ tr(Δ H̃ Δᵀ) for the dampened H̃ that was factored, which the
  function reports and the tests check against the direct computation. Updates of columns beyond the
  current block of `block_size` columns are applied once per block ("lazy batch updates").
  H̃ = H + λI with λ = damp · mean(diag H); a dead input (H_jj = 0, never active in the calibration data)
  gets H_jj = 1 before dampening, so its weights are rounded to nearest and nothing else changes (the
  reference implementation zeroes them instead; keeping them is no worse on the calibration data and
  safer when the input is active on other data). `act_order` quantizes columns in order of decreasing
  H_jj. Layers are quantized one after another in execution order, each one's H computed from inputs that
  flow through the already-quantized earlier layers, as in the paper.

Float formats work in both methods: inside GPTQ the quantizer is the same per-channel projection onto the
fixed grid, here {q · s_i : q a finite value of the format}, so nothing else changes.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from scaling.errors import UserError
from scaling.formats import NumberFormat, parse_format
from scaling.model import GPT, QLinear
from scaling.quant import absmax_scale, fake_quant
from scaling.train import autocast_for, evaluate_loss

METHODS = ("rtn", "gptq")

#: Seed offset of calibration batches, so they are training-split windows other than the trained ones.
CALIB_SEED_OFFSET = 1_000_003

Quantizer = Callable[[torch.Tensor], torch.Tensor]


def channel_quantizer(w: torch.Tensor, fmt: NumberFormat) -> Quantizer:
    """The per-output-channel grid projection with scales fixed from `w` [d_out, d_in]: a function mapping
    one column [d_out] to the nearest grid values (saturating), ŵ_i = fake_quant(w_i; s_i) with the RTN
    scale s_i = absmax_scale(w, fmt, axis=0)_i. Applied to every column of `w` it reproduces RTN exactly."""
    scale = absmax_scale(w, fmt, axis=0).reshape(-1)

    def quantize(col: torch.Tensor) -> torch.Tensor:
        return fake_quant(col, fmt, scale=scale)

    return quantize


def _inverse_hessian_factor(h: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor U of (H + λI)⁻¹, λ = damp · mean(diag H); λ grows ×10 (up to 6 times) if the
    factorization fails numerically."""
    eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
    lam = damp * h.diagonal().mean().item()
    for _ in range(7):
        chol, info = torch.linalg.cholesky_ex(h + lam * eye)
        if info.item() == 0:
            u, info = torch.linalg.cholesky_ex(torch.cholesky_inverse(chol), upper=True)
            if info.item() == 0:
                return u
        lam = max(10 * lam, 1e-8 * h.diagonal().abs().max().item(), 1e-12)
    raise ValueError("GPTQ: the calibration Hessian is not positive definite even after dampening")


def gptq_quantize_weight(
    w: torch.Tensor,
    h: torch.Tensor,
    quantizer: Quantizer,
    *,
    damp: float = 0.01,
    block_size: int = 128,
    act_order: bool = False,
) -> tuple[torch.Tensor, float]:
    """GPTQ on one weight matrix: returns (Ŵ, err) with Ŵ on `quantizer`'s grid, in `w`'s dtype.

    `w` [d_out, d_in]; `h` [d_in, d_in] the Hessian 2XᵀX/n of the layer's calibration inputs X [n, d_in];
    `quantizer` maps one column [d_out] to its grid projection (see `channel_quantizer`). The arithmetic is
    float64. `err` = Σ_j Σ_i (w_ij − ŵ_ij)² / (2 U_jj²) (the sum of the OBS error increases, with w_ij the
    compensated weight at the time column j is quantized) = ½ tr((W − Ŵ) H̃ (W − Ŵ)ᵀ), where H̃ is `h`
    with dead inputs set to 1 and dampened by damp · mean(diag): the reconstruction error
    ‖X(W − Ŵ)ᵀ‖²/n plus the dampening term (λ/2)‖W − Ŵ‖². See the module docstring.
    """
    if w.ndim != 2 or h.shape != (w.shape[1], w.shape[1]):
        raise ValueError(
            f"GPTQ needs W [d_out, d_in] and H [d_in, d_in], got {tuple(w.shape)}, {tuple(h.shape)}"
        )
    if not damp >= 0 or block_size < 1:
        raise UserError(f"GPTQ needs damp >= 0 and block_size >= 1, got {damp}, {block_size}")
    W = w.detach().to(torch.float64).clone()
    H = h.detach().to(torch.float64).clone()
    n_cols = W.shape[1]
    dead = H.diagonal() == 0
    H[dead, dead] = 1.0
    perm = torch.argsort(H.diagonal(), descending=True, stable=True) if act_order else None
    if perm is not None:
        W, H = W[:, perm], H[perm][:, perm]
    U = _inverse_hessian_factor(H, damp)
    Q = torch.zeros_like(W)
    err = torch.zeros((), dtype=torch.float64, device=W.device)
    for i1 in range(0, n_cols, block_size):
        i2 = min(i1 + block_size, n_cols)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        E1 = torch.zeros_like(W1)  # scaled errors (w − ŵ) / U_jj of the block's columns
        for j in range(i2 - i1):
            col = W1[:, j]
            q = quantizer(col.to(w.dtype)).to(torch.float64)
            Q[:, i1 + j] = q
            e = (col - q) / U1[j, j]
            err += 0.5 * e.square().sum()
            W1[:, j + 1 :] -= torch.outer(e, U1[j, j + 1 :])
            E1[:, j] = e
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    if perm is not None:
        Q = Q[:, torch.argsort(perm)]
    return Q.to(w.dtype), err.item()


def reconstruction_error(w: torch.Tensor, w_hat: torch.Tensor, h: torch.Tensor) -> float:
    """½ tr((W − Ŵ) H (W − Ŵ)ᵀ) in float64; with H = 2XᵀX/n this is ‖X(W − Ŵ)ᵀ‖²_F / n."""
    delta = w.to(torch.float64) - w_hat.to(torch.float64)
    return 0.5 * torch.einsum("ij,jk,ik->", delta, h.to(torch.float64), delta).item()


class HessianAccumulator:
    """Running Σ xxᵀ over the rows x of a layer's inputs, in float64; `hessian()` = 2XᵀX / n."""

    def __init__(self, d_in: int, device: torch.device | None = None) -> None:
        self.xtx = torch.zeros(d_in, d_in, dtype=torch.float64, device=device)
        self.n = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
        self.xtx.addmm_(x.T, x)
        self.n += x.shape[0]

    def hessian(self) -> torch.Tensor:
        if self.n == 0:
            raise UserError("GPTQ needs calibration data, got no tokens")
        return 2.0 * self.xtx / self.n


def layer_hessians(model: GPT, batches: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """H = 2XᵀX/n of the (activation-quantized) inputs X of every QLinear of `model`, keyed by module name,
    from one ordinary forward pass per batch [b, T+1] under `autocast_for(model)`. A layer's inputs depend
    on earlier layers only, so in a model GPTQ has quantized these are the Hessians it used (given the same
    batches); on held-out batches they measure the reconstruction error out of sample."""
    accs: dict[str, HessianAccumulator] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, QLinear):
            acc = accs[name] = HessianAccumulator(m.in_features, m.weight.device)
            hooks.append(m.register_forward_pre_hook(partial(_add_input, acc)))
    device = model.wte.weight.device
    try:
        with torch.no_grad(), autocast_for(model):
            for batch in batches:
                model(batch[:, :-1].to(device))
    finally:
        for handle in hooks:
            handle.remove()
    return {name: acc.hessian() for name, acc in accs.items()}


def _add_input(acc: HessianAccumulator, module: QLinear, inputs: tuple) -> None:
    """Forward pre-hook body: add the input the layer multiplies with (after its activation quantization)."""
    acc.add(fake_quant(inputs[0], module.a_fmt))


@dataclass
class LayerReport:
    """Reconstruction errors of one layer on its calibration inputs X (n tokens, through the already
    quantized earlier layers): ½tr(ΔHΔᵀ) = ‖XΔᵀ‖²/n for RTN's and GPTQ's Δ, and ‖XWᵀ‖²/n for scale."""

    name: str
    shape: tuple[int, int]
    rtn_err: float
    gptq_err: float
    signal: float
    n_tokens: int

    @property
    def rtn_rel(self) -> float:
        return self.rtn_err / self.signal if self.signal > 0 else math.nan

    @property
    def gptq_rel(self) -> float:
        return self.gptq_err / self.signal if self.signal > 0 else math.nan


@dataclass
class PTQResult:
    """A weight-quantized copy of a model; for GPTQ also each layer's reconstruction errors."""

    model: GPT
    fmt: NumberFormat
    method: str
    layers: list[LayerReport] = field(default_factory=list)


def effective_weight(layer: QLinear) -> torch.Tensor:
    """The weight `layer` multiplies with: fake_quant(W, w_fmt, axis=0) if trained with quantized weights."""
    with torch.no_grad():
        return fake_quant(layer.weight, layer.w_fmt, axis=0).detach()


def _set_weight(layer: QLinear, w_hat: torch.Tensor) -> None:
    """Store Ŵ and turn off the layer's own weight quantization (Ŵ is already on the target grid)."""
    with torch.no_grad():
        layer.weight.copy_(w_hat)
    layer.w_fmt = None


def _check_args(fmt: NumberFormat | str, method: str) -> NumberFormat:
    if method not in METHODS:
        raise UserError(f"PTQ method must be one of {METHODS}, got {method!r}")
    return parse_format(fmt) if isinstance(fmt, str) else fmt


class _StopForward(Exception):
    """Raised by a capture hook once the wanted layer's input has been seen."""


def _run_capture(module: torch.nn.Module, call: tuple, layer: QLinear, acc: HessianAccumulator) -> None:
    """Run `module(*args, **kwargs)` (call = (args, kwargs)) until `layer` is called; add its
    (activation-quantized) input to `acc`."""

    def hook(module: QLinear, inputs: tuple) -> None:
        _add_input(acc, module, inputs)
        raise _StopForward

    handle = layer.register_forward_pre_hook(hook)
    try:
        module(*call[0], **call[1])
    except _StopForward:
        pass
    finally:
        handle.remove()


def _module_calls(run: Callable[[], object], module: torch.nn.Module) -> tuple[tuple, dict]:
    """The (args, kwargs) of the first call of `module` while `run()` runs (stopped there)."""
    captured: list[tuple[tuple, dict]] = []

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        captured.append((tuple(a.detach() if torch.is_tensor(a) else a for a in args), dict(kwargs)))
        raise _StopForward

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError("GPTQ: a layer's parent module was not called by its block")
    return captured[0]


def _block_inputs(model: GPT, batches: Sequence[torch.Tensor]) -> list[tuple]:
    """The positional arguments of model.blocks[0] for each calibration batch (inputs = batch[:, :-1])."""
    device = model.wte.weight.device
    calls = [_module_calls(lambda b=b: model(b[:, :-1].to(device)), model.blocks[0]) for b in batches]
    return [args for args, _ in calls]


def _call_order(block: torch.nn.Module, args: tuple) -> list[QLinear]:
    """The QLinear layers of `block` in the order `block(*args)` first calls them."""
    order: list[QLinear] = []

    def hook(module: QLinear, inputs: tuple) -> None:
        if module not in order:
            order.append(module)

    hooks = [m.register_forward_pre_hook(hook) for m in block.modules() if isinstance(m, QLinear)]
    try:
        block(*args)
    finally:
        for handle in hooks:
            handle.remove()
    return order


def _gptq_model(
    model: GPT,
    fmt: NumberFormat,
    batches: Sequence[torch.Tensor],
    damp: float,
    block_size: int,
    act_order: bool,
) -> list[LayerReport]:
    """Quantize every QLinear of `model` in place with GPTQ, block by block and layer by layer in execution
    order; each layer's Hessian comes from inputs computed with all earlier layers already quantized.

    Forward passes run under `autocast_for(model)`, entered anew for each pass: autocast caches the bf16
    copy of each weight until its context exits, which would hide weights quantized in the meantime."""
    names = {m: n for n, m in model.named_modules()}
    in_blocks = {m for b in model.blocks for m in b.modules() if isinstance(m, QLinear)}
    if any(isinstance(m, QLinear) and m not in in_blocks for m in model.modules()):
        raise TypeError("GPTQ here handles QLinear layers inside model.blocks only")
    reports = []
    with autocast_for(model):
        inputs = _block_inputs(model, batches)
    for block in model.blocks:
        with autocast_for(model):
            order = _call_order(block, inputs[0])
        parents = {m: p for p in block.modules() for m in p.children() if isinstance(m, QLinear)}
        stage: tuple[torch.nn.Module, list] | None = None  # a parent module and its calls, still valid
        for layer in order:
            parent = parents[layer]
            if stage is None or stage[0] is not parent:
                # a parent's inputs depend only on layers run before it is entered: captured once per
                # parent, they stay valid while its own layers are quantized, so a later layer of the
                # same parent (attn.proj after attn.qkv) does not rerun the block up to it
                with autocast_for(model):
                    calls = [
                        ((*args,), {}) if parent is block
                        else _module_calls(lambda a=args, b=block: b(*a), parent)
                        for args in inputs
                    ]  # fmt: skip
                stage = (parent, calls)
            acc = HessianAccumulator(layer.in_features, layer.weight.device)
            with autocast_for(model):
                for call in stage[1]:
                    _run_capture(parent, call, layer, acc)
            h = acc.hessian()
            w = effective_weight(layer)
            w_gptq, _ = gptq_quantize_weight(
                w, h, channel_quantizer(w, fmt), damp=damp, block_size=block_size, act_order=act_order
            )
            w_rtn = fake_quant(w, fmt, axis=0)
            reports.append(
                LayerReport(
                    names[layer],
                    tuple(w.shape),
                    reconstruction_error(w, w_rtn, h),
                    reconstruction_error(w, w_gptq, h),
                    reconstruction_error(w, torch.zeros_like(w), h),
                    acc.n,
                )
            )
            _set_weight(layer, w_gptq)
        with autocast_for(model):
            inputs = [(block(*args), *args[1:]) for args in inputs]
    return reports


def ptq_quantize(
    model: GPT,
    fmt: NumberFormat | str,
    method: str = "rtn",
    calib_batches: Sequence[torch.Tensor] | None = None,
    *,
    damp: float = 0.01,
    block_size: int = 128,
    act_order: bool = False,
) -> PTQResult:
    """Weight-quantize a deep copy of `model` to `fmt` with `method` ("rtn" or "gptq"); `model` is untouched.

    `calib_batches`: token batches [b, T+1] from the training split (GPTQ only; see `calibration_batches`).
    The calibration forward passes run under the same autocast as evaluation (`autocast_for`).
    """
    fmt = _check_args(fmt, method)
    qmodel = copy.deepcopy(model).eval()
    layers = [m for m in qmodel.modules() if isinstance(m, QLinear)]
    if method == "rtn":
        for layer in layers:
            _set_weight(layer, fake_quant(effective_weight(layer), fmt, axis=0))
        return PTQResult(qmodel, fmt, method)
    if not calib_batches:
        raise UserError("GPTQ needs calibration batches from the training split")
    with torch.no_grad():
        reports = _gptq_model(qmodel, fmt, calib_batches, damp, block_size, act_order)
    return PTQResult(qmodel, fmt, method, reports)


def quantize_weights(
    model: GPT,
    fmt: NumberFormat | str,
    method: str = "rtn",
    calib_batches: Sequence[torch.Tensor] | None = None,
    **options: float | int | bool,
) -> GPT:
    """A copy of `model` whose every QLinear weight is quantize-dequantized to `fmt` (see `ptq_quantize`).

    `options`: damp, block_size, act_order for GPTQ (their defaults are those of `ptq_quantize`).
    """
    return ptq_quantize(model, fmt, method, calib_batches, **options).model


def ptq_loss(
    model: GPT,
    fmt: NumberFormat | str,
    method: str,
    calib_batches: Sequence[torch.Tensor] | None,
    eval_batches: Sequence[torch.Tensor],
    loss: str = "ce",
    **options: float | int | bool,
) -> float:
    """Validation loss (mean nats/token of `loss`, `evaluate_loss`) of the weight-quantized copy of `model`.

    δ_PTQ = ptq_loss(...) − evaluate_loss(model, eval_batches, loss) (Kumar et al. 2024).
    `options`: damp, block_size, act_order for GPTQ.
    """
    qmodel = quantize_weights(model, fmt, method, calib_batches, **options)
    return evaluate_loss(qmodel, eval_batches, loss)


@dataclass
class PTQEvaluation:
    """One weight-PTQ setting of a trained run: the quantized copy and its validation loss."""

    method: str
    fmt: NumberFormat
    model: GPT = field(repr=False)
    loss: float  # validation loss of `model` under the run's own training loss (nats/token; see evaluate_ptq)
    seconds: float  # quantization + evaluation time


def evaluate_ptq(
    model: GPT, source: Any, cfg: Any, ptq: dict[str, Any], val_loss: float | None = None
) -> Iterator[PTQEvaluation]:
    """Every requested weight PTQ of a trained run, scored against the run's own validation loss.

    `cfg` is the run's `scaling.train.TrainConfig`, `source` the token source it trained on, `ptq` the
    sweep's table {"methods", "formats", "calib_tokens", "eval_tokens"}. Each (method, format) quantizes a
    copy of `model` (`quantize_weights`; GPTQ calibrates on `calibration_batches` of the training split)
    and scores it with `evaluate_loss(..., cfg.loss)`, the run's own training loss (cross-entropy or
    StableMax), so a lossless format gives δ_PTQ = 0.

    Without ptq["eval_tokens"] (or with it ≥ cfg.eval_tokens) the copy is scored on the validation batches
    `train` used, and loss − val_loss is δ_PTQ exactly. With fewer tokens S, δ_PTQ is the paired
    difference on S validation tokens and the reported loss is

        L_q = val_loss + [L(q, S) − L(model, S)]

    (a control variate: the per-token differences between a model and its quantized copy vary far less
    than the per-token losses, so S can be a fraction of the run's evaluation at little cost in precision;
    bench/ptq_paired.py measures it). `val_loss` is the run's validation loss (computed here if None).
    Language-model runs and knowledge-capacity runs both go through here.
    """
    methods, formats = tuple(ptq.get("methods", ())), tuple(ptq.get("formats", ()))
    if not methods or not formats:
        return
    n_paired = ptq.get("eval_tokens")
    paired = n_paired is not None and int(n_paired) < cfg.eval_tokens
    val = source.val_batches(cfg.batch_size, cfg.seq_len, int(n_paired) if paired else cfg.eval_tokens)
    offset = 0.0
    if paired:
        if val_loss is None:
            full = source.val_batches(cfg.batch_size, cfg.seq_len, cfg.eval_tokens)
            val_loss = evaluate_loss(model, full, cfg.loss)
        offset = val_loss - evaluate_loss(model, val, cfg.loss)
    calib = None
    for method in methods:
        if method == "gptq" and calib is None:
            n_calib = int(ptq.get("calib_tokens", 16384))
            calib = calibration_batches(source, cfg.seq_len, n_calib, cfg.batch_size, cfg.seed)
        for name in formats:
            start = time.perf_counter()
            fmt = parse_format(name)
            qmodel = quantize_weights(model, fmt, method, calib if method == "gptq" else None)
            loss = evaluate_loss(qmodel, val, cfg.loss) + offset
            yield PTQEvaluation(method, fmt, qmodel, loss, time.perf_counter() - start)


def calibration_batches(
    source, seq_len: int, n_tokens: int = 32_768, batch_size: int = 32, seed: int = 0
) -> list:
    """GPTQ calibration data: ⌈n_tokens / (batch_size · seq_len)⌉ random training-split windows [b, T+1]
    from `source.train_batch`, drawn with seed + CALIB_SEED_OFFSET (deterministic, not the training batches).
    Frantar et al. use 128 windows of 2048 tokens; the default here (32k tokens) suits small models."""
    if n_tokens <= 0:
        raise UserError(f"calibration needs a positive number of tokens, got {n_tokens}")
    n_batches = math.ceil(n_tokens / (batch_size * seq_len))
    return [source.train_batch(k, batch_size, seq_len, seed + CALIB_SEED_OFFSET) for k in range(n_batches)]
