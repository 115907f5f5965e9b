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

from citykit.data import parquet_source, registry
from citykit.data.load import _check_arguments as load_arguments
from citykit.data.load import load
from citykit.data.periods import Period, parse_period
from citykit.data.query import connect
from citykit.standards.reader import load_metrics

COLUMNS = ["created_at", "closed_at", "status", "is_duplicate"]


def open_at_now(dataset: str, neighborhood: str | Sequence[str] | None = None,
                created_in: str | Period | None = None) -> pd.DataFrame:  # fmt: skip
    """The requests open at the as-of "now", with their `age_days` (whole days) and age `bucket`
    (a fresh 0..n-1 index)."""
    ds = registry.get(dataset)
    metrics = load_metrics()
    now = pd.Timestamp(ds.now)
    period = parse_period(created_in, as_of=ds.as_of) if created_in is not None else None
    found = _open_rows(ds, period, neighborhood, now, metrics["time_to_close"]["open_statuses"])
    found["age_days"] = np.floor((now - pd.to_datetime(found["created_at"])) / pd.Timedelta(days=1)).astype(int)
    found["bucket"] = bucket_of(found["age_days"], metrics["backlog"]["buckets"])
    return found


def _open_rule(now: pd.Timestamp, open_statuses: Sequence[str]) -> tuple[str, list[object]]:
    """The SQL condition (qmark parameters) of a request open at `now`: not a duplicate (a missing
    flag is not one), created before `now`, and its status open or closed after `now` unless
    cancelled (a missing status is not cancelled). Missing dates compare as false."""
    statuses = list(open_statuses)
    is_open = f"coalesce(status IN ({', '.join('?' for _ in statuses)}), false)" if statuses else "false"
    rule = (
        "NOT coalesce(is_duplicate, false) AND coalesce(created_at < ?, false) AND ("
        f"{is_open} OR (coalesce(closed_at > ?, false) AND status IS DISTINCT FROM 'Cancelled'))"
    )
    at = now.to_pydatetime()
    return rule, [at, *statuses, at]


def _open_rows(ds: registry.Dataset, period: Period | None, neighborhood, now, open_statuses) -> pd.DataFrame:
    """The COLUMNS of the requests open at `now`, filtered by DuckDB before pandas sees a row (a big
    city has millions of requests and a backlog of thousands); `load`'s checks and errors kept."""
    rule, params = _open_rule(now, open_statuses)
    if ds.kind != "parquet":  # a database: the selected rows as `load` reads them, the same rule over them
        frame = load("service_requests", dataset=ds.name, period=period, neighborhood=neighborhood, columns=COLUMNS)
        con = connect(shared=True)
        try:
            con.register("_citykit_rows", frame)
            keep = con.execute(f"SELECT {rule} FROM _citykit_rows", params).fetchnumpy()
        finally:
            con.close()
        return frame[next(iter(keep.values())).astype(bool)].reset_index(drop=True)
    load_arguments("service_requests", ds.name, period, neighborhood, COLUMNS)
    return parquet_source.load(ds, "service_requests", period, neighborhood, COLUMNS, where=(rule, params))


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
