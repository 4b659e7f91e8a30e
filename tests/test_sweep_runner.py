"""One real run through the sweep runner: training rows, PTQ rows and provenance on a tiny model."""

from __future__ import annotations

import json
import math

from scaling.train import resolve_precision
from sweeps.plan import plan, run_id
from sweeps.runner import execute
from sweeps.spec import parse_spec
from sweeps.store import rows_to_table


def tiny(lr: dict | None = None) -> dict:
    doc = {
        "sweep": {"name": "t"},
        "grid": {"n": [1e4], "tokens": [256 * 20]},
        "axes": {"precision": ["w6"]},
        "train": {"batch_size": 8, "seq_len": 32, "eval_tokens": 2048, "n_evals": 1},
        "ptq": {"methods": ["rtn", "gptq"], "formats": ["int3", "int8"], "calib_tokens": 2048},
    }
    if lr:
        doc["lr"] = lr
    return doc


def test_lm_run_rows_ptq_and_provenance() -> None:
    (run,) = plan(parse_spec(tiny()))
    rows = execute(run.run_id, run.config)
    rows_to_table(run.run_id, rows)  # fits the store schema
    assert [(r["ptq_method"], r["fmt_post"]) for r in rows] == [
        ("none", ""),
        ("rtn", "int3"),
        ("rtn", "int8"),
        ("gptq", "int3"),
        ("gptq", "int8"),
    ]
    none = rows[0]
    assert none["status"] == "ok" and math.isfinite(none["loss"])
    assert math.isnan(none["P_post"]) and none["loss_post"] == none["loss"] and none["delta_ptq"] == 0
    spec = resolve_precision("w6")  # bf16 compute where native, else fp32 ("w6@fp32")
    assert (none["P_w"], none["fmt_w"], none["precision"]) == (6.0, "int6", spec.name)
    assert (none["P_a"], none["fmt_a"]) == (spec.bits("a"), spec.compute)
    assert none["N"] == run.n_params and none["D"] == run.tokens and none["flops"] == run.flops
    assert none["cost"] == 6 / 16 * run.n_params * run.tokens * 6
    assert json.loads(none["config_json"])["train"]["precision"] == "w6"  # the request, as planned
    by = {(r["ptq_method"], r["fmt_post"]): r for r in rows}
    for r in rows[1:]:
        assert r["P_post"] == float(r["fmt_post"][3:])
        assert r["delta_ptq"] == r["loss_post"] - r["loss"]
    assert abs(by["rtn", "int8"]["delta_ptq"]) < 0.01  # int8 PTQ of a w6-trained model is nearly lossless
    assert by["rtn", "int3"]["loss_post"] != none["loss"]  # the weights did change
    assert run_id(json.loads(none["config_json"])) == run.run_id  # run_id = hash of the stored config
    assert none["scalefit_version"] and none["git_commit"]
    diag = json.loads(none["diagnostics_json"])
    assert diag["steps"] == 20 and diag["val_curve"]


def test_diverged_run_keeps_one_row_with_its_status() -> None:
    (run,) = plan(parse_spec(tiny(lr={"rule": "fixed", "value": 1e4})))
    rows = execute(run.run_id, run.config)
    assert len(rows) == 1 and rows[0]["status"] == "diverged" and rows[0]["ptq_method"] == "none"
    rows_to_table(run.run_id, rows)


def test_bios_task_dispatches_to_the_capacity_runner() -> None:
    doc = {
        "sweep": {"name": "b", "task": "bios"},
        "grid": {"n": [1e4]},
        "axes": {"people": [20], "exposures": [2]},
        "train": {"batch_size": 8, "seq_len": 128, "eval_tokens": 1024, "n_evals": 1},
        "ptq": {"methods": ["rtn"], "formats": ["int4"]},
        "bios": {"variant": "bioS"},
    }
    (run,) = plan(parse_spec(doc))
    rows = execute(run.run_id, run.config)
    rows_to_table(run.run_id, rows)
    assert [(r["task"], r["ptq_method"], r["people"], r["exposures"]) for r in rows] == [
        ("bios", "none", 20, 2),
        ("bios", "rtn", 20, 2),
    ]
    assert all(r["run_id"] == run.run_id and run_id(json.loads(r["config_json"])) == run.run_id for r in rows)
