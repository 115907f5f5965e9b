"""The reference route of hidden tests: the expected answer computed independently of the lesson.

Hidden tests in the notebooks compute what a correct answer is on the same data, by a route the
solutions do not take (DuckDB SQL over the published parquet, the standards read as plain YAML).
This module is that route's shared part, built from `metrics.yml`, so the rule of which requests
count is written once. It is not part of the public notebook API (`citykit`): learners have no
reason to call it, and a test keeps it to hidden-test cells.

A hidden test asks for a connection and writes SQL against its views:

    from citykit.lessons import reference as _reference
    _db = _reference.connect(dataset, period, neighborhood)
    _expected = _db.sql("SELECT request_type, median(days_to_close) FROM counted GROUP BY 1").df()

The selection (period, neighborhood) and every value read from `metrics.yml` reach DuckDB as bound
values (connection variables set with `?` parameters, read in the views with `getvariable`), never
as text pasted into SQL, so a neighborhood called `O'Brien` works and a crafted name selects nothing.
Nothing here calls `citykit.load`, pandas or the helpers learners use: the parquet files are read by
DuckDB from the registry's paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import duckdb
import yaml

from citykit import paths
from citykit.data import registry
from citykit.data.periods import Period, parse_period
from citykit.data.query import bind
from citykit.data.query import connect as query_connect
from citykit.errors import CitykitError

# table in the dataset -> the view that holds its selected rows
VIEWS = {"service_requests": "requests", "program_applications": "applications", "neighborhoods": "neighborhoods"}
# the date a period selects on, per table (the same columns `citykit.load` filters on)
PERIOD_COLUMN = {"service_requests": "created_at", "program_applications": "submitted_at"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def standard(name: str) -> dict[str, Any]:
    """A standard file (`metrics.yml`, `disaggregation.yml`, `quality.yml`) as plain YAML: the
    course's own copy when it has one, else the kit's; not validated, not typed."""
    return yaml.safe_load(paths.standard_file(name).read_text(encoding="utf-8"))


def connect(
    dataset: str,
    period: str | Period | None = None,
    neighborhood: str | None = None,
    tables: Iterable[str] = ("service_requests",),
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection over one parquet dataset, with these views.

    `period` ("2025", "2025-Q3", a `Period`...) selects rows by `created_at` for requests and
    `submitted_at` for applications, start inclusive and end exclusive; `neighborhood` (one name)
    selects rows whose `neighborhood` equals it. None selects everything.

    With "service_requests" in `tables`:
    - `requests` — every column of the published requests, the selected period and neighborhood,
      every row (duplicates, cancelled and flagged rows included).
    - `volume` — the requests that count in request volume (`metrics.yml` `volume`: duplicates
      left out when its `exclude.duplicates` says so).
    - `counted` — the requests that count in time to close and on time (`metrics.yml`
      `time_to_close`): a status in `closed_statuses` and not in `exclude.statuses`, a close time,
      not a duplicate when `exclude.duplicates`, none of the `exclude.flags` set. Every column of
      `requests`, plus `days_to_close` (calendar days, fractional: seconds / 86400), `target_at`
      (`due_at`, else `created_at` + the type's `sla_days`; null when neither) and `on_time`
      (`closed_at <= target_at`; null when there is no target).
    - `backlog` — the requests still open (`time_to_close.open_statuses`; duplicates left out)
      with `age_days` (whole calendar days at the dataset's as-of "now") and `age_bucket` (the
      label of `backlog.buckets` it falls in).
    - `sla` — `request_type`, `days`: `metrics.yml` `sla_days`.
    - `backlog_buckets` — `position`, `label`, `min_days`, `max_days` (null: no upper bound).
    With "program_applications": `applications` — every column, the selected period and
    neighborhood. With "neighborhoods": `neighborhoods` — the whole table (every neighborhood,
    whatever the selection: it is the denominator of rates).

    The connection variables `period_start`, `period_end` (dates, null without a period),
    `neighborhood` and `now` (the dataset's "now", midnight after its as-of date) are readable
    with `getvariable('now')`. A database-backed dataset raises: this route reads parquet files.
    """
    ds = registry.get(dataset)
    if ds.kind != "parquet":
        raise CitykitError(
            f"dataset {dataset!r} lives in a database ({ds.kind}); the hidden tests' reference route reads "
            "parquet tables only: grade on a parquet dataset such as 'riverton'"
        )
    wanted = list(dict.fromkeys(tables))
    unknown = [t for t in wanted if t not in VIEWS]
    if unknown:
        raise CitykitError(f"no reference view for {', '.join(map(repr, unknown))}; choose from {', '.join(VIEWS)}")
    if neighborhood is not None and not isinstance(neighborhood, str):
        raise CitykitError(f"neighborhood should be one name or None, not {neighborhood!r}")
    selected = parse_period(period) if period is not None else None

    con = query_connect()  # the grader's CITYKIT_DUCKDB_THREADS holds here too
    bind(con, "period_start", selected.start if selected else None, "DATE")
    bind(con, "period_end", selected.end if selected else None, "DATE")
    bind(con, "neighborhood", neighborhood, "VARCHAR")
    bind(con, "now", ds.now, "TIMESTAMP")
    for table in wanted:
        bind(con, f"{table}_path", ds.table_path(table).as_posix(), "VARCHAR")
        source = f"read_parquet(getvariable('{table}_path'))"
        where = []
        if table in PERIOD_COLUMN:
            column = PERIOD_COLUMN[table]
            where += [f"(getvariable('period_start') IS NULL OR {column} >= getvariable('period_start'))",
                      f"(getvariable('period_end') IS NULL OR {column} < getvariable('period_end'))"]  # fmt: skip
            where.append("(getvariable('neighborhood') IS NULL OR neighborhood = getvariable('neighborhood'))")
        con.execute(
            f"CREATE VIEW {VIEWS[table]} AS SELECT * FROM {source}" + (" WHERE " + " AND ".join(where) if where else "")
        )
    if "service_requests" in wanted:
        _request_views(con, standard("metrics.yml"))
    return con


def _quoted(column: str, known: set[str], where: str) -> str:
    if not _IDENTIFIER.fullmatch(str(column)) or column not in known:
        raise CitykitError(f"metrics.yml {where} names {column!r}, which is not a column of service_requests")
    return f'"{column}"'


def _request_views(con: duckdb.DuckDBPyConnection, metrics: dict[str, Any]) -> None:
    """`volume`, `counted`, `backlog`, `sla` and `backlog_buckets`, from `metrics.yml`."""
    columns = {row[0] for row in con.execute("DESCRIBE requests").fetchall()}
    ttc = metrics["time_to_close"]
    exclude = ttc.get("exclude") or {}
    bind(con, "closed_statuses", [str(s) for s in ttc["closed_statuses"]], "VARCHAR[]")
    bind(con, "excluded_statuses", [str(s) for s in exclude.get("statuses") or []], "VARCHAR[]")
    bind(con, "open_statuses", [str(s) for s in ttc["open_statuses"]], "VARCHAR[]")

    con.execute("CREATE TABLE sla (request_type VARCHAR, days DOUBLE)")
    sla_days = metrics.get("sla_days") or {}
    if sla_days:
        con.executemany("INSERT INTO sla VALUES (?, ?)", [[str(t), float(d)] for t, d in sla_days.items()])

    con.execute("CREATE TABLE backlog_buckets (position INTEGER, label VARCHAR, min_days INTEGER, max_days INTEGER)")
    buckets = metrics["backlog"]["buckets"]
    con.executemany("INSERT INTO backlog_buckets VALUES (?, ?, ?, ?)",
                    [[i, str(b["label"]), b["min"], b.get("max")] for i, b in enumerate(buckets)])  # fmt: skip

    volume = ["NOT is_duplicate"] if (metrics.get("volume", {}).get("exclude") or {}).get("duplicates") else []
    con.execute("CREATE VIEW volume AS SELECT * FROM requests" + (" WHERE " + " AND ".join(volume) if volume else ""))

    counts = [
        "list_contains(getvariable('closed_statuses'), status)",
        "NOT list_contains(getvariable('excluded_statuses'), status)",
        "closed_at IS NOT NULL",
        *(["NOT is_duplicate"] if exclude.get("duplicates") else []),
        *(f"NOT {_quoted(flag, columns, 'time_to_close.exclude.flags')}" for flag in exclude.get("flags") or []),
    ]
    con.execute(f"""
        CREATE VIEW counted AS
        WITH kept AS (SELECT * FROM requests WHERE {" AND ".join(counts)}),
        targeted AS (
            SELECT kept.*, epoch(closed_at - created_at) / 86400 AS days_to_close,
                   coalesce(due_at, created_at + to_microseconds(CAST(round(sla.days * 86400000000) AS BIGINT))) AS target_at
            FROM kept LEFT JOIN sla USING (request_type))
        SELECT *, CASE WHEN target_at IS NULL THEN NULL ELSE closed_at <= target_at END AS on_time FROM targeted""")

    backlog_rules = metrics["backlog"].get("exclude") or {"duplicates": True}  # "Duplicates excluded."
    still_open = ["list_contains(getvariable('open_statuses'), status)",
                  *(["NOT is_duplicate"] if backlog_rules.get("duplicates") else [])]  # fmt: skip
    con.execute(f"""
        CREATE VIEW backlog AS
        WITH aged AS (
            SELECT *, floor(epoch(getvariable('now') - created_at) / 86400) AS age_days
            FROM requests WHERE {" AND ".join(still_open)})
        SELECT aged.*, (SELECT b.label FROM backlog_buckets b
                        WHERE aged.age_days >= b.min_days AND (b.max_days IS NULL OR aged.age_days <= b.max_days)
                        ORDER BY b.position LIMIT 1) AS age_bucket
        FROM aged""")
