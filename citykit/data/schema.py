"""pandera schemas for the canonical tables: structural validity only.

A schema checks that a table *can* be analysed: the contract's columns in order, their types,
allowed categories and unique keys. Defects that real exports carry (closed before created,
placeholder dates or coordinates, duplicates) pass the schema on purpose: canonical tables keep
every row, flag it, and the quality scorecard (`citykit.data.quality`) counts it.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from citykit.data.columns import (
    CHANNELS,
    NEIGHBORHOODS,
    OUTCOMES,
    PROGRAM_APPLICATIONS,
    RACE_ETHNICITY,
    REQUEST_FLAGS,
    SERVICE_REQUESTS,
    STATUSES,
    TABLE_COLUMNS,
)
from citykit.errors import CitykitError

MAX_REPORTED_FAILURES = 4  # the error stays one readable line


def _text(nullable: bool = False, **kwargs) -> pa.Column:
    return pa.Column(str, nullable=nullable, **kwargs)


def _timestamp(nullable: bool = False) -> pa.Column:
    # pandera's DateTime accepts any datetime64 resolution (the published tables use microseconds).
    return pa.Column(pa.DateTime, nullable=nullable)


def _flag() -> pa.Column:
    return pa.Column(bool)


def _indicator() -> pa.Column:
    """A race/ethnicity indicator: bool, or pandas' nullable "boolean" where k-anonymity generalised
    a multi-category person to Multiracial and/or Multiethnic (the seven indicators <NA>)."""
    is_boolean = pa.Check(pd.api.types.is_bool_dtype, element_wise=False, error="boolean dtype", name="boolean_dtype")
    return pa.Column(None, is_boolean, nullable=True)


def _district(nullable: bool) -> pa.Column:
    # Integer (numpy int or pandas' nullable Int64 when some districts are missing), 1 or more.
    return pa.Column(pa.Int, pa.Check.ge(1), nullable=nullable)


def _count() -> pa.Column:
    return pa.Column(pa.Int, pa.Check.ge(0))


def _number(*checks: pa.Check, nullable: bool = False) -> pa.Column:
    """Any numeric dtype (int or float): amounts an importer may deliver either way."""
    is_numeric = pa.Check(
        lambda s: pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s),
        element_wise=False,
        error="numeric dtype",
        name="numeric_dtype",
    )
    return pa.Column(None, [is_numeric, *checks], nullable=nullable)


def _service_requests() -> pa.DataFrameSchema:
    columns = {
        "request_id": _text(unique=True),
        "created_at": _timestamp(),
        "closed_at": _timestamp(nullable=True),  # null while open
        "due_at": _timestamp(nullable=True),  # exports without a due date get it from metrics.yml
        "status": _text(checks=pa.Check.isin(STATUSES)),
        "agency": _text(),
        "request_type": _text(),
        "descriptor": _text(nullable=True),
        "channel": _text(checks=pa.Check.isin(CHANNELS)),
        "neighborhood": _text(nullable=True),
        "council_district": _district(nullable=True),
        # Structural range only: 0,0 and placeholder points pass and are counted by the scorecard.
        "latitude": pa.Column(float, pa.Check.in_range(-90, 90), nullable=True),
        "longitude": pa.Column(float, pa.Check.in_range(-180, 180), nullable=True),
        "is_duplicate": _flag(),
        "parent_request_id": _text(nullable=True),
        **{flag: _flag() for flag in REQUEST_FLAGS},
    }
    assert tuple(columns) == SERVICE_REQUESTS
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="service_requests")


def _neighborhoods() -> pa.DataFrameSchema:
    columns = {
        "neighborhood": _text(unique=True),
        "council_district": _district(nullable=False),
        "population": _count(),
        "households": _count(),
        "median_household_income": _number(pa.Check.ge(0), nullable=True),
        "area_km2": _number(pa.Check.gt(0)),
        **{f"pop_{code}": _count() for code in RACE_ETHNICITY},
        "pop_multiracial": _count(),
    }
    assert tuple(columns) == NEIGHBORHOODS
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="neighborhoods")


def _program_applications() -> pa.DataFrameSchema:
    columns = {
        "application_id": _text(unique=True),  # a keyed hash of the raw id
        "program": _text(),
        "submitted_at": _timestamp(),  # the first day of the month of submission
        "outcome": _text(checks=pa.Check.isin(OUTCOMES)),
        # k-anonymity generalises geography (neighborhood, then district) and may widen or blank
        # the other quasi-identifiers; suppressed values are null.
        "neighborhood": _text(nullable=True),
        "council_district": _district(nullable=True),
        "gender": _text(nullable=True),
        **{f"race_{code}": _indicator() for code in RACE_ETHNICITY},
        "race_not_reported": _flag(),
        "race_declined": _flag(),
        "language": _text(nullable=True),
    }
    assert tuple(columns) == PROGRAM_APPLICATIONS
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="program_applications")


_BUILDERS = {
    "service_requests": _service_requests,
    "neighborhoods": _neighborhoods,
    "program_applications": _program_applications,
}


@cache
def schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema of a canonical table."""
    if table not in _BUILDERS:
        raise CitykitError(f"unknown table {table!r}; choose one of: {', '.join(TABLE_COLUMNS)}")
    return _BUILDERS[table]()


def validate(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return `df` if it is a structurally valid canonical `table`, else raise a `CitykitError`
    whose one line names each failing column and check with its number of rows."""
    try:
        return schema(table).validate(df, lazy=True)
    except SchemaErrors as errors:
        problems = summarize(errors.failure_cases, df)
        raise CitykitError(f"{table} is not a valid canonical table: {problems}") from None


_TABLE_WIDE = {  # pandera's table-level checks name the table as column, the column as failure case
    "column_in_dataframe": "missing column{s}",
    "column_in_schema": "unexpected column{s}",
    "column_ordered": "column{s} out of the contract's order (citykit.data.columns)",
}


def summarize(failure_cases: pd.DataFrame, df: pd.DataFrame | None = None) -> str:
    """One line from pandera's failure cases, e.g. `status: isin(...) fails in 3 rows (e.g. 'Closd')`."""
    parts = []
    for (column, check), group in failure_cases.groupby(["column", "check"], sort=False, dropna=False):
        check = str(check)
        if check in _TABLE_WIDE:
            names = group["failure_case"].astype(str).tolist()
            parts.append(f"{_TABLE_WIDE[check].format(s='s' * (len(names) > 1))} {', '.join(names)}")
        elif check.startswith("dtype(") or check.endswith("_dtype"):
            found = f", found {df[column].dtype}" if df is not None and column in df else ""
            parts.append(f"{column}: expected {check}{found}")
        else:
            rows = group["index"].dropna().nunique()
            label = {"field_uniqueness": "unique values", "not_nullable": "no missing values"}.get(check, check)
            example = group["failure_case"].iloc[0]
            parts.append(f"{column}: {label} fails in {rows} row{'s' * (rows != 1)} (e.g. {example!r})")
    shown = parts[:MAX_REPORTED_FAILURES]
    if len(parts) > len(shown):
        shown.append(f"and {len(parts) - len(shown)} more")
    return "; ".join(shown)
