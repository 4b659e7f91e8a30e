"""Drive a sweep: skip finished runs, claim and submit the rest, store each result as it arrives.

`run_sweep(runs, store, executor)` is the loop behind `scalefit sweep`:

1. recover the store (delete half-written temp files, drop dead sweeps' claims, move unreadable run files
   aside) and skip every planned run that already has a valid run file;
2. claim a run (so a second live sweep on the same directory skips it), submit it, keep `executor.slots`
   runs in flight; longest-first when several run at once (LPT scheduling shortens the sweep);
3. write each finished run atomically the moment it returns ("ok" and "diverged" alike); record runs that
   raised as failures (not results; retried on --resume);
4. rewrite results.parquet from all run files every `consolidate_every` seconds and at the end.

Before any of that it checks that every run fits in memory (`check_memory`: the largest run, and the
`workers` largest running at once, against this machine's available memory) and that results.parquet holds
nothing the run files cannot rebuild (`RunStore.guard_out`: refuse, append or overwrite). A failing disk
(full, read-only) stops the sweep with one line naming the file and the cause; the store is left
consistent (no temp file, no claim of this sweep), so `--resume` continues once the disk is fixed.

Progress: on a terminal a rich bar with runs done / failed / remaining and an ETA from the runs' relative
cost estimates; off a terminal the same as a plain line every 30 s (`scaling.progress`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scaling.errors import UserError, os_error_message
from scaling.progress import LineProgress, fmt_seconds, on_terminal
from sweeps.executors import Outcome
from sweeps.plan import PlannedRun, Timing, estimate_seconds, step_flops
from sweeps.store import RunStore
from sweeps.trunks import write_rows


@dataclass
class SweepSummary:
    """What one invocation did."""

    planned: int
    already_done: int = 0
    ok: int = 0
    diverged: int = 0
    failed: int = 0
    left_to_others: int = 0  # claimed by another live sweep on the same directory (still running there)
    finished_elsewhere: int = 0  # finished by another sweep on the same directory after this one started
    imported: int = 0  # runs appended from an existing results file (--append)
    rows: int = 0
    wall_time: float = 0.0
    recovered: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.already_done + self.ok + self.diverged + self.finished_elsewhere == self.planned


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


@functools.cache
def _vocab_size(task: str, data: str, bios: str) -> int:
    """Vocabulary of a run's token source (the corpus for lm, the bioS/bioD tokenizer for bios)."""
    if task == "bios":
        import json

        from scaling.capacity import make_source

        options = json.loads(bios)
        return make_source(int(options.pop("people")), options).vocab_size
    from scaling.data import load_corpus

    return load_corpus(data).vocab_size


def run_memory(run: PlannedRun):
    """`scaling.memory.MemoryEstimate` of one planned run (its shape on its data's vocabulary)."""
    import json

    from scaling.memory import estimate_training
    from scaling.train import TrainConfig

    t = {**run.config["train"]}
    t.setdefault("tokens", 1.0)  # bios: people × exposures decide D; the shape does not depend on it
    bios = {k: v for k, v in run.config.get("bios", {}).items() if k != "exposures"}
    vocab = _vocab_size(run.config["task"], str(t.get("data", "")), json.dumps(bios, sort_keys=True))
    cfg = TrainConfig(**t)
    return estimate_training(cfg.model_config(vocab), cfg.batch_size, cfg.optimizer)


def _rss_bytes() -> int:
    """Resident memory of this process (VmRSS): what each extra worker process costs before it trains."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def check_memory(runs: Sequence[PlannedRun], workers: int) -> None:
    """Refuse the sweep (UserError) before any run starts if its largest run, or its `workers` largest
    runs in flight at once (each worker process also holding a torch process's resident memory), need more
    memory than this machine has available (`scaling.memory`)."""
    from scaling.memory import check_fits, format_bytes

    if not runs:
        return
    need = sorted(((run_memory(r), r) for r in runs), key=lambda x: x[0].total, reverse=True)
    largest, run = need[0]
    check_fits(largest.total, f"run {run.run_id} ({run.label})", detail=largest.breakdown(),
               hint="drop it from the spec or make it smaller (n, batch_size, seq_len)")  # fmt: skip
    if workers > 1 and len(runs) > 1:
        k, rss = min(workers, len(runs)), _rss_bytes()
        together = sum(m.total for m, _ in need[:k]) + k * rss
        check_fits(together, f"running the {k} largest runs at once (--workers {workers})",
                   detail=f"plus {format_bytes(rss)} per worker process",
                   hint="pass fewer --workers")  # fmt: skip


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


def run_sweep(
    runs: Sequence[PlannedRun],
    store: RunStore,
    executor: Any,
    *,
    resume: bool = False,
    existing: str = "refuse",
    show_progress: bool = True,
    consolidate_every: float = 30.0,
    record: dict[str, Any] | None = None,
    on_start: Callable[[], None] | None = None,
) -> SweepSummary:
    """Execute every planned run not yet in `store` on `executor` (see module docstring).

    `existing`: what to do when results.parquet holds rows the store cannot rebuild (`RunStore.guard_out`):
    "refuse" (UserError), "append" (import them as runs) or "overwrite" (replace the file now).
    `on_start`: called once the checks passed and the store is ready, before the first run starts.
    """
    start = time.perf_counter()
    if hasattr(executor, "workers"):  # local: this machine runs them (Ray: each node checks its own runs)
        check_memory(runs, executor.workers)
    if not resume:
        store.require_new()
    foreign = store.foreign_rows()
    if foreign and existing == "refuse":
        store.guard_out()  # raises, before anything is written
    try:
        store.create()
        summary = SweepSummary(planned=len(runs), recovered=store.recover())
        if foreign and existing == "overwrite":
            store.consolidate()  # replaced on purpose: from now on the file is this store's view
        elif foreign:
            summary.imported = store.guard_out(existing)
        done = store.finished()
        record = {**(record or {}), "planned": [r.run_id for r in runs], "executor": executor.describe()}
        store.log_sweep(record)
    except OSError as exc:
        raise UserError(
            f"{os_error_message(exc)}; no run was started: fix that and run the sweep again"
        ) from None
    todo = [r for r in runs if not set(r.store_ids) <= done]  # a WSD trunk: done when all its branches are
    summary.already_done = len(runs) - len(todo)
    if on_start is not None:
        on_start()
    if todo:
        executor.start()
    if todo and executor.slots > 1:
        todo.sort(key=relative_cost, reverse=True)
    cost = {r.run_id: relative_cost(r) for r in runs}
    cost_left = sum(cost[r.run_id] for r in todo)
    eta = _Eta(getattr(executor, "slots", 1))
    by_id = {r.run_id: r for r in runs}
    in_flight: set[str] = set()
    queue = list(todo)
    last_consolidate = time.perf_counter()

    progress = _Progress(len(todo), show_progress, in_flight)
    interrupted, error = True, None
    try:
        with progress:
            while queue or in_flight:
                while queue and len(in_flight) < executor.slots:
                    run = queue.pop(0)
                    claimed = store.try_claim(run.run_id)
                    if claimed != "claimed":
                        if claimed == "finished":
                            summary.finished_elsewhere += 1
                        else:
                            summary.left_to_others += 1
                        cost_left -= cost[run.run_id]
                        progress.advance(summary, eta.remaining(cost_left))
                        continue
                    executor.submit(run.run_id, run.config)
                    in_flight.add(run.run_id)
                if not in_flight:
                    break
                outcome: Outcome = executor.wait()
                cost_left -= cost[outcome.run_id]
                eta.update(outcome.seconds, cost[outcome.run_id])
                _record(outcome, by_id[outcome.run_id], store, summary)
                in_flight.discard(outcome.run_id)  # after the write: a failed write's claim is released
                progress.advance(summary, eta.remaining(cost_left), by_id[outcome.run_id].label)
                if time.perf_counter() - last_consolidate > consolidate_every:
                    store.consolidate()
                    last_consolidate = time.perf_counter()
        interrupted = False
    except OSError as exc:  # the disk failed (full, read-only): stop, leave the store consistent, say so
        error = exc
    finally:
        for run_id in in_flight:  # interrupted: let a later --resume take these runs
            with contextlib.suppress(OSError):
                store.release(run_id)
        if todo:
            executor.shutdown(wait=not interrupted)
        if store.root.is_dir():
            try:
                summary.rows = store.consolidate()
            except OSError as exc:
                error = error or exc
        summary.wall_time = time.perf_counter() - start
    if error is not None:
        kept = len(store.finished())
        raise UserError(
            f"{os_error_message(error)}; the sweep stopped with its store consistent ({kept} finished run(s) "
            f"kept in {store.root}): fix that and continue with --resume"
        )
    return summary


def _record(outcome: Outcome, run: PlannedRun, store: RunStore, summary: SweepSummary) -> None:
    if outcome.rows is not None:
        try:
            write_rows(store, run, outcome.rows)  # a WSD trunk: one run file per branch
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
    """Runs done / failed / remaining and an ETA: a rich bar on a terminal, a plain line every 30 s off one
    (`scaling.progress.LineProgress`, with a heartbeat while long runs are in flight); quiet when disabled."""

    def __init__(self, total: int, enabled: bool, in_flight: set[str] | None = None) -> None:
        self.total, self.enabled, self.bar, self.task, self.lines = total, enabled, None, None, None
        self.in_flight = in_flight if in_flight is not None else set()
        if enabled and on_terminal():
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
        elif enabled and total:
            self._counts, self._eta, self._last = self._count_text(0, 0, total), "?", ""
            self.lines = LineProgress("sweep", status=self._status, heartbeat=True)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        if self.lines is not None:
            self.lines.close(self._status())

    def _count_text(self, done: int, failed: int, remaining: int) -> str:
        return f"{done}/{self.total} runs done · {failed} failed · {remaining} remaining"

    def _status(self) -> str:
        """`5/51 runs done · 0 failed · 46 remaining · 2 running · 3:20 elapsed · ETA 28:01 · last N=...`"""
        elapsed = fmt_seconds(self.lines.elapsed) if self.lines is not None else "?"
        running = f" · {len(self.in_flight)} running" if self.in_flight else ""
        last = f" · last {self._last}" if self._last else ""
        return f"{self._counts}{running} · {elapsed} elapsed · ETA {self._eta}{last}"

    def advance(self, s: SweepSummary, eta: float | None, last: str = "") -> None:
        finished = s.ok + s.diverged + s.failed + s.left_to_others + s.finished_elsewhere
        counts = f"done {s.ok + s.diverged} · failed {s.failed} · remaining {self.total - finished}"
        if self.bar is not None:
            self.bar.update(self.task, completed=finished, counts=counts, eta=fmt_seconds(eta), last=last)
        elif self.lines is not None:
            self._counts = self._count_text(s.ok + s.diverged, s.failed, self.total - finished)
            self._eta, self._last = fmt_seconds(eta), last or self._last
            self.lines.update(self._status())
