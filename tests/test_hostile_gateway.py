"""A hostile gateway with its own valid broker credentials, over the real broker and database (issue 14).

Gateway B cannot speak for gateway A's cuff: its crisis reading for A's patient is a dead letter with
its reason, not a reading and not a flag; it cannot pre-claim the id of A's reading (A's reading is
stored and acked ok, B's copy is refused); it cannot change the device's description or gateway.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls
from tests.ingest.helpers import (
    EXAMPLE,
    Publisher,
    count,
    dumps,
    make_settings,
    running_consumer,
    unique_reading,
)
from tests.ingest.test_acks import AckListener
from tests.waiting import wait_for
from triage.clinical import device_enrolments, people
from triage.jobs import IncrementalJob
from triage.settings import Settings as TriageSettings

Conn = psycopg.Connection[tuple[Any, ...]]
CUFF = "CUFF-OF-A"


def _crisis(gateway_id: str, n: int, **changes: Any) -> dict[str, Any]:
    """A hypertensive crisis (182/95) of A's cuff, measured an hour ago."""
    at = (datetime.now(UTC) - timedelta(hours=1, minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    device = {**EXAMPLE["device"], "id": CUFF, "serial": CUFF, **changes}
    return unique_reading(gateway_id, n, device=device, measured_at=at, received_at=at)


def _as(msg: dict[str, Any], gateway_id: str) -> dict[str, Any]:
    return {**msg, "gateway_id": gateway_id}


def _flags(database_urls: DatabaseUrls, pid: int) -> list[tuple[Any, ...]]:
    settings = TriageSettings.from_env({"RPMFLOW_DATABASE_URL": database_urls.triage})
    with psycopg.connect(database_urls.triage, autocommit=True) as conn:
        IncrementalJob(settings).run(conn)
        return conn.execute("SELECT rule_id, severity FROM flags WHERE patient_id = %s", (pid,)).fetchall()


def test_a_gateway_speaks_only_for_the_devices_enrolled_on_it(
    database_urls: DatabaseUrls, broker: EmbeddedMosquitto, gateway_id: str, db: Conn
) -> None:
    gw_a, gw_b = gateway_id, f"{gateway_id}-b"
    broker.add_gateways([gw_b])
    with psycopg.connect(database_urls.dashboard, autocommit=True) as admin:
        pid = people.create_patient(admin, mrn=f"MRN-{gw_a}", display_name="A's patient", state="NY")
        since = datetime.now(UTC) - timedelta(days=2)
        device_enrolments.enrol(admin, device_enrolments.Device(CUFF, "blood_pressure", "OMRON", "HEM-7361T",
                                                                "1.2"),
                                gw_a, at=since, by="ada", reason="handed over")
        people.assign_device(admin, CUFF, pid, at=since, assigned_by="ada")

    forged = _crisis(gw_b, 1, model="EVIL", firmware="6.6")
    real = _crisis(gw_a, 2)
    # Each gateway listens on its publisher's own connection: the broker binds client ids to
    # usernames, so a second connection of the same account would take the first one's place.
    pub_a, pub_b = Publisher(broker, gw_a), Publisher(broker, gw_b)
    listen_a = AckListener(broker, gw_a, f"rpm/v1/{gw_a}/acks", on=pub_a)
    listen_b = AckListener(broker, gw_b, f"rpm/v1/{gw_b}/acks", on=pub_b)
    try:
        with running_consumer(make_settings(database_urls.ingest, broker.add_ingest(), workers=1)):
            # 1. B's own credentials, B's own topic, a crisis for A's cuff
            pub_b.publish_all([(f"rpm/v1/{gw_b}/readings", dumps(_as(forged, gw_b)))])
            wait_for(lambda: forged["message_id"] in listen_b.rejected(), 20, "B's refusal")
            assert count(db, "SELECT count(*) FROM readings") == 0
            assert _flags(database_urls, pid) == [], "no flag from a forged reading"
            # 2. id squatting: B sends A's exact reading first, then A sends it
            pub_b.publish_all([(f"rpm/v1/{gw_b}/readings", dumps(_as(real, gw_b)))])
            wait_for(lambda: real["message_id"] in listen_b.rejected(), 20, "B's squat refused")
            pub_a.publish_all([(f"rpm/v1/{gw_a}/readings", dumps(real))])
            wait_for(lambda: real["message_id"] in listen_a.ids(), 20, "A's reading acked ok")
    finally:
        for c in (pub_a, pub_b, listen_a, listen_b):
            c.close()

    assert listen_b.rejected() == {forged["message_id"]: "wrong_gateway", real["message_id"]: "wrong_gateway"}
    assert listen_b.ids() == [], "B is never told its reading was stored"
    assert listen_a.rejected() == {}
    stored = db.execute("SELECT gateway_id, patient_id, systolic_mmhg FROM readings").fetchall()
    assert stored == [(gw_a, pid, 182.0)], "only A's reading, for A's patient"
    letters = db.execute(
        "SELECT gateway_id, error_class, reason FROM dead_letters ORDER BY dead_letter_id").fetchall()
    assert [(g, c) for g, c, _ in letters] == [(gw_b, "BindingRefused"), (gw_b, "BindingRefused")]
    why = f"wrong_gateway: device {CUFF} is enrolled on gateway {gw_a}"
    assert all(r.startswith(why) for _, _, r in letters)
    # 3. the device's description and gateway are the enrolment's, whatever B said
    device = db.execute("SELECT manufacturer, model, firmware, last_gateway_id, reported->>'model',"
                        " reported->>'gateway_id' FROM devices WHERE device_id = %s", (CUFF,)).fetchone()
    assert device == ("OMRON", "HEM-7361T", "1.2", gw_a, "HEM-7361T", gw_a)
    # the control: A's own crisis raises the flag B's could not
    assert ("bp_crisis", "critical") in _flags(database_urls, pid)
