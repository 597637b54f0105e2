"""Plausibility layer (DOMAIN C5): impossible values raise, suspicious ones return reasons."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.errors import ImpossibleValue, TerminalError
from gateway.gatt import parse_blood_pressure_measurement, parse_glucose_measurement
from gateway.gatt.plausibility import (
    check_blood_pressure,
    check_clock_offset,
    check_device_time,
    check_glucose,
    glucose_mg_dl,
    is_control_solution,
)

BASE = "0100" + "E807030F0E1E2D"


def bp(values: str, flags: str = "00", tail: str = "") -> list[str]:
    return check_blood_pressure(parse_blood_pressure_measurement(bytes.fromhex(flags + values + tail)))


def test_normal_reading() -> None:
    assert bp("7800 5000 5D00") == []  # 120/80, MAP 93


def test_kpa_is_converted_before_checking() -> None:
    assert bp("A0F0 6BF0 7DF0", flags="01") == []  # 16.0/10.7/12.5 kPa ≈ 120/80/94 mmHg


@pytest.mark.parametrize(
    ("values", "tail", "flags", "field"),
    [
        ("5E01 5000 5D00", "", "00", "systolic"),  # 350 mmHg
        ("0F00 0A00 0C00", "", "00", "systolic"),  # 15 mmHg: below the contract's 20
        ("1A01 5000 5D00", "", "00", "systolic"),  # 282 mmHg: above the contract's 280
        ("7800 8200 7D00", "", "00", "diastolic"),  # diastolic 130 ≥ systolic 120
        ("7800 7800 7800", "", "00", "diastolic"),  # equal
        ("7800 5000 8200", "", "00", "mean_arterial_pressure"),  # MAP 130 above systolic
        ("7800 5000 4600", "", "00", "mean_arterial_pressure"),  # MAP 70 below diastolic
        ("7800 5000 5D00", "0A00", "04", "pulse_rate"),  # pulse 10
        ("7800 5000 5D00", "FB00", "04", "pulse_rate"),  # pulse 251: above the contract's 250
        ("7800 5000 5D00", "4800", "04", None),  # pulse 72 fine
        ("7800 5000 5D00", "0048", "04", "pulse_rate"),  # Beurer big-endian 72 → 0x4800 = 2048e4
    ],
)
def test_impossible_values(values: str, tail: str, flags: str, field: str | None) -> None:
    if field is None:
        assert bp(values, flags, tail) == []
        return
    with pytest.raises(ImpossibleValue) as info:
        bp(values, flags, tail)
    assert info.value.field == field
    assert isinstance(info.value, TerminalError)


def test_pulse_pressure_is_suspicious_not_impossible() -> None:
    assert bp("7D00 7600 7900") == ["pulse pressure 7 mmHg outside 10..120"]  # 125/118


def test_specials_are_not_judged_here() -> None:
    assert bp("FF07 FF07 FF07") == []


def glucose(conc_type: str, flags: str = "02") -> list[str]:
    return check_glucose(parse_glucose_measurement(bytes.fromhex(flags + BASE + conc_type)))


def test_glucose_in_range() -> None:
    assert glucose("78B0 11") == []  # 120 mg/dL
    assert glucose("37C0 11", flags="06") == []  # 5.5 mmol/L


def test_glucose_exponent_zero_encoder_bug_is_impossible() -> None:
    with pytest.raises(ImpossibleValue, match="glucose"):
        glucose("7800 11")  # 120 kg/L


def test_glucose_below_floor_is_impossible() -> None:
    with pytest.raises(ImpossibleValue):
        glucose("05B0 11")  # 5 mg/dL


def test_glucose_unit_sanity() -> None:
    assert glucose("28D0 11", flags="06") == ["40 mmol/L above 35: unit error?"]  # 0.040 mol/L
    assert glucose("0CB0 11") == ["12 mg/dL below 15: unit error?"]


def test_glucose_specials_and_absent_are_not_judged() -> None:
    assert glucose("FE07 11") == []
    assert check_glucose(parse_glucose_measurement(bytes.fromhex("00" + BASE))) == []


def test_glucose_mg_dl_conversion() -> None:
    m = parse_glucose_measurement(bytes.fromhex("06" + BASE + "37C0 11"))
    assert glucose_mg_dl(m) is not None and float(glucose_mg_dl(m) or 0) == pytest.approx(99.0858)


def test_control_solution() -> None:
    assert is_control_solution(parse_glucose_measurement(bytes.fromhex("02" + BASE + "78B0 4A")))
    assert not is_control_solution(parse_glucose_measurement(bytes.fromhex("02" + BASE + "78B0 11")))


def test_device_time_checks() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0)
    assert check_device_time(now, gateway_now=now) == []
    assert check_device_time(None, gateway_now=now) == []
    assert len(check_device_time(now + timedelta(minutes=11), gateway_now=now)) == 1
    assert len(check_device_time(datetime(2021, 1, 1), gateway_now=now, not_before=datetime(2025, 1, 1))) == 1


def test_clock_offset() -> None:
    assert check_clock_offset(None) == []
    assert check_clock_offset(120.0) == []
    assert check_clock_offset(-601.0) == ["device clock offset -601 s exceeds ±600 s"]
