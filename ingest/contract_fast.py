"""The one-pass check of a well-formed reading: the common case, without the reference's bookkeeping.

:func:`fast_reading` accepts exactly a subset of what the reference validator
(``ingest/contract_reference.py``) accepts, with the same result; it returns None whenever any
rule might be broken, and the caller then runs the reference, which names the reason. So this
module never writes a reason and can take shortcuts the reference cannot: plain string checks in
place of the contract's regular expressions (the reference keeps them), the C JSON parser, and
no per-field error paths. tests/ingest/test_contract_differential.py checks the subset property
against the reference itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from gateway import contract
from gateway.contract import (
    KIND_SPO2,
    KINDS,
    MAX_MESSAGE_BYTES,
    MEASUREMENT_OK,
    MEASUREMENTS,
    READING_SCHEMA,
    REQUIRED_WHEN_OK,
    SEQUENCED_KINDS,
    SPO2_SAMPLE_COUNT,
    TRANSMISSION_AUTOMATIC,
    TRANSMISSIONS,
    VALUE_NUMBERS,
)
from ingest.contract_reference import check_original
from ingest.errors import ContractViolation
from ingest.valid import DeviceInfo, ValidReading, build_reading

_fast_loads: Callable[[bytes], Any]
try:  # the C parser on the server (the ``server`` extra); the stdlib is the reference and fallback
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # pragma: no cover - exercised only without the extra
    _fast_loads = json.loads

_MAX_DEVICE_ID: Final = contract.MAX_DEVICE_ID_CHARS
_ZERO: Final = timedelta(0)
_NUMBER_TYPES: Final = (int, float)
_LOWER_HEX: Final = "0123456789abcdef"
_HEX: Final = "0123456789abcdefABCDEF"
# Every kind reads every number of ``values`` and ``sample_count``, as the reference does: a
# blood-pressure reading carrying another kind's malformed number, or a ``sample_count``, is
# declined here (ValueError -> None) so the reference names the reason; a well-formed one is kept
# as the reference keeps it. One message, one answer (tests/ingest/test_contract_differential.py).
_VALUE_NUMBERS: Final = frozenset(VALUE_NUMBERS)


def _number(container: dict[str, Any], key: str) -> float | None:
    """A finite JSON number or null/absent; raises ValueError for anything else (-> reference)."""
    value = container.get(key)
    if value is None:
        return None
    if type(value) not in _NUMBER_TYPES or not math.isfinite(value):
        raise ValueError(key)
    return float(value)


def _text(container: dict[str, Any], key: str) -> str | None:
    value = container.get(key)
    if value is not None and type(value) is not str:
        raise ValueError(key)
    return value


def _utc(value: Any) -> datetime:
    if type(value) is not str or "T" not in value or not (value.endswith("Z") or value.endswith("+00:00")):
        raise ValueError("time")
    parsed = datetime.fromisoformat(value)
    if parsed.utcoffset() != _ZERO:
        raise ValueError("time")
    return parsed


def _is_message_id(value: Any) -> bool:
    """``MESSAGE_ID_RE`` without the regex engine: 32 characters, all lowercase hex."""
    return type(value) is str and len(value) == 32 and not value.strip(_LOWER_HEX)


def _is_raw_hex(value: Any) -> bool:
    """``RAW_HEX_RE`` for the common unmerged ``raw``: one non-empty run of hex pairs."""
    if type(value) is not str:
        return False
    if "+" in value:  # merged with its context: the contract's own expression decides
        return contract.RAW_HEX_RE.match(value) is not None
    return bool(value) and not len(value) & 1 and not value.strip(_HEX)


def _device(obj: dict[str, Any]) -> DeviceInfo:
    dev = obj["device"]
    if type(dev) is not dict:
        raise ValueError("device")
    device_id = dev["id"]
    if type(device_id) is not str or len(device_id) > _MAX_DEVICE_ID or not device_id.strip():
        raise ValueError("device.id")
    get = dev.get
    texts = (get("manufacturer"), get("model"), get("serial"), get("firmware"), get("address"))
    for value in texts:
        if value is not None and type(value) is not str:
            raise ValueError("device")
    return DeviceInfo(device_id, *texts)


def _numbers(values: dict[str, Any]) -> dict[str, float | None]:
    """The numbers of ``values`` (null when absent), looking only at the keys the message has."""
    numbers: dict[str, float | None] = dict.fromkeys(VALUE_NUMBERS)
    for key, value in values.items():
        if key in _VALUE_NUMBERS and value is not None:
            if type(value) not in _NUMBER_TYPES or not math.isfinite(value):
                raise ValueError(key)
            numbers[key] = float(value)
    return numbers


def _device_time(value: Any) -> str | None:
    if value is not None and (type(value) is not str or "T" not in value
                              or datetime.fromisoformat(value).tzinfo is not None):
        raise ValueError("device_time")
    return value


def _sequence_number(kind: str, value: Any) -> int | None:
    if kind in SEQUENCED_KINDS:
        if type(value) is not int or not 0 <= value <= 65535:
            raise ValueError("sequence_number")
    elif value is not None:
        raise ValueError("sequence_number")
    return value  # type: ignore[no-any-return]


def _sample_count(kind: str, values: dict[str, Any]) -> int | None:
    count = values.get(SPO2_SAMPLE_COUNT)
    if count is not None and (kind != KIND_SPO2 or type(count) is not int or not 1 <= count <= 1_000_000):
        raise ValueError(SPO2_SAMPLE_COUNT)
    return count


def _measurement(obj: dict[str, Any], kind: str, numbers: dict[str, float | None]) -> str:
    measurement = obj.get("measurement", MEASUREMENT_OK)
    if measurement == MEASUREMENT_OK:
        for key in REQUIRED_WHEN_OK[kind]:
            if numbers[key] is None:
                raise ValueError(key)
    elif measurement not in MEASUREMENTS:
        raise ValueError("measurement")
    return measurement  # type: ignore[no-any-return]


def _optional(obj: dict[str, Any]) -> tuple[str, int | None, dict[str, Any] | None]:
    """transmission, user_id and context (absent means the contract's default)."""
    transmission = obj.get("transmission", TRANSMISSION_AUTOMATIC)
    if transmission not in TRANSMISSIONS:
        raise ValueError("transmission")
    user_id = obj.get("user_id")
    if user_id is not None and (type(user_id) is not int or not 0 <= user_id <= 255):
        raise ValueError("user_id")
    context = obj.get("context")
    if context is not None and type(context) is not dict:
        raise ValueError("context")
    return transmission, user_id, context


def _status(obj: dict[str, Any]) -> tuple[str, ...]:
    status = obj["status"]
    if type(status) is not list:
        raise ValueError("status")
    for s in status:
        if type(s) is not str:
            raise ValueError("status")
    return tuple(status)


def fast_reading(topic: str, topic_gw: str, payload: bytes) -> ValidReading | None:
    """The reading of ``payload`` if it is well formed in every respect, else None (-> reference)."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return None
    try:
        obj = _fast_loads(payload)
        if type(obj) is not dict:
            return None
        return _reading(topic, topic_gw, payload, obj)
    except (KeyError, TypeError, ValueError, ContractViolation):
        return None  # orjson.JSONDecodeError is a ValueError


def _reading(topic: str, topic_gw: str, payload: bytes, obj: dict[str, Any]) -> ValidReading | None:
    message_id = obj["message_id"]
    if obj["schema"] != READING_SCHEMA or obj["gateway_id"] != topic_gw or not _is_message_id(message_id):
        return None
    device = _device(obj)
    kind = obj["kind"]
    if kind not in KINDS:
        return None
    measured_at = _utc(obj["measured_at"])
    received_text = obj["received_at"]
    received_at = _utc(received_text)
    device_time = _device_time(obj["device_time"])
    sequence_number = _sequence_number(kind, obj["sequence_number"])
    clock_offset_s = _number(obj, "clock_offset_s")
    values = obj["values"]
    if type(values) is not dict:
        return None
    numbers = _numbers(values)
    sample_type, sample_location, meal = _text(values, "sample_type"), _text(values, "sample_location"), \
        _text(values, "meal")
    sample_count = _sample_count(kind, values)
    measurement = _measurement(obj, kind, numbers)
    original = obj.get("original")
    if original is not None:
        if type(original) is not dict:
            return None
        check_original(kind, original, numbers)
    status = _status(obj)
    transmission, user_id, context = _optional(obj)
    raw = obj["raw"]
    if not _is_raw_hex(raw) or contract.message_id_from_contents(
            device_id=device.device_id, kind=kind, raw=raw, device_time=device_time,
            received_at=received_text, sequence_number=sequence_number,
            sample_count=sample_count) != message_id:
        return None
    return build_reading(
        topic, message_id, topic_gw, device, kind, measured_at, device_time, clock_offset_s,
        received_at, sequence_number, numbers["systolic_mmhg"], numbers["diastolic_mmhg"],
        numbers["mean_arterial_mmhg"], numbers["pulse_bpm"], numbers["glucose_mg_dl"],
        sample_type, sample_location, meal, original, status, measurement, transmission,
        user_id, context, raw, obj, payload.decode("utf-8"), numbers["weight_kg"], numbers["bmi"],
        numbers["height_m"], numbers["spo2_pct"], numbers["spo2_min_pct"], sample_count,
    )
