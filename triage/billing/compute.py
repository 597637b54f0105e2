"""SQL → billing facts → :mod:`triage.billing.rules` decisions, per patient and calendar month.

Facts, all in the patient's IANA zone (a reading at 23:30 local counts for that local date):

* device periods: rolling 30-day windows from the first monitoring day of the episode; the periods
  *ending* in the month are billed with it. ``days_with_data`` counts distinct local dates with a
  valid, automatically transmitted reading from an FDA-cleared device assigned to the patient
  (duplicates collapse into their date; failed, quarantined, manual and non-FDA readings are
  excluded and counted in the evidence). Several devices still give one device code.
* management minutes: ``time_logs`` in the calendar month on clinician-**promoted** flags only
  (DOMAIN D0), minus minutes already counted for CCM/PCM/TCM/BHI/E/M.
* interactive: a real-time two-way phone/video/live-chat communication on a promoted flag in the month.

Every code considered comes back emitted or withheld with its reason and evidence.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import psycopg

from triage.billing.rules import (
    Decision,
    GateFacts,
    Policy,
    evaluate_device_period,
    evaluate_month,
    management_codes,
    select_policy,
)
from triage.clinical import icd10

INTERACTIVE_MODES = ("video", "phone", "portal_live_chat")


@dataclass(frozen=True)
class DevicePeriod:
    episode_id: int
    index: int  # 0: first period of the episode
    start: date
    end: date
    days_with_data: int
    readings_by_date: dict[str, list[int]]  # ISO local date -> reading ids that qualified it
    excluded: dict[str, int]  # why other readings did not count
    qhp_minutes: int
    decisions: tuple[Decision, ...]


@dataclass(frozen=True)
class PatientMonth:
    patient_id: int
    mrn: str
    year: int
    month: int
    timezone: str
    state: str
    payer: str
    policy_version: str
    billing_user_id: int | None
    billing_npi: str | None
    place_of_service: str
    icd10_codes: tuple[str, ...]
    mgmt_minutes: int
    interactive: bool
    time_logs: tuple[dict[str, Any], ...]
    communication_ids: tuple[int, ...]
    device_periods: tuple[DevicePeriod, ...]
    decisions: tuple[Decision, ...] = field(default_factory=tuple)

    @property
    def emitted(self) -> list[Decision]:
        return [d for d in self.decisions if d.emitted]

    @property
    def withheld(self) -> list[Decision]:
        return [d for d in self.decisions if not d.emitted]


@dataclass(frozen=True)
class _Patient:
    patient_id: int
    mrn: str
    state: str
    tz: str


@dataclass(frozen=True)
class _Enrolment:
    ordering_user_id: int
    order_icd10: tuple[str, ...]
    start: date
    end: date | None
    established: date | None
    education: date | None
    episode_id: int
    payer: str

    def active_on(self, d: date) -> bool:
        return self.start <= d and (self.end is None or self.end >= d)


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def load_policies(conn: psycopg.Connection[Any]) -> list[Policy]:
    rows = conn.execute(
        "SELECT payer, effective_from, effective_to, key, value FROM billing_policy"
    ).fetchall()
    groups: dict[tuple[str, date, date | None], dict[str, str]] = defaultdict(dict)
    for payer, start, end, key, value in rows:
        groups[(payer, start, end)][key] = value
    return [Policy.from_values(p, s, e, vals) for (p, s, e), vals in groups.items()]


class _Facts:
    """The SQL side for one patient: each method is one query, in the patient's local dates."""

    def __init__(self, conn: psycopg.Connection[Any], patient: _Patient) -> None:
        self.conn = conn
        self.p = patient
        tz = patient.tz
        self.enrolments = [
            _Enrolment(r[0], tuple(r[1]), r[2], r[3], r[4], r[5], int(r[6]), r[7])
            for r in conn.execute(
                "SELECT ordering_user_id, order_icd10, start_date, end_date, established_visit_date,"
                " education_documented_on, episode_id, payer FROM enrolments WHERE patient_id = %s"
                " ORDER BY start_date, enrolment_id",
                (patient.patient_id,),
            )
        ]
        self.consents = conn.execute(
            "SELECT (consented_at AT TIME ZONE %s)::date, (revoked_at AT TIME ZONE %s)::date FROM consents"
            " WHERE patient_id = %s",
            (tz, tz, patient.patient_id),
        ).fetchall()
        self.claims = conn.execute(
            "SELECT service_from, service_to, program, cpt, billing_npi FROM billing_claims_history"
            " WHERE patient_id = %s",
            (patient.patient_id,),
        ).fetchall()

    def _range(self, start: date, end: date) -> dict[str, Any]:
        return {"pid": self.p.patient_id, "tz": self.p.tz, "start": start, "end": end + timedelta(days=1)}

    def first_monitoring_day(self, start: date, end: date | None) -> date | None:
        row = self.conn.execute(
            "SELECT min((r.measured_at AT TIME ZONE %(tz)s)::date) FROM readings r"
            " JOIN devices d ON d.device_id = r.device_id"
            " WHERE r.patient_id = %(pid)s AND r.quality = 'valid' AND r.transmission = 'automatic'"
            " AND d.fda_cleared AND r.measured_at >= (%(start)s::timestamp AT TIME ZONE %(tz)s)"
            " AND (%(end)s::date IS NULL OR r.measured_at < (%(end)s::timestamp AT TIME ZONE %(tz)s))",
            {
                "pid": self.p.patient_id,
                "tz": self.p.tz,
                "start": start,
                "end": None if end is None else end + timedelta(days=1),
            },
        ).fetchone()
        return None if row is None else row[0]

    def readings(self, start: date, end: date) -> tuple[dict[str, list[int]], dict[str, int]]:
        """Qualifying reading ids per local date, and counts of readings that did not qualify."""
        days: dict[str, list[int]] = defaultdict(list)
        excluded: dict[str, int] = defaultdict(int)
        for rid, d, quality, transmission, fda in self.conn.execute(
            "SELECT r.reading_id, (r.measured_at AT TIME ZONE %(tz)s)::date, r.quality, r.transmission,"
            " coalesce(dv.fda_cleared, false)"
            " FROM readings r LEFT JOIN devices dv ON dv.device_id = r.device_id"
            " WHERE r.patient_id = %(pid)s AND r.measured_at >= (%(start)s::timestamp AT TIME ZONE %(tz)s)"
            " AND r.measured_at < (%(end)s::timestamp AT TIME ZONE %(tz)s)"
            " ORDER BY r.measured_at, r.reading_id",
            self._range(start, end),
        ):
            if transmission != "automatic":
                excluded["manual"] += 1
            elif quality != "valid":
                excluded[quality] += 1
            elif not fda:
                excluded["not_fda_cleared"] += 1
            else:
                days[d.isoformat()].append(int(rid))
        return dict(days), dict(excluded)

    def time_logs(self, start: date, end: date) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT t.time_log_id, t.flag_id, u.username, t.role, u.is_physician_or_qhp, t.minutes,"
            " (t.logged_at AT TIME ZONE %(tz)s)::date, b.billable_event_id, t.counted_elsewhere, u.npi"
            " FROM time_logs t JOIN flags f ON f.flag_id = t.flag_id JOIN users u ON u.user_id = t.user_id"
            " LEFT JOIN billable_events b ON b.flag_id = t.flag_id"
            " WHERE f.patient_id = %(pid)s AND t.logged_at >= (%(start)s::timestamp AT TIME ZONE %(tz)s)"
            " AND t.logged_at < (%(end)s::timestamp AT TIME ZONE %(tz)s) ORDER BY t.logged_at, t.time_log_id",
            self._range(start, end),
        ).fetchall()
        return [
            {
                "time_log_id": int(r[0]),
                "flag_id": int(r[1]),
                "user": r[2],
                "role": r[3],
                "qhp": bool(r[4]),
                "minutes": int(r[5]),
                "date": r[6].isoformat(),
                "billable_event_id": None if r[7] is None else int(r[7]),
                "counted_elsewhere": r[8],
                "npi": r[9],
            }
            for r in rows
        ]

    def interactive_ids(self, start: date, end: date) -> list[int]:
        rows = self.conn.execute(
            "SELECT c.communication_id FROM communications c JOIN billable_events b ON b.flag_id = c.flag_id"
            " WHERE c.patient_id = %(pid)s AND c.two_way_realtime AND c.mode = ANY(%(modes)s)"
            " AND c.at >= (%(start)s::timestamp AT TIME ZONE %(tz)s)"
            " AND c.at < (%(end)s::timestamp AT TIME ZONE %(tz)s) ORDER BY c.at",
            {**self._range(start, end), "modes": list(INTERACTIVE_MODES)},
        ).fetchall()
        return [int(r[0]) for r in rows]

    def user(self, user_id: int) -> tuple[str | None, list[tuple[str, date, date]]]:
        row = self.conn.execute("SELECT npi FROM users WHERE user_id = %s", (user_id,)).fetchone()
        lic = self.conn.execute(
            "SELECT state, valid_from, valid_to FROM clinician_licenses WHERE user_id = %s", (user_id,)
        ).fetchall()
        return (None if row is None else row[0]), [(s, a, b) for s, a, b in lic]

    # -- gates ---------------------------------------------------------------------------------
    def enrolment_for(self, start: date, end: date) -> _Enrolment | None:
        active = [e for e in self.enrolments if e.active_on(end)]
        if not active:
            active = [e for e in self.enrolments if e.start <= end and (e.end is None or e.end >= start)]
        return active[-1] if active else None

    def gates(self, start: date, end: date, *, counted_days: int, excluded: dict[str, int]) -> GateFacts:
        notes: dict[str, str] = {}
        enr = self.enrolment_for(start, end)
        established = enr is not None and enr.established is not None and enr.established <= enr.start
        consent = any(c <= start and (r is None or r > end) for c, r in self.consents)
        if not consent:
            notes["G2"] = f"needed on or before {start.isoformat()}"
        order = enr is not None and bool(enr.order_icd10) and all(icd10.is_valid(c) for c in enr.order_icd10)
        npi, licences = (None, []) if enr is None else self.user(enr.ordering_user_id)
        licensed = any(s == self.p.state and a <= end <= b for s, a, b in licences)
        if not licensed:
            notes["G14"] = f"{self.p.state} on {end.isoformat()}"
        overlapping = [c for c in self.claims if c[0] <= end and c[1] >= start]
        other = [c for c in overlapping if c[2] == "RPM" and c[4] != npi]
        rtm = [c for c in overlapping if c[2] == "RTM"]
        if other:
            notes["G7"] = ", ".join(f"{c[3]} by NPI {c[4]} {c[0]}..{c[1]}" for c in other)
        if rtm:
            notes["G8"] = ", ".join(f"{c[3]} {c[0]}..{c[1]}" for c in rtm)
        if counted_days == 0 and excluded.get("manual"):
            notes["G5"] = f"{excluded['manual']} typed-in readings excluded"
        return GateFacts(
            established=established,
            consent_on_file=consent,
            order_with_icd10=order,
            fda_device=not (counted_days == 0 and excluded.get("not_fda_cleared", 0) > 0),
            auto_transmitted=counted_days > 0,
            other_practitioner_billed=bool(other),
            rtm_billed=bool(rtm),
            licensed=licensed,
            notes=notes,
        )


def _counted(logs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in logs if t["billable_event_id"] is not None and t["counted_elsewhere"] is None]


def _with(d: Decision, dos: date, **evidence: Any) -> Decision:
    return replace(d, evidence={**d.evidence, **evidence}, date_of_service=dos)


def _periods_ending_in(
    first: date, length: int, month_start: date, month_end: date
) -> list[tuple[int, date, date]]:
    out: list[tuple[int, date, date]] = []
    k = max(0, (month_start - first).days // length - 1)
    while True:
        start = first + timedelta(days=k * length)
        end = start + timedelta(days=length - 1)
        if start > month_end:
            return out
        if month_start <= end <= month_end:
            out.append((k, start, end))
        k += 1


def _month_mgmt_emits(facts: _Facts, day: date, policy: Policy) -> bool:
    start, end = month_bounds(day.year, day.month)
    minutes = sum(t["minutes"] for t in _counted(facts.time_logs(start, end)))
    interactive = bool(facts.interactive_ids(start, end))
    return any(d.emitted for d in management_codes(minutes, interactive, policy))


def _patient_month(
    conn: psycopg.Connection[Any],
    p: _Patient,
    year: int,
    month: int,
    policies: list[Policy],
    as_of: date | None,
) -> PatientMonth:
    facts = _Facts(conn, p)
    m_start, m_end = month_bounds(year, month)
    enr = facts.enrolment_for(m_start, m_end)
    payer = enr.payer if enr is not None else "medicare"
    month_policy = select_policy(policies, payer, m_end)
    billing_npi = None if enr is None else facts.user(enr.ordering_user_id)[0]
    decisions: list[Decision] = []

    # -- calendar month: management codes ------------------------------------------------------
    logs = facts.time_logs(m_start, m_end)
    counted = _counted(logs)
    minutes = sum(t["minutes"] for t in counted)
    comm_ids = facts.interactive_ids(m_start, m_end)
    days_in_month, excluded_m = facts.readings(m_start, m_end)
    service_dates = sorted(t["date"] for t in counted)
    svc_start = date.fromisoformat(service_dates[0]) if service_dates else m_start
    svc_end = date.fromisoformat(service_dates[-1]) if service_dates else m_end
    gates = facts.gates(svc_start, svc_end, counted_days=len(days_in_month), excluded=excluded_m)
    not_counted = [t for t in logs if t not in counted]
    for d in evaluate_month(
        mgmt_minutes=minutes, interactive=bool(comm_ids), gates=gates, policy=month_policy
    ):
        decisions.append(
            _with(
                d,
                svc_end,
                time_log_ids=[t["time_log_id"] for t in counted],
                communication_ids=comm_ids,
                performers=sorted({f"{t['user']} ({t['role']})" for t in counted}),
                minutes_not_counted=sum(t["minutes"] for t in not_counted),
                not_counted_reasons=sorted(
                    {
                        "flag not promoted"
                        if t["billable_event_id"] is None
                        else f"counted for {t['counted_elsewhere']}"
                        for t in not_counted
                    }
                ),
            )
        )

    # -- rolling 30-day device periods ending in this month ---------------------------------------
    periods: list[DevicePeriod] = []
    episodes: dict[int, list[_Enrolment]] = defaultdict(list)
    for e in facts.enrolments:
        episodes[e.episode_id].append(e)
    for episode_id, rows in sorted(episodes.items()):
        ep_start = min(e.start for e in rows)
        ep_end = None if any(e.end is None for e in rows) else max(e.end for e in rows if e.end is not None)
        first = facts.first_monitoring_day(ep_start, ep_end)
        if first is None:
            continue
        policy0 = select_policy(policies, rows[-1].payer, m_end)
        for k, start, end in _periods_ending_in(first, policy0.device_period_days, m_start, m_end):
            if ep_end is not None and start > ep_end:
                continue
            policy = select_policy(policies, rows[-1].payer, end)
            by_date, excluded = facts.readings(start, min(end, ep_end) if ep_end else end)
            period_logs = _counted(facts.time_logs(start, end))
            qhp_minutes = sum(t["minutes"] for t in period_logs if t["qhp"])
            mgmt_billed = qhp_minutes >= policy.min_99091 and any(
                _month_mgmt_emits(facts, d, policy) for d in {start.replace(day=1), end.replace(day=1)}
            )
            setup_billed = any(c[3] == "99453" and c[0] >= ep_start for c in facts.claims)
            education = any(e.education is not None and e.education <= end for e in rows)
            g = facts.gates(start, end, counted_days=len(by_date), excluded=excluded)
            out = evaluate_device_period(
                days_with_data=len(by_date),
                first_period=k == 0,
                education_documented=education,
                setup_already_billed=setup_billed,
                qhp_minutes=qhp_minutes,
                performer_is_qhp=qhp_minutes > 0,
                management_billed=mgmt_billed,
                gates=g,
                policy=policy,
            )
            if as_of is not None and end > as_of:
                out = [
                    d.withheld_by(
                        "PERIOD",
                        f"period runs to {end.isoformat()}, not complete on "
                        f"{as_of.isoformat()} (would be: {d.reason})",
                    )
                    if d.emitted
                    else d
                    for d in out
                ]
            period_evidence = {
                "period": f"{start.isoformat()}..{end.isoformat()}",
                "episode_id": episode_id,
                "qualifying_dates": sorted(by_date),
                "excluded_readings": excluded,
            }
            out = [_with(d, end, **period_evidence) for d in out]
            periods.append(
                DevicePeriod(
                    episode_id, k, start, end, len(by_date), by_date, excluded, qhp_minutes, tuple(out)
                )
            )
            decisions.extend(out)

    codes = list(enr.order_icd10) if enr is not None else []
    return PatientMonth(
        patient_id=p.patient_id,
        mrn=p.mrn,
        year=year,
        month=month,
        timezone=p.tz,
        state=p.state,
        payer=payer,
        policy_version=month_policy.version,
        billing_user_id=None if enr is None else enr.ordering_user_id,
        billing_npi=billing_npi,
        place_of_service=month_policy.default_pos,
        icd10_codes=tuple(codes),
        mgmt_minutes=minutes,
        interactive=bool(comm_ids),
        time_logs=tuple(counted),
        communication_ids=tuple(comm_ids),
        device_periods=tuple(periods),
        decisions=tuple(decisions),
    )


def compute_month(
    conn: psycopg.Connection[Any],
    year: int,
    month: int,
    *,
    patient_id: int | None = None,
    as_of: date | None = None,
) -> list[PatientMonth]:
    """Billing decisions of every enrolled patient (or one) for a calendar month.

    ``as_of`` withholds device periods that have not ended by that date (a month still running).
    """
    m_start, m_end = month_bounds(year, month)
    policies = load_policies(conn)
    if patient_id is not None:
        rows = conn.execute(
            "SELECT patient_id, mrn, state, timezone FROM patients WHERE patient_id = %s", (patient_id,)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT p.patient_id, p.mrn, p.state, p.timezone FROM patients p WHERE EXISTS ("
            " SELECT 1 FROM enrolments e WHERE e.patient_id = p.patient_id AND e.start_date <= %s"
            " AND (e.end_date IS NULL OR e.end_date >= %s)) ORDER BY p.patient_id",
            (m_end, m_start - timedelta(days=62)),
        ).fetchall()
    return [
        _patient_month(conn, _Patient(int(r[0]), r[1], r[2], r[3]), year, month, policies, as_of)
        for r in rows
    ]
