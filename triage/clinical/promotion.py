"""THE one place a reviewed flag becomes a billable telemedicine event (DOMAIN D0, H10).

``check_promotion`` is pure: it takes the facts gathered by SQL and returns every reason to refuse,
each with a message a clinician can act on. ``promote`` gathers the facts under a row lock, and,
when nothing refuses, fires ``promote`` through the lifecycle and inserts the ``billable_events``
row in the same transaction. The database re-checks the same gate in triggers (migration 0032), so
a bug here, or hand-written SQL, still cannot create an unreviewed billable event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import psycopg

from triage import flags_store, lifecycle
from triage.clinical import audit, consent_store, flag_rows, icd10, reviews_store
from triage.clinical.review import load_actor
from triage.errors import TerminalTriageError


@dataclass(frozen=True)
class Refusal:
    code: str  # stable key: 'not_found' | 'already_promoted' | 'not_reviewed' | 'actor_not_clinician' | ...
    message: str


class PromotionRefused(TerminalTriageError):
    """The flag cannot be promoted; ``reasons`` holds every message, ``refusals`` the codes too."""

    def __init__(self, reasons: list[str], refusals: list[Refusal] | None = None) -> None:
        super().__init__("promotion refused: " + "; ".join(reasons))
        self.reasons = reasons
        self.refusals = refusals or [Refusal("refused", r) for r in reasons]


@dataclass(frozen=True)
class Licence:
    state: str
    valid_from: date
    valid_to: date


@dataclass(frozen=True)
class ConsentFact:
    consented_on: date  # patient-local date
    revoked_on: date | None
    version: str


@dataclass(frozen=True)
class EnrolmentFact:
    start_date: date
    end_date: date | None


@dataclass(frozen=True)
class PromotionFacts:
    """Everything the gate looks at, as plain values."""

    flag_id: int
    flag_exists: bool = True
    flag_state: str | None = None
    patient_mrn: str | None = None
    patient_state: str | None = None
    actor_username: str = ""
    actor_role: str = ""
    review_id: int | None = None
    reviewer_username: str | None = None
    reviewer_role: str | None = None
    reviewer_npi: str | None = None
    date_of_service: date | None = None
    icd10_codes: tuple[str, ...] = ()
    licences: tuple[Licence, ...] = ()
    consents: tuple[ConsentFact, ...] = ()
    enrolments: tuple[EnrolmentFact, ...] = ()
    already_promoted_event_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _licence_refusal(f: PromotionFacts, dos: date) -> Refusal | None:
    st = f.patient_state or "??"
    who = f.reviewer_username
    in_state = [lic for lic in f.licences if lic.state == st]
    if any(lic.valid_from <= dos <= lic.valid_to for lic in in_state):
        return None
    expired = [lic for lic in in_state if lic.valid_to < dos]
    if expired:
        last = max(lic.valid_to for lic in expired)
        return Refusal(
            "licence_expired",
            f"reviewer {who}'s licence in {st} expired on {last.isoformat()}"
            f" (date of service {dos.isoformat()})",
        )
    future = [lic for lic in in_state if lic.valid_from > dos]
    if future:
        first = min(lic.valid_from for lic in future)
        return Refusal(
            "licence_not_yet_valid",
            f"reviewer {who}'s licence in {st} is valid only from {first.isoformat()}"
            f" (date of service {dos.isoformat()})",
        )
    return Refusal("not_licensed", f"reviewer {who} is not licensed in {st} on {dos.isoformat()}")


def _consent_refusal(f: PromotionFacts, dos: date) -> Refusal | None:
    if not f.consents:
        return Refusal("no_consent", f"no consent on file for patient {f.patient_mrn}")
    valid = [c for c in f.consents if c.consented_on <= dos and (c.revoked_on is None or c.revoked_on > dos)]
    if valid:
        return None
    before = [c for c in f.consents if c.consented_on <= dos]
    if before:
        revoked = max(c.revoked_on for c in before if c.revoked_on is not None)
        return Refusal(
            "consent_revoked",
            f"consent was revoked on {revoked.isoformat()}, on/before the date of service {dos.isoformat()}",
        )
    first = min(c.consented_on for c in f.consents)
    return Refusal(
        "consent_after_service",
        f"consent recorded on {first.isoformat()}, after the date of service {dos.isoformat()}",
    )


def check_promotion(facts: PromotionFacts) -> list[Refusal]:
    """Every reason this flag may not become billable now (empty list: it may)."""
    f = facts
    if not f.flag_exists:
        return [Refusal("not_found", f"flag {f.flag_id} does not exist")]
    out: list[Refusal] = []
    if f.already_promoted_event_id is not None or f.flag_state == lifecycle.PROMOTED:
        out.append(
            Refusal(
                "already_promoted",
                f"flag {f.flag_id} is already promoted (billable event {f.already_promoted_event_id})",
            )
        )
        return out
    if f.actor_role != "clinician":
        out.append(
            Refusal(
                "actor_not_clinician",
                f"{f.actor_username} is not a clinician (role {f.actor_role}): only a clinician promotes",
            )
        )
    if f.review_id is None:
        out.append(Refusal("not_reviewed", f"flag {f.flag_id} has not been reviewed by a clinician"))
        return out
    if f.flag_state != lifecycle.REVIEWED:
        out.append(Refusal("not_reviewed", f"flag {f.flag_id} is {f.flag_state}, not reviewed"))
    if f.reviewer_role != "clinician":
        out.append(
            Refusal(
                "reviewer_not_clinician",
                f"reviewer {f.reviewer_username} is not a clinician (role {f.reviewer_role})",
            )
        )
    if not f.reviewer_npi:
        out.append(Refusal("no_npi", f"reviewer {f.reviewer_username} has no NPI on file"))
    if not f.icd10_codes or not all(icd10.is_valid(c) for c in f.icd10_codes):
        out.append(Refusal("no_icd10", f"review {f.review_id} carries no valid ICD-10 code"))
    dos = f.date_of_service
    assert dos is not None
    for refusal in (_licence_refusal(f, dos), _consent_refusal(f, dos)):
        if refusal is not None:
            out.append(refusal)
    if not any(e.start_date <= dos and (e.end_date is None or e.end_date >= dos) for e in f.enrolments):
        out.append(
            Refusal("not_enrolled", f"patient {f.patient_mrn} is not enrolled in RPM on {dos.isoformat()}")
        )
    return out


def gather_facts(conn: psycopg.Connection[Any], flag_id: int, actor_user_id: int) -> PromotionFacts:
    """Read (and lock) what the gate needs. Call inside a transaction."""
    actor = load_actor(conn, actor_user_id)
    flag = flag_rows.lock_for_promotion(conn, flag_id)
    if flag is None:
        return PromotionFacts(
            flag_id, flag_exists=False, actor_username=actor.username, actor_role=actor.role
        )
    state, patient_id, mrn, pstate, tz = flag
    be = conn.execute(
        "SELECT billable_event_id FROM billable_events WHERE flag_id = %s", (flag_id,)
    ).fetchone()
    base = PromotionFacts(
        flag_id,
        flag_state=state,
        patient_mrn=mrn,
        patient_state=pstate,
        actor_username=actor.username,
        actor_role=actor.role,
        already_promoted_event_id=None if be is None else int(be[0]),
        extra={"patient_id": patient_id},
    )
    rv = reviews_store.latest_review(conn, flag_id)
    if rv is None:
        return base
    return _reviewed_facts(conn, base, rv, patient_id, pstate, tz)


def _reviewed_facts(
    conn: psycopg.Connection[Any], base: PromotionFacts, rv: reviews_store.LatestReview,
    patient_id: int | None, pstate: str, tz: str,
) -> PromotionFacts:
    """``base`` with the review and what is checked against its date of service."""
    dos = rv.date_of_service
    # G14: licensure against where the patient was on the date of service (patient_locations).
    located = conn.execute("SELECT rpm_patient_state_on(%s, %s)", (patient_id, dos)).fetchone()
    pstate = located[0] if located is not None and located[0] is not None else pstate
    licences = consent_store.licences(conn, rv.reviewer_id)
    consents = consent_store.consent_dates(conn, patient_id, tz)
    enrolments = consent_store.enrolment_spans(conn, patient_id)
    return replace(
        base,
        patient_state=pstate,
        review_id=rv.review_id,
        reviewer_username=rv.reviewer_username,
        reviewer_role=rv.reviewer_role,
        reviewer_npi=rv.reviewer_npi,
        date_of_service=dos,
        icd10_codes=rv.icd10_codes,
        licences=tuple(Licence(s, a, b) for s, a, b in licences),
        consents=tuple(ConsentFact(a, b, v) for a, b, v in consents),
        enrolments=tuple(EnrolmentFact(a, b) for a, b in enrolments),
        extra={
            "patient_id": patient_id,
            "place_of_service": rv.place_of_service,
            "minutes": rv.minutes,
            "interactive": rv.interactive,
        },
    )


def promote(
    conn: psycopg.Connection[Any], flag_id: int, actor_user_id: int, *, source_ip: str | None = None
) -> int:
    """Promote a reviewed flag; returns the billable_event_id or raises :class:`PromotionRefused`."""
    with conn.transaction():
        facts = gather_facts(conn, flag_id, actor_user_id)
        refusals = check_promotion(facts)
        if not refusals:
            return _insert_event(conn, facts, actor_user_id, source_ip)
    audit.record(
        conn,
        actor=facts.actor_username,
        action="flag.promotion_refused",
        patient_id=facts.extra.get("patient_id"),
        detail={"flag_id": flag_id, "reasons": [r.code for r in refusals]},
        source_ip=source_ip,
    )
    raise PromotionRefused([r.message for r in refusals], refusals)


def _insert_event(
    conn: psycopg.Connection[Any], f: PromotionFacts, actor_user_id: int, source_ip: str | None
) -> int:
    flags_store.apply_event(
        conn, f.flag_id, "promote", f.actor_username, f.actor_role, note=f"review {f.review_id}"
    )
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO billable_events (flag_id, review_id, patient_id, date_of_service, rendering_npi,"
                " place_of_service, icd10_codes, minutes, interactive, promoted_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING billable_event_id",
                (
                    f.flag_id,
                    f.review_id,
                    f.extra["patient_id"],
                    f.date_of_service,
                    f.reviewer_npi,
                    f.extra["place_of_service"],
                    list(f.icd10_codes),
                    f.extra["minutes"],
                    f.extra["interactive"],
                    actor_user_id,
                ),
            ).fetchone()
    except psycopg.errors.IntegrityConstraintViolation as exc:  # the database gate disagreed
        diag = exc.diag.message_primary or str(exc)
        raise PromotionRefused([diag], [Refusal("database_gate", diag)]) from exc
    assert row is not None
    event_id = int(row[0])
    audit.record(
        conn,
        actor=f.actor_username,
        action="flag.promote",
        patient_id=f.extra["patient_id"],
        detail={
            "flag_id": f.flag_id,
            "review_id": f.review_id,
            "billable_event_id": event_id,
            "date_of_service": f.date_of_service.isoformat() if f.date_of_service else None,
            "rendering_npi": f.reviewer_npi,
            "icd10_codes": list(f.icd10_codes),
        },
        source_ip=source_ip,
    )
    return event_id
