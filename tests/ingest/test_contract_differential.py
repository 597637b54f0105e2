"""The fast path against the reference: one message, one answer.

``decode`` tries the one-pass check of ingest/contract_fast.py first; the rule-by-rule reference
(ingest/contract_reference.py) alone is the definition of valid. Over the contract test vectors, the
fleet's four kinds and a seeded corpus of mutated valid messages, ``decode`` must return a reading
equal (field by field) to the reference's, or raise the same error class with the same reason, or
fail the same way (a validator bug that becomes an ``InternalError`` dead letter). The dead-letter
reasons are a public interface.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway import contract as wire
from ingest import contract_reference as reference
from ingest.contract import decode
from ingest.valid import ValidReading, ValidStatus
from simulators.fleet import FleetConfig, make_devices
from simulators.fleet_messages import build_reading
from tests.ingest.corpus import corpus
from tests.ingest.helpers import EXAMPLE, GLUCOSE, dumps, status

GW = "gw-0001"
TOPIC = f"rpm/v1/{GW}/readings"
SEED = int(os.environ.get("RPMFLOW_FUZZ_SEED", "20261203"))

Outcome = tuple[Any, ...]


def _outcome(fn: Any, topic: str, payload: bytes) -> Outcome:
    try:
        r = fn(topic, payload)
    except Exception as exc:  # the class and text are what is compared
        return ("raised", type(exc).__name__, getattr(exc, "reason", str(exc)))
    fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
    if "device" in fields:
        fields["device"] = dataclasses.astuple(fields["device"])
    return ("ok", type(r).__name__, tuple(sorted(fields.items(), key=lambda kv: kv[0])))


def _reference_decode(topic: str, payload: bytes) -> ValidReading | ValidStatus:
    """``decode`` without the fast path: the reference alone answers every message."""
    m = wire.INBOUND_TOPIC_RE.match(topic)
    if m is None:  # refused by topic before either validator runs
        return decode(topic, payload)
    gateway_id, leaf = m.group(1), m.group(2)
    text, obj = reference.load_object(payload)
    if leaf == "status":
        return reference.status(topic, gateway_id, obj, text)
    return reference.reading(topic, gateway_id, obj, text)


def _agree(topic: str, payload: bytes) -> Outcome:
    got, ref = _outcome(decode, topic, payload), _outcome(_reference_decode, topic, payload)
    assert got == ref, f"{topic} {payload[:300]!r}"
    return got


def _fleet(n: int, vitals: float = 0.5) -> list[tuple[str, bytes]]:
    config = FleetConfig(gateways=3, devices_per_gateway=8, seed=11, vitals_share=vitals)
    devices = make_devices(config, config.gateway_ids())
    start = datetime(2026, 3, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        gw, dev = devices[i % len(devices)]
        at = start + timedelta(minutes=i)
        out.append((f"rpm/v1/{gw}/readings", build_reading(gw, dev, at, at + timedelta(seconds=3))[1]))
    return out


@pytest.mark.parametrize(("case", "payload", "reason"), corpus(GW), ids=[c[0] for c in corpus(GW)])
def test_every_malformed_vector_keeps_its_reason(case: str, payload: bytes, reason: str) -> None:
    outcome = _agree(TOPIC, payload)
    assert outcome[0] == "raised" and reason in outcome[2]


def test_valid_vectors_give_equal_readings() -> None:
    for topic, payload in [(TOPIC, dumps(EXAMPLE)), (TOPIC, dumps(GLUCOSE)), *_fleet(40)]:
        assert _agree(topic, payload)[0] == "ok"
    assert _agree(f"rpm/v1/{GW}/status", dumps(status(GW, "2026-01-01T00:00:00Z")))[0] == "ok"



# another kind's number, or a sample_count, on a blood-pressure or glucose reading: the fast path
# once skipped these (accepting "x", dropping 70.5); now both answer as the reference does
_FOREIGN = [
    ("weight_kg", "x", "values.weight_kg must be a number or null"),
    ("spo2_pct", "97", "values.spo2_pct must be a number or null"),
    ("sample_count", 3, "values.sample_count is only for spo2 readings"),
    ("sample_count", "3", "values.sample_count is only for spo2 readings"),
    ("weight_kg", 70.5, None),
    ("height_m", None, None),
    ("sample_count", None, None),
]


@pytest.mark.parametrize("base", [EXAMPLE, GLUCOSE], ids=["blood_pressure", "glucose"])
@pytest.mark.parametrize(("key", "value", "reason"), _FOREIGN, ids=[f"{k}={v!r}" for k, v, _ in _FOREIGN])
def test_other_kinds_values_have_one_answer(base: dict[str, Any], key: str, value: Any,
                                            reason: str | None) -> None:
    msg = copy.deepcopy(base)
    msg["values"][key] = value
    outcome = _agree(TOPIC, dumps(msg))
    if reason is None:
        assert outcome[0] == "ok" and dict(outcome[2])[key] == value
    else:
        assert outcome[:2] == ("raised", "ContractViolation") and reason in outcome[2], outcome


# values a buggy or hostile gateway might put anywhere
_POOL: list[Any] = [
    None, True, False, 0, -1, 1, 17, 255, 256, 65535, 65536, 2**53, 1.5, -0.0, 1e308, "", " ", "x",
    "ok", "failed", "manual", "automatic", "glucose", "blood_pressure", "weight", "spo2",
    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+01:00",
    "2026-01-01T00:00:00", "2026-01-01", "2026-13-01T00:00:00Z", "T", "Z", "ab", "ab+cd", "AB+", "abc",
    "0" * 32, "A" * 32, "g" * 32, [], ["a"], [1], {}, {"unit": "kPa"}, {"unit": "mol/L", "glucose": 0.0055},
    {"unit": "kPa", "systolic": 24.3, "diastolic": 12.7}, {"unit": 5}, {"x": [1, {"y": None}]},
]
_NESTED = ("values", "device", "original")


def _mutate(msg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    msg = json.loads(json.dumps(msg))
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        target = msg
        nested = [k for k in _NESTED if isinstance(msg.get(k), dict)]
        if nested and rng.random() < 0.4:
            target = msg[rng.choice(nested)]
        keys = [*sorted(target), "sample_count", "spo2_pct", "weight_kg", "extra"]
        key = rng.choice(keys)
        if rng.random() < 0.15:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(rng.choice(_POOL))
    if rng.random() < 0.5:  # re-sign: reach the checks after the message id
        with contextlib.suppress(Exception):  # contents too broken to sign: sent unsigned
            msg["message_id"] = wire.message_id_from_contents(
                device_id=msg["device"]["id"], kind=msg["kind"], raw=msg["raw"],
                device_time=msg["device_time"], received_at=msg["received_at"],
                sequence_number=msg["sequence_number"], sample_count=msg["values"].get("sample_count"))
    return msg


def _corrupt(payload: bytes, rng: random.Random) -> bytes:
    how = rng.randrange(4)
    if how == 0:
        return payload[: rng.randrange(len(payload))]
    if how == 1:
        i = rng.randrange(len(payload))
        return payload[:i] + bytes([rng.randrange(256)]) + payload[i + 1:]
    if how == 2:
        return payload.replace(b"0.0", b"NaN", 1).replace(b":1,", b":Infinity,", 1)
    return payload.replace(b'"', b"'", 1)


def test_fuzzed_corpus_same_outcome_and_reason() -> None:
    print(f"seed {SEED} (RPMFLOW_FUZZ_SEED)")
    rng = random.Random(SEED)
    bases = [(TOPIC, json.loads(dumps(EXAMPLE))), (TOPIC, json.loads(dumps(GLUCOSE)))]
    bases += [(t, json.loads(p)) for t, p in _fleet(24)]
    seen: set[str] = set()
    for _ in range(6000):
        topic, base = rng.choice(bases)
        payload = json.dumps(_mutate(base, rng)).encode()
        if rng.random() < 0.1:
            payload = _corrupt(payload, rng)
        if rng.random() < 0.05:
            topic = rng.choice([TOPIC.replace(GW, "gw-other"), topic.replace("readings", "status"),
                                "rpm/v1//readings", topic + "/x"])
        outcome = _agree(topic, payload)
        seen.add(outcome[0] if outcome[0] == "ok" else outcome[1])
    # the corpus reaches acceptance, contract violations and id mismatches alike
    assert {"ok", "ContractViolation", "MessageIdMismatch"} <= seen, seen
