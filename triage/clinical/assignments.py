"""Device assignment history in both directions: which patient a device belonged to, when.

A reading belongs to the assignment valid at its ``measured_at``. An assignment may start in the
past (the cuff was handed over last week, the admin records it today): readings stored without a
patient in that range are attached to the patient. An assignment may end at any instant up to now:
readings measured from that instant on are no longer the patient's (they become unassigned, or
move to the device's next assignment). Every move of readings is one audit row per patient, in the
same transaction as the assignment change, so it happens once and is visible to the admin.
Assignments of one device never overlap.

The ``device_assignments`` changes live here, and the reads of the patient page, the review context,
the admin forms and the demo seed (a device's history, a patient's current devices); the jobs' and
the simulators' other questions about devices are in ``devices_store.py``. Readings leave a patient
through ``triage.readings_store`` and join one through ingest's ``attach_unassigned``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import psycopg

from ingest.writer import attach_unassigned
from triage import readings_store
from triage.clinical import audit
from triage.errors import TerminalTriageError
from triage.jobs import evaluate_new_readings
from triage.rows import dict_rows
from triage.settings import Settings


class AssignmentRefused(TerminalTriageError):
    """An assignment change that would overlap another, or end before it starts."""


@dataclass(frozen=True)
class Moved:
    """What an assignment change did to stored readings."""

    assignment_id: int | None
    attached: dict[int, list[int]]  # patient_id → reading ids now attributed to them
    detached: dict[int, list[int]]  # patient_id → reading ids no longer attributed to them


def _need_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise AssignmentRefused(f"at={at!r}: must be timezone-aware")


def assign(
    conn: psycopg.Connection[Any],
    device_id: str,
    patient_id: int,
    *,
    at: datetime,
    assigned_by: str,
    kind: str = "blood_pressure",
    fda_cleared: bool = True,
) -> Moved:
    """Assign from ``at`` (past or now), closing the device's open assignment at that instant."""
    _need_aware(at)
    with conn.transaction():
        conn.execute(
            "INSERT INTO devices (device_id, kind, fda_cleared) VALUES (%s, %s, %s)"
            " ON CONFLICT (device_id) DO NOTHING",
            (device_id, kind, fda_cleared),
        )
        rows = conn.execute(
            "SELECT assignment_id, patient_id, valid_from, valid_to FROM device_assignments"
            " WHERE device_id = %s ORDER BY valid_from FOR UPDATE",
            (device_id,),
        ).fetchall()
        detached: dict[int, list[int]] = {}
        for aid, pid, start, end in rows:
            if end is None and start < at:
                conn.execute("UPDATE device_assignments SET valid_to = %s WHERE assignment_id = %s",
                             (at, aid))
                detached = _detach(conn, device_id, int(pid), at)
            elif end is None or end > at:
                raise AssignmentRefused(
                    f"device {device_id} is assigned to patient {pid} from {start:%Y-%m-%d %H:%M %Z}"
                    + (f" to {end:%Y-%m-%d %H:%M %Z}" if end else "")
                    + f": an assignment from {at:%Y-%m-%d %H:%M %Z} would overlap it"
                )
        row = conn.execute(
            "INSERT INTO device_assignments (device_id, patient_id, valid_from, assigned_by)"
            " VALUES (%s, %s, %s, %s) RETURNING assignment_id",
            (device_id, patient_id, at, assigned_by),
        ).fetchone()
        assert row is not None
        moved = Moved(int(row[0]), _attach(conn, device_id), detached)
        _audit(conn, assigned_by, device_id, moved)
        _triage_attached(conn, moved)
    return moved


def _triage_attached(conn: psycopg.Connection[Any], moved: Moved) -> None:
    """Attached readings keep their ``ingested_at``, which triage's incremental watermark has passed:
    run the value rules on them now, so a crisis in a cuff's memory is flagged like a new one."""
    new_ids = {rid for ids in moved.attached.values() for rid in ids}
    if new_ids:
        lookback = next(f.default for f in fields(Settings) if f.name == "lookback_days")
        assert isinstance(lookback, int)
        evaluate_new_readings(conn, set(moved.attached), new_ids, datetime.now(UTC), lookback_days=lookback)


def end(conn: psycopg.Connection[Any], device_id: str, *, at: datetime, ended_by: str) -> Moved:
    """End the device's open assignment at ``at``: attribution stops at that instant."""
    _need_aware(at)
    with conn.transaction():
        row = conn.execute(
            "UPDATE device_assignments SET valid_to = %s"
            " WHERE device_id = %s AND valid_to IS NULL AND valid_from < %s"
            " RETURNING assignment_id, patient_id",
            (at, device_id, at),
        ).fetchone()
        if row is None:
            raise AssignmentRefused(f"device {device_id} has no open assignment starting before {at}")
        moved = Moved(int(row[0]), {}, _detach(conn, device_id, int(row[1]), at))
        _audit(conn, ended_by, device_id, moved)
    return moved


def _detach(
    conn: psycopg.Connection[Any], device_id: str, patient_id: int, at: datetime
) -> dict[int, list[int]]:
    ids = readings_store.detach_from_patient(conn, device_id, patient_id, at)
    return {patient_id: sorted(ids)} if ids else {}


def _attach(conn: psycopg.Connection[Any], device_id: str) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for reading_id, patient_id in attach_unassigned(conn, device_id):
        out.setdefault(patient_id, []).append(reading_id)
    return {p: sorted(ids) for p, ids in out.items()}


def _audit(conn: psycopg.Connection[Any], actor: str, device_id: str, moved: Moved) -> None:
    for action, by_patient in (("device.readings_detached", moved.detached),
                               ("device.readings_attached", moved.attached)):
        for patient_id, ids in sorted(by_patient.items()):
            audit.record(conn, actor=actor, action=action, patient_id=patient_id,
                         detail={"device_id": device_id, "assignment_id": moved.assignment_id,
                                 "readings": len(ids), "reading_ids": ids[:1000]})


def history(conn: psycopg.Connection[Any], limit: int = 500) -> list[dict[str, Any]]:
    """Every assignment, newest first, with the readings it holds now (the admin's history page).
    The readings count is a join about the assignment, so it stays here, not in readings_store."""
    return dict_rows(
        conn,
        "SELECT a.assignment_id, a.device_id, d.kind, a.patient_id, p.display_name, p.mrn, a.valid_from,"
        " a.valid_to, a.assigned_by,"
        " (SELECT count(*) FROM readings r WHERE r.device_id = a.device_id AND r.patient_id = a.patient_id"
        "   AND r.measured_at >= a.valid_from AND (a.valid_to IS NULL OR r.measured_at < a.valid_to))"
        "   AS readings"
        " FROM device_assignments a JOIN devices d USING (device_id) JOIN patients p USING (patient_id)"
        " ORDER BY a.valid_from DESC, a.assignment_id DESC LIMIT %s",
        (limit,),
    )


def device_history(
    conn: psycopg.Connection[Any], device_id: str
) -> list[tuple[int, datetime, datetime | None]]:
    """(patient_id, valid_from, valid_to) rows of one device, oldest first."""
    rows = conn.execute(
        "SELECT patient_id, valid_from, valid_to FROM device_assignments"
        " WHERE device_id = %s ORDER BY valid_from",
        (device_id,),
    ).fetchall()
    return [(int(r[0]), r[1], r[2]) for r in rows]


def monitoring_start(conn: psycopg.Connection[Any], patient_id: int) -> datetime | None:
    """When the patient's first device assignment began (the patient page's "monitored since")."""
    row = conn.execute(
        "SELECT min(valid_from) AS start FROM device_assignments WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    return row[0] if row else None


def patient_devices(conn: psycopg.Connection[Any], patient_id: int) -> list[dict[str, Any]]:
    """Devices assigned now, with their gateway's last status (three kinds of silence, Part H9)."""
    return dict_rows(
        conn,
        "SELECT d.device_id, d.kind, d.manufacturer, d.model, d.serial, d.last_seen_at,"
        " d.last_gateway_id, a.valid_from, g.online AS gateway_online, g.updated_at AS gateway_seen_at,"
        " g.status->>'outbox_depth' AS outbox_depth, g.status->>'outbox_full' AS outbox_full,"
        " g.status->'devices'->d.device_id->>'last_contact' AS device_last_contact,"
        " g.status->'devices'->d.device_id->>'last_error' AS device_last_error"
        " FROM device_assignments a JOIN devices d USING (device_id)"
        " LEFT JOIN gateway_status g ON g.gateway_id = d.last_gateway_id"
        " WHERE a.patient_id = %s AND a.valid_to IS NULL ORDER BY d.kind, d.device_id",
        (patient_id,),
    )


def devices_unassigned(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Devices no patient holds now, by id (at most 500: the admin's assign form)."""
    return dict_rows(
        conn,
        "SELECT d.device_id, d.kind, d.model, d.last_seen_at FROM devices d WHERE NOT EXISTS ("
        " SELECT 1 FROM device_assignments a WHERE a.device_id = d.device_id AND a.valid_to IS NULL)"
        " ORDER BY d.device_id LIMIT 500",
    )

