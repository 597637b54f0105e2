"""The population generator's event steps: which injected events survive, and what they set."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from simulators.population import _dropout, _gradual_rise
from simulators.population_model import RISE_DAYS, InjectedEvent, Profile

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _profile() -> Profile:
    return Profile(
        patient_id=7, condition="hypertension", timezone="America/Chicago", sbp=128.0, dbp=80.0,
        pulse=70.0, glucose=130.0, glucose_sd=16.0, adherence=0.9, bp_device="BP-000007",
        glucose_device=None, gateway_id="gw-000007",
    )  # fmt: skip


def _rise(prof: Profile, start: int) -> InjectedEvent:
    prof.rise_start = start
    return InjectedEvent(prof.patient_id, "bp_gradual_rise", T0, T0, False, ("trend_cusum",))


def test_a_gradual_rise_ends_inside_the_data() -> None:
    prof = _profile()
    (event,) = _gradual_rise(prof, random.Random(3), T0, 90)
    assert prof.rise_start is not None
    assert 30 <= prof.rise_start < 90 - RISE_DAYS
    assert (event.end - T0).days == prof.rise_start + RISE_DAYS <= 90


def test_no_gradual_rise_when_the_data_is_too_short_for_one() -> None:
    prof = _profile()
    assert _gradual_rise(prof, random.Random(3), T0, RISE_DAYS + 1) == []
    assert prof.rise_start is None


def test_a_dropout_before_the_rise_is_over_removes_the_rise() -> None:
    prof = _profile()
    rise = _rise(prof, start=60)  # the dropout day is drawn from [20, 85): this seed draws before 81
    out = _dropout(prof, random.Random(1), T0, 90, [rise])
    assert prof.dropout_day is not None and prof.dropout_day < 60 + RISE_DAYS
    assert [e.event for e in out] == ["dropout"]
    assert prof.rise_start is None


def test_a_dropout_after_the_rise_keeps_it() -> None:
    prof = _profile()
    rise = _rise(prof, start=-RISE_DAYS)  # over before the data starts: any dropout day comes after
    out = _dropout(prof, random.Random(1), T0, 90, [rise])
    assert [e.event for e in out] == ["bp_gradual_rise", "dropout"]
    assert prof.rise_start == -RISE_DAYS
    assert out[1].start >= T0 and (out[1].end - T0).days == 90
