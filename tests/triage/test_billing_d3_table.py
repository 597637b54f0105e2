"""Every row of DOMAIN D3 through the real database path, in two time zones, across DST changes
and local midnights.

The tested device period is the episode's second (the first, Feb 6..Mar 7, already billed 99453):
Mar 8..Apr 6. It starts on the US DST change (Mar 8) and holds Sydney's DST end (Apr 5). Readings
sit at 00:00:30 and 23:59:30 local on alternate days, so UTC dates differ from local ones; days are
placed backwards from Apr 6 so the April management month always has data when a row has any.
Management minutes and the interactive call are in April; the expected codes are April's.
"""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.triage.rpm_seed import World, make_world, reviewed_flag
from triage.billing import compute, drive, records, rules
from triage.clinical import locations, people, promotion, review

VECTORS = [
    v
    for v in json.loads((Path(__file__).parent / "billing_vectors.json").read_text(encoding="utf-8"))[
        "vectors"
    ]
    if v["id"].startswith("D3-")
]
ZONES = ("America/New_York", "Australia/Sydney")
PERIOD_END = date(2026, 4, 6)


def _stamp(d: date, i: int, zone: ZoneInfo) -> datetime:
    """Alternate local 00:00:30 and 23:59:30: the UTC date is not the local date."""
    return datetime.combine(d, time(0, 0, 30) if i % 2 == 0 else time(23, 59, 30), zone)


def _world(db: psycopg.Connection[Any], v: dict[str, Any], tz: str) -> tuple[World, str]:
    gates = v.get("gates", {})
    w = make_world(db, tz=tz, established=None if gates.get("established") is False else date(2025, 11, 1))
    device = f"cuff-{secrets.token_hex(4)}"
    zone = ZoneInfo(tz)
    people.assign_device(db, device, w.patient_id, at=datetime(2026, 1, 1, tzinfo=zone), assigned_by="nurse")
    for i, d in enumerate((date(2026, 2, 6), date(2026, 2, 7))):  # period 0: Feb 6 .. Mar 7, 99453 there
        drive.add_reading(db, device, _stamp(d, i, zone))
    return w, device


def _minutes_and_call(db: psycopg.Connection[Any], w: World, v: dict[str, Any], zone: ZoneInfo) -> None:
    """A clinician reviews and promotes on Mar 1; the month's minutes and call follow in April."""
    if not v["minutes"] and not v["interactive"]:
        return
    flag = reviewed_flag(db, w, dos=date(2026, 3, 1))
    promotion.promote(db, flag, w.clinician)
    qhp = v.get("performer_is_qhp", False)
    who = w.clinician if qhp else w.nurse
    on = date(2026, 4, 2) if qhp else date(2026, 4, 10)  # QHP minutes inside the period (Q1)
    if v["minutes"]:
        review.log_time(db, flag, who, v["minutes"], logged_at=datetime.combine(on, time(12), zone))
    if v["interactive"]:
        review.record_communication(
            db, flag, w.nurse, at=datetime.combine(on, time(12, 30), zone), mode="phone"
        )


def _break_gates(db: psycopg.Connection[Any], w: World, v: dict[str, Any]) -> None:
    gates = v.get("gates", {})
    start, end = date(2026, 3, 8), PERIOD_END
    if gates.get("other_practitioner_billed"):
        records.record_claim_history(
            db,
            w.patient_id,
            service_from=start,
            service_to=end,
            program="RPM",
            cpt="99454",
            billing_npi="1999999999",
        )
    if gates.get("rtm_billed"):
        records.record_claim_history(
            db,
            w.patient_id,
            service_from=start,
            service_to=end,
            program="RTM",
            cpt="98977",
            billing_npi="1999999999",
        )
    if gates.get("consent_on_file") is False:
        row = db.execute("SELECT consent_id FROM consents WHERE patient_id = %s", (w.patient_id,)).fetchone()
        assert row is not None
        people.revoke_consent(db, int(row[0]), revoked_at=datetime(2026, 3, 2, 12, tzinfo=ZoneInfo(w.tz)))
    if gates.get("licensed") is False:  # moves to a state the billing clinician holds no licence in
        locations.record_location(
            db, w.patient_id, state="NV", effective_from=date(2026, 3, 5), source="patient_reported"
        )


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("v", VECTORS, ids=[v["id"] for v in VECTORS])
def test_d3_row_through_the_database(db: psycopg.Connection[Any], v: dict[str, Any], tz: str) -> None:
    zone = ZoneInfo(tz)
    w, device = _world(db, v, tz)
    for i in range(v["days"]):
        drive.add_reading(db, device, _stamp(PERIOD_END - timedelta(days=i), i, zone))
    for i in range(v.get("manual_days", 0)):
        drive.add_reading(db, device, _stamp(PERIOD_END - timedelta(days=i), i, zone), transmission="manual")
    _minutes_and_call(db, w, v, zone)
    _break_gates(db, w, v)
    [april] = compute.compute_month(db, 2026, 4, patient_id=w.patient_id)
    assert rules.emitted_codes(april.decisions) == v["expected"], [
        (d.code, d.rule, d.reason) for d in april.decisions
    ]
    [period] = april.device_periods
    assert (period.index, period.start, period.end, period.days_with_data) == (
        1,
        date(2026, 3, 8),
        PERIOD_END,
        v["days"],
    )
    if v["days"]:
        assert min(period.readings_by_date) == (PERIOD_END - timedelta(days=v["days"] - 1)).isoformat()
    for d in april.decisions:
        assert d.rule and d.reason
    if v.get("gates"):
        assert any("would otherwise" in d.reason for d in april.decisions) or not april.decisions
