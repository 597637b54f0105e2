"""Both embedded servers started and stopped together: the world the demo and the test fixtures run in.

Nothing relies on services someone else started. The servers themselves live in
embedded_postgres.py and embedded_mosquitto.py; each exposes ``stop()``/``start()`` on the same
port and data so tests can cause outages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from simulators.embedded_mosquitto import EmbeddedMosquitto
from simulators.embedded_postgres import DatabaseUrls, EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass
class Stack:
    """PostgreSQL + Mosquitto, started together, stopped together."""

    postgres: EmbeddedPostgres
    mosquitto: EmbeddedMosquitto

    @property
    def database_url(self) -> str:
        """The superuser URL (housekeeping); services use ``database_urls``."""
        return self.postgres.url

    @property
    def database_urls(self) -> DatabaseUrls:
        return self.postgres.urls()

    def stop(self) -> None:
        self.mosquitto.stop()
        self.postgres.stop()

    def destroy(self) -> None:
        self.mosquitto.destroy()
        self.postgres.destroy()


def start_stack(base: Path | None = None, gateways: list[str] | None = None, *,
                durable: bool = True) -> Stack:
    pg = EmbeddedPostgres.create(base, durable=durable)
    broker = EmbeddedMosquitto.create(base)
    for gw in gateways or []:
        broker.add_gateway(gw)
    try:
        pg.start()
        broker.start()
    except BaseException:
        broker.destroy()
        pg.destroy()
        raise
    log.info("embedded stack: postgres on %d, mosquitto on %d", pg.port, broker.port)
    return Stack(pg, broker)


@contextlib.contextmanager
def running_stack(base: Path | None = None, gateways: list[str] | None = None) -> Iterator[Stack]:
    stack = start_stack(base, gateways)
    try:
        yield stack
    finally:
        stack.destroy()
