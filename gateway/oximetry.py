"""Continuous oximetry (0x2A5F) summarised on the gateway: one reading per window, not per sample.

A continuous oximeter notifies about once a second, so a night is tens of thousands of frames.
The gateway publishes, per window of ``window_s`` seconds of receive time (60 by default), the
median and the minimum SpO2 and the median pulse of the samples that are readings, with the
sample count; the minimum keeps a desaturation visible that a median would hide.  A sample is
left out (counted in ``excluded``) when SpO2 or pulse is not a number, or its status says it is
not a reading or not patient data (measurement unavailable, invalid, ongoing, early estimate,
calibration, demonstration, testing, questionable).  A window with no usable sample publishes
nothing.  Pure: receive times are passed in; nothing here reads a clock.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.gatt.outcome import MeasurementOutcome
from gateway.gatt.pulse_oximeter import NOT_A_READING, NOT_PATIENT_DATA, PlxContinuousMeasurement

__all__ = ["ContinuousSummariser", "OximetrySummary", "usable"]

_EXCLUDING = NOT_A_READING | NOT_PATIENT_DATA | {"questionable_measurement_detected"}


def usable(m: PlxContinuousMeasurement) -> bool:
    """Whether a continuous sample counts in a summary (numbers, and a status that allows it)."""
    if m.outcome is not MeasurementOutcome.OK:
        return False
    return not _EXCLUDING.intersection(m.measurement_status or ())


@dataclass(frozen=True, slots=True)
class OximetrySummary:
    """One window of continuous oximetry; ``raw_hex`` is the sample with the lowest SpO2."""

    window_start: datetime  # aware UTC
    window_s: int
    spo2_median: float
    spo2_min: float
    pulse_median: float
    samples: int
    excluded: int
    first_received_at: datetime
    raw_hex: str
    device_status: tuple[str, ...]


@dataclass
class _Window:
    start: datetime
    first_received_at: datetime
    spo2: list[float] = field(default_factory=list)
    pulse: list[float] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    excluded: int = 0
    device_status: set[str] = field(default_factory=set)


class ContinuousSummariser:
    """Feed samples in arrival order; closed windows come back from :meth:`add` and :meth:`flush`."""

    def __init__(self, window_s: int = 60) -> None:
        if window_s < 1:
            raise ValueError(f"window_s must be at least 1, got {window_s}")
        self.window_s = window_s
        self._current: _Window | None = None
        self.empty_windows = 0  # windows that had only excluded samples (logged by the caller)

    def _start_of(self, received_at: datetime) -> datetime:
        seconds = int(received_at.astimezone(UTC).timestamp())
        return datetime.fromtimestamp(seconds - seconds % self.window_s, UTC)

    def add(self, m: PlxContinuousMeasurement, received_at: datetime) -> list[OximetrySummary]:
        """Add one sample received at ``received_at`` (aware); returns the window it closed, if any."""
        start = self._start_of(received_at)
        closed: list[OximetrySummary] = []
        if self._current is not None and start >= self._current.start + timedelta(seconds=self.window_s):
            closed = self.flush()
        if self._current is None:
            self._current = _Window(start, received_at)
        window = self._current
        if usable(m):
            assert m.spo2.value is not None and m.pulse_rate.value is not None
            window.spo2.append(m.spo2.value)
            window.pulse.append(m.pulse_rate.value)
            window.raws.append(m.raw_hex)
            window.device_status.update(m.device_and_sensor_status or ())
        else:
            window.excluded += 1
        return closed

    def flush(self) -> list[OximetrySummary]:
        """Close the open window (end of session); returns its summary when it had usable samples."""
        window, self._current = self._current, None
        if window is None:
            return []
        if not window.spo2:
            self.empty_windows += 1
            return []
        lowest = min(range(len(window.spo2)), key=window.spo2.__getitem__)
        return [
            OximetrySummary(
                window_start=window.start,
                window_s=self.window_s,
                spo2_median=float(statistics.median(window.spo2)),
                spo2_min=window.spo2[lowest],
                pulse_median=float(statistics.median(window.pulse)),
                samples=len(window.spo2),
                excluded=window.excluded,
                first_received_at=window.first_received_at,
                raw_hex=window.raws[lowest],
                device_status=tuple(sorted(window.device_status)),
            )
        ]
