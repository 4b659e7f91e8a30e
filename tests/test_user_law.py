"""A law written in user code gets the whole pipeline: fit, bootstrap, holdout, predict, recommend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fits
from fits.law import Law, Param, broadcast, column
from scaling.errors import UserError

TRUTH = {"Nc": 8.8e13, "Dc": 5.4e13, "aN": 0.076, "aD": 0.095}


def _kaplan_prepare(X):
    cols = broadcast({"N": column(X, "N"), "D": column(X, "D")})
    return {"logN": np.log(cols["N"]), "logD": np.log(cols["D"])}


def _kaplan_log_loss(theta, c):
    """Kaplan et al. 2020, Eq. 1.5: L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D, in logs:
    log L = α_D · log(e^{(α_N/α_D)(log N_c − log N)} + e^{log D_c − log D})."""
    t1 = theta["aN"] / theta["aD"] * (theta["Nc"] - c["logN"])
    t2 = theta["Dc"] - c["logD"] + 0 * t1
    return theta["aD"] * np.logaddexp(t1, t2)


def kaplan_law() -> Law:
    return Law(
        name="kaplan-user",
        params=(
            Param("Nc", 1e8, 1e18, (25.0, 30.0, 35.0), log=True),
            Param("Dc", 1e8, 1e18, (25.0, 30.0, 35.0), log=True),
            Param("aN", 0.01, 1.0, (0.05, 0.1, 0.3)),
            Param("aD", 0.01, 1.0, (0.05, 0.1, 0.3)),
        ),
        inputs=("N", "D"),
        target="loss",
        log_formula=_kaplan_log_loss,
        prepare_columns=_kaplan_prepare,
        citation="Kaplan et al. 2020, Eq. 1.5",
        equation="L = [(Nc/N)^(aN/aD) + Dc/D]^aD",
    )


def _runs(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 1e9, 6), 5)
    D = np.tile(np.geomspace(1e9, 1e11, 5), 6)
    law = kaplan_law()
    loss = law.predict(TRUTH, {"N": N, "D": D}) * np.exp(0.003 * rng.standard_normal(N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": loss, "task": "lm", "status": "ok"})


def test_user_law_gets_the_full_pipeline(tmp_path) -> None:
    law = kaplan_law()
    res = fits.fit(_runs(), law, n_boot=60, seed=1, holdout=0.2, n_refine=8)
    assert isinstance(res, fits.FitResult) and res.law is law
    assert res.metrics["converged"] and res.n_boot >= 50
    assert res.metrics["holdout"]["n"] >= 5 and res.metrics["holdout"]["mean_rel_error"] < 0.02
    for name in ("aN", "aD"):
        assert res.params[name] == pytest.approx(TRUTH[name], rel=0.15)
    ci = res.conf_int()
    assert (ci["lower"] <= res.params).all() and (res.params <= ci["upper"]).all()
    pred = fits.predict(res, {"N": [2e9], "D": [3e11]})
    row = pred.table.iloc[0]
    assert row["lower"] < row["prediction"] < row["upper"]
    assert any("extrapolating" in w and "N above" in w for w in pred.warnings)
    rec = fits.recommend(1e21, fit=res)
    assert rec.best.precision == "bf16" and rec.loss_interval is not None
    assert rec.best.N * rec.best.D * 6 == pytest.approx(1e21, rel=1e-6)
    # a user law is not in the registry: its fit.json cannot be rebuilt by name, and says so
    with pytest.raises(UserError, match="unknown law 'kaplan-user'"):
        fits.FitResult.from_dict(res.to_dict())


def test_registered_user_law_round_trips_through_fit_json(tmp_path) -> None:
    fits.register_law("kaplan-user", lambda: kaplan_law())
    try:
        res = fits.fit(_runs(1), "kaplan-user", n_boot=20, holdout=None, n_refine=4)
        res.to_json(tmp_path / "fit.json")
        back = fits.FitResult.from_json(tmp_path / "fit.json")
        np.testing.assert_allclose(
            back.predict({"N": [1e9], "D": [1e10]}), res.predict({"N": [1e9], "D": [1e10]})
        )
    finally:
        from fits.laws import _BUILDERS

        _BUILDERS.pop("kaplan-user", None)
