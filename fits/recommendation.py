"""Compute-optimal model size, tokens and training precision for a budget (`scalefit recommend`).

Problem. Given a budget C (bf16-FLOP equivalents), a loss law L(N, D, P_w, P_a, P_kv[, P_post]) and a
hardware profile with relative throughput t(s) per precision spec s (`fits.hardware`), solve

    min over s in S, N, D of  L(N, D, P(s))   subject to  6·N·D / t(s) = C,
                                                         N ≤ max_params, D ≤ max_tokens,
                                                         N·P_store / 8 ≤ memory (bytes), N = fixed N

(Kumar et al. 2024, "Scaling Laws for Precision", §4.3, with their cost C = (6/16)·N·D·P as the `bits`
profile). For each spec the budget fixes K = N·D = C·t(s)/6, so the problem is one-dimensional in
x = log N on the interval the constraints leave. There the Chinchilla law, and the precision law (with or
without its δ_PTQ term), are sums of exponentials in x with positive weights, hence strictly convex; the
optimum is the law's closed-form allocation (`Law.allocation`; Hoffmann et al. 2022 for Chinchilla),
clipped to the interval, when the law has one and no precision term, and a bounded 1-D solve otherwise
(`fits.optimize`). All specs are solved at once, vectorised. The precision set S (`fits.candidates`) is
searched exhaustively; a law without a precision term is searched at bf16 only (it cannot rank formats).

`recommend(flops, law=..., fit=...)` is the public entry: it resolves the law (`fits.sources`), runs
`optimise`, and adds the fit's diagnostics and extrapolation warnings to the answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.calibration import calibration_notes, combine, extrapolation_halfwidth
from fits.candidates import candidate_specs, parse_bits, spec_label
from fits.hardware import HardwareProfile, get_profile
from fits.law import KINDS, Law
from fits.optimize import finite, minimise_log_n
from fits.sources import LawSource, load_law, loss_source
from scaling.errors import UserError
from scaling.formats import PrecisionSpec

__all__ = ["Option", "Recommendation", "extrapolation_warnings", "optimise", "recommend"]

MIN_FLOPS, MAX_FLOPS = 1e6, 1e35
"""Budgets outside this range are rejected as absurd (1e35 FLOPs is ~10^7 years of today's largest runs)."""

N_MIN = 1.0
D_MIN = 1.0
EXTRAPOLATION_FACTOR = 10.0
"""Warn when the answer lies more than this factor outside the fitted data range of N, D or C."""
REACH_FACTOR = 1e6
REACH_RATIO = 1e3
"""Out of reach: an allocation whose N or D lies more than `REACH_FACTOR`× outside the fitted range of N or
D, or whose tokens per parameter D/N lies more than `REACH_RATIO`× outside the fitted D/N range. Scaling
laws are for extrapolating in N and D together as compute grows; a constraint that pushes D/N a thousand
times past anything fitted asks the law about a regime it never saw. When every precision's optimum is
out of reach, recommend refuses (a `UserError`), naming the best one and how far out it lies."""


@dataclass(frozen=True)
class Option:
    """The best allocation at one precision spec."""

    precision: str
    spec: PrecisionSpec
    P_w: float
    P_a: float
    P_kv: float
    throughput: float
    N: float
    D: float
    loss: float
    penalty: float
    bound: str  # the constraint the optimum sits on ("" if interior)

    @property
    def tokens_per_param(self) -> float:
        return self.D / self.N

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "spec": self.spec.name,
            "P_w": self.P_w,
            "P_a": self.P_a,
            "P_kv": self.P_kv,
            "throughput": self.throughput,
            "N": self.N,
            "D": self.D,
            "tokens_per_param": self.tokens_per_param,
            "loss": self.loss,
            "penalty": self.penalty,
            "bound": self.bound,
        }


@dataclass
class Recommendation:
    """The optimum and every feasible alternative (sorted by loss), with the inputs that produced them."""

    law: str
    flops: float
    profile: str
    objective: str
    options: list[Option]
    serve_bits: float | None = None
    constraints: dict[str, float] = field(default_factory=dict)
    infeasible: list[str] = field(default_factory=list)
    loss_interval: tuple[float, float] | None = None
    n_interval: tuple[float, float] | None = None
    d_interval: tuple[float, float] | None = None
    n_draws: int = 0
    warnings: list[str] = field(default_factory=list)
    interval: str = "none"  # the loss interval's kind: calibrated | bootstrap | none (fits.calibration)

    @property
    def best(self) -> Option:
        return self.options[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "law": self.law,
            "flops": self.flops,
            "profile": self.profile,
            "objective": self.objective,
            "serve_bits": self.serve_bits,
            "constraints": self.constraints,
            "best": self.best.to_dict(),
            "loss_interval_95": list(self.loss_interval) if self.loss_interval else None,
            "loss_interval_kind": self.interval,
            "N_interval_95": list(self.n_interval) if self.n_interval else None,
            "D_interval_95": list(self.d_interval) if self.d_interval else None,
            "bootstrap_draws": self.n_draws,
            "options": [o.to_dict() for o in self.options],
            "infeasible": self.infeasible,
            "warnings": self.warnings,
        }


# ----------------------------------------------------------------------------------- the optimiser


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"{name} must be a positive finite number, got {value!r}", param=name)
    return v


def law_columns(
    N: np.ndarray, D: np.ndarray, bits: np.ndarray, serve_bits: float | None, law: Law
) -> dict[str, np.ndarray]:
    X: dict[str, np.ndarray] = {"N": N, "D": D}
    if law.responds_to("P_w"):
        for j, k in enumerate(KINDS):
            X[f"P_{k}"] = bits[:, j : j + 1] if N.ndim == 2 else bits[:, j]
        X["P_post"] = np.full_like(N, np.nan if serve_bits is None else serve_bits)
    return X


def optimise(
    law: Law,
    params: Mapping[str, float],
    flops: float,
    *,
    profile: str | HardwareProfile = "bits",
    precisions: Iterable[str] | None = None,
    per_kind: bool = False,
    serve_bits: float | None = None,
    max_params: float | None = None,
    max_tokens: float | None = None,
    memory_gb: float | None = None,
    n_params: float | None = None,
    draws: Mapping[str, np.ndarray] | None = None,
    data_range: Mapping[str, tuple[float, float]] | None = None,
    law_label: str | None = None,
    method: str = "auto",
) -> Recommendation:
    """Best (N, D, precision) for budget `flops` under `law(params)`; see the module docstring.

    `precisions`/`per_kind`: the precision set (`candidate_specs`). `serve_bits`: optimise the loss after
    post-training quantization of the weights to that many bits (δ_PTQ included). `max_params`,
    `max_tokens`: upper limits on N and D. `memory_gb`: N·P/8 bytes ≤ memory_gb·1e9 with P the serving bits
    (or the training weight bits if lower, or without PTQ). `n_params`: fix N (only D and precision vary).
    `draws`: bootstrap replicates ({param: array}) from a fit, giving 95% intervals of the optimum's loss,
    N and D. `data_range`: fitted {N, D, C, P_w, ...: (min, max)} for the extrapolation warnings.
    `method`: "auto" uses the closed form for `chinchilla`, "numeric" always solves numerically.
    """
    flops = _positive("flops", flops)
    assert flops is not None
    if not MIN_FLOPS <= flops <= MAX_FLOPS:
        raise UserError(
            f"compute budget {flops:.3g} FLOPs is outside the sane range [{MIN_FLOPS:g}, {MAX_FLOPS:g}]"
        )
    max_params = _positive("max_params", max_params)
    max_tokens = _positive("max_tokens", max_tokens)
    memory_gb = _positive("memory_gb", memory_gb)
    n_params = _positive("n_params", n_params)
    if method not in ("auto", "numeric"):
        raise ValueError(f"method must be 'auto' or 'numeric', got {method!r}")
    hw = profile if isinstance(profile, HardwareProfile) else get_profile(profile)
    warnings: list[str] = []
    uses_p = law.responds_to("P_w")
    if serve_bits is not None:
        serve_bits = parse_bits(serve_bits)
        if not uses_p:
            raise UserError(
                f"law {law.name!r} has no PTQ term; serve_bits needs a law with P_post", param="serve_bits"
            )
    if not uses_p:
        # Without a precision term every format predicts the same loss and only its cost differs, so a
        # ranking would favour the cheapest format for no reason the law knows: train at high precision.
        if precisions is not None and [p for p in precisions if p.strip().lower() != "bf16"]:
            warnings.append(
                f"law {law.name!r} has no precision term: recommending bf16 only (its loss is the same at "
                "every precision, so it cannot rank them; use a precision law such as kumar2024 or a "
                "precision fit)"
            )
        else:
            warnings.append(f"law {law.name!r} has no precision term: recommending bf16 only")
        precisions, per_kind = ["bf16"], False
    if n_params is not None and max_params is not None and n_params > max_params:
        raise UserError(
            f"contradictory constraints: n_params {n_params:.3g} exceeds max_params {max_params:.3g}",
            param="n_params",
        )

    specs = candidate_specs(precisions, per_kind)
    bits = np.array([[s.bits(k) for k in KINDS] for s in specs], dtype=float)
    speed = np.array([hw.throughput(s) for s in specs], dtype=float)
    K = flops * speed / 6.0  # N·D on the budget line

    # Interval for log N left by the constraints, per spec.
    lo = np.full(len(specs), math.log(N_MIN))
    hi = np.log(K / D_MIN)
    reasons = {"lo": np.full(len(specs), "", dtype=object), "hi": np.full(len(specs), "", dtype=object)}

    def tighten(side: str, value: np.ndarray, why: str) -> None:
        nonlocal lo, hi
        value = np.broadcast_to(np.asarray(value, dtype=float), lo.shape)
        if side == "hi":
            hit = value < hi
            hi = np.where(hit, value, hi)
        else:
            hit = value > lo
            lo = np.where(hit, value, lo)
        reasons[side] = np.where(hit, why, reasons[side])

    if max_params is not None:
        tighten("hi", math.log(max_params), "max N")
    if max_tokens is not None:
        tighten("lo", np.log(K / max_tokens), "max D")
    if memory_gb is not None:
        store = bits[:, 0] if serve_bits is None else np.minimum(bits[:, 0], serve_bits)
        tighten("hi", np.log(memory_gb * 1e9 * 8.0 / store), "memory")
    if n_params is not None:
        x = math.log(n_params)
        fixed_ok = (lo <= x + 1e-12) & (x <= hi + 1e-12)
        lo = np.where(fixed_ok, x, np.inf)
        hi = np.where(fixed_ok, x, -np.inf)
        reasons["lo"] = np.full(len(specs), "fixed N", dtype=object)
        reasons["hi"] = reasons["lo"]

    # Specs with the same bits, throughput and bounds pose the same problem (int8 and fp8-e4m3 under `bits`):
    # solve each distinct problem once.
    key = np.column_stack([bits, speed, lo, hi])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    u_bits, u_K, u_lo, u_hi = bits[first], K[first], lo[first], hi[first]

    def loss_at(x: np.ndarray) -> np.ndarray:
        N = np.exp(x)
        return law.predict(params, law_columns(N, u_K[:, None] / N, u_bits, serve_bits, law))

    if method == "auto" and law.allocation is not None and not uses_p and n_params is None:
        # The law's closed form (Hoffmann et al. 2022 for Chinchilla) on the line N·D = K, clipped (the
        # loss is convex in log N).
        u_x = np.log(law.allocation(params, 6.0 * u_K)["N_opt"])
        u_x = np.where(u_lo <= u_hi, np.clip(u_x, u_lo, u_hi), np.nan)
        u_f = finite(loss_at(np.nan_to_num(u_x)[:, None]))[:, 0]
        u_f = np.where(u_lo <= u_hi, u_f, np.inf)
    else:
        u_x, u_f = minimise_log_n(loss_at, u_lo, u_hi)
    x_opt, f_opt = u_x[inverse], u_f[inverse]

    feasible = np.isfinite(f_opt)
    infeasible = [spec_label(specs[i]) for i in np.flatnonzero(~feasible)]
    if not feasible.any():
        raise UserError(_infeasible_message(flops, n_params, max_params, max_tokens, memory_gb))
    if data_range:
        n_all = np.exp(np.where(feasible, x_opt, 0.0))
        far = [
            _out_of_reach(n_all[i], K[i] / n_all[i], data_range) if feasible[i] else ""
            for i in range(len(specs))
        ]
        reach = feasible & np.array([not f for f in far])
        if not reach.any():
            i = min(np.flatnonzero(feasible), key=lambda j: f_opt[j])
            raise UserError(
                f"no allocation within reach of the law's data: the best ({spec_label(specs[i])}, "
                f"N = {n_all[i]:.3g}, D = {K[i] / n_all[i]:.3g}) has {far[i]}; loosen the constraints "
                "or fit on runs closer to this budget"
            )
        infeasible += [f"{spec_label(specs[i])} (out of reach)" for i in np.flatnonzero(feasible & ~reach)]
        feasible = reach
    order = sorted(np.flatnonzero(feasible), key=lambda i: (f_opt[i], bits[i].sum()))
    best_loss = f_opt[order[0]]
    options = []
    for i in order:
        N = float(np.exp(x_opt[i]))
        side = "lo" if x_opt[i] <= lo[i] + 1e-9 else "hi" if x_opt[i] >= hi[i] - 1e-9 else ""
        bound = reasons[side][i] if side else ""
        options.append(
            Option(
                precision=spec_label(specs[i]),
                spec=specs[i],
                P_w=float(bits[i, 0]),
                P_a=float(bits[i, 1]),
                P_kv=float(bits[i, 2]),
                throughput=float(speed[i]),
                N=N,
                D=float(K[i] / N),
                loss=float(f_opt[i]),
                penalty=float(f_opt[i] - best_loss),
                bound=str(bound),
            )
        )

    rec = Recommendation(
        law=law_label or law.name,
        flops=flops,
        profile=hw.name,
        objective="loss after PTQ" if serve_bits is not None else "training loss",
        options=options,
        serve_bits=serve_bits,
        constraints={
            k: v
            for k, v in {
                "max_params": max_params,
                "max_tokens": max_tokens,
                "memory_gb": memory_gb,
                "params": n_params,
            }.items()
            if v is not None
        },
        infeasible=infeasible,
        warnings=warnings,
    )
    b = rec.best
    if serve_bits is not None and b.P_w > serve_bits and min(b.P_a, b.P_kv) <= serve_bits:
        rec.warnings.append(
            f"the optimum has no PTQ penalty only because a or kv is trained at <= {serve_bits:g} bits: the "
            "law's robustness term is a product over w, a, kv (Kumar et al. 2024), so one low-precision kind "
            "removes δ_PTQ for the weights; treat this extrapolation with care"
        )
    if draws:
        i = order[0]
        limits = (lo[i] if not reasons["lo"][i] else None, hi[i] if not reasons["hi"][i] else None)
        _propagate(rec, law, draws, K[i], bits[i], serve_bits, lo[i], hi[i], limits)
    if data_range:
        rec.warnings.extend(extrapolation_warnings(rec.best, flops, data_range))
    return rec


def _infeasible_message(
    flops: float, n: float | None, max_params: float | None, max_tokens: float | None, memory: float | None
) -> str:
    given = [
        f"{name} {v:.3g}"
        for name, v in (
            ("n_params", n),
            ("max_params", max_params),
            ("max_tokens", max_tokens),
            ("memory_gb", memory),
        )
        if v is not None
    ]
    return f"contradictory constraints: no precision can spend {flops:.3g} FLOPs with " + (
        ", ".join(given) if given else "N ≥ 1 and D ≥ 1"
    )


def _propagate(
    rec: Recommendation,
    law: Law,
    draws: Mapping[str, np.ndarray],
    K: float,
    bits: np.ndarray,
    serve_bits: float | None,
    lo: float,
    hi: float,
    limits: tuple[float | None, float | None] = (None, None),
) -> None:
    """95% percentile intervals over bootstrap draws: loss at the optimum and each draw's own optimal N, D.

    `limits`: the ends of the log N search interval that are search limits (N ≥ `N_MIN`, D ≥ `D_MIN`),
    not the user's constraints; an interval end that sits on one is unbounded (None), not a number.
    """
    theta = law.draws_to_fit_space(draws)
    S = len(next(iter(theta.values())))
    rows = np.tile(bits, (S, 1))

    def loss_at(x: np.ndarray) -> np.ndarray:
        N = np.exp(x)
        cols = law.prepare(law_columns(N, K / N, rows, serve_bits, law))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.exp(law.log_predict_theta(theta, cols))

    best = rec.best
    at_best = finite(loss_at(np.full((S, 1), math.log(best.N))))[:, 0]
    at_best = at_best[np.isfinite(at_best)]
    if len(at_best):
        rec.loss_interval = tuple(float(q) for q in np.percentile(at_best, [2.5, 97.5]))  # type: ignore[assignment]
    x_opt, _ = minimise_log_n(loss_at, np.full(S, lo), np.full(S, hi))
    x_opt = x_opt[np.isfinite(x_opt)]
    if len(x_opt):
        x_lo, x_hi = np.percentile(x_opt, [2.5, 97.5])
        n_lo = None if limits[0] is not None and x_lo <= limits[0] + 1e-6 else float(np.exp(x_lo))
        n_hi = None if limits[1] is not None and x_hi >= limits[1] - 1e-6 else float(np.exp(x_hi))
        rec.n_interval = (n_lo, n_hi)
        rec.d_interval = (None if n_hi is None else K / n_hi, None if n_lo is None else K / n_lo)
        if n_lo is None or n_hi is None:
            rec.warnings.append(
                "the optimal-N interval reaches the optimiser's search limit (N ≥ 1, D ≥ 1) on the "
                f"{'lower' if n_lo is None else 'upper'} side: that end is unbounded (some bootstrap fits "
                "have no interior optimum)"
            )
    rec.n_draws = S
    rec.interval = "bootstrap"


def _out_of_reach(N: float, D: float, data_range: Mapping[str, Any]) -> str:
    """Why (N, D) is out of reach of the fitted ranges (`REACH_FACTOR`, `REACH_RATIO`), or ""."""

    def outside(value: float, lo: float, hi: float, factor: float, what: str) -> str:
        if hi > 0 and value > hi * factor:
            return f"{what} {value / hi:.3g}x the largest fitted ({hi:.3g})"
        if lo > 0 and value < lo / factor:
            return f"{what} {lo / value:.3g}x below the smallest fitted ({lo:.3g})"
        return ""

    ranges = {k: (float(v[0]), float(v[1])) for k, v in data_range.items() if k in ("N", "D")}
    for key, value in (("N", N), ("D", D)):
        if key in ranges and (why := outside(value, *ranges[key], REACH_FACTOR, key)):
            return why
    if "D/N" in data_range:
        ratio = tuple(float(v) for v in data_range["D/N"])
    elif "N" in ranges and "D" in ranges:
        ratio = (ranges["D"][0] / ranges["N"][1], ranges["D"][1] / ranges["N"][0])
    else:
        return ""
    return outside(D / N, *ratio, REACH_RATIO, "tokens per parameter D/N")


def extrapolation_warnings(
    best: Option,
    flops: float,
    data_range: Mapping[str, tuple[float, float]],
    factor: float = EXTRAPOLATION_FACTOR,
) -> list[str]:
    """Warnings for the optimum's N, D or C lying more than `factor` outside the fitted range, or its bits
    (P_w, P_a, P_kv; `P` = all three) outside the fitted bits at all."""
    values = {"N": best.N, "D": best.D, "C": flops, "P_w": best.P_w, "P_a": best.P_a, "P_kv": best.P_kv}
    out = []
    for key, (lo, hi) in data_range.items():
        keys = ("P_w", "P_a", "P_kv") if key == "P" else (key,)
        for k in keys:
            v = values.get(k)
            if v is None or not (lo > 0 and hi > 0):  # also skips NaN ranges
                continue
            f = 1.0 if k.startswith("P_") else factor
            if v > hi * f:
                out.append(f"extrapolating: {k} = {v:.3g} is {v / hi:.3g}x the largest fitted {k} ({hi:.3g})")
            elif v < lo / f:
                out.append(
                    f"extrapolating: {k} = {v:.3g} is {lo / v:.3g}x below the smallest fitted {k} ({lo:.3g})"
                )
    return out


def recommend(
    flops: float,
    *,
    law: str | None = None,
    fit: Any = None,
    profile: str | HardwareProfile = "bits",
    precisions: Iterable[str] | None = None,
    per_kind: bool = False,
    serve_bits: float | str | None = None,
    max_params: float | None = None,
    max_tokens: float | None = None,
    memory_gb: float | None = None,
    n_params: float | None = None,
    method: str = "auto",
) -> Recommendation:
    """Best model size N, tokens D and training precision for a budget of `flops` FLOPs.

    The law is `fit` (a `FitResult` or a fit.json path: its bootstrap draws give intervals and its fitted
    ranges the extrapolation warnings) or the published set `law` (default `kumar2024`). The other options
    are `optimise`'s. The fit's diagnostics (parameters on bounds, ...) are repeated in `warnings`.
    """
    source = loss_source(load_law(law, fit))
    return recommend_with(
        source,
        flops,
        profile=profile,
        precisions=precisions,
        per_kind=per_kind,
        serve_bits=serve_bits,
        max_params=max_params,
        max_tokens=max_tokens,
        memory_gb=memory_gb,
        n_params=n_params,
        method=method,
    )


def recommend_with(source: LawSource, flops: float, **options: Any) -> Recommendation:
    """`optimise` on a resolved `LawSource` (its draws, ranges and diagnostics included)."""
    rec = optimise(
        source.law,
        source.params,
        flops,
        draws=source.draws,
        data_range=source.data_range,
        law_label=source.label,
        **options,
    )
    _calibrate_loss(rec, source)
    rec.warnings.extend(f"fit: {d['message']}" for d in source.diagnostics)
    return rec


def _calibrate_loss(rec: Recommendation, source: LawSource) -> None:
    """Widen the bootstrap loss interval at the optimum by the fit's extrapolation error term
    (`fits.calibration`), when the fit has a calibration."""
    result = source.result
    if rec.loss_interval is None or result is None or getattr(result, "calibration", None) is None:
        return
    b = rec.best
    X = law_columns(
        np.array([b.N]), np.array([b.D]), np.array([[b.P_w, b.P_a, b.P_kv]]), rec.serve_bits, source.law
    )
    h_e = extrapolation_halfwidth(result.calibration, np.asarray(source.law.compute(X, None)), 0.05)
    lo, hi = combine(
        np.array([b.loss]), np.array([rec.loss_interval[0]]), np.array([rec.loss_interval[1]]), h_e
    )
    rec.loss_interval = (float(lo[0]), float(hi[0]))
    rec.interval = "calibrated"
    rec.warnings.extend(calibration_notes(result, X, 0.05))
