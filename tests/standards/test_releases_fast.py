"""The release audit's shortcuts change nothing it finds, and a page's tables stay as its first screen
showed them (issue 20, the release ledger).

- Leaving out earlier tables that share no one with the current ones, and not solving for a count
  whose range the counts found so far already show wide enough, give the same new exposures as the
  exhaustive audit (every table, every count solved), on random overlapping periods and nested
  neighborhoods published without the ledger (so that there is something to find).
- A table recorded again in the same release (a section of the page after its first screen) hides at
  least what its first copy hid: the "alone" table, extended by its "alone or in combination" pair,
  is not shown with fewer cells hidden when the page publishes it again on its own.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citykit.reports import ledger
from citykit.standards import equity
from citykit.standards.releases import TableRecord, audit_releases

RACE_COLUMNS = [f"race_{c}" for c in ("aian", "asian", "black", "hispanic", "mena", "nhpi", "white")]
LABEL = {"White": "White", "Black": "Black or African American", "Asian": "Asian"}  # the standard's labels


def city(seed: int) -> pd.DataFrame:
    """Decided applications over six months in three neighborhoods, a few per cell: small counts that
    add up past 10 over several months or neighborhoods."""
    rng = np.random.default_rng(seed)
    rates = {("White", True): 6, ("White", False): 2, ("Black", True): 3, ("Black", False): 2, ("Asian", True): 1,
             ("Asian", False): 1}  # fmt: skip
    rows = []
    for month, hood, (race, approved) in product(range(1, 7), ["North", "South", "East"], rates):
        rows += [{"month": month, "neighborhood": hood, "race": race, "approved": approved}] * int(
            rng.poisson(rates[(race, approved)])
        )
    df = pd.DataFrame(rows)
    df["application_id"] = [f"A-{i:010x}" for i in range(len(df))]
    for column in [*RACE_COLUMNS, "race_not_reported", "race_declined"]:
        df[column] = False
    for race in LABEL:
        df.loc[df["race"] == race, f"race_{race.lower()}"] = True
    return df


def record(data: pd.DataFrame, months: range, hoods: list[str] | None, release: str) -> TableRecord:
    """The race table of a selection, suppressed on its own page (no ledger), with its people."""
    selection = data["month"].isin(list(months))
    if hoods is not None:
        selection &= data["neighborhood"].isin(hoods)
    chosen = data[selection]
    table = equity.disaggregate(chosen, by=["race_alone"], measure="approved").tables[0]
    members = pd.DataFrame({
        "id": chosen["application_id"], "row": chosen["race"].map(LABEL),
        "column": np.where(chosen["approved"], "events", "no events"),
    })  # fmt: skip
    return TableRecord.from_table(table, members, key="race_alone|approved", release=release)


releases = st.tuples(
    st.integers(1, 3), st.integers(3, 6), st.sampled_from([None, ["North"], ["North", "South"], ["East"], ["South"]])
).map(lambda t: (range(t[0], t[1] + 1), t[2]))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.integers(0, 10_000), plan=st.lists(releases, min_size=2, max_size=4))
def test_the_shortcuts_find_what_the_exhaustive_audit_finds(seed, plan):
    data = city(seed)
    records = [record(data, months, hoods, f"r{i}") for i, (months, hoods) in enumerate(plan)]
    earlier, current = records[:-1], records[-1:]
    fast = audit_releases(earlier, current)
    slow = audit_releases(earlier, current, exhaustive=True)

    def found(audit):
        return {(e.key, e.kind, e.what, e.value): (e.low, e.high) for e in audit.new}

    assert found(fast).keys() == found(slow).keys(), plan
    for what, (low, high) in found(slow).items():
        assert np.isclose(found(fast)[what][0], low) and np.isclose(found(fast)[what][1], high), what
    assert fast.passed == slow.passed


def test_an_unrelated_release_is_left_out_and_changes_nothing():
    """An earlier table of other people (East only, while the page counts North) is left out: the
    audit is the same with and without it, and the same as the exhaustive audit with it."""
    data = city(7)
    year, first = record(data, range(1, 7), ["North"], "year"), record(data, range(1, 6), ["North"], "jan-may")
    east = record(data, range(1, 7), ["East"], "east")
    assert not set(east.members["id"]) & set(year.members["id"])  # other people

    def found(audit):
        return sorted((e.kind, e.what, e.value, e.already) for e in audit.exposures)

    without = audit_releases([year], [first])
    assert found(audit_releases([year, east], [first])) == found(without)
    assert [e.what for e in audit_releases([year, east], [first], exhaustive=True).new] == [e.what for e in without.new]


def test_a_table_recorded_again_in_a_release_hides_at_least_what_it_hid(tmp_path):
    """The report's first screen publishes the "alone" table, then its "alone or in combination" pair
    (which hides more of it); a section below publishes the "alone" table again on its own. Without
    the rule, that copy is suppressed as on a page of its own and shows cells the first screen hid."""
    data = city(0)
    extra = data.index[data["race"].eq("White")][:3]
    data.loc[extra, "race_asian"] = True  # a few people in two groups: the pair has something to hide
    context = ledger.begin(tmp_path, "town", "equity-report", {"page": "one"})
    ledger.activate(context)
    try:
        first = equity.disaggregate(data, by=["race_alone"], measure="approved")
        on_its_own = first.tables[0].suppressed.copy()
        equity.disaggregate(data, by=["race_in_combination"], measure="approved", alongside=first)
        shown_first = next(t for t in first.tables if t.name == "alone").suppressed.copy()  # the first screen's
        again = equity.disaggregate(data, by=["race_alone"], measure="approved")  # a section's copy, on its own
    finally:
        ledger.activate(None)
    ledger.finish(context, succeeded=True)
    assert (shown_first & ~on_its_own).to_numpy().any(), "the pair hides nothing more here: the test proves nothing"
    revealed = shown_first & ~again.tables[0].suppressed
    assert not revealed.to_numpy().any(), f"the page's later copy shows cells its first screen hid:\n{revealed}"


def test_a_row_of_no_value_is_audited_across_releases():
    """Walk-20b F0: the language row of applicants whose language was generalised away ("nan" in the
    table, "None" in the people's records, as `equity.disaggregate` hands them to the ledger) escaped
    the audit: the year's and January-November's pages printed it whole, and their difference is
    December's hidden approved count (5). The audit must find it."""
    rows = []
    for month in range(1, 13):
        null_approved, null_denied = (5, 7) if month == 12 else (20, 10)
        rows += [{"month": month, "language": None, "approved": True}] * null_approved
        rows += [{"month": month, "language": None, "approved": False}] * null_denied
        rows += [{"month": month, "language": "English", "approved": a} for a in [True] * 40 + [False] * 20]
    data = pd.DataFrame(rows).astype({"language": object})
    data["application_id"] = [f"A-{i:010x}" for i in range(len(data))]

    def page(name: str, months: range) -> TableRecord:  # suppressed on its own page, no ledger
        chosen = data[data["month"].isin(list(months))]
        table = equity.disaggregate(chosen, by=["language"], measure="approved").tables[0]
        members = pd.DataFrame({
            "id": chosen["application_id"], "row": chosen["language"].fillna("None"),  # as a None reaches the ledger
            "column": np.where(chosen["approved"], "events", "no events"),
        })  # fmt: skip
        return TableRecord.from_table(table, members, key="language|approved", release=name)

    year, december, first = page("year", range(1, 13)), page("dec", range(12, 13)), page("jan-nov", range(1, 12))
    assert ("nan", "events") in december.marks and year.shown[("nan", "events")] == 225
    assert first.shown[("nan", "events")] == 220  # so the year minus January-November is December's 5
    audit = audit_releases([year, december], [first])
    found = [e for e in audit.new if e.kind == "hidden" and e.cell == ("nan", "events") and e.value == 5]
    assert found, f"December's hidden 5 is not found: {[e.what for e in audit.new]}"
    assert found[0].low == found[0].high == 5
