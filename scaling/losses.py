"""Token-level losses and logit diagnostics, always computed in fp32 (or wider).

- `cross_entropy`: −log softmax(z)_y, mean over tokens (nats/token).
- `stablemax_cross_entropy`: Prieto et al. 2025, "Grokking at the Edge of Numerical Stability":
  s(z) = z + 1 for z ≥ 0 and 1 / (1 − z) for z < 0; StableMax(z)_i = s(z_i) / Σ_j s(z_j);
  loss = −log StableMax(z)_y. s grows linearly instead of exponentially, so the loss cannot saturate to
  an exactly-zero gradient the way fp32 softmax does ("softmax collapse").
- `softmax_collapse_fraction`: the fraction of tokens whose fp32 softmax cross-entropy gradient
  softmax(z) − onehot(y) is exactly zero in every entry (the collapse Prieto et al. describe).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("ce", "stablemax")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().flatten(0, -2), targets.flatten())


def _stablemax_s(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z >= 0, z + 1, 1 / (1 - torch.clamp(z, max=0)))


def stablemax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    s = _stablemax_s(logits.float().flatten(0, -2))
    s_y = s.gather(-1, targets.flatten()[:, None]).squeeze(-1)
    return (torch.log(s.sum(-1)) - torch.log(s_y)).mean()


def token_loss(name: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean loss over tokens for the loss called `name` (one of LOSSES)."""
    return stablemax_cross_entropy(logits, targets) if name == "stablemax" else cross_entropy(logits, targets)


@torch.no_grad()
def softmax_collapse_fraction(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of tokens whose fp32 softmax-CE gradient w.r.t. the logits is exactly zero."""
    p = torch.softmax(logits.float().flatten(0, -2), dim=-1)
    p.scatter_add_(-1, targets.flatten()[:, None], -torch.ones_like(p[:, :1]))
    return (p == 0).all(-1).float().mean().item()
