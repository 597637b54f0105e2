"""Physiological and device plausibility (DOMAIN.md C5): quarantine, never clamp, never drop.

The bounds are the contract's (gateway/contract.py), the same the gateway logs against. A
reading that passed the wire contract is graded, as a pure function of the reading and ``now``:

- ``failed``: the device itself reported a failed or out-of-range measurement;
- ``quarantined``: the numbers are impossible or implausible (kept and shown, but never alerting
  or billing), with a reason naming the rule;
- ``valid`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from gateway import contract
from ingest.contract import ValidReading

Quality = Literal["valid", "quarantined", "failed"]

# One set of bounds for gateway and ingest: gateway/contract.py (DOMAIN C5).
FUTURE_TOLERANCE: Final = timedelta(seconds=contract.FUTURE_TOLERANCE_S)
EARLIEST: Final = contract.EARLIEST_MEASUREMENT
PULSE_RANGE_BPM: Final = contract.PULSE_RANGE_BPM
PULSE_PRESSURE_MMHG: Final = contract.PULSE_PRESSURE_MMHG
GLUCOSE_RANGE_MG_DL: Final = contract.GLUCOSE_RANGE_MG_DL
WEIGHT_RANGE_KG: Final = contract.WEIGHT_RANGE_KG
SPO2_RANGE_PCT: Final = contract.SPO2_RANGE_PCT
_QUESTIONABLE: Final = "questionable_measurement_detected"
_MMOL_L_TO_MG_DL: Final = float(contract.MMOL_L_TO_MG_DL)
_MOLAR_UNITS: Final = frozenset({contract.UNIT_MOL_PER_L})


@dataclass(frozen=True)
class Grade:
    quality: Quality
    reason: str | None = None


VALID: Final = Grade("valid")


def grade(reading: ValidReading, *, now: datetime) -> Grade:
    """The quality of one reading; the first rule that fires gives the reason."""
    if reading.measurement != "ok":
        return Grade("failed", f"device reported measurement {reading.measurement}")
    reason = _time_problem(reading, now) or _KIND_PROBLEMS[reading.kind](reading)
    return Grade("quarantined", reason) if reason else VALID


def _time_problem(r: ValidReading, now: datetime) -> str | None:
    if r.measured_at > now + FUTURE_TOLERANCE:
        return f"measured_at {r.measured_at.isoformat()} is more than 10 min in the future"
    if r.measured_at < EARLIEST:
        return f"measured_at {r.measured_at.isoformat()} is before 2015 (device clock reset?)"
    return None


def _outside(value: float | None, bounds: tuple[float, float]) -> bool:
    return value is not None and not bounds[0] <= value <= bounds[1]


def _bp_problem(r: ValidReading) -> str | None:
    sbp, dbp, mean = r.systolic_mmhg, r.diastolic_mmhg, r.mean_arterial_mmhg
    if sbp is None or dbp is None:  # the contract requires both when measurement is ok
        return "blood pressure without systolic and diastolic"
    if sbp <= dbp:
        return f"systolic {sbp:g} <= diastolic {dbp:g}"
    if mean is not None and not dbp <= mean <= sbp:
        return f"mean arterial {mean:g} outside [diastolic {dbp:g}, systolic {sbp:g}]"
    pp = sbp - dbp
    if _outside(pp, PULSE_PRESSURE_MMHG):
        return f"pulse pressure {pp:g} mmHg outside {PULSE_PRESSURE_MMHG[0]:g}..{PULSE_PRESSURE_MMHG[1]:g}"
    bounds = contract.device_bp_range(r.device.model)
    for name, value in (("systolic", sbp), ("diastolic", dbp), ("mean arterial", mean)):
        if _outside(value, bounds):
            return f"{name} {value:g} mmHg outside the device range {bounds[0]:g}..{bounds[1]:g}"
    if _outside(r.pulse_bpm, PULSE_RANGE_BPM):
        return f"pulse {r.pulse_bpm:g} bpm outside {PULSE_RANGE_BPM[0]:g}..{PULSE_RANGE_BPM[1]:g}"
    return None


def _glucose_problem(r: ValidReading) -> str | None:
    g = r.glucose_mg_dl
    if g is None:
        return "glucose without a concentration"
    # the device's unit exactly as the contract writes it ("mol/L"; "kg/L" or absent for mass units)
    molar = r.original is not None and r.original.get("unit") in _MOLAR_UNITS
    ceiling = contract.GLUCOSE_MOLAR_CEILING_MMOL_L
    if molar and g / _MMOL_L_TO_MG_DL > ceiling:
        return f"unit error suspected: {g / _MMOL_L_TO_MG_DL:.1f} mmol/L is above {ceiling:g}"
    if _outside(g, GLUCOSE_RANGE_MG_DL):
        return f"glucose {g:g} mg/dL outside {GLUCOSE_RANGE_MG_DL[0]:g}..{GLUCOSE_RANGE_MG_DL[1]:g}"
    floor = contract.GLUCOSE_MASS_FLOOR_MG_DL
    if not molar and g < floor:
        return f"unit error suspected: glucose {g:g} mg/dL is below {floor:g}"
    return None


def _weight_problem(r: ValidReading) -> str | None:
    w = r.weight_kg
    if w is None:  # the contract requires it when measurement is ok
        return "weight without a value"
    if _outside(w, WEIGHT_RANGE_KG):
        return f"weight {w:g} kg outside {WEIGHT_RANGE_KG[0]:g}..{WEIGHT_RANGE_KG[1]:g}"
    return None


def _spo2_problem(r: ValidReading) -> str | None:
    if r.spo2_pct is None or r.pulse_bpm is None:  # the contract requires both when measurement is ok
        return "SpO2 reading without SpO2 and pulse"
    if _QUESTIONABLE in r.status:
        return "the oximeter flagged the measurement as questionable"
    for name, value in (("SpO2", r.spo2_pct), ("minimum SpO2", r.spo2_min_pct)):
        if _outside(value, SPO2_RANGE_PCT):
            return f"{name} {value:g} % outside {SPO2_RANGE_PCT[0]:g}..{SPO2_RANGE_PCT[1]:g}"
    if r.spo2_min_pct is not None and r.spo2_min_pct > r.spo2_pct:
        return f"minimum SpO2 {r.spo2_min_pct:g} % above the median {r.spo2_pct:g} %"
    if _outside(r.pulse_bpm, PULSE_RANGE_BPM):
        return f"pulse {r.pulse_bpm:g} bpm outside {PULSE_RANGE_BPM[0]:g}..{PULSE_RANGE_BPM[1]:g}"
    return None


_KIND_PROBLEMS: Final[dict[str, Callable[[ValidReading], str | None]]] = {
    contract.KIND_BLOOD_PRESSURE: _bp_problem,
    contract.KIND_GLUCOSE: _glucose_problem,
    contract.KIND_WEIGHT: _weight_problem,
    contract.KIND_SPO2: _spo2_problem,
}
