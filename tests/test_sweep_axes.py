"""Capacity sweep axes (issue 16): exposures, junk, domain token, MLP type and model shape are crossed by the
planner, reach the run, and come back as result-store columns (the capacity law's group keys)."""

from __future__ import annotations

import pytest

from scaling.errors import UserError
from sweeps.plan import plan
from sweeps.runner import execute
from sweeps.shapes import parse_shape
from sweeps.spec import parse_spec
from sweeps.store import rows_to_table


def doc(**axes) -> dict:
    return {
        "sweep": {"name": "axes", "task": "bios"},
        "grid": {"n": [2.5e4, 1e5]},
        "axes": {"precision": ["fp32"], "people": [12], "exposures": [2], **axes},
        "train": {"batch_size": 4, "seq_len": 32, "eval_tokens": 256, "n_evals": 1},
        "bios": {"variant": "bioD", "bioD": [4, 1, 8, 1, 8], "name_tokens": 3},
    }


def test_axes_are_crossed_into_run_configs() -> None:
    runs = plan(parse_spec(doc(junk=[0, 7], domain_token=[False, True], mlp=["gelu", "swiglu"],
                               shape=["L2-hd16", "L1-hd16"])))  # fmt: skip
    assert len(runs) == 2 * 2 * 2 * 2 * 2
    seen = {(r.config["bios"]["junk"], r.config["bios"]["domain_token"], r.config["train"]["mlp"],
             r.config["shape"]) for r in runs}  # fmt: skip
    assert len(seen) == 16
    by = {(r.config["shape"], r.config["train"]["mlp"], r.config["train"]["n"]): r for r in runs}
    small, large = by["L2-hd16", "gelu", 2.5e4].config["train"], by["L2-hd16", "gelu", 1e5].config["train"]
    assert (small["d_model"], small["n_layers"], small["n_heads"]) == (32, 2, 2)
    assert (large["d_model"], large["n_layers"], large["n_heads"]) == (64, 2, 4)
    assert by["L1-hd16", "swiglu", 1e5].config["train"]["n_layers"] == 1
    # Without the optional axes nothing is added, so earlier specs keep their run ids.
    (plain, *_) = plan(parse_spec(doc()))
    assert "shape" not in plain.config and "junk" not in plain.config["bios"]


def test_shape_family_member_nearest_n() -> None:
    fam = parse_shape("L4-hd32")
    assert fam.label == "L4-hd32"
    got = fam.shape(4e5)
    assert got["n_layers"] == 4 and got["d_model"] % 32 == 0 and got["n_heads"] == got["d_model"] // 32
    assert abs(12 * 4 * got["d_model"] ** 2 / 4e5 - 1) < 0.5
    for bad in ("L2", "L0-hd16", "L2-hd15", "2-hd16"):
        with pytest.raises(UserError, match="shape must look like"):
            parse_shape(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axes": {"junk": [-1]}}, "axes.junk must be"),
        ({"axes": {"domain_token": [1]}}, "axes.domain_token must be"),
        ({"axes": {"mlp": ["relu"]}}, "axes.mlp must be"),
        ({"axes": {"shape": ["wide"]}}, "axes.shape"),
        ({"axes": {"junk": [7]}, "bios": {"junk": 7}}, "both in \\[axes\\] and in \\[bios\\]"),
        ({"axes": {"shape": ["L2-hd16"]}, "train": {"d_model": 32}}, "remove train.d_model"),
        ({"axes": {"mlp": ["gelu"]}, "train": {"mlp": "gelu"}}, "both in \\[axes\\] and in \\[train\\]"),
    ],
)
def test_bad_axes_are_refused(change: dict, message: str) -> None:
    d = doc()
    for table, values in change.items():
        d[table] = {**d.get(table, {}), **values}
    with pytest.raises(UserError, match=message):
        parse_spec(d)


def test_junk_axes_refused_for_lm() -> None:
    d = {"sweep": {"name": "lm"}, "grid": {"n": [1e4], "tokens": [1e4]}, "axes": {"junk": [7]}}
    with pytest.raises(UserError, match="only for task 'bios'"):
        parse_spec(d)


def test_axis_values_come_back_as_columns() -> None:
    d = doc(junk=[2], domain_token=[True], mlp=["swiglu"], shape=["L1-hd8"])
    d["grid"] = {"n": [2e3]}
    (run,) = plan(parse_spec(d))
    rows = execute(run.run_id, run.config)
    rows_to_table(run.run_id, rows)
    (row,) = rows
    assert (row["junk"], row["domain_token"], row["mlp"], row["shape"]) == (2.0, 1, "swiglu", "L1-hd8")
    assert row["epochs"] == pytest.approx(2, rel=0.1) and row["status"] == "ok"
