"""What one MQTT message becomes on its way to the store (pure: no database, no broker).

Why a module of its own: the validation side (ingest/pipeline.py) and the workers produce these,
the writer stores them and the ack logic reads them; keeping them apart from the writer lets the
pure side import them without importing psycopg (an import-linter contract checks it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from ingest.contract import ValidReading, ValidStatus
from ingest.plausibility import Grade

# A dead letter keeps this much of its payload (the broker allows 1 MiB): enough to diagnose, too
# little for a hostile gateway to fill the table. Size and SHA-256 of the whole are kept beside it.
DEAD_LETTER_KEEP: Final = 64 * 1024


@dataclass(frozen=True)
class Accepted:
    """A reading that passed the contract, with its plausibility grade."""

    reading: ValidReading
    grade: Grade


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    gateway_id: str | None
    error_class: str
    reason: str
    payload: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.topic.encode("utf-8", "replace") + b"\0" + self.payload).hexdigest()

    def row(self) -> tuple[Any, ...]:
        """The dead_letters row: payload capped at DEAD_LETTER_KEEP bytes, plus size and hash of the whole."""
        kept = self.payload[:DEAD_LETTER_KEEP]
        whole = hashlib.sha256(self.payload).hexdigest()
        return (self.topic, self.gateway_id, self.error_class, self.reason, kept, self.digest,
                len(self.payload), whole)


class Rejection(NamedTuple):
    """One dead-lettered reading as its gateway's ack names it: gateway id (from the topic),
    message id, reason code (e.g. ``wrong_gateway``, ``contract_violation``)."""

    gateway_id: str
    message_id: str
    code: str


Item = Accepted | DeadLetter | ValidStatus
