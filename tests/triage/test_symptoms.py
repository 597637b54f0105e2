"""AHA crisis symptom check: the pure outcome table, the re-measure status, and the SQL record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.triage.dbseed import patient, reading
from triage.clinical import audit, symptoms
from triage.clinical.symptoms import InvalidSymptomCheck, NotACrisisFlag
from triage.errors import FlagNotFound, RoleNotAllowed
from triage.jobs import IncrementalJob
from triage.settings import Settings

Conn = psycopg.Connection[Any]
EMERGENCY = "hypertensive_emergency"
ASYMPTOMATIC = "severe_asymptomatic_hypertension"
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)

OUTCOMES = [
    (["none"], ASYMPTOMATIC, ("none",)),
    (["chest_pain"], EMERGENCY, ("chest_pain",)),
    (["shortness_of_breath"], EMERGENCY, ("shortness_of_breath",)),
    (["back_pain"], EMERGENCY, ("back_pain",)),
    (["numbness_weakness"], EMERGENCY, ("numbness_weakness",)),
    (["vision_change"], EMERGENCY, ("vision_change",)),
    (["difficulty_speaking"], EMERGENCY, ("difficulty_speaking",)),
    (["confusion"], EMERGENCY, ("confusion",)),
    (["confusion", "chest_pain", "confusion"], EMERGENCY, ("chest_pain", "confusion")),
    (["none", "none"], ASYMPTOMATIC, ("none",)),
]


@pytest.mark.parametrize(("given", "outcome", "stored"), OUTCOMES, ids=[",".join(c[0]) for c in OUTCOMES])
def test_outcome_table(given: list[str], outcome: str, stored: tuple[str, ...]) -> None:
    a = symptoms.assess(given)
    assert (a.outcome, a.symptoms) == (outcome, stored)
    assert a.call_911 is (outcome == EMERGENCY)
    assert ("Patient should call 911 now." in a.instruction) is (outcome == EMERGENCY)
    assert ("contact the clinician promptly" in a.instruction) is (outcome == ASYMPTOMATIC)


@pytest.mark.parametrize(
    "given", [[], ["none", "chest_pain"], ["headache"], ["Chest_Pain"], [""]], ids=repr
)
def test_unanswered_contradictory_or_unknown_symptoms_are_refused(given: list[str]) -> None:
    with pytest.raises(InvalidSymptomCheck) as err:
        symptoms.assess(given)
    assert err.value.field == "symptoms"


@pytest.mark.parametrize(
    ("asked_at", "ok"),
    [
        (NOW, True),
        (NOW + timedelta(minutes=4), True),  # clock skew
        (NOW + timedelta(minutes=6), False),
        (NOW - timedelta(hours=23), True),
        (NOW - timedelta(hours=25), False),
        (NOW.replace(tzinfo=None), False),
    ],
)
def test_asked_at_bounds(asked_at: datetime, ok: bool) -> None:
    if ok:
        symptoms.check_asked_at(asked_at, now=NOW, opened_at=NOW)
    else:
        with pytest.raises(InvalidSymptomCheck):
            symptoms.check_asked_at(asked_at, now=NOW, opened_at=NOW)


def test_note_is_trimmed_and_bounded() -> None:
    assert symptoms.clean_note("  ") is None and symptoms.clean_note(" said fine ") == "said fine"
    for bad in ("x" * 4001, "a\x00b"):
        with pytest.raises(InvalidSymptomCheck):
            symptoms.clean_note(bad)


_FIRST = {"reading_id": 1, "measured_at": "2026-03-10T17:50:00+00:00", "systolic_mmhg": 186.0,
          "diastolic_mmhg": 124.0}
_SECOND = {"reading_id": 2, "measured_at": "2026-03-10T17:53:00+00:00", "systolic_mmhg": 150.0,
           "diastolic_mmhg": 90.0}


@pytest.mark.parametrize(
    ("evidence", "age_min", "status", "arrived", "text"),
    [
        ({"confirmation": "pending", "items": [_FIRST]}, 3, "pending", False, "wait 1-5 minutes"),
        ({"items": [_FIRST]}, 3, "pending", False, "re-measure"),  # flags written before the rule said
        ({"confirmation": "pending", "items": [_FIRST]}, 16, "overdue", False, "re-measure now"),
        ({"confirmation": "confirmed", "items": [_FIRST, {**_SECOND, "systolic_mmhg": 188.0,
                                                          "diastolic_mmhg": 101.0}]},
         30, "confirmed", True, "188/101 mmHg"),
        ({"confirmation": "cleared", "items": [_FIRST, _SECOND]}, 30, "cleared", True, "150/90 mmHg"),
        ({}, 1, "pending", False, "1-5 minutes"),
    ],
)
def test_remeasure_status_reads_the_rules_conclusion(
    evidence: dict[str, Any], age_min: int, status: str, arrived: bool, text: str
) -> None:
    crisis_at = NOW - timedelta(minutes=age_min)
    rm = symptoms.remeasure_status(evidence, crisis_at=crisis_at, now=NOW)
    assert (rm.status, rm.arrived) == (status, arrived)
    assert text in rm.instruction
    assert (rm.remeasure_reading is not None) is arrived


# ---------------------------------------------------------------- database


def _crisis_flag(db: Conn, database_url: str) -> tuple[int, int, IncrementalJob]:
    """A real bp_crisis flag, opened by the triage job from a real reading (confirmation pending)."""
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    reading(db, pid, now - timedelta(minutes=4), sbp=186, dbp=124)
    settings = Settings.from_env({"RPMFLOW_DATABASE_URL": database_url, "RPMFLOW_TRIAGE_SHARDS": "1"})
    job = IncrementalJob(settings)
    assert job.run(db).opened == 1
    row = db.execute("SELECT flag_id FROM flags WHERE rule_id = 'bp_crisis'").fetchone()
    assert row is not None
    return int(row[0]), pid, job


def test_symptom_check_history_evidence_event_and_audit(db: Conn, database_url: str) -> None:
    flag_id, pid, job = _crisis_flag(db, database_url)
    rec = symptoms.record_symptom_check(
        db, flag_id, actor="rn.alvarez", role="nurse", symptoms=["confusion", "chest_pain"],
        note=" says tight chest ", source_ip="192.0.2.9",
    )
    assert (rec.outcome, rec.call_911, rec.state) == (EMERGENCY, True, "open")
    flag = db.execute("SELECT evidence, severity FROM flags WHERE flag_id = %s", (flag_id,)).fetchone()
    assert flag is not None
    evidence, severity = flag
    assert severity == "critical"
    sc = evidence["symptom_check"]
    assert (sc["outcome"], sc["call_911"], sc["symptoms"], sc["asked_by"]) == (
        EMERGENCY, True, ["chest_pain", "confusion"], "rn.alvarez")
    assert "Patient should call 911 now." in sc["instruction"]
    assert evidence["confirmation"] == "pending"  # the rule's conclusion is untouched

    event = db.execute(
        "SELECT actor, role, event, from_state, to_state, note FROM flag_events"
        " WHERE flag_id = %s AND event = 'annotate'", (flag_id,)
    ).fetchall()
    assert len(event) == 1 and event[0][:5] == ("rn.alvarez", "nurse", "annotate", "open", "open")
    assert "chest pain, confusion" in event[0][5] and "911" in event[0][5] and "tight chest" in event[0][5]

    entry = audit.patient_access_report(db, pid)[-1]
    assert (entry.action, entry.actor, entry.source_ip) == ("flag.symptom_check", "rn.alvarez", "192.0.2.9")
    assert entry.detail["symptom_check_id"] == rec.symptom_check_id and entry.detail["outcome"] == EMERGENCY

    # A later check is a new row; the evidence carries the latest one.
    later = symptoms.record_symptom_check(db, flag_id, actor="dr.lee", role="clinician", symptoms=["none"])
    assert later.outcome == ASYMPTOMATIC
    history = symptoms.symptom_checks(db, flag_id)
    assert [(h["symptom_check_id"], h["outcome"], h["note"]) for h in history] == [
        (later.symptom_check_id, ASYMPTOMATIC, None),
        (rec.symptom_check_id, EMERGENCY, "says tight chest"),
    ]
    latest = db.execute("SELECT evidence->'symptom_check'->>'outcome' FROM flags WHERE flag_id = %s",
                        (flag_id,)).fetchone()
    assert latest == (ASYMPTOMATIC,)
    assert audit.verify_chain(db).ok

    # The re-measure arrives: the rule confirms, and the symptom check survives the evidence merge.
    reading(db, pid, datetime.now(UTC) - timedelta(minutes=1), sbp=188, dbp=126)
    assert job.run(db).attached == 1
    ev = db.execute("SELECT evidence FROM flags WHERE flag_id = %s", (flag_id,)).fetchone()
    assert ev is not None and ev[0]["symptom_check"]["symptom_check_id"] == later.symptom_check_id
    rm = symptoms.remeasure_status(ev[0], crisis_at=None, now=datetime.now(UTC))
    assert (rm.status, rm.arrived) == ("confirmed", True) and "188/126 mmHg" in rm.instruction


def test_history_is_append_only(db: Conn, database_url: str) -> None:
    flag_id, _, _ = _crisis_flag(db, database_url)
    rec = symptoms.record_symptom_check(db, flag_id, actor="rn", role="nurse", symptoms=["back_pain"])
    for sql in ("UPDATE flag_symptom_checks SET outcome = 'severe_asymptomatic_hypertension',"
                " symptoms = '{none}'", "DELETE FROM flag_symptom_checks", "TRUNCATE flag_symptom_checks"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(sql)
    assert [h["symptom_check_id"] for h in symptoms.symptom_checks(db, flag_id)] == [rec.symptom_check_id]


def test_database_refuses_an_outcome_that_contradicts_the_symptoms(db: Conn, database_url: str) -> None:
    flag_id, _, _ = _crisis_flag(db, database_url)
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO flag_symptom_checks (flag_id, asked_by, asked_by_role, asked_at, symptoms, outcome)"
            " VALUES (%s, 'rn', 'nurse', now(), '{chest_pain}', 'severe_asymptomatic_hypertension')",
            (flag_id,),
        )


def _other_flag(db: Conn) -> int:
    pid = patient(db, assigned_from=NOW - timedelta(days=40))
    row = db.execute(
        "INSERT INTO flags (patient_id, subject_key, rule_id, severity, reason) VALUES"
        " (%s, %s, 'bp_hypotension', 'high', 'low') RETURNING flag_id", (pid, f"patient:{pid}")
    ).fetchone()
    assert row is not None
    return int(row[0])


def _nothing_written(db: Conn) -> None:
    assert db.execute("SELECT count(*) FROM flag_symptom_checks").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM flag_events WHERE event = 'annotate'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'flag.symptom_check'").fetchone() == (0,)


def test_only_crisis_flags_take_a_symptom_check(db: Conn) -> None:
    flag_id = _other_flag(db)
    with pytest.raises(NotACrisisFlag):
        symptoms.record_symptom_check(db, flag_id, actor="rn", role="nurse", symptoms=["none"])
    with pytest.raises(FlagNotFound):
        symptoms.record_symptom_check(db, 999_999_999, actor="rn", role="nurse", symptoms=["none"])
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation):  # the table says so too
        db.execute(
            "INSERT INTO flag_symptom_checks (flag_id, asked_by, asked_by_role, asked_at, symptoms, outcome)"
            " VALUES (%s, 'rn', 'nurse', now(), '{none}', 'severe_asymptomatic_hypertension')", (flag_id,)
        )
    _nothing_written(db)


@pytest.mark.parametrize("role", ["billing", "admin", "system"])
def test_only_nurses_and_clinicians_record_symptoms(db: Conn, database_url: str, role: str) -> None:
    flag_id, _, _ = _crisis_flag(db, database_url)
    with pytest.raises(RoleNotAllowed):
        symptoms.record_symptom_check(db, flag_id, actor="someone", role=role, symptoms=["none"])
    _nothing_written(db)


def test_bad_asked_at_writes_nothing(db: Conn, database_url: str) -> None:
    flag_id, _, _ = _crisis_flag(db, database_url)
    with pytest.raises(InvalidSymptomCheck):
        symptoms.record_symptom_check(db, flag_id, actor="rn", role="nurse", symptoms=["none"],
                                      asked_at=datetime.now(UTC) + timedelta(hours=1))
    _nothing_written(db)


@pytest.mark.parametrize("reported", [["chest_pain"], ["none"]])
def test_a_lower_remeasure_does_not_auto_close_a_crisis_after_a_symptom_check(
    db: Conn, database_url: str, reported: list[str]
) -> None:
    flag_id, pid, job = _crisis_flag(db, database_url)
    symptoms.record_symptom_check(db, flag_id, actor="rn", role="nurse", symptoms=reported)
    reading(db, pid, datetime.now(UTC) - timedelta(minutes=1), sbp=142, dbp=88)  # the re-measure, lower
    job.run(db)
    row = db.execute("SELECT state FROM flags WHERE flag_id = %s", (flag_id,)).fetchone()
    assert row is not None
    assert row[0] == "open", "a person closes a crisis once symptoms were asked; the job must not"
