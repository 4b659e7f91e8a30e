"""Issue 12's honest warnings, each triggered: fit diagnostics printed, stored and repeated by predict and
recommend; predict's extrapolation warnings; recommend's unbounded interval ends and its refusal to rank
precisions with a law that has no precision term."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import fits
from cli.main import app
from fits.laws import published

runner = CliRunner()
LAW, TRUTH = published("chinchilla-hoffmann2022")


@pytest.fixture(scope="module")
def bound_fit(tmp_path_factory) -> tuple[str, str]:
    """A fit whose E ends on its lower bound (the runs follow L = A/N^α + B/D^β with no irreducible loss):
    (fit output, fit.json path)."""
    tmp = tmp_path_factory.mktemp("bound")
    N, ratio = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(5, 80, 5))
    N, D = N.ravel(), (N * ratio).ravel()
    loss = LAW.predict({**TRUTH, "E": 1e-9}, {"N": N, "D": D})
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(tmp / "runs.csv", index=False)
    out = tmp / "fit.json"
    res = runner.invoke(
        app, ["fit", str(tmp / "runs.csv"), "--bootstrap", "20", "--holdout", "0", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    return res.output, str(out)


def test_fit_prints_and_stores_every_diagnostic(bound_fit) -> None:
    output, path = bound_fit
    stored = json.loads(open(path).read())["diagnostics"]
    assert any(d["kind"] == "bound" and d["params"] == ["E"] for d in stored)
    for d in stored:
        assert f"warning: {d['message']}" in output
    assert "ON BOUND" in output


def test_predict_and_recommend_repeat_the_fit_diagnostics(bound_fit) -> None:
    _, path = bound_fit
    messages = [d["message"] for d in json.loads(open(path).read())["diagnostics"]]
    pred = runner.invoke(app, ["predict", "--fit", path, "--n", "1e8", "--tokens", "2e9", "--json"])
    assert pred.exit_code == 0, pred.output
    assert [w for w in json.loads(pred.output)["warnings"] if w.startswith("fit: ")] == [
        f"fit: {m}" for m in messages
    ]
    rec = runner.invoke(app, ["recommend", "--flops", "1e19", "--fit", path])
    assert rec.exit_code == 0, rec.output
    for m in messages:
        assert f"fit: {m[:40]}" in " ".join(rec.output.split())


def test_predict_warns_when_it_extrapolates_beyond_the_fitted_n_d_and_compute(bound_fit) -> None:
    _, path = bound_fit
    inside = fits.predict(path, {"N": [1e8], "D": [2e9]})
    assert not [w for w in inside.warnings if w.startswith("extrapolating")]
    out = fits.predict(path, {"N": [1e10, 1e6], "D": [1e12, 1e7]})
    text = " | ".join(out.warnings)
    for key in ("N", "D", "C"):
        assert f"have {key} above the fitted range" in text and f"have {key} below the fitted range" in text
    cli = runner.invoke(app, ["predict", "--fit", path, "--n", "1e10", "--tokens", "1e12"])
    assert "warning: extrapolating: 1 of 1 point(s) have C above the fitted range" in cli.output


def test_recommend_reports_interval_ends_on_the_search_limits_as_unbounded(tmp_path) -> None:
    rng = np.random.default_rng(0)
    draws = {k: np.full(200, v) * np.exp(0.02 * rng.standard_normal(200)) for k, v in TRUTH.items()}
    draws["alpha"][:20] = 0.0  # 10% of the refits see no gain from parameters: their optimum is N = 1
    res = fits.FitResult(LAW, TRUTH, free=list(TRUTH), draws=draws, options={"bootstrap": 200})
    rec = fits.recommend(1e21, fit=res)
    assert rec.n_interval[0] is None and rec.n_interval[1] > rec.best.N
    assert rec.d_interval[1] is None and rec.d_interval[0] < rec.best.D
    assert any("search limit" in w for w in rec.warnings)
    assert rec.to_dict()["N_interval_95"][0] is None
    path = tmp_path / "fit.json"
    res.to_json(path)
    text = " ".join(runner.invoke(app, ["recommend", "--flops", "1e21", "--fit", str(path)]).output.split())
    assert "optimal N ≤ " in text and "(lower end unbounded)" in text and "optimal N 1–" not in text
    # a constraint the user set is a real end, not a search limit: the interval ends on it as a number
    capped = fits.recommend(1e21, fit=res, max_tokens=rec.best.D * 1.5)
    assert capped.n_interval[0] is not None and capped.n_interval[0] == pytest.approx(
        1e21 / 6 / (rec.best.D * 1.5)
    )


def test_recommend_never_ranks_precisions_without_a_precision_term(bound_fit) -> None:
    _, path = bound_fit
    rec = fits.recommend(1e19, fit=path, precisions=["int4", "int8", "bf16"])
    assert [o.precision for o in rec.options] == ["bf16"]
    assert any("no precision term: recommending bf16 only" in w and "cannot rank" in w for w in rec.warnings)
    default = fits.recommend(1e19, fit=path)
    assert [o.precision for o in default.options] == ["bf16"]
    kumar = fits.recommend(1e21, law="kumar2024", precisions=["int4", "int8", "bf16"])
    assert len(kumar.options) == 3  # a precision law does rank them


def test_an_interval_the_calibration_cannot_bound_is_printed_as_unbounded(tmp_path) -> None:
    """Nine runs leave a 95% conformal quantile too few residuals: predict and recommend say "unbounded",
    never "0.0000–inf" (the multiplier is infinite, so ŷ·exp(±h) would print as 0 and inf)."""
    rng = np.random.default_rng(1)
    N, ratio = np.meshgrid(np.geomspace(1e7, 1e9, 3), np.geomspace(5, 80, 3))
    N, D = N.ravel(), (N * ratio).ravel()
    loss = LAW.predict(TRUTH, {"N": N, "D": D}) * np.exp(0.01 * rng.standard_normal(N.size))
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(tmp_path / "runs.csv", index=False)
    out = tmp_path / "fit.json"
    args = ["fit", str(tmp_path / "runs.csv"), "--law", "chinchilla", "--bootstrap", "20", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    table = fits.predict(str(out), {"N": [3e9], "D": [6e10]}).table
    assert not np.isfinite(table.upper).all()  # the library keeps the numbers: inf
    pred = runner.invoke(app, ["predict", "--fit", str(out), "--n", "3e9", "--tokens", "6e10"])
    assert pred.exit_code == 0, pred.output
    assert "95% interval: unbounded" in pred.output and "inf" not in pred.output.split("warning:")[0]
    rec = " ".join(runner.invoke(app, ["recommend", "--flops", "1e21", "--fit", str(out)]).output.split())
    assert "95% interval unbounded" in rec and "0.0000–inf" not in rec
