"""`citykit.load`: one canonical table as a pandas DataFrame, filters pushed down to the data.

The dataset's registry entry says where its tables live: a parquet folder (`parquet_source`) or
a database (`sql_source`, extra `citykit[postgres]`). Paths come from the registry, so a notebook
loads the same data from any folder.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from citykit.data import parquet_source, registry, sql_source
from citykit.data.periods import Period
from citykit.data.query import connect
from citykit.errors import CitykitError

__all__ = ["connect", "load"]  # connect: the DuckDB connection loads use, for queries of one's own


def load(
    table: str,
    dataset: str = "riverton",
    period: str | Period | None = None,
    neighborhood: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Load a canonical table of a registered dataset.

    period: "2025", "2025-Q3", "2025-07" or "2025-01-01/2025-06-30" (on created_at for service
    requests, submitted_at for program applications). neighborhood: one name or several.
    columns: the columns to read (default: all). Unknown names raise a `CitykitError` that lists
    the valid choices.
    """
    _check_arguments(table, dataset, period, neighborhood, columns)
    if columns is not None and len(list(columns)) == 0:
        raise CitykitError("columns=[] asks for no column: name at least one, or leave columns out for all of them")
    ds = registry.get(dataset)
    source = parquet_source if ds.kind == "parquet" else sql_source
    return source.load(ds, table, period=period, neighborhood=neighborhood, columns=columns)


def _names(value: object) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)


def _check_arguments(table, dataset, period, neighborhood, columns) -> None:
    """One line naming the argument when a notebook passes the wrong kind of value."""
    if not isinstance(table, str):
        raise CitykitError(
            f'citykit.load: table must be a table\'s name as text, like "service_requests"; got {table!r}'
        )
    if not isinstance(dataset, str):
        raise CitykitError(f'citykit.load: dataset must be a dataset\'s name as text, like "riverton"; got {dataset!r}')
    if (period is not None and not isinstance(period, (str, int, Period))) or isinstance(period, bool):
        raise CitykitError(f'citykit.load: period must be text such as "2025" or "2025-Q3", or None; got {period!r}')
    if neighborhood is not None and not isinstance(neighborhood, str) and not _names(neighborhood):
        raise CitykitError(
            f"citykit.load: neighborhood must be a neighborhood's name as text, a list of names, or None; "
            f"got {neighborhood!r}"
        )
    if columns is None:
        return
    if isinstance(columns, str):
        raise CitykitError(
            f"citykit.load: columns must be a list of column names, like [{columns!r}]; got the text {columns!r}"
        )
    if not _names(list(columns) if isinstance(columns, pd.Index) else columns):
        raise CitykitError(
            f'citykit.load: columns must be a list of column names, like ["created_at"]; got {columns!r}'
        )
