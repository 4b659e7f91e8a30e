"""FLOP accounting for decoder-only transformers.

Pure Python (no torch import) so that planning and recommendation stay fast.
"""

from __future__ import annotations

from scaling.errors import UserError


def training_flops(
    n_params: float, tokens: float, n_layers: int = 0, d_model: int = 0, seq_len: int = 0
) -> float:
    """Training FLOPs of a decoder-only transformer: C = 6·N·D + 6·n_layers·seq_len·d_model·D.

    The first term is the standard dense estimate (forward 2·N·D, backward 4·N·D) of Kaplan et al. 2020,
    "Scaling Laws for Neural Language Models" (Table 1) and Hoffmann et al. 2022 ("Chinchilla", App. F),
    with N the non-embedding parameter count and D the training tokens. The second term is the causal
    attention score and value products: Kaplan's C_forward adds 2·n_layer·n_ctx·d_attn per token, and
    training triples it (forward + backward); with a causal mask half of it is wasted work, which we
    still count, as the hardware still does it in dense kernels. Pass n_layers = 0 to drop the term.
    """
    if n_params <= 0 or tokens <= 0:
        raise UserError(f"FLOPs need positive N and D, got N={n_params:g}, D={tokens:g}")
    return 6.0 * n_params * tokens + 6.0 * n_layers * seq_len * d_model * tokens


def precision_cost(n_params: float, tokens: float, bits: float) -> float:
    """Precision-aware training cost C = (6/16)·N·D·P of Kumar et al. 2024, "Scaling Laws for Precision".

    Cost is taken linear in the number of bits P, normalised so that P = 16 gives the usual 6·N·D.
    """
    if n_params <= 0 or tokens <= 0 or bits <= 0:
        raise UserError(f"cost needs positive N, D and P, got N={n_params:g}, D={tokens:g}, P={bits:g}")
    return 6.0 / 16.0 * n_params * tokens * bits
