"""Contract v1 extended compatibly: weight and spo2 readings from the gateway's own builders are
valid; each new rule refuses with a precise reason; plausibility quarantines (never clamps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import wire, wire_vitals
from gateway.gatt import (
    parse_plx_continuous_measurement,
    parse_plx_spot_check_measurement,
    parse_weight_measurement,
)
from gateway.oximetry import ContinuousSummariser
from ingest.contract import ValidReading, decode
from ingest.errors import ContractViolation, MessageIdMismatch
from ingest.plausibility import grade

GW = "gw-vit"
TOPIC = f"rpm/v1/{GW}/readings"
RX = datetime(2026, 3, 15, 8, 0, 5, tzinfo=UTC)
NOW = RX + timedelta(minutes=5)
DEVICE = wire.DeviceIdentity(id="SER-1", manufacturer="m", model="x", serial="SER-1")
TIMING = wire.Timing(received_at=RX, clock_offset_s=None, zone=ZoneInfo("UTC"))


def _weight(hex_: str) -> dict[str, Any]:
    return wire_vitals.weight_reading(
        parse_weight_measurement(bytes.fromhex(hex_)), gateway_id=GW, device=DEVICE, timing=TIMING
    )


def _spot(hex_: str) -> dict[str, Any]:
    m = parse_plx_spot_check_measurement(bytes.fromhex(hex_))
    return wire_vitals.spo2_reading(m, gateway_id=GW, device=DEVICE, timing=TIMING)


def _summary(values: list[int]) -> dict[str, Any]:
    s = ContinuousSummariser(60)
    for i, v in enumerate(values):
        frame = bytes([0]) + v.to_bytes(2, "little") + (70).to_bytes(2, "little")
        s.add(parse_plx_continuous_measurement(frame), RX + timedelta(seconds=i))
    (summary,) = s.flush()
    timing = wire.Timing(received_at=summary.first_received_at, clock_offset_s=None, zone=ZoneInfo("UTC"))
    return wire_vitals.spo2_summary_reading(summary, gateway_id=GW, device=DEVICE, timing=timing)


def _decode(msg: dict[str, Any]) -> ValidReading:
    result = decode(TOPIC, json.dumps(msg).encode())
    assert isinstance(result, ValidReading)
    return result


def test_weight_in_pounds() -> None:
    r = _decode(_weight("0f543de7070c190e1e2d03f500a802"))  # 157 lb, 68 in, BMI 24.5
    assert (r.kind, r.weight_kg, r.bmi, r.height_m) == ("weight", 71.21400209, 24.5, 1.7272)
    assert r.original == {"unit": "lb", "weight": 157.0}
    assert r.sequence_number is None and r.user_id == 3
    assert grade(r, now=NOW).quality == "valid"


def test_weight_unsuccessful_is_a_failed_reading() -> None:
    r = _decode(_weight("02ffffe8070310080000"))
    assert (r.measurement, r.weight_kg) == ("failed", None)
    assert grade(r, now=NOW).quality == "failed"


def test_spot_check_and_summary() -> None:
    spot = _decode(_spot("0362004800e807030f080000" + "8000"))
    assert (spot.kind, spot.spo2_pct, spot.pulse_bpm, spot.sample_count) == ("spo2", 98.0, 72.0, None)
    assert spot.status == ("validated_data",)
    summary = _decode(_summary([95, 96, 88, 97]))
    assert (summary.spo2_pct, summary.spo2_min_pct, summary.sample_count) == (95.5, 88.0, 4)
    assert grade(summary, now=NOW).quality == "valid"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m.update(sequence_number=7), "sequence_number must be null for weight"),
        (lambda m: m["values"].update(weight_kg=None), "values.weight_kg is required"),
        (lambda m: m["values"].update(sample_count=3), "only for spo2"),
        (lambda m: m["original"].update(weight=100.0), "unit sanity"),
        (lambda m: m.update(original={"unit": "lb", "weight": "x"}), "original.weight must be a number"),
    ],
)
def test_weight_rules(mutate: Any, reason: str) -> None:
    msg = _weight("01543d")
    mutate(msg)
    with pytest.raises(ContractViolation, match=reason):
        _decode(msg)


@pytest.mark.parametrize(
    ("mutate", "error", "reason"),
    [
        (lambda m: m["values"].update(pulse_bpm=None), ContractViolation, "values.pulse_bpm is required"),
        (lambda m: m["values"].update(sample_count=0), ContractViolation, "sample_count must be an integer"),
        (
            lambda m: m["values"].update(sample_count=True),
            ContractViolation,
            "sample_count must be an integer",
        ),
        (lambda m: m["values"].update(sample_count=5), MessageIdMismatch, "values.sample_count"),
        (lambda m: m.update(received_at="2026-03-15T08:00:06Z"), MessageIdMismatch, "received_at"),
    ],
)
def test_summary_rules(mutate: Any, error: type[Exception], reason: str) -> None:
    msg = _summary([95, 96, 97, 94])
    mutate(msg)
    with pytest.raises(error, match=reason):
        _decode(msg)


def test_spot_check_id_covers_its_bytes() -> None:
    msg = _spot("0062004800")  # no time stamp: the receive time joins the identity
    msg["raw"] = "0063004800"
    with pytest.raises(MessageIdMismatch):
        _decode(msg)


@pytest.mark.parametrize(
    ("hex_", "reason"),
    [
        ("00b80b", "weight 15 kg outside 20..300"),  # 3000 × 0.005 kg
        ("00e0ea", "weight 300.64 kg outside 20..300"),
    ],
)
def test_implausible_weight_is_quarantined_not_clamped(hex_: str, reason: str) -> None:
    r = _decode(_weight(hex_))
    g = grade(r, now=NOW)
    assert (g.quality, g.reason) == ("quarantined", reason)
    assert r.weight_kg is not None and r.weight_kg not in (20.0, 300.0)


@pytest.mark.parametrize(
    ("hex_", "reason"),
    [
        ("0065004800", "SpO2 101 % outside 50..100"),
        ("002d004800", "SpO2 45 % outside 50..100"),
        ("0062000a00", "pulse 10 bpm outside 25..250"),
        ("0262004800" + "0040", "questionable"),
    ],
)
def test_implausible_spo2_is_quarantined(hex_: str, reason: str) -> None:
    g = grade(_decode(_spot(hex_)), now=NOW)
    assert g.quality == "quarantined" and reason in (g.reason or "")


def test_finger_out_spot_check_is_failed() -> None:
    r = _decode(_spot("02ff07ff070020"))
    assert (r.measurement, r.spo2_pct, r.pulse_bpm) == ("failed", None, None)
    assert "measurement_unavailable" in r.status


def test_a_clock_never_set_gives_receive_time_and_a_stable_id() -> None:
    """Xiaomi-like 1970 time stamp (DOMAIN-weight-plx A10.13): receive time, not a 1970 quarantine."""
    frame = "02b036b2070101000000"  # 70 kg, time stamp 1970-01-01 00:00:00
    first = _decode(_weight(frame))
    assert (first.device_time, first.measured_at, first.status) == (None, RX, ("device_clock_not_set",))
    assert grade(first, now=NOW).quality == "valid"
    later = wire.Timing(received_at=RX + timedelta(hours=2), clock_offset_s=None, zone=ZoneInfo("UTC"))
    again = wire_vitals.weight_reading(
        parse_weight_measurement(bytes.fromhex(frame)), gateway_id=GW, device=DEVICE, timing=later
    )
    assert again["message_id"] == first.message_id  # a re-sent weighing is the same reading
    spot = _decode(_spot("0162004800d0070101000000"))  # PLX clock counting from 2000, flag b4 clear
    assert spot.device_time is None and "device_clock_not_set" in spot.status
