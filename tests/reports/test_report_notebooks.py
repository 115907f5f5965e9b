"""The three production reports (modules 12-14) as lessons, graded submissions and reports.

Each module: the source follows the notebook conventions and its course.yml entry; the solution
autogrades to full marks and the untouched student version to 0; learners' common mistakes fail a
visible test whose message names the mistake. Each report runs once per dataset with its default
parameters (the bundled city, both real samples, the small city in PostgreSQL; shared by the tests),
and on parameters that exercise its fallbacks; its HTML holds no code, no test and no lesson cell.
In headless Chromium its first screen (1280 x 900) shows the key-figure tiles, whose values equal the
figures computed here in DuckDB SQL from the published data; the screenshots are kept in
test-artifacts/reports/ (git-ignored; see tests/report_screens.py).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
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
    report_html_has_no_code,
    source_notebook,
    submit_notebook,
    table_rows,
    with_mistakes,
)

from citykit import paths
from citykit.data import registry, sql_source
from citykit.grading.assignments import submit
from citykit.lessons.course import find_module
from citykit.reports.contract import lesson_only_reason
from citykit.reports.run import RunResult, run_report

pytestmark = pytest.mark.slow

REPORTS = ["12-service-performance", "13-equity-report", "14-quality-scorecard"]
PG = "CITYKIT_TEST_PG_URL"

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
    assert re.search(r"about \d+ minutes(, estimated)? \(\d+ teaching, \d+ exercises\)", training[0].source)
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
#
# Each report runs once per dataset with its default parameters (`runs`, shared by the tests below):
# on the bundled city, on both real samples (skipped when ../shared/realdata is absent) and on the
# small city published to PostgreSQL (skipped without CITYKIT_TEST_PG_URL; CI starts a server).


@dataclass
class Run:
    result: RunResult
    dataset: str
    requests: str  # the published parquet the figures are checked against (an independent route)
    applications: str | None
    as_of: dt.date
    extract_date: dt.date | None

    @property
    def page(self) -> str:
        return self.result.html.read_text(encoding="utf-8")

    @property
    def manifest(self) -> dict:
        return json.loads((self.result.out / "manifest.json").read_text(encoding="utf-8"))


def _run(module: str, dataset: str, out: Path, home: Path | None = None) -> Run:
    with pytest.MonkeyPatch.context() as mp:
        if home is not None:
            mp.setenv("CITYKIT_HOME", str(home))
        ds = registry.get(dataset)
        source = registry.get(ds.name.split("_pg_")[0]) if ds.kind != "parquet" else ds  # a PG copy of riverton
        result = run_report(module, {"dataset": dataset}, out)
        applications = (
            source.table_path("program_applications").as_posix() if source.has("program_applications") else None
        )
        return Run(result, dataset, source.table_path("service_requests").as_posix(), applications, ds.as_of,
                   ds.extract_date)  # fmt: skip


@pytest.fixture(scope="module")
def runs(riverton, tmp_path_factory):
    """runs(module, where="riverton"): the report's run with default parameters, made once."""
    done: dict[tuple[str, str], Run] = {}
    homes: dict[str, Path] = {}

    def get(module: str, where: str = "riverton") -> Run:
        if (module, where) not in done:
            out = tmp_path_factory.mktemp(f"{module[:2]}-{where}")
            if where == "riverton":
                done[module, where] = _run(module, "riverton", out / "report")
            else:
                if where not in homes:
                    home = tmp_path_factory.mktemp(f"home-{where}")
                    with pytest.MonkeyPatch.context() as mp:
                        mp.setenv("CITYKIT_HOME", str(home))
                        import_real_sample(home, where)  # skips when the sample is absent
                    homes[where] = home
                done[module, where] = _run(module, where, out / "report", homes[where])
        return done[module, where]

    return get


@pytest.fixture(scope="module")
def pg_runs(riverton_small, tmp_path_factory):
    """pg_runs(module): the report run on the small city published to PostgreSQL, from a home whose
    path holds an apostrophe (a folder named o'brien)."""
    if not os.environ.get(PG):
        pytest.skip(f'{PG} not set (eval "$(bash .ci/postgres.sh)" starts a server; CI does)')
    home = tmp_path_factory.mktemp("pg") / "o'brien"
    home.mkdir()
    (home / "published").symlink_to(riverton_small / "published")
    name = f"riverton_pg_{uuid.uuid4().hex[:6]}"
    done: dict[str, Run] = {}
    with pytest.MonkeyPatch.context() as mp:  # CITYKIT_HOME points there only while publishing and running
        mp.setenv("CITYKIT_HOME", str(home))
        sql_source.publish("riverton", PG, as_name=name)

    def get(module: str) -> Run:
        if module not in done:
            done[module] = _run(module, name, tmp_path_factory.mktemp(f"pg-{module[:2]}") / "report", home)
        return done[module]

    yield get
    with sql_source._connect(PG) as conn, conn.begin():
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def check_report_html(module: str, page: str, charts: bool = True) -> None:
    body = re.sub(r"<style.*?</style>", "", page, flags=re.S)
    nb = source(module)
    report_html_has_no_code(body, nb)
    assert ("data:image/png;base64" in body) == charts
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


def _no_errors(run: Run) -> None:
    executed = nbformat.read(run.result.notebook, as_version=4)
    errors = [o.get("evalue") for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    assert not any(nbgrader_meta(c).get("grade") for c in executed.cells)


@pytest.mark.parametrize("module", REPORTS)
def test_report_runs_on_the_bundled_city(module, runs):
    run = runs(module)
    _no_errors(run)
    check_report_html(module, run.page)


@pytest.mark.postgres
@pytest.mark.parametrize("module", REPORTS)
def test_report_runs_on_a_postgresql_dataset(module, pg_runs):
    """Reports 12-14 read through citykit.connect / citykit.load, so a dataset in PostgreSQL works; the
    figures are checked against the parquet copy in the first-screen test below."""
    run = pg_runs(module)
    _no_errors(run)
    check_report_html(module, run.page)
    assert run.manifest["dataset"]["kind"] == "postgres"
    assert os.environ[PG].split("@")[0] not in run.page


# ------------------------------------------------------------------ the first screen, checked in DuckDB


SCREEN_HEIGHT = 900  # px of a laptop's first screen at 1280 px wide
TILES_JS = """() => [...document.querySelectorAll('li.ck-tile')].map(li => {
    const box = li.getBoundingClientRect();
    return {key: li.dataset.key, value: li.dataset.value, before: li.dataset.before,
            verdict: li.dataset.verdict, bottom: box.bottom, text: li.innerText};
})"""
IMAGES_JS = "() => [...document.querySelectorAll('img')].map(img => img.getBoundingClientRect().top)"
WHERE = [
    "riverton",
    pytest.param("sf", marks=pytest.mark.realdata),
    pytest.param("baltimore", marks=pytest.mark.realdata),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module")
def shooter():
    from report_screens import first_screen, missing

    reason = missing()
    if reason:
        pytest.skip(reason)
    with first_screen() as shoot:
        yield shoot


def _metrics() -> dict:
    return yaml.safe_load(
        (paths.course_root() / "curriculum" / "standards" / "metrics.yml").read_text(encoding="utf-8")
    )


def _gates() -> dict:
    return yaml.safe_load(
        (paths.course_root() / "curriculum" / "standards" / "quality.yml").read_text(encoding="utf-8")
    )


def _in(values) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def _day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _period(run: Run) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """The period as run and the one it is compared with, [start, end) each, from the manifest."""
    p = run.manifest["period"]
    one = dt.timedelta(days=1)
    before = p.get("compared_with") or {}
    return (_day(p["start"]), _day(p["last_day"]) + one,
            _day(before["start"]) if before else None, _day(before["last_day"]) + one if before else None)  # fmt: skip


def _service_truth(run: Run) -> dict[str, dict]:
    """The service report's key figures, written here in DuckDB SQL from metrics.yml's words."""
    rules = _metrics()
    ttc = rules["time_to_close"]
    now = dt.datetime.combine(run.as_of + dt.timedelta(days=1), dt.time())
    start, end, before_start, before_end = _period(run)
    cutoff = min(before_end + (now - end), now)  # the period before as it stood as long after its end
    counted = " AND ".join([
        f"status NOT IN ({_in(ttc['exclude']['statuses'])})", "NOT is_duplicate",
        *(f"NOT {flag}" for flag in ttc["exclude"]["flags"]),
        f"NOT (status IN ({_in(ttc['closed_statuses'])}) AND closed_at IS NULL)",
    ])  # fmt: skip
    con = duckdb.connect()
    con.execute("CREATE TABLE sla (request_type VARCHAR, days INTEGER)")
    con.executemany("INSERT INTO sla VALUES (?, ?)", [[t, int(d)] for t, d in rules["sla_days"].items()])
    con.execute("CREATE TABLE r AS SELECT * FROM read_parquet(?)", [run.requests])

    def volume(a, b) -> int:
        return con.execute("SELECT count(*) FROM r WHERE NOT is_duplicate AND created_at >= ? AND created_at < ?",
                           [a, b]).fetchone()[0]  # fmt: skip

    def waits(a, b, cut) -> tuple[float | None, float | None]:
        """Kaplan-Meier median and 90th percentile: open requests censored at `cut`; the smallest wait
        at which the share still waiting is at or below 1 - p."""
        return con.execute(f"""
            WITH w AS (
                SELECT greatest(epoch(CASE WHEN closed_at <= $cut THEN closed_at ELSE $cut END - created_at) / 86400, 0) AS t,
                       coalesce(closed_at <= $cut, false) AS closed
                FROM r WHERE {counted} AND created_at >= $a AND created_at < $b),
            at_t AS (SELECT t, count(*) FILTER (WHERE closed) AS d, count(*) AS here FROM w GROUP BY t),
            risk AS (SELECT t, d, sum(here) OVER (ORDER BY t DESC ROWS UNBOUNDED PRECEDING) AS n FROM at_t),
            km AS (SELECT t, product(1 - d / n) OVER (ORDER BY t ROWS UNBOUNDED PRECEDING) AS s FROM risk)
            SELECT min(t) FILTER (WHERE s <= 0.5 + 1e-10), min(t) FILTER (WHERE s <= 0.1 + 1e-10) FROM km
        """, {"a": a, "b": b, "cut": cut}).fetchone()  # fmt: skip

    def on_time(a, b, cut) -> float | None:
        due, met = con.execute(f"""
            WITH d AS (SELECT closed_at, coalesce(due_at, created_at + to_days(sla.days)) AS due
                       FROM r LEFT JOIN sla USING (request_type) WHERE {counted} AND created_at < $b)
            SELECT count(*), count(*) FILTER (WHERE closed_at <= due) FROM d WHERE due >= $a AND due < $b AND due < $cut
        """, {"a": a, "b": b, "cut": cut}).fetchone()  # fmt: skip
        return met / due if due else None

    def old_open(at) -> int:
        return con.execute(f"""
            SELECT count(*) FROM r WHERE NOT is_duplicate AND created_at < $at AND created_at <= $at - INTERVAL 91 DAY
            AND (status IN ({_in(ttc['open_statuses'])}) OR (closed_at > $at AND status <> 'Cancelled'))
        """, {"at": at}).fetchone()[0]  # fmt: skip

    median, p90 = waits(start, end, now)
    median_before, p90_before = waits(before_start, before_end, cutoff)
    return {
        "requests": {"value": volume(start, end), "before": volume(before_start, before_end)},
        "median-days": {"value": median, "before": median_before},
        "p90-days": {"value": p90, "before": p90_before},
        "on-time": {"value": on_time(start, end, now), "before": on_time(before_start, before_end, cutoff)},
        "backlog-over-90-days": {"value": old_open(now), "before": old_open(cutoff)},
    }


def _quality_truth(run: Run) -> dict[str, float]:
    """Some checks of the scorecard, counted here in SQL over every published request."""
    con = duckdb.connect()
    con.execute("CREATE TABLE r AS SELECT * FROM read_parquet(?)", [run.requests])
    row = con.execute("""
        SELECT avg(CASE WHEN neighborhood IS NULL OR trim(neighborhood) = '' THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN flag_type_variant THEN 1.0 ELSE 0.0 END),
               avg(CASE WHEN is_duplicate THEN 1.0 ELSE 0.0 END),
               (count(*) - count(DISTINCT request_id)) / count(*)
        FROM r""").fetchone()  # fmt: skip
    names = ["missing_neighborhood", "type_variant", "marked_duplicate", "duplicate_request_id"]
    return {f"service_requests-{name}": float(value) for name, value in zip(names, row, strict=True)}


def _check_quality_tile(tiles: dict, run: Run) -> None:
    """The verdict tile says what the gates found: every check counted here above its gate is a failure."""
    text = tiles["data-quality"]["value"]
    found = re.fullmatch(r"All (\d+) gates pass|(\d+) of (\d+) gates fail", text)
    assert found, text
    gates = _gates()["gates"]["service_requests"]
    failing = [key for key, share in _quality_truth(run).items()
               if share > gates.get(key.split("-", 1)[1], {}).get("max_share", 1.0)]  # fmt: skip
    if failing:
        assert found[2] and int(found[2]) >= len(failing), (text, failing)
    else:
        assert found[1] or found[2], text


def _tile_number(tile: dict, field: str = "value") -> float | None:
    return None if tile[field] in ("", None) else float(tile[field])


def _check_service(run: Run, tiles: dict, text: str) -> None:
    truth = _service_truth(run)
    for key, expected in truth.items():
        for field in ("value", "before"):
            got, want = _tile_number(tiles[key], field), expected[field]
            assert (got is None) == (want is None) and (got is None or got == pytest.approx(want, rel=1e-9, abs=1e-9)), (
                key, field, got, want)  # fmt: skip
    _check_quality_tile(tiles, run)
    now, before = truth["requests"]["value"], truth["requests"]["before"]
    moved = f"held at {now:,}" if now == before else f"{'rose' if now > before else 'fell'} from {before:,} to {now:,}"
    assert "What changed: Against" in text and f"requests {moved}" in text, text[:2000]


def _language_counts(run: Run) -> pd.DataFrame:
    start, end, _, _ = _period(run)
    return duckdb.execute(
        "SELECT coalesce(language, 'Not shown (privacy)') AS language, count(*) FILTER (WHERE outcome = 'Approved') AS a, "
        "count(*) FILTER (WHERE outcome = 'Denied') AS d FROM read_parquet(?) WHERE submitted_at >= ? AND submitted_at < ? "
        "AND outcome IN ('Approved', 'Denied') GROUP BY 1 ORDER BY 1", [run.applications, start, end],
    ).df().set_index("language")  # fmt: skip


def _katz(a: int, n: int, b: int, m: int) -> tuple[float, float, float, float]:
    """Ratio of two proportions, its 95% Katz interval and p-value, by statsmodels."""
    from statsmodels.stats.contingency_tables import Table2x2

    table = Table2x2(np.array([[a, n - a], [b, m - b]]))
    low, high = table.riskratio_confint()
    return table.riskratio, low, high, table.log_riskratio_pvalue()


def _check_equity(run: Run, tiles: dict, text: str, images: list[float]) -> None:
    start, end, _, _ = _period(run)
    _check_quality_tile(tiles, run)
    if run.applications is None:  # a plain 311 export: service by place
        requests, unplaced, median = duckdb.execute(
            "SELECT count(*), count(*) FILTER (WHERE neighborhood IS NULL), median(epoch(closed_at - created_at) / 86400) "
            "FILTER (WHERE status = 'Closed' AND closed_at IS NOT NULL AND NOT flag_closed_before_created "
            "AND NOT flag_placeholder_date) FROM read_parquet(?) "
            "WHERE NOT is_duplicate AND created_at >= ? AND created_at < ?", [run.requests, start, end]).fetchone()  # fmt: skip
        assert _tile_number(tiles["requests"]) == requests > 0
        assert _tile_number(tiles["no-neighborhood"]) == pytest.approx(unplaced / requests)
        assert _tile_number(tiles["median-days"]) == pytest.approx(median)
        assert "has no program applications" in text
        return
    decided, approved = duckdb.execute(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'Approved') FROM read_parquet(?) "
        "WHERE submitted_at >= ? AND submitted_at < ? AND outcome IN ('Approved', 'Denied')",
        [run.applications, start, end],
    ).fetchone()  # every decided application, whatever its language (some are generalised away)
    assert _tile_number(tiles["decided-applications"]) == decided > 0
    assert _tile_number(tiles["approval-rate"]) == pytest.approx(approved / decided)
    counts = _language_counts(run)
    # every language against the largest, Holm-corrected: each one that differs is a sentence with its figures
    from statsmodels.stats.multitest import multipletests

    reference = (counts["a"] + counts["d"]).idxmax()
    others = [g for g in counts.index if g != reference]
    ref_a, ref_n = int(counts.loc[reference, "a"]), int(counts.loc[reference, ["a", "d"]].sum())
    figures = {g: _katz(int(counts.loc[g, "a"]), int(counts.loc[g, ["a", "d"]].sum()), ref_a, ref_n) for g in others}
    adjusted = multipletests([figures[g][3] for g in others], method="holm")[1]
    significant = {g for g, q in zip(others, adjusted, strict=True) if q < 0.05}

    def who(group: str) -> str:
        special = {"Other": "Applicants in other languages",
                   "Not shown (privacy)": "Applicants whose language is not shown (privacy)"}  # fmt: skip
        return special.get(group, f"{group}-language applicants")

    said = {g for g in counts.index if f"{who(g)} were approved at" in text}
    small = yaml.safe_load((paths.course_root() / "curriculum" / "standards" / "disaggregation.yml").read_text(
        encoding="utf-8"))["privacy"]["small_cells"]["max_suppressed"]  # fmt: skip
    if (counts[["a", "d"]] > small).all().all():  # nothing hidden: the report compares exactly these groups
        assert said == significant, (said, significant)
        if not significant:  # (the small city has too few applicants for a difference to survive)
            assert f"No language group's approval rate differs from the {reference} rate after the correction" in text
    for group in said:  # whatever the report names, its figures are statsmodels' on these counts
        ratio, low, high, _ = figures[group]
        words = f"{who(group)} were approved at {100 * ratio:.0f}% of the {reference} rate ({100 * low:.0f}–{100 * high:.0f}%)"
        assert words in text, (words, text[:3000])
    assert any(top < SCREEN_HEIGHT for top in images), "the dot chart of ratios is not on the first screen"


def _check_scorecard(run: Run, tiles: dict, text: str) -> None:
    _check_quality_tile(tiles, run)
    truth = _quality_truth(run)
    gates = _gates()["gates"]["service_requests"]
    checked = 0
    for key, tile in tiles.items():
        if key in truth:
            assert _tile_number(tile) == pytest.approx(truth[key]), key
            limit = gates[key.split("-", 1)[1]]["max_share"]
            assert ("fails" if truth[key] > limit else "passes") in tile["text"], (key, tile["text"])
            checked += 1
    assert checked, f"no tile this test can count: {sorted(tiles)}"
    assert "Verdict:" in text


@pytest.mark.browser
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("module", REPORTS)
def test_the_first_screen_shows_the_key_figures_as_duckdb_counts_them(module, where, runs, shooter, request):
    """In headless Chromium at 1280 x 900, every key-figure tile sits on the first screen, and its value
    (and its value before) equals the figure computed here in DuckDB SQL from the published data. The
    screenshot is kept: test-artifacts/reports/MODULE-WHERE.png."""
    run = request.getfixturevalue("pg_runs")(module) if where == "postgres" else runs(module, where)
    _no_errors(run)
    png = shooter(run.result.html, f"{module}-{where}")
    assert png.stat().st_size > 20_000
    found = shooter.evaluate(run.result.html, TILES_JS)
    tiles = {t["key"]: t for t in found}
    assert tiles and all(t["bottom"] <= SCREEN_HEIGHT for t in found), [(t["key"], t["bottom"]) for t in found]
    text = shooter.text(run.result.html)
    if module == "12-service-performance":
        _check_service(run, tiles, text)
    elif module == "13-equity-report":
        _check_equity(run, tiles, text, shooter.evaluate(run.result.html, IMAGES_JS))
    else:
        _check_scorecard(run, tiles, text)


def _markdown_outputs(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(str(o.get("data", {}).get("text/markdown", "")) for c in nb.cells for o in c.get("outputs", []))


def test_service_performance_for_one_neighborhood_states_its_figures(riverton, tmp_path):
    table = riverton.table_path("service_requests").as_posix()
    hood = duckdb.execute("SELECT min(neighborhood) FROM read_parquet(?)", [table]).fetchall()[0][0]
    now, before = duckdb.execute(
        "SELECT count(*) FILTER (WHERE created_at >= DATE '2025-07-01' AND created_at < DATE '2025-10-01'), "
        "count(*) FILTER (WHERE created_at >= DATE '2025-04-01' AND created_at < DATE '2025-07-01') "
        "FROM read_parquet(?) WHERE neighborhood = ? AND NOT is_duplicate", [table, hood],
    ).fetchall()[0]  # fmt: skip
    result = run_report("service-performance", {"neighborhood": hood, "period": "2025-Q3"}, tmp_path)
    text = _markdown_outputs(result.notebook)
    # the period before a calendar quarter is the previous calendar quarter (April to June)
    assert f"**Requests:** {now:,} against {before:,} ({(now - before) / before:+.1%})" in text
    assert "Compared with 1 Apr to 30 Jun 2025" in text  # one date format for a period (walk-15 F6)
    assert f"**{hood}** files" in text
    page = result.html.read_text(encoding="utf-8")
    check_report_html("12-service-performance", page)
    # one neighborhood's page: its own total in the tiles, and the city's requests with no neighborhood named
    tile = re.search(r'<li [^>]*data-key="requests"[^>]*>', page)
    assert tile and re.search(r'data-value="(\d+)"', tile[0])[1] == str(now)
    assert f"count the requests placed in {hood}" in html.unescape(page)
    # walk-15 F7: the neighborhood's rate and rank, and a type beyond normal variation, on the first screen
    rates = duckdb.execute(
        "SELECT h.neighborhood, 1000.0 * count(r.neighborhood) / h.population AS rate FROM read_parquet(?) h "
        "LEFT JOIN (SELECT neighborhood FROM read_parquet(?) WHERE NOT is_duplicate AND created_at >= DATE '2025-07-01' "
        "AND created_at < DATE '2025-10-01') r ON r.neighborhood = h.neighborhood GROUP BY h.neighborhood, h.population "
        "ORDER BY rate DESC",
        [riverton.table_path("neighborhoods").as_posix(), table],
    ).fetchall()  # fmt: skip
    rank = [n for n, _ in rates].index(hood) + 1
    first = html.unescape(re.sub(r"<[^>]+>", "", page.split('id="What-residents-asked-for"')[0]))
    assert (
        f"{hood} filed {dict(rates)[hood]:.0f} requests per 1,000 residents in 2025-Q3, rank {rank} of {len(rates)}"
        in first
    )
    ranked = pd.read_csv(next((result.out / "tables").glob("*-requests-per-1-000-residents.csv")))
    assert ranked.loc[ranked["Rank"] == rank, "Neighborhood"].tolist() == [
        f"{hood} (this report)"
    ]  # marked in the table
    lead = first.split("What changed:")[1][:1500]
    rise = re.search(
        r"\*\*Largest rise beyond normal variation:\*\* ([^,]+), \+\d+ requests \(([\d,]+) to ([\d,]+)\)", text
    )
    if rise:
        assert f"{rise[1]} rose from {rise[2]} to {rise[3]} requests" in lead, lead


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
    chart = next(c for c in executed.cells if "maps.choropleth" in c.source)
    assert any("image/png" in o.get("data", {}) for o in chart.outputs)
    assert "Rank" in str([o.get("data", {}).get("text/html", "") for o in chart.outputs])
    assert "stands in for the map" in result.html.read_text(encoding="utf-8")  # About these figures says why


def test_equity_report_for_a_small_neighborhood_suppresses_and_explains(riverton, tmp_path):
    table = riverton.table_path("program_applications").as_posix()
    hood = duckdb.execute(
        "SELECT neighborhood FROM read_parquet(?) WHERE neighborhood IS NOT NULL AND submitted_at >= DATE '2025-07-01' "
        "AND submitted_at < DATE '2025-08-01' GROUP BY 1 ORDER BY count(*), 1 LIMIT 1", [table],
    ).fetchall()[0][0]  # fmt: skip
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
    assert "Legend" in sheets
    _check_marks(riverton, result, hood, ("2025-07-01", "2025-08-01"))


def test_every_table_the_equity_page_shows_is_exported(runs):
    """The workbook holds the approval-rate, rate-ratio and language tables, and the key figures."""
    import openpyxl

    run = runs("13-equity-report")
    names = {p.name.split("-", 1)[1].removesuffix(".csv") for p in run.result.tables if p.name != "legend.csv"}
    for wanted in ("approval-rate-by-race-alone", "approval-rate-by-race-in-combination", "approval-rate-by-gender",
                   "approval-ratios-by-race", "approval-rate-by-language", "approval-ratios-by-language"):  # fmt: skip
        assert wanted in names, sorted(names)
    sheets = openpyxl.load_workbook(next(run.result.out.glob("*.xlsx")), read_only=True).sheetnames
    assert len([s for s in sheets if s != "Legend"]) == len(names)
    scorecard = runs("14-quality-scorecard")
    exported = {p.name.split("-", 1)[1].removesuffix(".csv") for p in scorecard.result.tables if "-" in p.name}
    assert "quality-scorecard" in exported, sorted(exported)


# ------------------------------------------------------------------ real data


# The whole large city's time and memory are measured by benchmarks/bench_reports.py, not asserted here.


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
@pytest.mark.parametrize("module", REPORTS)
def test_reports_run_on_an_imported_real_sample(module, sample, runs):
    run = runs(module, sample)
    _no_errors(run)
    page = run.page
    check_report_html(module, page, charts=module != "13-equity-report")  # 13: tables of places only
    if module != "13-equity-report":
        return
    # no demographics or programs: say so, and show service by place
    check_left_out(page, sample, ["neighborhoods", "program_applications"])
    start, end, _, _ = _period(run)
    days = "epoch(closed_at - created_at) / 86400"
    counted = counted_for_time_to_close()
    con = duckdb.connect()
    con.execute("CREATE TABLE r AS SELECT * FROM read_parquet(?) WHERE created_at >= ? AND created_at < ?",
                [run.requests, start, end])  # fmt: skip
    slowest, n, closed, median = con.execute(
        f"""
        SELECT neighborhood, count(*), count(*) FILTER (WHERE {counted}) AS closed,
               median({days}) FILTER (WHERE {counted}) AS m
        FROM r WHERE NOT is_duplicate AND neighborhood IS NOT NULL
        GROUP BY 1 HAVING closed >= $1 ORDER BY m DESC LIMIT 1
    """,
        [min_closed_to_compare()],
    ).fetchone()
    assert table_rows(page, html.escape(slowest)) == [[f"{n:,}", f"{closed:,}", f"{median:.1f}"]]
    # citywide means every request, with or without a neighborhood
    citywide = con.execute(f"SELECT median({days}) FROM r WHERE {counted}").fetchone()[0]
    unplaced = con.execute("SELECT count(*) FROM r WHERE NOT is_duplicate AND neighborhood IS NULL").fetchone()[0]
    assert f"citywide, every request: {citywide:.1f} days" in page
    assert (
        (f"{unplaced:,} of the period" in page)
        if unplaced
        else "Every request of the period has a neighborhood" in page
    )
    assert "Approval rate" not in page and "has no program applications" in page
    assert run.manifest["left_out"] == [["neighborhoods"], ["program_applications"]]


SHOWN_AS = "Not shown (privacy)"  # how report 13 names a value generalised away by k-anonymity


def _approval_counts(riverton, column_sql: str, period: tuple[str, str], neighborhood: str | None = None):
    """group -> (approved, denied, decided) from DuckDB on the published parquet (an independent route)."""
    path = riverton.table_path("program_applications").as_posix()
    rows = duckdb.execute(
        f"SELECT {column_sql} AS g, count(*) FILTER (WHERE outcome = 'Approved') AS a, "
        "count(*) FILTER (WHERE outcome = 'Denied') AS d FROM read_parquet(?) "
        "WHERE submitted_at >= CAST(? AS DATE) AND submitted_at < CAST(? AS DATE) "
        "AND (CAST(? AS VARCHAR) IS NULL OR neighborhood = ?) AND outcome IN ('Approved', 'Denied') GROUP BY 1",
        [path, period[0], period[1], neighborhood, neighborhood],
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


def test_equity_report_shows_the_corrected_significant_comparisons(riverton, runs):
    """Language and race: the groups the report calls significant after Holm are those statsmodels'
    Table2x2 (Katz) finds on DuckDB counts; the denial ratio and both presentations are shown."""
    run = runs("13-equity-report")  # its default period: the latest complete year, 2025
    assert run.manifest["period"]["label"] == "2025"
    page = run.page
    # applicants whose language was generalised away for privacy are a group of their own, compared too
    languages = _approval_counts(riverton, f"coalesce(language, '{SHOWN_AS}')", ("2025-01-01", "2026-01-01"))
    others = sorted(g for g in languages if g != "English")
    expected = [g for g in _holm_significant(languages, "English", others) if g != SHOWN_AS]
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


def _check_marks(riverton, result, hood: str, period: tuple[str, str]) -> None:
    """No "0 of ≤10" (an outcome beside a hidden size) and "≤10" only on counts from 1 to 10: each
    mark in the published CSV tables is checked against the DuckDB count it hides."""
    import csv

    truth = {
        "language": _approval_counts(riverton, f"coalesce(language, '{SHOWN_AS}')", period, hood),
        "gender": _approval_counts(riverton, f"coalesce(gender, '{SHOWN_AS}')", period, hood),
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
        if not rows or "Number" not in rows[0]:  # the tables of people: group, Number (decided), Approved
            continue
        heading = next(iter(rows[0]))
        key = {"Language": "language", "Gender": "gender", "Race and ethnicity (alone)": "race_alone"}.get(heading)
        for row in rows:
            row = {**row, "n": row["Number"], "events": row.get("Approved")}
            assert not (row["n"] == "≤10" and row.get("events") == "0"), f"{table.name}: 0 of ≤10 for {row[heading]}"
            row[key] = row[heading]
            if key in truth:
                counts = truth[key].get(row[key], (0, 0, 0))  # a group of nobody: shown as 0
            elif key == "race_alone" and row[key] in labels:
                counts = _approval_counts(
                    riverton, f"CASE WHEN {_alone_sql(labels[row[key]])} THEN 'x' END", period, hood
                ).get("x", (0, 0, 0))
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
