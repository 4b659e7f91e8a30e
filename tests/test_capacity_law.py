"""The capacity law: the published Allen-Zhu & Li 2024 set, the exposures input, predict and recommend."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import fits
from cli.main import app
from fits.capacity import capacity_law
from fits.knowledge import plan_knowledge
from scaling.errors import UserError

runner = CliRunner()


def _cap(**cols):
    n = max(len(v) for v in cols.values())
    points = {"params_paper": [7e9] * n, **cols}
    return fits.predict("capacity-allenzhu2024", points).table["prediction"].to_numpy()


def test_published_figures() -> None:
    at = _cap(exposures=[1000, 100, 300, 10_000, 10])
    assert at[0] == pytest.approx(1.4e10) and at[1] == pytest.approx(7e9)  # 2 and 1 bits/param
    assert 7e9 < at[2] < 1.4e10 and at[3] == pytest.approx(1.4e10) and at[4] == pytest.approx(3.5e9)
    ptq = _cap(exposures=[1000] * 3, P_post=[8, 4, math.nan])
    np.testing.assert_allclose(ptq / 7e9, [2.0, 0.7, 2.0])
    junk = _cap(exposures=[100, 300, 600, 1000], junk=[7] * 4) / _cap(exposures=[100, 300, 600, 1000])
    np.testing.assert_allclose(1 / junk, [20, 3, 1.5, 1.3], rtol=1e-9)
    gated = _cap(exposures=[100, 1000], mlp=["swiglu"] * 2) / _cap(exposures=[100, 1000])
    np.testing.assert_allclose(1 / gated, [1.3, 1.0])
    moe = _cap(exposures=[100, 1000], moe=[1, 1]) / _cap(exposures=[100, 1000])
    np.testing.assert_allclose(1 / moe, [1.5, 1.3])
    for bad in ({"P_post": [3]}, {"junk": [3]}, {"junk": [7], "domain_token": [1]}):
        with pytest.raises(UserError):
            _cap(exposures=[100], **bad)


def test_cli_published_queries() -> None:
    res = runner.invoke(
        app, ["predict", "--law", "capacity-allenzhu2024", "--params", "7e9", "--exposures", "1000"]
    )
    assert res.exit_code == 0 and "predicted bits: 1.4e+10 bits" in res.output
    assert "precision" not in res.output  # a capacity law has no training-precision input to report
    res = runner.invoke(
        app,
        ["recommend", "--knowledge-bits", "1.4e10", "--exposures", "100", "--corpus-tokens", "2e9", "--json"],
    )
    plan = json.loads(res.output)
    assert plan["params"] == pytest.approx(1.4e10) and plan["tokens"] == pytest.approx(2e11)
    res = runner.invoke(app, ["recommend", "--knowledge-bits", "1e10"])
    assert res.exit_code == 2 and "--exposures" in res.output
    res = runner.invoke(app, ["recommend", "--knowledge-bits", "-1", "--exposures", "100"])
    assert res.exit_code == 2 and res.output.startswith("error: --knowledge-bits must be a positive")


def _runs(seed: int, R1000: float = 1.8, kappa: float = 0.3) -> pd.DataFrame:
    """Synthetic bios rows: 4 sizes × 3 exposure levels, under and over capacity, 3% noise."""
    rng = np.random.default_rng(seed)
    P = np.tile(np.geomspace(1e5, 1e6, 4), 6)
    E = np.repeat([100.0, 300.0, 1000.0], 8)
    avail = np.tile(np.repeat([3e5, 1e7], 4), 3)
    true = np.minimum(R1000 * (E / 1000) ** kappa * P, avail)
    bits = true * np.exp(0.03 * rng.standard_normal(P.size))
    return pd.DataFrame(
        {"task": "bios", "params_paper": P, "exposures": E, "bits_available": avail, "bits": bits}
    )


def test_fitted_law_has_an_exposures_input_with_intervals(tmp_path) -> None:
    res = fits.fit(_runs(0), "capacity", n_boot=100, holdout=None)
    assert res.law.responds_to("exposures") and set(res.params.index) == {"R", "kappa"}
    assert res.params["R"] == pytest.approx(1.8, rel=0.05) and res.params["kappa"] == pytest.approx(
        0.3, abs=0.05
    )
    pred = fits.predict(res, {"params_paper": [1e6, 1e6], "exposures": [100, 1000]})
    t = pred.table
    assert (t["lower"] < t["prediction"]).all() and (t["prediction"] < t["upper"]).all()
    assert t["prediction"].iloc[1] > t["prediction"].iloc[0]
    res.to_json(tmp_path / "cap.json")
    plan = plan_knowledge(1e6, 300, fit=str(tmp_path / "cap.json"))
    lo, hi = plan.params_interval
    assert lo < plan.params < hi and plan.n_boot == 100
    cli = runner.invoke(
        app,
        ["recommend", "--knowledge-bits", "1e6", "--exposures", "300", "--fit", str(tmp_path / "cap.json")],
    )
    assert cli.exit_code == 0 and "95% interval" in cli.output
    cli = runner.invoke(
        app, ["predict", "--fit", str(tmp_path / "cap.json"), "--params", "1e6", "--exposures", "1000"]
    )
    assert cli.exit_code == 0 and "95% interval" in cli.output


def test_coverage_of_the_fitted_exposure_law() -> None:
    """Over seeds, the 95% bootstrap intervals of R and kappa contain the truth most of the time."""
    hits = {"R": 0, "kappa": 0}
    for seed in range(12):
        ci = fits.fit(_runs(100 + seed), "capacity", n_boot=60, holdout=None, n_refine=4).conf_int()
        hits["R"] += ci.loc["R", "lower"] <= 1.8 <= ci.loc["R", "upper"]
        hits["kappa"] += ci.loc["kappa", "lower"] <= 0.3 <= ci.loc["kappa", "upper"]
    assert hits["R"] >= 9 and hits["kappa"] >= 9, hits


def test_constant_exposures_keep_one_r_per_group() -> None:
    df = _runs(1)
    df = df[df["exposures"] == 100].assign(precision=np.where(np.arange(8) % 2, "bf16", "int8"))
    res = fits.fit(df, "capacity", n_boot=0, holdout=None)
    assert not res.law.responds_to("exposures") and len(res.params) == 2
    assert all("exposures=100.0" in g for g in res.law.spec["groups"])
    assert capacity_law(["a"]).param_names == ("R",)


def test_many_groups_fit_from_their_own_rows() -> None:
    """Eight groups (the Cartesian start grid would be 13^8 starts): each R and the shared kappa recovered,
    from a few data-driven starts."""
    truth = np.geomspace(0.05, 2.0, 8)
    frames = [_runs(200 + g, R1000=r).assign(junk=float(g)) for g, r in enumerate(truth)]
    res = fits.fit(pd.concat(frames, ignore_index=True), "capacity", n_boot=20, holdout=None)
    assert res.law.responds_to("exposures") and len(res.params) == 9
    assert res.metrics["n_starts"] <= 100
    got = [res.params[f"R[{g}]"] for g in range(8)]  # labels sort as junk=0.0 ... junk=7.0
    np.testing.assert_allclose(got, truth, rtol=0.08)
    assert res.params["kappa"] == pytest.approx(0.3, abs=0.05)
