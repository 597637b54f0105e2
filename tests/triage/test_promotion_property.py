"""Property: no sequence of calls yields a billable event without a qualifying clinician review.

Hypothesis drives arbitrary mixes of lifecycle events (any role), reviews by anyone, promotions by
anyone and raw SQL that tries to skip the gate. After each sequence, every billable event and
every promoted flag is checked against an independent reading of the rule (Python, not the trigger).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.triage.rpm_seed import World, make_world, new_flag
from triage import lifecycle
from triage.clinical import promotion, review
from triage.errors import TriageError
from triage.flags_store import apply_event

USERS = ("nurse", "clinician", "clinician2", "out_of_state", "expired", "billing", "admin")
DATES = st.integers(min_value=0, max_value=120).map(lambda n: date(2025, 12, 1) + timedelta(days=n))

op = st.one_of(
    st.tuples(
        st.just("event"), st.sampled_from(lifecycle.EVENTS), st.sampled_from((*lifecycle.ROLES, "billing"))
    ),
    st.tuples(st.just("review"), st.sampled_from(USERS), DATES),
    st.tuples(st.just("promote"), st.sampled_from(USERS)),
    st.tuples(st.just("raw_state"), st.just("promoted")),
    st.tuples(st.just("raw_event"), DATES),
)


def _run(db: psycopg.Connection[Any], w: World, flag: int, step: tuple[Any, ...]) -> None:
    kind = step[0]
    try:
        if kind == "event":
            _, event, role = step
            apply_event(
                db,
                flag,
                event,
                f"someone-{role}",
                role,
                note="n",
                disposition="acted" if event in ("close", "dismiss") else None,
                minutes=5 if event == "log_time" else None,
            )
        elif kind == "review":
            review.record_review(
                db,
                flag,
                getattr(w, step[1]),
                determination="d",
                icd10_codes=["I10"],
                action="a",
                minutes=20,
                interactive=True,
                interactive_mode="phone",
                place_of_service="11",
                date_of_service=step[2],
            )
        elif kind == "promote":
            promotion.promote(db, flag, getattr(w, step[1]))
        elif kind == "raw_state":
            db.execute("UPDATE flags SET state = 'promoted' WHERE flag_id = %s", (flag,))
        else:
            rid = db.execute("SELECT max(review_id) FROM reviews WHERE flag_id = %s", (flag,)).fetchone()
            db.execute(
                "INSERT INTO billable_events (flag_id, review_id, patient_id, date_of_service,"
                " rendering_npi, place_of_service, icd10_codes, minutes, interactive)"
                " VALUES (%s, %s, %s, %s, '1234567893', '11', '{I10}', 0, false)",
                (flag, rid[0] if rid else None, w.patient_id, step[1]),
            )
    except (TriageError, psycopg.IntegrityError):
        pass


def _qualifies(db: psycopg.Connection[Any], review_id: int) -> bool:
    """Independent reading of the rule, in Python over plain rows."""
    row = db.execute(
        "SELECT u.role, r.reviewer_user_id, r.date_of_service, p.state, p.timezone, p.patient_id"
        " FROM reviews r JOIN users u ON u.user_id = r.reviewer_user_id JOIN flags f ON f.flag_id = r.flag_id"
        " JOIN patients p ON p.patient_id = f.patient_id WHERE r.review_id = %s",
        (review_id,),
    ).fetchone()
    assert row is not None
    role, uid, dos, state, tz, pid = row
    licences = db.execute(
        "SELECT state, valid_from, valid_to FROM clinician_licenses WHERE user_id = %s", (uid,)
    ).fetchall()
    consents = db.execute(
        "SELECT (consented_at AT TIME ZONE %s)::date FROM consents WHERE patient_id = %s"
        " AND revoked_at IS NULL",
        (tz, pid),
    ).fetchall()
    enrolments = db.execute(
        "SELECT start_date, end_date FROM enrolments WHERE patient_id = %s", (pid,)
    ).fetchall()
    return (
        role == "clinician"
        and any(s == state and a <= dos <= b for s, a, b in licences)
        and any(c <= dos for (c,) in consents)
        and any(a <= dos and (b is None or dos <= b) for a, b in enrolments)
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(op, min_size=1, max_size=8), consent=st.booleans())
@example(steps=[("review", "clinician", date(2026, 2, 1)), ("promote", "clinician")], consent=True)
@example(
    steps=[
        ("review", "out_of_state", date(2026, 2, 1)),
        ("raw_state", "promoted"),
        ("raw_event", date(2026, 2, 1)),
    ],
    consent=True,
)
def test_no_billable_event_without_qualifying_review(
    db: psycopg.Connection[Any], steps: list[tuple[Any, ...]], consent: bool
) -> None:
    worlds = getattr(test_no_billable_event_without_qualifying_review, "_worlds", {})
    key = (id(db), consent)
    if key not in worlds:
        worlds[key] = make_world(db) if consent else make_world(db, consent_at=None)
        test_no_billable_event_without_qualifying_review._worlds = worlds  # type: ignore[attr-defined]
    w = worlds[key]
    flag = new_flag(db, w.patient_id)
    for step in steps:
        _run(db, w, flag, step)
    for review_id, state in db.execute(
        "SELECT b.review_id, f.state FROM billable_events b JOIN flags f USING (flag_id)"
        " WHERE b.flag_id = %s",
        (flag,),
    ).fetchall():
        assert state == "promoted"
        assert _qualifies(db, review_id), steps
    state = db.execute("SELECT state FROM flags WHERE flag_id = %s", (flag,)).fetchone()
    if state == ("promoted",):
        reviews = [r for (r,) in db.execute("SELECT review_id FROM reviews WHERE flag_id = %s", (flag,))]
        assert any(_qualifies(db, r) for r in reviews), steps
