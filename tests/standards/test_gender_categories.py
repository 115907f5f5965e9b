"""Gender tables keep every category of the standard, as race tables do (issue 20, first privacy walk):
a gender no one in the selection has is a published row of 0, in the standard's order, never a row that
vanishes (a missing row and a published 0 are different statements)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from citykit import equity, paths


def standard() -> dict:
    """The standard file itself (not the kit's reader): what the tables must follow."""
    return yaml.safe_load(paths.standard_file("disaggregation.yml").read_text(encoding="utf-8"))


def applications() -> pd.DataFrame:
    """Decided applications recorded as Woman, Man and Declined only: no Nonbinary, no Another gender.
    Every count is above 10, so nothing is suppressed and every number is compared."""
    groups = {"Woman": (25, 15), "Declined": (12, 12), "Man": (18, 12)}  # gender -> (approved, not approved)
    rows = [(g, a) for g, (yes, no) in groups.items() for a in [True] * yes + [False] * no]
    df = pd.DataFrame(rows, columns=["gender", "approved"])
    df["application_id"] = [f"A-{i:010x}" for i in range(len(df))]
    return df


@pytest.mark.parametrize("measure", ["approved", None])
def test_a_gender_with_no_one_is_a_row_of_zero_in_the_standards_order(measure):
    std = standard()
    categories = std["gender"]["categories"]
    df = applications()
    assert set(categories) - set(df["gender"]) == {"Nonbinary", "Another gender"}
    table = equity.disaggregate(df, by=["gender"], measure=measure)
    data = table.data
    assert data["gender"].astype(str).tolist() == categories  # every category, the standard's order
    expected = pd.crosstab(df["gender"], df["approved"]).reindex(index=categories, columns=[True, False], fill_value=0)
    assert data["n"].astype(int).tolist() == expected.sum(axis=1).tolist()
    if measure is not None:
        assert data["events"].astype(int).tolist() == expected[True].tolist()
    shown = table.display_frame().set_index("gender")
    zero = "0" if std["privacy"]["small_cells"]["show_zeros"] else std["privacy"]["small_cells"]["display"]
    for gender in ("Nonbinary", "Another gender"):
        assert shown.loc[gender, "n"] == zero  # published as the standard says, not left out
        assert not data.set_index(data["gender"].astype(str)).loc[gender, "n_suppressed"]
        if measure is not None:
            assert shown.loc[gender, "events"] == zero and shown.loc[gender, "rate"] == "—"  # no rate of no one


def test_generalised_and_other_values_follow_the_standards_categories():
    """The label k-anonymity merges into ("Nonbinary or another gender") and a value a page adds (the
    notebooks' "Not shown (privacy)") follow the standard's categories; a value missing stays last."""
    std = standard()
    merged = next(
        s["mapping"] for s in std["privacy"]["k_anonymity"]["generalisation_order"] if s.get("column") == "gender"
    )
    label = sorted(set(merged.values()))[0]
    df = applications()
    df.loc[:11, "gender"] = "Not shown (privacy)"
    df.loc[12:23, "gender"] = label
    df.loc[24:25, "gender"] = None
    data = equity.disaggregate(df, by=["gender"]).data
    assert data["gender"].astype(object).fillna("<empty>").tolist() == [
        *std["gender"]["categories"], label, "Not shown (privacy)", "<empty>"]  # fmt: skip
    expected = df["gender"].fillna("<empty>").value_counts()
    got = pd.Series(data["n"].astype("Float64").to_numpy(), index=data["gender"].astype(object).fillna("<empty>"))
    shown = got[~data["n_suppressed"].to_numpy()]
    assert (shown == expected.reindex(shown.index, fill_value=0)).all()
