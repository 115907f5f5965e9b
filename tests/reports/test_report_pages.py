"""The production reports' pages, as readers get them (issue 15), run on the bundled city (and on
the San Francisco sample): no heading is a column name, no cell shows "NaN" or "…", every table
has its CSV with the same headings and rows, every figure's alt text states what its data show
(checked against DuckDB for the charts of report 12), print rules keep table rows whole, and a
screenshot of each page's first screen is kept in `test-artifacts/reports/` (see report_screens).
"""

from __future__ import annotations

import csv
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from notebook_helpers import import_real_sample
from report_screens import ARTIFACTS, first_screen, missing

from citykit.reports.run import run_report

pytestmark = pytest.mark.slow

REPORTS = ["12-service-performance", "13-equity-report", "14-quality-scorecard"]
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")
BAD_CELL = re.compile(r"\bnan\b|NaN|<NA>|\bNaT\b|…|rows × ")
FINDING = re.compile(r"Largest: |Highest: | points: |from [^;]+ to [^;]+, (up|down|about level)|One (bar|group): |no neighborhood has",
                     re.I)  # fmt: skip


class Page(HTMLParser):
    """The tables of a page (headings, rows of cell texts, the CSV linked after each) and its images' alt."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.alts: list[str] = []
        self._cell: str | None = None
        self._section = ""
        self._link_wanted = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"class": attrs.get("class", ""), "head": [], "rows": [], "csv": None})
            self._link_wanted = True
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self.tables and self._section != "thead":
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td") and self.tables:
            self._cell = ""
        elif tag == "a" and self._link_wanted and str(attrs.get("href", "")).startswith("tables/"):
            self.tables[-1]["csv"] = attrs["href"]
            self._link_wanted = False
        elif tag == "img":
            self.alts.append(attrs.get("alt") or "")

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            table = self.tables[-1]
            (table["head"] if self._section == "thead" else table["rows"][-1]).append(self._cell.strip())
            self._cell = None
        elif tag in ("thead", "tbody"):
            self._section = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def pages(riverton, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    return {module: run_report(module, {}, out / module) for module in REPORTS}


def _read(result) -> Page:
    return Page(result.html.read_text(encoding="utf-8"))


def _same(page_cell: str, csv_cell: str) -> bool:
    """A page cell and its CSV cell: the same but for thousands separators, % signs and "—" for empty."""
    page, data = page_cell.replace(",", "").replace("%", ""), csv_cell.replace(",", "").replace("%", "")
    if page == data or (page_cell == "—" and csv_cell in ("", "—")):
        return True
    try:
        return float(page) == float(data)
    except ValueError:
        return False


def check_tables(result) -> Page:
    """No snake_case heading, no NaN or …, and every table's CSV has its headings and rows."""
    page = _read(result)
    assert page.tables, f"{result.name}: no table on the page"
    for number, table in enumerate(page.tables, start=1):
        where = f"{result.name} table {number} {table['head'][:3]}"
        assert "ck-people" in table["class"], f"{where}: a table not made for people"
        assert not [h for h in table["head"] if SNAKE.match(h)], f"{where}: snake_case heading"
        bad = [c for row in table["rows"] for c in row if BAD_CELL.search(c)]
        assert not bad, f"{where}: {bad[:3]}"
        assert table["csv"], f"{where}: no link to its CSV"
        with open(result.out / table["csv"], encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == table["head"], f"{where}: the CSV's headings differ"
        shown = table["rows"]
        assert len(shown) <= len(rows) - 1 and (len(shown) == len(rows) - 1 or len(shown) >= 10), where
        for got, expected in zip(shown, rows[1:], strict=False):
            assert len(got) == len(expected) and all(_same(a, b) for a, b in zip(got, expected, strict=True)), (
                f"{where}: page row {got} against CSV row {expected}"
            )
    csvs = sorted(p.name for p in (result.out / "tables").glob("*.csv") if p.name != "legend.csv")
    sheets = pd.ExcelFile(result.out / f"{result.name}.xlsx").sheet_names
    assert len([s for s in sheets if s != "Legend"]) == len(csvs) >= len(page.tables)
    return page


@pytest.mark.parametrize("module", REPORTS)
def test_every_table_is_for_people_and_has_its_csv(pages, module):
    check_tables(pages[module])


@pytest.mark.parametrize("module", REPORTS)
def test_every_figure_states_its_finding(pages, module):
    page = _read(pages[module])
    assert page.alts
    for alt in page.alts:
        assert FINDING.search(alt), f"{module}: alt text without a finding: {alt[:160]}"
        assert "horizontal axis" not in alt and "Longitude" not in alt


def test_the_service_reports_charts_state_the_largest_type_and_the_highest_rate(pages, riverton):
    """Checked against DuckDB on the published parquet for the report's own period."""
    result = pages["12-service-performance"]
    period = json.loads((result.out / "manifest.json").read_text(encoding="utf-8"))["period"]
    table = riverton.table_path("service_requests").as_posix()
    people = riverton.table_path("neighborhoods").as_posix()
    window = f"created_at >= DATE '{period['start']}' AND created_at < DATE '{period['last_day']}' + INTERVAL 1 DAY"
    top, n = duckdb.execute(
        f"SELECT request_type, count(*) AS n FROM read_parquet('{table}') WHERE NOT is_duplicate AND {window} "
        "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1"
    ).fetchone()
    hood, rate = duckdb.execute(
        f"SELECT neighborhood, 1000.0 * count(*) / any_value(population) AS r FROM read_parquet('{table}') AS r "
        f"JOIN read_parquet('{people}') AS p USING (neighborhood) WHERE NOT is_duplicate AND {window} "
        "GROUP BY 1 ORDER BY r DESC LIMIT 1"
    ).fetchone()
    alts = [html.unescape(a) for a in _read(result).alts]
    by_type = next(a for a in alts if a.startswith("Chart: Requests by type"))
    assert f"Largest: {top}, {n:,};" in by_type
    by_place = next(a for a in alts if "Map of " in a or "by neighborhood" in a)
    assert f"Highest: {hood}, {rate:.1f};" in by_place or f"Largest: {hood}, {rate:.1f};" in by_place


@pytest.mark.browser
def test_pages_print_with_repeated_headers_and_whole_rows_and_screenshots_are_kept(pages):
    reason = missing()
    if reason:
        pytest.skip(reason)
    script = """() => {
        const rows = [...document.querySelectorAll('table.ck-people tr')];
        const heads = [...document.querySelectorAll('table.ck-people thead')];
        return {rows: rows.length,
                split: rows.filter(r => !['avoid', 'avoid-page'].includes(getComputedStyle(r).breakInside)).length,
                heads: heads.length,
                repeat: heads.filter(h => getComputedStyle(h).display === 'table-header-group').length};
    }"""
    with first_screen() as shoot:
        for module, result in pages.items():
            printed = shoot.evaluate(result.html, script, media="print")
            assert printed["rows"] > 0 and printed["split"] == 0, (module, printed)
            assert printed["heads"] == printed["repeat"] > 0, (module, printed)
            png = shoot(result.html, f"{module}-riverton")
            assert png.stat().st_size > 20_000 and png.parent == ARTIFACTS


@pytest.mark.realdata
def test_on_the_san_francisco_sample_the_pages_hold_up_and_are_screenshot(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", "sf")
    results = {module: run_report(module, {"dataset": name, "period": None}, tmp_path / module) for module in REPORTS}
    for module, result in results.items():
        page = check_tables(result)
        for alt in page.alts:
            assert FINDING.search(alt), f"{module} (sf): alt text without a finding: {alt[:160]}"
    if missing() is None:
        with first_screen() as shoot:
            for module, result in results.items():
                assert shoot(result.html, f"{module}-sf").stat().st_size > 20_000


def test_screenshot_folder_is_ignored_by_git():
    ignored = Path(__file__).resolve().parents[2] / ".gitignore"
    assert "test-artifacts/" in ignored.read_text(encoding="utf-8").splitlines()
