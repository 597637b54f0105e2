"""The review form with its context (issue 17 item 3): chart, baseline and averages, other flags, notes,
logged time and contacts, the month's billing; minutes never default to an invented 5."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dashboards.review_context import averages
from tests.dashboards.live import session_csrf, sign_in
from tests.dashboards.seed import World, add_flag, add_reading

Db = psycopg.Connection[tuple[Any, ...]]
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def _r(days_ago: float, sys: float, dia: float, quality: str = "valid") -> dict[str, Any]:
    return {"measured_at": NOW - timedelta(days=days_ago), "quality": quality, "systolic_mmhg": sys,
            "diastolic_mmhg": dia, "glucose_mg_dl": None}


def test_averages_baseline_is_the_median_before_the_flag_and_means_are_recent() -> None:
    rows = [_r(d, 120 + d % 3, 80) for d in range(5, 31)]  # the baseline window: 4..31 days back
    rows += [_r(1, 170, 100), _r(2, 160, 96), _r(0.5, 400, 10, quality="quarantined")]
    out = averages(rows, at=NOW - timedelta(days=1), now=NOW)
    sys = next(a for a in out if a["metric"] == "systolic_mmhg")
    assert (sys["baseline"], sys["baseline_n"]) == (121.0, 26)
    assert (sys["avg_7d"], sys["n_7d"]) == (round((170 + 160 + 120 + 121 + 122) / 5, 1), 5)
    assert sys["n_30d"] == 28  # the quarantined 400 counts nowhere
    assert [a["metric"] for a in out] == ["systolic_mmhg", "diastolic_mmhg"]  # no glucose, no row
    assert averages([], at=NOW, now=NOW) == []


def test_review_form_shows_the_context_and_prefills_no_invented_minutes(
    base_url: str, world: World, db: Db
) -> None:
    other_reading = add_reading(db, world, datetime.now(UTC) - timedelta(hours=5), kind="glucose",
                                glucose=52.0)
    other = add_flag(db, world, severity="high", rule_id="glucose_hypo_l2", reading_ids=[other_reading])
    with httpx.Client(base_url=base_url, timeout=20) as nurse:
        assert sign_in(nurse, world.usernames["nurse"]).status_code == 303
        csrf = session_csrf(nurse)
        for data in ({"event": "log_time", "minutes": "12", "note": "called patient, re-measure coached"},
                     {"event": "annotate", "note": "Patient skipped amlodipine for 3 days"}):
            r = nurse.post(f"/flags/{world.flag_id}/events", data={**data, "csrf_token": csrf})
            assert r.status_code == 303
        assert nurse.post(f"/flags/{other}/events", data={"event": "annotate", "note": "ate late, felt shaky",
                                                          "csrf_token": csrf}).status_code == 303
        at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        assert nurse.post(f"/flags/{world.flag_id}/communications", data={
            "mode": "phone", "at": at, "note": "spoke with daughter", "csrf_token": csrf}).status_code == 303
    with httpx.Client(base_url=base_url, timeout=20) as clin:
        assert sign_in(clin, world.usernames["clinician"]).status_code == 303
        html = clin.get(f"/flags/{world.flag_id}/review").text
    chart = html[html.index('id="review-chart"'):html.index('id="averages"')]
    assert chart.count("<svg") >= 2 and 'class="flagged"' in chart  # the crisis reading is ringed
    assert re.search(r'data-metric="systolic_mmhg"><th scope="row">Systolic</th>\s*<td>\d+(\.\d)? mmHg', html)
    others = html[html.index('id="other-flags"'):html.index('id="notes"')]
    assert f'href="/flags/{other}"' in others and f'href="/flags/{world.flag_id}"' not in others
    notes = html[html.index('id="notes"'):html.index('id="logged-time"')]
    assert "Patient skipped amlodipine for 3 days" in notes and f"(flag {other}): " in notes
    assert "ate late, felt shaky" in notes
    assert re.search(r'id="logged-time"><strong>12 min</strong> logged on this flag \(nurse 12 min\)', html)
    assert "called patient, re-measure coached" in html and "spoke with daughter" in html
    billing = html[html.index('id="month-billing"'):]
    assert "Management time counted:" in billing and re.search(r"<strong>99\d\d\d</strong>", billing)
    minutes = re.search(r'<input name="minutes"[^>]*>', html)
    assert minutes is not None and 'value="0"' in minutes.group(0) and 'value="5"' not in minutes.group(0)
    assert "12 min already logged on this flag (nurse 12) count already" in html
