"""The outbox lifecycle: one transition table, every (state, move) pair, and the SQLite layer follows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from gateway.outbox_states import (
    STORED,
    TRANSITIONS,
    IllegalOutboxMove,
    Move,
    State,
    next_state,
    sources,
    sql_states,
    target,
)

# the lifecycle written out independently of the table it checks
ALLOWED = {
    ("new", "add"): "pending", ("new", "add_rejected"): "rejected",
    ("pending", "claim"): "in_flight", ("pending", "confirm"): "deleted", ("pending", "reject"): "rejected",
    ("in_flight", "puback"): "published", ("in_flight", "puback_final"): "deleted",
    ("in_flight", "confirm"): "deleted", ("in_flight", "release"): "pending",
    ("in_flight", "recover"): "pending", ("in_flight", "reject"): "rejected",
    ("published", "confirm"): "deleted", ("published", "expire"): "pending",
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("move", list(Move))
def test_every_state_move_pair(state: State, move: Move) -> None:
    expected = ALLOWED.get((state.value, move.value))
    if expected is None:
        with pytest.raises(IllegalOutboxMove):
            next_state(state, move)
    else:
        assert next_state(state, move).value == expected


def test_each_move_has_one_target_and_its_sources() -> None:
    for move in Move:
        assert {TRANSITIONS[s][move] for s in sources(move)} == {target(move)}
    assert sources(Move.CONFIRM) == (State.PENDING, State.IN_FLIGHT, State.PUBLISHED)
    assert sql_states(sources(Move.REJECT)) == "('pending', 'in_flight')"


def _row_in(outbox: Outbox, state: State) -> tuple[int, str | None]:
    """One row put into ``state`` through the outbox's own moves."""
    if state is State.REJECTED:
        return outbox.add_rejected("dev", "2A35", "too short", "1e", "2026-03-15T12:00:00Z"), None
    assert outbox.add("m-1", "blood_pressure", "dev", "{}")
    (row,) = outbox.rows()
    if state in (State.IN_FLIGHT, State.PUBLISHED):
        outbox.claim(1)
    if state is State.PUBLISHED:
        outbox.published([row.id])
    return row.id, "m-1"


MOVES: dict[Move, Callable[[Outbox, int, str | None], object]] = {
    Move.CLAIM: lambda ob, i, m: ob.claim(10),
    Move.PUBACK: lambda ob, i, m: ob.published([i]),
    Move.PUBACK_FINAL: lambda ob, i, m: ob.ack([i]),
    Move.CONFIRM: lambda ob, i, m: ob.confirm([m or "none"]),
    Move.EXPIRE: lambda ob, i, m: ob.expire_published(now=4e9),
    Move.RELEASE: lambda ob, i, m: ob.release([i]),
    Move.RECOVER: lambda ob, i, m: ob.reset_in_flight(),
    Move.REJECT: lambda ob, i, m: ob.reject(i, "poison"),
}


@pytest.mark.parametrize("state", STORED)
@pytest.mark.parametrize("move", list(MOVES))
def test_the_sqlite_layer_follows_the_table(tmp_path: Path, state: State, move: Move) -> None:
    with Outbox(tmp_path / "o.sqlite3", 10) as outbox:
        row_id, message_id = _row_in(outbox, state)
        MOVES[move](outbox, row_id, message_id)
        rows = {r.id: r.state for r in outbox.rows()}
    expected = TRANSITIONS[state].get(move, state)  # a move the table does not list changes nothing
    assert rows.get(row_id, State.DELETED.value) == expected.value
