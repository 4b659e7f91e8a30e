"""Percentile intervals over bootstrap draws: the selection-based quantiles and the float32 block path
against float64 `np.quantile` references; the prediction inputs as plain columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fits
from fits.bootstrap import order_statistics, prediction_percentiles
from fits.laws import published
from scaling.errors import UserError

PROBS = [0.0, 0.001, 0.025, 0.1, 0.5, 0.9, 0.975, 0.999, 1.0]


@pytest.mark.parametrize("draws", [1, 2, 7, 40, 1000])
def test_order_statistics_equal_numpy_quantiles(draws: int) -> None:
    rng = np.random.default_rng(draws)
    block = rng.standard_normal((300, draws)) * rng.uniform(0.1, 10, (300, 1))
    got = order_statistics(block, PROBS)
    want = np.quantile(block, PROBS, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # an increasing transform applied to the selected values only gives the quantiles of the transform
    np.testing.assert_allclose(
        order_statistics(block, PROBS, np.exp), np.quantile(np.exp(block), PROBS, axis=1), rtol=1e-12
    )


def _jittered(law, params, n_draws: int, scale: float, seed: int) -> dict[str, np.ndarray]:
    """Fit-space draws (S, 1) around `params` (a stand-in for a bootstrap)."""
    rng = np.random.default_rng(seed)
    theta = law.to_fit_space(params)
    out = {}
    for k, v in theta.items():
        jitter = scale * abs(v) * rng.standard_normal(n_draws) if np.isfinite(v) else 0.0
        out[k] = (v + jitter + np.zeros(n_draws))[:, None]
    return out


def _reference(law, theta, cols, probs) -> np.ndarray:
    y = np.exp(law.log_predict_theta(theta, cols))
    return np.nanquantile(y, probs, axis=0)


@pytest.mark.parametrize("name", ["chinchilla-epoch2024", "kumar2024"])
def test_prediction_percentiles_match_float64_reference(name: str) -> None:
    law, params = published(name)
    rng = np.random.default_rng(0)
    n = 3000  # several blocks, two threads
    X = {
        "N": np.exp(rng.uniform(np.log(1e6), np.log(1e12), n)),
        "D": np.exp(rng.uniform(np.log(1e8), np.log(1e13), n)),
    }
    if law.responds_to("P_w"):
        X |= {f"P_{k}": rng.integers(3, 17, n).astype(float) for k in ("w", "a", "kv")}
        X["P_post"] = np.where(rng.uniform(size=n) < 0.5, np.nan, rng.integers(3, 9, n))
    theta = _jittered(law, params, 500, 0.01, 1)
    cols = law.prepare(X)
    probs = [0.025, 0.5, 0.975]
    got = prediction_percentiles(law.log_predict_theta, theta, cols, probs)
    want = _reference(law, theta, cols, probs)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert not np.array_equal(got, want)  # the float32 path ran (float64 would be identical)


def test_failed_draws_are_ignored_as_before() -> None:
    law, params = published("chinchilla-epoch2024")
    theta = _jittered(law, params, 200, 0.01, 2)
    theta["A"][[3, 50], 0] = np.nan  # two failed refits
    cols = law.prepare({"N": np.geomspace(1e7, 1e11, 1500), "D": np.geomspace(1e9, 1e13, 1500)})
    got = prediction_percentiles(law.log_predict_theta, theta, cols, [0.05, 0.95])
    np.testing.assert_allclose(got, _reference(law, theta, cols, [0.05, 0.95]), rtol=1e-12)


def test_draws_that_agree_beyond_float32_resolution_are_done_in_float64() -> None:
    law, params = published("chinchilla-epoch2024")
    theta = _jittered(law, params, 300, 1e-13, 3)  # a noiseless fit: every refit lands on the estimate
    cols = law.prepare({"N": np.geomspace(1e7, 1e11, 1200), "D": np.geomspace(1e9, 1e13, 1200)})
    got = prediction_percentiles(law.log_predict_theta, theta, cols, [0.025, 0.975])
    np.testing.assert_allclose(got, _reference(law, theta, cols, [0.025, 0.975]), rtol=1e-13)


def test_prediction_inputs_are_columns_and_the_table_keeps_the_index() -> None:
    law, params = published("chinchilla-epoch2024")
    rows = pd.DataFrame({"N": [1e9, 2e9], "D": [2e10, 4e10], "name": ["a", "b"]}, index=[7, 9])
    pred = fits.predict("chinchilla-epoch2024", rows)
    assert list(pred.table.index) == [7, 9]
    assert list(pred.table["name"]) == ["a", "b"]
    np.testing.assert_allclose(pred.values, law.predict(params, rows), rtol=1e-14)
    # a scalar column repeats; columns of different lengths are refused
    pred = fits.predict("chinchilla-epoch2024", {"N": [1e9, 2e9, 4e9], "D": 2e10})
    assert pred.table.shape[0] == 3
    with pytest.raises(UserError, match="different lengths"):
        fits.predict("chinchilla-epoch2024", {"N": [1e9, 2e9], "D": [1e10, 2e10, 3e10]})
    with pytest.raises(UserError, match="no points"):
        fits.predict("chinchilla-epoch2024", {"N": [], "D": []})
