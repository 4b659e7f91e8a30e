"""WSD trunks in a sweep: one planned job trains every token count of an (N, precision, seed, ...) as a
cooldown branch of one warmup-stable-decay run (scaling/branches.py), and each branch is its own run in the
results store.

Planning (`group_branches`, called by `sweeps.plan.plan` when the spec says `[schedule] kind = "wsd"`):
the runs that differ only in their token count D form one trunk. Each branch keeps the run_id of the separate
WSD run it equals (the SHA-256 of its own resolved config, which records the trunk's fixed warmup), so a
branch and the separate run are the same result, planned either way. The trunk is a job with its own id (the
hash of its config, which lists its branches) that the driver claims, submits and retries like any run; its
rows come back per branch (`run_id` = the branch's, `parent_run_id` = the trunk's, `cooldown_tokens`), and
`write_rows` writes each branch that the store does not hold yet as its own run file. A SIGKILL before the
trunk returns loses its branches (they are redone on --resume); one between two branch writes leaves the
written ones, which a resumed trunk recomputes but never writes twice: every branch exactly once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

__all__ = ["branch_configs", "group_branches", "run_trunk", "trunk_flops", "write_rows"]


def _key(config: dict[str, Any]) -> str:
    """What a trunk's branches share: the resolved config without the fields a branch may change."""
    import json

    from scaling.branches import BRANCH_FIELDS

    train = {k: v for k, v in config["train"].items() if k not in BRANCH_FIELDS and k != "warmup_tokens"}
    return json.dumps({**config, "train": train}, sort_keys=True)


def group_branches(runs: Sequence[Any]) -> list[Any]:
    """Fold the WSD runs of `runs` (sweeps.plan.PlannedRun) that differ only in D into trunks.

    Every run of a group gets the group's warmup: its `warmup_tokens` when the spec gives one, else
    warmup_frac × its shortest D (whole steps), so that its branches are the WSD runs of each length. A
    group of one stays a plain WSD run; a larger group becomes one trunk PlannedRun whose `branches` are the
    member runs (with `parent` and `cooldown_tokens` set), in order of D.
    """
    from sweeps.plan import PlannedRun, run_id

    groups: dict[str, list[Any]] = {}
    out: list[Any] = []
    for r in runs:
        if r.config["task"] == "lm" and r.config["train"].get("schedule") == "wsd":
            groups.setdefault(_key(r.config), []).append(r)
        else:
            out.append(r)
    for members in groups.values():
        members = sorted(members, key=lambda r: r.tokens)
        t0 = members[0].config["train"]
        per_step = t0["batch_size"] * t0["seq_len"]
        warmup = (
            t0.get("warmup_tokens")
            or max(1, round(t0["warmup_frac"] * members[0].tokens / per_step)) * per_step
        )
        branches = []
        for r in members:
            config = {**r.config, "train": {**r.config["train"], "warmup_tokens": float(warmup)}}
            branches.append(dataclasses.replace(r, run_id=run_id(config), config=config))
        if len(branches) == 1:
            out.append(branches[0])
            continue
        longest = branches[-1]
        config = {
            **longest.config,
            "branches": [{"run_id": b.run_id, "train": b.config["train"]} for b in branches],
        }
        trunk = PlannedRun(
            run_id=run_id(config),
            config=config,
            n_params=longest.n_params,
            tokens=longest.tokens,
            flops=0.0,
            shape=dict(longest.shape),
        )
        for b in branches:
            b.parent = trunk.run_id
            b.cooldown_tokens = _cooldown_tokens(b.config["train"])
        trunk.branches = branches
        trunk.flops = trunk_flops(trunk)
        out.append(trunk)
    return out


def _cooldown_tokens(train: dict[str, Any]) -> int:
    from scaling.branches import branch_plan
    from scaling.train import TrainConfig

    return branch_plan(TrainConfig(**train))[1] * train["batch_size"] * train["seq_len"]


def branch_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The resolved config of each branch of a trunk job config ({"task", "train", "ptq", ...} of the
    separate WSD run the branch equals; its SHA-256 is the branch's run_id)."""
    rest = {k: v for k, v in config.items() if k not in ("branches", "train")}
    return [{**rest, "train": b["train"]} for b in config["branches"]]


def trunk_flops(trunk: Any) -> float:
    """Training FLOPs a trunk job actually spends: the stable trunk to its last fork plus every cooldown."""
    from scaling.flops import training_flops

    per_token = training_flops(
        trunk.n_params, 1.0, trunk.shape["n_layers"], trunk.shape["d_model"], trunk.config["train"]["seq_len"]
    )
    stable = max(b.tokens - b.cooldown_tokens for b in trunk.branches)
    return per_token * (stable + sum(b.cooldown_tokens for b in trunk.branches))


def run_trunk(run_id: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Execute a trunk job: train its branches (`scaling.branches.train_branches`), evaluate every
    requested PTQ at each branch end, and return every branch's rows, stamped with the branch's run_id and
    config, with parent_run_id = `run_id` (each row's cooldown_tokens comes from its config)."""
    from scaling.branches import train_branches
    from scaling.data import load_corpus
    from scaling.train import TrainConfig
    from sweeps.runner import lm_rows, stamp

    configs = branch_configs(config)
    cfgs = [TrainConfig(**c["train"]) for c in configs]
    data = load_corpus(cfgs[0].data)  # cached per process
    rows: list[dict[str, Any]] = []

    def on_branch(i: int, result: Any) -> None:
        branch_id = config["branches"][i]["run_id"]
        branch_rows = lm_rows(result, data, configs[i], branch_id, {"parent_run_id": run_id})
        rows.extend(stamp(branch_rows, branch_id, configs[i]))

    train_branches(cfgs, data, on_branch)
    return rows


def write_rows(store: Any, run: Any, rows: list[dict[str, Any]]) -> None:
    """Write a finished job's rows: a plain run as one run file; a trunk as one run file per branch the
    store does not hold yet (exactly once each), then drop the trunk's claim and any earlier failure."""
    if not run.branches:
        store.write_run(run.run_id, rows)
        return
    by_branch: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_branch.setdefault(row["run_id"], []).append(row)
    expected = {b.run_id for b in run.branches}
    if set(by_branch) != expected:
        raise ValueError(f"trunk {run.run_id} returned rows for {sorted(by_branch)}, not its branches")
    done = store.finished()
    for branch_id, branch_rows in by_branch.items():
        if branch_id not in done:
            store.write_run(branch_id, branch_rows)
    store.release(run.run_id)
    (store.failed_dir / f"{run.run_id}.json").unlink(missing_ok=True)
