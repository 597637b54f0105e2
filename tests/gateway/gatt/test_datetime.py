"""Date Time 0x2A08: unknown fields decode to None, out-of-range fields are refused."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.errors import MalformedMeasurement
from gateway.gatt import encode_date_time, parse_date_time


def test_valid_date_time() -> None:
    result = parse_date_time(bytes.fromhex("E807030F0E1E2D"))
    assert result.timestamp == datetime(2024, 3, 15, 14, 30, 45)
    assert result.raw_hex == "e807030f0e1e2d"
    assert result.warnings == ()


@pytest.mark.parametrize(
    "hex_le",
    [
        "0000030F0E1E2D",  # year 0
        "E807000F0E1E2D",  # month 0
        "E80703000E1E2D",  # day 0
        "00000000000000",  # all unknown
    ],
)
def test_unknown_date_is_none(hex_le: str) -> None:
    assert parse_date_time(bytes.fromhex(hex_le)).timestamp is None


@pytest.mark.parametrize(
    ("hex_le", "message"),
    [
        ("2D06030F0E1E2D", "year 1581"),
        ("1027030F0E1E2D", "year 10000"),
        ("E8070D0F0E1E2D", "month 13"),
        ("E80703200E1E2D", "day 32"),
        ("E807030F181E2D", "hours 24"),
        ("E807030F0E3C2D", "minutes 60"),
        ("E807030F0E1E3C", "seconds 60"),
        ("E807021E0E1E2D", "day 30 out of range for 2024-02"),
        ("E707021D0E1E2D", "day 29 out of range for 2023-02"),
        ("00000000181E2D", "hours 24"),  # time fields are checked even when the date is unknown
    ],
)
def test_out_of_range_is_rejected(hex_le: str, message: str) -> None:
    with pytest.raises(MalformedMeasurement, match=message):
        parse_date_time(bytes.fromhex(hex_le))


def test_leap_day() -> None:
    assert parse_date_time(bytes.fromhex("E807021D000000")).timestamp == datetime(2024, 2, 29)


@pytest.mark.parametrize("short_by", range(1, 8))
def test_short_by(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="too short"):
        parse_date_time(bytes.fromhex("E807030F0E1E2D")[:-short_by])


def test_trailing_bytes_warn() -> None:
    result = parse_date_time(bytes.fromhex("E807030F0E1E2DAA"))
    assert result.timestamp == datetime(2024, 3, 15, 14, 30, 45)
    assert result.warnings == ("1 trailing byte(s) ignored: aa",)


def test_encode_date_time() -> None:
    assert encode_date_time(datetime(2024, 3, 15, 14, 30, 45)) == bytes.fromhex("E807030F0E1E2D")
    assert encode_date_time(None) == bytes(7)
