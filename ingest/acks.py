"""End-to-end acknowledgements to gateways: "these readings are committed, drop them from your outbox".

Why: Mosquitto keeps queued messages in memory between autosaves, so a broker crash can lose a
message it already PUBACKed to the gateway. The gateway therefore deletes a reading only when ingest
confirms the commit on ``rpm/v1/<gateway_id>/acks`` (QoS 1, not retained) and re-sends otherwise;
ingest storage is idempotent, so a re-send is a duplicate and is acked again.

Which messages are acked (pure): every reading message of a committed batch. One that was stored,
or found already stored from the same gateway, is confirmed in ``message_ids``
(:func:`ack_groups`); one that was dead-lettered (contract, database refusal, or the device <->
gateway binding of ``ingest/binding.py``) is named in ``rejected`` with a short reason code
(:func:`rejection_groups`): terminal too, the gateway forgets it, but it is never reported as
stored. A dead letter is acked only if its payload is still a JSON object with a well-formed
``message_id``. Ids are grouped by the gateway id of the topic the message came on, never by what
the payload claims. Statuses are not acked.

Sending (:class:`AckSender`) never blocks and never retries on its own: it hands the message to
paho's bounded out-queue and counts it ``sent``; if the queue is full or the broker is gone the ack
is dropped (logged, counted) and the gateway's re-send earns a new one. The broker's PUBACK then
counts it ``delivered``, or ``refused`` (reason code ≥ 0x80, e.g. 0x87 when the ACL does not let
the ingest account write ``rpm/v1/+/acks``): a refused ack is logged with the topic, once per
gateway until one is delivered again, and never counted as delivered.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.contract import ACK_SCHEMA, MAX_IDS_PER_ACK, MESSAGE_ID_RE, READINGS_LEAF, TOPIC_ROOT, acks_topic
from gateway.runtime import broker
from ingest.items import Accepted, DeadLetter, Item, Rejection
from ingest.metrics import Metrics

log = logging.getLogger(__name__)

QUEUE_LIMIT: Final = 10_000  # ack messages paho may hold (in flight + waiting); beyond: dropped
# Un-PUBACKed acks on the wire. Mosquitto's default Receive Maximum is 20 and exceeding the broker's
# is a protocol error that drops the connection (and every PUBACK still to send); paho cannot change
# this once connected, so stay at the smallest common value (~20k acks/s at a 1 ms round trip).
INFLIGHT_LIMIT: Final = 20


AckGroups = dict[str, list[str]]  # gateway id (from the topic) → message ids, first-seen order
Rejections = dict[str, list[tuple[str, str]]]  # gateway id (from the topic) → (message id, reason code)


def readings_gateway(topic: str) -> str | None:
    """The ``<gw>`` of ``rpm/v1/<gw>/readings``, else None. Looser than the contract's topic rule on
    purpose: a gateway whose id the contract refuses still gets its dead letters acked (the broker
    ACL already proved the topic is its own)."""
    root, sep, rest = topic.partition(TOPIC_ROOT + "/")
    gateway_id, sep2, leaf = rest.partition("/")
    if not root and sep and sep2 and gateway_id and leaf == READINGS_LEAF:
        return gateway_id
    return None


def dead_letter_message_id(payload: bytes) -> str | None:
    """The ``message_id`` of a payload that is still a JSON object, else None. Only a well-formed id
    (32 lowercase hex, the only kind a gateway's outbox holds): the gateway refuses a whole ack
    that lists anything else, which would cost the valid ids sharing it."""
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):  # not UTF-8 / not JSON / absurdly nested
        return None
    if isinstance(obj, dict):
        mid = obj.get("message_id")
        if isinstance(mid, str) and MESSAGE_ID_RE.match(mid):
            return mid
    return None


def _code(error_class: str) -> str:
    """``ContractViolation`` → ``contract_violation``: the reason code a gateway logs."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", error_class).lower()


def ack_groups(items: Iterable[Item], rejected: Iterable[Rejection] = ()) -> AckGroups:
    """What to confirm once the transaction that handled ``items`` has committed: the readings
    stored or found already stored from the same gateway (every ``Accepted`` item not ``rejected``)."""
    refused = {(r.gateway_id, r.message_id) for r in rejected}
    groups: AckGroups = {}
    seen: set[tuple[str, str]] = set()
    for item in items:
        if not isinstance(item, Accepted):
            continue
        gw, mid = readings_gateway(item.reading.topic), item.reading.message_id
        if gw is None or (gw, mid) in seen or (gw, mid) in refused:
            continue
        seen.add((gw, mid))
        groups.setdefault(gw, []).append(mid)
    return groups


def rejection_groups(items: Iterable[Item], rejected: Iterable[Rejection] = (),
                     refused: Iterable[DeadLetter] = ()) -> Rejections:
    """What to report as refused: the dead letters among ``items`` (contract), ``refused`` (rows
    PostgreSQL refused) and ``rejected`` (the binding), each with its reason code."""
    out: Rejections = {}
    seen: set[tuple[str, str]] = set()

    def add(gw: str, mid: str, code: str) -> None:
        if (gw, mid) not in seen:
            seen.add((gw, mid))
            out.setdefault(gw, []).append((mid, code))

    for r in rejected:
        add(r.gateway_id, r.message_id, r.code)
    for letter in [*(x for x in items if isinstance(x, DeadLetter)), *refused]:
        gw = readings_gateway(letter.topic)
        if gw is None:
            continue  # a status (or a topic that names no gateway): nothing to ack
        mid = dead_letter_message_id(letter.payload)
        if mid is None:
            log.info("dead letter on %s has no well-formed message_id: nothing to ack", letter.topic)
            continue
        add(gw, mid, _code(letter.error_class))
    return out


def ack_payloads(gateway_id: str, ids: Sequence[str], committed_at: datetime,
                 rejected: Sequence[tuple[str, str]] = ()) -> list[tuple[int, bytes]]:
    """The ack messages for ``ids`` (confirmed) and ``rejected`` (id, reason code) as (number of
    ids, payload): at most ``MAX_IDS_PER_ACK`` ids each; ``rejected`` only when there are some."""
    stamp = committed_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out: list[tuple[int, bytes]] = []

    def one(chunk: list[str], refused: list[tuple[str, str]]) -> None:
        body: dict[str, object] = {"schema": ACK_SCHEMA, "gateway_id": gateway_id, "message_ids": chunk}
        if refused:
            body["rejected"] = [{"message_id": m, "reason": c} for m, c in refused]
        body["committed_at"] = stamp
        out.append((len(chunk) + len(refused), json.dumps(body, separators=(",", ":")).encode()))

    for i in range(0, len(ids), MAX_IDS_PER_ACK):
        one(list(ids[i:i + MAX_IDS_PER_ACK]), [])
    for i in range(0, len(rejected), MAX_IDS_PER_ACK):
        one([], list(rejected[i:i + MAX_IDS_PER_ACK]))
    return out


class AckSender:
    """Publishes acks on the service's own paho client; ``enabled=False`` makes it a no-op."""

    def __init__(self, client: mqtt.Client, metrics: Metrics, *, enabled: bool) -> None:
        self._client = client
        self._metrics = metrics
        self.enabled = enabled
        # mid → gateway id until the broker's PUBACK; a PUBACK may arrive before publish() returns,
        # so one for an unknown mid waits in _early. Both guarded by _lock (never held in paho).
        self._in_flight: dict[int, str] = {}
        self._early: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        self._refused: set[str] = set()  # gateways whose last ack the broker refused (logged)
        if enabled:
            client.max_queued_messages_set(QUEUE_LIMIT)
            client.max_inflight_messages_set(INFLIGHT_LIMIT)

    def send(self, groups: Mapping[str, Sequence[str]], committed_at: datetime | None = None, *,
             rejected: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> None:
        """Queue the acks of one commit; never blocks, never raises for a broker problem."""
        refused = rejected or {}
        if not self.enabled or not (groups or refused):
            return
        at = committed_at or datetime.now(UTC)
        m = self._metrics
        for gw in dict.fromkeys([*groups, *refused]):
            for n, payload in ack_payloads(gw, groups.get(gw, ()), at, refused.get(gw, ())):
                try:
                    info = self._client.publish(acks_topic(gw), payload, qos=1)
                    rc = info.rc
                    with self._lock:
                        early = self._early.pop(info.mid, None)
                        if early is None:
                            self._in_flight[info.mid] = gw
                    if early is not None:
                        self._answered(gw, early)
                except ValueError as exc:  # a topic paho refuses; cannot come from a received topic
                    log.warning("ack for %s not sent: %s", gw, exc)
                    rc = mqtt.MQTT_ERR_INVAL
                if rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    # NO_CONN: paho keeps it (bounded) and sends it after the reconnect
                    m.acks.labels("sent").inc()
                    m.acked_ids.inc(n)
                else:
                    m.acks.labels("dropped").inc()
                    log.warning("ack for %s dropped (%s); the gateway re-sends and is acked then",
                                gw, mqtt.error_string(rc))

    def on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason_code: ReasonCode,
                   properties: Properties | None) -> None:
        """paho's ``on_publish`` (network thread): the broker's answer to one ack."""
        with self._lock:
            gw = self._in_flight.pop(mid, None)
            if gw is None:
                self._early[mid] = reason_code
                return
        self._answered(gw, reason_code)

    def _answered(self, gw: str, reason_code: ReasonCode) -> None:
        if not reason_code.is_failure:
            self._metrics.acks.labels("delivered").inc()
            self._refused.discard(gw)
            return
        self._metrics.acks.labels("refused").inc()
        if gw not in self._refused:
            self._refused.add(gw)
            log.error("broker refused the ack on %s: %s; check the ingest account's ACL (write "
                      "rpm/v1/+/acks); gateway %s keeps re-sending its readings until an ack gets through",
                      acks_topic(gw), broker.describe(reason_code.value), gw)
