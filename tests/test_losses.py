"""fp32 losses: cross-entropy, StableMax (Prieto et al. 2025) and the softmax-collapse diagnostic."""

from __future__ import annotations

import torch

from scaling.losses import cross_entropy, softmax_collapse_fraction, stablemax_cross_entropy


def test_cross_entropy_matches_float64_reference() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(3, 5, 11).to(torch.bfloat16), torch.randint(0, 11, (3, 5))
    ref = -torch.log_softmax(logits.double(), -1).gather(-1, y[..., None]).mean()
    assert cross_entropy(logits, y).dtype == torch.float32
    torch.testing.assert_close(cross_entropy(logits, y).double(), ref, rtol=1e-6, atol=1e-6)


def test_stablemax_matches_its_definition() -> None:
    torch.manual_seed(1)
    z, y = torch.randn(7, 9) * 4, torch.randint(0, 9, (7,))
    zd = z.double()
    s = torch.where(zd >= 0, zd + 1, 1 / (1 - zd))
    want = -torch.log(s.gather(-1, y[:, None]).squeeze(-1) / s.sum(-1)).mean()
    torch.testing.assert_close(stablemax_cross_entropy(z, y).double(), want, rtol=1e-6, atol=1e-6)


def test_stablemax_keeps_a_gradient_where_softmax_collapses() -> None:
    z = torch.zeros(1, 4)
    z[0, 2] = 200.0
    y = torch.tensor([2])
    for fn, zero in ((cross_entropy, True), (stablemax_cross_entropy, False)):
        zz = z.clone().requires_grad_(True)
        fn(zz, y).backward()
        assert bool((zz.grad == 0).all()) is zero


def test_softmax_collapse_fraction() -> None:
    z = torch.zeros(4, 3)
    z[:2, 0] = 500.0  # two tokens with a saturated, correct prediction
    y = torch.zeros(4, dtype=torch.long)
    assert softmax_collapse_fraction(z, y) == 0.5
    assert softmax_collapse_fraction(torch.randn(10, 3), torch.zeros(10, dtype=torch.long)) == 0.0
