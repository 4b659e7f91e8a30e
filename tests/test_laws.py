"""Law formulas against hand-written references, published constants, and input handling."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from fits.laws import derived_quantities, get_law, law_from_spec, list_laws, published
from scaling.errors import UserError


def test_chinchilla_matches_direct_formula() -> None:
    law, p = published("chinchilla-epoch2024")
    N = np.array([1e7, 1e8, 1e9, 7e10])
    D = np.array([1e9, 3e9, 2e10, 1.4e12])
    expect = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    np.testing.assert_allclose(law.predict(p, {"N": N, "D": D}), expect, rtol=1e-12)


def test_hoffmann_constants_and_allocation() -> None:
    law, p = published("chinchilla-hoffmann2022")
    assert law.name == "chinchilla" and p["A"] == 406.4 and p["beta"] == 0.28
    d = derived_quantities(p, budget=5.76e23)  # Chinchilla's own budget
    assert d["a"] == pytest.approx(0.28 / 0.62) and d["b"] == pytest.approx(0.34 / 0.62)
    assert 6 * d["N_opt"] * d["D_opt"] == pytest.approx(5.76e23)
    # closed form: N_opt minimises the law along C = 6 N D
    n = np.geomspace(d["N_opt"] / 3, d["N_opt"] * 3, 2001)
    loss = law.predict(p, {"N": n, "D": 5.76e23 / (6 * n)})
    assert n[np.argmin(loss)] == pytest.approx(d["N_opt"], rel=2e-3)


def _kumar_reference(p: dict, N, D, P: dict, P_post):
    neff = N
    for k in ("w", "a", "kv"):
        neff = neff * (1 - math.exp(-(P[k] / p[f"gamma_{k}"] - p[f"n_{k}"])))
    loss = p["A"] * neff ** -p["alpha"] + p["B"] * D ** -p["beta"] + p["E"]
    if P_post is not None:
        loss += p["C_T"] * math.exp(-P_post / p["gamma_post"]) * D ** p["gamma_D"] / neff ** p["gamma_N"]
    return loss


@pytest.mark.parametrize("bits,post", [(16, None), (8, None), (4, None), (8, 4.0), (16, 3.0), (6, 4.0)])
def test_kumar2024_matches_reference(bits: int, post: float | None) -> None:
    law, p = published("kumar2024")
    N, D = 3e8, 2e10
    X = {"N": N, "D": D, "P_w": bits, "P_a": bits, "P_kv": bits, "P_post": np.nan if post is None else post}
    got = law.predict(p, X)[0]
    ref = _kumar_reference(p, N, D, {"w": bits, "a": bits, "kv": bits}, post)  # C_x = inf: factors are 1
    assert got == pytest.approx(ref, rel=1e-12)


def test_precision_defaults_and_ptq_behaviour() -> None:
    law, p = published("kumar2024")
    base = law.predict(p, {"N": 1e9, "D": 2e10})[0]  # missing P_* -> 16 bits, no PTQ
    assert base == pytest.approx(law.predict(p, {"N": 1e9, "D": 2e10, "P_w": 16, "P_a": 16, "P_kv": 16})[0])
    # lower training precision hurts; PTQ hurts more for models trained on more tokens (overtraining)
    assert law.predict(p, {"N": 1e9, "D": 2e10, "P_w": 4})[0] > base
    D = np.array([1e10, 1e11, 1e12])
    delta = law.predict(p, {"N": 1e9, "D": D, "P_post": 4}) - law.predict(p, {"N": 1e9, "D": D})
    assert np.all(delta > 0) and np.all(np.diff(delta) > 0)
    # a kind trained at or below the serving precision gets no robustness factor -> no δ_PTQ at all
    p_finite = dict(p, C_w=2.0, C_a=2.0, C_kv=2.0)
    X = {"N": 1e9, "D": 2e10, "P_w": 4, "P_a": 4, "P_kv": 4}
    assert law.predict(p_finite, dict(X, P_post=4))[0] == pytest.approx(law.predict(p_finite, X)[0])


def test_capacity_is_min_of_capacity_and_available_bits() -> None:
    law = get_law("capacity", groups=["100x", "1000x"])
    X = {"params_paper": [1e6, 1e6, 1e8], "bits_available": [1e7, 1e7, 1e7], "group": [0, 1, 0]}
    np.testing.assert_allclose(law.predict({"R[0]": 2.0, "R[1]": 1.0}, X), [2e6, 1e6, 1e7])
    assert law_from_spec(law.spec).param_names == ("R[0]", "R[1]")


def test_bad_inputs_raise_user_error() -> None:
    law, p = published("chinchilla-epoch2024")
    with pytest.raises(UserError, match="column"):
        law.predict(p, {"N": [1e9]})
    with pytest.raises(UserError, match="unknown law"):
        get_law("no-such-law")
    with pytest.raises(UserError, match="needs parameter"):
        law.predict({"A": 1.0}, {"N": 1e9, "D": 1e9})
    assert {"chinchilla", "precision", "capacity", "kumar2024"} <= set(list_laws())


def test_start_grid_is_epochs_4500() -> None:
    grid = get_law("chinchilla").start_grid()
    assert grid.shape == (4500, 5)


def test_laws_import_without_torch() -> None:
    code = "import sys, fits.laws; assert 'torch' not in sys.modules and 'scipy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["chinchilla-epoch2024", "kumar2024"])
def test_analytic_jacobian_matches_central_differences(name: str) -> None:
    law, p = published(name)
    p = {k: (2.0 if math.isinf(v) else v) for k, v in p.items()}  # finite C_x so their partials are live
    rng = np.random.default_rng(0)
    X = {"N": rng.uniform(1e6, 1e9, 40), "D": rng.uniform(1e8, 1e11, 40)}
    if law.name == "precision":
        X.update(
            P_w=rng.choice([3.0, 4.0, 8.0, 16.0], 40),
            P_a=rng.choice([4.0, 16.0], 40),
            P_kv=rng.choice([3.0, 16.0], 40),
            P_post=rng.choice([np.nan, 2.0, 4.0], 40),
        )
    cols = law.prepare(X)
    theta = law.to_fit_space(p)
    value, parts = law.log_jacobian(theta, cols)
    np.testing.assert_allclose(value, law.log_predict_theta(theta, cols), rtol=1e-14)
    np.testing.assert_allclose(np.exp(value), law.predict(p, X), rtol=1e-12)
    for name_ in law.param_names:
        h = 1e-6 * max(1.0, abs(theta[name_]))
        up = law.log_predict_theta({**theta, name_: theta[name_] + h}, cols)
        down = law.log_predict_theta({**theta, name_: theta[name_] - h}, cols)
        fd = (up - down) / (2 * h)
        np.testing.assert_allclose(np.broadcast_to(parts[name_], fd.shape), fd, atol=1e-7, err_msg=name_)
