"""PostgreSQL → :class:`~triage.billing.facts.PatientFacts`: the engine's only database reads.

One query per table family, all in the patient's IANA zone (a reading at 23:30 local belongs to
that local date). Readings get their verdict from the shared :mod:`triage.valid_reading`, so
billing days and triage adherence agree on what counts. Nothing here decides a code.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import psycopg

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
from triage.billing.rules import Policy
from triage.clinical import people_store
from triage.valid_reading import ReadingFacts, judge_all

# The measured numbers of every kind: two rows of one device, kind and time with these equal are
# the same measurement (duplicates collapse, triage.valid_reading.judge_all).
_VALUE_COLUMNS = (
    "systolic_mmhg",
    "diastolic_mmhg",
    "mean_arterial_mmhg",
    "pulse_bpm",
    "glucose_mg_dl",
    "weight_kg",
    "spo2_pct",
)


def load_policies(conn: psycopg.Connection[Any]) -> list[Policy]:
    rows = conn.execute(
        "SELECT payer, effective_from, effective_to, key, value FROM billing_policy"
    ).fetchall()
    groups: dict[tuple[str, date, date | None], dict[str, str]] = defaultdict(dict)
    for payer, start, end, key, value in rows:
        groups[(payer, start, end)][key] = value
    return [Policy.from_values(p, s, e, vals) for (p, s, e), vals in groups.items()]


def patient_ids_for_month(conn: psycopg.Connection[Any], m_start: date, m_end: date) -> list[int]:
    """Patients enrolled at some point from two months before the month to its end."""
    rows = conn.execute(
        "SELECT p.patient_id FROM patients p WHERE EXISTS ("
        " SELECT 1 FROM enrolments e WHERE e.patient_id = p.patient_id AND e.start_date <= %s"
        " AND (e.end_date IS NULL OR e.end_date >= %s)) ORDER BY p.patient_id",
        (m_end, m_start - timedelta(days=62)),
    ).fetchall()
    return [int(r[0]) for r in rows]


def _readings(conn: psycopg.Connection[Any], pid: int, tz: str, until: date) -> tuple[DayReading, ...]:
    cols = ", ".join(f"r.{c}" for c in _VALUE_COLUMNS)
    rows = conn.execute(
        "SELECT r.reading_id, r.kind, r.measured_at, (r.measured_at AT TIME ZONE %(tz)s)::date, r.quality,"
        " r.quality_reason, r.transmission, r.device_status, coalesce(d.fda_cleared, false), r.device_id,"
        f" r.measurement, {cols}"
        " FROM readings r LEFT JOIN devices d ON d.device_id = r.device_id"
        " WHERE r.patient_id = %(pid)s AND r.measured_at < (%(end)s::timestamp AT TIME ZONE %(tz)s)",
        {"pid": pid, "tz": tz, "end": until + timedelta(days=1)},
    ).fetchall()
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
    for uid, state, a, b, number in conn.execute(
        "SELECT user_id, state, valid_from, valid_to, license_number FROM clinician_licenses"
        " WHERE user_id = ANY(%s)",
        (sorted(user_ids),),
    ):
        lic[int(uid)].append(Licence(state, a, b, number))
    return {
        p.user_id: Practitioner(p.user_id, p.username, p.role, p.npi, p.is_physician_or_qhp,
                                tuple(lic[p.user_id]))
        for p in people_store.practitioners(conn, user_ids)
    }


def _time_logs(conn: psycopg.Connection[Any], pid: int, tz: str) -> tuple[TimeLog, ...]:
    rows = conn.execute(
        "SELECT t.time_log_id, t.flag_id, t.user_id, t.minutes, (t.logged_at AT TIME ZONE %(tz)s)::date,"
        " t.role, u.username, u.is_physician_or_qhp, b.billable_event_id IS NOT NULL, t.counted_elsewhere"
        " FROM time_logs t JOIN flags f ON f.flag_id = t.flag_id JOIN users u ON u.user_id = t.user_id"
        " LEFT JOIN billable_events b ON b.flag_id = t.flag_id"
        " WHERE f.patient_id = %(pid)s ORDER BY t.logged_at, t.time_log_id",
        {"pid": pid, "tz": tz},
    ).fetchall()
    return tuple(
        TimeLog(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4], r[5], r[6], bool(r[7]), bool(r[8]), r[9])
        for r in rows
    )


def _communications(conn: psycopg.Connection[Any], pid: int, tz: str) -> tuple[Communication, ...]:
    rows = conn.execute(
        "SELECT c.communication_id, (c.at AT TIME ZONE %(tz)s)::date, c.mode,"
        " coalesce(c.realtime, c.two_way_realtime), coalesce(c.two_way, c.two_way_realtime), c.flag_id,"
        " b.billable_event_id IS NOT NULL"
        " FROM communications c LEFT JOIN billable_events b ON b.flag_id = c.flag_id"
        " WHERE c.patient_id = %(pid)s ORDER BY c.at, c.communication_id",
        {"pid": pid, "tz": tz},
    ).fetchall()
    return tuple(Communication(int(r[0]), r[1], r[2], bool(r[3]), bool(r[4]), r[5], bool(r[6])) for r in rows)


def _histories(conn: psycopg.Connection[Any], pid: int, tz: str) -> dict[str, Any]:
    """The dated histories: enrolments, orders, consents, locations, payers, prior auths, claims.

    One short query per history, kept in one function (over 60 lines on purpose) so the list of
    facts the engine decides on reads in one place.
    """
    enrolments = tuple(
        Enrolment(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], int(r[6]), r[7])
        for r in conn.execute(
            "SELECT enrolment_id, ordering_user_id, start_date, end_date, established_visit_date,"
            " education_documented_on, episode_id, payer FROM enrolments WHERE patient_id = %s"
            " ORDER BY start_date, enrolment_id",
            (pid,),
        )
    )
    orders = tuple(
        Order(int(r[0]), int(r[1]), r[2], tuple(r[3]), r[4], r[5], r[6])
        for r in conn.execute(
            "SELECT o.order_id, o.ordering_user_id, o.order_date, o.icd10_codes, o.end_date,"
            " o.medical_necessity, u.role FROM rpm_orders o JOIN users u ON u.user_id = o.ordering_user_id"
            " WHERE o.patient_id = %s ORDER BY o.order_date, o.order_id",
            (pid,),
        )
    )
    consents = tuple(
        Consent(int(r[0]), r[1], r[2], tuple(r[3]), r[4], r[5])
        for r in conn.execute(
            "SELECT consent_id, (consented_at AT TIME ZONE %s)::date, (revoked_at AT TIME ZONE %s)::date,"
            " scope, method, version FROM consents WHERE patient_id = %s ORDER BY consented_at",
            (tz, tz, pid),
        )
    )
    locations = tuple(
        Location(r[0], r[1], r[2], r[3])
        for r in conn.execute(
            "SELECT state, effective_from, effective_to, source FROM patient_locations"
            " WHERE patient_id = %s ORDER BY effective_from, location_id",
            (pid,),
        )
    )
    payers = tuple(
        PayerPeriod(r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT payer, effective_from, effective_to FROM patient_payers WHERE patient_id = %s"
            " ORDER BY effective_from, patient_payer_id",
            (pid,),
        )
    )
    auths = tuple(
        PriorAuth(r[0], r[1], r[2], r[3])
        for r in conn.execute(
            "SELECT payer, valid_from, valid_to, reference FROM prior_authorisations WHERE patient_id = %s",
            (pid,),
        )
    )
    claims = tuple(
        Claim(r[0], r[1], r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT service_from, service_to, program, cpt, billing_npi FROM billing_claims_history"
            " WHERE patient_id = %s",
            (pid,),
        )
    )
    return {
        "enrolments": enrolments,
        "orders": orders,
        "consents": consents,
        "locations": locations,
        "payers": payers,
        "prior_auths": auths,
        "claims": claims,
    }


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
