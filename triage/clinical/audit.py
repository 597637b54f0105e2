"""Tamper-evident audit trail: append-only, hash-chained rows (HIPAA §164.312(b), DOMAIN H11).

Each row's ``hash = sha256(prev_hash || canonical(row))`` where the canonical form is compact,
key-sorted JSON of (seq, at in UTC, actor, action, patient_id, detail, source_ip). Appends are
serialised with a transaction-scoped advisory lock, and the database refuses any row that does not
extend the chain head by exactly one link (migration 0033). UPDATE/DELETE/TRUNCATE are refused by a
trigger and revoked from the application role, so tampering needs a superuser who disables the
trigger; ``verify_chain`` then finds the edited, deleted or reordered rows. The chain head hash
that ``verify_chain`` reports is the value to anchor outside the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from triage.clinical import audit_key
from triage.rows import dict_rows

GENESIS_HASH = "0" * 64
_APPEND_LOCK = 0x72706D61  # "rpma": one audit append at a time


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    patient_id: int | None
    detail: dict[str, Any]
    source_ip: str | None
    prev_hash: str
    hash: str
    alg: str = "sha256"


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    kind: str  # 'edited' | 'broken_link' | 'missing' | 'reordered' | 'truncated' | 'head_mismatch'
    message: str


@dataclass(frozen=True)
class ChainReport:
    rows_checked: int
    head_seq: int
    head_hash: str
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    patient_id: int | None,
    detail: dict[str, Any],
    source_ip: str | None,
) -> bytes:
    """The bytes a row's hash covers (pure; the same function writes and verifies)."""
    doc = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "patient_id": patient_id,
        "detail": detail,
        "source_ip": source_ip,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def link_hash(prev_hash: str, content: bytes, key: bytes | None = None) -> str:
    """The row's link: plain SHA-256, or HMAC-SHA256 with the writers' key (audit_key.py)."""
    return audit_key.link(prev_hash, content, key)


def record(
    conn: psycopg.Connection[Any],
    *,
    actor: str,
    action: str,
    patient_id: int | None,
    detail: dict[str, Any],
    source_ip: str | None = None,
) -> int:
    """Append one audit row and return its sequence number.

    Runs inside the caller's transaction when there is one, so the audit row commits or rolls
    back together with the change it describes.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
        head = conn.execute("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1").fetchone()
        if head is None:
            raise RuntimeError("audit_chain_head row is missing: was migration 0033 applied?")
        # Round-trip the detail through jsonb so what is hashed is exactly what is stored.
        row = conn.execute(
            "SELECT clock_timestamp(), %s::jsonb", (Jsonb(detail, dumps=_dumps_default),)
        ).fetchone()
        assert row is not None
        at, stored_detail = row
        seq = int(head[0]) + 1
        prev = str(head[1])
        key = audit_key.current_key()
        digest = link_hash(prev, canonical(seq, at, actor, action, patient_id, stored_detail, source_ip), key)
        conn.execute(
            "INSERT INTO audit_log (seq, at, actor, action, patient_id, detail, source_ip, prev_hash, hash,"
            " alg) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
            (seq, at, actor, action, patient_id, Jsonb(stored_detail), source_ip, prev, digest,
             audit_key.alg_of(key)),
        )
    return seq


def _dumps_default(obj: Any) -> str:
    return json.dumps(obj, default=str)


_SELECT = "SELECT seq, at, actor, action, patient_id, detail, source_ip, prev_hash, hash, alg FROM audit_log"


def _entry(r: Sequence[Any]) -> AuditEntry:
    return AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])


def _own_hash(e: AuditEntry, key: bytes | None) -> str | None:
    """What the row should hash to; None when it is keyed and no key is at hand."""
    if e.alg == audit_key.KEYED and key is None:
        return None
    content = canonical(e.seq, e.at, e.actor, e.action, e.patient_id, e.detail, e.source_ip)
    return link_hash(e.prev_hash, content, key if e.alg == audit_key.KEYED else None)


def verify_chain(conn: psycopg.Connection[Any], key: bytes | None = b"") -> ChainReport:
    """Walk the chain in seq order and name every row that was edited, removed or moved.

    ``key`` defaults (``b""``) to the process's audit key; keyed rows need it, and an unkeyed row after a
    keyed one is a downgrade (someone re-chained the tail without the key).
    """
    k = audit_key.current_key() if key == b"" else key
    problems: list[ChainProblem] = []
    keyed_seen = False
    expected_seq = 1
    prev_hash = GENESIS_HASH
    prev_at: datetime | None = None
    checked = 0
    last_seq, last_hash = 0, GENESIS_HASH
    with conn.cursor() as cur:
        cur.execute(_SELECT + " ORDER BY seq")
        for raw in cur:
            e = _entry(raw)
            checked += 1
            problems += _row_problems(e, k, expected_seq, prev_hash, prev_at, keyed_seen)
            keyed_seen = keyed_seen or e.alg == audit_key.KEYED
            prev_hash, prev_at, expected_seq = e.hash, e.at, e.seq + 1
            last_seq, last_hash = e.seq, e.hash
    problems += _head_problems(conn, last_seq, last_hash)
    return ChainReport(rows_checked=checked, head_seq=last_seq, head_hash=last_hash, problems=problems)


def _row_problems(
    e: AuditEntry, k: bytes | None, expected_seq: int, prev_hash: str, prev_at: datetime | None,
    keyed_seen: bool,
) -> list[ChainProblem]:
    """What is wrong with one row given the row before it: a gap, its own hash, its link, its time."""
    problems: list[ChainProblem] = []
    if e.seq > expected_seq:
        problems.append(
            ChainProblem(
                expected_seq, "missing", f"rows {expected_seq}..{e.seq - 1} are missing (deleted)"
            )
        )
    recomputed = _own_hash(e, k)
    if recomputed is None:
        why = f"row {e.seq} is keyed: verify with the key ({audit_key.KEY_ENV})"
        problems.append(ChainProblem(e.seq, "unverifiable", why))
    elif e.alg != audit_key.KEYED and keyed_seen:
        problems.append(ChainProblem(e.seq, "downgraded", f"row {e.seq}: unkeyed after keyed rows"
                                     " (re-chained without the key)"))
    elif recomputed != e.hash:
        problems.append(
            ChainProblem(
                e.seq, "edited", f"row {e.seq}: content does not match its hash (edited or moved)"
            )
        )
    if e.prev_hash != prev_hash:
        problems.append(
            ChainProblem(
                e.seq,
                "broken_link",
                f"row {e.seq}: prev_hash does not match row {e.seq - 1}'s hash "
                "(a row before it was edited, deleted or reordered)",
            )
        )
    if prev_at is not None and e.at < prev_at:
        problems.append(ChainProblem(e.seq, "reordered", f"row {e.seq}: timestamp goes backwards"))
    return problems


def _head_problems(conn: psycopg.Connection[Any], last_seq: int, last_hash: str) -> list[ChainProblem]:
    """The chain head against the last row walked: rows cut off the end, or a head that moved."""
    head = conn.execute("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1").fetchone()
    if head is None:
        return [ChainProblem(0, "head_mismatch", "chain head row is missing")]
    head_seq, head_hash = int(head[0]), str(head[1])
    if head_seq > last_seq:
        return [
            ChainProblem(
                last_seq + 1,
                "truncated",
                f"rows {last_seq + 1}..{head_seq} after the last row are missing",
            )
        ]
    if head_seq != last_seq or head_hash != last_hash:
        return [
            ChainProblem(
                last_seq, "head_mismatch", f"chain head (seq {head_seq}) does not match the last row"
            )
        ]
    return []


def patient_access_report(conn: psycopg.Connection[Any], patient_id: int) -> list[AuditEntry]:
    """Every audited read and write about one patient: the "who viewed my data" report."""
    rows = conn.execute(_SELECT + " WHERE patient_id = %s ORDER BY seq", (patient_id,)).fetchall()
    return [_entry(r) for r in rows]


def hash_at(conn: psycopg.Connection[Any], seq: int) -> str | None:
    """The stored hash of chain row ``seq``; None when the row is gone (the anchor check)."""
    row = conn.execute("SELECT hash FROM audit_log WHERE seq = %s", (seq,)).fetchone()
    return None if row is None else str(row[0])


def device_moves(conn: psycopg.Connection[Any], limit: int = 200) -> list[dict[str, Any]]:
    """The audited moves of readings between patients and 'unassigned', newest first."""
    return dict_rows(
        conn,
        "SELECT seq, at, actor, action, patient_id, detail->>'device_id' AS device_id,"
        " (detail->>'readings')::int AS readings FROM audit_log"
        " WHERE action IN ('device.readings_attached', 'device.readings_detached')"
        " ORDER BY seq DESC LIMIT %s",
        (limit,),
    )


# -- the "who viewed my data" report (DOMAIN F, H11) ------------------------------------------------


@dataclass(frozen=True)
class AccessEvent:
    """One audited read or write of a patient's data, as the patient-facing report shows it."""

    entry: AuditEntry
    kind: str  # 'view' | 'export' | 'change'
    direct: bool  # False: the patient was one of several listed (a queue page, a billing export)
    intact: bool  # the row's own content still matches its hash, and no chain problem names it

    @property
    def role(self) -> str | None:
        role = self.entry.detail.get("role")
        return role if isinstance(role, str) else None

    @property
    def via(self) -> str | None:
        via = self.entry.detail.get("via")
        return via if isinstance(via, str) else None

    def public_detail(self) -> dict[str, Any]:
        """The detail without other patients' ids (minimum necessary): only how many were listed."""
        detail = {k: v for k, v in self.entry.detail.items() if k not in ("patient_ids", "role", "via")}
        ids = self.entry.detail.get("patient_ids")
        if isinstance(ids, list):
            detail["patients_listed"] = len(ids)
        return detail


@dataclass(frozen=True)
class PatientAccessReport:
    patient_id: int
    events: list[AccessEvent]
    chain: ChainReport

    @property
    def ok(self) -> bool:
        return self.chain.ok and all(e.intact for e in self.events)


def access_kind(action: str) -> str:
    """'view' for reads, 'export' for disclosures (claims, FHIR), 'change' for every write."""
    if action.startswith("view:"):
        return "view"
    if ".export" in action:
        return "export"
    return "change"


@contextmanager
def _snapshot(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """One REPEATABLE READ snapshot when the connection is idle, so a row appended while the chain
    is walked cannot look like a truncated tail; inside a caller's transaction, use that one."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    old = conn.isolation_level
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            yield
    finally:
        conn.isolation_level = old


def chain_status(conn: psycopg.Connection[Any]) -> ChainReport:
    """:func:`verify_chain` under one consistent snapshot (what a page that others write to needs)."""
    with _snapshot(conn):
        return verify_chain(conn)


def patient_access(conn: psycopg.Connection[Any], patient_id: int) -> PatientAccessReport:
    """Who viewed, exported or changed one patient's data, with the chain's verification status.

    Besides the rows written about the patient (``patient_id``), it finds the rows that listed the
    patient among others (``detail.patient_ids``: queue pages, billing views and exports). Each
    event says whether its own row still matches its hash; ``chain`` is the whole chain's check,
    because a deleted row about this patient only shows as a gap in the chain.
    """
    with _snapshot(conn):
        rows = conn.execute(
            _SELECT + " WHERE patient_id = %s"
            " OR (patient_id IS NULL AND detail -> 'patient_ids' @> %s::jsonb) ORDER BY seq",
            (patient_id, json.dumps([patient_id])),
        ).fetchall()
        chain = verify_chain(conn)
    # 'broken_link' at seq n means row n-1 no longer hashes to what row n recorded (edited and re-hashed).
    damaged = {p.seq for p in chain.problems if p.kind in ("edited", "reordered", "downgraded")}
    damaged |= {p.seq - 1 for p in chain.problems if p.kind == "broken_link"}
    events = []
    for r in rows:
        e = _entry(r)
        own = _own_hash(e, audit_key.current_key())
        events.append(
            AccessEvent(
                entry=e,
                kind=access_kind(e.action),
                direct=e.patient_id == patient_id,
                intact=own == e.hash and e.seq not in damaged,
            )
        )
    return PatientAccessReport(patient_id=patient_id, events=events, chain=chain)
