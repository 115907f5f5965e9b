"""Module 08 (when averages mislead) as a lesson, a graded submission and a report."""

from __future__ import annotations

import nbformat
import pytest

from notebook_helpers import (
    check_conventions,
    check_full_marks_and_blank,
    check_left_out,
    check_named_mistakes,
    check_production_run,
    check_student_version,
    counted_for_time_to_close,
    import_real_sample,
    min_closed_to_compare,
    real_sample_sql,
    source_notebook,
    table_rows,
)

pytestmark = pytest.mark.slow

MODULE = "08-when-averages-mislead"
ADJUSTED = "adjusted_share = shares.mul(weights, axis=0).sum()[TERCILES]"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "request_type"))


def test_the_planted_pattern_is_what_the_lesson_says(riverton):
    """Independently of the notebook: Illegal Dumping's citywide median is within its target while
    the lowest-income third of neighborhoods waits more than twice as long as the highest."""
    import duckdb

    from citykit.standards import load_metrics

    requests, hoods = (riverton.table_path(t).as_posix() for t in ("service_requests", "neighborhoods"))
    valid = ("status = 'Closed' AND NOT is_duplicate AND NOT flag_closed_before_created AND NOT flag_placeholder_date"
             " AND request_type = 'Illegal Dumping' AND created_at >= DATE '2025-01-01' AND created_at < DATE '2026-01-01'")
    days = "epoch(closed_at - created_at) / 86400"
    citywide = duckdb.execute(f"SELECT median({days}) FROM read_parquet('{requests}') WHERE {valid}").fetchone()[0]
    by_third = dict(duckdb.execute(f"""
        WITH h AS (SELECT neighborhood, ntile(3) OVER (ORDER BY median_household_income) AS third FROM read_parquet('{hoods}'))
        SELECT third, median({days}) FROM read_parquet('{requests}') JOIN h USING (neighborhood) WHERE {valid} GROUP BY 1
    """).fetchall())
    assert citywide <= load_metrics()["sla_days"]["Illegal Dumping"]
    assert by_third[1] > 2 * by_third[3]
    text = "\n".join(c.source for c in nbformat.read(source_notebook(MODULE), as_version=4).cells)
    assert "more than twice as long" in text


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "terciles": ("pd.qcut(", "pd.cut("),
        "tercile-medians": ('["days_to_close"].median()', '["days_to_close"].mean()'),
        "mix-adjusted": (ADJUSTED, 'adjusted_share = rows.groupby("tercile")["met_target"].mean()[TERCILES].astype(float)'),
    }, advice={
        "income-terciles": "bands of equal width",
        "hidden-by-average": "that is the mean",
        "mix-adjusted-share": "crude share within target",
    })


def test_every_type_and_equal_weights_are_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="unweighted", edits={
        "tercile-medians": ('of_type = closed[closed["request_type"].eq(request_type)]', "of_type = closed"),
        "mix-adjusted": (ADJUSTED, "adjusted_share = shares.mean()[TERCILES]"),
    }, advice={"hidden-by-average": "takes every request type", "mix-adjusted-share": "equal weights"})


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q4", "request_type": "Pothole"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "mix-adjusted share within target" in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_incomes_the_report_compares_neighborhoods_with_the_citywide_median(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    requests, con = real_sample_sql(name)
    counted = counted_for_time_to_close()
    request_type = con.execute(f"SELECT request_type FROM {requests} WHERE {counted} "
                               "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    page = check_production_run(MODULE, {"dataset": name, "period": None, "request_type": request_type}, tmp_path / "out")
    check_left_out(page, name, ["neighborhoods"])
    assert "by neighborhood income" not in page
    days = "epoch(closed_at - created_at) / 86400"
    chosen = f"{counted} AND request_type = $1 AND neighborhood IS NOT NULL"
    citywide = con.execute(f"SELECT median({days}) FROM {requests} WHERE {counted} AND request_type = $1",
                           [request_type]).fetchone()[0]
    slowest, closed, median = con.execute(
        f"SELECT neighborhood, count(*) AS n, median({days}) AS m FROM {requests} WHERE {chosen} "
        "GROUP BY 1 HAVING count(*) >= $2 ORDER BY m DESC LIMIT 1", [request_type, min_closed_to_compare()]).fetchone()
    assert f"The citywide median is {citywide:.1f} days" in page
    assert table_rows(page, slowest) == [[f"{closed:,}", f"{median:.1f}", f"{median - citywide:+.1f}"]]
