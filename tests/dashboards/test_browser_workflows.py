"""Headless Chromium at desktop and phone widths: the crisis workflow to its end (issue 17 item 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.dashboards.seed import World, add_reading
from tests.dashboards.test_browser import _sign_in as sign_in_page

WIDTHS = [1440, 390]


def _sign_in(browser: Browser, base_url: str, username: str, width: int) -> Page:
    page = sign_in_page(browser, base_url, username, width=width)
    page.wait_for_url(f"{base_url}/queue")
    return page


def _within_width(el: Locator, width: int) -> None:
    """A control the user needs is on screen without scrolling sideways."""
    el.scroll_into_view_if_needed()
    box = el.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_crisis_from_symptoms_to_911_to_closed_loop(
    browser: Browser, base_url: str, world: World, db: psycopg.Connection[Any],
    artifacts_dir: Path, width: int,
) -> None:
    # Two later normal readings: the panel must not say "waiting for the re-measurement".
    for minutes in (90, 30):
        add_reading(db, world, datetime.now(UTC) - timedelta(minutes=minutes), systolic=134.0, diastolic=84.0)
    nurse = _sign_in(browser, base_url, world.usernames["nurse"], width)
    nurse.goto(f"/flags/{world.flag_id}")
    expect(nurse.locator("#remeasure")).to_have_attribute("data-status", "late_normal")
    expect(nurse.locator("#remeasure")).to_contain_text("the newest 134/84 mmHg")
    expect(nurse.locator("#crisis-next")).to_contain_text("Ask about symptoms now")

    nurse.check("input[name=symptoms][value=chest_pain]")
    _within_width(nurse.locator("#record-symptoms"), width)
    nurse.click("#record-symptoms")
    expect(nurse.locator("#call-911")).to_contain_text("Patient should call 911 now")
    expect(nurse.locator("#flash")).to_contain_text(
        "Symptom check recorded. Next: The patient should call 911")
    expect(nurse.locator("input[name=outcome][value=loop_closed]")).to_have_count(0)

    nurse.check("input[name=outcome][value=called_911]")
    nurse.fill("input[name=note][aria-label='Outcome note']", "Daughter called 911, EMS on the way")
    _within_width(nurse.locator("#record-outcome"), width)
    nurse.click("#record-outcome")
    expect(nurse.locator("#flash")).to_contain_text("Recorded: 911 called. Next: Clinician: follow up")
    expect(nurse.locator("#flag-state")).to_have_text("escalated")
    expect(nurse.locator("#crisis-next")).to_have_attribute("data-step", "called_911")
    nurse.screenshot(path=str(artifacts_dir / f"crisis-911-{width}.png"), full_page=True)

    clin = _sign_in(browser, base_url, world.usernames["clinician"], width)
    clin.goto(f"/flags/{world.flag_id}")
    clin.check("input[name=outcome][value=loop_closed]")
    clin.click("#record-outcome")
    expect(clin.locator("#flash")).to_contain_text("Recorded: loop closed with the patient.")
    expect(clin.locator("#flag-state")).to_have_text("closed")
    expect(clin.locator("#record-outcome")).to_have_count(0)
    row = db.execute("SELECT state, disposition FROM flags WHERE flag_id = %s", (world.flag_id,)).fetchone()
    assert row == ("closed", "acted")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_review_form_with_its_context(
    browser: Browser, base_url: str, world: World, db: psycopg.Connection[Any],
    artifacts_dir: Path, width: int,
) -> None:
    nurse = _sign_in(browser, base_url, world.usernames["nurse"], width)
    nurse.goto(f"/flags/{world.flag_id}")
    nurse.locator("details.more summary").click()
    nurse.fill("input[name=minutes]", "9")
    nurse.fill("input[aria-label='Time note']", "coached the re-measurement")
    nurse.click("button.act-log_time")
    expect(nurse.locator("#flash")).to_contain_text("Minutes logged")

    clin = _sign_in(browser, base_url, world.usernames["clinician"], width)
    clin.goto(f"/flags/{world.flag_id}/review")
    expect(clin.locator("#review-chart svg").first).to_be_visible()
    expect(clin.locator("#averages tr[data-metric=systolic_mmhg]")).to_contain_text("mmHg")
    expect(clin.locator("#logged-time")).to_contain_text("9 min logged on this flag (nurse 9 min)")
    expect(clin.locator("#month-billing")).to_contain_text("Management time counted")
    expect(clin.locator("input[name=minutes]")).to_have_value("0")
    clin.fill("textarea[name=determination]", "Severe hypertension, asymptomatic")
    clin.fill("input[name=icd10_codes]", "I10")
    clin.fill("textarea[name=action]", "Amlodipine increased")
    clin.fill("input[name=minutes]", "6")
    _within_width(clin.locator("textarea[name=determination]"), width)
    _within_width(clin.locator("#submit-review"), width)
    clin.click("#submit-review")
    expect(clin.locator("#flag-state")).to_have_text("reviewed")
    expect(clin.locator("#flash")).to_contain_text("Review recorded.")
    # Full-page screenshots resize the viewport for the capture: taken last, never mid-flow.
    clin.goto(f"/flags/{world.flag_id}/review")
    clin.screenshot(path=str(artifacts_dir / f"review-context-{width}.png"), full_page=True)
    logged = db.execute("SELECT sum(minutes) FROM time_logs WHERE flag_id = %s", (world.flag_id,)).fetchone()
    assert logged == (15,)
