"""One PTQ evaluation path for every kind of run (issue 11): the quantized copy is scored with the run's own
training loss, so a lossless int16 round-to-nearest pass gives δ_PTQ ≈ 0 for lm and bios runs alike."""

from __future__ import annotations

import math

import pytest

from sweeps.plan import plan
from sweeps.runner import execute
from sweeps.spec import parse_spec
from sweeps.store import rows_to_table

TRAIN = {"batch_size": 4, "seq_len": 32, "eval_tokens": 512, "n_evals": 1}
PTQ = {"methods": ["rtn"], "formats": ["int16"]}


def spec(task: str, loss: str) -> dict:
    doc = {
        "sweep": {"name": "ptq-path", "task": task},
        "axes": {"precision": ["fp32"]},
        "train": {**TRAIN, "loss": loss},
        "ptq": PTQ,
    }
    if task == "lm":
        doc["grid"] = {"n": [4e3], "tokens": [128 * 12]}
    else:
        doc["grid"] = {"n": [4e3]}
        doc["axes"] |= {"people": [24], "exposures": [3]}
        doc["bios"] = {"variant": "bioD", "bioD": [4, 1, 8, 1, 8], "name_tokens": 3}
    return doc


@pytest.mark.parametrize("task", ["lm", "bios"])
@pytest.mark.parametrize("loss", ["ce", "stablemax"])
def test_int16_rtn_is_lossless_under_the_runs_own_loss(task: str, loss: str) -> None:
    (run,) = plan(parse_spec(spec(task, loss)))
    rows = execute(run.run_id, run.config)
    rows_to_table(run.run_id, rows)
    none, int16 = rows
    assert none["loss_fn"] == int16["loss_fn"] == loss
    assert (int16["ptq_method"], int16["fmt_post"]) == ("rtn", "int16")
    assert math.isfinite(none["loss"]) and abs(int16["delta_ptq"]) < 1e-4
    if task == "bios":
        assert int16["bits"] == pytest.approx(none["bits"], abs=1e-2 * abs(none["bits"]) + 1.0)


def test_paired_ptq_evaluation_on_fewer_tokens() -> None:
    """ptq.eval_tokens < the run's: δ_PTQ is the paired difference on those tokens, added to val_loss."""
    from scaling.data import load_corpus
    from scaling.ptq import evaluate_ptq
    from scaling.train import TrainConfig, evaluate_loss, train

    source = load_corpus("default")
    cfg = TrainConfig(n=4e3, tokens=128 * 12, precision="fp32", threads=1, **TRAIN)
    run = train(cfg, source)
    full = source.val_batches(cfg.batch_size, cfg.seq_len, cfg.eval_tokens)
    few = source.val_batches(cfg.batch_size, cfg.seq_len, 128)
    table = {"methods": ["rtn"], "formats": ["int3"]}
    (same,) = evaluate_ptq(run.model, source, cfg, table, run.val_loss)
    assert same.loss == evaluate_loss(same.model, full)  # the run's own batches, as before
    (paired,) = evaluate_ptq(run.model, source, cfg, {**table, "eval_tokens": 128}, run.val_loss)
    delta = evaluate_loss(paired.model, few) - evaluate_loss(run.model, few)
    assert paired.loss == pytest.approx(run.val_loss + delta, abs=1e-12)
    assert abs(delta) > 1e-4 and delta != pytest.approx(same.loss - run.val_loss, abs=1e-9)
    (again,) = evaluate_ptq(run.model, source, cfg, {**table, "eval_tokens": 128})  # val_loss computed here
    assert again.loss == pytest.approx(paired.loss, abs=1e-12)


def test_evaluation_without_diagnostics_has_the_same_loss() -> None:
    from scaling.data import load_corpus
    from scaling.train import TrainConfig, evaluate, train

    source = load_corpus("default")
    cfg = TrainConfig(n=4e3, tokens=128 * 4, precision="fp32", threads=1, **TRAIN)
    model = train(cfg, source).model
    batches = source.val_batches(cfg.batch_size, cfg.seq_len, cfg.eval_tokens)
    with_them, without = evaluate(model, batches), evaluate(model, batches, diagnostics=False)
    assert without.loss == with_them.loss and with_them.max_abs_logit > 0
    assert math.isnan(without.max_abs_logit) and math.isnan(without.softmax_collapse)
