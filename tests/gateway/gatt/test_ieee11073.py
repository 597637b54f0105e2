"""SFLOAT / FLOAT vectors: DOMAIN A1 examples, every special, sign handling, exact decimal printing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import MalformedMeasurement
from gateway.gatt import Special, decode_float32, decode_sfloat, parse_float32_bytes, parse_sfloat_bytes
from gateway.gatt.ieee11073 import encode_float32, encode_sfloat


def sfloat(hex_le: str) -> float | str | None:
    return parse_sfloat_bytes(bytes.fromhex(hex_le)).value.json_value()


def float32(hex_le: str) -> float | str | None:
    return parse_float32_bytes(bytes.fromhex(hex_le)).value.json_value()


@pytest.mark.parametrize(
    ("hex_le", "expected"),
    [
        ("BD F0", 18.9),  # DOMAIN A1: exp -1, mant 189
        ("FF F7", 204.7),  # exp -1, mant 2047: an ordinary number, not NaN
        ("FE F7", 204.6),  # exp -1, mant 2046: not +INF
        ("02 F8", -204.6),  # exp -1, mant -2046: not -INF
        ("01 F8", -204.7),  # exp -1, mant -2047
        ("78 00", 120.0),
        ("FF 0F", -1.0),  # exp 0, mant -1
        ("00 80", 0.0),  # exp -8, mant 0
        ("FF 77", 20470000000.0),  # exp 7, mant 2047
        ("01 E0", 0.01),
        ("37 C0", 0.0055),
        ("78 B0", 0.0012),
        ("01 80", 1e-8),
    ],
)
def test_sfloat_numbers(hex_le: str, expected: float) -> None:
    assert sfloat(hex_le) == expected


@pytest.mark.parametrize(
    ("hex_le", "expected"),
    [("FF 07", "NaN"), ("00 08", "NRes"), ("FE 07", "+INF"), ("02 08", "-INF"), ("01 08", "reserved")],
)
def test_sfloat_specials_never_become_numbers(hex_le: str, expected: str) -> None:
    value = parse_sfloat_bytes(bytes.fromhex(hex_le)).value
    assert value.json_value() == expected
    assert value.value is None
    assert value.decimal is None
    assert not value.is_number


@pytest.mark.parametrize(
    ("hex_le", "expected"),
    [
        ("87 D6 12 FE", 12345.67),  # DOMAIN A1
        ("72 01 00 FF", 37.0),  # DOMAIN A1
        ("FF FF 7F FF", 838860.7),  # mant 8388607 at exp -1 is ordinary
        ("FF FF FF 00", -1.0),
        ("01 00 00 80", 1e-128),
        ("00 00 00 00", 0.0),
    ],
)
def test_float32_numbers(hex_le: str, expected: float) -> None:
    assert float32(hex_le) == expected


@pytest.mark.parametrize(
    ("hex_le", "expected"),
    [
        ("FF FF 7F 00", "NaN"),
        ("00 00 80 00", "NRes"),
        ("FE FF 7F 00", "+INF"),
        ("02 00 80 00", "-INF"),
        ("01 00 80 00", "reserved"),
    ],
)
def test_float32_specials(hex_le: str, expected: str) -> None:
    assert float32(hex_le) == expected


def test_specials_are_matched_on_the_whole_word() -> None:
    assert decode_sfloat(0x07FF).special is Special.NAN
    assert decode_sfloat(0xF7FF).special is None
    assert decode_float32(0x007FFFFF).special is Special.NAN
    assert decode_float32(0xFF7FFFFF).special is None


def test_absent_and_out_of_range_classes() -> None:
    assert (
        decode_sfloat(0x07FF).is_absent
        and decode_sfloat(0x0800).is_absent
        and decode_sfloat(0x0801).is_absent
    )
    assert not decode_sfloat(0x07FE).is_absent and not decode_sfloat(0x0802).is_absent


def test_exact_decimal_printing() -> None:
    assert json.dumps(decode_sfloat(0xF0BD).json_value()) == "18.9"
    assert json.dumps(decode_float32(0xFE12D687).json_value()) == "12345.67"
    # kg/L → mg/dL is an exact decimal shift: 0.0012 kg/L is 120 mg/dL, not 119.99999999999999
    assert decode_sfloat(0xB078).scaled(5) == 120.0


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=0xFFFF))
def test_sfloat_matches_decimal_literal(raw: int) -> None:
    value = decode_sfloat(raw)
    if value.special is None:
        mant = ((raw & 0xFFF) ^ 0x800) - 0x800
        exp = ((raw >> 12) ^ 0x8) - 0x8
        assert value.value == float(f"{mant}e{exp}")
    else:
        assert raw in (0x07FF, 0x0800, 0x07FE, 0x0802, 0x0801)


def test_encoders_round_trip() -> None:
    assert encode_sfloat(189, -1) == 0xF0BD
    assert encode_float32(1234567, -2) == 0xFE12D687
    with pytest.raises(ValueError, match="SFLOAT"):
        encode_sfloat(2047, 0)  # would be NaN


@pytest.mark.parametrize("hex_le", ["", "BD"])
def test_sfloat_too_short(hex_le: str) -> None:
    with pytest.raises(MalformedMeasurement, match="too short"):
        parse_sfloat_bytes(bytes.fromhex(hex_le))


@pytest.mark.parametrize("short_by", [1, 2, 3, 4])
def test_float32_short_by(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="too short"):
        parse_float32_bytes(bytes.fromhex("87D612FE")[:-short_by])


def test_trailing_byte_is_a_warning() -> None:
    result = parse_sfloat_bytes(bytes.fromhex("BDF000"))
    assert result.value.json_value() == 18.9
    assert result.warnings == ("1 trailing byte(s) ignored: 00",)
