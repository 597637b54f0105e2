"""Plausibility checks that run after decoding (DOMAIN A7.3, C5), kept apart from the parsers.

A parser says what the bytes mean; this layer says whether the meaning can be true.  Two grades:

* **impossible** (raise :class:`~gateway.errors.ImpossibleValue`, terminal → dead-letter/quarantine):
  systolic outside 20–280 mmHg, diastolic ≥ systolic, MAP outside [diastolic, systolic], pulse
  outside 25–250 /min, glucose outside 10–1000 mg/dL.  These catch encoder bugs (exponent 0 in
  kg/L) and byte-order quirks (Beurer big-endian pulse).
* **suspicious** (returned as reasons to quarantine, the reading is kept): pulse pressure outside
  10–120 mmHg, glucose unit sanity (mmol/L > 35, mg/dL < 15), device time in the future or before
  provisioning, clock offset too large.

The bounds are the wire contract's (:mod:`gateway.contract`), the one set ingest grades with too.
Only numbers are checked: IEEE-11073 specials are the measurement outcome (failed / HI / LO, see
``outcome``), not implausible values.  Nothing is ever clamped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from gateway import contract
from gateway.errors import ImpossibleValue
from gateway.gatt.blood_pressure import BloodPressureMeasurement, PressureUnit
from gateway.gatt.glucose import ConcentrationUnit, GlucoseMeasurement
from gateway.gatt.ieee11073 import MedFloat

__all__ = [
    "KPA_TO_MMHG",
    "MMOL_L_TO_MG_DL",
    "PlausibilityBounds",
    "check_blood_pressure",
    "check_clock_offset",
    "check_device_time",
    "check_glucose",
    "glucose_mg_dl",
    "is_control_solution",
    "pressure_mmhg",
]

KPA_TO_MMHG = contract.KPA_TO_MMHG
MMOL_L_TO_MG_DL = contract.MMOL_L_TO_MG_DL


@dataclass(frozen=True, slots=True)
class PlausibilityBounds:
    """Inclusive bounds; defaults are the contract's (DOMAIN C5).  Per-model specs may narrow them."""

    systolic_mmhg: tuple[float, float] = contract.BP_RANGE_MMHG
    pulse_bpm: tuple[float, float] = contract.PULSE_RANGE_BPM
    pulse_pressure_mmhg: tuple[float, float] = contract.PULSE_PRESSURE_MMHG
    glucose_mg_dl: tuple[float, float] = contract.GLUCOSE_RANGE_MG_DL
    max_mmol_l: float = contract.GLUCOSE_MOLAR_CEILING_MMOL_L
    min_mg_dl: float = contract.GLUCOSE_MASS_FLOOR_MG_DL


DEFAULT_BOUNDS = PlausibilityBounds()


def pressure_mmhg(value: MedFloat, unit: PressureUnit) -> Decimal | None:
    """The value in mmHg (kPa × 7.50062), exact in decimal; ``None`` for specials."""
    exact = value.decimal
    if exact is None:
        return None
    return exact * KPA_TO_MMHG if unit is PressureUnit.KPA else exact


def glucose_mg_dl(m: GlucoseMeasurement) -> Decimal | None:
    """The concentration in mg/dL (kg/L × 100 000; mol/L × 1000 × 18.0156); ``None`` if not a number."""
    if m.concentration is None or m.concentration.decimal is None:
        return None
    exact = m.concentration.decimal
    if m.unit is ConcentrationUnit.MOL_PER_L:
        return exact.scaleb(contract.MOL_L_TO_MMOL_L_EXP) * MMOL_L_TO_MG_DL
    return exact.scaleb(contract.KG_L_TO_MG_DL_EXP)


def _require_between(field: str, value: Decimal, bounds: tuple[float, float], unit: str) -> None:
    low, high = bounds
    if not Decimal(str(low)) <= value <= Decimal(str(high)):
        raise ImpossibleValue(field, float(value), f"{low:g}..{high:g} {unit}")


def check_blood_pressure(
    m: BloodPressureMeasurement, bounds: PlausibilityBounds = DEFAULT_BOUNDS
) -> list[str]:
    """Raise :class:`ImpossibleValue` for an impossible reading; return quarantine reasons otherwise."""
    systolic = pressure_mmhg(m.systolic, m.unit)
    diastolic = pressure_mmhg(m.diastolic, m.unit)
    mean = pressure_mmhg(m.mean_arterial_pressure, m.unit)
    reasons: list[str] = []
    if systolic is not None:
        _require_between("systolic", systolic, bounds.systolic_mmhg, "mmHg")
    if diastolic is not None and diastolic <= 0:
        raise ImpossibleValue("diastolic", float(diastolic), "> 0 mmHg")
    if systolic is not None and diastolic is not None:
        if diastolic >= systolic:
            raise ImpossibleValue("diastolic", float(diastolic), f"< systolic {float(systolic):g} mmHg")
        if mean is not None and not diastolic <= mean <= systolic:
            raise ImpossibleValue(
                "mean_arterial_pressure", float(mean), f"{float(diastolic):g}..{float(systolic):g} mmHg"
            )
        low, high = bounds.pulse_pressure_mmhg
        pulse_pressure = systolic - diastolic
        if not Decimal(str(low)) <= pulse_pressure <= Decimal(str(high)):
            reasons.append(f"pulse pressure {float(pulse_pressure):g} mmHg outside {low:g}..{high:g}")
    if m.pulse_rate is not None and m.pulse_rate.decimal is not None:
        _require_between("pulse_rate", m.pulse_rate.decimal, bounds.pulse_bpm, "/min")
    return reasons


def check_glucose(m: GlucoseMeasurement, bounds: PlausibilityBounds = DEFAULT_BOUNDS) -> list[str]:
    """Raise :class:`ImpossibleValue` outside 10–1000 mg/dL; return unit-sanity quarantine reasons.

    Control-solution tests are not judged here: see :func:`is_control_solution`.
    """
    mg_dl = glucose_mg_dl(m)
    if mg_dl is None:
        return []
    reasons: list[str] = []
    exact = m.concentration.decimal if m.concentration is not None else None
    if (
        exact is not None
        and m.unit is ConcentrationUnit.MOL_PER_L
        and exact.scaleb(contract.MOL_L_TO_MMOL_L_EXP) > Decimal(str(bounds.max_mmol_l))
    ):
        mmol_l = float(exact.scaleb(contract.MOL_L_TO_MMOL_L_EXP))
        reasons.append(f"{mmol_l:g} mmol/L above {bounds.max_mmol_l:g}: unit error?")
    if m.unit is ConcentrationUnit.KG_PER_L and mg_dl < Decimal(str(bounds.min_mg_dl)):
        reasons.append(f"{float(mg_dl):g} mg/dL below {bounds.min_mg_dl:g}: unit error?")
    _require_between("glucose", mg_dl, bounds.glucose_mg_dl, "mg/dL")
    return reasons


def is_control_solution(m: GlucoseMeasurement) -> bool:
    """Type 10 or location 4: a meter check with control solution, never a patient reading."""
    return m.is_control_solution


def check_device_time(
    device_time: datetime | None,
    *,
    gateway_now: datetime,
    tolerance: timedelta = timedelta(seconds=contract.FUTURE_TOLERANCE_S),
    not_before: datetime | None = None,
) -> list[str]:
    """Quarantine reasons for a device wall-clock time (compare in the same zone-less local time)."""
    if device_time is None:
        return []
    reasons: list[str] = []
    if device_time > gateway_now + tolerance:
        reasons.append(
            f"device time {device_time.isoformat()} is in the future (now {gateway_now.isoformat()})"
        )
    if not_before is not None and device_time < not_before:
        reasons.append(f"device time {device_time.isoformat()} is before {not_before.isoformat()}")
    return reasons


def check_clock_offset(offset_s: float | None, *,
                       max_offset_s: float = contract.MAX_CLOCK_OFFSET_S) -> list[str]:
    """Quarantine reason when ``device_clock − gateway_clock`` exceeds the allowed drift."""
    if offset_s is None or abs(offset_s) <= max_offset_s:
        return []
    return [f"device clock offset {offset_s:+g} s exceeds ±{max_offset_s:g} s"]
