"""The oracle: ingest/contract.py as it was at 312b792, before the split and the cheaper fast path.

Kept verbatim (apart from this paragraph) so tests/ingest/test_contract_differential.py can hold
the current validator to the same result and the same dead-letter reason for every input. Not
production code; delete it together with that test once the wire contract itself changes.

The original docstring follows.

The wire contract of docs/wire-format.md, as a pure function of (topic, bytes).

``decode(topic, payload)`` returns a typed :class:`ValidReading` or :class:`ValidStatus`, or raises
:class:`~ingest.errors.ContractViolation` whose ``reason`` names the first broken rule precisely
(field path and what was wrong). Every rule's constants come from :mod:`gateway.contract`, which
owns wire contract v1; this module restates none of them. A reading's ``message_id`` must be the
contract's recipe applied to the reading's own contents (:class:`~ingest.errors.MessageIdMismatch`
otherwise), so no gateway can pre-claim another's reading. No clock, no I/O: plausibility (which
needs ``now``) is a separate step in ``ingest.plausibility``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from gateway import contract
from gateway.contract import (
    GLUCOSE_LABELS,
    KIND_BLOOD_PRESSURE,
    KIND_GLUCOSE,
    KIND_SPO2,
    KINDS,
    MAX_MESSAGE_BYTES,
    MEASUREMENT_OK,
    MEASUREMENTS,
    READING_SCHEMA,
    REQUIRED_WHEN_OK,
    SEQUENCED_KINDS,
    SPO2_SAMPLE_COUNT,
    STATUS_SCHEMA,
    TRANSMISSION_AUTOMATIC,
    TRANSMISSIONS,
    VALUE_NUMBERS,
)
from ingest.errors import ContractViolation, MessageIdMismatch

_fast_loads: Callable[[bytes], Any]
try:  # the C parser on the server (the ``server`` extra); the stdlib is the reference and fallback
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # pragma: no cover - exercised only without the extra
    _fast_loads = json.loads

_TOPIC = contract.INBOUND_TOPIC_RE
_MESSAGE_ID = contract.MESSAGE_ID_RE
_RAW_HEX = contract.RAW_HEX_RE
_MAX_DEVICE_ID = contract.MAX_DEVICE_ID_CHARS
_CONVERSIONS = contract.ORIGINAL_UNITS


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    address: str | None


@dataclass(frozen=True)
class ValidReading:
    """A reading that satisfies the contract; numbers are canonical units, times are aware UTC."""

    topic: str
    message_id: str
    gateway_id: str
    device: DeviceInfo
    kind: str
    measured_at: datetime
    device_time: str | None
    clock_offset_s: float | None
    received_at: datetime
    sequence_number: int | None
    systolic_mmhg: float | None
    diastolic_mmhg: float | None
    mean_arterial_mmhg: float | None
    pulse_bpm: float | None
    glucose_mg_dl: float | None
    sample_type: str | None
    sample_location: str | None
    meal: str | None
    original: dict[str, Any] | None
    status: tuple[str, ...]
    measurement: str
    transmission: str
    user_id: int | None
    context: dict[str, Any] | None
    raw: str
    payload: dict[str, Any]
    payload_text: str
    # weight and spo2 (contract v1, extended compatibly); null for the other kinds
    weight_kg: float | None = None
    bmi: float | None = None
    height_m: float | None = None
    spo2_pct: float | None = None
    spo2_min_pct: float | None = None
    sample_count: int | None = None


@dataclass(frozen=True)
class ValidStatus:
    """A gateway status (retained) message."""

    topic: str
    gateway_id: str
    online: bool
    at: datetime
    payload: dict[str, Any]
    payload_text: str


def topic_gateway(topic: str) -> str | None:
    """The gateway id of a well-formed ``rpm/v1/<gw>/...`` topic, else None (for dead letters)."""
    m = _TOPIC.match(topic)
    return m.group(1) if m else None


def decode(topic: str, payload: bytes) -> ValidReading | ValidStatus:
    """Validate one MQTT message against the contract of its topic.

    A reading of the common shape takes the one-pass fast path (:func:`_fast_reading`); anything
    it does not accept outright goes through the field-by-field validator, which is the reference
    and names the first broken rule.
    """
    m = _TOPIC.match(topic)
    if m is None:
        raise ContractViolation(f"topic {topic[:200]!r} is not rpm/v1/<gateway_id>/readings|status")
    gateway_id, leaf = m.group(1), m.group(2)
    if leaf == "readings":
        fast = _fast_reading(topic, gateway_id, payload)
        if fast is not None:
            return fast
    text, obj = _load_object(payload)
    if leaf == "status":
        return _status(topic, gateway_id, obj, text)
    return _reading(topic, gateway_id, obj, text)


_NUMBER_TYPES: Final = (int, float)


def _fast_number(container: dict[str, Any], key: str) -> float | None:
    """A finite JSON number or null/absent; raises ValueError for anything else (-> slow path)."""
    value = container.get(key)
    if value is None:
        return None
    if type(value) not in _NUMBER_TYPES or not math.isfinite(value):
        raise ValueError(key)
    return float(value)


def _fast_text(container: dict[str, Any], key: str) -> str | None:
    value = container.get(key)
    if value is not None and type(value) is not str:
        raise ValueError(key)
    return value


def _fast_utc(value: Any) -> datetime:
    if type(value) is not str or "T" not in value or not (value.endswith("Z") or value.endswith("+00:00")):
        raise ValueError("time")
    parsed = datetime.fromisoformat(value)
    if parsed.utcoffset() != _ZERO:
        raise ValueError("time")
    return parsed


_ZERO: Final = timedelta(0)
_FAST_KINDS: Final = frozenset({KIND_BLOOD_PRESSURE, KIND_GLUCOSE})


def _fast_reading(topic: str, topic_gw: str, payload: bytes) -> ValidReading | None:
    """One pass over a well-formed reading; None when any rule might be broken.

    Accepts exactly a subset of what :func:`_reading` accepts, with the same result (a test checks
    both on the corpus and on generated variations), so the reasons of refused messages stay those
    of the reference validator.
    """
    if len(payload) > MAX_MESSAGE_BYTES:
        return None
    try:
        obj = _fast_loads(payload)
        if type(obj) is not dict:
            return None
        if obj["schema"] != READING_SCHEMA or obj["gateway_id"] != topic_gw:
            return None
        message_id = obj["message_id"]
        if type(message_id) is not str or not _MESSAGE_ID.match(message_id):
            return None
        dev = obj["device"]
        if type(dev) is not dict:
            return None
        device_id = dev["id"]
        if type(device_id) is not str or len(device_id) > _MAX_DEVICE_ID or not device_id.strip():
            return None
        device = DeviceInfo(device_id, _fast_text(dev, "manufacturer"), _fast_text(dev, "model"),
                            _fast_text(dev, "serial"), _fast_text(dev, "firmware"),
                            _fast_text(dev, "address"))
        kind = obj["kind"]
        if kind not in _FAST_KINDS:  # weight / spo2 take the reference validator
            return None
        measured_at = _fast_utc(obj["measured_at"])
        received_at = _fast_utc(obj["received_at"])
        device_time = obj["device_time"]
        if device_time is not None:
            if type(device_time) is not str or "T" not in device_time:
                return None
            if datetime.fromisoformat(device_time).tzinfo is not None:
                return None
        sequence_number = obj["sequence_number"]
        if kind == KIND_BLOOD_PRESSURE:
            if sequence_number is not None:
                return None
        elif type(sequence_number) is not int or not 0 <= sequence_number <= 65535:
            return None
        clock_offset_s = _fast_number(obj, "clock_offset_s")
        values = obj["values"]
        if type(values) is not dict:
            return None
        systolic = _fast_number(values, "systolic_mmhg")
        diastolic = _fast_number(values, "diastolic_mmhg")
        mean_arterial = _fast_number(values, "mean_arterial_mmhg")
        pulse = _fast_number(values, "pulse_bpm")
        glucose = _fast_number(values, "glucose_mg_dl")
        sample_type = _fast_text(values, "sample_type")
        sample_location = _fast_text(values, "sample_location")
        meal = _fast_text(values, "meal")
        measurement = obj.get("measurement", MEASUREMENT_OK)
        if measurement == MEASUREMENT_OK:
            if kind == KIND_BLOOD_PRESSURE:
                if systolic is None or diastolic is None:
                    return None
            elif glucose is None:
                return None
        elif measurement not in MEASUREMENTS:
            return None
        original = obj.get("original")
        if original is not None:
            if type(original) is not dict:
                return None
            _check_original(kind, original, {"systolic_mmhg": systolic, "diastolic_mmhg": diastolic,
                                             "mean_arterial_mmhg": mean_arterial, "glucose_mg_dl": glucose})
        status = obj["status"]
        if type(status) is not list:
            return None
        for s in status:
            if type(s) is not str:
                return None
        transmission = obj.get("transmission", TRANSMISSION_AUTOMATIC)
        if transmission not in TRANSMISSIONS:
            return None
        user_id = obj.get("user_id")
        if user_id is not None and (type(user_id) is not int or not 0 <= user_id <= 255):
            return None
        context = obj.get("context")
        if context is not None and type(context) is not dict:
            return None
        raw = obj["raw"]
        if type(raw) is not str or not _RAW_HEX.match(raw):
            return None
        if _expected_id(device_id, kind, raw, device_time, obj["received_at"], sequence_number) != message_id:
            return None
        text = payload.decode("utf-8")
    except (KeyError, TypeError, ValueError, ContractViolation):
        return None  # orjson.JSONDecodeError is a ValueError
    return ValidReading(
        topic, message_id, topic_gw, device, kind, measured_at, device_time, clock_offset_s,
        received_at, sequence_number, systolic, diastolic, mean_arterial, pulse, glucose,
        sample_type, sample_location, meal, original, tuple(status), measurement, transmission,
        user_id, context, raw, obj, text,
    )


def _reject_constant(name: str) -> float:
    raise ContractViolation(f"payload contains the non-JSON number {name}")


def _load_object(payload: bytes) -> tuple[str, dict[str, Any]]:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ContractViolation(f"payload is {len(payload)} bytes, over the {MAX_MESSAGE_BYTES} byte limit")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractViolation(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} col {exc.colno}"
        raise ContractViolation(f"payload is not JSON ({exc.msg} at {where})") from None
    except RecursionError:
        raise ContractViolation("payload is not JSON (nesting too deep)") from None
    if not isinstance(obj, dict):
        raise ContractViolation(f"payload is a JSON {type(obj).__name__}, not an object")
    return text, obj


# -- field readers: each names the field path in its error -------------------------------------------

_MISSING = object()


def _get(obj: dict[str, Any], key: str, path: str, *, required: bool) -> Any:
    if key not in obj:
        if required:
            raise ContractViolation(f"missing required field {path}{key}")
        return _MISSING
    return obj[key]


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _str(obj: dict[str, Any], key: str, path: str = "", *, required: bool = True,
         nullable: bool = False) -> str | None:
    value = _get(obj, key, path, required=required)
    if value is _MISSING or (value is None and nullable):
        return None
    if not isinstance(value, str):
        want = "string or null" if nullable else "string"
        raise ContractViolation(f"{path}{key} must be a {want}, got {_type_name(value)}")
    return value


def _number(obj: dict[str, Any], key: str, path: str = "", *, required: bool = False) -> float | None:
    value = _get(obj, key, path, required=required)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractViolation(f"{path}{key} must be a number or null, got {_type_name(value)}")
    if not math.isfinite(value):
        raise ContractViolation(f"{path}{key} must be finite, got {value!r}")
    return float(value)


def _int(obj: dict[str, Any], key: str, lo: int, hi: int, *, required: bool) -> int | None:
    value = _get(obj, key, "", required=required)
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractViolation(f"{key} must be an integer or null, got {_type_name(value)}")
    if not lo <= value <= hi:
        raise ContractViolation(f"{key} must be in {lo}..{hi}, got {value}")
    return value


def _object(obj: dict[str, Any], key: str, *, required: bool, nullable: bool) -> dict[str, Any] | None:
    value = _get(obj, key, "", required=required)
    if value is _MISSING or (value is None and nullable):
        return None
    if not isinstance(value, dict):
        want = "object or null" if nullable else "object"
        raise ContractViolation(f"{key} must be an {want}, got {_type_name(value)}")
    return value


def _utc(obj: dict[str, Any], key: str) -> datetime:
    text = _str(obj, key)
    assert text is not None
    if not (text.endswith("Z") or text.endswith("+00:00")) or "T" not in text:
        raise ContractViolation(f"{key} must be UTC ISO 8601 ending in Z or +00:00, got {text[:64]!r}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ContractViolation(f"{key} is not a valid ISO 8601 time: {text[:64]!r}") from None
    if value.utcoffset() != timedelta(0):
        raise ContractViolation(f"{key} must be UTC, got offset {value.utcoffset()}")
    return value


def _local_time(obj: dict[str, Any], key: str) -> str | None:
    text = _str(obj, key, nullable=True)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ContractViolation(f"{key} is not a valid ISO 8601 time: {text[:64]!r}") from None
    if value.tzinfo is not None or "T" not in text:
        raise ContractViolation(f"{key} must be an ISO 8601 date-time without zone, got {text[:64]!r}")
    return text


def _choice(obj: dict[str, Any], key: str, allowed: frozenset[str], default: str | None) -> str:
    value = _str(obj, key, required=default is None)
    if value is None:
        assert default is not None
        return default
    if value not in allowed:
        raise ContractViolation(f"{key} must be one of {sorted(allowed)}, got {value[:64]!r}")
    return value


def _device(obj: dict[str, Any]) -> DeviceInfo:
    dev = _object(obj, "device", required=True, nullable=False)
    assert dev is not None
    device_id = _str(dev, "id", "device.")
    assert device_id is not None
    if not device_id.strip() or len(device_id) > _MAX_DEVICE_ID:
        raise ContractViolation(f"device.id must be 1..{_MAX_DEVICE_ID} non-blank characters")
    extra = {k: _str(dev, k, "device.", required=False, nullable=True)
             for k in ("manufacturer", "model", "serial", "firmware", "address")}
    return DeviceInfo(device_id=device_id, **extra)


def _check_original(kind: str, original: dict[str, Any], values: dict[str, float | None]) -> None:
    """Unit sanity: the kept original must convert to the canonical numbers we were given."""
    unit = original.get("unit")
    if not isinstance(unit, str):
        raise ContractViolation(f"original.unit must be a string, got {_type_name(unit)}")
    conv = _CONVERSIONS.get(unit)
    if conv is None:
        raise ContractViolation(f"original.unit {unit[:32]!r} is not a known unit for {kind}")
    conv_kind, factor, fields = conv
    if conv_kind != kind:
        raise ContractViolation(f"original.unit {unit!r} is a {conv_kind} unit, but kind is {kind}")
    for src, dst in fields.items():
        orig = _number(original, src, "original.")
        canonical = values.get(dst)
        if orig is None or canonical is None:
            continue
        expected = orig * factor
        if abs(expected - canonical) > max(1.0, 0.01 * abs(expected)):
            raise ContractViolation(
                f"unit sanity: values.{dst}={canonical:g} but original.{src}={orig:g} {unit}"
                f" converts to {expected:.1f}"
            )


def _expected_id(device_id: str, kind: str, raw: str, device_time: str | None, received_at: str,
                 sequence_number: int | None, sample_count: int | None = None) -> str:
    """The contract's message id of these contents (``ContractViolation`` when they cannot say)."""
    try:
        return contract.message_id_from_contents(
            device_id=device_id, kind=kind, raw=raw, device_time=device_time, received_at=received_at,
            sequence_number=sequence_number, sample_count=sample_count)
    except contract.IdentityUnknown as exc:
        raise ContractViolation(f"message_id cannot be checked: {exc.reason}") from None


def _reading(topic: str, topic_gw: str, obj: dict[str, Any], text: str) -> ValidReading:
    schema = _str(obj, "schema")
    if schema != READING_SCHEMA:
        raise ContractViolation(f"schema must be {READING_SCHEMA!r} on a readings topic, got {schema!r:.80}")
    message_id = _str(obj, "message_id")
    assert message_id is not None
    if not _MESSAGE_ID.match(message_id):
        raise ContractViolation(f"message_id must be 32 lowercase hex characters, got {message_id[:64]!r}")
    gateway_id = _str(obj, "gateway_id")
    if gateway_id != topic_gw:
        raise ContractViolation(f"gateway_id {gateway_id!r:.80} differs from the topic's {topic_gw!r}")
    device = _device(obj)
    kind = _choice(obj, "kind", KINDS, None)
    measured_at = _utc(obj, "measured_at")
    _get(obj, "device_time", "", required=True)
    device_time = _local_time(obj, "device_time")
    clock_offset_s = _number(obj, "clock_offset_s")
    received_at = _utc(obj, "received_at")
    _get(obj, "sequence_number", "", required=True)
    sequence_number = _int(obj, "sequence_number", 0, 65535, required=True)
    if kind not in SEQUENCED_KINDS and sequence_number is not None:
        raise ContractViolation(f"sequence_number must be null for {kind}")
    if kind in SEQUENCED_KINDS and sequence_number is None:
        raise ContractViolation(f"sequence_number is required for {kind}")
    values = _object(obj, "values", required=True, nullable=False)
    assert values is not None
    numbers = {k: _number(values, k, "values.") for k in VALUE_NUMBERS}
    labels = {k: _str(values, k, "values.", required=False, nullable=True) for k in GLUCOSE_LABELS}
    sample_count = _sample_count(values, kind)
    measurement = _choice(obj, "measurement", MEASUREMENTS, MEASUREMENT_OK)
    if measurement == MEASUREMENT_OK:
        for key in REQUIRED_WHEN_OK[kind]:
            if numbers[key] is None:
                raise ContractViolation(f"values.{key} is required for a {kind} reading with measurement ok")
    original = _object(obj, "original", required=False, nullable=True)
    if original is not None:
        _check_original(kind, original, numbers)
    status = _get(obj, "status", "", required=True)
    if not isinstance(status, list) or not all(isinstance(s, str) for s in status):
        raise ContractViolation(f"status must be a list of strings, got {_type_name(status)}")
    transmission = _choice(obj, "transmission", TRANSMISSIONS, TRANSMISSION_AUTOMATIC)
    user_id = _int(obj, "user_id", 0, 255, required=False)
    context = _object(obj, "context", required=False, nullable=True)
    raw = _str(obj, "raw")
    assert raw is not None
    if not _RAW_HEX.match(raw):
        raise ContractViolation("raw must be hex bytes ('+'-joined when merged)")
    received_text = obj["received_at"]
    expected = _expected_id(device.device_id, kind, raw, device_time, received_text, sequence_number,
                            sample_count)
    if expected != message_id:
        raise MessageIdMismatch(message_id, expected,
                                contract.identity_fields(kind, device_time, sample_count is not None))
    return ValidReading(
        topic=topic, message_id=message_id, gateway_id=topic_gw, device=device, kind=kind,
        measured_at=measured_at, device_time=device_time, clock_offset_s=clock_offset_s,
        received_at=received_at, sequence_number=sequence_number,
        systolic_mmhg=numbers["systolic_mmhg"], diastolic_mmhg=numbers["diastolic_mmhg"],
        mean_arterial_mmhg=numbers["mean_arterial_mmhg"], pulse_bpm=numbers["pulse_bpm"],
        glucose_mg_dl=numbers["glucose_mg_dl"], sample_type=labels["sample_type"],
        sample_location=labels["sample_location"], meal=labels["meal"], original=original,
        status=tuple(status), measurement=measurement, transmission=transmission, user_id=user_id,
        context=context, raw=raw, payload=obj, payload_text=text,
        weight_kg=numbers["weight_kg"], bmi=numbers["bmi"], height_m=numbers["height_m"],
        spo2_pct=numbers["spo2_pct"], spo2_min_pct=numbers["spo2_min_pct"], sample_count=sample_count,
    )


def _sample_count(values: dict[str, Any], kind: str) -> int | None:
    """``values.sample_count``: an integer ≥ 1 on a continuous-oximetry summary, else null/absent."""
    count = _get(values, SPO2_SAMPLE_COUNT, "values.", required=False)
    if count is _MISSING or count is None:
        return None
    if kind != KIND_SPO2:
        raise ContractViolation(f"values.{SPO2_SAMPLE_COUNT} is only for spo2 readings, not {kind}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        got = repr(count)[:30]
        raise ContractViolation(f"values.{SPO2_SAMPLE_COUNT} must be an integer 1..1000000, got {got}")
    return count


def _status(topic: str, topic_gw: str, obj: dict[str, Any], text: str) -> ValidStatus:
    schema = _str(obj, "schema")
    if schema != STATUS_SCHEMA:
        raise ContractViolation(f"schema must be {STATUS_SCHEMA!r} on a status topic, got {schema!r:.80}")
    gateway_id = _str(obj, "gateway_id")
    if gateway_id != topic_gw:
        raise ContractViolation(f"gateway_id {gateway_id!r:.80} differs from the topic's {topic_gw!r}")
    online = _get(obj, "online", "", required=True)
    if not isinstance(online, bool):
        raise ContractViolation(f"online must be a boolean, got {_type_name(online)}")
    at = _utc(obj, "at")
    for key in ("outbox_depth", "outbox_capacity"):
        _int(obj, key, 0, 2**31 - 1, required=False)
    _object(obj, "devices", required=False, nullable=True)
    return ValidStatus(topic=topic, gateway_id=topic_gw, online=online, at=at, payload=obj, payload_text=text)
