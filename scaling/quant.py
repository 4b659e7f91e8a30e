"""Fake quantization (quantize, then dequantize) with a straight-through gradient: the torch reference.

Integer formats, exactly as Kumar et al. 2024 ("Scaling Laws for Precision"): symmetric round-to-nearest
with an absmax scale,

    s = max|x| / (2^(b-1) - 1),   q = clamp(round(x / s), -2^(b-1), 2^(b-1) - 1),   x̂ = q · s,

one scale per tensor (activations, keys/values; `axis=None`) or per output channel (weights, `axis=0`).
Conventions, chosen to agree bit for bit with `torch.fake_quantize_per_{tensor,channel}_affine`
(zero_point = 0, quant_min = -2^(b-1), quant_max = 2^(b-1) - 1): x / s is computed as x · fl(1 / s)
and `round` is round-half-to-even (torch's `nearbyint`).

Float formats (fp8-e4m3, fp8-e5m2, fp6-e3m2, fp6-e2m3, fp4-e2m1): the same absmax scaling but to the
format's largest finite value, s = max|x| / max_fmt, then x · fl(1/s) is rounded to the nearest
representable value of the format (ties to even, subnormals kept, saturating at ±max_fmt instead of
overflowing) by `round_to_format`, and x̂ = q · s. `round_to_format` is exact: tests check it against
every representable value and, for fp8, against torch's float8_e4m3fn / float8_e5m2 casts.

Edge cases: a group (row or tensor) whose max|x| is 0 or tiny uses s = max(max|x| / q_max, 2^-126), so
all-zero rows come out as zeros, never NaN. A group containing inf or NaN comes out all NaN
(max|x| is inf or NaN, and so is every x̂ of the group); training detects that as divergence.

Arithmetic is in fp32 whatever the input dtype; the result is cast back to the input dtype (for bf16
inputs that cast rounds the dequantized value once more: the grid q · s is not representable in bf16).

Backward is the straight-through estimator: ∂x̂/∂x = 1 where round(x / s) lies inside the clamp range,
0 outside; s is treated as a constant. With the absmax scale every finite input lies inside the range
(|x · fl(1/s)| <= q_max · (1 + 2^-22) < q_max + 1/2), so nothing is saved for backward and the gradient
passes through unchanged. Only when the caller supplies a `scale` (e.g. GPTQ) can inputs fall outside;
then a one-byte-per-element mask is kept.

On CUDA tensors `fake_quant` runs the fused, bit-identical Triton kernels of `scaling.kernels`
(`scaling.kernels.set_backend` or SCALEFIT_QUANT_BACKEND=torch|triton|auto forces one or the other).
"""

from __future__ import annotations

import os
import sys

import torch

from scaling.formats import FloatFormat, IntFormat, NumberFormat

#: Smallest scale used (fp32's smallest normal number): keeps 1 / s finite for all-zero or tiny groups.
MIN_SCALE = 2.0**-126


def format_max(fmt: NumberFormat) -> float:
    """The value that max|x| is scaled to: q_max = 2^(b-1) - 1 for integers, the largest finite float."""
    return float(fmt.qmax) if isinstance(fmt, IntFormat) else fmt.max


def absmax_scale(x: torch.Tensor, fmt: NumberFormat, axis: int | None = None) -> torch.Tensor:
    """fp32 scale s = max(max|x| / format_max(fmt), 2^-126): a 0-d tensor for `axis=None`, else one per
    index of `axis` (shaped to broadcast against `x`). NaN anywhere in a group gives a NaN scale."""
    if axis is None:
        lo, hi = torch.aminmax(x)  # one pass, no temporary (x.abs().amax() allocates a full copy)
        amax = torch.maximum(hi, -lo)
    else:
        dims = [d for d in range(x.ndim) if d != axis % x.ndim]
        amax = x.abs().amax(dim=dims, keepdim=True)
    # max|x| is exact in x's own dtype. Divide by a tensor, not a Python number: on CUDA, torch turns
    # division by a CPU scalar into multiplication by its reciprocal, which can differ in the last bit.
    amax = amax.float()
    return (amax / amax.new_full((), format_max(fmt))).clamp_(min=MIN_SCALE)


def _round_to_format_(y: torch.Tensor, fmt: FloatFormat, saturate: bool) -> torch.Tensor:
    """In-place core of `round_to_format`: overwrites fp32 `y` with its rounded value and returns it."""
    if saturate:
        y.clamp_(-fmt.max, fmt.max)
    u = y.view(torch.int32) & 0x7F800000  # 2^E: the exponent bits of |y|
    lo, hi = ((e - fmt.man_bits + 127) << 23 for e in (fmt.emin, fmt.emax))
    u.sub_(fmt.man_bits << 23).clamp_(lo, hi)
    u = u.view(torch.float32)  # u = 2^(E - man_bits), E clamped to [emin, emax]
    return y.div_(u).round_().mul_(u)


def round_to_format(y: torch.Tensor, fmt: FloatFormat, saturate: bool = True) -> torch.Tensor:
    """Round fp32 `y` to the nearest value of `fmt` (ties to even, with subnormals), exactly; a new tensor.

    With `saturate`, magnitudes beyond the format's max become ±max; without it they round as if the
    exponent range were unbounded above (used to tell whether a value lies inside the range).
    Method: with E = the fp32 exponent of |y| clamped to [emin, emax] of the format, the format's values
    near |y| are the multiples of u = 2^(E - man_bits); y / u is exact (u is a power of two), `round` is
    round-half-to-even, and multiplying back by u is exact. NaN stays NaN; the sign (also of zero) is kept.

    This is exact for every format, fp8 included: tests/test_formats.py checks it against every
    representable value, a float64 nearest-even search, and torch's float8_e4m3fn / float8_e5m2 casts.
    Those casts are not used here: on CPU the round trip through them measured 3-8x slower (2M values).
    """
    if y.dtype != torch.float32:
        raise TypeError(f"round_to_format needs float32, got {y.dtype}")
    return _round_to_format_(y.clone(), fmt, saturate)


def fake_quant_reference(
    x: torch.Tensor,
    fmt: NumberFormat,
    axis: int | None = None,
    scale: torch.Tensor | None = None,
    need_mask: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The pure-torch forward: (x̂ in fp32, STE mask or None). No autograd; see `fake_quant`.

    `scale` defaults to `absmax_scale(x, fmt, axis)`; the mask (bool, True = gradient passes) is
    computed only if `need_mask`. One temporary the size of `x`, updated in place.
    """
    s = absmax_scale(x, fmt, axis) if scale is None else scale.float()
    y = x * (1.0 / s) if x.dtype == torch.float32 else x.float().mul_(1.0 / s)  # y: the one temporary
    mask = None
    if isinstance(fmt, IntFormat):
        y.round_()
        if need_mask:
            mask = (y >= fmt.qmin) & (y <= fmt.qmax)
        if scale is not None:  # with the absmax scale |y| <= q_max already (see module docstring)
            y.clamp_(fmt.qmin, fmt.qmax)
    elif isinstance(fmt, FloatFormat):
        if need_mask:
            mask = round_to_format(y, fmt, saturate=False).abs_() <= fmt.max
        _round_to_format_(y, fmt, saturate=True)
    else:
        raise TypeError(f"not a number format: {fmt!r}")
    return y.mul_(s), mask


class _FakeQuant(torch.autograd.Function):
    """x ↦ x̂ forward; straight-through backward (grad · mask, or grad unchanged when no mask)."""

    @staticmethod
    def forward(ctx, x, fmt, axis, scale, backend):  # type: ignore[override]
        need_mask = scale is not None and x.requires_grad
        if backend == "triton":
            from scaling.kernels import triton_fake_quant

            out, mask = triton_fake_quant(x, fmt, axis, scale, need_mask)
        else:
            out, mask = fake_quant_reference(x, fmt, axis, scale, need_mask)
        if need_mask:
            ctx.save_for_backward(mask)
        ctx.has_mask = need_mask
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        if ctx.has_mask:
            (mask,) = ctx.saved_tensors
            grad = grad * mask
        return grad, None, None, None, None


def fake_quant(
    x: torch.Tensor,
    fmt: NumberFormat | None,
    axis: int | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Quantize-dequantize `x` to `fmt` with a straight-through gradient; same shape and dtype as `x`.

    `fmt=None` returns `x` itself (not quantized). `axis=None`: one absmax scale for the whole tensor
    (activations, keys/values); `axis=0`: one per row, i.e. per output channel of an `nn.Linear.weight`.
    `scale`: use this fp32 scale (broadcastable to `x`) instead of the absmax one; inputs beyond the
    clamp range then get zero gradient. See the module docstring for formulas and conventions.
    """
    if fmt is None:
        return x
    if not x.is_floating_point():
        raise TypeError(f"fake_quant needs a floating-point tensor, got {x.dtype}")
    if x.numel() == 0:
        return x.clone()
    return _FakeQuant.apply(x, fmt, axis, scale, _backend_for(x))


def _backend_for(x: torch.Tensor) -> str:
    """ "triton" or "torch" (see `scaling.kernels.backend_for`); CPU runs never import triton."""
    if x.is_cuda or "scaling.kernels" in sys.modules or "SCALEFIT_QUANT_BACKEND" in os.environ:
        from scaling import kernels

        return kernels.backend_for(x)
    return "torch"
