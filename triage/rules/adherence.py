"""Adherence and the three silences, kept apart because they have different owners (DOMAIN H9).

* gateway offline (``gateway_status``): IT;
* device not seen by a live gateway: device logistics;
* patient not measuring while the device is seen: nurse outreach.

Patients behind an offline gateway get no "not measuring" flag: that silence is logged as a
suppression pointing at the gateway flag.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import numpy as np
import pandas as pd

from triage import frames as fr
from triage import thresholds as th
from triage.localtime import local_days, today_in


def adherence_period(readings: pd.DataFrame, *, now: datetime, patients: pd.DataFrame) -> pd.DataFrame:
    """Measuring days (patient-local, valid automatic readings without technique errors) this period.

    Periods run in 30-day blocks from the enrolment day. Flags (moderate) while >= 16 days are
    still reachable but the slack is under ``PERIOD_AT_RISK_MARGIN`` days; once unreachable the
    flag is informational (next-period outreach). Reasons speak of the care plan, never revenue.
    """
    pinfo = _current_periods(patients, now)
    if pinfo is None:
        return fr.empty_candidates()
    days = _measuring_days(readings, pinfo)
    done, elapsed, left_after_today, at_risk, lost = _period_progress(days, pinfo)
    hit = at_risk | lost
    if not hit.any():
        return fr.empty_candidates()
    sel = pinfo.loc[hit]
    d = done[hit]
    stamp = pd.Timestamp(now)
    target = th.PERIOD_TARGET_DAYS
    return fr.candidates(
        rule_id="adherence_period",
        patient_id=pd.Series(sel.index, index=sel.index),
        severity=pd.Series(np.where(at_risk[hit], "moderate", "info"), index=sel.index),
        reason=_period_reason(d, elapsed[hit], left_after_today[hit]),
        reading_ids=pd.Series([[] for _ in range(len(sel))], dtype=object),
        first_at=pd.Series(stamp, index=sel.index),
        last_at=pd.Series(stamp, index=sel.index),
        value=d.astype(float),
        baseline=float(target),
        unit=th.Unit.DAYS.value,
        episode_key="period:" + sel["start"].dt.strftime("%Y-%m-%d"),
        dedup="episode",
    )


def _current_periods(patients: pd.DataFrame, now: datetime) -> pd.DataFrame | None:
    """Per enrolled patient (index ``patient_id``): the current period's first day, today, the zone.

    None when no patient is enrolled; patients whose enrolment day is still ahead are left out.
    """
    pts = patients[patients["enrolled_at"].notna()].reset_index(drop=True)
    if pts.empty:
        return None
    zones = pts["timezone"]
    enrolled = local_days(pd.to_datetime(pts["enrolled_at"], utc=True), zones)
    today = today_in(zones, now)
    idx = (today - enrolled).dt.days // th.PERIOD_DAYS
    start = enrolled + pd.to_timedelta(idx * th.PERIOD_DAYS, unit="D")
    pinfo = pd.DataFrame(
        {"patient_id": pts["patient_id"].astype("int64"), "start": start, "today": today, "tz": zones}
    ).set_index("patient_id")
    return pinfo[(idx >= 0).to_numpy()]


def _measuring_days(readings: pd.DataFrame, pinfo: pd.DataFrame) -> pd.DataFrame:
    """Distinct (patient_id, local day) pairs with a counting reading inside the current period."""
    # One definition with billing (triage.valid_reading): a reading whose device reported a
    # measurement problem (movement, cuff fit, position, strip/sensor faults) is not a measuring
    # day (DOMAIN C5); failed, quarantined and typed-in readings never count either (H13).
    ok = (
        (readings["quality"] == "valid")
        & (readings["transmission"] == "automatic")
        & ~readings[fr.PROBLEM_COLUMN]
        & readings["patient_id"].isin(pinfo.index)
    )
    r = readings.loc[ok, ["patient_id", "measured_at"]]
    day = local_days(r["measured_at"], r["patient_id"].map(pinfo["tz"]))
    in_period = (day >= r["patient_id"].map(pinfo["start"])) & (day <= r["patient_id"].map(pinfo["today"]))
    return pd.DataFrame({"patient_id": r["patient_id"][in_period], "day": day[in_period]}).drop_duplicates()


def _period_progress(
    days: pd.DataFrame, pinfo: pd.DataFrame
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series, pd.Series]:
    """Per patient: days done, days elapsed, days left after today, at risk, target lost.

    Today counts as still possible while the patient has not measured yet today.
    """
    done = days.groupby("patient_id").size().reindex(pinfo.index, fill_value=0)
    today_done = days[days["day"] == days["patient_id"].map(pinfo["today"])].groupby("patient_id").size()
    measured_today = today_done.reindex(pinfo.index, fill_value=0) > 0
    elapsed = (pinfo["today"] - pinfo["start"]).dt.days + 1
    left_after_today = th.PERIOD_DAYS - elapsed
    possible = done + left_after_today + (~measured_today).astype(int)
    target = th.PERIOD_TARGET_DAYS
    at_risk = (done < target) & (possible >= target) & (possible - target < th.PERIOD_AT_RISK_MARGIN)
    lost = possible < target
    return done, elapsed, left_after_today, at_risk, lost


def _period_reason(done: pd.Series, elapsed: pd.Series, left: pd.Series) -> pd.Series:
    return (
        "Measured on "
        + done.astype(str)
        + " of "
        + elapsed.astype(str)
        + " days of this 30-day monitoring period; "
        + left.astype(str)
        + " days remain and the care plan asks for readings on at least "
        + str(th.PERIOD_TARGET_DAYS)
        + " days. Reach out to help the patient resume measuring."
    )


def silences(
    devices: pd.DataFrame, gateways: pd.DataFrame, *, now: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gateway offline / device not seen / patient not measuring, plus logged suppressions.

    ``devices``: one row per assigned device: ``patient_id, device_id, gateway_id, assigned_from,
    last_reading_at, last_contact_at`` (NaT when unknown). ``gateways``: ``gateway_id, online,
    updated_at``.
    """
    t_now = pd.Timestamp(now)
    down = _gateways_down(gateways, t_now)
    dv = devices.copy()
    for col in ("assigned_from", "last_reading_at", "last_contact_at"):
        dv[col] = pd.to_datetime(dv[col], utc=True).astype("datetime64[ns, UTC]")
    gw_c = _gateway_candidates(down, dv)
    silent, owner = _silent_devices(dv, down, t_now)
    days = ((t_now - silent["last"]).dt.total_seconds() // 86400).astype(int).astype(str)
    last_txt = silent["last"].dt.strftime("%Y-%m-%dT%H:%MZ")
    device = silent["device_id"].astype(str)
    patient_key = "patient:" + silent["patient_id"].astype("int64").astype(str)
    dev_c = _silence_candidates(
        silent,
        owner.unseen,
        t_now,
        "device_not_seen",
        "Device " + device + " not seen by its gateway (which is online) and no "
        "reading for " + days + " days. Owner: device logistics (batteries, pairing, range).",
        "device:" + device,
    )
    silent_all = _silence_candidates(
        silent,
        owner.whole,
        t_now,
        "patient_not_measuring",
        "No reading from any of the patient's devices for "
        + days
        + " days (last from "
        + device
        + " at "
        + last_txt
        + "); the gateway is online. Devices advertise only when used, so ask whether the patient is "
        "measuring; if they are, hand it to device logistics. Owner: nurse outreach.",
        patient_key,
    )
    pat_c = _silence_candidates(
        silent,
        owner.measuring,
        t_now,
        "patient_not_measuring",
        "No reading for " + days + " days from " + device + " although the gateway sees the device. "
        "Owner: nurse outreach.",
        patient_key,
    )
    sup = _gateway_suppressions(silent, owner.gw_down, t_now, patient_key)
    return fr.concat([gw_c, dev_c, silent_all, pat_c]), sup


def _gateway_suppressions(
    silent: pd.DataFrame, gw_down: pd.Series, t_now: pd.Timestamp, patient_key: pd.Series
) -> pd.DataFrame:
    """The "not measuring" silences behind an offline gateway, logged as suppressions (IT's flag)."""
    muted = _silence_candidates(
        silent, gw_down, t_now, "patient_not_measuring", pd.Series("", index=silent.index), patient_key
    )
    return fr.suppressions(
        muted,
        source="silence_owner",
        reason="gateway "
        + silent.loc[gw_down, "gateway_id"].astype(str)
        + " is offline: this silence is the gateway's (IT), not the patient's",
    )


class _Owners(NamedTuple):
    """Masks over the silent devices: whose silence each one is (exactly one is true per row)."""

    gw_down: pd.Series  # behind an offline gateway: IT's, logged as a suppression
    whole: pd.Series  # the patient's latest device, every device silent: nurse outreach
    unseen: pd.Series  # not seen while the patient measures with others: device logistics
    measuring: pd.Series  # seen by the gateway but no reading: nurse outreach


def _gateways_down(gateways: pd.DataFrame, t_now: pd.Timestamp) -> pd.DataFrame:
    """Gateways offline for ``GATEWAY_OFFLINE_AFTER``, or not heard from for ``GATEWAY_STALE_AFTER``."""
    gw = gateways.copy()
    gw["updated_at"] = pd.to_datetime(gw["updated_at"], utc=True).astype("datetime64[ns, UTC]")
    age = t_now - gw["updated_at"]
    gw["down"] = ((~gw["online"].astype(bool)) & (age >= pd.Timedelta(th.GATEWAY_OFFLINE_AFTER))) | (
        age >= pd.Timedelta(th.GATEWAY_STALE_AFTER)
    )
    return gw[gw["down"]].reset_index(drop=True)


def _gateway_candidates(down: pd.DataFrame, dv: pd.DataFrame) -> pd.DataFrame:
    """One ``gateway_offline`` candidate per gateway down, naming how many devices sit behind it."""
    behind = dv.groupby("gateway_id").size() if not dv.empty else pd.Series(dtype="int64")
    n_behind = down["gateway_id"].map(behind).fillna(0).astype(int).astype(str)
    since = down["updated_at"].dt.strftime("%Y-%m-%dT%H:%MZ")
    return fr.candidates(
        rule_id="gateway_offline",
        patient_id=pd.Series([pd.NA] * len(down), dtype="Int64"),
        severity="moderate",
        reason="Gateway "
        + down["gateway_id"].astype(str)
        + " offline since "
        + since
        + " ("
        + n_behind
        + " devices behind it). Owner: IT.",
        reading_ids=pd.Series([[] for _ in range(len(down))], dtype=object),
        first_at=down["updated_at"],
        last_at=down["updated_at"],
        episode_key="since:" + since,
        dedup="episode",
        subject_key="gateway:" + down["gateway_id"].astype(str),
    )


def _silent_devices(
    dv: pd.DataFrame, down: pd.DataFrame, t_now: pd.Timestamp
) -> tuple[pd.DataFrame, _Owners]:
    """Devices silent for ``PATIENT_SILENT_AFTER`` (with ``last``: their last reading or assignment)."""
    last = dv["last_reading_at"].fillna(dv["assigned_from"])
    silent = dv[(t_now - last) >= pd.Timedelta(th.PATIENT_SILENT_AFTER)].copy()
    silent["last"] = last[silent.index]
    gw_down = silent["gateway_id"].isin(set(down["gateway_id"]))
    contact_age = t_now - silent["last_contact_at"]
    seen = silent["last_contact_at"].notna() & (contact_age < pd.Timedelta(th.DEVICE_NOT_SEEN_AFTER))
    # Cuffs, meters and scales advertise only when used: a patient silent on every device is not
    # measuring (nurse outreach) whether or not the gateway still sees the devices. Only a device
    # unseen while the patient measures with the others is a logistics question.
    patient_last = last.groupby(dv["patient_id"]).max()
    quiet_for = t_now - silent["patient_id"].map(patient_last)
    by_last = silent.sort_values("last", kind="stable")
    latest = by_last.index[~by_last["patient_id"].duplicated(keep="last")]
    whole = ~gw_down & (quiet_for >= pd.Timedelta(th.PATIENT_SILENT_AFTER)) & silent.index.isin(latest)
    others = ~gw_down & ~whole & ~silent["patient_id"].isin(silent.loc[whole, "patient_id"])
    return silent, _Owners(gw_down, whole, others & ~seen, others & seen)


def _silence_candidates(
    silent: pd.DataFrame,
    mask: pd.Series,
    t_now: pd.Timestamp,
    rule: str,
    reason: pd.Series,
    subject: pd.Series,
) -> pd.DataFrame:
    """Candidates of ``rule`` for the silent devices under ``mask``, one episode per device and silence."""
    s = silent.loc[mask]
    return fr.candidates(
        rule_id=rule,
        patient_id=s["patient_id"],
        severity="moderate",
        reason=reason.loc[mask],
        reading_ids=pd.Series([[] for _ in range(len(s))], dtype=object),
        first_at=s["last"],
        last_at=s["last"],
        value=(t_now - s["last"]).dt.total_seconds() / 86400,
        unit=th.Unit.DAYS.value,
        episode_key=s["device_id"].astype(str) + ":since:" + s["last"].dt.strftime("%Y-%m-%dT%H:%MZ"),
        dedup="episode",
        subject_key=subject.loc[mask],
    )
