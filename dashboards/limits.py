"""Limits against hostile clients: request body size, and how long a request head may take.

Two pieces, both needed because neither Starlette nor uvicorn bounds them on its own:

* ``RequestLimits``, an ASGI middleware: a declared ``Content-Length`` above the body limit gets
  413, an oversized target 414 and oversized headers 431, all before the app runs. A chunked (or
  lying) body is counted as it streams by FastAPI's ``max_body_size``, set from the same setting.
* ``guarded_h11(header_timeout)``, a uvicorn h11 protocol class: uvicorn's keep-alive timer is
  cancelled by the first byte of a request, so a client trickling header bytes (slow loris) would
  hold its connection forever. The request head must now be complete within ``header_timeout``
  seconds of the connection opening or the previous response ending; otherwise 408 and close.

The body/target/header limits use public interfaces only (ASGI middleware, FastAPI's body limit,
uvicorn's ``h11_max_incomplete_event_size`` and ``timeout_keep_alive``). The head deadline cannot:
no public uvicorn option bounds how long a request head may take, and an ASGI middleware runs only
once the head is complete. So ``guarded_h11`` subclasses uvicorn's h11 protocol, and uvicorn and h11
are pinned to the tested range in pyproject.toml (tests/dashboards/test_uvicorn_conformance.py
names what the subclass relies on).

``server_options(settings)`` gives the uvicorn keyword arguments that apply these (and the h11
head-size limit) so ``rpmflow-dashboard run`` and the tests serve the app the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from dashboards.settings import Settings

_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 27\r\nconnection: close\r\n\r\nrequest head took too long\n")


class RequestLimits:
    """Refuse, before the app runs, a declared body over ``max_body_bytes`` (413), a target over
    ``max_head_bytes`` (414) and headers over ``max_head_bytes`` in total (431).

    h11's own head limit only bounds a head that arrives in pieces: one sent in a single packet is
    parsed whole, so the complete head is measured here. Streamed (chunked) bodies are counted by
    FastAPI's ``max_body_size`` (set from the same setting in ``create_app``): an error raised from
    our own ``receive`` reaches FastAPI wrapped in an ``ExceptionGroup`` by the security-header
    middleware's task group and becomes a 400, while FastAPI unwraps its own.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_head_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_head_bytes = max_head_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await _refuse(send, *refusal)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, bytes] | None:
        """(status, message) when the request head breaks a limit; None when it may proceed."""
        target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if target > self.max_head_bytes:
            return 414, b"request target too long"
        headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if headers > self.max_head_bytes:
            return 431, b"request headers too large"
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            return 413, b"request body too large"
        return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 already refuses malformed lengths; nothing to decide here
    return None


async def _refuse(send: Send, status: int, message: bytes) -> None:
    body = b'{"error":"' + message + b'"}'
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
    ]})
    await send({"type": "http.response.body", "body": body})


def guarded_h11(header_timeout: float) -> type[H11Protocol]:
    """An h11 protocol class that closes connections whose request head is not done in time."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and self.conn.their_state is h11.IDLE:
                self._arm()  # the first byte of a new request on a kept-alive connection
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # the keep-alive timer watches the idle gap; re-armed on the next byte

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            self.logger.info("closing %s: request head not complete after %ss", self.client, header_timeout)
            self.transport.write(_408)
            self.transport.close()

    return GuardedH11Protocol


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn keyword arguments that enforce the dashboard's connection limits."""
    return {
        "http": guarded_h11(settings.header_timeout_seconds),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "h11_max_incomplete_event_size": settings.max_head_bytes,
        "server_header": False,  # no "Server: uvicorn" banner for a scanner to match versions against
    }
