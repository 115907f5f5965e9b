"""Module 11 (capstone: from notebook to production report) as a lesson, a graded submission and a
report, including a learner's own completed notebook run by path."""

from __future__ import annotations

import shutil

import pytest

from notebook_helpers import (
    check_conventions,
    check_full_marks_and_blank,
    check_named_mistakes,
    check_production_run,
    check_student_version,
    import_real_sample,
    report_html_has_no_code,
    source_notebook,
)

pytestmark = pytest.mark.slow

MODULE = "11-capstone"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "neighborhood"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "gate-check": ("gates_pass = bool(card.passed)", "gates_pass = all(c.failing == 0 for c in card.checks)"),
        "summary-fn": ('"median_days": days.median()', '"median_days": days.mean()'),
        "apply-summary": (").T[SUMMARY]", ")"),
    }, advice={
        "quality-gates": "asks every check to find nothing",
        "summary-function": "that is the mean",
        "by-neighborhood": "transpose it",
    })


def test_open_only_and_a_citywide_figure_per_row_are_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="citywide", edits={
        "summary-fn": ('counted["status"].isin(OPEN_STATUSES)', 'counted["status"].eq("Open")'),
        "apply-summary": ("performance_summary(group)", "performance_summary(requests)"),
    }, advice={"summary-function": "counts only status 'Open'", "by-neighborhood": "citywide median in every row"})


@pytest.mark.parametrize("parameters", [{}, {"neighborhood": "Millbrook", "period": "2025-07"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "Data quality: all gates pass" in html


def test_a_learners_own_notebook_runs_by_path(riverton, tmp_path):
    """`citykit report run my-notebook.ipynb -p ...`: the learner's completed copy, outside the course."""
    import nbformat

    from citykit.reports.run import run_report

    mine = tmp_path / "my-notebook.ipynb"
    shutil.copyfile(source_notebook(MODULE), mine)
    result = run_report(mine, {"neighborhood": "Ironwood", "period": "2025-Q2"}, out=tmp_path / "out")
    html = result.html.read_text(encoding="utf-8")
    assert result.name == "my-notebook" and "Ironwood" in html
    report_html_has_no_code(html, nbformat.read(source_notebook(MODULE), as_version=4))


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample_and_states_its_quality(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    html = check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
    assert "Data quality:" in html
    if sample == "sf":  # 46% of San Francisco's rows have no neighborhood: over the 5% gate
        assert "provisional" in html and "missing_neighborhood" in html
