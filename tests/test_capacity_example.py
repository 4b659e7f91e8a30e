"""examples/capacity-cpu.parquet (rows of bench/capacity.py's sweep store) fits with `--law capacity`, as on
a fresh clone: through the CLI in a subprocess and through the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fits
from fits.results import FitResult

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "capacity-cpu.parquet"
CLEAN = "junk == 0 and ptq_method == 'none'"


def _scalefit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "from cli.main import app; app()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd,
                          env=env)  # fmt: skip


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.read_parquet(EXAMPLE)


def test_the_example_holds_benchmark_rows(rows: pd.DataFrame) -> None:
    assert set(rows.task) == {"bios"} and (rows.status == "ok").all()
    trained = rows[rows.ptq_method == "none"]
    assert trained.run_id.is_unique and len(trained) >= 5
    assert {100, 1000} <= set(trained.exposures.astype(int)) and trained.N.nunique() >= 2
    assert {"rtn", "gptq"} <= set(rows.ptq_method) and {"int8", "int4"} <= set(rows.fmt_post)
    np.testing.assert_allclose(rows.R, rows.bits / rows.params_paper, rtol=1e-12)
    for _, r in trained.iterrows():  # the capacity measurement in the diagnostics is the row's
        cap = json.loads(r.diagnostics_json)["capacity"]
        assert cap["bits"] == pytest.approx(r.bits) and cap["people"] == r.people
        assert json.loads(r.config_json)["bios"]["variant"] == "bioD"


def test_cli_fits_the_whole_table(tmp_path: Path, rows: pd.DataFrame) -> None:
    out = tmp_path / "fit.json"
    run = _scalefit("fit", str(EXAMPLE), "--law", "capacity", "--bootstrap", "100", "--out", str(out),
                    cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "error" not in run.stderr.lower() and "kappa" in run.stdout
    assert f"rows used: {len(rows)}" in run.stdout
    res = FitResult.from_json(out)
    assert res.law.responds_to("exposures")
    groups = res.law.spec["groups"]
    assert len(groups) >= 4 and any("ptq_method=gptq" in g for g in groups)
    ci = res.conf_int()
    assert np.isfinite(ci.to_numpy()).all() and (ci["lower"] <= res.params).all()
    assert (res.params <= ci["upper"]).all()
    api = fits.fit(fits.read_table(EXAMPLE), "capacity", n_boot=100, seed=0)
    np.testing.assert_allclose(api.params.to_numpy(), res.params.to_numpy(), rtol=1e-9)


def test_clean_runs_give_r_at_1000_exposures_and_its_growth(tmp_path: Path, rows: pd.DataFrame) -> None:
    out = tmp_path / "clean.json"
    run = _scalefit("fit", str(EXAMPLE), "--law", "capacity", "--where", CLEAN, "--bootstrap", "200",
                    "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    res = FitResult.from_json(out)
    assert set(res.params.index) == {"R", "kappa"}
    ci = res.conf_int()
    assert np.isfinite(ci.to_numpy()).all()
    clean = rows.query(CLEAN)
    measured = clean[clean.exposures == 1000].R
    assert 0.7 * measured.min() <= res.params["R"] <= 1.3 * measured.max()  # R at 1000 exposures
    assert ci.loc["kappa", "lower"] > 0  # fewer exposures store fewer bits per parameter
    size = float(clean.params_paper.median())
    points = {"params_paper": [size, size], "exposures": [100, 1000]}
    boot = fits.predict(str(out), points, interval="bootstrap").table  # parameter uncertainty
    assert np.isfinite(boot[["lower", "prediction", "upper"]].to_numpy()).all()
    assert (boot.lower < boot.prediction).all() and (boot.prediction < boot.upper).all()
    assert boot.prediction.iloc[1] > 2 * boot.prediction.iloc[0]
    assert boot.prediction.iloc[1] == pytest.approx(res.params["R"] * size, rel=1e-9)
    # The default (calibrated) interval contains the bootstrap one; unbounded only with a warning saying so.
    calibrated = fits.predict(str(out), points)
    t = calibrated.table
    assert (t.lower <= boot.lower + 1e-9).all() and (t.upper >= boot.upper - 1e-9).all()
    if not np.isfinite(t.upper).all():
        assert any("too few" in w for w in calibrated.warnings), calibrated.warnings
