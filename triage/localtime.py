"""Patient-local calendar days, vectorised per IANA zone (day counting never uses UTC dates)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd


def local_days(times: pd.Series, zones: pd.Series) -> pd.Series:
    """Midnight (naive, local) of each UTC time in its row's zone; one tz_convert per distinct zone."""
    out = pd.Series(pd.NaT, index=times.index, dtype="datetime64[ns]")
    for zone, idx in zones.groupby(zones, sort=False).groups.items():
        local = times.loc[idx].dt.tz_convert(str(zone)).dt.tz_localize(None).dt.floor("D")
        out.loc[idx] = local.astype("datetime64[ns]")
    return out


def today_in(zones: pd.Series, now: datetime) -> pd.Series:
    """Each row's local date of ``now`` (naive midnight)."""
    stamp = pd.Timestamp(now)
    cache = {z: stamp.tz_convert(str(z)).tz_localize(None).floor("D") for z in zones.unique()}
    return zones.map(cache).astype("datetime64[ns]")
