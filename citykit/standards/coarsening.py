"""Coarsened times: what a period may ask of a column published only to the month (or quarter, year).

    check_whole_units("program_applications", "submitted_at", start, end, "2025-01-15/2025-02-14")
    # CitykitError: program_applications' submitted_at is published by month ...

The standard's table of columns (`privacy.columns`) says which time columns are coarsened and to
what unit: program applications' `submitted_at` holds the first day of its month. A period on such
a column must be whole units (whole months: a month, a quarter, a year, or dates from the first
day of a month to the last day of a month); a range of days would select on a precision the data
no longer has, so it is refused with one line saying what to ask instead.
"""

from __future__ import annotations

import datetime as dt

from citykit.errors import CitykitError, quote
from citykit.standards.reader import DisaggregationStandard, load_disaggregation

MONTHS = {"month": 1, "quarter": 3, "year": 12}
EXAMPLES = {
    "month": 'a year "2025", a quarter "2025-Q3", a month "2025-07", or dates from the first day of a month to '
    'the last day of a month ("2025-01-01/2025-11-30")',
    "quarter": 'a year "2025", a quarter "2025-Q3", or dates from the first day of a quarter to the last day of '
    'a quarter ("2025-01-01/2025-06-30")',
    "year": 'a year "2025", or dates from 1 January to 31 December ("2024-01-01/2025-12-31")',
}


def coarsened_unit(table: str, column: str, *, standard: DisaggregationStandard | None = None) -> str | None:
    """The unit `column` of `table` is published to ("month"), or None when it is not coarsened."""
    std = standard or load_disaggregation()
    spec = std.columns.get(table)
    entry = spec.entry(column) if spec is not None else None
    return entry.unit if entry is not None and entry.publish == "coarsened" else None


def _on_boundary(day: dt.date, months: int) -> bool:
    return day.day == 1 and (day.month - 1) % months == 0


def check_whole_units(
    table: str,
    column: str,
    start: dt.date,
    end: dt.date,
    label: str = "",
    *,
    standard: DisaggregationStandard | None = None,
) -> None:
    """Refuse a period [start, end) that is not whole units of the unit `column` is published to.

    `end` is exclusive (the day after the last day). Nothing is checked for a column that is not
    coarsened."""
    unit = coarsened_unit(table, column, standard=standard)
    if unit is None:
        return
    months = MONTHS[unit]
    if _on_boundary(start, months) and _on_boundary(end, months) and end > start:
        return
    shown = quote(label) if label else f"{start:%Y-%m-%d} to {end - dt.timedelta(days=1):%Y-%m-%d}"
    raise CitykitError(
        f"{table}' {column} is published by {unit} (the disaggregation standard's privacy.columns), so the period "
        f"{shown} cannot select it: give {EXAMPLES[unit]}"
    )
