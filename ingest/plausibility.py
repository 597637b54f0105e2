"""Physiological and device plausibility (DOMAIN.md C5): quarantine, never clamp, never drop.

The bounds are the contract's (gateway/contract.py), the same the gateway logs against. A
reading that passed the wire contract is graded, as a pure function of the reading and ``now``:

- ``failed``: the device itself reported a failed or out-of-range measurement;
- ``quarantined``: the numbers are impossible or implausible (kept and shown, but never alerting
  or billing), with a reason naming the rule;
- ``valid`` otherwise.
"""

from __future__ import annotations

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
    reason = _time_problem(reading, now) or (
        _bp_problem(reading) if reading.kind == contract.KIND_BLOOD_PRESSURE else _glucose_problem(reading)
    )
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
