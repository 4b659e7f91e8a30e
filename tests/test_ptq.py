"""Post-training quantization: the GPTQ core against the least-squares error it minimises (float64
references, exhaustive search), RTN = the training quantizer, and PTQ of whole models."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from scaling.data import ArrayTokenSource, load_corpus
from scaling.errors import UserError
from scaling.formats import FloatFormat, IntFormat, PrecisionSpec, parse_format
from scaling.model import GPT, ModelConfig, QLinear
from scaling.ptq import (
    HessianAccumulator,
    calibration_batches,
    channel_quantizer,
    gptq_quantize_weight,
    layer_hessians,
    ptq_loss,
    ptq_quantize,
    quantize_weights,
    reconstruction_error,
)
from scaling.quant import absmax_scale, fake_quant
from scaling.train import TrainConfig, evaluate_loss, train

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is faster, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def correlated_layer(seed: int, d_out: int, d_in: int, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Random W [d_out, d_in] and H = 2XᵀX/n for strongly correlated inputs X = Z·A (float64)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g, dtype=F64) @ torch.randn(d_in, d_in, generator=g, dtype=F64)
    w = torch.randn(d_out, d_in, generator=g, dtype=F64)
    return w, 2 * x.T @ x / n


def dampened(h: torch.Tensor, damp: float = 0.01) -> torch.Tensor:
    return h + damp * h.diagonal().mean() * torch.eye(h.shape[0], dtype=h.dtype)


@pytest.mark.parametrize("fmt", [IntFormat(3), IntFormat(4), parse_format("fp4-e2m1")], ids=str)
def test_gptq_beats_rtn_on_correlated_inputs(fmt) -> None:
    w, h = correlated_layer(0, 16, 48)
    q, _ = gptq_quantize_weight(w, h, channel_quantizer(w, fmt), block_size=16)
    rtn = fake_quant(w, fmt, axis=0)
    assert reconstruction_error(w, q, h) < 0.75 * reconstruction_error(w, rtn, h)
    # same grid as RTN: every row is q·s with the RTN scale of the original row, codes in range
    s = absmax_scale(w, fmt, axis=0)
    assert torch.equal(fake_quant(q, fmt, axis=0, scale=s), q)


def test_reconstruction_error_is_the_least_squares_error() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(120, 12, generator=g, dtype=F64)
    w, w_hat = torch.randn(5, 12, generator=g, dtype=F64), torch.randn(5, 12, generator=g, dtype=F64)
    acc = HessianAccumulator(12)
    for chunk in x.split(40):  # accumulated batch by batch, from [batch, time, features] activations
        acc.add(chunk.reshape(2, 20, 12))
    direct = ((x @ w.T - x @ w_hat.T) ** 2).sum().item() / 120
    assert acc.n == 120
    assert reconstruction_error(w, w_hat, acc.hessian()) == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("block_size", [1, 7, 128])
def test_gptq_error_accounting_matches_direct_error(act_order: bool, block_size: int) -> None:
    w, h = correlated_layer(2, 8, 20)
    q, err = gptq_quantize_weight(
        w, h, channel_quantizer(w, IntFormat(3)), block_size=block_size, act_order=act_order
    )
    assert err == pytest.approx(reconstruction_error(w, q, dampened(h)), rel=1e-10)
    # without dampening the accounting is the plain least-squares error ‖X(W − Ŵ)ᵀ‖²/n
    q0, err0 = gptq_quantize_weight(w, h, channel_quantizer(w, IntFormat(3)), damp=0.0, act_order=act_order)
    assert err0 == pytest.approx(reconstruction_error(w, q0, h), rel=1e-8)


def test_lazy_block_updates_do_not_change_the_result() -> None:
    w, h = correlated_layer(3, 6, 30)
    quant = channel_quantizer(w, IntFormat(4))
    q1, e1 = gptq_quantize_weight(w, h, quant, block_size=1)
    q2, e2 = gptq_quantize_weight(w, h, quant, block_size=8)
    assert torch.equal(q1, q2) and e1 == pytest.approx(e2, rel=1e-12)


@pytest.mark.parametrize("fmt", [IntFormat(2), IntFormat(4), parse_format("fp6-e2m3")], ids=str)
def test_gptq_reduces_to_rtn_without_interactions(fmt) -> None:
    g = torch.Generator().manual_seed(4)
    w = torch.randn(10, 9, generator=g)  # fp32, like a model weight
    h_diag = torch.diag(torch.rand(9, generator=g, dtype=F64) + 0.1)
    rtn = fake_quant(w, fmt, axis=0)
    q, _ = gptq_quantize_weight(w, h_diag, channel_quantizer(w, fmt), block_size=4, act_order=True)
    assert q.dtype == w.dtype and torch.equal(q, rtn)
    col = w[:, :1]
    q1, _ = gptq_quantize_weight(col, torch.full((1, 1), 3.0, dtype=F64), channel_quantizer(col, fmt))
    assert torch.equal(q1, fake_quant(col, fmt, axis=0))


def test_gptq_lies_between_the_optimum_and_rtn() -> None:
    """Exhaustive search over the grid of 1 × 4 layers: the optimum ≤ GPTQ always; GPTQ is greedy, so it
    can lose to RTN on a single instance, but not often and not on aggregate (measured: ~4% of cases)."""
    opt_sum = gptq_sum = rtn_sum = 0.0
    gptq_not_worse = 0
    cases = 0
    all_codes = {
        b: torch.cartesian_prod(*[torch.arange(-(2 ** (b - 1)), 2 ** (b - 1), dtype=torch.float32)] * 4)
        for b in (2, 3)
    }
    for seed, bits in itertools.product(range(40), (2, 3)):
        fmt, codes = IntFormat(bits), all_codes[bits]
        w, h = correlated_layer(100 + seed, 1, 4, n=32)
        ht = dampened(h)
        grid = (codes * absmax_scale(w, fmt, axis=0).float()).to(
            F64
        )  # the grid values as fake_quant forms them
        delta = w - grid
        opt = 0.5 * torch.einsum("nj,jk,nk->n", delta, ht, delta).min().item()
        q, err = gptq_quantize_weight(w, h, channel_quantizer(w, fmt))
        e_gptq = reconstruction_error(w, q, ht)
        e_rtn = reconstruction_error(w, fake_quant(w, fmt, axis=0), ht)
        assert err == pytest.approx(e_gptq, rel=1e-10)
        assert opt <= e_gptq * (1 + 1e-12) and opt <= e_rtn * (1 + 1e-12)
        opt_sum, gptq_sum, rtn_sum = opt_sum + opt, gptq_sum + e_gptq, rtn_sum + e_rtn
        gptq_not_worse += e_gptq <= e_rtn * (1 + 1e-12)
        cases += 1
    assert gptq_not_worse >= 0.9 * cases
    assert gptq_sum - opt_sum < 0.5 * (rtn_sum - opt_sum)


def test_dead_inputs_are_rounded_to_nearest() -> None:
    w, h = correlated_layer(5, 6, 10)
    h[3, :] = 0.0
    h[:, 3] = 0.0
    q, err = gptq_quantize_weight(w, h, channel_quantizer(w, IntFormat(3)))
    assert torch.isfinite(q).all() and np.isfinite(err)
    assert torch.equal(q[:, 3], fake_quant(w, IntFormat(3), axis=0)[:, 3])
    h_used = h.clone()
    h_used[3, 3] = 1.0  # what GPTQ factors for a dead input
    assert err == pytest.approx(reconstruction_error(w, q, dampened(h_used)), rel=1e-10)


# ---- whole models ---------------------------------------------------------------------------------------


def tiny_model(precision: str = "bf16", seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=32,
        d_model=32,
        n_layers=2,
        n_heads=2,
        d_ff=64,
        seq_len=16,
        precision=PrecisionSpec.parse(precision),
    )
    return GPT(cfg)


@pytest.fixture(scope="module")
def corpus() -> ArrayTokenSource:
    return load_corpus("default")


@pytest.fixture(scope="module")
def trained(corpus: ArrayTokenSource) -> GPT:
    cfg = TrainConfig(
        n=None,
        d_model=32,
        n_layers=2,
        n_heads=2,
        tokens=30_000,
        seq_len=32,
        batch_size=16,
        eval_tokens=2048,
        n_evals=1,
        threads=1,
        lr=3e-3,
    )
    result = train(cfg, corpus)
    assert result.status == "ok"
    return result.model


@pytest.mark.parametrize("fmt", ["int4", "fp8-e4m3", "fp4-e2m1"])
def test_rtn_is_the_training_quantizer_on_a_copy(fmt: str) -> None:
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_weights(model, fmt)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # original untouched
    f = parse_format(fmt)
    for (name, m), qm in zip(model.named_modules(), q.modules(), strict=True):
        if isinstance(m, QLinear):
            assert torch.equal(qm.weight, fake_quant(m.weight, f, axis=0)) and qm.w_fmt is None, name
    assert torch.equal(q.lm_head.weight, model.lm_head.weight) and torch.equal(q.wte.weight, model.wte.weight)


def test_ptq_of_a_weight_quantized_model_starts_from_its_effective_weights() -> None:
    model = tiny_model("w4a8")
    q = quantize_weights(model, IntFormat(8))
    layer, qlayer = model.blocks[0].mlp.up, q.blocks[0].mlp.up
    expected = fake_quant(fake_quant(layer.weight, IntFormat(4), axis=0), IntFormat(8), axis=0)
    assert torch.equal(qlayer.weight, expected) and qlayer.a_fmt == IntFormat(8)
    # PTQ to the training format leaves the trained model's weights (δ_PTQ = 0 up to rounding)
    same = quantize_weights(model, IntFormat(4)).blocks[0].mlp.up.weight
    torch.testing.assert_close(same, fake_quant(layer.weight, IntFormat(4), axis=0), rtol=1e-6, atol=0)


def test_gptq_model_is_sequential_and_beats_rtn_layerwise(trained: GPT, corpus: ArrayTokenSource) -> None:
    calib = calibration_batches(corpus, 32, n_tokens=2048, batch_size=16)
    result = ptq_quantize(trained, "int3", "gptq", calib, block_size=16)
    qmodel = result.model
    names = [n for n, m in trained.named_modules() if isinstance(m, QLinear)]
    assert [r.name for r in result.layers] == names
    # each layer's Hessian was computed with every earlier layer already quantized: it equals the one
    # measured by plain forward passes of the final quantized model (inputs depend on earlier layers only)
    h_quant, h_orig = layer_hessians(qmodel, calib), layer_hessians(trained, calib)
    modules = dict(trained.named_modules())
    for r in result.layers:
        w = modules[r.name].weight
        assert r.rtn_err == pytest.approx(
            reconstruction_error(w, fake_quant(w, IntFormat(3), axis=0), h_quant[r.name]), rel=1e-6
        )
        w_hat = dict(qmodel.named_modules())[r.name].weight
        assert r.gptq_err == pytest.approx(reconstruction_error(w, w_hat, h_quant[r.name]), rel=1e-6)
        assert r.gptq_err < r.rtn_err and r.n_tokens == 2048
        assert torch.equal(
            fake_quant(w_hat, IntFormat(3), axis=0, scale=absmax_scale(w, IntFormat(3), axis=0)), w_hat
        )  # on the RTN grid
    assert not torch.allclose(h_quant[names[-1]], h_orig[names[-1]])  # later inputs did change
    assert torch.allclose(h_quant[names[0]], h_orig[names[0]])
    assert torch.equal(qmodel.lm_head.weight, trained.lm_head.weight)


def test_gptq_uses_the_activation_quantized_inputs(corpus: ArrayTokenSource) -> None:
    model = tiny_model("w4a3")
    plain = tiny_model("w4")
    plain.load_state_dict(model.state_dict())
    calib = [b % 32 for b in calibration_batches(corpus, 16, n_tokens=512, batch_size=8)]
    h, h_plain = layer_hessians(model, calib), layer_hessians(plain, calib)
    assert not torch.allclose(h["blocks.0.attn.qkv"], h_plain["blocks.0.attn.qkv"])
    result = ptq_quantize(model, "int4", "gptq", calib)
    h_quant = layer_hessians(result.model, calib)
    for r in result.layers:
        w = fake_quant(dict(model.named_modules())[r.name].weight, IntFormat(4), axis=0)  # effective weight
        assert r.rtn_err == pytest.approx(
            reconstruction_error(w, fake_quant(w, IntFormat(4), axis=0), h_quant[r.name]), rel=1e-6, abs=1e-12
        )
        assert r.gptq_err <= r.rtn_err


def test_ptq_loss_both_ways(trained: GPT, corpus: ArrayTokenSource) -> None:
    val = corpus.val_batches(16, 32, 2048)
    calib = calibration_batches(corpus, 32, n_tokens=4096, batch_size=16)
    base = evaluate_loss(trained, val)
    for method in ("rtn", "gptq"):
        assert ptq_loss(trained, "int16", method, calib, val) == pytest.approx(base, abs=2e-3)
    rtn, gptq = (ptq_loss(trained, "int2", m, calib, val) for m in ("rtn", "gptq"))
    assert rtn > gptq > base  # 2-bit weights hurt; GPTQ hurts less
    assert np.isfinite(ptq_loss(trained, FloatFormat("fp4-e2m1", 2, 1, "none"), "gptq", calib, val))


def test_bad_input_is_a_user_error(corpus: ArrayTokenSource) -> None:
    model = tiny_model()
    with pytest.raises(UserError, match="method"):
        quantize_weights(model, "int4", "awq")
    with pytest.raises(UserError, match="number format"):
        quantize_weights(model, "int4x")
    with pytest.raises(UserError, match=r"2\.\.16 bits"):
        quantize_weights(model, "int1")
    with pytest.raises(UserError, match="calibration"):
        quantize_weights(model, "int4", "gptq")
    with pytest.raises(UserError, match="calibration"):
        calibration_batches(corpus, 16, n_tokens=0)
