"""Fused Triton kernels for fake quantization, and the switch that picks them or the torch reference.

The kernels compute exactly what `scaling.quant.fake_quant_reference` computes (the formulas are in
`scaling.quant`): absmax scale s = max(max|x| / format_max, 2^-126), y = x · fl(1/s), y rounded to the
format (integers: round half to even and clamp; floats: round to nearest even with subnormals and
saturation), x̂ = q · s, written in the input dtype. They agree with it bit for bit (tests/test_kernels.py
runs them in the Triton interpreter, and compiles them for sm_80 to check the PTX has no FMA, only IEEE
fp32 division and no flush-to-zero), so the GPU path quantizes exactly as the CPU path does; sweeps
differ between the two only through matmul and reduction order. Rules that make that true:

- every division is IEEE round-to-nearest (`tl.math.div_rn`, Triton's `/` may be approximate), and
  floating-point contraction is off (`enable_fp_fusion=False`: an FMA would skip the rounding of x · fl(1/s));
- integer rounding is (y + 1.5·2^23) − 1.5·2^23 on y clamped to [q_min − 1, q_max + 1] (exact there);
- the sign of x is copied onto q, so −0.0 comes out where torch's `round` gives −0.0;
- bf16 outputs are rounded to nearest even with integer arithmetic (the interpreter truncates in `.to`);
- max|x| maps NaN to +inf. Either way the whole group (row or tensor) comes out NaN, as in the reference
  (its scale is inf or NaN): non-finite input poisons its scaling group. NaN payloads and signs may differ.

Memory passes (N = elements): per-channel (`axis=0`) rows of up to `MAX_ROW_BLOCK` elements stay in
registers: one read and one write of x. Longer rows are read twice. Per-tensor: two reads and one write
(pass 1: block maxima combined by an atomic max on the fp32 bit pattern, valid because the values are
non-negative; pass 2: quantize). Backward saves nothing with the absmax scale (the straight-through gradient
is the identity there, see `scaling.quant`); with a caller-supplied scale the kernel also writes a one-byte
mask (inside the clamp range or not).

Dispatch: `backend_for(x)` says which implementation `fake_quant` uses. Backend "auto" (default) runs
Triton on CUDA tensors when triton imports, the torch reference otherwise; "torch" always uses the
reference; "triton" always uses the kernels (CUDA tensors, or CPU tensors when this module was imported
with TRITON_INTERPRET=1) and raises UserError if triton is missing. Set it with `set_backend(name)`, the
`use_backend(name)` context manager, or the environment variable SCALEFIT_QUANT_BACKEND.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from scaling.errors import UserError
from scaling.formats import IntFormat, NumberFormat

try:
    import triton
    import triton.language as tl

    TRITON_ERROR: str | None = None
except ImportError as e:  # pragma: no cover - triton is installed wherever the tests run
    triton = tl = None
    TRITON_ERROR = str(e)

BACKENDS = ("auto", "torch", "triton")
#: Kernels were defined for the Triton interpreter (CPU tensors): TRITON_INTERPRET=1 at import time.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
#: Longest row kept in registers by the per-channel kernel (one read, one write per element).
MAX_ROW_BLOCK = 8192
BLOCK = 1024  # elements per program for the per-tensor and explicit-scale kernels

_backend = "auto"


def set_backend(name: str) -> None:
    """Choose the fake-quant implementation: "auto" (Triton on CUDA tensors), "torch" or "triton"."""
    global _backend
    if name not in BACKENDS:
        raise UserError(f"quant backend must be one of {BACKENDS}, got {name!r}")
    _backend = name


def get_backend() -> str:
    return _backend


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """`with use_backend("torch"): ...` runs the block with that backend and restores the previous one."""
    previous = _backend
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def backend_for(x: torch.Tensor) -> str:
    """ "triton" or "torch": which implementation fake-quantizes `x` under the current backend setting."""
    if _backend == "torch":
        return "torch"
    if _backend == "auto":
        return "triton" if x.is_cuda and TRITON_ERROR is None else "torch"
    if TRITON_ERROR is not None:
        raise UserError(f"quant backend 'triton' was forced but triton cannot be imported ({TRITON_ERROR})")
    if not (x.is_cuda or INTERPRET):
        raise UserError(
            f"quant backend 'triton' needs CUDA tensors, got a {x.device.type} tensor "
            "(or import scaling.kernels with TRITON_INTERPRET=1 to run the kernels in the interpreter)"
        )
    return "triton"


if "SCALEFIT_QUANT_BACKEND" in os.environ:
    set_backend(os.environ["SCALEFIT_QUANT_BACKEND"])


if triton is not None:

    @triton.jit
    def _magnitude(x):
        """|x| with NaN read as +inf (so the group's scale, and its output, become inf / NaN)."""
        a = tl.abs(x)
        return tl.where(a == a, a, float("inf"))

    @triton.jit
    def _absmax(x):
        return tl.max(_magnitude(x), 0)

    @triton.jit
    def _scale(amax, DIVISOR: tl.constexpr, MIN_SCALE: tl.constexpr):
        s = tl.math.div_rn(amax, DIVISOR)
        return tl.where(s < MIN_SCALE, MIN_SCALE, s)

    @triton.jit
    def _round_magnitude(a, E_LO: tl.constexpr, E_HI: tl.constexpr, MAN: tl.constexpr):
        """Round a >= 0 to the float format's grid: with E = exponent of a clamped to [emin, emax], adding
        c = 2^23 · 2^(E - MAN) rounds a to a multiple of 2^(E - MAN) (the fp32 spacing in [c, 2c)) with
        ties to even, and subtracting c is exact. Same result as scaling.quant.round_to_format."""
        e = a.to(tl.int32, bitcast=True) >> 23
        e = tl.where(e < E_LO, E_LO, tl.where(e > E_HI, E_HI, e))
        c = ((e + (23 - MAN)) << 23).to(tl.float32, bitcast=True)
        return (a + c) - c

    @triton.jit
    def _quant_dequant(
        x, s, IS_INT: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr, FMAX: tl.constexpr,
        E_LO: tl.constexpr, E_HI: tl.constexpr, MAN: tl.constexpr, NEED_MASK: tl.constexpr,
    ):  # fmt: skip
        """(x̂, inside) for fp32 x and scale s; `inside` is the STE mask (only meaningful if NEED_MASK)."""
        y = x * tl.math.div_rn(1.0, s)
        if IS_INT:
            y = tl.where(y < QMIN - 1.0, QMIN - 1.0, tl.where(y > QMAX + 1.0, QMAX + 1.0, y))
            r = (y + 12582912.0) - 12582912.0  # 1.5 * 2^23: round half to even for |y| < 2^22
            inside = (r >= QMIN) & (r <= QMAX)
            q = tl.where(r < QMIN, QMIN, tl.where(r > QMAX, QMAX, r))
        else:
            a = tl.abs(y)
            if NEED_MASK:
                inside = _round_magnitude(a, E_LO, E_HI, MAN) <= FMAX
            else:
                inside = a == a
            q = _round_magnitude(tl.where(a > FMAX, FMAX, a), E_LO, E_HI, MAN)
        sign = (x.to(tl.int32, bitcast=True) >> 31) << 31
        q = (q.to(tl.int32, bitcast=True) | sign).to(tl.float32, bitcast=True)
        return q * s, inside

    @triton.jit
    def _store(out_ptr, offs, v, m, OUT_BF16: tl.constexpr):
        """Store fp32 `v` in the output dtype; bf16 rounded to nearest even by hand (exact everywhere)."""
        if OUT_BF16:
            b = v.to(tl.int32, bitcast=True)
            r = (b + (0x7FFF + ((b >> 16) & 1))) >> 16
            r = tl.where(v == v, r, 0x7FC0)
            tl.store(out_ptr + offs, r.to(tl.int16), mask=m)
        else:
            tl.store(out_ptr + offs, v.to(out_ptr.dtype.element_ty), mask=m)

    @triton.jit
    def _rows_kernel(
        x_ptr, out_ptr, C, DIVISOR: tl.constexpr, MIN_SCALE: tl.constexpr,
        IS_INT: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr, FMAX: tl.constexpr,
        E_LO: tl.constexpr, E_HI: tl.constexpr, MAN: tl.constexpr,
        OUT_BF16: tl.constexpr, ROW_BLOCK: tl.constexpr, SINGLE: tl.constexpr,
    ):  # fmt: skip
        """One program per row of a [R, C] tensor: absmax scale of the row, then quantize it."""
        row = tl.program_id(0).to(tl.int64) * C
        cols = tl.arange(0, ROW_BLOCK)
        if SINGLE:  # the row fits in registers: one read, one write
            m = cols < C
            x = tl.load(x_ptr + row + cols, mask=m, other=0.0).to(tl.float32)
            s = _scale(_absmax(x), DIVISOR, MIN_SCALE)
            v, _ = _quant_dequant(x, s, IS_INT, QMIN, QMAX, FMAX, E_LO, E_HI, MAN, False)
            _store(out_ptr + row, cols, v, m, OUT_BF16)
        else:
            acc = tl.zeros((ROW_BLOCK,), dtype=tl.float32)
            for start in range(0, C, ROW_BLOCK):
                m = start + cols < C
                x = tl.load(x_ptr + row + start + cols, mask=m, other=0.0).to(tl.float32)
                acc = tl.maximum(acc, _magnitude(x))
            s = _scale(tl.max(acc, 0), DIVISOR, MIN_SCALE)
            for start in range(0, C, ROW_BLOCK):
                m = start + cols < C
                x = tl.load(x_ptr + row + start + cols, mask=m, other=0.0).to(tl.float32)
                v, _ = _quant_dequant(x, s, IS_INT, QMIN, QMAX, FMAX, E_LO, E_HI, MAN, False)
                _store(out_ptr + row + start, cols, v, m, OUT_BF16)

    @triton.jit
    def _absmax_kernel(x_ptr, amax_bits_ptr, N, BLOCK: tl.constexpr):
        """Pass 1 of per-tensor: atomic max of block maxima on the int32 view (values are >= 0)."""
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < N, other=0.0).to(tl.float32)
        tl.atomic_max(amax_bits_ptr, _absmax(x).to(tl.int32, bitcast=True))

    @triton.jit
    def _apply_kernel(
        x_ptr, out_ptr, mask_ptr, s_ptr, N, C, DIVISOR: tl.constexpr, MIN_SCALE: tl.constexpr,
        IS_INT: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr, FMAX: tl.constexpr,
        E_LO: tl.constexpr, E_HI: tl.constexpr, MAN: tl.constexpr, OUT_BF16: tl.constexpr,
        FROM_AMAX: tl.constexpr, PER_ROW: tl.constexpr, NEED_MASK: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        """Quantize with a given scale: s_ptr holds max|x| bits (FROM_AMAX, per tensor) or scales, one per
        run of C consecutive elements (PER_ROW) or a single one."""
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < N
        x = tl.load(x_ptr + offs, mask=m, other=0.0).to(tl.float32)
        if FROM_AMAX:
            s = _scale(tl.load(s_ptr).to(tl.float32, bitcast=True), DIVISOR, MIN_SCALE)
        elif PER_ROW:
            s = tl.load(s_ptr + offs // C, mask=m, other=1.0)
        else:
            s = tl.load(s_ptr)
        v, inside = _quant_dequant(x, s, IS_INT, QMIN, QMAX, FMAX, E_LO, E_HI, MAN, NEED_MASK)
        _store(out_ptr, offs, v, m, OUT_BF16)
        if NEED_MASK:
            tl.store(mask_ptr + offs, inside.to(tl.uint8), mask=m)


def _format_constants(fmt: NumberFormat) -> dict:
    """The constexpr arguments describing `fmt` (float-format fields are unused for integers and v.v.)."""
    from scaling.quant import MIN_SCALE, format_max

    if isinstance(fmt, IntFormat):
        ints = {"IS_INT": True, "QMIN": float(fmt.qmin), "QMAX": float(fmt.qmax), "FMAX": 0.0}
        floats = {"E_LO": 0, "E_HI": 0, "MAN": 0}
    else:
        ints = {"IS_INT": False, "QMIN": 0.0, "QMAX": 0.0, "FMAX": fmt.max}
        floats = {"E_LO": fmt.emin + 127, "E_HI": fmt.emax + 127, "MAN": fmt.man_bits}
    return {"DIVISOR": format_max(fmt), "MIN_SCALE": MIN_SCALE, **ints, **floats}


def _scale_layout(scale: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
    """(contiguous fp32 scales, run length C, per_row) for a caller-supplied scale broadcastable to x."""
    s = scale.to(device=x.device, dtype=torch.float32)
    if s.numel() == 1:
        return s.reshape(1).contiguous(), x.numel(), False
    shape = (1,) * (x.ndim - s.ndim) + tuple(s.shape)
    if len(shape) == x.ndim and shape[0] == x.shape[0] and all(d == 1 for d in shape[1:]):
        return s.reshape(-1).contiguous(), x.numel() // x.shape[0], True
    return s.expand(x.shape).contiguous().reshape(-1), 1, True


def triton_fake_quant(
    x: torch.Tensor,
    fmt: NumberFormat,
    axis: int | None = None,
    scale: torch.Tensor | None = None,
    need_mask: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fused forward: (x̂ in x's dtype, STE mask or None); same contract as `fake_quant_reference`."""
    if TRITON_ERROR is not None:
        raise UserError(f"triton cannot be imported ({TRITON_ERROR})")
    moved = axis is not None and scale is None and axis % x.ndim != 0
    xc = (x.movedim(axis, 0) if moved else x).contiguous()
    out = torch.empty_like(xc)
    out_bits = out.view(torch.int16) if x.dtype == torch.bfloat16 else out
    consts = {**_format_constants(fmt), "OUT_BF16": x.dtype == torch.bfloat16}
    n = xc.numel()
    mask = None
    if scale is None and axis is not None:
        rows = xc.shape[0]
        cols = n // rows
        row_block = min(max(triton.next_power_of_2(cols), 16), MAX_ROW_BLOCK)
        _rows_kernel[(rows,)](
            xc, out_bits, cols, **consts, ROW_BLOCK=row_block, SINGLE=cols <= row_block,
            num_warps=min(max(row_block // 256, 1), 8), enable_fp_fusion=False,
        )  # fmt: skip
    else:
        grid = (triton.cdiv(n, BLOCK),)
        if scale is None:
            s = torch.zeros(1, dtype=torch.int32, device=x.device)  # bits of max|x| (0.0)
            _absmax_kernel[grid](xc, s, n, BLOCK=BLOCK)
            run, per_row = n, False
        else:
            s, run, per_row = _scale_layout(scale, xc)
        if need_mask:
            mask = torch.empty(xc.shape, dtype=torch.uint8, device=x.device)
        _apply_kernel[grid](
            xc, out_bits, mask if need_mask else out_bits, s, n, run, **consts,
            FROM_AMAX=scale is None, PER_ROW=per_row, NEED_MASK=need_mask, BLOCK=BLOCK,
            num_warps=4, enable_fp_fusion=False,
        )  # fmt: skip
        mask = mask.view(torch.bool) if need_mask else None
    if moved:
        out = out.movedim(0, axis)
    return out, mask
