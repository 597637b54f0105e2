"""From one MQTT message to what the writer stores: a graded reading, a status, or a dead letter.

Pure apart from logging: ``now`` is passed in. Nothing raised here can escape: a bug in a
validator turns the message into a dead letter (``InternalError``) instead of losing it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ingest.contract import ValidStatus, decode, topic_gateway
from ingest.errors import ContractViolation
from ingest.items import Accepted, DeadLetter, Item
from ingest.plausibility import grade

log = logging.getLogger(__name__)


def classify(topic: str, payload: bytes, *, now: datetime) -> Item | None:
    """What to store for one message; None for an empty retained status (a gateway clearing its
    retained status when decommissioned: an MQTT operation, not a malformed message)."""
    if not payload and topic.endswith("/status") and topic_gateway(topic) is not None:
        log.info("retained status of %s cleared; nothing to store", topic_gateway(topic))
        return None
    try:
        message = decode(topic, payload)
    except ContractViolation as exc:
        # ids only in logs (no values, times or text from the payload): the reason is in dead_letters
        log.warning("dead letter on %s: contract violation (reason in dead_letters)", topic)
        return DeadLetter(topic, topic_gateway(topic), "ContractViolation", exc.reason, payload)
    except Exception as exc:
        log.exception("validator failed on a message from %s; dead-lettering it", topic)
        return DeadLetter(topic, topic_gateway(topic), "InternalError", f"{type(exc).__name__}: {exc}"[:500],
                          payload)
    if isinstance(message, ValidStatus):
        return message
    return Accepted(message, grade(message, now=now))
