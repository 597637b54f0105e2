"""The collection session as a sans-I/O state machine (no asyncio, no radio, no outbox, no clock).

:class:`CollectionSession` is fed :data:`Event` values and emits :data:`Command` values
(:mod:`gateway.session.protocol` lists both). The asyncio shell that carries the commands out over
the BLE seam is :mod:`gateway.collector`; tests drive the session with plain values.
"""

from gateway.session.machine import CollectionSession
from gateway.session.protocol import (
    KNOWN_CHARACTERISTICS,
    SERVICE_UUIDS,
    TRANSITIONS,
    CollectorConfig,
    Command,
    Connected,
    Event,
    IllegalTransition,
    Phase,
    SessionClock,
    SessionResult,
    UnexpectedEvent,
)

__all__ = [
    "KNOWN_CHARACTERISTICS",
    "SERVICE_UUIDS",
    "TRANSITIONS",
    "CollectionSession",
    "CollectorConfig",
    "Command",
    "Connected",
    "Event",
    "IllegalTransition",
    "Phase",
    "SessionClock",
    "SessionResult",
    "UnexpectedEvent",
]
