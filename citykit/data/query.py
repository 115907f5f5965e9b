"""The read of one canonical table as a query: projection and filters checked against the table's
columns, as SQL with parameters that any source (parquet through DuckDB, PostgreSQL) runs; and the
DuckDB connection every reader uses."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from citykit.data.columns import PERIOD_COLUMN
from citykit.data.periods import Period, parse_period
from citykit.errors import CitykitError
from citykit.standards.coarsening import check_whole_units


@dataclass
class Query:
    """A filtered, projected read of one table: SQL text over a named source plus its parameters."""

    table: str
    columns: list[str]
    where: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def sql(self, source: str, paramstyle: str = "qmark") -> str:
        """The SELECT over `source`; paramstyle "qmark" (DuckDB: ?) or "format" (psycopg: %s, with
        any % in a quoted name doubled), the values always passed apart as `params`."""
        select = ", ".join(quote_identifier(c) for c in self.columns)
        where = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        if paramstyle == "format":
            select, source = select.replace("%", "%%"), source.replace("%", "%%")
            where = where.replace("%", "%%").replace("?", "%s")  # the filters' own text holds no other ?
        return f"SELECT {select} FROM {source}{where}"


def quote_identifier(name: str) -> str:
    """A column or table name as a quoted SQL identifier (DuckDB and PostgreSQL alike): an embedded
    double quote doubled, so a name can never end the identifier early; NUL and empty names refused."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise CitykitError(f"{name!r} cannot name a column or table")
    return '"' + name.replace('"', '""') + '"'


def connect(shared: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection; `CITYKIT_DUCKDB_THREADS` caps its threads (graders set 1).

    `citykit.connect(dataset, ...)` (`citykit.data.views.connect`) opens one with a view per table
    of a dataset, wherever it lives; this plain one is what loaders build on.

    shared=True: a cursor on one in-memory database per process instead of a new database (a new
    one costs ~7-10 ms of CPU, a cursor nothing), for readers that create no tables or views: their
    variables, temporary tables and registered frames stay the cursor's own, as on a database of its
    own; tables and views would be seen by every cursor. `CITYKIT_NO_CACHE=1`: a new database."""
    con = _shared_database().cursor() if shared and not os.environ.get("CITYKIT_NO_CACHE") else duckdb.connect()
    threads = os.environ.get("CITYKIT_DUCKDB_THREADS")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


_shared: tuple[int, duckdb.DuckDBPyConnection] | None = None  # (the process that opened it, the database)


def _shared_database() -> duckdb.DuckDBPyConnection:
    """The process' shared in-memory database (a forked process opens its own)."""
    global _shared
    if _shared is None or _shared[0] != os.getpid():
        _shared = (os.getpid(), duckdb.connect())
    return _shared[1]


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def bind(con: duckdb.DuckDBPyConnection, name: str, value: object, sql_type: str | None = None) -> None:
    """Set connection variable `name` to `value`, bound as a parameter (never pasted into SQL);
    SQL reads it back with `getvariable('name')`, e.g. `read_parquet(getvariable('requests_path'))`.

    sql_type ("DATE", "TIMESTAMP", "VARCHAR[]"...) casts the value; without it DuckDB infers the type
    (a None without a type is an untyped NULL)."""
    if not _VARIABLE.fullmatch(name):
        raise CitykitError(f"{name!r} cannot name a connection variable; use letters, digits and _")
    if sql_type is not None and not re.fullmatch(r"[A-Z]+(\[\])?", sql_type):
        raise CitykitError(f"{sql_type!r} is not a plain SQL type such as DATE or VARCHAR[]")
    placeholder = f"CAST(? AS {sql_type})" if sql_type else "?"
    con.execute(f'SET VARIABLE "{name}" = {placeholder}', [value])  # quoted: `end` is a keyword


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
        check_whole_units(table, PERIOD_COLUMN[table], p.start, p.nominal_end or p.end, p.label)  # coarsened times
        column = quote_identifier(PERIOD_COLUMN[table])
        query.where.append(f"{column} >= ? AND {column} < ?")
        query.params += [pd.Timestamp(p.start).to_pydatetime(), pd.Timestamp(p.end).to_pydatetime()]
    if neighborhood is not None:
        names = [neighborhood] if isinstance(neighborhood, str) else list(neighborhood)
        query.where.append(f'"neighborhood" IN ({", ".join("?" for _ in names)})')
        query.params += names
    return query
