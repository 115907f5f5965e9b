"""Tables, tiles, caveats and charts for people (issue 15), on small frames and figures built here.

Each expected value is worked out here from the data given (by hand or with scipy / the WCAG
formula), never read from the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from citykit.errors import CitykitError
from citykit.lessons.course import datapackage_file
from citykit.reports import charts, labels, tables, tiles
from citykit.reports.figures import describe_figure, figure_alt, table_payload
from citykit.reports.html import write_tables

SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")  # a column name shown as a heading: never
BAD_CELL = re.compile(r"\bnan\b|NaN|<NA>|NaT|…|rows × ")


def _html_table(html: str) -> tuple[list[str], list[list[str]]]:
    """(headings, rows of cell texts) of the first <table> in `html`, read with the standard library."""
    from html.parser import HTMLParser

    class Reader(HTMLParser):
        def __init__(self):
            super().__init__()
            self.head, self.rows, self.cell, self.in_head = [], [], None, False

        def handle_starttag(self, tag, attrs):
            if tag == "thead":
                self.in_head = True
            elif tag == "tbody":
                self.in_head = False
            elif tag == "tr" and not self.in_head:
                self.rows.append([])
            elif tag in ("th", "td"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("th", "td") and self.cell is not None:
                (self.head if self.in_head else self.rows[-1]).append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    reader = Reader()
    reader.feed(html)
    return reader.head, reader.rows


def _csv(record: dict) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(record["csv"])))
    return rows[0], rows[1:]


# ------------------------------------------------------------------ headings


def test_every_published_column_has_a_plain_label_and_no_heading_is_snake_case():
    package = json.loads(datapackage_file().read_text(encoding="utf-8"))
    fields = {f["name"] for r in package["resources"] for f in (r.get("schema") or {}).get("fields", [])}
    assert fields and fields <= set(labels.COLUMNS) | set(labels.dictionary_titles())  # the data dictionary
    for name in [*fields, "closed_requests", "share_within_sla", "a_new_measure_2", "race_alone", "x_y"]:
        assert not SNAKE.match(labels.heading(name)), name
    assert labels.heading("flag_missing_neighborhood") == "No neighborhood"
    assert labels.heading("a_new_measure_2") == "A new measure 2"
    assert labels.heading("Closed within target (%)") == "Closed within target (%)"  # already words: kept
    assert labels.heading("x", {"x": "Mine"}) == "Mine"


def test_headings_of_a_published_table_are_never_column_names():
    df = pd.DataFrame({"request_type": ["A", "B"], "closed_requests": [1, 2], "share_on_time": [0.5, 0.25]})
    record = tables.people_table(df.set_index("request_type"))
    head, _ = _html_table(tables.table_html(record))
    assert head == ["Request type", "Closed requests", "Share on time (%)"]
    assert not [h for h in head if SNAKE.match(h)]
    assert _csv(record)[0] == head  # the CSV has the page's headings


# ------------------------------------------------------------------ numbers for people


def test_counts_shares_rates_days_and_intervals_read_as_people_read_them():
    df = pd.DataFrame(
        {
            "agency": ["Sanitation", "Parks"],
            "requests": [60248, 1203],
            "share": [0.8534, 0.07],
            "on_time_pct": [85.34, 7.0],
            "per_1000": [108.14, 12.0],
            "median_days": [3.456, 12.04],
            "rate": [0.853, 0.70],
            "rate_low": [0.812, 0.65],
            "rate_high": [0.889, 0.75],
            "month": pd.PeriodIndex(["2024-01", "2024-02"], freq="M"),
        }
    ).set_index("agency")
    record = tables.people_table(df, kinds={"per_1000": ("rate", "per 1,000 residents"), "rate": "share"})
    html = tables.table_html(record)
    head, rows = _html_table(html)
    assert head == ["Agency", "Requests", "Share (%)", "On time pct (%)", "Requests per 1,000 residents",
                    "Median days to close", "Rate (%)", "95% interval", "Month"]  # fmt: skip
    assert rows[0] == ["Sanitation", "60,248", "85.3%", "85.3%", "108.1", "3.5", "85.3%", "81.2%–88.9%", "2024-01"]
    assert rows[1] == ["Parks", "1,203", "7.0%", "7.0%", "12.0", "12.0", "70.0%", "65.0%–75.0%", "2024-02"]
    # the CSV: same headings and rows, numbers without separators, shares in percent
    csv_head, csv_rows = _csv(record)
    assert csv_head == head
    assert csv_rows[0] == ["Sanitation", "60248", "85.3", "85.3", "108.1", "3.5", "85.3", "81.2%–88.9%", "2024-01"]
    # months and numbers never wrap; a heading may
    assert re.search(r'<td class="[^"]*ck-nowrap[^"]*">2024-01</td>', html)
    assert not re.search(r"<th[^>]*ck-nowrap", html)
    with pytest.raises(CitykitError, match="unknown kind 'percentage'"):
        tables.people_table(df, kinds={"share": "percentage"})


def test_a_rate_heading_states_its_unit_and_an_interval_text_takes_the_kind_before_it():
    df = pd.DataFrame({"group": ["a", "b"], "ratio of proportions": ["0.97", "0.81"],
                       "95% interval": ["0.90–1.04", "0.70–0.93"], "visits": [12.25, 3.5]})  # fmt: skip
    record = tables.people_table(df.set_index("group"), kinds={"visits": "rate:per 100 people"})
    head, rows = _html_table(tables.table_html(record))
    assert head == ["Group", "Ratio to the reference group", "95% interval", "Visits (per 100 people)"]
    assert rows == [["a", "0.97", "0.90–1.04", "12.2"], ["b", "0.81", "0.70–0.93", "3.5"]]


# ------------------------------------------------------------------ nothing hidden, nothing cut


def test_no_nan_a_column_with_nothing_is_left_out_and_a_missing_cell_is_a_dash_with_its_reason():
    df = pd.DataFrame(
        {
            "request_type": ["Pothole", "Noise", "Water"],
            "closed_requests": [10, 20, 30],
            "within_target": [np.nan, np.nan, np.nan],  # no targets at all (the SF case)
            "median_days": [1.5, None, 2.0],
            "when": [pd.Timestamp("2024-01-02"), pd.NaT, pd.Timestamp("2024-03-04 10:30")],
            "text": ["x", "nan", pd.NA],
            "note": ["", "too few to compare", ""],  # an empty note is a blank, not a gap
            "blank": ["", "", ""],  # nothing to show: left out
        }
    ).set_index("request_type")
    record = tables.people_table(df, missing={"within_target": "this city publishes no targets",
                                              "median_days": "no closed request yet"})  # fmt: skip
    html = tables.table_html(record)
    head, rows = _html_table(html)
    assert "Within target (%)" not in head and "Blank" not in head and len(head) == 6
    assert [r[5] for r in rows] == ["", "too few to compare", ""]
    assert [r[2] for r in rows] == ["1.5", "—", "2.0"] and rows[1][3] == "—" and [r[4] for r in rows] == ["x", "—", "—"]
    assert "Within target (%) is left out: this city publishes no targets." in record["notes"]
    assert "— in “Median days to close”: no value for this row." not in record["notes"]
    assert "— in “Median days to close”: no closed request yet." in record["notes"]
    assert all(note in html for note in record["notes"])
    assert not BAD_CELL.search(html) and not BAD_CELL.search(record["csv"])
    assert _csv(record)[1][1] == ["Noise", "20", "", "", "", "too few to compare"]  # missing: empty in the CSV
    assert not [n for n in record["notes"] if "Note" in n] and "Blank is left out" in " ".join(record["notes"])


def test_a_long_table_shows_its_first_rows_and_links_the_csv_that_holds_them_all():
    df = pd.DataFrame({"agency": [f"Agency {i:02d}" for i in range(90)], "requests": range(1000, 1090)})
    record = tables.people_table(df.set_index("agency"), max_rows=25)
    html = tables.table_html(record, "tables/03-agencies.csv", "the table as CSV (03-agencies.csv)")
    _, rows = _html_table(html)
    _, csv_rows = _csv(record)
    assert len(rows) == 25 and len(csv_rows) == 90
    assert rows == [[name, f"{int(n):,}"] for name, n in csv_rows[:25]]  # the page's rows are the CSV's first
    assert "The first 25 of 90 rows" in html and 'href="tables/03-agencies.csv"' in html
    assert not BAD_CELL.search(html)
    short = tables.table_html(tables.people_table(df.head(3).set_index("agency")), "tables/01-x.csv")
    assert 'href="tables/01-x.csv"' in short and "first" not in short  # every table links its CSV


def test_workbook_and_csv_carry_the_pages_headings_rows_and_marks(tmp_path):
    from citykit.reports.html import Table

    df = pd.DataFrame({"group": ["A", "B", "C"], "n": ["≤10", "1,234", "†"], "share": [0.5, 0.25, None]})
    record = tables.people_table(df.set_index("group"), kinds={"n": "count", "share": "share"})
    head, rows = _html_table(tables.table_html(record))
    assert rows == [["A", "≤10", "50.0%"], ["B", "1,234", "25.0%"], ["C", "†", "—"]]
    table = Table("groups", record["csv"], record["row_headers"], 1, record)
    written = write_tables([table], tmp_path / "tables", tmp_path / "book.xlsx")
    assert [p.name for p in written] == ["01-groups.csv", "legend.csv", "book.xlsx"]
    sheet = pd.read_excel(tmp_path / "book.xlsx", sheet_name="Groups", dtype=str)
    assert list(sheet.columns) == head
    assert sheet.iloc[:, 1].tolist() == ["≤10", "1234", "†"]
    legend = (tmp_path / "tables" / "legend.csv").read_text(encoding="utf-8")
    assert "≤10" in legend and "†" in legend and "‡" not in legend


def test_the_kits_own_tables_come_out_for_people():
    from citykit.standards import equity

    rng = np.random.default_rng(5)
    people = pd.DataFrame({"language": rng.choice(["English", "Spanish", "Arabic"], 600, p=[0.5, 0.3, 0.2]),
                           "approved": rng.random(600) < 0.7})  # fmt: skip
    table = equity.disaggregate(people, by=["language"], measure="approved", per=100, title="Approval by language")
    payload = table_payload(table, published=True)
    head, rows = _html_table(tables.table_html(payload["people"]))
    assert head[0] == "Language" and "Approved (%)" in head and not [h for h in head if SNAKE.match(h)]
    spanish = people[people["language"] == "Spanish"]
    row = next(r for r in rows if r[0] == "Spanish")
    assert row[head.index("Approved (%)")].rstrip("*") == f"{100 * spanish['approved'].mean():.1f}%"
    assert row[head.index("Number")] == f"{len(spanish):,}"
    assert payload["people"]["caption"] == "Approval by language" and payload["people"]["notes"]

    check = SimpleNamespace(table="service_requests", dimension="completeness", description="Requests with no neighborhood",
                            failing=460, rows=1000, value=None, share=0.46, examples=("SR-1", "SR-2", "SR-3"),
                            gate=SimpleNamespace(limit=0.05, unit="share"), verdict=lambda: "FAIL")  # fmt: skip
    card = type("Scorecard", (), {"checks": [check], "passed": False, "failed": [check],
                                  "to_frame": lambda self: pd.DataFrame({"name": ["x"]})})()  # fmt: skip
    card.__class__.__module__ = "citykit.data.quality"
    record = table_payload(card)["people"]
    head, rows = _html_table(tables.table_html(record))
    assert head == ["Check", "Dimension", "Records failing", "Records checked", "Found", "Gate (most allowed)",
                    "Result", "Example records"]  # fmt: skip
    assert rows == [["Requests with no neighborhood", "Completeness", "460", "1,000", "46.00%", "5.00%", "Fails",
                     "SR-1, SR-2"]]  # fmt: skip
    assert "Verdict: 1 of 1 quality gates fail (“Fails” above)." in record["notes"]


# ------------------------------------------------------------------ key figures and caveats


def test_key_figures_state_value_change_and_the_rules_marker():
    verdict = SimpleNamespace
    c = SimpleNamespace(volume=60248, median=14.24, p90=40.0, share=0.853, due=5000)
    p = SimpleNamespace(volume=58100, median=13.0, p90=41.5, share=0.831, due=4800)
    comparison = SimpleNamespace(current=c, previous=p, rules={}, verdicts={
        "volume": verdict(changed=False, reason="within normal variation"),
        "median": verdict(changed=True, reason="changed (+0.5 to +2.0 days, 95% interval)"),
        "p90": verdict(changed=False, reason="too little history to judge (2 past periods, 4 needed)"),
        "on_time": verdict(changed=False, reason="within normal variation"),
    })  # fmt: skip
    figures = [*tiles.comparison_figures(comparison), tiles.key_figure("Backlog over 90 days", 812, before=900)]
    shown = tiles.KeyFigures(figures)
    html = shown.to_html()
    items = re.findall(r'<li class="ck-tile[^"]*" ([^>]*)>(.*?)</li>', html)
    assert [re.search(r'data-key="([^"]*)"', a)[1] for a, _ in items] == [
        "requests", "median-days", "p90-days", "on-time", "backlog-over-90-days"]  # fmt: skip
    assert 'data-value="60248"' in items[0][0] and 'data-verdict="within"' in items[0][0]
    text = [re.sub(r"<[^>]+>", " | ", body) for _, body in items]
    assert "60,248" in text[0] and f"+{60248 - 58100:,} (+{(60248 - 58100) / 58100:.1%}) against 58,100" in text[0]
    assert "Within normal variation" in text[0]
    assert "14.2 days" in text[1] and "+1.2 days against 13.0 days" in text[1] and "Changed beyond normal" in text[1]
    assert "Not judged: too few earlier periods in the data to know its normal variation (2 of the 4 needed)" in text[2]
    assert "85.3%" in text[3] and "+2.2 points against 83.1%" in text[3]
    assert "812" in text[4] and "-88 (-9.8%) against 900" in text[4] and "ck-marker" not in items[4][1]
    bundle = shown._repr_mimebundle_()
    exported = bundle[tables_mime()]["people"]
    head, rows = _csv(exported)
    assert head[:5] == ["Figure", "As shown", "Value", "Before", "Unit"]
    assert rows[0][1] == "60,248" and float(rows[0][2]) == 60248 and float(rows[0][3]) == 58100  # numbers, not text


def tables_mime() -> str:
    from citykit.reports.figures import TABLE_MIME

    return TABLE_MIME


def test_caveats_carry_the_quality_verdict_and_the_share_not_placed():
    gate = SimpleNamespace(limit=0.05, unit="share")
    failing = SimpleNamespace(description="Requests with no neighborhood", value=None, share=0.4612, gate=gate)
    card = SimpleNamespace(checks=[failing, SimpleNamespace(gate=gate)], passed=False, failed=[failing])
    items = tiles.caveat_items("The map leaves out 524 of 1,202 requests.", quality=card,
                               unplaced={"no neighborhood": (110512, 239348)})  # fmt: skip
    assert items[0].startswith(
        "**Data quality:** 1 of 2 quality gates fail: Requests with no neighborhood: 46.1% (gate 5%)"
    )
    assert items[1] == (f"**{110512 / 239348:.1%} of requests** (110,512 of 239,348) have no neighborhood: "
                        "figures by neighborhood leave them out.")  # fmt: skip
    assert items[2] == "The map leaves out 524 of 1,202 requests."
    box = tiles.Caveats(items, "Read these figures with care", True).to_html()
    assert 'role="note"' in box and "<strong>46.2% of requests</strong>" in box and "ck-caveats-warn" in box
    assert tiles.caveat_items(unplaced={"no coordinates": (0, 50)}) == ["Every one of the 50 requests has coordinates."]


# ------------------------------------------------------------------ charts


def _drawn(fig) -> str:
    fig.canvas.draw()
    return figure_alt(fig)


def test_alt_text_names_the_largest_and_smallest_bar_of_the_data_drawn():
    rng = np.random.default_rng(11)
    values = pd.Series(rng.integers(100, 9000, 12), index=[f"Type {c}" for c in "ABCDEFGHIJKL"])
    ax = charts.bar(values, title="Requests by type", label="Requests")
    alt = _drawn(ax.figure)
    top, bottom = values.idxmax(), values.idxmin()
    assert alt.startswith("Chart: Requests by type. 12 bars.")
    assert f"Largest: {top}, {values.max():,}; smallest: {bottom}, {values.min():,}." in alt
    assert "axis" not in alt  # the finding, not the axes
    # sorted by value, largest on top, each bar carrying its value
    order = [t.get_text() for t in ax.get_yticklabels()]
    assert order == list(values.sort_values(ascending=False).index)
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:,}" for v in values)
    plt.close(ax.figure)

    fig, ax = plt.subplots()  # a plain matplotlib bar chart, no helper: the report kernel labels it
    ax.bar(["x", "y", "z"], [3.25, 7.5, 1.0])
    ax.set_ylabel("Share (%)")
    charts.prepare_figure(fig)
    assert [t.get_text() for t in ax.texts] == ["3.2%", "7.5%", "1.0%"]
    assert "Largest: y, 7.5%; smallest: z, 1.0%." in _drawn(fig)
    plt.close(fig)


def test_many_bars_carry_no_values_and_small_text_grows_to_9_points():
    fig, ax = plt.subplots()
    ax.bar(range(16), range(16))
    ax.set_xlabel("Week", fontsize=6)
    charts.prepare_figure(fig)
    assert not ax.texts and ax.xaxis.label.get_fontsize() >= 9
    plt.close(fig)


def test_a_legend_inside_the_axes_moves_outside_and_covers_no_data():
    fig, ax = plt.subplots(figsize=(6, 3))
    x = np.arange(13)
    ax.plot(x, 4000 + 50 * x, label="2025-Q4")
    ax.plot(x, 3000 + 0 * x, label="2025-Q3")
    ax.set_xlabel("Week of the period")
    ax.legend(title="Period", loc="lower left")
    charts.prepare_figure(fig)
    fig.canvas.draw()
    assert "4,000" in [t.get_text() for t in ax.get_yticklabels()]  # thousands separators on the axis
    legend = ax.get_legend().get_window_extent()
    plot = ax.get_window_extent()
    assert legend.x0 >= plot.x1  # right of the plot: it covers nothing drawn
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["2025-Q4", "2025-Q3"]
    alt = figure_alt(fig)
    assert "2025-Q4: from 4,000 (week 0) to 4,600 (week 12), up 600 (+15%)" in alt
    assert "2025-Q3: from 3,000 (week 0) to 3,000 (week 12), about level" in alt
    plt.close(fig)


def test_alt_text_of_dots_with_intervals_and_of_a_scatter_states_the_finding():
    from scipy.stats import spearmanr

    frame = pd.DataFrame({"rate_ratio": [0.82, 0.97, 1.31, 0.74], "rr_low": [0.7, 0.9, 1.1, 0.6],
                          "rr_high": [0.9, 1.04, 1.5, 0.9]}, index=["Arabic", "Chinese", "Other", "Spanish"])  # fmt: skip
    ax = charts.ratio_dots(frame, "rate_ratio", "rr_low", "rr_high", title="Ratio of approval shares", label="Language",
                           xlabel="Ratio of approval rates, with 95% intervals (1 = the same)")  # fmt: skip
    alt = _drawn(ax.figure)
    assert "4 groups. Largest: Other, 1.31; smallest: Spanish, 0.74." in alt  # a "95%" in the axis: no % sign
    beyond = [c.get_offsets() for c in ax.collections if c.__class__.__name__ == "PathCollection"]
    assert sorted(x for x, _ in beyond[1]) == [0.74, 1.31]  # the two outside 0.8–1.25: marked apart
    plt.close(ax.figure)

    rng = np.random.default_rng(3)
    income = rng.uniform(20000, 150000, 24)
    rate = 500 - income / 1000 + rng.normal(0, 10, 24)
    fig, ax = plt.subplots()
    ax.scatter(income, rate)
    ax.set_xlabel("Median household income")
    ax.set_ylabel("Requests per 1,000 residents")
    rho = spearmanr(income, rate).statistic
    alt = _drawn(fig)
    assert rho < -0.3 and f"(rank correlation {rho:+.2f})" in alt
    assert "where median household income is higher, requests per 1,000 residents tends to be lower" in alt
    plt.close(fig)


def test_describe_figure_keeps_your_words_and_adds_the_finding():
    fig, ax = plt.subplots()
    ax.barh(["a", "b"], [1, 2])
    describe_figure(fig, "Bar chart: b has twice the requests of a.")
    assert _drawn(fig) == "Bar chart: b has twice the requests of a. 2 bars. Largest: b, 2; smallest: a, 1."
    describe_figure(fig, "Exactly this.", finding=False)
    assert figure_alt(fig) == "Exactly this."
    plt.close(fig)


def _wcag_luminance(rgb) -> float:
    def channel(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _four_squares(tmp_path) -> Path:
    """A 2x2 city of unit-square neighborhoods spanning 0..2 both ways, as GeoJSON."""
    squares = {"North End": (0, 1), "South Side": (0, 0), "Old Town": (1, 0), "Riverside Heights": (1, 1)}
    features = [{"type": "Feature", "properties": {"neighborhood": name},
                 "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]]}}
                for name, (x, y) in squares.items()]  # fmt: skip
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def test_a_map_has_no_coordinate_axes_and_readable_labels_and_its_alt_text_names_the_extremes(tmp_path):
    from matplotlib.colors import to_rgb

    from citykit.reports import maps

    path = _four_squares(tmp_path)
    values = pd.Series({"North End": 108.1, "South Side": 12.0, "Old Town": 55.5})
    ax = maps.choropleth(values, path, label="Requests per 1,000 residents", title="Requests per 1,000 residents")
    alt = _drawn(ax.figure)
    assert not ax.axison and ax.get_xlabel() == "" and ax.get_ylabel() == ""
    assert "Highest: North End, 108.1; lowest: South Side, 12.0. 1 without a value (hatched grey)." in alt
    fills = {patch.get_path().vertices[:, :2].mean(axis=0).round(1).tobytes(): patch.get_facecolor()
             for patch in ax.patches}  # fmt: skip
    assert len(ax.texts) == 4
    for text in ax.texts:
        assert text.get_fontsize() >= 9
        fill = min(fills.items(), key=lambda kv: np.abs(np.frombuffer(kv[0]) - np.array(text.xy)).sum())[1]
        a, b = _wcag_luminance(to_rgb(text.get_color())), _wcag_luminance(fill)
        assert (max(a, b) + 0.05) / (min(a, b) + 0.05) >= 4.5, text.get_text()
    plt.close(ax.figure)


def test_one_colour_blind_safe_palette_is_set_once():
    import seaborn as sns

    charts.apply_style()
    from matplotlib.colors import to_hex

    cycle = [to_hex(c) for c in matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]]
    assert cycle == sns.color_palette("colorblind").as_hex() == charts.PALETTE
    assert min(matplotlib.rcParams[k] for k in ("xtick.labelsize", "ytick.labelsize", "legend.fontsize")) >= 9


def test_a_change_is_the_difference_of_the_values_shown():
    from citykit.reports.tiles import KeyFigure

    # 3.26 and 3.24 show as 3.3 and 3.2: the change shown is +0.1, not +0.0 (0.02 rounded)
    days = KeyFigure("Median days to close", 3.26, "days", before=3.24)
    assert days.value_text() == "3.3 days" and days.change_text() == "+0.1 days against 3.2 days"
    share = KeyFigure("On time", 0.78349, "share", before=0.78240)
    assert share.change_text() == "+0.1 points against 78.2%"


def test_a_count_of_people_judged_by_the_rule_of_the_service_report():
    """The verdict of a count against past periods: the rule's Laney u' limits with unit sizes are
    the individuals (XmR) chart's, mean ± 3 · average moving range / 1.128, worked out here."""
    history = [100, 104, 97, 101, 99, 103, 98, 100]
    ranges = np.abs(np.diff(history))
    low, high = np.mean(history) - 3 * ranges.mean() / 1.128, np.mean(history) + 3 * ranges.mean() / 1.128
    assert 108 < high < 112 and 88 < low < 92  # so 112 is beyond the limits (and 12% > 10%), 108 within
    changed = tiles.key_figure("Decided applications", 112, before=100, history=history)
    within = tiles.key_figure("Decided applications", 108, before=100, history=history)
    short = tiles.key_figure("Decided applications", 150, before=100, history=history[-2:])
    assert (changed.verdict, within.verdict, short.verdict) == (tiles.CHANGED, tiles.WITHIN, tiles.NOT_JUDGED)
    assert "Within normal variation" in tiles.KeyFigures([within]).to_html()
    assert "too little history" in short.reason


def test_a_suppressed_count_on_a_tile_shows_its_mark_and_no_difference():
    tile = tiles.key_figure("Decided applications", "≤10", before=14, history=[20, 18, 15, 16, 14])
    html = tiles.KeyFigures([tile]).to_html()
    shown = re.sub(r"<[^>]+>", " ", html)
    assert "≤10" in shown and "against 14" in shown and not re.search(r"[+-]\d", shown)
    assert tile.verdict == tiles.NOT_JUDGED and "too few people" in tile.reason


def test_counts_and_their_nouns_agree():
    assert [labels.plural(n, "comparison") for n in (0, 1, 2)] == ["0 comparisons", "1 comparison", "2 comparisons"]
    assert labels.plural(1204, "application") == "1,204 applications" and labels.plural(1, "category") == "1 category"
    assert labels.plural(3, "category") == "3 categories" and labels.plural(2, "person", "people") == "2 people"
    text = "Disclosure risk: 1 tables of people, audited with 1 earlier releases; 11 tables"
    assert labels.agree(text, ("table", "release")) == (
        "Disclosure risk: 1 table of people, audited with 1 earlier release; 11 tables"
    )


def test_a_highlighted_neighborhood_on_the_edge_of_the_map_is_outlined_whole(tmp_path):
    """Its thick outline is drawn over its neighbours' edges and the map leaves room around the city,
    so half the line is not cut off where the neighborhood touches the edge."""
    from citykit.reports import maps

    path = _four_squares(tmp_path)
    ax = maps.choropleth(pd.Series({"North End": 1.0, "South Side": 2.0}), path, highlight="North End")
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < 0 and x1 > 2 and y0 < 0 and y1 > 2  # the city spans 0..2 both ways: room on every side
    outlined = [p for p in ax.patches if p.get_linewidth() > 1]
    assert len(outlined) == 1 and outlined[0].get_zorder() > max(
        p.get_zorder() for p in ax.patches if p not in outlined
    )
    plt.close(ax.figure)


# ------------------------------------------------------------------ equity comparisons for a director (walk-15)


def _language_comparison():
    from citykit import equity

    rows = [{"language": g, "approved": i < a} for g, n, a in [("English", 400, 320), ("Chinese", 60, 36),
                                                                  ("Spanish", 200, 150)] for i in range(n)]  # fmt: skip
    table = equity.disaggregate(pd.DataFrame(rows), by=["language"], measure="approved", per=100, title="By language")
    return equity.disparities(table, reference="English")


def test_a_comparisons_reference_row_says_reference_group_and_words_can_fill_a_cell():
    """F11/F13: the reference row reads "reference group" in its ratio columns (no "—" and no "no value"
    note), its screen cell is blank; `cells=` puts a reason in a group's cell. Chinese: (36/60)/(320/400) =
    0.75; Spanish: (150/200)/(320/400) = 0.9375 (by hand)."""
    comparison = _language_comparison()
    reason = "not shown: most records lack a neighborhood after privacy protection"
    _, record = tables.disaggregated_record(comparison, "x", cells={"Spanish": {"notable": reason}})
    head, rows = _html_table(tables.table_html(record))
    assert head[:2] == ["Language", "Ratio to the reference group"]
    by_group = {row[0]: row for row in rows}
    assert by_group["English"][1:] == ["reference group"] * 5 + [""]
    assert by_group["Chinese"][1] == "0.75" and by_group["Spanish"][1] == "0.94"
    assert by_group["Spanish"][-1] == reason and by_group["Chinese"][-1] == "Yes"
    assert not [n for n in record["notes"] if "no value for this row" in n], record["notes"]
    assert ["English", "reference group"] in [row[:2] for row in _csv(record)[1]]  # the CSV says it too


def test_ratio_alt_names_each_panel_and_the_groups_beyond_the_screen():
    """F10: no stray ", ; ." and the finding: per panel, highest, lowest and who is beyond 0.8 / 1.25."""
    alt = charts.ratio_alt([("By language, against English", pd.Series({"Chinese": 0.78, "Spanish": 0.85,
                                                                         "Other": 0.7996})),
                            ("By race and ethnicity, against White", pd.Series({"Asian": 1.3}))])  # fmt: skip
    assert not re.search(r", ;|; \.|, \.| ;", alt)
    assert ("By language, against English: 3 groups. Highest: Spanish, 0.85; lowest: Chinese, 0.78. Beyond the "
            "screen, below 0.8: Chinese (0.78), Other (0.800).") in alt  # fmt: skip
    assert (
        "By race and ethnicity, against White: One group: Asian, 1.30. Beyond the screen, above 1.25: Asian (1.30)."
        in alt
    )


def test_ratio_dot_labels_sit_right_of_their_intervals_and_never_overlap():
    """F10: each value label starts right of its interval's upper end and no two labels overlap."""
    frame = pd.DataFrame({"ratio": [0.95, 0.97, 0.98, 1.02], "low": [0.9, 0.93, 0.95, 0.93],
                          "high": [1.0, 1.01, 1.02, 1.12]}, index=["a", "b", "c", "d"])  # fmt: skip
    fig, ax = plt.subplots(figsize=(6, 1.6))
    charts.ratio_dots(frame, "ratio", "low", "high", ax=ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        ordered = frame.sort_values("ratio")
        position = next(p for p, value in enumerate(ordered["ratio"]) if f"{value:.2f}" == text.get_text())
        end = ax.transData.transform((ordered["high"].iloc[position], position))[0]
        assert box.x0 > end, (text.get_text(), box.x0, end)
        boxes.append(box)
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    plt.close(fig)
