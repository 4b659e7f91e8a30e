"""Backtests (fits.backtest, `scalefit backtest`) and row grouping (`fit --group-by`, the pooled warning)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import fits
from cli.main import app
from fits.grouping import fit_groups
from fits.laws import published
from scaling.errors import UserError

runner = CliRunner()
LAW, TRUTH = published("chinchilla-hoffmann2022")


def sweep(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """6 model sizes × 5 tokens-per-parameter ratios on the Hoffmann et al. law (times log-normal noise)."""
    rng = np.random.default_rng(seed)
    N, ratio = np.meshgrid(np.geomspace(1e7, 2e9, 6), np.geomspace(4, 100, 5))
    N, D = N.ravel(), (N * ratio).ravel()
    loss = LAW.predict(TRUTH, {"N": N, "D": D}) * np.exp(noise * rng.standard_normal(N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def test_backtest_splits_by_compute_and_scores_exact_predictions() -> None:
    df = sweep()
    res = fits.backtest(df, cuts=(0.5, 0.8), n_boot=0, n_refine=4)
    C = 6 * df["N"].to_numpy() * df["D"].to_numpy()
    assert res.interval == "none" and list(res.table["cut"]) == [0.5, 0.8]
    for _, row in res.table.iterrows():
        n_test = round((1 - row["cut"]) * len(df))
        threshold = np.sort(C)[len(df) - n_test]
        assert row["threshold"] == pytest.approx(threshold) and row["rows"] == int((C >= threshold).sum())
        assert row["n_train"] == int((C < threshold).sum())
        assert row["median_rel_error"] < 1e-4 and np.isnan(row["coverage"])  # noise-free, right law
    pts = res.points
    assert len(pts) == res.overall["rows"] == res.table["rows"].sum()
    first = pts[pts["cut"] == 0.5]
    largest_fitted = C[C < res.table["threshold"].iloc[0]].max()
    np.testing.assert_allclose(first["distance"], np.log10(first["compute"] / largest_fitted))
    assert (first["distance"] >= 0).all() and first["covered"].isna().all()
    assert set(res.to_dict()) >= {"overall", "cuts", "points", "interval", "level"}
    assert "all" in res.as_text() and "0.80" in res.as_text()


def test_backtest_by_n_and_with_intervals() -> None:
    df = sweep(noise=0.01, seed=1)
    res = fits.backtest(df, cuts=(0.7,), by="N", n_boot=20, n_refine=4)
    row = res.table.iloc[0]
    train_n = df["N"][df["N"] < row["threshold"]]
    assert res.by == "N" and row["n_train"] == len(train_n) and row["interval"] == "calibrated"
    assert (res.points["N"] >= row["threshold"]).all() and train_n.max() < res.points["N"].min()
    assert 0 <= row["coverage"] <= 1 and 0 < row["median_rel_width"] < 1
    pts = res.points
    assert (pts["lower"] < pts["prediction"]).all() and (pts["prediction"] < pts["upper"]).all()
    assert list(pts["covered"]) == list((pts["lower"] <= pts["observed"]) & (pts["observed"] <= pts["upper"]))
    boot = fits.backtest(df, cuts=(0.7,), by="N", n_boot=20, n_refine=4, interval="bootstrap")
    assert boot.interval == "bootstrap" and boot.overall["median_rel_width"] < res.overall["median_rel_width"]


def test_backtest_refuses_bad_options() -> None:
    df = sweep()
    for kwargs, match in (
        ({"cuts": (0.5, 1.2)}, "cuts must be fractions"),
        ({"by": "D"}, "by must be one of"),
        ({"alpha": 0}, "alpha must be in"),
        ({"interval": "wide"}, "interval must be"),
        ({"cuts": (0.05,)}, "no cut left enough rows"),
    ):
        with pytest.raises(UserError, match=match):
            fits.backtest(df, n_boot=0, **kwargs)


def test_cli_backtest_table_json_plot_and_errors(tmp_path) -> None:
    path = tmp_path / "runs.csv"
    df = sweep(noise=0.005, seed=2).rename(columns={"N": "Model Size"})
    df["Training FLOP"] = 6 * df["Model Size"] * df["D"]
    df.drop(columns="D").to_csv(path, index=False)
    base = ["backtest", str(path), "--map", "N=Model Size", "--map", "C=Training FLOP", "--derive-d"]
    res = runner.invoke(
        app, [*base, "--cuts", "0.6,0.8", "--bootstrap", "10", "--plot", str(tmp_path / "b.png")]
    )
    assert res.exit_code == 0, res.output
    assert "calibrated intervals at 95%" in res.output and "0.60" in res.output and "cover" in res.output
    assert "backtest: auto" in res.output and "law chosen at each cut" in res.output  # the default, as fit
    assert (tmp_path / "b.png").stat().st_size > 0
    res = runner.invoke(
        app,
        [
            *base,
            "--law",
            "chinchilla",
            "--cuts",
            "0.8",
            "--bootstrap",
            "0",
            "--json",
            "--where",
            "`Model Size` > 1e7",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["interval"] == "none" and out["cuts"][0]["n_train"] == 20 and len(out["points"]) == 5
    for args, message in (
        (["--cuts", "0.5,x"], "error: --cuts expects"),
        (["--by", "D"], "error: --by must be one of"),
        (["--tie", "beta=gamma"], "error:"),
    ):
        res = runner.invoke(app, [*base, "--bootstrap", "0", *args])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_fit_group_by_writes_one_fit_per_group_and_pooling_warns(tmp_path) -> None:
    a, b = sweep(noise=0.005, seed=3), sweep(noise=0.005, seed=4)
    b["loss"] *= 1.1  # another data set: 10% higher loss
    table = pd.concat([a.assign(dataset="c4"), b.assign(dataset="web/2")], ignore_index=True)
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "fit.json"
    pooled = runner.invoke(app, ["fit", str(path), "--bootstrap", "0", "--holdout", "0", "-o", str(out)])
    assert pooled.exit_code == 0, pooled.output
    assert "rows of 2 different set-ups are pooled" in pooled.output and "--group-by dataset" in pooled.output
    stored = json.loads(out.read_text())["diagnostics"]
    assert any(d["kind"] == "pooled" for d in stored)
    pred = runner.invoke(app, ["predict", "--fit", str(out), "--n", "1e8", "--tokens", "2e9"])
    assert "warning: fit: rows of 2 different set-ups are pooled" in pred.output

    res = runner.invoke(
        app, ["fit", str(path), "--group-by", "dataset", "--bootstrap", "0", "--holdout", "0", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "== group c4 (dataset=c4; 30 rows)" in res.output and "set-ups are pooled" not in res.output
    fitted = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("fit.*.json")}
    assert set(fitted) == {"fit.c4.json", "fit.web_2.json"}
    assert fitted["fit.web_2.json"]["options"]["group"] == {"dataset": "web/2"}
    e = {name: f["params"]["E"] for name, f in fitted.items()}
    assert e["fit.web_2.json"] == pytest.approx(1.1 * e["fit.c4.json"], rel=0.05)
    bad = runner.invoke(
        app, ["fit", str(path), "--group-by", "optimizer", "--bootstrap", "0", "-o", str(out)]
    )
    assert bad.exit_code == 2 and "error: --group-by: no column(s) optimizer" in bad.output


def test_fit_groups_library() -> None:
    table = pd.concat([sweep().assign(optimizer=o) for o in ("adam", "lion")], ignore_index=True)
    assert fits.fit_data(table, "chinchilla").pooled[0]["kind"] == "pooled"
    results = fit_groups(table, ["optimizer"], n_boot=0, holdout=None, n_refine=4)
    assert set(results) == {"adam", "lion"} and not results["adam"].diagnostics
    assert results["lion"].options["group"] == {"optimizer": "lion"}
