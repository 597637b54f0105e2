"""Adherence and the three silences, kept apart because they have different owners (DOMAIN H9).

* gateway offline (``gateway_status``): IT;
* device not seen by a live gateway: device logistics;
* patient not measuring while the device is seen: nurse outreach.

Patients behind an offline gateway get no "not measuring" flag: that silence is logged as a
suppression pointing at the gateway flag.
"""

from __future__ import annotations

from datetime import datetime

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
    pts = patients[patients["enrolled_at"].notna()].reset_index(drop=True)
    if pts.empty:
        return fr.empty_candidates()
    zones = pts["timezone"]
    enrolled = local_days(pd.to_datetime(pts["enrolled_at"], utc=True), zones)
    today = today_in(zones, now)
    idx = (today - enrolled).dt.days // th.PERIOD_DAYS
    start = enrolled + pd.to_timedelta(idx * th.PERIOD_DAYS, unit="D")
    pinfo = pd.DataFrame(
        {"patient_id": pts["patient_id"].astype("int64"), "start": start, "today": today, "tz": zones}
    ).set_index("patient_id")
    pinfo = pinfo[(idx >= 0).to_numpy()]
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
    days = pd.DataFrame({"patient_id": r["patient_id"][in_period], "day": day[in_period]}).drop_duplicates()
    done = days.groupby("patient_id").size().reindex(pinfo.index, fill_value=0)
    today_done = days[days["day"] == days["patient_id"].map(pinfo["today"])].groupby("patient_id").size()
    measured_today = today_done.reindex(pinfo.index, fill_value=0) > 0
    elapsed = (pinfo["today"] - pinfo["start"]).dt.days + 1
    left_after_today = th.PERIOD_DAYS - elapsed
    possible = done + left_after_today + (~measured_today).astype(int)
    target = th.PERIOD_TARGET_DAYS
    at_risk = (done < target) & (possible >= target) & (possible - target < th.PERIOD_AT_RISK_MARGIN)
    lost = possible < target
    hit = at_risk | lost
    if not hit.any():
        return fr.empty_candidates()
    sel = pinfo.loc[hit]
    pid = pd.Series(sel.index, index=sel.index)
    d, e, left = done[hit], elapsed[hit], left_after_today[hit]
    reason = (
        "Measured on "
        + d.astype(str)
        + " of "
        + e.astype(str)
        + " days of this 30-day monitoring period; "
        + left.astype(str)
        + " days remain and the care plan asks for readings on at least "
        + str(target)
        + " days. Reach out to help the patient resume measuring."
    )
    severity = pd.Series(np.where(at_risk[hit], "moderate", "info"), index=sel.index)
    stamp = pd.Timestamp(now)
    return fr.candidates(
        rule_id="adherence_period",
        patient_id=pid,
        severity=severity,
        reason=reason,
        reading_ids=pd.Series([[] for _ in range(len(sel))], dtype=object),
        first_at=pd.Series(stamp, index=sel.index),
        last_at=pd.Series(stamp, index=sel.index),
        value=d.astype(float),
        baseline=float(target),
        unit=th.Unit.DAYS.value,
        episode_key="period:" + sel["start"].dt.strftime("%Y-%m-%d"),
        dedup="episode",
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
    gw = gateways.copy()
    gw["updated_at"] = pd.to_datetime(gw["updated_at"], utc=True).astype("datetime64[ns, UTC]")
    age = t_now - gw["updated_at"]
    gw["down"] = ((~gw["online"].astype(bool)) & (age >= pd.Timedelta(th.GATEWAY_OFFLINE_AFTER))) | (
        age >= pd.Timedelta(th.GATEWAY_STALE_AFTER)
    )
    down = gw[gw["down"]].reset_index(drop=True)
    dv = devices.copy()
    for col in ("assigned_from", "last_reading_at", "last_contact_at"):
        dv[col] = pd.to_datetime(dv[col], utc=True).astype("datetime64[ns, UTC]")
    behind = dv.groupby("gateway_id").size() if not dv.empty else pd.Series(dtype="int64")
    n_behind = down["gateway_id"].map(behind).fillna(0).astype(int).astype(str)
    since = down["updated_at"].dt.strftime("%Y-%m-%dT%H:%MZ")
    gw_c = fr.candidates(
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
    unseen = ~gw_down & ~whole & ~seen & ~silent["patient_id"].isin(silent.loc[whole, "patient_id"])
    measuring = ~gw_down & ~whole & seen & ~silent["patient_id"].isin(silent.loc[whole, "patient_id"])
    days = ((t_now - silent["last"]).dt.total_seconds() // 86400).astype(int).astype(str)
    last_txt = silent["last"].dt.strftime("%Y-%m-%dT%H:%MZ")

    def make(mask: pd.Series, rule: str, reason: pd.Series, subject: pd.Series) -> pd.DataFrame:
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
            episode_key=s["device_id"].astype(str) + ":since:" + last_txt.loc[mask],
            dedup="episode",
            subject_key=subject.loc[mask],
        )

    dev_c = make(
        unseen,
        "device_not_seen",
        "Device " + silent["device_id"].astype(str) + " not seen by its gateway (which is online) and no "
        "reading for " + days + " days. Owner: device logistics (batteries, pairing, range).",
        "device:" + silent["device_id"].astype(str),
    )
    silent_all = make(
        whole,
        "patient_not_measuring",
        "No reading from any of the patient's devices for "
        + days
        + " days (last from "
        + silent["device_id"].astype(str)
        + " at "
        + last_txt
        + "); the gateway is online. Devices advertise only when used, so ask whether the patient is "
        "measuring; if they are, hand it to device logistics. Owner: nurse outreach.",
        "patient:" + silent["patient_id"].astype("int64").astype(str),
    )
    pat_c = make(
        measuring,
        "patient_not_measuring",
        "No reading for "
        + days
        + " days from "
        + silent["device_id"].astype(str)
        + " although the gateway sees the device. Owner: nurse outreach.",
        "patient:" + silent["patient_id"].astype("int64").astype(str),
    )
    muted = make(
        gw_down,
        "patient_not_measuring",
        pd.Series("", index=silent.index),
        "patient:" + silent["patient_id"].astype("int64").astype(str),
    )
    sup = fr.suppressions(
        muted,
        source="silence_owner",
        reason="gateway "
        + silent.loc[gw_down, "gateway_id"].astype(str)
        + " is offline: this silence is the gateway's (IT), not the patient's",
    )
    return fr.concat([gw_c, dev_c, silent_all, pat_c]), sup
