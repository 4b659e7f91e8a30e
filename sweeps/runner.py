"""Execute one planned run and return its result-store rows.

`execute(run_id, config)` dispatches on `config["task"]`:
- "lm": `run_lm` trains with `scaling.train.train`;
- "bios": `run_bios` trains with `scaling.capacity.train_bios` (knowledge capacity, Allen-Zhu & Li 2024)
  and measures bits and R of every model it scores.
Both then evaluate every requested post-training weight quantization (RTN or GPTQ) through one function,
`scaling.ptq.evaluate_ptq`, which scores the quantized copy with the run's own training loss on the
validation batches the run was scored on. Either returns one row with ptq_method = "none" (P_post = NaN,
loss_post = loss, δ_PTQ = 0) and one row per (method, format), δ_PTQ = loss_post − loss (Kumar et al. 2024).
`execute` then stamps every row with the run_id, the resolved config JSON (whose SHA-256 is the run_id),
the scalefit version and the git commit.

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
    if config.get("task") not in TASK_RUNNERS:
        raise ValueError(f"unknown task {config.get('task')!r}; known: {', '.join(TASK_RUNNERS)}")
    if "branches" in config:  # a WSD trunk: rows of every branch, each stamped as its own run
        from sweeps.trunks import run_trunk

        return run_trunk(run_id, config)
    module, _, name = TASK_RUNNERS[config["task"]].partition(":")
    return stamp(getattr(importlib.import_module(module), name)(config, run_id), run_id, config)


def stamp(rows: list[dict[str, Any]], run_id: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Stamp a run's rows with its run_id, task, resolved config JSON, scalefit version and git commit."""
    from scaling.version import __version__, git_commit

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


def run_lm(config: dict[str, Any], run_id: str = "") -> list[dict[str, Any]]:
    """Train a language model as `config["train"]` says, then evaluate PTQ as `config["ptq"]` says."""
    from scaling.data import load_corpus
    from scaling.train import TrainConfig, train

    cfg = TrainConfig(**config["train"])
    data = load_corpus(cfg.data)  # cached per process
    return lm_rows(train(cfg, data=data), data, config, run_id)


def lm_rows(
    result: Any, data: Any, config: dict[str, Any], run_id: str = "", extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows of a trained language model: its own and one per PTQ setting of `config["ptq"]`
    (`scaling.ptq.evaluate_ptq`), plus `extra` columns (a WSD branch's parent_run_id)."""
    from scaling.ptq import evaluate_ptq

    cfg = result.config
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
    base = {"run_id": run_id, "task": "lm", "parent_run_id": "", **_training_columns(result, config)}
    base.update(extra or {})
    rows = [_ptq_row(base, diagnostics, "none", None, result.val_loss, 0.0)]
    if result.status != "ok" or result.model is None:
        return rows
    for ev in evaluate_ptq(result.model, data, cfg, config["ptq"], result.val_loss):
        rows.append(_ptq_row(base, diagnostics, ev.method, ev.fmt, ev.loss, ev.seconds))
    return rows


def run_bios(config: dict[str, Any], run_id: str = "") -> list[dict[str, Any]]:
    """A knowledge-capacity run: train (`scaling.capacity.train_bios`), then measure the bits and R of the
    trained model and of every weight-PTQ copy (`scaling.capacity.measure_capacity`), PTQ evaluated as for
    lm runs (`scaling.ptq.evaluate_ptq`). Rows: the columns of docs/results_schema.md plus people, exposures,
    junk, domain_token, bits, bits_available, params_paper, R and R_total."""
    from scaling.capacity import measure_capacity, train_bios
    from scaling.ptq import evaluate_ptq

    bios = dict(config["bios"])
    people, exposures = bios.pop("people"), bios.pop("exposures")
    trained = train_bios({**config["train"], "people": people, "exposures": exposures, "bios": bios})
    result, source, cfg = trained.result, trained.source, trained.config
    base = {
        "run_id": run_id,
        "task": "bios",
        **_training_columns(result, config),
        "people": people,
        "exposures": exposures,
        "junk": source.junk,
        "domain_token": int(source.domain_token),
    }
    diagnostics = {
        "max_abs_logit": result.max_abs_logit,
        "softmax_collapse": result.softmax_collapse,
        "steps": result.steps,
        "val_curve": result.val_curve,
        "shape": result.shape,
        "data": source.provenance(),
    }
    model = result.model
    if result.status != "ok" or model is None:
        nan = math.nan
        row = _ptq_row(base, diagnostics, "none", None, result.val_loss, 0.0)
        return [{**row, "bits": nan, "bits_available": source.world.bits_available, "params_paper": nan,
                 "R": nan, "R_total": nan}]  # fmt: skip

    def row(method: str, fmt: Any, loss_post: float, qmodel: Any, seconds: float) -> dict[str, Any]:
        start = time.perf_counter()
        cap = measure_capacity(qmodel, source, cfg.seed)
        diag = {**diagnostics, "capacity": cap.to_dict(), "measure_seconds": time.perf_counter() - start}
        return {**_ptq_row(base, diag, method, fmt, loss_post, seconds), "bits": cap.bits,
                "bits_available": cap.bits_available, "params_paper": cap.params_paper, "R": cap.R,
                "R_total": cap.R_total}  # fmt: skip

    rows = [row("none", None, result.val_loss, model, 0.0)]
    for ev in evaluate_ptq(model, source, cfg, config["ptq"]):
        rows.append(row(ev.method, ev.fmt, ev.loss, ev.model, ev.seconds))
    return rows


def _training_columns(result: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The columns a trained run determines, for every task: `RunResult.columns()` plus the training loss
    function (`loss_fn`), the MLP type and the model-shape label (`shape`, the planned shape family, else
    `d<d_model>-L<n_layers>`)."""
    shape = result.shape
    label = config.get("shape") or f"d{shape['d_model']}-L{shape['n_layers']}"
    return {**result.columns(), "loss_fn": result.config.loss, "mlp": shape["mlp"], "shape": label}


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
