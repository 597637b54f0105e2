"""Charts people read (issue 17 item 5): responsive, the patient's own targets, labels apart,
averages, glucose time in range and GMI, filled 30/90-day views, text contrast ≥ 4.5:1."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import psycopg
import pytest

from dashboards import chart_stats as cs
from dashboards.charts import Point, Series, Threshold, line_chart, spread_labels
from tests.dashboards.seed import World, add_reading
from triage.overrides import set_override

Db = psycopg.Connection[tuple[Any, ...]]


def _luminance(hex_color: str) -> float:
    h = hex_color.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    chans = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in chans]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str = "#ffffff") -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_labels_are_spread_apart_and_kept_in_the_plot() -> None:
    ys = spread_labels([100.0, 101.0, 103.0, 50.0], lo=20.0, hi=200.0)
    assert ys[3] == 50.0  # alone: untouched
    near = sorted(ys[:3])
    assert all(b - a >= 13.0 for a, b in pairwise(near))
    squeezed = spread_labels([198.0, 199.0, 200.0], lo=20.0, hi=200.0)
    assert max(squeezed) <= 200.0 and sorted(squeezed)[1] - sorted(squeezed)[0] >= 13.0


def test_chart_is_responsive_labels_do_not_overlap_and_text_contrast_is_aa() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pts = [Point(t0 + timedelta(days=i), 130.0 + i) for i in range(7)]
    svg = str(line_chart(
        title="Blood pressure", unit="mmHg", start=t0, end=t0 + timedelta(days=7),
        series=[Series("systolic", "#6d28d9", pts, average=133.0), Series("diastolic", "#0e7490", [])],
        thresholds=[Threshold(140, "stage 2 SBP"), Threshold(139, "stage 2 DBP"), Threshold(135, "x")]))
    assert 'width="100%"' in svg and 'viewBox="0 0 ' in svg and 'width="720"' not in svg
    label = r'class="(?:threshold|average)-label" x="[\d.]+" y="([\d.]+)"'
    label_ys = sorted(float(y) for y in re.findall(label, svg))
    assert len(label_ys) == 4  # three thresholds and one average
    assert all(b - a >= 13.0 for a, b in pairwise(label_ys))
    assert "systolic avg 133" in svg  # the base name, rounded: it fits the margin
    fills = set(re.findall(r'<text[^>]*fill="(#[0-9a-fA-F]{3,6})"', svg))
    assert fills and all(contrast(c) >= 4.5 for c in fills), {c: round(contrast(c), 2) for c in fills}


def test_time_in_range_bands_goals_and_gmi() -> None:
    tir = cs.time_in_range(very_low=1, low=3, in_range=80, high=12, very_high=4, mean_mg_dl=154.0, days=30)
    assert tir is not None and tir.readings == 100
    shares = {b.key: round(b.share, 2) for b in tir.bands}
    assert shares == {"very_high": 0.04, "high": 0.12, "in_range": 0.8, "low": 0.03, "very_low": 0.01}
    met = {b.key: b.met for b in tir.bands}
    assert met == {"very_high": True, "high": True, "in_range": True, "low": False, "very_low": False}
    assert tir.gmi_pct == pytest.approx(3.31 + 0.02392 * 154.0) and round(tir.gmi_pct, 1) == 7.0
    assert tir.gmi_reliable
    assert not cs.time_in_range(very_low=0, low=0, in_range=5, high=0, very_high=0, mean_mg_dl=100, days=3
                                ).gmi_reliable  # type: ignore[union-attr]
    assert cs.time_in_range(very_low=0, low=0, in_range=0, high=0, very_high=0, mean_mg_dl=0, days=0) is None
    assert all(contrast(b.color) >= 4.5 for b in tir.bands)


def test_targets_use_the_override_clamped_to_the_safety_floor() -> None:
    t = cs.targets(("bp_stage2_systolic", "bp_crisis_systolic", "glucose_hypo_l2"),
                   {"bp_stage2_systolic": 150.0, "bp_crisis_systolic": 200.0, "glucose_hypo_l2": 50.0})
    assert (t["bp_stage2_systolic"].value, t["bp_stage2_systolic"].overridden) == (150.0, True)
    assert (t["bp_crisis_systolic"].value, t["bp_crisis_systolic"].overridden) == (180.0, False)  # floor
    assert t["glucose_hypo_l2"].value == 54.0


def test_patient_page_shows_targets_averages_time_in_range_and_daily_views(
    signed_in: Any, world: World, db: Db
) -> None:
    now = datetime.now(UTC)
    for i, g in enumerate((45.0, 62.0, 210.0, 290.0)):
        add_reading(db, world, now - timedelta(days=4, hours=i), kind="glucose", glucose=g)
    set_override(db, patient_id=world.patient_id, key="bp_stage2_systolic", value=150, unit="mm[Hg]",
                 set_by=world.usernames["clinician"], role="clinician", reason="treated baseline")
    client: httpx.Client = signed_in("nurse")
    page = client.get(f"/patients/{world.patient_id}", params={"days": 30})
    assert page.status_code == 200
    html = page.text
    assert "stage 2 SBP* 150" in html and "bp stage2 systolic 150, default 140" in html
    assert "stage 2 SBP 140" not in html
    assert 'id="bp-average"' in html and "systolic avg " in html and "systolic (daily mean)" in html
    assert 'id="time-in-range"' in html and "In range (70-180)" in html
    tir = re.search(r'class="band-in_range"><td>[^<]+</td><td><strong>(\d+) %', html)
    assert tir is not None and int(tir.group(1)) == 60  # 6 of 10 glucose readings in 70-180
    gmi = re.search(r'id="gmi">GMI <strong>([\d.]+) %', html)
    assert gmi is not None and 6.0 < float(gmi.group(1)) < 8.0
    assert "weight-chart" not in html and "spo2-chart" not in html  # no such devices
    week = client.get(f"/patients/{world.patient_id}", params={"days": 7}).text
    assert "(daily mean)" not in week and 'class="flagged"' in week
