"""Device enrolment on a gateway, with history: which gateway may speak for a device, when.

Why: ingest accepts a reading only from the gateway its device is enrolled on at ``measured_at``
(ingest/binding.py), so a gateway's valid broker credentials no longer let it speak for another
patient's cuff. Enrolment is also the only way a device's description (kind, manufacturer, model,
firmware, last gateway) changes: what a gateway reports is kept apart (``devices.reported``).

A device has at most one open enrolment. Enrolling it on another gateway is refused unless the
caller says ``move=True`` (an explicit re-enrolment: the open row is closed at ``at`` and the new one
starts there). Enrolments may start in the past (the device was set up last week) but never overlap.
Every change is one audit row in the same transaction (``device.enrolled``, ``device.reenrolled``,
``device.enrolment_ended``), naming who and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from gateway.contract import GATEWAY_ID_RE, MAX_DEVICE_ID_CHARS
from triage.clinical import audit
from triage.errors import TerminalTriageError
from triage.rows import dict_rows

KINDS = ("blood_pressure", "glucose", "weight", "spo2")


class EnrolmentRefused(TerminalTriageError):
    """An enrolment change that would overlap another, move a device implicitly, or is malformed."""


@dataclass(frozen=True)
class Device:
    """What the admin states about a device when enrolling it (the description ingest will not
    overwrite)."""

    device_id: str
    kind: str = "blood_pressure"
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None


def _check(device: Device, gateway_id: str, at: datetime, reason: str) -> None:
    if not device.device_id or len(device.device_id) > MAX_DEVICE_ID_CHARS:
        raise EnrolmentRefused(f"device id must be 1-{MAX_DEVICE_ID_CHARS} characters")
    if not GATEWAY_ID_RE.match(gateway_id):
        raise EnrolmentRefused(f"gateway id {gateway_id!r:.80} is not 1-64 of A-Z a-z 0-9 . _ -")
    if device.kind not in KINDS:
        raise EnrolmentRefused(f"kind {device.kind!r:.40} is not one of {', '.join(KINDS)}")
    if at.tzinfo is None:
        raise EnrolmentRefused(f"at={at!r}: must be timezone-aware")
    if at > datetime.now(UTC):
        raise EnrolmentRefused("an enrolment starts in the past or now, never in the future")
    if not reason.strip():
        raise EnrolmentRefused("say why (the reason is kept in the history and the audit trail)")


def enrol(conn: psycopg.Connection[Any], device: Device, gateway_id: str, *, at: datetime, by: str,
          reason: str, move: bool = False) -> int:
    """Enrol ``device`` on ``gateway_id`` from ``at``; returns the new enrolment's id.

    An open enrolment on another gateway is closed at ``at`` only with ``move=True``; one on the
    same gateway is refused (nothing to change)."""
    _check(device, gateway_id, at, reason)
    with conn.transaction():
        conn.execute(
            "INSERT INTO devices AS d (device_id, kind, manufacturer, model, firmware, serial,"
            " last_gateway_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind,"
            " manufacturer = coalesce(EXCLUDED.manufacturer, d.manufacturer),"
            " model = coalesce(EXCLUDED.model, d.model), firmware = coalesce(EXCLUDED.firmware, d.firmware),"
            " serial = coalesce(EXCLUDED.serial, d.serial), last_gateway_id = EXCLUDED.last_gateway_id",
            (device.device_id, device.kind, device.manufacturer, device.model, device.firmware,
             device.serial, gateway_id),
        )
        moved_from = _close_open(conn, device.device_id, gateway_id, at, by, reason, move)
        row = conn.execute(
            "INSERT INTO device_enrolments (device_id, gateway_id, valid_from, enrolled_by, reason)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING enrolment_id",
            (device.device_id, gateway_id, at, by, reason),
        ).fetchone()
        assert row is not None
        eid = int(row[0])
        audit.record(conn, actor=by, action="device.reenrolled" if moved_from else "device.enrolled",
                     patient_id=None,
                     detail={"enrolment_id": eid, "device_id": device.device_id, "gateway_id": gateway_id,
                             "from_gateway_id": moved_from, "valid_from": at.isoformat(), "reason": reason,
                             "kind": device.kind, "manufacturer": device.manufacturer,
                             "model": device.model, "firmware": device.firmware})
    return eid


def _close_open(conn: psycopg.Connection[Any], device_id: str, gateway_id: str, at: datetime, by: str,
                reason: str, move: bool) -> str | None:
    """Close the device's open enrolment at ``at`` for a move; the gateway it moved from (None:
    none was open). Refuses an overlap with any closed row, and an implicit move."""
    rows = conn.execute(
        "SELECT enrolment_id, gateway_id, valid_from, valid_to FROM device_enrolments"
        " WHERE device_id = %s ORDER BY valid_from FOR UPDATE",
        (device_id,),
    ).fetchall()
    moved_from: str | None = None
    for eid, gw, start, end in rows:
        if end is None and start < at:
            if gw == gateway_id:
                raise EnrolmentRefused(f"device {device_id} is already enrolled on gateway {gw}")
            if not move:
                raise EnrolmentRefused(
                    f"device {device_id} is enrolled on gateway {gw}: moving it to {gateway_id} is an "
                    "explicit re-enrolment (tick 're-enrol' / --move)")
            conn.execute(
                "UPDATE device_enrolments SET valid_to = %s, ended_by = %s, end_reason = %s"
                " WHERE enrolment_id = %s",
                (at, by, f"re-enrolled on {gateway_id}: {reason}", eid),
            )
            moved_from = str(gw)
        elif end is None or end > at:
            raise EnrolmentRefused(
                f"device {device_id} is enrolled on gateway {gw} from {start:%Y-%m-%d %H:%M %Z}"
                + (f" to {end:%Y-%m-%d %H:%M %Z}" if end else "")
                + f": an enrolment from {at:%Y-%m-%d %H:%M %Z} would overlap it")
    return moved_from


def end(conn: psycopg.Connection[Any], device_id: str, *, at: datetime, by: str, reason: str) -> int:
    """End the device's open enrolment at ``at`` (device retired, lost, returned): from then on no
    gateway speaks for it. Returns the enrolment's id."""
    if at.tzinfo is None or not reason.strip():
        raise EnrolmentRefused("an end needs a timezone-aware time and a reason")
    with conn.transaction():
        row = conn.execute(
            "UPDATE device_enrolments SET valid_to = %s, ended_by = %s, end_reason = %s"
            " WHERE device_id = %s AND valid_to IS NULL AND valid_from < %s"
            " RETURNING enrolment_id, gateway_id",
            (at, by, reason, device_id, at),
        ).fetchone()
        if row is None:
            raise EnrolmentRefused(f"device {device_id} has no open enrolment starting before {at}")
        audit.record(conn, actor=by, action="device.enrolment_ended", patient_id=None,
                     detail={"enrolment_id": int(row[0]), "device_id": device_id, "gateway_id": row[1],
                             "valid_to": at.isoformat(), "reason": reason})
    return int(row[0])


def enrolled_gateway(conn: psycopg.Connection[Any], device_id: str, at: datetime) -> str | None:
    """The gateway ``device_id`` is enrolled on at ``at`` (None: none)."""
    row = conn.execute(
        "SELECT gateway_id FROM device_enrolments WHERE device_id = %s AND valid_from <= %s"
        " AND (valid_to IS NULL OR valid_to > %s) ORDER BY valid_from DESC LIMIT 1",
        (device_id, at, at),
    ).fetchone()
    return None if row is None else str(row[0])


def history(conn: psycopg.Connection[Any], limit: int = 500) -> list[dict[str, Any]]:
    """Every enrolment, newest first, with the device's stated and reported description."""
    return dict_rows(
        conn,
        "SELECT e.enrolment_id, e.device_id, d.kind, d.manufacturer, d.model, d.firmware, e.gateway_id,"
        " e.valid_from, e.valid_to, e.enrolled_by, e.reason, e.ended_by, e.end_reason,"
        " d.reported->>'firmware' AS reported_firmware, d.reported->>'model' AS reported_model"
        " FROM device_enrolments e JOIN devices d USING (device_id)"
        " ORDER BY e.valid_from DESC, e.enrolment_id DESC LIMIT %s",
        (limit,),
    )
