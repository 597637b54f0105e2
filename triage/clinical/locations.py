"""Where the patient is located, as a dated history (DOMAIN D2 G14).

Licensure is checked against the state the patient was in on each date of service, so a move is
recorded with the date it took effect, never by overwriting the current state: the open row is
closed the day before, and ``patients.state`` follows the row in force today. Each change is one
transaction with its audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

from triage.clinical import audit, people_store
from triage.errors import TerminalTriageError

US_STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "AS",
        "GU",
        "MP",
        "PR",
        "VI",
    ]
)
SOURCES = ("patient_reported", "staff_verified", "address_on_file", "device_gateway", "import")


class InvalidLocation(TerminalTriageError):
    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


@dataclass(frozen=True)
class LocationRow:
    location_id: int
    state: str
    effective_from: date
    effective_to: date | None
    source: str
    recorded_by: str | None


def validate_state(state: str) -> str:
    s = state.strip().upper()
    if s not in US_STATES:
        raise InvalidLocation("state", state, "not a two-letter US state or territory code")
    return s


def record_location(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    state: str,
    effective_from: date,
    effective_to: date | None = None,
    source: str = "staff_verified",
    recorded_by: int | None = None,
    actor: str = "system",
    today: date | None = None,
    source_ip: str | None = None,
) -> int:
    """The patient is in ``state`` from ``effective_from`` (to ``effective_to``, or open).

    An open row that started earlier is closed the day before; a row starting on the same day or
    later than an open-ended new row is refused (record the history in date order, or give an end).
    """
    st = validate_state(state)
    if source not in SOURCES:
        raise InvalidLocation("source", source, f"must be one of {', '.join(SOURCES)}")
    if effective_to is not None and effective_to < effective_from:
        raise InvalidLocation("effective_to", effective_to, "is before effective_from")
    with conn.transaction():
        if not people_store.lock_patient(conn, patient_id):
            raise InvalidLocation("patient_id", patient_id, "no such patient")
        _keep_initial_state(conn, patient_id, effective_from)
        if effective_to is None:
            _close_open_row(conn, patient_id, effective_from)
        row = conn.execute(
            "INSERT INTO patient_locations (patient_id, state, effective_from, effective_to, source,"
            " recorded_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING location_id",
            (patient_id, st, effective_from, effective_to, source, recorded_by),
        ).fetchone()
        assert row is not None
        people_store.set_state_from_locations(conn, patient_id, today or date.today())
        audit.record(
            conn,
            actor=actor,
            action="patient.location",
            patient_id=patient_id,
            detail={
                "location_id": int(row[0]),
                "state": st,
                "effective_from": effective_from.isoformat(),
                "effective_to": None if effective_to is None else effective_to.isoformat(),
                "source": source,
            },
            source_ip=source_ip,
        )
    return int(row[0])


def _close_open_row(conn: psycopg.Connection[Any], patient_id: int, effective_from: date) -> None:
    """Before an open-ended row: refuse if one starts that day or later, else end the open one."""
    later = conn.execute(
        "SELECT effective_from FROM patient_locations WHERE patient_id = %s AND effective_from >= %s"
        " ORDER BY effective_from LIMIT 1",
        (patient_id, effective_from),
    ).fetchone()
    if later is not None:
        raise InvalidLocation(
            "effective_from", effective_from, f"a location from {later[0]} is already recorded"
        )
    conn.execute(
        "UPDATE patient_locations SET effective_to = %s WHERE patient_id = %s"
        " AND effective_to IS NULL AND effective_from < %s",
        (effective_from - timedelta(days=1), patient_id, effective_from),
    )


def _keep_initial_state(conn: psycopg.Connection[Any], patient_id: int, before: date) -> None:
    """The first recorded move keeps the state given at registration for the dates before it."""
    if conn.execute(
        "SELECT 1 FROM patient_locations WHERE patient_id = %s LIMIT 1", (patient_id,)
    ).fetchone():
        return
    if before <= date.min:
        return
    conn.execute(
        "INSERT INTO patient_locations (patient_id, state, effective_from, effective_to, source)"
        " SELECT patient_id, state, %s, %s, 'address_on_file' FROM patients WHERE patient_id = %s",
        (date.min, before - timedelta(days=1), patient_id),
    )


def location_history(conn: psycopg.Connection[Any], patient_id: int) -> list[LocationRow]:
    rows = conn.execute(
        "SELECT l.location_id, l.state, l.effective_from, l.effective_to, l.source, u.username"
        " FROM patient_locations l LEFT JOIN users u ON u.user_id = l.recorded_by"
        " WHERE l.patient_id = %s ORDER BY l.effective_from, l.location_id",
        (patient_id,),
    ).fetchall()
    return [LocationRow(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]


def state_on(conn: psycopg.Connection[Any], patient_id: int, on: date) -> str | None:
    """The state the patient was located in on ``on`` (the current state if no row covers it)."""
    row = conn.execute("SELECT rpm_patient_state_on(%s, %s)", (patient_id, on)).fetchone()
    return None if row is None else row[0]
