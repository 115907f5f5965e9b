"""Module 01 (loading data) as a lesson, a graded submission and a report."""

from __future__ import annotations

import pytest

from notebook_helpers import (
    autograded_points,
    check_conventions,
    check_full_marks_and_blank,
    check_named_mistakes,
    check_production_run,
    check_student_version,
    failed_tests,
    import_real_sample,
    submit_notebook,
    with_mistakes,
)

pytestmark = pytest.mark.slow

MODULE = "01-loading-data"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "neighborhood"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "shape": ("n_rows, n_columns = requests.shape", "n_columns, n_rows = requests.shape"),
        "channels": (".value_counts(normalize=True)", ".value_counts()"),
        "missing": ('requests["closed_at"].isna().sum()', 'requests["closed_at"].count()'),
    }, advice={
        "shape-and-types": "are swapped",
        "channel-shares": "those are counts",
        "missing-close-times": "counts the close times that are present",
    })


def test_loading_every_period_is_named_where_it_starts(course, tmp_path):
    """Forgetting period= makes later answers wrong too; the load test says where it started."""
    nb = with_mistakes(MODULE, {"load": ("period=period, ", "")})
    submit_notebook(course, MODULE, "every-period", nb, tmp_path)
    points, most = autograded_points(course, MODULE, "every-period")
    failures = failed_tests(course, MODULE, "every-period")
    assert points < most
    assert failures["load-requests"].startswith("AssertionError: Your number of rows loaded")
    assert "that is every period. Pass period=period" in failures["load-requests"]


def test_loading_every_column_is_named(course, tmp_path):
    nb = with_mistakes(MODULE, {"load": (",\n                        columns=COLUMNS)", ")")})
    submit_notebook(course, MODULE, "every-column", nb, tmp_path)
    autograded_points(course, MODULE, "every-column")
    failures = failed_tests(course, MODULE, "every-column")
    assert "load only the columns in COLUMNS" in failures["load-requests"]


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q3", "neighborhood": "Millbrook"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "without a close time at the as-of date" in html and "YOUR" not in html
    assert "Exercise" not in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
