import datetime as dt

import pytest

from citykit.data.periods import parse_period
from citykit.errors import CitykitError


@pytest.mark.parametrize(
    "text, start, last_day",
    [
        ("2025", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        ("2024-Q1", dt.date(2024, 1, 1), dt.date(2024, 3, 31)),
        ("2025-q4", dt.date(2025, 10, 1), dt.date(2025, 12, 31)),
        ("2024-02", dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
        ("2025-12", dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
        ("2025-03-05/2025-03-05", dt.date(2025, 3, 5), dt.date(2025, 3, 5)),
    ],
)
def test_periods_are_half_open_ranges(text, start, last_day):
    period = parse_period(text)
    assert (period.start, period.last_day) == (start, last_day)
    assert period.end == last_day + dt.timedelta(days=1)


@pytest.mark.parametrize(
    "text, start",
    [("2025", "2024-01-01"), ("2025-Q1", "2024-10-01"), ("2024-03", "2024-02-01"), ("2025-01", "2024-12-01")],
)
def test_previous_of_whole_months_is_the_previous_calendar_unit(text, start):
    period = parse_period(text)
    before = period.previous()
    assert before.end == period.start
    assert before.start == dt.date.fromisoformat(start)


def test_previous_of_a_date_range_has_the_same_number_of_days():
    period = parse_period("2025-03-10/2025-03-16")
    before = period.previous()
    assert (before.start, before.end) == (dt.date(2025, 3, 3), period.start)


@pytest.mark.parametrize(
    "text, says",
    [
        ("2025-13", "period '2025-13': month 13 does not exist (01 to 12)"),
        ("2025-Q5", "period '2025-Q5': quarter 5 does not exist (Q1 to Q4)"),
        ("9999-12", "period '9999-12': year 9999 is outside 1900–2100"),
        ("1850", "period '1850': year 1850 is outside 1900–2100"),
        ("2025-02-30/2025-03-01", "period '2025-02-30/2025-03-01': 2025-02-30 is not a date"),
        ("2025-06-30/2025-01-01", "period '2025-06-30/2025-01-01': the end 2025-01-01 is before the start 2025-06-30"),
        ("last year", "period 'last year' is not understood; use a year \"2025\", a quarter"),
        ("", "period '' is not understood"),
    ],
)
def test_bad_periods_say_what_is_wrong(text, says):
    with pytest.raises(CitykitError) as error:
        parse_period(text)
    assert str(error.value).startswith(says)


@pytest.mark.parametrize(
    "kind, as_of, label",
    [
        ("year", "2025-12-31", "2025"),
        ("year", "2025-12-30", "2024"),
        ("quarter", "2025-12-31", "2025-Q4"),
        ("quarter", "2025-02-06", "2024-Q4"),
        ("month", "2018-01-01", "2017-12"),
        ("month", "2019-03-31", "2019-03"),
    ],
)
def test_the_default_is_the_latest_complete_period_before_the_as_of(kind, as_of, label):
    from citykit.data.periods import latest_complete

    period = latest_complete(kind, dt.date.fromisoformat(as_of))
    assert period.label == label
    assert period.last_day <= dt.date.fromisoformat(as_of) < period.last_day + dt.timedelta(days=366)


def test_a_period_past_the_as_of_is_partial_and_compared_like_for_like():
    """A New York export as of 2025-02-06: 2025 is 37 days, compared with the first 37 days of 2024."""
    period = parse_period("2025", as_of=dt.date(2025, 2, 6))
    assert period.partial and period.days == 37
    assert period.title == "2025, partial (to 6 February 2025)"
    before = period.previous()
    assert (before.start, before.last_day) == (dt.date(2024, 1, 1), dt.date(2024, 2, 6))
    assert parse_period("2024", as_of=dt.date(2025, 2, 6)).partial is False
    history = parse_period("2025-Q1", as_of=dt.date(2025, 2, 6)).history(2)
    assert [(p.start, p.days) for p in history] == [(dt.date(2024, 7, 1), 37), (dt.date(2024, 10, 1), 37)]
