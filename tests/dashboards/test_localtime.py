"""Local time with its zone on screen, UTC on hover (pure; issue 17 item 4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboards.localtime import local_text, time_html, utc_text, zone


@pytest.mark.parametrize(("at", "name", "text"), [
    (datetime(2026, 3, 8, 6, 30, tzinfo=UTC), "America/New_York", "2026-03-08 01:30 EST"),  # before DST
    (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), "America/New_York", "2026-03-08 03:30 EDT"),  # after the jump
    (datetime(2026, 7, 1, 14, 10, tzinfo=UTC), "America/Phoenix", "2026-07-01 07:10 MST"),  # no DST there
    (datetime(2026, 1, 1, 3, 0, tzinfo=UTC), "America/Los_Angeles", "2025-12-31 19:00 PST"),  # the day before
    (datetime(2026, 1, 1, 3, 0, tzinfo=UTC), "Asia/Kolkata", "2026-01-01 08:30 IST"),
])
def test_local_text_is_the_patients_wall_clock_with_zone(at: datetime, name: str, text: str) -> None:
    assert local_text(at, zone(name)) == text
    assert utc_text(at) == at.strftime("%Y-%m-%d %H:%M UTC")


def test_time_html_keeps_utc_on_hover_and_in_the_machine_attribute() -> None:
    at = datetime(2026, 3, 10, 13, 5, tzinfo=UTC)
    html = str(time_html(at, zone("America/Chicago")))
    assert html == ('<time datetime="2026-03-10T13:05:00+00:00" title="2026-03-10 13:05 UTC">'
                    "2026-03-10 08:05 CDT</time>")
    assert str(time_html(at, zone("America/Chicago"), date=False)).endswith(">08:05 CDT</time>")


@pytest.mark.parametrize("bad", [None, "", "Mars/Olympus_Mons", "../../etc/passwd", "GMT+4 "])
def test_a_missing_or_bad_zone_falls_back_to_the_clinics(bad: str | None) -> None:
    assert zone(bad, "America/Denver").key == "America/Denver"
    assert zone(bad, "Nowhere/Else").key == "UTC"
