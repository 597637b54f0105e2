"""The BP trend score on plain values: time-of-day level, residual SD and correlation, combined z."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tests.triage.builders import NOW, Readings
from triage.rules.cusum import trend_cusum
from triage.rules.diurnal import combined_z, diurnal_residuals

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


@pytest.mark.parametrize(
    ("rho", "expected"), [(0.0, np.sqrt(2.0)), (1.0, 1.0), (-0.5, 2.0), (0.5, 2.0 / np.sqrt(3.0))]
)
def test_combined_z_of_two_unit_scores(rho: float, expected: float) -> None:
    assert combined_z(np.array([1.0]), np.array([1.0]), np.array([rho]))[0] == pytest.approx(expected)


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
    assert evening["rho"] == pytest.approx(0.95)  # the wobbles move together (clipped to the bound)


@pytest.mark.parametrize("true_rho", [-0.6, 0.0, 0.7])
def test_residual_correlation_is_estimated(true_rho: float) -> None:
    rng = random.Random(5)
    hours, sys, dia = [], [], []
    for d in range(34):
        for h in (8.0, 21.0):
            a, b = rng.gauss(0, 1), rng.gauss(0, 1)
            hours.append(24.0 * d + h + rng.random())
            sys.append(130.0 + 6.0 * a)
            dia.append(80.0 + 4.0 * (true_rho * a + np.sqrt(1 - true_rho**2) * b))
    rho = diurnal_residuals(_frame(sys, dia, hours), FLOORS)["rho"].dropna()
    assert rho.iloc[-1] == pytest.approx(true_rho, abs=0.25)


def test_one_odd_reading_is_not_a_trend() -> None:
    r = Readings()
    rng = random.Random(3)
    for d in range(35, -1, -1):
        for hour in (12, 2):
            odd = (d, hour) == (1, 12)
            sbp, dbp = (175, 102) if odd else (128 + rng.gauss(0, 6), 80 + rng.gauss(0, 4))
            r.bp(sbp, dbp, ago=d * DAY + timedelta(hours=hour))
    assert trend_cusum(r.frame(), now=NOW).empty


def test_strongly_correlated_noise_does_not_double_count() -> None:
    # Diastolic follows systolic's noise: a naive sum of the two scores would have SD 2, not 1.
    r = Readings()
    rng = random.Random(11)
    for d in range(35, -1, -1):
        for hour in (12, 2):
            e = rng.gauss(0, 6)
            r.bp(128 + e, 80 + 0.6 * e + rng.gauss(0, 1), ago=d * DAY + timedelta(hours=hour))
    assert trend_cusum(r.frame(), now=NOW).empty
