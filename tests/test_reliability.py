"""Issue 14: no silent overwrite, cleanup after a kill during consolidation, runs finished by another sweep,
the divergence rule, what every run records for reproduction, and progress off a terminal."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_store import fake_rows, tiny_runs
from typer.testing import CliRunner

from cli.main import app
from scaling.train import TrainConfig, diverged_because, native_bf16, train
from sweeps.driver import run_sweep
from sweeps.executors import LocalExecutor
from sweeps.runner import execute
from sweeps.store import RunStore

runner = CliRunner()
SPEC = '[sweep]\nname = "t"\n[grid]\nn = [1e4]\ntokens = [512]\n[train]\nbatch_size = 2\nseq_len = 16\n'


def fake(run_id: str, config: dict) -> list[dict]:
    return fake_rows(run_id)


# -- no silent overwrite ------------------------------------------------------------------------------------


def test_a_results_file_the_sweep_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    important = tmp_path / "important.parquet"
    other = pd.concat([pd.DataFrame(fake_rows(f"{i:016x}")) for i in range(9)], ignore_index=True)
    other.to_parquet(important)  # 27 rows of 9 runs, no important.runs beside it
    before, mtime = important.read_bytes(), important.stat().st_mtime_ns
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    for extra in ([], ["--resume"]):
        result = runner.invoke(app, ["sweep", str(spec), "--out", str(important), "--quiet", *extra])
        assert result.exit_code == 2, result.output
        line = result.output.strip()
        assert line.count("\n") == 0 and line.startswith("error: ") and "Traceback" not in line
        assert "holds 18 row(s) of 9 run(s)" in line and "--append" in line and "--overwrite" in line
    assert important.read_bytes() == before and important.stat().st_mtime_ns == mtime
    assert not (tmp_path / "important.runs").exists()  # refused before anything was written

    runs = tiny_runs(2)  # --append: the file's runs become finished runs of the store, kept and not redone
    s = run_sweep(runs, RunStore(important), LocalExecutor(fake), existing="append", show_progress=False)
    assert (s.imported, s.ok, s.rows) == (9, 2, 18 + 4)
    df = pd.read_parquet(important)
    assert set(other.run_id) < set(df.run_id) and len(df) == 22
    kept = df[df.run_id.isin(set(other.run_id))].sort_values(["run_id", "ptq_method"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        kept[other.columns],
        other.sort_values(["run_id", "ptq_method"]).reset_index(drop=True),
        check_dtype=False,
    )

    replaced = tmp_path / "replaced.parquet"  # --overwrite: replaced on purpose
    other.to_parquet(replaced)
    s = run_sweep(runs, RunStore(replaced), LocalExecutor(fake), existing="overwrite", show_progress=False)
    assert set(pd.read_parquet(replaced).run_id) == {r.run_id for r in runs}


def test_a_results_file_with_rows_its_store_lacks_is_refused_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "res.parquet"
    runs = tiny_runs(2)
    run_sweep(runs, RunStore(out), LocalExecutor(fake), show_progress=False)
    assert RunStore(out).foreign_rows() == ""  # its own consolidated view
    df = pd.read_parquet(out)
    extra = pd.DataFrame(fake_rows("e" * 16))
    pd.concat([df, extra[df.columns.intersection(extra.columns)]]).to_parquet(out)  # someone added a run
    with pytest.raises(Exception, match=r"holds 2 row\(s\) of 1 run\(s\) that .*res.runs does not have"):
        run_sweep(runs, RunStore(out), LocalExecutor(fake), resume=True, show_progress=False)


def test_a_damaged_run_file_is_redone_not_taken_for_foreign_rows(tmp_path: Path) -> None:
    out = tmp_path / "res.parquet"
    runs = tiny_runs(2)
    run_sweep(runs, RunStore(out), LocalExecutor(fake), show_progress=False)
    damaged = tmp_path / "res.runs" / "runs" / f"{runs[1].run_id}.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])  # its rows are still in res.parquet
    s = run_sweep(runs, RunStore(out), LocalExecutor(fake), resume=True, show_progress=False)
    assert (s.already_done, s.ok, s.recovered["discarded"], s.complete) == (1, 1, 1, True)


# -- a kill during consolidation ----------------------------------------------------------------------------

CONSOLIDATE_FOREVER = """
import sys
from sweeps.store import RunStore
from test_store import fake_rows
store = RunStore(sys.argv[1])
store.create()
for i in range(4):
    rows = fake_rows(f"{i:016x}", ptq=2000)  # 2001 rows per run: a consolidation takes a while
    for row in rows:
        row["diagnostics_json"] = "x" * 400
    store.write_run(f"{i:016x}", rows)
store.consolidate()
print("ready", flush=True)
while True:
    store.consolidate()
"""


def test_sigkill_during_consolidation_leaves_a_temp_file_that_recovery_deletes(tmp_path: Path) -> None:
    out = tmp_path / "res.parquet"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    for _attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", CONSOLIDATE_FOREVER, str(out)], stdout=subprocess.PIPE,
                                text=True, env=env)  # fmt: skip
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob("res.parquet.tmp.*")):  # mid-write of a consolidation
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        if list(tmp_path.glob("res.parquet.tmp.*")):  # killed before it renamed: a half-written file stays
            break
    temps = list(tmp_path.glob("res.parquet.tmp.*"))
    assert temps, "no kill landed mid-consolidation in 5 attempts"
    assert temps[0].name.endswith(f".{proc.pid}")
    counts = RunStore(out).recover()  # what `scalefit sweep --resume` does first
    assert counts["temp_files"] >= 1
    assert not list(tmp_path.glob("res.parquet.tmp.*"))
    assert pd.read_parquet(out).run_id.nunique() == 4  # the last complete consolidation is intact


# -- two sweeps on one store --------------------------------------------------------------------------------


def test_a_run_another_sweep_finished_is_reported_as_finished_not_running(tmp_path: Path) -> None:
    out = tmp_path / "res.parquet"
    runs = tiny_runs(2)
    other = RunStore(out)  # the other sweep, on the same directory

    def first(run_id: str, config: dict) -> list[dict]:
        if run_id == runs[0].run_id:  # while this sweep trains its first run, the other finishes the second
            other.create()
            other.write_run(runs[1].run_id, fake_rows(runs[1].run_id))
        return fake_rows(run_id)

    s = run_sweep(runs, RunStore(out), LocalExecutor(first), show_progress=False)
    assert (s.ok, s.finished_elsewhere, s.left_to_others, s.complete) == (1, 1, 0, True)


# -- divergence ---------------------------------------------------------------------------------------------


def test_divergence_rule() -> None:
    assert diverged_because(47.4, 5.6, 256).startswith(
        "final loss 47.4 above the uniform loss ln(256) = 5.545"
    )
    assert diverged_because(5.0, 4.9, 256) == "final loss 5 above the initial loss 4.9"
    assert diverged_because(3.1, 5.6, 256) == ""
    assert diverged_because(6.0, 8.0, 2783) == ""  # ln(2783) = 7.93: below a uniform guess over bioS tokens


def test_a_run_that_ends_above_the_uniform_loss_is_diverged(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    cfg = TrainConfig(n=2e4, tokens=2048, lr=3.0, precision="fp32", batch_size=8, seq_len=32, data=str(text),
                      n_evals=1, eval_tokens=1024, threads=1)  # fmt: skip
    result = train(cfg)
    assert math.isfinite(result.val_loss) and result.val_loss > math.log(256)
    assert result.status == "diverged" and "uniform loss ln(256)" in result.divergence
    assert result.columns()["status"] == "diverged"


# -- what every run records for reproduction ----------------------------------------------------------------


def test_every_run_records_threads_dtype_and_cpu_capability(tmp_path: Path) -> None:
    run = tiny_runs(1)[0]
    torch.set_num_threads(1)
    rows = execute(run.run_id, run.config)
    store = RunStore(tmp_path / "res.parquet")
    store.create()
    store.write_run(run.run_id, rows)
    store.consolidate()
    df = pd.read_parquet(tmp_path / "res.parquet")
    assert (df.threads == 1).all() and (df.torch_version == torch.__version__).all()
    assert (df.cpu_capability == torch.backends.cpu.get_cpu_capability()).all()
    assert (df.bf16_native == native_bf16(torch.device("cpu"))).all() and df.bf16_native.dtype == bool
    assert (
        (df.precision == "bf16").all() and (df.compute_dtype == "bf16").all() and (df.device == "cpu").all()
    )


# -- progress off a terminal --------------------------------------------------------------------------------


def test_train_prints_plain_progress_lines_off_a_terminal(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCALEFIT_PROGRESS_EVERY", "0")
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    args = ["train", "--n", "2e4", "--tokens", "2560", "--precision", "fp32", "--data", str(text),
            "--seq-len", "32", "--batch-size", "8", "--threads", "1"]  # fmt: skip
    result = runner.invoke(app, args)  # CliRunner's stderr is not a TTY
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("train: ")]
    assert lines[0].startswith("train: step 1/10 (10%) · loss ")
    assert lines[-1].startswith("train: step 10/10 (100%)") and "elapsed · ETA 0:00" in lines[-1]
    assert "\x1b[" not in "".join(lines)  # plain text, no terminal control codes


def test_sweep_prints_a_heartbeat_line_while_a_long_run_is_in_flight(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SCALEFIT_PROGRESS_EVERY", "0.2")

    def slow(run_id: str, config: dict) -> list[dict]:
        time.sleep(1.0)
        return fake_rows(run_id)

    runs = tiny_runs(2)
    run_sweep(runs, RunStore(tmp_path / "res.parquet"), LocalExecutor(slow))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep: ")]
    assert any("0/2 runs done" in line and "1 running" in line for line in lines)  # during the first run
    assert lines[-1].startswith("sweep: 2/2 runs done · 0 failed · 0 remaining")
