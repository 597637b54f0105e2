"""Every view of a patient's data, written to the hash-chained audit trail (§164.312(b)).

One function, so what is recorded for a view is decided in one place. The row is written in the
same transaction as the read it describes.
"""

from __future__ import annotations

from typing import Any

from dashboards.db import Conn
from dashboards.sessions import Principal
from triage.clinical.audit import record


def record_view(
    conn: Conn,
    who: Principal,
    *,
    what: str,
    patient_id: int | None,
    detail: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> int:
    """Append a ``view:<what>`` row naming the user, role, how they authenticated and what they saw."""
    body: dict[str, Any] = {"role": who.role, "via": who.via, **(detail or {})}
    return record(conn, actor=who.username, action=f"view:{what}", patient_id=patient_id, detail=body,
                  source_ip=source_ip)


def record_action(
    conn: Conn,
    who: Principal,
    *,
    action: str,
    patient_id: int | None,
    detail: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> int:
    """Writes the dashboard performs itself (sign-in, tokens, users) that triage does not audit."""
    body: dict[str, Any] = {"role": who.role, "via": who.via, **(detail or {})}
    return record(conn, actor=who.username, action=action, patient_id=patient_id, detail=body,
                  source_ip=source_ip)
