"""Hostile input at scale against the ingest contract, the gateway decoders and a running ingest.

Three surfaces, each with the number of inputs it was given printed (``-s`` shows them):

1. ``ingest.contract.decode`` / ``ingest.pipeline.classify``: thousands of byte strings and
   structure-aware mutations of a valid reading; the answer is a valid message or a typed
   ``ContractViolation`` with a reason, never another exception; ``classify`` never raises.
2. The gateway's GATT decoders: any bytes give a result or a ``GatewayError``; and any 0x2A35 /
   0x2A18 frame the gateway accepts becomes a message ingest accepts (never a dead letter).
3. A stream of garbage published through the real broker into ``rpmflow-ingest run``: every
   message becomes a dead letter with a reason, the process keeps running, and a valid reading
   sent afterwards is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from gateway.decode_cli import DECODERS
from gateway.errors import GatewayError
from gateway.gatt import GlucoseRecord, parse_blood_pressure_measurement, parse_glucose_measurement
from gateway.wire import DeviceIdentity, Timing, blood_pressure_reading, encode, glucose_reading
from ingest.contract import ValidReading, ValidStatus, decode
from ingest.errors import ContractViolation
from ingest.pipeline import classify
from ingest.writer import Accepted, DeadLetter
from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls
from tests.ingest.helpers import enrol, with_contract_id
from tests.waiting import wait_for

EXAMPLES = int(os.environ.get("RPMFLOW_TEST_HOSTILE_EXAMPLES", "2000"))
SCALE = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
GW = "gw-hostile"
TOPIC = f"rpm/v1/{GW}/readings"

VALID: dict[str, Any] = {
    "schema": "rpmflow.reading.v1", "message_id": "3bc07ada3f581d70639fbccb04f74623", "gateway_id": GW,
    "device": {"id": "OMR-7361-000123", "manufacturer": "OMRON", "model": "HEM-7361T",
               "serial": "OMR-7361-000123", "firmware": "1.2", "address": "C8:4F:86:00:01:23"},
    "kind": "blood_pressure", "measured_at": "2026-11-23T14:30:33Z", "device_time": "2026-11-23T09:30:45",
    "clock_offset_s": 12.0, "received_at": "2026-11-23T14:31:02Z", "sequence_number": None,
    "values": {"systolic_mmhg": 182.0, "diastolic_mmhg": 95.0, "mean_arterial_mmhg": 124.0,
               "pulse_bpm": 77.0},
    "original": None, "status": ["irregular_pulse"], "measurement": "ok", "transmission": "automatic",
    "user_id": 1, "context": None, "raw": "1eb6005f007c00ea070b17091e2d4d00010400",
}

tried: dict[str, int] = {}


def _count(surface: str) -> None:
    tried[surface] = tried.get(surface, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _print_counts() -> Iterator[None]:
    yield
    for surface, n in sorted(tried.items()):
        print(f"\nhostile inputs tried: {surface}: {n}")


# -- 1. the contract -----------------------------------------------------------------------------------

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40), st.sampled_from(["", "\u0000", "NaN", "Infinity", "2026-13-45T99:99:99Z",
                                           "2026-11-23T14:30:33", "x" * 300, "\ud7ff\ue000", "0" * 32]),
)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
paths = st.sampled_from(
    [(k,) for k in VALID] + [("device", k) for k in VALID["device"]]
    + [("values", k) for k in VALID["values"]]
)


@st.composite
def mutated_reading(draw: st.DrawFn) -> bytes:
    """A valid reading with 1-3 fields replaced by arbitrary JSON or removed, plus junk keys."""
    obj = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(paths)
        target = obj
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                break
        else:
            if draw(st.booleans()):
                target.pop(path[-1], None)
            else:
                target[path[-1]] = draw(json_value)
    if draw(st.booleans()):
        obj[draw(st.text(max_size=8))] = draw(json_value)
    return json.dumps(obj, allow_nan=draw(st.booleans())).encode()


raw_payloads = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_value.map(lambda v: json.dumps(v).encode()),
    mutated_reading(),
    st.sampled_from([b"[" * 50_000, b"{\"a\":" * 20_000, b"1e999999", b"\xff\xfe{}", b"{}" + b" " * 70_000,
                     json.dumps(VALID).encode()[:-1], b"null", b"\"" + b"\\u0000" * 10 + b"\""]),
)
topics = st.one_of(st.just(TOPIC), st.just(f"rpm/v1/{GW}/status"), st.just("rpm/v1/other-gw/readings"),
                   st.text(max_size=60))


def _contract_answer(topic: str, payload: bytes) -> ValidReading | ValidStatus | None:
    try:
        return decode(topic, payload)
    except ContractViolation as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip(), "a ContractViolation without a reason"
        return None


@SCALE
@given(topic=topics, payload=raw_payloads)
def test_contract_answers_valid_or_a_typed_violation(topic: str, payload: bytes) -> None:
    _count("ingest.contract.decode (topic, bytes)")
    answer = _contract_answer(topic, payload)
    item = classify(topic, payload, now=NOW)  # never raises: a validator bug becomes a dead letter
    if answer is None:
        assert isinstance(item, DeadLetter) or (item is None and not payload)
        if isinstance(item, DeadLetter):
            assert item.reason and item.error_class == "ContractViolation"
    else:
        assert isinstance(item, Accepted | ValidStatus)


@SCALE
@given(payload=mutated_reading())
def test_mutated_readings_are_refused_with_a_reason_or_accepted_whole(payload: bytes) -> None:
    _count("ingest.contract.decode (mutated valid reading)")
    answer = _contract_answer(TOPIC, payload)
    if isinstance(answer, ValidReading):  # what is accepted is consistent with the contract
        assert answer.gateway_id == GW and answer.kind in ("blood_pressure", "glucose")
        assert len(answer.message_id) == 32 and answer.measured_at.tzinfo is not None


# -- 2. the gateway decoders -----------------------------------------------------------------------

frames = st.one_of(
    st.binary(max_size=32),
    st.tuples(st.integers(0, 0x1F), st.binary(min_size=6, max_size=24)).map(lambda t: bytes([t[0]]) + t[1]),
    st.tuples(st.integers(0, 0x1F), st.binary(min_size=6, max_size=6), st.integers(1582, 9999),
              st.binary(min_size=5, max_size=16)).map(
        lambda t: bytes([t[0]]) + t[1] + t[2].to_bytes(2, "little") + t[3]),
)
DEVICE = DeviceIdentity(id="HOSTILE-1", manufacturer="x", model="y", serial="HOSTILE-1")
TIMING = Timing(received_at=NOW, clock_offset_s=3.5, zone=ZoneInfo("America/New_York"))


@SCALE
@given(characteristic=st.sampled_from(sorted(DECODERS)), data=frames)
def test_gateway_decoders_answer_a_result_or_a_gateway_error(characteristic: str, data: bytes) -> None:
    _count("gateway GATT decoders (characteristic, bytes)")
    with contextlib.suppress(GatewayError):
        DECODERS[characteristic](data)


@SCALE
@given(data=frames, glucose=st.booleans())
def test_every_frame_the_gateway_accepts_is_a_message_ingest_accepts(data: bytes, glucose: bool) -> None:
    """Gateway and ingest agree: a decodable frame is never dead-lettered downstream."""
    _count("gateway frame -> wire message -> ingest contract")
    try:
        if glucose:
            message = glucose_reading(GlucoseRecord(parse_glucose_measurement(data), None), gateway_id=GW,
                                      device=DEVICE, timing=TIMING)
        else:
            message = blood_pressure_reading(parse_blood_pressure_measurement(data), gateway_id=GW,
                                             device=DEVICE, timing=TIMING)
    except GatewayError:
        return
    item = classify(TOPIC, encode(message).encode(), now=NOW)
    assert isinstance(item, Accepted), f"ingest dead-lettered a frame the gateway accepted: {item}"


# -- 3. garbage through the real broker into a running ingest ---------------------------------------

def _garbage(gw: str) -> list[tuple[str, bytes]]:
    """Distinct hostile messages on the gateway's own readings topic (the only one its ACL allows)."""
    topic = f"rpm/v1/{gw}/readings"
    base = dict(VALID, gateway_id=gw)
    out: list[bytes] = [
        b"", b"not json", b"\xff\xfe\xfd", b"[" * 50_000, b"{\"a\":" * 20_000, b"1e999999", b"null", b"[]",
        b"{}", b"\"string\"", b"{" + b" " * 66_000 + b"}", json.dumps(base).encode()[:-1],
        json.dumps(dict(base, gateway_id="someone-else")).encode(),
        json.dumps(dict(base, schema="rpmflow.reading.v2")).encode(),
        json.dumps(dict(base, message_id="ZZ" * 16)).encode(),
        json.dumps(dict(base, values={"systolic_mmhg": "182"})).encode(),
        json.dumps(dict(base, measured_at="yesterday")).encode(),
        json.dumps(dict(base, kind="weight")).encode(),
        json.dumps(dict(base, device={"id": ""})).encode(),
        json.dumps(dict(base, values={"systolic_mmhg": float("nan")})).encode(),
        json.dumps(dict(base, device=dict(base["device"], id="NUL\u0000DEVICE"))).encode(),
        json.dumps(dict(base, raw="zz")).encode(),
    ]
    for i in range(120):  # a stream of seeded noise and mutations, each distinct
        rnd = secrets.token_bytes(8 + i % 40)
        out.append(rnd if i % 3 else json.dumps(dict(base, message_id=rnd.hex()[:31])).encode())
    assert len(set(out)) == len(out)
    return [(topic, p) for p in out]


def _publish_all(broker: EmbeddedMosquitto, gw: str, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hostile-{secrets.token_hex(4)}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(gw, broker.accounts[gw])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_garbage_stream_ends_in_dead_letters_and_ingest_keeps_storing(
    broker: EmbeddedMosquitto, gateway_id: str, database_urls: DatabaseUrls, db: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    env.update(RPMFLOW_DATABASE_URL=database_urls.ingest, RPMFLOW_MQTT_URL=broker.add_ingest(),
               RPMFLOW_INGEST_BATCH_MS="50",
               RPMFLOW_INGEST_SHARED="true", RPMFLOW_INGEST_GROUP=f"hostile-{secrets.token_hex(3)}")
    log_path = tmp_path / "ingest.log"
    exe = str(Path(sys.executable).parent / "rpmflow-ingest")
    enrol(db, VALID["device"]["id"], gateway_id)  # the valid reading's cuff is this gateway's
    with log_path.open("wb") as log:
        proc = subprocess.Popen([exe, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "subscribed to" in log_path.read_text(), 30, "ingest to subscribe")
        garbage = _garbage(gateway_id)
        _publish_all(broker, gateway_id, garbage)
        valid = with_contract_id(dict(VALID, gateway_id=gateway_id, raw=VALID["raw"] + secrets.token_hex(4)))
        _publish_all(broker, gateway_id, [(f"rpm/v1/{gateway_id}/readings", json.dumps(valid).encode())])
        wait_for(lambda: db.execute("SELECT count(*) FROM readings WHERE message_id = %s",
                                    (valid["message_id"],)).fetchone() == (1,),
                 30, "the valid reading sent after the garbage to be stored")
        wait_for(lambda: db.execute("SELECT count(*) FROM dead_letters").fetchone() == (len(garbage),),
                 30, f"{len(garbage)} dead letters")
        assert proc.poll() is None, "ingest exited under hostile input"
        rows = db.execute("SELECT error_class, reason, payload, payload_size, payload_whole_sha256"
                          " FROM dead_letters").fetchall()
        # a dead letter keeps the first 64 KiB, plus the size and SHA-256 of the whole message
        kept = {(bytes(r[2]), r[3], r[4]) for r in rows}
        assert kept == {(p[:65536], len(p), hashlib.sha256(p).hexdigest()) for _, p in garbage}, \
            "a hostile message vanished"
        assert all(r[0] and r[1] and r[1].strip() for r in rows), "a dead letter without a reason"
        assert db.execute("SELECT count(*) FROM readings").fetchone() == (1,)
        tried["running ingest over the real broker (messages)"] = len(garbage)
        print(f"\ndead letters by class: {sorted({str(r[0]) for r in rows})}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert "Traceback" not in log_path.read_text()
