"""Decoded GATT objects → the JSON dicts of DOMAIN.md Part B (the decode command's output).

Every Part B field is always present (``None`` when absent), so consumers can index without
``.get``.  IEEE-11073 specials print as ``"NaN"``, ``"NRes"``, ``"+INF"``, ``"-INF"``,
``"reserved"``; numbers are the exact decimal value as the nearest float (no rounding beyond that);
date-times are ISO 8601 without a zone.  Weight scale and pulse oximeter objects follow the
pinned table B2 of DOMAIN-weight-plx.md.  One field beyond Part B is added to every object:
``warnings`` (a list of strings, empty when the frame decoded cleanly), which carries DOMAIN A7's
``decoded_with_warnings`` state.  For 2A18 both ``concentration_mg_dL`` and
``concentration_mmol_L`` are present; the one that does not match the unit is ``None``.
RACP operator 0x00 prints as the string ``"null"`` (its Part B name), not JSON null.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.gatt.blood_pressure import (
    BloodPressureFeature,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
)
from gateway.gatt.current_time import CurrentTime
from gateway.gatt.datetime_ import DateTimeValue
from gateway.gatt.glucose import (
    CARBOHYDRATE_NAMES,
    HEALTH_NAMES,
    MEAL_NAMES,
    MEDICATION_NAMES,
    TESTER_NAMES,
    GlucoseFeature,
    GlucoseMeasurement,
    code_name,
)
from gateway.gatt.glucose_context import GlucoseContext, GlucoseRecord
from gateway.gatt.ieee11073 import MedFloat, Special
from gateway.gatt.pulse_oximeter import PlxContinuousMeasurement, PlxFeatures, PlxSpotCheckMeasurement
from gateway.gatt.racp import RacpFrame
from gateway.gatt.raw_number import RawNumber
from gateway.gatt.weight_scale import WeightMeasurement, WeightScaleFeature

__all__ = ["JsonDict", "med_json", "to_json_dict"]

JsonDict = dict[str, Any]


def med_json(value: MedFloat | float | Special | None) -> float | str | None:
    """A MedFloat (or a value derived from one) as printed: number, special string or ``None``."""
    if value is None:
        return None
    if isinstance(value, MedFloat):
        return value.json_value()
    if isinstance(value, Special):
        return value.value
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _blood_pressure(m: BloodPressureMeasurement | IntermediateCuffPressure) -> JsonDict:
    out: JsonDict = {"unit": m.unit.value}
    if isinstance(m, BloodPressureMeasurement):
        out["systolic"] = med_json(m.systolic)
    else:
        out["current_cuff_pressure"] = med_json(m.current_cuff_pressure)
    out.update(
        diastolic=med_json(m.diastolic),
        mean_arterial_pressure=med_json(m.mean_arterial_pressure),
        timestamp=_iso(m.timestamp),
        pulse_rate=med_json(m.pulse_rate),
        user_id=m.user_id,
        status=m.status_names,
        pulse_rate_range=None if m.pulse_rate_range is None else m.pulse_rate_range.value,
        measurement_status_raw=m.measurement_status_raw,
        warnings=list(m.warnings),
    )
    return out


def _glucose(m: GlucoseMeasurement) -> JsonDict:
    return {
        "sequence_number": m.sequence_number,
        "base_time": _iso(m.base_time),
        "time_offset_minutes": m.time_offset_minutes,
        "user_facing_time": _iso(m.user_facing_time),
        "concentration": med_json(m.concentration),
        "unit": None if m.unit is None else m.unit.value,
        "concentration_mg_dL": med_json(m.concentration_mg_dl),
        "concentration_mmol_L": med_json(m.concentration_mmol_l),
        "type": m.sample_type_name,
        "sample_location": m.sample_location_name,
        "sensor_status": m.sensor_status_names,
        "sensor_status_raw": m.sensor_status_raw,
        "context_follows": m.context_follows,
        "warnings": list(m.warnings),
    }


def _context(c: GlucoseContext) -> JsonDict:
    return {
        "sequence_number": c.sequence_number,
        "carbohydrate_id": code_name(CARBOHYDRATE_NAMES, c.carbohydrate_id),
        "carbohydrate_amount_kg": med_json(c.carbohydrate_amount_kg),
        "meal": code_name(MEAL_NAMES, c.meal),
        "tester": code_name(TESTER_NAMES, c.tester),
        "health": code_name(HEALTH_NAMES, c.health),
        "exercise_duration_s": c.exercise_duration_s,
        "exercise_intensity_pct": c.exercise_intensity_pct,
        "medication_id": code_name(MEDICATION_NAMES, c.medication_id),
        "medication_amount": med_json(c.medication_amount),
        "medication_unit": c.medication_unit,
        "hba1c_pct": med_json(c.hba1c_pct),
        "warnings": list(c.warnings),
    }


def _weight(m: WeightMeasurement) -> JsonDict:
    return {
        "unit": m.unit.value,
        "weight": m.weight,
        "weight_kg": m.weight_kg,
        "weight_raw": m.weight_raw,
        "measurement_unsuccessful": m.measurement_unsuccessful,
        "timestamp": _iso(m.timestamp),
        "user_id": m.user_id,
        "bmi": m.bmi,
        "height": m.height,
        "height_unit": m.height_unit,
        "height_m": m.height_m,
        "flags_raw": m.flags_raw,
        "warnings": list(m.warnings),
    }


def _weight_feature(f: WeightScaleFeature) -> JsonDict:
    return {
        "features": f.feature_names,
        "features_raw": f.features_raw,
        "weight_resolution_code": f.weight_resolution_code,
        "weight_resolution_kg": f.weight_resolution_kg,
        "weight_resolution_lb": f.weight_resolution_lb,
        "height_resolution_code": f.height_resolution_code,
        "height_resolution_m": f.height_resolution_m,
        "height_resolution_in": f.height_resolution_in,
        "warnings": list(f.warnings),
    }


def _plx(m: PlxSpotCheckMeasurement | PlxContinuousMeasurement) -> JsonDict:
    out: JsonDict = {"spo2": med_json(m.spo2), "pulse_rate": med_json(m.pulse_rate)}
    if isinstance(m, PlxSpotCheckMeasurement):
        out.update(timestamp=_iso(m.timestamp), device_clock_not_set=m.device_clock_not_set)
    else:
        out.update(
            spo2_fast=med_json(m.spo2_fast),
            pulse_rate_fast=med_json(m.pulse_rate_fast),
            spo2_slow=med_json(m.spo2_slow),
            pulse_rate_slow=med_json(m.pulse_rate_slow),
        )
    out.update(
        measurement_status=m.measurement_status,
        measurement_status_raw=m.measurement_status_raw,
        device_and_sensor_status=m.device_and_sensor_status,
        device_and_sensor_status_raw=m.device_and_sensor_status_raw,
        pulse_amplitude_index=med_json(m.pulse_amplitude_index),
        flags_raw=m.flags_raw,
        warnings=list(m.warnings),
    )
    return out


def _plx_features(f: PlxFeatures) -> JsonDict:
    return {
        "features": f.feature_names,
        "features_raw": f.features_raw,
        "measurement_status_support": f.measurement_status_support,
        "measurement_status_support_raw": f.measurement_status_support_raw,
        "device_and_sensor_status_support": f.device_and_sensor_status_support,
        "device_and_sensor_status_support_raw": f.device_and_sensor_status_support_raw,
        "warnings": list(f.warnings),
    }


_NEW_KINDS: dict[type, Callable[[Any], JsonDict]] = {
    WeightMeasurement: _weight,
    WeightScaleFeature: _weight_feature,
    PlxSpotCheckMeasurement: _plx,
    PlxContinuousMeasurement: _plx,
    PlxFeatures: _plx_features,
}


def _operand(value: int | datetime | None) -> int | str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _racp(f: RacpFrame) -> JsonDict:
    return {
        "opcode": f.opcode.name.lower(),
        "operator": f.operator.name.lower(),
        "filter_type": None if f.filter_type is None else f.filter_type.name.lower(),
        "operand": _operand(f.operand),
        "operand_min": _operand(f.operand_min),
        "operand_max": _operand(f.operand_max),
        "number_of_records": f.number_of_records,
        "request_opcode": f.request_opcode,
        "response": f.response_name,
        "warnings": list(f.warnings),
    }


def to_json_dict(result: object) -> JsonDict:
    """The Part B dict of any decoded object; ``warnings`` appears only when there are some.

    A cleanly decoded frame prints exactly the Part B fields, so consumers comparing whole
    objects see no extra key; the ``decoded_with_warnings`` state adds the ``warnings`` list.
    """
    out = _to_json_dict(result)
    if not out.get("warnings", True):
        del out["warnings"]
    return out


def _to_json_dict(result: object) -> JsonDict:
    if isinstance(result, BloodPressureMeasurement | IntermediateCuffPressure):
        return _blood_pressure(result)
    if isinstance(result, GlucoseMeasurement):
        return _glucose(result)
    if isinstance(result, GlucoseContext):
        return _context(result)
    if isinstance(result, GlucoseRecord):
        out = _glucose(result.measurement)
        out["context"] = None if result.context is None else _context(result.context)
        return out
    if isinstance(result, RacpFrame):
        return _racp(result)
    if isinstance(result, BloodPressureFeature | GlucoseFeature):
        return {"features": result.feature_names, "warnings": list(result.warnings)}
    if isinstance(result, DateTimeValue):
        return {"timestamp": _iso(result.timestamp), "warnings": list(result.warnings)}
    if isinstance(result, CurrentTime):
        return {
            "timestamp": _iso(result.timestamp),
            "day_of_week": result.day_of_week_name,
            "fractions256": result.fractions256,
            "adjust_reason": result.adjust_reason_names,
            "warnings": list(result.warnings),
        }
    if isinstance(result, RawNumber):
        return {"value": med_json(result.value), "warnings": list(result.warnings)}
    converter = _NEW_KINDS.get(type(result))
    if converter is not None:
        return converter(result)
    raise TypeError(f"no JSON form for {type(result).__name__}")
