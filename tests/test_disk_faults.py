"""Real disk faults: a full disk (a 200 KB tmpfs), a read-only filesystem (a tmpfs remounted read-only: chmod
is ignored by root), a file where the run directory belongs and a directory that takes no files (/proc).

Every fault must end in one `error: <path>: <cause>` line with exit code 2 (CLI) or a UserError naming the
file (library), never a traceback, and leave the results store consistent: no temp file, no claim of the
stopped sweep, every finished run readable, so `--resume` finishes the sweep once the disk is fixed.
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_store import fake_rows, tiny_runs
from typer.testing import CliRunner

from cli.main import app
from scaling.errors import UserError
from sweeps.driver import run_sweep
from sweeps.executors import LocalExecutor
from sweeps.store import RunStore, rows_to_table

runner = CliRunner()
PAGE = os.sysconf("SC_PAGE_SIZE")


def _mount(target: Path, options: str) -> None:
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({proc.stderr.strip() or proc.returncode}); "
                    "the disk-fault tests need root or CAP_SYS_ADMIN")  # fmt: skip


@pytest.fixture
def disk(tmp_path: Path):
    """A real 200 KB tmpfs (unmounted afterwards)."""
    target = tmp_path / "disk"
    target.mkdir()
    _mount(target, "size=200k")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def remount(target: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(target)], check=True)


def free_pages(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize // PAGE


def fill(path: Path, leave_pages: int = 0) -> None:
    """Fill the filesystem of `path` with page-sized filler files until `leave_pages` pages are free."""
    filler = path / "filler"
    filler.mkdir(exist_ok=True)
    i = 0
    while free_pages(path) > leave_pages:
        try:
            (filler / str(i)).write_bytes(os.urandom(PAGE))
        except OSError:
            break
        i += 1


def no_temp_files(store: RunStore) -> bool:
    beside = store.out.parent.glob(f"{store.out.name}.tmp.*")  # the consolidation's temp file
    return not list(store.root.rglob("*.tmp.*")) and not list(beside)


def big_rows(run_id: str) -> list[dict]:
    """Rows whose run file takes several pages: incompressible diagnostics."""
    rows = fake_rows(run_id)
    for row in rows:
        row["diagnostics_json"] = os.urandom(6000).hex()
    return rows


def assert_one_error_line(result, *words: str, after_output: bool = False) -> str:
    """Exit code 2, no traceback, and one `error:` line holding `words`: the whole output, or with
    `after_output` the last line after what the command printed before the fault (a fit's summary)."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.output
    assert after_output or len(lines) == 1, result.output
    for word in words:
        assert word in lines[-1], (word, lines[-1])
    return lines[-1]


# -- full disk ----------------------------------------------------------------------------------------------


def test_full_disk_during_write_run_stops_cleanly_and_resumes(disk: Path) -> None:
    runs = tiny_runs(4)
    ids = [r.run_id for r in runs]

    def run(run_id: str, config: dict) -> list[dict]:
        if run_id == ids[2]:  # the disk fills up while the third run trains
            fill(disk)
        return big_rows(run_id)

    out = disk / "res.parquet"
    with pytest.raises(UserError) as err:
        run_sweep(runs, RunStore(out), LocalExecutor(run), show_progress=False)
    message = str(err.value)
    assert f"{disk}/res.runs/runs/{ids[2]}.parquet: No space left on device" in message
    assert "continue with --resume" in message and "\n" not in message
    store = RunStore(out)
    assert store.finished() == set(ids[:2])  # the runs written before the disk filled are intact
    assert no_temp_files(store) and not list(store.claims_dir.iterdir())

    # --resume on the still-full disk: the same kind of one-line error, the store still consistent
    with pytest.raises(UserError, match="No space left on device") as again:
        run_sweep(runs, RunStore(out), LocalExecutor(run), resume=True, show_progress=False)
    assert str(disk) in str(again.value)
    assert no_temp_files(store) and not list(store.claims_dir.iterdir())
    assert store.finished() == set(ids[:2])

    remount(disk, "size=4m")  # the disk is fixed
    s = run_sweep(runs, RunStore(out), LocalExecutor(lambda run_id, config: big_rows(run_id)), resume=True,
                  show_progress=False)  # fmt: skip
    assert (s.already_done, s.ok, s.complete) == (2, 2, True)
    df = pd.read_parquet(out)
    assert sorted(df[df.ptq_method == "none"].run_id) == sorted(ids)  # every planned run exactly once


def test_full_disk_during_consolidation_keeps_the_previous_results(disk: Path) -> None:
    runs = tiny_runs(3)
    ids = [r.run_id for r in runs]

    def run(run_id: str, config: dict) -> list[dict]:
        rows = big_rows(run_id)
        if run_id == ids[2]:  # leave exactly the room of this run's file: the consolidation after it fails
            sink = pa.BufferOutputStream()
            pq.write_table(rows_to_table(run_id, rows), sink)  # the size the store will write (+ metadata)
            fill(disk, leave_pages=math.ceil((sink.getvalue().size + 512) / PAGE))
        return rows

    out = disk / "res.parquet"
    with pytest.raises(UserError) as err:
        run_sweep(runs, RunStore(out), LocalExecutor(run), show_progress=False, consolidate_every=0)
    assert f"{out}: No space left on device" in str(err.value)
    store = RunStore(out)
    assert store.finished() == set(ids)  # the third run's file made it
    assert no_temp_files(store)
    previous = pd.read_parquet(out)  # the last good consolidation is intact (atomic replace)
    assert set(previous.run_id) == set(ids[:2])
    remount(disk, "size=4m")
    assert store.consolidate() == 3 * 2


def test_fit_plots_onto_a_full_disk_is_one_error_line(disk: Path, tmp_path: Path) -> None:
    csv = tmp_path / "runs.csv"
    pd.DataFrame(
        [(n, d, 1.7 + 400 / n**0.34 + 410 / d**0.28) for n in (1e4, 3e4, 1e5) for d in (1e5, 4e5, 2e6)],
        columns=["N", "D", "loss"],
    ).to_csv(csv, index=False)
    fill(disk)
    args = ["fit", str(csv), "--bootstrap", "5", "--holdout", "0", "--out", str(tmp_path / "fit.json")]
    result = runner.invoke(app, [*args, "--plots", str(disk / "plots")])
    assert_one_error_line(result, str(disk / "plots"), "No space left on device", after_output=True)


def test_sweep_cli_full_disk_is_one_error_line(disk: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[sweep]\nname = "t"\n[grid]\nn = [1e4]\ntokens = [512]\n'
                    "[train]\nbatch_size = 2\nseq_len = 16\n")  # fmt: skip
    fill(disk)
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(disk / "r.parquet"), "--quiet"])
    assert_one_error_line(result, str(disk / "r.runs"), "No space left on device")


# -- read-only filesystem -----------------------------------------------------------------------------------


@pytest.fixture
def readonly(disk: Path) -> Path:
    """The tmpfs with a small store and a results file in it, then remounted read-only."""
    store = RunStore(disk / "res.parquet")
    store.create()
    store.write_run("a" * 16, fake_rows("a" * 16))
    store.consolidate()
    remount(disk, "ro")
    with pytest.raises(OSError):  # really read-only, even for root
        (disk / "probe").write_text("x")
    return disk


def test_read_only_filesystem_for_every_writer(readonly: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[sweep]\nname = "t"\n[grid]\nn = [1e4]\ntokens = [512]\n'
                    "[train]\nbatch_size = 2\nseq_len = 16\n")  # fmt: skip
    # the sweep's mkdir of a new run directory
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(readonly / "new.parquet"), "--quiet"])
    assert_one_error_line(result, str(readonly / "new.runs"), "Read-only file system")
    # the store's lock, on --resume of the existing store
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(readonly / "res.parquet"), "--resume"])
    assert_one_error_line(result, str(readonly / "res.runs"), "Read-only file system")
    assert pd.read_parquet(readonly / "res.parquet").run_id.tolist() == ["a" * 16] * 2  # untouched
    # recommend --plot
    result = runner.invoke(app, ["recommend", "--flops", "1e21", "--plot", str(readonly / "rec.png")])
    assert_one_error_line(result, str(readonly / "rec.png"), "Read-only file system")
    # fit --out
    csv = tmp_path / "runs.csv"
    pd.DataFrame(
        [(n, d, 1.7 + 400 / n**0.34 + 410 / d**0.28) for n in (1e4, 3e4, 1e5) for d in (1e5, 4e5, 2e6)],
        columns=["N", "D", "loss"],
    ).to_csv(csv, index=False)
    result = runner.invoke(
        app, ["fit", str(csv), "--bootstrap", "5", "--holdout", "0", "--out", str(readonly / "fit.json")]
    )
    assert_one_error_line(result, str(readonly / "fit.json"), "Read-only file system", after_output=True)


# -- wrong kinds of paths -----------------------------------------------------------------------------------


def test_run_directory_that_is_a_file(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[sweep]\nname = "t"\n[grid]\nn = [1e4]\ntokens = [512]\n')
    (tmp_path / "r.runs").write_text("not a directory")
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "r.parquet"), "--resume"])
    assert_one_error_line(result, f"{tmp_path / 'r.runs'} is a file, not a run directory")


def test_out_in_a_directory_that_takes_no_files() -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this machine")
    spec = Path(__file__).resolve().parents[1] / "sweeps" / "presets" / "smoke.toml"
    result = runner.invoke(app, ["sweep", str(spec), "--out", "/proc/r.parquet", "--quiet"])
    assert_one_error_line(result, "cannot create the run directory /proc/r.runs", "/proc exists but")
