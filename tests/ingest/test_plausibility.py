"""Plausibility grades (DOMAIN.md C5): impossible values are quarantined with a reason, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.contract import ValidReading, decode
from ingest.plausibility import grade
from tests.ingest.helpers import EXAMPLE, GLUCOSE, dumps, reading

NOW = datetime(2025, 11, 23, 15, 0, tzinfo=UTC)


def _bp(**values: Any) -> ValidReading:
    msg = reading()
    msg["values"] = {**EXAMPLE["values"], **values}
    r = decode("rpm/v1/gw-0001/readings", dumps(msg))
    assert isinstance(r, ValidReading)
    return r


def _glucose(mg_dl: float, original: dict[str, Any] | None = None) -> ValidReading:
    msg = reading(GLUCOSE, original=original)
    msg["values"] = {**GLUCOSE["values"], "glucose_mg_dl": mg_dl}
    r = decode("rpm/v1/gw-0001/readings", dumps(msg))
    assert isinstance(r, ValidReading)
    return r


def test_documented_example_is_valid() -> None:
    assert grade(_bp(), now=NOW).quality == "valid"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"systolic_mmhg": 80.0, "diastolic_mmhg": 80.0}, "systolic 80 <= diastolic 80"),
        ({"systolic_mmhg": 70.0, "diastolic_mmhg": 90.0, "mean_arterial_mmhg": 80.0}, "<= diastolic"),
        ({"mean_arterial_mmhg": 200.0}, "mean arterial 200 outside"),
        ({"mean_arterial_mmhg": 90.0}, "mean arterial 90 outside"),
        ({"systolic_mmhg": 120.0, "diastolic_mmhg": 115.0, "mean_arterial_mmhg": None}, "pulse pressure 5"),
        ({"systolic_mmhg": 260.0, "diastolic_mmhg": 130.0, "mean_arterial_mmhg": None}, "pulse pressure 130"),
        ({"systolic_mmhg": 2047.0, "diastolic_mmhg": 1990.0, "mean_arterial_mmhg": None}, "device range"),
        ({"pulse_bpm": 2047.0}, "pulse 2047 bpm"),
        ({"pulse_bpm": 10.0}, "pulse 10 bpm"),
    ],
)
def test_implausible_blood_pressure_is_quarantined(values: dict[str, Any], reason: str) -> None:
    g = grade(_bp(**values), now=NOW)
    assert g.quality == "quarantined"
    assert g.reason is not None and reason in g.reason


@pytest.mark.parametrize(
    ("mg_dl", "original", "quality", "reason"),
    [
        (99.09, {"unit": "mol/L", "concentration": 0.0055}, "valid", None),
        (40.0, None, "valid", None),
        (600.0, None, "valid", None),
        (5.0, None, "quarantined", "glucose 5 mg/dL outside"),
        (12.0, None, "quarantined", "unit error suspected"),
        (1500.0, None, "quarantined", "glucose 1500 mg/dL outside"),
        (  # the unit exactly as the gateway writes it (the bound never ran while ingest compared "mmol/L")
            720.62,
            {"unit": "mol/L", "concentration": 0.040},
            "quarantined",
            "unit error suspected: 40.0 mmol/L",
        ),
        (14.41, {"unit": "mol/L", "concentration": 0.0008}, "valid", None),  # mass-unit floor: not molar
        (12.0, {"unit": "kg/L", "concentration": 0.00012}, "quarantined", "below 15"),
        # one case per unit as the wire writes it (the gateway sends the meter's SI mol/L)
        (99.09, {"unit": "mol/L", "concentration": 0.0055}, "valid", None),
        (720.62, {"unit": "mol/L", "concentration": 0.04}, "quarantined", "unit error suspected: 40.0"),
        (120.0, {"unit": "kg/L", "concentration": 0.0012}, "valid", None),
        (720.0, {"unit": "kg/L", "concentration": 0.0072}, "valid", None),  # mass units: no molar ceiling
    ],
)
def test_glucose_grades(
    mg_dl: float, original: dict[str, Any] | None, quality: str, reason: str | None
) -> None:
    g = grade(_glucose(mg_dl, original), now=NOW)
    assert g.quality == quality
    assert (g.reason is None) if reason is None else (g.reason is not None and reason in g.reason)


@pytest.mark.parametrize(
    ("measured_at", "quality", "reason"),
    [
        ("2025-11-23T15:09:59Z", "valid", None),
        ("2025-11-23T15:10:01Z", "quarantined", "more than 10 min in the future"),
        ("2014-12-31T23:59:59Z", "quarantined", "before 2015"),
    ],
)
def test_timestamps(measured_at: str, quality: str, reason: str | None) -> None:
    r = decode("rpm/v1/gw-0001/readings", dumps(reading(measured_at=measured_at)))
    assert isinstance(r, ValidReading)
    g = grade(r, now=NOW)
    assert g.quality == quality
    assert reason is None or (g.reason is not None and reason in g.reason)


@pytest.mark.parametrize("measurement", ["failed", "out_of_range_high", "out_of_range_low"])
def test_device_reported_failures_are_failed(measurement: str) -> None:
    msg = reading(measurement=measurement)
    msg["values"] = {"systolic_mmhg": None, "diastolic_mmhg": None}
    r = decode("rpm/v1/gw-0001/readings", dumps(msg))
    assert isinstance(r, ValidReading)
    g = grade(r, now=NOW)
    assert g.quality == "failed" and g.reason == f"device reported measurement {measurement}"
