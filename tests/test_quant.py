"""Fake quantization: bit-exact agreement with torch's fake_quantize ops, float64 references, STE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scaling.formats import FLOAT_FORMATS, IntFormat
from scaling.quant import MIN_SCALE, absmax_scale, fake_quant, round_to_format

INT_FORMATS = [IntFormat(b) for b in range(2, 17)]
ALL_FORMATS = INT_FORMATS + list(FLOAT_FORMATS.values())


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * torch.exp(
        torch.randn(shape[0], *[1] * (len(shape) - 1), generator=g)
    )
    return x


@pytest.mark.parametrize("fmt", INT_FORMATS, ids=str)
def test_int_matches_torch_fake_quantize(fmt):
    """Same scale, zero_point 0, quant range [-2^(b-1), 2^(b-1)-1]: same values (both round half even)."""
    x = _x(48, 37)
    x[5] = 0.0  # an all-zero row must give zeros, not NaN
    s = absmax_scale(x, fmt, axis=0)
    want = torch.fake_quantize_per_channel_affine(
        x, s.flatten(), torch.zeros(48, dtype=torch.int32), 0, fmt.qmin, fmt.qmax
    )
    got = fake_quant(x, fmt, axis=0)
    assert torch.equal(got, want) and not got.isnan().any() and (got[5] == 0).all()
    st = absmax_scale(x, fmt)
    want_t = torch.fake_quantize_per_tensor_affine(x, float(st), 0, fmt.qmin, fmt.qmax)
    assert torch.equal(fake_quant(x, fmt), want_t)


def test_int_ties_round_half_even():
    fmt = IntFormat(4)  # qmax 7
    x = torch.tensor([7.0, 0.5, 1.5, 2.5, -0.5, -2.5, 3.5])  # scale 1 exactly
    assert fake_quant(x, fmt).tolist() == [7.0, 0.0, 2.0, 2.0, -0.0, -2.0, 4.0]


@pytest.mark.parametrize(
    "fmt", [IntFormat(2), IntFormat(3), IntFormat(4), IntFormat(8), IntFormat(16)], ids=str
)
def test_int_against_float64_reference(fmt):
    """Kumar et al.'s formula in float64 with exact division x / s: same result wherever x / s is not within
    a few fp32 ulps of a rounding tie (there fl(1/s) vs 1/s may legitimately decide differently)."""
    x = _x(32, 50, seed=1)
    x64 = x.double().numpy()
    s64 = np.abs(x64).max(axis=1, keepdims=True) / fmt.qmax
    s64 = s64.astype(np.float32).astype(np.float64)  # the scale itself is an fp32 number
    t = x64 / s64
    want = np.clip(np.round(t), fmt.qmin, fmt.qmax) * s64
    got = fake_quant(x, fmt, axis=0).double().numpy()
    safe = np.abs(t - np.floor(t) - 0.5) > 1e-5 + fmt.qmax * 2.0**-21
    assert safe.mean() > 0.95
    np.testing.assert_array_equal(got[safe], want[safe].astype(np.float32).astype(np.float64))
    # RTN error bound everywhere: half a step, plus fp32 rounding of x·fl(1/s) and of q·s
    assert np.all(np.abs(got - x64) <= s64 * (0.5 + fmt.qmax * 2.0**-21) + np.abs(x64) * 2.0**-23)


@pytest.mark.parametrize("fmt", list(FLOAT_FORMATS.values()), ids=str)
def test_float_absmax_scaling(fmt):
    x = _x(16, 40, seed=2)
    x[3] = 0.0
    got = fake_quant(x, fmt, axis=0)
    s = (x.abs().amax(dim=1, keepdim=True) / fmt.max).clamp(min=MIN_SCALE)
    q = x * (1.0 / s)
    assert torch.equal(got, round_to_format(q, fmt) * s)
    assert (got[3] == 0).all() and not got.isnan().any()
    # each row's largest |x| lands on the top code; nothing exceeds the row's absmax by more than rounding
    amax = x.abs().amax(dim=1)
    assert torch.allclose(got.abs().amax(dim=1), amax, rtol=2e-7)
    per_tensor = fake_quant(x, fmt)
    st = (x.abs().max() / fmt.max).clamp(min=MIN_SCALE)
    assert torch.equal(per_tensor, round_to_format(x * (1.0 / st), fmt) * st)


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=str)
def test_dtype_shape_and_bf16(fmt):
    x = _x(8, 3, 5, seed=3)
    for axis in (None, 0, 1, -1):
        y = fake_quant(x.bfloat16(), fmt, axis=axis)
        assert y.dtype == torch.bfloat16 and y.shape == x.shape
        assert torch.equal(y, fake_quant(x.bfloat16().float(), fmt, axis=axis).bfloat16())
    assert fake_quant(x, None) is x
    assert fake_quant(torch.empty(0, 4), fmt).shape == (0, 4)


@pytest.mark.parametrize("fmt", [IntFormat(4), FLOAT_FORMATS["fp8-e4m3"], FLOAT_FORMATS["fp4-e2m1"]], ids=str)
def test_nonfinite_poisons_its_group(fmt):
    x = _x(4, 6, seed=4)
    x[1, 2] = math.inf
    x[2, 0] = math.nan
    y = fake_quant(x, fmt, axis=0)
    assert y[1].isnan().all() and y[2].isnan().all() and y[[0, 3]].isfinite().all()
    assert fake_quant(x, fmt).isnan().all()


def test_tiny_values_no_nan():
    x = torch.tensor([[1e-39, -3e-40, 0.0], [1e-30, 0.0, 2e-30]])
    for fmt in ALL_FORMATS:
        y = fake_quant(x, fmt, axis=0)
        assert y.isfinite().all() and (y[x == 0] == 0).all()
        assert (y.abs() <= 2 * x.abs().amax(dim=1, keepdim=True)).all()


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=str)
def test_ste_identity_with_absmax(fmt):
    x = _x(6, 7, seed=5).requires_grad_()
    g = torch.randn(6, 7)
    for axis in (None, 0):
        (gx,) = torch.autograd.grad(fake_quant(x, fmt, axis=axis), x, g)
        assert torch.equal(gx, g)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_ste_mask_matches_torch_with_given_scale(bits):
    """With a small fixed scale many inputs fall outside the clamp range: zero gradient there, identity
    inside, exactly like torch.fake_quantize_per_channel_affine's backward."""
    fmt = IntFormat(bits)
    x = _x(10, 30, seed=6).requires_grad_()
    s = absmax_scale(x.detach(), fmt, axis=0) * 0.4
    g = torch.randn(10, 30)
    (ours,) = torch.autograd.grad(fake_quant(x, fmt, axis=0, scale=s), x, g)
    ref = torch.fake_quantize_per_channel_affine(
        x, s.flatten(), torch.zeros(10, dtype=torch.int32), 0, fmt.qmin, fmt.qmax
    )
    (theirs,) = torch.autograd.grad(ref, x, g)
    assert torch.equal(ours, theirs)
    assert 0.05 < (ours == 0).float().mean() < 0.95
    assert torch.equal(fake_quant(x.detach(), fmt, axis=0, scale=s), ref.detach())


def test_ste_mask_float_with_given_scale():
    fmt = FLOAT_FORMATS["fp4-e2m1"]  # max 6; 7 is a tie with 8 (even) -> outside; 6.9 rounds to 6 -> inside
    x = torch.tensor([0.5, -5.0, 6.0, 6.9, 7.0, -7.5, 100.0, -6.5], requires_grad=True)
    y = fake_quant(x, fmt, scale=torch.tensor(1.0))
    assert y.tolist() == [0.5, -4.0, 6.0, 6.0, 6.0, -6.0, 6.0, -6.0]
    (gx,) = torch.autograd.grad(y.sum(), x)
    assert gx.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def test_weight_gradient_flows_through_linear():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 4, bias=False)
    x = torch.randn(3, 8)
    w_q = fake_quant(lin.weight, IntFormat(4), axis=0)
    (x @ w_q.t()).sum().backward()
    assert torch.equal(lin.weight.grad, x.sum(0).expand(4, 8))
