"""citykit.check: friendly failures naming the likely mistake."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from citykit.lessons import check

DAYS = pd.Series([1.0, 2.0, 3.0, 400.0])  # one request open for over a year


def test_close_to_passes_within_tolerance():
    check.close_to(2.5000000001, 2.5, name="median days to close")


def test_close_to_names_the_mean_when_the_answer_is_the_mean():
    mean, median = sum(DAYS) / len(DAYS), sorted(DAYS)[1:3]
    expected = sum(median) / 2
    with pytest.raises(AssertionError) as failure:
        check.close_to(mean, expected, name="median days to close", unit="days", mistakes={"mean": mean})
    message = str(failure.value)
    assert "101.5 days" in message and "that is the mean" in message and "median" in message


def test_close_to_without_a_known_mistake_states_the_expected_value():
    with pytest.raises(AssertionError, match=r"Your share is 0\.3; expected about 0\.75"):
        check.close_to(0.3, 0.75, name="share", mistakes={"percent": 75.0})


def test_not_mistaken_uses_a_tests_own_advice_and_skips_none():
    check.not_mistaken(5.0, name="x", mistakes={"mean": None})  # None: the data cannot tell it apart
    with pytest.raises(AssertionError, match="use your closed table"):
        check.not_mistaken(5.0, name="x", mistakes={"other": (5.0, "use your closed table.")})
    check.not_mistaken(5.0, name="x", mistakes={"mean": 6.0})


def test_series_are_compared_label_by_label_whatever_the_order():
    answer = pd.Series({"Pothole": 2.0, "Graffiti": 4.0})
    mistaken_mean = pd.Series({"Graffiti": 4.0, "Pothole": 2.0})
    with pytest.raises(AssertionError, match="that is the mean"):
        check.not_mistaken(answer, name="median_days_by_type", mistakes={"mean": mistaken_mean})
    other_labels = pd.Series({"Pothole": 2.0, "Noise": 4.0})
    check.not_mistaken(answer, name="median_days_by_type", mistakes={"mean": other_labels})
    check.close_to(answer, mistaken_mean, name="median_days_by_type")


def test_close_to_reports_missing_and_extra_labels():
    expected = pd.Series({"Pothole": 2.0, "Graffiti": 4.0})
    with pytest.raises(AssertionError, match=r"lacks 'Graffiti'; it has unexpected 'Noise'"):
        check.close_to(pd.Series({"Pothole": 2.0, "Noise": 4.0}), expected, name="medians")
    with pytest.raises(AssertionError, match="right labels but some values differ"):
        check.close_to(pd.Series({"Pothole": 2.0, "Graffiti": 5.0}), expected, name="medians")


def test_in_range_flags_a_percentage():
    check.in_range(0.87, 0, 1, name="share")
    with pytest.raises(
        AssertionError, match=r"Your share is 87, outside the possible range 0 to 1; that looks like a percentage"
    ):
        check.in_range(87.0, 0, 1, name="share", advice=check.ADVICE["percent"])
    with pytest.raises(AssertionError, match=r"Your days has a value -2 days, outside the possible range 0 to 10\."):
        check.in_range(pd.Series([1.0, -2.0]), 0, 10, name="days", unit="days")


def test_frame_and_kind_checks_name_what_is_wrong():
    frame = pd.DataFrame({"request_id": [1], "closed_at": [None]})
    check.frame_has_columns(frame, ["request_id"], name="closed")
    with pytest.raises(AssertionError, match=r"missing the column\(s\) 'days_to_close'"):
        check.frame_has_columns(frame, ["request_id", "days_to_close"], name="closed")
    with pytest.raises(AssertionError, match="should be a Series, but it is a DataFrame"):
        check.is_kind(frame, pd.Series, name="answer")
    with pytest.raises(AssertionError, match="should be a DataFrame, but it is a list"):
        check.frame_has_columns([1, 2], ["a"], name="closed")


def test_same_index_accepts_equal_labels_and_rejects_repeats():
    check.same_index(pd.Series([1, 2], index=["a", "b"]), pd.Series([0, 0], index=["b", "a"]), name="s")
    with pytest.raises(AssertionError, match="repeated"):
        check.same_index(pd.Series([1, 2, 3], index=["a", "b", "a"]), pd.Series([0, 0], index=["a", "b"]), name="s")


# -- the chart checks module 09 adds --------------------------------------------------------


def test_chart_is_labelled_names_what_is_missing():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    with pytest.raises(AssertionError, match=r"^Your counts is in the wrong order; that is sorted by name\."):
        check.same_order(expected.sort_index(), expected, name="counts", mistakes=mistakes)
    with pytest.raises(AssertionError, match="expected 'c', 'a', 'b' first"):
        check.same_order(expected.iloc[[1, 0, 2]], expected, name="counts", mistakes=mistakes)
    with pytest.raises(AssertionError, match="should be a Series"):
        check.same_order(list(expected), expected, name="counts")
