"""Disaggregation under the published standard: categories, counts, rates, intervals, disparities.

Everything follows `curriculum/standards/disaggregation.yml` (`citykit.standards`):
- SPD-15 presentations from the multi-select indicator columns: `race_alone` (each person once;
  two or more categories -> Multiracial and/or Multiethnic) and `race_alone_or_in_combination`
  (each person in every category selected, so counts sum past the total);
- `disaggregate` gives a tidy table of counts, rates and Wilson intervals with small counts
  suppressed (primary and complementary), unstable rates flagged, and the footnotes to print;
- `rate_ratio`, `disproportionality_index` and `disparities` compare groups with 95% intervals
  and a stated multiple-comparison correction.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from citykit.errors import CitykitError
from citykit.standards import DisaggregationStandard, load_disaggregation, suppression
from citykit.standards.releases import PEOPLE

RACE_ALONE = "race_alone"  # virtual `by` keys for disaggregate()
RACE_IN_COMBINATION = "race_in_combination"
RACE_COLUMN = "race_ethnicity"
GENDER_COLUMN = "gender"  # categories: the standard's `gender.categories`, every one a row

CORRECTION_LABELS = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}


# -- SPD-15 presentations ----------------------------------------------------------------------


def _table(df, function: str, argument: str = "df", what: str = "people's records") -> None:
    """One line naming the argument when a function gets something else than a table (a DataFrame)."""
    if not isinstance(df, pd.DataFrame):
        raise CitykitError(f"{function}: {argument} must be a table (a DataFrame) of {what}, got {type(df).__name__}")


def race_alone(df: pd.DataFrame, *, standard: DisaggregationStandard | None = None) -> pd.Series:
    """Each person's one "alone" category: a categorical Series aligned with `df`.

    One category selected -> that category; two or more -> Multiracial and/or Multiethnic (also
    rows whose categories k-anonymity generalised away: the seven indicators <NA>); none selected
    -> Declined if race_declined, otherwise Not reported. Counts sum to the number of people.
    Values are the standard's labels, in its order.
    """
    _table(df, "race_alone")
    std = standard or load_disaggregation()
    codes = [c.code for c in std.race_categories]
    selected = _indicators(df, codes)
    generalised = df[[f"race_{c}" for c in codes]].isna().all(axis=1).to_numpy()
    n_selected = selected.sum(axis=1)
    declined = _flag(df, f"race_{std.declined.code}")
    labels = std.race_labels
    first = np.array([labels[c] for c in codes], dtype=object)[selected.argmax(axis=1)]
    values = np.select(
        [n_selected == 1, (n_selected >= 2) | generalised, declined],
        [first, labels[std.multiracial.code], labels[std.declined.code]],
        default=labels[std.not_reported.code],
    )
    return pd.Series(pd.Categorical(values, categories=list(labels.values())), index=df.index, name=RACE_COLUMN)


def race_alone_or_in_combination(df: pd.DataFrame, *, standard: DisaggregationStandard | None = None) -> pd.Series:
    """Each person once per category selected: a long categorical Series indexed by `df`'s index.

    People with no category appear once as Declined or Not reported; people whose categories
    k-anonymity generalised away appear once as Multiracial and/or Multiethnic. Counts sum past
    the number of people whenever anyone selected two or more categories.
    """
    _table(df, "race_alone_or_in_combination")
    std = standard or load_disaggregation()
    codes = [c.code for c in std.race_categories]
    labels = std.race_labels
    selected = _indicators(df, codes)
    rows, cats = np.nonzero(selected)
    alone = race_alone(df, standard=std)
    without = ~selected.any(axis=1)
    index = np.concatenate([rows, np.nonzero(without)[0]])
    values = np.concatenate(
        [np.array([labels[c] for c in codes], dtype=object)[cats], alone.to_numpy(dtype=object)[without]]
    )
    order = np.argsort(index, kind="stable")
    return pd.Series(
        pd.Categorical(values[order], categories=list(labels.values())),
        index=df.index[index[order]],
        name=RACE_COLUMN,
    )


def single_select(
    df: pd.DataFrame, population: Mapping[str, float] | None = None, *, standard: DisaggregationStandard | None = None
) -> pd.Series:
    """One category per person for systems that take one value (DataSF's rule in the standard):
    Hispanic or Latino if selected, else the largest selected group other than White (by
    `population`, code -> citywide "alone" count; ties and missing population in the standard's
    order), else White; people with none selected keep Declined / Not reported."""
    std = standard or load_disaggregation()
    codes = [c.code for c in std.race_categories]
    population = population or {}
    ranking = sorted(
        (c for c in codes if c not in ("hispanic", "white")),
        key=lambda c: (-float(population.get(c, 0)), codes.index(c)),
    )
    priority = ["hispanic", *ranking, "white"]
    selected = pd.DataFrame(_indicators(df, codes), columns=codes, index=df.index)
    result = race_alone(df, standard=std).astype(object)
    chosen = pd.Series(pd.NA, index=df.index, dtype=object)
    for code in reversed(priority):
        chosen = chosen.mask(selected[code], std.race_labels[code])
    result = result.where(chosen.isna(), chosen)
    return pd.Series(
        pd.Categorical(result, categories=list(std.race_labels.values())), index=df.index, name=RACE_COLUMN
    )


def _indicators(df: pd.DataFrame, codes: Sequence[str]) -> np.ndarray:
    missing = [f"race_{c}" for c in codes if f"race_{c}" not in df.columns]
    if missing:
        raise CitykitError(f"race and ethnicity indicator columns missing: {', '.join(missing)}")
    return df[[f"race_{c}" for c in codes]].fillna(False).astype(bool).to_numpy()


def _flag(df: pd.DataFrame, column: str) -> np.ndarray:
    if column not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df[column].fillna(False).astype(bool).to_numpy()


# -- intervals and comparisons -----------------------------------------------------------------


def wilson_interval(events, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for events / n (statsmodels `proportion_confint`); NaN where n == 0."""
    from statsmodels.stats.proportion import proportion_confint

    events = np.asarray(events, dtype=float)
    n = np.asarray(n, dtype=float)
    safe_n = np.where(n > 0, n, 1.0)
    low, high = proportion_confint(events, safe_n, alpha=1 - confidence, method="wilson")
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


@dataclass(frozen=True)
class Ratio:
    """A ratio with its interval and a two-sided p-value for "no difference" (ratio 1)."""

    estimate: float
    low: float
    high: float
    p_value: float
    corrected: bool = False  # 0.5 put in empty cells (proportions) or added to both counts (rates)
    method: str = ""  # "log" (Katz), "score" (Koopman) or "wald-log" (Poisson)


NO_RATIO = Ratio(math.nan, math.nan, math.nan, math.nan)


def _said(value) -> str:
    """A value as a message shows it: 0.6977 or 1,204, not np.float64(0.6977491961414791)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        x = float(value)
        if math.isfinite(x) and x == int(x):
            return f"{int(x):,}"
        if math.isfinite(x) and 0.001 <= abs(x) < 1e6:
            return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.1f}"
    return repr(value)


def _whole(value, name: str) -> int:
    """A count of people or events: a whole number ≥ 0 (a rate passed by mistake fails here)."""
    if isinstance(value, (pd.Series, pd.DataFrame, np.ndarray, list, tuple)):
        raise CitykitError(
            f"{name} must be a count (a whole number ≥ 0), got a {type(value).__name__} of {len(value)} values; "
            "pass one number, such as .sum() of a True/False column or len(...) of a group"
        )
    if hasattr(value, "estimate"):
        raise CitykitError(f"{name} must be a count (a whole number ≥ 0), got a {type(value).__name__} result")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CitykitError(f"{name} must be a count (a whole number ≥ 0), got {_said(value)}") from None
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise CitykitError(
            f"{name} must be a count (a whole number ≥ 0), got {_said(value)}; pass counts, not rates or shares"
        )
    return int(number)


def _amount(value, name: str) -> None:
    """An exposure or a population: a number ≥ 0 (people, residents, person-time), not a Series or text."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or value < 0
    ):
        raise CitykitError(f"{name} must be a number ≥ 0 (people, residents, person-time), got {_said(value)}")


def proportion_ratio(a, n_a, b, n_b, confidence: float | None = None, method: str | None = None) -> Ratio:
    """Ratio of two proportions, a/n_a over the reference b/n_b (a share of people: approvals of
    decided applications, requests closed on time), with its interval and p-value.

    `method` "log" (Katz): exp(ln RR ± z·√(1/a − 1/n_a + 1/b − 1/n_b)) and the matching Wald test,
    as statsmodels `confint_proportions_2indep(..., compare="ratio", method="log")`; "score"
    (Koopman): statsmodels' score interval and test without the small-sample correction. Default:
    the standard's method, its small-group method when either group is smaller than its
    `small_group_below`.

    Empty cells (the standard's `zero_cells` rule): with the log method, a 2×2 table with an
    empty cell (a = 0, a = n_a, b = 0 or b = n_b) gets 0.5 in each empty cell, as statsmodels
    Table2x2 does (`corrected=True`); no event in either group gives no ratio (NaN); the score
    interval needs no correction, except when both groups have the event for everyone, where the
    corrected log interval is used. Counts are validated: 0 ≤ a ≤ n_a, whole numbers.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    rules = load_disaggregation().disparity
    confidence = rules.confidence if confidence is None else confidence
    a, n_a, b, n_b = (_whole(v, name) for v, name in ((a, "a"), (n_a, "n_a"), (b, "b"), (n_b, "n_b")))
    for events, n, name in ((a, n_a, "a"), (b, n_b, "b")):
        if events > n:
            raise CitykitError(
                f"{name} = {events} is more than its group of {n}: pass events and group sizes (0 ≤ a ≤ n)"
            )
    if n_a == 0 or n_b == 0 or (a == 0 and b == 0):
        return NO_RATIO
    if method is None:
        small = min(n_a, n_b) < rules.small_group_below
        method = rules.small_group_method if small else rules.proportion_method
    if method not in ("log", "score"):
        raise CitykitError(f"proportion_ratio method must be 'log' or 'score', got {method!r}")
    alpha = 1 - confidence
    if method == "score" and not (a == n_a and b == n_b):
        low, high = confint_proportions_2indep(
            a, n_a, b, n_b, method="score", compare="ratio", alpha=alpha, correction=False
        )
        test = test_proportions_2indep(a, n_a, b, n_b, method="score", compare="ratio", correction=False)
        estimate = (a / n_a) / (b / n_b) if b else math.inf
        low = 0.0 if a == 0 else max(float(np.real(low)), 0.0)
        return Ratio(float(estimate), low, float(np.real(high)), float(test.pvalue), False, "score")
    corrected = 0 in (a, n_a - a, b, n_b - b)
    if corrected:  # 0.5 in each empty cell of the 2×2 table
        a_, b_ = (a or 0.5), (b or 0.5)
        n_a_ = a_ + ((n_a - a) or 0.5)
        n_b_ = b_ + ((n_b - b) or 0.5)
    else:
        a_, n_a_, b_, n_b_ = a, n_a, b, n_b
    low, high = confint_proportions_2indep(a_, n_a_, b_, n_b_, method="log", compare="ratio", alpha=alpha)
    test = test_proportions_2indep(a_, n_a_, b_, n_b_, method="log", compare="ratio")
    estimate = (a_ / n_a_) / (b_ / n_b_)
    return Ratio(float(estimate), float(low), float(high), float(test.pvalue), corrected, "log")


def rate_ratio(events_a, exposure_a, events_b, exposure_b, confidence: float | None = None) -> Ratio:
    """Rate of group A (events_a over exposure_a, e.g. requests over residents) over the reference
    B: Poisson counts, the log-method interval exp(ln RR ± z·√(1/a + 1/b)) and the matching Wald
    test (statsmodels `confint_poisson_2indep` / `test_poisson_2indep`, method "wald-log").

    For a share of people (approvals of decided applications) use `proportion_ratio`: this
    interval ignores that a group's events cannot exceed its size and is too wide for shares.
    311 counts are overdispersed, so these intervals are a floor. Zero events: if one count is
    zero, 0.5 is added to both (Haldane–Anscombe, `corrected=True`); if both are zero, or an
    exposure is zero, everything is NaN. Events must be whole numbers ≥ 0, exposures > 0.
    """
    from statsmodels.stats.rates import confint_poisson_2indep, test_poisson_2indep

    confidence = load_disaggregation().disparity.confidence if confidence is None else confidence
    a, b = _whole(events_a, "events_a"), _whole(events_b, "events_b")
    for value, name in ((exposure_a, "exposure_a"), (exposure_b, "exposure_b")):
        _amount(value, name)
    if exposure_a <= 0 or exposure_b <= 0 or (a == 0 and b == 0):
        return NO_RATIO
    corrected = a == 0 or b == 0
    a_, b_ = (a + 0.5, b + 0.5) if corrected else (a, b)
    low, high = confint_poisson_2indep(
        a_, exposure_a, b_, exposure_b, method="wald-log", compare="ratio", alpha=1 - confidence
    )
    test = test_poisson_2indep(a_, exposure_a, b_, exposure_b, method="wald-log", compare="ratio")
    estimate = (a_ / exposure_a) / (b_ / exposure_b)
    return Ratio(float(estimate), float(low), float(high), float(test.pvalue), corrected, "wald-log")


def disproportionality_index(
    events_group: float,
    events_total: float,
    benchmark_group: float,
    benchmark_total: float,
    confidence: float | None = None,
) -> Ratio:
    """A group's share of the outcome ÷ its share of the benchmark population.

    Interval: the Wilson interval of the outcome share divided by the benchmark share (the
    benchmark, e.g. census population, is taken as known). p-value: exact binomial test of the
    outcome share against the benchmark share (scipy `binomtest`).
    """
    from scipy.stats import binomtest

    confidence = load_disaggregation().disparity.confidence if confidence is None else confidence
    group, total = _whole(events_group, "events_group"), _whole(events_total, "events_total")
    if group > total:
        raise CitykitError(
            f"events_group = {group} is more than events_total = {total}: pass the group's events and all events"
        )
    for value, name in ((benchmark_group, "benchmark_group"), (benchmark_total, "benchmark_total")):
        _amount(value, name)
    if benchmark_group > benchmark_total:
        raise CitykitError(
            f"benchmark_group = {_said(benchmark_group)} is more than benchmark_total = {_said(benchmark_total)}: "
            "pass the group's population and the whole population"
        )
    if events_total <= 0 or benchmark_total <= 0 or benchmark_group <= 0:
        return Ratio(math.nan, math.nan, math.nan, math.nan)
    share = benchmark_group / benchmark_total
    low, high = wilson_interval(events_group, events_total, confidence)
    p_value = binomtest(int(events_group), int(events_total), min(share, 1.0)).pvalue
    return Ratio((events_group / events_total) / share, float(low) / share, float(high) / share, float(p_value))


def adjust_p_values(p_values: Sequence[float], method: str | None = None) -> np.ndarray:
    """Multiple-comparison adjusted p-values (statsmodels `multipletests`; method from the standard).
    NaN p-values are left out of the family and stay NaN."""
    from statsmodels.stats.multitest import multipletests

    method = method or load_disaggregation().disparity.correction
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    if present.any():
        adjusted[present] = multipletests(p[present], method=method)[1]
    return adjusted


def format_ratio(value: float, digits: int = 2) -> str:
    """A ratio as shown: 2 decimals, 3 when 2 would print a value on the standard's screening
    thresholds (0.8, 1.25) that is not exactly there (0.8008 is "0.801", not "0.80")."""
    if value is None or pd.isna(value):
        return ""
    rules = load_disaggregation().disparity
    text = f"{value:.{digits}f}"
    for edge in (rules.notable_below, rules.notable_above):
        if float(text) == round(edge, digits) and value != edge:
            return f"{value:.{digits + 1}f}"
    return text


# -- the tidy disaggregated table --------------------------------------------------------------


@dataclass
class DisaggregatedTable:
    """A published breakdown: `data` holds the published values (suppressed entries <NA>), flags
    and intervals; `footnotes` the notes every display prints; `tables` the count grids the
    suppression audit checks (`audit()`)."""

    data: pd.DataFrame
    by: list[str]
    footnotes: list[str]
    standard_version: str
    title: str = ""
    tables: list[suppression.PublishedTable] = field(default_factory=list, repr=False)
    suppression_mark: str = "≤10"
    per: float = 1.0
    measure: str | None = None
    complementary_mark: str = "†"
    pools: dict[str, list[str]] = field(default_factory=dict)  # "Other groups" -> the groups pooled into it
    relations: list[suppression.Relation] = field(default_factory=list, repr=False)  # between `tables`
    note: str = ""  # why a comparison could not be made (e.g. the reference group's outcome is hidden)

    def audit(self) -> suppression.AuditReport:
        """The suppression audit of every table published with this one, with the relations between them."""
        return suppression.audit(self.tables, self.relations)

    def display_frame(self) -> pd.DataFrame:
        """Strings as shown: "≤10" for suppressed counts, "—" for suppressed rates, "*" unstable."""
        d = self.data
        shown = pd.DataFrame(index=d.index)
        for column in self.by:
            shown[column] = d[column].astype(str)
        for column in ("n", "events", "denominator"):
            if column in d.columns:
                flag = d.get(f"{column}_suppressed", pd.Series(False, index=d.index))
                marks = d.get(f"{column}_mark", pd.Series(self.suppression_mark, index=d.index))
                shown[column] = [
                    (m or self.suppression_mark) if s else ("" if pd.isna(v) else f"{int(v):,}")
                    for v, s, m in zip(d[column], flag, marks)
                ]
        if "rate" in d.columns:
            shown["rate"] = [
                "—" if s or pd.isna(r) else f"{r * self.per:,.1f}{'*' if u else ''}"
                for r, s, u in zip(d["rate"], d["rate_suppressed"], d["unstable"])
            ]
            shown["95% interval"] = [
                "" if s or pd.isna(lo) else f"{lo * self.per:,.1f}–{hi * self.per:,.1f}"
                for lo, hi, s in zip(d["rate_low"], d["rate_high"], d["rate_suppressed"])
            ]
        if "rate_ratio" in d.columns:
            fmt = format_ratio
            kind = d["ratio_kind"].iloc[0] if "ratio_kind" in d.columns and len(d) else "rate"
            label = "ratio of proportions" if kind == "proportion" else "rate ratio"
            shown[label] = [fmt(v) for v in d["rate_ratio"]]
            shown["95% interval"] = [
                "" if pd.isna(lo) else f"{fmt(lo)}–{fmt(hi)}" for lo, hi in zip(d["rr_low"], d["rr_high"])
            ]
            shown["corrected p"] = ["" if pd.isna(p) else f"{p:.3g}" for p in d["rr_p_adjusted"]]
            if "adverse_ratio" in d.columns:
                shown[f"{self.adverse_label} ratio"] = [fmt(v) for v in d["adverse_ratio"]]
                shown[f"{self.adverse_label} 95% interval"] = [
                    "" if pd.isna(lo) else f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(d["adverse_low"], d["adverse_high"])
                ]
            if "dp_index" in d.columns:
                shown["disproportionality"] = [fmt(v) for v in d["dp_index"]]
                shown["DI 95% interval"] = [
                    "" if pd.isna(lo) else f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(d["di_low"], d["di_high"])
                ]
            shown["notable"] = ["yes" if v else "" for v in d["notable"]]
        if self.title:  # the name of the table's CSV file and workbook sheet in a report
            shown.attrs["citykit_table"] = self.title
        return shown

    @property
    def adverse_label(self) -> str:
        program = load_disaggregation().disparity.program_for(self.measure or "")
        return program.adverse.lower() if program else "adverse"

    def to_html(self) -> str:
        title = f"<h4>{html.escape(self.title)}</h4>" if self.title else ""
        body = self.display_frame().to_html(index=False, escape=True, border=0, classes="citykit-disaggregated")
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in self.footnotes)
        return f'<div class="citykit-table">{title}{body}<ol class="footnotes">{notes}</ol></div>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        notes = "\n".join(f"{i}. {note}" for i, note in enumerate(self.footnotes, 1))
        return f"{self.title}\n{self.display_frame().to_string(index=False)}\n{notes}".strip()


def disaggregate(
    df: pd.DataFrame,
    by: Sequence[str],
    measure: str | None = None,
    denominator: pd.Series | Mapping | None = None,
    *,
    people: bool = True,
    per: float = 1.0,
    title: str = "",
    collapse: str | Sequence[str] | None = None,
    reference: str | None = None,
    alongside: DisaggregatedTable | None = None,
    standard: DisaggregationStandard | None = None,
) -> DisaggregatedTable:
    """Counts and rates by group, under the standard.

    `alongside`: for `by=["race_in_combination"]`, the "alone" table of the same people published
    on the same page (`disaggregate(df, by=["race_alone"], ...)`, pooled or not). The two are
    suppressed and audited together, with what a reader can work out from the pair
    (`suppression.combination_relations`): Declined and Not reported are the same people in both,
    a count alone is at most its count in combination, people with two or more categories add
    at least two selections, and a number hidden in one is never printed in the other. The
    `alongside` table's suppression is extended in place: display both after this call.

    `collapse`: the name(s) of allowed collapses in the standard (`privacy.collapses`), applied
    before suppression and footnoted: "small_groups_to_other" pools the race and ethnicity groups
    with fewer than its `min_n` people in a row of the table into "Other groups" (never
    `reference`, default the standard's reference group); "neighborhoods_to_districts" breaks down
    by council district instead of neighborhood.

    `by`: columns, or "race_alone" / "race_in_combination" for the SPD-15 presentations built
    from the indicator columns. `measure`: a boolean column (the events, e.g. approved); the rate
    is events / n, n the rows in the group. `denominator` (a Series or mapping keyed by the group,
    e.g. population) makes the rate events / denominator (or n / denominator without a
    measure). Rates carry Wilson intervals (shown per `per`, e.g. 1000).

    Output columns: the `by` columns, n, events (with a measure), denominator (if given), rate,
    rate_low, rate_high, unstable (20 or fewer events), and, for people, n_suppressed,
    events_suppressed, rate_suppressed. `people=False` marks a table of things (311 requests):
    nothing is suppressed. For people, counts 1–10 are suppressed with complementary suppression
    audited by linear programming; rates from suppressed counts are suppressed. An "alone or in
    combination" table is suppressed and audited together with its "alone" table.
    """
    std = standard or load_disaggregation()
    rules = std.small_cells
    by = list(by)
    if not by:
        raise CitykitError("disaggregate needs at least one column in `by`")
    if measure is not None and measure not in df.columns:
        raise CitykitError(f"measure column {measure!r} is not in the table")
    frame, notes = _with_group_columns(df, by, std)
    grouped = frame  # before the collapses: each person's own group (the release ledger's labels)
    frame, by, collapse_notes, pools = _collapse(frame, by, collapse, reference, std)
    notes += collapse_notes
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise CitykitError(f"cannot disaggregate by {', '.join(missing)}: not in the table")

    counts = _count(frame, by, measure)
    data = counts.copy()
    has_rate = measure is not None or denominator is not None
    if denominator is not None:
        key = data[by[0]] if len(by) == 1 else pd.MultiIndex.from_frame(data[by])
        data["denominator"] = pd.Series(denominator).reindex(key).to_numpy(dtype=float)
    if has_rate:
        events = data["events"] if measure is not None else data["n"]
        base = data["denominator"] if denominator is not None else data["n"]
        data["rate"] = np.where(base > 0, events / base.where(base > 0, 1), np.nan)
        low, high = wilson_interval(events, base.fillna(0), std.disparity.confidence)
        data["rate_low"], data["rate_high"] = low, high
        data["unstable"] = events <= rules.unstable_max_events

    published: list[suppression.PublishedTable] = []
    relations: list[suppression.Relation] = []
    if alongside is not None and (by != [RACE_IN_COMBINATION] or not people):
        raise CitykitError(
            'alongside= pairs an "alone or in combination" table (by=["race_in_combination"]) '
            'with the "alone" table of the same people'
        )
    if people:
        if alongside is not None:
            published, relations = _suppress_with_alone(df, counts, alongside, measure, std, title)
        elif RACE_IN_COMBINATION in by:
            published, relations = _suppress_counts(df, counts, by, measure, std, title)
        else:
            published = suppression.suppress(
                suppression.count_table(_grid(counts, by, measure), name="table", outcome_columns=_outcomes(measure)),
                standard=std,
                **_release(lambda: {"table": (_people(frame, by, measure, std, grouped), _key(by, measure))}, title),
            )
        _apply_suppression(data, published[0], _labels(counts, by), measure, denominator is not None, std)
        notes.append(rules.footnote)
        if any((t.marks(std) == rules.complementary_display).to_numpy().any() for t in published):
            notes.append(rules.complementary_footnote)
        if any((t.marks(std) == rules.withheld_display).to_numpy().any() for t in published):
            notes.append(rules.withheld_footnote)
        if measure is not None:
            notes.append(f"Outcomes of small groups: {rules.outcome_rule}")
        if alongside is not None:
            notes.append(_together_note(std))
        notes.append(f"Suppression audit: {rules.audit_not_covered}")
    else:
        if has_rate:
            data["rate_suppressed"] = False
        notes.append(std.privacy_scope)
    if has_rate and (data["unstable"] & ~data["rate_suppressed"]).any():
        notes.append(rules.unstable_footnote)
    interval = "95% Wilson score intervals. " if has_rate else ""
    notes.append(f"{interval}Standard: {std.title}, version {std.version}.")
    result = DisaggregatedTable(
        data,
        by,
        notes,
        std.version,
        title,
        published,
        rules.display,
        per,
        measure,
        rules.complementary_display,
        pools,
        relations,
    )
    if alongside is not None:  # its suppression, extended with this table's: the pair is audited as one
        alone = published[1]
        _apply_suppression(
            alongside.data, alone, _labels(alongside.data, alongside.by), measure, "denominator" in alongside.data, std
        )
        alongside.tables, alongside.relations = published, relations
        alone_marks = alone.marks(std).to_numpy()
        extra = [rules.complementary_footnote] if (alone_marks == rules.complementary_display).any() else []
        extra += [rules.withheld_footnote] if (alone_marks == rules.withheld_display).any() else []
        extra.append(_together_note(std))
        at = next(
            (i for i, n in enumerate(alongside.footnotes) if n.startswith("Suppression audit:")),
            len(alongside.footnotes),
        )
        alongside.footnotes[at:at] = [n for n in extra if n not in alongside.footnotes]
    return result


def _together_note(std: DisaggregationStandard) -> str:
    return (
        'The "alone" and the "alone or in combination" tables are suppressed and audited together: a reader '
        "cannot work out a hidden count of one from the other (Declined and Not reported are the same people "
        "in both, and a number hidden in one is hidden in the other)."
    )


def _outcomes(measure: str | None) -> list[str]:
    return ["events", "no events"] if measure is not None else []


def _apply_suppression(
    data: pd.DataFrame,
    table: suppression.PublishedTable,
    labels: list[str],
    measure: str | None,
    has_denominator: bool,
    std: DisaggregationStandard,
) -> None:
    """Write a suppressed grid's verdict into a tidy table (in place): flags, marks, hidden counts
    and the rates computed from them."""
    mask = table.suppressed.loc[labels]
    marks = table.marks(std).loc[labels]
    n_column = suppression.TOTAL if measure is not None else "count"
    true_n = table.values.loc[labels, n_column].to_numpy()
    n_mask = mask[n_column].to_numpy()
    data["n_suppressed"] = n_mask
    data["n_mark"] = marks[n_column].to_numpy()
    data["n"] = pd.array(true_n, dtype="Int64")
    data["n"] = data["n"].mask(n_mask)
    if measure is not None:
        data["events_suppressed"] = mask["events"].to_numpy()
        data["events_mark"] = marks["events"].to_numpy()
        data["events"] = pd.array(table.values.loc[labels, "events"].to_numpy(), dtype="Int64")
        data["events"] = data["events"].mask(data["events_suppressed"])
    if "rate" in data.columns:
        events = table.values.loc[labels, "events" if measure is not None else n_column].to_numpy()
        base = data["denominator"].to_numpy(dtype=float) if has_denominator else true_n.astype(float)
        rate = np.where(base > 0, events / np.where(base > 0, base, 1), np.nan)
        low, high = wilson_interval(events, np.nan_to_num(base), std.disparity.confidence)
        from_counts = data["events_suppressed"] if measure is not None else data["n_suppressed"]
        data["rate_suppressed"] = from_counts | (False if has_denominator else data["n_suppressed"])
        for column, values in (("rate", rate), ("rate_low", low), ("rate_high", high)):
            data[column] = pd.Series(values, index=data.index).mask(data["rate_suppressed"])


OTHER_GROUPS_KIND = "pool_small"


def _collapse(
    frame: pd.DataFrame, by: list[str], collapse, reference: str | None, std: DisaggregationStandard
) -> tuple[pd.DataFrame, list[str], list[str], dict[str, list[str]]]:
    """Apply the standard's allowed collapses named in `collapse`; returns frame, by, footnotes and
    the pools made (pool label -> the groups pooled into it).

    A pool never takes the reference group, nor Not reported or Declined (unknown race and
    ethnicity is not a race group), and needs two groups or more in a row of the table: a "pool"
    of one group would only rename it."""
    names = [collapse] if isinstance(collapse, str) else list(collapse or [])
    notes: list[str] = []
    pools: dict[str, list[str]] = {}
    for name in names:
        rule = std.collapses.get(name)
        if rule is None:
            raise CitykitError(f"no collapse {name!r} in the standard; allowed: {', '.join(std.collapses) or 'none'}")
        if rule.column not in by:
            raise CitykitError(f"collapse {name!r} pools {rule.column!r}, which is not in by={by}")
        if rule.kind == "map_column":
            if rule.into not in frame.columns:
                raise CitykitError(f"collapse {name!r} needs the column {rule.into!r}")
            by = [rule.into if c == rule.column else c for c in by]
            notes.append(rule.footnote)
            continue
        keep = (
            reference
            if reference is not None
            else std.race_labels.get(std.disparity.reference_group.get("race_ethnicity", ""))
        )
        others = [c for c in by if c != rule.column]
        values = frame[rule.column].astype(object)
        never = {keep, *(std.race_labels.get(code, code) for code in rule.never)}
        sizes = frame.groupby([*others, rule.column], observed=True, dropna=False)[rule.column].transform("size")
        pooled = (sizes < rule.min_n) & ~values.isin(never)
        # a pool needs two groups or more in its row of the table
        kinds = (
            frame.assign(_g=values.where(pooled))
            .groupby(others, observed=True, dropna=False)["_g"]
            .transform("nunique")
            if others
            else pd.Series(values[pooled].nunique(), index=frame.index)
        )
        pooled &= kinds >= max(rule.min_members, 1)
        members = sorted(set(values[pooled].astype(str)))
        if not members:
            continue
        dtype = frame[rule.column].dtype
        categories = (
            list(dtype.categories) if isinstance(dtype, pd.CategoricalDtype) else sorted(set(values.astype(str)))
        )
        if not others:  # every member is pooled whole: its own row would only show 0
            categories = [c for c in categories if c not in members]
        column = pd.Categorical(values.mask(pooled, rule.into), categories=[*categories, rule.into])
        frame = frame.assign(**{rule.column: column})
        pools[rule.into] = members
        notes.append(rule.footnote.format(members=", ".join(members)))
    return frame, by, notes, pools


def _count(frame: pd.DataFrame, by: list[str], measure: str | None) -> pd.DataFrame:
    """Counts by group; every category of a categorical `by` column is a row, 0 included (the
    standard shows zeros: a count of 0 people reveals no one)."""
    events = frame[measure].fillna(False).astype(bool) if measure is not None else False
    grouped = frame.assign(_events=events).groupby(by, observed=False, dropna=False, sort=True)
    counts = grouped.agg(n=("_events", "size"), events=("_events", "sum")).reset_index()
    return counts if measure is not None else counts.drop(columns="events")


def _with_group_columns(df: pd.DataFrame, by: list[str], std: DisaggregationStandard) -> tuple[pd.DataFrame, list[str]]:
    """Add the virtual race columns asked for in `by`, with their footnotes."""
    notes: list[str] = []
    frame = df
    if RACE_ALONE in by and RACE_IN_COMBINATION in by:
        raise CitykitError("choose one race presentation per table: race_alone or race_in_combination")
    if RACE_ALONE in by:
        frame = df.assign(**{RACE_ALONE: race_alone(df, standard=std)})
        notes.append(std.presentation_footnotes["alone"])
    if RACE_IN_COMBINATION in by:
        long = race_alone_or_in_combination(df, standard=std)
        if not (long == std.multiracial.label).any():  # in combination, Multiracial holds only generalised rows
            kept = [c for c in long.cat.categories if c != std.multiracial.label]
            long = pd.Series(pd.Categorical(long, categories=kept), index=long.index, name=long.name)
        frame = df.loc[long.index].assign(**{RACE_IN_COMBINATION: long.array})
        notes.append(std.presentation_footnotes["alone_or_in_combination"])
    if GENDER_COLUMN in by and GENDER_COLUMN in frame.columns:
        frame = frame.assign(**{GENDER_COLUMN: gender_categories(frame[GENDER_COLUMN], standard=std)})
    return frame, notes


def gender_categories(values: pd.Series, *, standard: DisaggregationStandard | None = None) -> pd.Series:
    """Gender as a table of people shows it: every category of the standard (`gender.categories`)
    in the standard's order, then the labels k-anonymity generalises to ("Nonbinary or another
    gender") and any other value present (e.g. "Not shown (privacy)"), so a category with no one
    in it is a row of 0, as in the race tables, never a row that vanishes. Empty values stay empty.
    A categorical column is kept as it is (its categories are the caller's choice)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values
    std = standard or load_disaggregation()
    merged = [v for s in std.k_anonymity.steps if s.column == GENDER_COLUMN for v in s.mapping.values()]
    present = set(values.dropna().astype(str))
    known = list(dict.fromkeys([*std.genders, *(v for v in merged if v in present)]))
    categories = [*known, *sorted(present - set(known))]
    return pd.Series(pd.Categorical(values.astype(object), categories=categories), index=values.index, name=values.name)


def _labels(counts: pd.DataFrame, by: list[str]) -> list[str]:
    return [" / ".join(map(str, values)) for values in counts[by].astype(object).itertuples(index=False)]


def _grid(counts: pd.DataFrame, by: list[str], measure: str | None) -> pd.DataFrame:
    """The published count grid: groups × (events, no events) with a measure, else groups × count."""
    labels = _labels(counts, by)
    if measure is None:
        return pd.DataFrame({"count": counts["n"].to_numpy()}, index=labels)
    return pd.DataFrame(
        {"events": counts["events"].to_numpy(), "no events": (counts["n"] - counts["events"]).to_numpy()}, index=labels
    )


def _suppress_counts(
    df: pd.DataFrame,
    counts: pd.DataFrame,
    by: list[str],
    measure: str | None,
    std: DisaggregationStandard,
    title: str = "",
) -> tuple[list[suppression.PublishedTable], list[suppression.Relation]]:
    """Suppress an "alone or in combination" grid with its "alone" grid (not published here)."""
    grid = _grid(counts, by, measure)
    outcomes = _outcomes(measure)
    alone_by = [RACE_ALONE if c == RACE_IN_COMBINATION else c for c in by]
    alone_frame = df.assign(**{RACE_ALONE: race_alone(df, standard=std)})
    alone_counts = _count(alone_frame, alone_by, measure)
    alone_grid = _grid(alone_counts, alone_by, measure)
    rows = grid.index.union(alone_grid.index, sort=False)
    grid, alone_grid = grid.reindex(rows, fill_value=0), alone_grid.reindex(rows, fill_value=0)
    alone = suppression.count_table(alone_grid, name="alone", outcome_columns=outcomes)
    combined = suppression.count_table(
        grid,
        name="in combination",
        total_row=alone.values.loc[suppression.TOTAL],
        rows_add_up=False,
        outcome_columns=outcomes,
    )
    # one set of relations per combination of the other `by` columns
    position = by.index(RACE_IN_COMBINATION)
    others = sorted({tuple(v for i, v in enumerate(label.split(" / ")) if i != position) for label in rows})
    labels = [c.label for c in std.race_categories]

    def row(race: str, rest: tuple) -> str:
        parts = list(rest)
        parts.insert(position, race)
        return " / ".join(parts)

    unknown = [std.not_reported.label, std.declined.label]
    relations = []
    for rest in others:
        relations += suppression.combination_relations(
            alone,
            combined,
            [row(lab, rest) for lab in labels],
            row(std.multiracial.label, rest),
            same=[row(lab, rest) for lab in unknown],
        )

    def ledger() -> dict:  # the release ledger's view, built only when a report records it
        return {
            "in combination": (
                _people(_with_group_columns(df, by, std)[0], by, measure, std, overlap=True),
                _key(by, measure),
            ),
            "alone": (_people(alone_frame, alone_by, measure, std), _key(alone_by, measure)),
        }

    alone_title = f'{title} (its "alone" counts, suppressed with it)' if title else ""
    release = _release(ledger, title, {"alone": alone_title})
    tables = suppression.suppress([combined, alone], relations, standard=std, **release)
    return tables, relations


def _suppress_with_alone(
    df: pd.DataFrame,
    counts: pd.DataFrame,
    alongside: DisaggregatedTable,
    measure: str | None,
    std: DisaggregationStandard,
    title: str = "",
) -> tuple[list[suppression.PublishedTable], list[suppression.Relation]]:
    """Suppress an "alone or in combination" grid together with the published "alone" table of the
    same people (`alongside`, pooled or not): [in combination, alone, pooled groups (unpublished)]."""
    if alongside.by != [RACE_ALONE] or alongside.measure != measure or not alongside.tables:
        raise CitykitError(
            'alongside= takes the "alone" table of the same people: disaggregate(df, by=["race_alone"]) with the '
            f"same measure ({measure!r})"
        )
    outcomes = _outcomes(measure)
    first = alongside.tables[1] if alongside.tables[0].name == "in combination" else alongside.tables[0]
    alone_grid = first.values.drop(index=suppression.TOTAL, columns=suppression.TOTAL)
    if int(first.values.at[suppression.TOTAL, suppression.TOTAL]) != len(df):
        raise CitykitError(
            f'alongside= must be the "alone" table of the same people: it counts '
            f"{int(first.values.at[suppression.TOTAL, suppression.TOTAL]):,}, this table {len(df):,}"
        )
    alone = suppression.count_table(alone_grid, name="alone", outcome_columns=outcomes)
    grid = _grid(counts, [RACE_IN_COMBINATION], measure)
    combined = suppression.count_table(
        grid,
        name="in combination",
        total_row=alone.values.loc[suppression.TOTAL],
        rows_add_up=False,
        outcome_columns=outcomes,
    )
    group = [combined, alone]
    members = None
    pooled = {into: list(m) for into, m in alongside.pools.items() if into in alone_grid.index}
    if pooled:  # the pooled groups' own "alone" counts: not published, kept unknown by the audit
        frame = df.assign(**{RACE_ALONE: race_alone(df, standard=std)})
        member_counts = _grid(_count(frame, [RACE_ALONE], measure), [RACE_ALONE], measure)
        names = sorted({m for ms in pooled.values() for m in ms})
        members = suppression.unpublished_table(member_counts.reindex(names, fill_value=0), "pooled groups")
        group.append(members)
    labels = [c.label for c in std.race_categories]
    relations = suppression.combination_relations(
        alone,
        combined,
        labels,
        std.multiracial.label,
        same=[std.not_reported.label, std.declined.label],
        pools=pooled,
        members=members,
    )

    def ledger() -> dict:  # the release ledger's view, built only when a report records it
        alone_frame = df.assign(**{RACE_ALONE: race_alone(df, standard=std)})
        replace = {m: p for p, ms in pooled.items() for m in ms}
        pooled_frame = alone_frame.assign(**{RACE_ALONE: alone_frame[RACE_ALONE].astype(object).replace(replace)})
        combination = _with_group_columns(df, [RACE_IN_COMBINATION], std)[0]
        return {
            "in combination": (
                _people(combination, [RACE_IN_COMBINATION], measure, std, overlap=True),
                _key([RACE_IN_COMBINATION], measure),
            ),
            "alone": (_people(pooled_frame, [RACE_ALONE], measure, std, alone_frame), _key([RACE_ALONE], measure)),
        }

    release = _release(ledger, title, {"alone": alongside.title})  # each table under its own page title
    return suppression.suppress(group, relations, standard=std, **release), relations


# -- what the release ledger records (citykit.reports.ledger, when a report run installs it) -----------


def _id_column(df: pd.DataFrame, std: DisaggregationStandard) -> str | None:
    """The published id of the people in `df` (the standard's pseudonymised identifier), if present."""
    for table in std.columns.values():
        for column in table.names(publish=("pseudonymised",)):
            if column in df.columns and table.person_level:
                return column
    return None


def _key(by: list[str], measure: str | None) -> str:
    """What a table's cells count: tables with one key are related by the release ledger."""
    return f"{' / '.join(by)}|{measure or 'count'}"


def _people(
    frame: pd.DataFrame,
    by: list[str],
    measure: str | None,
    std: DisaggregationStandard,
    grouped: pd.DataFrame | None = None,
    *,
    overlap: bool = False,
) -> pd.DataFrame | None:
    """The people in each interior cell of a table counted from `frame` (one row per person and
    group): id, row (each person's own group, from `grouped` where a collapse pooled it), the row as
    published, column. `overlap`: the rows overlap (in combination), so the Total row is its own
    label (each person once). None when the records carry no published id."""
    column = _id_column(frame, std)
    if column is None or not all(c in frame.columns for c in by):
        return None
    published = pd.Series(_labels(frame, by), index=frame.index)
    base = published
    if grouped is not None and all(c in grouped.columns for c in by):
        base = pd.Series(_labels(grouped.loc[frame.index], by), index=frame.index)
    if measure is not None:
        outcome = np.where(frame[measure].fillna(False).astype(bool), "events", "no events")
    else:
        outcome = np.full(len(frame), "count", dtype=object)
    people = pd.DataFrame({"id": frame[column].astype(str).to_numpy(), "row": base.to_numpy(),
                           "published": published.to_numpy(), "column": outcome})  # fmt: skip
    if overlap:
        once = people.drop_duplicates("id").assign(row=PEOPLE, published=suppression.TOTAL)
        people = pd.concat([people, once], ignore_index=True)
    return people


def _release(build, title: str, titles: dict[str, str] | None = None) -> dict:
    """`suppression.suppress` arguments for the release ledger: the people, keys and pooled rows of
    each table (`build()`: table name -> (people, key)); nothing when no release reviews the tables
    (in a lesson nothing is built) or a table's records carry no published id."""
    if not suppression.reviewing():
        return {}
    tables: dict[str, tuple[pd.DataFrame | None, str]] = build()
    if any(people is None for people, _ in tables.values()):
        return {}
    pools = {}
    for name, (people, _) in tables.items():
        pooled = people[(people["row"] != people["published"]) & (people["published"] != suppression.TOTAL)]
        pools[name] = {str(p): sorted(set(g["row"])) for p, g in pooled.groupby("published")}
    return {
        "people": {name: people for name, (people, _) in tables.items()},
        "keys": {name: key for name, (_, key) in tables.items()},
        "pools": pools,
        "title": title,
        "titles": {name: text for name, text in (titles or {}).items() if name in tables},
    }


def suppress(
    counts: pd.DataFrame | suppression.PublishedTable, *, standard: DisaggregationStandard | None = None
) -> suppression.PublishedTable:
    """Primary plus complementary suppression of one 2-D table of counts of people.

    A DataFrame of interior counts gets its Total row and column first. Returns the
    `PublishedTable` (`.shown` has <NA> for suppressed entries; `.suppressed` the mask).
    Use `citykit.standards.suppression.suppress` for several tables published together.
    """
    if not isinstance(counts, suppression.PublishedTable):
        _table(counts, "suppress", "counts", "counts of people")
    table = counts if isinstance(counts, suppression.PublishedTable) else suppression.count_table(counts)
    return suppression.suppress(table, standard=standard)[0]


def crosstab(
    df: pd.DataFrame, rows: str, columns: str, *, title: str = "", standard: DisaggregationStandard | None = None
) -> suppression.PublishedTable:
    """The people in `df` counted by two columns (e.g. neighborhood × race_alone), suppressed as
    `suppress` does: the table to publish from people's records.

    `rows` and `columns` are columns of `df`, or "race_alone" / "race_in_combination"... only
    "race_alone" (each person once, so the rows add up). People missing either value are left out,
    as `pd.crosstab` leaves them out. In a report run the table goes through the release ledger
    (`citykit.reports.ledger`) with its people, like `disaggregate`'s tables: audited with the
    earlier releases of the dataset (other periods, other neighborhoods), its suppression extended
    until nothing published earlier plus it gives a count of 1 to 10 away, and recorded. Suppressing
    a DataFrame of counts (`suppress(counts)`) cannot do that: it has no people to relate.
    """
    std = standard or load_disaggregation()
    _table(df, "crosstab")
    if RACE_IN_COMBINATION in (rows, columns):
        raise CitykitError('crosstab counts each person once: use "race_alone", not "race_in_combination"')
    if rows == columns:
        raise CitykitError(f"crosstab needs two different columns, got {rows!r} twice")
    frame, _ = _with_group_columns(df, [rows, columns], std)
    missing = [c for c in (rows, columns) if c not in frame.columns]
    if missing:
        raise CitykitError(f"cannot count people by {', '.join(missing)}: not in the table")
    frame = frame[frame[rows].notna() & frame[columns].notna()]
    counts = pd.crosstab(frame[rows], frame[columns])  # no one with both: an empty table (its Total 0)
    key = f"{rows} × {columns}|count"

    def ledger() -> dict:  # the release ledger's view, built only when a report records it
        column = _id_column(frame, std)
        if column is None:
            return {"table": (None, key)}
        labels = frame[rows].astype(str).to_numpy()
        people = pd.DataFrame({"id": frame[column].astype(str).to_numpy(), "row": labels, "published": labels,
                               "column": frame[columns].astype(str).to_numpy()})  # fmt: skip
        return {"table": (people, key)}

    table = suppression.count_table(counts, name="table")
    return suppression.suppress(table, standard=std, **_release(ledger, title))[0]


def audit(tables, relations=(), *, standard: DisaggregationStandard | None = None) -> suppression.AuditReport:
    """The suppression audit (see `citykit.standards.suppression.audit`) for tables published together."""
    if isinstance(tables, DisaggregatedTable):
        tables = tables.tables
    return suppression.audit(tables, relations, standard=standard)


# -- disparities between groups ----------------------------------------------------------------


def disparities(
    table: DisaggregatedTable,
    reference: str | None = None,
    *,
    benchmark: pd.Series | Mapping | None = None,
    method: str | None = None,
    kind: str | None = None,
    standard: DisaggregationStandard | None = None,
) -> DisaggregatedTable:
    """Each group against a reference group: the ratio with its 95% interval, and (with a
    `benchmark`, e.g. population by group) the disproportionality index; p-values corrected for
    the number of comparisons (Holm or Benjamini–Hochberg, from the standard unless `method`),
    and `notable` when the ratio is beyond the standard's threshold and the corrected p < alpha.

    The ratio follows the measure's kind, as the standard declares it: a share of people (events
    among the group's n, e.g. approvals of decided applications) is a `proportion`, compared with
    `proportion_ratio`; events over a `denominator` (requests per 1,000 residents) are a `rate`,
    compared with `rate_ratio`. `kind` overrides. For a program the standard declares (its
    `measure`, e.g. approved), the ratio is of the favourable outcome (the four-fifths screen reads
    it) and the adverse outcome's ratio is shown beside it (`adverse_ratio`, e.g. denials).

    `table` is a one-dimensional `disaggregate` result with a measure; `reference` is a group
    value (default: the standard's reference for race and ethnicity, gender or geography, found by
    label). Groups whose counts or rates are hidden get no comparison (a ratio would reveal them)
    and are left out of the correction family. Result columns: rate_ratio, rr_low, rr_high, rr_p,
    rr_p_adjusted, rr_corrected, ratio_kind, notable, and adverse_*, dp_index, di_* where they apply.
    """
    std = standard or load_disaggregation()
    rules = std.disparity
    method = method or rules.correction
    if len(table.by) != 1 or "events" not in table.data.columns:
        raise CitykitError("disparities needs a one-dimensional disaggregate(...) table with a measure")
    column = table.by[0]
    data = table.data
    groups = data[column].astype(str)
    program = rules.program_for(table.measure or "")
    if kind is None:
        kind = "rate" if "denominator" in data.columns else (program.kind if program else "proportion")
    if kind not in ("proportion", "rate"):
        raise CitykitError(f"kind must be 'proportion' or 'rate', got {kind!r}")
    if kind == "rate" and "denominator" not in data.columns:
        raise CitykitError("a rate ratio needs exposures: disaggregate(..., denominator=...) first")
    reference = reference if reference is not None else _default_reference(column, groups, std)
    if reference not in set(groups):
        raise CitykitError(f"reference group {reference!r} is not in the table; choose one of: {', '.join(groups)}")
    shown = ~data.get("rate_suppressed", pd.Series(False, index=data.index)).astype(bool)
    if "n_suppressed" in data.columns and kind == "proportion":
        shown &= ~data["n_suppressed"].astype(bool)
    base = data["denominator"] if kind == "rate" else data["n"]
    ref_i = int(np.flatnonzero(groups.to_numpy() == reference)[0])
    reference_note = "" if shown.iloc[ref_i] else _hidden_reference_note(table, ref_i, reference, kind, std)
    ref_events, ref_base = data["events"].iloc[ref_i], base.iloc[ref_i]
    adverse = kind == "proportion" and program is not None and program.show_adverse_ratio

    def compare(events, n, ref_e, ref_n) -> Ratio:
        if kind == "rate":
            return rate_ratio(int(events), float(n), int(ref_e), float(ref_n), rules.confidence)
        return proportion_ratio(int(events), int(n), int(ref_e), int(ref_n), rules.confidence)

    bench = pd.Series(benchmark, dtype=float) if benchmark is not None else None
    known_events, di_note = _known_total_events(table, bench, std) if bench is not None else (math.nan, "")
    rows = []
    for i, group in enumerate(groups):
        rr = ad = di = NO_RATIO
        if shown.iloc[i]:
            events, n = data["events"].iloc[i], base.iloc[i]
            if group != reference and not reference_note:
                rr = compare(events, n, ref_events, ref_base)
                if adverse:
                    ad = proportion_ratio(
                        int(n - events), int(n), int(ref_base - ref_events), int(ref_base), rules.confidence
                    )
            if bench is not None and group in bench.index and not math.isnan(known_events):
                di = disproportionality_index(
                    float(events), known_events, float(bench[group]), float(bench.sum()), rules.confidence
                )
        rows.append(
            (
                group,
                rr.estimate,
                rr.low,
                rr.high,
                rr.p_value,
                rr.corrected,
                rr.method,
                ad.estimate,
                ad.low,
                ad.high,
                ad.p_value,
                di.estimate,
                di.low,
                di.high,
                di.p_value,
            )
        )
    result = pd.DataFrame.from_records(
        rows,
        columns=[
            column,
            "rate_ratio",
            "rr_low",
            "rr_high",
            "rr_p",
            "rr_corrected",
            "rr_method",
            "adverse_ratio",
            "adverse_low",
            "adverse_high",
            "adverse_p",
            "dp_index",
            "di_low",
            "di_high",
            "di_p",
        ],
    )
    result["ratio_kind"] = kind
    result["rr_p_adjusted"] = adjust_p_values(result["rr_p"], method)
    beyond = (result["rate_ratio"] <= rules.notable_below) | (result["rate_ratio"] >= rules.notable_above)
    result["notable"] = beyond & (result["rr_p_adjusted"] < rules.alpha)
    if adverse:
        result["adverse_p_adjusted"] = adjust_p_values(result["adverse_p"], method)
    else:
        result = result.drop(columns=["adverse_ratio", "adverse_low", "adverse_high", "adverse_p"])
    if bench is not None:
        result["di_p_adjusted"] = adjust_p_values(result["di_p"], method)
    else:
        result = result.drop(columns=["dp_index", "di_low", "di_high", "di_p"])
    n_tests = int(result["rr_p"].notna().sum())
    if kind == "proportion":
        small = (
            f" (Koopman score interval when a group has fewer than {rules.small_group_below})"
            if (rules.small_group_below and rules.small_group_method != rules.proportion_method)
            else ""
        )
        what = f"of the {program.favourable.lower()} share" if program else "of proportions"
        first = (
            f"Ratios {what} against {reference}, with 95% Katz log intervals "
            f"exp(ln RR ± 1.96·√(1/a − 1/n₁ + 1/b − 1/n₂)){small}."
        )
    else:
        first = (
            f"Rate ratios against {reference} with 95% intervals exp(ln RR ± 1.96·√(1/a + 1/b)) "
            f"for Poisson counts. {rules.overdispersion_note}"
        )
    notes = [reference_note] if reference_note else [first]
    if adverse and not reference_note:
        notes.append(
            f"The {program.adverse.lower()} ratio beside it is the same comparison for the adverse outcome; "
            f"the four-fifths screen ({rules.notable_below}) reads the {program.favourable.lower()} ratio."
        )
    if n_tests:
        notes.append(
            rules.correction_footnote.format(
                method_label=CORRECTION_LABELS.get(method, method),
                n_tests=n_tests,
                ratio_below=rules.notable_below,
                ratio_above=rules.notable_above,
                alpha=rules.alpha,
            )
        )
    if result["rr_corrected"].any():
        notes.append(rules.zero_cells_note if kind == "proportion" else rules.zero_events_note)
    if bench is not None:
        notes.append(di_note or std.disparity.di_footnote)
    if (~shown).any():
        notes.append("Groups with hidden counts are not compared (a ratio would reveal them).")
    notes.append(f"Standard: {std.title}, version {std.version}.")
    outcome = program.favourable.lower() if program else (table.measure or "events")
    what = {RACE_ALONE: "race and ethnicity (alone)", RACE_IN_COMBINATION: "race and ethnicity (in combination)"}
    title = f"Differences between groups: {outcome} share by {what.get(column, column.replace('_', ' '))}, against {reference}"
    return DisaggregatedTable(
        result,
        [column],
        notes,
        std.version,
        title,
        table.tables,
        table.suppression_mark,
        1.0,
        table.measure,
        table.complementary_mark,
        dict(table.pools),
        list(table.relations),
        reference_note,
    )


def _hidden_reference_note(
    table: DisaggregatedTable, i: int, reference: str, kind: str, std: DisaggregationStandard
) -> str:
    """Why no group is compared with the reference group: what of it is hidden, and why."""
    data = table.data
    rules = std.small_cells
    n_hidden = bool(data["n_suppressed"].iloc[i]) if "n_suppressed" in data.columns else False
    what, mark = (
        ("number of people", data["n_mark"].iloc[i])
        if n_hidden or kind == "rate"
        else (f"{(table.measure or 'event')} count", data["events_mark"].iloc[i])
    )
    size = f"its {int(data['n'].iloc[i]):,} people are shown, but " if not n_hidden and kind == "proportion" else ""
    why = (
        "a count from 1 to 10"
        if mark == rules.display
        else "hidden so that a small count elsewhere cannot be worked out, or the outcome of a small group read"
    )
    return (
        f"No ratios against the reference group {reference}: {size}its {what} is hidden ({mark}: {why}), and a "
        f"ratio would reveal it. Choose another reference group (reference=...) to compare groups."
    )


def _known_total_events(table: DisaggregatedTable, bench: pd.Series, std: DisaggregationStandard) -> tuple[float, str]:
    """The events of the people whose group has a benchmark (for race and ethnicity: a known race,
    Not reported and Declined left out), as published, and the footnote of the index. NaN when the
    published figures do not give it (a hidden count would be revealed)."""
    data = table.data
    column = table.by[0]
    groups = data[column].astype(str)
    known = groups.isin(bench.index)
    unknown_labels = ", ".join(sorted(set(groups[~known & (data["n"].fillna(1) > 0)]))) or "none"
    base = std.disparity.di_footnote
    events_hidden = data.get("events_suppressed", pd.Series(False, index=data.index)).astype(bool)
    if not events_hidden[known].any():
        total = float(data.loc[known, "events"].astype(float).sum())
    else:
        grand = _published_total_events(table)
        if math.isnan(grand) or events_hidden[~known].any():
            return math.nan, (
                f"{base} Not shown here: with a group's count hidden, the events of the people of known "
                "group could not be given without revealing it."
            )
        total = grand - float(data.loc[~known, "events"].astype(float).sum())
    return total, f"{base} Left out of both shares (no benchmark group): {unknown_labels}."


def _published_total_events(table: DisaggregatedTable) -> float:
    """All groups' events as published (the Total row of the table's grid), NaN when hidden."""
    if not table.tables:
        data = table.data
        return float(data["events"].sum()) if data["events"].notna().all() else math.nan
    published = [t for t in table.tables if t.published]
    grid = next((t for t in published if t.name == "alone"), published[-1])  # the "alone" grid when there are two
    if "events" not in grid.values.columns or grid.suppressed.at[suppression.TOTAL, "events"]:
        return math.nan
    return float(grid.values.at[suppression.TOTAL, "events"])


def neighborhood_loss(
    df: pd.DataFrame, by: str = RACE_ALONE, *, standard: DisaggregationStandard | None = None
) -> pd.DataFrame:
    """Per group, the share of its published person-level records whose neighborhood was
    generalised away by k-anonymity (neighborhood null): neighborhood figures undercount exactly
    these people, so every neighborhood-level table of people says so (`loss_footnote`).

    `df` is the published table (every neighborhood, before any neighborhood filter); `by` a
    column or "race_alone". Columns: group, records, without_neighborhood, share.
    """
    std = standard or load_disaggregation()
    groups = race_alone(df, standard=std) if by == RACE_ALONE else df[by]
    lost = df["neighborhood"].isna()
    frame = pd.DataFrame({"group": groups.astype(str).to_numpy(), "lost": lost.to_numpy()})
    result = frame.groupby("group", sort=False)["lost"].agg(records="size", without_neighborhood="sum").reset_index()
    result["share"] = result["without_neighborhood"] / result["records"]
    return result.sort_values("share", ascending=False, ignore_index=True)


def loss_footnote(loss: pd.DataFrame, *, at_least: float = 0.0, base: str = "") -> str:
    """The footnote a neighborhood-level table of people carries: per group, the share of its
    records whose neighborhood was generalised away to protect privacy. `base` says which records
    the shares are of (e.g. "all applications citywide in the period, every outcome") when it
    differs from the table's own people."""
    shown = loss[loss["share"] >= at_least]
    parts = ", ".join(f"{row.group} {row.share:.1%}" for row in shown.itertuples())
    of = f" (base: {base})" if base else ""
    return (
        "Neighborhood figures leave out people whose neighborhood was generalised away to protect them "
        f"(k-anonymity), share of each group's records{of}: {parts or 'none'}. Groups with a large share are "
        "undercounted in every neighborhood."
    )


def _default_reference(column: str, groups: pd.Series, std: DisaggregationStandard) -> str:
    refs = std.disparity.reference_group
    candidates = []
    if "race_ethnicity" in refs:
        candidates.append(std.race_labels.get(refs["race_ethnicity"], refs["race_ethnicity"]))
    candidates += [v for k, v in refs.items() if k != "race_ethnicity"]
    for candidate in candidates:
        if candidate in set(groups):
            return candidate
    raise CitykitError(f"no default reference group for {column!r}; pass reference=")
