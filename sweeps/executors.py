"""Where runs execute: in local processes (`LocalExecutor`) or as Ray tasks on a cluster (`RayExecutor`).

Both have the same small interface, used by `sweeps.driver.run_sweep`:

    executor.start(); executor.slots          # how many runs may be in flight at once
    executor.submit(run_id, config)           # start one run (the run function is fixed at construction)
    executor.wait() -> Outcome                # block until some submitted run ends
    executor.shutdown()

Only the driver (the `scalefit sweep` process) writes the results store; workers just return rows, so a
worker that dies or a killed driver can never leave a half-written result behind.

CPU placement: `workers` processes × `threads` torch threads each. On 2 cores with the tiny models of the
CPU presets, 2 processes × 1 thread ran 4 runs 7× sooner than 1 × 2 (docs/benchmarks.md, "Sweep executor
layout"; measured on a shared, loaded machine). With GPUs, one worker per GPU, each pinned to its device with
CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scaling.errors import UserError

RunFn = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


@dataclass
class Outcome:
    """How one run ended: its rows, or the error text of the exception it raised."""

    run_id: str
    rows: list[dict[str, Any]] | None
    error: str | None
    seconds: float
    worker: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _call(fn: RunFn, run_id: str, config: dict[str, Any], threads: int | None) -> Outcome:
    """Run `fn` and turn any exception into an Outcome (so one bad run never stops a sweep)."""
    start = time.perf_counter()
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        rows = fn(run_id, config)
        return Outcome(run_id, rows, None, time.perf_counter() - start, _worker_name())
    except Exception as exc:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        tb = traceback.format_exc(limit=-6)
        return Outcome(run_id, None, text, time.perf_counter() - start, _worker_name(), {"traceback": tb})


def _worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this worker when the driver dies (prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass


def _init_worker(threads: int | None, gpu_queue: Any) -> None:
    _die_with_parent()
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    if threads:
        import torch

        torch.set_num_threads(threads)


def local_gpus() -> int:
    """Number of visible CUDA devices (0 without torch.cuda)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_layout(n_cpus: int | None = None, n_gpus: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) for this machine: one worker per GPU; on CPU one single-threaded
    worker per core (measured best for tiny models on 2 cores, docs/sweeps.md)."""
    n_gpus = local_gpus() if n_gpus is None else n_gpus
    if n_gpus:
        return n_gpus, 1
    n_cpus = n_cpus or len(os.sched_getaffinity(0))
    return max(1, n_cpus), 1


class LocalExecutor:
    """Runs in this process (workers = 1) or in a pool of spawned worker processes (workers > 1)."""

    def __init__(self, fn: RunFn, workers: int = 1, threads: int | None = None, gpus: int = 0) -> None:
        if workers < 1:
            raise UserError(f"--workers must be at least 1, got {workers}")
        if threads is not None and threads < 1:
            raise UserError(f"--threads must be at least 1, got {threads}")
        if gpus and workers > gpus:
            raise UserError(f"--workers {workers} exceeds the {gpus} local GPUs (one run per GPU)")
        self.fn, self.workers, self.threads, self.gpus = fn, workers, threads, gpus
        self.slots = workers
        self._queue: list[tuple[str, dict[str, Any]]] = []
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future, str] = {}

    def describe(self) -> str:
        where = f"{self.gpus} GPU(s)" if self.gpus else f"{self.threads or 'default'} thread(s) each"
        return f"local: {self.workers} worker(s), {where}"

    def start(self) -> None:
        if self.workers == 1:
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            if self.gpus:
                os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
            return
        self._new_pool()

    def _new_pool(self) -> None:
        ctx = mp.get_context("spawn")
        gpu_queue = None
        if self.gpus:
            gpu_queue = ctx.Queue()
            for i in range(self.workers):
                gpu_queue.put(i)
        self._pool = cf.ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self.threads, gpu_queue)
        )

    def submit(self, run_id: str, config: dict[str, Any]) -> None:
        if self.workers == 1:
            self._queue.append((run_id, config))
            return
        if self._pool is None:
            self._new_pool()
        assert self._pool is not None
        self._futures[self._pool.submit(_call, self.fn, run_id, config, None)] = run_id

    def wait(self) -> Outcome:
        if self.workers == 1:
            run_id, config = self._queue.pop(0)
            return _call(self.fn, run_id, config, None)
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        future = next(iter(done))
        run_id = self._futures.pop(future)
        try:
            return future.result()
        except cf.process.BrokenProcessPool as exc:  # a worker died (OOM killer, segfault): restart the pool
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            return Outcome(run_id, None, f"worker process died: {exc}", 0.0)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the pool; `wait=False` (interrupted sweep) leaves running workers to die with the driver."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Ships each run as a Ray task requesting `cpus` CPUs and `gpus` GPUs (Moritz et al. 2018, "Ray").

    `address`: None starts a local Ray instance (or reuses one this process already started); "auto" or
    "ray://host:10001" joins a cluster. Every node needs scalefit installed (or pass `runtime_env`).
    """

    def __init__(
        self,
        fn: RunFn,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        threads: int | None = None,
        max_in_flight: int | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if cpus <= 0 or gpus < 0:
            raise UserError(f"Ray resource requests must be positive, got cpus={cpus}, gpus={gpus}")
        self.fn, self.address, self.cpus, self.gpus = fn, address, cpus, gpus
        self.threads = threads or max(1, int(cpus))
        self.max_in_flight, self.init_kwargs = max_in_flight, dict(init_kwargs or {})
        self.slots = 1
        self._refs: dict[Any, str] = {}
        self._started_ray = False
        self._remote: Any = None

    def describe(self) -> str:
        where = self.address or "local"
        return f"ray: {self.slots} slot(s) of {self.cpus:g} CPU / {self.gpus:g} GPU, address={where}"

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'scalefit[ray]'") from None
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise UserError(f"cannot reach the Ray cluster at {self.address}: {exc}") from None
            self._started_ray = True
        resources = ray.cluster_resources()
        fit = resources.get("GPU", 0.0) / self.gpus if self.gpus else resources.get("CPU", 0.0) / self.cpus
        if fit < 1:
            need = f"{self.gpus:g} GPU" if self.gpus else f"{self.cpus:g} CPU"
            raise UserError(f"the Ray cluster cannot fit one run ({need}); it has {resources}")
        self.slots = self.max_in_flight or max(1, int(fit))
        self._remote = ray.remote(_call).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)

    def submit(self, run_id: str, config: dict[str, Any]) -> None:
        self._refs[self._remote.remote(self.fn, run_id, config, self.threads)] = run_id

    def wait(self) -> Outcome:
        import ray

        ready, _ = ray.wait(list(self._refs), num_returns=1)
        run_id = self._refs.pop(ready[0])
        try:
            return ray.get(ready[0])
        except Exception as exc:
            return Outcome(run_id, None, f"Ray task failed: {type(exc).__name__}: {exc}".splitlines()[0], 0.0)

    def shutdown(self, wait: bool = True) -> None:
        """Cancel unfinished tasks and stop the Ray instance if this executor started it."""
        import ray

        for ref in list(self._refs):
            ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
