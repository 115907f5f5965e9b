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
import nbformat
import pandas as pd
import pytest

from citykit.data.quality import CATALOG, Check, Gate, Scorecard
from citykit.reports import charts, labels, tables, tiles
from citykit.reports.figures import TABLE_MIME
from citykit.reports.html import SHEET_LIMIT, Table, collect_tables, sheet_names, write_tables

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
        assert not re.search(r"k-anonymity|\bSLA\b", plain), (name, plain)  # an analyst's terms (walk-15 F8/F22)
    assert labels.plain_text("Status Closed but no closed_at") == "Status Closed but no close time"
    assert labels.plain_text("Race/ethnicity counts (pop_*) do not sum to population") == (
        "Race/ethnicity counts do not sum to population"
    )


def test_the_scorecard_table_and_the_quality_tile_use_the_plain_words():
    check = Check("service_requests", "consistency", "closed_without_close_time", "Status Closed but no closed_at",
                  3, 400, ("R-1",), gate=Gate(0.01))  # fmt: skip
    _, record = tables.scorecard_record(Scorecard([check]))
    assert "Status Closed but no close time" in record["csv"] and "closed_at" not in record["csv"]
    assert tiles._check_text(check) == "Status Closed but no close time: 0.8% of the 400 checked (gate 1%)"


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


# ------------------------------------------------------------------ the second walk (walk-15 F2, F5, F6, F17)


def test_the_90th_percentile_tile_says_within_this_many_days_or_why_it_is_not_known():
    from citykit.data.changes import Figures

    def comparison(p90):
        figures = Figures(None, None, 100, 90, 80, 3.0, p90, 2.0, 10, 8, 0.8)
        return SimpleNamespace(current=figures, previous=figures, verdicts={}, rules={})

    known = {t.key: t for t in tiles.comparison_figures(comparison(12.5))}["p90-days"]
    assert known.note == "9 in 10 requests closed within this many days"
    unknown = {t.key: t for t in tiles.comparison_figures(comparison(None))}["p90-days"]
    assert unknown.value_text() == "—" and "within this" not in unknown.note and "9 in 10" in unknown.note


def test_the_quality_tile_names_a_third_failing_gate_and_long_waits_show_whole_days():
    gate, days = Gate(0.05), Gate(14, "days")
    checks = [Check("service_requests", "completeness", "missing_neighborhood", "Requests with no neighborhood", 4600,
                    10_000, (), gate=gate),
              Check("service_requests", "validity", "placeholder_coords", "Coordinates at 0,0", 4260, 10_000, (), gate=gate),
              Check("service_requests", "timeliness", "extract_lag", "Days between the newest request and the extract",
                    0, 1, (), gate=days, value=3231.96)]  # fmt: skip
    three = tiles.quality_figure(Scorecard(checks)).note
    assert "more" not in three and three.count("(gate") == 3, three
    assert "3,232 days (gate 14 days)" in three and "3,232.0" not in three  # 3231.96 to whole days, by hand
    assert "46.0% of the 10,000 checked (gate 5%)" in three  # 4600 / 10000: whose share it is
    four = tiles.quality_figure(Scorecard([*checks, Check("service_requests", "validity", "x", "Other", 9, 10, (),
                                                          gate=gate)])).note  # fmt: skip
    assert four.endswith("; and 2 more") and four.count("(gate") == 2
    assert tiles.key_figure("Wait", 3231.96, kind="days").value_text() == "3,232 days"
    assert tiles.key_figure("Wait", 3.04, kind="days").value_text() == "3.0 days"


def test_the_key_figures_export_numbers_as_numbers_with_their_unit(tmp_path):
    import openpyxl

    shown = tiles.KeyFigures([
        tiles.key_figure("Requests", 55103, before=59514, verdict=False),
        tiles.key_figure("Median days to close", 3.04, kind="days", before=2.96),
        tiles.key_figure("On time", 0.7834, kind="share", before=0.79),
        tiles.key_figure("Data quality", "All 27 gates pass", kind="text"),
    ], "Key figures: Harbor Point, 2025-Q4 against 2025-Q3")  # fmt: skip
    # as the runner collects it from the executed notebook: one stable name, whatever the tiles' title
    cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data", data={
        k: v for k, v in shown._repr_mimebundle_().items() if k in (TABLE_MIME, "text/plain")})])  # fmt: skip
    [table] = collect_tables(nbformat.v4.new_notebook(cells=[cell]), people=True)
    assert table.file_name(1) == "01-key-figures.csv" and sheet_names([table]) == ["Key figures"]
    write_tables([table], tmp_path / "tables", tmp_path / "book.xlsx")
    text = (tmp_path / "tables" / "01-key-figures.csv").read_text(encoding="utf-8")
    assert 'Requests,"55,103",55103,59514,count,' in text.splitlines()[1]  # counts whole, not 55103.0
    frame = pd.read_csv(tmp_path / "tables" / "01-key-figures.csv").set_index("Figure")
    assert frame["Value"].dtype.kind == "f" and frame["Before"].dtype.kind == "f"
    assert frame.loc["On time", "Before"] == 79.0 and frame.loc["Median days to close", "Before"] == 3.0
    assert frame.loc["Requests", "Value"] == 55103 and frame.loc["On time", "Value"] == 78.3  # 0.7834 in percent
    assert frame.loc["Median days to close", "Value"] == 3.0 and frame.loc["On time", "Unit"] == "%"
    assert frame.loc["Requests", "As shown"] == "55,103" and pd.isna(frame.loc["Data quality", "Value"])
    sheet = openpyxl.load_workbook(tmp_path / "book.xlsx").worksheets[0]
    values = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    column = header.index("Value")
    assert isinstance(values["Requests"][column].value, (int, float)) and values["Requests"][column].value == 55103
    assert isinstance(values["On time"][column].value, float)


def test_one_date_format_for_a_period_and_the_comparison_sentence_reads_plainly():
    import datetime as dt

    from citykit.data.changes import Comparison, Figures, period_dates
    from citykit.data.periods import Period

    q3 = Period("2025-Q3", dt.date(2025, 7, 1), dt.date(2025, 10, 1))
    assert period_dates(q3) == "1 Jul to 30 Sep 2025"
    assert period_dates(Period("w", dt.date(2024, 12, 15), dt.date(2025, 1, 15))) == "15 Dec 2024 to 14 Jan 2025"
    q4 = Period("2025-Q4", dt.date(2025, 10, 1), dt.date(2026, 1, 1))

    def figures(period, cutoff, due):
        return Figures(period, pd.Timestamp(cutoff), 241, 200, 150, 3.1, None, 1.1, due, due // 2,
                       0.5 if due else None)  # fmt: skip

    verdicts = {name: SimpleNamespace(changed=False, reason="within normal variation")
                for name in ("volume", "median", "p90", "on_time")}  # fmt: skip
    by_type = pd.DataFrame({"volume verdict": []})
    rules = {"time_to_close": {"closed_only_label": "closed requests only (flatters the current period)"}}
    for due, follow in ((0, 24), (10, 0)):
        cut = dt.date(2026, 1, 1) + dt.timedelta(days=follow)
        text = Comparison("sf", figures(q4, cut, due), figures(q3, dt.date(2025, 10, 1) + dt.timedelta(days=follow), due),
                          None, verdicts, by_type, 4, rules).markdown()  # fmt: skip
        assert "n/a" not in text and "as this period stands now" not in text and not re.search(r"\b0\d [A-Z]", text)
        assert text.startswith("Compared with 1 Jul to 30 Sep 2025")
        assert "90th percentile: not known yet in either period" in text
        if follow:  # the period before as it stood 24 days after its end: 24 Oct 2025
            assert "as it stood on 24 Oct 2025, 24 days after its end" in text
            assert "no request in either period had a due date" in text and "on time" not in text.split("only")[-1]
        else:
            assert "as it stood on its last day (30 Sep 2025)" in text and "50.0% of 10 against 50.0% of 10" in text
