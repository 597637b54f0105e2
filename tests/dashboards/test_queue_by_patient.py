"""The queue by patient (issue 17): plain words, crisis with symptoms first, page weight."""

from __future__ import annotations

import gzip
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dashboards.queue_view import RULE_WORDS, by_patient, plain_reason
from tests.dashboards.live import session_csrf
from tests.dashboards.seed import World, add_flag, add_reading, make_world

Db = psycopg.Connection[tuple[Any, ...]]
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _flag(fid: int, pid: int, severity: str, minutes: int, **more: Any) -> dict[str, Any]:
    return {"flag_id": fid, "patient_id": pid, "patient": f"P{pid}", "rule_id": "bp_crisis",
            "severity": severity, "opened_at": T0 + timedelta(minutes=minutes), "kind": "blood_pressure",
            "reading_id": fid, "reading_at": T0 + timedelta(minutes=minutes), **more}


def test_one_row_per_patient_crisis_with_symptoms_first_then_severity_then_waiting_longest() -> None:
    rows = by_patient([
        _flag(1, 10, "high", 0), _flag(2, 20, "critical", 5), _flag(3, 10, "critical", 9),
        _flag(4, 30, "critical", 30, call_911=True), _flag(5, 40, "moderate", -60),
    ], {})
    assert [r.patient_id for r in rows] == [30, 20, 10, 40]
    assert [f["flag_id"] for f in rows[2].flags] == [3, 1]  # the most urgent flag leads its patient
    assert rows[0].call_911 and not rows[1].call_911
    assert rows[2].severity == "critical"


def test_the_newest_reading_shows_only_when_it_came_after_the_triggering_one() -> None:
    later = {"reading_id": 99, "kind": "blood_pressure", "measured_at": T0 + timedelta(hours=1)}
    older = {"reading_id": 98, "kind": "blood_pressure", "measured_at": T0 - timedelta(hours=1)}
    assert by_patient([_flag(1, 10, "high", 0)], {10: {"blood_pressure": later}})[0].newer_reading == later
    assert by_patient([_flag(1, 10, "high", 0)], {10: {"blood_pressure": older}})[0].newer_reading is None
    assert by_patient([_flag(1, 10, "high", 0)], {10: {"glucose": later}})[0].newer_reading is None


def test_every_rule_reads_as_words() -> None:
    assert plain_reason("bp_crisis") == RULE_WORDS["bp_crisis"]
    assert plain_reason("some_new_rule") == "Some new rule"
    assert all("_" not in w for w in RULE_WORDS.values())


def test_queue_page_one_row_per_patient_in_plain_words_with_the_newer_reading(
    signed_in: Any, world: World, db: Db
) -> None:
    now = datetime.now(UTC)
    high = add_reading(db, world, now - timedelta(hours=2), systolic=185.0, diastolic=121.0)
    add_flag(db, world, severity="critical", rule_id="bp_crisis", reading_ids=[high])
    add_reading(db, world, now - timedelta(minutes=5), systolic=131.0, diastolic=82.0)
    other = make_world(db)
    urgent = add_flag(db, other, severity="critical", rule_id="bp_crisis",
                      opened_at=now - timedelta(minutes=1))
    db.execute("UPDATE flags SET evidence = evidence || %s::jsonb WHERE flag_id = %s",
               (json.dumps({"symptom_check": {"call_911": True}}), urgent))
    html = signed_in("nurse").get("/queue").text
    body = html[html.index('<tbody id="queue-body">'):]
    rows = re.findall(r'<tr class="[^"]*" data-patient="p(\d+)"', body)
    assert rows == [str(other.patient_id), str(world.patient_id)]  # crisis with symptoms on top
    assert "Symptoms reported: call 911" in body
    assert RULE_WORDS["bp_crisis"] in body and ">bp_crisis<" not in body
    assert "Newest: 131/82 mmHg" in body


def test_200_flag_queue_is_light_one_token_and_gzipped(signed_in: Any, world: World, db: Db) -> None:
    worlds = [world, *(make_world(db) for _ in range(39))]
    for i in range(200):
        add_flag(db, worlds[i % 40], severity=("critical", "high", "moderate")[i % 3],
                 rule_id=("bp_crisis", "trend_rise", "baseline_deviation", "glucose_hypo")[i % 4])
    client: httpx.Client = signed_in("nurse")
    token = session_csrf(client)
    page = client.get("/queue", headers={"Accept-Encoding": "identity"})
    assert page.headers.get("content-encoding") is None
    assert page.text.count("data-flag-id=") == 200
    assert page.text.count(token) == 1
    assert len(page.content) < 100_000, len(page.content)
    r = client.send(client.build_request("GET", "/queue", headers={"Accept-Encoding": "gzip"}), stream=True)
    try:
        assert r.headers["content-encoding"] == "gzip"
        wire = b"".join(r.iter_raw())
    finally:
        r.close()
    assert len(wire) < len(page.content) / 4 and gzip.decompress(wire).count(b"data-flag-id=") == 200


def test_queue_rows_show_weight_and_spo2_values(signed_in: Any, world: World, db: Db) -> None:
    now = datetime.now(UTC)
    ids = []
    for kind, col, value, minutes in (("weight", "weight_kg", 84.2, 90), ("spo2", "spo2_pct", 86.0, 30)):
        row = db.execute(
            "INSERT INTO readings (message_id, gateway_id, device_id, patient_id, kind, measured_at,"
            f" received_at, {col}, pulse_bpm, raw) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 91, '\\x00')"
            " RETURNING reading_id",
            (secrets.token_hex(16), world.gateway_id, world.bp_device, world.patient_id, kind,
             now - timedelta(minutes=minutes), now, value),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    add_flag(db, world, severity="high", rule_id="weight_gain", reading_ids=[ids[0]])
    add_flag(db, world, severity="critical", rule_id="spo2_critical", reading_ids=[ids[1]])
    nurse = signed_in("nurse")
    assert "84.2 kg" in nurse.get("/queue?rule=weight_gain").text
    assert "SpO2 86 %, pulse 91" in nurse.get("/queue?rule=spo2_critical").text
