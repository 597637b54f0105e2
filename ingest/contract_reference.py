"""The field-by-field validator: the reference of the wire contract, and the author of every reason.

Slower than the one-pass check of ``ingest/contract_fast.py`` but exhaustive: it runs whenever the
fast path declines a message and raises :class:`~ingest.errors.ContractViolation` naming the first
broken rule (field path and what was wrong). Those reasons are dead-letter reasons, a public
interface: their order and wording must not change (tests/ingest/test_contract_differential.py
holds them to the validator they came from). Rule constants come from :mod:`gateway.contract`.
"""

from __future__ import annotations

import json
from typing import Any

from gateway import contract
from gateway.contract import (
    GLUCOSE_LABELS,
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
from ingest import contract_fields as f
from ingest.errors import ContractViolation, MessageIdMismatch
from ingest.valid import DeviceInfo, ValidReading, ValidStatus

_MESSAGE_ID = contract.MESSAGE_ID_RE
_RAW_HEX = contract.RAW_HEX_RE
_MAX_DEVICE_ID = contract.MAX_DEVICE_ID_CHARS
_CONVERSIONS = contract.ORIGINAL_UNITS


def _reject_constant(name: str) -> float:
    raise ContractViolation(f"payload contains the non-JSON number {name}")


def load_object(payload: bytes) -> tuple[str, dict[str, Any]]:
    """The payload as text and as a JSON object (the stdlib parser: its errors name line and column)."""
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


def device(obj: dict[str, Any]) -> DeviceInfo:
    dev = f.mapping(obj, "device", required=True, nullable=False)
    assert dev is not None
    device_id = f.text(dev, "id", "device.")
    assert device_id is not None
    if not device_id.strip() or len(device_id) > _MAX_DEVICE_ID:
        raise ContractViolation(f"device.id must be 1..{_MAX_DEVICE_ID} non-blank characters")
    extra = {k: f.text(dev, k, "device.", required=False, nullable=True)
             for k in ("manufacturer", "model", "serial", "firmware", "address")}
    return DeviceInfo(device_id=device_id, **extra)


def check_original(kind: str, original: dict[str, Any], values: dict[str, float | None]) -> None:
    """Unit sanity: the kept original must convert to the canonical numbers we were given."""
    unit = original.get("unit")
    if not isinstance(unit, str):
        raise ContractViolation(f"original.unit must be a string, got {f.type_name(unit)}")
    conv = _CONVERSIONS.get(unit)
    if conv is None:
        raise ContractViolation(f"original.unit {unit[:32]!r} is not a known unit for {kind}")
    conv_kind, factor, fields = conv
    if conv_kind != kind:
        raise ContractViolation(f"original.unit {unit!r} is a {conv_kind} unit, but kind is {kind}")
    for src, dst in fields.items():
        orig = f.number(original, src, "original.")
        canonical = values.get(dst)
        if orig is None or canonical is None:
            continue
        expected = orig * factor
        if abs(expected - canonical) > max(1.0, 0.01 * abs(expected)):
            raise ContractViolation(
                f"unit sanity: values.{dst}={canonical:g} but original.{src}={orig:g} {unit}"
                f" converts to {expected:.1f}"
            )


def expected_id(device_id: str, kind: str, raw: str, device_time: str | None, received_at: str,
                sequence_number: int | None, sample_count: int | None = None) -> str:
    """The contract's message id of these contents (``ContractViolation`` when they cannot say)."""
    try:
        return contract.message_id_from_contents(
            device_id=device_id, kind=kind, raw=raw, device_time=device_time, received_at=received_at,
            sequence_number=sequence_number, sample_count=sample_count)
    except contract.IdentityUnknown as exc:
        raise ContractViolation(f"message_id cannot be checked: {exc.reason}") from None


def _header(obj: dict[str, Any], topic_gw: str) -> str:
    """Schema, message id and gateway id, in the reference order; returns the message id."""
    schema = f.text(obj, "schema")
    if schema != READING_SCHEMA:
        raise ContractViolation(f"schema must be {READING_SCHEMA!r} on a readings topic, got {schema!r:.80}")
    message_id = f.text(obj, "message_id")
    assert message_id is not None
    if not _MESSAGE_ID.match(message_id):
        raise ContractViolation(f"message_id must be 32 lowercase hex characters, got {message_id[:64]!r}")
    gateway_id = f.text(obj, "gateway_id")
    if gateway_id != topic_gw:
        raise ContractViolation(f"gateway_id {gateway_id!r:.80} differs from the topic's {topic_gw!r}")
    return message_id


def _sequence_number(obj: dict[str, Any], kind: str) -> int | None:
    f.get(obj, "sequence_number", "", required=True)
    sequence_number = f.integer(obj, "sequence_number", 0, 65535, required=True)
    if kind not in SEQUENCED_KINDS and sequence_number is not None:
        raise ContractViolation(f"sequence_number must be null for {kind}")
    if kind in SEQUENCED_KINDS and sequence_number is None:
        raise ContractViolation(f"sequence_number is required for {kind}")
    return sequence_number


def _values(obj: dict[str, Any], kind: str) -> tuple[dict[str, float | None], dict[str, str | None],
                                                      int | None, str]:
    """``values`` (numbers, glucose labels, sample count) and ``measurement``, checked together."""
    values = f.mapping(obj, "values", required=True, nullable=False)
    assert values is not None
    numbers = {k: f.number(values, k, "values.") for k in VALUE_NUMBERS}
    labels = {k: f.text(values, k, "values.", required=False, nullable=True) for k in GLUCOSE_LABELS}
    count = sample_count(values, kind)
    measurement = f.choice(obj, "measurement", MEASUREMENTS, MEASUREMENT_OK)
    if measurement == MEASUREMENT_OK:
        for key in REQUIRED_WHEN_OK[kind]:
            if numbers[key] is None:
                raise ContractViolation(f"values.{key} is required for a {kind} reading with measurement ok")
    return numbers, labels, count, measurement


def _status_list(obj: dict[str, Any]) -> list[str]:
    status = f.get(obj, "status", "", required=True)
    if not isinstance(status, list) or not all(isinstance(s, str) for s in status):
        raise ContractViolation(f"status must be a list of strings, got {f.type_name(status)}")
    return status


def reading(topic: str, topic_gw: str, obj: dict[str, Any], text: str) -> ValidReading:
    """A reading, checked rule by rule in the contract's order (the first broken rule is the reason)."""
    message_id = _header(obj, topic_gw)
    dev = device(obj)
    kind = f.choice(obj, "kind", KINDS, None)
    measured_at = f.utc_time(obj, "measured_at")
    f.get(obj, "device_time", "", required=True)
    device_time = f.local_time(obj, "device_time")
    clock_offset_s = f.number(obj, "clock_offset_s")
    received_at = f.utc_time(obj, "received_at")
    sequence_number = _sequence_number(obj, kind)
    numbers, labels, count, measurement = _values(obj, kind)
    original = f.mapping(obj, "original", required=False, nullable=True)
    if original is not None:
        check_original(kind, original, numbers)
    status = _status_list(obj)
    transmission = f.choice(obj, "transmission", TRANSMISSIONS, TRANSMISSION_AUTOMATIC)
    user_id = f.integer(obj, "user_id", 0, 255, required=False)
    context = f.mapping(obj, "context", required=False, nullable=True)
    raw = f.text(obj, "raw")
    assert raw is not None
    if not _RAW_HEX.match(raw):
        raise ContractViolation("raw must be hex bytes ('+'-joined when merged)")
    expected = expected_id(dev.device_id, kind, raw, device_time, obj["received_at"], sequence_number, count)
    if expected != message_id:
        raise MessageIdMismatch(message_id, expected,
                                contract.identity_fields(kind, device_time, count is not None))
    return ValidReading(
        topic=topic, message_id=message_id, gateway_id=topic_gw, device=dev, kind=kind,
        measured_at=measured_at, device_time=device_time, clock_offset_s=clock_offset_s,
        received_at=received_at, sequence_number=sequence_number,
        systolic_mmhg=numbers["systolic_mmhg"], diastolic_mmhg=numbers["diastolic_mmhg"],
        mean_arterial_mmhg=numbers["mean_arterial_mmhg"], pulse_bpm=numbers["pulse_bpm"],
        glucose_mg_dl=numbers["glucose_mg_dl"], sample_type=labels["sample_type"],
        sample_location=labels["sample_location"], meal=labels["meal"], original=original,
        status=tuple(status), measurement=measurement, transmission=transmission, user_id=user_id,
        context=context, raw=raw, payload=obj, payload_text=text,
        weight_kg=numbers["weight_kg"], bmi=numbers["bmi"], height_m=numbers["height_m"],
        spo2_pct=numbers["spo2_pct"], spo2_min_pct=numbers["spo2_min_pct"], sample_count=count,
    )


def sample_count(values: dict[str, Any], kind: str) -> int | None:
    """``values.sample_count``: an integer ≥ 1 on a continuous-oximetry summary, else null/absent."""
    count = f.get(values, SPO2_SAMPLE_COUNT, "values.", required=False)
    if count is f.MISSING or count is None:
        return None
    if kind != KIND_SPO2:
        raise ContractViolation(f"values.{SPO2_SAMPLE_COUNT} is only for spo2 readings, not {kind}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        got = repr(count)[:30]
        raise ContractViolation(f"values.{SPO2_SAMPLE_COUNT} must be an integer 1..1000000, got {got}")
    return count


def status(topic: str, topic_gw: str, obj: dict[str, Any], text: str) -> ValidStatus:
    """A gateway status message."""
    schema = f.text(obj, "schema")
    if schema != STATUS_SCHEMA:
        raise ContractViolation(f"schema must be {STATUS_SCHEMA!r} on a status topic, got {schema!r:.80}")
    gateway_id = f.text(obj, "gateway_id")
    if gateway_id != topic_gw:
        raise ContractViolation(f"gateway_id {gateway_id!r:.80} differs from the topic's {topic_gw!r}")
    online = f.get(obj, "online", "", required=True)
    if not isinstance(online, bool):
        raise ContractViolation(f"online must be a boolean, got {f.type_name(online)}")
    at = f.utc_time(obj, "at")
    for key in ("outbox_depth", "outbox_capacity"):
        f.integer(obj, key, 0, 2**31 - 1, required=False)
    f.mapping(obj, "devices", required=False, nullable=True)
    return ValidStatus(topic=topic, gateway_id=topic_gw, online=online, at=at, payload=obj, payload_text=text)
