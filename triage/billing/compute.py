"""The monthly computation: load each patient's facts, decide with the pure engine, return results.

The database side is :mod:`triage.billing.load` (facts in) and
:mod:`triage.billing.billing_store` (stored runs); the decisions are
:func:`triage.billing.engine.bill_month`, a pure function tested without a database. Every code
considered comes back emitted or withheld with its rule, reason, evidence and the payer profile
that decided. ``rpmflow-triage billing --month YYYY-MM`` runs this from the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import psycopg

from triage.billing import billing_store
from triage.billing.engine import DevicePeriod, PatientMonth, bill_month
from triage.billing.gates import month_bounds
from triage.billing.load import load_patient_facts, load_policies, patient_ids_for_month

__all__ = ["DevicePeriod", "PatientMonth", "compute_month", "load_policies", "month_bounds", "store_month"]


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


def store_month(
    conn: psycopg.Connection[Any],
    results: Sequence[PatientMonth],
    *,
    year: int,
    month: int,
    computed_by: str,
    as_of: date | None = None,
) -> int:
    """Keep a computation as it was (``billing_runs`` + ``billing_decisions``, append-only);
    returns the run id. Every decision is stored, emitted or withheld, with its profile."""
    with conn.transaction():
        run_id = billing_store.insert_run(conn, f"{year:04d}-{month:02d}", computed_by, as_of, len(results))
        billing_store.insert_decisions(
            conn,
            (
                (
                    run_id,
                    pm.patient_id,
                    seq,
                    d.code,
                    d.units,
                    d.emitted,
                    d.rule,
                    d.reason,
                    d.date_of_service,
                    str(d.evidence.get("policy") or pm.policy_version),
                    d.evidence,
                )
                for pm in results
                for seq, d in enumerate(pm.decisions)
            ),
        )
    return run_id
