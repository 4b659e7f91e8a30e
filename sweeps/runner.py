"""Execute one planned run and return its result-store rows.

`execute(run_id, config)` dispatches on `config["task"]`:
- "lm": `run_lm` trains with `scaling.train.train`, then evaluates every requested post-training weight
  quantization (`scaling.ptq.quantize_weights`, RTN or GPTQ) on the same validation batches;
- "bios": `scaling.capacity.run_bios` (knowledge capacity, Allen-Zhu & Li 2024).
Either returns one row with ptq_method = "none" (P_post = NaN, loss_post = loss, δ_PTQ = 0) and one row per
(method, format), δ_PTQ = loss_post − loss (Kumar et al. 2024). `execute` then stamps every row with the
run_id, the resolved config JSON (whose SHA-256 is the run_id), the scalefit version and the git commit.

A diverged run (NaN/inf loss) returns its "none" row with status "diverged" and no PTQ rows; anything
that raises is recorded by the sweep as a failure and retried on --resume.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from typing import Any

# task -> "module:function" taking the resolved run config and returning rows (see module docstring).
TASK_RUNNERS = {"lm": "sweeps.runner:run_lm", "bios": "sweeps.runner:run_bios"}


def execute(run_id: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Run `config` (a resolved config from `sweeps.plan`) and return its rows, stamped with provenance."""
    from scaling.version import __version__, git_commit

    if config.get("task") not in TASK_RUNNERS:
        raise ValueError(f"unknown task {config.get('task')!r}; known: {', '.join(TASK_RUNNERS)}")
    module, _, name = TASK_RUNNERS[config["task"]].partition(":")
    rows = getattr(importlib.import_module(module), name)(config, run_id)
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
    for row in rows:
        row.update(
            run_id=run_id,
            task=config["task"],
            config_json=config_json,
            scalefit_version=__version__,
            git_commit=git_commit(),
        )
    return rows


def run_bios(config: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
    """A knowledge-capacity run through `scaling.capacity.run_bios` (flat run dict: TrainConfig fields,
    people, exposures, bios options, ptq)."""
    from scaling.capacity import run_bios as capacity_run

    bios = dict(config["bios"])
    run = {**config["train"], "people": bios.pop("people"), "exposures": bios.pop("exposures"), "bios": bios,
           "ptq": config["ptq"], "run_id": run_id}  # fmt: skip
    return capacity_run(run)


def run_lm(config: dict[str, Any], run_id: str = "") -> list[dict[str, Any]]:
    """Train a language model as `config["train"]` says, then evaluate PTQ as `config["ptq"]` says."""
    from scaling.data import load_corpus
    from scaling.formats import parse_format
    from scaling.ptq import calibration_batches, quantize_weights
    from scaling.train import TrainConfig, evaluate_loss, train

    cfg = TrainConfig(**config["train"])
    data = load_corpus(cfg.data)  # cached per process
    result = train(cfg, data=data)
    diagnostics = {
        "best_val_loss": result.best_val_loss,
        "max_abs_logit": result.max_abs_logit,
        "softmax_collapse": result.softmax_collapse,
        "steps": result.steps,
        "train_curve": result.train_curve,
        "val_curve": result.val_curve,
        "shape": result.shape,
        "data": result.data,
    }
    base = {"run_id": run_id, "task": "lm", **result.columns()}
    rows = [_ptq_row(base, diagnostics, "none", None, result.val_loss, 0.0)]
    ptq = config["ptq"]
    if result.status != "ok" or result.model is None or not ptq["methods"]:
        return rows
    val = data.val_batches(cfg.batch_size, cfg.seq_len, cfg.eval_tokens)
    calib = None
    for method in ptq["methods"]:
        if method == "gptq" and calib is None:
            calib = calibration_batches(data, cfg.seq_len, ptq["calib_tokens"], cfg.batch_size, cfg.seed)
        for name in ptq["formats"]:
            start = time.perf_counter()
            fmt = parse_format(name)
            qmodel = quantize_weights(result.model, fmt, method, calib if method == "gptq" else None)
            loss_post = evaluate_loss(qmodel, val, cfg.loss)
            rows.append(_ptq_row(base, diagnostics, method, fmt, loss_post, time.perf_counter() - start))
    return rows


def _ptq_row(
    base: dict[str, Any], diagnostics: dict[str, Any], method: str, fmt: Any, loss_post: float, seconds: float
) -> dict[str, Any]:
    loss = base["loss"]
    return {
        **base,
        "ptq_method": method,
        "P_post": math.nan if fmt is None else float(fmt.bits),
        "fmt_post": "" if fmt is None else fmt.name,
        "loss_post": loss_post,
        "delta_ptq": loss_post - loss if fmt is not None else 0.0,
        "diagnostics_json": json.dumps({**diagnostics, "ptq_seconds": seconds}, allow_nan=True),
    }
