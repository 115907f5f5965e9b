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
        document.body.style.width = '720px';  // a Letter page's printable width (7.5 in at 96 px per inch)
        const wide = [...document.querySelectorAll('table.ck-people')]
            .filter(t => t.getBoundingClientRect().width > 721).map(t => t.querySelector('th').textContent);
        const tall = [...document.querySelectorAll('.jp-RenderedImage img')]
            .filter(i => i.getBoundingClientRect().height > 817).length;  // taller than 8.5 in: split across pages
        return {rows: rows.length,
                split: rows.filter(r => !['avoid', 'avoid-page'].includes(getComputedStyle(r).breakInside)).length,
                heads: heads.length,
                repeat: heads.filter(h => getComputedStyle(h).display === 'table-header-group').length,
                wide: wide, tall: tall,
                alone: [...document.querySelectorAll('.jp-OutputArea-child')].filter(c => c.nextElementSibling
                    && c.nextElementSibling.querySelector('.ck-table')
                    && getComputedStyle(c).breakAfter !== 'avoid').length};  // a title left at a page foot
    }"""
    with first_screen() as shoot:
        for module, result in pages.items():
            printed = shoot.evaluate(result.html, script, media="print")
            assert printed["rows"] > 0 and printed["split"] == 0, (module, printed)
            assert printed["heads"] == printed["repeat"] > 0, (module, printed)
            assert not printed["wide"] and not printed["tall"], (module, printed)  # walk-15 F24: nothing cut in print
            assert printed["alone"] == 0, (module, printed)
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


# ------------------------------------------------------------------ the director's walk of 12 and 14

RAW_NAME = re.compile(r"\b(closed_at|created_at|request_id|pop_\*|flag_[a-z_]+)\b")
JARGON = re.compile(r"Kaplan|metrics\.yml|quality\.yml|\bHolm\b|ledger state|not yet estimable")
TILE_TAG = re.compile(r'<li class="ck-tile[^"]*"([^>]*)>(.*?)</li>', re.S)


def _walk_tiles(page: str) -> list[tuple[str, str, str, str]]:
    """(key, value, verdict, inner HTML) of each key-figure tile, whatever the order of its attributes."""
    found = []
    for attributes, body in TILE_TAG.findall(page):
        attr = dict(re.findall(r'(data-[a-z]+)="([^"]*)"', attributes))
        found.append((attr["data-key"], attr.get("data-value", ""), attr.get("data-verdict", ""), body))
    return found


def _words(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


def _before_methods(page: str) -> str:
    """The page's text above its closing methods note ("About these figures")."""
    return _words(re.sub(r"<style.*?</style>", "", page.split('id="About-these-figures"')[0], flags=re.S))


def _readable_sheets(result) -> None:
    sheets = pd.ExcelFile(result.out / f"{result.name}.xlsx").sheet_names
    assert len({s.casefold() for s in sheets}) == len(sheets) and all(len(s) <= 31 for s in sheets), sheets
    assert not [s for s in sheets if re.match(r"^\d\d |.*\w-\w+-\w", s)], sheets  # no cut-off file names


def test_the_service_page_says_which_requests_each_wait_counts(pages, riverton):
    """The closed-only paragraph's figures are DuckDB's on the published parquet, and it names the tiles' figure."""
    import yaml

    from citykit import paths

    result = pages["12-service-performance"]
    page = result.html.read_text(encoding="utf-8")
    period = json.loads((result.out / "manifest.json").read_text(encoding="utf-8"))["period"]
    rules = yaml.safe_load(
        (paths.course_root() / "curriculum" / "standards" / "metrics.yml").read_text(encoding="utf-8")
    )
    targets = pd.DataFrame({"request_type": list(rules["sla_days"]), "sla": list(rules["sla_days"].values())})
    con = duckdb.connect()
    con.register("targets", targets)
    n, median, on_time = con.execute(
        "SELECT count(*), median(epoch(closed_at - created_at) / 86400), "
        "avg(CAST(closed_at <= coalesce(due_at, created_at + to_days(CAST(sla AS INTEGER))) AS DOUBLE)) "
        "FROM read_parquet(?) LEFT JOIN targets USING (request_type) WHERE status = 'Closed' AND closed_at IS NOT NULL "
        "AND NOT is_duplicate AND NOT flag_closed_before_created AND NOT flag_placeholder_date "
        "AND created_at >= CAST(? AS DATE) AND created_at < CAST(? AS DATE) + INTERVAL 1 DAY",
        [riverton.table_path("service_requests").as_posix(), period["start"], period["last_day"]],
    ).fetchone()
    text = _before_methods(page)
    tiles = {key: (value, verdict, _words(body)) for key, value, verdict, body in _walk_tiles(page)}
    said = (f"Closed requests only: the {n:,} requests closed in this selection took a median {median:.1f} days to "
            f"close; {on_time:.1%} closed within their target. These count closed requests only, so they differ from "
            f"the key figures above, which count requests still open as waiting (median "
            f"{float(tiles['median-days'][0]):.1f} days; {float(tiles['on-time'][0]):.1%} of the requests due on time")  # fmt: skip
    assert said in text, text[:3000]
    assert "open requests counted as still waiting" in tiles["median-days"][2]
    assert not JARGON.search(text), JARGON.search(text)[0]
    assert not RAW_NAME.search(text), RAW_NAME.search(text)[0]
    _readable_sheets(result)


def test_the_scorecard_tiles_compare_the_latest_month_and_the_caveat_counts_as_the_tile(pages, riverton):
    result = pages["14-quality-scorecard"]
    page = result.html.read_text(encoding="utf-8")
    table = riverton.table_path("service_requests").as_posix()
    month = (pd.Timestamp(riverton.as_of) + pd.Timedelta(days=1)).to_period("M") - 1  # the last whole month

    def share(expression: str, first) -> tuple[float, int]:
        return duckdb.execute(f"SELECT avg(CAST({expression} AS DOUBLE)), count(*) FROM read_parquet(?) "
                              "WHERE created_at >= ? AND created_at < ?",
                              [table, first.start_time.to_pydatetime(), (first + 1).start_time.to_pydatetime()],
                              ).fetchone()  # fmt: skip

    measures = {"missing_neighborhood": "neighborhood IS NULL", "type_variant": "flag_type_variant",
                "marked_duplicate": "is_duplicate"}  # fmt: skip
    tiles = {key: (value, verdict, _words(body)) for key, value, verdict, body in _walk_tiles(page)}
    compared = 0
    for key, (_, verdict, body) in tiles.items():
        if key == "data-quality":
            continue
        assert verdict in ("within", "changed", "not-judged"), (key, verdict)
        name = key.removeprefix("service_requests-")
        if name in measures:
            (now, n), (before, m) = share(measures[name], month), share(measures[name], month - 1)
            assert f"{month.start_time:%B %Y}: {now:.1%} of {n:,} requests," in body, body  # how many: walk-15 F20
            assert f"against {before:.1%} of {m:,} in {(month - 1).start_time:%B %Y}" in body, body
            compared += 1
    assert compared >= 2, sorted(tiles)
    located = duckdb.execute("SELECT count(*) FILTER (WHERE latitude IS NOT NULL AND longitude IS NOT NULL) "
                             "FROM read_parquet(?)", [table]).fetchone()[0]  # fmt: skip
    tile = float(tiles["service_requests-placeholder_coords"][0])
    text = _before_methods(page)
    assert f"Placeholder points: {tile:.1%} of the {located:,} requests with coordinates, as in the tile above" in text
    assert not RAW_NAME.search(text), RAW_NAME.search(text)[0]
    assert not JARGON.search(text), JARGON.search(text)[0]
    trend = next(html.unescape(a) for a in _read(result).alts if "Share of requests with each defect" in a)
    assert "Placeholder location" in trend and "placeholder coords" not in trend.lower()
    _readable_sheets(result)


@pytest.mark.realdata
def test_on_the_san_francisco_sample_failing_gates_leave_changes_unjudged_and_0_0_is_no_location(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", "sf")
    service = run_report("12-service-performance", {"dataset": name, "period": "2017-Q4"}, tmp_path / "12")
    page = service.html.read_text(encoding="utf-8")
    tiles = _walk_tiles(page)
    assert tiles and not [key for key, _, verdict, _ in tiles if verdict in ("within", "changed")]
    judged = [_words(body) for key, _, verdict, body in tiles if key in ("requests", "backlog-over-90-days")]
    assert all("Not judged: the data fail 3 quality gates, so changes can't be judged" in t for t in judged), judged
    text = _before_methods(page)
    assert "so whether these changes are beyond normal variation can't be judged" in text
    assert "within normal variation" not in text.lower()  # nor in the details and the table by type
    assert not JARGON.search(text), JARGON.search(text)[0]
    # walk-15 F16, F17: whose share each is, no "n/a", every failing gate named, whole days
    requests = sorted((tmp_path / "home").rglob("service_requests.parquet"))[0].as_posix()
    total, placed_not, quarter = duckdb.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT is_duplicate AND neighborhood IS NULL AND created_at >= DATE "
        "'2017-10-01' AND created_at < DATE '2018-01-01'), count(*) FILTER (WHERE NOT is_duplicate AND created_at >= "
        "DATE '2017-10-01' AND created_at < DATE '2018-01-01') FROM read_parquet(?)", [requests]).fetchone()  # fmt: skip
    quality = next(_words(body) for key, _, _, body in tiles if key == "data-quality")
    assert "more" not in quality and quality.count("(gate") == 3 and f"of the {total:,} checked (gate 5%)" in quality
    assert not re.search(r"\d\.0 days \(gate", quality), quality
    assert f"{placed_not / quarter:.1%} of requests in 2017-Q4 ({placed_not:,} of {quarter:,})" in text, text[:3000]
    assert "n/a" not in text and "9 in 10 requests closed within this" not in text
    card = run_report("14-quality-scorecard", {"dataset": name}, tmp_path / "14")
    text = _before_methods(card.html.read_text(encoding="utf-8"))
    # walk-15 F20: failing data, so no tile calls the latest month's change normal (or not)
    assert not [k for k, _, v, _ in _walk_tiles(card.html.read_text(encoding="utf-8")) if v in ("within", "changed")]
    total, unusable = duckdb.execute(
        "SELECT count(*), count(*) FILTER (WHERE latitude IS NULL OR longitude IS NULL "
        "OR (latitude = 0 AND longitude = 0)) FROM read_parquet(?)", [requests]).fetchone()  # fmt: skip
    assert unusable > 0 and "Every one of" not in text
    said = f"{unusable / total:.1%} of requests ({unusable:,} of {total:,}) have no usable location"
    assert said in text, text[:3000]
    assert not RAW_NAME.search(text), RAW_NAME.search(text)[0]


TILE = re.compile(r'<li class="ck-tile[^"]*"([^>]*)>(.*?)</li>', re.S)


def test_no_count_of_people_on_the_equity_page_escapes_the_suppression(riverton, tmp_path):
    """Issue 20's leak (director walk of issue 15): the key-figure tiles printed a neighborhood's decided
    applications of one month unsuppressed ("Decided applications 7") beside tables hiding it as "≤10".
    The month and neighborhood are chosen here in DuckDB on the published parquet: the one with the most
    decided applications that is still a small count under the standard. Neither that count nor the
    approved count (nor the approval share they make) may appear on the tiles, in the text or in alt
    text; the tile shows the standard's mark, the mark the release ledger recorded for that table's total."""
    import yaml

    from citykit import paths
    from citykit.reports.ledger import ledger_folder

    small = yaml.safe_load((paths.course_root() / "curriculum" / "standards" / "disaggregation.yml").read_text(
        encoding="utf-8"))["privacy"]["small_cells"]  # fmt: skip
    table = riverton.table_path("program_applications").as_posix()
    hood, decided, approved = duckdb.execute(
        "SELECT neighborhood, count(*) AS n, count(*) FILTER (WHERE outcome = 'Approved') FROM read_parquet(?) "
        "WHERE outcome IN ('Approved', 'Denied') AND neighborhood IS NOT NULL AND submitted_at >= DATE '2025-12-01' "
        "AND submitted_at < DATE '2026-01-01' GROUP BY 1 HAVING count(*) BETWEEN ? AND ? ORDER BY n DESC, 1 LIMIT 1",
        [table, small["min_suppressed"], small["max_suppressed"]],
    ).fetchone()  # fmt: skip
    result = run_report("equity-report", {"neighborhood": hood, "period": "2025-12"}, tmp_path)
    page = result.html.read_text(encoding="utf-8")
    tiles = {re.search(r'data-key="([^"]*)"', attrs)[1]: (attrs, html.unescape(re.sub(r"<[^>]+>", " ", body)))
             for attrs, body in TILE.findall(page)}  # fmt: skip
    attrs, text = tiles["decided-applications"]
    value = html.unescape(re.search(r'data-value="([^"]*)"', attrs)[1])
    marks = {small["display"], small["complementary_display"]}
    assert value in marks and value in text.split(), (value, text)
    assert not re.search(rf"(?<![\d.,]){decided}(?![\d.,])", text), text
    share = f"{approved / decided:.1%}"
    approval_attrs, approval_text = tiles["approval-rate"]
    assert share not in approval_text and f'data-value="{approved / decided}"' not in approval_attrs, approval_text
    words = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)))
    for count in {decided, approved} - {0}:
        said = re.search(
            rf"(?<![\d.,]){count} (?:of the )?(?:decided|applications?|applicants?|approved|people)\b", words
        )
        assert not said, said
    assert share not in words
    for alt in _read(result).alts:
        if "pplica" in alt or "pprov" in alt:
            assert not re.search(rf"(?<![\d.,]){decided}(?![\d.,%])", alt), alt
    # the tile's mark is the one the release ledger recorded for the total of the page's table of people
    ledger = json.loads((ledger_folder(result.out) / "riverton.json").read_text(encoding="utf-8"))
    [release] = [r for r in ledger["releases"] if r["parameters"].get("neighborhood") == hood]
    this_month = [t for t in release["tables"] if t["key"] == "race_alone|approved" and "2025" not in t["title"]]
    totals = {m for t in this_month for r, c, m in t["marks"] if r == c == "Total"}  # (the month before: dated)
    assert totals == {value}, (totals, value)


def test_the_equity_tiles_carry_the_period_before_and_the_rules_marker(pages, riverton):
    """Decided applications and the approval share against the period before, both counted here in DuckDB
    on the published parquet; each tile carries the marker of the city's rule for changes."""
    result = pages["13-equity-report"]
    period = json.loads((result.out / "manifest.json").read_text(encoding="utf-8"))["period"]
    start, last = pd.Timestamp(period["start"]), pd.Timestamp(period["last_day"])
    before_start = start - (
        pd.DateOffset(years=1) if start.month == 1 and last.month == 12 else pd.DateOffset(months=1)
    )
    assert (last - start).days in (364, 365, 30), period  # a year or December: its period before is worked out above
    table = riverton.table_path("program_applications").as_posix()
    decided, approved = duckdb.execute(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'Approved') FROM read_parquet(?) "
        "WHERE outcome IN ('Approved', 'Denied') AND submitted_at >= ? AND submitted_at < ?",
        [table, before_start.to_pydatetime(), start.to_pydatetime()],
    ).fetchone()  # fmt: skip
    page = result.html.read_text(encoding="utf-8")
    tiles = {re.search(r'data-key="([^"]*)"', attrs)[1]: (attrs, html.unescape(re.sub(r"<[^>]+>", " ", body)))
             for attrs, body in TILE.findall(page)}  # fmt: skip

    def attr(key: str, name: str) -> str:
        return re.search(rf'data-{name}="([^"]*)"', tiles[key][0])[1]

    assert float(attr("decided-applications", "before")) == decided > 10
    assert float(attr("approval-rate", "before")) == pytest.approx(approved / decided, abs=1e-12)
    assert f"against {decided:,}" in tiles["decided-applications"][1]
    for key in ("decided-applications", "approval-rate"):
        assert attr(key, "verdict") in ("within", "changed", "not-judged"), tiles[key]
        assert re.search(r"Within normal variation|Changed beyond normal variation|Not judged", tiles[key][1])


# ------------------------------------------------------------------ the director's second walk of 12 and 14 (walk-15)


def _about(page: str) -> str:
    """The closing "About these figures" text for a director, without the methods for analysts after it."""
    return _words(page.split('id="About-these-figures"')[1]).split("Methods, for analysts")[0]


def test_the_service_page_reads_plainly_and_exports_what_it_compares(pages, riverton):
    result = pages["12-service-performance"]
    page = result.html.read_text(encoding="utf-8")
    text = _before_methods(page)
    about = _about(page)
    assert not JARGON.search(about) and "citykit data" not in about and "`" not in about, about  # F1, F18
    assert "Methods, for analysts" in _words(page) and "Kaplan-Meier" in _words(page)  # kept, at the end
    backlog = re.search(
        r"Backlog on [^:]+: ([\d,]+) requests open.*?\. Of the ([\d,]+) open, ([\d,]+) were created", text
    )
    assert backlog and backlog[1] == backlog[2] and "Of these," not in text, text[:2000]  # F3
    assert not re.search(r"\blast 1 days\b|Note is left out|\) \(", text), text  # F4
    assert not re.search(r"\b0\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}", text)  # F6: one format
    assert "as this period stands now" not in text and "same follow-up" not in text
    period = json.loads((result.out / "manifest.json").read_text(encoding="utf-8"))["period"]
    before = period["compared_with"]
    # F6: table 07 has the period before's requests by type, counted here on the published parquet
    expected = dict(duckdb.execute(
        "SELECT request_type, count(*) FROM read_parquet(?) WHERE NOT is_duplicate AND created_at >= CAST(? AS DATE) "
        "AND created_at < CAST(? AS DATE) + INTERVAL 1 DAY GROUP BY 1",
        [riverton.table_path("service_requests").as_posix(), before["start"], before["last_day"]],
    ).fetchall())  # fmt: skip
    waits = pd.read_csv(next((result.out / "tables").glob("*-waits-by-request-type.csv"))).set_index("Request type")
    assert len(waits) and all(waits.loc[t, "Requests before"] == expected.get(t, 0) for t in waits.index)
    assert (waits["Closed by then"] <= waits["Requests before"]).all()  # closed of the period before's requests
    # F5: the key figures as numbers: the requests tile's value is DuckDB's count of the period
    now = duckdb.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE NOT is_duplicate AND created_at >= CAST(? AS DATE) "
        "AND created_at < CAST(? AS DATE) + INTERVAL 1 DAY",
        [riverton.table_path("service_requests").as_posix(), period["start"], period["last_day"]],
    ).fetchone()[0]  # fmt: skip
    figures = pd.read_csv(result.out / "tables" / "01-key-figures.csv").set_index("Figure")  # one name in every folder
    assert figures["Value"].dtype.kind in "if" and figures.loc["Requests", "Value"] == now
    assert figures.loc["Requests", "Unit"] == "count" and figures.loc["On time", "Unit"] == "%"
    tiles = {key: _words(body) for key, _, _, body in _walk_tiles(page)}
    assert "9 in 10 requests closed within this many days" in tiles["p90-days"]  # F2


def test_the_scorecard_shows_the_newest_months_and_plain_words(pages, riverton):
    result = pages["14-quality-scorecard"]
    page = result.html.read_text(encoding="utf-8")
    about = _about(page)
    assert not RAW_NAME.search(about) and not JARGON.search(about) and "citykit data" not in about, about  # F22
    newest = duckdb.execute("SELECT strftime(max(created_at), '%Y-%m') FROM read_parquet(?)",
                            [riverton.table_path("service_requests").as_posix()]).fetchone()[0]  # fmt: skip
    table = next(t for t in _read(result).tables if t["head"][:2] == ["Month", "Requests"])
    assert table["rows"][0][0] == newest, table["rows"][:2]  # F21: the recent months are the ones shown
    tiles = {key: _words(body) for key, _, _, body in _walk_tiles(page)}
    before = (pd.Timestamp(riverton.as_of) + pd.Timedelta(days=1)).to_period(
        "M"
    ) - 2  # the month before the last whole one
    assert f"against 0 in {before.start_time:%B %Y}" in tiles["data-quality"], tiles[
        "data-quality"
    ]  # every gate passes
