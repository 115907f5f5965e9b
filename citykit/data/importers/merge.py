"""From the staged batches to a published dataset: with DuckDB, one row per request id merged into
the dataset by request id, the final parquet checked against the schema, then moved into
`$CITYKIT_HOME/imported/<name>/` with its manifest and report, and registered."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from citykit import paths
from citykit.data import registry
from citykit.data.columns import CHANNELS, REQUEST_FLAGS, SERVICE_REQUESTS, STATUSES
from citykit.data.importers.canonical import DateWindow
from citykit.data.importers.mapping import Mapping
from citykit.data.importers.report import REPORT_FILE, ImportResult, kept_section
from citykit.data.quality import PLACEHOLDER_YEAR
from citykit.data.query import bind, connect, quote_identifier

IMPORTED = "imported"  # under $CITYKIT_HOME
MANIFEST_FILE = "import.json"


def imported_dir(name: str) -> Path:
    return paths.citykit_home() / IMPORTED / name


def _connect(staging: Path) -> duckdb.DuckDBPyConnection:
    con = connect()
    con.execute("SET memory_limit = '512MB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET temp_directory = ?", [(staging / "tmp").as_posix()])  # a parameter: any folder name
    return con


def _parquet_view(con: duckdb.DuckDBPyConnection, view: str, path: Path, select: str = "*", rest: str = "") -> None:
    """View `view` over the parquet file `path`, its path bound as a connection variable (never pasted)."""
    bind(con, f"{view}_path", path.as_posix())
    con.execute(f"CREATE VIEW {view} AS SELECT {select} FROM read_parquet(getvariable('{view}_path')) {rest}")


def finish(
    staged: Path, previous: Path | None, final: Path, schema: pa.Schema, staging: Path, window: DateWindow | None = None
) -> dict[str, Any]:
    """One row per request id (the file's last), merged into `previous` by id; written to `final`
    by DuckDB in one ordered pass (created_at, request_id) with the canonical schema's metadata.

    `newest` is the newest plausible timestamp (created or closed, within `window`: never a
    placeholder, never after the extract date, so a 2099 stamp never becomes the as-of date);
    `after_extract` counts the requests with a timestamp after the extract date; `invalid` the
    rows breaking the canonical schema's column checks (`validate_final` explains them; request ids
    are unique by construction)."""
    con = _connect(staging)
    _parquet_view(con, "staged", staged)
    staged_rows, repeats = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE _repeat <> 0) - count(DISTINCT _repeat) FILTER (WHERE _repeat <> 0) "
        "FROM staged"
    ).fetchall()[0]
    # Ids the file repeats, and the rows that are not their last: the only rows left out
    con.execute(
        "CREATE TEMP TABLE repeated AS SELECT request_id, max(_row) AS last, count(*) AS n FROM staged "
        "GROUP BY request_id HAVING count(*) > 1"
    )
    new_rows = staged_rows - con.execute("SELECT coalesce(sum(n - 1), 0) FROM repeated").fetchall()[0][0]
    new = "staged"
    if new_rows < staged_rows:
        con.execute(
            "CREATE TEMP TABLE superseded AS SELECT _row FROM staged JOIN repeated USING (request_id) WHERE _row < last"
        )
        new = "(SELECT * FROM staged WHERE _row NOT IN (SELECT _row FROM superseded))"
    columns = ", ".join(quote_identifier(c) for c in SERVICE_REQUESTS)
    if previous is not None:
        _parquet_view(con, "old", previous, columns)
        merged = (f"SELECT {columns} FROM {new} UNION ALL "
                  f"SELECT {columns} FROM old WHERE request_id NOT IN (SELECT request_id FROM staged)")  # fmt: skip
        updated = con.execute("SELECT count(*) FROM old SEMI JOIN staged USING (request_id)").fetchall()[0][0]
    else:
        merged, updated = f"SELECT {columns} FROM {new}", 0
    con.execute("SET preserve_insertion_order = true")  # the ORDER BY reaches the file
    con.execute(
        f"COPY (SELECT {columns} FROM ({merged}) ORDER BY created_at, request_id) TO $final "
        "(FORMAT parquet, KV_METADATA {pandas: $pandas})",
        {"final": final.as_posix(), "pandas": schema.metadata[b"pandas"].decode("utf-8")},
    )
    con.execute("SET preserve_insertion_order = false")
    flags = ", ".join(f"count(*) FILTER (WHERE {quote_identifier(c)}) AS {quote_identifier(c)}" for c in REQUEST_FLAGS)
    start = dt.datetime.combine(window.start if window else dt.date(PLACEHOLDER_YEAR + 1, 1, 1), dt.time())
    end = dt.datetime.combine(window.end, dt.time()) if window else dt.datetime(9999, 1, 1)
    plausible = "{c} >= $start AND {c} < $end"
    _parquet_view(con, "final", final)
    invalid, invalid_params = _schema_violations()
    row = con.execute(
        f"SELECT count(*) AS rows, greatest(max(created_at) FILTER (WHERE {plausible.format(c='created_at')}), "
        f"max(closed_at) FILTER (WHERE {plausible.format(c='closed_at')})) AS newest, "
        f"count(*) FILTER (WHERE created_at >= $end OR closed_at >= $end) AS after_extract, {flags}, "
        f"count(*) FILTER (WHERE {invalid}) AS invalid "
        "FROM final",
        {"start": start, "end": end, **invalid_params},
    ).fetchall()[0]
    names = ["rows", "newest", "after_extract", *REQUEST_FLAGS, "invalid"]
    stats = dict(zip(names, row, strict=True))
    stats.update(added=new_rows - updated, updated=updated, duplicate_ids=staged_rows - new_rows, repeats=repeats)
    con.close()
    shutil.rmtree(staging / "tmp", ignore_errors=True)
    return stats


# The canonical schema's column checks (citykit.data.schema), as SQL over the written file: columns
# that may not be null, allowed values, ranges. tests/data/test_import_reference.py checks that this
# list says what the pandera schema says.
NOT_NULL = ("request_id", "created_at", "status", "agency", "request_type", "channel", "is_duplicate", *REQUEST_FLAGS)
ALLOWED = {"status": STATUSES, "channel": CHANNELS}
RANGES = {"council_district": (1, None), "latitude": (-90, 90), "longitude": (-180, 180)}  # inclusive


def _schema_violations() -> tuple[str, dict[str, Any]]:
    """A SQL condition true on a row that breaks one of the schema's column checks, and its parameters."""
    conditions = [f"{quote_identifier(c)} IS NULL" for c in NOT_NULL]
    params: dict[str, Any] = {}
    for column, allowed in ALLOWED.items():
        params[f"allowed_{column}"] = list(allowed)
        conditions.append(f"NOT list_contains($allowed_{column}, {quote_identifier(column)})")
    for column, (low, high) in RANGES.items():
        q = quote_identifier(column)
        conditions.append(
            f"{q} < {float(low)}" + (f" OR {q} > {float(high)} OR isnan({q})" if high is not None else "")
        )
    return " OR ".join(f"({c})" for c in conditions), params


def validate_final(final: Path, stats: dict[str, Any] | None = None) -> None:
    """The canonical schema: its column checks were counted in SQL by `finish` (`stats["invalid"]`)
    and the file's column types are checked here; only a table that fails runs pandera batch by
    batch, for its one-line error naming each failing column and check."""
    if stats is not None and not stats["invalid"] and _types_match(final):
        return
    from citykit.data.schema import validate  # pandera: only when something fails

    for batch in pq.ParquetFile(final).iter_batches(batch_size=500_000):
        validate(batch.to_pandas(), "service_requests")


def _types_match(final: Path) -> bool:
    """The written columns, in order, with the canonical Arrow types (text in either string width)."""
    from citykit.data.importers.canonical import canonical_schema  # lazy: loaded only when used

    written = pq.read_schema(final)
    expected = canonical_schema()
    same = lambda a, b: a == b or {a, b} <= {pa.string(), pa.large_string()}  # noqa: E731
    return written.names == expected.names and all(same(w.type, e.type) for w, e in zip(written, expected, strict=True))


def publish(result: ImportResult, mapping: Mapping, file: Path, staging: Path, sha256: str | None = None) -> None:
    """Move the staged tables into place, write the report and manifest (with the file's SHA-256,
    computed here unless given), then register."""
    target = imported_dir(result.name)
    history = []
    if (target / MANIFEST_FILE).exists():
        history = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8")).get("imports", [])
        for keep in ("neighborhoods.parquet", "program_applications.parquet", "boundaries.geojson"):
            if (target / keep).exists():
                shutil.copy2(target / keep, staging / keep)
    history.append({
        "file": file.name, "sha256": sha256 or _sha256(file), "imported_at": dt.datetime.now().isoformat(timespec="seconds"),
        "rows_read": result.rows_read, "added": result.added, "updated": result.updated,
        "as_of": result.as_of.isoformat(), "as_of_inferred": result.as_of_inferred,
        "extract_date": result.extract_date.isoformat() if result.extract_date else None,
        "extract_date_from": "given" if result.extract_date_given else "the file's modification date",
    })  # fmt: skip
    manifest = {
        "name": result.name, "source": mapping.source, "mapping": mapping.path.name if mapping.path else None,
        "title": mapping.title, "as_of": result.as_of.isoformat(), "rows": result.rows, "flags": result.flags,
        "imports": history,
    }  # fmt: skip
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    kept = kept_section(target / REPORT_FILE)  # the applications' part, as their table is kept
    (staging / REPORT_FILE).write_text(result.report.rstrip("\n") + "\n" + kept, encoding="utf-8")

    old = target.with_name(f".old-{result.name}-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    try:
        registry.register(
            dataset_entry(result.name, result.as_of, mapping, target, result.extract_date, result.as_of_inferred)
        )
    except BaseException:
        target.rename(staging)
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def dataset_entry(
    name: str, as_of: dt.date, mapping: Mapping, folder: Path, extract_date: dt.date | None = None,
    as_of_inferred: bool = False,
) -> registry.Dataset:  # fmt: skip
    tables = tuple(t for t in registry.TABLES if (folder / f"{t}.parquet").exists())
    return registry.Dataset(
        name=name, as_of=as_of, kind="parquet", location=f"{IMPORTED}/{name}",
        title=f"{mapping.city or mapping.title} 311 (imported)", source=mapping.title,
        licence=mapping.licence, synthetic=False, tables=tables, extract_date=extract_date,
        as_of_inferred=as_of_inferred,
    )  # fmt: skip


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
