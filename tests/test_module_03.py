"""Module 03 (data quality) as a lesson, a graded submission and a report."""

from __future__ import annotations

import pytest

from notebook_helpers import (
    check_conventions,
    check_full_marks_and_blank,
    check_named_mistakes,
    check_production_run,
    check_student_version,
    import_real_sample,
)

pytestmark = pytest.mark.slow

MODULE = "03-data-quality"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "missing-share": ("requests.isna().mean()", "requests.isna().sum()"),
        "closed-before": (' & real_close).sum()', ').sum()'),
        "zero-share": ('located = requests[requests["latitude"].notna() & requests["longitude"].notna()]',
                       "located = requests"),
    }, advice={
        "completeness": "those are counts of missing values",
        "consistency": "that includes placeholder close dates",
        "validity": "that divides by every request",
    })


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q3"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "The quality scorecard" in html and "quality gates pass" in html  # staleness left out for a past period
    assert "YOUR" not in html and "Exercise" not in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    html = check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
    assert "quality gates" in html
