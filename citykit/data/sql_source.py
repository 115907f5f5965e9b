"""PostgreSQL as a production source (extra `citykit[postgres]`: SQLAlchemy 2 with psycopg 3).

`publish` copies a dataset's canonical tables into a schema of the database whose URL is in an
environment variable, and registers a dataset that lives there: the registry keeps the variable's
*name*, never the URL. `load` reads one table with the period, neighborhood and column filters
pushed down as SQL (the same `citykit.data.query` as for parquet), and hands the rows to
pandas through DuckDB, as the parquet loader does, so both give identical frames.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from citykit.data import registry
from citykit.data.columns import PERIOD_COLUMN
from citykit.data.periods import Period, parse_period
from citykit.data.query import build_query, connect, quote_identifier
from citykit.errors import CitykitError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

BOUNDARIES_TABLE = "_boundaries"  # one row: the neighborhood boundaries GeoJSON
ORDER_COLUMN = "_ord"  # row order of the published parquet, so both sources return the same frame
URL_PATTERN = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
ARROW_TO_SQL = {
    pa.large_string(): "text", pa.string(): "text", pa.bool_(): "boolean", pa.int64(): "bigint",
    pa.int32(): "integer", pa.float64(): "double precision", pa.timestamp("us"): "timestamp",
}  # fmt: skip
SQL_TO_ARROW = {
    "text": pa.large_string(), "boolean": pa.bool_(), "bigint": pa.int64(), "integer": pa.int32(),
    "double precision": pa.float64(), "timestamp without time zone": pa.timestamp("us"),
}  # fmt: skip


def hide_urls(text: str) -> str:
    """Any URL in a driver's message replaced whole (host and user too, not only the password as
    `citykit.errors.redact` does): a database error names the server, which an error never needs."""
    return URL_PATTERN.sub("<database URL>", text)


def engine(env_var: str) -> Engine:
    """A SQLAlchemy engine for the database whose URL is in environment variable `env_var`."""
    try:
        from sqlalchemy import create_engine
    except ImportError:  # pragma: no cover - the postgres extra is missing
        raise CitykitError("PostgreSQL datasets need the postgres extra: pip install 'citykit[postgres]'") from None
    url = os.environ.get(env_var)
    if not url:
        raise CitykitError(
            f"environment variable {env_var} is not set; set it to the database URL "
            "(postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE)"
        )
    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as error:  # malformed URL: never echo it
        raise CitykitError(f"the database URL in {env_var} is not valid: {type(error).__name__}") from None


def _connect(env_var: str) -> Connection:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return engine(env_var).connect()
    except SQLAlchemyError as error:
        reason = hide_urls(str(getattr(error, "orig", error)).splitlines()[0])
        raise CitykitError(f"cannot connect to the database in {env_var}: {reason}") from None


def schema_name(dataset: str) -> str:
    """The PostgreSQL schema holding a database-backed dataset's tables: its own name."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", dataset):
        raise CitykitError(
            f"dataset name {dataset!r} cannot name a database schema; use lower-case letters, digits and _"
        )
    return dataset


# --- publish --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    dataset: str  # the registered database-backed dataset
    env_var: str
    rows: dict[str, int]

    def __str__(self) -> str:
        counts = ", ".join(f"{table} {n:,}" for table, n in self.rows.items())
        return (
            f"published to schema {self.dataset!r} of the database in ${self.env_var}: {counts}; "
            f"registered as dataset {self.dataset!r} (use -p dataset={self.dataset})"
        )


def publish(name: str, env_var: str, as_name: str | None = None) -> PublishResult:
    """Copy dataset `name`'s tables into the database in `env_var` (one transaction, replacing any
    earlier copy) and register the database-backed dataset `as_name` (default `<name>_pg`)."""
    source = registry.get(name)
    if source.kind != "parquet":
        raise CitykitError(f"dataset {name!r} already lives in a database; publish a parquet dataset")
    missing = [t for t in source.tables if not source.table_path(t).exists()]
    if missing:
        raise CitykitError(f"dataset {name!r} has no {', '.join(missing)} yet")
    target = as_name or f"{name}_pg"
    schema = schema_name(target)
    if target in registry.builtin_names():
        raise CitykitError(f"{target!r} is a bundled dataset; choose another name with --as")

    rows: dict[str, int] = {}
    with _connect(env_var) as conn, conn.begin():
        driver = conn.connection.driver_connection
        with driver.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {quote_identifier(schema)} CASCADE")
            cur.execute(f"CREATE SCHEMA {quote_identifier(schema)}")
            for table in source.tables:
                rows[table] = _copy_table(cur, schema, table, source.table_path(table))
            cur.execute(f"CREATE TABLE {_qualified(schema, BOUNDARIES_TABLE)} (geojson text)")
            if source.boundaries_path.exists():
                geojson = source.boundaries_path.read_text(encoding="utf-8")
                cur.execute(f"INSERT INTO {_qualified(schema, BOUNDARIES_TABLE)} VALUES (%s)", (geojson,))
    registry.register(
        registry.Dataset(
            name=target,
            as_of=source.as_of,
            kind="postgres",
            location=env_var,
            title=f"{source.title} (PostgreSQL)",
            source=source.source,
            licence=source.licence,
            synthetic=source.synthetic,
            tables=source.tables,
        )
    )
    return PublishResult(target, env_var, rows)


def _qualified(schema: str, table: str) -> str:
    """schema.table as quoted identifiers (never pasted raw)."""
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


def _copy_table(cur, schema: str, table: str, path) -> int:
    """CREATE TABLE from the parquet schema, then COPY its rows in CSV batches."""
    parquet = pq.ParquetFile(path)
    arrow_schema = parquet.schema_arrow
    columns = []
    for f in arrow_schema:
        if f.type not in ARROW_TO_SQL:
            raise CitykitError(f"{table}.{f.name}: no PostgreSQL type for {f.type}")
        columns.append(f"{quote_identifier(f.name)} {ARROW_TO_SQL[f.type]}")
    columns.append(f"{quote_identifier(ORDER_COLUMN)} bigint")
    cur.execute(f"CREATE TABLE {_qualified(schema, table)} ({', '.join(columns)})")
    names = ", ".join(quote_identifier(name) for name in [*arrow_schema.names, ORDER_COLUMN])
    total = 0
    with cur.copy(f"COPY {_qualified(schema, table)} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
        for batch in parquet.iter_batches(batch_size=100_000):
            rows = pa.Table.from_batches([batch]).append_column(
                ORDER_COLUMN, pa.array(range(total, total + batch.num_rows), pa.int64())
            )
            buffer = io.BytesIO()
            pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False))
            copy.write(buffer.getvalue())
            total += batch.num_rows
    for column in (PERIOD_COLUMN.get(table), "neighborhood"):
        if column and column in arrow_schema.names:
            cur.execute(f"CREATE INDEX ON {_qualified(schema, table)} ({quote_identifier(column)})")
    return total


# --- load -----------------------------------------------------------------------------------------


def load(
    ds: registry.Dataset,
    table: str,
    period: str | Period | None = None,
    neighborhood: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One canonical table of a database-backed dataset, filtered in SQL (see `citykit.load`)."""
    if ds.kind != "postgres":
        raise CitykitError(f"dataset {ds.name!r} is not in a database (kind {ds.kind!r})")
    if table not in ds.tables:
        raise CitykitError(ds.missing_table_advice(table))
    schema = schema_name(ds.name)
    source = _qualified(schema, table)
    with _connect(ds.location) as conn:
        types = _column_types(conn, schema, table)
        if not types:
            raise CitykitError(f"dataset {ds.name!r} has no {table} in its database; run `citykit data publish`")
        query = build_query(table, list(types), period=period, neighborhood=neighborhood, columns=columns)
        if neighborhood is not None:
            _check_neighborhoods(conn, source, ds.name, neighborhood)
        sql = f"{query.sql(source, paramstyle='format')} ORDER BY {quote_identifier(ORDER_COLUMN)}"
        frame = _fetch(conn, sql, query.params, {c: types[c] for c in query.columns})
        if frame.empty and period is not None:
            _explain_empty_period(conn, source, table, ds.name, parse_period(period))
    return frame


def boundaries(ds: registry.Dataset) -> str | None:
    """The dataset's neighborhood boundaries GeoJSON text, or None."""
    with _connect(ds.location) as conn:
        rows = conn.exec_driver_sql(
            f"SELECT geojson FROM {_qualified(schema_name(ds.name), BOUNDARIES_TABLE)}"
        ).fetchall()
    return rows[0][0] if rows else None


def _column_types(conn: Connection, schema: str, table: str) -> dict[str, pa.DataType]:
    rows = conn.exec_driver_sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return {name: SQL_TO_ARROW.get(kind, pa.large_string()) for name, kind in rows if name != ORDER_COLUMN}


def _fetch(conn: Connection, sql: str, params: list, types: dict[str, pa.DataType]) -> pd.DataFrame:
    """Rows to arrow with the table's own types, then to pandas through DuckDB (as parquet loads do)."""
    result = conn.exec_driver_sql(sql, tuple(params))
    rows = result.fetchall()
    values = list(zip(*rows)) if rows else [[] for _ in types]
    arrow = pa.table({name: pa.array(list(col), type=kind) for (name, kind), col in zip(types.items(), values)})
    con = connect()
    con.register("rows", arrow)
    frame = con.execute("SELECT * FROM rows").df()
    con.close()
    return frame


def _check_neighborhoods(conn: Connection, source: str, dataset: str, neighborhood: str | Sequence[str]) -> None:
    names = [neighborhood] if isinstance(neighborhood, str) else list(neighborhood)
    known = {
        r[0] for r in conn.exec_driver_sql(f"SELECT DISTINCT neighborhood FROM {source} WHERE neighborhood IS NOT NULL")
    }
    missing = [n for n in names if n not in known]
    if missing:
        raise CitykitError(
            f"unknown neighborhood {', '.join(map(repr, missing))} in dataset {dataset!r}; "
            f"choose from: {', '.join(sorted(known))}"
        )


def _explain_empty_period(conn: Connection, source: str, table: str, dataset: str, period: Period) -> None:
    column = quote_identifier(PERIOD_COLUMN[table])
    first, last = conn.exec_driver_sql(f"SELECT min({column}), max({column}) FROM {source}").fetchall()[0]
    if first is None:
        raise CitykitError(f"dataset {dataset!r} has no {table}")
    if period.start <= last.date() and period.end > first.date():
        return
    raise CitykitError(
        f"no {table} in period {period.label} in dataset {dataset!r}; "
        f"the data covers {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    )
