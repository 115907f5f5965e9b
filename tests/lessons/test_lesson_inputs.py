"""Functions the lessons call reject a wrong kind of argument with one line naming the argument
(counts, not rates; a list of columns, not one name), before pandas, DuckDB or statsmodels fail in
their own words."""

from __future__ import annotations

import pandas as pd
import pytest

import citykit
from citykit.errors import CitykitError
from citykit.standards import equity


@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        ({"table": 123}, "table must be"),
        ({"dataset": None}, "dataset must be"),
        ({"dataset": ["riverton"]}, "dataset must be"),
        ({"period": ["2025"]}, "period must be"),
        ({"period": True}, "period must be"),
        ({"neighborhood": 5}, "neighborhood must be"),
        ({"columns": "created_at"}, "columns must be a list of column names, like ['created_at']"),
        ({"columns": [1, 2]}, "columns must be a list"),
        ({"columns": 5}, "columns must be a list"),
        ({"columns": []}, "columns=[] asks for no column"),
    ],
)
def test_load_names_the_argument_of_the_wrong_kind(arguments, names):
    arguments = {"table": "service_requests", "dataset": "riverton", **arguments}
    with pytest.raises(CitykitError) as failure:
        citykit.load(arguments.pop("table"), **arguments)
    message = str(failure.value)
    assert names in message and "\n" not in message, message


def test_load_still_takes_every_documented_kind_of_argument(riverton):
    # a year as a number, several neighborhoods, columns as a tuple or an Index
    frame = citykit.load("service_requests", dataset="riverton", period=2025, neighborhood=["Millbrook", "Ashgrove"],
                         columns=pd.Index(["request_id", "neighborhood"]))  # fmt: skip
    assert list(frame.columns) == ["request_id", "neighborhood"]
    assert set(frame["neighborhood"]) == {"Millbrook", "Ashgrove"}


RATES_FOR_COUNTS = [  # what a learner passes by mistake, the argument the message must name
    (lambda: equity.rate_ratio(0.73, 100, 0.61, 120), "events_a"),
    (lambda: equity.rate_ratio(12, 100, 9.5, 120), "events_b"),
    (lambda: equity.rate_ratio(12, "100", 9, 120), "exposure_a"),
    (lambda: equity.rate_ratio(12, 100, 9, -1), "exposure_b"),
    (lambda: equity.rate_ratio(pd.Series([True, False]), 2, 1, 2), "events_a"),
    (lambda: equity.proportion_ratio(0.5, 10, 3, 10), "a must be a count"),
    (lambda: equity.proportion_ratio(5, 10.5, 3, 10), "n_a"),
    (lambda: equity.proportion_ratio(5, 10, 12, 10), "b = 12 is more than its group of 10"),
    (lambda: equity.disproportionality_index(0.3, 100, 500, 2000), "events_group"),
    (lambda: equity.disproportionality_index(30, 100.5, 500, 2000), "events_total"),
    (lambda: equity.disproportionality_index(130, 100, 500, 2000), "events_group = 130 is more than events_total"),
    (lambda: equity.disproportionality_index(30, 100, "500", 2000), "benchmark_group"),
    (lambda: equity.disproportionality_index(30, 100, 2500, 2000), "benchmark_group = 2,500 is more than"),
    (lambda: equity.race_alone("applications"), "race_alone: df must be a table"),
    (lambda: equity.race_alone_or_in_combination(None), "race_alone_or_in_combination: df must be a table"),
    (lambda: equity.suppress([[1, 2], [3, 4]]), "suppress: counts must be a table (a DataFrame) of counts"),
    (lambda: citykit.dataset(["riverton"]), "dataset must be a dataset's name as text"),
]


@pytest.mark.parametrize(("call", "names"), RATES_FOR_COUNTS)
def test_ratio_functions_name_the_argument_that_is_not_a_count(call, names):
    with pytest.raises(CitykitError) as failure:
        call()
    message = str(failure.value)
    assert names in message and "\n" not in message, message


def test_ratio_functions_still_take_counts_and_populations():
    assert equity.rate_ratio(12, 100.0, 9, 120).estimate == pytest.approx((12 / 100) / (9 / 120))
    assert equity.proportion_ratio(5.0, 10, 3, 10).estimate == pytest.approx(5 / 3)
    di = equity.disproportionality_index(30, 100, 500.5, 2000)  # a census estimate need not be whole
    assert di.estimate == pytest.approx(0.3 / (500.5 / 2000))


def test_messages_show_numbers_as_people_write_them():
    import numpy as np

    with pytest.raises(CitykitError) as failure:
        equity.proportion_ratio(np.float64(0.6977491961414791), 310, 5, 10)
    assert "got 0.6977;" in str(failure.value) and "np." not in str(failure.value)
    with pytest.raises(CitykitError, match=r"got -1,250"):
        equity.rate_ratio(12, np.int64(-1250), 9, 120)
