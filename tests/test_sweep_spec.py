"""Sweep specs and planning: validation names the bad key, presets parse, run ids and designs are right."""

from __future__ import annotations

import math

import pytest

from scaling.errors import UserError
from scaling.flops import training_flops
from sweeps.plan import Timing, estimate, estimate_seconds, makespan, plan, run_id
from sweeps.spec import load_spec, parse_spec, preset_names, preset_path


def base(**tables) -> dict:
    doc = {
        "sweep": {"name": "t"},
        "grid": {"n": [1e4, 3e4], "tokens": [2e4, 4e4]},
        "train": {"batch_size": 4, "seq_len": 32},
    }
    for k, v in tables.items():
        doc[k] = {**doc.get(k, {}), **v} if v is not None else None
        if v is None:
            del doc[k]
    return doc


def test_required_presets_exist() -> None:
    assert {"smoke", "precision-cpu", "precision-gpu"} <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_presets_parse_and_plan(name: str) -> None:
    spec = load_spec(preset_path(name))
    runs = plan(spec, check_epochs=not name.endswith("-gpu"))  # GPU presets need a large corpus
    assert runs and len({r.run_id for r in runs}) == len(runs)


def test_load_spec_accepts_preset_name_and_rejects_unknown() -> None:
    assert load_spec("smoke").name == "smoke"
    with pytest.raises(UserError, match="unknown preset 'nope'"):
        load_spec("nope")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (base(extra={"x": 1}), r"unknown table \[extra\]"),
        (base(grid={"sizes": [1]}), r"unknown key grid\.sizes"),
        (base(axes={"precisions": ["bf16"]}), r"unknown key axes\.precisions"),
        (base(train={"batch": 4}), r"unknown key train\.batch"),
        (base(train={"tokens": 4}), r"train\.tokens is set in \[grid\]"),
        (base(train={"batch_size": "4"}), r"train\.batch_size must be of type int"),
        (base(grid={"n": [-1]}), r"grid\.n must be"),
        (base(grid={"n": []}), r"grid\.n must be"),
        (base(grid={"n": [1e4, 1e4]}), r"grid\.n must be a list without repeated"),
        (base(grid={"tokens": None}), None),
        (base(axes={"precision": ["w4q9"]}), r"axes\.precision: invalid precision spec 'w4q9'"),
        (base(axes={"optimizer": ["sgd"]}), r"axes\.optimizer"),
        (base(axes={"seed": [-1]}), r"axes\.seed"),
        (base(axes={"people": [10]}), r"axes\.people is only for task 'bios'"),
        (base(sweep={"design": "latin"}), r"sweep\.design must be one of grid, isoflop"),
        (base(sweep={"task": "vision"}), r"sweep\.task must be one of lm, bios"),
        (base(ptq={"methods": ["awq"], "formats": ["int4"]}), r"ptq\.methods must be a list of rtn, gptq"),
        (base(ptq={"methods": ["rtn"], "formats": ["int4"], "eval_tokens": 0}), r"ptq\.eval_tokens must"),
        (base(ptq={"methods": ["rtn"], "formats": ["int4"], "eval_tokens": 1.5}), r"ptq\.eval_tokens must"),
        (base(ptq={"methods": ["rtn"], "formats": ["int99"]}), r"ptq\.formats"),
        (base(ptq={"methods": ["rtn"]}), r"give both ptq\.methods and ptq\.formats"),
        (base(lr={"rule": "fixed"}), r"missing lr\.value"),
        (base(lr={"value": 1e-3}), r"lr\.value needs lr\.rule"),
        (base(isoflop={"budgets": [1e9]}), r"table \[isoflop\] given but sweep\.design = 'grid'"),
    ],
)
def test_invalid_specs_name_the_key(doc: dict, message: str | None) -> None:
    if message is None:  # grid.tokens removed
        doc["grid"].pop("tokens")
        message = r"missing grid\.tokens"
    with pytest.raises(UserError, match=message):
        parse_spec(doc, "t.toml")


def test_grid_plan_crosses_axes_and_rounds_tokens() -> None:
    doc = base(axes={"precision": ["bf16", "w4a8kv8"], "seed": [0, 1]})
    spec = parse_spec(doc)
    runs = plan(spec)
    assert len(runs) == 2 * 2 * 2 * 2
    for r in runs:
        assert r.tokens % (4 * 32) == 0 and r.config["train"]["tokens"] == r.tokens
        shape = r.shape
        assert r.flops == training_flops(r.n_params, r.tokens, shape["n_layers"], shape["d_model"], 32)
    assert {r.config["train"]["precision"] for r in runs} == {"bf16", "w4a8kv8"}
    # tokens 2e4 and 2e4 + 10 round to the same number of steps: one run, not two
    dup = parse_spec(base(grid={"n": [1e4], "tokens": [2e4, 2e4 + 10]}))
    assert len(plan(dup)) == 1


def test_run_id_is_a_stable_hash_of_the_resolved_config() -> None:
    runs_a = plan(parse_spec(base()))
    runs_b = plan(parse_spec(base()))
    assert [r.run_id for r in runs_a] == [r.run_id for r in runs_b]
    assert all(r.run_id == run_id(r.config) for r in runs_a)
    changed = plan(parse_spec(base(train={"batch_size": 4, "seq_len": 32, "weight_decay": 0.05})))
    assert not {r.run_id for r in runs_a} & {r.run_id for r in changed}
    renamed = plan(parse_spec(base(sweep={"name": "other", "description": "same runs"})))
    assert [r.run_id for r in renamed] == [r.run_id for r in runs_a]


def test_isoflop_design_spends_each_budget() -> None:
    doc = {
        "sweep": {"name": "iso", "design": "isoflop"},
        "isoflop": {"budgets": [1e11, 1e12], "n": [1e4, 3e4, 1e5], "max_tokens": 8e6},
        "train": {"batch_size": 8, "seq_len": 64},
    }
    runs = plan(parse_spec(doc))
    step = 8 * 64
    assert len(runs) == 5  # 1e12 / (6 · 12.4k) = 13e6 > 8e6 tokens is dropped
    for r in runs:
        budget = min((1e11, 1e12), key=lambda c: abs(math.log(6 * r.n_params * r.tokens / c)))
        assert abs(6 * r.n_params * r.tokens - budget) <= 6 * r.n_params * step / 2 + 1


def test_lr_rules() -> None:
    fixed = plan(parse_spec(base(lr={"rule": "fixed", "value": 2e-3}, axes={"lr_mult": [1.0, 0.5]})))
    assert sorted({r.config["train"]["lr"] for r in fixed}) == [1e-3, 2e-3]
    power = plan(parse_spec(base(lr={"rule": "power", "value": 1e-3, "n_ref": 1e4, "alpha": 0.5})))
    by_n = {r.config["train"]["n"]: r.config["train"]["lr"] for r in power}
    assert by_n[1e4] == pytest.approx(1e-3) and by_n[3e4] == pytest.approx(1e-3 / math.sqrt(3))
    default = plan(parse_spec(base()))
    assert all(r.config["train"]["lr"] is None for r in default)  # the trainer's default_lr(N)


def test_wall_time_estimate_formula_and_makespan() -> None:
    spec = parse_spec(
        base(ptq={"methods": ["rtn", "gptq"], "formats": ["int4", "int8"], "calib_tokens": 1000})
    )
    runs = plan(spec)
    timing = Timing(step=0.01, forward_token=1e-6)
    calls = []
    estimate(runs, threads=1, measure=lambda cfg, threads: calls.append(cfg) or timing)
    assert len(calls) == 2  # one timing per distinct shape, not per run
    r = runs[0]
    t = r.config["train"]
    steps = t["tokens"] / (4 * 32)
    evals = (t["n_evals"] + 1) * t["eval_tokens"] + 2 * t["eval_tokens"] + 2 * (t["eval_tokens"] + 3 * 1000)
    assert r.est_seconds == pytest.approx(0.3 + steps * 0.01 + evals * 1e-6)
    assert estimate_seconds(r.config, timing) == r.est_seconds
    assert makespan([4, 3, 3, 2], 2) == 6
    assert makespan([5], 3) == 5


def test_ptq_eval_tokens_enter_the_config_and_the_estimate_only_when_set() -> None:
    ptq = {"methods": ["rtn", "gptq"], "formats": ["int4", "int8"], "calib_tokens": 1000}
    (plain, *_) = plan(parse_spec(base(ptq=ptq)))
    (paired, *_) = plan(parse_spec(base(ptq={**ptq, "eval_tokens": 256})))
    assert "eval_tokens" not in plain.config["ptq"] and paired.config["ptq"]["eval_tokens"] == 256
    assert plain.run_id == run_id(plain.config) != paired.run_id  # sweeps without it keep their run ids
    timing = Timing(step=0.01, forward_token=1e-6)
    t = paired.config["train"]
    steps = t["tokens"] / (4 * 32)
    evals = (t["n_evals"] + 1) * t["eval_tokens"] + 256 + 2 * 256 + 2 * (256 + 3 * 1000)
    assert estimate_seconds(paired.config, timing) == pytest.approx(0.3 + steps * 0.01 + evals * 1e-6)


def test_shapes_too_large_to_time_are_left_unestimated() -> None:
    runs = plan(load_spec("precision-gpu"), check_epochs=False)
    calls = []
    estimate(runs[:5], threads=1, measure=lambda cfg, threads: calls.append(cfg) or Timing(1.0, 1.0))
    assert not calls and all(math.isnan(r.est_seconds) for r in runs[:5])


def wsd_doc(**schedule) -> dict:
    return base(
        grid={"n": [1e4], "tokens": [2048, 4096, 8192]},
        axes={"seed": [0, 1]},
        schedule={"kind": "wsd", **schedule},
        ptq={"methods": ["rtn"], "formats": ["int4"]},
    )


def test_wsd_runs_of_one_model_become_one_trunk_whose_branches_are_the_separate_runs() -> None:
    trunks = plan(parse_spec(wsd_doc(cooldown=0.25, warmup_tokens=512)))
    assert len(trunks) == 2 and all(len(t.branches) == 3 for t in trunks)
    separate = plan(parse_spec(wsd_doc(cooldown=0.25, warmup_tokens=512, branches=False)))
    assert len(separate) == 6
    # each branch is the separate WSD run: same config, same run_id
    assert {b.run_id for t in trunks for b in t.branches} == {r.run_id for r in separate}
    for t in trunks:
        assert t.store_ids == [b.run_id for b in t.branches] and t.run_id not in t.store_ids
        assert [b.tokens for b in t.branches] == [2048, 4096, 8192] and {b.parent for b in t.branches} == {
            t.run_id
        }
        assert [b.cooldown_tokens for b in t.branches] == [512, 1024, 2048]  # 25% of each D, whole steps
        # trunk FLOPs = stable part to the last fork + every cooldown, less than the separate runs'
        per_token = t.branches[0].flops / 2048
        assert t.flops == pytest.approx(per_token * (6144 + 512 + 1024 + 2048))
        assert t.flops < sum(b.flops for b in t.branches)
        assert all(b.config["train"]["warmup_tokens"] == 512 for b in t.branches)
    # the default warmup is warmup_frac of the trunk's shortest D, in whole steps
    default = plan(parse_spec(wsd_doc()))[0]
    assert {b.config["train"]["warmup_tokens"] for b in default.branches} == {256.0}  # 10% of 16 steps
    timing = Timing(step=0.01, forward_token=1e-6)
    est = estimate_seconds(trunks[0].config, timing)
    assert est < sum(estimate_seconds(b.config, timing) for b in trunks[0].branches)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"kind": "step"}, r"schedule\.kind must be one of cosine, wsd"),
        ({"cooldown": 0.2}, r"schedule\.cooldown needs schedule\.kind = 'wsd'"),
        ({"kind": "wsd", "cooldown": 1.5}, r"schedule\.cooldown must be a fraction"),
        ({"kind": "wsd", "shape": "cubic"}, r"schedule\.shape must be one of"),
        ({"kind": "wsd", "branches": "yes"}, r"schedule\.branches must be true or false"),
        ({"kind": "wsd", "warmup": 3}, r"unknown key schedule\.warmup"),
    ],
)
def test_bad_schedules_name_the_key(schedule: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_spec(base(schedule=schedule), "t.toml")
    with pytest.raises(UserError, match=r"train\.schedule is set in \[schedule\]"):
        parse_spec(base(train={"schedule": "wsd"}), "t.toml")


def test_runs_beyond_one_epoch_are_refused_unless_the_spec_allows_them(tmp_path) -> None:
    import numpy as np

    (tmp_path / "train.bin").write_bytes(np.arange(3000, dtype=np.uint16).tobytes())
    (tmp_path / "val.bin").write_bytes(np.arange(500, dtype=np.uint16).tobytes())
    doc = base(grid={"n": [1e4], "tokens": [1024, 4096, 8192]}, train={"data": str(tmp_path)})
    with pytest.raises(UserError) as err:
        plan(parse_spec(doc, "t.toml"))
    text = str(err.value)
    assert "2 of 3 runs would repeat their data beyond max_epochs = 1" in text
    assert "D=8.19k fp32" in text or "D=8.19k bf16" in text
    assert "2.73×" in text and "--data" in text and "max_epochs = 2.73" in text
    assert len(plan(parse_spec(base(sweep={"max_epochs": 3}, **{k: doc[k] for k in ("grid", "train")})))) == 3


def test_gpu_presets_require_a_large_corpus() -> None:
    with pytest.raises(UserError, match=r"precision-gpu: 440 of 440 runs would repeat .* --data DIR_OR_GLOB"):
        plan(load_spec("precision-gpu"))


def test_grid_blocks_may_give_their_own_seeds() -> None:
    doc = base(axes={"seed": [0]})
    doc["grid"] = [{"n": [1e4], "tokens": [2e4], "seed": [0, 1, 2]}, {"n": [3e4], "tokens": [2e4]}]
    runs = plan(parse_spec(doc))
    seeds = sorted((r.config["train"]["n"], r.config["train"]["seed"]) for r in runs)
    assert seeds == [(1e4, 0), (1e4, 1), (1e4, 2), (3e4, 0)]
    doc["grid"][0]["seed"] = [-1]
    with pytest.raises(UserError, match=r"grid\[0\]\.seed"):
        parse_spec(doc)


def test_width_lr_rule_scales_the_rate_inversely_with_d_model() -> None:
    doc = base(grid={"n": [1.2e4, 5e4], "tokens": [2e4]}, lr={"rule": "width", "value": 6e-3, "d_ref": 64})
    by_width = {r.shape["d_model"]: r.config["train"]["lr"] for r in plan(parse_spec(doc))}
    assert by_width == {32: pytest.approx(1.2e-2), 64: pytest.approx(6e-3)}  # alpha defaults to 1
    doc["lr"]["alpha"] = 0.5
    assert {r.shape["d_model"]: r.config["train"]["lr"] for r in plan(parse_spec(doc))}[32] == pytest.approx(
        6e-3 * 2**0.5
    )
    with pytest.raises(UserError, match=r"lr\.d_ref needs lr\.rule = 'width'"):
        parse_spec(base(lr={"rule": "fixed", "value": 1e-3, "d_ref": 32}))
