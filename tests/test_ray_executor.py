"""The Ray executor against a real local Ray instance (ray.init on this machine), running real tiny runs."""

from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

from scaling.errors import UserError
from sweeps.driver import run_sweep
from sweeps.executors import RayExecutor
from sweeps.plan import plan
from sweeps.runner import execute
from sweeps.spec import parse_spec
from sweeps.store import RunStore

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_runs_a_sweep_as_tasks_with_resource_requests(local_ray, tmp_path) -> None:
    spec = parse_spec({
        "sweep": {"name": "ray"},
        "grid": {"n": [1e4], "tokens": [256 * 12, 256 * 16, 256 * 20]},
        "axes": {"precision": ["fp32"]},
        "train": {"batch_size": 8, "seq_len": 32, "eval_tokens": 1024, "n_evals": 1},
        "ptq": {"methods": ["rtn"], "formats": ["int4"]},
    })  # fmt: skip
    runs = plan(spec)
    executor = RayExecutor(execute, cpus=1)
    store = RunStore(tmp_path / "res.parquet")
    summary = run_sweep(runs, store, executor, show_progress=False)
    assert executor.slots == 2  # two 1-CPU runs fit the 2-CPU instance
    assert (summary.ok, summary.failed, summary.complete) == (3, 0, True), summary.failures
    df = pd.read_parquet(tmp_path / "res.parquet")
    assert set(df["run_id"]) == {r.run_id for r in runs} and len(df) == 6
    assert (df["status"] == "ok").all()
    assert ray.is_initialized()  # the executor joined the running instance and leaves it to its owner

    # a run that needs more than the cluster has is refused up front, naming the resources
    with pytest.raises(UserError, match="cannot fit one run"):
        RayExecutor(execute, cpus=4).start()


def _where(run_id: str, config: dict) -> list[dict]:
    import torch

    return [{"pid": os.getpid(), "threads": torch.get_num_threads(), "run_id": run_id}]


def test_ray_tasks_run_in_worker_processes_with_their_thread_count(local_ray) -> None:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test file
    executor = RayExecutor(_where, cpus=2)
    executor.start()
    assert executor.slots == 1
    executor.submit("x", {})
    outcome = executor.wait()
    executor.shutdown()
    assert outcome.error is None, outcome.error
    (row,) = outcome.rows
    assert row["pid"] != os.getpid() and row["threads"] == 2 and row["run_id"] == "x"
