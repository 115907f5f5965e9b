"""Disaggregation under the standard: SPD-15 presentations, intervals, ratios, suppression, display."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from statsmodels.stats import rates as poisson_rates
from statsmodels.stats.contingency_tables import Table2x2
from test_privacy import CATEGORIES, applications

from citykit.errors import CitykitError
from citykit.standards import equity, suppression

LABELS = {
    "aian": "American Indian or Alaska Native",
    "asian": "Asian",
    "black": "Black or African American",
    "hispanic": "Hispanic or Latino",
    "mena": "Middle Eastern or North African",
    "nhpi": "Native Hawaiian or Pacific Islander",
    "white": "White",
}
MULTI = "Multiracial and/or Multiethnic"


def people(*selections: list[str]) -> pd.DataFrame:
    """One row per person; a selection lists category codes, or 'not_reported' / 'declined'."""
    rows = []
    for chosen in selections:
        row = {f"race_{c}": c in chosen for c in CATEGORIES}
        row["race_not_reported"] = "not_reported" in chosen
        row["race_declined"] = "declined" in chosen
        rows.append(row)
    return pd.DataFrame(rows)


# -- SPD-15 presentations ----------------------------------------------------------------------


def test_alone_and_in_combination_by_hand():
    df = people(
        ["asian"],
        ["asian", "white"],
        ["black"],
        ["hispanic", "black", "white"],
        ["not_reported"],
        ["declined"],
        ["white"],
    )
    alone = equity.race_alone(df)
    assert alone.tolist() == ["Asian", MULTI, "Black or African American", MULTI, "Not reported", "Declined", "White"]
    assert alone.value_counts().sum() == len(df)  # "alone" sums to N
    combo = equity.race_alone_or_in_combination(df)
    counts = combo.value_counts()
    assert counts["Asian"] == 2 and counts["White"] == 3 and counts["Black or African American"] == 2
    assert counts["Hispanic or Latino"] == 1 and counts[MULTI] == 0
    assert counts.sum() == 7 + 1 + 2  # past N: one extra for the pair, two for the triple
    assert sorted(combo.index[combo == "White"]) == [1, 3, 6]


def test_generalised_multiracial_rows_from_k_anonymity():
    df = people(["asian", "white"], ["black"])
    df[[f"race_{c}" for c in CATEGORIES]] = df[[f"race_{c}" for c in CATEGORIES]].astype("boolean")
    df.loc[0, [f"race_{c}" for c in CATEGORIES]] = pd.NA
    assert equity.race_alone(df).tolist() == [MULTI, "Black or African American"]
    assert equity.race_alone_or_in_combination(df).tolist() == [MULTI, "Black or African American"]


def test_alone_counts_match_sql_on_random_people():
    df = applications(3000, seed=11)
    alone = equity.race_alone(df).value_counts()
    indicator_sum = " + ".join(f"race_{c}::INT" for c in CATEGORIES)
    sql = duckdb.sql(
        f"""
        SELECT count(*) FILTER (WHERE {indicator_sum} >= 2) AS multi,
               count(*) FILTER (WHERE {indicator_sum} = 1 AND race_asian) AS asian_alone,
               count(*) FILTER (WHERE {indicator_sum} = 0 AND race_declined) AS declined,
               count(*) FILTER (WHERE race_white) AS white_any
        FROM df
        """
    ).fetchall()[0]
    assert (alone[MULTI], alone["Asian"], alone["Declined"]) == sql[:3]
    assert equity.race_alone_or_in_combination(df).value_counts()["White"] == sql[3]


def test_single_select_hispanic_first_then_largest_non_white():
    df = people(["hispanic", "white"], ["asian", "black", "white"], ["asian", "white"], ["white"], ["declined"])
    population = {"black": 900, "asian": 500, "white": 5000}
    chosen = equity.single_select(df, population)
    assert chosen.tolist() == ["Hispanic or Latino", "Black or African American", "Asian", "White", "Declined"]


# -- intervals and ratios ----------------------------------------------------------------------


@pytest.mark.parametrize(("events", "n"), [(0, 5), (1, 1), (3, 7), (0, 1), (17, 40), (480, 1000)])
def test_wilson_interval_matches_scipy(events, n):
    low, high = equity.wilson_interval([events], [n])
    expected = binomtest(events, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert low[0] == pytest.approx(expected.low, abs=1e-12)
    assert high[0] == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_with_no_people_is_missing():
    low, high = equity.wilson_interval([0], [0])
    assert math.isnan(low[0]) and math.isnan(high[0])


@pytest.mark.parametrize(
    ("a", "n_a", "b", "n_b"), [(30, 1000, 20, 1500), (3, 12, 40, 90), (1, 2, 1, 3), (250, 900, 300, 1000)]
)
def test_rate_ratio_matches_statsmodels(a, n_a, b, n_b):
    result = equity.rate_ratio(a, n_a, b, n_b)
    low, high = poisson_rates.confint_poisson_2indep(a, n_a, b, n_b, method="wald-log", compare="ratio")
    test = poisson_rates.test_poisson_2indep(a, n_a, b, n_b, method="wald-log", compare="ratio")
    assert result.estimate == pytest.approx((a / n_a) / (b / n_b))
    assert (result.low, result.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    assert result.p_value == pytest.approx(test.pvalue, rel=1e-9)
    assert not result.corrected


def test_rate_ratio_zero_events_uses_half_counts_and_both_zero_gives_nothing():
    result = equity.rate_ratio(0, 1000, 20, 1500)
    low, high = poisson_rates.confint_poisson_2indep(0.5, 1000, 20.5, 1500, method="wald-log", compare="ratio")
    assert result.corrected
    assert result.estimate == pytest.approx((0.5 / 1000) / (20.5 / 1500))
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))
    nothing = equity.rate_ratio(0, 10, 0, 10)
    assert all(math.isnan(v) for v in (nothing.estimate, nothing.low, nothing.high, nothing.p_value))
    assert math.isnan(equity.rate_ratio(3, 0, 4, 10).estimate)


def test_disproportionality_index_by_hand():
    result = equity.disproportionality_index(120, 400, 2000, 10000)
    ci = binomtest(120, 400).proportion_ci(method="wilson")
    assert result.estimate == pytest.approx((120 / 400) / 0.2)
    assert result.low == pytest.approx(ci.low / 0.2) and result.high == pytest.approx(ci.high / 0.2)
    assert result.p_value == pytest.approx(binomtest(120, 400, 0.2).pvalue)


def hand_holm(p):
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def hand_bh(p):
    order = np.argsort(p)[::-1]
    m = len(p)
    adjusted = np.empty(m)
    running = 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, p[i] * m / rank)
        adjusted[i] = running
    return adjusted


def test_multiple_comparison_corrections_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.005])
    assert equity.adjust_p_values(p, "holm") == pytest.approx(hand_holm(p))
    assert equity.adjust_p_values(p, "fdr_bh") == pytest.approx(hand_bh(p))
    with_gap = equity.adjust_p_values([0.01, np.nan, 0.04], "holm")
    assert math.isnan(with_gap[1]) and with_gap[[0, 2]] == pytest.approx(hand_holm(np.array([0.01, 0.04])))


# -- disaggregate ------------------------------------------------------------------------------


def approvals(n=4000, seed=21, neighborhoods=30):
    df = applications(n, seed=seed, neighborhoods=neighborhoods)
    rng = np.random.default_rng(seed)
    df["approved"] = rng.random(n) < np.where(df["race_black"], 0.25, 0.45)
    return df


def test_disaggregate_counts_rates_and_suppression():
    df = approvals()
    table = equity.disaggregate(df, by=["race_alone"], measure="approved")
    data = table.data.set_index("race_alone")
    expected = pd.DataFrame({"group": equity.race_alone(df).astype(str), "approved": df["approved"]})
    by_hand = expected.groupby("group")["approved"].agg(["size", "sum"])
    for group, row in data.iterrows():
        n, events = by_hand.loc[str(group)]
        if not row["n_suppressed"]:
            assert row["n"] == n
        if not row["events_suppressed"]:
            assert row["events"] == events
            assert not 1 <= events <= 10
        if not row["rate_suppressed"]:
            assert row["rate"] == pytest.approx(events / n)
            ci = binomtest(int(events), int(n)).proportion_ci(method="wilson")
            assert (row["rate_low"], row["rate_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
            assert row["unstable"] == (events <= 20)
        else:
            assert math.isnan(row["rate"])
        if 1 <= events <= 10:
            assert row["events_suppressed"] and row["rate_suppressed"]
    assert table.audit().passed
    assert any("sum to 100%" in note for note in table.footnotes)


def test_small_groups_are_suppressed_in_display_and_html():
    # 6 neighborhoods x 5 genders: both markers ("≤10" and "†") still appear, and the complementary
    # suppression's search stays small (30 neighborhoods took 80 s to minutes; size is not the point here)
    df = approvals(400, seed=5, neighborhoods=6)
    table = equity.disaggregate(df, by=["neighborhood", "gender"], measure="approved", title="Approvals")
    shown = table.display_frame()
    hidden = table.data["events_suppressed"].to_numpy()
    assert hidden.any()
    groups = pd.MultiIndex.from_frame(table.data[["neighborhood", "gender"]].astype(object))  # every gender: 0s too
    true_events = df.groupby(["neighborhood", "gender"])["approved"].sum().reindex(groups, fill_value=0).to_numpy()
    small = (true_events >= 1) & (true_events <= 10)
    # "≤10" exactly on the hidden counts from 1 to 10 of groups whose size is shown; "†" elsewhere
    size_shown = ~table.data["n_suppressed"].to_numpy()
    assert (shown.loc[hidden & small & size_shown, "events"] == "≤10").all()
    assert (shown.loc[hidden & ~(small & size_shown), "events"] == "†").all()
    assert (shown.loc[hidden, "rate"] == "—").all()
    html = table._repr_html_()
    assert html == table.to_html()
    assert "≤10" in html and "Approvals" in html and "protect privacy" in html
    assert "†" in html and "cannot be worked out" in html
    # nothing from 1 to 10 is published
    published = table.data[["n", "events"]].astype("Float64")
    assert not ((published >= 1) & (published <= 10)).any().any()
    assert table.audit().passed


def test_in_combination_table_sums_past_total_and_is_audited_with_alone():
    df = approvals(2500, seed=8)
    table = equity.disaggregate(df, by=["race_in_combination"], measure="approved")
    n_total = int(table.tables[0].values.loc["Total", "Total"])
    assert n_total == len(df)
    true_sum = equity.race_alone_or_in_combination(df).value_counts().sum()
    assert true_sum > len(df)
    assert [t.name for t in table.tables] == ["in combination", "alone"]
    assert not table.tables[0].rows_add_up
    assert table.audit().passed
    assert any("more than 100%" in note for note in table.footnotes)


def test_requests_are_not_suppressed():
    requests = pd.DataFrame({"neighborhood": ["A"] * 3 + ["B"] * 40})
    table = equity.disaggregate(requests, by=["neighborhood"], people=False)
    assert table.data["n"].tolist() == [3, 40]
    assert any("not tables of people" in note or "not suppressed" in note for note in table.footnotes)


def test_rates_per_population_denominator():
    requests = pd.DataFrame({"neighborhood": ["A"] * 30 + ["B"] * 50})
    population = pd.Series({"A": 1000, "B": 5000})
    table = equity.disaggregate(requests, by=["neighborhood"], denominator=population, people=False, per=1000)
    data = table.data.set_index("neighborhood")
    assert data.loc["A", "rate"] == pytest.approx(0.03) and data.loc["B", "rate"] == pytest.approx(0.01)
    assert "30.0" in table.display_frame().loc[0, "rate"]


def test_suppress_a_plain_frame():
    published = equity.suppress(pd.DataFrame({"a": [3, 50, 0], "b": [60, 70, 80]}))
    assert published.suppressed.loc[0, "a"]
    assert published.shown.loc[2, "a"] == 0
    assert suppression.audit(published).passed


# -- disparities -------------------------------------------------------------------------------


def test_disparities_against_reference_with_holm():
    df = approvals(6000, seed=3)
    table = equity.disaggregate(df, by=["race_alone"], measure="approved")
    result = equity.disparities(table).data.set_index("race_alone")
    data = table.data.set_index("race_alone")
    white = data.loc["White"]
    black = data.loc["Black or African American"]
    # approval is a share of people: the ratio of two proportions (Katz), statsmodels' Table2x2
    low, high = Table2x2(
        np.array(
            [
                [int(black["events"]), int(black["n"] - black["events"])],
                [int(white["events"]), int(white["n"] - white["events"])],
            ]
        )
    ).riskratio_confint()
    assert result.loc["Black or African American", "rr_low"] == pytest.approx(low)
    assert result.loc["Black or African American", "rr_high"] == pytest.approx(high)
    assert bool(result.loc["Black or African American", "notable"])
    compared = result["rr_p"].dropna()
    assert result.loc[compared.index, "rr_p_adjusted"].to_numpy() == pytest.approx(hand_holm(compared.to_numpy()))
    assert math.isnan(result.loc["White", "rate_ratio"])
    suppressed = data.index[data["rate_suppressed"]]
    assert result.loc[suppressed, "rate_ratio"].isna().all()
    notes = " ".join(equity.disparities(table).footnotes)
    assert "Holm" in notes and f"{len(compared)} comparisons" in notes
    with pytest.raises(CitykitError, match="reference group"):
        equity.disparities(table, reference="Martian")
