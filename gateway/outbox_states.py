"""The outbox's reading lifecycle as one transition table (pure: no SQLite, no clock).

::

    (new) ──ADD──► pending ──CLAIM──► in_flight ──PUBACK──► published ──CONFIRM──► (deleted)
    (new) ──ADD_REJECTED──► rejected      │  ├──PUBACK_FINAL──► (deleted)   SERVER_ACKS=false
                 ▲                         │  ├──RELEASE / RECOVER──► pending
                 └────────EXPIRE───────────┼──┘ (published, no confirmation in time: re-send)
    pending / in_flight ──REJECT──► rejected(reason)     kept for a person, never published
    pending / in_flight / published ──CONFIRM──► (deleted)   ingest committed it

The SQLite layer (:mod:`gateway.outbox`) never decides a move itself: it asks :func:`sources` for
the states a move applies to (its ``WHERE state IN (...)``) and :func:`target` for where the row
goes (``DELETED`` = the row is removed). State names are the on-disk values and never change.
"""

from __future__ import annotations

import enum

from gateway.errors import GatewayError, TerminalError


class State(enum.StrEnum):
    NEW = "new"  # not stored yet
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    PUBLISHED = "published"
    REJECTED = "rejected"
    DELETED = "deleted"  # the row is gone (confirmed delivered)


class Move(enum.Enum):
    ADD = "add"  # a new reading
    ADD_REJECTED = "add_rejected"  # a frame that cannot become a reading
    CLAIM = "claim"  # about to be published
    PUBACK = "puback"  # the broker has it; wait for ingest (server acks)
    PUBACK_FINAL = "puback_final"  # the broker has it and that is enough (SERVER_ACKS=false)
    CONFIRM = "confirm"  # ingest committed it (acks topic)
    EXPIRE = "expire"  # no confirmation in time: send again
    RELEASE = "release"  # the publish failed in a way worth retrying
    RECOVER = "recover"  # start-up: we crashed before the PUBACK
    REJECT = "reject"  # poison: keep it with its reason


TRANSITIONS: dict[State, dict[Move, State]] = {
    State.NEW: {Move.ADD: State.PENDING, Move.ADD_REJECTED: State.REJECTED},
    State.PENDING: {Move.CLAIM: State.IN_FLIGHT, Move.CONFIRM: State.DELETED, Move.REJECT: State.REJECTED},
    State.IN_FLIGHT: {
        Move.PUBACK: State.PUBLISHED,
        Move.PUBACK_FINAL: State.DELETED,
        Move.CONFIRM: State.DELETED,
        Move.RELEASE: State.PENDING,
        Move.RECOVER: State.PENDING,
        Move.REJECT: State.REJECTED,
    },
    State.PUBLISHED: {Move.CONFIRM: State.DELETED, Move.EXPIRE: State.PENDING},
    State.REJECTED: {},
    State.DELETED: {},
}

#: states whose rows still wait for delivery (they count toward the capacity and ``outbox_depth``)
WAITING = (State.PENDING, State.IN_FLIGHT, State.PUBLISHED)
#: states stored on disk, in the order ``counts()`` reports them
STORED = (State.PENDING, State.IN_FLIGHT, State.PUBLISHED, State.REJECTED)


class IllegalOutboxMove(GatewayError, TerminalError):
    """A move the table does not allow from a row's state (a bug in the caller)."""

    def __init__(self, state: State, move: Move) -> None:
        super().__init__(state, move)
        self.state = state
        self.move = move

    def __str__(self) -> str:
        return f"outbox: cannot {self.move.value} a row in state {self.state.value}"


def next_state(state: State, move: Move) -> State:
    """Where ``move`` takes a row in ``state``, or :class:`IllegalOutboxMove`."""
    try:
        return TRANSITIONS[state][move]
    except KeyError:
        raise IllegalOutboxMove(state, move) from None


def sources(move: Move) -> tuple[State, ...]:
    """The stored states ``move`` applies to, in table order."""
    return tuple(s for s, moves in TRANSITIONS.items() if move in moves)


def target(move: Move) -> State:
    """Where ``move`` takes a row (one target per move, whatever the source)."""
    (only,) = {moves[move] for moves in TRANSITIONS.values() if move in moves}
    return only


def sql_states(states: tuple[State, ...]) -> str:
    """``('pending', 'in_flight')``: a constant SQL list built from the enum (never from input)."""
    return "(" + ", ".join(f"'{s.value}'" for s in states) + ")"
