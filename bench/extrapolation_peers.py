"""Peer packages for bench/extrapolation.py, run in their own environment (never scalefit's).

Run by the benchmark as `<peer venv>/bin/python bench/extrapolation_peers.py PACKAGE` with a JSON list of
tasks on stdin, each {"name", "train": {"N", "D", "loss"}, "test": {"N", "D"}, "level"}; prints one JSON
object: {"version", "results": [{"name", "prediction", "lower", "upper", "seconds", "error"}]}. Each
package is used as its documentation shows, with its own defaults; a task that raises records the
error's type and message instead of numbers. This file imports nothing from scalefit.

- `chinchilla` (Kyo Takano): `Chinchilla(...).fit()`: BFGS from a grid of starts on its default
  asymmetric-MAE objective (its "fit to the floor"), 3^5 starts from its README's grid; no
  intervals.
- `simple-scaling-laws`: `fit(frame)` with its default law (separable-power, E + A·N^−α + B·D^−β) and
  1000 bootstrap draws; the point is the `mean` prediction's median, the interval the `new-run`
  prediction's 2.5%/97.5% quantiles (what a single new run may reach).
- `scaling-audit`: no scaling-law fitter; its `ConstrainedLinearRegression` (unconstrained here) on
  log N, log D → log loss is the pure power law it supports; no intervals.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from importlib import metadata

import numpy as np

# The ends and middle of the package README's first example grid (E, log A, log B, alpha, beta; 5 values
# each there): 3^5 = 243 BFGS starts. The README's 5^5 = 3125 took 366 s for one 192-row fit here.
CHINCHILLA_GRID = {
    "E": np.linspace(1, 2, 3),
    "a": np.linspace(1, 10, 3),
    "b": np.linspace(1, 10, 3),
    "alpha": np.linspace(0.1, 0.7, 3),
    "beta": np.linspace(0.1, 0.7, 3),
}


def run_chinchilla(train: dict, test: dict, level: float) -> tuple:
    import pandas as pd
    from chinchilla import Chinchilla

    with tempfile.TemporaryDirectory() as tmp:
        n, d = np.asarray(train["N"], dtype=float), np.asarray(train["D"], dtype=float)
        pd.DataFrame({"C": 6 * n * d, "N": n, "D": d, "loss": train["loss"]}).to_csv(
            f"{tmp}/df.csv", index=False
        )
        cc = Chinchilla(tmp, param_grid=CHINCHILLA_GRID, log_level=50)
        cc.fit(parallel=False)
        pred = cc.predict_loss(np.asarray(test["N"], dtype=float), np.asarray(test["D"], dtype=float))
    return np.asarray(pred, dtype=float), None, None


def run_simple_scaling_laws(train: dict, test: dict, level: float) -> tuple:
    import polars as pl
    from simple_scaling_laws import fit

    frame = pl.DataFrame(
        {
            "training_run_id": [f"r{i}" for i in range(len(train["N"]))],
            "model_size__n": np.asarray(train["N"], dtype=float),
            "dataset_size__d": np.asarray(train["D"], dtype=float),
            "test_loss__cross_entropy": np.asarray(train["loss"], dtype=float),
        }
    )
    model = fit(frame, seed=0)
    points = pl.DataFrame({"model_size__n": test["N"], "dataset_size__d": test["D"]})
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its extrapolation warning: every held-out point is outside
        mean = model.predict(points, kind="mean", quantiles=(0.5,))
        run = model.predict(points, kind="new-run", quantiles=(lo_q, hi_q))
    cols = [c for c in run.columns if c.startswith("test_loss__cross_entropy__")]
    lower, upper = sorted(cols, key=lambda c: float("0." + c.rsplit("__q", 1)[1]))
    point = mean[next(c for c in mean.columns if c.startswith("test_loss__cross_entropy__"))]
    return point.to_numpy(), run[lower].to_numpy(), run[upper].to_numpy()


def run_scaling_audit(train: dict, test: dict, level: float) -> tuple:
    from scaling_audit import ConstrainedLinearRegression

    def design(rows: dict) -> np.ndarray:
        return np.log(np.column_stack([rows["N"], rows["D"]]).astype(float))

    model = ConstrainedLinearRegression().fit(design(train), np.log(np.asarray(train["loss"], dtype=float)))
    return np.exp(model.predict(design(test))), None, None


RUNNERS = {
    "chinchilla": run_chinchilla,
    "simple-scaling-laws": run_simple_scaling_laws,
    "scaling-audit": run_scaling_audit,
}


def _list(x) -> list | None:
    return None if x is None else [float(v) for v in np.asarray(x, dtype=float)]


def main() -> None:
    package = sys.argv[1]
    tasks = json.load(sys.stdin)
    out = []
    for task in tasks:
        t0 = time.perf_counter()
        try:
            point, lower, upper = RUNNERS[package](task["train"], task["test"], task["level"])
            row = {"prediction": _list(point), "lower": _list(lower), "upper": _list(upper), "error": ""}
        except Exception as exc:  # a peer's failure is a result to report
            row = {"prediction": None, "lower": None, "upper": None, "error": f"{type(exc).__name__}: {exc}"}
        row.update(name=task["name"], seconds=time.perf_counter() - t0)
        out.append(row)
    json.dump({"version": metadata.version(package), "results": out}, sys.stdout)


if __name__ == "__main__":
    main()
