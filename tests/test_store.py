"""The results store: atomic run files, recovery of half-written files and dead claims, the lock, resume."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import socket
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from scaling.errors import UserError
from sweeps.driver import run_sweep
from sweeps.executors import LocalExecutor
from sweeps.plan import plan
from sweeps.spec import parse_spec
from sweeps.store import CORE_COLUMNS, RunStore, process_start, rows_to_table


def fake_rows(run_id: str, n: int = 1000, status: str = "ok", ptq: int = 1) -> list[dict]:
    """Rows shaped like a real run's (test data for the store; the runner's own rows are tested elsewhere)."""
    base = {c: None for c in CORE_COLUMNS}
    base.update(run_id=run_id, task="lm", N=n, N_total=n + 100, D=10 * n, P_w=16.0, P_a=16.0, P_kv=16.0,
                fmt_w="bf16", fmt_a="bf16", fmt_kv="bf16", precision="bf16", optimizer="adamw", seed=0,
                flops=60.0 * n * n, cost=60.0 * n * n, status=status,
                loss=2.0 if status == "ok" else math.nan,
                wall_time=1.0, tokens_per_s=1e4, epochs=0.1, scalefit_version="0", git_commit="x",
                config_json="{}", diagnostics_json="{}")  # fmt: skip
    rows = [{**base, "ptq_method": "none", "P_post": math.nan, "fmt_post": "", "loss_post": base["loss"],
             "delta_ptq": 0.0}]  # fmt: skip
    for b in range(ptq):
        rows.append({**base, "ptq_method": "rtn", "P_post": 4.0 + b, "fmt_post": f"int{4 + b}",
                     "loss_post": 2.1, "delta_ptq": 0.1})  # fmt: skip
    return rows


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_write_read_consolidate(tmp_path) -> None:
    store = RunStore(tmp_path / "res.parquet")
    store.create()
    store.write_run("b" * 16, fake_rows("b" * 16, n=2000))
    store.write_run("a" * 16, fake_rows("a" * 16, n=1000, ptq=2))
    store.write_run("c" * 16, fake_rows("c" * 16, n=3000, status="diverged", ptq=0))
    assert store.finished() == {"a" * 16, "b" * 16, "c" * 16}
    assert store.consolidate() == 3 + 2 + 1
    df = pd.read_parquet(tmp_path / "res.parquet")
    assert list(df.columns[: len(CORE_COLUMNS)]) == list(CORE_COLUMNS)
    assert list(df["N"]) == [1000, 1000, 1000, 2000, 2000, 3000]  # sorted by N, rows of a run in order
    assert list(df["ptq_method"][:3]) == ["none", "rtn", "rtn"]
    assert df["status"].iloc[-1] == "diverged" and math.isnan(df["loss"].iloc[-1])  # diverged runs are kept
    assert df["N"].dtype == "int64" and df["P_post"].dtype == "float64"
    with pytest.raises(RuntimeError, match="already in the store"):
        store.write_run("a" * 16, fake_rows("a" * 16))
    assert not list(store.root.rglob("*.tmp.*"))


def test_rows_are_checked_against_the_schema() -> None:
    rows = fake_rows("r" * 16)
    del rows[0]["loss"]
    with pytest.raises(ValueError, match="lacks columns"):
        rows_to_table("r" * 16, rows)
    with pytest.raises(ValueError, match="has run_id"):
        rows_to_table("s" * 16, fake_rows("r" * 16))
    with pytest.raises(ValueError, match="no rows"):
        rows_to_table("r" * 16, [])


def test_recover_discards_half_written_files_and_dead_claims(tmp_path) -> None:
    store = RunStore(tmp_path / "res.parquet")
    store.create()
    store.write_run("a" * 16, fake_rows("a" * 16))
    store.write_run("b" * 16, fake_rows("b" * 16))
    host, dead = socket.gethostname(), dead_pid()
    # a writer SIGKILLed mid-write leaves its temp file; a file truncated by a non-atomic copy is unreadable
    half = store.runs_dir / f"{'c' * 16}.parquet.tmp.{host}.{dead}"
    half.write_bytes((store.runs_dir / f"{'a' * 16}.parquet").read_bytes()[:100])
    data = (store.runs_dir / f"{'b' * 16}.parquet").read_bytes()
    (store.runs_dir / f"{'b' * 16}.parquet").write_bytes(data[: len(data) // 2])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_tmp = store.runs_dir / f"{'d' * 16}.parquet.tmp.{host}.{sleeper.pid}"
        live_tmp.write_bytes(b"being written")
        (store.claims_dir / f"{'e' * 16}.json").write_text(
            f'{{"host": "{host}", "pid": {dead}, "start": "1"}}'
        )
        start = process_start(sleeper.pid)
        live = f'{{"host": "{host}", "pid": {sleeper.pid}, "start": "{start}"}}'
        (store.claims_dir / f"{'f' * 16}.json").write_text(live)
        fresh = RunStore(tmp_path / "res.parquet")  # a new sweep process would start like this
        counts = fresh.recover()
        assert counts == {"temp_files": 1, "stale_claims": 1, "discarded": 1}
        assert not half.exists() and live_tmp.exists()  # a live writer's temp file is left alone
        assert fresh.finished() == {"a" * 16}
        assert len(list(fresh.discarded_dir.iterdir())) == 1
        assert fresh.claim("e" * 16)  # the dead sweep's run can be taken over
        assert not fresh.claim("f" * 16)  # the live one cannot
        assert not fresh.claim("a" * 16)  # nor a finished one
    finally:
        sleeper.kill()
        sleeper.wait()
    assert fresh.claim("f" * 16)  # once its owner is gone, it can


def _worker(out: str, ids: list[str], written: mp.Queue) -> None:
    store = RunStore(out)
    store.create()
    for run_id in ids:
        if store.claim(run_id):
            store.write_run(run_id, fake_rows(run_id))
            written.put(run_id)
            store.consolidate()


def test_two_sweeps_on_one_directory_split_the_work(tmp_path) -> None:
    out = str(tmp_path / "res.parquet")
    ids = [f"{i:016x}" for i in range(24)]
    ctx = mp.get_context("fork")
    written = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(out, order, written)) for order in (ids, ids[::-1])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = [written.get(timeout=5) for _ in range(len(ids))]
    assert sorted(got) == ids and written.empty()  # every run written exactly once, by one of the two
    table = pq.read_table(out)
    assert sorted(set(table.column("run_id").to_pylist())) == ids
    assert table.num_rows == 2 * len(ids)


def tiny_runs(n_runs: int = 3) -> list:
    tokens = [1000.0 * (i + 1) for i in range(n_runs)]
    spec = parse_spec({"sweep": {"name": "t"}, "grid": {"n": [1e4], "tokens": tokens},
                       "train": {"batch_size": 2, "seq_len": 16}})  # fmt: skip
    return plan(spec)


def test_driver_keeps_diverged_records_failures_and_resumes(tmp_path) -> None:
    runs = tiny_runs(3)
    calls: list[str] = []
    fail_once = {runs[2].run_id}

    def fake_run(run_id: str, config: dict) -> list[dict]:
        calls.append(run_id)
        if run_id in fail_once:
            fail_once.discard(run_id)
            raise RuntimeError("out of memory (simulated)")
        return fake_rows(run_id, status="diverged" if run_id == runs[1].run_id else "ok")

    store = RunStore(tmp_path / "res.parquet")
    s = run_sweep(runs, store, LocalExecutor(fake_run), show_progress=False)
    assert (s.ok, s.diverged, s.failed, s.complete) == (1, 1, 1, False)
    assert "out of memory" in s.failures[runs[2].run_id]
    assert set(store.failures()) == {runs[2].run_id}
    df = pd.read_parquet(tmp_path / "res.parquet")
    assert set(df["run_id"]) == {runs[0].run_id, runs[1].run_id}
    with pytest.raises(UserError, match="pass --resume"):
        run_sweep(runs, store, LocalExecutor(fake_run), show_progress=False)
    calls.clear()
    s = run_sweep(runs, RunStore(tmp_path / "res.parquet"), LocalExecutor(fake_run), resume=True,
                  show_progress=False)  # fmt: skip
    assert calls == [runs[2].run_id]  # only the failed run is redone
    assert (s.already_done, s.ok, s.failed, s.complete) == (2, 1, 0, True)
    assert not store.failures()
    df = pd.read_parquet(tmp_path / "res.parquet")
    assert sorted(df.groupby("run_id").size()) == [2, 2, 2]
    assert not os.listdir(store.claims_dir)
