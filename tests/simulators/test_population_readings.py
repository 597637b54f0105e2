"""The simulated readings' GATT bytes: status bits for the cuff, the meter's LO / HI specials."""

from __future__ import annotations

from datetime import datetime

from simulators.population_readings import _raw_hex

LOCAL = datetime(2026, 1, 5, 7, 30, 15)


def test_cuff_bytes_carry_the_values_and_the_status_bits() -> None:
    values = {"systolic_mmhg": 150, "diastolic_mmhg": 95, "pulse_bpm": 72}
    raw = bytes.fromhex(
        _raw_hex("blood_pressure", values, LOCAL, ["body_movement", "irregular_pulse"], "ok", None)
    )
    assert raw[0] == 0x1E
    assert int.from_bytes(raw[1:3], "little") == 150
    assert int.from_bytes(raw[3:5], "little") == 95
    assert int.from_bytes(raw[7:9], "little") == 2026
    assert raw[9:14] == bytes([1, 5, 7, 30, 15])
    assert int.from_bytes(raw[14:16], "little") == 72
    assert int.from_bytes(raw[17:19], "little") == 0x01 | 0x04


def test_a_failed_cuff_reading_encodes_nan() -> None:
    raw = bytes.fromhex(_raw_hex("blood_pressure", {}, LOCAL, [], "failed", None))
    assert int.from_bytes(raw[1:3], "little") == 0x07FF  # SFLOAT NaN
    assert int.from_bytes(raw[17:19], "little") == 0


def test_meter_lo_and_hi_are_the_sfloat_infinities() -> None:
    lo = bytes.fromhex(_raw_hex("glucose", {}, LOCAL, [], "out_of_range_low", 12))
    hi = bytes.fromhex(_raw_hex("glucose", {}, LOCAL, [], "out_of_range_high", 13))
    assert int.from_bytes(lo[1:3], "little") == 12
    assert int.from_bytes(lo[10:12], "little") == 0x0802  # -INF
    assert int.from_bytes(hi[10:12], "little") == 0x07FE  # +INF

