"""Device enrolment on a gateway (triage/clinical/device_enrolments.py), as the dashboard's role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from simulators.embedded_postgres import DatabaseUrls
from triage.clinical import audit
from triage.clinical.device_enrolments import Device, EnrolmentRefused, end, enrol, enrolled_gateway, history

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CUFF = Device("cuff-1", "blood_pressure", "OMRON", "HEM-7361T", "1.2")


@pytest.fixture
def admin(database_urls: DatabaseUrls) -> Iterator[Conn]:
    """A connection as rpmflow_dashboard: the grants must suffice for the whole admin path."""
    with psycopg.connect(database_urls.dashboard, autocommit=True) as conn:
        yield conn


def test_enrolment_history_moves_only_explicitly_and_never_overlaps(admin: Conn, db: Conn) -> None:
    enrol(admin, CUFF, "gw-a", at=T0, by="ada", reason="set up")
    with pytest.raises(EnrolmentRefused, match="explicit re-enrolment"):
        enrol(admin, CUFF, "gw-b", at=T0 + timedelta(days=5), by="ada", reason="new Pi")
    with pytest.raises(EnrolmentRefused, match="already enrolled"):
        enrol(admin, CUFF, "gw-a", at=T0 + timedelta(days=5), by="ada", reason="again")
    enrol(admin, CUFF, "gw-b", at=T0 + timedelta(days=5), by="bob", reason="new Pi", move=True)
    with pytest.raises(EnrolmentRefused, match="would overlap"):  # back into the closed gw-a range
        enrol(admin, CUFF, "gw-c", at=T0 + timedelta(days=1), by="ada", reason="oops", move=True)
    assert enrolled_gateway(admin, "cuff-1", T0 + timedelta(days=4)) == "gw-a"
    assert enrolled_gateway(admin, "cuff-1", T0 + timedelta(days=5)) == "gw-b"
    assert enrolled_gateway(admin, "cuff-1", T0 - timedelta(seconds=1)) is None
    end(admin, "cuff-1", at=T0 + timedelta(days=9), by="bob", reason="returned")
    assert enrolled_gateway(admin, "cuff-1", T0 + timedelta(days=9)) is None
    rows = history(admin)
    assert [(r["gateway_id"], r["enrolled_by"], r["ended_by"]) for r in rows] == [
        ("gw-b", "bob", "bob"), ("gw-a", "ada", "bob")]
    assert rows[0]["end_reason"] == "returned" and rows[1]["end_reason"].startswith("re-enrolled on gw-b")
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert actions == ["device.enrolled", "device.reenrolled", "device.enrolment_ended"]
    assert audit.verify_chain(db).ok


@pytest.mark.parametrize(("device", "gateway", "at", "reason", "match"), [
    (Device("x" * 129), "gw-a", T0, "r", "device id"),
    (CUFF, "gw a", T0, "r", "gateway id"),
    (Device("d", "thermometer"), "gw-a", T0, "r", "kind"),
    (CUFF, "gw-a", T0.replace(tzinfo=None), "r", "timezone-aware"),
    (CUFF, "gw-a", datetime.now(UTC) + timedelta(days=1), "r", "future"),
    (CUFF, "gw-a", T0, " ", "say why"),
])
def test_malformed_enrolments_are_refused_with_the_reason(
    admin: Conn, device: Device, gateway: str, at: datetime, reason: str, match: str
) -> None:
    with pytest.raises(EnrolmentRefused, match=match):
        enrol(admin, device, gateway, at=at, by="ada", reason=reason)
