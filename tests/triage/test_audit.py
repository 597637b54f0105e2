"""The audit trail is append-only for the application and tamper-evident for everyone."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from triage import cli as triage_cli
from triage.clinical import audit, audit_cli


def _seed(db: psycopg.Connection[Any], n: int = 5) -> None:
    for i in range(n):
        audit.record(
            db,
            actor=f"user{i}",
            action="patient.view",
            patient_id=None,
            detail={"i": i, "zero": 0, "f": 0.1, "nested": {"b": [1, 2], "a": "é"}},
            source_ip="10.0.0.1",
        )


def _tamper(db: psycopg.Connection[Any], sql: str) -> None:
    """What a superuser must do to change history: disable the guard triggers first."""
    with db.transaction():
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        db.execute(sql)
        db.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_intact_chain_verifies(db: psycopg.Connection[Any]) -> None:
    assert audit.verify_chain(db).ok  # empty chain
    _seed(db)
    report = audit.verify_chain(db)
    assert report.ok, report.problems
    assert report.rows_checked == 5 and report.head_seq == 5 and len(report.head_hash) == 64


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET actor = 'x' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
        "TRUNCATE audit_log",
    ],
)
def test_even_the_owner_cannot_change_rows_while_the_trigger_stands(
    db: psycopg.Connection[Any], sql: str
) -> None:
    _seed(db, 3)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute(sql)
    assert audit.verify_chain(db).ok


@pytest.mark.parametrize("role", ["rpmflow_triage", "rpmflow_dashboard", "rpmflow_reporting"])
@pytest.mark.parametrize(
    "sql", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"]
)
def test_service_roles_have_no_update_delete_truncate(
    db: psycopg.Connection[Any], sql: str, role: str
) -> None:
    _seed(db, 2)
    with db.transaction():
        db.execute(f"SET LOCAL ROLE {role}")
        assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"), db.transaction():
            db.execute(sql)


@pytest.mark.parametrize("role", ["rpmflow_triage", "rpmflow_dashboard"])
def test_service_roles_append_through_record(db: psycopg.Connection[Any], role: str) -> None:
    _seed(db, 2)
    with db.transaction():
        db.execute(f"SET LOCAL ROLE {role}")
        assert audit.record(db, actor="app", action="x", patient_id=None, detail={}) == 3
    assert audit.verify_chain(db).ok


def test_a_row_that_does_not_extend_the_head_is_refused(db: psycopg.Connection[Any]) -> None:
    _seed(db, 2)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="chain head"):
        db.execute(
            "INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, hash)"
            " VALUES (9, now(), 'x', 'y', '{}', repeat('0', 64), repeat('1', 64))"
        )


def test_edited_row_is_detected(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    _tamper(db, "UPDATE audit_log SET detail = jsonb_set(detail, '{zero}', '1') WHERE seq = 3")
    report = audit.verify_chain(db)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "edited")]


def test_edited_row_with_recomputed_hash_breaks_the_next_link(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    row = db.execute(
        "SELECT seq, at, actor, action, patient_id, detail, source_ip, prev_hash FROM audit_log WHERE seq = 3"
    ).fetchone()
    assert row is not None
    forged = audit.link_hash(
        row[7], audit.canonical(row[0], row[1], "mallory", row[3], row[4], row[5], row[6])
    )
    _tamper(db, f"UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE seq = 3")
    kinds = {(p.seq, p.kind) for p in audit.verify_chain(db).problems}
    assert (4, "broken_link") in kinds


def test_deleted_middle_row_is_detected(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    _tamper(db, "DELETE FROM audit_log WHERE seq = 2")
    kinds = {(p.seq, p.kind) for p in audit.verify_chain(db).problems}
    assert (2, "missing") in kinds and (3, "broken_link") in kinds


def test_deleted_tail_is_detected_by_the_head(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    _tamper(db, "DELETE FROM audit_log WHERE seq = 5")
    assert [(p.seq, p.kind) for p in audit.verify_chain(db).problems] == [(5, "truncated")]


def test_reordered_rows_are_detected(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    _tamper(
        db,
        "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 4;"
        " UPDATE audit_log SET seq = 4 WHERE seq = -2",
    )
    report = audit.verify_chain(db)
    assert not report.ok
    assert {p.seq for p in report.problems} >= {2, 4}


def test_cli_exit_codes(
    db: psycopg.Connection[Any], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(db, 3)
    assert audit_cli.audit_verify_main(["--database-url", database_url]) == 0
    assert "intact" in capsys.readouterr().out
    _tamper(db, "UPDATE audit_log SET action = 'forged' WHERE seq = 1")
    assert audit_cli.audit_verify_main(["--database-url", database_url, "--json"]) == 1
    assert '"ok": false' in capsys.readouterr().out


def test_patient_access_report(db: psycopg.Connection[Any]) -> None:
    pid = db.execute(
        "INSERT INTO patients (mrn, display_name, state) VALUES ('M1', 'P', 'NY') RETURNING patient_id"
    ).fetchone()
    assert pid is not None
    audit.record(db, actor="nurse1", action="patient.view", patient_id=pid[0], detail={})
    audit.record(db, actor="nurse2", action="patient.view", patient_id=None, detail={})
    assert [e.actor for e in audit.patient_access_report(db, pid[0])] == ["nurse1"]


@pytest.mark.parametrize("command", [["audit-verify"], ["audit-anchor", "--file", "anchors.jsonl"]])
def test_audit_commands_take_the_database_url_like_the_service(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Same flag and help as ``once``; a missing URL is the loader's one line and exit 2."""
    helps = []
    for argv in (["once", "--help"], [command[0], "--help"]):
        with pytest.raises(SystemExit) as done:
            triage_cli.main(argv, {})
        assert done.value.code == 0
        helps.append(" ".join(capsys.readouterr().out.split()))
    wanted = "--database-url DATABASE_URL PostgreSQL URL postgresql://user:password@host:port/database " \
             "[env RPMFLOW_DATABASE_URL; default required]"
    assert wanted in helps[0] and wanted in helps[1], helps
    assert triage_cli.main(command, {}) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rpmflow-triage: configuration error: RPMFLOW_DATABASE_URL (flag --database-url): "
                   "required: PostgreSQL URL postgresql://user:password@host:port/database"], err
