"""Why a broker cannot be reached, in one line: paho retries a failed connection silently.

paho-mqtt 2.x reports a failed connection attempt (refused, unreachable, a TLS handshake the
certificate check rejects) only through ``on_connect_fail``, without the exception. The gateway
and ingest then ask :func:`diagnose`, which repeats the attempt with the standard library (TCP,
then TLS with the same CA file and host-name check) and returns the reason an operator can act
on, e.g. ``TLS certificate not accepted: Hostname mismatch, certificate is not valid for
'broker.example'``.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The client context the services use: system CAs, or only ``ca_file``; host names checked.
    A missing or unreadable CA file raises ``OSError`` / ``ssl.SSLError`` here, at start-up."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def diagnose(host: str, port: int, *, tls: bool, ca_file: Path | None = None, timeout: float = 5.0) -> str:
    """The reason a connection to ``host:port`` fails now, or a note that it succeeded."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if not tls:
                return "TCP connection succeeded (the broker may have closed it: see its log)"
            with tls_context(ca_file).wrap_socket(raw, server_hostname=host):
                return "TLS handshake succeeded (the broker may have closed the connection: see its log)"
    except ssl.SSLCertVerificationError as exc:
        return f"TLS certificate not accepted: {exc.verify_message or exc.reason}"
    except ssl.SSLError as exc:
        return f"TLS handshake failed: {exc.reason or exc}"
    except socket.gaierror as exc:
        return f"host name {host!r} not found ({exc.strerror})"
    except ConnectionRefusedError:
        return "connection refused (nothing listening on that port?)"
    except TimeoutError:
        return f"no answer within {timeout:g} s (host down or port filtered?)"
    except OSError as exc:
        return exc.strerror or str(exc)
