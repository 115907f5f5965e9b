"""The old backlog against the comparison period, judged by the "what changed" rules.

    change = compare_backlog("riverton", "2025-Q4")          # requests open over 90 days
    change.now, change.before, change.verdict.changed

`now` is the number of requests open at the dataset's as-of "now" for more than `older_than` whole
days (`citykit.backlog`'s definition: duplicates left out; open, or closed after "now" unless
cancelled). `before` is the same count as it stood at the comparison period's cut-off, the cut-off
`compare_periods` uses (the previous period's end plus the follow-up the current period has had).
The verdict follows `metrics.yml` `comparisons.noise` as request volume does: a change only past
Laney u' control limits from the counts at the past periods' cut-offs and past the minimum
practical change (10% and 10 requests). Counted in DuckDB over `citykit.connect`, so a database
dataset works too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from citykit.data import comparisons as stats
from citykit.data import registry
from citykit.data.periods import Period, parse_period
from citykit.data.views import connect
from citykit.standards.reader import load_metrics


@dataclass(frozen=True)
class BacklogChange:
    older_than: int  # days
    now: int  # open over `older_than` days at the as-of "now"
    before: int  # the same, at the comparison period's cut-off
    cutoff: dt.datetime  # the comparison period's cut-off
    previous: Period
    verdict: stats.Verdict
    history: int  # past periods behind the control limits


def compare_backlog(
    dataset: str, period: str | Period, neighborhood: str | None = None, older_than: int = 90
) -> BacklogChange:
    """Requests open more than `older_than` days now, against the comparison period's cut-off."""
    ds = registry.get(dataset)
    metrics = load_metrics()
    noise = stats.rules()["noise"]
    current = parse_period(period, as_of=ds.as_of)
    now = pd.Timestamp(ds.now)
    follow_up = now - pd.Timestamp(current.end)
    periods = [*current.history(int(noise["history_periods"])), current]  # oldest first; [-2] is the previous
    cutoffs = [min(pd.Timestamp(p.end) + follow_up, now).to_pydatetime() for p in periods]
    points = pd.DataFrame({
        "idx": range(len(periods)), "cutoff": cutoffs,
        "p_start": [pd.Timestamp(p.start).to_pydatetime() for p in periods],
        "p_end": [pd.Timestamp(p.end).to_pydatetime() for p in periods],
    })  # fmt: skip
    con = connect(
        dataset,
        neighborhood=neighborhood,
        variables={
            "open_statuses": [str(s) for s in metrics["time_to_close"]["open_statuses"]],
            "older_than": int(older_than),
        },
        shared=True,  # a cursor on the process' shared database, its view a TEMP one
    )
    con.register("points", points)
    counts = (
        con.sql("""
        SELECT idx,
               count(*) FILTER (WHERE created_at < cutoff
                   AND floor(epoch(cutoff - created_at) / 86400) > getvariable('older_than')
                   AND (list_contains(getvariable('open_statuses'), status)
                        OR (closed_at > cutoff AND status <> 'Cancelled'))) AS old_open,
               count(*) FILTER (WHERE created_at >= p_start AND created_at < p_end) AS created
        FROM points LEFT JOIN service_requests ON NOT coalesce(is_duplicate, false)
        GROUP BY idx ORDER BY idx
    """)
        .df()
        .set_index("idx")
    )
    con.close()
    n = len(periods)
    history = [i for i in range(n - 1) if counts.loc[i, "created"] > 0]  # past periods the data cover
    past = counts.loc[history, "old_open"]
    limits = stats.laney_limits(past, [1] * len(past), 1, "u", noise["sigma"]) if len(past) >= 2 else None
    value, before = int(counts.loc[n - 1, "old_open"]), int(counts.loc[n - 2, "old_open"])
    verdict = stats.judge(value, before, limits, noise["min_change"]["volume_relative"], relative=True,
                          min_absolute=noise["min_change"]["volume_requests"], within=noise["within_label"],
                          history=len(history), min_history=int(noise["min_history"]))  # fmt: skip
    return BacklogChange(int(older_than), value, before, cutoffs[-2], periods[-2], verdict, len(history))
