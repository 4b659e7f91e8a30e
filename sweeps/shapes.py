"""Model-shape families named by a label, a sweep axis (`axes.shape`) and a capacity fit-group key.

A label `L<layers>-hd<head_dim>` (e.g. `L2-hd16`) fixes the depth and the attention-head width; the size
knob `n` (a grid's target non-embedding parameters) then picks the width: d_model is the multiple of
head_dim whose non-embedding N (`scaling.model.ModelConfig.n_params`, ≈ 12·L·d² for either MLP type) is
closest to n in log space, n_heads = d_model / head_dim and d_ff the MLP type's default. Runs of one
family at several sizes share the label, so a capacity fit gives the family one R across its sizes
(bits ∝ parameters is the law), while different depths or head widths get their own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from scaling.errors import UserError

__all__ = ["ShapeFamily", "parse_shape"]

_LABEL = re.compile(r"L(\d+)-hd(\d+)")


@dataclass(frozen=True)
class ShapeFamily:
    """Depth and head width of a shape family; `shape(n, mlp)` gives the member nearest n parameters."""

    n_layers: int
    head_dim: int

    @property
    def label(self) -> str:
        return f"L{self.n_layers}-hd{self.head_dim}"

    def shape(self, n: float, mlp: str = "gelu") -> dict[str, int]:
        """d_model, n_layers, n_heads, d_ff of the family member whose non-embedding N is nearest `n`."""
        from scaling.model import ModelConfig, default_d_ff

        def config(d: int) -> ModelConfig:
            return ModelConfig(d_model=d, n_layers=self.n_layers, n_heads=d // self.head_dim,
                               d_ff=default_d_ff(d, mlp), mlp=mlp)  # fmt: skip

        guess = max(1, round(math.sqrt(n / (12 * self.n_layers)) / self.head_dim))
        widths = [self.head_dim * k for k in range(max(1, guess - 2), guess + 3)]
        best = min(widths, key=lambda d: abs(math.log(config(d).n_params / n)))
        c = config(best)
        return {"d_model": c.d_model, "n_layers": c.n_layers, "n_heads": c.n_heads, "d_ff": c.d_ff}


def parse_shape(label: str) -> ShapeFamily:
    """`L<layers>-hd<head_dim>` → ShapeFamily (head_dim even, both positive)."""
    m = _LABEL.fullmatch(str(label))
    if not m or int(m[1]) < 1 or int(m[2]) < 2 or int(m[2]) % 2:
        raise UserError(
            f"shape must look like 'L2-hd16' (layers, then an even attention-head width), got {label!r}"
        )
    return ShapeFamily(int(m[1]), int(m[2]))
