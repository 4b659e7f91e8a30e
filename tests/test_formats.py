"""Precision specs and number formats: parsing, bit counts, and exhaustive tables of every float format."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from scaling.errors import UserError
from scaling.formats import FLOAT_FORMATS, KINDS, FloatFormat, IntFormat, PrecisionSpec, parse_format
from scaling.quant import round_to_format


@pytest.mark.parametrize(
    ("text", "name", "bits"),
    [
        ("bf16", "bf16", (16, 16, 16)),
        ("fp32", "fp32", (32, 32, 32)),
        ("w4a8kv8", "w4a8kv8", (4, 8, 8)),
        ("W4A8KV8", "w4a8kv8", (4, 8, 8)),
        ("w4", "w4", (4, 16, 16)),
        ("a8kv4", "a8kv4", (16, 8, 4)),
        ("kv2", "kv2", (16, 16, 2)),
        ("w16a16kv16", "w16a16kv16", (16, 16, 16)),
        ("int8", "w8a8kv8", (8, 8, 8)),
        ("fp8-e4m3", "fp8-e4m3", (8, 8, 8)),
        ("fp8-e5m2", "fp8-e5m2", (8, 8, 8)),
        ("fp6-e3m2", "fp6-e3m2", (6, 6, 6)),
        ("fp6-e2m3", "fp6-e2m3", (6, 6, 6)),
        ("fp4-e2m1", "fp4-e2m1", (4, 4, 4)),
        ("w:fp4-e2m1,a:int8,kv:fp8-e4m3", "w:fp4-e2m1,a:int8,kv:fp8-e4m3", (4, 8, 8)),
        ("kv:fp8-e4m3, w:fp4-e2m1", "w:fp4-e2m1,kv:fp8-e4m3", (4, 16, 8)),
        ("w:int4,a:int8", "w4a8", (4, 8, 16)),
        ("w:fp6-e2m3,a:fp6-e2m3,kv:fp6-e2m3", "fp6-e2m3", (6, 6, 6)),
    ],
)
def test_parse_name_bits_roundtrip(text, name, bits):
    spec = PrecisionSpec.parse(text)
    assert spec.name == name == str(spec)
    assert tuple(spec.bits(k) for k in KINDS) == bits
    assert PrecisionSpec.parse(spec.name) == spec
    assert spec.compute == ("fp32" if text == "fp32" else "bf16")


def test_parse_fields():
    spec = PrecisionSpec.parse("w:fp4-e2m1,a:int8")
    assert spec.w is FLOAT_FORMATS["fp4-e2m1"] and spec.a == IntFormat(8) and spec.kv is None
    assert spec.quantized and not PrecisionSpec.parse("bf16").quantized
    assert PrecisionSpec.parse("w3").w.qmin == -4 and PrecisionSpec.parse("w3").w.qmax == 3


@pytest.mark.parametrize(
    "text",
    [
        "",
        "int",
        "int1",
        "int17",
        "w1",
        "w17a8",
        "w4a8kv8x",
        "a8w4",
        "fp8",
        "fp8-e3m4",
        "bf16,w4",
        "w:int4,w:int8",
        "q:int8",
        "w:",
        "w:fp32",
        "fp16",
    ],
)
def test_parse_invalid_lists_valid_forms(text):
    with pytest.raises(UserError) as e:
        PrecisionSpec.parse(text)
    msg = str(e.value)
    assert "\n" not in msg and "valid forms" in msg and "w4a8kv8" in msg and "fp4-e2m1" in msg


def test_parse_format_and_errors():
    assert parse_format("int5") == IntFormat(5) and parse_format("fp8-e5m2").bits == 8
    with pytest.raises(UserError):
        parse_format("e4m3")
    with pytest.raises(UserError):
        PrecisionSpec.parse("bf16").bits("q")
    with pytest.raises(UserError):
        PrecisionSpec(w=IntFormat(4), compute="fp16")
    with pytest.raises(UserError):
        PrecisionSpec.parse("bf16@fp32")


def test_compute_suffix_sets_the_matmul_dtype_and_unquantized_bits():
    spec = PrecisionSpec.parse("w4a8@fp32")
    assert spec.compute == "fp32" and spec.name == "w4a8@fp32" and PrecisionSpec.parse(spec.name) == spec
    assert [spec.bits(k) for k in ("w", "a", "kv")] == [4.0, 8.0, 32.0]
    assert PrecisionSpec.parse("w4a8").bits("kv") == 16.0 and PrecisionSpec.parse("w4a8@bf16").name == "w4a8"


def test_formats_import_without_torch():
    code = "import sys, scaling.formats; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# Published parameters: OCP 8-bit FP spec (e4m3fn, e5m2) and OCP MX v1.0 (fp6, fp4).
FORMAT_FACTS = {
    "fp8-e4m3": (448.0, 2.0**-6, 2.0**-9, 253),
    "fp8-e5m2": (57344.0, 2.0**-14, 2.0**-16, 247),
    "fp6-e3m2": (28.0, 0.25, 0.0625, 63),
    "fp6-e2m3": (7.5, 1.0, 0.125, 63),
    "fp4-e2m1": (6.0, 1.0, 0.5, 15),
}


@pytest.mark.parametrize("name", list(FLOAT_FORMATS))
def test_format_constants(name):
    fmt = FLOAT_FORMATS[name]
    vmax, min_normal, min_sub, n_finite = FORMAT_FACTS[name]
    vals = fmt.finite_values()
    assert (fmt.max, fmt.min_normal, fmt.min_subnormal, len(vals)) == (vmax, min_normal, min_sub, n_finite)
    assert vals[-1] == vmax and vals[0] == -vmax
    assert min(v for v in vals if v > 0) == min_sub


def test_fp8_decode_matches_torch_dtypes():
    """Our decoder and torch's float8 dtypes agree on every one of the 256 codes."""
    for name, dtype in (("fp8-e4m3", torch.float8_e4m3fn), ("fp8-e5m2", torch.float8_e5m2)):
        fmt = FLOAT_FORMATS[name]
        codes = torch.arange(256, dtype=torch.int16).to(torch.uint8)
        theirs = codes.view(dtype).double().tolist()
        ours = [fmt.decode(c) for c in range(256)]
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(ours, theirs, strict=True))


def _positive_table(fmt: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative finite values in ascending order and their codes."""
    pairs = sorted((fmt.decode(c), c) for c in range(1 << (fmt.bits - 1)))
    pairs = [(v, c) for v, c in pairs if math.isfinite(v)]
    return np.array([v for v, _ in pairs]), np.array([c for _, c in pairs])


TORCH_FP8 = {"fp8-e4m3": torch.float8_e4m3fn, "fp8-e5m2": torch.float8_e5m2}


def _rounders(fmt: FloatFormat):
    """Our rounding; for fp8 also torch's float8 cast (clamped first, to saturate) as a second oracle."""
    yield lambda y: round_to_format(y, fmt)
    if fmt.name in TORCH_FP8:
        yield lambda y: y.clamp(-fmt.max, fmt.max).to(TORCH_FP8[fmt.name]).float()


@pytest.mark.parametrize("name", list(FLOAT_FORMATS))
def test_exhaustive_table(name):
    """Every representable value is a fixed point; every midpoint rounds to the even code; points just off a
    midpoint round to the nearer neighbour; values beyond the max saturate."""
    fmt = FLOAT_FORMATS[name]
    vals, codes = _positive_table(fmt)
    lo, hi = vals[:-1], vals[1:]
    mid = (lo + hi) / 2  # exact in float64 and in float32 (at most man_bits + 2 significant bits)
    even = np.where(codes[:-1] % 2 == 0, lo, hi)
    mid32 = torch.tensor(mid, dtype=torch.float32)
    below = torch.nextafter(mid32, torch.tensor(-1.0))
    above = torch.nextafter(mid32, torch.tensor(math.inf))
    big = torch.tensor([fmt.max * 1.0001, fmt.max * 1.5, fmt.max * 2, 3e38, math.inf])
    for rnd in _rounders(fmt):
        for sign in (1.0, -1.0):
            v = torch.tensor(sign * vals, dtype=torch.float32)
            assert torch.equal(rnd(v), v)
            assert torch.equal(rnd(sign * mid32).double(), torch.tensor(sign * even))
            assert torch.equal(rnd(sign * below).double(), torch.tensor(sign * lo))
            assert torch.equal(rnd(sign * above).double(), torch.tensor(sign * hi))
            assert torch.equal(rnd(sign * big), torch.full_like(big, sign * fmt.max))
        zero = rnd(torch.tensor([0.0, -0.0, fmt.min_subnormal / 2, -fmt.min_subnormal / 2]))
        assert zero.tolist() == [0.0, 0.0, 0.0, 0.0]
        assert torch.signbit(zero).tolist() == [False, True, False, True]  # sign of zero kept
        assert rnd(torch.tensor([math.nan])).isnan().all()


def _nearest_even_float64(y: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Independent float64 reference: nearest table value (saturating), ties to the even code."""
    vals, codes = _positive_table(fmt)
    a = np.minimum(np.abs(y), fmt.max)
    i = np.clip(np.searchsorted(vals, a), 1, len(vals) - 1)
    lo, hi = vals[i - 1], vals[i]
    d_lo, d_hi = a - lo, hi - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (codes[i] % 2 == 0))
    return np.copysign(np.where(pick_hi, hi, lo), y)


@pytest.mark.parametrize("name", list(FLOAT_FORMATS))
def test_random_against_float64_reference(name):
    fmt = FLOAT_FORMATS[name]
    g = torch.Generator().manual_seed(0)
    # log-uniform magnitudes from far below the smallest subnormal to beyond the max, random signs
    mag = torch.exp2(
        torch.empty(20000).uniform_(math.log2(fmt.min_subnormal) - 3, math.log2(fmt.max) + 2, generator=g)
    )
    y = (mag * torch.randn(20000, generator=g).sign()).float()
    want = torch.tensor(_nearest_even_float64(y.double().numpy(), fmt), dtype=torch.float32)
    for rnd in _rounders(fmt):
        got = rnd(y)
        assert torch.equal(got.abs(), want.abs()) and torch.equal(torch.signbit(got), torch.signbit(y))


def test_unsaturated_rounding_exceeds_max():
    fmt = FLOAT_FORMATS["fp4-e2m1"]
    y = torch.tensor([6.0, 6.9, 7.0, 7.1, 100.0, math.inf])
    r = round_to_format(y, fmt, saturate=False)
    assert r[0] == 6.0 and r[1] == 6.0 and (r[3:5] > 6).all() and not r[5].isfinite()
    assert r[2] == 8.0  # tie between 6 (code 0b0111, odd) and the next binade's 8: even wins


def test_columns_name_bits_and_formats_per_kind():
    cols = PrecisionSpec.parse("w4a8@fp32").columns()
    assert cols == {
        "precision": "w4a8@fp32",
        "P_w": 4.0,
        "fmt_w": "int4",
        "P_a": 8.0,
        "fmt_a": "int8",
        "P_kv": 32.0,
        "fmt_kv": "fp32",
    }
    assert PrecisionSpec.parse("bf16").columns()["fmt_kv"] == "bf16"
