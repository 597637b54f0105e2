"""The facts billing is decided on, as plain dated values (no database, no clock).

:mod:`triage.billing.load` reads them from PostgreSQL; :mod:`triage.billing.engine` decides on
them; tests build them by hand. Everything that can change over time is a *history* with its
effective dates (where the patient was, the order, consent, licences, the payer, prior
authorisations), so each gate is evaluated on the date of service, never with today's value.
All dates are the patient's local calendar dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from triage.clinical import icd10
from triage.valid_reading import Validity


def _covers(start: date | None, end: date | None, on: date) -> bool:
    return (start is None or start <= on) and (end is None or on <= end)


@dataclass(frozen=True)
class Location:
    """Where the patient is located from ``effective_from`` to ``effective_to`` (inclusive)."""

    state: str
    effective_from: date | None
    effective_to: date | None = None
    source: str = "recorded"


@dataclass(frozen=True)
class Order:
    """An RPM order (G3): ordering practitioner, date, ICD-10 diagnoses, medical necessity."""

    order_id: int
    ordering_user_id: int
    order_date: date
    icd10_codes: tuple[str, ...]
    end_date: date | None = None
    medical_necessity: str = ""
    practitioner_role: str = "clinician"

    def problem_on(self, on: date) -> str | None:
        """Why this order does not support a service on ``on`` (None: it does)."""
        if not _covers(self.order_date, self.end_date, on):
            return f"order {self.order_id} covers {self.order_date}..{self.end_date or 'open'}"
        if self.practitioner_role != "clinician":
            return f"order {self.order_id} not signed by a physician/NPP"
        if not self.icd10_codes:
            return f"order {self.order_id} has no ICD-10 diagnosis"
        bad = [c for c in self.icd10_codes if not icd10.is_valid(c)]
        if bad:
            return f"order {self.order_id} has malformed ICD-10 {', '.join(bad)}"
        return None


@dataclass(frozen=True)
class Consent:
    consent_id: int
    consented_on: date
    revoked_on: date | None = None
    scope: tuple[str, ...] = ("rpm",)
    method: str = "verbal"
    version: str = ""

    def covers(self, start: date, end: date, scope: str = "rpm") -> bool:
        """On file on or before ``start`` and not revoked through ``end``, for ``scope``."""
        return (
            scope in self.scope
            and self.consented_on <= start
            and (self.revoked_on is None or self.revoked_on > end)
        )


@dataclass(frozen=True)
class Licence:
    state: str
    valid_from: date
    valid_to: date
    licence_number: str = ""

    def covers(self, state: str, on: date) -> bool:
        return self.state == state and self.valid_from <= on <= self.valid_to


@dataclass(frozen=True)
class Practitioner:
    user_id: int
    username: str
    role: str
    npi: str | None = None
    qhp: bool = False
    licences: tuple[Licence, ...] = ()

    def licensed(self, state: str, on: date) -> bool:
        return any(lic.covers(state, on) for lic in self.licences)


@dataclass(frozen=True)
class Enrolment:
    """The RPM episode membership: billing practitioner, dates, G1 visit, 99453 education."""

    enrolment_id: int
    ordering_user_id: int
    start: date
    end: date | None = None
    established: date | None = None
    education: date | None = None
    episode_id: int = 0
    payer: str = "medicare"

    def active_on(self, d: date) -> bool:
        return _covers(self.start, self.end, d)


@dataclass(frozen=True)
class PayerPeriod:
    payer: str
    effective_from: date
    effective_to: date | None = None


@dataclass(frozen=True)
class PriorAuth:
    payer: str
    valid_from: date
    valid_to: date
    reference: str = ""


@dataclass(frozen=True)
class Claim:
    """A claim billed by anyone (imported history): G7, G8 and 99453 once per episode."""

    service_from: date
    service_to: date
    program: str
    cpt: str
    billing_npi: str


@dataclass(frozen=True)
class DayReading:
    """One stored reading on the patient's local date, with the shared validity verdict."""

    reading_id: int
    local_date: date
    validity: Validity


@dataclass(frozen=True)
class TimeLog:
    """Minutes spent on a flag, on the local date they were spent."""

    time_log_id: int
    flag_id: int
    user_id: int
    minutes: int
    local_date: date
    role: str = "nurse"
    username: str = ""
    qhp: bool = False
    promoted: bool = True  # the flag has a billable event (a clinician promoted it)
    counted_elsewhere: str | None = None  # CCM/PCM/TCM/BHI/EM: already counted there (G9)

    @property
    def counts(self) -> bool:
        return self.promoted and self.counted_elsewhere is None

    @property
    def why_not(self) -> str | None:
        if not self.promoted:
            return "flag not promoted"
        if self.counted_elsewhere is not None:
            return f"counted for {self.counted_elsewhere}"
        return None


@dataclass(frozen=True)
class Communication:
    communication_id: int
    local_date: date
    mode: str
    realtime: bool
    two_way: bool
    flag_id: int | None = None
    promoted: bool = True

    @property
    def interactive(self) -> bool:
        """G12 + D0: real-time, two-way, and recorded on a promoted event."""
        return self.realtime and self.two_way and self.promoted


@dataclass(frozen=True)
class PatientFacts:
    """Everything the engine needs about one patient, all histories included."""

    patient_id: int
    mrn: str
    timezone: str
    state: str  # the current state: used for dates no location row covers
    enrolments: tuple[Enrolment, ...] = ()
    orders: tuple[Order, ...] = ()
    consents: tuple[Consent, ...] = ()
    locations: tuple[Location, ...] = ()
    payers: tuple[PayerPeriod, ...] = ()
    prior_auths: tuple[PriorAuth, ...] = ()
    claims: tuple[Claim, ...] = ()
    readings: tuple[DayReading, ...] = ()
    time_logs: tuple[TimeLog, ...] = ()
    communications: tuple[Communication, ...] = ()
    practitioners: Mapping[int, Practitioner] = field(default_factory=dict)

    def state_on(self, on: date) -> str:
        """The state the patient was located in on ``on`` (latest-starting covering row wins)."""
        covering = [loc for loc in self.locations if _covers(loc.effective_from, loc.effective_to, on)]
        if not covering:
            return self.state
        return max(covering, key=lambda loc: loc.effective_from or date.min).state

    def states_between(self, start: date, end: date) -> list[str]:
        """Every state the patient was in during ``start..end``, in order of first appearance."""
        out: list[str] = []
        for loc in sorted(self.locations, key=lambda x: x.effective_from or date.min):
            overlaps = (loc.effective_from is None or loc.effective_from <= end) and (
                loc.effective_to is None or loc.effective_to >= start
            )
            if overlaps and loc.state not in out:
                out.append(loc.state)
        return out or [self.state]

    def payer_on(self, on: date, fallback: str = "medicare") -> str:
        covering = [p for p in self.payers if _covers(p.effective_from, p.effective_to, on)]
        if not covering:
            return fallback
        return max(covering, key=lambda p: p.effective_from).payer

    def order_problem(self, on: date) -> tuple[Order | None, str | None]:
        """The order supporting a service on ``on``, or the reason none does."""
        if not self.orders:
            return None, "no order on file"
        problems = []
        for o in sorted(self.orders, key=lambda x: (x.order_date, x.order_id), reverse=True):
            why = o.problem_on(on)
            if why is None:
                return o, None
            problems.append(why)
        return None, "; ".join(problems)

    def valid_days(self, start: date, end: date) -> tuple[dict[str, list[int]], dict[str, int]]:
        """{ISO date: qualifying reading ids} and {reason: count} of readings in ``start..end``."""
        days: dict[str, list[int]] = {}
        excluded: dict[str, int] = {}
        for r in self.readings:
            if not start <= r.local_date <= end:
                continue
            if r.validity.valid:
                days.setdefault(r.local_date.isoformat(), []).append(r.reading_id)
            else:
                key = r.validity.reason or "invalid"
                excluded[key] = excluded.get(key, 0) + 1
        return days, excluded

    def first_valid_day(self, start: date, end: date | None) -> date | None:
        dates = [
            r.local_date
            for r in self.readings
            if r.validity.valid and r.local_date >= start and (end is None or r.local_date <= end)
        ]
        return min(dates) if dates else None
