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
        "approval-ratio": ("equity.proportion_ratio(a.sum(), len(a), b.sum(), len(b))",
                           "equity.proportion_ratio(b.sum(), len(b), a.sum(), len(a))"),
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


@pytest.mark.parametrize(("mistake", "advice"), [
    ("equity.proportion_ratio(a.mean(), len(a), b.mean(), len(b))", "you passed rates or shares for counts"),
    ("equity.rate_ratio(a.sum(), len(a), b.sum(), len(b))", "Poisson rate-ratio interval"),
])
def test_rates_passed_for_counts_and_the_poisson_interval_are_named(course, tmp_path, mistake, advice):
    check_named_mistakes(course, MODULE, tmp_path, student="ratio-" + mistake.split("(")[0].split(".")[1], edits={
        "approval-ratio": ("equity.proportion_ratio(a.sum(), len(a), b.sum(), len(b))", mistake),
    }, advice={"rate-ratio-interval": advice})


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q2"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "Suppression audit: <strong>passed</strong>" in html
    assert "alone or in combination (per 100" in html and "Approval rate by gender" in html
    assert "Neighborhood figures leave out people whose neighborhood was generalised away" in html


def test_report_compares_shares_with_the_katz_interval_and_shows_denials(riverton, tmp_path):
    """Hispanic or Latino against White on 2025: the ratio, its Katz interval and the denial ratio come
    from statsmodels' Table2x2 on DuckDB counts; Holm over the groups compared decides 'survives'."""
    import duckdb
    import numpy as np
    from statsmodels.stats.contingency_tables import Table2x2

    html = check_production_run(MODULE, {}, tmp_path)
    path = riverton.table_path("program_applications").as_posix()
    only = lambda code: " AND ".join(  # noqa: E731
        [f"coalesce(race_{code}, false)"] + [f"NOT coalesce(race_{c}, false)" for c in
                                               ("aian", "asian", "black", "hispanic", "mena", "nhpi", "white") if c != code])
    counts = {}
    for code in ("hispanic", "white"):
        counts[code] = duckdb.execute(
            f"SELECT count(*) FILTER (WHERE outcome = 'Approved'), count(*) FILTER (WHERE outcome = 'Denied') "
            f"FROM read_parquet('{path}') WHERE submitted_at >= DATE '2025-01-01' AND submitted_at < DATE '2026-01-01' "
            f"AND {only(code)}").fetchone()
    (a, a_denied), (b, b_denied) = counts["hispanic"], counts["white"]
    approve = Table2x2(np.array([[a, a_denied], [b, b_denied]]))
    deny = Table2x2(np.array([[a_denied, a], [b_denied, b]]))
    low, high = approve.riskratio_confint()
    expected = (f"approval share ratio {approve.riskratio:.2f} (95% interval {low:.2f}–{high:.2f}), "
                f"denial ratio {deny.riskratio:.2f}")
    assert expected in html
    assert high < 1 and "the difference survives the correction" in html  # Katz finds the gap the Poisson interval missed
    assert "a real but modest gap" in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_program_records_the_report_says_so(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
    check_left_out(page, name, ["program_applications"])
    assert "Applicants by race and ethnicity" not in page and "Approval rates by race" not in page
