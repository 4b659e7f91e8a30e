"""Learning-rate schedules (cosine, warmup-stable-decay) and cooldown branches of one WSD trunk."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from scaling.branches import branch_plan, train_branches, trunk_config
from scaling.data import ArrayTokenSource
from scaling.errors import UserError
from scaling.schedule import Schedule, lr_factor
from scaling.train import TrainConfig, default_eval_tokens, train


def test_cosine_matches_the_recipe() -> None:
    s = Schedule("cosine", 100, 10, 0.1)
    assert s.factor(0) == pytest.approx(0.1) and s.factor(9) == 1.0
    assert s.factor(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(37, 100, 0.1, 0.1) == s.factor(37)


@pytest.mark.parametrize("shape", ["1-sqrt", "linear"])
def test_wsd_warms_up_holds_then_cools_down_to_the_floor(shape: str) -> None:
    s = Schedule("wsd", 100, 10, 0.1, cooldown=20, shape=shape)
    values = [s.factor(t) for t in range(100)]
    assert s.fork == 80 and values[9] == 1.0 and set(values[9:80]) == {1.0}
    assert all(a > b for a, b in itertools.pairwise(values[80:])) and values[-1] == pytest.approx(0.1)
    x = 10 / 20  # step 89 is the 10th of 20 cooldown steps
    expected = 1 - 0.9 * (math.sqrt(x) if shape == "1-sqrt" else x)
    assert values[89] == pytest.approx(expected)
    # a WSD run's steps before its cooldown do not depend on its length
    longer = Schedule("wsd", 400, 10, 0.1, cooldown=80, shape=shape)
    assert [longer.factor(t) for t in range(80)] == values[:80]
    assert Schedule("wsd", 50, 10, 0.1, cooldown=0).factor(49) == 1.0  # a stable trunk


def test_config_schedules_and_bad_values() -> None:
    cfg = TrainConfig(n=1e4, tokens=4096 * 100, schedule="wsd", cooldown_frac=0.2, warmup_tokens=4096 * 5)
    s = cfg.lr_schedule()
    assert (s.kind, s.n_steps, s.warmup, s.cooldown, s.fork) == ("wsd", 100, 5, 20, 80)
    assert TrainConfig(n=1e4, tokens=4096 * 100).lr_schedule().warmup == 10  # warmup_frac of the run
    bad_values = [{"schedule": "step"}, {"cooldown_frac": 1.5}, {"cooldown_shape": "cubic"}]
    bad_values.append({"warmup_tokens": 0})
    for bad in bad_values:
        with pytest.raises(UserError):
            TrainConfig(n=1e4, **bad)


def test_default_eval_budget_is_in_proportion_to_the_run() -> None:
    # 8 passes of E tokens cost 8·E/3 training-token equivalents = 5% of D
    assert default_eval_tokens(1e6, 8, 128) == 147 * 128
    small, large = TrainConfig(n=1e4, tokens=1e5), TrainConfig(n=1e4, tokens=1e7)
    assert small.eval_tokens == 16 * 128 and small.n_evals * small.eval_tokens < 0.25 * small.tokens
    assert large.eval_tokens == math.ceil(3 * 0.05 * 1e7 / (8 * 128)) * 128
    assert default_eval_tokens(1e12, 8, 128) == 1 << 20  # capped
    assert TrainConfig(n=1e4, eval_tokens=4096).eval_tokens == 4096  # explicit values are kept


@pytest.fixture(scope="module")
def toy() -> ArrayTokenSource:
    rng = np.random.default_rng(0)
    words = [rng.integers(1, 32, size=rng.integers(2, 6)) for _ in range(40)]
    stream = np.concatenate([np.append(words[i], 0) for i in rng.integers(0, 40, size=20_000)])
    stream = stream.astype(np.uint16)
    cut = int(0.9 * len(stream))
    return ArrayTokenSource("toy", stream[:cut], stream[cut:], vocab_size=32)


def wsd(tokens: int, **kw) -> TrainConfig:
    base = dict(
        n=None, precision="fp32", d_model=32, n_layers=1, n_heads=2, seq_len=32, batch_size=8,
        eval_tokens=512, threads=1, lr=3e-3, schedule="wsd", warmup_tokens=1024, n_evals=2,
    )  # fmt: skip
    return TrainConfig(tokens=tokens, **{**base, **kw})


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_a_branch_ends_exactly_where_the_separate_wsd_run_does(toy, optimizer: str) -> None:
    cfgs = [wsd(t, optimizer=optimizer) for t in (2560, 5120, 7680)]
    seen: list[int] = []
    results = train_branches(cfgs, toy, on_branch=lambda i, r: seen.append(i) or r.model is not None)
    separate = [train(c, toy) for c in cfgs]
    assert seen == [0, 1, 2] and all(r.model is None for r in results)
    for b, s in zip(results, separate, strict=True):
        assert b.status == "ok" and b.val_loss == s.val_loss  # bit for bit
        assert (b.tokens, b.steps, b.flops, b.config) == (s.tokens, s.steps, s.flops, s.config)
        assert 0 < b.eval_fraction < 1 and b.val_curve[-1][0] == b.steps - 1
    assert results[0].val_loss > results[2].val_loss


def test_branches_skip_done_ones_and_plan_their_forks(toy) -> None:
    cfgs = [wsd(2560), wsd(7680, cooldown_frac=0.1, cooldown_shape="linear")]
    assert branch_plan(cfgs[0]) == (8, 2) and branch_plan(cfgs[1]) == (27, 3)
    trunk = trunk_config(cfgs)
    assert trunk.tokens == 27 * 256 and trunk.cooldown_frac == 0.0
    results = train_branches(cfgs, toy, skip=[0])
    assert results[0] is None and results[1].val_loss == train(cfgs[1], toy).val_loss
    with pytest.raises(UserError, match="must agree on seed"):
        train_branches([wsd(2560), wsd(5120, seed=1)], toy)
    with pytest.raises(UserError, match="schedule 'wsd'"):
        train_branches([wsd(2560, schedule="cosine")], toy)


def test_a_diverging_trunk_gives_diverged_branches(toy) -> None:
    cfgs = [wsd(2560, lr=1e12, grad_clip=1e30), wsd(5120, lr=1e12, grad_clip=1e30)]
    results = train_branches(cfgs, toy)
    assert all(r.status == "diverged" and math.isnan(r.val_loss) for r in results)


def test_train_cli_sets_the_eval_budget_and_schedule(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cli.main import app

    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    args = ["train", "--n", "1e4", "--tokens", "1e4", "--precision", "fp32", "--data", str(text), "--seq-len",
            "32", "--batch-size", "8", "--threads", "1", "--json", "--schedule", "wsd"]  # fmt: skip
    default = json.loads(CliRunner().invoke(app, args).output)
    assert default["config"]["eval_tokens"] == 16 * 32 and default["config"]["schedule"] == "wsd"
    chosen = json.loads(CliRunner().invoke(app, [*args, "--eval-tokens", "2048", "--n-evals", "2"]).output)
    assert chosen["config"]["eval_tokens"] == 2048 and len(chosen["val_curve"]) == 2
    assert 0 < chosen["eval_fraction"] < 1 and 0 < default["eval_fraction"] < 0.25
