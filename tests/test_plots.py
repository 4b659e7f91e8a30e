"""fits.plots: every plot is a non-empty PNG; δ_PTQ shows the measured delta_ptq; curves match the law."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fits.dataset import fit_data
from fits.laws import published
from fits.pipeline import fit
from fits.plots import _plt, delta_ptq_vs_d, loss_vs_n, measured_delta_ptq, write_plots
from fits.results import FitResult
from fits.validation import in_sample_metrics

PNG = b"\x89PNG\r\n\x1a\n"


def _precision_table() -> pd.DataFrame:
    """Runs drawn from kumar2024: fp32 training at 3 N x 3 D, one w4 run; RTN and GPTQ to 3 and 4 bits.

    RTN degrades 1.5x the law's δ_PTQ and GPTQ 0.5x, so the two methods are distinguishable.
    """
    law, p = published("kumar2024")
    rows = []
    settings = [(N, D, 32.0) for N in (2e6, 2e7, 2e8) for D in (2e8, 2e9, 2e10)] + [(2e7, 2e9, 4.0)]
    for i, (N, D, bits) in enumerate(settings):
        X = {"N": N, "D": D, "P_w": bits, "P_a": 32.0, "P_kv": 32.0}
        loss = float(law.predict(p, X)[0])
        base = {**X, "run_id": f"r{i}", "task": "lm", "status": "ok", "loss": loss}
        rows.append({**base, "ptq_method": "none", "P_post": np.nan, "loss_post": loss, "delta_ptq": 0.0})
        for method, scale in (("rtn", 1.5), ("gptq", 0.5)):
            for post in (3.0, 4.0):
                delta = scale * (float(law.predict(p, {**X, "P_post": post})[0]) - loss)
                rows.append(
                    {
                        **base,
                        "ptq_method": method,
                        "P_post": post,
                        "loss_post": loss + delta,
                        "delta_ptq": delta,
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def precision_fit():
    table = _precision_table()
    data = fit_data(table, "precision")
    law, p = published("kumar2024")
    metrics = {"in_sample": in_sample_metrics(data.y, law.predict(p, data.X), 0)}
    return FitResult(law=law, params=dict(p), free=[], metrics=metrics), data, table


def _is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def test_precision_plots_are_pngs(tmp_path, precision_fit) -> None:
    result, data, table = precision_fit
    paths = write_plots(result, data, tmp_path, table=table)
    assert {p.name for p in paths} == {
        "observed_vs_predicted.png",
        "residuals_vs_compute.png",
        "loss_vs_n.png",
        "isoloss_n_p.png",
        "delta_ptq_vs_d.png",
    }
    assert all(_is_png(p) for p in paths)


def test_delta_ptq_plots_the_measured_delta(precision_fit) -> None:
    result, data, table = precision_fit
    plt = _plt()
    fig, plotted = delta_ptq_vs_d(plt, result, measured_delta_ptq(data, table))
    want = table[(table.ptq_method != "none") & (table.P_w == 32.0)]  # the w4 run is another training setting
    assert len(plotted) == 2 * 2 * 3  # (P_post, method, N)
    for (post, method, n), (d, delta) in plotted.items():
        rows = want[(want.P_post == post) & (want.ptq_method == method) & (want.N == n)].sort_values("D")
        np.testing.assert_array_equal(d, rows.D.to_numpy())
        np.testing.assert_array_equal(delta, rows.delta_ptq.to_numpy())
    # the Axes hold exactly those points: scatter y values per panel = delta_ptq per P_post
    for ax, post in zip(fig.axes[:2], (3.0, 4.0), strict=True):
        shown = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
        np.testing.assert_allclose(np.sort(shown), np.sort(want[want.P_post == post].delta_ptq.to_numpy()))
        # the law's curves are its δ term at the same N, P_post and training bits
        line = ax.lines[0]
        d_grid = line.get_xdata()
        X = {"N": np.full_like(d_grid, 2e6), "D": d_grid, "P_w": 32.0, "P_a": 32.0, "P_kv": 32.0}
        law_delta = result.predict({**X, "P_post": post}) - result.predict(X)
        np.testing.assert_allclose(line.get_ydata(), law_delta)
    plt.close(fig)
    # without the table: the same δ values, from each PTQ row minus its run's row without PTQ
    fallback = measured_delta_ptq(data)  # without the table: the rows the fit used (GPTQ only by default)
    ptq = table[table.ptq_method == "gptq"]
    np.testing.assert_allclose(np.sort(fallback["delta"]), np.sort(ptq.delta_ptq.to_numpy()), atol=1e-15)


def test_loss_vs_n_curves_use_the_runs_training_bits(precision_fit) -> None:
    result, data, _ = precision_fit
    plt = _plt()
    fig = loss_vs_n(plt, result, data)
    ax = fig.axes[0]
    pts = ax.collections[0].get_offsets()
    assert len(pts) == 9  # fp32 runs without PTQ; the w4 run and the PTQ rows are left out
    for line in ax.lines:  # noise-free data lie on the curve of their D
        on = np.interp(np.log(pts[:, 0]), np.log(line.get_xdata()), line.get_ydata())
        assert np.sum(np.isclose(on, pts[:, 1], rtol=1e-3)) == 3
    plt.close(fig)


def test_chinchilla_plots_from_a_fit(tmp_path) -> None:
    law, p = published("chinchilla-hoffmann2022")
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 1e9, 4), 4)
    C = np.tile(np.geomspace(1e17, 1e20, 4), 4)
    loss = law.predict(p, {"N": N, "D": C / (6 * N)}) * np.exp(0.005 * rng.standard_normal(N.size))
    data = fit_data(pd.DataFrame({"N": N, "D": C / (6 * N), "loss": loss}), "chinchilla")
    result = fit(data, "chinchilla", n_boot=0, holdout=0.25, n_refine=4)
    paths = write_plots(result, data, tmp_path)
    assert {p.name for p in paths} == {
        "observed_vs_predicted.png",
        "residuals_vs_compute.png",
        "loss_vs_n.png",
    }
    assert all(_is_png(p) for p in paths)
