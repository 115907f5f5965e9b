"""Module 02 (selecting and filtering) as a lesson, a graded submission and a report."""

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

MODULE = "02-selecting-and-filtering"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "neighborhood"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "top-five": (".head(5)", ".tail(5)"),
        "online-here": (') & requests["channel"]', ') | requests["channel"]'),
        "weekend": ('(requests["created_at"].dt.day_of_week >= 5)', 'requests["created_at"].dt.day_of_week.isin([6, 7])'),
        "agency-channel": ('here = requests[requests["neighborhood"] == place]', "here = requests"),
    }, advice={
        "top-request-types": "the five least common",
        "combine-conditions": "Combine the two masks with & (and), not | (or)",
        "weekend-requests": "Monday is 0 in pandas",
        "agency-by-channel": "that counts the whole city",
    })


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q3", "neighborhood": "Millbrook"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "Requests by agency and channel" in html and "YOUR" not in html
    assert "Exercise" not in html
    if parameters.get("neighborhood"):
        assert "Millbrook" in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
