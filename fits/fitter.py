"""Robust multi-start fitting of a `Law`: Huber loss on log residuals, vectorised grid, L-BFGS-B polish.

Objective (Hoffmann et al. 2022, Approach 3; Besiroglu et al. 2024):

    f(θ) = Σ_i w_i · Huber_δ(log L̂_i(θ) − log L_i),   Huber_δ(r) = r²/2 if |r| ≤ δ else δ·(|r| − δ/2)

with δ = 1e-3 by default and w_i = 1 (bootstrap replicates use multinomial row counts as w_i).
Every start of the initial-value grid is evaluated in one vectorised call (the law formulas broadcast over
an (S, 1) batch of parameter vectors); the `n_refine` best starts are then polished together by a
batched Levenberg-Marquardt/IRLS (`refine_batched`, analytic or central-difference Jacobians) and the best
is finished with scipy's L-BFGS-B. Parameters can be fixed or tied (`tied={"beta": "alpha"}` makes β a
copy of α, as Kumar et al. 2024 do).

`staged_precision_fit` reproduces Kumar et al.'s staged procedure for the precision law: the Chinchilla
terms on high-precision runs, then the precision sensitivities γ_x, n_x on all pre-PTQ runs, then the
δ_PTQ constants on post-training-quantized rows, then a joint polish of all free parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.laws import KINDS, Law
from scaling.errors import UserError

DEFAULT_HUBER_DELTA = 1e-3
_BIG = 1e30  # objective value for parameter vectors where the law is undefined (NaN / inf predictions)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of residuals r: r²/2 inside ±δ, δ·(|r| − δ/2) outside (same as scipy.special.huber)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


@dataclass
class Objective:
    """Summed Huber loss of log residuals as a function of the *free* fit-space parameters.

    Parameters not in `free` take their value from `fixed` (fit space) or, when tied, from the parameter
    they copy. `values(Z)` evaluates a batch Z of shape (S, k); `value_and_grad(z)` returns the objective
    and its central-difference gradient, computed in one batched evaluation.
    """

    law: Law
    cols: dict[str, np.ndarray]
    log_y: np.ndarray
    free: tuple[str, ...]
    fixed: dict[str, float] = field(default_factory=dict)
    tied: dict[str, str] = field(default_factory=dict)
    delta: float = DEFAULT_HUBER_DELTA

    def __post_init__(self) -> None:
        unknown = [n for n in (*self.free, *self.fixed, *self.tied) if n not in self.law.param_names]
        if unknown:
            raise UserError(f"law {self.law.name!r} has no parameter(s) {', '.join(unknown)}")
        for name in self.law.param_names:
            sources = (name in self.free) + (name in self.fixed) + (name in self.tied)
            if sources != 1:
                raise ValueError(f"parameter {name!r} must be exactly one of free, fixed or tied")
        for name, target in self.tied.items():
            if target not in self.free and target not in self.fixed:
                raise UserError(f"{name} is tied to {target}, which is neither free nor fixed")
            if self.law.param(name).log != self.law.param(target).log:
                raise UserError(f"cannot tie {name} to {target}: they are fitted on different scales")
        self.lower = np.array([self.law.param(n).fit_bounds[0] for n in self.free])
        self.upper = np.array([self.law.param(n).fit_bounds[1] for n in self.free])

    def theta(self, Z: np.ndarray) -> dict[str, Any]:
        """Full fit-space parameter mapping from a batch Z (S, k) of free values: each entry (S, 1)."""
        Z = np.atleast_2d(Z)
        theta: dict[str, Any] = {n: Z[:, i : i + 1] for i, n in enumerate(self.free)}
        theta.update({n: np.full((Z.shape[0], 1), v) for n, v in self.fixed.items()})
        for name, target in self.tied.items():
            theta[name] = theta[target]
        return theta

    def values(self, Z: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Objective for each row of Z (S, k) -> (S,). `weights` (n,) or (S, n) weight the data rows."""
        with np.errstate(all="ignore"):
            r = self.law.log_predict_theta(self.theta(Z), self.cols) - self.log_y
            loss = huber(r, self.delta)
            f = (loss if weights is None else loss * weights).sum(axis=-1)
        return np.where(np.isfinite(f), f, _BIG)

    def value_and_grad(self, z: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """f(z) and ∇f(z) by central differences (step 1e-6·max(1, |z_i|)), one batched evaluation."""
        k = z.size
        h = 1e-6 * np.maximum(1.0, np.abs(z))
        batch = np.repeat(z[None, :], 2 * k + 1, axis=0)
        idx = np.arange(k)
        batch[1 + idx, idx] += h
        batch[1 + k + idx, idx] -= h
        f = self.values(batch, weights)
        grad = (f[1 : k + 1] - f[k + 1 :]) / (2 * h)
        if not np.all(np.isfinite(grad)) or f[0] >= _BIG:
            grad = np.zeros(k)
        return float(f[0]), grad

    def log_residuals_and_jacobian(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals r = log L̂ − log L (S, n) and their Jacobian ∂r/∂z (S, n, k).

        Analytic when the law provides `log_jacobian` (tied parameters add their partial to the one they
        copy), else central differences with step 1e-6·max(1, |z|) in one batched evaluation.
        """
        S, k = Z.shape
        if self.law.log_jacobian is not None:
            with np.errstate(all="ignore"):
                value, parts = self.law.log_jacobian(self.theta(Z), self.cols)
            n = self.log_y.size
            J = np.zeros((S, n, k))
            col = {name: i for i, name in enumerate(self.free)}
            for name, d in parts.items():
                target = self.tied.get(name, name)
                if target in col:
                    J[:, :, col[target]] += np.broadcast_to(d, (S, n))
            return np.broadcast_to(value, (S, n)) - self.log_y, J
        h = 1e-6 * np.maximum(1.0, np.abs(Z))  # (S, k)
        batch = np.repeat(Z[:, None, :], 2 * k + 1, axis=1)  # (S, 2k+1, k)
        idx = np.arange(k)
        batch[:, 1 + idx, idx] += h
        batch[:, 1 + k + idx, idx] -= h
        with np.errstate(all="ignore"):
            r = self.law.log_predict_theta(self.theta(batch.reshape(-1, k)), self.cols) - self.log_y
        r = r.reshape(S, 2 * k + 1, -1)
        J = (r[:, 1 : k + 1] - r[:, k + 1 :]) / (2 * h[:, :, None])  # (S, k, n)
        return r[:, 0], J.transpose(0, 2, 1)


def _projected_step(A: np.ndarray, g: np.ndarray, at_lo: np.ndarray, at_hi: np.ndarray) -> np.ndarray:
    """Solve A·Δ = −g (batch: A (m, k, k), g (m, k)) with bound-active coordinates held at Δ_i = 0.

    A coordinate on its lower (upper) bound is held when the gradient or the solved step points below
    (above) the bound; the system is re-solved without it until no free coordinate steps outward (at most k
    passes; usually one). Without this, an almost flat parameter sitting on a bound (E → its lower bound
    when the data show no irreducible loss) takes most of the unconstrained step, clipping throws that part
    away, the other coordinates barely move and λ is pumped up by rejections: the objective creeps down
    for hundreds of iterations and the relative-decrease test never fires.
    """
    k = g.shape[1]
    eye = np.eye(k)
    held = (at_lo & (g > 0)) | (at_hi & (g < 0))
    for _ in range(k + 1):
        keep = ~held
        Am = A * (keep[:, :, None] & keep[:, None, :]) + eye * held[:, :, None]
        gm = np.where(held, 0.0, g)
        try:
            step = -np.linalg.solve(Am, gm[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -gm / np.maximum(np.einsum("sii->si", Am), 1e-300)
        outward = ((at_lo & (step < 0)) | (at_hi & (step > 0))) & keep
        if not outward.any():
            break
        held |= outward
    return np.where(held, 0.0, step)


def _longer_step(
    obj: Objective,
    Z: np.ndarray,
    step: np.ndarray,
    Zn: np.ndarray,
    fn: np.ndarray,
    weights: np.ndarray | None,
    rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Best of Z + s·step (projected) for s ∈ {1, 2, 4, 8}, given the accepted Zn = Z + step and fn = f(Zn).

    With most residuals outside ±δ the IRLS quadratic over-estimates the curvature of the (piecewise
    linear) Huber tails, so the accepted steps are consistently too short and convergence is slowly
    linear; trying longer steps along the same direction costs three objective evaluations per vector.
    `weights` are the active vectors' row weights and `rows` the positions of Z within them.
    """
    scales = np.array([2.0, 4.0, 8.0])
    m, k = Z.shape
    trial = np.clip(Z[:, None, :] + scales[None, :, None] * step[:, None, :], obj.lower, obj.upper)
    w = None if weights is None else np.repeat(weights[rows], scales.size, axis=0)
    ft = obj.values(trial.reshape(-1, k), w).reshape(m, scales.size)
    best = np.argmin(ft, axis=1)
    better = ft[np.arange(m), best] < fn
    Zn, fn = Zn.copy(), fn.copy()
    Zn[better] = trial[better, best[better]]
    fn[better] = ft[better, best[better]]
    return Zn, fn


def refine_batched(
    obj: Objective,
    Z0: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    max_iter: int = 300,
    ftol: float = 1e-13,
    outside_curvature: float = 1.0,
    extrapolate: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polish many parameter vectors at once: Levenberg-Marquardt on the Huber objective via IRLS.

    Each iteration linearises the log residuals (r ≈ r0 + J·Δ), majorises Huber by the quadratic with
    curvature ψ(r0)/r0 (1 inside ±δ, δ/|r0| outside) and solves (JᵀUJ + λ·diag(JᵀUJ))·Δ = −JᵀU·r0 for
    every vector in the batch; a step is kept only if the true objective decreases (else λ grows ×10).
    Coordinates on a bound whose gradient or step points outward are held fixed for that step (active
    set, `_projected_step`); the rest of the step is projected onto the bounds. An accepted step is
    also tried at 2, 4 and 8 times its length (`_longer_step`, unless `extrapolate=False`). A vector
    stops when an accepted step lowers the objective by less than `ftol` relative, or when no damping
    gives descent (λ > 1e10: a local minimum to working precision). `weights` (S, n) are per-vector row
    weights (bootstrap counts). Returns (Z, f, converged).
    """
    Z = np.clip(np.array(Z0, dtype=float, ndmin=2), obj.lower, obj.upper)
    S, k = Z.shape
    f = obj.values(Z, weights)
    lam = np.full(S, 1e-4)
    converged = np.zeros(S, dtype=bool)
    active = f < _BIG
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        w = None if weights is None else weights[idx]
        r, J = obj.log_residuals_and_jacobian(Z[idx])
        a = np.abs(r)
        u = np.where(a <= obj.delta, 1.0, outside_curvature * obj.delta / np.maximum(a, 1e-300))
        if w is not None:
            u = u * w
        JtU = J.transpose(0, 2, 1) * u[:, None, :]
        H = JtU @ J
        g = (JtU @ r[:, :, None])[:, :, 0]  # exact gradient of the objective (ψ(r) = u·r)
        at_lo, at_hi = Z[idx] <= obj.lower, Z[idx] >= obj.upper
        diag = np.maximum(np.einsum("sii->si", H), 1e-12)
        todo = np.ones(idx.size, dtype=bool)
        for _ in range(12):  # damping loop: only the vectors whose step was rejected try again
            t = np.flatnonzero(todo)
            if t.size == 0:
                break
            A = H[t] + (lam[idx[t]][:, None] * diag[t])[:, :, None] * np.eye(k)
            step = _projected_step(A, g[t], at_lo[t], at_hi[t])
            Zn = np.clip(Z[idx[t]] + step, obj.lower, obj.upper)
            fn = obj.values(Zn, None if w is None else w[t])
            ok = fn < f[idx[t]]
            acc = idx[t][ok]
            if acc.size and extrapolate:  # accepted: also try 2, 4, 8× the step, keep the best
                Zn[ok], fn[ok] = _longer_step(obj, Z[acc], step[ok], Zn[ok], fn[ok], w, t[ok])
            small = (f[acc] - fn[ok]) <= ftol * np.abs(f[acc])
            Z[acc], f[acc] = Zn[ok], fn[ok]
            lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
            converged[acc[small]] = True
            active[acc[small]] = False
            rej = idx[t][~ok]
            lam[rej] *= 10.0
            stuck = rej[lam[rej] > 1e10]
            converged[stuck] = True
            active[stuck] = False
            todo[t[ok]] = False
            todo[t[~ok][lam[rej] > 1e10]] = False
    return Z, f, converged


@dataclass
class FitOutcome:
    """The result of one fit: full fit-space parameters, objective, convergence and bookkeeping."""

    theta: dict[str, float]
    objective: float
    converged: bool
    n_starts: int
    n_refined: int
    free: tuple[str, ...]
    message: str = ""
    stages: list[dict[str, Any]] = field(default_factory=list)


def _minimize(obj: Objective, z0: np.ndarray, weights: np.ndarray | None, maxiter: int) -> Any:
    from scipy.optimize import minimize

    scale = 1.0 / obj.delta  # f/δ ≈ Σ|r|: O(1) values so that the gradient tolerance means something
    bounds = list(zip(obj.lower, obj.upper, strict=True))
    z0 = np.clip(z0, obj.lower, obj.upper)

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = obj.value_and_grad(z, weights)
        return f * scale, g * scale

    return minimize(
        fun,
        z0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-9},
    )


def fit_objective(
    obj: Objective,
    starts: np.ndarray,
    *,
    n_refine: int = 32,
    weights: np.ndarray | None = None,
    maxiter: int = 2000,
) -> FitOutcome:
    """Multi-start fit: evaluate all `starts` (S, k) in one call, polish the `n_refine` best together with
    `refine_batched`, then run scipy's L-BFGS-B from the best; keep the lowest converged objective."""
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    if starts.shape[1] != len(obj.free):
        raise ValueError(f"starts have {starts.shape[1]} columns, expected {len(obj.free)}")
    starts = np.clip(starts, obj.lower, obj.upper)
    grid_f = np.concatenate(
        [obj.values(c, weights) for c in np.array_split(starts, max(1, len(starts) // 2048))]
    )
    order = np.argsort(grid_f, kind="stable")[: max(1, n_refine)]
    W = None if weights is None else np.broadcast_to(weights, (len(order), weights.shape[-1]))
    Z, F, conv = refine_batched(obj, starts[order], W)
    pick = min(range(len(order)), key=lambda i: (not conv[i], F[i]))
    z, f, ok = Z[pick], float(F[pick]), bool(conv[pick])
    res = _minimize(obj, z, weights, maxiter)
    f_lb = float(obj.values(res.x[None, :], weights)[0])
    message = "batched Levenberg-Marquardt (IRLS)"
    if f_lb < f or (not ok and res.success):
        z, f, ok, message = res.x, f_lb, bool(res.success) or ok, f"L-BFGS-B: {res.message}"
    ok = ok and f < _BIG
    theta = {n: float(v[0, 0]) for n, v in obj.theta(z[None, :]).items()}
    return FitOutcome(
        theta=theta,
        objective=f,
        converged=ok,
        n_starts=len(starts),
        n_refined=len(order),
        free=obj.free,
        message=message,
    )


def _fit_space_fixed(law: Law, fixed: Mapping[str, float] | None) -> dict[str, float]:
    return {n: law.param(n).to_fit(v) for n, v in (fixed or {}).items()}


def fit_law(
    law: Law,
    X: Mapping[str, Any],
    y: np.ndarray,
    *,
    fixed: Mapping[str, float] | None = None,
    tied: Mapping[str, str] | None = None,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    starts: np.ndarray | None = None,
    n_refine: int = 32,
) -> tuple[FitOutcome, Objective]:
    """Fit `law` to targets `y` (loss, or bits) given the table `X` (natural-valued `fixed` parameters).

    `starts` (fit space, one column per free parameter in law order) defaults to the law's full grid.
    Returns the outcome and the objective it minimised (for the bootstrap).
    """
    fixed_fit = _fit_space_fixed(law, fixed)
    tied = dict(tied or {})
    free = tuple(n for n in law.param_names if n not in fixed_fit and n not in tied)
    if not free:
        raise UserError("every parameter is fixed or tied: nothing to fit")
    obj = Objective(
        law, law.prepare(X), np.log(np.asarray(y, dtype=float)), free, fixed_fit, tied, huber_delta
    )
    grid = law.start_grid(free) if starts is None else starts
    return fit_objective(obj, grid, n_refine=n_refine), obj


# ---------------------------------------------------------------------------------- staged precision fit

CHINCHILLA_PART = ("A", "B", "E", "alpha", "beta")
PTQ_PART = ("C_T", "gamma_D", "gamma_N", "gamma_post")
ROBUSTNESS_PART = ("C_w", "C_a", "C_kv")


def staged_precision_fit(
    law: Law,
    X: Mapping[str, Any],
    y: np.ndarray,
    *,
    tied: Mapping[str, str] | None = None,
    fixed: Mapping[str, float] | None = None,
    defaults: Mapping[str, float],
    free_extra: Sequence[str] = (),
    huber_delta: float = DEFAULT_HUBER_DELTA,
    n_refine: int = 32,
) -> tuple[FitOutcome, Objective]:
    """Kumar et al. 2024's staged fit of the precision law, then a joint polish of everything free.

    1. A, B, E, α, β on rows trained at high precision (all P_x = 16) without PTQ;
    2. γ_x, n_x for each kind x whose training precision varies, on all rows without PTQ;
    3. C_T, γ_D, γ_N, γ_post on the PTQ rows (when there are any);
    4. all free parameters jointly on all rows, from the staged estimate.

    Parameters the data cannot identify (a kind never quantized in training; the δ_PTQ terms without PTQ
    rows; the robustness constants C_x unless listed in `free_extra`) are fixed at `defaults` (natural
    values, e.g. the kumar2024 constants); they are listed in the outcome's `stages`. Returns the
    outcome and the joint objective (for the bootstrap).
    """
    cols = law.prepare(X)
    log_y = np.log(np.asarray(y, dtype=float))
    tied = dict(tied or {})
    user_fixed = _fit_space_fixed(law, fixed)
    default_fit = _fit_space_fixed(law, {n: v for n, v in defaults.items() if n in law.param_names})
    no_ptq = cols["ptq"] == 0
    high = no_ptq & np.all([cols[f"P_{k}"] >= 16 for k in KINDS], axis=0)
    varied = [k for k in KINDS if np.any(cols[f"P_{k}"][no_ptq] < 16)]
    has_ptq = bool(np.any(~no_ptq))
    if high.sum() < 5:
        raise UserError(
            f"the precision law needs >= 5 high-precision (16-bit) runs without PTQ, got {int(high.sum())}"
        )

    identifiable = set(CHINCHILLA_PART)
    for k in varied:
        identifiable |= {f"gamma_{k}", f"n_{k}"}
    if has_ptq:
        identifiable |= set(PTQ_PART)
    identifiable |= set(free_extra)
    current = {n: default_fit.get(n, 0.0) for n in law.param_names}
    current.update(user_fixed)
    held = {n for n in law.param_names if n not in identifiable and n not in user_fixed and n not in tied}
    missing = [n for n in held if n not in default_fit]
    if missing:
        raise UserError(f"no default value for unidentifiable parameter(s) {', '.join(missing)}")

    def subset(mask: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[mask] for k, v in cols.items()}

    def run(names: Sequence[str], mask: np.ndarray, label: str) -> None:
        free = tuple(n for n in law.param_names if n in names and n not in user_fixed and n not in tied)
        if not free:
            return
        fixed_now = {n: current[n] for n in law.param_names if n not in free and n not in tied}
        obj = Objective(law, subset(mask), log_y[mask], free, fixed_now, tied, huber_delta)
        out = fit_objective(obj, law.start_grid(free), n_refine=n_refine)
        current.update({n: out.theta[n] for n in free})
        stages.append(
            {
                "stage": label,
                "rows": int(mask.sum()),
                "free": list(free),
                "objective": out.objective,
                "starts": out.n_starts,
            }
        )

    stages: list[dict[str, Any]] = []
    run(CHINCHILLA_PART, high, "high-precision runs: A, B, E, alpha, beta")
    run([f"{p}_{k}" for k in varied for p in ("gamma", "n")], no_ptq, "pre-PTQ runs: gamma_x, n_x")
    if has_ptq:
        run(PTQ_PART, np.ones_like(no_ptq), "all rows: delta_PTQ constants")
    free = tuple(n for n in law.param_names if n not in held and n not in user_fixed and n not in tied)
    fixed_all = {n: current[n] for n in law.param_names if n not in free and n not in tied}
    joint = Objective(law, cols, log_y, free, fixed_all, tied, huber_delta)
    start = np.array([[current[n] for n in free]])
    out = fit_objective(joint, start, n_refine=1)
    out.n_starts = sum(st["starts"] for st in stages) + 1
    out.stages = [
        *stages,
        {"stage": "joint polish", "rows": len(log_y), "free": list(free), "held": sorted(held)},
    ]
    return out, joint
