"""The ``reviews``, ``time_logs`` and ``communications`` tables' statements, stated once.

A clinician's review of a flag, the minutes logged on it and the contacts with its patient are
written by ``review.py`` (which validates them, fires the lifecycle event and audits), and read by
promotion (the latest review and its reviewer), the patient page (the reviews of its flags) and
billing (``triage.billing.facts_store`` reads the minutes and contacts it counts). Reads that join
``users`` are about the review, so they live here rather than with the people store.

Every function runs one statement on the caller's connection and transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from triage.rows import dict_rows

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class NewReview:
    """A validated review as ``review.record_review`` stores it."""

    flag_id: int
    reviewer_user_id: int
    date_of_service: date
    determination: str
    icd10_codes: Sequence[str]
    action: str
    minutes: int
    interactive: bool
    interactive_mode: str | None
    place_of_service: str


@dataclass(frozen=True)
class LatestReview:
    """The newest review of a flag and who wrote it: what the promotion gate checks."""

    review_id: int
    reviewer_id: int
    reviewer_username: str
    reviewer_role: str
    reviewer_npi: str | None
    date_of_service: date
    icd10_codes: tuple[str, ...]
    place_of_service: str
    minutes: int
    interactive: bool


def insert_review(conn: Conn, r: NewReview) -> tuple[int, datetime]:
    """Store a review; returns (review_id, reviewed_at)."""
    row = conn.execute(
        "INSERT INTO reviews (flag_id, reviewer_user_id, date_of_service, determination, icd10_codes,"
        " action_taken, minutes, interactive, interactive_mode, place_of_service)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING review_id, reviewed_at",
        (
            r.flag_id,
            r.reviewer_user_id,
            r.date_of_service,
            r.determination,
            list(r.icd10_codes),
            r.action,
            r.minutes,
            r.interactive,
            r.interactive_mode,
            r.place_of_service,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def latest_review(conn: Conn, flag_id: int) -> LatestReview | None:
    rv = conn.execute(
        "SELECT r.review_id, u.user_id, u.username, u.role, u.npi, r.date_of_service, r.icd10_codes,"
        " r.place_of_service, r.minutes, r.interactive"
        " FROM reviews r JOIN users u ON u.user_id = r.reviewer_user_id"
        " WHERE r.flag_id = %s ORDER BY r.reviewed_at DESC, r.review_id DESC LIMIT 1",
        (flag_id,),
    ).fetchone()
    if rv is None:
        return None
    review_id, reviewer_id, rname, rrole, rnpi, dos, codes, pos, minutes, interactive = rv
    return LatestReview(int(review_id), int(reviewer_id), rname, rrole, rnpi, dos, tuple(codes), pos,
                        minutes, interactive)


def reviews_of_flags(conn: Conn, flag_ids: list[int]) -> list[dict[str, Any]]:
    """The reviews of these flags, oldest first, each with its reviewer's display name."""
    return dict_rows(
        conn,
        "SELECT r.review_id, r.flag_id, r.reviewed_at, r.date_of_service, r.determination, r.icd10_codes,"
        " r.action_taken, r.minutes, r.interactive, r.interactive_mode, r.place_of_service,"
        " u.display_name AS reviewer FROM reviews r JOIN users u ON u.user_id = r.reviewer_user_id"
        " WHERE r.flag_id = ANY(%s) ORDER BY r.reviewed_at",
        (flag_ids,),
    )


def insert_review_minutes(conn: Conn, flag_id: int, user_id: int, minutes: int, at: datetime,
                          review_id: int) -> None:
    """The clinician minutes a review states, as a time log stamped ``at``."""
    conn.execute(
        "INSERT INTO time_logs (flag_id, user_id, role, minutes, logged_at, note)"
        " VALUES (%s, %s, 'clinician', %s, %s, %s)",
        (flag_id, user_id, minutes, at, f"review {review_id}"),
    )


def insert_time_log(conn: Conn, flag_id: int, user_id: int, role: str, minutes: int,
                    logged_at: datetime | None, note: str | None) -> int:
    """Minutes logged on a flag (now, when ``logged_at`` is None); returns time_log_id."""
    row = conn.execute(
        "INSERT INTO time_logs (flag_id, user_id, role, minutes, logged_at, note)"
        " VALUES (%s, %s, %s, %s, coalesce(%s, now()), %s) RETURNING time_log_id",
        (flag_id, user_id, role, minutes, logged_at, note),
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_review_contact(conn: Conn, patient_id: int, at: datetime, mode: str | None, user_id: int,
                          flag_id: int, review_id: int) -> None:
    """The real-time two-way contact a review states, as a communication stamped ``at``."""
    conn.execute(
        "INSERT INTO communications (patient_id, at, mode, two_way_realtime, by_user_id,"
        " flag_id, note) VALUES (%s, %s, %s, true, %s, %s, %s)",
        (patient_id, at, mode, user_id, flag_id, f"review {review_id}"),
    )


@dataclass(frozen=True)
class NewCommunication:
    """A contact with a patient about a flag, its kind already checked against its mode."""

    patient_id: int
    at: datetime
    mode: str
    realtime: bool
    two_way: bool
    by_user_id: int
    flag_id: int
    note: str | None


def insert_communication(conn: Conn, c: NewCommunication) -> int:
    """Store a contact; returns communication_id."""
    row = conn.execute(
        "INSERT INTO communications (patient_id, at, mode, two_way_realtime, realtime, two_way,"
        " by_user_id, flag_id, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING communication_id",
        (c.patient_id, c.at, c.mode, c.realtime and c.two_way, c.realtime, c.two_way, c.by_user_id,
         c.flag_id, c.note),
    ).fetchone()
    assert row is not None
    return int(row[0])
