"""Calibrated prediction intervals (fits.calibration): coverage of future runs on a synthetic law with known
parameters and noise, persistence in fit.json, and how predict / recommend show them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fits
from fits.calibration import conformal_multiplier, prediction_interval
from fits.laws import chinchilla_law, published
from fits.validation import split_by_compute
from scaling.errors import UserError

TRUTH = published("chinchilla-hoffmann2022")[1]
LAW = chinchilla_law()


def runs(
    seed: int, sigma: float = 0.01, grid: tuple[int, int] = (8, 5)
) -> tuple[dict, np.ndarray, np.ndarray]:
    """A sweep of 8 model sizes × 5 tokens-per-parameter ratios (`grid`; N jittered), loss = the Hoffmann
    et al. law times log-normal noise of `sigma`: (X, y, compute)."""
    rng = np.random.default_rng(seed)
    N, ratio = np.meshgrid(np.geomspace(1e7, 3e9, grid[0]), np.geomspace(4, 100, grid[1]))
    N = N.ravel() * np.exp(0.05 * rng.standard_normal(N.size))
    D = N * ratio.ravel()
    y = LAW.predict(TRUTH, {"N": N, "D": D}) * np.exp(sigma * rng.standard_normal(N.size))
    return {"N": N, "D": D}, y, 6 * N * D


def fit_future(
    seed: int, n_boot: int = 30, grid: tuple[int, int] = (8, 5)
) -> tuple[fits.FitResult, dict, np.ndarray]:
    """Fit the runs below the largest-compute 20%; return the fit and the held-out (future) runs."""
    X, y, C = runs(seed, grid=grid)
    future = split_by_compute(C, 0.2)
    data = fits.FitData(
        X={k: v[~future] for k, v in X.items()}, y=y[~future], compute=C[~future], target="loss",
        n_read=int((~future).sum()), law=LAW,
    )  # fmt: skip
    res = fits.fit(data, LAW, n_boot=n_boot, seed=seed, holdout=None)
    return res, {k: v[future] for k, v in X.items()}, y[future]


@pytest.mark.parametrize("grid", [(8, 5), (12, 10)], ids=["40-runs", "120-runs"])
def test_calibrated_95_interval_covers_90_to_98_percent_of_future_runs_over_seeds(grid) -> None:
    """40 runs: no inner split has the 19 scores a 95% split quantile needs, so the pooled quantile is
    used; 120 runs: every split has its own and the latest split's is used (the largest split quantile,
    the rule before 2026-12-04, covered 98.7% here: too wide)."""
    covered, boot_covered, widths = [], [], []
    for seed in range(16):
        res, X, y = fit_future(seed, grid=grid)
        if grid == (12, 10):
            assert min(len(s) for s in res.calibration["split_scores"]) >= 19
        point, lo, hi, kind = prediction_interval(res, X, 0.05)
        assert kind == "calibrated"
        covered.append((lo <= y) & (y <= hi))
        widths.append((hi - lo) / point)
        b = res.predict_interval(X, 0.05)
        boot_covered.append((b["lower"].to_numpy() <= y) & (y <= b["upper"].to_numpy()))
    coverage = np.concatenate(covered).mean()
    assert 0.90 <= coverage <= 0.98, coverage
    # Parameter uncertainty alone is far too narrow for single runs: the reason for the calibration.
    assert np.concatenate(boot_covered).mean() < 0.9
    assert 0.02 < np.median(np.concatenate(widths)) < 0.15  # noise 1%: ±2% at least, not useless


def test_calibration_is_stored_and_drives_predict_and_recommend(tmp_path) -> None:
    res, _, _ = fit_future(0, n_boot=20)
    cal = res.calibration
    assert cal["splits"] >= 2 and cal["n_scores"] == sum(len(s) for s in cal["split_scores"])
    assert cal["kappa"] >= 0 and cal["sigma0"] > 0
    path = tmp_path / "fit.json"
    res.to_json(path)
    assert json.loads(path.read_text())["calibration"]["compute_max"] == pytest.approx(cal["compute_max"])
    loaded = fits.FitResult.from_json(path)
    far = {"N": [1e9, 1e9, 1e10], "D": [2e10, 2e11, 2e12]}  # inside, beyond, far beyond the fitted compute
    pred = fits.predict(loaded, far)
    assert pred.interval == "calibrated" and pred.to_dict()["interval"] == "calibrated"
    rel = ((pred.table["upper"] - pred.table["lower"]) / pred.table["prediction"]).to_numpy()
    assert rel[0] < rel[1] < rel[2]  # the error term grows with the distance extrapolated
    boot = fits.predict(loaded, far, interval="bootstrap")
    assert boot.interval == "bootstrap"
    boot_width = (boot.table["upper"] - boot.table["lower"]).to_numpy()
    width = (pred.table["upper"] - pred.table["lower"]).to_numpy()
    assert (boot_width <= width).all() and boot_width[0] < width[0]  # a union: never narrower
    assert any("itself extrapolated" in w for w in pred.warnings)  # 1e10 x 2e12 is beyond every inner split
    assert fits.predict(loaded, far, interval="none").interval == "none"
    with pytest.raises(UserError, match="interval must be one of"):
        fits.predict(loaded, far, interval="wide")

    rec = fits.recommend(1e21, fit=loaded)
    plain = fits.recommend(1e21, fit=fits.FitResult.from_dict({**loaded.to_dict(), "calibration": None}))
    assert rec.interval == "calibrated" and plain.interval == "bootstrap"
    assert rec.loss_interval[0] <= plain.loss_interval[0] and plain.loss_interval[1] <= rec.loss_interval[1]
    assert rec.to_dict()["loss_interval_kind"] == "calibrated"


def test_multiplier_is_a_split_quantile_or_unbounded() -> None:
    many = {"split_scores": [list(np.linspace(0, 1, 39)), list(np.linspace(0, 2, 39))]}
    q = conformal_multiplier(many, 0.05)  # k = ceil(40 * 0.95) = 38th smallest of 39 in each split
    assert q == pytest.approx(np.linspace(0, 2, 39)[37])
    few = {"split_scores": [[0.5, 1.0], [2.0]]}  # no split alone, nor all three pooled, reach 95%
    assert conformal_multiplier(few, 0.05) == np.inf
    assert conformal_multiplier(few, 0.5) == 2.0  # each split's own quantile is finite at 50%


def test_cli_predict_points_where_and_interval_kind(tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    res, _, _ = fit_future(1, n_boot=20)
    fit_path = tmp_path / "fit.json"
    res.to_json(fit_path)
    points = tmp_path / "plan.csv"
    points.write_text("N,D,stage\n1e8,2e9,now\n1e9,2e10,next\n3e9,6e10,next\n")
    base = ["predict", "--fit", str(fit_path), "--points", str(points)]
    out = runner.invoke(app, [*base, "--where", "stage == 'next'"])
    assert out.exit_code == 0, out.output
    assert "1e+09" in out.output and "1e+08" not in out.output and "95% intervals: calibrated" in out.output
    data = json.loads(runner.invoke(app, [*base, "--json", "--interval", "bootstrap"]).output)
    assert data["interval"] == "bootstrap" and [p["stage"] for p in data["points"]] == ["now", "next", "next"]
    one = json.loads(
        runner.invoke(
            app, ["predict", "--fit", str(fit_path), "--n", "1e9", "--tokens", "2e10", "--json"]
        ).output
    )
    assert one["interval"] == "calibrated" and one["lower"] < one["prediction"] < one["upper"]
    for args, message in (
        (["--where", "N > 1"], "error: --where selects rows of a --points file"),
        ([*base[3:], "--n", "1e9"], "error: give either --points FILE or --n/--tokens"),
        ([*base[3:], "--where", "stage == 'later'"], "error: --where \"stage == 'later'\" selects none"),
    ):
        bad = runner.invoke(app, ["predict", "--fit", str(fit_path), *args])
        assert bad.exit_code == 2 and message in bad.output, bad.output


def test_multiplier_is_the_latest_split_quantile_and_old_files_keep_their_rule() -> None:
    from fits.calibration import MAX_METHOD, METHOD

    early = list(np.linspace(0.1, 5.0, 20))  # 95% split quantile: the 20th of 20 = 5.0
    late = list(np.linspace(0.1, 2.0, 20))
    short = [0.5] * 5  # too few scores for a finite split quantile
    cal = {"method": METHOD, "split_scores": [early, late, short]}
    assert conformal_multiplier(cal, 0.05) == pytest.approx(2.0)  # the latest split with a finite one
    assert conformal_multiplier({**cal, "method": MAX_METHOD}, 0.05) == pytest.approx(5.0)
    pooled = {"method": METHOD, "split_scores": [short, short, short, short]}  # 20 scores pooled
    assert conformal_multiplier(pooled, 0.05) == pytest.approx(0.5)
    assert conformal_multiplier({"method": METHOD, "split_scores": [short]}, 0.05) == float("inf")
