"""Real 311 exports in, canonical anonymized tables out: `citykit data import SOURCE FILE`.

One declarative mapping per source (`citykit/resources/mappings/<source>.yml`: column map, status map,
timestamp formats and time zone, channel map, category clean-up, city bounds). The engine:

1. reads the header (encoding, delimiter, duplicate names) and recognises the source (`auto`);
2. streams the file in record batches (pyarrow.csv), maps each batch to the canonical columns,
   flags defects with the publisher's own `flag_requests` and blanks sensitive coordinates, and
   writes a staging parquet file incrementally (a 2 GB export never sits in memory);
3. with DuckDB, keeps one row per request id (the last in the file) and, when the dataset already
   exists, merges the new export into it by request id;
4. validates the result against the canonical schema, scores it, and only then moves it into
   `$CITYKIT_HOME/imported/<name>/` and registers it. Any failure leaves the previous state.

The raw file is only ever opened for reading. Personal, address and free-text columns are never
read into the tables (the address is read only as a hash, to count repeated requests).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from citykit import paths
from citykit.data import registry
from citykit.data.anonymize import flag_requests, normalise_type
from citykit.data.columns import CHANNELS, REQUEST_FLAGS, SERVICE_REQUESTS, STATUSES
from citykit.errors import CitykitError

MAPPINGS = "mappings"  # under citykit/resources/
IMPORTED = "imported"
REPORT_FILE = "import_report.md"
MANIFEST_FILE = "import.json"
BLOCK_SIZE = 8 << 20  # bytes of CSV per record batch (about 40,000 rows of a typical export)
MAX_MALFORMED_SHARE = 0.01  # more malformed rows than this: the file is not the layout we think
MAX_UNREADABLE_DATES_SHARE = 0.01  # more unreadable created dates than this: wrong timestamp format
SCORECARD_MAX_ROWS = 3_000_000  # larger imports point to `citykit data check NAME` instead
DELIMITERS = ",;\t|"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CANONICAL_INPUTS = [c for c in SERVICE_REQUESTS if not c.startswith("flag_") and c != "is_duplicate"]
REQUIRED = ("request_id", "created_at", "status", "agency", "request_type")
ZIP_PATTERN = re.compile(r"^\d{5}(-\d{4})?$")
OFFSET_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")

# What each flag means for the metrics (curriculum/standards/metrics.yml decides exclusions).
FLAG_MEANING = {
    "flag_closed_before_created": "excluded from time to close and on-time figures (the close date cannot be trusted)",
    "flag_placeholder_date": "excluded from time to close and on-time figures (a placeholder close date)",
    "flag_placeholder_coords": "0,0, a placeholder point or outside the city: kept in counts, left off maps and spatial joins",
    "flag_type_variant": "spelling variant mapped to its standard name: counted under that name",
    "flag_missing_neighborhood": "no neighborhood: in citywide figures, missing from every per-neighborhood figure",
}


# --- mappings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """A source's declarative mapping (one YAML file)."""

    source: str
    title: str
    city: str
    licence: str
    timezone: str
    columns: dict[str, str]  # canonical column -> export column
    optional: tuple[str, ...] = ()
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    timestamp_formats: tuple[str, ...] = ("ISO8601",)
    utc_offset: str = "ignore"  # "ignore": an offset is a label on local clock time; "convert": real UTC
    status_map: dict[str, str] = field(default_factory=dict)
    duplicate_statuses: tuple[str, ...] = ()
    duplicate: dict[str, Any] = field(default_factory=dict)  # {column, values} or {column, contains}
    channel_map: dict[str, str] = field(default_factory=dict)
    channel_default: str = "Other"
    request_type_map: dict[str, str] = field(default_factory=dict)
    sensitive_request_types: tuple[str, ...] = ()
    bounds: tuple[float, float, float, float] | None = None  # min_lon, min_lat, max_lon, max_lat
    placeholder_points: tuple[tuple[float, float], ...] = ()
    defects: dict[str, str] = field(default_factory=dict)  # address / zip columns, read for counting only
    placeholder_addresses: tuple[str, ...] = ()  # e.g. "Not associated with a specific address"
    personal_columns: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def required(self) -> list[str]:
        return [c for c in self.columns if c not in self.optional]

    def resolve(self, header: Sequence[str]) -> dict[str, str]:
        """Canonical column -> the header's own spelling, for the columns this header has."""
        by_key = {_header_key(name): name for name in header}
        found = {}
        for canonical, name in {**self.columns, **{f"defect:{k}": v for k, v in self.defects.items()}}.items():
            for candidate in (name, *self.alternatives.get(canonical, ())):
                if _header_key(candidate) in by_key:
                    found[canonical] = by_key[_header_key(candidate)]
                    break
        if self.duplicate.get("column") and _header_key(self.duplicate["column"]) in by_key:
            found["defect:duplicate"] = by_key[_header_key(self.duplicate["column"])]
        return found

    def required_columns(self) -> list[str]:
        return [self.columns[c] for c in self.required]

    def missing(self, header: Sequence[str]) -> list[str]:
        found = self.resolve(header)
        return [self.columns[c] for c in self.required if c not in found]


def _header_key(name: str) -> str:
    """Headers compare ignoring case, spaces and punctuation ("Unique Key" == "unique_key")."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def mapping_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(paths.resource(MAPPINGS).glob("*.yml"))}


def load_mapping(source: str | Path) -> Mapping:
    """A mapping by source name (`baltimore`) or from a YAML file path; problems raise `CitykitError`."""
    path = Path(source)
    if not path.suffix:
        files = mapping_files()
        if str(source) not in files:
            raise CitykitError(f"unknown source {source!r}; choose one of: auto, {', '.join(files)}")
        path = files[str(source)]
    if not path.exists():
        raise CitykitError(f"mapping file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise CitykitError(f"mapping {path.name} is not valid YAML: {str(error).splitlines()[0]}") from None
    return _mapping(raw, path)


def _mapping(raw: dict[str, Any], path: Path) -> Mapping:
    columns = raw.get("columns") or {}
    unknown = [c for c in columns if c not in CANONICAL_INPUTS]
    if unknown:
        raise CitykitError(f"mapping {path.name}: unknown canonical columns {', '.join(unknown)}; use: {', '.join(CANONICAL_INPUTS)}")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise CitykitError(f"mapping {path.name}: needs columns for {', '.join(missing)}")
    statuses = raw.get("status_map") or {}
    bad = {k: v for k, v in statuses.items() if v not in STATUSES}
    if bad:
        raise CitykitError(f"mapping {path.name}: status_map values must be one of {', '.join(STATUSES)}; got {bad}")
    channels = {**(raw.get("channel_map") or {}), "(default)": raw.get("channel_default", "Other")}
    bad = {k: v for k, v in channels.items() if v not in CHANNELS}
    if bad:
        raise CitykitError(f"mapping {path.name}: channel values must be one of {', '.join(CHANNELS)}; got {bad}")
    stamps = raw.get("timestamps") or {}
    if stamps.get("utc_offset", "ignore") not in ("ignore", "convert"):
        raise CitykitError(f"mapping {path.name}: timestamps.utc_offset must be ignore or convert")
    bounds = raw.get("bounds")
    return Mapping(
        source=str(raw.get("source") or path.stem),
        title=str(raw.get("title") or path.stem),
        city=str(raw.get("city") or ""),
        licence=str(raw.get("licence") or ""),
        timezone=str(raw.get("timezone") or "UTC"),
        columns={str(k): str(v) for k, v in columns.items()},
        optional=tuple(raw.get("optional") or ()),
        alternatives={k: tuple(v) for k, v in (raw.get("alternatives") or {}).items()},
        timestamp_formats=tuple(stamps.get("formats") or ("ISO8601",)),
        utc_offset=stamps.get("utc_offset", "ignore"),
        status_map={str(k): str(v) for k, v in statuses.items()},
        duplicate_statuses=tuple(raw.get("duplicate_statuses") or ()),
        duplicate=dict(raw.get("duplicate") or {}),
        channel_map={str(k): str(v) for k, v in (raw.get("channel_map") or {}).items()},
        channel_default=str(raw.get("channel_default", "Other")),
        request_type_map={str(k): str(v) for k, v in (raw.get("request_type_map") or {}).items()},
        sensitive_request_types=tuple(raw.get("sensitive_request_types") or ()),
        bounds=tuple(float(b) for b in bounds) if bounds else None,  # type: ignore[arg-type]
        placeholder_points=tuple(tuple(float(x) for x in p) for p in raw.get("placeholder_points") or ()),  # type: ignore[misc]
        defects={k: str(v) for k, v in (raw.get("defects") or {}).items() if v},
        placeholder_addresses=tuple(raw.get("placeholder_addresses") or ()),
        personal_columns=tuple(raw.get("personal_columns") or ()),
        path=path,
    )


def detect_source(header: Sequence[str]) -> Mapping:
    """The mapping whose required columns the header has (the one matching most columns wins)."""
    candidates = []
    for name in mapping_files():
        mapping = load_mapping(name)
        if not mapping.missing(header):
            candidates.append((len(mapping.resolve(header)), name, mapping))
    if not candidates:
        needs = "; ".join(f"{name}: {', '.join(load_mapping(name).required_columns())}" for name in mapping_files())
        shown = ", ".join(header[:12]) + (" ..." if len(header) > 12 else "")
        raise CitykitError(
            f"the header ({shown}) matches no known source. Each source needs these columns: {needs}. "
            "For another layout, copy a file from citykit/resources/mappings/ and pass it with --mapping FILE"
        )
    return max(candidates, key=lambda c: c[0])[2]


# --- reading the file -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    columns: list[str]  # as written (duplicates kept)
    names: list[str]  # unique names given to pyarrow ("X", "X.2" for a repeated "X")
    delimiter: str
    encoding: str


def read_header(path: Path) -> Header:
    """The header row, its delimiter and encoding; empty or unreadable files raise `CitykitError`."""
    path = Path(path)
    if not path.is_file():
        raise CitykitError(f"{path} is not a file")
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    if not head.strip():
        raise CitykitError(f"{path.name} is empty: export the data again (no header, no rows)")
    encoding = _encoding(path)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text.splitlines() else ""
    delimiter = max(DELIMITERS, key=lambda d: first.count(d)) if any(d in first for d in DELIMITERS) else ","
    columns = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    columns = [c.strip() for c in columns]
    names, seen = [], Counter()
    for column in columns:
        seen[column] += 1
        names.append(column if seen[column] == 1 else f"{column}.{seen[column]}")
    return Header(columns, names, delimiter, encoding)


def _encoding(path: Path) -> str:
    """utf-8 when every byte decodes as UTF-8, else latin-1 (Windows exports); checked in 16 MB steps."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(16 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


@dataclass
class _Malformed:
    """Rows pyarrow could not split into the header's fields (e.g. a truncated last line)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def handler(self, row: Any) -> str:
        self.count += 1
        if len(self.examples) < 3:
            where = f"row {row.number}" if row.number is not None else "a row"
            self.examples.append(f"{where}: {row.actual_columns} fields, expected {row.expected_columns}")
        return "skip"


def stream(path: Path, header: Header, columns: Sequence[str], malformed: _Malformed) -> Iterator[pd.DataFrame]:
    """The chosen columns of the file as pandas batches of strings (missing values NaN)."""
    read = pacsv.ReadOptions(column_names=header.names, skip_rows=1, encoding=header.encoding, block_size=BLOCK_SIZE)
    parse = pacsv.ParseOptions(
        delimiter=header.delimiter, newlines_in_values=True, invalid_row_handler=malformed.handler
    )
    convert = pacsv.ConvertOptions(
        include_columns=list(columns),
        column_types={c: pa.string() for c in columns},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            if batch.num_rows:
                yield batch.to_pandas()
    except pa.ArrowInvalid as error:
        message = str(error).splitlines()[0]
        raise CitykitError(f"{path.name} cannot be read as CSV: {message}") from None


# --- mapping a batch ------------------------------------------------------------------------------


@dataclass
class Findings:
    """What the import found, counted over the whole file."""

    rows_read: int = 0
    unreadable: Counter = field(default_factory=Counter)  # canonical timestamp column -> rows
    unreadable_examples: dict[str, str] = field(default_factory=dict)
    no_created: int = 0
    unmapped_status: Counter = field(default_factory=Counter)
    channel_default: Counter = field(default_factory=Counter)
    missing_required: Counter = field(default_factory=Counter)  # agency / request_type -> rows set to "Unknown"
    invalid_district: Counter = field(default_factory=Counter)
    zip_junk: Counter = field(default_factory=Counter)
    zip_checked: int = 0
    zero_coords: int = 0
    placeholder_points: Counter = field(default_factory=Counter)
    outside_city: int = 0
    sensitive_blanked: int = 0
    marked_duplicate: int = 0
    clock_times: Counter = field(default_factory=Counter)  # created time of day (seconds) -> rows
    type_variants: dict[str, str] = field(default_factory=dict)  # raw spelling -> standard name
    descriptor_variants: dict[str, str] = field(default_factory=dict)  # reported only, kept as exported


def type_standards(counts: Counter, explicit: dict[str, str]) -> dict[str, str]:
    """Raw spelling -> standard request type: the mapping's explicit names first, then the most
    common spelling (spaces collapsed) among spellings equal but for case, spacing and punctuation."""
    explicit_by_key = {normalise_type(k): v for k, v in explicit.items()}
    cleaned = {raw: explicit_by_key.get(normalise_type(raw), " ".join(raw.split())) for raw in counts}
    weight: Counter = Counter()
    for raw, n in counts.items():
        weight[cleaned[raw]] += n
    best: dict[str, str] = {}
    for spelling, n in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])):
        best.setdefault(normalise_type(spelling), spelling)
    return {raw: best[normalise_type(cleaned[raw])] for raw in counts}


def parse_timestamps(values: pd.Series, mapping: Mapping) -> pd.Series:
    """Export timestamps as naive city-local datetime64[us] (unreadable values NaT)."""
    import pyarrow.compute as pc

    arrow = pc.utf8_trim_whitespace(pa.array(values.astype(object), type=pa.string(), from_pandas=True))
    if mapping.utc_offset == "ignore":
        arrow = pc.replace_substring_regex(arrow, OFFSET_SUFFIX.pattern, "")
    text = pd.Series(arrow.to_pandas(), index=values.index, dtype="string")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    for fmt in mapping.timestamp_formats:
        todo = out.isna() & text.notna()
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=mapping.utc_offset == "convert")
        if mapping.utc_offset == "convert":
            parsed = parsed.dt.tz_convert(mapping.timezone).dt.tz_localize(None)
        out[todo] = parsed.astype("datetime64[us]")
    return out


def canonical_batch(
    raw: pd.DataFrame, mapping: Mapping, found: dict[str, str], types: dict[str, str], findings: Findings
) -> pd.DataFrame:
    """One batch of the export as canonical columns (before flags); counts what it finds."""
    n = len(raw)
    col = lambda name: raw[found[name]] if name in found else pd.Series(pd.NA, index=raw.index, dtype="string")  # noqa: E731
    text = lambda name: col(name).astype("string").str.strip().replace("", pd.NA)  # noqa: E731
    out = pd.DataFrame(index=raw.index)
    out["request_id"] = text("request_id")

    for stamp in ("created_at", "closed_at", "due_at"):
        given = text(stamp)
        out[stamp] = parse_timestamps(given, mapping)
        bad = given.notna() & out[stamp].isna()
        if bad.any():
            findings.unreadable[stamp] += int(bad.sum())
            findings.unreadable_examples.setdefault(stamp, str(given[bad].iloc[0]))

    raw_status = text("status")
    status = raw_status.map(mapping.status_map)
    unknown = raw_status.notna() & status.isna()
    findings.unmapped_status.update(raw_status[unknown].tolist())
    findings.unmapped_status.update(["(empty)"] * int(raw_status.isna().sum()))
    out["status"] = status
    out["is_duplicate"] = _duplicates(raw, raw_status, mapping, found)

    for name in ("agency", "request_type"):
        values = text(name)
        findings.missing_required[name] += int(values.isna().sum())
        out[name] = values.fillna("Unknown")
    out["request_type"] = out["request_type"].map(lambda v: types.get(v, v))  # explicit names and spacing
    out["descriptor"] = text("descriptor")

    raw_channel = text("channel")
    channel = raw_channel.map(mapping.channel_map)
    findings.channel_default.update(raw_channel[channel.isna()].fillna("(empty)").tolist())
    out["channel"] = channel.fillna(mapping.channel_default)

    out["neighborhood"] = text("neighborhood")
    district = pd.to_numeric(text("council_district"), errors="coerce")
    valid = district.notna() & district.ge(1) & district.mod(1).eq(0)
    findings.invalid_district.update(text("council_district")[text("council_district").notna() & ~valid].tolist())
    out["council_district"] = district.where(valid).astype("Int64")
    out["latitude"] = pd.to_numeric(text("latitude"), errors="coerce").astype("float64")
    out["longitude"] = pd.to_numeric(text("longitude"), errors="coerce").astype("float64")
    out["parent_request_id"] = text("parent_request_id")

    _count_defects(raw, out, mapping, found, findings)
    findings.rows_read += n
    return out


def _duplicates(raw: pd.DataFrame, status: pd.Series, mapping: Mapping, found: dict[str, str]) -> np.ndarray:
    marked = status.isin(mapping.duplicate_statuses).fillna(False).to_numpy(bool).copy()
    if "defect:duplicate" in found:
        values = raw[found["defect:duplicate"]].astype("string").str.strip()
        if "values" in mapping.duplicate:
            marked = marked | values.isin([str(v) for v in mapping.duplicate["values"]]).fillna(False).to_numpy(bool)
        if "contains" in mapping.duplicate:
            hit = values.str.contains(str(mapping.duplicate["contains"]), case=False, regex=False)
            marked = marked | hit.fillna(False).to_numpy(bool)
    return marked


def _count_defects(raw: pd.DataFrame, out: pd.DataFrame, mapping: Mapping, found: dict[str, str], f: Findings) -> None:
    lat, lon = out["latitude"], out["longitude"]
    zero = lat.eq(0) & lon.eq(0)
    f.zero_coords += int(zero.sum())
    at_point = pd.Series(False, index=out.index)
    for p_lat, p_lon in mapping.placeholder_points:
        hit = lat.eq(p_lat) & lon.eq(p_lon)
        f.placeholder_points[f"{p_lat:g},{p_lon:g}"] += int(hit.sum())
        at_point |= hit
    if mapping.bounds:
        min_lon, min_lat, max_lon, max_lat = mapping.bounds
        outside = lat.notna() & lon.notna() & ~(lat.between(min_lat, max_lat) & lon.between(min_lon, max_lon))
        f.outside_city += int((outside & ~zero & ~at_point).sum())
    if "defect:zip" in found:
        zips = raw[found["defect:zip"]].astype("string").str.strip()
        given = zips.notna() & zips.ne("")
        junk = given & ~zips.str.fullmatch(ZIP_PATTERN).fillna(False)
        f.zip_checked += int(given.sum())
        f.zip_junk.update(zips[junk].tolist())
    f.marked_duplicate += int(out["is_duplicate"].sum())
    created = out["created_at"].dropna()
    seconds = created.dt.hour * 3600 + created.dt.minute * 60 + created.dt.second
    f.clock_times.update(seconds.value_counts().to_dict())  # seconds after midnight -> rows


def _repeat_key(raw: pd.DataFrame, out: pd.DataFrame, found: dict[str, str], mapping: Mapping) -> np.ndarray:
    """A hash of (address, request type, created day): rows sharing one are likely repeats."""
    place = raw[found["defect:address"]].astype("string") if "defect:address" in found else (
        out["latitude"].astype("string") + "," + out["longitude"].astype("string"))  # fmt: skip
    place = place.mask(place.isin(mapping.placeholder_addresses))
    day = out["created_at"].dt.strftime("%Y-%m-%d")
    frame = pd.DataFrame({"place": place.fillna(""), "type": out["request_type"], "day": day.fillna("")})
    key = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    located = place.notna().to_numpy()
    return np.where(located, key, np.uint64(0)).astype(np.uint64)


# --- the import -----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What `import_requests` did, and the report it printed and saved."""

    name: str
    source: str
    folder: Path
    as_of: dt.date
    rows: int  # rows in the dataset after the import
    rows_read: int
    added: int
    updated: int
    flags: dict[str, int]
    findings: Findings
    report: str
    scorecard_summary: str = ""

    def __str__(self) -> str:
        return self.report


def imported_dir(name: str) -> Path:
    return paths.citykit_home() / IMPORTED / name


def canonical_schema() -> pa.Schema:
    """The arrow schema of the published service requests (with pandas metadata, as the bundled city)."""
    dtypes = {c: "str" for c in SERVICE_REQUESTS}
    dtypes.update({c: "datetime64[us]" for c in ("created_at", "closed_at", "due_at")})
    dtypes.update({"council_district": "Int64", "latitude": "float64", "longitude": "float64", "is_duplicate": "bool"})
    dtypes.update({flag: "bool" for flag in REQUEST_FLAGS})
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    return pa.Schema.from_pandas(empty, preserve_index=False)


def import_requests(
    source: str,
    file: Path | str,
    name: str | None = None,
    as_of: dt.date | str | None = None,
    mapping_file: Path | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a 311 export as dataset `name` (default: the source's name), or update it.

    source: a mapping name, or "auto" to recognise it from the header; `mapping_file` overrides
    both. as_of: the dataset's as-of date (default: the newest timestamp in the data).
    progress: called with the number of rows read so far after each batch.
    """
    file = Path(file)
    header = read_header(file)
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
        raise CitykitError(f"{file.name} has the column {', '.join(used_twice)} more than once; which one holds the data is ambiguous")

    name = name or mapping.source
    _check_name(name, mapping)
    try:
        as_of_date = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    except ValueError:
        raise CitykitError(f"--as-of {as_of!r} is not a date; use YYYY-MM-DD") from None

    home = paths.citykit_home() / IMPORTED
    home.mkdir(parents=True, exist_ok=True)
    staging = home / f".staging-{name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        result = _import(file, header, mapping, found, name, as_of_date, staging, progress)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def builtin_names() -> set[str]:
    """Datasets bundled with the kit (datasets/registry.yml): imports and publishes never replace them."""
    path = registry.builtin_registry_file()
    content = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return set((content or {}).get("datasets") or {})


def _check_name(name: str, mapping: Mapping) -> None:
    if not NAME_PATTERN.match(name):
        raise CitykitError(f"dataset name {name!r}: use lower-case letters, digits and _ (starting with a letter)")
    if name in builtin_names():
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
    as_of: dt.date | None, staging: Path, progress: Callable[[int], None] | None,
) -> ImportResult:  # fmt: skip
    from citykit.standards.privacy import blank_sensitive_coordinates

    findings = Findings()
    malformed = _Malformed()
    # Pass 1 reads only the type columns: the standard spelling of each type needs all rows.
    counts: dict[str, Counter] = {c: Counter() for c in ("request_type", "descriptor") if c in found}
    for batch in stream(file, header, sorted({found[c] for c in counts}), _Malformed()):
        for column, counter in counts.items():
            values = batch[found[column]].str.strip()
            counter.update(values[values.ne("").fillna(False)].value_counts().to_dict())
    types = type_standards(counts["request_type"], mapping.request_type_map)
    findings.type_variants = {raw: std for raw, std in types.items() if raw != std}
    if "descriptor" in counts:  # reported, not changed: the flag column is about request types
        descriptors = type_standards(counts["descriptor"], {})
        findings.descriptor_variants = {raw: std for raw, std in descriptors.items() if raw != std}
    standard = sorted(set(types.values()))
    bounds = mapping.bounds or (-180.0, -90.0, 180.0, 90.0)

    schema = canonical_schema()
    staged_schema = schema.append(pa.field("_row", pa.int64())).append(pa.field("_repeat", pa.uint64()))
    staged = staging / "staged.parquet"
    row = 0
    with pq.ParquetWriter(staged, staged_schema) as writer:
        for raw in stream(file, header, sorted(set(found.values())), malformed):
            frame = canonical_batch(raw, mapping, found, types, findings)
            variants = frame["request_type"].ne(raw[found["request_type"]].astype("string").str.strip()).fillna(False)
            keep = frame["created_at"].notna() & frame["request_id"].notna()
            findings.no_created += int((~keep).sum())
            frame = flag_requests(frame[keep], standard, bounds)  # flags from raw values; coordinates rounded
            frame["flag_type_variant"] = frame["flag_type_variant"].to_numpy() | variants[keep].to_numpy()
            frame, blanked = blank_sensitive_coordinates(frame)
            extra = frame["request_type"].isin(mapping.sensitive_request_types).to_numpy()
            frame.loc[extra, ["latitude", "longitude"]] = np.nan
            findings.sensitive_blanked += blanked + int(extra.sum())
            frame = frame[list(SERVICE_REQUESTS)]
            frame["_row"] = np.arange(row, row + len(raw))[keep.to_numpy()]
            frame["_repeat"] = _repeat_key(raw[keep], frame, found, mapping)
            row += len(raw)
            writer.write_table(pa.Table.from_pandas(frame, schema=staged_schema, preserve_index=False))
            if progress:
                progress(findings.rows_read)

    _check_readable(file, findings, malformed, mapping)
    final = staging / "service_requests.parquet"
    previous = imported_dir(name) / "service_requests.parquet"
    stats = _finish(staged, previous if previous.exists() else None, final, schema, staging)
    staged.unlink()
    if as_of is None:
        as_of = stats["newest"].date()
    _validate(final)

    flags = {c: int(stats[c]) for c in REQUEST_FLAGS}
    card_summary, card_text = _score(final, as_of, mapping, stats["rows"])
    result = ImportResult(
        name=name, source=mapping.source, folder=imported_dir(name), as_of=as_of, rows=int(stats["rows"]),
        rows_read=findings.rows_read, added=int(stats["added"]), updated=int(stats["updated"]), flags=flags,
        findings=findings, report="", scorecard_summary=card_summary,
    )  # fmt: skip
    result.report = render_report(result, mapping, file, header, malformed, stats, card_text)
    _publish(result, mapping, file, staging)
    return result


def _check_readable(file: Path, f: Findings, malformed: _Malformed, mapping: Mapping) -> None:
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
            f"{', '.join(mapping.timestamp_formats)} (e.g. {f.unreadable_examples['created_at']!r}); "
            "set timestamps.formats in a custom mapping (--mapping FILE)"
        )
    unknown = {k: v for k, v in f.unmapped_status.items()}
    if unknown:
        shown = ", ".join(f"{k!r} ({v:,} rows)" for k, v in Counter(unknown).most_common(8))
        raise CitykitError(
            f"{file.name}: statuses not in the {mapping.source} mapping: {shown}. Add them to status_map "
            f"(one of {', '.join(STATUSES)}) in a copy of {mapping.path.name if mapping.path else 'the mapping'} and pass --mapping FILE"
        )
    if f.rows_read - f.no_created == 0:
        raise CitykitError(f"{file.name}: no row has both a request id and a readable created date")


def _duckdb(staging: Path):
    from citykit.data.load import connect

    con = connect()
    con.execute("SET memory_limit = '512MB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET temp_directory = '{(staging / 'tmp').as_posix()}'")
    return con


def _finish(staged: Path, previous: Path | None, final: Path, schema: pa.Schema, staging: Path) -> dict[str, Any]:
    """One row per request id (the file's last), merged into `previous` by id; written to `final`."""
    con = _duckdb(staging)
    con.execute(
        f"CREATE VIEW new AS SELECT * FROM read_parquet('{staged.as_posix()}') "
        "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY _row DESC) = 1"
    )
    columns = ", ".join(f'"{c}"' for c in SERVICE_REQUESTS)
    if previous is not None:
        con.execute(f"CREATE VIEW old AS SELECT {columns} FROM read_parquet('{previous.as_posix()}')")
        merged = f"SELECT {columns} FROM new UNION ALL SELECT {columns} FROM old ANTI JOIN new USING (request_id)"
        updated = con.execute("SELECT count(*) FROM new SEMI JOIN old USING (request_id)").fetchall()[0][0]
    else:
        merged, updated = f"SELECT {columns} FROM new", 0
    new_rows = con.execute("SELECT count(*) FROM new").fetchall()[0][0]
    staged_rows, repeats = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE _repeat <> 0) - count(DISTINCT _repeat) FILTER (WHERE _repeat <> 0) "
        f"FROM read_parquet('{staged.as_posix()}')"
    ).fetchall()[0]
    reader = con.sql(f"SELECT * FROM ({merged}) ORDER BY created_at, request_id").to_arrow_reader(200_000)
    with pq.ParquetWriter(final, schema) as writer:
        for batch in reader:
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))
    flags = ", ".join(f'count(*) FILTER (WHERE "{c}") AS "{c}"' for c in REQUEST_FLAGS)
    row = con.execute(
        f"SELECT count(*) AS rows, greatest(max(created_at), max(closed_at) FILTER (WHERE closed_at <= "
        f"(SELECT max(created_at) FROM read_parquet('{final.as_posix()}')) + INTERVAL 366 DAY)) AS newest, {flags} "
        f"FROM read_parquet('{final.as_posix()}')"
    ).fetchall()[0]
    names = ["rows", "newest", *REQUEST_FLAGS]
    stats = dict(zip(names, row))
    stats.update(added=new_rows - updated, updated=updated, duplicate_ids=staged_rows - new_rows, repeats=repeats)
    con.close()
    shutil.rmtree(staging / "tmp", ignore_errors=True)
    return stats


def _validate(final: Path) -> None:
    """The canonical schema, batch by batch (request ids are unique by construction)."""
    from citykit.data.schema import validate

    for batch in pq.ParquetFile(final).iter_batches(batch_size=500_000):
        validate(batch.to_pandas(), "service_requests")


def _score(final: Path, as_of: dt.date, mapping: Mapping, rows: int) -> tuple[str, str]:
    from citykit.data.quality import scorecard

    if rows > SCORECARD_MAX_ROWS:
        return "", "(large import: run `citykit data check NAME` for the full scorecard)"
    card = scorecard(pd.read_parquet(final), "service_requests", as_of, bounds=mapping.bounds)
    frame = card.to_frame()
    lines = [f"| {r.dimension} | {r.name} | {r.failing:,} | {r.share:.2%} | {r.result} |" for r in frame.itertuples()
             if r.value is None or pd.isna(r.value)]  # fmt: skip
    lines += [f"| {r.dimension} | {r.name} | {r.value:.1f} days |  | {r.result} |" for r in frame.itertuples()
              if r.value is not None and not pd.isna(r.value)]  # fmt: skip
    table = "| dimension | check | rows | share | gate |\n|---|---|---:|---:|---|\n" + "\n".join(lines)
    return card.summary(), f"{table}\n\n{card.summary()}"


def _publish(result: ImportResult, mapping: Mapping, file: Path, staging: Path) -> None:
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
        "as_of": result.as_of.isoformat(),
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
        registry.register(dataset_entry(result.name, result.as_of, mapping, target))
    except BaseException:
        target.rename(staging)
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def dataset_entry(name: str, as_of: dt.date, mapping: Mapping, folder: Path) -> registry.Dataset:
    tables = tuple(t for t in registry.TABLES if (folder / f"{t}.parquet").exists())
    return registry.Dataset(
        name=name, as_of=as_of, kind="parquet", location=f"{IMPORTED}/{name}",
        title=f"{mapping.city or mapping.title} 311 (imported)", source=mapping.title,
        licence=mapping.licence, synthetic=False, tables=tables,
    )  # fmt: skip


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- the report -----------------------------------------------------------------------------------


def render_report(
    result: ImportResult, mapping: Mapping, file: Path, header: Header, malformed: _Malformed,
    stats: dict[str, Any], scorecard_text: str,
) -> str:  # fmt: skip
    f = result.findings
    rows = max(result.rows, 1)
    lines = [
        f"# Import report: {result.name}",
        "",
        f"- Source: {mapping.title} (mapping `{mapping.path.name if mapping.path else mapping.source}`)",
        f"- File: {file.name} ({header.encoding}, delimiter {header.delimiter!r}); the file was only read, never changed",
        f"- Rows read: {f.rows_read:,}; dataset now holds {result.rows:,} requests "
        f"({result.added:,} added, {result.updated:,} updated by request id)",
        f"- As-of date: {result.as_of} (every \"now\" in an analysis of this dataset)",
        "- Anonymized: personal, address and free-text columns not imported "
        f"({', '.join(mapping.personal_columns) or 'none listed'}); coordinates rounded to about 100 m; "
        f"{f.sensitive_blanked:,} requests of sensitive types published without coordinates",
        "",
        "## Flags (rows kept, flagged, counted)",
        "",
        "| flag | rows | share | what it means for the metrics |",
        "|---|---:|---:|---|",
    ]
    for flag, n in result.flags.items():
        lines.append(f"| {flag} | {n:,} | {n / rows:.2%} | {FLAG_MEANING[flag]} |")
    lines += ["", "## Other findings", ""]
    located = f"{f.zero_coords:,} at 0,0"
    points = ", ".join(f"{n:,} at {p}" for p, n in f.placeholder_points.items() if n)
    lines.append(f"- Placeholder coordinates: {located}{'; ' + points if points else ''}; "
                 f"{f.outside_city:,} other points outside the city's bounds (all in flag_placeholder_coords)")  # fmt: skip
    if f.type_variants:
        shown = "; ".join(f"{raw!r} -> {std!r}" for raw, std in list(f.type_variants.items())[:6])
        lines.append(f"- Request type spellings mapped to a standard name ({len(f.type_variants)}): {shown}")
    else:
        lines.append("- Request type spellings: no variants found")
    if f.descriptor_variants:
        shown = "; ".join(f"{raw!r} ~ {std!r}" for raw, std in list(f.descriptor_variants.items())[:6])
        lines.append(f"- Descriptor spellings that differ only in case or spacing ({len(f.descriptor_variants)}, "
                     f"kept as exported; group them before counting by descriptor): {shown}")  # fmt: skip
    lines.append(f"- Marked duplicates (is_duplicate, from the export's own marks): {f.marked_duplicate:,}; "
                 "excluded from time-to-close, the parent request counts")  # fmt: skip
    lines.append(f"- Rows repeating a request id: {stats['duplicate_ids']:,} (the last row in the file kept)")
    lines.append(f"- Likely repeats (same address, type and day; not marked, not removed): {stats['repeats']:,}")
    if f.zip_checked:
        junk = sum(f.zip_junk.values())
        lines.append(f"- ZIP codes that are not 5-digit ZIPs: {junk:,} of {f.zip_checked:,} "
                     f"(e.g. {', '.join(repr(z) for z, _ in f.zip_junk.most_common(3)) or 'none'}); ZIPs are not published")  # fmt: skip
    if f.channel_default:
        shown = ", ".join(f"{k!r} {v:,}" for k, v in f.channel_default.most_common(5))
        lines.append(f"- Channels not in the canonical list, published as {mapping.channel_default}: {shown}")
    for name, n in f.missing_required.items():
        if n:
            lines.append(f"- Missing {name}: {n:,} rows published as 'Unknown'")
    if f.invalid_district:
        lines.append(f"- Council districts that are not a district number (published empty): {sum(f.invalid_district.values()):,} "
                     f"(e.g. {', '.join(repr(v) for v, _ in f.invalid_district.most_common(3))})")  # fmt: skip
    for stamp, n in f.unreadable.items():
        lines.append(f"- Unreadable {stamp} values: {n:,} (e.g. {f.unreadable_examples[stamp]!r}); left empty")
    if f.no_created:
        lines.append(f"- Rows without a request id or a readable created date, not imported: {f.no_created:,}")
    if malformed.count:
        lines.append(f"- Malformed rows skipped: {malformed.count:,} ({'; '.join(malformed.examples)})")
    if f.clock_times:
        seconds, n = f.clock_times.most_common(1)[0]
        clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        share = n / max(sum(f.clock_times.values()), 1)
        if share >= 0.02:
            lines.append(f"- {share:.1%} of requests were created at exactly {clock}: date-only stamps or a "
                         "time-zone shift; hour-of-day figures will mislead")  # fmt: skip
    lines += ["", "## Quality scorecard", "", scorecard_text, ""]
    return "\n".join(lines)
