"""The reading/status JSON of docs/wire-format.md, from decoded frames (literal vectors)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import wire
from gateway.gatt import merge_glucose_context, parse_blood_pressure_measurement, parse_glucose_context
from gateway.gatt import parse_glucose_measurement as glucose

RX = datetime(2026, 11, 23, 14, 31, 2, tzinfo=UTC)
TIMING = wire.Timing(RX, 12.0, ZoneInfo("America/New_York"))
DEVICE = wire.DeviceIdentity(
    "OMR-7361-000123", "OMRON", "HEM-7361T", "OMR-7361-000123", "1.2", "C8:4F:86:00:01:23"
)


def _bp(hex_: str, timing: wire.Timing = TIMING) -> dict[str, Any]:
    m = parse_blood_pressure_measurement(bytes.fromhex(hex_))
    return wire.blood_pressure_reading(m, gateway_id="gw-0001", device=DEVICE, timing=timing)


def test_documented_example() -> None:
    msg = _bp("1eb6005f007c00ea070b17091e2d4d00010400")
    # sha256 of the recipe's input "<version>|OMR-7361-000123|blood_pressure|raw=1eb6…0400"
    # (docs/wire-format.md), computed once by hand: a literal, so a drift of the recipe fails here
    assert msg["message_id"] == "3bc07ada3f581d70639fbccb04f74623"
    assert msg["measured_at"] == "2026-11-23T14:30:33Z"
    assert msg["device_time"] == "2026-11-23T09:30:45"
    assert msg["received_at"] == "2026-11-23T14:31:02Z"
    assert msg["values"] == {
        "systolic_mmhg": 182.0,
        "diastolic_mmhg": 95.0,
        "mean_arterial_mmhg": 124.0,
        "pulse_bpm": 77.0,
    }
    assert msg["status"] == ["irregular_pulse"] and msg["user_id"] == 1 and msg["measurement"] == "ok"
    assert json.loads(wire.encode(msg)) == msg


def test_bp_without_time_stamp_uses_receive_time_in_identity_and_measured_at() -> None:
    msg = _bp("047800500064004800")  # mmHg, pulse, no time stamp
    identity = "raw=047800500064004800|rx=2026-11-23T14:31:02Z"
    assert msg["message_id"] == wire.message_id("OMR-7361-000123", "blood_pressure", identity)
    assert msg["measured_at"] == "2026-11-23T14:31:02Z" and msg["device_time"] is None


def test_kpa_converted_original_kept() -> None:
    msg = _bp("01a0f06bf07cf0")
    values = msg["values"]
    assert values["systolic_mmhg"] == pytest.approx(16.0 * 7.50062)
    assert msg["original"] == {"unit": "kPa", "systolic": 16.0, "diastolic": 10.7, "mean_arterial": 12.4}


def test_failed_bp_has_null_values() -> None:
    msg = _bp("00ff07ff07ff07")
    assert msg["measurement"] == "failed"
    assert set(msg["values"].values()) == {None}


def test_glucose_kg_per_l_with_context() -> None:
    m = glucose(bytes.fromhex("120100e807030f0e1e2d69b011"))
    ctx = parse_glucose_context(bytes.fromhex("02010001"))
    msg = wire.glucose_reading(merge_glucose_context(m, ctx), gateway_id="gw", device=DEVICE, timing=TIMING)
    assert msg["values"] == {
        "glucose_mg_dl": 105.0,
        "sample_type": "capillary_whole_blood",
        "sample_location": "finger",
        "meal": "preprandial",
    }
    assert msg["original"] == {"unit": "kg/L", "concentration": 0.00105}
    assert msg["message_id"] == wire.message_id(DEVICE.id, "glucose", "seq=1|base=2024-03-15T14:30:45")
    assert msg["raw"] == "120100e807030f0e1e2d69b011+02010001" and msg["sequence_number"] == 1


def test_glucose_mol_per_l_and_infinity() -> None:
    mol = glucose(bytes.fromhex("060200e807030f0e1e2d37c011"))  # 5.5 mmol/L
    msg = wire.glucose_reading(
        merge_glucose_context(mol, None), gateway_id="gw", device=DEVICE, timing=TIMING
    )
    assert msg["values"]["glucose_mg_dl"] == pytest.approx(5.5 * 18.0156)
    assert msg["original"] == {"unit": "mol/L", "concentration": 0.0055}
    hi = glucose(bytes.fromhex("0a0300e807030f0e1e2dfe07112000"))
    msg = wire.glucose_reading(merge_glucose_context(hi, None), gateway_id="gw", device=DEVICE, timing=TIMING)
    assert msg["measurement"] == "out_of_range_high" and msg["values"]["glucose_mg_dl"] is None
    unknown = glucose(bytes.fromhex("000400000000000000"[:18] + "00"))
    msg = wire.glucose_reading(
        merge_glucose_context(unknown, None), gateway_id="gw", device=DEVICE, timing=TIMING
    )
    assert msg["measurement"] == "failed" and msg["device_time"] is None
    assert msg["message_id"] == wire.message_id(DEVICE.id, "glucose", "seq=4|base=unknown")


def test_topics_and_status() -> None:
    assert wire.readings_topic("gw-1") == "rpm/v1/gw-1/readings"
    assert wire.status_topic("gw-1") == "rpm/v1/gw-1/status"
    status = wire.status_message(
        gateway_id="gw-1",
        online=True,
        at=RX,
        outbox_depth=3,
        outbox_capacity=10,
        outbox_full=False,
        devices={},
        software="rpmflow 0.1.0",
    )
    assert status["schema"] == "rpmflow.status.v1" and status["at"] == "2026-11-23T14:31:02Z"
