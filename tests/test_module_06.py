"""Module 06 (rates per resident) as a lesson, a graded submission and a report."""

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

MODULE = "06-rates-per-resident"


def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "request_type"))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "count-requests": ('requests.loc[~requests["is_duplicate"]]', "requests"),
        "rates-table": (' / rates["population"] * 1000', ' / rates["population"]'),
        "citywide": ('(~requests["is_duplicate"]).sum()', '(requests["neighborhood"].notna() & ~requests["is_duplicate"]).sum()'),
    }, advice={
        "count-by-neighborhood": "counts duplicate requests too",
        "rate-per-1000": "requests per resident",
        "citywide-rate": "leaves out requests with no neighborhood",
    })


def test_the_wrong_denominator_and_an_average_of_rates_are_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="denominators", edits={
        "rates-table": ('rates["per_1000"] = rates["requests"] / rates["population"] * 1000',
                        'rates["per_1000"] = rates["requests"] / neighborhoods.set_index("neighborhood")["households"] * 1000'),
        "citywide": ('(~requests["is_duplicate"]).sum() / neighborhoods["population"].sum() * 1000',
                     '(requests_by_neighborhood / neighborhoods.set_index("neighborhood")["population"]).mean() * 1000'),
    }, advice={"rate-per-1000": "divides by households", "citywide-rate": "average of the neighborhood rates"})


@pytest.mark.parametrize("parameters", [{}, {"period": "2024-07", "request_type": "Illegal Dumping"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "Requests per 1,000 residents" in html


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_without_population_the_report_says_so_and_shows_counts_only(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
    check_left_out(page, name, ["neighborhoods"])
    assert "Requests per 1,000 residents, by neighborhood" not in page and "<strong>Citywide:</strong>" not in page
    requests, con = real_sample_sql(name)
    top, n = con.execute(f"SELECT neighborhood, count(*) AS n FROM {requests} WHERE NOT is_duplicate "
                         "AND neighborhood IS NOT NULL GROUP BY 1 ORDER BY n DESC LIMIT 1").fetchone()
    assert table_rows(page, top) == [[f"{n:,}"]]
