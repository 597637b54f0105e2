"""The population's vocabulary: patient profiles, ground-truth events and local wall-clock time.

Shared by the generator (population.py), the readings it produces (population_readings.py), the demo
history and the cohorts, so none of them imports another's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)
STATES = {
    "America/New_York": "NY",
    "America/Chicago": "IL",
    "America/Denver": "CO",
    "America/Phoenix": "AZ",
    "America/Los_Angeles": "CA",
    "America/Anchorage": "AK",
    "Pacific/Honolulu": "HI",
}
CONDITIONS = (("hypertension", 0.5), ("diabetes_t2", 0.2), ("diabetes_t1", 0.1), ("both", 0.2))
# Gradual BP rise: linear over RISE_DAYS to +RISE_SBP / +RISE_SBP/2.5 mmHg, then a plateau.
RISE_DAYS = 21
RISE_SBP = 24.0


@dataclass(frozen=True)
class InjectedEvent:
    """Ground truth: what happened, to whom, when, and which rules should catch it."""

    patient_id: int
    event: str
    start: datetime
    end: datetime
    critical: bool
    expected_rules: tuple[str, ...]


@dataclass
class Profile:
    patient_id: int
    condition: str
    timezone: str
    sbp: float
    dbp: float
    pulse: float
    glucose: float
    glucose_sd: float
    adherence: float
    bp_device: str | None
    glucose_device: str | None
    gateway_id: str
    dropout_day: int | None = None
    rise_start: int | None = None
    away: set[int] = field(default_factory=set)

    @property
    def has_bp(self) -> bool:
        return self.condition in ("hypertension", "both")

    @property
    def diabetic(self) -> str | None:
        if self.condition in ("diabetes_t1", "diabetes_t2"):
            return self.condition[-2:]
        return "t2" if self.condition == "both" else None


def at_local(prof: Profile, day0: datetime, day: int, hour: float) -> datetime:
    """UTC instant of a patient-local wall-clock time on simulation day ``day``."""
    local_day = (day0 + timedelta(days=day)).date()
    h = int(hour)
    m = int((hour - h) * 60)
    local = datetime(local_day.year, local_day.month, local_day.day, h, m, tzinfo=ZoneInfo(prof.timezone))
    return local.astimezone(UTC)
