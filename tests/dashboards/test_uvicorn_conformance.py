"""dashboards/limits.py subclasses uvicorn's h11 protocol, which is not public API.

Why it still does: no public uvicorn option bounds how long a request head may take (the keep-alive
timer stops at the first byte; uvicorn issue #157's --timeout-request-start was never added) and an
ASGI middleware runs only after the head is complete, so the slow-loris deadline needs the
protocol class. uvicorn (and h11) are therefore pinned to the tested range in pyproject.toml; this
test names exactly what the subclass relies on, so an upgrade that moves it fails here first.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import h11
import pytest
from uvicorn.protocols.http.h11_impl import H11Protocol

from dashboards.limits import guarded_h11

OVERRIDDEN = {
    "connection_made": ["self", "transport"],
    "data_received": ["self", "data"],
    "on_response_complete": ["self"],
    "connection_lost": ["self", "exc"],
}
ATTRIBUTES = ("conn", "loop", "transport", "logger", "client")


@pytest.mark.parametrize(("method", "params"), sorted(OVERRIDDEN.items()))
def test_the_hooks_the_guard_overrides_keep_their_signature(method: str, params: list[str]) -> None:
    assert list(inspect.signature(getattr(H11Protocol, method)).parameters) == params


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_the_attributes_the_guard_reads_are_still_set(attribute: str) -> None:
    assert f"self.{attribute} = " in inspect.getsource(H11Protocol)


def test_the_guard_is_a_protocol_subclass_and_h11_keeps_its_idle_state() -> None:
    assert issubclass(guarded_h11(3.0), H11Protocol)
    assert h11.IDLE is not None


def test_versions_are_inside_the_pinned_range() -> None:
    assert version("uvicorn").startswith("0.55.") and version("h11").startswith("0.16.")
