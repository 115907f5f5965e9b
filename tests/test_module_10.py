"""Module 10 (caveats and strategy) as a lesson, a graded submission and a report."""

from __future__ import annotations

import pytest

from notebook_helpers import (
    check_conventions,
    check_full_marks_and_blank,
    check_left_out,
    check_named_mistakes,
    check_production_run,
    check_student_version,
    import_real_sample,
    real_sample_sql,
    table_rows,
)

pytestmark = pytest.mark.slow

MODULE = "10-caveats-and-strategy"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "sla-intervals": ('method="wilson")', 'method="normal")'),
        "applications-rate": ('["households"] * 1000', '["population"] * 1000'),
        "caveats-table": ('caveats["rows"] / len(requests)', 'caveats["rows"] / len(requests) * 100'),
    }, advice={
        "wilson-intervals": "normal-approximation (Wald) interval",
        "right-denominator": "divide by households",
        "caveat-table": "looks like a percentage",
    })


def test_a_90_percent_interval_and_the_wrong_share_base_are_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="bases", edits={
        "sla-intervals": ("alpha=0.05", "alpha=0.10"),
        "caveats-table": ('caveats["rows"] / len(requests)', 'caveats["rows"] / caveats["rows"].sum()'),
    }, advice={"wilson-intervals": "90% interval", "caveat-table": "divides by the number of flags"})


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-03"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "flag_placeholder_coords" in html and "95% Wilson" in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_households_or_applications_the_report_keeps_what_the_requests_carry(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
    check_left_out(page, name, ["neighborhoods", "program_applications"])
    assert "Rental Assistance applications per 1,000 households:" not in page
    requests, con = real_sample_sql(name)
    placeholders, total = con.execute(f"SELECT count(*) FILTER (WHERE flag_placeholder_coords), count(*) FROM {requests}").fetchone()
    assert table_rows(page, "flag_placeholder_coords")[0][:2] == [f"{placeholders:,}", f"{placeholders / total:.2%}"]
