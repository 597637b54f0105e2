"""PostgreSQL → :class:`~triage.billing.facts.PatientFacts`: the engine's only database reads.

One query per table family, all in the patient's IANA zone (a reading at 23:30 local belongs to
that local date); the SQL is :mod:`triage.billing.billing_store`'s, this module turns its rows into
facts. Readings get their verdict from the shared :mod:`triage.valid_reading`, so
billing days and triage adherence agree on what counts. Nothing here decides a code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg

from triage.billing import billing_store
from triage.billing.facts import (
    Claim,
    Communication,
    Consent,
    DayReading,
    Enrolment,
    Licence,
    Location,
    Order,
    PatientFacts,
    PayerPeriod,
    Practitioner,
    PriorAuth,
    TimeLog,
)
from triage.billing.policy import Policy
from triage.clinical import people_store
from triage.valid_reading import ReadingFacts, judge_all

Row = tuple[Any, ...]


def load_policies(conn: psycopg.Connection[Any]) -> list[Policy]:
    groups: dict[tuple[str, date, date | None], dict[str, str]] = defaultdict(dict)
    for payer, start, end, key, value in billing_store.policy_rows(conn):
        groups[(payer, start, end)][key] = value
    return [Policy.from_values(p, s, e, vals) for (p, s, e), vals in groups.items()]


def patient_ids_for_month(conn: psycopg.Connection[Any], m_start: date, m_end: date) -> list[int]:
    """Patients enrolled at some point from two months before the month to its end."""
    return billing_store.patient_ids_for_month(conn, m_start, m_end)


def _readings(conn: psycopg.Connection[Any], pid: int, tz: str, until: date) -> tuple[DayReading, ...]:
    rows = billing_store.reading_rows(conn, pid, tz, until)
    local = {int(r[0]): r[3] for r in rows}
    facts = [
        ReadingFacts(
            reading_id=int(r[0]),
            kind=r[1],
            measured_at=r[2],
            quality=r[4],
            quality_reason=r[5],
            transmission=r[6],
            device_status=tuple(r[7] or ()),
            fda_cleared=bool(r[8]),
            device_id=r[9],
            values=tuple(r[10:]),
        )
        for r in rows
    ]
    return tuple(DayReading(f.reading_id, local[f.reading_id], v) for f, v in judge_all(facts))


def _practitioners(conn: psycopg.Connection[Any], user_ids: set[int]) -> dict[int, Practitioner]:
    lic: dict[int, list[Licence]] = defaultdict(list)
    for uid, state, a, b, number in billing_store.licence_rows(conn, user_ids):
        lic[int(uid)].append(Licence(state, a, b, number))
    return {
        p.user_id: Practitioner(p.user_id, p.username, p.role, p.npi, p.is_physician_or_qhp,
                                tuple(lic[p.user_id]))
        for p in people_store.practitioners(conn, user_ids)
    }


def _time_logs(conn: psycopg.Connection[Any], pid: int, tz: str) -> tuple[TimeLog, ...]:
    return tuple(
        TimeLog(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4], r[5], r[6], bool(r[7]), bool(r[8]), r[9])
        for r in billing_store.time_log_rows(conn, pid, tz)
    )


def _communications(conn: psycopg.Connection[Any], pid: int, tz: str) -> tuple[Communication, ...]:
    return tuple(
        Communication(int(r[0]), r[1], r[2], bool(r[3]), bool(r[4]), r[5], bool(r[6]))
        for r in billing_store.communication_rows(conn, pid, tz)
    )


# One fact per row of each dated history (billing_store.history_rows names them the same).
_HISTORY_FACTS: dict[str, Callable[[Row], Any]] = {
    "enrolments": lambda r: Enrolment(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], int(r[6]), r[7]),
    "orders": lambda r: Order(int(r[0]), int(r[1]), r[2], tuple(r[3]), r[4], r[5], r[6]),
    "consents": lambda r: Consent(int(r[0]), r[1], r[2], tuple(r[3]), r[4], r[5]),
    "locations": lambda r: Location(r[0], r[1], r[2], r[3]),
    "payers": lambda r: PayerPeriod(r[0], r[1], r[2]),
    "prior_auths": lambda r: PriorAuth(r[0], r[1], r[2], r[3]),
    "claims": lambda r: Claim(r[0], r[1], r[2], r[3], r[4]),
}


def _histories(conn: psycopg.Connection[Any], pid: int, tz: str) -> dict[str, Any]:
    """The dated histories: enrolments, orders, consents, locations, payers, prior auths, claims."""
    rows = billing_store.history_rows(conn, pid, tz)
    return {name: tuple(make(r) for r in rows[name]) for name, make in _HISTORY_FACTS.items()}


def load_patient_facts(conn: psycopg.Connection[Any], patient_id: int, until: date) -> PatientFacts | None:
    """Every fact about one patient up to ``until`` (local date), or None if no such patient."""
    row = people_store.patient_header(conn, patient_id)
    if row is None:
        return None
    pid, mrn, state, tz = row.patient_id, row.mrn, row.state, row.timezone
    h = _histories(conn, pid, tz)
    logs = _time_logs(conn, pid, tz)
    users = {e.ordering_user_id for e in h["enrolments"]} | {t.user_id for t in logs}
    return PatientFacts(
        patient_id=pid,
        mrn=mrn,
        timezone=tz,
        state=state,
        **h,
        readings=_readings(conn, pid, tz, until),
        time_logs=logs,
        communications=_communications(conn, pid, tz),
        practitioners=_practitioners(conn, users),
    )
