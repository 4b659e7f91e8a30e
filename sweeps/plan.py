"""Expand a `SweepSpec` into resolved run configs, and estimate their FLOPs and wall time.

A resolved run config is a plain JSON-able dict holding everything that defines one run:

    {"task": "lm", "train": {every scaling.train.TrainConfig field}, "ptq": {"methods", "formats",
     "calib_tokens"}}  (+ "bios": {"people", "exposures", ...} for task "bios")

and `run_id` is the first 16 hex digits of the SHA-256 of its canonical JSON, so the same run planned by
two sweeps gets the same id, and changing anything about a run (a default included) gives a new id.

Designs:
- grid: every target size n × every token count D (× the [axes] lists).
- isoflop: for each budget C and each n, D = C / (6N) with N the non-embedding parameter count of the
  shape the family picks for n (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models",
  approach 2), kept when min_tokens ≤ D ≤ max_tokens.
Token counts are rounded to whole optimizer steps (batch_size × seq_len tokens) so the planned D is the
trained D.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scaling.errors import UserError
from scaling.flops import training_flops
from sweeps.spec import SweepSpec


@dataclass
class PlannedRun:
    """One run of a sweep: its id, resolved config and what planning knows about it."""

    run_id: str
    config: dict[str, Any]
    n_params: int  # non-embedding N of the resolved shape
    tokens: int  # training tokens D (whole steps); 0 when the task decides it (bios)
    flops: float  # training FLOPs (scaling.flops.training_flops); NaN when tokens are unknown
    shape: dict[str, int] = field(default_factory=dict)
    est_seconds: float = float("nan")
    branches: list[PlannedRun] = field(default_factory=list)  # a WSD trunk: its cooldown branches
    parent: str = ""  # a branch: the run_id of its trunk
    cooldown_tokens: int = 0  # a branch: tokens of its cooldown

    @property
    def store_ids(self) -> list[str]:
        """The runs this job writes to the results store: its branches for a trunk, else itself."""
        return [b.run_id for b in self.branches] or [self.run_id]

    @property
    def label(self) -> str:
        """A short human-readable name: `N=98.6k D=300k w4a4kv4 s0`."""
        t = self.config["train"]
        extra = ""
        if "bios" in self.config:
            extra = f" people={self.config['bios']['people']} exp={self.config['bios']['exposures']}"
        d = f" D={_si(self.tokens)}" if self.tokens else ""
        return f"N={_si(self.n_params)}{d}{extra} {t['precision']} {t['optimizer']} s{t['seed']}"


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def run_id(config: dict[str, Any]) -> str:
    """The run's id: SHA-256 (first 16 hex digits) of its canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _round_tokens(tokens: float, batch_size: int, seq_len: int) -> int:
    per_step = batch_size * seq_len
    return max(1, round(tokens / per_step)) * per_step


def plan(spec: SweepSpec, *, check_epochs: bool = True) -> list[PlannedRun]:
    """All runs of `spec`, in spec order, without duplicates (runs whose resolved configs coincide).

    With `[schedule] kind = "wsd"` (and branches, the default) the runs that differ only in D are folded
    into trunks (`sweeps.trunks.group_branches`). With `check_epochs` lm runs that would read their corpus
    more than `spec.max_epochs` times are refused (`check_data_epochs`).
    """
    from scaling.train import TrainConfig

    base = {**spec.train}
    probe = TrainConfig(**base)  # the fixed fields are valid on their own
    batch, seq = probe.batch_size, probe.seq_len
    pairs: list[tuple[float, float, tuple[str, ...], tuple[int, ...]]] = []  # (n, tokens, precisions, seeds)
    if spec.design == "grid":
        for block in spec.grid:
            precisions, seeds = block.precision or spec.precision, block.seed or spec.seed
            pairs += [(n, d, precisions, seeds) for n in block.n for d in (block.tokens or (0.0,))]
    else:
        for budget in spec.budgets:
            for n in spec.n:
                shape = TrainConfig(**base, n=n).model_config(vocab_size=256)
                d = budget / training_flops(shape.n_params, 1.0)
                if spec.min_tokens <= d <= spec.max_tokens:
                    pairs.append((n, d, spec.precision, spec.seed))
        if not pairs:
            raise UserError(
                "the isoflop design leaves no run between isoflop.min_tokens and isoflop.max_tokens"
            )
    bios_axes: list[tuple[int | None, int | None]] = (
        list(itertools.product(spec.people, spec.exposures)) if spec.task == "bios" else [(None, None)]
    )
    runs: dict[str, PlannedRun] = {}
    combos = [
        (n, d, precision, *rest)
        for n, d, precisions, seeds in pairs
        for precision in precisions
        for rest in itertools.product(spec.optimizer, seeds, spec.lr_mult, bios_axes, _variant_axes(spec))
    ]
    for n, d, precision, optimizer, seed, mult, (people, exposures), variant in combos:
        tokens = _round_tokens(d, batch, seq) if d else batch * seq
        model_fields = _model_fields(n, variant, base)
        fields = dict(base, **model_fields, n=n, tokens=float(tokens), precision=precision,
                      optimizer=optimizer, seed=seed)  # fmt: skip
        width = TrainConfig(**fields).model_config(256).d_model if spec.lr_rule == "width" else None
        cfg = TrainConfig(**fields, lr=spec.lr_for(n, mult, width))
        train_fields = _jsonable(dataclasses.asdict(cfg))
        if spec.task == "bios":  # scaling.capacity.run_bios sets tokens (people × exposures) and data
            del train_fields["tokens"], train_fields["data"]
        config: dict[str, Any] = {"task": spec.task, "train": train_fields}
        config["ptq"] = {
            "methods": list(spec.ptq_methods),
            "formats": list(spec.ptq_formats),
            "calib_tokens": spec.calib_tokens,
        }
        if spec.ptq_eval_tokens is not None:  # only when set, so other sweeps keep their run_ids
            config["ptq"]["eval_tokens"] = spec.ptq_eval_tokens
        if spec.task == "bios":
            bios_variant = {k: variant[k] for k in ("junk", "domain_token") if k in variant}
            config["bios"] = {"people": people, "exposures": exposures, **spec.bios, **bios_variant}
        if "shape" in variant:
            config["shape"] = variant["shape"]
        shape = cfg.model_config(vocab_size=256)
        planned_tokens = tokens if spec.task == "lm" else 0
        rid = run_id(config)
        runs.setdefault(
            rid,
            PlannedRun(
                run_id=rid,
                config=config,
                n_params=shape.n_params,
                tokens=planned_tokens,
                flops=training_flops(
                    shape.n_params, planned_tokens, shape.n_layers, shape.d_model, shape.seq_len
                )
                if planned_tokens
                else float("nan"),
                shape={
                    "d_model": shape.d_model,
                    "n_layers": shape.n_layers,
                    "n_heads": shape.n_heads,
                    "d_ff": shape.d_ff,
                },
            ),
        )
    planned = list(runs.values())
    if spec.schedule == "wsd" and spec.branches:
        from sweeps.trunks import group_branches

        planned = group_branches(planned)
    if check_epochs:
        check_data_epochs(planned, spec.max_epochs, spec.name)
    return planned


def epochs_of(runs: Sequence[PlannedRun]) -> dict[str, float]:
    """run_id → passes over its corpus's training split, for lm runs and branches (bios runs make their data);
    a trunk's are its longest branch's. Loads each corpus once (cached per process)."""
    from scaling.data import load_corpus

    out: dict[str, float] = {}
    for r in runs:
        data = r.config["train"].get("data")
        if r.config["task"] == "lm" and data is not None and r.tokens:
            n = load_corpus(data).n_train_tokens
            out[r.run_id] = r.tokens / n
            out.update({b.run_id: b.tokens / n for b in r.branches})
    return out


def check_data_epochs(runs: Sequence[PlannedRun], max_epochs: float = 1.0, name: str = "sweep") -> None:
    """Refuse (UserError) runs that would read their corpus more than `max_epochs` times, naming them and
    by how much, and how to pass a larger corpus or allow repetition (repeated data changes scaling;
    Muennighoff et al. 2023)."""
    epochs = epochs_of(runs)
    over = [r for r in runs if epochs.get(r.run_id, 0.0) > max_epochs]
    over.sort(key=lambda r: -epochs[r.run_id])
    if not over:
        return
    from scaling.data import load_corpus

    data = over[0].config["train"]["data"]
    corpus = load_corpus(data)
    shown = "; ".join(f"{r.label} reads it {epochs[r.run_id]:.3g}×" for r in over[:3])
    more = f" (and {len(over) - 3} more)" if len(over) > 3 else ""
    need = max(r.tokens for r in over) / max_epochs
    raise UserError(
        f"{name}: {len(over)} of {len(runs)} runs would repeat their data beyond max_epochs = {max_epochs:g} "
        f"of corpus {corpus.name!r} ({corpus.n_train_tokens:,} training tokens): {shown}{more}. Pass a "
        f"corpus of at least {need:,.0f} tokens (scalefit sweep --data DIR_OR_GLOB of nanoGPT-style "
        f"uint16/uint32 token shards, see docs/data.md, or [train] data in the spec) or allow repeats with "
        f"[sweep] max_epochs = {epochs[over[0].run_id]:.3g}"
    )


def _variant_axes(spec: SweepSpec) -> list[dict[str, Any]]:
    """The crossed values of the optional axes junk, domain_token, mlp and shape (only those given)."""
    axes = {k: getattr(spec, k) for k in ("junk", "domain_token", "mlp", "shape") if getattr(spec, k)}
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


def _model_fields(n: float, variant: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig fields an axis value sets: mlp, and the shape-family member nearest n (sweeps.shapes)."""
    out: dict[str, Any] = {"mlp": variant["mlp"]} if "mlp" in variant else {}
    if "shape" in variant:
        from sweeps.shapes import parse_shape

        out |= parse_shape(variant["shape"]).shape(n, out.get("mlp", base.get("mlp", "gelu")))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------
# Wall-time estimate
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Measured costs of one model shape and precision on this machine (seconds)."""

    step: float  # one optimizer step of batch_size × seq_len tokens
    forward_token: float  # forward pass per token (evaluation, PTQ, GPTQ calibration)


# Fields that do not change the cost of a step or a forward pass (one timing serves all their values).
_UNTIMED = ("tokens", "seed", "lr", "data", "eval_tokens", "n_evals", "schedule", "warmup_frac",
            "warmup_tokens", "min_lr_frac", "cooldown_frac", "cooldown_shape")  # fmt: skip


def _timing_key(config: dict[str, Any]) -> str:
    t = {k: v for k, v in config["train"].items() if k not in _UNTIMED}
    return json.dumps(t, sort_keys=True)


def measure_timing(config: dict[str, Any], threads: int, steps: int = 8) -> Timing:
    """Time real training steps of this config (median step after a warm-up step) and a forward pass."""
    import statistics

    import torch

    from scaling.data import load_corpus
    from scaling.train import TrainConfig, evaluate_loss, train

    torch.set_num_threads(threads)
    t = {**config["train"]}
    data = load_corpus(t["data"])
    per_step = t["batch_size"] * t["seq_len"]
    t.update(tokens=float(per_step * (steps + 1)), eval_tokens=per_step, n_evals=1, threads=None)
    stamps: list[float] = []
    result = train(TrainConfig(**t), data=data, on_step=lambda *_: stamps.append(time.perf_counter()))
    step = statistics.median(b - a for a, b in itertools.pairwise(stamps))
    batches = data.val_batches(t["batch_size"], t["seq_len"], 8192)
    assert result.model is not None
    start = time.perf_counter()
    evaluate_loss(result.model, batches)
    n_fwd = sum(b[:, :-1].numel() for b in batches)
    return Timing(step=step, forward_token=(time.perf_counter() - start) / n_fwd)


# Relative cost of the GPTQ layer solves over its calibration forward passes (measured on tiny models; the
# forward pass over calib_tokens with hooks dominates below d_model ≈ 1000).
GPTQ_OVERHEAD = 2.0
RUN_OVERHEAD_S = 0.3  # model construction, result rows, store write
# One sweep: torch import (4.6 s), torch._dynamo import by the optimizer (4.7 s), corpus (1.7 s), under load.
STARTUP_S = 10.0


def estimate_seconds(config: dict[str, Any], timing: Timing) -> float:
    """Wall time of one run: training steps + (n_evals + 1) validation passes + PTQ evaluations.

    t = steps·t_step + t_fwd·[(n_evals + 1)·E + Σ_(method, format) (E + [gptq]·(1 + GPTQ_OVERHEAD)·C)]
    with E = eval tokens, C = calibration tokens. A WSD trunk takes max_k F_k + Σ_k C_k steps (its last fork
    plus every cooldown), n_evals − 1 passes along the trunk and, per branch, a final pass and its PTQ.
    """
    t, ptq = config["train"], config["ptq"]
    if "branches" in config:  # a WSD trunk: to its last fork, every cooldown, a final eval + PTQ per branch
        from scaling.branches import branch_plan
        from scaling.train import TrainConfig

        plans = [branch_plan(TrainConfig(**b["train"])) for b in config["branches"]]
        steps = max(f for f, _ in plans) + sum(c for _, c in plans)
        evals = max(0, t["n_evals"] - 1) * t["eval_tokens"]
        evals += sum(_ptq_tokens(b["train"], ptq) + b["train"]["eval_tokens"] for b in config["branches"])
        return RUN_OVERHEAD_S * len(plans) + steps * timing.step + evals * timing.forward_token
    steps = max(1, round(t["tokens"] / (t["batch_size"] * t["seq_len"])))
    evals = (t["n_evals"] + 1) * t["eval_tokens"] + _ptq_tokens(t, ptq)
    return RUN_OVERHEAD_S + steps * timing.step + evals * timing.forward_token


def _ptq_tokens(t: dict[str, Any], ptq: dict[str, Any]) -> float:
    """Forward tokens of a run's PTQ evaluations: E_q per setting (E_q = ptq eval_tokens, else the run's
    E; with E_q < E one more pass of the unquantized model on them), plus GPTQ's calibration passes."""
    if not ptq["methods"] or not ptq["formats"]:
        return 0.0
    e_q = min(t["eval_tokens"], ptq.get("eval_tokens") or t["eval_tokens"])
    evals = e_q if e_q < t["eval_tokens"] else 0.0
    for method in ptq["methods"]:
        per = e_q + (ptq["calib_tokens"] * (1 + GPTQ_OVERHEAD) if method == "gptq" else 0)
        evals += per * len(ptq["formats"])
    return evals


# Shapes whose optimizer step costs more FLOPs than this are not timed (one step would take minutes on a
# CPU: e.g. precision-gpu's 30M-parameter model at 262k tokens per step is 4.7e16 FLOPs); their runs stay
# unestimated. The CPU presets' largest step is 2.5e9 FLOPs.
MAX_TIMED_STEP_FLOPS = 1e12


def step_flops(run: PlannedRun) -> float:
    """Training FLOPs of one optimizer step of this run's shape."""
    t = run.config["train"]
    return training_flops(
        run.n_params,
        t["batch_size"] * t["seq_len"],
        run.shape["n_layers"],
        run.shape["d_model"],
        t["seq_len"],
    )


def estimate(
    runs: Sequence[PlannedRun],
    threads: int,
    workers: int = 1,
    measure: Callable[[dict[str, Any], int], Timing] = measure_timing,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Timing]:
    """Fill `est_seconds` of every lm run by timing each distinct shape/precision once on this machine.

    With `workers` > 1 every shape is timed by `workers` processes at once, as the sweep will run, so the
    estimate includes the slowdown of runs sharing the machine (with each other and with other jobs).
    """
    timings: dict[str, Timing] = {}
    keys = {}
    for r in runs:
        if r.config["task"] == "lm" and step_flops(r) <= MAX_TIMED_STEP_FLOPS:
            keys.setdefault(_timing_key(r.config), r.config)
    if workers > 1 and len(keys) > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        copies: dict[str, list[Timing]] = {key: [] for key in keys}
        with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            # each shape is timed by every worker at once, so every timing sees the sweep's contention
            futures = {pool.submit(measure, c, threads): k for k, c in keys.items() for _ in range(workers)}
            for i, future in enumerate(cf.as_completed(futures)):
                if progress is not None:
                    progress(i // workers, len(keys))
                copies[futures[future]].append(future.result())
        for key, measured in copies.items():
            timings[key] = Timing(
                step=sum(m.step for m in measured) / len(measured),
                forward_token=sum(m.forward_token for m in measured) / len(measured),
            )
    else:
        for i, (key, config) in enumerate(keys.items()):
            if progress is not None:
                progress(i, len(keys))
            timings[key] = measure(config, threads)
    for r in runs:
        key = _timing_key(r.config)
        if key in timings:
            r.est_seconds = estimate_seconds(r.config, timings[key])
    return timings


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall time of running jobs of these durations on `workers` slots, longest first (LPT scheduling)."""
    slots = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(slots, slots[0] + s)
    return max(slots)
