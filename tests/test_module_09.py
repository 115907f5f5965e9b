"""Module 09 (charts people can read) as a lesson, a graded submission and a report, and the
chart checks it adds to citykit.check."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from citykit.lessons import check  # noqa: E402
from notebook_helpers import (  # noqa: E402
    check_conventions,
    check_full_marks_and_blank,
    check_named_mistakes,
    check_production_run,
    check_student_version,
    import_real_sample,
)

MODULE = "09-charts-people-can-read"


def test_chart_is_labelled_names_what_is_missing():
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    with pytest.raises(AssertionError, match="has no title and no x-axis label and no y-axis label"):
        check.chart_is_labelled(ax)
    ax.set_title("Requests by type")
    ax.set_xlabel("Request type")
    with pytest.raises(AssertionError, match=r"^Your chart has no y-axis label;"):
        check.chart_is_labelled(ax)
    ax.set_ylabel("  ")  # blank is no label
    with pytest.raises(AssertionError, match="no y-axis label"):
        check.chart_is_labelled(ax)
    ax.set_ylabel("Requests")
    check.chart_is_labelled(ax)
    with pytest.raises(AssertionError, match="should be a matplotlib Axes"):
        check.chart_is_labelled(fig.savefig)
    plt.close(fig)


def test_same_order_names_a_mistaken_order():
    expected = pd.Series([5, 3, 1], index=["c", "a", "b"])
    check.same_order(expected.copy(), expected, name="counts")
    mistakes = {"alphabetical": (expected.sort_index(), "that is sorted by name.")}
    with pytest.raises(AssertionError, match="^Your counts is in the wrong order; that is sorted by name."):
        check.same_order(expected.sort_index(), expected, name="counts", mistakes=mistakes)
    with pytest.raises(AssertionError, match="expected 'c', 'a', 'b' first"):
        check.same_order(expected.iloc[[1, 0, 2]], expected, name="counts", mistakes=mistakes)
    with pytest.raises(AssertionError, match="should be a Series"):
        check.same_order(list(expected), expected, name="counts")


@pytest.mark.slow
def test_source_notebook_follows_the_conventions():
    check_conventions(MODULE, ("dataset", "period", "neighborhood"))


@pytest.mark.slow
def test_student_version_has_no_solutions_or_hidden_tests(course):
    check_student_version(course, MODULE)


@pytest.mark.slow
def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    check_full_marks_and_blank(course, MODULE)


@pytest.mark.slow
def test_common_mistakes_fail_visible_tests_that_name_them(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, edits={
        "by-agency": ('.groupby("agency").size().sort_values(ascending=False)', '.groupby("agency").size()'),
        "agency-chart": ('ax.set_title(f"Requests by agency, {scope}")\n', ""),
        "channel-palette": ("dict(zip(channels, OKABE_ITO))",
                            'dict(zip(channels, ["red", "green", "blue", "orange", "purple", "brown", "pink"]))'),
    }, advice={
        "sorted-bars": "that is sorted by the agencies' names",
        # the alphabetical order also puts the wrong agency first in the alt text
        "alt-text": "name the agency with the most requests",
        "labelled-chart": "has no title",
        "accessible-colors": "red and green look alike",
    })


@pytest.mark.slow
def test_alt_text_that_only_names_the_chart_type_is_named(course, tmp_path):
    check_named_mistakes(course, MODULE, tmp_path, student="generic-alt", edits={
        "alt": ('alt_text = (f"Bar chart', 'alt_text = "Bar chart of requests by agency."\n_unused = (f"Bar chart'),
    }, advice={"alt-text": "says what the chart is but not what it shows"})


@pytest.mark.slow
@pytest.mark.parametrize("parameters", [{}, {"period": "2024-Q3", "neighborhood": "Millbrook"}])
def test_runs_as_a_report_without_code(riverton, tmp_path, parameters):
    html = check_production_run(MODULE, parameters, tmp_path)
    assert "How residents reach the city" in html and "YOUR" not in html and "Exercise" not in html
    # the figures carry alt text: the learner's for the agency chart, the module's for the channels
    assert 'alt="Bar chart of the number of 311 requests by agency' in html
    assert 'alt="Bar chart of the share of requests by channel' in html


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    check_production_run(MODULE, {"dataset": name, "period": None}, tmp_path / "out")
