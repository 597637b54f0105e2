"""Build the ``rpmflow.reading.v1`` / ``rpmflow.status.v1`` messages of docs/wire-format.md.

Pure functions: decoded GATT results + device identity + times in, JSON-ready dicts out. The
``message_id`` is computed here exactly as the contract says, once, when the reading enters the
outbox; the outbox stores the finished JSON so a re-send carries the very same bytes.

Every constant and the message-id recipe come from :mod:`gateway.contract` (the one owner of wire
contract v1); this module only assembles messages. Units: kPa → mmHg, kg/L → mg/dL (exact decimal
shift), mol/L → mg/dL via mmol/L, with the contract's factors; the device's own unit and numbers
travel in ``original``. A measurement whose
systolic/diastolic is NaN/NRes (or a glucose record without a concentration) goes out as
``measurement: "failed"`` with null values; ±INF goes out as ``out_of_range_high/low``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway import contract
from gateway.contract import (
    KIND_BLOOD_PRESSURE,
    KIND_GLUCOSE,
    MAX_MESSAGE_BYTES,
    READING_SCHEMA,
    STATUS_SCHEMA,
    bp_identity,
    glucose_identity,
    message_id,
    readings_topic,
    status_topic,
)
from gateway.gatt import (
    BloodPressureMeasurement,
    ConcentrationUnit,
    GlucoseRecord,
    MeasurementOutcome,
    MedFloat,
    PressureUnit,
    PulseRateRange,
    to_json_dict,
)

__all__ = [
    "KIND_BLOOD_PRESSURE",
    "KIND_GLUCOSE",
    "MAX_MESSAGE_BYTES",
    "READING_SCHEMA",
    "STATUS_SCHEMA",
    "DeviceIdentity",
    "Timing",
    "blood_pressure_reading",
    "bp_identity",
    "encode",
    "glucose_identity",
    "glucose_reading",
    "iso_utc",
    "measured_at",
    "message_id",
    "readings_topic",
    "status_message",
    "status_topic",
]

KPA_TO_MMHG = float(contract.KPA_TO_MMHG)
MMOL_TO_MG_DL = float(contract.MMOL_L_TO_MG_DL)

JsonDict = dict[str, Any]


def iso_utc(moment: datetime) -> str:
    """UTC ISO 8601 with ``Z`` (microseconds only when present)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


@dataclass(frozen=True)
class DeviceIdentity:
    """The ``device`` object; ``id`` is the DIS serial number when known, else the BLE address."""

    id: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    address: str | None = None

    def to_json(self) -> JsonDict:
        return {"id": self.id, "manufacturer": self.manufacturer, "model": self.model,
                "serial": self.serial, "firmware": self.firmware, "address": self.address}


@dataclass(frozen=True)
class Timing:
    """When the bytes arrived and how the device clock relates to the gateway's."""

    received_at: datetime  # aware
    clock_offset_s: float | None  # device − gateway, both local wall clock
    zone: ZoneInfo


def measured_at(device_time: datetime | None, timing: Timing) -> datetime:
    """(device time − offset) read as gateway-local wall clock, as UTC; receive time when absent."""
    if device_time is None:
        return timing.received_at.astimezone(UTC)
    corrected = device_time - timedelta(seconds=timing.clock_offset_s or 0.0)
    return corrected.replace(tzinfo=timing.zone).astimezone(UTC)


def _num(value: float | None) -> float | None:
    return None if value is None else float(value)


def _mmhg(value: MedFloat, unit: PressureUnit) -> float | None:
    v = value.value
    if v is None:
        return None
    return v * KPA_TO_MMHG if unit is PressureUnit.KPA else v


_PULSE_RANGE_STATUS = {
    PulseRateRange.EXCEEDS_UPPER_LIMIT: "pulse_rate_exceeds_upper_limit",
    PulseRateRange.BELOW_LOWER_LIMIT: "pulse_rate_below_lower_limit",
}


def _envelope(gateway_id: str, device: DeviceIdentity, kind: str, device_time: datetime | None,
              timing: Timing, identity: str) -> JsonDict:
    received = iso_utc(timing.received_at)
    return {
        "schema": READING_SCHEMA,
        "message_id": message_id(device.id, kind, identity),
        "gateway_id": gateway_id,
        "device": device.to_json(),
        "kind": kind,
        "measured_at": iso_utc(measured_at(device_time, timing)),
        "device_time": device_time.isoformat() if device_time else None,
        "clock_offset_s": timing.clock_offset_s,
        "received_at": received,
        "transmission": "automatic",
    }


def blood_pressure_reading(m: BloodPressureMeasurement, *, gateway_id: str, device: DeviceIdentity,
                           timing: Timing) -> JsonDict:
    """The reading for one 0x2A35 value (never call this for 0x2A36 intermediate cuff pressure)."""
    outcome = m.outcome
    identity = bp_identity(m.raw_hex, m.timestamp is not None, iso_utc(timing.received_at))
    msg = _envelope(gateway_id, device, KIND_BLOOD_PRESSURE, m.timestamp, timing, identity)
    failed = outcome is MeasurementOutcome.FAILED
    values = {
        "systolic_mmhg": None if failed else _mmhg(m.systolic, m.unit),
        "diastolic_mmhg": None if failed else _mmhg(m.diastolic, m.unit),
        "mean_arterial_mmhg": None if failed else _mmhg(m.mean_arterial_pressure, m.unit),
        "pulse_bpm": None if failed or m.pulse_rate is None else _num(m.pulse_rate.value),
    }
    original = None
    if m.unit is PressureUnit.KPA:
        original = {"unit": contract.UNIT_KPA, "systolic": m.systolic.value, "diastolic": m.diastolic.value,
                    "mean_arterial": m.mean_arterial_pressure.value}
    status = list(m.status_names or [])
    if m.pulse_rate_range in _PULSE_RANGE_STATUS:
        status.append(_PULSE_RANGE_STATUS[m.pulse_rate_range])
    msg.update({
        "sequence_number": None,
        "values": values,
        "original": original,
        "status": status,
        "measurement": outcome.value,
        "user_id": m.user_id,
        "context": None,
        "raw": m.raw_hex,
    })
    return msg


def glucose_reading(record: GlucoseRecord, *, gateway_id: str, device: DeviceIdentity,
                    timing: Timing) -> JsonDict:
    """The reading for one glucose record (measurement joined with its context, when any).

    Callers must not publish control-solution records (``record.measurement.is_control_solution``).
    """
    m = record.measurement
    outcome = m.outcome
    identity = glucose_identity(m.sequence_number, m.base_time)
    msg = _envelope(gateway_id, device, KIND_GLUCOSE, m.user_facing_time, timing, identity)
    mg_dl: float | None = None
    original: JsonDict | None = None
    if m.concentration is not None and m.concentration.value is not None:
        if m.unit is ConcentrationUnit.MOL_PER_L:
            mg_dl = m.concentration.scaled(contract.MOL_L_TO_MMOL_L_EXP) * MMOL_TO_MG_DL  # type: ignore[operator]
            original = {"unit": contract.UNIT_MOL_PER_L, "concentration": m.concentration.value}
        else:
            mg_dl = float(m.concentration.scaled(contract.KG_L_TO_MG_DL_EXP))  # type: ignore[arg-type]
            original = {"unit": contract.UNIT_KG_PER_L, "concentration": m.concentration.value}
    context = to_json_dict(record.context) if record.context is not None else None
    msg.update({
        "sequence_number": m.sequence_number,
        "values": {
            "glucose_mg_dl": mg_dl,
            "sample_type": m.sample_type_name,
            "sample_location": m.sample_location_name,
            "meal": context.get("meal") if context else None,
        },
        "original": original,
        "status": list(m.sensor_status_names or []),
        "measurement": outcome.value,
        "user_id": None,
        "context": context,
        "raw": record.raw_hex,
    })
    return msg


def encode(message: JsonDict) -> str:
    """Compact UTF-8 JSON; raises ValueError past the 64 KiB bound of the contract."""
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {len(text.encode())} bytes exceeds {MAX_MESSAGE_BYTES}")
    return text


def status_message(*, gateway_id: str, online: bool, at: datetime, outbox_depth: int,
                   outbox_capacity: int, outbox_full: bool, devices: dict[str, JsonDict],
                   software: str) -> JsonDict:
    return {
        "schema": STATUS_SCHEMA,
        "gateway_id": gateway_id,
        "online": online,
        "at": iso_utc(at),
        "outbox_depth": outbox_depth,
        "outbox_capacity": outbox_capacity,
        "outbox_full": outbox_full,
        "devices": devices,
        "software": software,
    }
