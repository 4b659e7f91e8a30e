"""The precision candidate set `recommend` searches: precision specs, their labels and serving bits.

By default one format is shared by weights, activations and KV cache: integer 3–15 bits, bf16 (16 bits,
unquantized) and the float formats of `scaling.formats`; `per_kind=True` takes every (w, a, kv)
combination of the given formats (Kumar et al. 2024 fit separate sensitivities γ_w, γ_a, γ_kv).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

from scaling.errors import UserError
from scaling.formats import FLOAT_FORMATS, IntFormat, PrecisionSpec, parse_format

__all__ = ["DEFAULT_FORMATS", "candidate_specs", "format_spec", "int_spec", "parse_bits", "spec_label"]

DEFAULT_FORMATS: tuple[str, ...] = (*(f"int{b}" for b in range(3, 16)), "bf16", *FLOAT_FORMATS)
"""The default search set: int3..int15, bf16 (P = 16, same cost and loss as int16) and the float formats."""


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
