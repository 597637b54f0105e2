"""DOMAIN D3's boundary vectors, from the golden file, through the pure rule table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from triage.billing import rules

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "billing_vectors.json").read_text(encoding="utf-8")
)["vectors"]
POLICIES = {"medicare_cy2026": rules.MEDICARE_CY2026, "medicare_cy2025": rules.MEDICARE_CY2025}


def _inputs(v: dict[str, Any]) -> rules.UnitInputs:
    return rules.UnitInputs(
        days_with_data=v["days"],
        mgmt_minutes=v["minutes"],
        interactive=v["interactive"],
        qhp_minutes=v.get("qhp_minutes", 0),
        performer_is_qhp=v.get("performer_is_qhp", False),
        first_period=v.get("first_period", False),
        education_documented=v.get("education_documented", True),
        setup_already_billed=v.get("setup_already_billed", False),
        gates=rules.GateFacts(**v.get("gates", {})),
    )


def test_the_golden_file_holds_every_d3_row() -> None:
    assert sum(v["id"].startswith("D3-") for v in VECTORS) == 20


@pytest.mark.parametrize("v", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(v: dict[str, Any]) -> None:
    decisions = rules.evaluate(_inputs(v), POLICIES[v.get("policy", "medicare_cy2026")])
    assert rules.emitted_codes(decisions) == v["expected"], [(d.code, d.rule, d.reason) for d in decisions]
    for d in decisions:  # every code considered carries its reason
        assert d.reason and d.rule
        assert d.emitted == (d.units > 0)
    if "gates" in v:  # a failed gate names itself on every withheld code
        withheld = [d for d in decisions if not d.emitted]
        assert withheld and all("G" in d.rule for d in withheld if "would otherwise" in d.reason)
