"""What a chaos run measured, its verdict, and the table it prints.

Counts are kept per reading kind as well as in total, so a kind that only some patients have
(scales, oximeters, the gateway's per-minute oximetry summaries) cannot hide inside the total.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from simulators.chaos_schedule import FAULT_KINDS

# Report order of the accounting kinds; ``spo2/minute`` is a continuous-oximetry window summary.
KIND_ORDER = ("blood_pressure", "glucose", "weight", "spo2", "spo2/minute")


@dataclass
class KindCount:
    """Produced / stored / duplicated / lost for one accounting kind."""

    produced: int = 0
    stored: int = 0
    duplicated: int = 0
    lost: int = 0


@dataclass
class ChaosReport:
    """What the run measured; ``ok`` is the verdict, ``table()`` the printout."""

    gateways: int = 0
    patients: int = 0
    produced: int = 0
    stored: int = 0
    duplicated: int = 0
    lost: int = 0
    unexpected: int = 0
    by_kind: dict[str, KindCount] = field(default_factory=dict)
    left_in_outboxes: int = 0
    dead_letters: int = 0
    crisis_readings: int = 0
    crisis_flagged: int = 0
    crisis_collapsed: int = 0  # an identical repeat < 30 s after the previous reading: triage collapses
    crisis_missing: list[int] = field(default_factory=list)
    vitals_events: dict[str, list[int]] = field(default_factory=dict)  # rule: [events, flagged]
    vitals_missing: list[str] = field(default_factory=list)  # "rule:reading_id" without its flag
    duplicate_flags: int = 0
    flags: int = 0
    audit_rows: int = 0
    audit_committed: int = 0
    audit_ok: bool = False
    audit_problems: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    unplanned_exits: Counter[str] = field(default_factory=Counter)
    fault_seconds: float = 0.0
    settle_seconds: float = 0.0
    settled: bool = False
    lost_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.settled and self.lost == 0 and self.duplicated == 0 and self.unexpected == 0
                and not self.crisis_missing and not self.vitals_missing and self.duplicate_flags == 0
                and self.audit_ok
                and self.produced > 0)

    def kind(self, name: str) -> KindCount:
        """The counts of one kind (zeros when the run had none)."""
        return self.by_kind.setdefault(name, KindCount())

    def _kind_rows(self) -> list[tuple[str, object]]:
        names = [k for k in KIND_ORDER if k in self.by_kind] + sorted(set(self.by_kind) - set(KIND_ORDER))
        return [(f"  {k}: produced / stored / duplicated / lost",
                 f"{c.produced} / {c.stored} / {c.duplicated} / {c.lost}")
                for k in names for c in [self.by_kind[k]]]

    def table(self) -> str:
        rows: list[tuple[str, object]] = [
            ("gateways / patients", f"{self.gateways} / {self.patients}"),
            ("measurements produced (committed to gateway outboxes)", self.produced),
            ("measurements stored (distinct message_id)", self.stored),
            ("duplicated (rows beyond one per message_id)", self.duplicated),
            ("lost (produced, not stored)", self.lost),
            ("unexpected (stored, never produced)", self.unexpected),
            *self._kind_rows(),
            ("left in gateway outboxes", self.left_in_outboxes),
            ("dead letters", self.dead_letters),
            ("crisis readings / flagged / identical repeats < 30 s",
             f"{self.crisis_readings} / {self.crisis_flagged} / {self.crisis_collapsed}"),
            ("crisis readings without a flag", len(self.crisis_missing)),
            *[(f"  {rule} events / flagged", f"{n} / {f}")
              for rule, (n, f) in sorted(self.vitals_events.items())],
            ("weight and SpO2 events without their flag", len(self.vitals_missing)),
            ("flags / duplicated flags", f"{self.flags} / {self.duplicate_flags}"),
            ("audit rows / committed by writers / chain verifies",
             f"{self.audit_rows} / {self.audit_committed} / {'yes' if self.audit_ok else 'NO'}"),
        ]
        rows += [(f"fault: {k}", self.faults[k]) for k in FAULT_KINDS]
        rows += [("faults injected, total", sum(self.faults[k] for k in FAULT_KINDS))]
        rows += [(f"unplanned exit: {k}", v) for k, v in sorted(self.unplanned_exits.items())]
        rows += [
            ("fault phase (s)", f"{self.fault_seconds:.1f}"),
            ("time to settle (s)", f"{self.settle_seconds:.1f}" + ("" if self.settled else " (NOT settled)")),
            ("verdict", "PASS" if self.ok else "FAIL"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
