"""Releases audited together (issue 20): the December attack and random overlapping periods and nested
geographies, through the release ledger with the real suppression code; every check is an LP written
here (scipy.optimize.linprog), over the finest counts a reader could reason about, from the tables as
published (shown numbers and marks only)."""

from __future__ import annotations

import json
import os
import stat
from itertools import product

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from citykit import paths
from citykit.reports import ledger
from citykit.standards import equity, suppression
from citykit.standards.suppression import TOTAL

RACES = ["White", "Black", "Asian"]
LABELS = {"White": "White", "Black or African American": "Black", "Asian": "Asian"}  # the standard's labels
INDICATOR = {"White": "race_white", "Black": "race_black", "Asian": "race_asian"}
RACE_COLUMNS = [f"race_{c}" for c in ("aian", "asian", "black", "hispanic", "mena", "nhpi", "white")]


def people(counts: dict[tuple[int, str, str, bool], int]) -> pd.DataFrame:
    """Decided applications: (month, neighborhood, race, approved) -> how many, with published-style ids."""
    rows = []
    for (month, hood, race, approved), n in counts.items():
        rows += [{"month": month, "neighborhood": hood, "race": race, "approved": approved}] * n
    df = pd.DataFrame(rows)
    df["application_id"] = [f"A-{i:010x}" for i in range(len(df))]
    for column in [*RACE_COLUMNS, "race_not_reported", "race_declined"]:
        df[column] = False
    for race, column in INDICATOR.items():
        df.loc[df["race"] == race, column] = True
    return df


class Releases:
    """Tables published one after another through a release ledger, and what a reader can work out."""

    def __init__(self, folder, data: pd.DataFrame):
        self.folder, self.data, self.published = folder, data, []

    def publish(self, months: range, hoods: list[str] | None, label: str):
        context = ledger.begin(self.folder, "town", "equity-report", {"release": label})
        ledger.activate(context)
        try:
            selection = self.data["month"].isin(list(months))
            if hoods is not None:
                selection &= self.data["neighborhood"].isin(hoods)
            table = equity.disaggregate(self.data[selection], by=["race_alone"], measure="approved")
        finally:
            ledger.activate(None)
        summary = ledger.finish(context, succeeded=True)
        grid = table.tables[0]
        self.published.append((months, hoods, grid, grid.marks()))
        return grid, summary

    def ranges(self, hidden_only: bool = True):
        """Min and max of every published cell's true count (hidden ones, or all), given everything
        published: one variable per (month, neighborhood, race, outcome) of the whole city, at least 0;
        shown cells fixed; hidden cells bounded by their marks ("≤10": 1 to 10, "†": above 10 unless
        an outcome beside a hidden group size, "‡": anything)."""
        months = sorted(self.data["month"].unique())
        hoods = sorted(self.data["neighborhood"].unique())
        races = sorted(set(self.data["race"]))
        outcomes = [True, False]
        index = {k: i for i, k in enumerate(product(months, hoods, races, outcomes))}
        n = len(index)

        def coefs(months_, hoods_, row, column):
            vec = np.zeros(n)
            for m, h, r, o in index:
                if m in months_ and (hoods_ is None or h in hoods_):
                    row_ok = row == TOTAL or r == row
                    col_ok = column == TOTAL or (column == "events") == o
                    if row_ok and col_ok:
                        vec[index[(m, h, r, o)]] = 1
            return vec

        a_eq, b_eq, a_ub, b_ub, cells = [], [], [], [], []
        for months_, hoods_, grid, marks in self.published:
            for row in grid.values.index:
                label = row if row == TOTAL else LABELS.get(str(row), "?")  # "?": a category nobody is in here
                for column in grid.values.columns:
                    vec = coefs(months_, hoods_, label, column)
                    value = int(grid.values.at[row, column])
                    if not grid.suppressed.at[row, column]:
                        a_eq.append(vec), b_eq.append(value)
                        if not hidden_only:
                            cells.append((vec, value, None))
                        continue
                    mark = marks.at[row, column]
                    if mark == "≤10":
                        a_ub += [-vec, vec]
                        b_ub += [-1, 10]
                    elif mark == "†" and not (column in grid.outcome_columns and grid.suppressed.at[row, TOTAL]):
                        a_ub.append(-vec), b_ub.append(-11)
                    cells.append((vec, value, mark))
        out = []
        for vec, value, mark in cells:
            low = linprog(vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub or None, b_ub=b_ub or None, bounds=(0, None))
            high = linprog(-vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub or None, b_ub=b_ub or None, bounds=(0, None))
            assert low.status == 0
            out.append((value, mark, low.fun, -high.fun if high.status == 0 else np.inf))
        return out


def december_city() -> pd.DataFrame:
    """One neighborhood's White decided applicants: 213 in the year, 206 from January to November,
    7 in December (the issue's figures), with a few others around them."""
    counts = {}
    for month in range(1, 12):
        counts[(month, "Harbor Point", "White", True)] = 14
        counts[(month, "Harbor Point", "White", False)] = 4
        counts[(month, "Harbor Point", "Black", True)] = 3
    counts[(11, "Harbor Point", "White", True)] = 14 + (206 - 18 * 11)
    counts[(12, "Harbor Point", "White", True)] = 5
    counts[(12, "Harbor Point", "White", False)] = 2
    counts[(12, "Harbor Point", "Black", True)] = 4
    return people(counts)


ORDERS = {
    "year, January-November, December": ["year", "jan-nov", "dec"],
    "December first": ["dec", "year", "jan-nov"],
    "year, December, January-November": ["year", "dec", "jan-nov"],
}
PERIODS = {"year": range(1, 13), "jan-nov": range(1, 12), "dec": range(12, 13)}


@pytest.mark.parametrize("order", list(ORDERS))
def test_the_december_attack_recovers_nothing(tmp_path, order):
    data = december_city()
    white = data[data["race"] == "White"]
    assert (len(white), (white["month"] <= 11).sum(), (white["month"] == 12).sum()) == (213, 206, 7)
    releases = Releases(tmp_path, data)
    for name in ORDERS[order]:
        releases.publish(PERIODS[name], None, name)
    # December's 7 White applicants: hidden as "≤10" in December's table, and never worked out from the three
    december = next(g for months, _, g, _ in releases.published if list(months) == [12])
    assert december.suppressed.at["White", TOTAL] and december.marks().at["White", TOTAL] == "≤10"
    for value, mark, low, high in releases.ranges():
        assert low - 1e-6 <= value <= high + 1e-6
        if 1 <= value <= 10:  # (a hidden 0 may be pinned by a shown 0 of a larger group: a zero reveals no one)
            assert high - low >= 5 - 1e-6, f"a hidden {value} ({mark}) ranges only over [{low:g}, {high:g}]"
    # and the difference itself: the year's White row minus January-November's is not pinned
    by_row = {name: g for name, (_, _, g, _) in zip(ORDERS[order], releases.published)}
    year, janov = by_row["year"], by_row["jan-nov"]
    assert year.suppressed.at["White", TOTAL] or janov.suppressed.at["White", TOTAL]


def test_without_the_ledger_the_attack_works(tmp_path):
    """The same three tables suppressed each on its own page (no ledger) give December away: the
    check above is able to fail."""
    data = december_city()
    releases = Releases(tmp_path, data)
    for name in ORDERS["year, January-November, December"]:
        selection = data["month"].isin(list(PERIODS[name]))
        grid = equity.disaggregate(data[selection], by=["race_alone"], measure="approved").tables[0]
        releases.published.append((PERIODS[name], None, grid, grid.marks()))
    pinned = [(v, lo, hi) for v, m, lo, hi in releases.ranges() if v <= 10 and hi - lo < 5 - 1e-6]
    assert (7, 7.0, 7.0) in [(v, round(lo), round(hi)) for v, lo, hi in pinned]


def city(seed: int) -> pd.DataFrame:
    """Six months, three neighborhoods: a few months or neighborhoods add up past 10 where one alone
    does not, so tables of overlapping periods and nested places differ by small counts."""
    rng = np.random.default_rng(seed)
    rates = {("White", True): 8, ("White", False): 3, ("Black", True): 4, ("Black", False): 2, ("Asian", True): 1,
             ("Asian", False): 1}  # fmt: skip
    counts = {}
    for month, hood, (race, approved) in product(range(1, 7), ["North", "South", "East"], rates):
        counts[(month, hood, race, approved)] = int(rng.poisson(rates[(race, approved)]))
    return people(counts)


release_strategy = st.tuples(
    st.integers(1, 2), st.integers(5, 6), st.sampled_from([None, ["North"], ["North", "South"]])
).map(lambda t: (range(t[0], t[1] + 1), t[2]))


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 1000), plan=st.lists(release_strategy, min_size=2, max_size=4))
def test_overlapping_periods_and_nested_geographies_recover_no_hidden_count(tmp_path_factory, seed, plan):
    releases = Releases(tmp_path_factory.mktemp("ledger"), city(seed))
    for i, (months, hoods) in enumerate(plan):
        releases.publish(months, hoods, f"r{i}")
    for value, mark, low, high in releases.ranges():
        assert low - 1e-6 <= value <= high + 1e-6
        if 1 <= value <= 10:
            assert high - low >= 5 - 1e-6, f"a hidden {value} ({mark}) ranges only over [{low:g}, {high:g}] ({plan})"


# -- the ledger's files and the runner's side -------------------------------------------------------


def test_a_release_records_its_tables_under_a_lock_and_a_failed_run_leaves_nothing(tmp_path):
    data = december_city()
    releases = Releases(tmp_path, data)
    _, summary = releases.publish(range(1, 13), None, "year")
    index = json.loads((tmp_path / "town.json").read_text(encoding="utf-8"))
    [release] = index["releases"]
    assert release["status"] == "published" and summary["audited_against"]["releases"] == 0
    [table] = release["tables"]
    assert table["key"] == "race_alone|approved" and table["people_count"] == len(data)
    assert summary["risk"].startswith("Disclosure risk: 1 table of people, audited with 0 earlier releases")
    # the people (what the hidden counts are made of) are kept in the data home, owner only, not beside the pages
    people_file = ledger.Ledger(tmp_path, "town").people_folder / table["people"]
    assert people_file.exists() and tmp_path not in people_file.parents
    assert stat.S_IMODE(people_file.parent.stat().st_mode) == 0o700
    assert paths.citykit_home() in people_file.parents
    context = ledger.begin(tmp_path, "town", "equity-report", {"period": "2025-12"})
    ledger.activate(context)
    try:
        equity.disaggregate(data[data["month"] == 12], by=["race_alone"], measure="approved")
    finally:
        ledger.activate(None)
    assert len(json.loads((tmp_path / "town.json").read_text(encoding="utf-8"))["releases"]) == 2
    assert ledger.finish(context, succeeded=False) is None
    after = json.loads((tmp_path / "town.json").read_text(encoding="utf-8"))
    assert [r["release"] for r in after["releases"]] == [release["release"]]
    # a later release names the state it was audited against
    _, second = releases.publish(range(1, 12), None, "jan-nov")
    assert second["audited_against"]["releases"] == 1 and second["audited_against"]["digest"]


def test_cells_hidden_further_counts_each_table_of_a_page_once(tmp_path):
    """A page with two tables of people (alone and in combination, audited together): each records
    the cells hidden for the ledger in it, and the page's count is no more than the cells its tables
    hide beyond what the same tables suppressed on their own hide (counted from the tables' marks)."""
    data = december_city()

    def pair(months):
        selection = data[data["month"].isin(list(months))]
        alone = equity.disaggregate(selection, by=["race_alone"], measure="approved")
        both = equity.disaggregate(selection, by=["race_in_combination"], measure="approved", alongside=alone)
        return {t.name: int(t.suppressed.to_numpy().sum()) for t in both.tables}

    on_its_own = pair(PERIODS["jan-nov"])
    summaries, hidden = [], {}
    for name in ["year", "jan-nov"]:
        context = ledger.begin(tmp_path, "town", "equity-report", {"release": name})
        ledger.activate(context)
        try:
            hidden = pair(PERIODS[name])
        finally:
            ledger.activate(None)
        summaries.append(ledger.finish(context, succeeded=True))
    beyond = {name: hidden[name] - on_its_own[name] for name in hidden}
    assert len(beyond) == 2 and summaries[1]["tables"] == 2
    index = json.loads((tmp_path / "town.json").read_text(encoding="utf-8"))
    recorded = {t["name"]: t["forced"] for t in index["releases"][1]["tables"]}
    assert recorded.keys() == beyond.keys()
    for name, forced in recorded.items():
        assert 0 < forced <= beyond[name], (name, forced, beyond[name])
    assert summaries[1]["cells_hidden_further"] == sum(recorded.values()) <= sum(beyond.values())


def test_without_a_release_nothing_is_recorded(tmp_path):
    assert suppression.set_release_reviewer(None) is None
    equity.disaggregate(december_city(), by=["race_alone"], measure="approved")
    assert not list(tmp_path.iterdir())


def test_where_the_ledger_lives(tmp_path, monkeypatch):
    monkeypatch.delenv(ledger.LEDGER_ENV, raising=False)
    archive = paths.reports_dir()
    assert ledger.ledger_folder(archive / "equity-report" / "x" / "2025-12-31") == archive.resolve() / ".citykit-ledger"
    assert ledger.ledger_folder(tmp_path / "out") == (tmp_path / "out").resolve() / ".citykit-ledger"
    assert ledger.ledger_folder(tmp_path / "b" / "x", batch_root=tmp_path / "b") == (tmp_path / "b") / ".citykit-ledger"
    monkeypatch.setenv(ledger.LEDGER_ENV, str(tmp_path / "shared"))
    assert ledger.ledger_folder(tmp_path / "out") == (tmp_path / "shared").resolve()


def test_releases_of_another_version_of_the_data_are_set_aside_not_fatal(tmp_path):
    """The same people published again after their outcomes changed (a newer export): the old
    release cannot be audited with the new one; the new one is still published, and says so."""
    data = december_city()
    releases = Releases(tmp_path, data)
    releases.publish(range(1, 13), None, "year")
    changed = data.copy()
    changed.loc[changed.index[:40], "approved"] = ~changed.loc[changed.index[:40], "approved"]
    releases.data = changed
    _, summary = releases.publish(range(1, 13), None, "year again")
    assert len(summary["set_aside"]) == 1 and "another version of the data" in summary["risk"]


def test_the_people_of_a_ledger_whose_folder_is_gone_are_removed(tmp_path):
    releases = Releases(tmp_path / "archive", december_city())
    releases.publish(range(1, 13), None, "year")
    people = ledger.Ledger(tmp_path / "archive", "town").people_folder
    assert any(people.iterdir())
    assert people.parent not in ledger.prune_orphans()  # its ledger is alive
    import shutil

    shutil.rmtree(tmp_path / "archive")
    assert people.parent not in ledger.prune_orphans()  # gone only now: perhaps an unmounted drive
    assert people.parent.exists()
    old = people.parent.stat().st_mtime - (ledger.ORPHAN_GRACE_DAYS * 86400 + 60)
    os.utime(people.parent, (old, old))
    assert people.parent in ledger.prune_orphans() and not people.parent.exists()


def test_runs_prune_orphaned_ledgers_once_an_hour_not_before_every_report(tmp_path, monkeypatch):
    """A batch worker runs many reports: the owner file of every ledger the data home ever had is read
    at its first report, then again only an hour later."""
    pruned = []
    monkeypatch.setattr(ledger, "_pruned", {})
    monkeypatch.setattr(ledger, "prune_orphans", lambda *args, **kwargs: pruned.append(1) or [])
    for _ in range(3):
        assert ledger.begin(tmp_path / "archive", "town", "report", {"period": "2025"}) is not None
    assert len(pruned) == 1
    later = ledger.time.monotonic() + ledger.PRUNE_EVERY + 1
    monkeypatch.setattr(ledger.time, "monotonic", lambda: later)
    ledger.begin(tmp_path / "archive", "town", "report", {"period": "2025"})
    assert len(pruned) == 2
