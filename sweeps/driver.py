"""Drive a sweep: skip finished runs, claim and submit the rest, store each result as it arrives.

`run_sweep(runs, store, executor)` is the loop behind `scalefit sweep`:

1. recover the store (delete half-written temp files, drop dead sweeps' claims, move unreadable run files
   aside) and skip every planned run that already has a valid run file;
2. claim a run (so a second live sweep on the same directory skips it), submit it, keep `executor.slots`
   runs in flight; longest-first when several run at once (LPT scheduling shortens the sweep);
3. write each finished run atomically the moment it returns ("ok" and "diverged" alike); record runs that
   raised as failures (not results; retried on --resume);
4. rewrite results.parquet from all run files every `consolidate_every` seconds and at the end.

Progress: a rich bar with runs done / failed / remaining and an ETA from the runs' relative cost estimates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sweeps.executors import Outcome
from sweeps.plan import PlannedRun, Timing, estimate_seconds, step_flops
from sweeps.store import RunStore


@dataclass
class SweepSummary:
    """What one invocation did."""

    planned: int
    already_done: int = 0
    ok: int = 0
    diverged: int = 0
    failed: int = 0
    left_to_others: int = 0  # claimed by another live sweep on the same directory
    rows: int = 0
    wall_time: float = 0.0
    recovered: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.already_done + self.ok + self.diverged == self.planned


def relative_cost(run: PlannedRun) -> float:
    """A run's cost in arbitrary units for the ETA: its calibrated estimate if `--plan`-style timing was
    done, else the same formula with the step cost its FLOPs and the forward cost per token a third of a
    training token's."""
    if math.isfinite(run.est_seconds):
        return run.est_seconds
    t = run.config["train"]
    step = step_flops(run)
    timing = Timing(step=step, forward_token=step / (3.0 * t["batch_size"] * t["seq_len"]))
    config = (
        run.config
        if "tokens" in t
        else {**run.config, "train": {**t, "tokens": t["batch_size"] * t["seq_len"]}}
    )
    return estimate_seconds(config, timing)


class _Eta:
    """Remaining time = (measured seconds per unit of relative cost) × remaining cost / slots."""

    def __init__(self, slots: int) -> None:
        self.slots, self.seconds, self.cost = slots, 0.0, 0.0

    def update(self, seconds: float, cost: float) -> None:
        self.seconds += seconds
        self.cost += cost

    def remaining(self, cost_left: float) -> float | None:
        if self.cost <= 0:
            return None
        return self.seconds / self.cost * cost_left / self.slots


def _fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = round(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def run_sweep(
    runs: Sequence[PlannedRun],
    store: RunStore,
    executor: Any,
    *,
    resume: bool = False,
    show_progress: bool = True,
    consolidate_every: float = 30.0,
    record: dict[str, Any] | None = None,
) -> SweepSummary:
    """Execute every planned run not yet in `store` on `executor` (see module docstring)."""
    start = time.perf_counter()
    if not resume:
        store.require_new()
    store.create()
    summary = SweepSummary(planned=len(runs), recovered=store.recover())
    done = store.finished()
    todo = [r for r in runs if r.run_id not in done]
    summary.already_done = len(runs) - len(todo)
    executor.start()
    if executor.slots > 1:
        todo.sort(key=relative_cost, reverse=True)
    store.log_sweep({**(record or {}), "planned": [r.run_id for r in runs], "executor": executor.describe()})
    cost = {r.run_id: relative_cost(r) for r in runs}
    cost_left = sum(cost[r.run_id] for r in todo)
    eta = _Eta(executor.slots)
    by_id = {r.run_id: r for r in runs}
    in_flight: set[str] = set()
    queue = list(todo)
    last_consolidate = time.perf_counter()

    progress = _Progress(len(todo), show_progress)
    interrupted = True
    try:
        with progress:
            while queue or in_flight:
                while queue and len(in_flight) < executor.slots:
                    run = queue.pop(0)
                    if not store.claim(run.run_id):
                        summary.left_to_others += 1
                        cost_left -= cost[run.run_id]
                        progress.advance(summary, eta.remaining(cost_left))
                        continue
                    executor.submit(run.run_id, run.config)
                    in_flight.add(run.run_id)
                if not in_flight:
                    break
                outcome: Outcome = executor.wait()
                in_flight.discard(outcome.run_id)
                cost_left -= cost[outcome.run_id]
                eta.update(outcome.seconds, cost[outcome.run_id])
                _record(outcome, by_id[outcome.run_id], store, summary)
                progress.advance(summary, eta.remaining(cost_left), by_id[outcome.run_id].label)
                if time.perf_counter() - last_consolidate > consolidate_every:
                    store.consolidate()
                    last_consolidate = time.perf_counter()
        interrupted = False
    finally:
        for run_id in in_flight:  # interrupted: let a later --resume take these runs
            store.release(run_id)
        executor.shutdown(wait=not interrupted)
        if store.root.is_dir():
            summary.rows = store.consolidate()
        summary.wall_time = time.perf_counter() - start
    return summary


def _record(outcome: Outcome, run: PlannedRun, store: RunStore, summary: SweepSummary) -> None:
    if outcome.rows is not None:
        try:
            store.write_run(outcome.run_id, outcome.rows)
        except (ValueError, RuntimeError) as exc:  # rows that do not fit the schema are a failure
            outcome = Outcome(outcome.run_id, None, f"bad rows: {exc}", outcome.seconds)
        else:
            if outcome.rows and outcome.rows[0].get("status") == "diverged":
                summary.diverged += 1
            else:
                summary.ok += 1
            return
    summary.failed += 1
    summary.failures[outcome.run_id] = outcome.error or "unknown error"
    store.write_failure(outcome.run_id, outcome.error or "unknown error", {**run.config, **outcome.extra})


class _Progress:
    """A rich progress bar: runs done / failed / remaining and an ETA (quiet when disabled)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar, self.task = total, enabled, None, None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("[bold]sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                TextColumn("[dim]{task.fields[last]}"),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task("sweep", total=total, counts="", eta="?", last="")

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def advance(self, s: SweepSummary, eta: float | None, last: str = "") -> None:
        if self.bar is None:
            return
        finished = s.ok + s.diverged + s.failed + s.left_to_others
        counts = f"done {s.ok + s.diverged} · failed {s.failed} · remaining {self.total - finished}"
        self.bar.update(self.task, completed=finished, counts=counts, eta=_fmt_seconds(eta), last=last)
