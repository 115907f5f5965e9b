"""Module 07 (disaggregation under the standard) as a lesson, a graded submission and a report."""

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
)

pytestmark = pytest.mark.slow

MODULE = "07-disaggregation"
RATIO = ("group_of = equity.race_alone(decided)\n"
         'a = decided.loc[group_of.eq(GROUP), "approved"]\n'
         'b = decided.loc[group_of.eq(REFERENCE), "approved"]\n')


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_unsuppressed_small_cells_and_other_mistakes_are_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "race-counts": ("alone_counts = equity.race_alone(applications)",
                        "alone_counts = equity.race_alone_or_in_combination(applications)"),
        "suppressed-table": ("published = equity.suppress(counts).shown",
                             "from citykit import privacy\npublished = privacy.count_table(counts).values"),
        "approval-ratio": ("equity.rate_ratio(a.sum(), len(a), b.sum(), len(b))",
                           "equity.rate_ratio(b.sum(), len(b), a.sum(), len(a))"),
    }, advice={
        "alone-vs-combination": "counts a person in every category they selected",
        "suppress-small-cells": "publishing unsuppressed small cells",
        "rate-ratio-interval": "Put the group's rate on top",
    })


def test_primary_suppression_only_and_undecided_denominators_are_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="primary-only", edits={
        "suppressed-table": ("published = equity.suppress(counts).shown",
                             "from citykit import privacy\n"
                             "published = privacy.primary_suppression(privacy.count_table(counts)).shown"),
        "approval-ratio": (RATIO, "group_of = equity.race_alone(applications)\n"
                                  'a = applications.loc[group_of.eq(GROUP), "outcome"].eq("Approved")\n'
                                  'b = applications.loc[group_of.eq(REFERENCE), "outcome"].eq("Approved")\n'),
    }, advice={"suppress-small-cells": "primary suppression only", "rate-ratio-interval": "withdrawn and pending"})


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q2"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "≤10" in html and "Suppression audit: <strong>passed</strong>" in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_program_records_the_report_says_so(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
    check_left_out(page, name, ["program_applications"])
    assert "Applicants by race and ethnicity" not in page and "Approval rates by race" not in page
