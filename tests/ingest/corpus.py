"""Malformed messages, each with the words its dead-letter reason must contain.

Every entry is sent on ``rpm/v1/<gw>/readings`` of the gateway given at build time, so the same
corpus runs through the pure contract and end to end through the broker and the consumer.
"""

from __future__ import annotations

import json
from typing import Any

from tests.ingest.helpers import EXAMPLE, GLUCOSE, dumps, reading


def _without(key: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    out = reading(base)
    del out[key]
    return out


def _values(**changes: Any) -> dict[str, Any]:
    out = reading()
    out["values"] = {**EXAMPLE["values"], **changes}
    return out


def _device(**changes: Any) -> dict[str, Any]:
    out = reading()
    out["device"] = {**EXAMPLE["device"], **changes}
    return out


def corpus(gw: str) -> list[tuple[str, bytes, str]]:
    """(case id, payload, expected reason fragment) for gateway ``gw``."""

    def m(**changes: Any) -> bytes:
        changes.setdefault("gateway_id", gw)
        return dumps(reading(**changes))

    def d(obj: dict[str, Any]) -> bytes:
        obj.setdefault("gateway_id", gw)
        obj["gateway_id"] = gw if obj["gateway_id"] == EXAMPLE["gateway_id"] else obj["gateway_id"]
        return dumps(obj)

    huge = reading(gateway_id=gw)
    huge["context"] = {"padding": "x" * (70 * 1024)}
    return [
        ("not_utf8", b"\xff\xfe{}", "not UTF-8"),
        ("not_json", b"{this is not json", "not JSON"),
        ("empty", b"", "not JSON"),
        ("json_array", b"[1, 2, 3]", "not an object"),
        ("json_string", b'"hello"', "not an object"),
        ("nan_literal", m().replace(b"182.0", b"NaN"), "non-JSON number NaN"),
        ("wrong_schema", m(schema="rpmflow.reading.v2"), "schema must be"),
        ("status_schema_on_readings", m(schema="rpmflow.status.v1"), "schema must be"),
        ("missing_schema", d(_without("schema")), "missing required field schema"),
        ("missing_message_id", d(_without("message_id")), "missing required field message_id"),
        ("missing_device", d(_without("device")), "missing required field device"),
        ("missing_measured_at", d(_without("measured_at")), "missing required field measured_at"),
        ("missing_values", d(_without("values")), "missing required field values"),
        ("missing_raw", d(_without("raw")), "missing required field raw"),
        ("missing_device_time", d(_without("device_time")), "missing required field device_time"),
        ("missing_device_id", d(_device(id=None)), "device.id must be a string"),
        ("message_id_upper", m(message_id="5B0C3F0A9D3E4E7F8A1B2C3D4E5F6071"), "32 lowercase hex"),
        ("message_id_short", m(message_id="abc"), "32 lowercase hex"),
        ("gateway_mismatch", m(gateway_id="someone-else"), "differs from the topic"),
        ("kind_unknown", m(kind="thermometer"), "kind must be one of"),
        ("systolic_string", d(_values(systolic_mmhg="120")), "values.systolic_mmhg must be a number"),
        ("systolic_bool", d(_values(systolic_mmhg=True)), "values.systolic_mmhg must be a number"),
        ("systolic_missing_ok", d(_values(systolic_mmhg=None)), "values.systolic_mmhg is required"),
        ("systolic_overflow", m().replace(b"182.0", b"1e400"), "must be finite"),
        ("values_list", m(values=[120, 80]), "values must be an object"),
        ("status_not_list", m(status="irregular_pulse"), "status must be a list"),
        ("measured_at_local", m(measured_at="2025-11-23T14:30:33"), "must be UTC"),
        ("measured_at_offset", m(measured_at="2025-11-23T14:30:33+02:00"), "must be UTC"),
        ("measured_at_garbage", m(measured_at="yesterdayZ"), "measured_at"),
        ("measured_at_year0", m(measured_at="0000-01-01T00:00:00Z"), "not a valid ISO 8601"),
        ("received_at_number", m(received_at=1700000000), "received_at must be a string"),
        ("device_time_zoned", m(device_time="2025-11-23T09:30:45Z"), "without zone"),
        ("sequence_on_bp", m(sequence_number=5), "must be null for blood_pressure"),
        ("glucose_without_sequence", d(reading(GLUCOSE, sequence_number=None)), "required for glucose"),
        ("sequence_too_big", d(reading(GLUCOSE, sequence_number=70000)), "0..65535"),
        ("measurement_unknown", m(measurement="meh"), "measurement must be one of"),
        ("transmission_unknown", m(transmission="carrier pigeon"), "transmission must be one of"),
        ("user_id_float", m(user_id=1.5), "user_id must be an integer"),
        ("raw_not_hex", m(raw="zz"), "raw must be hex"),
        ("unit_mismatch_kpa", m(original={"unit": "kPa", "systolic": 10.0}), "unit sanity"),
        ("unit_unknown", m(original={"unit": "furlongs"}), "not a known unit"),
        ("unit_wrong_kind", m(original={"unit": "mol/L", "concentration": 0.0055}), "glucose unit"),
        ("message_id_forged", m(message_id="0" * 32), "does not match its contents"),
        ("message_id_of_other_device", d(dict(reading(), device={**EXAMPLE["device"], "id": "OTHER-1"})),
         "does not match its contents"),
        ("glucose_raw_without_base_time", d(reading(GLUCOSE, raw="021100")), "cannot be checked"),
        ("unit_not_as_gateway_writes", m(original={"unit": "mmol/L", "concentration": 5.5}),
         "not a known unit"),
        ("huge_payload", json.dumps(huge).encode(), "over the 65536 byte limit"),
    ]
