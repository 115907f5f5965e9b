"""Tables of people beyond `disaggregate` in the release ledger (issue 20): `equity.crosstab` (module 07's
neighborhood × race table) is audited with the earlier releases, and a table is said to be withheld whole
only when its cells carry the withheld mark. Every check reads the ledger's own JSON or the tables as
published and recomputes what a reader can work out (scipy.optimize.linprog), not the ledger's verdict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import linprog

from citykit import paths
from citykit.reports import ledger
from citykit.standards import equity
from citykit.standards.suppression import TOTAL

RACES = {"White": "race_white", "Black or African American": "race_black"}
OTHER = ["race_aian", "race_asian", "race_hispanic", "race_mena", "race_nhpi", "race_not_reported", "race_declined"]


def small_cells() -> dict:
    return yaml.safe_load((paths.standards_dir() / "disaggregation.yml").read_text(encoding="utf-8"))["privacy"][
        "small_cells"
    ]


def applicants(counts: dict[tuple[int, str, str], int]) -> pd.DataFrame:
    """(month, neighborhood, race label) -> how many applicants, with published-style ids."""
    rows = [{"month": m, "neighborhood": h, "race": r} for (m, h, r), n in counts.items() for _ in range(n)]
    df = pd.DataFrame(rows)
    df["application_id"] = [f"A-{i:010x}" for i in range(len(df))]
    for column in [*RACES.values(), *OTHER]:
        df[column] = False
    for label, column in RACES.items():
        df.loc[df["race"] == label, column] = True
    return df


def town() -> pd.DataFrame:
    """Two neighborhoods over a year: December adds 1 to 10 people to each cell, the year is well above 10."""
    counts = {}
    for month in range(1, 12):
        counts |= {(month, "North", "White"): 3, (month, "North", "Black or African American"): 2,
                   (month, "South", "White"): 2, (month, "South", "Black or African American"): 4}  # fmt: skip
    counts |= {(12, "North", "White"): 6, (12, "North", "Black or African American"): 3,
               (12, "South", "White"): 4, (12, "South", "Black or African American"): 7}  # fmt: skip
    return applicants(counts)


def publish(folder, df: pd.DataFrame, label: str, *, with_ledger: bool = True) -> pd.DataFrame:
    """The crosstab as a report publishes it: shown numbers, marks where hidden."""
    context = ledger.begin(folder, "town", "07-disaggregation", {"period": label}) if with_ledger else None
    ledger.activate(context)
    try:
        table = equity.crosstab(df, "neighborhood", "race_alone", title=f"Applicants, {label}")
    finally:
        ledger.activate(None)
    ledger.finish(context, succeeded=True)
    marks = table.marks()
    return table.shown.astype(object).where(marks.eq(""), marks)


def december_ranges(pages: dict[str, pd.DataFrame], truth: pd.DataFrame) -> dict[tuple[str, str], tuple]:
    """For each December (neighborhood, race) count, its range given the year's and January-November's pages:
    variables are the January-November and December counts of each cell, shown cells fixed, "≤10" 1 to 10."""
    hoods, races = sorted(truth["neighborhood"].unique()), list(RACES)
    index = {k: i for i, k in enumerate((p, h, r) for p in ("jan-nov", "dec") for h in hoods for r in races)}
    parts = {"year": ("jan-nov", "dec"), "jan-nov": ("jan-nov",)}
    display = small_cells()["display"]  # the "≤10" mark, read once
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for name, page in pages.items():
        for hood in [*hoods, TOTAL]:
            for race in [*races, TOTAL]:
                vec = np.zeros(len(index))
                for p in parts[name]:
                    for h in hoods if hood == TOTAL else [hood]:
                        for r in races if race == TOTAL else [race]:
                            vec[index[(p, h, r)]] = 1
                value = page.at[hood, race] if race in page.columns else 0
                if value == display:
                    a_ub += [-vec, vec]
                    b_ub += [-1, 10]
                elif isinstance(value, (int, np.integer)):
                    a_eq.append(vec), b_eq.append(int(value))
    out = {}
    for hood in hoods:
        for race in races:
            vec = np.zeros(len(index))
            vec[index[("dec", hood, race)]] = 1
            low = linprog(vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub or None, b_ub=b_ub or None, bounds=(0, None))
            high = linprog(-vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub or None, b_ub=b_ub or None, bounds=(0, None))
            out[(hood, race)] = (low.fun, -high.fun if high.status == 0 else np.inf)
    return out


def test_the_crosstab_of_two_overlapping_periods_gives_no_december_count_away(tmp_path):
    data = town()
    december = data[data["month"] == 12].groupby(["neighborhood", "race"]).size()
    assert december.between(1, 10).all()
    pages = {
        "year": publish(tmp_path, data, "year"),
        "jan-nov": publish(tmp_path, data[data["month"] <= 11], "jan-nov"),
    }
    for (hood, race), (low, high) in december_ranges(pages, data).items():
        value = december[(hood, race)]
        assert low - 1e-6 <= value <= high + 1e-6
        assert high - low >= 5 - 1e-6, f"December {hood} {race} ({value}) ranges only over [{low:g}, {high:g}]"
    index = json.loads((tmp_path / "town.json").read_text(encoding="utf-8"))
    assert [t["key"] for r in index["releases"] for t in r["tables"]] == ["neighborhood × race_alone|count"] * 2


def test_without_the_ledger_the_crosstabs_give_december_away(tmp_path):
    """The same pages, each suppressed on its own: the check above is able to fail."""
    data = town()
    pages = {
        "year": publish(tmp_path, data, "year", with_ledger=False),
        "jan-nov": publish(tmp_path, data[data["month"] <= 11], "jan-nov", with_ledger=False),
    }
    pinned = [k for k, (low, high) in december_ranges(pages, data).items() if high - low < 5 - 1e-6]
    assert pinned


def test_a_table_hidden_by_its_small_counts_is_not_said_to_be_withheld(tmp_path):
    """walk-20 #6: a page said "withheld whole" for tables whose cells were all hidden but marked "≤10" and "†".
    The summary counts as withheld only the tables whose every cell carries the withheld mark ("‡")."""
    people = pd.DataFrame(
        {"gender": ["Man"] * 4 + ["Woman"] * 3, "approved": [True, False, True, True, False, True, True]}
    )
    people["application_id"] = [f"A-{i:010x}" for i in range(len(people))]
    context = ledger.begin(tmp_path, "town", "equity-report", {"period": "2025-12"})
    ledger.activate(context)
    try:
        table = equity.disaggregate(people, by=["gender"], measure="approved")
    finally:
        ledger.activate(None)
    summary = ledger.finish(context, succeeded=True)
    index = json.loads((tmp_path / "town.json").read_text(encoding="utf-8"))
    recorded = [t for r in index["releases"] for t in r["tables"]]
    # every cell with people in it hidden (the genders with no one are rows of 0, as the standard shows zeros)
    assert recorded and all(value == 0 for t in recorded for *_, value in t["shown"])
    withheld = sum(bool(t["marks"]) and {m for _, _, m in t["marks"]} == {small_cells()["withheld_display"]}
                   for t in recorded)  # fmt: skip
    assert summary["tables_withheld"] == withheld == 0
    assert "withheld whole" not in summary["risk"]
    assert (
        table.display_frame().set_index("gender").loc[["Man", "Woman"], "n"].tolist() == [small_cells()["display"]] * 2
    )


def test_each_recorded_table_carries_its_own_page_title(tmp_path):
    """walk-20 #7: the ledger recorded the "alone" table under the "alone or in combination" table's title."""
    people = town()
    people["approved"] = people.index % 3 != 0
    context = ledger.begin(tmp_path, "town", "equity-report", {"period": "2025"})
    ledger.activate(context)
    try:
        alone = equity.disaggregate(people, by=["race_alone"], measure="approved", title="Approval, alone")
        equity.disaggregate(people, by=["race_in_combination"], measure="approved", alongside=alone,
                            title="Approval, alone or in combination")  # fmt: skip
    finally:
        ledger.activate(None)
    ledger.finish(context, succeeded=True)
    index = json.loads((tmp_path / "town.json").read_text(encoding="utf-8"))
    titles = {t["name"]: t["title"] for r in index["releases"] for t in r["tables"]}
    assert titles == {"alone": "Approval, alone", "in combination": "Approval, alone or in combination"}


def test_a_total_hidden_in_one_breakdown_is_not_printed_by_another(tmp_path):
    """walk-20 #16: race-only pages for the fourth quarter, November and December, then an October page with a
    race and a gender table of the same people. The race table's White (all of them) is hidden by the ledger,
    but the gender table printed its Woman row (the same 13 people) and with the quarter's 30 pinned November
    and December (both "≤10") to 7-10. LP here over each month's approved and other counts, from the pages'
    shown numbers and marks: each month's count from 1 to 10 keeps the standard's range of 5."""
    counts = {10: (9, 4), 11: (5, 3), 12: (6, 3)}  # month -> (approved, not approved)
    rows = [{"month": m, "approved": a} for m, (yes, no) in counts.items() for a in [True] * yes + [False] * no]
    people = pd.DataFrame(rows).assign(gender="Woman")
    people["application_id"] = [f"A-{i:010x}" for i in range(len(people))]
    for column in [*RACES.values(), *OTHER]:
        people[column] = column == "race_white"
    pages = []  # (months, table as published)

    def page(months, *breakdowns):
        context = ledger.begin(tmp_path, "town", "equity-report", {"period": str(months)})
        ledger.activate(context)
        try:
            for by in breakdowns:
                table = equity.disaggregate(people[people["month"].isin(months)], by=[by], measure="approved")
                pages.append((months, table.tables[0]))
        finally:
            ledger.activate(None)
        ledger.finish(context, succeeded=True)

    page([10, 11, 12], "race_alone")
    page([11], "race_alone")
    page([12], "race_alone")
    page([10], "race_alone", "gender")
    rules = small_cells()
    index = {(m, o): i for i, (m, o) in enumerate((m, o) for m in counts for o in ("events", "no events"))}
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for months, grid in pages:
        marks = grid.marks()
        for row in grid.values.index:
            for column in grid.values.columns:
                vec = np.zeros(len(index))
                if row in (TOTAL, "White", "Woman"):  # every person is White and a woman: other rows count no one
                    for m in months:
                        for o in ("events", "no events") if column == TOTAL else [column]:
                            vec[index[(m, o)]] = 1
                if not grid.suppressed.at[row, column]:
                    a_eq.append(vec), b_eq.append(int(grid.values.at[row, column]))
                elif marks.at[row, column] == rules["display"]:
                    a_ub += [-vec, vec]
                    b_ub += [-1, 10]
    for month, (yes, no) in counts.items():
        if not 1 <= yes + no <= 10:
            continue
        vec = np.zeros(len(index))
        vec[[index[(month, "events")], index[(month, "no events")]]] = 1
        low = linprog(vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=(0, None))
        high = linprog(-vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=(0, None))
        assert low.status == 0 and high.status == 0
        assert -high.fun - low.fun >= 5 - 1e-6, f"month {month} ({yes + no}) within [{low.fun:g}, {-high.fun:g}]"


def test_a_ledger_made_under_another_key_is_a_one_line_error_not_a_silent_pass(tmp_path, monkeypatch):
    """walk-20 #18: the key went missing (a data home copied without .secrets), a new one made new ids, and the
    ledger, matching nobody, let the year and January-November pages give December away. Now the ledger notes
    which key each release was made under and refuses, naming the key file, to audit against another's."""
    import hashlib
    import hmac

    import pytest

    from citykit.errors import CitykitError
    from citykit.standards.pseudonyms import dataset_key, key_file

    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    dataset_key("town")
    data = town()
    publish(tmp_path / "ledger", data, "year")
    index = json.loads((tmp_path / "ledger" / "town.json").read_text(encoding="utf-8"))
    recorded = index["releases"][0]["key"]
    key = bytes.fromhex(key_file("town").read_text(encoding="ascii").strip())
    assert recorded == hmac.new(key, b"citykit release ledger: which key", hashlib.sha256).hexdigest()[:12]
    assert key.hex() not in json.dumps(index)  # the key itself is never in the ledger

    key_file("town").rename(tmp_path / "old.key")  # the key left behind; a new one is made
    dataset_key("town")
    with pytest.raises(CitykitError, match=r"another secret key .*town\.key.*restore that key file"):
        publish(tmp_path / "ledger", data[data["month"] <= 11], "jan-nov")
    (tmp_path / "old.key").replace(key_file("town"))  # restored: audited again
    publish(tmp_path / "ledger", data[data["month"] <= 11], "jan-nov")


def test_a_page_written_outside_the_archive_says_it_was_not_audited_against_the_archive(tmp_path, monkeypatch):
    """walk-20 #8: a report written with --out elsewhere started an empty ledger and its risk line claimed no count
    could be worked out, while the archive's year page plus it gave December away."""
    monkeypatch.setattr(paths, "reports_dir", lambda: tmp_path / "reports")
    data = town()
    publish(ledger.ledger_folder(tmp_path / "reports" / "x"), data, "year")  # in the archive: its ledger
    archive = json.loads((tmp_path / "reports" / ".citykit-ledger" / "town.json").read_text(encoding="utf-8"))
    context = ledger.begin(tmp_path / "elsewhere", "town", "07-disaggregation", {"period": "jan-nov"})
    ledger.activate(context)
    try:
        equity.crosstab(data[data["month"] <= 11], "neighborhood", "race_alone")
    finally:
        ledger.activate(None)
    risk = ledger.finish(context, succeeded=True)["risk"]
    assert len(archive["releases"]) == 1 and "NOT audited against the 1 release of town in the archive" in risk
    # walk-20b F8: said before anything the page claims, which holds only within its own folder's ledger
    assert risk.index("NOT audited") < risk.index("no count of 1 to 10")
