"""Background fit and backtest jobs, persisted in the registry and run exactly once.

A job is a row in the `jobs` table (`service.registry`). Each server process runs one `JobRunner` thread
that takes queued jobs one at a time:

1. claim: `queued → running` with this process as owner, a compare-and-set in the database, so of several
   processes (uvicorn workers, or servers sharing a PostgreSQL registry) exactly one runs a job;
2. run: read the stored runs table, select rows and fit (or backtest) through `service.adapter`; a second
   thread renews the job's heartbeat and progress every `HEARTBEAT` seconds;
3. finish: `running → done` and the fit it produced are written in one transaction, and only while this
   process still owns the job, so a result is stored once or not at all.

A server that dies (SIGKILL, power loss) leaves its job `running`. On start and between jobs every runner
requeues jobs whose owner is gone: on the same host, when the owning process no longer exists (its pid is
gone or belongs to a process started at another time); elsewhere, when its heartbeat is older than
`LEASE` seconds. The job then runs again from the start (a fit is deterministic in its seed), so an
accepted job is never lost and never stored twice. A job that was interrupted `MAX_ATTEMPTS` times is
failed instead of being retried forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from scaling.errors import UserError
from service import adapter
from service.registry import Registry
from sweeps.store import process_start

__all__ = ["HEARTBEAT", "LEASE", "MAX_ATTEMPTS", "JobRunner", "run_job"]

log = logging.getLogger("scalefit.service.jobs")

HEARTBEAT = 2.0
"""Seconds between heartbeats of a running job."""
LEASE = 30.0
"""A running job whose owner is on another host is taken over after this many seconds without heartbeat."""
MAX_ATTEMPTS = 3
"""A job interrupted this many times (the server died while running it each time) is failed."""


def owner_id() -> str:
    """host:pid:start-time:random, naming this process as a job's owner."""
    pid = os.getpid()
    start = process_start(pid)
    return f"{socket.gethostname()}:{pid}:{'' if start in (None, '?') else start}:{secrets.token_hex(4)}"


def owner_gone(owner: str | None, heartbeat: float | None, now: float, lease: float = LEASE) -> bool:
    """Whether the process that owns a running job is gone (module docstring)."""
    if not owner:
        return True
    try:
        host, pid, start, _ = owner.split(":", 3)
        pid_n = int(pid)
    except ValueError:
        return True
    if host == socket.gethostname():
        current = process_start(pid_n)
        if current is None or (start and current not in ("?", start)):
            return True
    return heartbeat is None or now - heartbeat > lease


def _read_runs(registry: Registry, runs_id: str) -> tuple[Any, dict[str, Any]]:
    import pandas as pd

    info = registry.get_runs(runs_id)
    if info is None:
        raise UserError(f"unknown runs table {runs_id!r}", param="runs_id")
    path = registry.runs_path(runs_id)
    if not path.is_file():
        raise UserError(f"runs table {runs_id!r} is missing from the store ({path.name})", param="runs_id")
    return pd.read_parquet(path), info


def selected_rows(registry: Registry, request: dict[str, Any]) -> tuple[Any, list[str], dict[str, Any]]:
    """(rows the law fits, notes, runs info) of a job request, the table read with --map, --derive-d and
    --where applied; bad columns, queries and too few rows raise the CLI's `UserError`."""
    df, info = _read_runs(registry, request["runs_id"])
    df = adapter.prepare_runs(
        df, request.get("map"), bool(request.get("derive_d")), request.get("where"), info["filename"]
    )
    data, notes = adapter.select_rows(df, request["law"], request.get("ptq_method"))
    return data, notes, info


def run_job(
    registry: Registry, kind: str, request: dict[str, Any], progress: Callable[[str], None]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Do the work of a job: (fit for `Registry.add_fit` or None, result summary for the job row)."""
    data, notes, info = selected_rows(registry, request)
    for note in notes:
        progress(note)
    if kind == "backtest":
        report = adapter.backtest(data, request["law"], request, progress)
        return None, {"notes": notes, "backtest": report}
    record = {
        "input": f"runs {info['id']} ({info['filename']})",
        "map": dict(request.get("map") or {}),
        "derive_d": bool(request.get("derive_d")),
        "where": request.get("where"),
    }
    content, meta = adapter.fit_runs(data, request["law"], {**request, "record": record}, progress)
    fit = {
        "content": content,
        "name": request.get("name") or f"{meta['law']} fit of {info['filename']}",
        "tags": request.get("tags") or [],
        "runs_id": info["id"],
        **meta,
    }
    return fit, {"notes": notes}


class JobRunner:
    """The thread that runs this process's share of the queued jobs (module docstring)."""

    def __init__(self, registry: Registry, poll: float = 1.0) -> None:
        self.registry = registry
        self.poll = poll
        self.owner = owner_id()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scalefit-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.requeue_orphans()
                ran = self.run_next()
            except Exception:  # a database hiccup must not kill the runner; try again after a pause
                log.exception("job runner")
                ran = False
            if not ran:
                self._wake.wait(self.poll)
                self._wake.clear()

    def requeue_orphans(self) -> int:
        """Put jobs whose owner is gone back in the queue; returns how many."""
        now = time.time()
        n = 0
        for job in self.registry.running_jobs():
            if job["owner"] != self.owner and owner_gone(job["owner"], job["heartbeat"], now):
                note = f"requeued after attempt {job['attempts']}: the server running it stopped"
                if self.registry.requeue(job["id"], job["owner"], note):
                    log.warning("job %s: %s", job["id"], note)
                    n += 1
        return n

    def run_next(self) -> bool:
        """Claim and run the oldest queued job this process can get; False when there was none."""
        for job_id in self.registry.next_queued():
            if self._stop.is_set():
                return False
            if self.registry.claim_job(job_id, self.owner):
                self._execute(job_id)
                return True
        return False

    def _execute(self, job_id: str) -> None:
        job = self.registry.get_job(job_id)
        if job is None:
            return
        if job["attempts"] > MAX_ATTEMPTS:
            self.registry.finish_job(
                job_id,
                self.owner,
                status="failed",
                progress="failed",
                error=f"the server stopped {job['attempts'] - 1} times while running this job; not retried",
            )
            return
        state = {"progress": f"attempt {job['attempts']}: starting"}

        def progress(message: str) -> None:
            state["progress"] = message

        beat = threading.Event()

        def heartbeat() -> None:
            while not beat.wait(HEARTBEAT):
                with contextlib.suppress(Exception):
                    self.registry.heartbeat(job_id, self.owner, state["progress"])

        self.registry.heartbeat(job_id, self.owner, state["progress"])
        beater = threading.Thread(target=heartbeat, name=f"scalefit-job-{job_id}", daemon=True)
        beater.start()
        try:
            fit, result = run_job(self.registry, job["kind"], job["request"], progress)
        except UserError as exc:
            outcome = {"status": "failed", "progress": "failed", "error": str(exc).splitlines()[0]}
        except (OSError, MemoryError) as exc:
            outcome = {"status": "failed", "progress": "failed", "error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:
            log.exception("job %s", job_id)
            outcome = {
                "status": "failed",
                "progress": "failed",
                "error": f"internal error ({type(exc).__name__})",
            }
        else:
            outcome = {"status": "done", "progress": "done", "fit": fit, "result": result}
        finally:
            beat.set()
            beater.join()
        if not self.registry.finish_job(job_id, self.owner, **outcome):
            log.warning("job %s was taken over by another process; its result is theirs", job_id)
