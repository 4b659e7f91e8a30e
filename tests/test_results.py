"""`FitResult` as a results object: statsmodels-like attributes, diagnostics, summary, fit.json versions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import fits
from fits.diagnostics import MAX_CORR
from fits.laws import published
from scaling.errors import UserError


def _runs(seed: int = 0, noise: float = 0.005) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    law, p = published("chinchilla-epoch2024")
    N = np.repeat(np.geomspace(3e7, 3e9, 6), 6)
    D = np.tile(np.geomspace(1e9, 3e11, 6), 6)
    loss = law.predict(p, {"N": N, "D": D}) * np.exp(noise * rng.standard_normal(N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


@pytest.fixture(scope="module")
def result() -> fits.FitResult:
    return fits.fit(_runs(), "chinchilla", n_boot=80, seed=0, holdout=0.2, n_refine=8)


def test_statsmodels_like_attributes(result) -> None:
    assert result.nobs == 36 and result.df_resid == 36 - 5
    assert isinstance(result.params, pd.Series) and isinstance(result.bse, pd.Series)
    assert list(result.params.index) == ["A", "B", "E", "alpha", "beta"]
    resid = result.resid
    assert resid.shape == (36,) and abs(resid.std() - 0.005) < 0.003  # the noise level we put in
    np.testing.assert_allclose(np.log(result.fittedvalues) + resid, np.log(_runs()["loss"]), rtol=1e-12)
    assert result.r2_log == pytest.approx(result.metrics["in_sample"]["r2_log"])
    assert result.aic < result.bic  # k·log(36) > 2k
    cov, corr = result.cov_params(), result.corr_params()
    assert cov.shape == (5, 5) and np.allclose(np.diag(corr), 1.0)
    assert cov.loc["alpha", "alpha"] == pytest.approx(result.bse["alpha"] ** 2, rel=0.05)
    iv = result.predict_interval(pd.DataFrame({"N": [1e9, 1e10], "D": [2e10, 2e11]}, index=["a", "b"]))
    assert list(iv.index) == ["a", "b"] and (iv["lower"] < iv["upper"]).all()
    assert len(repr(result)) < 120 and repr(result).startswith("<FitResult chinchilla: nobs=36")


def test_summary_text_and_html(result) -> None:
    s = result.summary()
    assert isinstance(s, fits.Summary) and "alpha" in s.as_text() and str(s) == s.as_text()
    html = s._repr_html_()
    assert html.startswith("<div") and "<table>" in html and "<td>alpha</td>" in html


def test_diagnostics_flag_bounds_correlation_and_low_r2() -> None:
    # no data term to see (D varies by 20% only): B, beta unidentified, B pushed to a bound
    rng = np.random.default_rng(3)
    N = np.repeat(np.geomspace(1e6, 1e8, 8), 3)
    D = np.tile([1e9, 1.1e9, 1.2e9], 8)
    loss = 5.0 * N**-0.3 * np.exp(0.05 * rng.standard_normal(N.size))  # no irreducible term at all
    res = fits.fit(pd.DataFrame({"N": N, "D": D, "loss": loss}), "chinchilla", n_boot=40, holdout=None)
    kinds = {d["kind"] for d in res.diagnostics}
    assert {"bound", "unidentified", "correlated"} <= kinds
    bound = next(d for d in res.diagnostics if d["kind"] == "bound")["params"][0]
    text = res.summary().as_text()
    assert "ON BOUND" in text and f"warning: {bound} = " in text and "is on its" in text
    flat = fits.fit(
        pd.DataFrame({"N": N, "D": D, "loss": 3.0 * np.exp(0.05 * rng.standard_normal(N.size))}),
        "chinchilla",
        n_boot=0,
        holdout=None,
    )
    assert any(d["kind"] == "low_r2" for d in flat.diagnostics)
    # the classic A–alpha trade-off is reported when the draws show it
    res2 = fits.fit(_runs(1, noise=0.01), "chinchilla", n_boot=60, holdout=None, n_refine=4)
    corr = res2.corr_params()
    strong = [d for d in res2.diagnostics if d["kind"] == "correlated"]
    assert all(abs(corr.loc[a, b]) > MAX_CORR for a, b in (d["params"] for d in strong))


def test_remove_data_and_fit_json_versions(result, tmp_path) -> None:
    path = tmp_path / "fit.json"
    result.to_json(path)
    d = json.loads(path.read_text())
    assert d["format"] == 2 and len(d["rows"]["y"]) == 36 and "diagnostics" in d
    small = fits.FitResult.from_json(path).remove_data()
    small.to_json(tmp_path / "small.json")
    assert (tmp_path / "small.json").stat().st_size < path.stat().st_size
    with pytest.raises(UserError, match="holds no data"):
        _ = small.resid
    # a format-1 file (no rows, no diagnostics) loads; diagnostics are recomputed from its draws
    old = {k: v for k, v in d.items() if k not in ("rows", "diagnostics")}
    old["format"] = 1
    back = fits.FitResult.from_dict(old)
    assert back.rows is None and back.diagnostics == result.diagnostics
    newer = dict(d, format=99)
    with pytest.raises(UserError, match="newer than this scalefit reads"):
        fits.FitResult.from_dict(newer)


def test_public_api_names() -> None:
    import scaling
    import sweeps

    for name in ("read_table", "fit", "FitResult", "get_law", "published", "predict", "recommend"):
        assert name in fits.__all__ and callable(getattr(fits, name))
    for name in ("load_spec", "plan", "run_sweep"):
        assert name in sweeps.__all__ and callable(getattr(sweeps, name))
    for name in ("PrecisionSpec", "TrainConfig", "train"):
        assert name in scaling.__all__ and getattr(scaling, name) is not None
    for module in (fits, sweeps, scaling):
        for name in module.__all__:
            assert getattr(module, name).__doc__, f"{module.__name__}.{name} has no docstring"
