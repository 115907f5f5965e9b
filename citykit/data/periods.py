"""Reporting periods as half-open date ranges: "2025", "2025-Q3", "2025-07", "2025-01-01/2025-06-30".

A period is judged against a dataset's as-of date (DESIGN: "Periods and comparisons"):

- a report's default is the latest *complete* period of its kind (month, quarter, year) before the
  as-of date: `latest_complete("quarter", as_of)`;
- a period that runs past the as-of date is *partial*: `parse_period(text, as_of=...)` cuts it at
  the as-of date, labels it "partial (to DATE)", and its `previous()` is the same span of the period
  before (the first 37 days of the previous year, never the whole year).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from citykit.errors import CitykitError, quote

PERIOD_HELP = 'a year "2025", a quarter "2025-Q3", a month "2025-07" or dates "2025-01-01/2025-06-30"'
KINDS = {"month": 1, "quarter": 3, "year": 12}  # a period kind and its length in months
YEARS = (1900, 2100)  # the years a period may name: service data from before or after is a typo
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date  # inclusive
    end: dt.date  # exclusive; for a partial period, the day after its last day of data
    nominal_end: dt.date | None = None  # where the whole period ends, when it is cut at an as-of date

    def __str__(self) -> str:
        return self.label

    @property
    def last_day(self) -> dt.date:
        return self.end - ONE_DAY

    @property
    def partial(self) -> bool:
        """The period runs past the data's as-of date and is cut there."""
        return self.nominal_end is not None and self.nominal_end > self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def title(self) -> str:
        """The label a page shows: `2026-Q1, partial (to 6 February 2026)` for a partial period."""
        if not self.partial:
            return self.label
        return f"{self.label}, partial (to {self.last_day.day} {self.last_day:%B %Y})"

    @property
    def months(self) -> int:
        """Whole calendar months of the (whole) period, 0 when it is not whole months."""
        end = self.nominal_end or self.end
        months = (end.year - self.start.year) * 12 + end.month - self.start.month
        return months if self.start.day == 1 and end.day == 1 and months > 0 else 0

    def cut(self, as_of: dt.date) -> Period:
        """This period as far as data reaching `as_of` (inclusive) can cover it."""
        if self.end <= as_of + ONE_DAY:
            return self
        end = max(self.start, as_of + ONE_DAY)
        return replace(self, end=end, nominal_end=self.nominal_end or self.end)

    def shifted(self, steps: int = 1) -> Period:
        """The period `steps` units before this one, over the same span: the previous calendar
        year, quarter or month when this one is whole months (its first N days when this one is
        partial), else the same number of days just before."""
        months = self.months
        if months:
            first = self.start.year * 12 + self.start.month - 1 - months * steps
            start = dt.date(first // 12, first % 12 + 1, 1)
            nominal = _add_months(start, months)
            end = min(start + (self.end - self.start), nominal) if self.partial else nominal
        else:
            length = self.end - self.start
            start, end, nominal = self.start - length * steps, self.end - length * steps, None
        label = "before " + self.label if steps == 1 else f"{steps} before {self.label}"
        return Period(label, start, end, nominal if self.partial else None)

    def previous(self) -> Period:
        """The period just before this one, for "compared with" figures (like for like when partial)."""
        return self.shifted(1)

    def history(self, count: int) -> list[Period]:
        """The `count` periods before this one, oldest first, each over the same span."""
        return [self.shifted(k) for k in range(count, 0, -1)]


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_after(year: int, month: int) -> dt.date:
    return dt.date(year + month // 12, month % 12 + 1, 1)


def label_of(kind: str, start: dt.date) -> str:
    """`2025`, `2025-Q4` or `2025-11` for the period of `kind` starting on `start`."""
    if kind == "year":
        return f"{start.year}"
    if kind == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start:%Y-%m}"


def latest_complete(kind: str, as_of: dt.date) -> Period:
    """The latest whole month, quarter or year whose last day is on or before `as_of`."""
    if kind not in KINDS:
        raise CitykitError(f"period kind {quote(kind)} is not one of: {', '.join(KINDS)}")
    months = KINDS[kind]
    after = as_of + ONE_DAY  # the first day without data
    index = after.year * 12 + after.month - 1
    end_index = index - index % months  # the start of the unit holding `after`: where the latest whole one ends
    end = dt.date(end_index // 12, end_index % 12 + 1, 1)
    start = _add_months(end, -months)
    return Period(label_of(kind, start), start, end)


def parse_period(text: str | Period, as_of: dt.date | None = None) -> Period:
    """The period `text` names; given the data's `as_of` date, a period running past it is cut there."""
    period = text if isinstance(text, Period) else _parse(text)
    return period.cut(as_of) if as_of is not None else period


def _parse(text: str) -> Period:
    value = str(text).strip()
    if m := re.fullmatch(r"(\d{4})", value):
        year = _year(value, m[1])
        return Period(value, dt.date(year, 1, 1), dt.date(year + 1, 1, 1))
    if m := re.fullmatch(r"(\d{4})-Q(\d)", value, flags=re.IGNORECASE):
        year, quarter = _year(value, m[1]), int(m[2])
        if not 1 <= quarter <= 4:
            raise CitykitError(f"period {quote(value)}: quarter {quarter} does not exist (Q1 to Q4)")
        first_month = 3 * (quarter - 1) + 1
        return Period(value.upper(), dt.date(year, first_month, 1), _month_after(year, first_month + 2))
    if m := re.fullmatch(r"(\d{4})-(\d{2})", value):
        year, month = _year(value, m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise CitykitError(f"period {quote(value)}: month {m[2]} does not exist (01 to 12)")
        return Period(value, dt.date(year, month, 1), _month_after(year, month))
    if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})", value):
        start, last = _day(value, m[1]), _day(value, m[2])
        if last < start:
            raise CitykitError(f"period {quote(value)}: the end {last} is before the start {start}")
        return Period(value, start, last + ONE_DAY)
    raise CitykitError(f"period {quote(value)} is not understood; use {PERIOD_HELP}")


def _year(value: str, digits: str) -> int:
    year = int(digits)
    if not YEARS[0] <= year <= YEARS[1]:
        raise CitykitError(f"period {quote(value)}: year {year} is outside {YEARS[0]}–{YEARS[1]}")
    return year


def _day(value: str, text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise CitykitError(f"period {quote(value)}: {text} is not a date") from None
    _year(value, text[:4])
    return day
