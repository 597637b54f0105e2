"""The one definition of a valid reading: every reason, every kind, duplicates, and the frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from triage import frames as fr
from triage.valid_reading import (
    DEVICE_STATUS,
    DUPLICATE,
    FAILED,
    MANUAL,
    NON_PHYSIOLOGIC,
    NOT_FDA_CLEARED,
    PROBLEM_STATUS,
    QUARANTINED,
    ReadingFacts,
    count_reasons,
    judge,
    judge_all,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _r(rid: int = 1, **kw: object) -> ReadingFacts:
    base: dict[str, object] = {
        "reading_id": rid,
        "kind": "blood_pressure",
        "measured_at": T0,
        "device_id": "d1",
    }
    base.update(kw)
    return ReadingFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw,reason",
    [
        ({"transmission": "manual"}, MANUAL),
        ({"kind": "therapy_adherence"}, NON_PHYSIOLOGIC),
        ({"quality": "failed"}, FAILED),
        ({"quality": "quarantined", "quality_reason": "SBP <= DBP"}, QUARANTINED),
        ({"device_status": ("body_movement",)}, DEVICE_STATUS),
        ({"device_status": ("cuff_too_loose", "irregular_pulse")}, DEVICE_STATUS),
        ({"device_status": ("improper_measurement_position",)}, DEVICE_STATUS),
        ({"kind": "glucose", "device_status": ("strip_insertion_error",)}, DEVICE_STATUS),
        ({"kind": "glucose", "device_status": ("sample_size_insufficient",)}, DEVICE_STATUS),
        ({"fda_cleared": False}, NOT_FDA_CLEARED),
    ],
)
def test_each_reason_is_named(kw: dict[str, Any], reason: str) -> None:
    v = judge(_r(**kw))
    assert not v.valid and v.reason == reason and v.describe().startswith(reason)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"device_status": ("irregular_pulse",)},  # a finding, not a measurement problem
        {"device_status": ("pulse_rate_exceeds_upper_limit",)},
        {"kind": "glucose", "device_status": ("device_battery_low",)},
        {"kind": "weight"},
        {"kind": "spo2"},
        {"fda_cleared": None},  # unknown: triage does not ask
    ],
)
def test_valid_readings(kw: dict[str, Any]) -> None:
    assert judge(_r(**kw)).valid


def test_problem_bits_are_kind_specific() -> None:
    # a glucose bit on a cuff reading is not the cuff's problem (and vice versa)
    assert judge(_r(device_status=("strip_insertion_error",))).valid
    assert judge(_r(kind="glucose", device_status=("body_movement",))).valid
    assert set(PROBLEM_STATUS) >= {"blood_pressure", "glucose"}


def test_duplicates_collapse_but_a_different_value_is_a_reading() -> None:
    a = _r(1, values=(128.0, 82.0))
    b = _r(2, values=(128.0, 82.0))  # the same measurement delivered twice
    c = _r(3, values=(135.0, 85.0), measured_at=T0 + timedelta(seconds=10))
    out = judge_all([b, c, a])
    verdicts = {r.reading_id: v for r, v in out}
    assert verdicts[1].valid and verdicts[3].valid
    assert verdicts[2].reason == DUPLICATE and "reading 1" in (verdicts[2].detail or "")
    assert count_reasons(out) == {DUPLICATE: 1}


def test_frames_carry_the_same_problem_column() -> None:
    raw = pd.DataFrame(
        {
            "reading_id": [1, 2, 3, 4],
            "patient_id": [1, 1, 1, 1],
            "kind": ["blood_pressure", "blood_pressure", "glucose", "glucose"],
            "measured_at": [T0 + timedelta(minutes=i) for i in range(4)],
            "device_status": [["body_movement"], ["irregular_pulse"], ["strip_insertion_error"], []],
        }
    )
    df = fr.prepare_readings(raw)
    assert df[fr.PROBLEM_COLUMN].tolist() == [True, False, True, False]
    statuses = dict(zip(raw["reading_id"], raw["device_status"], strict=True))
    for rid, kind, problem in zip(df["reading_id"], df["kind"], df[fr.PROBLEM_COLUMN], strict=True):
        facts = _r(int(rid), kind=str(kind), device_status=tuple(statuses[rid]))
        assert judge(facts).valid is not bool(problem)


def test_problem_bits_are_names_the_gateway_decoders_emit() -> None:
    """A misspelt bit would never match: every name here is one the decoders put on the wire."""
    from gateway.gatt.blood_pressure import MeasurementStatus
    from gateway.gatt.glucose import SensorStatus
    from gateway.gatt.pulse_oximeter import DEVICE_AND_SENSOR_STATUS_NAMES, MEASUREMENT_STATUS_NAMES

    emitted = {
        "blood_pressure": {b.name.lower() for b in MeasurementStatus if b.name},
        "glucose": {b.name.lower() for b in SensorStatus if b.name},
        "spo2": {*MEASUREMENT_STATUS_NAMES.values(), *DEVICE_AND_SENSOR_STATUS_NAMES.values()},
    }
    for kind, names in emitted.items():
        assert PROBLEM_STATUS[kind] <= names, (kind, PROBLEM_STATUS[kind] - names)
