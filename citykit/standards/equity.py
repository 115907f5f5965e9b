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

RACE_ALONE = "race_alone"  # virtual `by` keys for disaggregate()
RACE_IN_COMBINATION = "race_in_combination"
RACE_COLUMN = "race_ethnicity"

CORRECTION_LABELS = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}


# -- SPD-15 presentations ----------------------------------------------------------------------


def race_alone(df: pd.DataFrame, *, standard: DisaggregationStandard | None = None) -> pd.Series:
    """Each person's one "alone" category: a categorical Series aligned with `df`.

    One category selected -> that category; two or more -> Multiracial and/or Multiethnic (also
    rows whose categories k-anonymity generalised away: the seven indicators <NA>); none selected
    -> Declined if race_declined, otherwise Not reported. Counts sum to the number of people.
    Values are the standard's labels, in its order.
    """
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


def race_alone_or_in_combination(
    df: pd.DataFrame, *, standard: DisaggregationStandard | None = None
) -> pd.Series:
    """Each person once per category selected: a long categorical Series indexed by `df`'s index.

    People with no category appear once as Declined or Not reported; people whose categories
    k-anonymity generalised away appear once as Multiracial and/or Multiethnic. Counts sum past
    the number of people whenever anyone selected two or more categories.
    """
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
    return pd.Series(pd.Categorical(result, categories=list(std.race_labels.values())), index=df.index, name=RACE_COLUMN)


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
    corrected: bool = False  # 0.5 added to both event counts because one was zero


def rate_ratio(a: float, n_a: float, b: float, n_b: float, confidence: float | None = None) -> Ratio:
    """Rate of group A (a events in n_a) over reference B (b in n_b), with the log-method interval
    exp(ln RR ± z·√(1/a + 1/b)) and the matching Wald p-value.

    Zero events: if one count is zero, 0.5 is added to both counts (Haldane–Anscombe) and the
    estimate, interval and p-value come from the corrected counts (`corrected=True`); if both are
    zero, or a denominator is zero, everything is NaN (no ratio).
    """
    from scipy.stats import norm

    confidence = load_disaggregation().disparity.confidence if confidence is None else confidence
    if n_a <= 0 or n_b <= 0 or (a == 0 and b == 0):
        return Ratio(math.nan, math.nan, math.nan, math.nan)
    corrected = a == 0 or b == 0
    if corrected:
        a, b = a + 0.5, b + 0.5
    estimate = (a / n_a) / (b / n_b)
    se = math.sqrt(1 / a + 1 / b)
    z = norm.ppf(0.5 + confidence / 2)
    log_rr = math.log(estimate)
    p_value = float(2 * norm.sf(abs(log_rr) / se))
    return Ratio(estimate, math.exp(log_rr - z * se), math.exp(log_rr + z * se), p_value, corrected)


def disproportionality_index(
    events_group: float, events_total: float, benchmark_group: float, benchmark_total: float, confidence: float | None = None
) -> Ratio:
    """A group's share of the outcome ÷ its share of the benchmark population.

    Interval: the Wilson interval of the outcome share divided by the benchmark share (the
    benchmark, e.g. census population, is taken as known). p-value: exact binomial test of the
    outcome share against the benchmark share (scipy `binomtest`).
    """
    from scipy.stats import binomtest

    confidence = load_disaggregation().disparity.confidence if confidence is None else confidence
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

    def audit(self) -> suppression.AuditReport:
        return suppression.audit(self.tables)

    def display_frame(self) -> pd.DataFrame:
        """Strings as shown: "≤10" for suppressed counts, "—" for suppressed rates, "*" unstable."""
        d = self.data
        shown = pd.DataFrame(index=d.index)
        for column in self.by:
            shown[column] = d[column].astype(str)
        for column in ("n", "events", "denominator"):
            if column in d.columns:
                flag = d.get(f"{column}_suppressed", pd.Series(False, index=d.index))
                shown[column] = [
                    self.suppression_mark if s else ("" if pd.isna(v) else f"{int(v):,}") for v, s in zip(d[column], flag)
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
            fmt = lambda v: "" if pd.isna(v) else f"{v:.2f}"  # noqa: E731
            shown["rate ratio"] = [fmt(v) for v in d["rate_ratio"]]
            shown["95% interval"] = ["" if pd.isna(lo) else f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(d["rr_low"], d["rr_high"])]
            shown["corrected p"] = ["" if pd.isna(p) else f"{p:.3g}" for p in d["rr_p_adjusted"]]
            if "dp_index" in d.columns:
                shown["disproportionality"] = [fmt(v) for v in d["dp_index"]]
                shown["DI 95% interval"] = ["" if pd.isna(lo) else f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(d["di_low"], d["di_high"])]
            shown["notable"] = ["yes" if v else "" for v in d["notable"]]
        return shown

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
    standard: DisaggregationStandard | None = None,
) -> DisaggregatedTable:
    """Counts and rates by group, under the standard.

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
    if people:
        published = _suppress_counts(df, counts, by, measure, std)
        mask = published[0].suppressed.loc[_labels(counts, by)]
        n_mask = mask["Total" if measure is not None else "count"].to_numpy()
        data["n_suppressed"] = n_mask
        data["n"] = data["n"].astype("Int64").mask(n_mask)
        if measure is not None:
            data["events_suppressed"] = mask["events"].to_numpy()
            data["events"] = data["events"].astype("Int64").mask(data["events_suppressed"])
        if has_rate:
            from_counts = data["events_suppressed"] if measure is not None else data["n_suppressed"]
            data["rate_suppressed"] = from_counts | (data["n_suppressed"] if denominator is None else False)
            for column in ("rate", "rate_low", "rate_high"):
                data[column] = data[column].mask(data["rate_suppressed"])
        notes += [rules.footnote, f"Suppression audit: {rules.audit_not_covered}"]
    else:
        if has_rate:
            data["rate_suppressed"] = False
        notes.append(std.privacy_scope)
    if has_rate and (data["unstable"] & ~data["rate_suppressed"]).any():
        notes.append(rules.unstable_footnote)
    interval = "95% Wilson score intervals. " if has_rate else ""
    notes.append(f"{interval}Standard: {std.title}, version {std.version}.")
    return DisaggregatedTable(data, by, notes, std.version, title, published, rules.display, per)


def _count(frame: pd.DataFrame, by: list[str], measure: str | None) -> pd.DataFrame:
    events = frame[measure].fillna(False).astype(bool) if measure is not None else False
    grouped = frame.assign(_events=events).groupby(by, observed=True, dropna=False, sort=True)
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
        frame = df.loc[long.index].assign(**{RACE_IN_COMBINATION: long.to_numpy()})
        notes.append(std.presentation_footnotes["alone_or_in_combination"])
    return frame, notes


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
    df: pd.DataFrame, counts: pd.DataFrame, by: list[str], measure: str | None, std: DisaggregationStandard
) -> list[suppression.PublishedTable]:
    """Suppress the grid; an "alone or in combination" grid goes with its "alone" grid."""
    grid = _grid(counts, by, measure)
    if RACE_IN_COMBINATION not in by:
        return suppression.suppress(suppression.count_table(grid, name="table"), standard=std)
    alone_by = [RACE_ALONE if c == RACE_IN_COMBINATION else c for c in by]
    alone_frame = df.assign(**{RACE_ALONE: race_alone(df, standard=std)})
    alone_counts = _count(alone_frame, alone_by, measure)
    alone_grid = _grid(alone_counts, alone_by, measure)
    rows = grid.index.union(alone_grid.index, sort=False)
    grid, alone_grid = grid.reindex(rows, fill_value=0), alone_grid.reindex(rows, fill_value=0)
    alone = suppression.count_table(alone_grid, name="alone")
    combined = suppression.count_table(
        grid, name="in combination", total_row=alone.values.loc[suppression.TOTAL], rows_add_up=False
    )
    # one set of relations per combination of the other `by` columns
    position = by.index(RACE_IN_COMBINATION)
    others = sorted({tuple(v for i, v in enumerate(label.split(" / ")) if i != position) for label in rows})
    labels = [c.label for c in std.race_categories]

    def row(race: str, rest: tuple) -> str:
        parts = list(rest)
        parts.insert(position, race)
        return " / ".join(parts)

    relations = []
    for rest in others:
        relations += suppression.combination_relations(
            alone, combined, [row(lab, rest) for lab in labels], row(std.multiracial.label, rest)
        )
    tables = suppression.suppress([combined, alone], relations, standard=std)
    return tables


def suppress(counts: pd.DataFrame | suppression.PublishedTable, *, standard: DisaggregationStandard | None = None) -> suppression.PublishedTable:
    """Primary plus complementary suppression of one 2-D table of counts of people.

    A DataFrame of interior counts gets its Total row and column first. Returns the
    `PublishedTable` (`.shown` has <NA> for suppressed entries; `.suppressed` the mask).
    Use `citykit.standards.suppression.suppress` for several tables published together.
    """
    table = counts if isinstance(counts, suppression.PublishedTable) else suppression.count_table(counts)
    return suppression.suppress(table, standard=standard)[0]


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
    standard: DisaggregationStandard | None = None,
) -> DisaggregatedTable:
    """Each group against a reference group: rate ratio with its 95% interval, and (with a
    `benchmark`, e.g. population by group) the disproportionality index; p-values corrected for
    the number of comparisons (Holm or Benjamini–Hochberg, from the standard unless `method`),
    and `notable` when the ratio is beyond the standard's threshold and the corrected p < alpha.

    `table` is a one-dimensional `disaggregate` result with a measure; `benchmark` must cover
    every group (its sum is the benchmark total), and the index needs every group's events shown. `reference` is a group
    value (default: the standard's reference for race and ethnicity, gender or geography, found by
    label). Groups whose counts or rates are suppressed get no comparison (a ratio would reveal
    them) and are left out of the correction family.
    """
    std = standard or load_disaggregation()
    rules = std.disparity
    method = method or rules.correction
    if len(table.by) != 1 or "events" not in table.data.columns:
        raise CitykitError("disparities needs a one-dimensional disaggregate(...) table with a measure")
    column = table.by[0]
    data = table.data
    groups = data[column].astype(str)
    reference = reference if reference is not None else _default_reference(column, groups, std)
    if reference not in set(groups):
        raise CitykitError(f"reference group {reference!r} is not in the table; choose one of: {', '.join(groups)}")
    shown = ~data.get("rate_suppressed", pd.Series(False, index=data.index)).astype(bool)
    base = data["denominator"] if "denominator" in data.columns else data["n"]
    ref = data.loc[groups == reference].iloc[0]
    ref_base = ref["denominator"] if "denominator" in data.columns else ref["n"]
    if not shown[groups == reference].iloc[0]:
        raise CitykitError(f"the reference group {reference!r} is suppressed; choose a larger reference group")

    rows = []
    total_events = float(data["events"].sum()) if shown.all() else math.nan
    bench = pd.Series(benchmark) if benchmark is not None else None
    no_ratio = Ratio(math.nan, math.nan, math.nan, math.nan)
    for i, group in enumerate(groups):
        if not shown.iloc[i]:
            rows.append((group, *([math.nan] * 4), False, *([math.nan] * 4)))
            continue
        rr = no_ratio
        if group != reference:
            rr = rate_ratio(float(data["events"].iloc[i]), float(base.iloc[i]), float(ref["events"]), float(ref_base), rules.confidence)
        di = no_ratio
        if bench is not None and group in bench.index and not math.isnan(total_events):
            di = disproportionality_index(float(data["events"].iloc[i]), total_events, float(bench[group]), float(bench.sum()), rules.confidence)
        rows.append((group, rr.estimate, rr.low, rr.high, rr.p_value, rr.corrected, di.estimate, di.low, di.high, di.p_value))
    result = pd.DataFrame.from_records(
        rows,
        columns=[column, "rate_ratio", "rr_low", "rr_high", "rr_p", "rr_corrected", "dp_index", "di_low", "di_high", "di_p"],
    )
    result["rr_p_adjusted"] = adjust_p_values(result["rr_p"], method)
    beyond = (result["rate_ratio"] <= rules.notable_below) | (result["rate_ratio"] >= rules.notable_above)
    result["notable"] = beyond & (result["rr_p_adjusted"] < rules.alpha)
    if bench is not None:
        result["di_p_adjusted"] = adjust_p_values(result["di_p"], method)
    else:
        result = result.drop(columns=["dp_index", "di_low", "di_high", "di_p"])
    n_tests = int(result["rr_p"].notna().sum())
    notes = [
        f"Rate ratios against {reference} with 95% intervals exp(ln RR ± 1.96·√(1/a + 1/b)).",
        rules.correction_footnote.format(
            method_label=CORRECTION_LABELS.get(method, method),
            n_tests=n_tests,
            ratio_below=rules.notable_below,
            ratio_above=rules.notable_above,
            alpha=rules.alpha,
        ),
    ]
    if result["rr_corrected"].any():
        notes.append(rules.zero_events_note)
    if bench is not None:
        notes.append("Disproportionality index: the group's share of events ÷ its share of the benchmark population.")
    if (~shown).any():
        notes.append("Groups with suppressed counts are not compared (a ratio would reveal them).")
    notes.append(f"Standard: {std.title}, version {std.version}.")
    return DisaggregatedTable(result, [column], notes, std.version, table.title, table.tables, table.suppression_mark)


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
