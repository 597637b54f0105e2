"""The trend detector's baseline on plain values: mean and SD of the window, robust to one outlier."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tests.triage.builders import NOW, Readings
from triage import thresholds as th
from triage.rules.cusum import baselines, trend_cusum

DAY = timedelta(days=1)


def _series(values: list[float], *, days_ago_first: int) -> pd.DataFrame:
    """One systolic reading a day, the first ``days_ago_first`` days before NOW, as the rule sees them."""
    t = [pd.Timestamp(NOW - (days_ago_first - i) * DAY) for i in range(len(values))]
    return pd.DataFrame({"patient_id": 1, "measured_at": pd.to_datetime(t, utc=True), "x": values})


def test_level_and_sd_are_the_mean_and_sd_of_the_window_ending_a_week_before() -> None:
    values = [120.0, 130.0] * 10 + [170.0] * 7  # 20 baseline days, then a week far above
    d = _series(values, days_ago_first=26)
    b = baselines(d, sd_floor=5.0)
    last = b.iloc[-1]  # its baseline: the 21 days ending 7 days before it, i.e. the 120/130 days
    assert last["b_n"] == 20
    assert last["b_level"] == pytest.approx(125.0)
    assert last["b_sd"] == pytest.approx(float(np.std([120.0, 130.0] * 10, ddof=1)))


def test_one_crisis_reading_in_the_baseline_is_clipped() -> None:
    values = [120.0, 130.0] * 10
    values[7] = 215.0  # a lone crisis reading in the baseline
    d = _series([*values, *[125.0] * 7], days_ago_first=26)
    last = baselines(d, sd_floor=5.0).iloc[-1]
    # clipped to 3 robust SDs (IQR 10 / 1.349 = 7.4 mmHg) above the median 125: 147.2, not 215
    clipped = [*values[:7], 125.0 + th.TREND_CLIP_SDS * 10.0 / 1.349, *values[8:]]
    assert last["b_level"] == pytest.approx(float(np.mean(clipped)))
    assert last["b_sd"] == pytest.approx(float(np.std(clipped, ddof=1)))
    assert last["b_sd"] < 0.5 * float(np.std(values, ddof=1))  # unclipped: 19.8 mmHg, hiding a 10 mmHg rise


def test_a_rise_after_a_crisis_reading_is_still_flagged() -> None:
    r = Readings()
    for d in range(35, -1, -1):
        rise = max(0, 5 - d) * 4.0  # +20 mmHg over the last 5 days
        for hour, wobble in ((12, 4), (2, -4)):
            sbp = 215 if (d, hour) == (20, 12) else 128 + rise + wobble
            r.bp(sbp, 80, ago=d * DAY + timedelta(hours=hour))
    out = trend_cusum(r.frame(), now=NOW)
    recent = out[out["last_reading_at"] >= pd.Timestamp(NOW - 5 * DAY)]  # the crisis itself is 20 days back
    assert len(recent) > 0
    first = recent.sort_values("last_reading_at").iloc[0]
    usual = 128.0 + (4.0 if first["last_reading_at"].hour == 6 else -4.0)  # its time of day's level
    assert first["baseline"] == pytest.approx(usual, abs=3.0)
    assert "level at this time of day over the 3 weeks before" in first["reason"]
