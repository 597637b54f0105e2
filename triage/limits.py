"""Effective thresholds per patient: defaults, clinician overrides, and the safety floor on top.

Pure: the overrides come in as a frame (``patient_id, threshold_key, value_canonical``) loaded by
``triage.overrides.load_overrides``. Rules ask ``limits.at(key, patient_ids)`` and get either the
scalar default (no override anywhere: the fast path) or one value per row, clamped to the floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from triage import thresholds as th

# Dry weight rows (patient_dry_weights, loaded beside the overrides): not a threshold, a baseline.
DRY_WEIGHT_KEY = "dry_weight"


@dataclass(frozen=True)
class Limits:
    overrides: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {
                "patient_id": pd.Series(dtype="int64"),
                "threshold_key": pd.Series(dtype=object),
                "value_canonical": pd.Series(dtype="float64"),
            }
        )
    )

    @property
    def empty(self) -> bool:
        return len(self.overrides) == 0

    def patients(self) -> set[int]:
        return {int(p) for p in self.overrides["patient_id"].unique()}

    def at(self, key: str, patient_ids: pd.Series) -> pd.Series | float:
        """Threshold ``key`` for each row's patient (floor applied), or the default scalar."""
        t = th.ALL[key]
        rows = self.overrides[self.overrides["threshold_key"] == key]
        if rows.empty:
            return float(t.value)
        per_patient = (
            rows.drop_duplicates("patient_id", keep="last")
            .set_index("patient_id")["value_canonical"]
            .map(t.clamp)
        )
        return patient_ids.map(per_patient).fillna(float(t.value)).astype("float64")

    def dry_weight(self, patient_ids: pd.Series) -> pd.Series:
        """Each row's patient's dry weight in kg (set by the care team), NaN where none is set."""
        rows = self.overrides[self.overrides["threshold_key"] == DRY_WEIGHT_KEY]
        per_patient = rows.drop_duplicates("patient_id", keep="last").set_index("patient_id")[
            "value_canonical"
        ]
        return patient_ids.map(per_patient).astype("float64")

    def for_patients(self, patient_ids: set[int]) -> Limits:
        return Limits(self.overrides[self.overrides["patient_id"].isin(patient_ids)])


DEFAULTS = Limits()
