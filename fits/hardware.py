"""Training cost of a precision on a piece of hardware: named profiles with their assumptions written down.

Cost model. A training run of N (non-embedding) parameters on D tokens at precision spec s costs

    C = 6·N·D / t(s)        (FLOPs-equivalent, i.e. bf16 FLOPs that take the same time)

where t(s) is the relative throughput of the run's matmuls against bf16 on the chosen hardware. The
linear layers' GEMMs (the 6·N·D of Kaplan et al. 2020 / Hoffmann et al. 2022) multiply weights by
activations, so t is set by the weight and activation formats of s; the KV-cache format does not enter the
6·N·D term (attention-score FLOPs are not counted), so it is free in every profile.

Profiles:

- `bits` (default; Kumar et al. 2024, "Scaling Laws for Precision", §4.3): cost linear in bits,
  t = 16 / P with P = max(P_w, P_a), so C = (6/16)·N·D·P. Any format of P bits, integer or float, costs the
  same; 16 bits cost the usual 6·N·D.
- `a100`, `h100`, `b200`: relative dense tensor-core peaks from NVIDIA's datasheets (see `PROFILES`).
  A format the chip has no tensor cores for runs on the fastest native format that represents every one of
  its values exactly (int4 on int8 cores, fp4-e2m1 on fp8-e4m3 cores, ...); if there is none, it costs as
  bf16 (1x), which is how fake quantization runs it.
- `cpu`: fake quantization on a CPU (how this project's own sweeps run): every format is emulated in the
  same float arithmetic, so everything costs 1x and lower precision only loses quality.

A GEMM whose two operands have different formats runs on the fastest native format that holds *both*
exactly (a w4a8 layer runs as int8). The throughput ratios are peak ratios: real kernels, quantization
overheads and block-scaled formats (MXFP4/6 on Blackwell scale per 32 elements, our fake quantization per
tensor or per channel) are not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from scaling.errors import UserError
from scaling.formats import FLOAT_FORMATS, FloatFormat, IntFormat, NumberFormat, PrecisionSpec

BF16 = FloatFormat("bf16", 8, 7, "ieee")
"""bfloat16 as a `FloatFormat` (8 exponent, 7 mantissa bits): the unquantized compute format."""

TF32 = FloatFormat("tf32", 8, 10, "ieee")
"""TensorFloat-32 (8 exponent, 10 mantissa bits): what fp32 training uses on NVIDIA tensor cores."""


def represents(outer: NumberFormat, inner: NumberFormat) -> bool:
    """True if every value of `inner` is exactly a value of `outer` (so `inner` can run on `outer` cores).

    Integers: int b ⊂ int b' iff b ≤ b'. int b ⊂ a float format iff the float has b − 2 or more mantissa
    bits (so every integer up to 2^(b−1) is exact) and its max is at least 2^(b−1). Floats: f ⊂ g iff g has
    at least f's mantissa bits, f's largest value fits in g and f's smallest subnormal is a multiple of g's.
    A float is never held exactly by an integer format (the scale already absorbs the range).
    """
    if isinstance(inner, IntFormat):
        if isinstance(outer, IntFormat):
            return inner.bits <= outer.bits
        return outer.man_bits + 1 >= inner.bits - 1 and outer.max >= 2.0 ** (inner.bits - 1)
    if isinstance(outer, IntFormat):
        return False
    return (
        outer.man_bits >= inner.man_bits
        and outer.max >= inner.max
        and inner.emin - inner.man_bits >= outer.emin - outer.man_bits
    )


def _native_format(name: str) -> NumberFormat:
    if name == "bf16":
        return BF16
    if name == "fp32":
        return TF32
    if name in FLOAT_FORMATS:
        return FLOAT_FORMATS[name]
    if name.startswith("int") and name[3:].isdigit():
        return IntFormat(int(name[3:]))
    raise ValueError(f"unknown native format {name!r}")


@dataclass(frozen=True)
class HardwareProfile:
    """Relative matmul throughput per number format on one kind of hardware.

    `native` maps the formats the hardware has tensor cores for to their dense peak throughput relative to
    bf16 ("fp32" stands for fp32 training, i.e. TF32 on NVIDIA tensor cores). `native = None` means the
    linear-in-bits model of Kumar et al. 2024 (t = 16 / P). `assumptions` is the text shown to users.
    """

    name: str
    summary: str
    assumptions: str
    native: Mapping[str, float] | None = None
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def gemm_throughput(self, w: NumberFormat | None, a: NumberFormat | None, compute: str = "bf16") -> float:
        """Throughput (vs bf16) of a GEMM of weight format `w` by activation format `a` (None: bf16)."""
        key = (w, a, compute)
        if key not in self._cache:
            self._cache[key] = self._gemm_throughput(w, a, compute)
        return self._cache[key]

    def _gemm_throughput(self, w: NumberFormat | None, a: NumberFormat | None, compute: str) -> float:
        high = TF32 if compute == "fp32" else BF16
        w, a = w or high, a or high
        if self.native is None:
            bits = max(_bits(w), _bits(a))
            return 16.0 / bits
        if compute == "fp32":
            return float(self.native.get("fp32", 1.0))
        best = 0.0
        for name, speed in self.native.items():
            if name == "fp32":
                continue
            fmt = _native_format(name)
            if represents(fmt, w) and represents(fmt, a):
                best = max(best, float(speed))
        return best if best > 0.0 else 1.0  # no exact native home: runs as bf16 fake quantization does

    def throughput(self, spec: PrecisionSpec) -> float:
        """Relative throughput t(spec) of the run's linear-layer GEMMs (the KV format does not enter)."""
        return self.gemm_throughput(spec.w, spec.a, spec.compute)

    def cost(
        self, n_params: float | np.ndarray, tokens: float | np.ndarray, spec: PrecisionSpec
    ) -> np.ndarray:
        """Training cost C = 6·N·D / t(spec) in bf16-FLOP equivalents."""
        return (
            6.0 * np.asarray(n_params, dtype=float) * np.asarray(tokens, dtype=float) / self.throughput(spec)
        )

    def describe(self) -> str:
        return f"{self.name}: {self.summary}"


def _bits(fmt: NumberFormat) -> float:
    return 32.0 if fmt is TF32 else float(fmt.bits)  # TF32 (19 stored bits) stands for fp32 training


def _profile(name: str, summary: str, assumptions: str, native: dict[str, float] | None) -> HardwareProfile:
    return HardwareProfile(name, summary, assumptions, None if native is None else MappingProxyType(native))


PROFILES: dict[str, HardwareProfile] = {
    p.name: p
    for p in (
        _profile(
            "bits",
            "cost linear in bits, C = (6/16)·N·D·P (Kumar et al. 2024)",
            "Kumar et al. 2024 (§4.3) take training cost proportional to the bit width: a P-bit run costs "
            "P/16 of a bf16 run, for integer and float formats alike, with P = max(P_w, P_a) of the GEMM "
            "operands. An idealised accelerator; no real chip is this smooth.",
            None,
        ),
        _profile(
            "a100",
            "NVIDIA A100 SXM: int8 2x, int4 4x, no fp8",
            "Dense tensor-core peaks (NVIDIA A100 datasheet): BF16 312 TFLOPS (1x), TF32 156 (0.5x), "
            "INT8 624 TOPS (2x), INT4 1248 TOPS (4x). No FP8/FP6/FP4 cores: those formats run as bf16. "
            "int2..int4 run on int4 cores, int5..int8 on int8 cores, wider integers as bf16.",
            {"bf16": 1.0, "fp32": 0.5, "int8": 2.0, "int4": 4.0},
        ),
        _profile(
            "h100",
            "NVIDIA H100 SXM: fp8 and int8 2x, fp6/fp4 run on fp8 cores",
            "Dense tensor-core peaks (NVIDIA H100 SXM datasheet): BF16 989 TFLOPS (1x), TF32 495 (0.5x), "
            "FP8 e4m3/e5m2 1979 (2x), INT8 1979 TOPS (2x). No FP6/FP4/INT4 cores: fp6 and fp4 values are "
            "exact in fp8-e4m3 and run there (2x), int2..int8 run on int8 cores (2x), int9 runs as bf16 "
            "(exact there), int10..int16 have no exact native format and cost as bf16.",
            {"bf16": 1.0, "fp32": 0.5, "fp8-e4m3": 2.0, "fp8-e5m2": 2.0, "int8": 2.0},
        ),
        _profile(
            "b200",
            "NVIDIA B200: fp8/fp6 and int8 2x, fp4 4x",
            "Dense tensor-core peaks per GPU (NVIDIA HGX B200 datasheet): BF16 2.25 PFLOPS (1x), "
            "TF32 1.1 (0.5x), FP8 and FP6 4.5 (2x), FP4 9 (4x), INT8 4.5 POPS (2x). int2..int8 run on int8 "
            "cores. Blackwell's FP6/FP4 are block-scaled (MX) formats; the element format is priced, the "
            "scale granularity is not modelled.",
            {
                "bf16": 1.0,
                "fp32": 0.5,
                "fp8-e4m3": 2.0,
                "fp8-e5m2": 2.0,
                "fp6-e3m2": 2.0,
                "fp6-e2m3": 2.0,
                "fp4-e2m1": 4.0,
                "int8": 2.0,
            },
        ),
        _profile(
            "cpu",
            "fake quantization on a CPU: every format costs as bf16",
            "How this project's own sweeps train: quantized formats are emulated (quantize-dequantize) in "
            "float arithmetic, so no format is faster than bf16 and every run costs 6·N·D. Lower precision "
            "then only loses quality, so the best precision is the highest one allowed.",
            {"bf16": 1.0, "fp32": 1.0},
        ),
    )
}


def get_profile(name: str) -> HardwareProfile:
    """The named hardware profile (`bits`, `a100`, `h100`, `b200`, `cpu`)."""
    key = name.strip().lower()
    if key not in PROFILES:
        raise UserError(f"unknown hardware profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[key]
