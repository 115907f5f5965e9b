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


@pytest.mark.parametrize("text", ["2025-13", "2025-Q5", "last year", "2025-06-30/2025-01-01", ""])
def test_bad_periods_say_what_is_accepted(text):
    with pytest.raises(CitykitError, match="quarter"):
        parse_period(text)
