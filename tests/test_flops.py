"""FLOP accounting: 6ND plus attention (Kaplan et al. 2020) and Kumar et al.'s (6/16)·N·D·P cost."""

import pytest

from scaling.errors import UserError
from scaling.flops import precision_cost, training_flops


def test_flops_formulas() -> None:
    assert training_flops(1e6, 1e7) == 6e13
    assert training_flops(1e6, 1e7, n_layers=4, d_model=128, seq_len=256) == 6e13 + 6 * 4 * 256 * 128 * 1e7
    assert precision_cost(1e6, 1e7, 16) == 6e13
    assert precision_cost(1e6, 1e7, 4) == 1.5e13


def test_flops_reject_non_positive_sizes() -> None:
    with pytest.raises(UserError):
        training_flops(-1, 1e6)
    with pytest.raises(UserError):
        precision_cost(1e6, 1e6, 0)
