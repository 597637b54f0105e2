"""Operator mistakes end a command with one line on stderr and a non-zero exit, never a traceback.

Any layer may raise a :class:`Fatal` (a bad setting, a database that refuses our password, a port
already taken); the console script's ``main`` runs under :func:`exit_on_fatal`, which prints
``<prog>: <message>`` and returns the error's exit code. Exit codes:

====  ==============================================================================
 2    configuration: a missing or invalid setting (:class:`~gateway.runtime.settings.SettingError`)
 3    a server refused us or stayed unreachable past the bounded retry (credentials, host, database)
 4    a local resource is unavailable (port already in use, file not readable)
====  ==============================================================================
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3
EXIT_LOCAL = 4


class Fatal(Exception):
    """Stop the command: the message is the one line an operator reads."""

    exit_code: int = EXIT_UNAVAILABLE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a (possibly multi-line) driver message to one bounded line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def exit_on_fatal(prog: str, main: Callable[[], int], stream: TextIO | None = None) -> int:
    """Run ``main``; a :class:`Fatal` becomes ``<prog>: <message>`` and its exit code."""
    try:
        return main()
    except Fatal as exc:
        print(f"{prog}: {one_line(exc.message, 500)}", file=stream or sys.stderr, flush=True)
        return exc.exit_code
