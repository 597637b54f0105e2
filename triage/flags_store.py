"""Flags in PostgreSQL: idempotent upsert of candidates, lifecycle events, the work queue, rule PPV.

Creation is idempotent under concurrency: ``INSERT … ON CONFLICT`` on the partial unique index
``flags_one_open_episode`` attaches new evidence to the open flag of the same (subject, rule,
episode) instead of creating a second one. Readings already attached to any flag of the same
subject and rule are not attached again, so re-running the rules over the same readings (the
watermark overlap, a second triage process) changes nothing. State changes go through
:func:`apply_event`, which asks ``triage.lifecycle`` and records what it was told.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from triage import lifecycle
from triage.errors import FlagNotFound

_SEVERITIES = "ARRAY['critical','high','moderate','info']"
_RANK_NEW = f"array_position({_SEVERITIES}, EXCLUDED.severity)"
_RANK_OLD = f"array_position({_SEVERITIES}, f.severity)"
# lifecycle.ACTIVE_STATES as an SQL list: the states the one-open-episode index covers.
_ACTIVE = "(" + ", ".join(f"'{s}'" for s in lifecycle.ACTIVE_STATES) + ")"
_VALUE_FIELDS = ("systolic_mmhg", "diastolic_mmhg", "pulse_bpm", "glucose_mg_dl", "measurement", "quality")


@dataclass(frozen=True)
class FlagCandidate:
    rule_id: str
    subject_key: str
    patient_id: int | None
    severity: str
    reason: str
    episode_key: str = ""
    reading_ids: tuple[int, ...] = ()
    first_reading_at: datetime | None = None
    last_reading_at: datetime | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    dedup: str = "readings"  # "readings": skip readings already attached; "episode": skip closed episodes

    @property
    def confirmation(self) -> str:
        return str(self.evidence.get("confirmation", ""))


@dataclass(frozen=True)
class UpsertResult:
    flag_id: int
    inserted: bool
    state: str
    confirmation: str
    candidate: FlagCandidate


def _num(v: Any) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return float(v)


def _ts(v: Any) -> datetime | None:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    return pd.Timestamp(v).to_pydatetime()


def to_flag_candidates(cands: pd.DataFrame, readings: pd.DataFrame | None = None) -> list[FlagCandidate]:
    """Candidate frame → typed candidates, with per-reading evidence items looked up in ``readings``."""
    lookup: dict[int, dict[str, Any]] = {}
    if readings is not None and not cands.empty:
        wanted = {int(i) for ids in cands["reading_ids"] for i in ids}
        sub = readings[readings["reading_id"].isin(wanted)]
        cols = ["reading_id", "measured_at", *[c for c in _VALUE_FIELDS if c in sub.columns]]
        for rec in sub[cols].to_dict(orient="records"):
            item = {
                "reading_id": int(rec["reading_id"]),
                "measured_at": pd.Timestamp(rec["measured_at"]).isoformat(),
            }
            for c in _VALUE_FIELDS:
                if c in rec:
                    v = rec[c]
                    item[c] = v if isinstance(v, str) else _num(v)
            lookup[int(rec["reading_id"])] = {k: v for k, v in item.items() if v is not None}
    out = []
    for rec in cands.to_dict(orient="records"):
        ids = tuple(int(i) for i in rec["reading_ids"])
        evidence: dict[str, Any] = {
            "value": _num(rec["value"]),
            "baseline": _num(rec["baseline"]),
            "unit": rec["unit"] or None,
            "items": [lookup.get(i, {"reading_id": i}) for i in ids],
        }
        if rec["confirmation"]:
            evidence["confirmation"] = rec["confirmation"]
        pid = rec["patient_id"]
        out.append(
            FlagCandidate(
                rule_id=str(rec["rule_id"]),
                subject_key=str(rec["subject_key"]),
                patient_id=None if pid is None or pid is pd.NA else int(pid),
                severity=str(rec["severity"]),
                reason=str(rec["reason"]),
                episode_key=str(rec["episode_key"]),
                reading_ids=ids,
                first_reading_at=_ts(rec["first_reading_at"]),
                last_reading_at=_ts(rec["last_reading_at"]),
                evidence={k: v for k, v in evidence.items() if v is not None},
                dedup=str(rec["dedup"]),
            )
        )
    return out


_UPSERT = f"""
WITH c AS (
    SELECT %(patient_id)s::bigint AS patient_id, %(subject_key)s::text AS subject_key,
           %(rule_id)s::text AS rule_id, %(episode_key)s::text AS episode_key,
           %(severity)s::text AS severity, %(reason)s::text AS reason, %(evidence)s::jsonb AS evidence,
           %(reading_ids)s::bigint[] AS reading_ids, %(first_at)s::timestamptz AS first_at,
           %(last_at)s::timestamptz AS last_at, %(dedup)s::text AS dedup, %(now)s::timestamptz AS now
), fresh AS (
    SELECT c.*, ARRAY(
        SELECT x FROM unnest(c.reading_ids) AS x
        WHERE NOT EXISTS (SELECT 1 FROM flags f WHERE f.subject_key = c.subject_key
                          AND f.rule_id = c.rule_id AND x = ANY (f.reading_ids))
        ORDER BY x) AS new_ids
    FROM c
), go AS (
    SELECT * FROM fresh
    WHERE NOT (coalesce(evidence->>'confirmation', '') = 'cleared' AND NOT (reading_ids[1] = ANY (new_ids))
               AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.subject_key = fresh.subject_key
                               AND f.rule_id = fresh.rule_id AND f.episode_key = fresh.episode_key
                               AND f.state IN {_ACTIVE}))
      AND CASE WHEN dedup = 'readings' THEN cardinality(new_ids) > 0
          ELSE NOT EXISTS (SELECT 1 FROM flags f WHERE f.subject_key = fresh.subject_key
                           AND f.rule_id = fresh.rule_id AND f.episode_key = fresh.episode_key
                           AND f.state NOT IN {_ACTIVE}) END
)
INSERT INTO flags AS f (patient_id, subject_key, rule_id, episode_key, severity, state, reason, evidence,
                        reading_ids, first_reading_at, last_reading_at, opened_at, updated_at)
SELECT patient_id, subject_key, rule_id, episode_key, severity, 'open', reason, evidence,
       reading_ids, first_at, last_at, now, now
FROM go
ON CONFLICT (subject_key, rule_id, episode_key) WHERE state IN {_ACTIVE}
DO UPDATE SET
    reading_ids = ARRAY(SELECT DISTINCT x FROM unnest(f.reading_ids || EXCLUDED.reading_ids) AS x ORDER BY x),
    severity = CASE WHEN {_RANK_NEW} < {_RANK_OLD}
                    THEN EXCLUDED.severity ELSE f.severity END,
    reason = CASE WHEN (f.evidence->>'confirmation' = 'confirmed'
                        AND coalesce(EXCLUDED.evidence->>'confirmation', '') <> 'confirmed')
                       OR {_RANK_NEW} > {_RANK_OLD}
                  THEN f.reason ELSE EXCLUDED.reason END,
    evidence = f.evidence || (EXCLUDED.evidence - 'items' - 'confirmation') || jsonb_build_object(
        'items', coalesce(f.evidence->'items', '[]'::jsonb) || coalesce((
            SELECT jsonb_agg(i) FROM jsonb_array_elements(EXCLUDED.evidence->'items') AS i
            WHERE NOT ((i->>'reading_id')::bigint = ANY (f.reading_ids))), '[]'::jsonb),
        'confirmation', CASE WHEN f.evidence->>'confirmation' = 'confirmed' THEN 'confirmed'
                             ELSE coalesce(EXCLUDED.evidence->>'confirmation',
                                           f.evidence->>'confirmation') END),
    first_reading_at = least(f.first_reading_at, EXCLUDED.first_reading_at),
    last_reading_at = greatest(f.last_reading_at, EXCLUDED.last_reading_at),
    updated_at = EXCLUDED.updated_at
RETURNING flag_id, (xmax = 0) AS inserted, state, coalesce(evidence->>'confirmation', '') AS confirmation
"""


def _params(c: FlagCandidate, now: datetime) -> dict[str, Any]:
    evidence = dict(c.evidence)
    return {
        "patient_id": c.patient_id,
        "subject_key": c.subject_key,
        "rule_id": c.rule_id,
        "episode_key": c.episode_key,
        "severity": c.severity,
        "reason": c.reason,
        "evidence": Jsonb(evidence),
        "reading_ids": list(c.reading_ids),
        "first_at": c.first_reading_at,
        "last_at": c.last_reading_at,
        "dedup": c.dedup,
        "now": now,
    }


def upsert_candidates(
    conn: psycopg.Connection[Any],
    candidates: Sequence[FlagCandidate],
    now: datetime,
) -> list[UpsertResult]:
    """Insert or attach each candidate; returns one result per flag touched (skipped ones omitted)."""
    if not candidates:
        return []
    results: list[UpsertResult] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_UPSERT, [_params(c, now) for c in candidates], returning=True)
        for cand in candidates:
            row = cur.fetchone()
            if row is not None:
                results.append(UpsertResult(int(row[0]), bool(row[1]), str(row[2]), str(row[3]), cand))
            if not cur.nextset():
                break
        if results:
            cur.executemany(
                "INSERT INTO flag_events (flag_id, at, actor, event, from_state, to_state, note, role)"
                " VALUES (%s, %s, 'triage', %s, %s, %s, %s, 'system')",
                [
                    (
                        r.flag_id,
                        now,
                        "opened" if r.inserted else "evidence_attached",
                        None if r.inserted else r.state,
                        r.state,
                        json.dumps(
                            {
                                "reading_ids": list(r.candidate.reading_ids),
                                "confirmation": r.candidate.confirmation or None,
                            }
                        ),
                    )
                    for r in results
                ],
            )
    return results


def upsert_flags(
    conn: psycopg.Connection[Any],
    candidates: pd.DataFrame | Iterable[FlagCandidate],
    now: datetime,
) -> list[int]:
    """Upsert candidates (a candidate frame or ``FlagCandidate`` objects); returns the flag ids touched."""
    cands = to_flag_candidates(candidates) if isinstance(candidates, pd.DataFrame) else list(candidates)
    return [r.flag_id for r in upsert_candidates(conn, cands, now)]


def apply_event(
    conn: psycopg.Connection[Any],
    flag_id: int,
    event: str,
    actor: str,
    role: str,
    *,
    note: str | None = None,
    disposition: str | None = None,
    minutes: int | None = None,
    assignee: str | None = None,
) -> str:
    """Fire ``event`` on a flag under a row lock; the lifecycle module decides, this records.

    ``assign`` sets ``assigned_to`` to ``assignee`` (default: the actor). ``auto_clear`` records
    the ``auto_cleared`` disposition and is refused on a confirmed crisis or once a symptom check
    was recorded. Returns the new state.
    """
    lifecycle.check_payload(event, disposition=disposition, minutes=minutes)
    with conn.transaction():
        row = conn.execute(
            "SELECT state, coalesce(evidence->>'confirmation', ''),"
            " coalesce(evidence->'symptom_check'->>'outcome', '')"
            " FROM flags WHERE flag_id = %s FOR UPDATE",
            (flag_id,),
        ).fetchone()
        if row is None:
            raise FlagNotFound(flag_id)
        state = str(row[0])
        new_state = lifecycle.fire(state, event, role)
        if event == "auto_clear":
            lifecycle.guard_auto_clear(state, str(row[1]), str(row[2]) or None)
            disposition = lifecycle.AUTO_CLEARED
        finished = new_state in lifecycle.TERMINAL_STATES and state not in lifecycle.TERMINAL_STATES
        conn.execute(
            "UPDATE flags SET state = %(new)s, updated_at = now(),"
            " closed_at = CASE WHEN %(finished)s THEN now() ELSE closed_at END,"
            " disposition = coalesce(%(disposition)s, disposition),"
            " assigned_to = CASE WHEN %(event)s = 'assign' THEN %(assignee)s ELSE assigned_to END"
            " WHERE flag_id = %(id)s",
            {
                "new": new_state,
                "finished": finished,
                "disposition": disposition,
                "event": event,
                "assignee": assignee or actor,
                "id": flag_id,
            },
        )
        conn.execute(
            "INSERT INTO flag_events (flag_id, actor, event, from_state, to_state, note, role,"
            " disposition, minutes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (flag_id, actor, event, state, new_state, note, role, disposition, minutes),
        )
    return new_state


def queue(
    conn: psycopg.Connection[Any],
    *,
    severity: str | None = None,
    rule_id: str | None = None,
    state: str | None = None,
    assigned_to: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The nurse work queue: active flags (or one ``state``), most severe first, then oldest first."""
    states = [state] if state else list(lifecycle.ACTIVE_STATES)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT f.flag_id, f.patient_id, p.display_name, p.timezone, f.subject_key, f.rule_id,"
            " f.episode_key, f.severity, f.state, f.reason, f.evidence, f.reading_ids, f.first_reading_at,"
            " f.last_reading_at, f.opened_at, f.updated_at, f.assigned_to, f.disposition"
            " FROM flags f LEFT JOIN patients p ON p.patient_id = f.patient_id"
            " WHERE f.state = ANY(%(states)s)"
            " AND (%(severity)s::text IS NULL OR f.severity = %(severity)s)"
            " AND (%(rule_id)s::text IS NULL OR f.rule_id = %(rule_id)s)"
            " AND (%(assigned_to)s::text IS NULL OR f.assigned_to = %(assigned_to)s)"
            f" ORDER BY array_position({_SEVERITIES}, f.severity), f.opened_at, f.flag_id"
            " LIMIT %(limit)s",
            {
                "states": states,
                "severity": severity,
                "rule_id": rule_id,
                "assigned_to": assigned_to,
                "limit": limit,
            },
        )
        return list(cur.fetchall())


def rule_quality(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Per rule: flags, dispositions, PPV (acted / dispositioned by people), flags per patient-month."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM triage_rule_quality ORDER BY rule_id")
        return list(cur.fetchall())


def log_suppressions(conn: psycopg.Connection[Any], suppressed: pd.DataFrame, now: datetime) -> int:
    """Record suppressed candidates once each (re-runs of the same evidence add nothing)."""
    if suppressed.empty:
        return 0
    rows = []
    for rec in suppressed.to_dict(orient="records"):
        ids = [int(i) for i in rec["reading_ids"]]
        pid = rec["patient_id"]
        rows.append(
            (
                now,
                None if pid is None or pid is pd.NA else int(pid),
                rec["subject_key"],
                rec["rule_id"],
                rec["severity"],
                rec["episode_key"],
                ids,
                rec["source"],
                rec["reason"],
                ",".join(map(str, ids)) + "|" + str(rec["episode_key"]),
            )
        )
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO triage_suppressions (at, patient_id, subject_key, rule_id, severity, episode_key,"
            " reading_ids, source, reason, dedup_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (subject_key, rule_id, source, dedup_key) DO NOTHING",
            rows,
        )
    return len(rows)
