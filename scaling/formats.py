"""Number formats and the precision spec: which tensors of a model are quantized, and to what.

A `PrecisionSpec` says, for the three tensor kinds of Kumar et al. 2024 ("Scaling Laws for Precision"),
weights `w`, activations `a` and attention keys/values `kv`, which `NumberFormat` they are fake-quantized
to (None = left in the high-precision compute dtype). Its `bits(kind)` gives P_w, P_a, P_kv for the laws.

Formats:

- `IntFormat(b)`, b in 2..16: symmetric signed integers, codes q in [-2^(b-1), 2^(b-1) - 1].
- `FloatFormat`: sign, `exp_bits` exponent bits with bias 2^(exp_bits-1) - 1, `man_bits` mantissa bits,
  subnormals. The OCP 8-bit FP spec gives fp8-e4m3 (e4m3fn: no inf, one NaN code, max 448) and fp8-e5m2
  (IEEE-like: inf and NaN, max 57344); the OCP Microscaling (MX) spec v1.0 gives fp6-e3m2 (max 28),
  fp6-e2m3 (max 7.5) and fp4-e2m1 (max 6), which have no inf or NaN codes at all.

This module deliberately does not import torch (the `recommend` command parses precisions and must start
in well under 2 s); the torch code that applies these formats lives in `scaling.quant`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from scaling.errors import UserError

KINDS = ("w", "a", "kv")
COMPUTE_DTYPES = ("bf16", "fp32")


@dataclass(frozen=True)
class IntFormat:
    """Symmetric signed integer format with `bits` bits (2..16): codes in [-2^(b-1), 2^(b-1) - 1]."""

    bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 16:
            raise UserError(f"integer formats need 2..16 bits, got {self.bits!r}")

    @property
    def name(self) -> str:
        return f"int{self.bits}"

    @property
    def qmin(self) -> int:
        """Smallest code, -2^(b-1)."""
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        """Largest code, 2^(b-1) - 1; also the divisor of the absmax scale (Kumar et al. 2024)."""
        return (1 << (self.bits - 1)) - 1

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class FloatFormat:
    """A small binary floating-point format: 1 sign bit, `exp_bits` exponent bits, `man_bits` mantissa bits.

    Value of a code with exponent field E and mantissa field M (bias = 2^(exp_bits-1) - 1):
    normal (E > 0) (-1)^s · 2^(E - bias) · (1 + M / 2^man_bits); subnormal (E = 0)
    (-1)^s · 2^(1 - bias) · M / 2^man_bits. Which codes at the top are inf/NaN depends on `special`:
    "ieee" (all-ones exponent = inf/NaN, as fp8-e5m2), "fn" (only the all-ones code is NaN, as fp8-e4m3fn)
    or "none" (every code is finite, as the MX fp6/fp4 formats).
    """

    name: str
    exp_bits: int
    man_bits: int
    special: str  # "ieee" | "fn" | "none"

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value, 1 - bias (subnormals share this exponent)."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        top = (1 << self.exp_bits) - 1  # all-ones exponent field
        return (top - 1 if self.special == "ieee" else top) - self.bias

    @property
    def max(self) -> float:
        """Largest finite value (448, 57344, 28, 7.5, 6 for the five built-in formats)."""
        frac = 2.0 - 2.0**-self.man_bits  # mantissa all ones
        if self.special == "fn":
            frac -= 2.0**-self.man_bits  # the all-ones code is NaN
        return math.ldexp(frac, self.emax)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.man_bits)

    def decode(self, code: int) -> float:
        """The value of bit pattern `code` (0 <= code < 2^bits), exactly, as a Python float."""
        if not 0 <= code < (1 << self.bits):
            raise ValueError(f"code {code} out of range for {self.name}")
        sign = -1.0 if code >> (self.bits - 1) else 1.0
        e_field = (code >> self.man_bits) & ((1 << self.exp_bits) - 1)
        m_field = code & ((1 << self.man_bits) - 1)
        top = (1 << self.exp_bits) - 1
        if self.special == "ieee" and e_field == top:
            return sign * math.inf if m_field == 0 else math.nan
        if self.special == "fn" and e_field == top and m_field == (1 << self.man_bits) - 1:
            return math.nan
        if e_field == 0:
            return sign * math.ldexp(m_field, self.emin - self.man_bits)
        return sign * math.ldexp((1 << self.man_bits) + m_field, e_field - self.bias - self.man_bits)

    def finite_values(self) -> list[float]:
        """Every distinct finite value of the format (±0 counted once), sorted ascending."""
        vals = {self.decode(c) for c in range(1 << self.bits)}
        return sorted(v for v in vals if math.isfinite(v))

    def __str__(self) -> str:
        return self.name


FLOAT_FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("fp8-e4m3", 4, 3, "fn"),
        FloatFormat("fp8-e5m2", 5, 2, "ieee"),
        FloatFormat("fp6-e3m2", 3, 2, "none"),
        FloatFormat("fp6-e2m3", 2, 3, "none"),
        FloatFormat("fp4-e2m1", 2, 1, "none"),
    )
}

NumberFormat = IntFormat | FloatFormat

VALID_FORMS = (
    "bf16 | fp32 | w<b>a<b>kv<b> or any subset (e.g. w4a8kv8, w4, a8kv4; b in 2..16) | int<b> | "
    + " | ".join(FLOAT_FORMATS)
    + " | a mix such as w:fp4-e2m1,a:int8,kv:fp8-e4m3; quantized specs take an @fp32 or @bf16 suffix"
)

_INT_RE = re.compile(r"int(\d+)")
_WAKV_RE = re.compile(r"(?:w(\d+))?(?:a(\d+))?(?:kv(\d+))?")


def parse_format(text: str) -> NumberFormat:
    """One number format from its name: `int2`..`int16` or one of `FLOAT_FORMATS`."""
    t = text.strip().lower()
    if t in FLOAT_FORMATS:
        return FLOAT_FORMATS[t]
    m = _INT_RE.fullmatch(t)
    if m:
        return IntFormat(int(m.group(1)))
    raise UserError(f"unknown number format {text!r}; valid: int2..int16, {', '.join(FLOAT_FORMATS)}")


@dataclass(frozen=True)
class PrecisionSpec:
    """Which format each tensor kind is fake-quantized to, and the matmul dtype.

    `w`, `a`, `kv`: a NumberFormat or None (not quantized). `compute`: "bf16" or "fp32", the dtype of the
    matmuls and of every tensor that is not fake-quantized; a quantized spec takes it from an `@fp32` /
    `@bf16` suffix (default bf16). Build one with `PrecisionSpec.parse(text)`; `name` is the canonical text.
    """

    w: NumberFormat | None = None
    a: NumberFormat | None = None
    kv: NumberFormat | None = None
    compute: str = "bf16"

    def __post_init__(self) -> None:
        if self.compute not in COMPUTE_DTYPES:
            raise UserError(f"compute dtype must be one of {COMPUTE_DTYPES}, got {self.compute!r}")

    @property
    def quantized(self) -> bool:
        return any(f is not None for f in (self.w, self.a, self.kv))

    def format(self, kind: str) -> NumberFormat | None:
        """The format of tensor kind `kind` ("w", "a" or "kv")."""
        if kind not in KINDS:
            raise UserError(f"tensor kind must be one of {KINDS}, got {kind!r}")
        return getattr(self, kind)

    def bits(self, kind: str) -> float:
        """P_kind for the precision laws: the format's bits, else 16 (bf16 compute) or 32 (fp32)."""
        fmt = self.format(kind)
        if fmt is not None:
            return float(fmt.bits)
        return 32.0 if self.compute == "fp32" else 16.0

    def columns(self) -> dict[str, str | float]:
        """The result-store columns of this spec: precision (canonical name), P_w/P_a/P_kv (bits) and
        fmt_w/fmt_a/fmt_kv (format names; the compute dtype for a kind left unquantized)."""
        cols: dict[str, str | float] = {"precision": self.name}
        for kind in KINDS:
            fmt = self.format(kind)
            cols[f"P_{kind}"] = self.bits(kind)
            cols[f"fmt_{kind}"] = fmt.name if fmt is not None else self.compute
        return cols

    @property
    def name(self) -> str:
        """Canonical text: `bf16`/`fp32`, `w4a8kv8`-style if every quantized kind is integer, the format
        name if all three kinds share one float format, else the `kind:format` mix."""
        fmts = {k: self.format(k) for k in KINDS}
        if not self.quantized:
            return self.compute
        used = {k: f for k, f in fmts.items() if f is not None}
        suffix = "@fp32" if self.compute == "fp32" else ""
        if all(isinstance(f, IntFormat) for f in used.values()):
            return "".join(f"{k}{f.bits}" for k, f in used.items()) + suffix
        if len(used) == 3 and len(set(used.values())) == 1:
            return next(iter(used.values())).name + suffix
        return ",".join(f"{k}:{f.name}" for k, f in used.items()) + suffix

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> PrecisionSpec:
        """Parse a precision spec; raise UserError listing the valid forms if `text` is not one."""
        if not isinstance(text, str):
            raise UserError(f"precision spec must be a string, got {type(text).__name__}")
        t = text.strip().lower()
        try:
            return cls._parse(t)
        except UserError as e:
            raise UserError(f"invalid precision spec {text!r} ({e}); valid forms: {VALID_FORMS}") from None

    @classmethod
    def _parse(cls, t: str) -> PrecisionSpec:
        t, at, compute = (s.strip() for s in t.partition("@"))
        if at:
            if compute not in COMPUTE_DTYPES or t in COMPUTE_DTYPES:
                raise UserError(f"'@{compute}' must be @bf16 or @fp32 after a quantized spec")
            return dataclasses.replace(cls._parse(t), compute=compute)
        if t in COMPUTE_DTYPES:
            return cls(compute=t)
        if ":" in t:
            kinds: dict[str, NumberFormat] = {}
            for part in t.split(","):
                kind, sep, fmt = (s.strip() for s in part.partition(":"))
                if not sep or kind not in KINDS:
                    raise UserError(f"{part.strip()!r} is not kind:format with kind in {KINDS}")
                if kind in kinds:
                    raise UserError(f"kind {kind!r} given twice")
                kinds[kind] = parse_format(fmt)
            return cls(**kinds)
        if t in FLOAT_FORMATS or _INT_RE.fullmatch(t):
            f = parse_format(t)
            return cls(w=f, a=f, kv=f)
        m = _WAKV_RE.fullmatch(t)
        if t and m:
            w, a, kv = (IntFormat(int(g)) if g is not None else None for g in m.groups())
            return cls(w=w, a=a, kv=kv)
        raise UserError("unrecognised form")
