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
optimum is the closed form of Hoffmann et al. 2022 (clipped to the interval) for `chinchilla`, and a
bounded 1-D solve otherwise: a dense grid in x to bracket the minimum (robust even for a non-convex user
law), then golden-section search to ~1e-11 in x. All specs are solved at once, vectorised. The precision
set S is searched exhaustively: integer bits 3–15, bf16 (16 bits) and the float formats, one shared format
for weights/activations/KV or (per kind) every combination.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.hardware import HardwareProfile, get_profile
from fits.laws import KINDS, PUBLISHED, PUBLISHED_RANGES, Law, derived_quantities, published
from scaling.errors import UserError
from scaling.formats import FLOAT_FORMATS, IntFormat, PrecisionSpec, parse_format

DEFAULT_FORMATS: tuple[str, ...] = (*(f"int{b}" for b in range(3, 16)), "bf16", *FLOAT_FORMATS)
"""The default search set: int3..int15, bf16 (P = 16, same cost and loss as int16) and the float formats."""

MIN_FLOPS, MAX_FLOPS = 1e6, 1e35
"""Budgets outside this range are rejected as absurd (1e35 FLOPs is ~10^7 years of today's largest runs)."""

N_MIN = 1.0
D_MIN = 1.0
GRID_POINTS = 97
GOLDEN_ITERS = 56
EXTRAPOLATION_FACTOR = 10.0
"""Warn when the answer lies more than this factor outside the fitted data range of N, D or C."""


# ----------------------------------------------------------------------------------- precision set


def format_spec(name: str) -> PrecisionSpec:
    """One format for all three tensor kinds (`bf16`/`fp32` = unquantized)."""
    if name in ("bf16", "fp32"):
        return PrecisionSpec.parse(name)
    fmt = parse_format(name)
    return PrecisionSpec(w=fmt, a=fmt, kv=fmt)


def int_spec(bits: int) -> PrecisionSpec:
    """Shared integer precision `int<bits>` for all kinds (16 → bf16)."""
    return PrecisionSpec() if bits >= 16 else format_spec(IntFormat(bits).name)


def candidate_specs(precisions: Iterable[str] | None = None, per_kind: bool = False) -> list[PrecisionSpec]:
    """The precision specs to search.

    Without `per_kind`: `precisions` (precision specs such as `int8`, `fp8-e4m3`, `w4a8kv8`, `bf16`;
    default `DEFAULT_FORMATS`), each shared by all tensor kinds unless the spec itself says otherwise.
    With `per_kind`: every (w, a, kv) combination of the given *format names* (default `DEFAULT_FORMATS`).
    """
    names = list(DEFAULT_FORMATS if precisions is None else precisions)
    if not names:
        raise UserError("the precision set to search is empty")
    if not per_kind:
        return list(dict.fromkeys(PrecisionSpec.parse(n) for n in names))
    fmts = []
    for n in names:
        t = n.strip().lower()
        if t == "fp32":
            raise UserError("--per-kind searches formats per tensor kind under bf16 compute; drop fp32")
        fmts.append(None if t == "bf16" else parse_format(t))
    fmts = list(dict.fromkeys(fmts))
    return [PrecisionSpec(w=w, a=a, kv=kv) for w, a, kv in itertools.product(fmts, repeat=3)]


def spec_label(spec: PrecisionSpec) -> str:
    """Short label: the format name when all kinds share one format (`int8`, `fp8-e4m3`), else `spec.name`."""
    fmts = {spec.w, spec.a, spec.kv}
    if len(fmts) == 1 and spec.w is not None:
        return spec.w.name
    return spec.name


def parse_bits(text: str | float) -> float:
    """Serving precision in bits: a number (`4`), an integer format (`int4`) or a float one (`fp4-e2m1`)."""
    try:
        bits = float(text)
    except (TypeError, ValueError):
        bits = float(parse_format(str(text)).bits)
    if not math.isfinite(bits) or not 2 <= bits <= 16:
        raise UserError(f"serving precision must be 2..16 bits, got {text!r}")
    return bits


# -------------------------------------------------------------------------------------- 1-D solver


def minimise_log_n(
    loss: Callable[[np.ndarray], np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    grid: int = GRID_POINTS,
    iters: int = GOLDEN_ITERS,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise m independent 1-D functions on [lo_i, hi_i], vectorised over the m rows.

    `loss(x)` takes x of shape (m, k) and returns (m, k) values (non-finite = infeasible). A grid of `grid`
    points brackets each minimum, golden-section search refines it (bracket shrinks by 0.618 per step).
    Returns (x_opt, loss_opt), shape (m,); rows with lo > hi or no finite value get NaN and inf.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    ok = lo <= hi
    lo_, hi_ = np.where(ok, lo, 0.0), np.where(ok, hi, 0.0)
    t = np.linspace(0.0, 1.0, grid)
    xs = lo_[:, None] + (hi_ - lo_)[:, None] * t[None, :]
    vals = _finite(loss(xs))
    i = np.argmin(vals, axis=1)
    rows = np.arange(len(lo_))
    best_x, best_v = xs[rows, i], vals[rows, i]
    a = xs[rows, np.maximum(i - 1, 0)]
    b = xs[rows, np.minimum(i + 1, grid - 1)]
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = _finite(loss(np.stack([c, d], 1))).T
    for _ in range(iters):
        left = fc <= fd  # minimum in [a, d]
        a, b = np.where(left, a, c), np.where(left, d, b)
        c_new = np.where(left, b - inv_phi * (b - a), d)
        d_new = np.where(left, c, a + inv_phi * (b - a))
        fx = _finite(loss(np.stack([np.where(left, c_new, d_new)], 1)))[:, 0]
        fc, fd = np.where(left, fx, fd), np.where(left, fc, fx)
        c, d = c_new, d_new
    mid = 0.5 * (a + b)
    f_mid = _finite(loss(mid[:, None]))[:, 0]
    better = f_mid < best_v
    x_opt, f_opt = np.where(better, mid, best_x), np.where(better, f_mid, best_v)
    bad = ~ok | ~np.isfinite(f_opt)
    return np.where(bad, np.nan, x_opt), np.where(bad, np.inf, f_opt)


def _finite(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return np.where(np.isfinite(v), v, np.inf)


# ----------------------------------------------------------------------------------------- results


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
        raise UserError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _law_uses_precision(law: Law) -> bool:
    return "P_w" in (*law.inputs, *law.optional_inputs)


def _columns(
    N: np.ndarray, D: np.ndarray, bits: np.ndarray, serve_bits: float | None, law: Law
) -> dict[str, np.ndarray]:
    X: dict[str, np.ndarray] = {"N": N, "D": D}
    if _law_uses_precision(law):
        for j, k in enumerate(KINDS):
            X[f"P_{k}"] = bits[:, j : j + 1] if N.ndim == 2 else bits[:, j]
        X["P_post"] = np.full_like(N, np.nan if serve_bits is None else serve_bits)
    return X


def recommend(
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
    flops = _positive("the compute budget (--flops)", flops)
    assert flops is not None
    if not MIN_FLOPS <= flops <= MAX_FLOPS:
        raise UserError(
            f"compute budget {flops:.3g} FLOPs is outside the sane range [{MIN_FLOPS:g}, {MAX_FLOPS:g}]"
        )
    max_params = _positive("--max-params", max_params)
    max_tokens = _positive("--max-tokens", max_tokens)
    memory_gb = _positive("--memory-gb", memory_gb)
    n_params = _positive("--params", n_params)
    if method not in ("auto", "numeric"):
        raise ValueError(f"method must be 'auto' or 'numeric', got {method!r}")
    hw = profile if isinstance(profile, HardwareProfile) else get_profile(profile)
    warnings: list[str] = []
    uses_p = _law_uses_precision(law)
    if serve_bits is not None:
        serve_bits = parse_bits(serve_bits)
        if not uses_p:
            raise UserError(f"law {law.name!r} has no PTQ term; --serve-precision needs a precision law")
    if precisions is None and not uses_p:
        precisions = ["bf16"]
        warnings.append(f"law {law.name!r} does not depend on precision: searching bf16 only")
    elif precisions is not None and not uses_p:
        warnings.append(f"law {law.name!r} does not depend on precision: only the cost differs between them")
    if n_params is not None and max_params is not None and n_params > max_params:
        raise UserError(
            f"contradictory constraints: --params {n_params:.3g} exceeds --max-params {max_params:.3g}"
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
        return law.predict(params, _columns(N, u_K[:, None] / N, u_bits, serve_bits, law))

    if method == "auto" and law.name == "chinchilla" and n_params is None:
        # Hoffmann et al. 2022 closed form on the line N·D = K, clipped (the loss is convex in log N).
        u_x = np.log(derived_quantities(params, budget=6.0 * u_K)["N_opt"])
        u_x = np.where(u_lo <= u_hi, np.clip(u_x, u_lo, u_hi), np.nan)
        u_f = _finite(loss_at(np.nan_to_num(u_x)[:, None]))[:, 0]
        u_f = np.where(u_lo <= u_hi, u_f, np.inf)
    else:
        u_x, u_f = minimise_log_n(loss_at, u_lo, u_hi)
    x_opt, f_opt = u_x[inverse], u_f[inverse]

    feasible = np.isfinite(f_opt)
    infeasible = [spec_label(specs[i]) for i in np.flatnonzero(~feasible)]
    if not feasible.any():
        raise UserError(_infeasible_message(flops, n_params, max_params, max_tokens, memory_gb))
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
        _propagate(rec, law, draws, K[order[0]], bits[order[0]], serve_bits, lo[order[0]], hi[order[0]])
    if data_range:
        rec.warnings.extend(extrapolation_warnings(rec.best, flops, data_range))
    return rec


def _infeasible_message(
    flops: float, n: float | None, max_params: float | None, max_tokens: float | None, memory: float | None
) -> str:
    given = [
        f"{name} {v:.3g}"
        for name, v in (
            ("--params", n),
            ("--max-params", max_params),
            ("--max-tokens", max_tokens),
            ("--memory-gb", memory),
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
) -> None:
    """95% percentile intervals over bootstrap draws: loss at the optimum and each draw's own optimal N, D."""
    theta = law.draws_to_fit_space(draws)
    S = len(next(iter(theta.values())))
    rows = np.tile(bits, (S, 1))

    def loss_at(x: np.ndarray) -> np.ndarray:
        N = np.exp(x)
        cols = law.prepare(_columns(N, K / N, rows, serve_bits, law))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.exp(law.log_predict_theta(theta, cols))

    best = rec.best
    at_best = _finite(loss_at(np.full((S, 1), math.log(best.N))))[:, 0]
    at_best = at_best[np.isfinite(at_best)]
    if len(at_best):
        rec.loss_interval = tuple(float(q) for q in np.percentile(at_best, [2.5, 97.5]))  # type: ignore[assignment]
    x_opt, _ = minimise_log_n(loss_at, np.full(S, lo), np.full(S, hi))
    x_opt = x_opt[np.isfinite(x_opt)]
    if len(x_opt):
        n_lo, n_hi = np.exp(np.percentile(x_opt, [2.5, 97.5]))
        rec.n_interval = (float(n_lo), float(n_hi))
        rec.d_interval = (float(K / n_hi), float(K / n_lo))
    rec.n_draws = S


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


# ---------------------------------------------------------------------------------------- law, fit and plot


@dataclass
class LawSource:
    """Where the loss law comes from: a published constant set or a user's fit (with its bootstrap)."""

    law: Law
    params: dict[str, float]
    label: str
    draws: dict[str, np.ndarray] | None = None
    data_range: dict[str, tuple[float, float]] | None = None


def load_law(law: str | None = None, fit: str | None = None) -> LawSource:
    """The law to optimise: `fit` (a fit.json from `scalefit fit`) or the published set `law` (default
    `kumar2024`). A fit brings its bootstrap draws and fitted data range."""
    if fit is not None and law is not None:
        raise UserError("give either --law or --fit, not both")
    if fit is None:
        name = law or "kumar2024"
        if name not in PUBLISHED:
            raise UserError(
                f"unknown law {name!r} for recommend; choose a published one ({', '.join(PUBLISHED)}) "
                "or pass --fit fit.json"
            )
        f_law, params = published(name)
        return LawSource(f_law, params, name, data_range=PUBLISHED_RANGES.get(name))
    return _load_fit(fit)


def _load_fit(path: str) -> LawSource:
    from fits.results import FitResult

    res = FitResult.from_json(path)
    if res.law.target not in ("loss", "loss_post"):
        raise UserError(
            f"{path}: law {res.law.name!r} predicts {res.law.target}, not loss; recommend needs a loss law"
        )
    ranges = {k: (float(v[0]), float(v[1])) for k, v in res.data.get("ranges", {}).items()}
    return LawSource(
        res.law, dict(res.params), f"{res.law.name} fit ({path})", draws=res.draws, data_range=ranges
    )


def plot_recommendation(rec: Recommendation, source: LawSource, path: str, profile: str = "bits") -> None:
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
    X = _columns(NN.ravel(), np.full(NN.size, best.D), rows, rec.serve_bits, law)
    loss = _finite(law.predict(params, X)).reshape(NN.shape)
    if hw.native is None:  # linear-in-bits cost: a smooth budget curve, t(P) = 16 / P
        p_line = np.linspace(3.0, 16.0, 131)
        n_budget = rec.flops * (16.0 / p_line) / (6.0 * best.D)
    else:  # table profiles price formats, not bits: int3..int15 and bf16
        p_line = np.arange(3, 17)
        speed = np.array([hw.throughput(int_spec(int(b))) for b in p_line])
        n_budget = rec.flops * speed / (6.0 * best.D)

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    finite = loss[np.isfinite(loss)]
    levels = np.unique(np.quantile(finite, np.linspace(0.0, 0.9, 16)))  # even area per colour band
    shown = np.where(np.isfinite(loss), loss, finite.max())
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
    fig.savefig(path)
    plt.close(fig)
