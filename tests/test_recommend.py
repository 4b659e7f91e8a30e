"""`recommend`: the optimiser against brute force, the paper's headlines, constraints and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from fits.candidates import candidate_specs
from fits.hardware import get_profile
from fits.laws import derived_quantities, get_law, published
from fits.optimize import minimise_log_n
from fits.recommendation import optimise as recommend
from scaling.errors import UserError

KINDS = ("w", "a", "kv")


def brute_force(law, params, flops, specs, profile="bits", serve_bits=None, n_max=math.inf, d_max=math.inf):
    """Exhaustive reference: every spec × 40,001 values of N on [1, K] (log grid) plus the constraint
    edges, D = K / N."""
    hw = get_profile(profile)
    best = (None, math.nan, math.inf)
    for spec in specs:
        K = flops * hw.throughput(spec) / 6.0
        N = np.logspace(0.0, math.log10(K), 40001)
        N = np.append(N, [min(n_max, K), max(K / d_max, 1.0)])  # the constraint edges are candidates too
        N = N[(N <= n_max) & (K / N <= d_max)]
        if not len(N):
            continue
        X = {"N": N, "D": K / N, **{f"P_{k}": np.full(len(N), spec.bits(k)) for k in KINDS}}
        X["P_post"] = np.full(len(N), np.nan if serve_bits is None else serve_bits)
        loss = law.predict(params, X)
        loss = np.where(np.isfinite(loss), loss, np.inf)
        j = int(np.argmin(loss))
        if loss[j] < best[2]:
            best = (spec, float(N[j]), float(loss[j]))
    return best


def random_precision_params(rng: np.random.Generator) -> dict[str, float]:
    p = {
        "A": 10 ** rng.uniform(2, 5),
        "B": 10 ** rng.uniform(2.5, 5),
        "E": rng.uniform(1.0, 3.0),
        "alpha": rng.uniform(0.2, 0.6),
        "beta": rng.uniform(0.2, 0.6),
        "C_T": 10 ** rng.uniform(-2.5, -0.5),
        "gamma_D": rng.uniform(0.2, 0.7),
        "gamma_N": rng.uniform(0.2, 0.6),
        "gamma_post": rng.uniform(0.4, 1.5),
    }
    for k in KINDS:
        p[f"gamma_{k}"] = rng.uniform(0.7, 3.0)
        p[f"n_{k}"] = rng.uniform(0.0, 2.0)
        p[f"C_{k}"] = 10 ** rng.uniform(-0.5, 1.0)
    return p


def test_solver_brackets_the_global_minimum_of_a_two_well_function():
    # Two wells in x; the deeper one is narrow and away from the middle: a local solver from the centre
    # would miss it, the grid bracket must not.
    def f(x):
        return -np.exp(-((x - 2.0) ** 2)) - 1.5 * np.exp(-((x - 7.3) ** 2) / 0.05)

    x, v = minimise_log_n(f, np.array([0.0, 0.0, 5.0]), np.array([10.0, 5.0, 4.0]))
    assert x[0] == pytest.approx(7.3, abs=1e-6) and v[0] == pytest.approx(f(np.array(7.3)), abs=1e-9)
    assert x[1] == pytest.approx(2.0, abs=1e-6)
    assert np.isnan(x[2]) and v[2] == math.inf  # empty interval: infeasible


@pytest.mark.parametrize("seed", range(6))
def test_optimiser_matches_brute_force_on_random_precision_laws(seed):
    rng = np.random.default_rng(seed)
    law, params = get_law("precision"), random_precision_params(rng)
    flops = 10 ** rng.uniform(17, 25)
    profile = ["bits", "h100", "b200", "a100"][seed % 4]
    serve = [None, 4.0, None, 6.0][seed % 4]
    specs = candidate_specs()
    rec = recommend(law, params, flops, profile=profile, serve_bits=serve)
    spec, n_bf, loss_bf = brute_force(law, params, flops, specs, profile, serve)
    assert rec.best.loss <= loss_bf + 1e-12  # continuous optimum is never worse than the grid
    assert loss_bf - rec.best.loss < 1e-6 * loss_bf
    if rec.best.spec == spec:  # (ties between equal-cost formats may pick another name)
        assert abs(math.log(rec.best.N / n_bf)) < 0.02
    # Every option sits on the budget line and is its own spec's optimum.
    hw = get_profile(profile)
    for o in rec.options[:4]:
        assert float(hw.cost(o.N, o.D, o.spec)) == pytest.approx(flops, rel=1e-9)
        _, n_o, loss_o = brute_force(law, params, flops, [o.spec], profile, serve)
        assert o.loss <= loss_o + 1e-12 and abs(math.log(o.N / n_o)) < 0.02


@pytest.mark.parametrize("seed", range(3))
def test_optimiser_matches_brute_force_under_constraints(seed):
    rng = np.random.default_rng(100 + seed)
    law, params = get_law("precision"), random_precision_params(rng)
    flops = 10 ** rng.uniform(19, 23)
    free = recommend(law, params, flops)
    n_max, d_max = free.best.N * rng.uniform(0.2, 0.8), free.best.D * rng.uniform(0.5, 1.5)
    rec = recommend(law, params, flops, max_params=n_max, max_tokens=d_max)
    _, n_bf, loss_bf = brute_force(law, params, flops, candidate_specs(), n_max=n_max, d_max=d_max)
    assert rec.best.N <= n_max * (1 + 1e-9) and rec.best.D <= d_max * (1 + 1e-9)
    assert abs(math.log(rec.best.N / n_bf)) < 0.02
    assert rec.best.loss <= loss_bf + 1e-12 and loss_bf - rec.best.loss < 1e-6 * loss_bf
    assert rec.best.bound in ("max N", "max D")


@pytest.mark.parametrize("seed", range(4))
def test_chinchilla_closed_form_equals_numeric_and_brute_force(seed):
    rng = np.random.default_rng(200 + seed)
    law = get_law("chinchilla")
    params = {
        "A": 10 ** rng.uniform(2, 4),
        "B": 10 ** rng.uniform(2, 4),
        "E": rng.uniform(1, 2.5),
        "alpha": rng.uniform(0.2, 0.6),
        "beta": rng.uniform(0.2, 0.6),
    }
    flops = 10 ** rng.uniform(18, 25)
    closed = recommend(law, params, flops)
    numeric = recommend(law, params, flops, method="numeric")
    _, n_bf, loss_bf = brute_force(law, params, flops, candidate_specs(["bf16"]))
    assert closed.best.N == pytest.approx(numeric.best.N, rel=1e-6)
    assert closed.best.loss <= loss_bf + 1e-12 and abs(math.log(closed.best.N / n_bf)) < 0.02


def test_kumar2024_compute_optimal_precision_is_7_to_8_bits():
    law, params = published("kumar2024")
    for flops in (1e19, 1e20, 1e21, 1e22, 1e23):
        best = recommend(law, params, flops).best
        assert best.P_w in (7.0, 8.0) and best.P_a == best.P_w == best.P_kv, (flops, best.precision)
        per_kind = recommend(law, params, flops, per_kind=True).best
        assert 7.0 <= per_kind.P_w <= 8.0 and 7.0 <= per_kind.P_a <= 8.0, (flops, per_kind.precision)


def test_kumar2024_fixed_n_optimal_precision_grows_with_compute():
    law, params = published("kumar2024")
    bits = [recommend(law, params, c, n_params=7e9).best.P_w for c in (1e20, 1e21, 1e22, 1e23, 1e24)]
    assert bits == sorted(bits) and bits[-1] > bits[0] + 4, bits


def test_serving_at_low_precision_favours_fewer_tokens_per_parameter():
    """Kumar et al.: PTQ damage grows with D/N, so a model served at 4 bits should be trained less long."""
    law, params = published("kumar2024")
    plain = recommend(law, params, 1e21).best
    served = recommend(law, params, 1e21, serve_bits=4).best
    assert served.tokens_per_param < plain.tokens_per_param
    assert served.loss > plain.loss
    assert not recommend(law, params, 1e21, serve_bits=4).warnings  # shared precision: nothing to flag
    # Per kind, the law's product over kinds lets a 4-bit KV cache cancel δ_PTQ: flagged, not hidden.
    per_kind = recommend(law, params, 1e21, serve_bits=4, per_kind=True)
    assert per_kind.best.P_kv <= 4 < per_kind.best.P_w
    assert any("product over w, a, kv" in w for w in per_kind.warnings)


def test_chinchilla_epoch_tokens_per_param_and_exponent():
    law, params = published("chinchilla-epoch2024")
    budgets = np.logspace(19, 25, 7)
    recs = [recommend(law, params, c, method="numeric") for c in budgets]
    slope = np.polyfit(np.log(budgets), np.log([r.best.N for r in recs]), 1)[0]
    a = params["beta"] / (params["alpha"] + params["beta"])
    assert slope == pytest.approx(a, abs=1e-7)
    for c, r in zip(budgets, recs, strict=True):
        assert r.best.precision == "bf16"
        expected = derived_quantities(params, c)["tokens_per_param"]
        assert r.best.tokens_per_param == pytest.approx(expected, rel=1e-6)


def test_memory_and_fixed_n_constraints():
    law, params = published("kumar2024")
    rec = recommend(law, params, 1e21, memory_gb=1.0, serve_bits=4)
    for o in rec.options:
        assert o.N * min(o.P_w, 4.0) / 8 <= 1e9 * (1 + 1e-9)
    fixed = recommend(law, params, 1e21, n_params=1e9)
    assert all(o.N == pytest.approx(1e9) and o.bound == "fixed N" for o in fixed.options)


def test_bootstrap_draws_give_intervals_around_the_point_estimate():
    law, params = published("kumar2024")

    def draws(scale: float, n: int = 200) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        out = {k: np.full(n, v) for k, v in params.items()}
        for k in ("A", "B", "E"):
            out[k] = params[k] * np.exp(rng.normal(0, 0.03 * scale, n))
        out["alpha"] = out["beta"] = params["alpha"] + rng.normal(0, 0.005 * scale, n)
        return out

    wide = recommend(law, params, 1e21, draws=draws(1.0))
    narrow = recommend(law, params, 1e21, draws=draws(0.1))
    for rec in (wide, narrow):
        assert rec.loss_interval[0] < rec.best.loss < rec.loss_interval[1]
        assert rec.n_interval[0] < rec.best.N < rec.n_interval[1]
        assert rec.n_draws == 200
    width = wide.loss_interval[1] - wide.loss_interval[0]
    assert (narrow.loss_interval[1] - narrow.loss_interval[0]) == pytest.approx(width / 10, rel=0.2)


def test_extrapolation_warning_for_published_kumar_range():
    law, params = published("kumar2024")
    rec = recommend(law, params, 1e23, data_range={"N": (3e7, 2.2e8), "D": (1.5e9, 2.6e10)})
    assert any("largest fitted N" in w for w in rec.warnings)
    near = recommend(law, params, 1e18, data_range={"N": (3e7, 2.2e8), "D": (1.5e9, 2.6e10)})
    assert not near.warnings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flops": 0.0}, "positive"),
        ({"flops": -1e21}, "positive"),
        ({"flops": math.nan}, "positive"),
        ({"flops": 1e40}, "outside the sane range"),
        ({"flops": 1e21, "max_params": -5}, "positive"),
        ({"flops": 1e21, "profile": "tpu"}, "unknown hardware profile"),
        ({"flops": 1e21, "n_params": 7e9, "max_params": 1e9}, "contradictory"),
        ({"flops": 1e21, "max_params": 1e6, "max_tokens": 1e9}, "contradictory"),
        ({"flops": 1e21, "memory_gb": 1e-6, "max_tokens": 1e10}, "contradictory"),
        ({"flops": 1e21, "serve_bits": 40}, "2..16 bits"),
        ({"flops": 1e21, "precisions": ["int99"]}, "invalid precision"),
    ],
)
def test_bad_input_is_user_error(kwargs, message):
    law, params = published("kumar2024")
    with pytest.raises(UserError, match=message):
        recommend(law, params, **kwargs)


def test_serving_precision_needs_a_ptq_law():
    law, params = published("chinchilla-epoch2024")
    with pytest.raises(UserError, match="no PTQ term"):
        recommend(law, params, 1e21, serve_bits=4)


runner = CliRunner()


def test_cli_json_and_errors(tmp_path):
    out = runner.invoke(app, ["recommend", "--flops", "1e21", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["best"]["precision"] == "int7" and data["law"] == "kumar2024"
    table = runner.invoke(app, ["recommend", "--flops", "1e21", "--profile", "h100", "--top", "3"])
    assert table.exit_code == 0 and "int8" in table.output
    for argv in (
        ["recommend", "--flops", "0"],
        ["recommend"],
        ["recommend", "--flops", "1e21", "--law", "nope"],
        ["recommend", "--flops", "1e21", "--profile", "nope"],
        ["recommend", "--flops", "1e21", "--law", "kumar2024", "--fit", str(tmp_path / "f.json")],
    ):
        bad = runner.invoke(app, argv)
        assert bad.exit_code == 2, (argv, bad.output)
        assert bad.output.strip().startswith("error:") and len(bad.output.strip().splitlines()) == 1


def test_cli_plot_writes_png(tmp_path):
    path = tmp_path / "iso.png"
    out = runner.invoke(app, ["recommend", "--flops", "1e21", "--plot", str(path)])
    assert out.exit_code == 0, out.output
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_uses_a_fit_json_with_bootstrap_and_ranges(tmp_path):
    from fits.results import FitResult

    law, params = published("kumar2024")
    rng = np.random.default_rng(1)
    draws = {k: np.full(100, v) for k, v in params.items()}
    draws["E"] = params["E"] * np.exp(rng.normal(0, 0.01, 100))
    ranges = {"N": [3e7, 2.2e8], "D": [1.5e9, 2.6e10], "P_w": [4.0, 16.0], "C": [1e17, 3e19]}
    fit = FitResult(law=law, params=params, free=list(params), draws=draws, data={"ranges": ranges})
    path = tmp_path / "fit.json"
    fit.to_json(path)
    out = runner.invoke(app, ["recommend", "--flops", "1e21", "--fit", str(path), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    lo, hi = data["loss_interval_95"]
    assert lo < data["best"]["loss"] < hi and data["bootstrap_draws"] == 100
    assert data["best"]["precision"] == "int7"  # same constants as kumar2024
    assert any("largest fitted N" in w for w in data["warnings"])
    assert any("largest fitted C" in w for w in data["warnings"])
    text = runner.invoke(app, ["recommend", "--flops", "1e21", "--fit", str(path)])
    assert text.exit_code == 0 and "95% interval" in text.output and "warning: extrapolating" in text.output

    capacity = FitResult(law=get_law("capacity"), params={"R": 2.0}, free=["R"])
    capacity.to_json(tmp_path / "cap.json")
    bad = runner.invoke(app, ["recommend", "--flops", "1e21", "--fit", str(tmp_path / "cap.json")])
    assert bad.exit_code == 2 and "not a loss" in bad.output
    missing = runner.invoke(app, ["recommend", "--flops", "1e21", "--fit", str(tmp_path / "none.json")])
    assert missing.exit_code == 2


def test_allocations_out_of_reach_of_the_data_are_refused() -> None:
    """`--max-params 1e3` at 1e21 FLOPs forces D 6.4 million times past kumar2024's data: refused, exit 2."""
    res = runner.invoke(app, ["recommend", "--flops", "1e21", "--max-params", "1e3"])
    assert res.exit_code == 2 and res.output.startswith("error: no allocation within reach")
    assert "6.41e+06x the largest fitted" in res.output
    ok = runner.invoke(app, ["recommend", "--flops", "1e21", "--json"])
    data = json.loads(ok.output)
    assert data["best"]["precision"] == "int7" and "int3 (out of reach)" in data["infeasible"]
