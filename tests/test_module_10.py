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


def test_neighborhoods_are_ranked_by_a_test_of_the_difference_not_by_overlap(riverton, tmp_path):
    """The report calls a neighborhood below or above the rest of the city only when the Holm-corrected
    test of the difference of the two shares says so (statsmodels here, a hand formula in the notebook)."""
    import csv

    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import test_proportions_2indep

    from citykit.lessons import reference

    check_production_run(MODULE, {}, tmp_path)
    with open(next((tmp_path / "tables").glob("*each-neighborhood-against-the-rest*.csv")), encoding="utf-8") as f:
        shown = {row["Neighborhood"]: row["Verdict"] for row in csv.DictReader(f)}
    counts = reference.connect("riverton", "2025").sql(
        "SELECT neighborhood, count(*) AS n, count(*) FILTER (WHERE on_time) AS k FROM counted "
        "WHERE on_time IS NOT NULL AND neighborhood IS NOT NULL GROUP BY 1 ORDER BY 1").df()
    n, k = counts["n"].sum(), counts["k"].sum()
    p = [test_proportions_2indep(r.k, r.n, k - r.k, n - r.n, method="wald", compare="diff").pvalue for r in counts.itertuples()]
    adjusted = multipletests(p, method="holm")[1]
    expected = {
        r.neighborhood: ("cannot be told apart" if q >= 0.05 else
                         "below the rest of the city" if r.k / r.n < (k - r.k) / (n - r.n) else "above the rest of the city")
        for r, q in zip(counts.itertuples(), adjusted)
    }
    assert shown == expected
    assert set(shown.values()) >= {"below the rest of the city", "above the rest of the city"}
    source = "\n".join(c.source for c in __import__("nbformat").read(
        __import__("notebook_helpers").source_notebook(MODULE), as_version=4).cells)
    assert "when intervals overlap, do not rank" not in source and "where\nintervals overlap, the neighborhoods cannot be told apart" not in source


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
