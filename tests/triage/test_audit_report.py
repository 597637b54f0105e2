"""The "who viewed my data" report: direct and listed accesses, per-row integrity, tamper shows."""

from __future__ import annotations

from typing import Any

import psycopg

from triage.clinical import audit


def _seed(db: psycopg.Connection[Any]) -> None:
    rows: list[tuple[str, str, int | None, dict[str, Any], str | None]] = [
        (
            "rn.a",
            "view:queue",
            None,
            {"role": "nurse", "via": "session", "patient_ids": [7, 8, 9]},
            "10.0.0.5",
        ),
        ("dr.b", "view:patient", 7, {"role": "clinician", "via": "session", "days": 30}, "10.0.0.6"),
        ("dr.b", "view:patient", 8, {"role": "clinician", "via": "session"}, "10.0.0.6"),  # not ours
        ("dr.b", "flag.review", 7, {"flag_id": 3, "minutes": 0}, None),
        (
            "bill.c",
            "billing.export_fhir",
            None,
            {"role": "billing", "via": "token", "patient_ids": [7]},
            "10.0.0.7",
        ),
        ("bill.c", "view:billing", None, {"role": "billing", "via": "token", "patient_ids": [70, 77]}, None),
    ]
    for actor, action, pid, detail, ip in rows:
        audit.record(db, actor=actor, action=action, patient_id=pid, detail=detail, source_ip=ip)


def _tamper(db: psycopg.Connection[Any], sql: str) -> None:
    with db.transaction():
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        db.execute(sql)
        db.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_report_lists_direct_and_listed_accesses(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    report = audit.patient_access(db, 7)
    assert report.ok and report.chain.ok and report.chain.head_seq == 6
    assert [(e.entry.seq, e.entry.actor, e.kind, e.direct) for e in report.events] == [
        (1, "rn.a", "view", False),
        (2, "dr.b", "view", True),
        (4, "dr.b", "change", True),
        (5, "bill.c", "export", False),
    ]
    queue = report.events[0]
    assert queue.role == "nurse" and queue.via == "session" and queue.entry.source_ip == "10.0.0.5"
    assert queue.public_detail() == {"patients_listed": 3}  # other patients' ids are not shown
    assert report.events[1].public_detail() == {"days": 30}
    assert report.events[2].role is None  # triage writes carry no dashboard role
    assert audit.patient_access(db, 12345).events == []
    assert db.isolation_level is None  # the snapshot left the connection as it found it


def test_edited_row_about_the_patient_is_not_intact(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    _tamper(db, "UPDATE audit_log SET source_ip = '203.0.113.9' WHERE seq = 2")
    report = audit.patient_access(db, 7)
    assert not report.ok and not report.chain.ok
    assert [e.entry.seq for e in report.events if not e.intact] == [2]


def test_forged_rehash_is_caught_through_the_next_link(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    row = db.execute(
        "SELECT seq, at, actor, action, patient_id, detail, source_ip, prev_hash FROM audit_log WHERE seq = 2"
    ).fetchone()
    assert row is not None
    forged = audit.link_hash(
        row[7], audit.canonical(row[0], row[1], "someone.else", row[3], row[4], row[5], row[6])
    )
    _tamper(db, f"UPDATE audit_log SET actor = 'someone.else', hash = '{forged}' WHERE seq = 2")
    report = audit.patient_access(db, 7)
    assert not report.ok
    assert [(e.entry.seq, e.entry.actor, e.intact) for e in report.events][1] == (2, "someone.else", False)


def test_deleted_row_about_the_patient_shows_in_the_chain(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    _tamper(db, "DELETE FROM audit_log WHERE seq = 4")
    report = audit.patient_access(db, 7)
    assert [e.entry.seq for e in report.events] == [1, 2, 5]
    assert not report.ok and {p.kind for p in report.chain.problems} >= {"missing"}


def test_chain_status_matches_verify_chain_inside_and_outside_a_transaction(
    db: psycopg.Connection[Any],
) -> None:
    _seed(db)
    assert audit.chain_status(db) == audit.verify_chain(db)
    with db.transaction():
        audit.record(db, actor="x", action="view:patient", patient_id=7, detail={})
        status = audit.chain_status(db)  # the caller's transaction sees its own row
    assert status.ok and status.head_seq == 7
    assert (
        audit.access_kind("view:readings") == "view" and audit.access_kind("billing.export_csv") == "export"
    )
    assert audit.access_kind("patient.consent") == "change"
