"""SIGKILL a real `scalefit sweep` mid-run, resume it, and check every planned run appears exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from sweeps.plan import plan
from sweeps.spec import load_spec

SPEC = """
[sweep]
name = "resume-test"
[grid]
n = [1e4]
tokens = [{tokens}]
[axes]
precision = ["fp32"]
[train]
batch_size = 8
seq_len = 32
eval_tokens = 1024
n_evals = 1
[ptq]
methods = ["rtn"]
formats = ["int4"]
"""


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _sweep(spec: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-c",
        "from cli.main import app; app()",
        "sweep",
        str(spec),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_then_resume_runs_every_planned_run_exactly_once(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(tokens=", ".join(str(256 * s) for s in (16, 20, 24, 28, 32))))
    planned = {r.run_id for r in plan(load_spec(spec))}
    out = tmp_path / "res.parquet"
    runs_dir = tmp_path / "res.runs" / "runs"

    proc = _sweep(spec, out, "--workers", "2", "--threads", "1")
    deadline = time.monotonic() + 120
    while not (runs_dir.is_dir() and list(runs_dir.glob("*.parquet"))):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the sweep finished no run in 120 s"
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: claims and maybe a temp file stay behind
    proc.wait()
    done_before = {p.stem: p.stat().st_mtime_ns for p in runs_dir.glob("*.parquet")}
    assert 1 <= len(done_before) < len(planned), "kill the sweep mid-run, not after it finished"
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers):  # workers die with their driver (PR_SET_PDEATHSIG)
        assert time.monotonic() < deadline, "worker processes outlived the killed sweep"
        time.sleep(0.1)

    # a torn write from the killed sweep: a temp file that never got renamed
    (
        runs_dir / f"{sorted(planned - set(done_before))[0]}.parquet.tmp.{os.uname().nodename}.{proc.pid}"
    ).write_bytes(b"PAR1 half-written")
    again = _sweep(spec, out)
    assert again.wait(timeout=60) == 2 and "pass --resume" in again.communicate()[0]

    resumed = _sweep(spec, out, "--resume", "--workers", "1")
    log = resumed.communicate(timeout=150)[0]
    assert resumed.returncode == 0, log
    assert f"{len(done_before)} already done" in log
    df = pd.read_parquet(out)
    counts = df[df["ptq_method"] == "none"].groupby("run_id").size()
    assert set(counts.index) == planned and (counts == 1).all()  # every planned run exactly once
    assert len(df) == 2 * len(planned)  # none + rtn int4 rows
    for stem, mtime in done_before.items():  # finished runs were not redone
        assert (runs_dir / f"{stem}.parquet").stat().st_mtime_ns == mtime
    root = tmp_path / "res.runs"
    assert not list(root.rglob("*.tmp.*")) and not list((root / "claims").iterdir())


WSD_SPEC = SPEC.format(tokens="4096, 6144, 8192").replace(
    'precision = ["fp32"]', 'precision = ["fp32"]\nseed = [0, 1, 2]'
)
WSD_SPEC += '[schedule]\nkind = "wsd"\ncooldown = 0.25\n'


def test_wsd_branches_resume_exactly_once_each_after_sigkill(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(WSD_SPEC)
    trunks = plan(load_spec(spec))
    branches = {b.run_id: t.run_id for t in trunks for b in t.branches}
    assert len(trunks) == 3 and len(branches) == 9
    out = tmp_path / "res.parquet"
    runs_dir = tmp_path / "res.runs" / "runs"

    proc = _sweep(spec, out, "--workers", "2", "--threads", "1")
    deadline = time.monotonic() + 120
    while not (runs_dir.is_dir() and len(list(runs_dir.glob("*.parquet"))) >= 3):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the sweep finished no trunk in 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.stem for p in runs_dir.glob("*.parquet")}
    assert done <= set(branches) and len(done) < len(branches), "kill the sweep mid-run"
    finished_trunks = {branches[b] for b in done}
    # a kill between two branch writes of one trunk: one branch file missing, its siblings written
    lost = sorted(done)[0]
    (runs_dir / f"{lost}.parquet").unlink()
    kept = {p.stem: p.stat().st_mtime_ns for p in runs_dir.glob("*.parquet")}

    resumed = _sweep(spec, out, "--resume", "--workers", "1")
    log = resumed.communicate(timeout=200)[0]
    assert resumed.returncode == 0, log
    df = pd.read_parquet(out)
    none = df[df["ptq_method"] == "none"]
    counts = none.groupby("run_id").size()
    assert set(counts.index) == set(branches) and (counts == 1).all()  # every branch exactly once
    assert len(df) == 2 * len(branches)
    assert dict(zip(none["run_id"], none["parent_run_id"], strict=True)) == branches
    assert sorted(none["D"].unique().tolist()) == [4096, 6144, 8192]
    assert (none["cooldown_tokens"] == none["D"] // 4).all()
    for stem, mtime in kept.items():  # written branches were not rewritten
        assert (runs_dir / f"{stem}.parquet").stat().st_mtime_ns == mtime
    assert (runs_dir / f"{lost}.parquet").exists() and len(finished_trunks) >= 1
    root = tmp_path / "res.runs"
    assert not list(root.rglob("*.tmp.*")) and not list((root / "claims").iterdir())
