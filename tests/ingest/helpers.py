"""Shared helpers of the ingest tests: message builders, a PUBACK-confirmed publisher, consumers.

Messages are written out here as literals (not imported from production code), so a test fails
when the contract implementation drifts from docs/wire-format.md. :func:`contract_id` is the
message-id recipe of docs/wire-format.md written out again, on purpose, as an independent oracle.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.consumer import Consumer
from ingest.receiver import Receiver
from ingest.settings import Settings, parse_mqtt_url
from ingest.writer import keys_table
from simulators.embedded_mosquitto import EmbeddedMosquitto
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
# readings.message_id is a uuid; this SQL spells it the wire's way (32 lowercase hex).
HEX_ID = "replace(message_id::text, '-', '')"

EXAMPLE: dict[str, Any] = {
    "schema": "rpmflow.reading.v1",
    "message_id": "3bc07ada3f581d70639fbccb04f74623",  # the recipe of its device, kind and raw
    "gateway_id": "gw-0001",
    "device": {
        "id": "OMR-7361-000123",
        "manufacturer": "OMRON",
        "model": "HEM-7361T",
        "serial": "OMR-7361-000123",
        "firmware": "1.2",
        "address": "C8:4F:86:00:01:23",
    },
    "kind": "blood_pressure",
    "measured_at": "2025-11-23T14:30:33Z",
    "device_time": "2025-11-23T09:30:45",
    "clock_offset_s": 12.0,
    "received_at": "2025-11-23T14:31:02Z",
    "sequence_number": None,
    "values": {
        "systolic_mmhg": 182.0,
        "diastolic_mmhg": 95.0,
        "mean_arterial_mmhg": 124.0,
        "pulse_bpm": 77.0,
    },
    "original": None,
    "status": ["irregular_pulse"],
    "measurement": "ok",
    "transmission": "automatic",
    "user_id": 1,
    "context": None,
    "raw": "1eb6005f007c00ea070b17091e2d4d00010400",
}

GLUCOSE: dict[str, Any] = {
    "schema": "rpmflow.reading.v1",
    "message_id": "ce93ce24a0f3c1072b565d46ffc72eef",  # seq=17, base time unknown
    "gateway_id": "gw-0001",
    "device": {
        "id": "GLU-1",
        "manufacturer": None,
        "model": None,
        "serial": None,
        "firmware": None,
        "address": None,
    },
    "kind": "glucose",
    "measured_at": "2025-11-23T14:30:33+00:00",
    "device_time": None,
    "received_at": "2025-11-23T14:31:02Z",
    "sequence_number": 17,
    "values": {
        "glucose_mg_dl": 99.09,
        "sample_type": "capillary_whole_blood",
        "sample_location": "finger",
        "meal": "preprandial",
    },
    "original": {"unit": "mol/L", "concentration": 0.0055},
    "status": [],
    "raw": "061100" + "00" * 7 + "37c011",  # seq 17, base time unknown, 0.0055 mol/L
}


def reading(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` (default: the wire-format example) with top-level ``changes``."""
    out = copy.deepcopy(base or EXAMPLE)
    out.update(changes)
    return out


def contract_id(msg: dict[str, Any]) -> str:
    """The message id docs/wire-format.md prescribes for ``msg``'s own contents (independent oracle)."""
    raw, kind = msg["raw"], msg["kind"]
    if kind == "glucose":
        b = bytes.fromhex(raw.split("+")[0])[3:10]
        year, month, day = int.from_bytes(b[:2], "little"), b[2], b[3]
        base = "unknown" if 0 in (year, month, day) else datetime(year, month, day, *b[4:7]).isoformat()
        identity = f"seq={msg['sequence_number']}|base={base}"
    elif msg["device_time"] is None:
        identity = f"raw={raw}|rx={msg['received_at']}"
    else:
        identity = f"raw={raw}"
    recipe_input = "|".join(("v1", msg["device"]["id"], kind, identity))
    return hashlib.sha256(recipe_input.encode()).hexdigest()[:32]


def with_contract_id(msg: dict[str, Any]) -> dict[str, Any]:
    """``msg`` carrying the id its contents call for (after a test changed what the id covers)."""
    return {**msg, "message_id": contract_id(msg)}


def unique_reading(gateway_id: str, n: int, **changes: Any) -> dict[str, Any]:
    """The n-th distinct valid blood-pressure reading of ``gateway_id``: its raw bytes end in a tag
    of (gateway, n), and its message id is the contract's recipe of its contents."""
    tag = hashlib.sha256(f"{gateway_id}|{n}".encode()).hexdigest()[:8]
    msg = reading(gateway_id=gateway_id, raw=EXAMPLE["raw"] + tag)
    msg = with_contract_id(msg)
    msg.update(changes)
    if msg["kind"] in ("blood_pressure", "glucose") and "message_id" not in changes:
        msg = with_contract_id(msg)
    return msg


ENROLLED_SINCE = datetime(2015, 1, 1, tzinfo=UTC)


def enrol(conn: psycopg.Connection[Any], device_id: str, gateway_id: str, kind: str = "blood_pressure",
          since: datetime = ENROLLED_SINCE) -> None:
    """Enrol ``device_id`` on ``gateway_id`` as an admin would (ingest refuses a reading from any
    other gateway, and one for a device enrolled nowhere). Written out as SQL, not through
    triage/clinical/device_enrolments.py, so ingest tests do not depend on the admin workflow."""
    conn.execute("INSERT INTO devices (device_id, kind, last_gateway_id) VALUES (%s, %s, %s)"
                 " ON CONFLICT (device_id) DO NOTHING", (device_id, kind, gateway_id))
    conn.execute("INSERT INTO device_enrolments (device_id, gateway_id, valid_from, enrolled_by, reason)"
                 " VALUES (%s, %s, %s, 'test', 'test set-up')", (device_id, gateway_id, since))


def enrol_messages(conn: psycopg.Connection[Any], msgs: Iterable[dict[str, Any]]) -> None:
    """Enrol the device of each reading message on the gateway that sends it (once per pair)."""
    for device_id, gateway_id, kind in dict.fromkeys(
            (m["device"]["id"], m["gateway_id"], m["kind"]) for m in msgs):
        enrol(conn, device_id, gateway_id, kind)


def enrol_url(url: str, msgs: Iterable[dict[str, Any]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        enrol_messages(conn, msgs)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def status(gateway_id: str, at: str, online: bool = True) -> dict[str, Any]:
    return {
        "schema": "rpmflow.status.v1",
        "gateway_id": gateway_id,
        "online": online,
        "at": at,
        "outbox_depth": 0,
        "outbox_capacity": 10000,
        "outbox_full": False,
        "devices": {},
        "software": "test",
    }


class Publisher:
    """A gateway's MQTT v5 client; ``publish_all`` returns once every message has its PUBACK."""

    def __init__(self, broker: EmbeddedMosquitto, gateway_id: str) -> None:
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{gateway_id}-t{secrets.token_hex(2)}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(gateway_id, broker.accounts[gateway_id])
        self.client.max_inflight_messages_set(200)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._lock:
            self._acked.add(mid)

    def publish_all(self, messages: list[tuple[str, bytes]], *, retain: bool = False) -> None:
        mids = [self.client.publish(topic, payload, qos=1, retain=retain).mid for topic, payload in messages]

        def done() -> bool:
            with self._lock:
                return all(m in self._acked for m in mids)

        wait_for(done, 30, f"PUBACK for {len(mids)} messages")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def forget_session(mqtt_url: str, client_id: str) -> None:
    """Delete a persistent session on the broker so it stops queueing other tests' messages."""
    target = parse_mqtt_url(mqtt_url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(target.username, target.password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    with contextlib.suppress(OSError):
        c.connect(target.host, target.port, clean_start=True, properties=props)
        c.loop_start()
        wait_for(c.is_connected, 10, "session clean-up connection")
        c.disconnect()
        c.loop_stop()


def make_settings(database_url: str, mqtt_url: str, **changes: Any) -> Settings:
    """Test settings; ``mqtt_url`` should be an account of this test's own (``broker.add_ingest()``):
    the broker binds client ids to usernames, so the account is the session."""
    tag = secrets.token_hex(3)
    base = Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        group=f"g{tag}",
        batch_ms=50,
        session_expiry_s=300,
    )
    return base.override(**changes)


@contextlib.contextmanager
def running_consumer(settings: Settings, *, forget: bool = True) -> Iterator[Consumer | Receiver]:
    """A consumer on a thread of this process, subscribed before the body runs (with
    ``settings.workers`` > 0: the receiver, its workers being processes)."""
    consumer = Receiver(settings) if settings.workers else Consumer(settings)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(consumer.subscribed.is_set, 15, "consumer subscription")
        yield consumer
    finally:
        stop.set()
        thread.join(30)
        if forget:
            forget_session(settings.mqtt_url, settings.session_id)
    assert not thread.is_alive(), "consumer did not stop"


def count(conn: psycopg.Connection[Any], query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class IngestProcess:
    """``rpmflow-ingest run`` as a real subprocess (so tests can SIGKILL and SIGTERM it)."""

    settings: Settings
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
        env.update(
            {
                "RPMFLOW_DATABASE_URL": s.database_url,
                "RPMFLOW_INGEST_MQTT_URL": s.mqtt_url,
                "RPMFLOW_INGEST_CLIENT_ID": s.client_id,
                "RPMFLOW_INGEST_GROUP": s.group,
                "RPMFLOW_INGEST_BATCH_MS": str(s.batch_ms),
                "RPMFLOW_INGEST_BATCH_SIZE": str(s.batch_size),
                "RPMFLOW_INGEST_SESSION_EXPIRY_S": str(s.session_expiry_s),
                "RPMFLOW_INGEST_SHARED": str(s.shared).lower(),
                "RPMFLOW_INGEST_WORKERS": str(s.workers),
            }
        )
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingest.cli", "run", "--no-migrate"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def subscribed() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            return b"subscribed to" in self.log_path.read_bytes()[offset:]

        wait_for(subscribed, 30, f"ingest {s.session_id} subscribed")

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self) -> None:
        if self.alive:
            self.kill()
        forget_session(self.settings.mqtt_url, self.settings.session_id)


class FleetThread:
    """``simulators.fleet.run_fleet`` on a background thread; ``published`` counts as it goes."""

    def __init__(self, broker_port: int, credentials: dict[str, str], config: Any, *, enrol_in: str) -> None:
        """``enrol_in``: the database URL where the fleet's devices are enrolled on their gateways."""
        from simulators.fleet import FleetReport, enrol_devices, make_devices, run_fleet

        devices = make_devices(config, config.gateway_ids())
        enrol_devices(enrol_in, devices)
        self.published = 0
        self.report: FleetReport | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()

        def bump(_: str) -> None:
            self.published += 1

        def target() -> None:
            try:
                self.report = run_fleet(
                    f"mqtt://127.0.0.1:{broker_port}",
                    credentials,
                    config,
                    stop=self.stop,
                    on_published=bump,
                    ack_timeout=60,
                    devices=devices,
                )
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def join(self, timeout: float = 90) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "fleet did not finish"
        assert self.error is None, self.error
        assert self.report is not None
        if self.report.resent or self.report.confirmed:  # confirm mode: ingest's ack is what counts
            assert self.report.confirmed == self.report.published, self.report.table()
        else:
            assert self.report.acked == self.report.published, self.report.table()
        return self.report


def restart_broker_under_load(db: psycopg.Connection[Any], broker: EmbeddedMosquitto, fleet: FleetThread,
                               ingests: list[IngestProcess], total: int,
                               resubscribed: Any = None) -> Any:
    """Restart ``broker`` once some readings are committed, let the fleet finish, wait until all
    ``total`` readings are stored with every ingest process alive; returns the fleet's report."""
    def rows() -> int:
        return count(db, "SELECT count(*) FROM readings")

    wait_for(lambda: rows() >= 500, 30, "some readings committed")
    broker.stop()
    broker.start()
    if resubscribed is not None:
        wait_for(resubscribed, 30, "every ingest process subscribed again")
    report = fleet.join(120)  # publishers resend whatever had no PUBACK (or no end-to-end ack)
    wait_for(lambda: rows() == total, 60, f"all {total} readings stored after the restart")
    for ingest in ingests:
        assert ingest.alive, ingest.tail()
    return report


def assert_stored_exactly_once(db: psycopg.Connection[Any], message_ids: list[str]) -> None:
    """Every published reading is stored once, nothing else is, and no valid one is a dead letter."""
    assert len(set(message_ids)) == len(message_ids), "the fleet published duplicate ids"
    rows = [r[0] for r in db.execute(f"SELECT {HEX_ID} FROM readings")]
    assert len(rows) == len(message_ids), (len(rows), len(message_ids))
    assert set(rows) == set(message_ids)
    if keys_table(db):  # TimescaleDB: the dedupe ids beside the hypertable
        assert count(db, "SELECT count(*) FROM reading_keys") == len(message_ids)
    assert count(db, "SELECT count(*) FROM dead_letters") == 0
