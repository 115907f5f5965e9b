"""citykit.check: friendly failures naming the likely mistake."""

from __future__ import annotations

import re
from dataclasses import dataclass

import matplotlib
import numpy as np
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
    with pytest.raises(AssertionError, match=r"should be a Series .*, but it is a DataFrame of 1 row and 2 columns"):
        check.is_kind(frame, pd.Series, name="answer")
    with pytest.raises(AssertionError, match=r"should be a DataFrame .*, but it is a list"):
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


# -- checks that fail kindly: kind and shape first, numbers for people, no pandas internals ----------

SCIENTIFIC = re.compile(r"\d(?:\.\d+)?e[+-]?\d", re.I)
# pandas' own words; `.dtypes`, which the lessons teach, is allowed, `dtype` alone is not
INTERNALS = re.compile(
    r"Categorical|setitem|(?<![.\w])dtype\b|DType|Index\(|Traceback|numpy\.|pandas\.core|object of type"
)
ROWS = pd.DataFrame(
    {
        "neighborhood": pd.Categorical(["Millbrook", "Eastgate", "Millbrook", "Harbor"]),
        "closed_at": pd.to_datetime(["2025-01-02", None, "2025-01-05", None]),
    }
)
COUNTS = ROWS["neighborhood"].value_counts()


@dataclass(frozen=True)
class Ratio:  # what citykit.equity's ratio functions return
    estimate: float
    low: float
    high: float


def _message(check_call) -> str:
    with pytest.raises(AssertionError) as failure:
        check_call()
    return str(failure.value)


WRONG = [  # (what a learner might hold, a check that must fail kindly)
    (lambda: check.close_to(ROWS["neighborhood"], COUNTS, name="by_place"), "value_counts"),
    (lambda: check.same_index(ROWS["neighborhood"], COUNTS, name="by_place"), "value_counts"),
    (lambda: check.close_to(ROWS["closed_at"].isna(), 2, name="n_without_close"), ".sum()"),
    (lambda: check.in_range(ROWS["closed_at"].isna(), 0, 4, name="n_without_close"), ".sum()"),
    (lambda: check.close_to(Ratio(1.2, 0.9, 1.6), 1.2, name="rr"), ".estimate"),
    (lambda: check.close_to(pd.Index(["a"]), ["a"], name="time_columns"), ".tolist()"),
    (lambda: check.is_kind(pd.Index(["a"]), list, name="time_columns"), ".tolist()"),
    (lambda: check.close_to((227305, 7), 227305, name="total"), ".shape[0]"),
    (lambda: check.close_to("227305", 227305, name="total"), "without quotes"),
    (lambda: check.close_to(5e5, 227305, name="total"), "500,000"),
    (lambda: check.close_to(2.5e-7, 0.25, name="share"), "0.00000025"),
    (lambda: check.close_to(1.5e20, 0.25, name="share"), "150,000,000,000,000,000,000"),
    (lambda: check.in_range(179671, 0, 1, name="share", advice=check.ADVICE["percent"]), "179,671"),
    (lambda: check.in_range(pd.Series(["a", "b"]), 0, 1, name="share"), "a Series of 2 values"),
    (lambda: check.close_to(COUNTS.to_frame(), COUNTS, name="by_place"), "squeeze"),
    (lambda: check.close_to(3, COUNTS, name="by_place"), "one value per label"),
    (lambda: check.close_to(COUNTS, COUNTS.to_frame(), name="table"), ".to_frame()"),
    (lambda: check.close_to(None, 3, name="total"), "assign"),
    (lambda: check.close_to(pd.Series([1, 2], index=["a", "a"]), pd.Series([1, 2], index=["a", "b"]), name="x"), None),
    (lambda: check.is_list_of([], name="time_columns", like=["created_at"]), "you have an empty list"),
    (lambda: check.is_list_of(pd.Index(["a"]), name="time_columns", like=["created_at"]), ".tolist()"),
    (lambda: check.is_number(Ratio(1.2, 0.9, 1.6), name="rr"), ".estimate"),
    (lambda: check.is_number(2.5, name="n", whole=True), "whole number"),
    (lambda: check.is_list_of(list(ROWS.dtypes), name="time_columns"), "a column type"),
    (lambda: check.shares(COUNTS / 3.9, COUNTS / 4, name="shares"), "adds up to 1.026"),
    (lambda: check.shares(COUNTS * 25, COUNTS / 4, name="shares"), "looks like a percentage"),
    (lambda: check.shares(COUNTS.astype(float), COUNTS / 4, name="shares"), "perhaps counts"),
    (lambda: check.shares((COUNTS / 3).round(1), COUNTS / 3, name="shares"), "rounded"),
]


@pytest.mark.parametrize(("wrong", "says"), WRONG)
def test_wrong_answers_get_plain_advice_without_pandas_internals_or_scientific_notation(wrong, says):
    message = _message(wrong)
    assert message.startswith("Your "), message
    assert not SCIENTIFIC.search(message), message
    assert not INTERNALS.search(message), message
    if says:
        assert says in message, message


def test_the_not_mistaken_of_an_uncomparable_value_passes_or_fails_kindly():
    check.not_mistaken(pd.Series(["x"]), name="x", mistakes={"m": COUNTS})  # not that mistake: passes
    check.not_mistaken(ROWS["neighborhood"], name="by_place", mistakes={"shares": COUNTS / 4})
    check.not_mistaken(object(), name="x", mistakes={"m": COUNTS})


def test_percent_advice_only_for_what_looks_like_a_percentage():
    assert "looks like a percentage" in _message(
        lambda: check.in_range(79.0, 0, 1, name="s", advice=check.ADVICE["percent"])
    )
    count = _message(lambda: check.in_range(179671, 0, 1, name="s", advice=check.ADVICE["percent"]))
    assert "percentage" not in count and "perhaps a count" in count and "179,671" in count
    negative = _message(lambda: check.in_range(-0.2, 0, 1, name="s", advice=check.ADVICE["percent"]))
    assert "percentage" not in negative and "negative" in negative


def test_numbers_are_written_for_people():
    assert check.number(227305) == "227,305" and check.number(5e5) == "500,000"
    assert check.number(0.79) == "0.79" and check.share(0.79) == "79.0%"
    assert check.number(1234.5678) == "1,234.6" and check.number(float("nan")) == "missing (NaN)"
    assert check.number(0.000123) == "0.000123"


def test_close_to_can_keep_the_expected_value_to_itself():
    message = _message(lambda: check.close_to(0.72, 0.7913, name="share", reveal=False, hint="Check the denominator."))
    assert "0.7913" not in message and "79" not in message and "Check the denominator." in message
    assert "0.7913" in _message(lambda: check.close_to(0.72, 0.7913, name="share"))


def test_kind_checks_pass_the_right_kinds():
    check.is_number(3, name="n", whole=True)
    check.is_number(np.float64(0.5), name="s")
    check.is_list_of(["created_at"], name="time_columns", among=["created_at", "closed_at"])
    with pytest.raises(AssertionError, match="'status', which is not one of"):
        check.is_list_of(["status"], name="time_columns", among=["created_at"])
    check.close_to(np.int64(4), 4, name="n")
    check.close_to(COUNTS.sort_index(), COUNTS, name="by_place")  # label by label, any order


def test_a_rounded_answer_is_told_to_round_only_for_display():
    from citykit.lessons import check

    expected = 227_305 / 287_561
    with pytest.raises(AssertionError, match="rounded") as failed:
        check.close_to(round(expected, 2), expected, name="share_within_sla", reveal=False)
    assert "denominator" not in str(failed.value)
    by_type = pd.Series([3.456, 10.04], index=["Pothole", "Graffiti"])
    with pytest.raises(AssertionError, match="rounded"):
        check.close_to(by_type.round(1), by_type, name="median_days_by_type", reveal=False)
    with pytest.raises(AssertionError, match="rounded"):  # label by label, as the comparison itself
        check.close_to(pd.Series([10.0, 3.5], index=["Graffiti", "Pothole"]), by_type, name="m", reveal=False)
    with pytest.raises(AssertionError, match="rounded"):
        check.shares(pd.Series([0.4, 0.6], index=["b", "a"]), pd.Series([0.601, 0.399], index=["a", "b"]), name="s")
    with pytest.raises(AssertionError, match="not what the data give"):  # a wrong value is not "rounded"
        check.close_to(0.72, expected, name="share_within_sla", reveal=False)


def test_in_a_kernel_a_failed_check_and_a_citykit_error_show_their_message_without_frames():
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [
        "from citykit.lessons import check\ncheck.close_to(0.79, 0.7904, name='share', reveal=False)",
        "from citykit.errors import CitykitError\ndef f():\n    raise CitykitError('a must be a count')\nf()",
        "1 / 0",
    ]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, allow_errors=True).execute()
    errors = [next(o for o in c.outputs if o.output_type == "error") for c in nb.cells]
    check_error, library_error, other_error = errors
    assert check_error.ename == "AssertionError" and "rounded" in check_error.evalue
    assert library_error.ename == "CitykitError"
    for shown in (check_error, library_error):
        text = "\n".join(shown.traceback)
        assert "check.py" not in text and "close_to" not in text and "def f" not in text and len(shown.traceback) <= 2
    assert len(other_error.traceback) > 2  # other errors keep IPython's usual traceback
