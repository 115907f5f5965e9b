"""`citykit.connect`: one SQL route to a dataset's tables, wherever the dataset lives.

    con = citykit.connect("riverton", period="2025-Q3", neighborhood="Millbrook")
    con.sql("SELECT request_type, count(*) FROM service_requests GROUP BY 1").df()

The connection is DuckDB's. Each table asked for is a relation named after it (`service_requests`,
`program_applications`, `neighborhoods`) holding the selected rows:

- a parquet dataset (a folder under `$CITYKIT_HOME`): a view over
  `read_parquet(getvariable('service_requests_path'))`, so DuckDB reads only the row groups and
  columns a query needs, and the path reaches SQL as a bound value, never pasted (a folder named
  `o'brien` works);
- a database dataset (`citykit data publish`): the selected rows read through the PostgreSQL source
  (`citykit.data.sql_source`, filters pushed down as SQL) into an in-memory DuckDB table.

Both give the same rows as `citykit.load` with the same filters. The selection and the dataset's
dates are connection variables, bound as parameters; SQL reads them with `getvariable(...)`:
`period_start`, `period_end` (TIMESTAMP, NULL without a period), `neighborhood` (the one name, or
NULL), `neighborhoods` (VARCHAR[] of the names, NULL for every neighborhood), `now` (TIMESTAMP, the
analysis "now": midnight after the as-of date) and `as_of` (DATE). A parquet table's view reads its
path and the selection from these variables when a query runs; they are not meant to be set again.
`variables={"name": value}` binds more of them for a notebook's own queries; `(value, "DATE")` gives
the SQL type, which a None needs to compare with a date or time (`(None, "TIMESTAMP")`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import duckdb
import pandas as pd

from citykit.data import registry
from citykit.data.columns import PERIOD_COLUMN
from citykit.data.parquet_source import known_neighborhoods
from citykit.data.periods import Period, parse_period
from citykit.data.query import bind
from citykit.data.query import connect as plain_connection
from citykit.errors import CitykitError
from citykit.files import atomic_write
from citykit.standards.coarsening import check_whole_units

RESERVED = ("period_start", "period_end", "neighborhood", "neighborhoods", "now", "as_of")  # with `<table>_path`
# the tables whose rows a period and a neighborhood select; `neighborhoods` is always whole (it is
# the denominator of every rate, whatever the selection)
SELECTABLE = tuple(PERIOD_COLUMN)


def connect(
    dataset: str | None = None,
    period: str | Period | None = None,
    neighborhood: str | Sequence[str] | None = None,
    tables: str | Iterable[str] = ("service_requests",),
    variables: Mapping[str, object] | None = None,
    *,
    shared: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection; with `dataset`, a relation per table in `tables` (see the
    module docstring). Without `dataset`, a plain connection as loaders use (`variables` still bound).

    period: "2025", "2025-Q3", "2025-07", "2025-01-01/2025-06-30" or a `Period`, on `created_at` for
    service requests and `submitted_at` for program applications (start inclusive, end exclusive);
    neighborhood: one name or several. Both select rows of those two tables only. Unknown tables,
    neighborhoods and periods raise a `CitykitError` saying what the dataset has.

    shared=True (citykit's own readers, e.g. `compare_periods`): a cursor on the process' shared
    database (`citykit.data.query.connect(shared=True)`: no new database, ~7-10 ms of CPU less) whose
    relations are TEMP views and tables, the cursor's own like its variables; close it when done. A
    notebook's connection stays a database of its own, so its `CREATE VIEW`s never reach another.
    """
    con = plain_connection(shared=shared)
    for name, value in (variables or {}).items():
        if name in RESERVED or name.endswith("_path"):
            con.close()
            raise CitykitError(f"variable {name!r} is set by citykit.connect itself; choose another name")
        typed = isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str)
        bind(con, name, *(value if typed else (value,)))
    if dataset is None:
        if period is not None or neighborhood is not None:
            con.close()
            raise CitykitError("period= and neighborhood= select rows of a dataset: name it with dataset=")
        return con
    try:
        _open_tables(con, registry.get(dataset), period, neighborhood, tables, "TEMP " if shared else "")
    except BaseException:
        con.close()
        raise
    return con


def _open_tables(con, ds: registry.Dataset, period, neighborhood, tables, temp: str) -> None:
    wanted = list(dict.fromkeys([tables] if isinstance(tables, str) else tables))
    for table in wanted:
        if table not in ds.tables:
            raise CitykitError(ds.missing_table_advice(table))
    selected = parse_period(period) if period is not None else None
    if selected is not None:  # a period on a time the standard publishes coarsened must be whole units
        for table in wanted:
            if table in PERIOD_COLUMN:
                check_whole_units(
                    table, PERIOD_COLUMN[table], selected.start, selected.nominal_end or selected.end, selected.label
                )
    names = None if neighborhood is None else [neighborhood] if isinstance(neighborhood, str) else list(neighborhood)
    if names is not None and not all(isinstance(n, str) for n in names):
        raise CitykitError(f"neighborhood should be a name or a list of names, not {neighborhood!r}")
    bind(con, "period_start", _timestamp(selected.start) if selected else None, "TIMESTAMP")
    bind(con, "period_end", _timestamp(selected.end) if selected else None, "TIMESTAMP")
    bind(con, "neighborhood", names[0] if names and len(names) == 1 else None, "VARCHAR")
    bind(con, "neighborhoods", names, "VARCHAR[]")
    bind(con, "now", ds.now, "TIMESTAMP")
    bind(con, "as_of", ds.as_of, "DATE")
    for table in wanted:
        if ds.kind == "parquet":
            _parquet_view(con, ds, table, selected is not None, names, temp)
        else:
            _database_table(con, ds, table, selected, names, temp)
    if names is not None and ds.kind == "parquet":
        _check_neighborhoods(con, ds, names)


def _timestamp(day: dt.date) -> dt.datetime:
    return pd.Timestamp(day).to_pydatetime()


def _parquet_view(con, ds: registry.Dataset, table: str, by_period: bool, names: list[str] | None, temp: str) -> None:
    path = ds.table_path(table)
    if not path.exists():
        raise CitykitError(f"dataset {ds.name!r} has no {table} yet; build it with `citykit data build`")
    bind(con, f"{table}_path", path.as_posix(), "VARCHAR")
    where = []
    if table in SELECTABLE and by_period:
        column = PERIOD_COLUMN[table]
        where.append(f"\"{column}\" >= getvariable('period_start') AND \"{column}\" < getvariable('period_end')")
    if table in SELECTABLE and names is not None:
        where.append("list_contains(getvariable('neighborhoods'), \"neighborhood\")")
    con.execute(
        f"CREATE {temp}VIEW \"{table}\" AS SELECT * FROM read_parquet(getvariable('{table}_path'))"
        + (f" WHERE {' AND '.join(where)}" if where else "")
    )


def _database_table(
    con, ds: registry.Dataset, table: str, selected: Period | None, names: list[str] | None, temp: str
) -> None:
    from citykit.data import sql_source  # SQLAlchemy: only for a dataset that lives in a database

    selectable = table in SELECTABLE
    frame = sql_source.load(
        ds, table, period=selected if selectable else None, neighborhood=names if selectable else None
    )
    con.register("_citykit_rows", frame)
    try:
        con.execute(f'CREATE {temp}TABLE "{table}" AS SELECT * FROM _citykit_rows')
    finally:
        con.unregister("_citykit_rows")


def _check_neighborhoods(con, ds: registry.Dataset, names: list[str]) -> None:
    """Names the dataset's requests (else applications) never use raise, listing the known ones (read
    once per version of the file, `parquet_source.known_neighborhoods`)."""
    table = next((t for t in SELECTABLE if t in ds.tables and ds.table_path(t).exists()), None)
    if table is None:
        return
    known = known_neighborhoods(con, ds.table_path(table), f"read_parquet(getvariable('{table}_path'))")
    missing = [n for n in names if n not in known]
    if missing:
        raise CitykitError(
            f"unknown neighborhood {', '.join(map(repr, missing))} in dataset {ds.name!r}; "
            f"choose from: {', '.join(sorted(known))}"
        )


def boundaries(dataset: str) -> Path | None:
    """A file holding the dataset's neighborhood boundaries GeoJSON (`citykit.maps` draws from it),
    or None when it has none. A database dataset's copy is written once to the temporary folder,
    named by its content."""
    ds = registry.get(dataset)
    if ds.kind == "parquet":
        return ds.boundaries_path if ds.boundaries_path.exists() else None
    from citykit.data import sql_source  # SQLAlchemy: only for a dataset that lives in a database

    text = sql_source.boundaries(ds)
    if not text:
        return None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"citykit-boundaries-{digest}.geojson"
    if not path.exists():
        atomic_write(path, text)  # whole or not at all, whoever writes it first; readable by other users
    return path
