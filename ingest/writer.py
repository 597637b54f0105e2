"""The batch writer: one transaction per batch, idempotent by construction.

Per batch, in ONE transaction:

1. COPY the graded readings into a per-connection TEMP staging table (``copy.write_row``);
2. the device <-> gateway binding (``ingest/binding.py``) takes out every reading not from the
   gateway its device is enrolled on at ``measured_at``: a dead letter, its id never claimed;
3. ``INSERT INTO readings … ON CONFLICT (message_id) DO NOTHING``: a redelivered or re-sent
   message finds its id in the unique index readings_dedupe and stops there (on TimescaleDB,
   ``INSERT INTO reading_keys … RETURNING`` decides first, see ``_merge_sql``); a "duplicate" of
   another gateway's stored reading is refused, not acked ok;
4. each new reading is mapped to the patient whose device assignment was valid
   at ``measured_at`` (no assignment: ``patient_id`` NULL, kept, attached later);
5. ``devices`` gets first/last seen and what the gateway reported; gateway statuses are upserted;
6. dead letters are inserted (once per topic + payload).

If PostgreSQL refuses a value (class 22/23, e.g. a NUL character), the batch is replayed row by
row under savepoints and only the refused rows become dead letters with the server's reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from ingest import binding, db, direct
from ingest.contract import ValidStatus
from ingest.direct import ASSIGNED_AT
from ingest.errors import RowRefused
from ingest.items import DEAD_LETTER_KEEP, Accepted, DeadLetter, Item, Rejection
from ingest.rows import READING_COLUMNS, raw_bytes, reading_fields, staging_row
from ingest.rows import STAGING_COLUMNS as _COLUMNS
from ingest.seen import SeenMemo

__all__ = ["DEAD_LETTER_KEEP", "READING_COLUMNS", "Accepted", "BatchResult", "BatchWriter", "DeadLetter",
           "Item", "Rejection", "attach_unassigned", "keys_table", "raw_bytes", "reading_fields",
           "staging_row"]

log = logging.getLogger(__name__)

STAGING: Final = sql.Identifier("ingest_staging")
# The writer's three paths (BatchWriter._write_fast): no id probed, every id probed, staging table.
_OPTIMISTIC: Final = "optimistic"
_CHECKED: Final = "checked"
_STAGING: Final = "staging"




@dataclass
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    statuses: int = 0
    refused: list[DeadLetter] = field(default_factory=list)  # by PostgreSQL (row by row)
    # by the device <-> gateway binding: dead letters, and what each gateway's ack says of them
    unbound: list[DeadLetter] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def _staging_ddl() -> sql.Composed:
    cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in _COLUMNS)
    # ON COMMIT DELETE ROWS empties it in place at each commit: cheaper than a TRUNCATE per batch
    # (which gives the table a new file and rewrites its pg_class row every time).
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(STAGING, cols)


def _copy_sql() -> sql.Composed:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c, _ in _COLUMNS)
    return sql.SQL("COPY {} ({}) FROM STDIN").format(STAGING, cols)


_ASSIGNED_SELECT: Final = """
        SELECT DISTINCT ON (s.message_id) {scols}, a.patient_id, clock_timestamp()
        FROM {staging} s
        {keys}
        LEFT JOIN LATERAL (""" + ASSIGNED_AT.format(t="s") + """) a ON true
        ORDER BY s.message_id, s.ord
"""


def _merge_sql(keys_table: bool) -> sql.Composed:
    """The readings insert. Plain PostgreSQL: ``ON CONFLICT`` on the unique index readings_dedupe.
    TimescaleDB (``keys_table``): reading_keys decides first, as a hypertable cannot hold that index."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in READING_COLUMNS)
    scols = sql.SQL(", ").join(sql.Identifier("s", c) for c in READING_COLUMNS)
    if not keys_table:
        return sql.SQL("INSERT INTO readings ({cols}, patient_id, ingested_at)" + _ASSIGNED_SELECT
                       + "ON CONFLICT (message_id) DO NOTHING").format(
            staging=STAGING, cols=cols, scols=scols, keys=sql.SQL(""))
    return sql.SQL(
        """
        WITH new_keys AS (
            INSERT INTO reading_keys (message_id, gateway_id)
            SELECT DISTINCT ON (message_id) message_id, gateway_id FROM {staging}
            ORDER BY message_id, ord
            ON CONFLICT (message_id) DO NOTHING
            RETURNING message_id
        )
        INSERT INTO readings ({cols}, patient_id, ingested_at)""" + _ASSIGNED_SELECT
    ).format(staging=STAGING, cols=cols, scols=scols,
             keys=sql.SQL("JOIN new_keys k ON k.message_id = s.message_id"))


def keys_table(conn: psycopg.Connection[Any]) -> bool:
    """Whether this database dedupes through reading_keys (TimescaleDB) rather than readings_dedupe."""
    row = conn.execute("SELECT to_regclass('reading_keys') IS NOT NULL").fetchone()
    return bool(row and row[0])


_STATUS_SQL: Final = sql.SQL(
    """
    INSERT INTO gateway_status AS g (gateway_id, online, status, updated_at)
    VALUES (%s, %s, %s::jsonb, LEAST(%s::timestamptz, now()))
    ON CONFLICT (gateway_id) DO UPDATE
        SET online = EXCLUDED.online, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
        WHERE g.updated_at <= EXCLUDED.updated_at
    """
)

_DEAD_LETTER_SQL: Final = sql.SQL(
    """
    INSERT INTO dead_letters (topic, gateway_id, error_class, reason, payload, payload_sha256,
                              payload_size, payload_whole_sha256)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (payload_sha256) WHERE payload_sha256 IS NOT NULL DO NOTHING
    """
)


class BatchWriter:
    """Owns one connection; ``write`` commits a batch or raises DatabaseUnavailable (retry later)."""

    def __init__(self, conninfo: str, *, application_name: str = "rpmflow-ingest") -> None:
        self._conninfo = conninfo
        self._application_name = application_name
        self._conn: db.Connection | None = None
        self._copy = _copy_sql()
        self._merge = _merge_sql(keys_table=False)
        self._unbound = binding.refuse_unbound_sql(STAGING)
        self._foreign = binding.refuse_foreign_duplicates_sql(STAGING, keys_table=False)
        self._devices = binding.devices_seen_sql(STAGING)
        self._keys = False
        self._layout = direct.Layout(False, ())
        self._optimistic = True  # see _write_fast
        self._seen = SeenMemo(binding.LAST_SEEN_GRAIN)  # the devices update sends what may change

    def _connection(self) -> db.Connection:
        if self._conn is None or self._conn.closed:
            conn = db.connect(self._conninfo, application_name=self._application_name)
            with db.map_errors():
                conn.execute(_staging_ddl())
                keys = self._keys = keys_table(conn)
                self._layout = direct.layout(conn, keys_table=keys)
                self._merge = _merge_sql(keys)
                self._foreign = binding.refuse_foreign_duplicates_sql(STAGING, keys_table=keys)
                conn.commit()
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def backend_pid(self) -> int | None:
        """The server process of this writer's connection (pg_stat_activity.pid), if connected."""
        return None if self._conn is None or self._conn.closed else self._conn.info.backend_pid

    def write(self, items: Sequence[Item]) -> BatchResult:
        """Commit ``items`` in one transaction; on a refused value, fall back to row by row."""
        try:
            conn = self._connection()
            try:
                with db.map_errors():
                    return self._write_fast(conn, items)
            except RowRefused as exc:
                log.warning("batch of %d refused (SQLSTATE %s): retrying row by row", len(items),
                            exc.sqlstate)
                with db.map_errors():
                    return self._write_row_by_row(conn, items)
        except BaseException:
            # Whatever happened, this connection's state is unknown: start clean next time.
            self.close()
            raise

    def _write_fast(self, conn: db.Connection, items: Sequence[Item]) -> BatchResult:
        """Optimistic first (no id probed); a batch meeting a stored id is redone checked, and the
        next batches stay checked until one finds no stored id (a redelivered backlog); a race
        lost after the check is redone through staging."""
        try:
            if self._optimistic:
                try:
                    return self._write_all(conn, items, path=_OPTIMISTIC)
                except direct.Stored as exc:
                    log.info("batch of %d holds an id stored already (%s): checked", len(items), exc)
                    self._optimistic = False
            return self._write_all(conn, items, path=_CHECKED)
        except direct.Contended as exc:
            log.info("batch of %d raced another writer (%s): written through staging", len(items), exc)
            return self._write_all(conn, items, path=_STAGING)

    # -- one transaction for everything ------------------------------------------------------------

    def _write_all(self, conn: db.Connection, items: Sequence[Item], *, path: str) -> BatchResult:
        result = BatchResult()
        accepted: list[Accepted] = []
        statuses: list[ValidStatus] = []
        letters: list[DeadLetter] = []
        for x in items:
            if isinstance(x, Accepted):
                accepted.append(x)
            elif isinstance(x, ValidStatus):
                statuses.append(x)
            else:
                letters.append(x)
        statuses.sort(key=lambda s: (s.gateway_id, s.at))
        now = datetime.now(UTC)
        try:
            with conn.cursor() as cur, conn.cursor() as seen_cur:
                devices: list[dict[str, Any]] = []
                if accepted:
                    result.inserted, seen = self._readings(cur, accepted, result, path=path)
                    result.duplicates = len(accepted) - result.inserted - len(result.rejected)
                    devices = self._seen.due(seen, now) if seen else []
                # The rest of the transaction and its COMMIT in one round trip (pipeline mode).
                with conn.pipeline():
                    if devices:
                        seen_cur.execute(direct.DEVICES_SEEN, (direct.seen_json(devices),))
                    for st in statuses:
                        cur.execute(_STATUS_SQL, (st.gateway_id, st.online, st.payload_text, st.at))
                    result.statuses = len(statuses)
                    result.dead_letters = self._dead_letters(cur, [*letters, *result.unbound])
                    conn.commit()
                if devices:
                    self._seen.recorded(devices, {d: (first, last) for d, first, last in seen_cur.fetchall()},
                                        now)
        except BaseException:
            with contextlib.suppress(psycopg.Error):  # BatchWriter.write closes a broken connection
                conn.rollback()
            raise
        return result

    def _readings(self, cur: psycopg.Cursor[Any], accepted: Sequence[Accepted], result: BatchResult,
                  *, path: str = _STAGING, clear: bool = False) -> tuple[int, list[dict[str, Any]] | None]:
        """Bind, dedupe and store; the binding's refusals go to ``result`` (their dead letters are
        inserted by the caller, in the same transaction). ``path``: ``ingest/direct.py``
        optimistic (may raise :class:`~ingest.direct.Stored`) or checked (may raise
        :class:`~ingest.direct.Contended`), or through the staging table. Also the devices seen,
        for the caller to record (the fast path's; the staging path records them itself)."""
        seen = None
        if path == _STAGING:
            inserted, refused = self._staged(cur, accepted, clear=clear)
        else:
            done = direct.write(cur, accepted, reading_fields, layout=self._layout,
                                optimistic=path == _OPTIMISTIC)
            inserted, refused, seen = done.inserted, done.refused, done.seen
            if path == _CHECKED:
                self._optimistic = done.stored == 0
        for o, code, enrolled in sorted(refused):
            letter, rejection = binding.refusal(accepted[o], code, enrolled)
            log.warning("reading from %s refused (%s): dead-lettered", rejection.gateway_id, code)
            result.unbound.append(letter)
            result.rejected.append(rejection)
        return inserted, seen

    def _staged(self, cur: psycopg.Cursor[Any], accepted: Sequence[Accepted],
                *, clear: bool) -> tuple[int, list[direct.Refusal]]:
        """Stage, bind, merge. The staging table empties itself at commit; ``clear`` empties it
        now (row by row: several stagings in one transaction)."""
        with cur.copy(self._copy) as copy:
            for i, a in enumerate(accepted):
                copy.write_row(staging_row(i, a))
        cur.execute(self._unbound)
        refused: list[direct.Refusal] = [(int(o), binding.unbound_code(gw), gw) for o, gw in cur.fetchall()]
        cur.execute(self._merge)
        inserted = max(cur.rowcount, 0)
        if inserted < len(accepted) - len(refused):  # some staged reading was not new: whose is it?
            cur.execute(self._foreign)
            refused += [(int(o), binding.OTHER_GATEWAY, None) for (o,) in cur.fetchall()]
        cur.execute(self._devices)
        if clear:
            cur.execute(sql.SQL("TRUNCATE {}").format(STAGING))
        return inserted, refused

    @staticmethod
    def _dead_letters(cur: psycopg.Cursor[Any], letters: Sequence[DeadLetter]) -> int:
        if not letters:
            return 0
        cur.executemany(
            _DEAD_LETTER_SQL,
            [d.row() for d in letters],
        )
        return len(letters)

    # -- the slow path: find the rows PostgreSQL refuses ------------------------------------------

    def _write_row_by_row(self, conn: db.Connection, items: Sequence[Item]) -> BatchResult:
        result = BatchResult()
        letters = [x for x in items if isinstance(x, DeadLetter)]
        with conn.transaction(), conn.cursor() as cur:
            for item in items:
                if isinstance(item, DeadLetter):
                    continue
                try:
                    with conn.transaction():  # a savepoint per row
                        if isinstance(item, Accepted):
                            before = len(result.rejected)
                            n, _ = self._readings(cur, [item], result, clear=True)
                            result.inserted += n
                            result.duplicates += 1 - n - (len(result.rejected) - before)
                        else:
                            cur.execute(_STATUS_SQL,
                                        (item.gateway_id, item.online, item.payload_text, item.at))
                            result.statuses += 1
                except (psycopg.DataError, psycopg.IntegrityError) as exc:
                    letter = _refused(item, exc)
                    log.warning("database refused a message on %s (SQLSTATE %s): dead-lettered",
                                letter.topic, exc.sqlstate)
                    result.refused.append(letter)
            result.dead_letters = self._dead_letters(cur, [*letters, *result.refused, *result.unbound])
        return result


def _refused(item: Accepted | ValidStatus, exc: psycopg.Error) -> DeadLetter:
    if isinstance(item, Accepted):
        topic, gw, text = item.reading.topic, item.reading.gateway_id, item.reading.payload_text
    else:
        topic, gw, text = item.topic, item.gateway_id, item.payload_text
    reason = f"database refused the row ({exc.sqlstate or 'client-side'}): {str(exc).strip()[:400]}"
    return DeadLetter(topic, gw, "RowRefused", reason, text.encode("utf-8"))


def attach_unassigned(conn: db.Connection, device_id: str | None = None) -> list[tuple[int, int]]:
    """Give readings stored without a patient the patient whose assignment covers ``measured_at``.

    Called by the assignment path (triage/clinical/assignments.py) in the transaction that records
    an assignment for ``device_id`` (``None``: every device, as a sweep, which also catches a
    reading committed concurrently with the assignment). Returns (reading_id, patient_id) of each
    reading attached; a reading that has a patient is never touched, so each is attached once.
    Only readings received from the gateway the device was enrolled on at ``measured_at`` are
    attached (ingest refuses any other since the binding; this also keeps readings stored before it
    from a gateway the device never belonged to away from the patient).
    """
    cur = conn.execute(
        """
        UPDATE readings r SET patient_id = a.patient_id
        FROM device_assignments a, device_enrolments e
        WHERE r.patient_id IS NULL AND a.device_id = r.device_id
          AND (%(device)s::text IS NULL OR r.device_id = %(device)s::text)
          AND r.measured_at >= a.valid_from AND (a.valid_to IS NULL OR r.measured_at < a.valid_to)
          AND e.device_id = r.device_id AND e.gateway_id = r.gateway_id
          AND r.measured_at >= e.valid_from AND (e.valid_to IS NULL OR r.measured_at < e.valid_to)
        RETURNING r.reading_id, r.patient_id
        """,
        {"device": device_id},
    )
    return [(int(r[0]), int(r[1])) for r in cur.fetchall()]
