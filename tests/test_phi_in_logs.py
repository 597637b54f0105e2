"""Issue 14: log lines carry ids, never values, times or text from a patient's reading."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from gateway.session.core import warn_implausible
from ingest.pipeline import classify
from ingest.writer import DeadLetter
from tests.ingest.helpers import EXAMPLE, reading

SECRET_TIME = "1961-07-04T09:15:00"


def test_a_dead_letter_logs_its_topic_not_the_payload(caplog: pytest.LogCaptureFixture) -> None:
    bad = reading(EXAMPLE, measured_at=SECRET_TIME + "+05:00")
    with caplog.at_level(logging.INFO):
        out = classify("rpm/v1/gw-0001/readings", json.dumps(bad).encode(), now=datetime.now(UTC))
    assert isinstance(out, DeadLetter) and SECRET_TIME in out.reason  # kept where staff can see it
    assert "rpm/v1/gw-0001/readings" in caplog.text
    assert SECRET_TIME not in caplog.text


def test_gateway_logs_name_the_device_not_the_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), Outbox(tmp_path / "o.sqlite3", 10) as ob:
        warn_implausible("SIM-BP-0001", "1e2b01ab", lambda: ["systolic 299 mmHg above 260"])
        ob.add_rejected("SIM-GL-0001", "2a18", "too short: 0278005000", "0278005000", "2025-11-23T15:00:00Z")
        assert ob.rows("rejected")[0].reason == "too short: 0278005000"
    assert "SIM-BP-0001" in caplog.text and "SIM-GL-0001" in caplog.text
    for value in ("299", "1e2b01ab", "0278005000"):
        assert value not in caplog.text
