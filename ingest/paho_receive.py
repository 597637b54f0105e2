"""A cheaper receive path for ingest's paho client: same bytes, same callbacks, fewer objects and
system calls per PUBLISH.

Profiled on the receiver (issue 18): paho 2.2 spent about 40 µs of every received PUBLISH building a
new :class:`~paho.mqtt.properties.Properties` (two 27-entry lookup tables per object, then 27 checks
to clear it before unpacking an empty property list), and made four system calls per message
(``select``, then ``recv`` of the 1-byte command, of the length byte, of the rest). At ingest's rate
that was most of the paho thread and a large part of the receiver's core. Here:

- :class:`SharedTableProperties`: paho's class with its read-only tables built once per process;
  installed as the class paho's decoders instantiate (every client in the process gets it,
  with identical behaviour: tests/ingest/test_paho_receive.py checks it against paho's own).
- :class:`ReadBuffer`: the socket paho reads from, refilled up to 64 KiB per ``recv``. It reports
  what it holds through ``pending()``, paho's hook for a TLS socket's buffer, so paho never waits
  in ``select`` for bytes it already has.
- :class:`IngestClient`: reads on while whole packets are buffered (bounded, so PUBACKs and keep-alive
  still get their turn) instead of one packet per ``select`` round; and acknowledges a committed
  batch with :meth:`IngestClient.ack_many`: the same 4-byte PUBACKs ``ack`` sends, queued as one
  write (``ack`` wakes paho's thread and makes a ``send`` per message).

The hooks are paho internals (``_create_socket``, ``_packet_queue``, ``Properties.clear``): the
versions pinned in pyproject.toml are the ones tested; :func:`supported` says whether this paho has
them, and :func:`make` falls back to paho's plain client (logged once) when it does not.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import socket
import struct
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import client as paho_client
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

READ_CHUNK = 65536  # bytes per recv: about 200 readings of the wire contract
READ_BURST = 256  # packets read from the buffer per loop round before paho's writes get a turn
# PUBACK, remaining length 2, packet id: success without properties (MQTT 5 §3.4.2.1)
_PUBACK = struct.Struct("!BBH")
_PRIVATE = frozenset({"packetType", "types", "names", "properties"})


class SharedTableProperties(Properties):
    """paho's ``Properties`` with the lookup tables shared instead of rebuilt per object."""

    _tables: tuple[Any, Any, Any] | None = None

    def __init__(self, packetType: int) -> None:
        tables = SharedTableProperties._tables
        if tables is None:
            stock = Properties(packetType)  # type: ignore[no-untyped-call]
            tables = SharedTableProperties._tables = (stock.types, stock.names, stock.properties)
        setter = object.__setattr__
        setter(self, "packetType", packetType)
        setter(self, "types", tables[0])
        setter(self, "names", tables[1])
        setter(self, "properties", tables[2])

    def clear(self) -> None:
        if self.__dict__.keys() - _PRIVATE:  # a property is set: paho's own clear
            super().clear()  # type: ignore[no-untyped-call]


class ReadBuffer:
    """The connected socket as paho sees it, reading ahead (see the module docstring)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        if self._pos >= len(self._buf):
            data = self._sock.recv(READ_CHUNK)  # raises BlockingIOError / ssl.SSLWantReadError as before
            if len(data) <= bufsize:
                return bytes(data)
            self._buf, self._pos = data, 0
        start = self._pos
        self._pos = min(start + bufsize, len(self._buf))
        return self._buf[start:self._pos]

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + inner

    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def send(self, data: bytes | bytearray) -> int:
        return int(self._sock.send(data))

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._buf, self._pos = b"", 0
        self._sock.close()

    def __getattr__(self, name: str) -> Any:  # anything else paho or a callback asks of the socket
        return getattr(self._sock, name)


class IngestClient(mqtt.Client):
    """paho's client reading through a :class:`ReadBuffer`."""

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return ReadBuffer(sock) if isinstance(sock, socket.socket) else sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        sock = self.socket()
        burst = READ_BURST
        while (rc == MQTTErrorCode.MQTT_ERR_SUCCESS and burst and isinstance(sock, ReadBuffer)
               and sock.buffered()):
            rc = super().loop_read(max_packets)
            burst -= 1
            sock = self.socket()
        return rc


    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK QoS 1 messages (``manual_ack``) in one write: the bytes of ``ack(mid, 1)`` for each."""
        if mids:
            packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            self._packet_queue(mqtt.PUBACK, packet, 0, 0)


def supported() -> bool:
    """Whether this paho has the internals the hooks rely on."""
    return (hasattr(mqtt.Client, "_create_socket") and hasattr(mqtt.Client, "_packet_queue")
            and hasattr(Properties, "clear")
            and isinstance(getattr(paho_client, "Properties", None), type))


def decoders() -> list[ModuleType]:
    """paho's modules that build a PUBLISH's properties (2.2 decodes in ``_packet``, 2.1 in ``client``)."""
    found = [paho_client]
    with contextlib.suppress(ImportError):
        found.append(importlib.import_module("paho.mqtt._packet"))
    return found


def install_properties() -> None:
    """Make paho's decoders instantiate :class:`SharedTableProperties` (idempotent)."""
    for module in decoders():
        if getattr(module, "Properties", None) is Properties:
            module.Properties = SharedTableProperties  # type: ignore[attr-defined]


def make(*args: Any, **kwargs: Any) -> mqtt.Client:
    """The receive-optimised client, or paho's plain one when this paho lacks the hooks."""
    if not supported():
        log.warning("paho-mqtt %s lacks the hooks of ingest's receive path: using its plain client",
                    getattr(mqtt, "__version__", "?"))
        return mqtt.Client(*args, **kwargs)
    install_properties()
    return IngestClient(*args, **kwargs)
