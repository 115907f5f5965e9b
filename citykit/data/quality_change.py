"""The quality checks of the latest period's requests against the period before, judged by the
"what changed" rules.

    change = compare_quality("riverton")             # the latest whole month at the as-of date
    change.now["placeholder_coords"], change.before["placeholder_coords"], change.verdicts[...]

Each share check of the service-requests scorecard (`quality.scorecard`, the same checks and
gates) is scored on the requests created in the period, in the period before and in the
`history_periods` before that (`metrics.yml` `comparisons.noise`). The verdict follows the rule
that the service report's key figures use for shares (`comparisons.judge`): a change only past
Laney p' control limits from the past periods and past the minimum practical change
(`min_change.share_points`). Checks measured in days (staleness) and the timeliness checks need
the as-of date of the whole dataset, and checks across the whole table (`WHOLE_TABLE`: a
duplicate's parent may be in an earlier period), are not compared. Rows are read through
`citykit.connect`, so a database dataset works too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from citykit.data import comparisons as stats
from citykit.data import registry
from citykit.data.periods import Period, latest_complete, parse_period
from citykit.data.views import connect

# checks that look across the whole table (a parent or an id in another period): not scored per period
WHOLE_TABLE = ("duplicate_missing_parent", "duplicate_request_id", "type_spelling_variants")


@dataclass(frozen=True)
class QualityChange:
    period: Period  # the period compared (the latest whole month unless one is given)
    previous: Period
    now: dict[str, float]  # check name -> share of the period's requests failing it (of those it applies to)
    before: dict[str, float]
    rows: dict[str, int]  # check name -> requests it applies to in the period
    verdicts: dict[str, stats.Verdict]
    history: int  # past periods behind the control limits
    rows_before: dict[str, int] = field(
        default_factory=dict
    )  # check name -> requests it applies to in the period before


def compare_quality(dataset: str, period: str | Period | None = None) -> QualityChange:
    """The service-requests checks of `period` (default: the latest whole month) against the period before."""
    from citykit.data import quality  # quality imports the loaders; kept off this module's import

    ds = registry.get(dataset)
    noise = stats.rules()["noise"]
    current = parse_period(period, as_of=ds.as_of) if period is not None else latest_complete("month", ds.as_of)
    periods = [*current.history(int(noise["history_periods"])), current]  # oldest first; [-2] is the previous
    con = connect(dataset, period=Period("compared", periods[0].start, current.end))
    rows = con.sql("SELECT * FROM service_requests").df()
    con.close()
    shapes = quality.boundaries(dataset)
    known = None
    if ds.has("neighborhoods"):
        known = quality.load("neighborhoods", dataset=dataset)["neighborhood"].dropna().tolist()
    bounds = quality.city_bounds(shapes) if shapes is not None else None
    created = pd.to_datetime(rows["created_at"])
    scores: dict[str, list[tuple[int, int]]] = {}
    for p in periods:
        inside = rows[(created >= pd.Timestamp(p.start)) & (created < pd.Timestamp(p.end))]
        card = quality.scorecard(inside, "service_requests", None, bounds=bounds, neighborhoods=known)
        for check in card.checks:
            if check.value is None and check.name not in WHOLE_TABLE:  # a share check of the period's own rows
                scores.setdefault(check.name, []).append((check.failing, check.rows))
    n = len(periods)
    now, before, applies, applied_before, verdicts = {}, {}, {}, {}, {}
    history = 0
    for name, counts in scores.items():
        failing = [f for f, _ in counts]
        sizes = [r for _, r in counts]
        past = [i for i in range(n - 1) if sizes[i] > 0]  # past periods the data cover
        history = max(history, len(past))
        now[name] = failing[-1] / sizes[-1] if sizes[-1] else None
        before[name] = failing[-2] / sizes[-2] if sizes[-2] else None
        applies[name], applied_before[name] = sizes[-1], sizes[-2]
        if now[name] is None or before[name] is None:
            verdicts[name] = stats.Verdict(False, "no records to compare")
            continue
        verdicts[name] = stats.share_verdict(now[name], before[name], [failing[i] for i in past],
                                             [sizes[i] for i in past], sizes[-1])  # fmt: skip
    return QualityChange(current, periods[-2], now, before, applies, verdicts, history, applied_before)
