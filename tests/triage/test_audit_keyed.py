"""Issue 14: a keyed chain and an anchored head catch rewrites by someone with only database access."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.waiting import wait_for
from triage.clinical import audit, audit_cli, audit_key
from triage.clinical.audit_anchor import anchor, check_anchors
from triage.service import TriageService
from triage.settings import Settings

KEY = b"k" * 40
Conn = psycopg.Connection[Any]


@pytest.fixture
def keyed() -> Iterator[bytes]:
    audit_key.use_key(KEY)
    yield KEY
    audit_key.use_key(None)


def _seed(db: Conn, n: int) -> None:
    for i in range(n):
        audit.record(db, actor=f"user{i}", action="view:patient", patient_id=7, detail={"i": i})


def _rechain_from(db: Conn, seq: int, link: Any, alg: str) -> None:
    """The attacker: edit row ``seq`` and recompute every link after it, as a superuser would."""
    rows = db.execute("SELECT seq, at, actor, action, patient_id, detail, source_ip, prev_hash FROM audit_log"
                      " WHERE seq >= %s ORDER BY seq", (seq,)).fetchall()
    with db.transaction():
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        prev = rows[0][7]
        for s, at, _actor, action, pid, detail, ip, _ in rows:
            actor = "nobody" if s == seq else _actor
            h = link(prev, audit.canonical(s, at, actor, action, pid, detail, ip))
            db.execute("UPDATE audit_log SET actor = %s, prev_hash = %s, hash = %s, alg = %s WHERE seq = %s",
                       (actor, prev, h, alg, s))
            prev = h
        db.execute("UPDATE audit_chain_head SET last_hash = %s", (prev,))
        db.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_keyed_rows_verify_only_with_the_key(db: Conn, keyed: bytes) -> None:
    _seed(db, 3)
    assert [r[0] for r in db.execute("SELECT alg FROM audit_log ORDER BY seq")] == ["hmac-sha256"] * 3
    assert audit.verify_chain(db).ok
    no_key = audit.verify_chain(db, key=None)
    assert {p.kind for p in no_key.problems} == {"unverifiable"}


def test_a_plain_sha256_rechain_is_a_downgrade(db: Conn, keyed: bytes) -> None:
    _seed(db, 5)
    _rechain_from(db, 3, lambda prev, c: hashlib.sha256(prev.encode() + c).hexdigest(), "sha256")
    kinds = {(p.seq, p.kind) for p in audit.verify_chain(db).problems}
    assert (3, "downgraded") in kinds


def test_a_rechain_with_another_key_is_caught(db: Conn, keyed: bytes) -> None:
    _seed(db, 5)
    _rechain_from(db, 2, lambda prev, c: audit_key.link(prev, c, b"guess" * 8), "hmac-sha256")
    report = audit.verify_chain(db)
    assert not report.ok and {p.kind for p in report.problems} == {"edited"}
    assert min(p.seq for p in report.problems) == 2


def test_an_anchor_catches_a_deleted_tail_with_a_moved_head(
    db: Conn, keyed: bytes, tmp_path: Path, database_url: str
) -> None:
    _seed(db, 5)
    path = tmp_path / "anchors.jsonl"
    assert anchor(db, path, KEY) is not None and anchor(db, path, KEY) is None  # once per head
    assert path.stat().st_mode & 0o777 == 0o600
    row3 = db.execute("SELECT hash FROM audit_log WHERE seq = 3").fetchone()
    assert row3 is not None
    with db.transaction():
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        db.execute("DELETE FROM audit_log WHERE seq > 3")
        db.execute("UPDATE audit_chain_head SET last_seq = 3, last_hash = %s", (row3[0],))
        db.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    report = audit.verify_chain(db)
    assert report.ok  # the database alone cannot tell...
    assert [p.kind for p in check_anchors(db, path, KEY, report)] == ["truncated"]  # ...the anchor can
    assert audit_cli.audit_verify_main(["--database-url", database_url, "--anchor-file", str(path)]) == 1


def test_a_forged_anchor_line_is_reported(db: Conn, keyed: bytes, tmp_path: Path) -> None:
    _seed(db, 2)
    path = tmp_path / "anchors.jsonl"
    anchor(db, path, KEY)
    line = json.loads(path.read_text())
    line["seq"] = 1
    path.write_text(json.dumps(line) + "\n")
    report = audit.verify_chain(db)
    assert [p.kind for p in check_anchors(db, path, KEY, report)] == ["anchor_forged"]


def test_the_triage_service_anchors_the_head_at_an_interval(
    db: Conn, keyed: bytes, tmp_path: Path, database_url: str
) -> None:
    _seed(db, 2)
    path = tmp_path / "anchors.jsonl"
    service = TriageService(Settings.from_env({
        "RPMFLOW_DATABASE_URL": database_url, "RPMFLOW_TRIAGE_AUDIT_ANCHOR_FILE": str(path),
        "RPMFLOW_TRIAGE_AUDIT_ANCHOR_INTERVAL_S": "0.2", "RPMFLOW_TRIAGE_INTERVAL_S": "60"}))
    service.start()
    try:
        wait_for(lambda: path.exists() and '"seq":2' in path.read_text(), 10, "the first anchor")
        _seed(db, 1)
        wait_for(lambda: '"seq":3' in path.read_text(), 10, "the anchor of the new head")
    finally:
        service.stop()
    assert check_anchors(db, path, KEY, audit.verify_chain(db)) == []
