"""Per-patient threshold overrides and snoozes: clinician-set, stored with their unit, floor-checked.

An override that would cross the safety floor (raise a crisis line above 180/120, lower the
level-2 hypoglycaemia line below 54 mg/dL) is refused here with :class:`UnsafeOverride`, and
``Limits.at`` clamps again at evaluation time. Units are stated, never guessed: mmol/L converts
to mg/dL with the one explicit factor; any other mismatch is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from triage import thresholds as th
from triage.errors import UnsafeOverride
from triage.rules import SAFETY_FLOOR_RULES


def to_canonical(key: str, value: float, unit: str) -> float:
    """The value in the threshold's own unit, or a refusal naming the unit problem."""
    t = th.ALL.get(key)
    if t is None:
        raise UnsafeOverride(key, value, unit, "unknown threshold")
    if unit == t.unit.value or (t.unit is th.Unit.MMHG and unit == "mmHg"):
        return float(value)
    if t.unit is th.Unit.MG_DL and unit == th.Unit.MMOL_L.value:
        return float(value) * th.MG_DL_PER_MMOL_L
    if t.unit is th.Unit.KG and unit == "lb":
        return float(value) * th.KG_PER_LB
    raise UnsafeOverride(key, value, unit, f"unit must be {t.unit.value}")


def set_override(
    conn: psycopg.Connection[Any],
    *,
    patient_id: int,
    key: str,
    value: float,
    unit: str,
    set_by: str,
    role: str,
    reason: str,
) -> int:
    """Replace the patient's active override for ``key``; returns the new override id."""
    if role != "clinician":
        raise UnsafeOverride(key, value, unit, "only a clinician may change a patient's thresholds")
    if not reason.strip():
        raise UnsafeOverride(key, value, unit, "a reason is required")
    canonical = to_canonical(key, value, unit)
    t = th.ALL[key]
    if t.crosses_floor(canonical):
        side = "above" if t.floor == "max" else "below"
        raise UnsafeOverride(
            key, value, unit, f"would move the safety floor {side} {t.value:g} {t.unit.value}"
        )
    with conn.transaction():
        conn.execute(
            "UPDATE triage_threshold_overrides SET revoked_at = now(), revoked_by = %s"
            " WHERE patient_id = %s AND threshold_key = %s AND revoked_at IS NULL",
            (set_by, patient_id, key),
        )
        row = conn.execute(
            "INSERT INTO triage_threshold_overrides (patient_id, threshold_key, value, unit, value_canonical,"
            " canonical_unit, reason, set_by, set_by_role) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING override_id",
            (patient_id, key, value, unit, canonical, t.unit.value, reason, set_by, role),
        ).fetchone()
    assert row is not None
    return int(row[0])


_Conn = psycopg.Connection[Any]
DRY_WEIGHT_RANGE_KG = (20.0, 350.0)  # a home scale's range; anything else is a typing error


def set_dry_weight(
    conn: _Conn, *, patient_id: int, value: float, unit: str, set_by: str, role: str, reason: str
) -> int:
    """Replace the patient's dry weight (the care team's target, kg or lb); returns the new row id.

    The weight rule then measures the week's gain from it (``Limits.dry_weight``).
    """
    if role not in ("clinician", "nurse"):
        raise UnsafeOverride("dry_weight", value, unit, f"role {role} may not set a dry weight")
    if not reason.strip():
        raise UnsafeOverride("dry_weight", value, unit, "a reason is required")
    kg = to_canonical(th.WEIGHT_GAIN_WEEK.key, value, unit)
    lo, hi = DRY_WEIGHT_RANGE_KG
    if not lo <= kg <= hi:
        raise UnsafeOverride("dry_weight", value, unit, f"must be {lo:g}-{hi:g} kg")
    with conn.transaction():
        conn.execute(
            "UPDATE patient_dry_weights SET revoked_at = now(), revoked_by = %s"
            " WHERE patient_id = %s AND revoked_at IS NULL",
            (set_by, patient_id),
        )
        row = conn.execute(
            "INSERT INTO patient_dry_weights (patient_id, value, unit, dry_weight_kg, reason, set_by,"
            " set_by_role) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING dry_weight_id",
            (patient_id, value, unit, kg, reason, set_by, role),
        ).fetchone()
    assert row is not None
    return int(row[0])


def revoke_override(conn: psycopg.Connection[Any], *, patient_id: int, key: str, revoked_by: str) -> int:
    cur = conn.execute(
        "UPDATE triage_threshold_overrides SET revoked_at = now(), revoked_by = %s"
        " WHERE patient_id = %s AND threshold_key = %s AND revoked_at IS NULL",
        (revoked_by, patient_id, key),
    )
    return cur.rowcount


def snooze(
    conn: psycopg.Connection[Any],
    *,
    patient_id: int,
    rule_id: str,
    until: datetime,
    reason: str,
    set_by: str,
    role: str,
) -> int:
    """Silence one rule for one patient until ``until`` (never a safety-floor rule)."""
    if rule_id in SAFETY_FLOOR_RULES:
        raise UnsafeOverride(rule_id, 0.0, "", "safety-floor rules cannot be snoozed")
    if role not in ("clinician", "nurse"):
        raise UnsafeOverride(rule_id, 0.0, "", f"role {role} may not snooze")
    if not reason.strip():
        raise UnsafeOverride(rule_id, 0.0, "", "a reason is required")
    row = conn.execute(
        "INSERT INTO triage_snoozes (patient_id, rule_id, until, reason, set_by, set_by_role)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING snooze_id",
        (patient_id, rule_id, until, reason, set_by, role),
    ).fetchone()
    assert row is not None
    return int(row[0])
