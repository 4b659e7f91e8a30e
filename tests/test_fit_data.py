"""Reading fit inputs, row selection and dropping, FitResult persistence, validation helpers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits.dataset import DataWarning, fit_data, parse_mapping, read_table
from fits.laws import published
from fits.pipeline import fit
from fits.results import FitResult
from fits.validation import in_sample_metrics, split_by_compute
from scaling.errors import UserError


def _results_table(n_side: int = 4) -> pd.DataFrame:
    """A results.parquet-like table: bf16 runs with an RTN-4 PTQ row each, from kumar2024."""
    law, p = published("kumar2024")
    rows = []
    for N in np.geomspace(1e6, 1e8, n_side):
        for D in np.geomspace(1e8, 1e10, n_side):
            loss = float(law.predict(p, {"N": N, "D": D})[0])
            post = float(law.predict(p, {"N": N, "D": D, "P_post": 4})[0])
            base = {
                "task": "lm",
                "N": N,
                "D": D,
                "P_w": 16.0,
                "P_a": 16.0,
                "P_kv": 16.0,
                "status": "ok",
                "loss": loss,
            }
            rows.append({**base, "ptq_method": "none", "P_post": np.nan, "loss_post": loss})
            rows.append({**base, "ptq_method": "rtn", "P_post": 4.0, "loss_post": post})
    return pd.DataFrame(rows)


def test_row_selection_and_counted_drops() -> None:
    df = _results_table()
    df.loc[0, "status"] = "diverged"
    df.loc[2, "loss"] = np.nan
    df.loc[4, "N"] = -5.0
    df.loc[6, "task"] = "bios"
    with pytest.warns(
        DataWarning, match=r"dropped 3 of 32 rows: 1 diverged status, 1 non-positive N, 1 NaN/inf loss"
    ):
        data = fit_data(df, "chinchilla")
    assert data.n_rows == 12 and data.target == "loss"
    assert data.not_used == {"task other than 'lm'": 1, "post-training-quantized rows": 16}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        prec = fit_data(df, "precision")
    assert (
        prec.target == "loss_post" and prec.n_rows == 29
    )  # row 2 has loss_post and np.isnan(prec.X["P_post"]).sum() == 13


def test_read_csv_with_mapping_and_derived_tokens(tmp_path) -> None:
    path = tmp_path / "runs.csv"
    pd.DataFrame({"Model Size": [1e8, 2e8], "Training FLOP": [6e17, 2.4e18], "loss": [3.0, 2.9]}).to_csv(path)
    df = read_table(path, parse_mapping(["N=Model Size", 'C="Training FLOP"']), derive_d=True)
    np.testing.assert_allclose(df["D"], [1e9, 2e9])
    with pytest.raises(UserError, match="no column 'Size'"):
        read_table(path, {"N": "Size"})
    with pytest.raises(UserError, match="derive_d needs"):
        read_table(path, derive_d=True)
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_mapping(["N"])


def test_bad_inputs(tmp_path) -> None:
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(UserError, match=r"expected a \.parquet"):
        read_table(tmp_path / "x.json")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(UserError, match=r"cannot read bad\.parquet"):
        read_table(tmp_path / "bad.parquet")
    with pytest.raises(UserError, match="not found"):
        read_table(tmp_path / "missing.csv")
    df = _results_table()
    with pytest.raises(UserError, match=r"missing column\(s\) D"):
        fit_data(df.drop(columns=["D"]), "chinchilla")
    with pytest.raises(UserError, match="only 2 distinct N"):
        fit_data(df[df["N"] < 1e7], "chinchilla")
    with pytest.raises(UserError, match="only 3 usable rows"):
        fit_data(df.iloc[[0, 2, 4]], "chinchilla")


def test_fit_result_json_round_trip(tmp_path) -> None:
    data = fit_data(_results_table(), "chinchilla")
    res = fit(data, "chinchilla", n_boot=40, holdout=0.25, n_refine=4)
    res.to_json(tmp_path / "fit.json")
    back = FitResult.from_json(tmp_path / "fit.json")
    assert back.params.equals(res.params) and back.law.name == "chinchilla" and back.n_boot == 40
    assert (
        back.data["hash"] == res.data["hash"]
        and back.version == res.version
        and back.options["bootstrap"] == 40
    )
    X = {"N": [1e9, 1e10], "D": [1e10, 1e11]}
    draws = back.predict_draws(X)
    assert draws.shape == (40, 2)
    np.testing.assert_allclose(back.predict(X), res.predict(X))
    iv = back.predict_interval(X)
    assert list(iv.columns) == ["prediction", "lower", "upper"] and len(iv) == 2
    assert np.all(iv["lower"] <= iv["prediction"] + 1e-9) and np.all(iv["prediction"] <= iv["upper"] + 1e-9)
    np.testing.assert_allclose(back.fittedvalues, res.fittedvalues)
    assert back.diagnostics == res.diagnostics
    pd.testing.assert_frame_equal(back.conf_int(), res.conf_int())
    assert "holdout" in res.summary() and res.metrics["holdout"]["n"] >= 4  # 25% of 16, ties kept together
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(UserError, match=r"not a scalefit fit\.json"):
        FitResult.from_json(tmp_path / "junk.json")


def test_published_law_json_has_no_nonstandard_floats(tmp_path) -> None:
    """kumar2024's C_x = inf must survive as strict JSON."""
    import json

    data = fit_data(_results_table(), "precision")
    res = fit(data, "precision", n_boot=0, holdout=None, n_refine=4)
    res.to_json(tmp_path / "fit.json")
    text = (tmp_path / "fit.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert FitResult.from_json(tmp_path / "fit.json").params["C_w"] == np.inf


def test_validation_helpers() -> None:
    mask = split_by_compute(np.array([1.0, 5.0, 3.0, 5.0, 2.0]), 0.2)
    assert mask.tolist() == [False, True, False, True, False]  # the tie at the top is held out together
    with pytest.raises(UserError):
        split_by_compute(np.ones(4), 0.5)
    y = np.array([3.0, 2.5, 2.2])
    m = in_sample_metrics(y, y, n_free=2)
    assert m["r2_log"] == 1.0 and m["rmse_log"] == 0.0
    m = in_sample_metrics(y, y * np.exp([0.01, -0.01, 0.0]), n_free=2)
    assert (
        m["rmse_log"] == pytest.approx(np.sqrt(2e-4 / 3))
        and m["bic"] > m["aic"] - 2 * 2 + 2 * np.log(3) - 1e-9
    )


def test_rows_match_each_laws_assumptions() -> None:
    """Chinchilla: unquantized training, no PTQ. Precision: one PTQ method (GPTQ by default)."""
    df = pd.read_parquet(Path(__file__).resolve().parents[1] / "examples" / "precision-cpu.parquet")
    chin = fit_data(df, "chinchilla")
    # 232 cooldown-branch results (107 fp32, 125 QAT), each with RTN and GPTQ at int3 and int4
    assert chin.not_used["quantized-training rows"] == 125 and chin.y.size == 107
    assert chin.not_used["post-training-quantized rows"] == 4 * 232
    prec = fit_data(df, "precision")
    assert prec.not_used["PTQ rows of methods other than gptq"] == 2 * 232 and prec.y.size == 1160 - 2 * 232
    assert fit_data(df, "precision", "rtn").not_used["PTQ rows of methods other than rtn"] == 2 * 232
    with pytest.raises(UserError, match="awq"):
        fit_data(df, "precision", "awq")
