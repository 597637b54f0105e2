"""Ingest's end-to-end acknowledgements (``rpmflow.ack.v1`` on ``rpm/v1/<gateway_id>/acks``): pure parsing.

Ingest publishes one after the transaction that stored (or found already stored, or dead-lettered)
the named readings has committed; only then may the gateway forget them. Parsing is defensive: an
ack arrives from the network, so anything odd raises :class:`MalformedAck` (logged by the
publisher and ignored: the readings it might have named are simply re-sent later).
"""

from __future__ import annotations

import json

from gateway.contract import ACK_SCHEMA, MAX_IDS_PER_ACK, MESSAGE_ID_RE, acks_topic
from gateway.errors import MalformedAck

__all__ = ["ACK_SCHEMA", "MAX_IDS_PER_ACK", "MalformedAck", "acks_topic", "parse_ack"]


def parse_ack(payload: bytes, gateway_id: str) -> list[str]:
    """The message ids confirmed by one ack addressed to ``gateway_id``; raises :class:`MalformedAck`."""
    head = payload[:120].decode("utf-8", "replace")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedAck(f"not UTF-8 JSON ({exc})", head) from None
    if not isinstance(obj, dict):
        raise MalformedAck("not a JSON object", head)
    if obj.get("schema") != ACK_SCHEMA:
        raise MalformedAck(f"schema must be {ACK_SCHEMA!r}, got {obj.get('schema')!r:.60}", head)
    if obj.get("gateway_id") != gateway_id:
        raise MalformedAck(f"gateway_id {obj.get('gateway_id')!r:.80} is not {gateway_id!r}", head)
    ids = obj.get("message_ids")
    if not isinstance(ids, list):
        raise MalformedAck("message_ids must be a list", head)
    if len(ids) > MAX_IDS_PER_ACK:
        raise MalformedAck(f"{len(ids)} message ids (at most {MAX_IDS_PER_ACK})", head)
    bad = [i for i in ids if not isinstance(i, str) or not MESSAGE_ID_RE.match(i)]
    if bad:
        raise MalformedAck(f"{len(bad)} message ids are not 32 lowercase hex digits, e.g. {bad[0]!r:.60}",
                           head)
    return list(ids)
