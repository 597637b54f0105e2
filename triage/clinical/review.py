"""Clinician review of a flag, and the time and communications logged on flags.

A review is the clinical act that can later make a flag billable (DOMAIN D0): determination,
ICD-10 codes, action, minutes, whether a real-time two-way communication happened, POS and date of
service. The transition itself is decided by :mod:`triage.lifecycle` through
``triage.flags_store.apply_event`` (only a clinician may ``review``); the database refuses review
rows from anyone else as well. Each call is one transaction including its audit row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from triage import flags_store
from triage.clinical import audit, flag_rows, icd10, people_store, reviews_store
from triage.errors import TerminalTriageError

INTERACTIVE_MODES = ("video", "phone", "portal_live_chat")
# How each kind of contact is held: (real-time possible, two-way possible). Only real-time AND
# two-way counts as the interactive communication of 99470/99457 (DOMAIN G12).
COMMUNICATION_KINDS: dict[str, tuple[bool, bool]] = {
    "phone": (True, True),
    "video": (True, True),
    "portal_live_chat": (True, True),
    "portal_message": (False, True),  # asynchronous portal message
    "voicemail": (False, False),
    "sms": (False, True),
    "one_way_alert": (False, False),
    "staff_only": (False, False),
}
COMMUNICATION_MODES = tuple(COMMUNICATION_KINDS)
_POS = re.compile(r"^[0-9]{2}$")


class ReviewRejected(TerminalTriageError):
    """A review, time log or communication whose content cannot be recorded."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownUser(TerminalTriageError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"no active user {user_id}")
        self.user_id = user_id


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    role: str
    npi: str | None


def load_actor(conn: psycopg.Connection[Any], user_id: int) -> Actor:
    row = people_store.active_actor(conn, user_id)
    if row is None:
        raise UnknownUser(user_id)
    return Actor(*row)


def _service_instant(now: datetime, tz: str, date_of_service: date) -> datetime:
    """When to stamp time/communication rows: now, or local noon of a back-dated service day."""
    zone = ZoneInfo(tz)
    if now.astimezone(zone).date() == date_of_service:
        return now
    return datetime.combine(date_of_service, time(12), zone)


def validate_review(
    *,
    determination: str,
    icd10_codes: Sequence[str],
    action: str,
    minutes: int,
    interactive: bool,
    interactive_mode: str | None,
    place_of_service: str,
) -> list[str]:
    """Pure checks of a review's content; returns the normalised ICD-10 codes."""
    if not determination.strip():
        raise ReviewRejected("determination", "is required")
    if not action.strip():
        raise ReviewRejected("action", "is required")
    try:
        codes = icd10.validate_codes(icd10_codes)
    except icd10.InvalidICD10 as exc:
        raise ReviewRejected("icd10_codes", str(exc)) from None
    if not 0 <= minutes <= 24 * 60:
        raise ReviewRejected("minutes", f"{minutes} is outside 0..1440")
    if interactive and interactive_mode not in INTERACTIVE_MODES:
        raise ReviewRejected(
            "interactive_mode",
            f"{interactive_mode!r}: a real-time two-way mode is one of {INTERACTIVE_MODES}",
        )
    if not interactive and interactive_mode is not None:
        raise ReviewRejected("interactive_mode", "given for a review without interactive communication")
    if not _POS.match(place_of_service):
        raise ReviewRejected("place_of_service", f"{place_of_service!r} is not a two-digit CMS POS code")
    return codes


def record_review(
    conn: psycopg.Connection[Any],
    flag_id: int,
    reviewer_user_id: int,
    *,
    determination: str,
    icd10_codes: Sequence[str],
    action: str,
    minutes: int,
    interactive: bool,
    interactive_mode: str | None,
    place_of_service: str,
    date_of_service: date,
    source_ip: str | None = None,
) -> int:
    """Fire ``review`` and store the review (plus its minutes and communication); returns review_id."""
    codes = validate_review(
        determination=determination,
        icd10_codes=icd10_codes,
        action=action,
        minutes=minutes,
        interactive=interactive,
        interactive_mode=interactive_mode,
        place_of_service=place_of_service,
    )
    with conn.transaction():
        actor = load_actor(conn, reviewer_user_id)
        flags_store.apply_event(conn, flag_id, "review", actor.username, actor.role, note=determination)
        patient_id, tz = flag_rows.patient_and_timezone(conn, flag_id)
        review = reviews_store.NewReview(
            flag_id, actor.user_id, date_of_service, determination, codes, action, minutes, interactive,
            interactive_mode, place_of_service,
        )
        review_id, reviewed_at = reviews_store.insert_review(conn, review)
        at = _service_instant(reviewed_at, tz, date_of_service)
        _log_review_extras(conn, review, review_id, patient_id, at)
        audit.record(
            conn,
            actor=actor.username,
            action="flag.review",
            patient_id=patient_id,
            detail=_review_detail(review, review_id),
            source_ip=source_ip,
        )
    return review_id


def _log_review_extras(
    conn: psycopg.Connection[Any], r: reviews_store.NewReview, review_id: int, patient_id: int | None,
    at: datetime,
) -> None:
    """The minutes and the interactive contact a review states, stamped ``at``."""
    if r.minutes > 0:
        reviews_store.insert_review_minutes(conn, r.flag_id, r.reviewer_user_id, r.minutes, at, review_id)
    if r.interactive and patient_id is not None:
        reviews_store.insert_review_contact(
            conn, patient_id, at, r.interactive_mode, r.reviewer_user_id, r.flag_id, review_id
        )


def _review_detail(r: reviews_store.NewReview, review_id: int) -> dict[str, Any]:
    return {
        "flag_id": r.flag_id,
        "review_id": review_id,
        "date_of_service": r.date_of_service.isoformat(),
        "icd10_codes": list(r.icd10_codes),
        "minutes": r.minutes,
        "interactive": r.interactive,
        "interactive_mode": r.interactive_mode,
        "place_of_service": r.place_of_service,
    }


def log_time(
    conn: psycopg.Connection[Any],
    flag_id: int,
    user_id: int,
    minutes: int,
    *,
    note: str | None = None,
    logged_at: datetime | None = None,
    source_ip: str | None = None,
) -> int:
    """Nurse or clinician treatment-management minutes on a flag; returns time_log_id.

    They count toward the month only once a clinician promotes the flag (DOMAIN D0).
    """
    if logged_at is not None and logged_at.tzinfo is None:
        raise ReviewRejected("logged_at", "must be timezone-aware")
    with conn.transaction():
        actor = load_actor(conn, user_id)
        flags_store.apply_event(
            conn, flag_id, "log_time", actor.username, actor.role, note=note, minutes=minutes
        )
        patient_id, _ = flag_rows.patient_and_timezone(conn, flag_id)
        time_log_id = reviews_store.insert_time_log(
            conn, flag_id, actor.user_id, actor.role, minutes, logged_at, note
        )
        audit.record(
            conn,
            actor=actor.username,
            action="flag.log_time",
            patient_id=patient_id,
            detail={"flag_id": flag_id, "minutes": minutes, "time_log_id": time_log_id},
            source_ip=source_ip,
        )
    return time_log_id


def record_communication(
    conn: psycopg.Connection[Any],
    flag_id: int,
    user_id: int,
    *,
    at: datetime,
    mode: str,
    two_way_realtime: bool | None = None,
    note: str | None = None,
    source_ip: str | None = None,
    realtime: bool | None = None,
    two_way: bool | None = None,
) -> int:
    """A contact with the patient about a flag, with whether it was real-time and two-way.

    Unstated, both follow the mode (:data:`COMMUNICATION_KINDS`); ``two_way_realtime`` states both
    at once. A mode that cannot be real-time or two-way (voicemail, an asynchronous portal
    message) is refused if claimed so. Only real-time two-way contact on a promoted flag counts
    as the interactive communication of 99470/99457 (G12).
    """
    if at.tzinfo is None:
        raise ReviewRejected("at", "must be timezone-aware")
    realtime, two_way = communication_kind(mode, two_way_realtime, realtime, two_way)
    with conn.transaction():
        actor = load_actor(conn, user_id)
        flags_store.apply_event(
            conn,
            flag_id,
            "annotate",
            actor.username,
            actor.role,
            note=f"communication ({mode}){': ' + note if note else ''}",
        )
        patient_id, _ = flag_rows.patient_and_timezone(conn, flag_id)
        if patient_id is None:
            raise ReviewRejected("flag_id", f"flag {flag_id} has no patient")
        communication_id = reviews_store.insert_communication(
            conn,
            reviews_store.NewCommunication(
                patient_id, at, mode, realtime, two_way, actor.user_id, flag_id, note
            ),
        )
        audit.record(
            conn,
            actor=actor.username,
            action="flag.communication",
            patient_id=patient_id,
            detail={
                "flag_id": flag_id,
                "communication_id": communication_id,
                "mode": mode,
                "realtime": realtime,
                "two_way": two_way,
            },
            source_ip=source_ip,
        )
    return communication_id


def communication_kind(
    mode: str, two_way_realtime: bool | None, realtime: bool | None, two_way: bool | None
) -> tuple[bool, bool]:
    """(realtime, two_way) of a contact: stated values checked against what the mode allows."""
    if mode not in COMMUNICATION_KINDS:
        raise ReviewRejected("mode", f"{mode!r} is not one of {COMMUNICATION_MODES}")
    can_rt, can_2w = COMMUNICATION_KINDS[mode]
    if two_way_realtime is not None:
        realtime = two_way_realtime if realtime is None else realtime
        two_way = two_way_realtime if two_way is None else two_way
    rt = can_rt if realtime is None else realtime
    tw = can_2w if two_way is None else two_way
    if rt and not can_rt:
        raise ReviewRejected("realtime", f"a {mode} is not a real-time exchange")
    if tw and not can_2w:
        raise ReviewRejected("two_way", f"a {mode} is not a two-way exchange")
    return rt, tw
