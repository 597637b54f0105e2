"""The extra quality cohorts are deterministic, and the rules catch their critical events."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from simulators import cohorts
from triage import frames as fr
from triage.frames import prepare_readings
from triage.rules import VALUE_RULES

START = datetime(2026, 1, 5, tzinfo=UTC)


def _gen(seed: int = 3) -> cohorts.Cohorts:
    return cohorts.generate(6, 50, seed=seed, start=START, first_patient_id=100)


def test_same_seed_same_cohorts() -> None:
    a, b = _gen(), _gen()
    assert list(a.readings(0)) == list(b.readings(0)) and a.events == b.events
    assert list(_gen(4).readings(0)) != list(a.readings(0))
    assert set(a.cohort_of().values()) == set(cohorts.COHORTS)
    assert min(a.cohort_of()) == 101


def test_non_adherent_gaps_are_real_gaps() -> None:
    c = _gen()
    rows = pd.DataFrame(list(c.readings(0)))
    for e in (e for e in c.events if e.event == "not_measuring"):
        mine = rows[rows["patient_id"] == e.patient_id]["measured_at"]
        assert not ((mine >= e.start) & (mine < e.end)).any()
        assert (e.end - e.start).days >= 5


def test_value_rules_catch_every_critical_cohort_event() -> None:
    c = _gen()
    readings = prepare_readings(pd.DataFrame(list(c.readings(0))))
    end = START + pd.Timedelta(days=50)
    found = fr.concat(rule(readings, now=end) for rule in VALUE_RULES)
    critical = [e for e in c.events if e.critical]
    assert {e.event for e in critical} >= {"hf_decompensation", "desaturation_sustained"}
    for e in critical:
        hit = found[
            (found["patient_id"] == e.patient_id)
            & found["rule_id"].isin(e.expected_rules)
            & (found["last_reading_at"] >= pd.Timestamp(e.start))
        ]
        assert len(hit), e
