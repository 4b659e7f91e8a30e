"""The transformer: shape family, parameter counts, causality, fp32 RoPE/norms/logits, quantization hooks."""

from __future__ import annotations

import math

import pytest
import torch

from scaling.errors import UserError
from scaling.formats import PrecisionSpec
from scaling.model import GPT, ModelConfig, QLinear, RMSNorm, apply_rope, rope_tables
from scaling.quant import fake_quant


@pytest.mark.parametrize("target", [3e5, 1e6, 5e6, 3e7])
@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
def test_shape_family_hits_the_target(target: float, mlp: str) -> None:
    cfg = ModelConfig.for_params(target, mlp=mlp)
    assert abs(math.log(cfg.n_params / target)) < 0.15
    assert cfg.d_model % cfg.n_heads == 0 and 8 <= cfg.d_model / cfg.n_layers <= 128
    model = GPT(cfg)
    assert model.n_params() == cfg.n_params
    assert model.n_params_total() == cfg.n_params_total


def test_shape_family_grows_with_the_knob() -> None:
    sizes = [ModelConfig.for_params(n).n_params for n in (1e5, 3e5, 1e6, 3e6, 1e7)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


def test_tied_embeddings_share_the_head() -> None:
    untied = GPT(ModelConfig(tie_embeddings=False))
    tied = GPT(ModelConfig(tie_embeddings=True))
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.n_params_total() - tied.n_params_total() == 256 * 128
    assert untied.n_params() == tied.n_params()


def test_bad_shapes_are_user_errors() -> None:
    with pytest.raises(UserError):
        ModelConfig(d_model=100, n_heads=3)
    with pytest.raises(UserError):
        ModelConfig(mlp="relu")
    with pytest.raises(UserError):
        ModelConfig.for_params(-5)


def test_rope_matches_complex_rotation_in_float64() -> None:
    torch.manual_seed(0)
    T, hd = 16, 8
    x = torch.randn(2, 3, T, hd)
    cos, sin = rope_tables(T, hd, 10_000.0)
    got = apply_rope(x, cos, sin).double()
    freqs = 10_000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angle = torch.outer(torch.arange(T, dtype=torch.float64), freqs)
    z = torch.complex(x.double()[..., 0::2], x.double()[..., 1::2]) * torch.polar(
        torch.ones_like(angle), angle
    )
    want = torch.stack((z.real, z.imag), -1).flatten(-2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_rope_scores_depend_only_on_relative_position() -> None:
    torch.manual_seed(1)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    cos, sin = rope_tables(64, 16, 10_000.0)

    def score(m: int, n: int) -> float:
        return (
            (apply_rope(q, cos[m : m + 1], sin[m : m + 1]) * apply_rope(k, cos[n : n + 1], sin[n : n + 1]))
            .sum()
            .item()
        )

    assert score(10, 3) == pytest.approx(score(40, 33), rel=1e-4)


def test_rope_and_rmsnorm_compute_in_fp32_for_bf16_inputs() -> None:
    torch.manual_seed(2)
    x = (torch.randn(4, 64) * 3).to(torch.bfloat16)
    norm = RMSNorm(64)
    want = x.double() / torch.sqrt(x.double().pow(2).mean(-1, keepdim=True) + 1e-6)
    got = norm(x)
    assert got.dtype == torch.bfloat16
    # only the final rounding to bf16 may differ from the float64 reference
    assert torch.equal(got, want.to(torch.bfloat16))


def test_causal_attention_ignores_the_future() -> None:
    torch.manual_seed(3)
    model = GPT(ModelConfig(seq_len=32)).eval()
    idx = torch.randint(0, 256, (2, 32))
    changed = idx.clone()
    changed[:, 20:] = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :20], b[:, :20])
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_logits_are_fp32_under_bf16_autocast() -> None:
    model = GPT(ModelConfig(seq_len=16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randint(0, 256, (2, 16)))
    assert logits.dtype == torch.float32 and logits.shape == (2, 16, 256)


def test_qlinear_quantizes_weights_per_channel_and_inputs_per_tensor() -> None:
    spec = PrecisionSpec.parse("w4a8")
    layer = QLinear(16, 8, spec.w, spec.a)
    x = torch.randn(5, 16)
    want = torch.nn.functional.linear(fake_quant(x, spec.a), fake_quant(layer.weight, spec.w, axis=0))
    torch.testing.assert_close(layer(x), want)
    assert not torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight))


def test_every_hidden_linear_is_quantized_and_head_is_not() -> None:
    model = GPT(ModelConfig(precision=PrecisionSpec.parse("w4a8kv8")))
    hidden = [m for m in model.modules() if isinstance(m, QLinear)]
    assert len(hidden) == 4 * model.config.n_layers
    assert all(m.w_fmt is not None and m.a_fmt is not None for m in hidden)
    assert not isinstance(model.lm_head, QLinear)


def test_kv_quantization_changes_attention_output() -> None:
    torch.manual_seed(4)
    base = GPT(ModelConfig(seq_len=16, precision=PrecisionSpec.parse("fp32")))
    kv = GPT(ModelConfig(seq_len=16, precision=PrecisionSpec.parse("kv2")))
    kv.load_state_dict(base.state_dict())
    idx = torch.randint(0, 256, (1, 16))
    with torch.no_grad():
        assert not torch.allclose(base(idx), kv(idx))
