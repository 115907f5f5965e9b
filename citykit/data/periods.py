"""Reporting periods as half-open date ranges: "2025", "2025-Q3", "2025-07", "2025-01-01/2025-06-30"."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from citykit.errors import CitykitError

PERIOD_HELP = 'a year "2025", a quarter "2025-Q3", a month "2025-07" or dates "2025-01-01/2025-06-30"'


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date  # inclusive
    end: dt.date  # exclusive

    def __str__(self) -> str:
        return self.label

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def previous(self) -> Period:
        """The period just before this one, for "compared with" figures: the previous calendar
        year, quarter or month when this one is whole months, else the same number of days."""
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        if self.start.day == 1 and self.end.day == 1 and months > 0:
            first = self.start.year * 12 + self.start.month - 1 - months
            start = dt.date(first // 12, first % 12 + 1, 1)
        else:
            start = self.start - (self.end - self.start)
        return Period(f"before {self.label}", start, self.start)


def _month_after(year: int, month: int) -> dt.date:
    return dt.date(year + month // 12, month % 12 + 1, 1)


def parse_period(text: str | Period) -> Period:
    if isinstance(text, Period):
        return text
    value = str(text).strip()
    try:
        if m := re.fullmatch(r"(\d{4})", value):
            year = int(m[1])
            return Period(value, dt.date(year, 1, 1), dt.date(year + 1, 1, 1))
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", value, flags=re.IGNORECASE):
            year, quarter = int(m[1]), int(m[2])
            first_month = 3 * (quarter - 1) + 1
            return Period(value.upper(), dt.date(year, first_month, 1), _month_after(year, first_month + 2))
        if m := re.fullmatch(r"(\d{4})-(\d{2})", value):
            year, month = int(m[1]), int(m[2])
            return Period(value, dt.date(year, month, 1), _month_after(year, month))
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})", value):
            start, last = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
            if last >= start:
                return Period(value, start, last + dt.timedelta(days=1))
    except ValueError:
        pass
    raise CitykitError(f"period {value!r} is not understood; use {PERIOD_HELP}")
