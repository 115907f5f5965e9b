"""`citykit.load`: one canonical table as a pandas DataFrame, filters pushed down to the data.

Parquet datasets are read with DuckDB, which reads only the row groups and columns a query needs.
Paths come from the datasets registry, so a notebook loads the same data from any folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from citykit.data import registry
from citykit.data.columns import PERIOD_COLUMN
from citykit.data.periods import Period, parse_period
from citykit.errors import CitykitError


@dataclass
class Query:
    """A filtered, projected read of one table: SQL text over a named source plus its parameters."""

    table: str
    columns: list[str]
    where: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def sql(self, source: str) -> str:
        select = ", ".join(f'"{c}"' for c in self.columns)
        where = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        return f"SELECT {select} FROM {source}{where}"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection; `CITYKIT_DUCKDB_THREADS` caps its threads (graders set 1)."""
    con = duckdb.connect()
    threads = os.environ.get("CITYKIT_DUCKDB_THREADS")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


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
    ds = registry.get(dataset)
    if ds.kind != "parquet":
        from citykit.data import sql_source  # database-backed datasets (citykit[postgres])

        return sql_source.load(ds, table, period=period, neighborhood=neighborhood, columns=columns)
    path = ds.table_path(table)
    if not path.exists():
        raise CitykitError(f"dataset {dataset!r} has no {table} yet; build it with `citykit data build`")
    con = connect()
    source = f"read_parquet('{path.as_posix()}')"
    available = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    query = build_query(table, available, period=period, neighborhood=neighborhood, columns=columns)
    if neighborhood is not None:
        _check_neighborhoods(con, source, dataset, neighborhood)
    frame = con.execute(query.sql(source), query.params).df()
    if frame.empty and period is not None:
        _explain_empty_period(con, source, table, dataset, parse_period(period))
    return frame


def build_query(
    table: str,
    available: Sequence[str],
    period: str | Period | None = None,
    neighborhood: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> Query:
    """The projection and filters for a load, checked against the table's columns."""
    chosen = list(columns) if columns is not None else list(available)
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise CitykitError(f"{table} has no column {', '.join(map(repr, unknown))}; columns: {', '.join(available)}")
    query = Query(table, chosen)
    if period is not None:
        if table not in PERIOD_COLUMN:
            raise CitykitError(f"{table} has no dates to filter by period; load it without period=")
        p = parse_period(period)
        column = PERIOD_COLUMN[table]
        query.where.append(f'"{column}" >= ? AND "{column}" < ?')
        query.params += [pd.Timestamp(p.start).to_pydatetime(), pd.Timestamp(p.end).to_pydatetime()]
    if neighborhood is not None:
        names = [neighborhood] if isinstance(neighborhood, str) else list(neighborhood)
        query.where.append(f'"neighborhood" IN ({", ".join("?" for _ in names)})')
        query.params += names
    return query


def _check_neighborhoods(con, source: str, dataset: str, neighborhood: str | Sequence[str]) -> None:
    names = [neighborhood] if isinstance(neighborhood, str) else list(neighborhood)
    known = {
        row[0]
        for row in con.execute(f"SELECT DISTINCT neighborhood FROM {source} WHERE neighborhood IS NOT NULL").fetchall()
    }
    missing = [n for n in names if n not in known]
    if missing:
        raise CitykitError(
            f"unknown neighborhood {', '.join(map(repr, missing))} in dataset {dataset!r}; "
            f"choose from: {', '.join(sorted(known))}"
        )


def _explain_empty_period(con, source: str, table: str, dataset: str, period: Period) -> None:
    """Raise when the period lies outside the data's coverage (an empty filter result is fine)."""
    column = PERIOD_COLUMN[table]
    first, last = con.execute(f'SELECT min("{column}"), max("{column}") FROM {source}').fetchone()
    if first is None:
        raise CitykitError(f"dataset {dataset!r} has no {table}")
    if period.start <= last.date() and period.end > first.date():
        return  # the period is covered; the filters simply match nothing
    raise CitykitError(
        f"no {table} in period {period.label} in dataset {dataset!r}; "
        f"the data covers {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    )
