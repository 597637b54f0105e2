"""The devices store, run as the roles that call it: triage (the jobs), ingest (the demo's history)
and the simulators' set-up (the superuser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.triage import dbseed
from triage.clinical import devices_store
from triage.clinical.devices_store import SimulatedDevice

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def test_jobs_questions(db: Conn, as_triage: Conn) -> None:
    pid = dbseed.patient(db, assigned_from=T0 - timedelta(days=20), gateway_id="gw-t")
    dbseed.reading(db, pid, T0 - timedelta(days=30), sbp=120, dbp=80, gateway_id="gw-t")  # before assignment
    dbseed.reading(db, pid, T0 - timedelta(days=2), sbp=121, dbp=81, gateway_id="gw-t")
    unmonitored = db.execute(
        "INSERT INTO patients (mrn, display_name, state, timezone, created_at)"
        " VALUES ('MRN-none', 'Nobody', 'NY', 'UTC', %s) RETURNING patient_id",
        (T0 - timedelta(days=99),),
    ).fetchone()
    assert unmonitored is not None

    devs = devices_store.assigned_devices(as_triage, T0)
    bp = devs[devs["device_id"] == f"BP-{pid}"].iloc[0]
    assert (bp["patient_id"], bp["gateway_id"]) == (pid, "gw-t")
    assert bp["assigned_from"] == T0 - timedelta(days=20)
    assert bp["last_reading_at"] == T0 - timedelta(days=2)
    assert set(devs["device_id"]) == {f"BP-{pid}", f"GL-{pid}"}
    assert devices_store.assigned_devices(as_triage, T0 - timedelta(days=21)).empty
    assert list(devices_store.assigned_devices(as_triage, T0 - timedelta(days=21)).columns) == list(
        devices_store.ASSIGNED_DEVICE_COLUMNS)

    enrolled = devices_store.patients_enrolled_at(as_triage)
    at = dict(zip(enrolled["patient_id"].astype(int), enrolled["enrolled_at"], strict=True))
    assert at == {pid: T0 - timedelta(days=20), int(unmonitored[0]): T0 - timedelta(days=99)}
    assert list(devices_store.patients_enrolled_at(as_triage, [pid])["patient_id"]) == [pid]


def test_current_holder(db: Conn, as_ingest: Conn) -> None:
    pid = dbseed.patient(db, assigned_from=T0 - timedelta(days=20))

    assert devices_store.current_holder(as_ingest, f"GL-{pid}") == pid
    db.execute("UPDATE device_assignments SET valid_to = %s WHERE device_id = %s", (T0, f"GL-{pid}"))
    assert devices_store.current_holder(as_ingest, f"GL-{pid}") is None
    assert devices_store.current_holder(as_ingest, "no-such-device") is None


def test_simulated_set_up_is_bulk_and_keeps_what_is_there(db: Conn) -> None:
    since = datetime(2015, 1, 1, tzinfo=UTC)
    pid = dbseed.patient(db, assigned_from=since)
    fleet = [SimulatedDevice("SIM-1", "blood_pressure", "gw-1", "SIMULATED", "m1"),
             SimulatedDevice("SIM-2", "glucose", "gw-2", "rpmflow-sim", "chaos", "SER-2"),
             SimulatedDevice(f"BP-{pid}", "blood_pressure", "gw-other", "X", "Y")]
    with db.transaction():
        devices_store.provision_simulated(db, fleet, since=since, by="test", reason="fleet set-up")
        devices_store.assign_simulated(db, [("SIM-1", pid)], since=since, by="test")
    # a rerun raises nothing and changes nothing
    devices_store.provision_simulated(db, fleet, since=since, by="again", reason="rerun")

    rows = db.execute("SELECT device_id, manufacturer, model, serial, last_gateway_id FROM devices"
                      " WHERE device_id IN ('SIM-1', 'SIM-2') ORDER BY device_id").fetchall()
    assert rows == [("SIM-1", "SIMULATED", "m1", None, "gw-1"),
                    ("SIM-2", "rpmflow-sim", "chaos", "SER-2", "gw-2")]
    enrolments = db.execute("SELECT device_id, gateway_id, enrolled_by FROM device_enrolments"
                            " WHERE device_id IN ('SIM-1', 'SIM-2', %s) ORDER BY device_id",
                            (f"BP-{pid}",)).fetchall()
    assert enrolments == [(f"BP-{pid}", "gw-t", "test"), ("SIM-1", "gw-1", "test"), ("SIM-2", "gw-2", "test")]
    assert devices_store.current_holder(db, "SIM-1") == pid
