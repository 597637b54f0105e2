"""Ingest's end-to-end acknowledgements (``rpmflow.ack.v1`` on ``rpm/v1/<gateway_id>/acks``): pure parsing.

Ingest publishes one after the transaction that stored (or found already stored, or dead-lettered)
the named readings has committed; only then may the gateway forget them. ``message_ids`` are the
readings stored; the optional ``rejected`` list names readings ingest refused and kept as dead
letters, each with a reason code (``wrong_gateway``: the device is enrolled on another gateway,
``not_enrolled``, ``duplicate_of_other_gateway``, ``contract_violation``, ``row_refused``): terminal
too (re-sending cannot help), but never reported as stored. Parsing is defensive: an
ack arrives from the network, so anything odd raises :class:`MalformedAck` (logged by the
publisher and ignored: the readings it might have named are simply re-sent later).
"""

from __future__ import annotations

import json
import re
from typing import Final

from gateway.contract import ACK_SCHEMA, MAX_IDS_PER_ACK, MESSAGE_ID_RE, acks_topic
from gateway.errors import MalformedAck

__all__ = ["ACK_SCHEMA", "MAX_IDS_PER_ACK", "Ack", "MalformedAck", "acks_topic", "parse_ack"]

REASON_RE: Final = re.compile(r"^[a-z_]{1,64}$")


class Ack:
    """One parsed ack: ids stored by ingest, and ids it refused with their reason codes."""

    __slots__ = ("confirmed", "rejected")

    def __init__(self, confirmed: list[str], rejected: list[tuple[str, str]]) -> None:
        self.confirmed = confirmed
        self.rejected = rejected

    @property
    def done(self) -> list[str]:
        """Every id the outbox may forget (stored or refused: both terminal)."""
        return [*self.confirmed, *(m for m, _ in self.rejected)]


def parse_ack(payload: bytes, gateway_id: str) -> Ack:
    """The message ids confirmed and refused by one ack addressed to ``gateway_id``; raises
    :class:`MalformedAck`."""
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
    return Ack(list(ids), _rejected(obj.get("rejected", []), len(ids), head))


def _rejected(entries: object, n_ids: int, head: str) -> list[tuple[str, str]]:
    if not isinstance(entries, list):
        raise MalformedAck("rejected must be a list", head)
    if n_ids + len(entries) > MAX_IDS_PER_ACK:
        raise MalformedAck(f"{n_ids + len(entries)} message ids (at most {MAX_IDS_PER_ACK})", head)
    out: list[tuple[str, str]] = []
    for e in entries:
        mid = e.get("message_id") if isinstance(e, dict) else None
        reason = e.get("reason") if isinstance(e, dict) else None
        if not (isinstance(mid, str) and MESSAGE_ID_RE.match(mid) and isinstance(reason, str)
                and REASON_RE.match(reason)):
            raise MalformedAck(f"rejected entry {e!r:.80} is not {{message_id, reason}}", head)
        out.append((mid, reason))
    return out
