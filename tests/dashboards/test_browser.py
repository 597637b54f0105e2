"""End to end in headless Chromium: nurse → clinician → billing on one critical flag."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboards.live import totp_code
from tests.dashboards.seed import PASSWORD, World, add_flag, add_reading


def _sign_in(browser: Browser, base_url: str, username: str, *, width: int = 1400) -> Page:
    page = browser.new_context(base_url=base_url, viewport={"width": width, "height": 1000}).new_page()
    page.set_default_timeout(10_000)
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url or "/login/second-factor" in url)
    if "/login/second-factor" in page.url:  # clinician, billing, admin: the seeded authenticator's code
        page.fill("input[name=code]", totp_code(username))
        page.click("#second-factor-form button[type=submit]")
    return page


@pytest.mark.browser
@pytest.mark.slow
def test_nurse_escalates_clinician_promotes_billing_sees(
    browser: Browser, base_url: str, world: World, db: psycopg.Connection[Any], artifacts_dir: Path
) -> None:
    nurse = _sign_in(browser, base_url, world.usernames["nurse"])
    expect(nurse).to_have_url(f"{base_url}/queue")
    expect(nurse.locator("#live-status")).to_contain_text("Live")
    nurse.screenshot(path=str(artifacts_dir / "1-nurse-queue.png"), full_page=True)

    # A crisis reading and its flag arrive while the nurse watches: no reload.
    rid = add_reading(db, world, datetime.now(UTC), systolic=192.0, diastolic=126.0)
    flag_id = add_flag(db, world, severity="critical", rule_id="bp_crisis_confirmed", reading_ids=[rid])
    row = nurse.locator(f"li[data-flag-id='{flag_id}']")
    expect(row).to_be_visible()
    expect(nurse.locator(f"tr:has(li[data-flag-id='{flag_id}'])")).to_contain_text("192/126 mmHg")
    expect(nurse.locator("[data-count=critical]")).to_have_text("2")
    nurse.screenshot(path=str(artifacts_dir / "2-nurse-new-critical-flag.png"), full_page=True)
    row.locator("a.more").click()  # the panel: note, time, escalate, close
    row.locator("form.panel textarea[name=note]").fill("Called: no symptoms, re-measured high")
    row.locator("form.panel button[value=escalate]").click()
    expect(nurse.locator(f"li[data-flag-id='{flag_id}']")).to_contain_text("escalated")
    nurse.screenshot(path=str(artifacts_dir / "3-nurse-escalated.png"), full_page=True)
    nurse.locator(f"tr:has(li[data-flag-id='{flag_id}']) td a").first.click()
    expect(nurse.locator("#bp-chart svg .flagged").first).to_be_attached()
    expect(nurse.locator("#adherence")).to_contain_text("of 16 days")
    nurse.screenshot(path=str(artifacts_dir / "3b-nurse-patient-page.png"), full_page=True)

    clin = _sign_in(browser, base_url, world.usernames["clinician"])
    clin.goto("/queue?status=escalated")
    clin.locator(f"li[data-flag-id='{flag_id}'] a.button", has_text="Review").click()
    clin.fill("textarea[name=determination]", "Confirmed severe hypertension, no symptoms")
    clin.fill("input[name=icd10_codes]", "I10")
    clin.fill("textarea[name=action]", "Phoned patient; increased amlodipine to 10 mg")
    clin.fill("input[name=minutes]", "15")
    clin.check("input[name=interactive]")
    clin.select_option("select[name=interactive_mode]", "phone")
    clin.screenshot(path=str(artifacts_dir / "4-clinician-review-form.png"), full_page=True)
    clin.click("#submit-review")
    expect(clin.locator("#flag-state")).to_have_text("reviewed")
    clin.click("#promote")
    expect(clin.locator("#flag-state")).to_have_text("promoted")
    clin.screenshot(path=str(artifacts_dir / "5-clinician-promoted.png"), full_page=True)
    promoted = db.execute("SELECT count(*) FROM billable_events WHERE flag_id = %s", (flag_id,)).fetchone()
    assert promoted == (1,)

    billing = _sign_in(browser, base_url, world.usernames["billing"])
    expect(billing).to_have_url(f"{base_url}/billing")
    card = billing.locator(f"section.patient-month[data-patient-id='{world.patient_id}']")
    expect(card).to_contain_text("Management time counted: 15 min")
    expect(card).to_contain_text("interactive communication: yes")
    billing.screenshot(path=str(artifacts_dir / "6-billing-month.png"), full_page=True)
    with billing.expect_download() as dl:
        billing.click("#download-csv")
    assert dl.value.suggested_filename.startswith("rpmflow-claims-")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [1440, 390])
def test_live_queue_inserts_rows_without_touching_typed_text_or_focus(
    browser: Browser, base_url: str, world: World, db: psycopg.Connection[Any], width: int
) -> None:
    from tests.dashboards.seed import make_world

    page = browser.new_context(base_url=base_url, viewport={"width": width, "height": 900}).new_page()
    page.set_default_timeout(10_000)
    page.goto("/login")
    page.fill("input[name=username]", world.usernames["nurse"])
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#live-status")).to_contain_text("Live")
    mine = page.locator(f"li[data-flag-id='{world.flag_id}']")
    mine.locator("a.more").click()
    note = mine.locator("form.panel textarea[name=note]")
    expect(note).to_be_focused()
    note.type("Patient says she feels fine")

    other = make_world(db)
    new_flag = add_flag(db, other, severity="critical", rule_id="bp_crisis")
    expect(page.locator(f"li[data-flag-id='{new_flag}']")).to_be_visible()
    expect(note).to_have_value("Patient says she feels fine")
    expect(note).to_be_focused()
    doc_width = page.evaluate("document.documentElement.scrollWidth")
    assert doc_width <= width + 1, doc_width  # nothing pushes the queue off a phone screen
    mine.locator("form.panel button[value=annotate]").click()
    expect(page).to_have_url(f"{base_url}/queue?done=annotate")  # back, saying what happened
    expect(page.locator("#flash")).to_contain_text("Note added")
    notes = db.execute("SELECT count(*) FROM flag_events WHERE flag_id = %s AND note = %s",
                       (world.flag_id, "Patient says she feels fine")).fetchone()
    assert notes == (1,)


@pytest.mark.browser
@pytest.mark.slow
def test_totp_sign_in_and_first_enrolment_in_the_browser(
    browser: Browser, base_url: str, world: World, db: psycopg.Connection[Any], artifacts_dir: Path
) -> None:
    from dashboards.passwords import hash_password
    from triage.clinical import people

    clin = browser.new_context(base_url=base_url).new_page()
    clin.set_default_timeout(10_000)
    clin.goto("/login")
    clin.fill("input[name=username]", world.usernames["clinician"])
    clin.fill("input[name=password]", PASSWORD)
    clin.click("#login-form button[type=submit]")
    expect(clin).to_have_url(re.compile(r"/login/second-factor"))
    expect(clin.locator("input[name=code]")).to_be_focused()
    clin.fill("input[name=code]", "000000")
    clin.click("#second-factor-form button[type=submit]")
    expect(clin.locator("p.error")).to_contain_text("not valid")
    clin.fill("input[name=code]", totp_code(world.usernames["clinician"]))
    clin.click("#second-factor-form button[type=submit]")
    expect(clin).to_have_url(f"{base_url}/queue")
    clin.screenshot(path=str(artifacts_dir / "mfa-1-clinician-queue.png"), full_page=True)

    people.create_user(db, username="fresh-biller", display_name="Fresh Biller", role="billing",
                       password_hash=hash_password(PASSWORD))
    bill = _sign_in(browser, base_url, "fresh-biller")
    expect(bill).to_have_url(f"{base_url}/account/mfa")  # nothing else until a factor is set up
    bill.goto("/billing")
    expect(bill).to_have_url(f"{base_url}/account/mfa")
    secret = bill.locator("#totp-secret").inner_text().replace(" ", "")
    expect(bill.locator("#totp-uri")).to_contain_text(f"secret={secret}")
    bill.screenshot(path=str(artifacts_dir / "mfa-2-enrolment.png"), full_page=True)
    bill.fill("#mfa-confirm input[name=code]", totp_code("fresh-biller", secret))
    bill.click("#mfa-confirm button[type=submit]")
    expect(bill.locator("#recovery-codes li")).to_have_count(10)
    bill.goto("/billing")
    expect(bill).to_have_url(f"{base_url}/billing")
    enrolled = db.execute("SELECT action FROM audit_log WHERE actor = 'fresh-biller' AND action LIKE 'mfa.%'")
    assert enrolled.fetchall() == [("mfa.enrolled",)]


@pytest.mark.browser
@pytest.mark.slow
def test_break_glass_from_the_refusal_page(
    browser: Browser, base_url: str, world: World, db: psycopg.Connection[Any], artifacts_dir: Path
) -> None:
    from triage.clinical import people

    outside = people.create_patient(db, mrn="MRN-ER", display_name="Erin Elsewhere", state="NY")
    nurse = _sign_in(browser, base_url, world.usernames["nurse"])
    expect(nurse).to_have_url(f"{base_url}/queue")
    nurse.goto(f"/patients/{outside}")
    expect(nurse.locator("h1")).to_contain_text("not open to you")
    expect(nurse.locator("body")).not_to_contain_text("Erin Elsewhere")
    nurse.screenshot(path=str(artifacts_dir / "care-1-refused.png"), full_page=True)
    nurse.fill("#break-glass textarea[name=reason]", "Patient phoned the ward line with chest pain")
    nurse.click("#break-glass button[type=submit]")
    expect(nurse).to_have_url(f"{base_url}/patients/{outside}")
    expect(nurse.locator("body")).to_contain_text("Erin Elsewhere")
    rows = db.execute("SELECT action FROM audit_log WHERE patient_id = %s AND action LIKE %s ORDER BY seq",
                      (outside, "%break_glass")).fetchall()
    assert rows == [("access.break_glass",), ("alert.break_glass",)]
