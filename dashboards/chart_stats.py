"""What a reader takes from a chart before the line: averages, glucose time in range, GMI, targets.

Pure. The patient page reads counts and means with SQL (every valid reading of the period, not a
sampled list) and hands them here; this module decides the bands, the GMI and the wording.

* Time in range follows the International Consensus on Time in Range (Battelino et al., Diabetes
  Care 2019; DOMAIN C2): very low < 54, low 54-69, in range 70-180, high 181-250, very high > 250
  mg/dL, with the consensus goals (TIR > 70 %, TBR < 4 % / < 1 %, TAR < 25 % / < 5 %).
* GMI % = 3.31 + 0.02392 × mean glucose (mg/dL) (Bergenstal et al., Diabetes Care 2018). It was
  derived from 14+ days of CGM, so with meter readings or a short period it is labelled as such.
* Chart targets are the patient's effective thresholds: a clinician's override, clamped to the
  safety floor exactly as triage applies it (:meth:`triage.thresholds.Threshold.clamp`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triage import thresholds as th

# The consensus band edges in mg/dL (lower edge of each band but the first).
VERY_LOW_BELOW = 54.0
LOW_BELOW = 70.0
HIGH_ABOVE = 180.0
VERY_HIGH_ABOVE = 250.0
GMI_MIN_DAYS = 14  # GMI was validated on at least 14 days of CGM data


@dataclass(frozen=True)
class Band:
    key: str
    label: str
    count: int
    share: float  # 0..1
    goal: str
    met: bool
    color: str  # text-safe on white (>= 4.5:1)


@dataclass(frozen=True)
class TimeInRange:
    readings: int
    bands: tuple[Band, ...]
    mean_mg_dl: float
    gmi_pct: float
    gmi_reliable: bool  # enough days for the GMI to mean what it says

    @property
    def in_range(self) -> Band:
        return next(b for b in self.bands if b.key == "in_range")


def gmi_percent(mean_mg_dl: float) -> float:
    """Glucose management indicator (%) from the mean glucose in mg/dL."""
    return 3.31 + 0.02392 * mean_mg_dl


def time_in_range(
    *, very_low: int, low: int, in_range: int, high: int, very_high: int, mean_mg_dl: float, days: int
) -> TimeInRange | None:
    """The five consensus bands from counts of valid readings; None when there are none."""
    total = very_low + low + in_range + high + very_high
    if total == 0:
        return None

    def share(n: int) -> float:
        return n / total

    bands = (
        Band(
            "very_high",
            "Very high (> 250)",
            very_high,
            share(very_high),
            "< 5 %",
            share(very_high) < 0.05,
            "#9a3412",
        ),
        Band(
            "high",
            "High (181-250)",
            high,
            share(high),
            "< 25 % with very high",
            share(high + very_high) < 0.25,
            "#92400e",
        ),
        Band(
            "in_range",
            "In range (70-180)",
            in_range,
            share(in_range),
            "> 70 %",
            share(in_range) > 0.70,
            "#047857",
        ),
        Band(
            "low",
            "Low (54-69)",
            low,
            share(low),
            "< 4 % with very low",
            share(low + very_low) < 0.04,
            "#b91c1c",
        ),
        Band(
            "very_low",
            "Very low (< 54)",
            very_low,
            share(very_low),
            "< 1 %",
            share(very_low) < 0.01,
            "#7f1d1d",
        ),
    )
    return TimeInRange(total, bands, mean_mg_dl, gmi_percent(mean_mg_dl), days >= GMI_MIN_DAYS)


@dataclass(frozen=True)
class Target:
    """One threshold line as it applies to this patient."""

    key: str
    value: float
    default: float
    overridden: bool

    @property
    def note(self) -> str:
        return f"patient target (default {self.default:g})" if self.overridden else "default"


def targets(keys: Sequence[str], overrides: Mapping[str, float]) -> dict[str, Target]:
    """Effective thresholds for ``keys``: the override (clamped to the safety floor) or the default."""
    out: dict[str, Target] = {}
    for key in keys:
        t = th.ALL[key]
        given = overrides.get(key)
        value = float(t.value) if given is None else float(t.clamp(given))
        out[key] = Target(key, value, float(t.value), value != float(t.value))
    return out
