"""What a director found walking the service and scorecard reports (issue 15), fixed in the kit's
pieces: markers when the data fail their gates, the rules' reasons in plain words, a change stated
in words, column names inside sentences, readable workbook sheets, values on up to 30 rows of bars,
and the scorecard's checks compared period by period. Expected values are worked out here (by
hand, or in DuckDB on the published parquet), never read from the code under test.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import duckdb
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from citykit.data.quality import CATALOG, Check, Gate, Scorecard
from citykit.reports import charts, labels, tables, tiles
from citykit.reports.html import SHEET_LIMIT, Table, sheet_names, write_tables

matplotlib.use("Agg")
SNAKE_WORD = re.compile(r"\b[a-z0-9]+(_[a-z0-9*]+)+\b")


def _card(failed: int):
    gate = SimpleNamespace(limit=0.05, unit="share")
    bad = [SimpleNamespace(description=f"Check {i}", value=None, share=0.5, gate=gate) for i in range(failed)]
    return SimpleNamespace(checks=[*bad, SimpleNamespace(gate=gate)], passed=not bad, failed=bad)


def test_when_the_data_fail_their_gates_no_change_is_called_within_or_beyond_normal_variation():
    def shown(card) -> str:
        figures = [tiles.key_figure("Requests", 241, before=285, verdict=False),
                   tiles.key_figure("Backlog", 319, before=451, verdict=True),
                   tiles.key_figure("Median", None, kind="days", verdict="not yet estimable")]  # fmt: skip
        return tiles.KeyFigures(tiles.unjudged_by_quality(figures, card)).to_html()

    failing = shown(_card(3))
    assert "Within normal variation" not in failing and "Changed beyond normal variation" not in failing
    assert failing.count("Not judged: the data fail 3 quality gates, so changes can&#x27;t be judged") == 2
    assert "Not judged: too few of the requests have closed yet to estimate it" in failing  # its own reason kept
    assert "1 quality gate, so" in shown(_card(1))  # one gate: singular
    passing = shown(_card(0))
    assert "Within normal variation" in passing and "Changed beyond normal variation" in passing


def test_the_rules_reasons_read_as_plain_words_and_a_change_can_be_stated_in_words():
    assert tiles.plain_reason("too little history to judge (2 past periods, 4 needed)") == (
        "too few earlier periods in the data to know its normal variation (2 of the 4 needed)"
    )
    assert tiles.plain_reason("not yet estimable") == "too few of the requests have closed yet to estimate it"
    assert tiles.plain_reason("something else") == "something else"
    tile = tiles.key_figure("Placeholder points", 0.062, kind="share", before=0.5,
                            change="December 2025's requests: 6.1%", verdict=False)  # fmt: skip
    assert tile.change_text() == "December 2025's requests: 6.1%" and tile.record()["change"] == tile.change_text()
    assert tiles.key_figure("x", 0.062, kind="share", before=0.05).change_text() == "+1.2 points against 5.0%"


@pytest.mark.parametrize("table", sorted(CATALOG))
def test_no_quality_check_is_described_with_a_column_name(table):
    for name, (_, description) in CATALOG[table].items():
        plain = labels.plain_text(description)
        assert not SNAKE_WORD.search(plain), (name, plain)
    assert labels.plain_text("Status Closed but no closed_at") == "Status Closed but no close time"
    assert labels.plain_text("Race/ethnicity counts (pop_*) do not sum to population") == (
        "Race/ethnicity counts do not sum to population"
    )


def test_the_scorecard_table_and_the_quality_tile_use_the_plain_words():
    check = Check("service_requests", "consistency", "closed_without_close_time", "Status Closed but no closed_at",
                  3, 400, ("R-1",), gate=Gate(0.01))  # fmt: skip
    _, record = tables.scorecard_record(Scorecard([check]))
    assert "Status Closed but no close time" in record["csv"] and "closed_at" not in record["csv"]
    assert tiles._check_text(check) == "Status Closed but no close time: 0.8% (gate 1%)"


def test_workbook_sheets_have_readable_unique_names_and_the_legend_plain_headings(tmp_path):
    titles = ["Key figures: the whole city, 2025-Q4, against the period before", "requests by agency",
              "Requests by agency", "waits by type, closed requests only", "x" * 40, "a/b [c]?"]  # fmt: skip
    record = tables.people_table(pd.DataFrame({"group": ["A"], "n": ["≤10"]}).set_index("group"), "groups")
    made = [Table(f"t{i}", record["csv"], record["row_headers"], 1, record, title=t) for i, t in enumerate(titles)]
    write_tables(made, tmp_path / "tables", tmp_path / "book.xlsx")
    sheets = pd.ExcelFile(tmp_path / "book.xlsx").sheet_names
    assert sheets == [
        "Key figures - the whole city",
        "Requests by agency",
        "Requests by agency (2)",
        "Waits by type, closed requests",
        "X" + "x" * 30,
        "A b c",
        "Legend",
    ]
    assert all(len(s) <= SHEET_LIMIT for s in sheets) and len({s.casefold() for s in sheets}) == len(sheets)
    legend = pd.read_excel(tmp_path / "book.xlsx", sheet_name="Legend")
    assert list(legend.columns) == ["Mark", "Meaning", "Source"] and legend["Mark"].tolist() == ["≤10"]
    assert sheet_names([Table("x", "", title="legend")]) == ["Legend (2)"]  # never the legend's own name


def test_up_to_30_horizontal_bars_carry_their_values_more_do_not():
    for n, labelled in ((30, True), (31, False)):
        fig, ax = plt.subplots()
        values = list(range(n, 0, -1))
        ax.barh([f"Place {i}" for i in range(n)], values)
        charts.prepare_figure(fig)
        assert [t.get_text() for t in ax.texts] == ([f"{v:,}" for v in values] if labelled else [])
        plt.close(fig)


@pytest.mark.slow
def test_the_scorecard_compares_each_check_of_the_latest_month_with_the_month_before(riverton):
    """The shares of the last whole month and of the one before, counted in DuckDB from the parquet."""
    from citykit.data.quality_change import compare_quality

    change = compare_quality("riverton")
    as_of = pd.Timestamp(riverton.as_of)
    month = (as_of + pd.Timedelta(days=1)).to_period("M") - 1  # the last whole month on the as-of date
    table = riverton.table_path("service_requests").as_posix()

    def shares(first) -> tuple[float, float, float, int]:
        return duckdb.execute(
            "SELECT avg(CAST(neighborhood IS NULL OR trim(neighborhood) = '' AS DOUBLE)), "
            "avg(CAST(flag_type_variant AS DOUBLE)), avg(CAST(is_duplicate AS DOUBLE)), count(*) "
            "FROM read_parquet(?) WHERE created_at >= ? AND created_at < ?",
            [table, first.start_time.to_pydatetime(), (first + 1).start_time.to_pydatetime()],
        ).fetchone()

    now, before = shares(month), shares(month - 1)
    assert f"{change.period.start:%Y-%m}" == str(month) and f"{change.previous.start:%Y-%m}" == str(month - 1)
    for i, name in enumerate(("missing_neighborhood", "type_variant", "marked_duplicate")):
        assert change.now[name] == pytest.approx(now[i]) and change.before[name] == pytest.approx(before[i])
    assert change.rows["missing_neighborhood"] == now[3]
    assert change.history == 8 and "duplicate_missing_parent" not in change.now  # across periods: not compared
    assert all(v.changed or v.reason == "within normal variation" for v in change.verdicts.values())
