"""The simulated readings' GATT bytes: status bits for the cuff, the meter's LO / HI specials."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.gatt.blood_pressure import parse_blood_pressure_measurement
from gateway.gatt.glucose import parse_glucose_measurement
from simulators.population import generate
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



def test_every_generated_reading_decodes_to_its_own_values() -> None:
    """The stored GATT bytes are provenance: the gateway's decoders must read back the row's values."""
    pop = generate(12, 20, seed=5)
    checked = {"blood_pressure": 0, "glucose": 0}
    for row in pop.readings():
        if row["measurement"] != "ok" or row["kind"] not in checked:
            continue
        raw = bytes.fromhex(row["raw_hex"])
        if row["kind"] == "blood_pressure":
            bp = parse_blood_pressure_measurement(raw)
            got = (bp.systolic.scaled(0), bp.diastolic.scaled(0))
            assert got == (row["systolic_mmhg"], row["diastolic_mmhg"]), row
            assert bp.pulse_rate is not None and bp.pulse_rate.scaled(0) == row["pulse_bpm"], row
        else:
            gl = parse_glucose_measurement(raw)
            assert gl.sequence_number == row["sequence_number"], row
            assert gl.concentration_mg_dl == pytest.approx(row["glucose_mg_dl"], abs=0.5), row
        checked[row["kind"]] += 1
    assert checked["blood_pressure"] > 100 and checked["glucose"] > 50, checked
