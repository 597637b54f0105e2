"""The monthly computation: load each patient's facts, decide with the pure engine, return results.

The database side is :mod:`triage.billing.load` (facts in) and nothing else; the decisions are
:func:`triage.billing.engine.bill_month`, a pure function tested without a database. Every code
considered comes back emitted or withheld with its rule, reason, evidence and the payer profile
that decided. ``rpmflow-triage billing --month YYYY-MM`` runs this from the command line.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from triage.billing.engine import DevicePeriod, PatientMonth, bill_month, month_bounds
from triage.billing.load import load_patient_facts, load_policies, patient_ids_for_month

__all__ = ["DevicePeriod", "PatientMonth", "compute_month", "load_policies", "month_bounds"]


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
    ids = [patient_id] if patient_id is not None else patient_ids_for_month(conn, m_start, m_end)
    out: list[PatientMonth] = []
    for pid in ids:
        facts = load_patient_facts(conn, pid, m_end)
        if facts is not None:
            out.append(bill_month(facts, year, month, policies, as_of=as_of))
    return out
