"""Benchmark: extrapolation to the largest-compute 20% of runs on every public data set, every method.

For each data family in ../shared/data the runs are split once by compute (`fits.validation.
split_by_compute`, fraction 0.2, ties held out together); every method fits the same training rows and
predicts the same held-out rows:

- Chinchilla: Hoffmann et al. 2022 Fig. 4 points digitised by Epoch (Besiroglu et al. 2024), the 5
  highest-loss rows dropped (240 points), D = C / (6N);
- Datablations, all rows, and Datablations single-epoch rows (D ≤ U): Muennighoff et al. 2023's C4 runs
  (N, D, unique tokens U);
- Porian et al. 2024: each of the 15 configurations (source_pickle, dataset, hparams, warmup, decay,
  param_count, loss_split) split and fitted alone, the held-out points pooled for the family's numbers.

Methods, all at nominal 95%:

- `scalefit auto`: `fits.fit_auto` (law form and trim of the smallest runs chosen by backtest on the
  training rows, fits/selection.py), default 1,000 bootstrap draws, calibrated interval
  (fits/calibration.py): what `scalefit fit` does by default;
- `scalefit chinchilla`: `fits.fit(data, "chinchilla")`, calibrated interval: `scalefit fit --law
  chinchilla`;
- `approach3`: plain Chinchilla Approach 3 (Hoffmann et al. 2022; Huber δ = 1e-3 on log residuals, LSE
  form, L-BFGS-B from a grid of starts, as Epoch replicated it) with its bootstrap percentile interval of
  the fitted curve, no calibration: the state before issue 12;
- the peer packages on PyPI, each in its own environment (default /work/notes/peer-venv, never a
  scalefit dependency), through `bench/extrapolation_peers.py` in a subprocess: `chinchilla`,
  `simple-scaling-laws`, `scaling-audit` (rows `peer ...`); a fit that fails is reported with its error.

Per family and method: held-out rows, median / max relative error |ŷ − y|/y, share of held-out points
inside the 95% interval, median interval width (upper − lower)/ŷ, and wall time (all fits and
predictions of that family). Then the issue's goals: coverage 90–98% pooled over the four families' held-
out points and ≥ 80% on each, and the default's median error ≤ 0.75× plain Approach 3's on each family.
Writes the "Extrapolation" section of docs/benchmarks.md with machine, load, command and date.

    nohup nice -n 10 python bench/extrapolation.py > /tmp/extrap/run.log 2>&1 &
    python bench/extrapolation.py --no-peers --n-boot 200 --no-write   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PEER_PYTHON = Path("/work/notes/peer-venv/bin/python")
PEERS = ("chinchilla", "simple-scaling-laws", "scaling-audit")
HEADING = "## Extrapolation (bench/extrapolation.py)"
HOLDOUT = 0.2
LEVEL = 0.95
FAMILIES = ("Chinchilla", "Datablations, all rows", "Datablations, single-epoch", "Porian et al., pooled")
PORIAN_CONFIG = ["source_pickle", "dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ data


def load_tasks(data: Path) -> list[dict]:
    """One task per fit: {family, name, table (N, D, [U], loss), test (held-out mask)}."""
    from fits.validation import split_by_compute

    tasks = []

    def add(family: str, name: str, table: pd.DataFrame) -> None:
        # rows without a number in every column (3 of Porian's) are left out for every method alike
        table = table[np.isfinite(table.to_numpy(dtype=float)).all(axis=1)].reset_index(drop=True)
        test = split_by_compute(6.0 * table["N"].to_numpy() * table["D"].to_numpy(), HOLDOUT)
        tasks.append({"family": family, "name": name, "table": table, "test": test})

    chin = pd.read_csv(data / "chinchilla_epoch_svg_extracted.csv").sort_values("loss").iloc[:-5]
    n = chin["Model Size"].to_numpy(dtype=float)
    d = chin["Training FLOP"].to_numpy(dtype=float) / (6.0 * n)
    add("Chinchilla", "chinchilla", pd.DataFrame({"N": n, "D": d, "loss": chin["loss"].to_numpy()}))
    db = pd.read_csv(data / "datablations_c4_val_losses.csv").rename(
        columns={"params_N": "N", "tokens_D": "D", "unique_tokens_U": "U", "val_loss": "loss"}
    )[["N", "D", "U", "loss"]]
    add("Datablations, all rows", "datablations-all", db)
    add("Datablations, single-epoch", "datablations-single-epoch", db[db["D"] <= db["U"]])
    por = pd.read_csv(data / "porian2024_isoflop_points.csv")
    for key, rows in por.groupby(PORIAN_CONFIG, sort=True):
        table = pd.DataFrame({"N": rows["N"], "D": rows["D_tokens"], "loss": rows["loss"]})
        add("Porian et al., pooled", "porian/" + "/".join(map(str, key)), table)
    return tasks


# --------------------------------------------------------------------------------------------- methods


def run_scalefit(task: dict, method: str, n_boot: int) -> dict:
    """Fit the training rows with one scalefit method and predict the held-out rows."""
    import fits
    from fits.calibration import prediction_interval

    train, held = task["table"][~task["test"]], task["table"][task["test"]]
    t0 = time.perf_counter()
    if method == "scalefit auto":
        res = fits.fit_auto(train, n_boot=n_boot, holdout=None, seed=0)
        kind = "calibrated"
    else:
        res = fits.fit(train, "chinchilla", n_boot=n_boot, holdout=None, seed=0,
                       calibrate=method == "scalefit chinchilla")  # fmt: skip
        kind = "calibrated" if method == "scalefit chinchilla" else "bootstrap"
    rows = fits.fit_data(held, res.law)
    point, lower, upper, got = prediction_interval(res, rows.X, 1 - LEVEL, kind)
    assert got == kind, (got, kind)
    return {"observed": rows.y, "prediction": point, "lower": lower, "upper": upper,
            "seconds": time.perf_counter() - t0, "law": res.law.name, "error": ""}  # fmt: skip


def run_peer(package: str, tasks: list[dict], python: Path) -> tuple[str, list[dict]]:
    """All tasks through one subprocess of the peer environment; (version or error, results)."""
    payload = []
    for t in tasks:
        train, held = t["table"][~t["test"]], t["table"][t["test"]]
        payload.append({"name": t["name"], "level": LEVEL,
                        "train": {k: train[k].tolist() for k in ("N", "D", "loss")},
                        "test": {k: held[k].tolist() for k in ("N", "D")}})  # fmt: skip
    cmd = [str(python), str(ROOT / "bench" / "extrapolation_peers.py"), package]
    try:
        proc = subprocess.run(cmd, input=json.dumps(payload), capture_output=True, text=True, check=False)
    except OSError as exc:
        return f"could not start {python}: {exc}", []
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"exit {proc.returncode}: {tail}", []
    out = json.loads(proc.stdout)
    results = []
    for t, r in zip(tasks, out["results"], strict=True):
        nan = np.full(int(t["test"].sum()), np.nan)
        results.append({
            "observed": t["table"]["loss"].to_numpy()[t["test"]],
            "prediction": np.asarray(r["prediction"], dtype=float) if r["prediction"] else nan,
            "lower": np.asarray(r["lower"], dtype=float) if r["lower"] else nan,
            "upper": np.asarray(r["upper"], dtype=float) if r["upper"] else nan,
            "seconds": r["seconds"], "law": package, "error": r["error"],
        })  # fmt: skip
    return out["version"], results


# ------------------------------------------------------------------------------------------------ scores


def score(results: list[dict]) -> dict:
    """Pooled scores of the held-out points of several fits (failed fits counted in `failed`)."""
    ok = [r for r in results if not r["error"]]
    y = np.concatenate([r["observed"] for r in ok]) if ok else np.empty(0)
    p = np.concatenate([r["prediction"] for r in ok]) if ok else np.empty(0)
    lo = np.concatenate([r["lower"] for r in ok]) if ok else np.empty(0)
    hi = np.concatenate([r["upper"] for r in ok]) if ok else np.empty(0)
    err = np.abs(p - y) / y
    has = ok and not (np.isnan(lo).any() or np.isnan(hi).any())
    covered = (lo <= y) & (y <= hi)
    return {
        "rows": int(y.size),
        "failed": len(results) - len(ok),
        "errors": sorted({r["error"] for r in results if r["error"]}),
        "median_rel_error": float(np.median(err)) if y.size else math.nan,
        "max_rel_error": float(np.max(err)) if y.size else math.nan,
        "covered": int(covered.sum()) if has else None,
        "coverage": float(np.mean(covered)) if has else math.nan,
        "median_rel_width": float(np.median((hi - lo) / p)) if has else math.nan,
        "seconds": float(sum(r["seconds"] for r in results)),
        "laws": sorted({r["law"] for r in ok}),
    }


def pct(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return "∞" if math.isinf(x) else f"{100 * x:.{digits}f}%"


# ------------------------------------------------------------------------------------------------ report


def machine() -> tuple[str, str]:
    """(CPU model and SIMD flags from lscpu, load averages now)."""
    model, flags = "unknown CPU", ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = info.get("Model name", model).strip()
        have = set(info.get("Flags", "").split())
        flags = " ".join(f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")
                         if f in have)  # fmt: skip
    except OSError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{model}, {os.cpu_count()} logical CPUs shared with other jobs, SIMD flags: {flags}", load


def report(scores: dict, per_task: dict, methods: list[str], notes: dict, meta: dict) -> str:
    fam_rows = []
    for fam in FAMILIES:
        for m in methods:
            s = scores[(fam, m)]
            if s["rows"] == 0:
                cov, err = "–", "did not run"
            else:
                cov = "–" if s["covered"] is None else f"{s['covered']} ({pct(s['coverage'], 1)})"
                err = f"{pct(s['median_rel_error'])} / {pct(s['max_rel_error'])}"
            fail = f" ({s['failed']} fits failed)" if s["failed"] else ""
            fam_rows.append(
                f"| {fam} | {m}{fail} | {s['rows']} | {err} | {cov} | {pct(s['median_rel_width'], 1)} | "
                f"{s['seconds']:.1f} s |"
            )
    pooled_rows = []
    for m in methods:
        s = scores[("pooled", m)]
        cov = "–" if s["covered"] is None else f"{s['covered']} of {s['rows']} ({pct(s['coverage'], 1)})"
        worst = [scores[(f, m)]["coverage"] for f in FAMILIES]
        low = "–" if any(math.isnan(w) for w in worst) else pct(min(worst), 1)
        ratios = []
        for fam in FAMILIES:
            a, b = scores[(fam, m)]["median_rel_error"], scores[(fam, "approach3")]["median_rel_error"]
            ratios.append(f"{a / b:.2f}" if a == a and b == b and b > 0 else "–")
        pooled_rows.append(f"| {m} | {cov} | {low} | {' / '.join(ratios)} |")
    goal = meta["goal"]
    lines = [
        HEADING,
        "",
        f"Date {meta['date']}; command `{meta['command']}` (niced, in the background); commit "
        f"{meta['commit']}. Machine: {meta['machine']}. Load average (1/5/15 min) before {meta['load0']}, "
        f"after {meta['load1']}; total wall time {meta['seconds']:.0f} s. Held out: the largest-compute "
        f"{HOLDOUT:.0%} of each data set (of each Porian configuration), the same rows for every method; "
        f"nominal {LEVEL:.0%} intervals; {meta['n_boot']} bootstrap draws for scalefit's fits. Data and "
        "methods: the docstring of bench/extrapolation.py.",
        "",
        "| data | method | held-out rows | median / max relative error | inside the 95% interval | "
        "median width / ŷ | wall time |",
        "|---|---|---|---|---|---|---|",
        *fam_rows,
        "",
        "Pooled over the four families' held-out points (single-epoch Datablations rows count in both of "
        "their families), the lowest family coverage, and the median error relative to plain Approach 3 "
        "(Chinchilla / Datablations all / single-epoch / Porian):",
        "",
        "| method | inside the 95% interval, pooled | lowest family | median error ÷ Approach 3's |",
        "|---|---|---|---|",
        *pooled_rows,
        "",
        f"Goals of issue 12 for the default (`{goal}`): coverage 90–98% pooled — {meta['goal_cov']}; ≥ 80% "
        f"on every family — {meta['goal_fam']}; median error ≤ 0.75× Approach 3's on every family — "
        f"{meta['goal_err']}.",
        "",
        "Laws chosen by `auto`: " + "; ".join(f"{k}: {v}" for k, v in notes["laws"].items()) + ".",
        "",
        "Porian et al. per configuration (auto / approach3 median error, auto coverage):",
        "",
        "| configuration | held out | auto law | auto median err | approach3 median err | auto inside 95% |",
        "|---|---|---|---|---|---|",
        *notes["porian"],
        "",
        "Peer packages (run as `<peer venv>/bin/python bench/extrapolation_peers.py PACKAGE`):",
        "",
        *[f"- {p}" for p in notes["peers"]],
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws per scalefit fit")
    ap.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated task name prefixes (a quick look)")
    ap.add_argument("--json", type=Path, default=None, help="also write every point here")
    ap.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"error: {args.data}: no such data directory")

    t_start = time.perf_counter()
    load0 = machine()[1]
    tasks = load_tasks(args.data)
    if args.only:
        tasks = [t for t in tasks if any(t["name"].startswith(p) for p in args.only.split(","))]
    own = ["scalefit auto", "scalefit chinchilla", "approach3"]
    results: dict[str, list[dict]] = {m: [] for m in own}
    for i, task in enumerate(tasks, 1):
        for m in own:
            r = run_scalefit(task, m, args.n_boot)
            results[m].append(r)
            s = score([r])
            say(
                f"{i}/{len(tasks)} {task['name']} {m} ({r['law']}): median err "
                f"{pct(s['median_rel_error'])}, coverage {pct(s['coverage'], 1)}, {r['seconds']:.1f} s"
            )
    peer_notes = []
    if not args.no_peers:
        for package in PEERS:
            say(f"peer {package}: {len(tasks)} fits")
            version, got = run_peer(package, tasks, args.peer_python)
            if got:
                results[f"peer {package}"] = got
                errs = sorted({r["error"] for r in got if r["error"]})
                failed = f"; failed fits: {'; '.join(errs)}" if errs else ""
                peer_notes.append(f"{package} {version}: ran{failed}")
            else:
                peer_notes.append(f"{package}: did not run ({version})")
            say(peer_notes[-1])
    methods = list(results)
    scores, pooled = {}, {m: [] for m in methods}
    for fam in FAMILIES:
        idx = [i for i, t in enumerate(tasks) if t["family"] == fam]
        for m in methods:
            rs = [results[m][i] for i in idx] if results[m] else []
            scores[(fam, m)] = score(rs) if rs else score([])
            pooled[m] += rs
    for m in methods:
        scores[("pooled", m)] = score(pooled[m])
    laws = {}
    for t, r in zip(tasks, results["scalefit auto"], strict=True):
        laws.setdefault(t["family"], []).append(r["law"])
    law_note = {f: ", ".join(f"{v} ×{ls.count(v)}" if ls.count(v) > 1 else v for v in sorted(set(ls)))
                for f, ls in laws.items()}  # fmt: skip
    porian = []
    for i, t in enumerate(tasks):
        if t["family"].startswith("Porian"):
            a, b = score([results["scalefit auto"][i]]), score([results["approach3"][i]])
            law = results["scalefit auto"][i]["law"]
            porian.append(
                f"| {t['name'].removeprefix('porian/')} | {a['rows']} | {law} | "
                f"{pct(a['median_rel_error'])} | {pct(b['median_rel_error'])} | "
                f"{a['covered']} ({pct(a['coverage'], 0)}) |"
            )
    peer_notes += [
        "chinchilla: its default objective (asymmetric MAE, fitting the floor of the losses), BFGS in "
        "longdouble from the 3^5 grid made of the ends and middle of its README's 5^5 grid (the full 5^5 "
        "grid took 366 s for one Chinchilla fit on this machine); point predictions only",
        "simple-scaling-laws: default law (separable-power) and 1,000 bootstrap draws; interval = its "
        "`new-run` 2.5–97.5% quantiles",
        "scaling-audit: has no nonlinear scaling-law fit; its ConstrainedLinearRegression (no constraint) on "
        "log N, log D → log loss, a pure power law without E; point predictions only",
    ] if not args.no_peers else ["not run (--no-peers)"]
    s = scores[("pooled", "scalefit auto")]
    fam_cov = [scores[(f, "scalefit auto")]["coverage"] for f in FAMILIES]
    ratios = [scores[(f, "scalefit auto")]["median_rel_error"] / scores[(f, "approach3")]["median_rel_error"]
              for f in FAMILIES]  # fmt: skip
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, check=False).stdout.strip() or "unknown",
        "machine": machine()[0], "load0": load0, "load1": machine()[1], "n_boot": args.n_boot,
        "seconds": time.perf_counter() - t_start, "goal": "scalefit auto",
        "goal_cov": f"{pct(s['coverage'], 1)}, {'met' if 0.90 <= s['coverage'] <= 0.98 else 'NOT met'}",
        "goal_fam": f"lowest {pct(min(fam_cov), 1)}, {'met' if min(fam_cov) >= 0.80 else 'NOT met'}",
        "goal_err": " / ".join(f"{r:.2f}" for r in ratios)
        + (", met" if all(r <= 0.75 for r in ratios) else ", NOT met"),
    }  # fmt: skip
    text = report(scores, {}, methods, {"laws": law_note, "porian": porian, "peers": peer_notes}, meta)
    print(text)
    if args.json:
        dump = {"meta": meta, "scores": {f"{k[0]} | {k[1]}": v for k, v in scores.items()},
                "tasks": [{"name": t["name"], "family": t["family"],
                           **{m: {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                  for k, v in results[m][i].items()} for m in methods}}
                          for i, t in enumerate(tasks)]}  # fmt: skip
        args.json.write_text(json.dumps(dump, default=float))
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, text)


if __name__ == "__main__":
    main()
