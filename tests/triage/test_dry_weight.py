"""Dry weight: the weight rule measures the week's gain from the care team's target when set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pytest

from tests.triage.builders import NOW, Readings
from tests.triage.dbseed import patient
from triage import loader
from triage.errors import UnsafeOverride
from triage.limits import Limits
from triage.overrides import set_dry_weight
from triage.rules import weight_gain

DAY = timedelta(days=1)


def _dry(kg: float) -> Limits:
    return Limits(pd.DataFrame({"patient_id": [1], "threshold_key": ["dry_weight"], "value_canonical": [kg]}))


def _steady(r: Readings, kg: float) -> None:
    for d in range(10, -1, -1):
        r.weight(kg + (0.1 if d % 2 else -0.1), ago=d * DAY)


def test_weight_above_the_dry_weight_flags_though_it_never_changed_in_a_week() -> None:
    r = Readings()
    _steady(r, 84.0)  # steady, but 2.5 kg over the target
    assert weight_gain(r.frame(), now=NOW).empty
    out = weight_gain(r.frame(), now=NOW, limits=_dry(81.5))
    assert len(out) > 0 and set(out["baseline"]) == {81.5}
    row = out.iloc[-1]
    assert row["episode_key"].startswith("dry:") and row["dedup"] == "episode"
    assert len(row["reading_ids"]) == 1
    assert "above the dry weight set by the care team, 81.5 kg" in row["reason"]


def test_at_the_dry_weight_a_week_gain_from_a_low_weighing_is_not_a_flag() -> None:
    r = Readings()
    for d, kg in zip(range(5, -1, -1), (78.0, 78.8, 79.6, 80.4, 80.4, 80.4), strict=True):
        r.weight(kg, ago=d * DAY)  # back up from a low (after a diuretic), 0.8 kg a day
    assert len(weight_gain(r.frame(), now=NOW)) > 0  # +2.4 kg from the week's lowest
    assert weight_gain(r.frame(), now=NOW, limits=_dry(80.0)).empty  # at target


def test_the_day_rule_still_applies_with_a_dry_weight() -> None:
    r = Readings()
    r.weight(80.0, ago=DAY)
    r.weight(81.0)
    out = weight_gain(r.frame(), now=NOW, limits=_dry(80.0))
    assert list(out["episode_key"]) == [""] and "in a day from 80.0 kg" in out.iloc[0]["reason"]


def test_set_dry_weight_keeps_history_converts_lb_and_refuses_bad_input(db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    pid = patient(db, assigned_from=now - timedelta(days=40))
    set_dry_weight(db, patient_id=pid, value=82.0, unit="kg", set_by="n1", role="nurse", reason="discharge")
    set_dry_weight(db, patient_id=pid, value=176.0, unit="lb", set_by="c1", role="clinician", reason="review")
    rows = db.execute(
        "SELECT dry_weight_kg, revoked_by IS NOT NULL FROM patient_dry_weights WHERE patient_id = %s"
        " ORDER BY dry_weight_id",
        (pid,),
    ).fetchall()
    assert rows[0] == (82.0, True) and rows[1][0] == pytest.approx(79.83, abs=0.01) and not rows[1][1]
    limits = loader.overrides(db, {pid})
    assert limits.dry_weight(pd.Series([pid]))[0] == pytest.approx(79.83, abs=0.01)
    for kw in ({"role": "billing"}, {"reason": " "}, {"value": 5.0}, {"unit": "stone"}):
        args: dict[str, Any] = {"value": 80.0, "unit": "kg", "role": "nurse", "reason": "x", **kw}
        with pytest.raises(UnsafeOverride):
            set_dry_weight(db, patient_id=pid, set_by="n1", **args)
