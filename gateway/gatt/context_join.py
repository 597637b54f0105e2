"""Join glucose measurements with "context follows" (flag b4) to their 0x2A34 by sequence number.

Sans-I/O: the caller passes ``now`` (monotonic seconds) and calls :meth:`ContextJoiner.expire`
from its own timer.  A measurement whose context does not come within ``timeout_s`` is released
without context (with a warning on the record's path, never dropped); a context whose measurement
never came is handed back as an orphan so the caller can dead-letter it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.gatt.glucose import GlucoseMeasurement
from gateway.gatt.glucose_context import GlucoseContext, GlucoseRecord, merge_glucose_context

__all__ = ["ContextJoiner", "Expired"]


@dataclass(frozen=True, slots=True)
class Expired:
    """What :meth:`ContextJoiner.expire` releases."""

    records_without_context: list[GlucoseRecord] = field(default_factory=list)
    orphan_contexts: list[GlucoseContext] = field(default_factory=list)


class ContextJoiner:
    """Pending measurements and early contexts, keyed by sequence number."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._measurements: dict[int, tuple[float, GlucoseMeasurement]] = {}
        self._contexts: dict[int, tuple[float, GlucoseContext]] = {}

    @property
    def pending(self) -> int:
        return len(self._measurements) + len(self._contexts)

    def add_measurement(self, measurement: GlucoseMeasurement, now: float) -> list[GlucoseRecord]:
        """Records ready now: the measurement itself unless it waits for its context."""
        seq = measurement.sequence_number
        ready = self._release_measurement(seq)
        early = self._contexts.pop(seq, None)
        if early is not None:
            return [*ready, merge_glucose_context(measurement, early[1])]
        if not measurement.context_follows:
            return [*ready, merge_glucose_context(measurement, None)]
        self._measurements[seq] = (now, measurement)
        return ready

    def add_context(self, context: GlucoseContext, now: float) -> list[GlucoseRecord]:
        """The joined record when its measurement is waiting; otherwise keep the context for a while."""
        pending = self._measurements.pop(context.sequence_number, None)
        if pending is None:
            self._contexts[context.sequence_number] = (now, context)
            return []
        return [merge_glucose_context(pending[1], context)]

    def expire(self, now: float) -> Expired:
        """Release everything older than the timeout."""
        deadline = now - self.timeout_s
        stale_measurements = [seq for seq, (t, _) in self._measurements.items() if t <= deadline]
        stale_contexts = [seq for seq, (t, _) in self._contexts.items() if t <= deadline]
        records = [merge_glucose_context(self._measurements.pop(seq)[1], None) for seq in stale_measurements]
        orphans = [self._contexts.pop(seq)[1] for seq in stale_contexts]
        return Expired(records, orphans)

    def flush(self) -> Expired:
        """Release everything (end of the RACP procedure or disconnect)."""
        records = [merge_glucose_context(m, None) for _, m in self._measurements.values()]
        orphans = [c for _, c in self._contexts.values()]
        self._measurements.clear()
        self._contexts.clear()
        return Expired(records, orphans)

    def _release_measurement(self, seq: int) -> list[GlucoseRecord]:
        # A repeated sequence number (re-download) releases the older copy instead of losing it.
        previous = self._measurements.pop(seq, None)
        return [] if previous is None else [merge_glucose_context(previous[1], None)]
