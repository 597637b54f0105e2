"""The pure rule table at every boundary, and policy as dated data."""

from __future__ import annotations

from datetime import date

import pytest

from triage.billing import rules
from triage.billing.forecast import forecast_period

P = rules.MEDICARE_CY2026


@pytest.mark.parametrize(
    "days,code,emitted",
    [
        (0, "99445", False),
        (1, "99445", False),
        (2, "99445", True),
        (15, "99445", True),
        (16, "99454", True),
        (30, "99454", True),
    ],
)
def test_device_code_boundaries(days: int, code: str, emitted: bool) -> None:
    d = rules.device_code(days, P)
    assert (d.code, d.emitted) == (code, emitted)
    assert d.evidence["days_with_data"] == days


@pytest.mark.parametrize(
    "minutes,expected",
    [
        (9, {}),
        (10, {"99470": 1}),
        (19, {"99470": 1}),
        (20, {"99457": 1}),
        (39, {"99457": 1}),
        (40, {"99457": 1, "99458": 1}),
        (59, {"99457": 1, "99458": 1}),
        (60, {"99457": 1, "99458": 2}),
        (95, {"99457": 1, "99458": 2}),
    ],
)
def test_management_boundaries(minutes: int, expected: dict[str, int]) -> None:
    out = rules.management_codes(minutes, True, P)
    assert rules.emitted_codes(out) == expected
    assert not ({"99470", "99457"} <= set(rules.emitted_codes(out)))  # M6


def test_cap_reports_unbilled_minutes() -> None:
    extra = rules.management_codes(95, True, P)[-1]
    assert extra.evidence["uncapped_units"] == 3 and extra.evidence["unbilled_minutes"] == 35
    assert "capped" in extra.reason


def test_non_interactive_minutes_are_withheld_with_reason() -> None:
    [d] = rules.management_codes(45, False, P)
    assert not d.emitted and d.rule == "M0" and "interactive" in d.reason


def test_every_failed_gate_is_named() -> None:
    out = rules.evaluate(
        rules.UnitInputs(
            20,
            25,
            True,
            gates=rules.GateFacts(
                consent_on_file=False, rtm_billed=True, notes={"G8": "98977 2026-02-01..2026-02-28"}
            ),
        )
    )
    assert not rules.emitted_codes(out)
    withheld = [d for d in out if d.code in ("99454", "99457")]
    assert all(d.rule == "G2+G8" and "98977" in d.reason for d in withheld)


def test_policy_selection_by_date_and_payer() -> None:
    policies = [rules.MEDICARE_CY2025, rules.MEDICARE_CY2026]
    assert rules.select_policy(policies, "medicare", date(2025, 12, 31)).setup_min_days == 16
    assert rules.select_policy(policies, "medicare", date(2026, 1, 1)).setup_min_days == 2
    with pytest.raises(rules.InvalidPolicy):
        rules.select_policy(policies, "acme", date(2026, 1, 1))
    with pytest.raises(rules.InvalidPolicy, match="MIN_99470 missing"):
        rules.Policy.from_values(
            "x",
            date(2026, 1, 1),
            None,
            {
                "SETUP_MIN_DAYS": "2",
                "MAX_99458_UNITS": "2",
                "DEVICE_PERIOD_DAYS": "30",
                "DEVICE_LOW_MIN_DAYS": "2",
                "DEVICE_HIGH_MIN_DAYS": "16",
            },
        )


@pytest.mark.parametrize(
    "days,elapsed,likely,reachable",
    [(8, 15, "99454", True), (3, 15, "99445", True), (0, 20, None, False), (1, 16, "99445", False)],
)
def test_forecast(days: int, elapsed: int, likely: str | None, reachable: bool) -> None:
    start = date(2026, 1, 1)
    f = forecast_period(days_with_data=days, period_start=start, as_of=date(2026, 1, elapsed), policy=P)
    assert (f.likely_code, f.can_reach_99454) == (likely, reachable)
    assert f.reason
