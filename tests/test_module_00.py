"""Module 00 (values to questions) as a lesson, a graded submission and a report."""

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

MODULE = "00-values-to-questions"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "neighborhood"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "total": ("len(requests)", "len(requests.columns)"),
        "by-neighborhood": (".value_counts()", ".value_counts(normalize=True)"),
        "open-share": ('requests["status"].isin(OPEN_STATUSES)', 'requests["status"].eq("Open")'),
    }, advice={
        "count-requests": "that is the number of columns",
        "requests-by-neighborhood": "those are shares",
        "share-still-open": "counts only status 'Open'",
    })


def test_the_shape_tuple_is_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="shape", edits={
        "total": ("len(requests)", "requests.shape"),
    }, advice={"count-requests": "that is requests.shape"})


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q3", "neighborhood": "Millbrook"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "Still waiting at the as-of date" in html and "YOUR" not in html
    assert "Exercise" not in html and "Shift+Enter" not in html  # lesson-only cells are gone


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
