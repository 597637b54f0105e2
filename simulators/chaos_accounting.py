"""End-of-run accounting of the chaos run: ground truth from the gateways, checked against PostgreSQL.

Ground truth does not come from the wire. Before a gateway first starts, its outbox file gets a
``chaos_produced`` table and an ``AFTER INSERT`` trigger on ``outbox``: every reading a gateway
durably commits (the continuous-oximetry per-minute summaries included) is recorded, with its
accounting kind, in the same SQLite transaction, and survives the row's deletion on the ack.

What PostgreSQL stored comes from ``triage.readings_store``. The crisis and vitals checks keep
their own SQL on purpose: they restate triage's rules over the stored rows to check triage, and a
check that asked triage's own code would agree with it whatever it did.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg

from simulators.chaos_report import ChaosReport
from simulators.processes import run_audit_key
from triage import readings_store

# The accounting kind: the wire kind, except that a window summary of continuous oximetry (its
# values carry a sample_count) is counted apart from spot-checks as ``spo2/minute``.
_PRODUCED_DDL = (
    "CREATE TABLE IF NOT EXISTS chaos_produced"
    " (message_id TEXT PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS chaos_produced_log AFTER INSERT ON outbox"
    " WHEN NEW.state != 'rejected' AND NEW.message_id IS NOT NULL BEGIN"
    " INSERT OR IGNORE INTO chaos_produced VALUES (NEW.message_id,"
    " CASE WHEN NEW.kind = 'spo2' AND json_valid(NEW.payload)"
    " AND json_extract(NEW.payload, '$.values.sample_count') IS NOT NULL"
    " THEN 'spo2/minute' ELSE NEW.kind END, datetime('now')); END;"
)
_CRISIS_SQL = """
    WITH bp AS (
        SELECT reading_id, patient_id, measured_at, systolic_mmhg, diastolic_mmhg,
               lag(measured_at) OVER w AS prev_at,
               lag(systolic_mmhg) OVER w AS prev_sys,
               lag(diastolic_mmhg) OVER w AS prev_dia
        FROM readings
        WHERE kind = 'blood_pressure' AND quality = 'valid' AND patient_id IS NOT NULL
          AND NOT coalesce(device_status && ARRAY['body_movement', 'cuff_too_loose',
                                                  'improper_measurement_position'], false)
        WINDOW w AS (PARTITION BY patient_id ORDER BY measured_at, reading_id)
    ), flagged AS (
        SELECT DISTINCT unnest(reading_ids) AS reading_id FROM flags WHERE rule_id = 'bp_crisis'
    )
    SELECT bp.reading_id,
           bp.measured_at - bp.prev_at < interval '30 seconds'
               AND bp.systolic_mmhg = bp.prev_sys AND bp.diastolic_mmhg = bp.prev_dia AS collapsed,
           f.reading_id IS NOT NULL AS has_flag
    FROM bp LEFT JOIN flagged f USING (reading_id)
    WHERE bp.systolic_mmhg >= 180 OR bp.diastolic_mmhg >= 120
"""
_DUPLICATE_FLAGS_SQL = """
    SELECT (SELECT count(*) FROM (
                SELECT subject_key, rule_id, episode_key FROM flags
                WHERE state IN ('open', 'acknowledged', 'escalated', 'reviewed')
                GROUP BY 1, 2, 3 HAVING count(*) > 1) a)
         + (SELECT count(*) FROM (
                SELECT subject_key, rule_id, reading_ids FROM flags WHERE reading_ids <> '{}'
                GROUP BY 1, 2, 3 HAVING count(*) > 1) b)
"""


# The weight and SpO2 events the value rules must flag, mirrored from triage/rules/vitals.py on the
# stored rows: a weighing >= 0.9 kg above the lowest 12-36 h before, a SpO2 < 85 % (floor), two
# consecutive SpO2 occasions < 90 % within an hour; ``*_problem`` are the kinds' device-problem bits.
# A weighing repeating the previous one's value < 30 s later is the same weighing (triage collapses
# it, as it does crisis repeats): a restarted demo scale stores its records again.
_VITALS_SQL = """
    WITH w0 AS (
        SELECT reading_id, patient_id, measured_at, weight_kg,
               measured_at - lag(measured_at) OVER win < interval '30 seconds'
                   AND weight_kg = lag(weight_kg) OVER win AS repeat
        FROM readings
        WHERE kind = 'weight' AND quality = 'valid' AND patient_id IS NOT NULL AND weight_kg IS NOT NULL
          AND NOT coalesce(device_status && %(weight_problem)s::text[], false)
        WINDOW win AS (PARTITION BY patient_id ORDER BY measured_at, reading_id)
    ), w AS (
        SELECT reading_id, patient_id, measured_at, weight_kg FROM w0 WHERE NOT coalesce(repeat, false)
    ), s AS (
        SELECT reading_id, measured_at, spo2_pct, lag(spo2_pct) OVER win AS prev_pct,
               lag(measured_at) OVER win AS prev_at
        FROM readings
        WHERE kind = 'spo2' AND quality = 'valid' AND patient_id IS NOT NULL AND spo2_pct IS NOT NULL
          AND NOT coalesce(device_status && %(spo2_problem)s::text[], false)
        WINDOW win AS (PARTITION BY patient_id ORDER BY measured_at, reading_id)
    ), events AS (
        SELECT w.reading_id, 'weight_gain' AS rule_id FROM w
        WHERE w.weight_kg - (SELECT min(b.weight_kg) FROM w b WHERE b.patient_id = w.patient_id
                             AND b.measured_at BETWEEN w.measured_at - interval '36 hours'
                                                   AND w.measured_at - interval '12 hours') >= 0.9
        UNION ALL SELECT reading_id, 'spo2_critical' FROM s WHERE spo2_pct < 85
        UNION ALL SELECT reading_id, 'spo2_low' FROM s
        WHERE spo2_pct < 90 AND prev_pct < 90
          AND measured_at - prev_at BETWEEN interval '30 seconds' AND interval '1 hour'
    )
    SELECT e.reading_id, e.rule_id,
           EXISTS (SELECT 1 FROM flags f WHERE f.rule_id = e.rule_id AND e.reading_id = ANY(f.reading_ids))
    FROM events e
"""


def vitals(conn: psycopg.Connection[Any]) -> tuple[dict[str, list[int]], list[str]]:
    """({rule: [events, flagged]} for weight and SpO2 events in the stored rows, the unflagged ones)."""
    # orchestration only: simulators do not import triage at top
    from triage.valid_reading import PROBLEM_STATUS

    params = {f"{k}_problem": sorted(PROBLEM_STATUS.get(k, ())) for k in ("weight", "spo2")}
    by_rule: dict[str, list[int]] = {}
    missing: list[str] = []
    for reading_id, rule_id, has_flag in conn.execute(_VITALS_SQL, params).fetchall():
        counts = by_rule.setdefault(str(rule_id), [0, 0])
        counts[0] += 1
        counts[1] += int(bool(has_flag))
        if not has_flag:
            missing.append(f"{rule_id}:{reading_id}")
    return by_rule, missing


def prepare_outbox(path: Path) -> None:
    """Create the gateway's outbox schema, then the ground-truth trigger beside it."""
    from gateway.outbox import Outbox  # orchestration only

    Outbox(path, 1).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_PRODUCED_DDL)


def read_produced(outboxes: Iterable[Path]) -> tuple[dict[str, str], int]:
    """({message_id: accounting kind} every gateway committed, rows still waiting to be sent)."""
    produced: dict[str, str] = {}
    waiting = 0
    for path in outboxes:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            rows = db.execute("SELECT message_id, kind FROM chaos_produced")
            produced.update((str(m), str(k)) for m, k in rows)
            waiting += db.execute(
                "SELECT count(*) FROM outbox WHERE state IN ('pending', 'in_flight')").fetchone()[0]
    return produced, waiting


def crisis(conn: psycopg.Connection[Any]) -> tuple[int, int, list[int], int]:
    """(crisis readings, flagged, reading ids without a flag, collapsed by triage)."""
    rows = conn.execute(_CRISIS_SQL).fetchall()
    flagged = sum(1 for r in rows if r[2])
    collapsed = sum(1 for r in rows if r[1] and not r[2])
    missing = [int(r[0]) for r in rows if not r[2] and not r[1]]
    return len(rows), flagged, missing, collapsed


def settled(conninfo: str, outboxes: Iterable[Path]) -> bool:
    """Whether every outbox is empty, every produced reading stored, every crisis and every weight
    and SpO2 event flagged."""
    produced, waiting = read_produced(outboxes)
    if waiting:
        return False
    try:
        with psycopg.connect(conninfo, connect_timeout=2) as conn:
            stored = readings_store.stored_message_ids(conn)
            if not produced.keys() <= stored:
                return False
            return not crisis(conn)[2] and not vitals(conn)[1]
    except psycopg.Error:
        return False


def count_readings(r: ChaosReport, produced: dict[str, str], conn: psycopg.Connection[Any]) -> set[str]:
    """Fill produced/stored/duplicated/lost/unexpected, in total and per kind; return the lost ids."""
    rows = readings_store.stored_accounting_kinds(conn)
    stored = {m for m, _ in rows}
    lost = produced.keys() - stored
    r.produced, r.stored = len(produced), len(stored)
    r.duplicated = len(rows) - len(stored)
    r.lost, r.lost_ids = len(lost), sorted(lost)[:20]
    r.unexpected = len(stored - produced.keys())
    stored_kinds = Counter(k for _, k in set(rows))
    for kind, n in Counter(produced.values()).items():
        r.kind(kind).produced = n
    for kind, n in stored_kinds.items():
        r.kind(kind).stored = n
    for kind, n in (Counter(k for _, k in rows) - stored_kinds).items():
        r.kind(kind).duplicated = n
    for kind, n in Counter(produced[m] for m in lost).items():
        r.kind(kind).lost = n
    return lost


def count_flags(r: ChaosReport, conn: psycopg.Connection[Any]) -> None:
    """Dead letters, crisis, weight and SpO2 coverage, and duplicated flags."""
    from triage.flag_views_store import flag_count  # orchestration only, as above

    r.dead_letters = _one(conn, "SELECT count(*) FROM dead_letters")
    r.crisis_readings, r.crisis_flagged, r.crisis_missing, r.crisis_collapsed = crisis(conn)
    r.vitals_events, r.vitals_missing = vitals(conn)
    r.flags = flag_count(conn)
    r.duplicate_flags = _one(conn, _DUPLICATE_FLAGS_SQL)


class AuditWriter(threading.Thread):
    """Appends audit rows through ``triage.clinical.audit.record`` while PostgreSQL is being hurt."""

    def __init__(self, conninfo: str, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.conninfo = conninfo
        self.stop_event = stop
        self.committed = 0

    def run(self) -> None:
        from triage.clinical.audit import record  # orchestration only: simulators do not import triage at top

        run_audit_key()  # the same key as the services' rows (a keyed chain must stay keyed)

        conn: psycopg.Connection[Any] | None = None
        while not self.stop_event.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=2)
                record(conn, actor=self.name, action="chaos.append", patient_id=None,
                       detail={"n": self.committed})
                self.committed += 1
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
                self.stop_event.wait(0.5)
                continue
            self.stop_event.wait(0.2)
        if conn is not None:
            conn.close()


def _one(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
