"""Tests that one teaching module needs beyond the shared suite in `test_modules.py` (same xdist
group per module, so each module's graded course is built once)."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from notebook_helpers import (
    autograded_points,
    check_left_out,
    check_production_run,
    counted_for_time_to_close,
    failed_tests,
    import_real_sample,
    min_closed_to_compare,
    nbgrader_meta,
    real_sample_sql,
    report_html_has_no_code,
    source_notebook,
    submit_notebook,
    table_rows,
    with_mistakes,
)

pytestmark = pytest.mark.slow

# -- 01-loading-data ---------------------------------------------------------------------------

M01 = "01-loading-data"


@pytest.mark.xdist_group(M01)
def test_loading_every_period_is_named_where_it_starts(graded_course_of, tmp_path):
    """Forgetting period= makes later answers wrong too; the load test says where it started."""
    course = graded_course_of(M01)
    nb = with_mistakes(M01, {"load": ("period=period, ", "")})
    submit_notebook(course, M01, "every-period", nb, tmp_path)
    points, most = autograded_points(course, M01, "every-period")
    failures = failed_tests(course, M01, "every-period")
    assert points < most
    assert failures["load-requests"].startswith("AssertionError: Your requests table has")
    assert "that is every period. Pass period=period" in failures["load-requests"]


@pytest.mark.xdist_group(M01)
def test_loading_every_column_is_named(graded_course_of, tmp_path):
    course = graded_course_of(M01)
    nb = with_mistakes(M01, {"load": (",\n                        columns=COLUMNS)", ")")})
    submit_notebook(course, M01, "every-column", nb, tmp_path)
    autograded_points(course, M01, "every-column")
    failures = failed_tests(course, M01, "every-column")
    assert "load only the columns in COLUMNS" in failures["load-requests"]


# -- 04-time-to-close --------------------------------------------------------------------------

M04 = "04-time-to-close"


@pytest.mark.xdist_group(M04)
def test_mistakes_are_named_by_visible_tests_or_caught_by_hidden_ones(graded_course_of, tmp_path):
    """Mean instead of median fails the visible test with advice; a slightly wrong share passes the
    visible checks and only the hidden test catches it."""
    course = graded_course_of(M04)
    nb = nbformat.read(source_notebook(M04), as_version=4)
    by_id = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    median_cell, sla_cell = by_id["median-by-type"], by_id["sla-share"]
    assert '["days_to_close"].median()' in median_cell.source
    median_cell.source = median_cell.source.replace('["days_to_close"].median()', '["days_to_close"].mean()')
    sla_cell.source = sla_cell.source.replace("### END SOLUTION", "share_within_sla *= 0.99\n### END SOLUTION")
    submit_notebook(course, M04, "mixed", nb, tmp_path)

    points, max_points = autograded_points(course, M04, "mixed")
    lost = sum(nbgrader_meta(by_id[g])["points"] for g in ("median-days-to-close", "share-within-sla"))
    assert (points, max_points) == (max_points - lost, max_points)
    graded = nbformat.read(course / "grading" / "autograded" / "mixed" / M04 / f"{M04}.ipynb", as_version=4)
    errors = {
        nbgrader_meta(c).get("grade_id"): o
        for c in graded.cells
        for o in c.get("outputs", [])
        if o.output_type == "error"
    }
    assert set(errors) == {"median-days-to-close", "share-within-sla"}
    assert "that is the mean" in errors["median-days-to-close"]["evalue"]
    assert "share_within_sla" in errors["share-within-sla"]["evalue"]  # from the hidden comparison


@pytest.mark.xdist_group(M04)
def test_a_backlog_of_the_period_only_is_named(graded_course_of, tmp_path):
    """metrics.yml: the backlog is every request open at the as-of date, whatever its creation date; counting
    only the period's open requests fails the visible test with advice, and only that test."""
    course = graded_course_of(M04)
    nb = nbformat.read(source_notebook(M04), as_version=4)
    by_id = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    cell = by_id["backlog"]
    solution = 'still_open = every_request[every_request["status"].isin(["Open", "In Progress"]) & ~every_request["is_duplicate"]]'
    assert solution in cell.source
    cell.source = cell.source.replace(solution, solution.replace("every_request", "requests"))
    submit_notebook(course, M04, "period-only", nb, tmp_path)
    points, max_points = autograded_points(course, M04, "period-only")
    assert points == max_points - nbgrader_meta(by_id["backlog-age-buckets"])["points"]
    graded = nbformat.read(course / "grading" / "autograded" / "period-only" / M04 / f"{M04}.ipynb", as_version=4)
    errors = {nbgrader_meta(c).get("grade_id"): o["evalue"] for c in graded.cells for o in c.get("outputs", [])
              if o.output_type == "error"}  # fmt: skip
    assert set(errors) == {"backlog-age-buckets"}
    assert "whatever its creation date" in errors["backlog-age-buckets"]


@pytest.mark.xdist_group(M04)
@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(M04, {"dataset": name, "period": None}, tmp_path / "out")
    requests, con = real_sample_sql(name)
    busiest, closed, median = con.execute(
        f"SELECT request_type, count(*) AS n, median(epoch(closed_at - created_at) / 86400) FROM {requests} "
        f"WHERE {counted_for_time_to_close()} GROUP BY 1 ORDER BY n DESC LIMIT 1"
    ).fetchone()
    assert [str(closed), f"{median:.1f}"] in [row[:2] for row in table_rows(page, busiest)]


# -- 06-rates-per-resident ---------------------------------------------------------------------

M06 = "06-rates-per-resident"


@pytest.mark.xdist_group(M06)
@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_population_the_report_says_so_and_shows_counts_only(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(M06, {"dataset": name, "period": None}, tmp_path / "out")
    check_left_out(page, name, ["neighborhoods"])
    assert "Requests per 1,000 residents, by neighborhood" not in page and "<strong>Citywide:</strong>" not in page
    requests, con = real_sample_sql(name)
    top, n = con.execute(
        f"SELECT neighborhood, count(*) AS n FROM {requests} WHERE NOT is_duplicate "
        "AND neighborhood IS NOT NULL GROUP BY 1 ORDER BY n DESC LIMIT 1"
    ).fetchone()
    assert table_rows(page, top) == [[f"{n:,}"]]


# -- 08-when-averages-mislead ------------------------------------------------------------------

M08 = "08-when-averages-mislead"
ADJUSTED = "adjusted_share = shares.mul(weights, axis=0).sum()[TERCILES]"


@pytest.mark.xdist_group(M08)
def test_the_planted_pattern_is_what_the_lesson_says(riverton):
    """Independently of the notebook: Illegal Dumping's citywide median is within its target while
    the lowest-income third of neighborhoods waits more than twice as long as the highest."""
    import duckdb

    from citykit.standards import load_metrics

    requests, hoods = (riverton.table_path(t).as_posix() for t in ("service_requests", "neighborhoods"))
    valid = (
        "status = 'Closed' AND NOT is_duplicate AND NOT flag_closed_before_created AND NOT flag_placeholder_date"
        " AND request_type = 'Illegal Dumping' AND created_at >= DATE '2025-01-01' AND created_at < DATE '2026-01-01'"
    )
    days = "epoch(closed_at - created_at) / 86400"
    citywide = duckdb.execute(f"SELECT median({days}) FROM read_parquet('{requests}') WHERE {valid}").fetchone()[0]
    by_third = dict(
        duckdb.execute(f"""
        WITH h AS (SELECT neighborhood, ntile(3) OVER (ORDER BY median_household_income) AS third FROM read_parquet('{hoods}'))
        SELECT third, median({days}) FROM read_parquet('{requests}') JOIN h USING (neighborhood) WHERE {valid} GROUP BY 1
    """).fetchall()
    )
    assert citywide <= load_metrics()["sla_days"]["Illegal Dumping"]
    assert by_third[1] > 2 * by_third[3]
    text = "\n".join(c.source for c in nbformat.read(source_notebook(M08), as_version=4).cells)
    assert "more than twice as long" in text


@pytest.mark.xdist_group(M08)
@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_incomes_the_report_compares_neighborhoods_with_the_citywide_median(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    requests, con = real_sample_sql(name)
    counted = counted_for_time_to_close()
    request_type = con.execute(
        f"SELECT request_type FROM {requests} WHERE {counted} GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    page = check_production_run(M08, {"dataset": name, "period": None, "request_type": request_type}, tmp_path / "out")
    check_left_out(page, name, ["neighborhoods"])
    assert "by neighborhood income" not in page
    days = "epoch(closed_at - created_at) / 86400"
    chosen = f"{counted} AND request_type = $1 AND neighborhood IS NOT NULL"
    citywide = con.execute(
        f"SELECT median({days}) FROM {requests} WHERE {counted} AND request_type = $1", [request_type]
    ).fetchone()[0]
    slowest, closed, median = con.execute(
        f"SELECT neighborhood, count(*) AS n, median({days}) AS m FROM {requests} WHERE {chosen} "
        "GROUP BY 1 HAVING count(*) >= $2 ORDER BY m DESC LIMIT 1",
        [request_type, min_closed_to_compare()],
    ).fetchone()
    assert f"The citywide median is {citywide:.1f} days" in page
    assert table_rows(page, slowest) == [[f"{closed:,}", f"{median:.1f}", f"{median - citywide:+.1f}"]]


# -- 11-capstone -------------------------------------------------------------------------------

M11 = "11-capstone"


@pytest.mark.xdist_group(M11)
def test_a_learners_own_notebook_runs_by_path(riverton, tmp_path):
    """`citykit report run my-notebook.ipynb -p ...`: the learner's completed copy, outside the course."""
    import nbformat

    from citykit.reports.run import run_report

    mine = tmp_path / "my-notebook.ipynb"
    shutil.copyfile(source_notebook(M11), mine)
    result = run_report(mine, {"neighborhood": "Ironwood", "period": "2025-Q2"}, out=tmp_path / "out")
    html = result.html.read_text(encoding="utf-8")
    assert result.name == "my-notebook" and "Ironwood" in html
    report_html_has_no_code(html, nbformat.read(source_notebook(M11), as_version=4))


@pytest.mark.xdist_group(M11)
@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample_and_states_its_quality(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    html = check_production_run(M11, {"dataset": name, "period": None}, tmp_path / "out")
    assert "Data quality:" in html
    if sample == "sf":  # 46% of San Francisco's rows have no neighborhood: over the 5% gate
        assert "provisional" in html and "missing_neighborhood" in html


# -- 07-disaggregation -------------------------------------------------------------------------

M07 = "07-disaggregation"


@pytest.mark.xdist_group(M07)
def test_report_compares_shares_with_the_katz_interval_and_shows_denials(riverton, tmp_path):
    """Hispanic or Latino against White on 2025: the ratio, its Katz interval and the denial ratio come
    from statsmodels' Table2x2 on DuckDB counts; Holm over the groups compared decides 'survives'."""
    import duckdb
    import numpy as np
    from statsmodels.stats.contingency_tables import Table2x2

    html = check_production_run(M07, {}, tmp_path)
    path = riverton.table_path("program_applications").as_posix()
    only = lambda code: " AND ".join(  # noqa: E731
        [f"coalesce(race_{code}, false)"]
        + [
            f"NOT coalesce(race_{c}, false)"
            for c in ("aian", "asian", "black", "hispanic", "mena", "nhpi", "white")
            if c != code
        ]
    )
    counts = {}
    for code in ("hispanic", "white"):
        counts[code] = duckdb.execute(
            f"SELECT count(*) FILTER (WHERE outcome = 'Approved'), count(*) FILTER (WHERE outcome = 'Denied') "
            f"FROM read_parquet('{path}') WHERE submitted_at >= DATE '2025-01-01' AND submitted_at < DATE '2026-01-01' "
            f"AND {only(code)}"
        ).fetchone()
    (a, a_denied), (b, b_denied) = counts["hispanic"], counts["white"]
    approve = Table2x2(np.array([[a, a_denied], [b, b_denied]]))
    deny = Table2x2(np.array([[a_denied, a], [b_denied, b]]))
    low, high = approve.riskratio_confint()
    expected = (
        f"approval share ratio {approve.riskratio:.2f} (95% interval {low:.2f}–{high:.2f}), "
        f"denial ratio {deny.riskratio:.2f}"
    )
    assert expected in html
    assert (
        high < 1 and "the difference survives the correction" in html
    )  # Katz finds the gap the Poisson interval missed
    assert "a real but modest gap" in html


@pytest.mark.xdist_group(M07)
@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_program_records_the_report_says_so(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(M07, {"dataset": name, "period": None}, tmp_path / "out")
    check_left_out(page, name, ["program_applications"])
    assert "Applicants by race and ethnicity" not in page and "Approval rates by race" not in page


def _crosstab_truth(path: str, start: str, end: str) -> dict[tuple[str, str], int]:
    """Applicants with a neighborhood by neighborhood and race "alone", by SQL on the published file (the
    labels and the alone rule from the standard's YAML: one category, two or more or all generalised ->
    Multiracial, else Declined / Not reported)."""
    import duckdb
    import yaml

    from citykit import paths

    race = yaml.safe_load((paths.course_root() / "curriculum" / "standards" / "disaggregation.yml").read_text(
        encoding="utf-8"))["race_ethnicity"]  # fmt: skip
    label = {c["code"]: c["label"] for c in race["categories"]}
    n = " + ".join(f"coalesce(race_{c}::INT, 0)" for c in label)
    none = " AND ".join(f"race_{c} IS NULL" for c in label)
    case = (f"CASE WHEN ({none}) OR {n} >= 2 THEN '{race['multiracial']['label']}' "
            + " ".join(f"WHEN race_{c} THEN '{lab}'" for c, lab in label.items())
            + f" WHEN race_declined THEN '{race['declined']['label']}' ELSE '{race['not_reported']['label']}' END")  # fmt: skip
    rows = duckdb.execute(
        f"SELECT neighborhood, {case}, count(*) FROM read_parquet(?) WHERE neighborhood IS NOT NULL "
        "AND submitted_at >= CAST(? AS DATE) AND submitted_at < CAST(? AS DATE) GROUP BY 1, 2",
        [path, start, end],
    ).fetchall()
    return {(h, g): k for h, g, k in rows}


@pytest.mark.xdist_group(M07)
def test_the_neighborhood_tables_of_overlapping_periods_give_no_count_away(riverton_small, tmp_path, monkeypatch):
    """Issue 20: the report's neighborhood × race table published for 2025 and for the year less one month at
    its end, December or January (one release ledger, as a batch's), on the small Riverton. Read back from the
    two CSVs (shown numbers and marks only), a linear programme over each neighborhood and race's counts in the
    eleven months and in the month left out (scipy), every shown cell fixed, every "≤10" from 1 to 10, every
    count at least 0, leaves each of that month's counts from 1 to 10 a range of at least the standard's 5. Each
    page suppressed on its own gave two away (the year minus January-November). The month is the one whose
    neighborhood counts include small ones, computed on the published rows: under standard 1.4.2's outcome rule
    December's rows (many still Pending) lose their neighborhood on the small city."""
    import numpy as np
    import pandas as pd
    from scipy.optimize import linprog

    from citykit.data import registry
    from citykit.reports.run import run_report

    monkeypatch.setenv("CITYKIT_HOME", str(riverton_small))
    path = registry.get("riverton").table_path("program_applications").as_posix()
    choices = {  # the month left out: (its dates, the eleven months' dates, the eleven months as a period)
        "dec": (("2025-12-01", "2026-01-01"), ("2025-01-01", "2025-12-01"), "2025-01-01/2025-11-30"),
        "jan": (("2025-01-01", "2025-02-01"), ("2025-02-01", "2026-01-01"), "2025-02-01/2025-12-31"),
    }
    month = next((m for m, c in choices.items() if any(1 <= k <= 10 for k in _crosstab_truth(path, *c[0]).values())),
                 None)  # fmt: skip
    assert month, "neither December nor January 2025 has a neighborhood count of 1 to 10 to protect"
    parts = {"rest": choices[month][1], "month": choices[month][0]}
    periods = {"2025": ["rest", "month"], choices[month][2]: ["rest"]}
    # one after the other into one ledger (a batch's workers would come from a process started before the
    # CITYKIT_HOME above when another test ran a batch first)
    runs = {
        p: run_report(M07, {"period": p}, out=tmp_path / str(i), ledger=tmp_path / "ledger")
        for i, p in enumerate(periods)
    }
    truth = {part: _crosstab_truth(path, *dates) for part, dates in parts.items()}
    tables = {}
    for value, run in runs.items():
        csv = next((run.out / "tables").glob("*applicants-by-neighborhood-and-race*.csv"))
        tables[value] = pd.read_csv(csv, dtype=str, keep_default_na=False).set_index("neighborhood")
        assert "Disclosure risk:" in run.html.read_text(encoding="utf-8")
    hoods = sorted({h for part in truth.values() for h, _ in part})
    races = sorted({g for part in truth.values() for _, g in part})
    index = {key: i for i, key in enumerate((p, h, g) for p in parts for h in hoods for g in races)}
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for period, table in tables.items():
        for hood in [*hoods, "Total"]:
            for race in [*races, "Total"]:
                cell = [(p, h, g) for p in periods[period] for h in (hoods if hood == "Total" else [hood])
                        for g in (races if race == "Total" else [race])]  # fmt: skip
                vec = np.zeros(len(index))
                vec[[index[k] for k in cell]] = 1
                absent = (hood != "Total" and hood not in table.index) or race not in table.columns
                text = "0" if absent else table.at[hood, race]  # a row or column left out: no one in it
                if text.replace(",", "").isdigit():
                    assert int(text.replace(",", "")) == sum(truth[p].get((h, g), 0) for p, h, g in cell)
                    a_eq.append(vec), b_eq.append(int(text.replace(",", "")))
                elif text == "≤10":
                    a_ub += [-vec, vec]
                    b_ub += [-1, 10]
    exposed = []
    for (hood, race), value in truth["month"].items():
        if 1 <= value <= 10:
            vec = np.zeros(len(index))
            vec[index[("month", hood, race)]] = 1
            low = linprog(vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub or None, b_ub=b_ub or None, bounds=(0, None))
            high = linprog(-vec, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub or None, b_ub=b_ub or None, bounds=(0, None))
            assert low.status == 0 and high.status in (0, 3)  # 3: unbounded
            if high.status == 0 and -high.fun - low.fun < 5 - 1e-6:
                exposed.append(f"{month} {hood} {race}: {value} within [{low.fun:g}, {-high.fun:g}]")
    assert not exposed, exposed


# -- 10-caveats-and-strategy -------------------------------------------------------------------

M10 = "10-caveats-and-strategy"


@pytest.mark.xdist_group(M10)
def test_neighborhoods_are_ranked_by_a_test_of_the_difference_not_by_overlap(riverton, tmp_path):
    """The report calls a neighborhood below or above the rest of the city only when the Holm-corrected
    test of the difference of the two shares says so (statsmodels here, a hand formula in the notebook)."""
    import csv

    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import test_proportions_2indep

    from citykit.lessons import reference

    check_production_run(M10, {}, tmp_path)
    with open(next((tmp_path / "tables").glob("*each-neighborhood-against-the-rest*.csv")), encoding="utf-8") as f:
        shown = {row["Neighborhood"]: row["Verdict"] for row in csv.DictReader(f)}
    counts = (
        reference.connect("riverton", "2025")
        .sql(
            "SELECT neighborhood, count(*) AS n, count(*) FILTER (WHERE on_time) AS k FROM counted "
            "WHERE on_time IS NOT NULL AND neighborhood IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
        .df()
    )
    n, k = counts["n"].sum(), counts["k"].sum()
    p = [
        test_proportions_2indep(r.k, r.n, k - r.k, n - r.n, method="wald", compare="diff").pvalue
        for r in counts.itertuples()
    ]
    adjusted = multipletests(p, method="holm")[1]
    expected = {
        r.neighborhood: (
            "cannot be told apart"
            if q >= 0.05
            else "below the rest of the city"
            if r.k / r.n < (k - r.k) / (n - r.n)
            else "above the rest of the city"
        )
        for r, q in zip(counts.itertuples(), adjusted, strict=True)
    }
    assert shown == expected
    assert set(shown.values()) >= {"below the rest of the city", "above the rest of the city"}
    source = "\n".join(c.source for c in __import__("nbformat").read(source_notebook(M10), as_version=4).cells)
    assert (
        "when intervals overlap, do not rank" not in source
        and "where\nintervals overlap, the neighborhoods cannot be told apart" not in source
    )


@pytest.mark.xdist_group(M10)
@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_households_or_applications_the_report_keeps_what_the_requests_carry(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(M10, {"dataset": name, "period": None}, tmp_path / "out")
    check_left_out(page, name, ["neighborhoods", "program_applications"])
    assert "Rental Assistance applications per 1,000 households:" not in page
    requests, con = real_sample_sql(name)
    placeholders, total = con.execute(
        f"SELECT count(*) FILTER (WHERE flag_placeholder_coords), count(*) FROM {requests}"
    ).fetchone()
    assert table_rows(page, "flag_placeholder_coords")[0][:2] == [f"{placeholders:,}", f"{placeholders / total:.2%}"]
