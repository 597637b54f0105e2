"""The wire contract of docs/wire-format.md, as a pure function of (topic, bytes).

``decode(topic, payload)`` returns a typed :class:`ValidReading` or :class:`ValidStatus`, or raises
:class:`~ingest.errors.ContractViolation` whose ``reason`` names the first broken rule precisely
(field path and what was wrong). Every rule's constants come from :mod:`gateway.contract`, which
owns wire contract v1; this package restates none of them. A reading's ``message_id`` must be the
contract's recipe applied to the reading's own contents (:class:`~ingest.errors.MessageIdMismatch`
otherwise), so no gateway can pre-claim another's reading. No clock, no I/O: plausibility (which
needs ``now``) is a separate step in ``ingest.plausibility``.

Two validators stand behind :func:`decode`: the one-pass check of ``ingest/contract_fast.py`` takes
the well-formed messages, the rule-by-rule reference of ``ingest/contract_reference.py`` takes the
rest and writes every reason.
"""

from __future__ import annotations

from typing import Final

from gateway import contract
from ingest import contract_reference as reference
from ingest.contract_fast import fast_reading
from ingest.errors import ContractViolation
from ingest.valid import DeviceInfo, ValidReading, ValidStatus

__all__ = ["DeviceInfo", "ValidReading", "ValidStatus", "decode", "topic_gateway"]

_TOPIC = contract.INBOUND_TOPIC_RE
_TOPICS_KEPT: Final = 4096  # one entry per gateway and leaf; forgotten all at once past this
_topics: dict[str, tuple[str, str]] = {}


def _parse_topic(topic: str) -> tuple[str, str] | None:
    """(gateway id, leaf) of a well-formed inbound topic, remembered: a gateway's topic repeats on
    every message, and the regular expression is a measurable share of a message's CPU."""
    parsed = _topics.get(topic)
    if parsed is None:
        m = _TOPIC.match(topic)
        if m is None:
            return None
        if len(_topics) >= _TOPICS_KEPT:
            _topics.clear()
        parsed = _topics[topic] = (m.group(1), m.group(2))
    return parsed


def topic_gateway(topic: str) -> str | None:
    """The gateway id of a well-formed ``rpm/v1/<gw>/...`` topic, else None (for dead letters)."""
    parsed = _parse_topic(topic)
    return parsed[0] if parsed else None


def decode(topic: str, payload: bytes) -> ValidReading | ValidStatus:
    """Validate one MQTT message against the contract of its topic.

    A reading of the common shape takes the one-pass fast path; anything it does not accept
    outright goes through the field-by-field validator, which is the reference and names the
    first broken rule.
    """
    parsed = _parse_topic(topic)
    if parsed is None:
        raise ContractViolation(f"topic {topic[:200]!r} is not rpm/v1/<gateway_id>/readings|status")
    gateway_id, leaf = parsed
    if leaf == "readings":
        fast = fast_reading(topic, gateway_id, payload)
        if fast is not None:
            return fast
    text, obj = reference.load_object(payload)
    if leaf == "status":
        return reference.status(topic, gateway_id, obj, text)
    return reference.reading(topic, gateway_id, obj, text)
