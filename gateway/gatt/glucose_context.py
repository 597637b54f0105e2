"""Glucose Measurement Context 0x2A34 and its join to the measurement (DOMAIN A3).

Kept apart from :mod:`gateway.gatt.glucose` because the context has its own layout (seven optional
field groups) and the join rule (same sequence number, else :class:`ContextMismatch`) is the one
place a glucose reading is assembled from two notifications.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.errors import ContextMismatch
from gateway.gatt._wire import Reader, require_layout
from gateway.gatt.glucose import (
    CARBOHYDRATE_NAMES,
    HEALTH_NAMES,
    MEAL_NAMES,
    MEDICATION_NAMES,
    TESTER_NAMES,
    GlucoseMeasurement,
    check_code,
)
from gateway.gatt.ieee11073 import MedFloat

__all__ = [
    "GlucoseContext",
    "GlucoseContextFlags",
    "GlucoseRecord",
    "merge_glucose_context",
    "parse_glucose_context",
]


class GlucoseContextFlags(enum.IntFlag):
    CARBOHYDRATE_PRESENT = 0x01
    MEAL_PRESENT = 0x02
    TESTER_HEALTH_PRESENT = 0x04
    EXERCISE_PRESENT = 0x08
    MEDICATION_PRESENT = 0x10
    MEDICATION_UNITS_LITRES = 0x20
    HBA1C_PRESENT = 0x40
    EXTENDED_FLAGS_PRESENT = 0x80


@dataclass(frozen=True, slots=True)
class GlucoseContext:
    """A decoded 0x2A34 value.  Amounts keep the GSS units (carbohydrate kg; medication kg or L)."""

    flags: GlucoseContextFlags
    sequence_number: int
    extended_flags: int | None
    carbohydrate_id: int | None
    carbohydrate_amount_kg: MedFloat | None
    meal: int | None
    tester: int | None
    health: int | None
    exercise_duration_s: int | None
    exercise_intensity_pct: int | None
    medication_id: int | None
    medication_amount: MedFloat | None
    medication_unit: str | None
    hba1c_pct: MedFloat | None
    raw_hex: str
    warnings: tuple[str, ...]

    @property
    def exercise_duration_overrun(self) -> bool:
        """65535 s means "overrun" (longer than the field can say)."""
        return self.exercise_duration_s == 0xFFFF


_CONTEXT_OPTIONAL: tuple[tuple[GlucoseContextFlags, list[tuple[str, int]]], ...] = (
    (GlucoseContextFlags.EXTENDED_FLAGS_PRESENT, [("extended_flags", 1)]),
    (GlucoseContextFlags.CARBOHYDRATE_PRESENT, [("carbohydrate_id", 1), ("carbohydrate", 2)]),
    (GlucoseContextFlags.MEAL_PRESENT, [("meal", 1)]),
    (GlucoseContextFlags.TESTER_HEALTH_PRESENT, [("tester_health", 1)]),
    (GlucoseContextFlags.EXERCISE_PRESENT, [("exercise_duration", 2), ("exercise_intensity", 1)]),
    (GlucoseContextFlags.MEDICATION_PRESENT, [("medication_id", 1), ("medication", 2)]),
    (GlucoseContextFlags.HBA1C_PRESENT, [("hba1c", 2)]),
)


def _context_layout(flags: GlucoseContextFlags) -> list[tuple[str, int]]:
    layout = [("flags", 1), ("sequence_number", 2)]
    for bit, fields in _CONTEXT_OPTIONAL:
        if flags & bit:
            layout += fields
    return layout


def _read_medication(reader: Reader, flags: GlucoseContextFlags,
                     warnings: list[str]) -> tuple[int | None, MedFloat | None, str | None]:
    f = GlucoseContextFlags
    if flags & f.MEDICATION_PRESENT:
        med_id = reader.u8("medication_id")
        med = reader.sfloat("medication")
        check_code(MEDICATION_NAMES, med_id, "medication id", warnings)
        return med_id, med, "L" if flags & f.MEDICATION_UNITS_LITRES else "kg"
    if flags & f.MEDICATION_UNITS_LITRES:
        warnings.append("medication unit flag set without medication")
    return None, None, None


def parse_glucose_context(data: bytes) -> GlucoseContext:
    """Parse a 0x2A34 value; raises :class:`~gateway.errors.MalformedMeasurement` when it is short."""
    data = bytes(data)
    reader = Reader(data, "2A34")
    flags = GlucoseContextFlags(reader.u8("flags"))
    f = GlucoseContextFlags
    warnings = require_layout(data, "2A34", _context_layout(flags), f"flags 0x{int(flags):02X}")

    sequence_number = reader.u16("sequence_number")
    extended = reader.u8("extended_flags") if flags & f.EXTENDED_FLAGS_PRESENT else None
    if extended:
        warnings.append(f"RFU extended flags set: 0x{extended:02X}")
    carb_id = carb = None
    if flags & f.CARBOHYDRATE_PRESENT:
        carb_id = reader.u8("carbohydrate_id")
        carb = reader.sfloat("carbohydrate")
        check_code(CARBOHYDRATE_NAMES, carb_id, "carbohydrate id", warnings)
    meal = None
    if flags & f.MEAL_PRESENT:
        meal = reader.u8("meal")
        check_code(MEAL_NAMES, meal, "meal", warnings)
    tester = health = None
    if flags & f.TESTER_HEALTH_PRESENT:
        tester_health = reader.u8("tester_health")
        tester, health = tester_health & 0x0F, tester_health >> 4
        check_code(TESTER_NAMES, tester, "tester", warnings)
        check_code(HEALTH_NAMES, health, "health", warnings)
    duration = intensity = None
    if flags & f.EXERCISE_PRESENT:
        duration = reader.u16("exercise_duration")
        intensity = reader.u8("exercise_intensity")
        if intensity > 100:
            warnings.append(f"exercise intensity {intensity} % above 100")
    med_id, med, med_unit = _read_medication(reader, flags, warnings)
    hba1c = reader.sfloat("hba1c") if flags & f.HBA1C_PRESENT else None
    return GlucoseContext(
        flags=flags,
        sequence_number=sequence_number,
        extended_flags=extended,
        carbohydrate_id=carb_id,
        carbohydrate_amount_kg=carb,
        meal=meal,
        tester=tester,
        health=health,
        exercise_duration_s=duration,
        exercise_intensity_pct=intensity,
        medication_id=med_id,
        medication_amount=med,
        medication_unit=med_unit,
        hba1c_pct=hba1c,
        raw_hex=data.hex(),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True, slots=True)
class GlucoseRecord:
    """A measurement with its context (when one arrived); ``raw_hex`` joins both with ``+``."""

    measurement: GlucoseMeasurement
    context: GlucoseContext | None

    @property
    def raw_hex(self) -> str:
        if self.context is None:
            return self.measurement.raw_hex
        return f"{self.measurement.raw_hex}+{self.context.raw_hex}"

    @property
    def warnings(self) -> tuple[str, ...]:
        context_warnings = self.context.warnings if self.context is not None else ()
        return self.measurement.warnings + tuple(f"context: {w}" for w in context_warnings)


def merge_glucose_context(measurement: GlucoseMeasurement, context: GlucoseContext | None) -> GlucoseRecord:
    """Join a measurement to its context; raises :class:`~gateway.errors.ContextMismatch` on another seq."""
    if context is not None and context.sequence_number != measurement.sequence_number:
        raise ContextMismatch(measurement.sequence_number, context.sequence_number)
    return GlucoseRecord(measurement=measurement, context=context)
