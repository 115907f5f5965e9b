"""The equity report (13) for a director, after the director's walk of issue 15 (walk-15 F8-F14, F16, F23):
run citywide and for Millbrook on the bundled city; every expected value is counted here in DuckDB on the
published parquet (and the standard's YAML), never read from the report's own code.
"""

from __future__ import annotations

import html
import re

import duckdb
import pytest
import yaml
from report_screens import first_screen, missing

from citykit import paths
from citykit.reports.run import run_report

pytestmark = pytest.mark.slow

TILE = re.compile(r'<li class="ck-tile[^"]*"([^>]*)>(.*?)</li>', re.S)
JARGON = re.compile(
    r"citykit data|import-|metrics\.yml|SPD-15|Holm|Katz|Koopman|k-anonymity|release ledger|reference=|Laney|"
    r"Wilson|four-fifths|benchmark|no value for this row"
)
LACKS = "not shown: most records lack a neighborhood after privacy protection"


@pytest.fixture(scope="module")
def equity_pages(riverton, tmp_path_factory):
    out = tmp_path_factory.mktemp("equity")
    return {
        "city": run_report("equity-report", {}, out / "city"),
        "millbrook": run_report("equity-report", {"neighborhood": "Millbrook"}, out / "millbrook"),
    }


def _words(page: str) -> str:
    text = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    text = re.sub(r"<img[^>]*>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def _tables(page: str) -> list[tuple[list[str], list[list[str]], str]]:
    """(headings, rows, the notes after the table up to the next table) of each table on the page."""
    found = []
    pieces = re.split(r"(<table\b.*?</table>)", page, flags=re.S)
    for i, piece in enumerate(pieces):
        if not piece.startswith("<table"):
            continue
        cell = lambda c: html.unescape(re.sub(r"<[^>]+>", "", c)).strip()  # noqa: E731
        head = [cell(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", piece.split("</thead>")[0], re.S)]
        body = piece.split("</thead>")[-1]
        rows = [[cell(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
                for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]  # fmt: skip
        found.append((head, rows, _words(pieces[i + 1]) if i + 1 < len(pieces) else ""))
    return found


def _alts(page: str) -> list[str]:
    return [html.unescape(a) for a in re.findall(r'<img[^>]*alt="([^"]*)"', page)]


def _standard() -> dict:
    path = paths.course_root() / "curriculum" / "standards" / "disaggregation.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _race_alone_sql() -> str:
    """race "alone" as the standard defines it, in SQL (the lesson's hidden test builds it the same way)."""
    race = _standard()["race_ethnicity"]
    label = {c["code"]: c["label"] for c in race["categories"]}
    selected = " + ".join(f"coalesce(race_{c}::INT, 0)" for c in label)
    generalised = " AND ".join(f"race_{c} IS NULL" for c in label)
    return (f"CASE WHEN {generalised} OR {selected} >= 2 THEN '{race['multiracial']['label']}' "
            + " ".join(f"WHEN {selected} = 1 AND race_{c} THEN '{label[c]}'" for c in label)
            + f" WHEN race_declined THEN '{race['declined']['label']}' ELSE '{race['not_reported']['label']}' END")  # fmt: skip


def _language_approval_rates(riverton) -> list[tuple[str, int, float]]:
    """(language, decided applications, approval rate) for 2025, largest language first, by DuckDB."""
    table = riverton.table_path("program_applications").as_posix()
    return duckdb.execute(
        "SELECT language, count(*) AS n, avg((outcome = 'Approved')::INT) AS rate FROM read_parquet(?) "
        "WHERE outcome IN ('Approved', 'Denied') AND language IS NOT NULL AND submitted_at >= DATE '2025-01-01' "
        "AND submitted_at < DATE '2026-01-01' GROUP BY 1 ORDER BY n DESC", [table],
    ).fetchall()  # fmt: skip


def test_millbrook_shows_no_disproportionality_for_groups_privacy_removed(equity_pages, riverton):
    """F13: a group most of whose 2025 records (every outcome, citywide) have no neighborhood gets no index
    (not 0.00); a group with most records placed keeps its number. No analyst instruction on the page."""
    table = riverton.table_path("program_applications").as_posix()
    shares = dict(duckdb.execute(
        f"SELECT {_race_alone_sql()} AS g, avg((neighborhood IS NULL)::INT) FROM read_parquet(?) "
        "WHERE submitted_at >= DATE '2025-01-01' AND submitted_at < DATE '2026-01-01' GROUP BY 1", [table],
    ).fetchall())  # fmt: skip
    removed = {g for g, s in shares.items() if s > 0.5}
    kept = {g for g, s in shares.items() if s <= 0.5}
    assert removed and kept, shares
    page = equity_pages["millbrook"].html.read_text(encoding="utf-8")
    [(head, rows, _)] = [t for t in _tables(page) if "Disproportionality index" in t[0]]
    column = head.index("Disproportionality index")
    index = {row[0]: row[column] for row in rows}
    for group in removed & set(index):
        assert index[group] == LACKS, (group, index[group])
    for group in kept & set(index):
        assert index[group] != LACKS and not index[group].startswith("not shown"), (group, index[group])
    director = _words(page).split("Methods, for analysts")[0]
    assert "reference=" not in director and "Choose another reference group" not in director
    assert director.count("No ratios against the reference group") <= 2  # table note and the sentence, not 3


@pytest.mark.parametrize("which", ["city", "millbrook"])
def test_the_decided_count_says_so_far_while_applications_await_a_decision(equity_pages, riverton, which):
    """F23: the tile of decided applications says "so far" exactly when the period has pending applications."""
    table = riverton.table_path("program_applications").as_posix()
    place = "" if which == "city" else "AND neighborhood = 'Millbrook'"
    [pending] = duckdb.execute(
        "SELECT count(*) FILTER (WHERE outcome = 'Pending') FROM read_parquet(?) WHERE submitted_at >= "
        f"DATE '2025-01-01' AND submitted_at < DATE '2026-01-01' {place}", [table],
    ).fetchone()  # fmt: skip
    page = equity_pages[which].html.read_text(encoding="utf-8")
    tiles = {re.search(r'data-key="([^"]*)"', a)[1]: _words(b) for a, b in TILE.findall(page)}
    assert ("Decided applications so far" in tiles["decided-applications"]) == (pending > 0), tiles
    assert pending > 0  # 2025's last applications are still pending in the bundled city


def test_reference_rows_say_reference_group_and_the_ratio_chart_alt_names_the_finding(equity_pages, riverton):
    """F11: the reference row of each comparison reads "reference group", no "no value for this row" for it.
    F10: the first-screen chart's alt text names each panel and the languages below the 0.8 screen, as
    DuckDB's approval ratios against the largest language give them."""
    page = equity_pages["city"].html.read_text(encoding="utf-8")
    ratio_tables = [t for t in _tables(page) if "Ratio to the reference group" in t[0]]
    assert len(ratio_tables) == 3
    std = _standard()
    race_ref = {c["code"]: c["label"] for c in std["race_ethnicity"]["categories"]}[
        std["disparity"]["reference_group"]["race_ethnicity"]]  # fmt: skip
    for head, rows, notes in ratio_tables:
        column = head.index("Ratio to the reference group")
        references = [row[0] for row in rows if row[column] == "reference group"]
        assert len(references) == 1, rows
        assert references[0] in (race_ref, std["disparity"]["reference_group"]["gender"], "English")
        assert "no value for this row" not in notes
    rates = _language_approval_rates(riverton)
    largest, _, base = rates[0]
    below = {lang for lang, _, rate in rates[1:] if rate / base < std["disparity"]["notable"]["ratio_below"]}
    assert largest == "English" and below
    [alt] = [a for a in _alts(page) if a.startswith("Chart: approval rates as ratios")]
    assert not re.search(r", ;|; \.|, \.| ;", alt), alt
    language = alt.split("By language, against English:")[1].split("By race and ethnicity, against")[0]
    assert f"By race and ethnicity, against {race_ref}:" in alt
    named = set(re.findall(r"([A-Z][\w ]+?) \(0\.\d+\)", language.split("below 0.8:")[1])) if below else set()
    assert named == below, (named, below, alt)


def test_the_director_reads_plain_words_and_no_single_dot_chart(equity_pages):
    """F8: no method name, file name, command or ledger word before "Methods, for analysts" (which has them);
    F12: the gender categories said in one line; F14: no chart of one group (a sentence instead)."""
    for which, result in equity_pages.items():
        page = result.html.read_text(encoding="utf-8")
        words = _words(page)
        director, _, methods = words.partition("Methods, for analysts")
        assert methods and "Holm" in methods, which
        assert not JARGON.search(director), (which, JARGON.search(director)[0], director[
            max(JARGON.search(director).start() - 120, 0):JARGON.search(director).end() + 40])  # fmt: skip
        assert not [a for a in _alts(page) if "One group:" in a], which
        assert '"Not shown (privacy)" counts those applicants' in words, which
    # F11: the index is read in plain words where it is shown (citywide, every group has a population)
    assert (
        "Reading the disproportionality index: a group's share of the approvals divided by its share of the "
        "residents. Below 1" in _words(equity_pages["city"].html.read_text(encoding="utf-8"))
    )
    millbrook = _words(equity_pages["millbrook"].html.read_text(encoding="utf-8"))
    assert "Only one race and ethnicity group's approval rate can be shown" in millbrook


@pytest.mark.skipif(missing() is not None, reason=str(missing()))
def test_the_result_sentences_are_on_the_first_screen(equity_pages, riverton):
    """F9: at 1280x800 the first screen holds "What the figures show" and its first sentence: the language
    with the lowest approval ratio (DuckDB) is named above the fold."""
    rates = _language_approval_rates(riverton)
    lowest = min(rates[1:], key=lambda r: r[2])[0]
    with first_screen() as shoot:
        for which, result in equity_pages.items():
            shoot(result.html, f"13-equity-report-{which}-800", 800)
            text = shoot.text(result.html, 800)
            assert "What the figures show:" in text, (which, text[-400:])
        assert f"{lowest}-language applicants were approved at" in shoot.text(equity_pages["city"].html, 800)


@pytest.mark.realdata
def test_on_the_san_francisco_sample_the_closed_only_median_says_so(tmp_path, monkeypatch):
    """F16 (report 13's side): the median days tile counts closed requests only and says so in its label;
    its value is DuckDB's median over the year's closed, non-duplicate requests of the published sample."""
    from notebook_helpers import import_real_sample

    from citykit.data import registry

    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", "sf")
    result = run_report("equity-report", {"dataset": name, "period": "2017"}, tmp_path / "sf")
    page = result.html.read_text(encoding="utf-8")
    tiles = {re.search(r'data-key="([^"]*)"', a)[1]: (a, _words(b)) for a, b in TILE.findall(page)}
    attrs, text = tiles["median-days"]
    assert text.strip().startswith("Median days to close, closed requests only"), text
    requests = registry.get(name).table_path("service_requests").as_posix()
    rules = yaml.safe_load((paths.course_root() / "curriculum" / "standards" / "metrics.yml").read_text(
        encoding="utf-8"))["time_to_close"]  # fmt: skip
    flags = "".join(f" AND NOT {flag}" for flag in rules["exclude"]["flags"])
    [median] = duckdb.execute(
        "SELECT median(epoch(closed_at - created_at) / 86400) FROM read_parquet(?) WHERE NOT is_duplicate "
        f"AND list_contains(?, status) AND closed_at IS NOT NULL{flags} AND created_at >= DATE '2017-01-01' "
        "AND created_at < DATE '2018-01-01'", [requests, [str(s) for s in rules["closed_statuses"]]],
    ).fetchone()  # fmt: skip
    assert float(re.search(r'data-value="([^"]*)"', attrs)[1]) == pytest.approx(median, abs=0.05)


MARKS = {"≤10", "†", "‡"}  # the standard's small-count, complementary and withheld marks


def test_no_race_ratio_is_drawn_from_cells_the_page_hides(riverton, tmp_path):
    """walk-20 #12: on the citywide December page the race tables were hidden (withheld whole, "‡"),
    yet the first-screen chart drew Black 1.05 and Hispanic 0.95 against White, its alt text named them and
    the caveat counted "19 not reported": computed from the cells the page hides. Every ratio and count
    on the page must come from the published table: a group whose count (or the reference group's) is
    hidden is compared nowhere. DuckDB on the published parquet checks the hidden groups have people. Since
    standard 1.4.2 (its data generalised further) the page can show the race counts, with the table of ratios
    by race (alone) after them: each ratio there and in the chart's alt text is the one the shown counts give."""
    result = run_report("equity-report", {"period": "2025-12"}, tmp_path)
    page = result.html.read_text(encoding="utf-8")
    # the counts table ("alone"); the table of ratios by race (alone) is headed by the same groups, its cells ratios
    [(head, rows, _)] = [t for t in _tables(page) if t[0][:2] == ["Race and ethnicity (alone)", "Number"]]
    assert head[2] == "Approved", head
    shown = {row[0]: row[1:3] for row in rows}
    hidden = {g for g, cells in shown.items() if set(cells) & MARKS}
    std = _standard()
    reference = {c["code"]: c["label"] for c in std["race_ethnicity"]["categories"]}[
        std["disparity"]["reference_group"]["race_ethnicity"]]  # fmt: skip
    decided = dict(duckdb.execute(
        f"SELECT {_race_alone_sql()} AS g, count(*) FROM read_parquet(?) WHERE outcome IN ('Approved', 'Denied') "
        "AND submitted_at >= DATE '2025-12-01' AND submitted_at < DATE '2026-01-01' GROUP BY 1",
        [riverton.table_path("program_applications").as_posix()],
    ).fetchall())  # fmt: skip
    people = {g for g in hidden if decided.get(g, 0) > 0}
    assert len(people - {reference}) >= 2, (hidden, decided)  # hidden groups the chart could have drawn
    compared = people | ({g for g in shown if g != reference} if reference in hidden else set())
    for alt in (a for a in _alts(page) if a.startswith("Chart: approval rates as ratios")):
        race = alt.split("By race and ethnicity, against")[-1] if "By race and ethnicity" in alt else ""
        assert not [g for g in compared if g in race], alt
    words = _words(page)
    first = words.split("What the figures show:")[1].split("Read these figures")[0]
    assert not [g for g in compared if f"{g} applicants were approved" in first], first
    # every ratio the page gives (table and chart) is the one the published counts give: approved ÷ number of the
    # group over the reference group's, both shown (a ratio from the cells the page hides would differ, or exist)
    share = lambda g: int(shown[g][1].replace(",", "")) / int(shown[g][0].replace(",", ""))  # noqa: E731
    given = {}
    for head, rows, _ in _tables(page):
        if head[:2] == ["Race and ethnicity (alone)", "Ratio to the reference group"]:
            assert not [r for r in rows if r[0] in compared and r[1] not in ("—", "", "reference group")], rows
            given |= {r[0]: float(r[1]) for r in rows if re.fullmatch(r"\d+\.\d+", r[1])}
    for alt in (a for a in _alts(page) if a.startswith("Chart: approval rates as ratios")):
        race = alt.split("By race and ethnicity, against")[-1] if "By race and ethnicity" in alt else ""
        named = re.findall(r"(?:Highest|lowest|One group): ([^,;]+), (\d\.\d+)|([^,:;(]+) \((\d\.\d+)\)", race)
        given |= {(a or c).strip(): float(b or d) for a, b, c, d in named}
    for group, ratio in given.items():
        assert group in shown and not {*shown[group], *shown[reference]} & MARKS, (group, shown)
        assert abs(ratio - share(group) / share(reference)) <= 0.0051, (group, ratio, shown)
    said = re.search(r"did not give a race or ethnicity \(([^)]*)\)", words)
    for count, label in re.findall(r"(\S+) (not reported|declined)", said[1] if said else ""):
        assert count == shown[label.capitalize()][0], (said[1], shown)


def test_no_heading_prints_a_small_count_of_applicants(riverton, tmp_path):
    """walk-20 #2c: the section heading printed "Program applications (Kessler Park, 2025-12): 7", a count
    of 1 to 10 people in plain text. DuckDB picks the neighborhood whose December applications (every
    outcome) are the most that are still a small count; that count is said nowhere on its page."""
    small = _standard()["privacy"]["small_cells"]
    hood, n = duckdb.execute(
        "SELECT neighborhood, count(*) AS n FROM read_parquet(?) WHERE neighborhood IS NOT NULL "
        "AND submitted_at >= DATE '2025-12-01' AND submitted_at < DATE '2026-01-01' GROUP BY 1 "
        "HAVING count(*) BETWEEN ? AND ? ORDER BY n DESC, 1 LIMIT 1",
        [riverton.table_path("program_applications").as_posix(), small["min_suppressed"], small["max_suppressed"]],
    ).fetchone()  # fmt: skip
    words = _words(run_report("equity-report", {"neighborhood": hood, "period": "2025-12"}, tmp_path).html.read_text(
        encoding="utf-8"))  # fmt: skip
    count = rf"(?<![\d.,≤])(?<!to ){n}(?![\d.,%])"
    assert not re.search(rf"applica\w*\s*\([^)]*\):\s*{count}", words, flags=re.I), words
    assert not re.search(rf"{count} (?:of the )?(?:applications?|applicants?|people)\b", words), words
