"""Glucose in the unit each user reads: mg/dL or mmol/L, a display choice only.

Readings, thresholds, the JSON API and exports stay in mg/dL (one canonical unit, DOMAIN H6); a
clinician trained in mmol/L sees mmol/L on screen, converted here with the one constant the wire
contract uses (``gateway.contract.MMOL_L_TO_MG_DL``, 18.0156 mg/dL per mmol/L), never rounded back.
"""

from __future__ import annotations

from typing import Any, Final

from dashboards.db import Conn, fetch_one
from gateway.contract import MMOL_L_TO_MG_DL
from triage.clinical import people_store

MG_DL: Final = "mg/dL"
MMOL_L: Final = "mmol/L"
UNITS: Final = (MG_DL, MMOL_L)
_PER_MMOL = float(MMOL_L_TO_MG_DL)


def mmol_per_l(mg_dl: float) -> float:
    """mg/dL to mmol/L for display (charts plot this; text rounds it to one decimal)."""
    return mg_dl / _PER_MMOL


def number_text(value: Any) -> str:
    """A measured value as people write it: ``142``, ``98.6`` (one decimal); ``–`` for no value."""
    if value is None:
        return "–"
    f = float(value)
    return str(int(f)) if f.is_integer() else f"{f:.1f}"


def glucose_text(mg_dl: Any, unit: str = MG_DL) -> str:
    """``112 mg/dL`` or ``6.2 mmol/L`` (one decimal, as meters show it); ``–`` for no value."""
    if mg_dl is None:
        return "–"
    value = float(mg_dl)
    if unit == MMOL_L:
        return f"{mmol_per_l(value):.1f} {MMOL_L}"
    return f"{int(value) if value.is_integer() else round(value, 1):g} {MG_DL}"


# The user's unit (named parameter ``user``), for pages that batch it with their other reads.
GLUCOSE_UNIT_SQL: Final = people_store.GLUCOSE_UNIT_SQL


def known_unit(row: dict[str, Any] | None) -> str:
    """The unit a ``GLUCOSE_UNIT_SQL`` row names; mg/dL for no row or an unknown unit."""
    unit = str(row["glucose_unit"]) if row else MG_DL
    return unit if unit in UNITS else MG_DL


def glucose_unit(conn: Conn, user_id: int) -> str:
    return known_unit(fetch_one(conn, GLUCOSE_UNIT_SQL, {"user": user_id}))


def set_glucose_unit(conn: Conn, user_id: int, unit: str) -> None:
    if unit not in UNITS:
        raise ValueError(f"glucose unit must be one of {', '.join(UNITS)}")
    people_store.set_glucose_unit(conn, user_id, unit)
