"""scenario_store: a reading takes the patient of the device assignment valid at its time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from tests.triage.rpm_seed import make_world
from triage.billing import scenario_store
from triage.clinical import people


def _row(device: str, at: datetime, message_id: str) -> scenario_store.ReadingRow:
    return scenario_store.ReadingRow(
        message_id,
        "gw-s",
        device,
        "weight",
        at,
        "valid",
        "automatic",
        None,
        None,
        None,
        None,
        80.0,
        None,
        None,
    )


def test_patient_comes_from_the_assignment_in_force(db: psycopg.Connection[Any]) -> None:
    w = make_world(db)
    at = datetime(2026, 2, 1, 12, tzinfo=UTC)
    people.assign_device(db, "scale-s", w.patient_id, at=at, assigned_by="n", kind="weight")
    before = scenario_store.insert_reading(db, _row("scale-s", datetime(2026, 1, 31, tzinfo=UTC), "a" * 32))
    after = scenario_store.insert_reading(db, _row("scale-s", datetime(2026, 2, 2, tzinfo=UTC), "b" * 32))
    assert before[1] is None and after[1] == w.patient_id
    fid = scenario_store.insert_flag(
        db, w.patient_id, rule_id="r", episode_key="e", severity="high", reason="x", reading_ids=[after[0]]
    )
    flag = db.execute("SELECT subject_key, reading_ids FROM flags WHERE flag_id = %s", (fid,)).fetchone()
    assert flag == (f"patient:{w.patient_id}", [after[0]])
