"""Hand-built reading frames for rule tests (values stay literals in the tests themselves)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from triage.frames import prepare_readings

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


class Readings:
    """Accumulates readings; ``frame()`` gives the prepared frame the rules read."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def _add(self, **kw: Any) -> int:
        rid = len(self.rows) + 1
        row: dict[str, Any] = {
            "reading_id": rid,
            "patient_id": 1,
            "device_id": "dev-1",
            "gateway_id": "gw-1",
            "kind": "blood_pressure",
            "measured_at": NOW,
            "quality": "valid",
            "measurement": "ok",
            "transmission": "automatic",
            "systolic_mmhg": None,
            "diastolic_mmhg": None,
            "pulse_bpm": None,
            "glucose_mg_dl": None,
            "clock_offset_s": 0.0,
            "device_status": [],
        }
        row.update(kw)
        self.rows.append(row)
        return rid

    def bp(
        self,
        sbp: float | None,
        dbp: float | None,
        *,
        ago: timedelta = timedelta(0),
        pulse: float = 70,
        **kw: Any,
    ) -> int:
        return self._add(
            kind="blood_pressure",
            systolic_mmhg=sbp,
            diastolic_mmhg=dbp,
            pulse_bpm=pulse,
            measured_at=kw.pop("at", NOW - ago),
            **kw,
        )

    def glucose(self, mg_dl: float | None, *, ago: timedelta = timedelta(0), **kw: Any) -> int:
        return self._add(
            kind="glucose",
            glucose_mg_dl=mg_dl,
            device_id=kw.pop("device_id", "gl-1"),
            measured_at=kw.pop("at", NOW - ago),
            **kw,
        )

    def weight(self, kg: float | None, *, ago: timedelta = timedelta(0), **kw: Any) -> int:
        return self._add(
            kind="weight",
            weight_kg=kg,
            device_id=kw.pop("device_id", "sc-1"),
            measured_at=kw.pop("at", NOW - ago),
            **kw,
        )

    def spo2(
        self,
        pct: float | None,
        *,
        ago: timedelta = timedelta(0),
        pulse: float = 72,
        minimum: float | None = None,
        **kw: Any,
    ) -> int:
        return self._add(
            kind="spo2",
            spo2_pct=pct,
            spo2_min_pct=minimum,
            pulse_bpm=pulse,
            device_id=kw.pop("device_id", "ox-1"),
            measured_at=kw.pop("at", NOW - ago),
            **kw,
        )

    def frame(self) -> pd.DataFrame:
        return prepare_readings(pd.DataFrame(self.rows))


def rules_of(cands: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(cands["rule_id"], cands["severity"], strict=True))
