"""Knowledge-capacity benchmark on bioD: bits per parameter at 100 and 1000 exposures, PTQ, junk data.

Allen-Zhu & Li 2024 ("Physics of Language Models 3.3") find that a model trained on more facts than it can
hold (saturated) stores about 2 bits per parameter after 1000 exposures and about 1 after 100, whatever
its size; that int8 weight PTQ keeps the knowledge and int4 loses more than half of it; and that junk data
(7 junk tokens per useful token) divides the capacity at 100 exposures unless the useful documents carry
a domain token. This script measures each on bioD (scaling.bios.BioDWorld: 16 attributes of one token
from 64, names of 4 alphabet tokens, 21-token biographies, a 66-row vocabulary, so the transformer holds
most of the parameters the paper counts) with one shape family at several sizes.

Every training run goes through the resumable sweep store (sweeps.store.RunStore, sweeps.driver.run_sweep):
the benchmark is a list of pieces, each a small sweep spec, run in priority order into one store directory;
interrupted, the same command continues where it stopped (finished runs are kept, a killed run is redone).
The report (docs/benchmarks.md section) and the example table are written from whatever has finished.

Usage:
    python bench/capacity.py --store DIR [--workers 1] [--threads 1] [--pieces exp100,exp1000,...]
                             [--write docs/benchmarks.md] [--examples examples/capacity-cpu.parquet]
                             [--report-only] [--plan]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _report import write_section  # bench/_report.py (scripts run as `python bench/...`)

SECTION = "## Knowledge capacity on bioD (bench/capacity.py)"
SHAPE = "L2-hd16"  # two layers, 16-wide heads; n picks d_model (sweeps.shapes)
SIZES = {"d16": 6.3e3, "d32": 2.5e4, "d48": 5.5e4}  # target non-embedding N → d_model 16, 32, 48
BIOD = {"variant": "bioD", "bioD": [16, 1, 64, 1, 64], "name_tokens": 4}  # K, C, D, L, T
DOCS_PER_ROW = 6  # seq_len = 6 biographies: rows start at a biography and cut none
LR = {"rule": "power", "value": 0.012, "n_ref": 2.5e4, "alpha": 0.25}  # pilots: best of 6e-3/1.2e-2/2.4e-2
# Bits offered per counted parameter: twice the paper's capacity at 100 exposures; at 1000 exposures 1.1×
# the paper's 2 bits/param (a CPU budget: the run stores less than offered if R < 2.2).
OFFER = {100: 2.0, 1000: 2.2}
RUN = "nohup nice -n 19 python bench/capacity.py --store /tmp/capb > /tmp/capb/bench.log 2>&1 &"
REPORT = ("python bench/capacity.py --store /tmp/capb --report-only --write docs/benchmarks.md --examples "
          "examples/capacity-cpu.parquet")
RESUME = ("mkdir -p /tmp/capb && nohup nice -n 19 python bench/capacity.py --store /tmp/capb --write "
          "docs/benchmarks.md --examples examples/capacity-cpu.parquet > /tmp/capb/bench.log 2>&1 &")
# The default order: the goals' runs first, then the checks on them (learning rate, seed, saturation),
# then junk at 300 exposures (8 × the tokens of its clean run).
PIECES = ("exp100", "exp1000", "junk", "exp1000-d48", "plateau", "lr100", "seeds", "plateau1000", "junk300",
          "lr100b", "plateau1000-d32", "plateau1000-d48", "junk300-d32")
LR100B = (("d16", 4.0), ("d32", 0.25), ("d48", 0.25))  # size, lr multiplier
MAIN = ("exp100", "exp1000", "exp1000-d48")  # the planned sizes at 100 and 1000 exposures, with PTQ
SIZE_PIECES = (*MAIN, "lr100", "lr100b", "plateau", "plateau1000", "plateau1000-d32", "plateau1000-d48")


def pieces(compute: str) -> dict[str, list[dict[str, Any]]]:
    """The benchmark's pieces in priority order: name -> sweep specs (one per size and people count).

    Cost in training tokens (people × exposures × 21, × 8 with 7:1 junk): exp100 3.5M, exp1000 14M,
    junk 4.3M, exp1000-d48 25M, plateau 2.6M, lr100 5M, seeds 1.3M, plateau1000 7M, junk300 14M,
    lr100b 3.5M, plateau1000-d32 20M, plateau1000-d48 45M, junk300-d32 52M; one
    core trains 20k–90k tokens/s (d_model 48 to 16) when idle, far less when the others' jobs run."""

    def spec(size: str, exposures: int, offer: float, tag: str = "", ptq: bool = True,
             **axes: Any) -> dict[str, Any]:  # fmt: skip
        people = people_for(SIZES[size], offer)
        axes = {"precision": [compute], "people": [people], "exposures": [exposures], "shape": [SHAPE],
                **axes}  # fmt: skip
        length = doc_length()
        train = {"batch_size": 8, "seq_len": DOCS_PER_ROW * length, "tie_embeddings": True, "n_evals": 4,
                 "eval_tokens": 8 * DOCS_PER_ROW * length}  # fmt: skip
        doc: dict[str, Any] = {
            "sweep": {"name": f"capacity-{size}-e{exposures}{tag}", "task": "bios"},
            "grid": {"n": [SIZES[size]]},
            "axes": axes,
            "lr": LR,
            "train": train,
            "bios": dict(BIOD),
        }
        if ptq:
            doc["ptq"] = {"methods": ["rtn", "gptq"], "formats": ["int8", "int4"], "calib_tokens": 8192}
        return doc

    return {
        "exp100": [spec(s, 100, OFFER[100]) for s in SIZES],
        "exp1000": [spec(s, 1000, OFFER[1000]) for s in ("d16", "d32")],
        # Junk at 100 exposures of the useful data (the paper's largest effect, ÷20): at 1000 exposures the
        # 7:1 junk makes the run 8 × 1000 exposures' tokens, more than this machine's session allows.
        "junk": [spec("d16", 100, OFFER[100], "-junk7", ptq=False, junk=[7], domain_token=[False, True])],
        "exp1000-d48": [spec("d48", 1000, OFFER[1000])],
        "plateau": [spec("d32", 100, offer, f"-offer{offer:g}", ptq=False) for offer in (1.0, 4.0)],
        # At 100 exposures memorization starts late (a loss plateau first): half and twice the lr rule's rate.
        "lr100": [spec(s, 100, OFFER[100], "-lr", ptq=False, lr_mult=[0.5, 2.0]) for s in SIZES],
        "seeds": [spec(s, 100, OFFER[100], "-seed1", ptq=False, seed=[1]) for s in ("d16", "d32")],
        "plateau1000": [spec("d16", 1000, offer, f"-offer{offer:g}", ptq=False) for offer in (1.1, 4.0)],
        "junk300": [spec("d16", 300, OFFER[100], ptq=False),
                    spec("d16", 300, OFFER[100], "-junk7", ptq=False, junk=[7], domain_token=[False, True])],
        # lr100 found the best rate falling faster with size than the rule (×2 at d_model 16, ×0.5 at 48):
        # one step further each way; and 4× the paper-count bits offered at 1000 exposures for the larger
        # sizes (d_model 16 still stored more with 260 people than with 142).
        "lr100b": [spec(s, 100, OFFER[100], "-lr", ptq=False, lr_mult=[m]) for s, m in LR100B],
        "plateau1000-d32": [spec("d32", 1000, 4.0, "-offer4")],
        "plateau1000-d48": [spec("d48", 1000, 4.0, "-offer4")],
        # junk where the clean run stores more (d_model 16 stores R ≈ 1 at 300 exposures); 24M tokens per run
        "junk300-d32": [spec("d32", 300, OFFER[100], ptq=False),
                        spec("d32", 300, OFFER[100], "-junk7", ptq=False, junk=[7],
                             domain_token=[False, True])],
    }


def doc_length() -> int:
    from scaling.capacity import make_source

    return int(make_source(2, BIOD).document_length)


def people_for(n: float, offer: float) -> int:
    """People whose bits available are `offer` × the parameters the paper counts for target size n."""
    from scaling.capacity import make_source
    from sweeps.shapes import parse_shape

    shape = parse_shape(SHAPE).shape(n)
    probe = make_source(2, BIOD)
    used_rows = probe.vocab_size - 1  # every alphabet token and <s> occur (the unused <bios> does not)
    from scaling.model import ModelConfig

    n_params = ModelConfig(vocab_size=probe.vocab_size, **shape).n_params
    target = offer * (n_params + used_rows * shape["d_model"])
    people = 16
    for _ in range(20):  # bits per person depend (weakly) on N through log2(N0 / N)
        per_person = make_source(people, BIOD).world.bits_available / people
        people = max(16, math.ceil(target / per_person))
    return people


def run_pieces(names: list[str], store_dir: Path, workers: int, threads: int, compute: str) -> None:
    """Run each piece's specs into the one store (resume=True: finished runs are skipped), logging every
    spec's outcome, wall time and the load average before and after it to <store>/bench-log.jsonl."""
    from scaling.errors import UserError
    from sweeps.driver import run_sweep
    from sweeps.executors import LocalExecutor
    from sweeps.plan import plan
    from sweeps.runner import execute
    from sweeps.spec import parse_spec
    from sweeps.store import RunStore

    store_dir.mkdir(parents=True, exist_ok=True)
    store = RunStore(store_dir / "results.parquet")
    table = pieces(compute)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise UserError(f"unknown piece {unknown[0]!r}; pieces: {', '.join(table)}")
    for name in names:
        for doc in table[name]:
            runs = plan(parse_spec(doc, source=f"bench/capacity.py:{name}"))
            t0, load0 = time.perf_counter(), os.getloadavg()[0]
            executor = LocalExecutor(execute, workers=workers, threads=threads)
            summary = run_sweep(runs, store, executor, resume=True, show_progress=sys.stderr.isatty(),
                                record={"bench": "capacity", "piece": name, "spec": doc})  # fmt: skip
            seconds = time.perf_counter() - t0
            entry = {"time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "piece": name,
                     "spec": doc["sweep"]["name"], "trained": summary.ok, "done": summary.already_done,
                     "failed": summary.failed, "seconds": round(seconds, 1), "load_before": load0,
                     "load_after": os.getloadavg()[0], "nice": os.nice(0)}  # fmt: skip
            with open(store_dir / "bench-log.jsonl", "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            print(f"[{entry['time']}] {name} {entry['spec']}: {summary.ok} trained, {summary.already_done} "
                  f"already done, {summary.failed} failed ({seconds:.0f} s, load {load0:.1f} → "
                  f"{entry['load_after']:.1f})", flush=True)  # fmt: skip
            if summary.failures:
                print(json.dumps(summary.failures, indent=1)[:2000], flush=True)


def show_plan(names: list[str], store_dir: Path, compute: str) -> None:
    """Each piece's runs: training tokens and whether the store already holds them (what a resume runs)."""
    from sweeps.plan import plan
    from sweeps.spec import parse_spec
    from sweeps.store import RunStore

    runs_dir = store_dir / "results.runs"
    done = RunStore(store_dir / "results.parquet").finished() if runs_dir.is_dir() else set()
    table, left = pieces(compute), 0.0
    for name in names:
        for doc in table[name]:
            for run in plan(parse_spec(doc, source=f"bench/capacity.py:{name}")):
                bios = run.config["bios"]
                tokens = bios["people"] * bios["exposures"] * doc_length() * (1 + bios.get("junk", 0))
                left += 0 if run.run_id in done else tokens
                print(f"{name:16s} {doc['sweep']['name']:28s} {run.run_id} {tokens / 1e6:6.1f}M tokens  "
                      f"{'done' if run.run_id in done else 'to run'}")  # fmt: skip
    print(f"left to train: {left / 1e6:.1f}M tokens (20k–90k tokens/s on one idle core, d_model 48 to 16)")


# --------------------------------------------------------------------------------------------------------
# The report.


def machine() -> str:
    import torch

    from scaling.train import native_bf16

    model = "unknown CPU"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "no AVX"
    return (f"{model} ({platform.machine()}, {os.cpu_count()} cores shared with other jobs; {isa}; native "
            f"bf16 matmuls: {native_bf16()}), torch {torch.__version__}")  # fmt: skip


GOALS = ("R ≥ 1.6 at 1000 exposures, R ≥ 0.8 at 100, R within ±25% across sizes, int8 |ΔR| < 10%, "
         "int4 ΔR < −40%")
SATURATED = 0.9  # a run is saturated when it stores less than this share of the bits it was offered


def tables(df: Any) -> list[str]:
    """Per trained model: bits, R (paper count), bits per non-embedding parameter, ΔR after PTQ."""
    cols = ["shape", "d_model", "N (non-emb.)", "params (paper)", "lr", "seed", "exposures", "people", "junk",
            "domain token", "bits offered", "bits", "stored", "R (paper)", "bits / N", "int8 RTN ΔR",
            "int8 GPTQ ΔR",
            "int4 RTN ΔR", "int4 GPTQ ΔR", "train tok/s", "wall"]  # fmt: skip
    out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    base = df[df.ptq_method == "none"].sort_values(["exposures", "junk", "domain_token", "N", "people", "lr",
                                                     "seed"])  # fmt: skip
    for _, r in base.iterrows():
        ptq = df[df.run_id == r.run_id].set_index(["ptq_method", "fmt_post"]).R
        deltas = [f"{100 * (ptq[key] / r.R - 1):+.1f}%" if key in ptq.index else "" for key in
                  (("rtn", "int8"), ("gptq", "int8"), ("rtn", "int4"), ("gptq", "int4"))]  # fmt: skip
        cells = [r["shape"], f"{int(r.d_model)}", f"{int(r.N):,}", f"{int(r.params_paper):,}", f"{r.lr:.3g}",
                 f"{int(r.seed)}",
                 f"{int(r.exposures)}", f"{int(r.people):,}", f"{r.junk:g}", f"{int(r.domain_token)}",
                 f"{r.bits_available:,.0f}", f"{r.bits:,.0f}", f"{100 * r.bits / r.bits_available:.0f}%",
                 f"{r.R:.3f}", f"{r.bits / r.N:.3f}", *deltas, f"{r.tokens_per_s:,.0f}",
                 f"{r.wall_time / 60:.1f} min"]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return out


def planned_pieces() -> dict[str, str]:
    """run_id -> piece for every run the benchmark plans (the first piece that plans it)."""
    from sweeps.plan import plan
    from sweeps.spec import parse_spec

    out: dict[str, str] = {}
    for name, docs in pieces("fp32").items():
        for doc in docs:
            for run in plan(parse_spec(doc, source=f"bench/capacity.py:{name}")):
                out.setdefault(run.run_id, name)
    return out


def _clean(df: Any) -> Any:
    """The trained (unquantized) models without junk, one row per run, with `piece`, `lr_mult` (the run's
    rate over the lr rule's) and `saturated` columns."""
    base = df[(df.ptq_method == "none") & (df.junk == 0)].copy()
    where = planned_pieces()
    base["piece"] = [where.get(i, "?") for i in base.run_id]
    rule = {}
    for _, r in base[base.piece.isin(MAIN)].iterrows():
        rule[int(r.N)] = r.lr
    base["lr_mult"] = [r.lr / rule[int(r.N)] if int(r.N) in rule else math.nan for _, r in base.iterrows()]
    base["saturated"] = base.bits < SATURATED * base.bits_available
    return base


def verdicts(df: Any) -> list[str]:
    """The issue's goals on the saturated clean runs, each met / not met / not yet run. R of a size is the
    best of its saturated seed-0 runs over the learning rates (lr100, lr100b) and people counts (plateau*)
    tried: the capacity is the most a model stores when offered more than it holds, at a tuned rate."""
    base = _clean(df)
    lines = []
    for exposures, goal in ((100, 0.8), (1000, 1.6)):
        planned = len({d["grid"]["n"][0] for name in MAIN for d in pieces("fp32")[name]
                       if d["axes"]["exposures"] == [exposures]})  # fmt: skip
        runs = base[(base.exposures == exposures) & (base.seed == 0) & base.piece.isin(SIZE_PIECES)]
        sat = runs[runs.saturated]
        if sat.empty:
            lines.append(f"- R ≥ {goal} at {exposures} exposures: **not yet run** (no saturated run yet)")
            lines.append(f"- R within ±25% across sizes at {exposures} exposures: **not yet run**")
            continue
        best = sat.groupby("N").R.max()
        parts = []
        for n, g in runs.groupby("N"):
            tried = ", ".join(f"{r.R:.3f} (lr ×{r.lr_mult:g}, {int(r.people)} people"
                              f"{'' if r.saturated else ', not saturated'})"
                              for _, r in g.sort_values(["people", "lr"]).iterrows())  # fmt: skip
            parts.append(f"N = {int(n):,}: {tried}")
        status = "met" if best.min() >= goal else "not met"
        rs = ", ".join(f"{r:.3f}" for r in best)
        lines.append(f"- R ≥ {goal} at {exposures} exposures: **{status}** on {len(best)} of {planned} "
                     f"sizes (best R per size {rs}); {'; '.join(parts)}")  # fmt: skip
        spread = best.max() / best.min()
        if len(best) < planned:
            status = f"not yet run ({len(best)} of {planned} sizes finished"
            status += f"; max/min so far {spread:.2f})" if len(best) > 1 else ")"
        else:
            status = "met" if spread <= 1.25 / 0.75 else "not met"
            status += f": max/min = {spread:.2f} over {best.index.max() / best.index.min():.1f}× in N"
        lines.append(f"- R within ±25% across sizes at {exposures} exposures (max/min ≤ 1.67): **{status}**")
    ptq = df[(df.ptq_method != "none") & (df.junk == 0)]
    sat_ids = set(base.run_id[base.saturated & base.piece.isin(SIZE_PIECES)])
    for fmt, goal, ok in (("int8", "|ΔR| < 10%", lambda d: abs(d) < 0.10),
                          ("int4", "ΔR < −40%", lambda d: d < -0.40)):  # fmt: skip
        parts, verdict = [], {}
        for _, r in ptq[(ptq.fmt_post == fmt) & ptq.run_id.isin(sat_ids)].iterrows():
            ref = base[base.run_id == r.run_id].iloc[0]
            d = r.R / ref.R - 1
            verdict.setdefault(int(ref.exposures), []).append(ok(d))
            parts.append(f"{r.ptq_method.upper()} {100 * d:+.1f}% (N = {int(ref.N):,}, "
                         f"{int(ref.exposures)} exp., {int(ref.people)} people)")  # fmt: skip
        if not parts:
            lines.append(f"- {fmt} PTQ {goal}: **not yet run**")
            continue
        by_e = "; ".join(f"{e} exposures {'met' if all(v) else 'not met'}"
                         for e, v in sorted(verdict.items()))  # fmt: skip
        lines.append(f"- {fmt} PTQ {goal}: **{'met' if all(map(all, verdict.values())) else 'not met'}** "
                     f"({by_e}): ΔR = {'; '.join(parts)}")  # fmt: skip
    seeds = base[base.piece.isin(("exp100", "seeds"))]
    for n, g in seeds.groupby("N"):
        if g.seed.nunique() > 1:
            rs = ", ".join(f"seed {int(r.seed)}: {r.R:.3f}" for _, r in g.sort_values("seed").iterrows())
            lines.append(f"- seed to seed, N = {int(n):,} at 100 exposures: R = {rs}")
    junk = df[(df.ptq_method == "none") & (df.junk > 0)].sort_values(["exposures", "domain_token"])
    if junk.empty:
        lines.append("- junk 7:1 with and without the domain token: **not yet run**")
    for _, r in junk.iterrows():
        clean = base[(base.N == r.N) & (base.exposures == r.exposures) & (base.people == r.people)
                     & (base.seed == r.seed) & (base.lr == r.lr)]  # fmt: skip
        ref = ""
        if not clean.empty:
            ref = (f", {clean.bits.iloc[0] / r.bits:.1f}× fewer bits than the clean run (R = "
                   f"{clean.R.iloc[0]:.3f}; paper: ÷20 at 100, ÷3 at 300 exposures without the token)")
        tag = "with" if r.domain_token else "without"
        lines.append(f"- junk {r.junk:g}:1 {tag} the domain token (N = {int(r.N):,}, {int(r.exposures)} "
                     f"exposures of the useful data): R = {r.R:.3f}{ref}")  # fmt: skip
    plateau = base[base.piece.isin(SIZE_PIECES) & (base.seed == 0) & (base.lr_mult == 1)]
    for (n, e), g in plateau.groupby(["N", "exposures"]):
        if g.people.nunique() > 1:
            pts = ", ".join(f"{int(r.people)} people → {r.bits:,.0f} bits "
                            f"({100 * r.bits / r.bits_available:.0f}% of offered)"
                            for _, r in g.sort_values("people").iterrows())  # fmt: skip
            lines.append(f"- saturation check, N = {int(n):,} at {int(e)} exposures: {pts}")
    return lines


def limits(df: Any) -> list[str]:
    """What limits the goals not met, from the runs themselves."""
    base = _clean(df)
    lines = []
    e100 = base[(base.exposures == 100) & (base.seed == 0) & base.piece.isin(SIZE_PIECES)]
    if not e100.empty and e100.R.max() < 0.8:
        best = e100.loc[e100.groupby("N").R.idxmax()]
        lrs = ", ".join(f"×{r.lr_mult:g} at d_model {int(r.d_model)}" for _, r in best.iterrows())
        stuck = []
        for _, r in e100.sort_values("R").head(1).iterrows():
            curve = json.loads(r.diagnostics_json)["val_curve"]
            stuck.append(f"d_model {int(r.d_model)} at lr ×{r.lr_mult:g}: validation loss {curve[0][1]:.2f} "
                         f"at the first evaluation, {curve[-1][1]:.2f} at the end")  # fmt: skip
        lines.append(
            f"- 100 exposures: optimization limits R, not the parameter count: no run stores more than "
            f"{100 * (e100.bits / e100.bits_available).max():.0f}% of the bits offered, memorization starts "
            f"only after a loss plateau ({'; '.join(stuck)}), the best rate differs by size ({lrs}: the lr "
            "rule's −¼ power of N is too shallow) and, at one size, more people store fewer bits (saturation "
            "check above: more facts per optimizer step delay the start). R ≥ 0.8 would need a finer "
            "per-size rate search (and warmup/batch size) at 100 exposures; the paper's 1 bit/param at 100 "
            "exposures comes from models of millions of parameters trained on bioS.")
    e1000 = base[(base.exposures == 1000) & (base.seed == 0) & base.piece.isin(SIZE_PIECES) & base.saturated]
    rises = []
    for _, g in e1000.groupby("N"):
        g = g.sort_values("people")
        if len(g) > 1:
            rises.append(f"{100 * (g.bits.iloc[-1] / g.bits.iloc[-2] - 1):+.0f}% at d_model "
                         f"{int(g.d_model.iloc[0])} ({int(g.people.iloc[-2])} → {int(g.people.iloc[-1])} "
                         "people)")  # fmt: skip
    if rises:
        lines.append(f"- 1000 exposures: the bits still grow with the people offered ({', '.join(rises)}), "
                     "so these R are lower bounds of the capacity; a further doubling of the people would "
                     "show the plateau (d_model 48: about 90M training tokens, about 50 minutes of an idle "
                     "core).")  # fmt: skip
    seeds = base[base.piece.isin(("exp100", "seeds"))].groupby("N").R
    spread = (seeds.max() / seeds.min()).max() if not seeds.size().empty else math.nan
    if spread == spread:
        lines.append(f"- Seed to seed, R at 100 exposures varies up to {100 * (spread - 1):.0f}% at one size "
                     "(one seed per run elsewhere).")  # fmt: skip
    junk = df[(df.ptq_method == "none") & (df.junk > 0)]
    for n, g in junk.groupby("N"):
        parts = []
        for e, ge in g.groupby("exposures"):
            clean = base[(base.N == n) & (base.exposures == e) & (base.people == ge.people.iloc[0])
                         & (base.seed == 0) & (base.lr == ge.lr.iloc[0])]  # fmt: skip
            ref = f"clean R = {clean.R.iloc[0]:.3f}, " if not clean.empty else ""
            parts.append(f"{int(e)} exposures: {ref}junk R = {ge.R.max():.3f} at most")
        lines.append(
            f"- Junk at d_model {int(g.d_model.iloc[0])} ({'; '.join(parts)}): the useful facts get 1/8 of "
            "each optimizer step and the junk runs hardly start memorizing them, with or without the domain "
            "token: far below the paper's ÷20 (100) / ÷3 (300 exposures), also where the clean run is "
            "near capacity. Not explained yet; next: check the junk documents and the domain token in the "
            "training stream, and the loss curve of the useful documents in a junk run.")
    if not junk.empty and junk.N.max() == base.N.min():
        lines.append("- Junk at d_model 32 and 300 exposures (piece junk300-d32, about 24M training tokens "
                     "per junk run): not yet run.")  # fmt: skip
    return lines


def fitted_law(df: Any) -> list[str]:
    """The capacity law fitted to the trained clean models (`scalefit fit ... --law capacity`), and to each
    size's best saturated run per exposure level (the runs the goals are judged on)."""
    import fits

    base = _clean(df)
    best = base[(base.seed == 0) & base.piece.isin(SIZE_PIECES) & base.saturated]
    best = best.loc[best.groupby(["N", "exposures"]).R.idxmax()]
    fits_ = [
        (df[(df.junk == 0) & (df.ptq_method == "none")],
         "every clean unquantized run (`scalefit fit examples/capacity-cpu.parquet --law capacity --where "
         "\"junk == 0 and ptq_method == 'none'\"`), the lr, seed and people scans included"),
        (df[df.run_id.isin(best.run_id) & (df.ptq_method == "none")],
         f"each size's best saturated run at each exposure level ({len(best)} runs: "
         f"`--where \"ptq_method == 'none' and run_id in {sorted(best.run_id)}\"`)"),
    ]  # fmt: skip
    out = []
    for rows, what in fits_:
        try:
            res = fits.fit(rows, law="capacity", n_boot=200, seed=0)
        except Exception as exc:  # the report states why the fit failed instead of crashing
            out += [f"Fitted capacity law on {what}: not available ({type(exc).__name__}: {exc}).", ""]
            continue
        out += [f"Fitted capacity law on {what}, 200 bootstrap draws:", "", "```",
                res.summary().as_text().rstrip(), "```", ""]  # fmt: skip
    return out


def _log(store_dir: Path) -> list[dict[str, Any]]:
    path = store_dir / "bench-log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def report(store_dir: Path, write: Path | None, examples: Path | None) -> None:
    """The docs/benchmarks.md section from whatever runs the store holds; the example table from its rows."""
    from sweeps.store import RunStore

    df = RunStore(store_dir / "results.parquet").read_runs()
    df = df[(df.task == "bios") & (df.status == "ok")]
    if df.empty:
        print("no finished runs in", store_dir)
        return
    if examples is not None:
        examples.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(examples, index=False)
    log = _log(store_dir)
    loads = [e[k] for e in log for k in ("load_before", "load_after")]
    trained = [e for e in log if e["trained"]]
    when = f"{trained[0]['time']} – {trained[-1]['time']}" if trained else "unknown"
    nice = sorted({e["nice"] for e in log})
    planned = len(planned_pieces())
    text = "\n".join([
        SECTION, "",
        f"Machine: {machine()}. Load average (1 min) around the pieces: {min(loads, default=0):.1f}–"
        f"{max(loads, default=0):.1f} on 2 cores shared by five engineers' tests and benchmarks; the "
        f"benchmark ran at nice {', '.join(map(str, nice))}, 1 worker, 1 torch thread, so its throughput "
        f"column mostly measures the idle CPU it got. Runs trained {when}; finished: {df.run_id.nunique()} "
        f"of {planned} planned models ({len(df)} rows with the PTQ copies). Compute dtype: "
        f"{', '.join(sorted(set(df.compute_dtype.astype(str))))} (bf16 only where matmuls are native).",
        "",
        f"Commands: `{RUN}` (run, resumable), `{REPORT}` (this section and the example table), and to "
        f"continue where it stopped and write both at the end: `{RESUME}`.",
        "",
        "World: bioD(N, K=16, C=1, D=64, L=1, T=64), names of 4 alphabet tokens (N0 = 64^4), 21-token "
        "biographies (`<s>`, name, 16 values, no attribute markers), a 66-entry vocabulary of which 65 "
        f"occur. Model family `{SHAPE}` (2 layers, 16-wide heads, GELU MLP, tied embeddings), fp32, AdamW, "
        "cosine schedule, batch 8 × 126 tokens (6 whole biographies per row), peak lr 0.012·(n/2.5e4)^−¼. "
        "People: bits offered = 2× the paper-count parameters at 100 exposures, 2.2× at 1000 (the plateau "
        "pieces add 1× and 4× at d_model 32 and 100 exposures, 1.1× and 4× at d_model 16 and 4× at 32 and 48 "
        "at 1000 exposures); lr100/lr100b try ×0.25–×4 the lr rule's rate at 100 exposures; seeds repeats "
        "d_model 16 and 32 with seed 1. R = bits / params counted as the paper does (transformer + "
        "embedding rows of tokens that occur); bits / N divides by the non-embedding parameters only. PTQ "
        "quantizes every hidden linear weight per output channel (scaling.ptq.evaluate_ptq); the embedding "
        f"stays fp32. \"stored\" = bits / bits offered; a run is saturated when it stores < {SATURATED:.0%} "
        "of the bits offered. Junk: 7 junk tokens per useful token in untagged junk documents, the domain "
        "token (if any) on the useful documents only, at 100 exposures of the useful data (8× the tokens "
        "of the clean run; the 1000-exposure junk run would be 8 × 1000 exposures).",
        "",
        *tables(df), "",
        f"Goals ({GOALS}):", "",
        *verdicts(df), "",
        "What limits them:", "",
        *limits(df), "",
        *fitted_law(df), "",
    ])  # fmt: skip
    print(text)
    if write is not None:
        write_section(write, SECTION, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="sweep store directory (resumable)")
    ap.add_argument("--workers", type=int, default=1, help="runs trained at once (one process each)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    ap.add_argument("--pieces", default=",".join(PIECES), help="comma-separated pieces, run in this order")
    ap.add_argument("--write", type=Path, default=None, help="replace this benchmark's section in the file")
    ap.add_argument("--examples", type=Path, default=None, help="write the finished runs' rows here")
    ap.add_argument("--report-only", action="store_true", help="only write the report from the store")
    ap.add_argument("--plan", action="store_true", help="list the pieces' runs, tokens and what is done")
    args = ap.parse_args()
    from scaling.train import native_bf16

    compute = "bf16" if native_bf16() else "fp32"
    names = [p for p in args.pieces.split(",") if p]
    if args.plan:
        show_plan(names, args.store, compute)
        return 0
    if not args.report_only:
        run_pieces(names, args.store, args.workers, args.threads, compute)
    report(args.store, args.write, args.examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
