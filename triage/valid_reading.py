"""The one definition of a *valid reading* (DOMAIN C5, D2 G5/G6, D3 ``days_with_data``).

Billing device-days, triage adherence and the patient page all ask the same question of a stored
reading: does it count? It counts when it was transmitted automatically by the device (typed-in
values are not RPM data), measures a physiologic kind, passed ingest's plausibility grade, carries
no device status bit that says the measurement itself went wrong (movement, cuff fit, position,
strip or sensor faults), came from an FDA-cleared device when that is known, and is not the same
measurement seen twice. Every "no" comes with the reason, so nothing is excluded silently.

Pure and kind-generic: a new reading kind only needs an entry in :data:`PHYSIOLOGIC_KINDS` and, if
its device reports problem bits, in :data:`PROBLEM_STATUS`. No pandas, no database here; the
vectorised rules build their mask from the same constants (:func:`problem_status_names`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

# Physiologic kinds (G6). Others (e.g. therapy adherence) belong to RTM and never count for RPM.
PHYSIOLOGIC_KINDS: Final[frozenset[str]] = frozenset(
    {"blood_pressure", "glucose", "weight", "spo2", "heart_rate", "temperature"}
)

# Device status bits that mean the measurement went wrong (C5: movement/cuff-fit errors → not
# billable days, not alertable). Bits that report a *finding* (irregular pulse, pulse out of the
# device's range) or the device's own health (battery low) leave the value valid.
PROBLEM_STATUS: Final[dict[str, frozenset[str]]] = {
    "blood_pressure": frozenset({"body_movement", "cuff_too_loose", "improper_measurement_position"}),
    "glucose": frozenset(
        {
            "sensor_malfunction",
            "sample_size_insufficient",
            "strip_insertion_error",
            "strip_type_incorrect",
            "result_higher_than_device_can_process",
            "result_lower_than_device_can_process",
            "sensor_temperature_too_high",
            "sensor_temperature_too_low",
            "read_interrupted",
            "general_device_fault",
            "time_fault",
        }
    ),
    # Weight / SpO2 names follow DOMAIN-weight-plx A9.3/A9.4 in snake case; the decoder that adds
    # these kinds owns the exact spelling and extends this table.
    "weight": frozenset({"measurement_unsuccessful"}),
    "spo2": frozenset(
        {
            "measurement_ongoing",
            "early_estimated_data",
            "data_for_demonstration",
            "data_for_testing",
            "calibration_ongoing",
            "measurement_unavailable",
            "invalid_measurement_detected",
            "questionable_measurement_detected",
            "equipment_malfunction_detected",
            "inadequate_signal_detected",
            "erratic_signal_detected",
            "nonpulsatile_signal_detected",
            "sensor_unconnected_to_user",
            "sensor_displaced",
            "sensor_malfunctioning",
            "sensor_disconnected",
        }
    ),
}

# Reason codes, in the order they are checked (the first one that applies is reported).
MANUAL: Final = "manual"
NON_PHYSIOLOGIC: Final = "non_physiologic"
FAILED: Final = "failed"
QUARANTINED: Final = "quarantined"
DEVICE_STATUS: Final = "device_status"
NOT_FDA_CLEARED: Final = "not_fda_cleared"
DUPLICATE: Final = "duplicate"
REASONS: Final = (MANUAL, NON_PHYSIOLOGIC, FAILED, QUARANTINED, DEVICE_STATUS, NOT_FDA_CLEARED, DUPLICATE)


@dataclass(frozen=True)
class ReadingFacts:
    """What the validity question needs of one stored reading (no values beyond identity)."""

    reading_id: int
    kind: str
    measured_at: datetime
    quality: str = "valid"  # ingest's grade: valid | quarantined | failed
    transmission: str = "automatic"  # automatic | manual
    device_status: tuple[str, ...] = ()
    fda_cleared: bool | None = None  # None: unknown (triage does not care; billing loads it)
    device_id: str = ""
    values: tuple[object, ...] = ()  # the measured numbers, for the duplicate test
    quality_reason: str | None = None


@dataclass(frozen=True)
class Validity:
    valid: bool
    reason: str | None = None  # one of REASONS when not valid
    detail: str | None = None  # human-readable, e.g. the status bits or ingest's quarantine reason

    def describe(self) -> str:
        if self.valid:
            return "counts"
        return f"{self.reason}: {self.detail}" if self.detail else str(self.reason)


VALID: Final = Validity(True)


def problem_status_names(kind: str | None = None) -> frozenset[str]:
    """Problem bits of one kind, or of every kind (for a vectorised mask)."""
    if kind is not None:
        return PROBLEM_STATUS.get(kind, frozenset())
    return frozenset().union(*PROBLEM_STATUS.values())


def judge(r: ReadingFacts) -> Validity:
    """Is this one reading valid on its own (duplicates need its neighbours: :func:`judge_all`)?"""
    if r.transmission != "automatic":
        return Validity(False, MANUAL, "entered by hand, not transmitted by the device (G5)")
    if r.kind not in PHYSIOLOGIC_KINDS:
        return Validity(False, NON_PHYSIOLOGIC, f"{r.kind} is not physiologic data (G6)")
    if r.quality == "failed":
        return Validity(False, FAILED, r.quality_reason or "the device reported a failed measurement")
    if r.quality == "quarantined":
        return Validity(False, QUARANTINED, r.quality_reason or "implausible value")
    if r.quality != "valid":
        return Validity(False, QUARANTINED, f"unknown quality {r.quality!r}")
    bad = sorted(set(r.device_status) & problem_status_names(r.kind))
    if bad:
        return Validity(False, DEVICE_STATUS, "device reported " + ", ".join(bad))
    if r.fda_cleared is False:
        return Validity(False, NOT_FDA_CLEARED, f"device {r.device_id} is not FDA-cleared (G4)")
    return VALID


def _identity(r: ReadingFacts) -> tuple[object, ...]:
    return (r.device_id, r.kind, r.measured_at, r.values)


def judge_all(readings: Iterable[ReadingFacts]) -> list[tuple[ReadingFacts, Validity]]:
    """Every reading with its verdict; the same measurement delivered twice (same device, kind,
    time and values) counts once: the first by reading id keeps it, the others are duplicates."""
    out: list[tuple[ReadingFacts, Validity]] = []
    seen: dict[tuple[object, ...], int] = {}
    for r in sorted(readings, key=lambda x: (x.measured_at, x.reading_id)):
        v = judge(r)
        if v.valid:
            key = _identity(r)
            if key in seen:
                v = Validity(False, DUPLICATE, f"same measurement as reading {seen[key]}")
            else:
                seen[key] = r.reading_id
        out.append((r, v))
    return out


def count_reasons(verdicts: Sequence[tuple[ReadingFacts, Validity]]) -> dict[str, int]:
    """{reason: number of readings} of the readings that did not count."""
    out: dict[str, int] = {}
    for _, v in verdicts:
        if not v.valid and v.reason is not None:
            out[v.reason] = out.get(v.reason, 0) + 1
    return out
