"""Which devices' first/last seen a writer recorded lately, so that a batch sends only the devices
whose row the devices update could change (``ingest/direct.py`` DEVICES_SEEN; pure).

Why: sending every device of every batch cost the database the update's join a batch and the
writer 5-12 % of its rate (docs/ingest.md), though a device's row changes about once a minute
(``last_seen_at`` is kept to the minute: ``binding.DEVICES_SEEN_WHEN``). After a commit the writer
knows bounds of the row: the ``first_seen_at`` and ``last_seen_at`` the update returned, or, when
the row was not updated, ``last_seen_at`` at least ``last_seen - grain`` and ``first_seen_at`` at
most ``first_seen``. A device whose next sighting cannot move those bounds past the update's
condition is left out. The description is taken as the one this writer sent; another writer may
have recorded a different one since (a device whose description flips between two writers), so
an entry lasts ``window_s``, after which the device is sent again and the database decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

Device = dict[str, Any]  # device_id, first_seen, last_seen, reported (direct.devices_seen)


class Known(NamedTuple):
    until: float  # on the writer's monotonic clock
    first_seen: datetime  # the row's first_seen_at is at most this
    last_seen: datetime  # the row's last_seen_at is at least this
    reported: Mapping[str, Any] | None  # the row's description (None: not known)


class SeenMemo:
    def __init__(self, grain: timedelta, window_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, limit: int = 200_000) -> None:
        self._grain, self._window, self._clock, self._limit = grain, window_s, clock, limit
        self._known: dict[str, Known] = {}

    def __len__(self) -> int:
        return len(self._known)

    def due(self, devices: Sequence[Device], now: datetime) -> list[Device]:
        """The devices whose row the update could change; ``now``: the update clamps to it."""
        t = self._clock()
        out = []
        for d in devices:
            k = self._known.get(d["device_id"])
            if (k is None or t >= k.until or k.reported != d["reported"]
                    or k.first_seen > min(d["first_seen"], now)
                    or k.last_seen < min(d["last_seen"], now) - self._grain):
                out.append(d)
        return out

    def recorded(self, sent: Sequence[Device], updated: Mapping[str, tuple[datetime, datetime]],
                 now: datetime) -> None:
        """After the commit: ``sent`` went to the update, ``updated`` (device → first_seen_at,
        last_seen_at) is what it returned, the rows it changed."""
        if len(self._known) + len(sent) > self._limit:
            t = self._clock()
            self._known = {k: v for k, v in self._known.items() if v.until > t}
            if len(self._known) + len(sent) > self._limit:
                self._known.clear()
        until = self._clock() + self._window
        for d in sent:
            first, last = min(d["first_seen"], now), min(d["last_seen"], now)
            row = updated.get(d["device_id"])
            if row is None:  # the row already satisfied the update's condition
                self._known[d["device_id"]] = Known(until, first, last - self._grain, d["reported"])
            else:  # the description was replaced only if this sighting became the row's latest
                self._known[d["device_id"]] = Known(until, row[0], row[1],
                                                    d["reported"] if row[1] == last else None)
