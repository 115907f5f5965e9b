"""The open backlog as `metrics.yml` defines it: every request open at the dataset's as-of "now",
whatever its creation date (in the selected neighborhood), aged in whole calendar days.

    backlog("riverton")                               # by age bucket, citywide
    backlog("riverton", neighborhood="Millbrook")
    backlog("riverton", created_in="2025-Q4")         # "opened in this period and still open"

A request counts when it is not a duplicate, was created before "now", and was open at "now": its
status is open, or it closed after "now" (an analysis dated before the export's last records).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from citykit.data import registry
from citykit.data.load import load
from citykit.data.periods import Period, parse_period
from citykit.standards.reader import load_metrics

COLUMNS = ["created_at", "closed_at", "status", "is_duplicate"]


def open_at_now(dataset: str, neighborhood: str | Sequence[str] | None = None,
                created_in: str | Period | None = None) -> pd.DataFrame:  # fmt: skip
    """The requests open at the as-of "now", with their `age_days` (whole days) and age `bucket`."""
    ds = registry.get(dataset)
    metrics = load_metrics()
    now = pd.Timestamp(ds.now)
    period = parse_period(created_in, as_of=ds.as_of) if created_in is not None else None
    frame = load("service_requests", dataset=dataset, period=period, neighborhood=neighborhood, columns=COLUMNS)
    closed_at = pd.to_datetime(frame["closed_at"])
    open_status = frame["status"].isin(metrics["time_to_close"]["open_statuses"])
    closed_later = closed_at.gt(now).fillna(False) & ~frame["status"].isin(["Cancelled"])
    keep = (open_status | closed_later) & ~frame["is_duplicate"].fillna(False).astype(bool)
    keep &= pd.to_datetime(frame["created_at"]).lt(now)
    found = frame[keep.to_numpy()].copy()
    found["age_days"] = np.floor((now - pd.to_datetime(found["created_at"])) / pd.Timedelta(days=1)).astype(int)
    found["bucket"] = bucket_of(found["age_days"], metrics["backlog"]["buckets"])
    return found


def bucket_of(age_days: pd.Series, buckets: list[dict]) -> pd.Series:
    """Each age's bucket label (buckets: label, min, max inclusive; max null = no upper bound)."""
    labels = pd.Series(pd.NA, index=age_days.index, dtype="object")
    for b in buckets:
        inside = age_days >= b["min"]
        if b["max"] is not None:
            inside &= age_days <= b["max"]
        labels[inside] = b["label"]
    return labels


def backlog(dataset: str, neighborhood: str | Sequence[str] | None = None,
            created_in: str | Period | None = None) -> pd.Series:  # fmt: skip
    """Open requests at the as-of "now" by age bucket (every bucket, in order, zeros kept).

    Without `created_in` this is the backlog; with it, only the requests created in that period
    that are still open: label that figure "opened in this period and still open"."""
    buckets = load_metrics()["backlog"]["buckets"]
    found = open_at_now(dataset, neighborhood, created_in)
    order = [b["label"] for b in buckets]
    counts = found["bucket"].value_counts().reindex(order, fill_value=0).astype(int)
    return counts.rename("open requests").rename_axis("age")
