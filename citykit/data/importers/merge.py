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
from citykit.data.columns import REQUEST_FLAGS, SERVICE_REQUESTS
from citykit.data.importers.canonical import DateWindow
from citykit.data.importers.mapping import Mapping
from citykit.data.importers.report import REPORT_FILE, ImportResult
from citykit.data.quality import PLACEHOLDER_YEAR
from citykit.data.query import bind, connect
from citykit.data.schema import validate

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
    """One row per request id (the file's last), merged into `previous` by id; written to `final`.

    `newest` is the newest plausible timestamp (created or closed, within `window`: never a
    placeholder, never after the extract date, so a 2099 stamp never becomes the as-of date);
    `after_extract` counts the requests with a timestamp after the extract date."""
    con = _connect(staging)
    _parquet_view(con, "staged", staged)
    con.execute(
        "CREATE VIEW new AS SELECT * FROM staged QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY _row DESC) = 1"
    )
    columns = ", ".join(f'"{c}"' for c in SERVICE_REQUESTS)
    if previous is not None:
        _parquet_view(con, "old", previous, columns)
        merged = f"SELECT {columns} FROM new UNION ALL SELECT {columns} FROM old ANTI JOIN new USING (request_id)"
        updated = con.execute("SELECT count(*) FROM new SEMI JOIN old USING (request_id)").fetchall()[0][0]
    else:
        merged, updated = f"SELECT {columns} FROM new", 0
    new_rows = con.execute("SELECT count(*) FROM new").fetchall()[0][0]
    staged_rows, repeats = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE _repeat <> 0) - count(DISTINCT _repeat) FILTER (WHERE _repeat <> 0) "
        "FROM staged"
    ).fetchall()[0]
    reader = con.sql(f"SELECT * FROM ({merged}) ORDER BY created_at, request_id").to_arrow_reader(200_000)
    with pq.ParquetWriter(final, schema) as writer:
        for batch in reader:
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))
    flags = ", ".join(f'count(*) FILTER (WHERE "{c}") AS "{c}"' for c in REQUEST_FLAGS)
    start = dt.datetime.combine(window.start if window else dt.date(PLACEHOLDER_YEAR + 1, 1, 1), dt.time())
    end = dt.datetime.combine(window.end, dt.time()) if window else dt.datetime(9999, 1, 1)
    plausible = "{c} >= $start AND {c} < $end"
    _parquet_view(con, "final", final)
    row = con.execute(
        f"SELECT count(*) AS rows, greatest(max(created_at) FILTER (WHERE {plausible.format(c='created_at')}), "
        f"max(closed_at) FILTER (WHERE {plausible.format(c='closed_at')})) AS newest, "
        f"count(*) FILTER (WHERE created_at >= $end OR closed_at >= $end) AS after_extract, {flags} "
        "FROM final",
        {"start": start, "end": end},
    ).fetchall()[0]
    names = ["rows", "newest", "after_extract", *REQUEST_FLAGS]
    stats = dict(zip(names, row, strict=True))
    stats.update(added=new_rows - updated, updated=updated, duplicate_ids=staged_rows - new_rows, repeats=repeats)
    con.close()
    shutil.rmtree(staging / "tmp", ignore_errors=True)
    return stats


def validate_final(final: Path) -> None:
    """The canonical schema, batch by batch (request ids are unique by construction)."""
    for batch in pq.ParquetFile(final).iter_batches(batch_size=500_000):
        validate(batch.to_pandas(), "service_requests")


def publish(result: ImportResult, mapping: Mapping, file: Path, staging: Path) -> None:
    """Move the staged tables into place, write the report and manifest, then register."""
    target = imported_dir(result.name)
    history = []
    if (target / MANIFEST_FILE).exists():
        history = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8")).get("imports", [])
        for keep in ("neighborhoods.parquet", "program_applications.parquet", "boundaries.geojson"):
            if (target / keep).exists():
                shutil.copy2(target / keep, staging / keep)
    history.append({
        "file": file.name, "sha256": _sha256(file), "imported_at": dt.datetime.now().isoformat(timespec="seconds"),
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
    (staging / REPORT_FILE).write_text(result.report, encoding="utf-8")

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
