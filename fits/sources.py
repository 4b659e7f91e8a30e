"""Where a law's parameters come from, for `predict` and `recommend`: a fit or a published constant set.

`law_source(x)` accepts a `FitResult`, a path to a fit.json, the name of a published constant set
(`kumar2024`, ...), or a `LawSource`; it returns the law, its parameters, a label for reports, the
bootstrap draws (fits only), the input ranges the parameters were fitted on, and the fit's diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fits.law import Law
from fits.laws import PUBLISHED, published
from scaling.errors import UserError

__all__ = ["LawSource", "law_source", "load_law"]


@dataclass
class LawSource:
    """A law with parameters: a published constant set or a user's fit (with its bootstrap)."""

    law: Law
    params: dict[str, float]
    label: str
    draws: dict[str, np.ndarray] | None = None
    data_range: dict[str, tuple[float, float]] | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None  # the FitResult, when the source is a fit

    @property
    def alpha(self) -> float:
        return self.result.alpha if self.result is not None else 0.05


def _from_result(res: Any, label: str) -> LawSource:
    ranges = {k: (float(v[0]), float(v[1])) for k, v in res.data.get("ranges", {}).items()}
    return LawSource(
        res.law,
        dict(res.estimates),
        label,
        draws=res.draws,
        data_range=ranges or None,
        diagnostics=list(res.diagnostics),
        result=res,
    )


def law_source(source: Any) -> LawSource:
    """Resolve `source` (FitResult, fit.json path, published set name or LawSource); module docstring."""
    from fits.results import FitResult

    if isinstance(source, LawSource):
        return source
    if isinstance(source, FitResult):
        return _from_result(source, f"{source.law.name} fit")
    if isinstance(source, str) and source in PUBLISHED:
        law, params = published(source)
        return LawSource(law, params, source, data_range=dict(law.ranges) or None)
    if isinstance(source, str | Path):
        p = Path(source)
        if p.suffix.lower() == ".json" or p.exists():
            res = FitResult.from_json(p)
            return _from_result(res, f"{res.law.name} fit ({p})")
        raise UserError(
            f"unknown law or fit {str(source)!r}: give a published set ({', '.join(PUBLISHED)}) "
            "or a fit.json",
            param="law",
        )
    raise UserError(f"cannot use {type(source).__name__} as a law source", param="law")


def load_law(law: str | None = None, fit: Any = None, default: str = "kumar2024") -> LawSource:
    """The law for `predict`/`recommend`: `fit` (a FitResult or fit.json path) or the published set `law`
    (default `default`); never both."""
    if fit is not None and law is not None:
        raise UserError("give either law or fit, not both", param="law")
    return law_source(fit if fit is not None else (law or default))


def loss_source(source: LawSource) -> LawSource:
    """`source`, checked to predict a loss (recommend optimises loss)."""
    if source.law.unit != "nats/token":
        raise UserError(
            f"{source.label}: law {source.law.name!r} predicts {source.law.target} in "
            f"{source.law.unit}, not a loss; recommend optimises loss"
        )
    return source
