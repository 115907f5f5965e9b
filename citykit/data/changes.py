""" "What changed": a period against the one before, with equal follow-up and noise marked.

    result = compare_periods("riverton", "2025-Q4")
    display(Markdown(result.markdown()))

The rules are `metrics.yml` `comparisons`: the previous period as it stood the same number of days
after its end as the current period has had (a request closed after that cut-off counts as open);
waits as Kaplan-Meier median and 90th percentile, open requests censored; on-time share over the
requests due in the period whose due date has passed, missed when closed late or still open, with
the type mix held; a change called a change only past Laney control limits from past periods and
a minimum practical change (bootstrap interval for medians, corrected for the types compared).
Closed-only figures come alongside, labelled. Counting happens in DuckDB; only the waits of the two
compared periods reach pandas.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from citykit.data import comparisons as stats
from citykit.data import registry
from citykit.data.periods import Period, parse_period
from citykit.data.views import connect
from citykit.standards.reader import load_metrics

LOOKBACK_DAYS = 400  # requests due in a period may have been created up to this long before it


@dataclass
class Figures:
    """One period's figures, as things stood at its cut-off."""

    period: Period
    cutoff: pd.Timestamp
    volume: int
    waiting: int  # requests in the wait figures (metric rules applied)
    closed: int  # of them, closed by the cut-off
    median: float | None  # Kaplan-Meier; None = not yet estimable
    p90: float | None
    closed_only_median: float | None
    due: int
    on_time: int
    closed_only_on_time: float | None  # among requests created in the period and closed by the cut-off

    @property
    def share(self) -> float | None:
        return self.on_time / self.due if self.due else None


@dataclass
class Comparison:
    dataset: str
    current: Figures
    previous: Figures
    previous_share_at_current_mix: float | None
    verdicts: dict[str, stats.Verdict]
    by_type: pd.DataFrame  # volume now/before, change, verdict; median now/before, note
    history: int  # past periods behind the control limits
    rules: dict[str, Any] = field(repr=False, default_factory=dict)

    def markdown(self, unjudged: str = "") -> str:
        """The "what changed" bullets for a director, each figure with its verdict; with `unjudged` (e.g.
        "not judged: the data fail 3 quality gates") that text stands for every verdict instead."""
        c, p, v = self.current, self.previous, self.verdicts
        say = (lambda _: unjudged) if unjudged else _say
        follow = (c.cutoff.normalize() - pd.Timestamp(c.period.end)).days
        stood = p.cutoff.normalize() - pd.Timedelta(days=1)  # the last day counted for the period before
        lines = [
            f"Compared with {period_dates(p.period)}"
            + (" (the same days of the period before; this period is partial)" if c.period.partial else "")
            + (
                f", as it stood on {_day(stood)}, {follow} days after its end, just as this period is counted "
                f"{follow} days after its own end"
                if follow
                else f", as it stood on its last day ({_day(stood)}), just as this period is counted on its own last day"
            )
            + ": requests closed after that count as still open.",
            f"- **Requests:** {c.volume:,} against {p.volume:,} ({_rel(c.volume, p.volume)}): {say(v['volume'])}.",
            f"- **Median days to close** (open requests counted as still waiting): "
            f"{_wait(c.median, p.median, v['median'], say)} 90th percentile: "
            f"{_wait(c.p90, p.p90, v['p90'], say, 'fewer than 9 in 10 requests have closed')}",
        ]
        if c.due or p.due:
            lines.append(
                f"- **On time** (requests due in the period, closed late or still open count as missed): "
                f"{_pct(c.share)} of {c.due:,} against {_pct(p.share)} of {p.due:,}"
                + (
                    f" ({_pct(self.previous_share_at_current_mix)} at this period's mix of request types)"
                    if self.previous_share_at_current_mix is not None
                    else ""
                )
                + f": {say(v['on_time']) if c.due and p.due else 'not judged: nothing was due in one of the two'}."
            )
        else:  # no due dates and no targets: a fact of the data, not a verdict
            lines.append("- **On time:** no request in either period had a due date or a service-level target, "
                         "so there is no on-time share.")  # fmt: skip
        closed_only = f"- *{self.rules['time_to_close']['closed_only_label'].capitalize()}:* median " + (
            f"{_days(c.closed_only_median)} against {_days(p.closed_only_median)} days"
        )
        if c.closed_only_on_time is not None or p.closed_only_on_time is not None:
            closed_only += f"; on time {_pct(c.closed_only_on_time)} against {_pct(p.closed_only_on_time)}"
        lines.append(closed_only + ".")
        moved = self.by_type[self.by_type["volume verdict"] == "changed"]
        if unjudged:
            lines.append(f"- **By request type:** {unjudged}.")
        elif len(moved):
            up = moved.sort_values("volume change").iloc[-1]
            down = moved.sort_values("volume change").iloc[0]
            if up["volume change"] > 0:
                lines.append(
                    f"- **Largest rise beyond normal variation:** {up.name}, {int(up['volume change']):+,} "
                    f"requests ({int(up['volume before']):,} to {int(up['volume now']):,})."
                )
            if down["volume change"] < 0:
                lines.append(
                    f"- **Largest fall beyond normal variation:** {down.name}, {int(down['volume change']):+,} "
                    f"requests ({int(down['volume before']):,} to {int(down['volume now']):,})."
                )
        else:
            lines.append("- **By request type:** no type's volume changed beyond normal variation.")
        return "\n".join(lines)

    def type_table(self) -> pd.DataFrame:
        """Waits by request type for the page: Kaplan-Meier medians now and before, the closed requests
        behind them and the verdict, slowest first; a type with fewer than `min_closed_to_compare`
        closed requests in either period is marked "too few to compare" and listed last, never ranked."""
        t = self.by_type.assign(
            closed=self.by_type[["closed now", "closed before"]].min(axis=1),
            verdict=self.by_type.get("median verdict", self.by_type["median note"]),
        )  # fmt: skip
        ranked = stats.rank_with_minimum(t, "median now", "closed", self.rules["min_closed_to_compare"],
                                         self.rules["noise"]["too_few_label"])  # fmt: skip
        shown = pd.DataFrame({
            "Requests": ranked["volume now"].astype(int),
            "Closed by now": ranked["closed now"].astype(int),
            "Median days (open counted as waiting)": ranked["median now"].round(1),
            "Requests before": ranked["volume before"].astype(int),
            "Closed by then": ranked["closed before"].astype(int),
            "Median days before": ranked["median before"].round(1),
            "Median change": ranked["verdict"],
        })  # fmt: skip
        return shown.rename_axis("Request type")


def period_dates(period: Period) -> str:
    """A period's dates, one way everywhere: "1 Jul to 30 Sep 2025", "15 Dec 2024 to 14 Jan 2025", "3 Jul 2025"."""
    first, last = period.start, period.last_day
    if first == last:
        return _day(first)
    if first.year == last.year:
        return f"{first.day} {first:%b} to {_day(last)}"
    return f"{_day(first)} to {_day(last)}"


def _day(day) -> str:
    return f"{day.day} {day:%b %Y}"


def _rel(now: float, before: float) -> str:
    return f"{(now - before) / before:+.1%}" if before else "no earlier requests"


def _wait(now: float | None, before: float | None, verdict, say, why: str = "too few requests have closed") -> str:
    """One wait against the one before and its verdict; not known yet in words, never "n/a"."""
    if now is None and before is None:
        return f"not known yet in either period ({why})."
    if now is None:
        return f"not known yet ({why}) against {_days(before)} days."
    if before is None:
        return f"{_days(now)} days against not known then ({why})."
    return f"{_days(now)} against {_days(before)}: {say(verdict)}."


def _days(value: float | None) -> str:
    return "not yet known (too few requests have closed)" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "none due" if value is None else f"{value:.1%}"


def _say(verdict: stats.Verdict) -> str:
    if verdict.changed:
        return "a change beyond normal variation"
    return "not judged: too few requests have closed" if verdict.reason == "not yet estimable" else verdict.reason


def _source(dataset: str, start: dt.date, end: dt.date, neighborhood: str | None = None):
    """A DuckDB connection with a table `rows` of the requests created in [start, end) (in the
    neighborhood), from parquet or a database alike (`citykit.connect`: nothing pasted into SQL). For a
    neighborhood the rows are read once into memory, as four queries use them (a small share of the
    city); the whole city's stay a view, read by each query, so memory does not grow with the city
    (a view too under `CITYKIT_NO_CACHE=1`, the plain path). A cursor on the process' shared database
    (`connect(shared=True)`) whose relations are TEMP ones, its own: the caller closes it."""
    con = connect(dataset, period=Period("window", start, end), neighborhood=neighborhood, shared=True)
    kind = "TEMP VIEW" if neighborhood is None or os.environ.get(stats.NO_CACHE_ENV) else "TEMP TABLE"
    try:
        con.execute(
            f"CREATE {kind} rows AS SELECT created_at, closed_at, due_at, status, request_type, neighborhood, "
            "is_duplicate, flag_closed_before_created, flag_placeholder_date FROM service_requests"
        )
    except BaseException:
        con.close()
        raise
    return con


def compare_periods(dataset: str, period: str | Period, neighborhood: str | None = None) -> Comparison:
    """The current period against the previous one under `metrics.yml` `comparisons`."""
    ds = registry.get(dataset)
    metrics = load_metrics()
    rules = stats.rules()
    noise = rules["noise"]
    current = parse_period(period, as_of=ds.as_of)
    now = pd.Timestamp(ds.now)
    follow_up = now - pd.Timestamp(current.end)
    periods = [*current.history(int(noise["history_periods"])), current]  # oldest first; [-2] is the previous
    cutoffs = [min(pd.Timestamp(p.end) + follow_up, now) for p in periods]
    con = _source(dataset, periods[0].start - dt.timedelta(days=LOOKBACK_DAYS), current.end, neighborhood)
    sla = metrics["sla_days"]
    con.register("sla_targets", pd.DataFrame({"request_type": list(sla), "sla_days": [int(d) for d in sla.values()]}))
    con.register("periods", pd.DataFrame({
        "idx": range(len(periods)), "p_start": [pd.Timestamp(p.start) for p in periods],
        "p_end": [pd.Timestamp(p.end) for p in periods], "cutoff": cutoffs,
    }))  # fmt: skip
    place = "true"  # the neighborhood is selected in `rows`
    ttc = metrics["time_to_close"]
    counted = " AND ".join([
        "status NOT IN (" + ", ".join(f"'{s}'" for s in ttc["exclude"]["statuses"]) + ")",
        *(["NOT is_duplicate"] if ttc["exclude"]["duplicates"] else []),
        *(f"NOT {flag}" for flag in ttc["exclude"]["flags"]),
        "NOT (status IN (" + ", ".join(f"'{s}'" for s in ttc["closed_statuses"]) + ") AND closed_at IS NULL)",
    ])  # fmt: skip
    volume = con.sql(f"""
        SELECT idx, request_type, count(*) AS n FROM rows JOIN periods ON created_at >= p_start AND created_at < p_end
        WHERE NOT is_duplicate AND {place} GROUP BY ALL""").df()
    due = con.sql(f"""
        WITH d AS (SELECT *, coalesce(due_at, created_at + to_days(sla_days)) AS due
                   FROM rows LEFT JOIN sla_targets USING (request_type) WHERE {counted} AND {place})
        SELECT idx, request_type, count(*) AS due, count(*) FILTER (WHERE closed_at <= due) AS on_time
        FROM d JOIN periods ON due >= p_start AND due < p_end AND due < cutoff GROUP BY ALL""").df()
    figures = [_figures(con, periods[i], cutoffs[i], volume, due, i, counted, place) for i in (-2, -1)]
    con.close()  # the cursor's TEMP rows go with it
    waits = figures_waits = [f.pop("waits") for f in figures]
    previous, current_f = (Figures(**f) for f in figures)
    n = len(periods)
    history = [i for i in range(n - 1)
               if volume.loc[volume["idx"] == i, "n"].sum() > 0]  # past periods the data cover  # fmt: skip
    by_type_due = [due[due["idx"] == i].set_index("request_type")[["due", "on_time"]] for i in (n - 2, n - 1)]
    at_mix = stats.mix_adjusted_share(*by_type_due)
    min_change = noise["min_change"]
    within = noise["within_label"]
    days = current.days
    vol_hist = volume[volume["idx"].isin(history)].groupby("idx")["n"].sum().reindex(history, fill_value=0)
    vol_limits = (
        stats.laney_limits(vol_hist, [days] * len(vol_hist), days, "u", noise["sigma"]) if len(vol_hist) >= 2 else None
    )
    due_hist = due[due["idx"].isin(history)].groupby("idx")[["due", "on_time"]].sum()
    share_limits = (stats.laney_limits(due_hist["on_time"], due_hist["due"], max(current_f.due, 1), "p", noise["sigma"])
                    if len(due_hist) >= 2 and current_f.due else None)  # fmt: skip
    common = dict(within=within, history=len(history), min_history=int(noise["min_history"]))
    verdicts = {
        "volume": stats.judge(current_f.volume / days, previous.volume / days, vol_limits, min_change["volume_relative"],
                              relative=True, min_absolute=min_change["volume_requests"] / days, **common),
        "on_time": stats.judge(current_f.share or 0.0, at_mix if at_mix is not None else (previous.share or 0.0),
                               share_limits, min_change["share_points"], relative=False, **common)
        if current_f.share is not None and previous.share is not None else stats.Verdict(False, "nothing due to compare"),
    }  # fmt: skip
    by_type = _by_type(volume, waits, history, n, days, rules, common)
    m = max(int((by_type["median note"] == "").sum()), 1)
    verdicts["median"], verdicts["p90"] = _median_verdicts(  # one set of bootstrap draws for both
        waits[1], waits[0], (current_f.median, current_f.p90), (previous.median, previous.p90), rules, 1, (0.5, 0.9)
    )
    if m:
        by_type["median verdict"] = [
            _median_verdict(waits[1][waits[1]["request_type"] == t], waits[0][waits[0]["request_type"] == t],
                            row["median now"], row["median before"], rules, m).reason if row["median note"] == "" else row["median note"]
            for t, row in by_type.iterrows()
        ]  # fmt: skip
    del figures_waits
    return Comparison(dataset, current_f, previous, at_mix, verdicts, by_type, len(history), rules)


def _figures(con, period: Period, cutoff: pd.Timestamp, volume, due, idx: int, counted: str, place: str) -> dict:
    idx = idx % len(con.sql("SELECT * FROM periods").df())
    rows = con.sql(f"""
        SELECT created_at, closed_at, request_type, coalesce(due_at, created_at + to_days(sla_days)) AS due
        FROM rows LEFT JOIN sla_targets USING (request_type)
        WHERE {counted} AND {place} AND created_at >= TIMESTAMP '{period.start}' AND created_at < TIMESTAMP '{period.end}'
    """).df()
    w = stats.waits(rows, cutoff)
    w["request_type"] = rows["request_type"].to_numpy()
    q = stats.km_quantiles(w["days"], w["closed"])
    closed = w["closed"].to_numpy()
    due_at = pd.to_datetime(rows["due"])
    with_due = closed & due_at.notna().to_numpy()  # a request with no due date and no target for its type is left out
    on_time_closed = (pd.to_datetime(rows["closed_at"]) <= due_at).to_numpy()[with_due]
    d = due[due["idx"] == idx]
    return dict(
        period=period, cutoff=cutoff, volume=int(volume.loc[volume["idx"] == idx, "n"].sum()), waiting=len(w),
        closed=int(closed.sum()), median=q[0.5], p90=q[0.9],
        closed_only_median=float(np.median(w["days"][closed])) if closed.any() else None,
        due=int(d["due"].sum()), on_time=int(d["on_time"].sum()),
        closed_only_on_time=float(on_time_closed.mean()) if len(on_time_closed) else None, waits=w,
    )  # fmt: skip


def _median_verdict(now: pd.DataFrame, before: pd.DataFrame, median_now, median_before, rules, comparisons: int,
                    p: float = 0.5):  # fmt: skip
    return _median_verdicts(now, before, (median_now,), (median_before,), rules, comparisons, (p,))[0]


def _median_verdicts(now: pd.DataFrame, before: pd.DataFrame, medians_now, medians_before, rules, comparisons: int,
                     probs: tuple[float, ...]) -> list[stats.Verdict]:  # fmt: skip
    """The verdict on each p-quantile's change (p in `probs`, its values now and before given in the
    same order), from one set of bootstrap draws: each as a bootstrap for that p alone would judge it."""
    noise = rules["noise"]
    minimum = rules["min_closed_to_compare"]
    if now["closed"].sum() < minimum or before["closed"].sum() < minimum:
        return [stats.Verdict(False, noise["too_few_label"]) for _ in probs]
    level = 1 - (1 - noise["medians"]["confidence"]) / comparisons  # Bonferroni over the types compared
    known = tuple(
        p for p, a, b in zip(probs, medians_now, medians_before, strict=True) if a is not None and b is not None
    )
    intervals = stats.bootstrap_quantile_differences(now, before, int(noise["medians"]["replicates"]), level,
                                                     int(noise["medians"]["seed"]), known) if known else {}  # fmt: skip
    verdicts = []
    for p, median_now, median_before in zip(probs, medians_now, medians_before, strict=True):
        if p not in intervals or intervals[p][0] is None:
            verdicts.append(stats.Verdict(False, "not yet estimable"))
            continue
        low, high = intervals[p]
        practical = abs(median_now - median_before) >= noise["min_change"]["days_relative"] * median_before
        if (low > 0 or high < 0) and practical:
            verdicts.append(stats.Verdict(True, f"changed ({low:+.1f} to {high:+.1f} days, {level:.1%} interval)"))
        else:
            verdicts.append(stats.Verdict(False, noise["within_label"]))
    return verdicts


def _by_type(volume, waits, history, n, days, rules, common) -> pd.DataFrame:
    noise = rules["noise"]
    table = volume.pivot_table(index="request_type", columns="idx", values="n", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=range(n), fill_value=0)
    out = pd.DataFrame({"volume now": table[n - 1], "volume before": table[n - 2]})
    out["volume change"] = out["volume now"] - out["volume before"]
    verdicts = []
    for _type, row in table.iterrows():
        past = row[history]
        limits = (
            stats.laney_limits(past, [days] * len(past), days, "u", noise["sigma"])
            if len(past) >= 2 and past.sum()
            else None
        )
        v = stats.judge(row[n - 1] / days, row[n - 2] / days, limits, noise["min_change"]["volume_relative"], relative=True,
                        min_absolute=noise["min_change"]["volume_requests"] / days, **common)  # fmt: skip
        verdicts.append("changed" if v.changed else v.reason)
    out["volume verdict"] = verdicts
    minimum = rules["min_closed_to_compare"]
    for label, w in (("now", waits[1]), ("before", waits[0])):
        med = {t: stats.km_quantiles(g["days"], g["closed"], (0.5,))[0.5] for t, g in w.groupby("request_type")}
        closed = w.groupby("request_type")["closed"].sum()
        out[f"median {label}"] = pd.Series(med).reindex(out.index)
        out[f"closed {label}"] = closed.reindex(out.index, fill_value=0).astype(int)
    enough = (out["closed now"] >= minimum) & (out["closed before"] >= minimum)
    out["median note"] = np.where(enough, "", noise["too_few_label"])
    return out.sort_values("volume now", ascending=False)
