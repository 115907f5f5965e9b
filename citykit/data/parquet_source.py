"""Parquet datasets (a folder under `$CITYKIT_HOME`) as a source: one table read with DuckDB, which
reads only the row groups and columns a query needs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from citykit.data import registry
from citykit.data.columns import PERIOD_COLUMN
from citykit.data.periods import Period, parse_period
from citykit.data.query import bind, build_query, connect, quote_identifier
from citykit.errors import CitykitError
from citykit.files import per_version


def load(
    ds: registry.Dataset,
    table: str,
    period: str | Period | None = None,
    neighborhood: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    where: tuple[str, list] | None = None,
) -> pd.DataFrame:
    """One canonical table of a parquet dataset, filtered in DuckDB (see `citykit.load`); `where` adds
    a condition with its qmark parameters (e.g. the backlog's open rule), so DuckDB filters the rows
    before pandas sees them."""
    path = ds.table_path(table)
    if not path.exists():
        raise CitykitError(f"dataset {ds.name!r} has no {table} yet; build it with `citykit data build`")
    con = connect(shared=True)  # a cursor: this read creates no tables or views
    source = parquet_source(con, path)
    available = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    query = build_query(table, available, period=period, neighborhood=neighborhood, columns=columns)
    if neighborhood is not None:
        _check_neighborhoods(con, path, source, ds.name, neighborhood)
    if where is not None:
        query.where.append(f"({where[0]})")
        query.params += list(where[1])
    frame = con.execute(query.sql(source), query.params).df()
    if frame.empty and period is not None:
        _explain_empty_period(con, source, table, ds.name, parse_period(period))
    return frame


def parquet_source(con: duckdb.DuckDBPyConnection, path: Path, variable: str = "table_path") -> str:
    """SQL naming the parquet file `path` as a table: its path is bound as a connection variable
    (a parameter), so any folder name works, an apostrophe (o'brien) included."""
    bind(con, variable, path.as_posix())
    return f"read_parquet(getvariable('{variable}'))"


_known: dict[str, tuple[tuple, frozenset[str]]] = {}  # path -> (its version, its neighborhood names)


def known_neighborhoods(con: duckdb.DuckDBPyConnection, path: Path, source: str) -> frozenset[str]:
    """The neighborhood names the rows of parquet file `path` use (`source` names it in SQL on `con`),
    read once per version of the file in a process (`files.per_version`): every neighborhood a report
    checks scans the whole file otherwise (~3-5 ms). `CITYKIT_NO_CACHE=1`: read each time."""
    if os.environ.get("CITYKIT_NO_CACHE"):
        return _distinct_neighborhoods(con, source)
    return per_version(_known, path, lambda: _distinct_neighborhoods(con, source))


def _distinct_neighborhoods(con: duckdb.DuckDBPyConnection, source: str) -> frozenset[str]:
    sql = f"SELECT DISTINCT neighborhood FROM {source} WHERE neighborhood IS NOT NULL"
    return frozenset(row[0] for row in con.execute(sql).fetchall())


def _check_neighborhoods(
    con: duckdb.DuckDBPyConnection, path: Path, source: str, dataset: str, neighborhood: str | Sequence[str]
) -> None:
    names = [neighborhood] if isinstance(neighborhood, str) else list(neighborhood)
    known = known_neighborhoods(con, path, source)
    missing = [n for n in names if n not in known]
    if missing:
        raise CitykitError(
            f"unknown neighborhood {', '.join(map(repr, missing))} in dataset {dataset!r}; "
            f"choose from: {', '.join(sorted(known))}"
        )


def _explain_empty_period(
    con: duckdb.DuckDBPyConnection, source: str, table: str, dataset: str, period: Period
) -> None:
    """Raise when the period lies outside the data's coverage (an empty filter result is fine)."""
    column = quote_identifier(PERIOD_COLUMN[table])
    first, last = con.execute(f"SELECT min({column}), max({column}) FROM {source}").fetchone()
    if first is None:
        raise CitykitError(f"dataset {dataset!r} has no {table}")
    if period.start <= last.date() and period.end > first.date():
        return  # the period is covered; the filters simply match nothing
    raise CitykitError(
        f"no {table} in period {period.label} in dataset {dataset!r}; "
        f"the data covers {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    )
