"""Payer profiles on plain values: parsing a billing_policy set, and the version in force on a date."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from triage.billing import policy, rules

BASE = {
    "SETUP_MIN_DAYS": "2",
    "MAX_99458_UNITS": "2",
    "DEVICE_PERIOD_DAYS": "30",
    "DEVICE_LOW_MIN_DAYS": "2",
    "DEVICE_HIGH_MIN_DAYS": "16",
    "MIN_99470": "10",
    "MIN_99457": "20",
    "STEP_99458": "20",
    "MIN_99091": "30",
}


def test_values_parse_into_the_medicare_profile() -> None:
    p = policy.Policy.from_values(
        "medicare", date(2026, 1, 1), None, {**BASE, "LABEL": "Medicare FFS CY2026"}
    )
    assert p == policy.MEDICARE_CY2026 and p.version == "medicare@2026-01-01"


@pytest.mark.parametrize(
    "change,detail",
    [
        ({"MIN_99457": None}, "MIN_99457 missing (effective 2026-01-01)"),
        ({"MIN_99457": "twenty"}, "MIN_99457='twenty' is not an integer"),
        ({"HAS_99445": "yes"}, "HAS_99445='yes' is not true/false"),
        ({"WAIVED_GATES": "G1,G5"}, "WAIVED_GATES names G5; waivable: ('G1', 'G2', 'G3', 'G7', 'G14')"),
    ],
)
def test_malformed_values_name_the_key(change: dict[str, str | None], detail: str) -> None:
    values = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(policy.InvalidPolicy) as e:
        policy.Policy.from_values("acme", date(2026, 1, 1), None, values)
    assert (e.value.payer, e.value.detail) == ("acme", detail)


def test_latest_start_in_force_wins_and_none_is_an_error() -> None:
    later = replace(policy.MEDICARE_CY2026, effective_from=date(2026, 7, 1), label="mid-year")
    profiles = [policy.MEDICARE_CY2025, policy.MEDICARE_CY2026, later]
    assert policy.select_policy(profiles, "medicare", date(2025, 12, 31)) is policy.MEDICARE_CY2025
    assert policy.select_policy(profiles, "medicare", date(2026, 6, 30)) is policy.MEDICARE_CY2026
    assert policy.select_policy(profiles, "medicare", date(2026, 7, 1)) is later
    with pytest.raises(policy.InvalidPolicy, match="no policy in force on 2024-12-31"):
        policy.select_policy(profiles, "medicare", date(2024, 12, 31))


def test_rules_still_name_the_profile_types() -> None:
    """Callers that imported the profile from the rule table keep working (same objects)."""
    assert rules.Policy is policy.Policy and rules.MEDICARE_CY2026 is policy.MEDICARE_CY2026
    assert rules.select_policy is policy.select_policy and rules.InvalidPolicy is policy.InvalidPolicy
