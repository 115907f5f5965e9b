"""Module 05 (performance measures) as a lesson, a graded submission and a report."""

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

MODULE = "05-performance-measures"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "neighborhood"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "agency-table": ('median_days=("days_to_close", "median")', 'median_days=("days_to_close", "mean")'),
        # open requests counted as missed: the share over every request that is not cancelled
        "sla-by-type": ('has_target = closed[closed["target"].notna()]', (
            'target = requests["due_at"].fillna(requests["created_at"]'
            ' + pd.to_timedelta(requests["request_type"].map(SLA_DAYS), unit="D"))\n'
            'has_target = requests[target.notna() & requests["status"].ne("Cancelled")]'
            '.assign(target=target)')),
        "open-by-agency": ('every_request["status"].isin(OPEN_STATUSES)', 'every_request["status"].eq("Open")'),
    }, advice={
        "agency-summary": "those are means",
        "sla-share-by-type": "counts open requests as missed",
        "open-beside-closed": "counts only status 'Open'",
    })


def test_closed_request_counts_from_every_request_are_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="counted-all", edits={
        "agency-table": ('closed.groupby("agency").agg(', 'requests.assign(days_to_close=0.0).groupby("agency").agg('),
    }, advice={"agency-summary": "counts every request"})


def test_a_backlog_of_the_period_only_is_named(course, tmp_path):
    """metrics.yml: the backlog is every request open at the as-of date, whatever its creation date."""
    check_named_mistakes(course, MODULE, tmp_path, student="period-only", edits={
        "open-by-agency": ('is_open = every_request["status"].isin(OPEN_STATUSES) & ~every_request["is_duplicate"]\n'
                           'open_by_agency = (\n    every_request[is_open]',
                           'is_open = requests["status"].isin(OPEN_STATUSES) & ~requests["is_duplicate"]\n'
                           'open_by_agency = (\n    requests[is_open]'),
    }, advice={"open-beside-closed": "whatever its creation date"})


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q3", "neighborhood": "Millbrook"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "Department scorecard" in html and "YOUR" not in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
