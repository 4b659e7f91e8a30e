"""Triton fake-quant kernels, run in the Triton interpreter on CPU tensors: bit-exact against the torch
reference for every format, plus the backend switch."""

from __future__ import annotations

import importlib
import math
import os
import sys

import pytest
import torch

_saved_env = os.environ.get("TRITON_INTERPRET")
os.environ["TRITON_INTERPRET"] = "1"  # must precede the kernels' definition (import of scaling.kernels)
pytest.importorskip("triton")

from scaling import kernels  # noqa: E402
from scaling.errors import UserError  # noqa: E402
from scaling.formats import FLOAT_FORMATS, IntFormat  # noqa: E402
from scaling.quant import fake_quant, fake_quant_reference, format_max  # noqa: E402

if not kernels.INTERPRET:  # imported earlier in this process without the interpreter
    kernels = importlib.reload(sys.modules["scaling.kernels"])

# numpy warns about inf * 0 and 1 / 0 inside the interpreter: the inf/NaN cases do that on purpose
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:triton.*")

DEFAULT_BLOCKS = {"BLOCK": kernels.BLOCK, "MAX_ROW_BLOCK": kernels.MAX_ROW_BLOCK}
ALL_FORMATS = [IntFormat(b) for b in range(2, 17)] + list(FLOAT_FORMATS.values())


@pytest.fixture(autouse=True, scope="module")
def interpreter_env():
    """The interpreter reads TRITON_INTERPRET at launch too; restore the environment after this module."""
    yield
    if _saved_env is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _saved_env


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Tiny blocks so that small tensors still span several programs and the multi-block row loop."""
    monkeypatch.setattr(kernels, "BLOCK", 64)
    monkeypatch.setattr(kernels, "MAX_ROW_BLOCK", 32)


def assert_bit_equal(got: torch.Tensor, want: torch.Tensor) -> None:
    """Same dtype, same NaN positions, identical bit patterns everywhere else (so -0.0 != +0.0)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = want.isnan()
    assert torch.equal(got.isnan(), nan)
    bits = {4: torch.int32, 2: torch.int16, 8: torch.int64}[want.element_size()]
    assert torch.equal(got[~nan].view(bits), want[~nan].view(bits))


def check(x, fmt, axis=None, scale=None, need_mask=False):
    want, want_mask = fake_quant_reference(x, fmt, axis, scale, need_mask)
    got, got_mask = kernels.triton_fake_quant(x, fmt, axis, scale, need_mask)
    assert_bit_equal(got, want.to(x.dtype))
    if need_mask:
        assert got_mask.dtype == torch.bool and torch.equal(got_mask, want_mask)


def _x(shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp(
        2 * torch.randn(shape[0], *[1] * (len(shape) - 1), generator=g)
    )
    if shape[0] > 2:
        x[1] = 0.0  # an all-zero row
    return x.to(dtype)


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=str)
def test_random_shapes(fmt):
    """Per-tensor and per-row, shapes that are not multiples of the block (including the row loop)."""
    for i, shape in enumerate([(1,), (5, 7), (3, 45), (2, 3, 11)]):
        x = _x(shape, seed=i)
        check(x, fmt, axis=None)
        check(x, fmt, axis=0)
    check(_x((4, 6, 5), seed=9), fmt, axis=1)


SOME_FORMATS = [IntFormat(3), IntFormat(8), FLOAT_FORMATS["fp8-e4m3"], FLOAT_FORMATS["fp4-e2m1"]]


@pytest.mark.parametrize("fmt", SOME_FORMATS, ids=str)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_low_precision_inputs(fmt, dtype):
    x = _x((6, 37), seed=3, dtype=dtype)
    check(x, fmt, axis=None)
    check(x, fmt, axis=0)


@pytest.mark.parametrize("fmt", [IntFormat(4), FLOAT_FORMATS["fp6-e3m2"]], ids=str)
def test_default_block_sizes_and_strided_input(fmt, monkeypatch):
    """The block sizes used on the GPU (rows in registers, several per-tensor programs); a transposed view."""
    for name, value in DEFAULT_BLOCKS.items():
        monkeypatch.setattr(kernels, name, value)
    x = _x((3, 1500), seed=7)
    check(x, fmt, axis=None)
    check(x, fmt, axis=0)
    check(x.t(), fmt, axis=1)  # per-row of the underlying tensor, through a transposed view
    check(x.t(), fmt, axis=None)


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=str)
def test_nonfinite_and_extremes(fmt):
    """Rows with inf / NaN come out all NaN (defined behaviour, same as the reference); zero, tiny and huge
    rows stay finite."""
    x = _x((6, 9), seed=4)
    x[0, 3] = math.inf
    x[2, 0] = math.nan
    x[3, 5] = -math.inf
    x[4] = torch.tensor([1e-39, -3e-40, 0.0, 5e-45, 1e-38, -1e-38, 2e-39, 0.0, -0.0])
    x[5] = torch.tensor([3e38, -3e38, 1.0, -1e30, 0.0, 1e38, -2e38, 7.0, 3.4e38])
    check(x, fmt, axis=0)
    check(x, fmt, axis=None)
    out, _ = kernels.triton_fake_quant(x, fmt, 0)
    assert out[[0, 2, 3]].isnan().all() and out[[1, 4, 5]].isfinite().all()


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=str)
def test_given_scale_and_mask(fmt):
    """Caller-supplied scales (scalar, per row, per element as GPTQ uses them): values and STE mask."""
    x = _x((5, 13), seed=5)
    x[0, 0] = math.nan
    row_scale = x[:, 1:].abs().amax(dim=1, keepdim=True) / format_max(fmt) / 2  # about half are clamped
    check(x, fmt, axis=0, scale=row_scale, need_mask=True)
    check(x, fmt, scale=torch.tensor(0.05), need_mask=True)
    col = x[:, 3].contiguous()
    check(col, fmt, scale=row_scale.flatten(), need_mask=True)
    check(x.bfloat16(), fmt, axis=0, scale=row_scale, need_mask=False)


@pytest.mark.parametrize("fmt", list(FLOAT_FORMATS.values()), ids=str)
def test_float_table_through_kernel(fmt):
    """With scale 1: every representable value, every midpoint (ties to even) and its fp32 neighbours."""
    vals = torch.tensor(fmt.finite_values(), dtype=torch.float32)
    mids = (vals[1:] + vals[:-1]) / 2
    pts = torch.cat([vals, mids, torch.nextafter(mids, vals[1:]), torch.nextafter(mids, vals[:-1]),
                     torch.tensor([fmt.max * 1.01, -fmt.max * 3, fmt.min_subnormal / 2, -0.0])])  # fmt: skip
    check(pts, fmt, scale=torch.tensor(1.0), need_mask=True)
    got, _ = kernels.triton_fake_quant(vals, fmt, scale=torch.tensor(1.0))
    assert torch.equal(got, vals)


def test_int_ties_through_kernel():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 7.5, 8.5, -8.5, -9.5, 0.25, -0.25])
    for bits in (2, 4, 5):
        check(x, IntFormat(bits), scale=torch.tensor(1.0), need_mask=True)


def test_autograd_through_triton_backend():
    fmt = IntFormat(4)
    x = _x((4, 10), seed=6).requires_grad_()
    g = torch.randn(4, 10)
    s = x.detach().abs().amax(dim=1, keepdim=True) / 14
    outs = {}
    for name in ("torch", "triton"):
        with kernels.use_backend(name):
            assert kernels.backend_for(x) == name
            y = fake_quant(x, fmt, axis=0)
            y_s = fake_quant(x, fmt, axis=0, scale=s)
            grads = torch.autograd.grad((y * g).sum() + (y_s * g).sum(), x)
            outs[name] = (y.detach(), y_s.detach(), grads[0])
    for a, b in zip(outs["torch"], outs["triton"], strict=True):
        assert_bit_equal(a, b)
    assert (outs["triton"][2] != 2 * g).any()  # some elements outside the clamp range lost their gradient


def test_backend_switch(monkeypatch):
    x = torch.ones(3)
    assert kernels.get_backend() == "auto" and kernels.backend_for(x) == "torch"  # CPU tensor
    with pytest.raises(UserError, match="backend"):
        kernels.set_backend("cuda")
    with kernels.use_backend("triton"):
        assert kernels.backend_for(x) == "triton"  # allowed here: interpreter
        monkeypatch.setattr(kernels, "INTERPRET", False)
        with pytest.raises(UserError, match="CUDA"):
            kernels.backend_for(x)
        monkeypatch.setattr(kernels, "TRITON_ERROR", "No module named 'triton'")
        with pytest.raises(UserError, match="triton cannot be imported"):
            fake_quant(x, IntFormat(8))
    assert kernels.get_backend() == "auto"


COMPILE_SCRIPT = r"""
import json, re
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from scaling import kernels as K
from scaling.formats import IntFormat, FLOAT_FORMATS

F32, BF16 = {"x_ptr": "*fp32", "out_ptr": "*fp32"}, {"x_ptr": "*bf16", "out_ptr": "*i16"}
APPLY = {"mask_ptr": "*u8", "N": "i32", "C": "i32"}
NO_MASK = {"FROM_AMAX": True, "PER_ROW": False, "NEED_MASK": False}
MASK = {"FROM_AMAX": False, "PER_ROW": True, "NEED_MASK": True}
out = {}
for fmt in (IntFormat(8), FLOAT_FORMATS["fp8-e4m3"]):
    c = K._format_constants(fmt)
    cases = {
        "rows": (K._rows_kernel, {**BF16, "C": "i32"}, {**c, "OUT_BF16": True, "SINGLE": True}),
        "rows_loop": (K._rows_kernel, {**F32, "C": "i32"}, {**c, "OUT_BF16": False, "SINGLE": False}),
        "absmax": (K._absmax_kernel, {"x_ptr": "*fp32", "amax_bits_ptr": "*i32", "N": "i32"}, {}),
        "apply": (K._apply_kernel, {**F32, **APPLY, "s_ptr": "*i32"}, {**c, "OUT_BF16": False, **NO_MASK}),
        "apply_mask": (K._apply_kernel, {**F32, **APPLY, "s_ptr": "*fp32"}, {**c, "OUT_BF16": False, **MASK}),
    }
    for name, (fn, sig, consts) in cases.items():
        consts = {**consts, ("ROW_BLOCK" if fn is K._rows_kernel else "BLOCK"): 1024}
        src = ASTSource(fn=fn, signature={**sig, **{k: "constexpr" for k in consts}}, constexprs=consts)
        options = {"enable_fp_fusion": False}
        ptx = triton.compile(src, target=GPUTarget("cuda", 80, 32), options=options).asm["ptx"]
        fdiv = sorted(set(re.findall(r"div\.[a-z]+\.f32", ptx)))
        fma = len(re.findall(r"\bfma\.", ptx))
        out[f"{fmt.name}/{name}"] = {"fma": fma, "ftz": "ftz" in ptx, "fdiv": fdiv}
print(json.dumps(out))
"""


def test_kernels_compile_for_cuda_without_fma_or_ftz():
    """Compile every kernel variant to PTX/cubin for sm_80 (no GPU needed): no fused multiply-adds (they
    would skip a rounding), fp32 division only as IEEE div.rn, no flush-to-zero of subnormals."""
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], env=env, capture_output=True, text=True)
    if run.returncode != 0 and "ptxas" in run.stderr and "not found" in run.stderr:
        pytest.skip("no ptxas available to compile for CUDA")
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(results) == 10
    for name, r in results.items():
        assert r["fma"] == 0 and not r["ftz"], name
        assert set(r["fdiv"]) <= {"div.rn.f32"}, name
    assert results["int8/apply"]["fdiv"] == ["div.rn.f32"]
