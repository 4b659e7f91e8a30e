"""Cooldown branches: many (N, D_k) runs from one warmup-stable-decay run (scaling/schedule.py).

Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations") and Hu et
al. 2024 ("MiniCPM") train one model at a constant learning rate and, wherever a shorter run is wanted,
fork a short cooldown from it. Here a WSD run of S_k steps with a cooldown of C_k = round(f·S_k) steps is
the constant-rate trunk to step F_k = S_k − C_k followed by its own cooldown, and nothing the trunk does
depends on S_k (its warmup is fixed in tokens; its batches are a pure function of the step). So

    train_branches([cfg_1, ..., cfg_K])

trains one trunk to max_k F_k and, at each F_k, deep-copies model and optimizer state and runs cooldown k
to S_k: each branch ends exactly where the separate WSD run `train(cfg_k)` would (bit for bit on CPU,
tested), for (max_k F_k + Σ_k C_k) steps instead of Σ_k S_k. Each branch's result counts its own lineage:
D_k tokens, its FLOPs, the trunk's seconds up to F_k plus its cooldown, the validation passes it inherited
plus its final one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence

from scaling.data import TokenSource, load_corpus
from scaling.errors import UserError
from scaling.train import RunResult, TrainConfig, eval_steps, finish_run, run_steps, start_run

__all__ = ["BRANCH_FIELDS", "branch_plan", "train_branches", "trunk_config"]

# The fields in which the branches of one trunk may differ: their length, their cooldown and how they are
# measured. Everything else (model, data, seed, optimizer, peak rate, warmup) is the trunk's.
BRANCH_FIELDS = ("tokens", "cooldown_frac", "cooldown_shape", "min_lr_frac", "eval_tokens", "n_evals")


def _check(configs: Sequence[TrainConfig]) -> None:
    if not configs:
        raise UserError("train_branches needs at least one branch config")
    first = dataclasses.asdict(configs[0])
    for cfg in configs:
        if cfg.schedule != "wsd":
            raise UserError(f"cooldown branches need schedule 'wsd', got {cfg.schedule!r}")
        if cfg.warmup_tokens is None and cfg.n_steps != configs[0].n_steps:
            raise UserError("branches of different lengths need warmup_tokens (a warmup fixed in tokens)")
        other = dataclasses.asdict(cfg)
        differ = [k for k in first if k not in BRANCH_FIELDS and first[k] != other[k]]
        if differ:
            raise UserError(f"branches of one trunk must agree on {', '.join(differ)}")


def branch_plan(cfg: TrainConfig) -> tuple[int, int]:
    """(fork step F, cooldown steps C) of a branch: it leaves the trunk after F steps and cools down for C."""
    schedule = cfg.lr_schedule()
    return schedule.fork, schedule.cooldown


def trunk_config(configs: Sequence[TrainConfig]) -> TrainConfig:
    """The constant-rate trunk the branches fork from: the longest branch without a cooldown, trained to the
    last fork step (its learning rate, warmup and everything else as the branches have them)."""
    _check(configs)
    longest = max(configs, key=lambda c: branch_plan(c)[0])
    last_fork = branch_plan(longest)[0]
    tokens = float(max(1, last_fork) * longest.batch_size * longest.seq_len)
    return dataclasses.replace(longest, tokens=tokens, cooldown_frac=0.0)


def train_branches(
    configs: Sequence[TrainConfig],
    data: TokenSource | None = None,
    on_branch: Callable[[int, RunResult], None] | None = None,
    skip: Iterable[int] = (),
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[RunResult | None]:
    """Train the branches `configs` (WSD configs differing only in BRANCH_FIELDS) from one trunk.

    Returns one RunResult per config, in the given order (None for indices in `skip`, e.g. branches a
    resumed sweep already has). `on_branch(index, result)` is called as each branch ends, with its trained
    model; afterwards the result's model is dropped, so only one branch model is alive at a time. A trunk
    that diverges makes every branch forked after that point a "diverged" result.
    """
    _check(configs)
    skipped = set(skip)
    todo = sorted((i for i in range(len(configs)) if i not in skipped), key=lambda i: branch_plan(configs[i]))
    results: list[RunResult | None] = [None] * len(configs)
    if not todo:
        return results
    trunk_cfg = trunk_config([configs[i] for i in todo])
    data = data if data is not None else load_corpus(trunk_cfg.data)
    trunk = start_run(trunk_cfg, data)
    trunk_schedule = trunk_cfg.lr_schedule()
    # the trunk's share of the validation passes: n_evals − 1 along it, each branch adds its final one
    trunk_evals = eval_steps(trunk_cfg.n_steps, trunk_cfg.n_evals - 1) if trunk_cfg.n_evals > 1 else set()
    cooldown_seconds = 0.0  # spent in earlier branches: not part of a later branch's lineage
    for i in todo:
        cfg = configs[i]
        fork, _ = branch_plan(cfg)
        run_steps(trunk, fork, trunk_schedule, trunk_evals, on_step)
        t0 = time.perf_counter()
        branch = trunk.fork(cfg)
        branch.start = trunk.start + cooldown_seconds
        run_steps(branch, cfg.n_steps, cfg.lr_schedule(), frozenset(), on_step)
        result = finish_run(branch)
        if on_branch is not None:
            on_branch(i, result)
            result.model = None
        results[i] = result
        cooldown_seconds += time.perf_counter() - t0
    return results
