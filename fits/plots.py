"""Diagnostic plots of a fit (PNG, matplotlib Agg backend).

- `observed_vs_predicted.png`: observed against predicted target, log-log, with the y = x line;
- `residuals_vs_compute.png`: log residuals against compute C, held-out threshold marked;
- `loss_vs_n.png`: target against N, one colour per D bin, with the fitted curve at each bin's D;
- precision law only: `isoloss_n_p.png` (loss contours over N and training precision P at the largest
  cost in the data, C = 6/16·N·D·P of Kumar et al. 2024) and `delta_ptq_vs_d.png` (fitted δ_PTQ
  against D for several serving precisions, with the observed PTQ rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fits.dataset import FitData
from fits.results import FitResult


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(result: FitResult, data: FitData, out_dir: str | Path) -> list[Path]:
    """Write the diagnostic plots for `result` fitted to `data` into `out_dir`; returns the paths."""
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = result.predict(data.X)
    y = data.y
    name = result.law.name
    label = result.law.target
    paths: list[Path] = []

    def save(fig, fname: str) -> None:
        p = out / fname
        fig.tight_layout()
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(pred, y, s=10, alpha=0.7)
    lo, hi = min(pred.min(), y.min()), max(pred.max(), y.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=f"predicted {label}",
        ylabel=f"observed {label}",
        title=f"{name}: observed vs predicted",
    )
    save(fig, "observed_vs_predicted.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(data.compute, np.log(y) - np.log(pred), s=10, alpha=0.7)
    ax.axhline(0, color="k", lw=1)
    ho = result.metrics.get("holdout")
    if ho:
        ax.axvline(ho["compute_threshold"], color="r", ls=":", lw=1, label="holdout threshold")
        ax.legend()
    ax.set(
        xscale="log",
        xlabel="compute C (FLOPs)",
        ylabel="log residual (obs − pred)",
        title=f"{name}: residuals vs compute",
    )
    save(fig, "residuals_vs_compute.png")

    if "N" in data.X and "D" in data.X:
        mask = np.ones(y.size, dtype=bool)
        if name == "precision":  # curves at 16 bits without PTQ
            mask = ~(data.X.get("P_post", np.full(y.size, np.nan)) > 0)
            for k in ("P_w", "P_a", "P_kv"):
                if k in data.X:
                    mask &= data.X[k] >= 16
        if mask.sum() >= 2:
            save(_loss_vs_n(plt, result, data, mask), "loss_vs_n.png")
    if name == "precision":
        save(_isoloss(plt, result, data), "isoloss_n_p.png")
        save(_delta_ptq(plt, result, data), "delta_ptq_vs_d.png")
    return paths


def _loss_vs_n(plt, result: FitResult, data: FitData, mask: np.ndarray):
    N, D, y = data.X["N"][mask], data.X["D"][mask], data.y[mask]
    logd = np.log10(D)
    edges = np.unique(np.quantile(logd, np.linspace(0, 1, min(7, np.unique(logd).size) + 1)))
    bins = np.clip(np.searchsorted(edges, logd, side="right") - 1, 0, max(len(edges) - 2, 0))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, bins.max() + 1))
    n_grid = np.geomspace(N.min() / 1.5, N.max() * 1.5, 100)
    for b in range(bins.max() + 1):
        sel = bins == b
        if not sel.any():
            continue
        d = float(10 ** np.median(logd[sel]))
        ax.scatter(N[sel], y[sel], s=12, color=colors[b])
        ax.plot(
            n_grid,
            result.predict({"N": n_grid, "D": np.full_like(n_grid, d)}),
            color=colors[b],
            label=f"D ≈ {d:.2g}",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="N (parameters)",
        ylabel=result.law.target,
        title=f"{result.law.name}: {result.law.target} vs N by D",
    )
    ax.legend(fontsize=7)
    return fig


def _isoloss(plt, result: FitResult, data: FitData):
    P_train = data.X.get("P_w", np.full(data.y.size, 16.0))
    cost = 6.0 / 16.0 * data.X["N"] * data.X["D"] * P_train
    budget = float(cost.max())
    n = np.geomspace(data.X["N"].min() / 10, data.X["N"].max() * 100, 120)
    p = np.linspace(3, 16, 66)
    NN, PP = np.meshgrid(n, p)
    DD = budget / (6.0 / 16.0 * NN * PP)
    X = {"N": NN.ravel(), "D": DD.ravel(), "P_w": PP.ravel(), "P_a": PP.ravel(), "P_kv": PP.ravel()}
    L = result.predict(X).reshape(NN.shape)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    levels = np.nanmin(L) * (1 + np.geomspace(0.002, 0.5, 12))  # contours near the optimum, not the floor
    cs = ax.contour(NN, PP, L, levels=levels, cmap="viridis")
    ax.clabel(cs, fontsize=6, fmt="%.3f")
    i = np.unravel_index(np.nanargmin(L), L.shape)
    ax.plot(NN[i], PP[i], "r*", ms=12, label=f"optimum: N={NN[i]:.2g}, P={PP[i]:.1f}")
    ax.set(
        xscale="log",
        xlabel="N (parameters)",
        ylabel="training precision P (bits, w = a = kv)",
        title=f"isoloss at cost {budget:.2g} (C = 6/16·N·D·P)",
    )
    ax.legend(fontsize=7)
    return fig


def _delta_ptq(plt, result: FitResult, data: FitData):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    n_med = float(np.median(data.X["N"]))
    d = np.geomspace(data.X["D"].min() / 2, data.X["D"].max() * 4, 100)
    base = result.predict({"N": np.full_like(d, n_med), "D": d})
    for bits, color in zip((3, 4, 6, 8), ("C0", "C1", "C2", "C3"), strict=True):
        with_ptq = result.predict({"N": np.full_like(d, n_med), "D": d, "P_post": np.full_like(d, bits)})
        ax.plot(d, with_ptq - base, color=color, label=f"P_post = {bits} (N = {n_med:.2g})")
    post = data.X.get("P_post")
    if post is not None and np.any(post > 0):
        sel = post > 0
        X_no = {k: v[sel] for k, v in data.X.items() if k != "P_post"}
        ax.scatter(
            data.X["D"][sel],
            data.y[sel] - result.predict(X_no),
            s=10,
            color="k",
            alpha=0.5,
            label="observed − fitted pre-PTQ",
        )
    ax.set(
        xscale="log",
        yscale="symlog",
        xlabel="D (tokens)",
        ylabel="δ_PTQ (nats/token)",
        title="post-training quantization degradation",
    )
    ax.legend(fontsize=7)
    return fig
