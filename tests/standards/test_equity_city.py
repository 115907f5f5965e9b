"""The equity standard on the bundled city (Riverton): corrected comparisons, no outcome of a small
group, and a guard on how much of the neighborhood × group approval table is shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.multitest import multipletests

import citykit
from citykit.standards import equity, load_disaggregation


def decided(period=None) -> pd.DataFrame:
    try:
        apps = citykit.load("program_applications", dataset="riverton", period=period)
    except citykit.CitykitError as reason:  # pragma: no cover - the bundled city is built by make setup
        pytest.skip(f"the bundled city is not built: {reason}")
    d = apps[apps["outcome"].isin(["Approved", "Denied"])].copy()
    d["approved"] = d["outcome"].eq("Approved")
    return d


def significant_by_statsmodels(d: pd.DataFrame, column: str, reference: str, groups) -> list[str]:
    """Holm-corrected Katz comparisons from statsmodels' Table2x2, on plain pandas counts."""
    counts = d.groupby(column)["approved"].agg(["sum", "size"])
    ref = counts.loc[reference]
    p = []
    for group in groups:
        row = counts.loc[group]
        table = np.array([[row["sum"], row["size"] - row["sum"]], [ref["sum"], ref["size"] - ref["sum"]]])
        p.append(Table2x2(table).log_riskratio_pvalue())
    adjusted = multipletests(p, method=load_disaggregation().disparity.correction)[1]
    return sorted(g for g, q in zip(groups, adjusted, strict=False) if q < 0.05)


def test_language_comparisons_use_the_ratio_of_proportions():
    d = decided("2025")
    d["language"] = d["language"].fillna(
        "Not shown (privacy)"
    )  # generalised away by k-anonymity, as report 13 shows it
    table = equity.disaggregate(d, by=["language"], measure="approved")
    result = equity.disparities(table, reference="English").data
    compared = result.dropna(subset=["rr_p"])
    found = sorted(compared.loc[compared["rr_p_adjusted"] < 0.05, "language"].astype(str))
    others = [g for g in compared["language"].astype(str)]
    assert found == significant_by_statsmodels(d, "language", "English", others)
    assert "Spanish" in found and len(found) > 2  # the Poisson interval found only "Other, Spanish"
    spanish = result.set_index("language").loc["Spanish"]
    assert spanish["adverse_ratio"] > 1.25  # framed as denials, Spanish is well above English


def test_hispanic_against_white_is_significant_after_correction():
    d = decided("2025")
    table = equity.disaggregate(d, by=["race_alone"], measure="approved")
    result = equity.disparities(table).data.set_index("race_alone")
    hispanic = result.loc["Hispanic or Latino"]
    assert hispanic["rr_high"] < 1 and hispanic["rr_p_adjusted"] < 0.05


def test_millbrook_q4_shows_no_outcome_beside_a_hidden_group_size():
    d = decided("2025-Q4")
    table = equity.disaggregate(d[d["neighborhood"] == "Millbrook"], by=["race_alone"], measure="approved")
    data = table.data
    assert not (data["n_suppressed"] & ~data["events_suppressed"]).any(), "an outcome is shown beside a hidden size"
    shown = table.display_frame()
    assert not ((shown["n"] == "≤10") & (shown["events"] == "0")).any()
    assert table.audit().passed


def people_in_shown_rates(period: str, collapse=None) -> float:
    d = decided(period)
    people = shown = 0
    for _, group in d[d["neighborhood"].notna()].groupby("neighborhood"):
        data = equity.disaggregate(group, by=["race_alone"], measure="approved", collapse=collapse).data
        people += len(group)
        shown += int(data.loc[~data["rate_suppressed"], "n"].sum())
    return shown / people


# measured after the change (standard 1.1.0); before it: 57.3% for 2025 and 18.4% for 2025-Q4. Standard
# 1.4.0 (k-anonymity over the month, gender, race and language: 35% of applications lose their
# neighborhood, 13% before) measured 0.845, 0.499 and 0.499 (1.3.1's data: 0.872, 0.459, 0.508).
# Standard 1.4.2 (the outcome rule reads decided members only, so a small class of one decided outcome
# plus Pending is generalised too: 2025's November and December rows lose their neighborhood more
# often, 59 fewer decided 2025 applicants with one) measured 0.809, 0.508 and 0.508. Of 2025's fall
# (417 people fewer in shown rates) 378 are Maple Commons, where one White applicant fewer leaves 10
# denials, so its Black (342) and White (35) approval rates are both hidden; before, 0.845.
@pytest.mark.parametrize(
    ("period", "collapse", "floor"),
    [
        ("2025", None, 0.809),
        ("2025-Q4", None, 0.459),
        ("2025-Q4", "small_groups_to_other", 0.499),
    ],
)
def test_share_of_neighborhood_group_approval_rates_shown_does_not_fall(period, collapse, floor):
    assert people_in_shown_rates(period, collapse) >= floor - 0.0005


# -- the reviewer's cases A, D, E: the "alone" and "alone or in combination" tables of report 13 --------


def report_pair(period: str, neighborhood=None):
    """The two race tables as notebook 13 publishes them, and DuckDB on the same applications."""
    from citykit.lessons import reference

    apps = citykit.load("program_applications", dataset="riverton", period=period, neighborhood=neighborhood)
    d = apps[apps["outcome"].isin(["Approved", "Denied"])].copy()
    d["approved"] = d["outcome"].eq("Approved")
    alone = equity.disaggregate(
        d, by=["race_alone"], measure="approved", per=100, collapse="small_groups_to_other", reference="White"
    )
    combined = equity.disaggregate(d, by=["race_in_combination"], measure="approved", per=100, alongside=alone)
    db = reference.connect("riverton", period, neighborhood, tables=("program_applications",))
    assert alone.audit().passed
    shown = [t.data.set_index(t.data[t.by[0]].astype(str)) for t in (alone, combined)]
    return *shown, db


def duck(db, where: str) -> int:
    return db.sql(f"SELECT count(*) FROM applications WHERE outcome IN ('Approved', 'Denied') AND {where}").fetchone()[
        0
    ]


CATS = ("aian", "asian", "black", "hispanic", "mena", "nhpi", "white")
MULTI = "Multiracial and/or Multiethnic"


def test_a_multiracial_in_combination_is_not_pinned_by_the_extra_selections():
    a, c, db = report_pair("2025")
    selections = " + ".join(f"coalesce(race_{x}::int, 0)" for x in CATS)
    multi_alone = duck(db, f"({selections}) >= 2")
    extra = db.sql(
        f"SELECT sum({selections}) FROM applications WHERE outcome IN ('Approved', 'Denied') AND ({selections}) >= 2"
    ).fetchone()[0]
    assert not a.loc[MULTI, "n_suppressed"] and a.loc[MULTI, "n"] >= multi_alone  # + the generalised people
    # in combination, Multiracial holds the people whose categories k-anonymity generalised away:
    # Σ(in combination − alone) / 2 bounds it, so it is shown (its true number) or not pinned
    generalised = int(a.loc[MULTI, "n"]) - multi_alone
    assert extra >= 2 * multi_alone
    assert not c.loc[MULTI, "n_suppressed"] and c.loc[MULTI, "n"] == generalised


def test_d_declined_hidden_alone_is_hidden_in_combination():
    a, c, db = report_pair("2025-11")  # the case on the bundled city published under standard 1.4.0
    declined = duck(db, "race_declined")
    assert declined > 10  # the case: a complementary "†" in one table, printed in the other
    assert a.loc["Declined", "n_suppressed"] and c.loc["Declined", "n_suppressed"]
    assert pd.isna(c.loc["Declined", "n"])


def test_e_white_hidden_alone_is_hidden_in_combination_without_multiracial_people():
    a, c, db = report_pair("2025-07", "Cedar Flats")  # the case on the city published under standard 1.4.0
    selections = " + ".join(f"coalesce(race_{x}::int, 0)" for x in CATS)
    assert duck(db, f"({selections}) >= 2") == 0  # no Multiracial person: alone = in combination
    white = duck(db, "race_white")
    assert white == duck(db, f"race_white AND ({selections}) = 1") and white > 0
    assert a.loc["White", "n_suppressed"] and c.loc["White", "n_suppressed"]
    assert pd.isna(c.loc["White", "n"]) and pd.isna(c.loc["White", "events"])
