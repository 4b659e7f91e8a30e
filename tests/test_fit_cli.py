"""`scalefit fit` and `scalefit predict` end to end (typer's CliRunner)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from fits.laws import published

runner = CliRunner()


def _csv(tmp_path):
    law, p = published("chinchilla-hoffmann2022")
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e9, 5), 5)
    C = np.tile(np.geomspace(1e17, 1e20, 5), 5)
    loss = law.predict(p, {"N": N, "D": C / (6 * N)}) * np.exp(0.005 * rng.standard_normal(25))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"Model Size": N, "Training FLOP": C, "loss": loss}).to_csv(path, index=False)
    return path


def test_fit_then_predict(tmp_path) -> None:
    out = tmp_path / "fit.json"
    args = [
        "fit",
        str(_csv(tmp_path)),
        "--map",
        "N=Model Size",
        "--map",
        "C=Training FLOP",
        "--derive-d",
        "--bootstrap",
        "50",
        "--out",
        str(out),
        "--plots",
        str(tmp_path / "plots"),
        "--budget",
        "1e21",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "alpha" in res.output and "N_opt" in res.output and "holdout" in res.output
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {
        "observed_vs_predicted.png",
        "residuals_vs_compute.png",
        "loss_vs_n.png",
    }
    fit = json.loads(out.read_text())
    assert fit["law"]["name"] == "chinchilla" and len(fit["bootstrap_draws"]["A"]) == 50
    res = runner.invoke(app, ["predict", "--fit", str(out), "--n", "1e9", "--tokens", "2e10", "--json"])
    assert res.exit_code == 0, res.output
    pred = json.loads(res.output)
    assert pred["lower"] <= pred["prediction"] <= pred["upper"] and pred["n_boot"] == 50


def test_predict_published_kumar() -> None:
    law, p = published("kumar2024")
    res = runner.invoke(
        app,
        [
            "predict",
            "--law",
            "kumar2024",
            "--n",
            "1e9",
            "--tokens",
            "2e10",
            "--precision",
            "w8a8kv8",
            "--ptq",
            "4",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    X = {"N": 1e9, "D": 2e10, "P_w": 8, "P_a": 8, "P_kv": 8, "P_post": 4}
    assert json.loads(res.output)["prediction"] == np.float64(law.predict(p, X)[0])
    res = runner.invoke(app, ["predict", "--law", "kumar2024", "--n", "1e9", "--tokens", "2e10"])
    assert res.exit_code == 0 and "no interval" in res.output


def test_precision_fit_writes_precision_plots(tmp_path) -> None:
    law, p = published("kumar2024")
    rows = []
    for N in np.geomspace(2e6, 2e8, 3):
        for D in np.geomspace(2e8, 2e10, 3):
            for bits in (16, 4, 8):
                loss = float(law.predict(p, {"N": N, "D": D, "P_w": bits})[0])
                rows.append(
                    {
                        "N": N,
                        "D": D,
                        "P_w": bits,
                        "status": "ok",
                        "ptq_method": "none",
                        "P_post": np.nan,
                        "loss": loss,
                        "loss_post": loss,
                    }
                )
            post = float(law.predict(p, {"N": N, "D": D, "P_post": 3})[0])
            rows.append(
                {
                    "N": N,
                    "D": D,
                    "P_w": 16,
                    "status": "ok",
                    "ptq_method": "rtn",
                    "P_post": 3.0,
                    "loss": rows[-3]["loss"],
                    "loss_post": post,
                }
            )
    path = tmp_path / "results.parquet"
    pd.DataFrame(rows).to_parquet(path)
    res = runner.invoke(
        app,
        [
            "fit",
            str(path),
            "--law",
            "precision",
            "--bootstrap",
            "20",
            "--holdout",
            "0",
            "--out",
            str(tmp_path / "fit.json"),
            "--plots",
            str(tmp_path / "plots"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "gamma_w" in res.output and "= alpha" in res.output
    names = {q.name for q in (tmp_path / "plots").iterdir()}
    assert {"isoloss_n_p.png", "delta_ptq_vs_d.png"} <= names


def test_bad_input_is_one_line_exit_2(tmp_path) -> None:
    csv = _csv(tmp_path)
    cases = [
        ["fit", str(csv)],  # no N / D columns without --map
        ["fit", str(tmp_path / "nope.parquet")],
        ["fit", str(csv), "--law", "kaplan"],
        ["predict", "--law", "kumar2024", "--fit", "x.json", "--n", "1e9", "--tokens", "1e9"],
        ["predict", "--law", "kumar2024", "--n", "0", "--tokens", "1e9"],
        ["predict", "--law", "kumar2024", "--n", "1e9", "--tokens", "1e9", "--precision", "w99"],
        ["predict", "--fit", str(csv), "--n", "1e9", "--tokens", "1e9"],
        ["predict", "--law", "kumar2024", "--n", "1e9", "--tokens", "1e9", "--ptq", "40"],
        ["predict", "--law", "kumar2024", "--n", "1e9", "--tokens", "1e9", "--ptq", "1"],
        ["predict", "--law", "kumar2024", "--n", "1e9", "--tokens", "1e9", "--ptq", "int99"],
        ["fit", str(csv), "--map", "N=x", "--map", "D"],
        ["fit", str(csv), "--where", "nonsense ==="],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith("error: ") and res.output.count("\n") == 1, (args, res.output)
    ptq = runner.invoke(
        app, ["predict", "--law", "kumar2024", "--n", "1e9", "--tokens", "1e9", "--ptq", "40"]
    )
    assert "2..16 bits" in ptq.output


def test_library_errors_name_parameters_and_the_cli_its_flags() -> None:
    import fits
    from scaling.errors import UserError

    with pytest.raises(UserError, match=r"^n_params must be a positive finite number"):
        fits.recommend(1e21, n_params=-1)
    res = runner.invoke(app, ["recommend", "--flops", "1e21", "--params", "-1"])
    assert res.exit_code == 2 and res.output.startswith("error: --params must be a positive finite number")
    res = runner.invoke(app, ["recommend", "--flops", "1e21", "--params", "1e9", "--max-params", "1e8"])
    assert "--params 1e+09 exceeds --max-params 1e+08" in res.output
