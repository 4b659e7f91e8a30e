"""Diagnostic plots of a fit (PNG, matplotlib Agg backend). Points are coloured by N (or D) on a log scale.

- `observed_vs_predicted.png`: observed against predicted target with the y = x line and in-sample R²;
- `residuals_vs_compute.png`: log(observed / predicted) against compute C, the held-out runs shaded;
- `loss_vs_n.png`: target against N, points coloured by their D, fitted curves at the data's D values
  (precision law: runs trained unquantized and served without PTQ, curves at their training bits);
- laws that respond to training precision (`Law.responds_to("P_w")`): `isoloss_n_p.png` (loss contours
  over N and training precision P at the largest cost in the data, C = 6/16·N·D·P of Kumar et al. 2024);
  laws with a PTQ input (`P_post`) and PTQ rows in the data: `delta_ptq_vs_d.png`: the *measured*
  δ_PTQ = loss after PTQ − loss of the same run, per (N, P_post, method), against D, with the law's δ_PTQ
  term for the same N, P_post and training bits (one panel per P_post, one colour per N).

`plot_recommendation` draws a recommendation: isoloss contours over (N, P) with the budget line.

Tick labels are plain numbers (0.01, 2.5), not mantissa×10^k, wherever the axis spans under a decade.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fits.candidates import int_spec
from fits.dataset import FitData
from fits.hardware import get_profile
from fits.laws import HIGH_PRECISION_BITS as HIGH_BITS
from fits.optimize import finite
from fits.results import FitResult

KINDS = ("P_w", "P_a", "P_kv")
MARKERS = {"rtn": "o", "gptq": "^"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain(axis) -> None:
    """Plain-number tick labels ('0.01', '2.5') on a matplotlib axis, major and minor."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def si(v: float) -> str:
    """A count in short form: 12,384 -> '12.4k', 7e9 -> '7B' (parameters, tokens, FLOPs)."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def _colorbar(fig, mappable, ax, values: np.ndarray, label: str):
    """Colour bar of a log-scaled count; ticks at the distinct values when there are at most 8."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    cb = fig.colorbar(mappable, ax=ax, label=label)
    distinct = np.unique(values)
    if distinct.size <= 8:
        cb.ax.minorticks_off()
        cb.set_ticks(distinct)
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))
    cb.ax.yaxis.set_minor_formatter(NullFormatter())
    return cb


def _unit(result: FitResult) -> str:
    return f"{result.law.target} ({result.law.unit})"


def _lognorm(values: np.ndarray):
    from matplotlib.colors import LogNorm

    lo, hi = float(np.min(values)), float(np.max(values))
    return LogNorm(lo, hi if hi > lo else lo * 1.01)


def _train_bits(X: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """P_w, P_a, P_kv of each row, NaN / missing read as 16 bits (as the law reads them)."""
    return {k: np.nan_to_num(X.get(k, np.full(n, HIGH_BITS)), nan=HIGH_BITS) for k in KINDS}


def _savefig(plt: Any, fig: Any, path: str | Path, **kw: Any) -> None:
    """Save and close `fig`; a failed write (full disk, read-only directory) raises an OSError naming `path`
    (matplotlib's surfaces on the file's flush, naming no file)."""
    from scaling.errors import os_error_about

    try:
        fig.savefig(path, **kw)
    except OSError as exc:
        raise os_error_about(exc, path) from None
    finally:
        plt.close(fig)


def write_plots(result: FitResult, data: FitData, out_dir: str | Path, table: Any = None) -> list[Path]:
    """Write the diagnostic plots for `result` fitted to `data` into `out_dir`; returns the paths.

    `table` (the input DataFrame, optional) supplies the measured δ_PTQ per PTQ method (columns
    `ptq_method`, `delta_ptq`); without it δ_PTQ is taken from `data` (method not known).
    """
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def save(fig, fname: str) -> None:
        p = out / fname
        _savefig(plt, fig, p, dpi=120, bbox_inches="tight")
        paths.append(p)

    save(observed_vs_predicted(plt, result, data), "observed_vs_predicted.png")
    save(residuals_vs_compute(plt, result, data), "residuals_vs_compute.png")
    if "N" in data.X and "D" in data.X:
        fig = loss_vs_n(plt, result, data)
        if fig is not None:
            save(fig, "loss_vs_n.png")
    if result.law.responds_to("P_w") and "D" in data.X:
        save(isoloss(plt, result, data), "isoloss_n_p.png")
    if result.law.responds_to("P_post"):
        points = measured_delta_ptq(data, table)
        if points["delta"].size:
            save(delta_ptq_vs_d(plt, result, points)[0], "delta_ptq_vs_d.png")
    return paths


def _scatter_by_n(fig, ax, x, y, data: FitData) -> None:
    if "N" in data.X:
        sc = ax.scatter(x, y, s=12, c=data.X["N"], cmap="viridis", norm=_lognorm(data.X["N"]), alpha=0.8)
        _colorbar(fig, sc, ax, data.X["N"], "N (parameters)")
    else:
        ax.scatter(x, y, s=12, alpha=0.8)


def observed_vs_predicted(plt, result: FitResult, data: FitData):
    """Observed against predicted target, y = x line; log axes only when the target spans a decade."""
    pred, y = result.predict(data.X), data.y
    fig, ax = plt.subplots(figsize=(6, 5))
    _scatter_by_n(fig, ax, pred, y, data)
    lo, hi = min(pred.min(), y.min()), max(pred.max(), y.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    if hi / lo > 10:
        ax.set(xscale="log", yscale="log")
    _plain(ax.xaxis), _plain(ax.yaxis)
    ins = result.metrics.get("in_sample") or {}
    if ins:
        ax.text(
            0.03,
            0.97,
            f"R²(log) {ins['r2_log']:.4f}\nlog-RMSE {ins['rmse_log']:.4f}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
    unit = _unit(result)
    ax.set(
        xlabel=f"predicted {unit}",
        ylabel=f"observed {unit}",
        title=f"{result.law.name}: observed vs predicted",
    )
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def residuals_vs_compute(plt, result: FitResult, data: FitData):
    """log(observed / predicted) against compute; rows of the holdout refit shaded."""
    resid = np.log(data.y) - np.log(result.predict(data.X))
    fig, ax = plt.subplots(figsize=(7, 4))
    _scatter_by_n(fig, ax, data.compute, resid, data)
    ax.axhline(0, color="k", lw=1)
    ho = result.metrics.get("holdout")
    if ho:
        ax.axvspan(
            ho["compute_threshold"],
            data.compute.max() * 1.3,
            color="r",
            alpha=0.08,
            label=f"held out: refit without these {ho['n']} rows errs {ho['mean_rel_error']:.2%} on them",
        )
        ax.legend(loc="best", fontsize=8)
    ax.set(
        xscale="log",
        xlabel=result.law.compute_label,
        ylabel="log(observed / predicted)",
        title=f"{result.law.name}: residuals vs compute",
    )
    return fig


def loss_vs_n(plt, result: FitResult, data: FitData):
    """Target against N, points coloured by D, fitted curves at each distinct D (or 6 D quantiles).

    Precision law: only runs without PTQ at one unquantized training setting (the most common), curves
    at those training bits. Returns None when fewer than two rows qualify.
    """
    n_rows = data.y.size
    bits = _train_bits(data.X, n_rows)
    mask = np.ones(n_rows, dtype=bool)
    title = f"{result.law.name}: {result.law.target} vs N"
    if result.law.responds_to("P_w"):
        mask = ~(data.X.get("P_post", np.full(n_rows, np.nan)) > 0)
        for k in KINDS:
            mask &= bits[k] >= HIGH_BITS
        if mask.any():
            keys, counts = np.unique(np.stack([bits[k][mask] for k in KINDS], 1), axis=0, return_counts=True)
            common = keys[np.argmax(counts)]
            for k, v in zip(KINDS, common, strict=True):
                mask &= bits[k] == v
            title += f" (trained at {common[0]:g} bits, no PTQ)"
    if mask.sum() < 2:
        return None
    N, D, y = data.X["N"][mask], data.X["D"][mask], data.y[mask]
    levels = np.unique(D)
    if levels.size > 8:  # continuous D (e.g. IsoFLOP data): curves at the centres of 6 quantile bins
        levels = np.exp(np.quantile(np.log(D), np.arange(1, 12, 2) / 12))
    norm = _lognorm(D)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sc = ax.scatter(N, y, s=14, c=D, cmap=cmap, norm=norm, zorder=3)
    n_grid = np.geomspace(N.min() / 1.3, N.max() * 1.3, 100)
    for d in levels:
        X = {"N": n_grid, "D": np.full_like(n_grid, d)}
        X.update({k: np.full_like(n_grid, bits[k][mask][0]) for k in KINDS if k in data.X})
        ax.plot(n_grid, result.predict(X), color=cmap(norm(d)), lw=1.2)
    _colorbar(fig, sc, ax, D, "D (tokens); curves: the fit at that D")
    ax.set(xscale="log", xlabel="N (parameters)", ylabel=_unit(result), title=title)
    if y.max() / y.min() > 10:
        ax.set_yscale("log")
    _plain(ax.yaxis)
    return fig


def isoloss(plt, result: FitResult, data: FitData):
    """Loss contours over (N, P) with P = P_w = P_a = P_kv at the data's largest cost C = 6/16·N·D·P."""
    n_rows = data.y.size
    cost = 6.0 / 16.0 * data.X["N"] * data.X["D"] * _train_bits(data.X, n_rows)["P_w"]
    budget = float(cost.max())
    n = np.geomspace(data.X["N"].min() / 10, data.X["N"].max() * 100, 120)
    p = np.linspace(3, 16, 66)
    NN, PP = np.meshgrid(n, p)
    DD = budget / (6.0 / 16.0 * NN * PP)
    L = result.predict(
        {"N": NN.ravel(), "D": DD.ravel(), "P_w": PP.ravel(), "P_a": PP.ravel(), "P_kv": PP.ravel()}
    )
    L = L.reshape(NN.shape)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    levels = np.nanmin(L) * (1 + np.geomspace(0.004, 0.5, 9))  # contours near the optimum, not the floor
    cs = ax.contour(NN, PP, L, levels=levels, cmap="viridis")
    ax.clabel(cs, fontsize=7, fmt="%.3f", inline_spacing=2)
    ax.axvspan(n[0], data.X["N"].min(), color="0.5", alpha=0.12, label="outside the fitted N range")
    ax.axvspan(data.X["N"].max(), n[-1], color="0.5", alpha=0.12)
    i = np.unravel_index(np.nanargmin(L), L.shape)
    ax.plot(NN[i], PP[i], "r*", ms=12, label=f"optimum: N = {si(NN[i])}, P = {PP[i]:.1f} bits")
    ax.set(
        xscale="log",
        xlim=(n[0], n[-1]),
        xlabel="N (parameters)",
        ylabel="training precision P (bits, w = a = kv)",
        title=f"{_unit(result)} at equal cost C = 6/16·N·D·P = {budget:.3g}",
    )
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return fig


def measured_delta_ptq(data: FitData, table: Any = None) -> dict[str, np.ndarray]:
    """Measured PTQ rows: N, D, P_w, P_a, P_kv, P_post, method, delta (= loss_post − loss of that run).

    From `table`'s `delta_ptq` and `ptq_method` columns when given (ok "lm" rows only); otherwise from
    `data`: each PTQ row's target minus the target of the row without PTQ with the same N, D and training
    bits (method "method unknown").
    """
    if table is not None and {"delta_ptq", "ptq_method", "N", "D", "P_post"} <= set(table.columns):
        t = table[table["ptq_method"].astype(str) != "none"]
        for col, want in (("status", "ok"), ("task", "lm")):
            if col in t.columns:
                t = t[t[col].astype(str) == want]
        t = t[np.isfinite(t["delta_ptq"].to_numpy(dtype=float))]
        cols = {c: t[c].to_numpy(dtype=float) for c in ("N", "D", "P_post", *KINDS) if c in t.columns}
        return {
            **cols,
            **_train_bits(cols, len(t)),
            "method": t["ptq_method"].astype(str).to_numpy(),
            "delta": t["delta_ptq"].to_numpy(dtype=float),
        }
    n_rows = data.y.size
    bits = _train_bits(data.X, n_rows)
    post = data.X.get("P_post", np.full(n_rows, np.nan))
    key = np.stack([data.X["N"], data.X["D"], *bits.values()], 1)
    base = {tuple(k): y for k, y, p in zip(key, data.y, post, strict=True) if not p > 0}
    sel = np.array([p > 0 and tuple(k) in base for k, p in zip(key, post, strict=True)], dtype=bool)
    delta = np.array([y - base[tuple(k)] for k, y in zip(key[sel], data.y[sel], strict=True)])
    return {
        "N": data.X["N"][sel],
        "D": data.X["D"][sel],
        "P_post": post[sel],
        **{k: v[sel] for k, v in bits.items()},
        "method": np.full(int(sel.sum()), "method unknown"),
        "delta": delta,
    }


def delta_ptq_vs_d(plt, result: FitResult, points: dict[str, np.ndarray]):
    """Measured δ_PTQ against D, one panel per P_post, colour = N, marker = method, law curves per N.

    Only runs at the highest training precision present (Kumar et al. 2024 Fig. 3 setting: PTQ of
    unquantized training). y axis symlog, linear below the noise level: the largest |δ| of the runs
    that PTQ improved (δ < 0), rounded up to a power of ten. Returns (figure, {(P_post, method, N):
    (D, δ) plotted}).
    """
    from matplotlib.lines import Line2D

    total = sum(points[k] for k in KINDS)
    sel = total == total.max()
    pts = {k: v[sel] for k, v in points.items()}
    bits = {k: float(pts[k][0]) for k in KINDS}
    posts, ns, methods = np.unique(pts["P_post"]), np.unique(pts["N"]), list(dict.fromkeys(pts["method"]))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, ns.size))
    fig, axes = plt.subplots(1, posts.size, figsize=(4.2 * posts.size + 1.5, 4.2), sharey=True, squeeze=False)
    d_grid = np.geomspace(pts["D"].min() / 1.3, pts["D"].max() * 1.3, 80)
    plotted: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for ax, pp in zip(axes[0], posts, strict=True):
        for n, color in zip(ns, colors, strict=True):
            X = {
                "N": np.full_like(d_grid, n),
                "D": d_grid,
                **{k: np.full_like(d_grid, v) for k, v in bits.items()},
            }
            law_delta = result.predict({**X, "P_post": np.full_like(d_grid, pp)}) - result.predict(X)
            ax.plot(d_grid, law_delta, color=color, lw=1.3)
            for m in methods:
                s = (pts["P_post"] == pp) & (pts["N"] == n) & (pts["method"] == m)
                if s.any():
                    ax.scatter(
                        pts["D"][s],
                        pts["delta"][s],
                        color=color,
                        marker=MARKERS.get(m, "s"),
                        s=22,
                        edgecolor="k",
                        linewidth=0.4,
                        zorder=3,
                    )
                    plotted[(float(pp), m, float(n))] = (pts["D"][s], pts["delta"][s])
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set(xscale="log", xlabel="D (tokens)", title=f"PTQ to {pp:g} bits")
    neg = -pts["delta"][pts["delta"] < 0]
    pos = pts["delta"][pts["delta"] > 0]
    noise = neg.max() if neg.size else (pos.min() if pos.size else 1e-3)
    linthresh = 10 ** np.ceil(np.log10(noise))
    axes[0, 0].set_yscale("symlog", linthresh=linthresh, linscale=0.5)
    low = -linthresh if pts["delta"].min() >= -linthresh else 2 * pts["delta"].min()
    axes[0, 0].set_ylim(low, 2 * max(pts["delta"].max(), linthresh))
    _plain(axes[0, 0].yaxis)
    axes[0, 0].set_ylabel("δ_PTQ = loss after PTQ − loss before (nats/token)")
    handles = [
        Line2D([], [], color=c, marker="o", lw=1.3, label=f"N = {si(n)}")
        for n, c in zip(ns, colors, strict=True)
    ]
    handles += [
        Line2D([], [], color="0.3", marker=MARKERS.get(m, "s"), ls="", label=f"measured, {m}")
        for m in methods
    ]
    handles.append(Line2D([], [], color="0.3", lw=1.3, label="fitted δ_PTQ term"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    trained = "/".join(f"{v:g}" for v in bits.values())
    fig.suptitle(f"post-training quantization degradation (trained at w/a/kv = {trained} bits)", fontsize=10)
    fig.tight_layout()
    return fig, plotted


def plot_recommendation(rec: Any, source: Any, path: str, profile: str = "bits") -> None:
    """Isoloss contours of L(N, D*, P) over (N, P) at the optimum's tokens D*, with the budget line
    N = C·t(P) / (6·D*) (the N each shared precision P can afford at D* within the budget) and the optimum.

    At the optimum the budget line is tangent to its isoloss contour. P is one shared precision for all
    tensor kinds (int3..int15, bf16 for the budget line under a profile with native formats).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hw = get_profile(profile)
    best = rec.best
    law, params = source.law, source.params
    n_axis = np.logspace(math.log10(best.N) - 2, math.log10(best.N) + 2, 200)
    p_axis = np.linspace(3.0, 16.0, 131)
    NN, PP = np.meshgrid(n_axis, p_axis)
    rows = np.column_stack([PP.ravel()] * 3)
    from fits.recommendation import law_columns

    X = law_columns(NN.ravel(), np.full(NN.size, best.D), rows, rec.serve_bits, law)
    loss = finite(law.predict(params, X)).reshape(NN.shape)
    if hw.native is None:  # linear-in-bits cost: a smooth budget curve, t(P) = 16 / P
        p_line = np.linspace(3.0, 16.0, 131)
        n_budget = rec.flops * (16.0 / p_line) / (6.0 * best.D)
    else:  # table profiles price formats, not bits: int3..int15 and bf16
        p_line = np.arange(3, 17)
        speed = np.array([hw.throughput(int_spec(int(b))) for b in p_line])
        n_budget = rec.flops * speed / (6.0 * best.D)

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    valid = loss[np.isfinite(loss)]
    levels = np.unique(np.quantile(valid, np.linspace(0.0, 0.9, 16)))  # even area per colour band
    shown = np.where(np.isfinite(loss), loss, valid.max())
    cs = ax.contourf(NN, PP, shown, levels=levels, cmap="viridis_r", extend="max")
    ax.contour(NN, PP, shown, levels=[best.loss], colors="white", linewidths=1.2, linestyles="--")
    fig.colorbar(cs, ax=ax, label="predicted loss (nats/token)", format="%.3f")
    style = "default" if hw.native is None else "steps-mid"
    budget_label = f"budget C = {rec.flops:.2g} ({hw.name})"
    ax.plot(n_budget, p_line, color="red", lw=2, drawstyle=style, label=budget_label)
    ax.plot(
        [best.N],
        [best.P_w],
        marker="*",
        ms=16,
        color="orange",
        mec="black",
        ls="none",
        label=f"optimum {best.precision}: N={best.N:.3g}, D={best.D:.3g}, L={best.loss:.4f}",
    )
    ax.set_xscale("log")
    ax.set_xlim(n_axis[0], n_axis[-1])
    ax.set_ylim(3, 16)
    ax.set_xlabel("parameters N (non-embedding)")
    ax.set_ylabel("training precision P (bits, shared)")
    ax.set_title(f"{rec.law}: isoloss over (N, P) at D* = {best.D:.3g} tokens ({rec.objective})")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    _savefig(plt, fig, path)


def plot_backtest(result: Any, path: str) -> None:
    """A backtest (`fits.backtest`): |relative error| of each predicted run against its extrapolation
    distance log10(C / largest fitted C), one colour per cut, with the interval's relative half-width
    (upper − lower) / 2ŷ of the same points as small grey marks (misses drawn hollow)."""
    plt = _plt()
    pts = result.points
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    cmap = plt.get_cmap("viridis")
    cuts = sorted(pts["cut"].unique())
    for i, cut in enumerate(cuts):
        p = pts[pts["cut"] == cut]
        color = cmap(i / max(len(cuts) - 1, 1))
        err = 100 * np.abs(p["rel_error"].to_numpy(dtype=float))
        hit = p["covered"].to_numpy() != False  # noqa: E712  (NaN without intervals: drawn filled)
        d = p["distance"].to_numpy(dtype=float)
        ax.scatter(d[hit], err[hit], s=14, color=color, label=f"cut {cut:.2f}")
        ax.scatter(d[~hit], err[~hit], s=18, facecolors="none", edgecolors=color)
        if result.interval != "none":
            half = (
                50 * (p["upper"] - p["lower"]).to_numpy(dtype=float) / p["prediction"].to_numpy(dtype=float)
            )
            ax.scatter(d, half, s=6, marker="_", color="grey")
    ax.axvline(0.0, color="black", lw=0.8, ls=":")
    ax.set_yscale("log")
    _plain(ax.yaxis)
    ax.set_xlabel("extrapolation distance log10(C / largest fitted C)")
    ax.set_ylabel("|relative error| (%)")
    level = f"{100 * (1 - result.alpha):g}%"
    extra = f"; grey: {level} {result.interval} interval half-width, hollow: outside it"
    ax.set_title(
        f"backtest of {result.law} by {result.by}" + (extra if result.interval != "none" else ""), fontsize=9
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(plt, fig, path)
