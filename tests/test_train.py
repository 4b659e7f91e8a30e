"""The training engine: determinism, learning, optimizers, schedule, divergence handling, precision."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from scaling.data import ArrayTokenSource
from scaling.errors import UserError
from scaling.schedule import lr_factor
from scaling.train import TrainConfig, evaluate_loss, native_bf16, resolve_precision, train


@pytest.fixture(scope="module")
def toy() -> ArrayTokenSource:
    """A learnable toy language: a repeated random 'vocabulary' of 40 short words over 32 symbols."""
    rng = np.random.default_rng(0)
    words = [rng.integers(1, 32, size=rng.integers(2, 6)) for _ in range(40)]
    stream = np.concatenate([np.append(words[i], 0) for i in rng.integers(0, 40, size=40_000)]).astype(
        np.uint16
    )
    cut = int(0.9 * len(stream))
    return ArrayTokenSource("toy", stream[:cut], stream[cut:], vocab_size=32)


def small(**kw) -> TrainConfig:
    base = dict(
        precision="fp32",
        d_model=32,
        n_layers=2,
        n_heads=2,
        tokens=40_000,
        seq_len=32,
        batch_size=16,
        eval_tokens=4096,
        threads=1,
        lr=3e-3,
    )
    base.update(kw)
    return TrainConfig(n=None, **base)


def test_training_learns_and_is_deterministic(toy: ArrayTokenSource) -> None:
    a, b = train(small(), toy), train(small(), toy)
    assert a.status == "ok" and a.val_loss == b.val_loss
    assert a.val_loss < toy.unigram_entropy("val") - 0.3
    assert train(small(seed=1), toy).val_loss != a.val_loss
    assert a.tokens == a.steps * 16 * 32 and a.epochs == pytest.approx(a.tokens / toy.n_train_tokens)
    assert a.flops > 6 * a.n_params * a.tokens and 0 < a.tokens_per_s and a.wall_time > 0
    assert len(a.train_curve) <= 100 and a.best_val_loss <= a.val_curve[0][1]
    assert evaluate_loss(a.model, toy.val_batches(16, 32, 4096)) == pytest.approx(a.val_loss)
    cols = a.columns()  # corpus identity, schedule and evaluation share recorded with every run
    assert (cols["corpus"], cols["corpus_tokens"]) == ("toy", toy.n_train_tokens)
    assert cols["corpus_checksum"] == toy.identity()["checksum"] and cols["schedule"] == "cosine"
    # 8 passes of 4096 tokens on a 39,936-token run: a forward pass is a third of a training step
    assert a.eval_fraction == pytest.approx((8 * 4096 / 3) / (a.tokens + 8 * 4096 / 3), rel=0.02)


def test_muon_and_stablemax_train(toy: ArrayTokenSource) -> None:
    muon = train(small(optimizer="muon"), toy)
    stable = train(small(loss="stablemax"), toy)
    for result in (muon, stable):
        assert result.status == "ok" and result.val_loss < toy.unigram_entropy("val")


def test_muon_keeps_fp32_state_and_covers_hidden_weights(toy: ArrayTokenSource) -> None:
    from scaling.model import GPT
    from scaling.train import build_optimizers

    cfg = small(optimizer="muon")
    model = GPT(cfg.model_config(32))
    adamw, muon = build_optimizers(model, cfg, 1e-3)
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    assert len(muon.param_groups[0]["params"]) == 4 * 2
    n_all = sum(len(g["params"]) for o in (adamw, muon) for g in o.param_groups)
    assert n_all == len(list(model.parameters()))


def test_low_precision_training_costs_loss(toy: ArrayTokenSource) -> None:
    bf16, w2 = (
        train(small(precision="bf16", tokens=20_000), toy),
        train(small(precision="w2a4@bf16", tokens=20_000), toy),
    )
    assert bf16.precision == "bf16" and w2.precision == "w2a4"
    assert w2.status == "ok" and w2.val_loss > bf16.val_loss


def test_quantized_specs_compute_in_bf16_only_where_it_is_native() -> None:
    spec = resolve_precision("w4a8kv8")
    assert spec.compute == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision("w4a8kv8@bf16").compute == "bf16" and resolve_precision("bf16").compute == "bf16"
    assert resolve_precision("w4@fp32").bits("a") == 32.0


def test_divergence_is_recorded_not_raised(toy: ArrayTokenSource) -> None:
    result = train(small(lr=1e12, grad_clip=1e30, precision="fp32", tokens=20_000), toy)
    assert result.status == "diverged" and math.isnan(result.val_loss)


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    values = [lr_factor(s, 100, 0.1, 0.1) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in itertools.pairwise(values[9:]))
    assert values[-1] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize(
    "kw",
    [
        {"tokens": 0},
        {"optimizer": "sgd"},
        {"loss": "mse"},
        {"precision": "w99"},
        {"lr": -1.0},
        {"device": "tpu"},
    ],
)
def test_bad_configs_are_user_errors(kw: dict) -> None:
    with pytest.raises(UserError):
        small(**kw)
