"""The three production reports (modules 12-14) as lessons, graded submissions and reports.

Each module: the source follows the notebook conventions and its course.yml entry; the solution
autogrades to full marks and the untouched student version to 0; learners' common mistakes fail a
visible test whose message names the mistake; the report runs on the bundled city (and on
parameters that exercise its fallbacks) and its HTML holds no code, no test and no lesson cell.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from notebook_helpers import (
    autograded_points,
    by_grade_id,
    cells_of,
    check_left_out,
    counted_for_time_to_close,
    failed_tests,
    graded_course,
    import_real_sample,
    max_points,
    min_closed_to_compare,
    nbgrader_meta,
    real_sample_sql,
    report_html_has_no_code,
    source_notebook,
    submit_notebook,
    table_rows,
    with_mistakes,
)

from citykit.data import registry
from citykit.grading.assignments import submit
from citykit.lessons.course import find_module
from citykit.reports.contract import lesson_only_reason
from citykit.reports.run import run_report

pytestmark = pytest.mark.slow

REPORTS = ["12-service-performance", "13-equity-report", "14-quality-scorecard"]

# grade_id of the solution cell -> (solution text, learner's mistake); the test cell -> advice expected
MISTAKES: dict[str, dict[str, tuple[str, str]]] = {
    "12-service-performance": {
        "volume": ("    WHERE NOT is_duplicate\n    GROUP BY request_type", "    GROUP BY request_type"),
        "performance": ("median(epoch(closed_at - created_at) / 86400) AS median_days",
                        "avg(epoch(closed_at - created_at) / 86400) AS median_days"),
        "per-1000": ("/ population * 1000", "/ population"),
        "change": ("(current_volume - previous_volume) / previous_volume if", "(current_volume - previous_volume) / current_volume if"),
    },
    "13-equity-report": {
        "income-correlation": ('method="spearman"', 'method="pearson"'),
        "decided": ('isin(["Approved", "Denied"])', 'isin(["Approved", "Denied", "Pending", "Withdrawn"])'),
        "approval-by-race": ('equity.disaggregate(\n    decided, by=["race_alone"], measure="approved", per=100, collapse="small_groups_to_other", reference=REFERENCE,\n    title="Approval rate by race and ethnicity (alone), per 100 decided applications",\n)',
                             'decided.groupby("language")["approved"].agg(["size", "mean"])'),
        "language-comparison": ('result.loc[result["rr_p_adjusted"] < 0.05, "language"]', 'result.loc[result["notable"], "language"]'),
    },
    "14-quality-scorecard": {
        "flag-counts": ("count(*) FILTER (WHERE {flag}) AS {flag}", "count({flag}) AS {flag}"),
        "defect-share": ('any_flag = " OR ".join(FLAGS)', 'any_flag = " + ".join(f"CAST({f} AS INTEGER)" for f in FLAGS)'),
        "top-points": ("    FROM requests WHERE latitude IS NOT NULL AND longitude IS NOT NULL\n", "    FROM requests\n"),
    },
}  # fmt: skip
ADVICE: dict[str, dict[str, str]] = {
    "12-service-performance": {
        "volume-in-sql": "keeps duplicate requests",
        "performance-by-type": "that is the mean",
        "requests-per-1000": "requests per resident",
        "change-from-previous": "divides by this period's volume",
    },
    "13-equity-report": {
        "rates-and-demographics": "Pearson's correlation",
        "decided-applications": "they have no decision yet",
        "disaggregate-under-standard": "plain pandas table",
        "corrected-comparisons": "lists the notable differences",
    },
    "14-quality-scorecard": {
        "flags-by-month": "count(flag) counts every non-missing value",
        "defect-share-by-month": "a record with two flags counts twice",
        "placeholder-points": "includes requests with no coordinates",
    },
}


def source(module: str) -> nbformat.NotebookNode:
    return nbformat.read(source_notebook(module), as_version=4)


# ------------------------------------------------------------------ the source notebooks


@pytest.mark.parametrize("module", REPORTS)
def test_source_notebook_follows_the_conventions(module):
    from notebook_helpers import check_hidden_tests

    nb = source(module)
    entry = find_module(module)
    assert entry.report and entry.folder_name == module
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    declared = set(re.findall(r"^(\w+) = ", parameters[0].source, re.M))
    assert declared == {p.name for p in entry.parameters} and "dataset" in declared
    # data parameters, or a value from a stated list (report 13's reference group)
    assert all(p.help and (p.type in ("dataset", "period", "neighborhood") or p.choices) for p in entry.parameters)

    tests = cells_of("test", nb)
    manual = cells_of("manual", nb)
    assert len(tests) >= 3 and len(manual) == 1 and manual[0].cell_type == "markdown"
    assert set(entry.assessments) == {nbgrader_meta(c)["grade_id"] for c in tests + manual}
    assert set(entry.assessments.values()) <= set(entry.objectives)
    objectives = next(c.source for c in nb.cells if "**Objectives**" in c.source)
    for cell in tests:
        grade_id = nbgrader_meta(cell)["grade_id"]
        assert f"`{grade_id}`" in objectives, f"test {grade_id} names no objective"
        assert nbgrader_meta(cell)["points"] > 0
        check_hidden_tests(grade_id, cell.source)  # the reference route, no hand-written rule
        assert "check." in cell.source.split("### BEGIN HIDDEN TESTS")[0] or "assert" in cell.source
    training = [c for c in nb.cells if "training" in c.metadata.get("tags", [])]
    assert "Keypoints" in training[-1].source and "Objectives" in training[0].source
    assert re.search(r"about \d+ minutes \(\d+ teaching, \d+ exercises\)", training[0].source)
    assert "About these figures" in nb.cells[-1].source and not lesson_only_reason(nb.cells[-1])
    # every chart has a title and labelled axes, in a color-blind-safe palette
    charts = [c.source for c in nb.cells if c.cell_type == "code" and "plt.subplots" in c.source]
    assert charts
    for chart in charts:
        assert "set_title(" in chart or "title=title" in chart
        assert ("set_xlabel(" in chart and "set_ylabel(" in chart) or "maps.choropleth" in chart
    setup = next(c.source for c in nb.cells if nbgrader_meta(c).get("grade_id") == "setup")
    assert 'palette="colorblind"' in setup and "citykit.dataset(dataset)" in setup


# ------------------------------------------------------------------ graded as a lesson


@pytest.fixture(scope="module", params=REPORTS)
def course(request, tmp_path_factory, riverton):
    module = request.param
    return module, graded_course(tmp_path_factory.mktemp(module), module)


def test_solution_gets_every_point_a_blank_none_and_mistakes_are_named(course, tmp_path):
    module, root = course
    nb = source(module)
    points = max_points(nb)
    submit(module, "solver", source_notebook(module), course_root=root)
    submit(module, "blank", course_root=root)
    assert autograded_points(root, module, "solver") == (points, points)
    assert autograded_points(root, module, "blank") == (0.0, points)

    released = nbformat.read(root / "grading" / "release" / module / f"{module}.ipynb", as_version=4)
    text = "\n".join(c.source for c in released.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "read_parquet(_ds" not in text
    assert text.count("raise NotImplementedError()") == len(cells_of("solution", nb))

    submit_notebook(root, module, "mistaken", with_mistakes(module, MISTAKES[module]), tmp_path)
    got, _ = autograded_points(root, module, "mistaken")
    failures = failed_tests(root, module, "mistaken")
    for grade_id, advice in ADVICE[module].items():
        assert grade_id in failures, f"{grade_id}: the mistake passed"
        assert advice in failures[grade_id], f"{grade_id}: {failures[grade_id]}"
    assert got <= points - sum(nbgrader_meta(by_grade_id(nb)[g])["points"] for g in ADVICE[module])


# ------------------------------------------------------------------ run as production reports


def check_report_html(module: str, page: str) -> None:
    body = re.sub(r"<style.*?</style>", "", page, flags=re.S)
    nb = source(module)
    report_html_has_no_code(body, nb)
    assert "data:image/png;base64" in body
    assert "jp-CodeMirrorEditor" not in body and 'class="highlight' not in body
    input_areas = re.findall(r'<div class="jp-InputArea[^"]*">\s*<div class="([^"]*)"', body)
    assert input_areas and all("jp-RenderedMarkdown" in classes for classes in input_areas)  # narrative only
    for cell in nb.cells:
        if lesson_only_reason(cell):
            first = next(line for line in cell.source.splitlines() if line.strip()).lstrip("#> ").strip()
            assert first not in body and html.escape(first) not in body, first
    for text in ("Traceback", "Error", "read_parquet", "check.", "YOUR ", "Exercise", "BEGIN HIDDEN"):
        assert text not in body, text
    assert "About these figures" in body


@pytest.mark.parametrize("module", REPORTS)
def test_report_runs_on_the_bundled_city(module, riverton, tmp_path):
    result = run_report(module, {}, tmp_path)
    executed = nbformat.read(result.notebook, as_version=4)
    assert not any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))
    assert not any(nbgrader_meta(c).get("grade") for c in executed.cells)
    check_report_html(module, result.html.read_text(encoding="utf-8"))


def _markdown_outputs(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(str(o.get("data", {}).get("text/markdown", "")) for c in nb.cells for o in c.get("outputs", []))


def test_service_performance_for_one_neighborhood_states_its_figures(riverton, tmp_path):
    table = riverton.table_path("service_requests").as_posix()
    hood = duckdb.execute(f"SELECT min(neighborhood) FROM read_parquet('{table}')").fetchall()[0][0]
    now, before = duckdb.execute(
        f"SELECT count(*) FILTER (WHERE created_at >= DATE '2025-07-01' AND created_at < DATE '2025-10-01'), "
        f"count(*) FILTER (WHERE created_at >= DATE '2025-04-01' AND created_at < DATE '2025-07-01') "
        f"FROM read_parquet('{table}') WHERE neighborhood = ? AND NOT is_duplicate", [hood],
    ).fetchall()[0]  # fmt: skip
    result = run_report("service-performance", {"neighborhood": hood, "period": "2025-Q3"}, tmp_path)
    text = _markdown_outputs(result.notebook)
    # the period before a calendar quarter is the previous calendar quarter (April to June)
    assert f"**Requests:** {now:,} against {before:,} ({(now - before) / before:+.1%})" in text
    assert "Compared with 01 Apr 2025 to 30 Jun 2025" in text
    assert f"**{hood}** files" in text
    check_report_html("12-service-performance", result.html.read_text(encoding="utf-8"))


def test_service_performance_without_boundaries_draws_a_ranked_bar_chart(riverton, tmp_path, monkeypatch):
    home = tmp_path / "home"
    folder = home / riverton.location
    folder.mkdir(parents=True)
    for table in riverton.tables:
        (folder / f"{table}.parquet").symlink_to(riverton.table_path(table))
    monkeypatch.setenv("CITYKIT_HOME", str(home))
    assert not registry.get("riverton").boundaries_path.exists()
    result = run_report("service-performance", {"period": "2025-06"}, tmp_path / "out")
    executed = nbformat.read(result.notebook, as_version=4)
    chart = next(c for c in executed.cells if "maps.has_boundaries" in c.source)
    assert any("image/png" in o.get("data", {}) for o in chart.outputs)
    assert "Rank" in str([o.get("data", {}).get("text/html", "") for o in chart.outputs])


def test_equity_report_for_a_small_neighborhood_suppresses_and_explains(riverton, tmp_path):
    table = riverton.table_path("program_applications").as_posix()
    hood = duckdb.execute(
        f"SELECT neighborhood FROM read_parquet('{table}') WHERE neighborhood IS NOT NULL "
        "AND submitted_at >= DATE '2025-07-01' AND submitted_at < DATE '2025-08-01' GROUP BY 1 ORDER BY count(*), 1 LIMIT 1"
    ).fetchall()[0][0]
    result = run_report("equity-report", {"neighborhood": hood, "period": "2025-07"}, tmp_path)
    page = result.html.read_text(encoding="utf-8")
    assert "≤10" in page  # small counts of people are suppressed, with the standard's mark
    check_report_html("13-equity-report", page)
    # the exported tables carry the marks, and a legend of every mark they use travels with them
    tables = [csv for csv in result.tables if csv.name != "legend.csv"]
    marked = {m for csv in tables for m in ("≤10", "†", "‡") if m in csv.read_text(encoding="utf-8")}
    assert "≤10" in marked
    legend = (result.out / "tables" / "legend.csv").read_text(encoding="utf-8")
    assert {m for m in ("≤10", "†", "‡") if m in legend} == marked
    import openpyxl

    sheets = openpyxl.load_workbook(next(result.out.glob("*.xlsx")), read_only=True).sheetnames
    assert "legend" in sheets


# ------------------------------------------------------------------ scale and real data


# The whole large city's time and memory are measured by benchmarks/bench_reports.py, not asserted here.


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
@pytest.mark.parametrize("module", REPORTS)
def test_reports_run_on_an_imported_real_sample(module, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    assert registry.get(name).tables == ("service_requests",)  # a plain 311 export: no population, no programs
    result = run_report(module, {"dataset": name, "period": None}, tmp_path / "out")
    executed = nbformat.read(result.notebook, as_version=4)
    assert not any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))
    page = result.html.read_text(encoding="utf-8")
    if module == "13-equity-report":  # no demographics or programs: say so, and show service by place
        check_left_out(page, name, ["neighborhoods", "program_applications"])
        requests, con = real_sample_sql(name)
        days = "epoch(closed_at - created_at) / 86400"
        counted = counted_for_time_to_close()
        slowest, n, closed, median = con.execute(
            f"""
            SELECT neighborhood, count(*), count(*) FILTER (WHERE {counted}) AS closed,
                   median({days}) FILTER (WHERE {counted}) AS m
            FROM {requests} WHERE NOT is_duplicate AND neighborhood IS NOT NULL
            GROUP BY 1 HAVING closed >= $1 ORDER BY m DESC LIMIT 1
        """,
            [min_closed_to_compare()],
        ).fetchone()
        assert table_rows(page, slowest) == [[f"{n:,}", f"{closed:,}", f"{median:.1f}"]]
        # citywide means every request, with or without a neighborhood: the service report's figure
        citywide = con.execute(f"SELECT median({days}) FROM {requests} WHERE {counted}").fetchone()[0]
        unplaced = con.execute(
            f"SELECT count(*) FROM {requests} WHERE NOT is_duplicate AND neighborhood IS NULL"
        ).fetchone()[0]
        assert f"citywide, every request: {citywide:.1f} days" in page
        assert (
            (f"{unplaced:,} of the period" in page)
            if unplaced
            else "Every request of the period has a neighborhood" in page
        )
        service = run_report("service-performance", {"dataset": name, "period": None}, tmp_path / "service")
        assert f"median {citywide:.1f} days to close" in service.html.read_text(encoding="utf-8")
        assert "Approval rate" not in page
        manifest = json.loads((result.out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["left_out"] == [["neighborhoods"], ["program_applications"]]


# ------------------------------------------------------------------ report 13 under standard 1.1.0


def _approval_counts(riverton, column_sql: str, period: tuple[str, str], neighborhood: str | None = None):
    """group -> (approved, denied, decided) from DuckDB on the published parquet (an independent route)."""
    path = riverton.table_path("program_applications").as_posix()
    where = f"submitted_at >= DATE '{period[0]}' AND submitted_at < DATE '{period[1]}'"
    if neighborhood:
        where += f" AND neighborhood = '{neighborhood}'"
    rows = duckdb.execute(
        f"SELECT {column_sql} AS g, count(*) FILTER (WHERE outcome = 'Approved') AS a, "
        f"count(*) FILTER (WHERE outcome = 'Denied') AS d FROM read_parquet('{path}') WHERE {where} "
        "AND outcome IN ('Approved', 'Denied') GROUP BY 1"
    ).fetchall()
    return {g: (a, d, a + d) for g, a, d in rows}


def _holm_significant(counts: dict, reference: str, groups) -> list[str]:
    import numpy as np
    from statsmodels.stats.contingency_tables import Table2x2
    from statsmodels.stats.multitest import multipletests

    ref = counts[reference]
    p = [Table2x2(np.array([[counts[g][0], counts[g][1]], [ref[0], ref[1]]])).log_riskratio_pvalue() for g in groups]
    return sorted(g for g, q in zip(groups, multipletests(p, method="holm")[1]) if q < 0.05)


def _alone_sql(code: str) -> str:
    codes = ("aian", "asian", "black", "hispanic", "mena", "nhpi", "white")
    return " AND ".join(
        [f"coalesce(race_{code}, false)"] + [f"NOT coalesce(race_{c}, false)" for c in codes if c != code]
    )


def test_equity_report_shows_the_corrected_significant_comparisons(riverton, tmp_path):
    """Language and race: the groups the report calls significant after Holm are those statsmodels'
    Table2x2 (Katz) finds on DuckDB counts; the denial ratio and both presentations are shown."""
    result = run_report("equity-report", {"period": "2025"}, tmp_path)
    page = result.html.read_text(encoding="utf-8")
    languages = _approval_counts(riverton, "language", ("2025-01-01", "2026-01-01"))
    others = sorted(g for g in languages if g != "English")
    expected = _holm_significant(languages, "English", others)
    assert expected == ["Arabic", "Chinese", "Other", "Spanish", "Vietnamese"]  # the Poisson interval found two
    assert "Corrected p-value below 0.05:</strong> " + ", ".join(expected) + "." in page
    labels = {
        "aian": "American Indian or Alaska Native",
        "asian": "Asian",
        "black": "Black or African American",
        "hispanic": "Hispanic or Latino",
        "mena": "Middle Eastern or North African",
        "nhpi": "Native Hawaiian or Pacific Islander",
        "white": "White",
    }
    race = {}
    for code, label in labels.items():
        race[label] = _approval_counts(
            riverton, f"CASE WHEN {_alone_sql(code)} THEN 'x' END", ("2025-01-01", "2026-01-01")
        )["x"]
    # the report's race family also holds Multiracial, Not reported and Declined: take its own list of
    # significant groups and check each against the single-category groups' statsmodels p-values
    summary = re.search(
        r"By race and ethnicity, approval shares that differ[^:]*: ([^.]*(?:\.\d+[^.]*)*)\. Notable",
        html.unescape(page),
    )
    assert summary, "no race summary"
    named = re.findall(r"(?:^|; )([A-Z][^;0-9]*?) \d", summary[1])
    assert "Hispanic or Latino" in named
    big = _holm_significant(race, "White", [g for g in race if g != "White"])
    assert "Hispanic or Latino" in big and set(named) & set(race) <= set(big) | {"White"}
    assert "denied ratio" in page and "alone or in combination" in page and "Approval rate by gender" in page
    assert "disproportionality" in page


def test_equity_report_for_millbrook_q4_marks_only_small_counts(riverton, tmp_path):
    """No "0 of ≤10" (an outcome beside a hidden size) and "≤10" only on counts from 1 to 10: each
    mark in the published CSV tables is checked against the DuckDB count it hides."""
    import csv

    result = run_report("equity-report", {"neighborhood": "Millbrook", "period": "2025-Q4"}, tmp_path)
    period = ("2025-10-01", "2026-01-01")
    truth = {
        "language": _approval_counts(riverton, "language", period, "Millbrook"),
        "gender": _approval_counts(riverton, "coalesce(gender, 'Not shown (privacy)')", period, "Millbrook"),
    }
    labels = {
        "Hispanic or Latino": "hispanic",
        "White": "white",
        "Black or African American": "black",
        "Asian": "asian",
    }
    checked = 0
    for table in sorted((result.out / "tables").glob("*.csv")):
        rows = list(csv.DictReader(table.open(encoding="utf-8")))
        if not rows or "n" not in rows[0]:
            continue
        key = next(iter(rows[0]))
        for row in rows:
            assert not (row["n"] == "≤10" and row.get("events") == "0"), f"{table.name}: 0 of ≤10 for {row[key]}"
            if key in truth:
                counts = truth[key].get(row[key])
            elif key == "race_alone" and row[key] in labels:
                counts = _approval_counts(
                    riverton, f"CASE WHEN {_alone_sql(labels[row[key]])} THEN 'x' END", period, "Millbrook"
                ).get("x")
            else:
                continue
            approved, _, decided = counts
            for mark, value in ((row["n"], decided), (row.get("events"), approved)):
                if mark == "≤10":
                    assert 1 <= value <= 10, f"{table.name}: ≤10 on a count of {value} ({row[key]})"
                    checked += 1
    assert checked > 0  # the selection does hide small counts


def test_equity_report_reference_parameter(riverton, tmp_path):
    from citykit.errors import CitykitError
    from citykit.reports import params
    from citykit.standards import load_disaggregation

    entry = find_module("13-equity-report")
    spec = next(p for p in entry.parameters if p.name == "reference")
    std = load_disaggregation()
    assert spec.default == std.disparity.reference_group["race_ethnicity"]  # the standard's reference group
    assert set(spec.choices) == {c.code for c in std.race_categories} | {std.multiracial.code}
    with pytest.raises(CitykitError, match="choose one of"):
        params.validate(entry.parameters, {"reference": "martian"})
    page = run_report("equity-report", {"period": "2025", "reference": "black"}, tmp_path).html.read_text(
        encoding="utf-8"
    )
    assert "Reference group:</strong> Black or African American" in page
    assert "approved share against Black or African American" in page and "approved share against White" not in page
