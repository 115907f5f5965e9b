"""`import_requests`: the steps of an import in order, in a staging folder that a failure removes."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from citykit import paths
from citykit.data import registry
from citykit.data.columns import REQUEST_FLAGS, STATUSES
from citykit.data.importers import vector
from citykit.data.importers.canonical import (
    PLAUSIBLE_START,
    DateWindow,
    Findings,
    Plan,
    TypeTable,
    canonical_batch,
    canonical_schema,
    staged_schema,
    type_standards,
)
from citykit.data.importers.mapping import Mapping, detect_source, load_mapping
from citykit.data.importers.merge import IMPORTED, MANIFEST_FILE, finish, imported_dir, publish, validate_final
from citykit.data.importers.overlap import Background, Digest, arrow_pool, prefetch
from citykit.data.importers.personal import SAMPLE_ROWS, TEXT_COLUMNS, check_mapping, shorten
from citykit.data.importers.reader import Header, Malformed, batches, read_header, stream
from citykit.data.importers.report import ImportResult, render_report, score
from citykit.errors import CitykitError
from citykit.files import locked


@dataclass(frozen=True)
class ImportDates:
    extract: dt.date  # the day the export was taken
    extract_given: bool  # --extract-date, or else the file's own date
    as_of: dt.date | None  # --as-of, or None: the newest plausible record

    @property
    def window(self) -> DateWindow:
        """The plausible range of the export's timestamps; values outside it are flagged."""
        return DateWindow(PLAUSIBLE_START, self.extract)


NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
AHEAD = dt.timedelta(days=366)  # an --as-of or --extract-date may lie up to a year from today
LOCK_TIMEOUT = -1  # wait as long as the other import of the dataset takes: the lock dies with its holder
MAX_MALFORMED_SHARE = 0.01  # more malformed rows than this: the file is not the layout we think
MAX_UNREADABLE_DATES_SHARE = 0.01  # more unreadable created dates than this: wrong timestamp format
WORLD = (-180.0, -90.0, 180.0, 90.0)  # bounds of a mapping without its own: only impossible points flagged
STAGED_COMPRESSION = "lz4"  # the staged rows are read once more, by DuckDB, then deleted
DICTIONARY = ["status", "agency", "request_type", "descriptor", "channel", "neighborhood"]  # few distinct values


def import_requests(
    source: str,
    file: Path | str,
    name: str | None = None,
    as_of: dt.date | str | None = None,
    mapping_file: Path | str | None = None,
    progress: Callable[[int], None] | None = None,
    extract_date: dt.date | str | None = None,
) -> ImportResult:
    """Import a 311 export as dataset `name` (default: the source's name), or update it.

    source: a mapping name, or "auto" to recognise it from the header; `mapping_file` overrides
    both. Two dates, each with one job:
    extract_date: the day the export was taken (default: the file's own modification date, and the
    report says so); the timeliness gate measures the newest record against it.
    as_of: the analysis "now" for ages, backlogs and default periods (default: the newest record
    that is plausible, i.e. within the plausible range, marked "inferred").
    Timestamps outside the plausible range (`DateWindow`: 1990-01-01 to the extract date; due dates
    up to five years after it) flag their row (flag_placeholder_date) and never become the as-of.
    A mapping that would publish a personal column (by its name or its values) is refused.
    progress: called with the number of rows read so far after each batch.
    An --as-of or --extract-date outside 1990 to a year from today, or an as-of after the extract
    date, is refused. The import holds the dataset's exclusive lock (`$CITYKIT_HOME/imported/.<name>.lock`,
    an OS lock released even on `kill -9`) from the name check to the publish: a second import into
    the same name waits, then merges into the first one's result instead of dropping its rows.
    """
    file = Path(file)
    header = read_header(file)
    dates = _import_dates(file, as_of, extract_date)
    if mapping_file is not None:
        mapping = load_mapping(Path(mapping_file))
    elif source == "auto":
        mapping = detect_source(header.columns)
    else:
        mapping = load_mapping(source)
    missing = mapping.missing(header.columns)
    if missing:
        hint = " (is the delimiter right?)" if len(header.columns) == 1 else ""
        raise CitykitError(
            f"{file.name} lacks the {mapping.source} columns {', '.join(missing)}{hint}; it has: "
            f"{', '.join(header.columns[:20])}. Pass SOURCE=auto or a custom mapping with --mapping FILE"
        )
    found = mapping.resolve(header.names)
    repeated = sorted({c for c in header.columns if header.columns.count(c) > 1})
    used_twice = [c for c in repeated if c in found.values()]
    if used_twice:
        raise CitykitError(
            f"{file.name} has the column {', '.join(used_twice)} more than once; which one holds the data is ambiguous"
        )
    listed = (*mapping.personal_columns, *mapping.defects.values())
    check_mapping(mapping.path.name if mapping.path else mapping.source, found, listed, _sample(file, header, found))

    name = name or mapping.source
    if not NAME_PATTERN.match(name):  # before the name becomes a lock file's
        raise CitykitError(
            f"dataset name {shorten(name)}: use lower-case letters, digits and _ (starting with a letter)"
        )
    home = paths.citykit_home() / IMPORTED
    with locked(home / name, timeout=LOCK_TIMEOUT):
        _check_name(name, mapping)
        home.mkdir(parents=True, exist_ok=True)
        staging = home / f".staging-{name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            with arrow_pool():
                return _import(file, header, mapping, found, name, dates, staging, progress)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _import_dates(file: Path, as_of: dt.date | str | None, extract_date: dt.date | str | None) -> ImportDates:
    """The import's dates: each given one within 1990 to a year from today, the extract date by default
    the file's own (when it was saved from the portal, as close as we can get), the as-of not after it."""
    latest = dt.date.today() + AHEAD
    given = {}
    for option, value in (("--as-of", as_of), ("--extract-date", extract_date)):
        date = _date_option(option, value)
        if date is not None and not PLAUSIBLE_START <= date <= latest:
            raise CitykitError(f"{option} {date} is not plausible: give a date from {PLAUSIBLE_START} to {latest}")
        given[option] = date
    extract = given["--extract-date"]
    dates = ImportDates(extract or dt.date.fromtimestamp(file.stat().st_mtime), extract is not None, given["--as-of"])
    if dates.as_of is not None and dates.as_of > dates.extract:
        said = "" if dates.extract_given else " (the file's modification date; give --extract-date)"
        raise CitykitError(
            f"--as-of {dates.as_of} is after the extract date {dates.extract}{said}: the data cannot know that day"
        )
    return dates


def _type_counts(file: Path, header: Header, found: dict[str, str]) -> dict[str, Counter]:
    """Rows per trimmed, non-empty spelling of the request type (and descriptor), in the order
    pandas' value_counts gives them batch by batch (type_standards' report order follows it)."""
    counts: dict[str, Counter] = {c: Counter() for c in ("request_type", "descriptor") if c in found}
    for batch in prefetch(batches(file, header, sorted({found[c] for c in counts}), Malformed())):
        names = batch.schema.names
        for column, counter in counts.items():
            values = vector.strip(vector.strings(batch.column(names.index(found[column]))))
            given = values.filter(pc.fill_null(pc.not_equal(values, ""), False))
            counter.update(given.to_pandas().value_counts().to_dict())
    return counts


def _sample(file: Path, header: Header, found: dict[str, str]) -> pd.DataFrame | None:
    """The first rows of the columns published as text, to sniff for personal content."""
    columns = sorted({found[c] for c in TEXT_COLUMNS if c in found})
    for batch in stream(file, header, columns, Malformed()):
        return batch.head(SAMPLE_ROWS)
    return None


def _date_option(option: str, value: dt.date | str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        raise CitykitError(f"{option} {shorten(value)} is not a date; use YYYY-MM-DD") from None


def _check_name(name: str, mapping: Mapping) -> None:
    if name in registry.builtin_names():
        raise CitykitError(f"{name!r} is a bundled dataset; import under another --name")
    existing = registry.all_datasets().get(name)
    if existing is not None:
        manifest = imported_dir(name) / MANIFEST_FILE
        previous = json.loads(manifest.read_text(encoding="utf-8")).get("source") if manifest.exists() else None
        if previous != mapping.source:
            raise CitykitError(
                f"dataset {name!r} already exists (source {previous or existing.source!r}); "
                f"a {mapping.source} export can only update a {mapping.source} dataset: choose another --name"
            )


def _import(
    file: Path, header: Header, mapping: Mapping, found: dict[str, str], name: str,
    dates: ImportDates, staging: Path, progress: Callable[[int], None] | None,
) -> ImportResult:  # fmt: skip
    findings = Findings()
    malformed = Malformed()
    digest = Digest(file)  # for the manifest, on the other core meanwhile
    # Pass 1 reads only the type columns: the standard spelling of each type needs all rows.
    counts = _type_counts(file, header, found)
    types = type_standards(counts["request_type"], mapping.request_type_map)
    findings.type_variants = {raw: std for raw, std in types.items() if raw != std}
    if "descriptor" in counts:  # reported, not changed: the flag column is about request types
        descriptors = type_standards(counts["descriptor"], {})
        findings.descriptor_variants = {raw: std for raw, std in descriptors.items() if raw != std}

    # Pass 2: every column, batch by batch, to staged rows (canonical columns, flags, row number, repeat key)
    plan = Plan(mapping, found, TypeTable.build(types, mapping), dates.window, mapping.bounds or WORLD)
    staged = staging / "staged.parquet"
    # the parser reads the next batch and the writer writes the last while this one is mapped
    with pq.ParquetWriter(staged, staged_schema(), compression=STAGED_COMPRESSION, use_dictionary=DICTIONARY) as out:
        writer = Background(out.write_table)
        try:
            for raw in prefetch(batches(file, header, sorted(set(found.values())), malformed)):
                writer.submit(canonical_batch(raw, plan, findings))
                if progress:
                    progress(findings.rows_read)
        finally:
            writer.close()
    findings.settle()
    pa.default_memory_pool().release_unused()  # the batches' memory, before DuckDB and the scorecard take theirs

    _check_readable(file, findings, malformed, mapping)
    final = staging / "service_requests.parquet"
    previous = imported_dir(name) / "service_requests.parquet"
    stats = finish(staged, previous if previous.exists() else None, final, canonical_schema(), staging, dates.window)
    staged.unlink()
    as_of = dates.as_of
    if as_of is None:
        if stats["newest"] is None:
            raise CitykitError(
                f"{file.name}: no request is dated on or before the extract date {dates.extract}; "
                "give the right date with --extract-date YYYY-MM-DD"
            )
        as_of = stats["newest"].date()
    validate_final(final, stats)

    flags = {c: int(stats[c]) for c in REQUEST_FLAGS}
    card_summary, card_text = score(final, as_of, mapping, stats["rows"], extract_date=dates.extract)
    result = ImportResult(
        name=name, source=mapping.source, folder=imported_dir(name), as_of=as_of, rows=int(stats["rows"]),
        rows_read=findings.rows_read, added=int(stats["added"]), updated=int(stats["updated"]), flags=flags,
        findings=findings, report="", scorecard_summary=card_summary, extract_date=dates.extract,
        extract_date_given=dates.extract_given, as_of_inferred=dates.as_of is None,
        after_extract=int(stats["after_extract"]),
    )  # fmt: skip
    result.report = render_report(
        result, mapping, file, header, malformed, stats, card_text, found=found, final=final, window=dates.window
    )
    publish(result, mapping, file, staging, sha256=digest.value())
    return result


def _check_readable(file: Path, f: Findings, malformed: Malformed, mapping: Mapping) -> None:
    total = f.rows_read + malformed.count
    if total == 0:
        raise CitykitError(f"{file.name} has a header but no rows: export the data again")
    if malformed.count > max(1, MAX_MALFORMED_SHARE * total):
        raise CitykitError(
            f"{file.name}: {malformed.count:,} of {total:,} rows do not split into the header's columns "
            f"({'; '.join(malformed.examples)}); check the delimiter and quoting"
        )
    if f.unreadable["created_at"] > MAX_UNREADABLE_DATES_SHARE * max(f.rows_read, 1):
        raise CitykitError(
            f"{file.name}: {f.unreadable['created_at']:,} created dates are not in the formats "
            f"{', '.join(mapping.timestamp_formats)} (e.g. {shorten(f.unreadable_examples['created_at'])}); "
            "set timestamps.formats in a custom mapping (--mapping FILE)"
        )
    unknown = {k: v for k, v in f.unmapped_status.items()}
    if unknown:
        shown = ", ".join(f"{shorten(k)} ({v:,} rows)" for k, v in Counter(unknown).most_common(8))
        raise CitykitError(
            f"{file.name}: statuses not in the {mapping.source} mapping: {shown}. Add them to status_map "
            f"(one of {', '.join(STATUSES)}) in a copy of {mapping.path.name if mapping.path else 'the mapping'} and pass --mapping FILE"
        )
    if f.rows_read - f.no_created == 0:
        raise CitykitError(f"{file.name}: no row has both a request id and a readable created date")
