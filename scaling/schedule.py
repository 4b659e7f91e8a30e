"""Learning-rate schedules: cosine, and warmup-stable-decay (WSD) whose cooldowns can branch off one run.

A schedule multiplies the peak learning rate at optimizer step t (0-based) of a run of S steps, with W
warmup steps and floor m (`min_frac`):

- **cosine** (Loshchilov & Hutter 2017; the OLMo recipe Kumar et al. 2024 train with): linear warmup
  (t + 1)/W for t < W, then m + (1 − m)·½·(1 + cos(π·p)), p = (t − W)/(S − W).
- **wsd**, warmup-stable-decay (Hu et al. 2024, "MiniCPM"; Hägele et al. 2024, "Scaling Laws and
  Compute-Optimal Training Beyond Fixed Training Durations"): the same warmup, the peak rate until the
  cooldown of C steps starts at F = S − C, then a decay from 1 to m,
  linear 1 − (1 − m)·x or 1-sqrt 1 − (1 − m)·√x, with x = (t − F + 1)/C ∈ (0, 1], so the last step trains
  at m. Hägele et al. find 1-sqrt better than linear and a cooldown of about 20% of the run enough to match
  cosine. (When W > F the two overlap and the smaller factor applies.)

Nothing a WSD run does before its cooldown depends on S (its warmup is given in tokens, not as a fraction of
the run), so a WSD run of S steps equals a constant-rate "trunk" to step F followed by its cooldown. One trunk
trained to its largest length can therefore fork a cooldown at every F_k and end as the runs of every
length S_k (`scaling.branches`), each a valid (N, D_k) point, for the cost of the trunk plus the cooldowns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaling.errors import UserError

__all__ = ["COOLDOWN_SHAPES", "SCHEDULES", "Schedule", "lr_factor"]

SCHEDULES = ("cosine", "wsd")
COOLDOWN_SHAPES = ("1-sqrt", "linear")


@dataclass(frozen=True)
class Schedule:
    """The learning-rate factor of every step of one run (see the module docstring for the formulas)."""

    kind: str  # "cosine" | "wsd"
    n_steps: int  # S
    warmup: int  # W (≥ 1)
    min_frac: float = 0.1  # m: the factor at the end of the decay
    cooldown: int = 0  # C (wsd): steps of the final decay; 0 = constant after warmup (a stable trunk)
    shape: str = "1-sqrt"  # wsd cooldown shape

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise UserError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.kind!r}")
        if self.shape not in COOLDOWN_SHAPES:
            raise UserError(f"cooldown shape must be one of {', '.join(COOLDOWN_SHAPES)}, not {self.shape!r}")
        if self.n_steps < 1 or self.warmup < 1:
            raise UserError(f"a schedule needs n_steps and warmup >= 1, got {self.n_steps}, {self.warmup}")
        if not 0 <= self.cooldown <= self.n_steps:
            raise UserError(f"cooldown must be 0..{self.n_steps} steps, got {self.cooldown}")
        if not 0.0 <= self.min_frac <= 1.0:
            raise UserError(f"min_lr_frac must be in [0, 1], got {self.min_frac}")

    @property
    def fork(self) -> int:
        """F: the first step of the cooldown (wsd; S when there is none). Steps before F train at the rate
        every WSD run with this warmup trains at, whatever its length."""
        return self.n_steps - self.cooldown if self.kind == "wsd" else 0

    def factor(self, step: int) -> float:
        """Multiplier of the peak learning rate at 0-based `step`."""
        ramp = min(1.0, (step + 1) / self.warmup)
        m = self.min_frac
        if self.kind == "cosine":
            if step < self.warmup:
                return ramp
            progress = (step - self.warmup) / max(1, self.n_steps - self.warmup)
            return m + (1 - m) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if self.cooldown == 0 or step < self.fork:
            return ramp
        x = min(1.0, (step - self.fork + 1) / self.cooldown)
        decay = 1 - (1 - m) * (math.sqrt(x) if self.shape == "1-sqrt" else x)
        return min(ramp, decay)


def lr_factor(step: int, n_steps: int, warmup_frac: float, min_frac: float) -> float:
    """The cosine schedule's factor with a warmup of `warmup_frac` of the steps (see `Schedule`)."""
    warmup = max(1, round(warmup_frac * n_steps))
    return Schedule("cosine", n_steps, warmup, min_frac).factor(step)
