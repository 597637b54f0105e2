"""The BP trend score on plain values: time-of-day level and residual SD; systolic alone."""

from __future__ import annotations

import random
from datetime import timedelta

import pandas as pd
import pytest

from tests.triage.builders import NOW, Readings
from triage.rules.cusum import trend_cusum
from triage.rules.diurnal import diurnal_residuals

DAY = timedelta(days=1)
FLOORS = {"systolic_mmhg": 0.1, "diastolic_mmhg": 0.1}


def _frame(sys: list[float], dia: list[float], hours: list[float]) -> pd.DataFrame:
    """Readings ``hours`` after a midnight 40 days before NOW, as the rule sees them."""
    t0 = pd.Timestamp(NOW - 40 * DAY).normalize()
    at = [t0 + pd.Timedelta(hours=h) for h in hours]
    return pd.DataFrame(
        {
            "patient_id": 1,
            "measured_at": pd.to_datetime(at, utc=True),
            "systolic_mmhg": sys,
            "diastolic_mmhg": dia,
        }
    )


def test_morning_and_evening_levels_are_the_patients_own() -> None:
    # 30 days, 07:00 at 140/85 and 19:00 at 124/77 (+-2 alternating): one mean would say 132 +- 8.
    hours, sys, dia = [], [], []
    for d in range(30):
        for h, s, di in ((7.0, 140.0, 85.0), (19.0, 124.0, 77.0)):
            wob = 2.0 if d % 2 else -2.0
            hours.append(24.0 * d + h)
            sys.append(s + wob)
            dia.append(di + wob / 2)
    b = diurnal_residuals(_frame(sys, dia, hours), FLOORS)
    morning, evening = b.iloc[-2], b.iloc[-1]
    assert morning["systolic_mmhg_level"] == pytest.approx(140.0, abs=0.5)
    assert evening["systolic_mmhg_level"] == pytest.approx(124.0, abs=0.5)
    assert evening["diastolic_mmhg_level"] == pytest.approx(77.0, abs=0.5)
    assert evening["systolic_mmhg_sd"] == pytest.approx(2.0, abs=0.3)  # the wobble, not the routine


def test_one_odd_reading_is_not_a_trend() -> None:
    r = Readings()
    rng = random.Random(3)
    for d in range(35, -1, -1):
        for hour in (12, 2):
            odd = (d, hour) == (1, 12)
            sbp, dbp = (175, 102) if odd else (128 + rng.gauss(0, 6), 80 + rng.gauss(0, 4))
            r.bp(sbp, dbp, ago=d * DAY + timedelta(hours=hour))
    assert trend_cusum(r.frame(), now=NOW).empty


def test_diastolic_alone_is_not_a_systolic_trend() -> None:
    # The score is systolic only: a diastolic rise with systolic flat raises no flag.
    r = Readings()
    rng = random.Random(11)
    for d in range(35, -1, -1):
        rise = max(0, 7 - d) * 2.0
        for hour in (12, 2):
            r.bp(128 + rng.gauss(0, 6), 80 + rise + rng.gauss(0, 4), ago=d * DAY + timedelta(hours=hour))
    assert trend_cusum(r.frame(), now=NOW).empty
