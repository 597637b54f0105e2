"""Payer profiles (DOMAIN H3): the effective-dated thresholds the rule table decides with.

A :class:`Policy` is one payer's set of values from ``billing_policy`` in force over a date range;
Medicare FFS CY2025 and CY2026 are stated here as the base profiles, and :func:`select_policy`
picks the version in force on a date of service. Pure: parsing and choosing only, no I/O; the
rows are read in :mod:`triage.billing.billing_store` and written by
:func:`triage.billing.records.define_payer_profile`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date

from triage.errors import TerminalTriageError


class InvalidPolicy(TerminalTriageError):
    """A billing_policy set is incomplete or malformed, or none is in force on a date."""

    def __init__(self, payer: str, detail: str) -> None:
        super().__init__(f"billing policy for {payer!r}: {detail}")
        self.payer = payer
        self.detail = detail


@dataclass(frozen=True)
class Policy:
    """Thresholds in force for one payer from ``effective_from`` (inclusive) to ``effective_to``."""

    payer: str
    effective_from: date
    effective_to: date | None
    setup_min_days: int
    max_99458_units: int
    device_period_days: int
    device_low_min_days: int
    device_high_min_days: int
    min_99470: int
    min_99457: int
    step_99458: int
    min_99091: int
    default_pos: str
    has_99445: bool
    has_99470: bool
    requires_prior_auth: bool = False  # a payer gate (e.g. Maryland Medicaid, DOMAIN D4)
    waived_gates: frozenset[str] = frozenset()  # D2 gates this payer does not impose
    label: str = ""
    missing: bool = False  # a stand-in: no profile of this payer is in force (every code withheld)

    @property
    def version(self) -> str:
        """The profile that decided: payer and the date its rules took effect."""
        return f"{self.payer}@{self.effective_from.isoformat()}"

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)

    @classmethod
    def from_values(
        cls, payer: str, effective_from: date, effective_to: date | None, values: Mapping[str, str]
    ) -> Policy:
        def num(key: str) -> int:
            try:
                return int(values[key])
            except KeyError:
                raise InvalidPolicy(payer, f"{key} missing (effective {effective_from})") from None
            except ValueError:
                raise InvalidPolicy(payer, f"{key}={values[key]!r} is not an integer") from None

        def flag(key: str, default: str = "true") -> bool:
            v = values.get(key, default).strip().lower()
            if v not in ("true", "false"):
                raise InvalidPolicy(payer, f"{key}={v!r} is not true/false")
            return v == "true"

        return cls(
            payer=payer,
            effective_from=effective_from,
            effective_to=effective_to,
            setup_min_days=num("SETUP_MIN_DAYS"),
            max_99458_units=num("MAX_99458_UNITS"),
            device_period_days=num("DEVICE_PERIOD_DAYS"),
            device_low_min_days=num("DEVICE_LOW_MIN_DAYS"),
            device_high_min_days=num("DEVICE_HIGH_MIN_DAYS"),
            min_99470=num("MIN_99470"),
            min_99457=num("MIN_99457"),
            step_99458=num("STEP_99458"),
            min_99091=num("MIN_99091"),
            default_pos=values.get("DEFAULT_POS", "11"),
            has_99445=flag("HAS_99445"),
            has_99470=flag("HAS_99470"),
            requires_prior_auth=flag("REQUIRES_PRIOR_AUTH", "false"),
            waived_gates=_gate_list(payer, values.get("WAIVED_GATES", "")),
            label=values.get("LABEL", ""),
        )


WAIVABLE_GATES = ("G1", "G2", "G3", "G7", "G14")


def _gate_list(payer: str, text: str) -> frozenset[str]:
    gates = frozenset(g.strip().upper() for g in text.split(",") if g.strip())
    unknown = sorted(gates - set(WAIVABLE_GATES))
    if unknown:
        raise InvalidPolicy(payer, f"WAIVED_GATES names {', '.join(unknown)}; waivable: {WAIVABLE_GATES}")
    return gates


MEDICARE_CY2026 = Policy(
    payer="medicare",
    effective_from=date(2026, 1, 1),
    effective_to=None,
    setup_min_days=2,
    max_99458_units=2,
    device_period_days=30,
    device_low_min_days=2,
    device_high_min_days=16,
    min_99470=10,
    min_99457=20,
    step_99458=20,
    min_99091=30,
    default_pos="11",
    has_99445=True,
    has_99470=True,
    label="Medicare FFS CY2026",
)
MEDICARE_CY2025 = replace(
    MEDICARE_CY2026,
    effective_from=date(2025, 1, 1),
    effective_to=date(2025, 12, 31),
    setup_min_days=16,
    device_low_min_days=16,
    min_99470=20,
    has_99445=False,
    has_99470=False,
    label="Medicare FFS CY2025",
)


def select_policy(policies: Iterable[Policy], payer: str, on: date) -> Policy:
    """The version in force for ``payer`` on the date of service (latest start wins)."""
    matching = [p for p in policies if p.payer == payer and p.in_force(on)]
    if not matching:
        raise InvalidPolicy(payer, f"no policy in force on {on.isoformat()}")
    return max(matching, key=lambda p: p.effective_from)
