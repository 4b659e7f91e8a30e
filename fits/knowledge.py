"""How large a model must be to store a given amount of knowledge (`scalefit recommend --knowledge-bits`).

With a capacity law (Allen-Zhu & Li 2024; `fits.capacity`), bits = R(E)·F·P below saturation, so storing
K bits at E exposures needs P = K / (R(E)·F) parameters (counted as the paper counts them), and seeing
each fact E times means training on E × (corpus tokens) tokens. With a fitted law the bootstrap draws give
an interval on P; published constants give none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fits.prediction import extrapolation_notes
from fits.sources import LawSource, load_law
from scaling.errors import UserError

__all__ = ["KnowledgePlan", "plan_knowledge"]


@dataclass
class KnowledgePlan:
    """Parameters needed to store `knowledge_bits`, and the training tokens that many exposures imply."""

    knowledge_bits: float
    exposures: float
    bits_per_param: float
    params: float
    params_interval: tuple[float, float] | None
    tokens: float | None
    corpus_tokens: float | None
    law: str
    alpha: float = 0.05
    n_boot: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "knowledge_bits": self.knowledge_bits,
            "exposures": self.exposures,
            "bits_per_param": self.bits_per_param,
            "params": self.params,
            "params_interval": list(self.params_interval) if self.params_interval else None,
            "tokens": self.tokens,
            "corpus_tokens": self.corpus_tokens,
            "law": self.law,
            "alpha": self.alpha,
            "n_boot": self.n_boot,
            "warnings": self.warnings,
        }


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise UserError(f"{name} must be a positive finite number, got {value!r}", param=name)
    return v


def plan_knowledge(
    knowledge_bits: float,
    exposures: float,
    *,
    law: str | None = None,
    fit: Any = None,
    corpus_tokens: float | None = None,
    alpha: float | None = None,
    **effects: Any,
) -> KnowledgePlan:
    """Parameters needed to store `knowledge_bits` at `exposures`, with the law `fit` (FitResult or
    fit.json path) or the published set `law` (default `capacity-allenzhu2024`). `effects` are the law's
    other inputs (P_post, junk, domain_token, mlp, moe, or a fitted law's group columns)."""
    bits = _positive("knowledge_bits", knowledge_bits)
    exp = _positive("exposures", exposures)
    corpus = _positive("corpus_tokens", corpus_tokens)
    source: LawSource = load_law(law, fit, default="capacity-allenzhu2024")
    if source.law.unit != "bits":
        raise UserError(
            f"{source.label}: law {source.law.name!r} predicts {source.law.target}, not knowledge bits; "
            "knowledge_bits needs a capacity law",
            param="law",
        )
    point = {
        "params_paper": [1.0],
        "exposures": [exp],
        **{k: [v] for k, v in effects.items() if v is not None},
    }
    per_param = float(source.law.predict(source.params, point)[0])
    if not (math.isfinite(per_param) and per_param > 0):
        raise UserError(f"{source.label} gives no positive capacity at {exp:g} exposures")
    level = source.alpha if alpha is None else alpha
    interval = None
    n_boot = 0
    if source.result is not None and source.result.n_boot:
        draws = source.result.predict_draws(point)[:, 0]
        draws = draws[np.isfinite(draws) & (draws > 0)]
        if draws.size:
            lo, hi = np.quantile(bits / draws, [level / 2, 1 - level / 2])
            interval = (float(lo), float(hi))
            n_boot = int(draws.size)
    params = bits / per_param
    warnings = [f"fit: {d['message']}" for d in source.diagnostics]
    import pandas as pd

    warnings += extrapolation_notes(
        pd.DataFrame({"params_paper": [params], "exposures": [exp]}), source.data_range or {}
    )
    return KnowledgePlan(
        knowledge_bits=bits,
        exposures=exp,
        bits_per_param=per_param,
        params=params,
        params_interval=interval,
        tokens=exp * corpus if corpus is not None else None,
        corpus_tokens=corpus,
        law=source.label,
        alpha=level,
        n_boot=n_boot,
        warnings=warnings,
    )
