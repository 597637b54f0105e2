"""Current Time 0x2A2B (read-back and encode for write) and Local Time Information 0x2A0F."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.errors import MalformedMeasurement
from gateway.gatt import AdjustReason, encode_current_time, parse_current_time, to_json_dict
from gateway.gatt.current_time import parse_local_time_information


def test_hass_omron_read_back() -> None:
    # eigger/hass-omron #67: 2026-06-12 20:48:08, day unknown, adjust reason manual.
    result = parse_current_time(bytes.fromhex("ea07060c143008000001"))
    assert to_json_dict(result) == {
        "timestamp": "2026-06-12T20:48:08",
        "day_of_week": "unknown",
        "fractions256": 0,
        "adjust_reason": ["manual_time_update"],
    }


def test_encode_matches_read_back() -> None:
    encoded = encode_current_time(datetime(2026, 6, 12, 20, 48, 8), 0, 0, AdjustReason.MANUAL_TIME_UPDATE)
    assert encoded == bytes.fromhex("ea07060c143008000001")


def test_encode_defaults_day_of_week_and_fractions() -> None:
    encoded = encode_current_time(datetime(2026, 6, 12, 20, 48, 8, 500_000))
    assert encoded == bytes.fromhex("ea07060c143008058001")  # Friday = 5, 0.5 s = 128/256
    decoded = parse_current_time(encoded)
    assert decoded.day_of_week_name == "friday"
    assert decoded.seconds_fraction == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"day_of_week": 8}, "day of week"),
        ({"fractions256": 256}, "fractions256"),
        ({"adjust_reason": AdjustReason(0x10)}, "RFU"),
    ],
)
def test_encode_refuses_bad_fields(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_current_time(datetime(2026, 6, 12), **kwargs)  # type: ignore[arg-type]


def test_all_adjust_reasons_and_days() -> None:
    result = to_json_dict(parse_current_time(bytes.fromhex("ea07060e14300807ff0f")))
    assert result["day_of_week"] == "sunday"
    assert result["fractions256"] == 255
    assert result["adjust_reason"] == [
        "manual_time_update",
        "external_reference_time_update",
        "change_of_time_zone",
        "change_of_dst",
    ]
    assert result.get("warnings", []) == []


def test_reserved_day_and_rfu_adjust_bits_warn() -> None:
    result = parse_current_time(bytes.fromhex("ea07060c143008080011"))
    assert result.day_of_week_name == "reserved_8"
    assert result.warnings == ("reserved day of week 8", "RFU adjust reason bits set: 0x10")


def test_day_of_week_mismatch_warns() -> None:
    assert parse_current_time(bytes.fromhex("ea07060c143008010000")).warnings == (
        "day of week monday does not match 2026-06-12",
    )


def test_unknown_date() -> None:
    assert parse_current_time(bytes.fromhex("00000000143008000001")).timestamp is None


def test_out_of_range_clock_is_rejected() -> None:
    with pytest.raises(MalformedMeasurement, match="hours 25"):
        parse_current_time(bytes.fromhex("ea07060c193008000001"))


@pytest.mark.parametrize("short_by", range(1, 11), ids=lambda n: f"short_by_{n}")
def test_short_by(short_by: int) -> None:
    with pytest.raises(MalformedMeasurement, match="2A2B"):
        parse_current_time(bytes.fromhex("ea07060c143008000001")[:-short_by])


@pytest.mark.parametrize(
    ("hex_", "zone", "dst"),
    [("0400", 60, 0), ("F804", -120, 60), ("80FF", None, None), ("3808", 840, 120), ("D002", -720, 30)],
)
def test_local_time_information(hex_: str, zone: int | None, dst: int | None) -> None:
    info = parse_local_time_information(bytes.fromhex(hex_))
    assert (info.time_zone_minutes, info.dst_offset_minutes) == (zone, dst)


def test_local_time_information_bad_zone() -> None:
    with pytest.raises(MalformedMeasurement, match="time_zone 57"):
        parse_local_time_information(bytes.fromhex("3900"))
