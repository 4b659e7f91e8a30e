"""Hardware cost profiles: exact-representation rule, throughput tables, and Kumar's linear-in-bits cost."""

from __future__ import annotations

import math

import pytest

from fits.hardware import BF16, PROFILES, get_profile, represents
from scaling.errors import UserError
from scaling.flops import precision_cost
from scaling.formats import FLOAT_FORMATS, IntFormat, PrecisionSpec, parse_format


def _values(fmt) -> set[float]:
    if isinstance(fmt, IntFormat):
        return {float(q) for q in range(fmt.qmin, fmt.qmax + 1)}
    return set(fmt.finite_values())


def test_represents_matches_exhaustive_value_sets():
    """The containment rule agrees with comparing every finite value, for all pairs of small formats."""
    small = [IntFormat(b) for b in range(2, 11)] + list(FLOAT_FORMATS.values())
    outers = [*small, BF16]
    values = {f: _values(f) for f in outers}
    checked = 0
    for outer in outers:
        for inner in small:
            # Integers sit on integer grids already scaled; a float is never exactly an integer grid.
            if isinstance(outer, IntFormat) and not isinstance(inner, IntFormat):
                assert not represents(outer, inner)
                continue
            expected = values[inner] <= values[outer]
            assert represents(outer, inner) == expected, (outer, inner)
            checked += 1
    assert checked > 150


def test_bits_profile_is_kumar_cost():
    hw = get_profile("bits")
    for text in ("int3", "int7", "fp8-e4m3", "fp6-e2m3", "fp4-e2m1", "bf16", "int12"):
        spec = PrecisionSpec.parse(text)
        p = spec.bits("w")
        assert hw.throughput(spec) == pytest.approx(16.0 / p)
        assert float(hw.cost(1e9, 2e10, spec)) == pytest.approx(precision_cost(1e9, 2e10, p))
    assert hw.throughput(PrecisionSpec.parse("fp32")) == pytest.approx(0.5)
    # The GEMM runs at the wider of its two operands; the KV format is not in 6·N·D.
    assert hw.throughput(PrecisionSpec.parse("w4a8kv16")) == pytest.approx(2.0)
    assert hw.throughput(PrecisionSpec.parse("w8a8kv3")) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("profile", "text", "speed"),
    [
        ("h100", "bf16", 1.0),
        ("h100", "fp8-e4m3", 2.0),
        ("h100", "fp8-e5m2", 2.0),
        ("h100", "int8", 2.0),
        ("h100", "int4", 2.0),  # int8 cores
        ("h100", "fp4-e2m1", 2.0),  # exact in fp8-e4m3
        ("h100", "fp6-e3m2", 2.0),
        ("h100", "int9", 1.0),  # exact in bf16
        ("h100", "int12", 1.0),  # nothing native holds it: costs as bf16
        ("h100", "w:fp4-e2m1,a:int8", 1.0),  # no native format holds both operands
        ("h100", "fp32", 0.5),
        ("b200", "fp4-e2m1", 4.0),
        ("b200", "fp6-e2m3", 2.0),
        ("b200", "w:fp4-e2m1,a:fp8-e4m3", 2.0),  # runs as fp8
        ("a100", "int4", 4.0),
        ("a100", "int3", 4.0),
        ("a100", "int6", 2.0),
        ("a100", "fp8-e4m3", 1.0),  # no fp8 cores on Ampere
        ("cpu", "int4", 1.0),
        ("cpu", "fp8-e4m3", 1.0),
    ],
)
def test_profile_tables(profile, text, speed):
    assert get_profile(profile).throughput(PrecisionSpec.parse(text)) == pytest.approx(speed)


def test_every_profile_prices_every_default_format():
    for hw in PROFILES.values():
        assert hw.assumptions and hw.summary
        for name in ("bf16", *FLOAT_FORMATS, *(f"int{b}" for b in range(2, 17))):
            fmt = None if name == "bf16" else parse_format(name)
            spec = PrecisionSpec(w=fmt, a=fmt)
            t = hw.throughput(spec)
            assert math.isfinite(t) and t > 0
        assert hw.throughput(PrecisionSpec()) == pytest.approx(1.0)


def test_unknown_profile_is_user_error():
    with pytest.raises(UserError, match="unknown hardware profile"):
        get_profile("tpu-v9")
