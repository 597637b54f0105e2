"""The ``flags`` statements of the clinical workflows: locking a flag, reading its patient, noting evidence.

``triage.flags_store`` owns creation, lifecycle events and the queue; this module holds the rest of
the flag family's writes and locked reads that review, promotion, the crisis workflow and the
symptom check each used to state themselves. They lock the row (``FOR UPDATE``) before asking the
lifecycle, and add to ``evidence`` only keys the rules never write (``crisis_outcomes``,
``symptom_check``). A read that joins ``patients`` for the flag's own patient lives here too.

Every function runs one statement on the caller's connection and transaction; a missing flag is
:class:`~triage.errors.FlagNotFound` except where the caller decides (``lock_for_promotion``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from triage.errors import FlagNotFound

Conn = psycopg.Connection[Any]


def patient_and_timezone(conn: Conn, flag_id: int) -> tuple[int | None, str]:
    """(patient id, the patient's time zone or UTC) of a flag."""
    row = conn.execute(
        "SELECT f.patient_id, coalesce(p.timezone, 'UTC') FROM flags f"
        " LEFT JOIN patients p ON p.patient_id = f.patient_id WHERE f.flag_id = %s",
        (flag_id,),
    ).fetchone()
    if row is None:
        raise FlagNotFound(flag_id)
    return row[0], row[1]


def lock_for_promotion(conn: Conn, flag_id: int) -> tuple[str, int | None, str, str, str] | None:
    """Lock the flag; (state, patient id, MRN, patient state, time zone), None when there is no flag."""
    row = conn.execute(
        "SELECT f.state, f.patient_id, p.mrn, p.state, p.timezone FROM flags f"
        " LEFT JOIN patients p ON p.patient_id = f.patient_id WHERE f.flag_id = %s FOR UPDATE OF f",
        (flag_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])


def lock_whole(conn: Conn, flag_id: int) -> dict[str, Any]:
    """Lock the flag; every column plus the database's ``db_now`` (the crisis workflow's clock)."""
    with conn.cursor(row_factory=dict_row) as cur:
        flag = cur.execute("SELECT *, now() AS db_now FROM flags WHERE flag_id = %s FOR UPDATE",
                           (flag_id,)).fetchone()
    if flag is None:
        raise FlagNotFound(flag_id)
    return flag


def append_crisis_outcome(conn: Conn, flag_id: int, entry: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE flags SET evidence = jsonb_set(evidence, '{crisis_outcomes}',"
        " coalesce(evidence->'crisis_outcomes', '[]'::jsonb) || jsonb_build_array(%s::jsonb)),"
        " updated_at = now() WHERE flag_id = %s",
        (Jsonb(entry), flag_id),
    )


def lock_for_symptom_check(conn: Conn, flag_id: int) -> tuple[str, int | None, datetime, datetime]:
    """Lock the flag; (rule id, patient id, opened at, the database's now)."""
    row = conn.execute(
        "SELECT rule_id, patient_id, opened_at, now() FROM flags WHERE flag_id = %s FOR UPDATE",
        (flag_id,),
    ).fetchone()
    if row is None:
        raise FlagNotFound(flag_id)
    return str(row[0]), row[1], row[2], row[3]


def set_symptom_check(conn: Conn, flag_id: int, latest: dict[str, Any]) -> None:
    """Replace ``evidence.symptom_check`` with the latest check."""
    conn.execute(
        "UPDATE flags SET evidence = evidence || jsonb_build_object('symptom_check', %s::jsonb),"
        " updated_at = now() WHERE flag_id = %s",
        (Jsonb(latest), flag_id),
    )
