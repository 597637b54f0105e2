"""What one MQTT message becomes on its way to the store (pure: no database, no broker).

Why a module of its own: the validation side (ingest/pipeline.py) and the workers produce these,
the writer stores them and the ack logic reads them; keeping them apart from the writer lets the
pure side import them without importing psycopg (an import-linter contract checks it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ingest.contract import ValidReading, ValidStatus
from ingest.plausibility import Grade


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


Item = Accepted | DeadLetter | ValidStatus
