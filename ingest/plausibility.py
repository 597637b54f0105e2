"""Physiological and device plausibility (DOMAIN.md C5): quarantine, never clamp, never drop.

A reading that passed the wire contract is graded, as a pure function of the reading and ``now``:

- ``failed``: the device itself reported a failed or out-of-range measurement;
- ``quarantined``: the numbers are impossible or implausible (kept and shown, but never alerting
  or billing), with a reason naming the rule;
- ``valid`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from ingest.contract import ValidReading

Quality = Literal["valid", "quarantined", "failed"]

FUTURE_TOLERANCE: Final = timedelta(minutes=10)
EARLIEST: Final = datetime(2015, 1, 1, tzinfo=UTC)
BP_RANGE_MMHG: Final = (20.0, 280.0)  # typical home monitor span; per-model ranges below win
PULSE_RANGE_BPM: Final = (25.0, 250.0)
PULSE_PRESSURE_MMHG: Final = (10.0, 120.0)
GLUCOSE_RANGE_MG_DL: Final = (10.0, 1000.0)
GLUCOSE_UNIT_FLOOR_MG_DL: Final = 15.0  # below: probably mmol/L sent as mg/dL
GLUCOSE_MMOL_CEILING: Final = 35.0  # above, in mmol/L: probably mg/dL sent as mmol/L

# Declared measurement ranges of models we know (mmHg), keyed by DIS model number.
DEVICE_BP_RANGES: Final[dict[str, tuple[float, float]]] = {
    "HEM-7361T": (0.0, 299.0),
    "BP7250": (0.0, 299.0),
}


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
        _bp_problem(reading) if reading.kind == "blood_pressure" else _glucose_problem(reading)
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
    bounds = DEVICE_BP_RANGES.get(r.device.model or "", BP_RANGE_MMHG)
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
    unit = r.original.get("unit") if r.original else None
    if unit == "mmol/L" and g / 18.0156 > GLUCOSE_MMOL_CEILING:
        return f"unit error suspected: {g / 18.0156:.1f} mmol/L is above {GLUCOSE_MMOL_CEILING:g}"
    if _outside(g, GLUCOSE_RANGE_MG_DL):
        return f"glucose {g:g} mg/dL outside {GLUCOSE_RANGE_MG_DL[0]:g}..{GLUCOSE_RANGE_MG_DL[1]:g}"
    if g < GLUCOSE_UNIT_FLOOR_MG_DL:
        return f"unit error suspected: glucose {g:g} mg/dL is below {GLUCOSE_UNIT_FLOOR_MG_DL:g}"
    return None
