"""Who may see which patient: care teams, break-glass grants, and the scope check. SQL only.

Nurses and clinicians (``SCOPED_ROLES``) see the patients of the care teams they belong to, and a
patient they opened by break-glass until that grant expires; the database function
``patients_visible_to(user_id)`` (migration 0097) is the one definition every query uses. Billing
and admin are not scoped: billing works on claims across all patients and sees no readings, admins
enrol and assign but do not browse readings (``dashboards.policy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import sql

from dashboards.db import Conn, fetch_all, fetch_one
from dashboards.policy import CARE
from dashboards.sessions import Principal
from triage import flag_views_store
from triage.clinical import people_store

SCOPED_ROLES: Final = CARE
MIN_REASON: Final = 10  # characters of a break-glass reason (the table checks it too)

# The visibility condition is the people store's (every read that scopes by viewer uses it).
VISIBLE: Final = people_store.VISIBLE
visible = people_store.visible


def viewer(who: Principal) -> int | None:
    """The user id to scope queries by, or None for roles that see every patient."""
    return who.user_id if who.role in SCOPED_ROLES else None


def out_of_scope(conn: Conn, user_id: int, patient_id: int) -> bool:
    """True when the patient exists and the user may not see it (an unknown id is the route's 404)."""
    row = fetch_one(conn, "SELECT EXISTS (SELECT 1 FROM patients WHERE patient_id = %(p)s)"
                          " AND NOT EXISTS (SELECT 1 FROM patients_visible_to(%(u)s) v(pid)"
                          " WHERE pid = %(p)s) AS refused", {"u": user_id, "p": patient_id})
    return bool(row and row["refused"])


def visible_ids(conn: Conn, user_id: int) -> set[int]:
    rows = fetch_all(conn, "SELECT v.pid FROM patients_visible_to(%s) v(pid)", (user_id,))
    return {int(r["pid"]) for r in rows}


flag_patient = flag_views_store.patient_of


@dataclass(frozen=True)
class BreakGlass:
    grant_id: int
    patient_id: int
    expires_at: datetime


class ReasonTooShort(ValueError):
    """A break-glass reason must say why, in at least ``MIN_REASON`` characters."""


def open_break_glass(conn: Conn, user_id: int, patient_id: int, reason: str, minutes: float) -> BreakGlass:
    text = " ".join(reason.split())
    if len(text) < MIN_REASON:
        raise ReasonTooShort(f"give the emergency reason in at least {MIN_REASON} characters")
    row = fetch_one(conn, "INSERT INTO break_glass (user_id, patient_id, reason, expires_at)"
                          " VALUES (%s, %s, %s, now() + make_interval(secs => %s))"
                          " RETURNING grant_id, expires_at", (user_id, patient_id, text[:1000], minutes * 60))
    assert row is not None
    return BreakGlass(int(row["grant_id"]), patient_id, row["expires_at"])


def recent_break_glass(conn: Conn, days: int = 30) -> list[dict[str, Any]]:
    return fetch_all(conn, "SELECT b.grant_id, u.username, b.patient_id, p.mrn, b.reason, b.opened_at,"
                           " b.expires_at, b.expires_at > now() AS active FROM break_glass b"
                           " JOIN users u USING (user_id) JOIN patients p USING (patient_id)"
                           " WHERE b.opened_at > now() - make_interval(days => %s)"
                           " ORDER BY b.opened_at DESC LIMIT 200", (days,))


def teams(conn: Conn) -> list[dict[str, Any]]:
    """Every team with its members and patients (ids and names), by name."""
    return fetch_all(
        conn,
        "SELECT t.team_id, t.name,"
        " coalesce((SELECT json_agg(json_build_object('user_id', u.user_id, 'username', u.username,"
        "  'role', u.role) ORDER BY u.username) FROM care_team_members m JOIN users u USING (user_id)"
        "  WHERE m.team_id = t.team_id), '[]') AS members,"
        " coalesce((SELECT json_agg(json_build_object('patient_id', p.patient_id, 'mrn', p.mrn)"
        "  ORDER BY p.mrn) FROM care_team_patients cp JOIN patients p USING (patient_id)"
        "  WHERE cp.team_id = t.team_id), '[]') AS patients"
        " FROM care_teams t ORDER BY t.name",
    )


def create_team(conn: Conn, name: str) -> int:
    row = fetch_one(conn, "INSERT INTO care_teams (name) VALUES (%s) ON CONFLICT (name) DO NOTHING"
                          " RETURNING team_id", (name.strip(),))
    if row is None:
        found = fetch_one(conn, "SELECT team_id FROM care_teams WHERE name = %s", (name.strip(),))
        assert found is not None
        return int(found["team_id"])
    return int(row["team_id"])


def _set_link(conn: Conn, table: str, column: str, team_id: int, key: int, *, present: bool) -> bool:
    """Add or remove one (team, member or patient) row; True when something changed."""
    names = {"table": sql.Identifier(table), "column": sql.Identifier(column)}
    if present:
        query = sql.SQL("INSERT INTO {table} (team_id, {column}) VALUES (%s, %s) ON CONFLICT DO NOTHING")
    else:
        query = sql.SQL("DELETE FROM {table} WHERE team_id = %s AND {column} = %s")
    return conn.execute(query.format(**names), (team_id, key)).rowcount == 1


def set_member(conn: Conn, team_id: int, user_id: int, *, present: bool) -> bool:
    """Add or remove a member; True when something changed."""
    return _set_link(conn, "care_team_members", "user_id", team_id, user_id, present=present)


def set_patient(conn: Conn, team_id: int, patient_id: int, *, present: bool) -> bool:
    """Add or remove a patient; True when something changed."""
    return _set_link(conn, "care_team_patients", "patient_id", team_id, patient_id, present=present)
