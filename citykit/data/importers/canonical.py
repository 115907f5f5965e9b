"""One batch of an export as the canonical `service_requests` columns: timestamps, statuses,
types, channels, duplicates, the publisher's flags; what the batch holds (defects, variants) is
counted in `Findings`. Batches are Arrow record batches, and every step is an Arrow or numpy
operation over the whole batch (`vector`); a request type's standard name, variant flag,
sensitivity and cap are decided once per spelling (`TypeTable`)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from citykit.data.anonymize import COORDINATE_DECIMALS, PLACEHOLDER_YEAR, map_request_types, normalise_type
from citykit.data.columns import REQUEST_FLAGS, SERVICE_REQUESTS
from citykit.data.importers import vector
from citykit.data.importers.mapping import Mapping
from citykit.data.importers.personal import ID_COLUMNS, TEXT_CAP, TEXT_COLUMNS, cap_id, cap_text
from citykit.standards.sensitive import blank_sensitive_coordinates

ZIP_PATTERN = re.compile(r"^\d{5}(-\d{4})?$")
STAMPS = ("created_at", "closed_at", "due_at")
UNKNOWN = "Unknown"  # an empty agency or request type is published as this

# The plausible range of an export's timestamps: from PLAUSIBLE_START (311 systems began in the late
# 1990s) to the end of the extract date; due dates may lie up to DUE_YEARS_AHEAD years after it.
PLAUSIBLE_START = dt.date(1990, 1, 1)
DUE_YEARS_AHEAD = 5
PLACEHOLDER = pd.Timestamp(1900, 1, 1)  # the exports' own stand-in for "no real date"
# Timestamps analysis tools can hold (pandas' nanosecond range): a date past it (9999-12-31) is never
# published as a timestamp.
PUBLISHABLE = (pd.Timestamp(1678, 1, 1), pd.Timestamp(2262, 1, 1))


@dataclass(frozen=True)
class DateWindow:
    """The plausible range of each timestamp column, [start, end) in city-local time."""

    start: dt.date
    extract: dt.date  # created and closed end with this day

    @property
    def end(self) -> dt.date:
        return self.extract + dt.timedelta(days=1)

    @property
    def due_end(self) -> dt.date:
        return self.end + dt.timedelta(days=366 * DUE_YEARS_AHEAD)

    def bounds(self, stamp: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        return pd.Timestamp(self.start), pd.Timestamp(self.due_end if stamp == "due_at" else self.end)

    def describe(self) -> str:
        return (
            f"{self.start} to {self.extract} (the extract date) for created and closed dates, "
            f"to {self.due_end - dt.timedelta(days=1)} for due dates"
        )


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
    clock_times: Counter = field(default_factory=Counter)  # created time of day (seconds) -> rows (see settle)
    type_variants: dict[str, str] = field(default_factory=dict)  # raw spelling -> standard name
    descriptor_variants: dict[str, str] = field(default_factory=dict)  # reported only, kept as exported
    implausible: Counter = field(default_factory=Counter)  # timestamp column -> values outside the window
    implausible_examples: dict[str, str] = field(default_factory=dict)
    unpublishable: Counter = field(default_factory=Counter)  # timestamp column -> values no tool can hold
    text_cut: Counter = field(default_factory=Counter)  # canonical text column -> values cut to the cap
    # rows per second of the day, and when each second was first counted (batch, place in that batch's
    # value_counts): clock_times is built from them once, in the order a Counter updated batch by batch has
    _clock: np.ndarray = field(default_factory=lambda: np.zeros(86_400, dtype=np.int64), repr=False)
    _clock_rank: np.ndarray = field(default_factory=lambda: np.full(86_400, np.iinfo(np.int64).max), repr=False)
    _batches: int = field(default=0, repr=False)

    def count_clock(self, seconds: np.ndarray) -> None:
        """Count one batch's created times of day (seconds after midnight)."""
        found = pd.Series(seconds).value_counts()
        where = found.index.to_numpy(dtype=np.int64)
        first = self._clock[where] == 0
        self._clock_rank[where[first]] = self._batches * 86_400 + np.flatnonzero(first)
        self._clock[where] += found.to_numpy()
        self._batches += 1

    def settle(self) -> None:
        """`clock_times` from the batch counts (seconds in the order they were first counted)."""
        seen = np.flatnonzero(self._clock)
        order = seen[np.argsort(self._clock_rank[seen], kind="stable")]
        self.clock_times = Counter(dict(zip(order.tolist(), self._clock[order].tolist(), strict=True)))


def type_standards(counts: Counter, explicit: dict[str, str]) -> dict[str, str]:
    """Raw spelling -> standard request type: the mapping's explicit names first, then the most
    common spelling (spaces collapsed) among spellings equal but for case, spacing and punctuation."""
    explicit_by_key = {normalise_type(k): v for k, v in explicit.items()}
    cleaned = {raw: explicit_by_key.get(normalise_type(raw), " ".join(raw.split())) for raw in counts}
    weight: Counter = Counter()
    for raw, n in counts.items():
        weight[cleaned[raw]] += n
    best: dict[str, str] = {}
    for spelling, _n in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])):
        best.setdefault(normalise_type(spelling), spelling)
    return {raw: best[normalise_type(cleaned[raw])] for raw in counts}


def parse_timestamps(values: pd.Series, mapping: Mapping) -> pd.Series:
    """Export timestamps as naive city-local datetime64[us] (unreadable values NaT). Any year from 1
    to 9999 is read (microseconds hold it); whether it is plausible is `flag_implausible_dates`' job.
    The formats are tried in the mapping's order; a value that keeps a time zone the mapping does
    not strip (such as +00) is unreadable."""
    arrow = pa.array(values.astype(object), type=pa.string(), from_pandas=True)
    out = vector.timestamps(arrow, mapping.timestamp_formats, mapping.utc_offset, mapping.timezone)
    return pd.Series(out, index=values.index, dtype="datetime64[us]")


# --- request types: every spelling decided once, then looked up per row ----------------------------


@dataclass(frozen=True)
class TypeTable:
    """Per trimmed export spelling of the request type (and "Unknown" for an empty one): what the
    published row gets. Built once per import from the whole file's spellings, so each batch only
    looks its rows up."""

    keys: pa.Array  # the trimmed export spellings, "Unknown" last
    mapped: pa.Array  # the spelling's standard name (`type_standards`)
    final: pa.Array  # after the publisher's `map_request_types`, cut to the text cap
    variant: np.ndarray  # map_request_types calls it a variant
    blanked: np.ndarray  # the disaggregation standard's sensitive types: no coordinates
    sensitive: np.ndarray  # the mapping's own sensitive types: no coordinates either
    cut: np.ndarray  # the published name was cut to the text cap
    final_code: np.ndarray  # the published name as a number (equal names, equal numbers)

    @classmethod
    def build(cls, types: dict[str, str], mapping: Mapping) -> TypeTable:
        keys = [*types, UNKNOWN] if UNKNOWN not in types else list(types)
        mapped = pd.Series([types.get(k, k) for k in keys], dtype="string")
        standard = sorted(set(types.values()))
        final, variant = map_request_types(mapped, standard)
        final = final.astype("string")
        probe = pd.DataFrame({"request_type": final, "latitude": 0.0, "longitude": 0.0})
        blanked = blank_sensitive_coordinates(probe)[0]["latitude"].isna().to_numpy()
        sensitive = final.isin(mapping.sensitive_request_types).to_numpy()
        capped = cap_text(final)
        cut = final.str.len().gt(TEXT_CAP).fillna(False).to_numpy(bool)
        final_code = pd.factorize(capped.values.astype(object))[0].astype(np.int64)
        return cls(
            keys=pa.array(keys, pa.string()), mapped=pa.array(mapped, pa.string(), from_pandas=True),
            final=pa.array(capped.values, pa.string(), from_pandas=True), variant=np.asarray(variant, bool),
            blanked=blanked, sensitive=sensitive, cut=cut, final_code=final_code,
        )  # fmt: skip

    def index(self, trimmed: pa.Array) -> np.ndarray:
        """Each row's entry (an empty type is "Unknown")."""
        where = pc.index_in(vector.fill(trimmed, UNKNOWN), value_set=self.keys)
        if where.null_count:  # the type pass read every spelling of the same file: cannot happen
            raise RuntimeError("a request type spelling the type pass did not see")
        return where.to_numpy(zero_copy_only=False).astype(np.int64)


# --- one batch --------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What every batch of one import needs: the mapping, the columns found, the type table and
    the plausible dates."""

    mapping: Mapping
    found: dict[str, str]
    types: TypeTable
    window: DateWindow
    bounds: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)
    row: int = 0  # rows of the file read so far (the next batch's first row number)


def canonical_batch(raw: pa.RecordBatch, plan: Plan, findings: Findings) -> pa.Table:
    """One batch of the export as staged rows: the canonical columns with their flags (rows without
    a request id or a readable created date left out), `_row` (the row's place in the file) and
    `_repeat` (a hash of address, type and day; 0 when the request has no place). Counts what it
    finds in `findings`.

    The steps and their meaning are the importer's: trimmed text (empty is missing), statuses and
    channels through the mapping, timestamps in the mapping's formats, then the publisher's flags
    (`anonymize.flag_requests`: placeholder and implausible dates, closed before created, 0,0 and
    points outside the city, type variants, no neighborhood), coordinates rounded to
    `anonymize.COORDINATE_DECIMALS` and blanked for sensitive types, and text cut to the cap."""
    mapping, found, n = plan.mapping, plan.found, raw.num_rows
    names = raw.schema.names

    def column(name: str) -> pa.Array:
        return vector.strings(raw.column(names.index(found[name]))) if name in found else vector.null_strings(n)

    def text(name: str) -> pa.Array:
        return vector.text(column(name))

    request_id = text("request_id")
    stamps = {}
    for stamp in STAMPS:
        given = text(stamp)
        stamps[stamp] = vector.timestamps(
            given, mapping.timestamp_formats, mapping.utc_offset, mapping.timezone, trimmed=True
        )
        bad = np.isnat(stamps[stamp]) & ~vector.is_null(given)
        if bad.any():
            findings.unreadable[stamp] += int(bad.sum())
            findings.unreadable_examples.setdefault(stamp, str(given[int(np.argmax(bad))].as_py()))

    raw_status = text("status")
    status = vector.lookup(raw_status, mapping.status_map)
    unknown = vector.is_null(status) & ~vector.is_null(raw_status)
    findings.unmapped_status.update(vector.counts(raw_status.filter(pa.array(unknown))))
    if raw_status.null_count:
        findings.unmapped_status["(empty)"] += raw_status.null_count
    duplicate = _duplicates(column, raw_status, mapping, found)

    agency = text("agency")
    findings.missing_required["agency"] += agency.null_count
    agency = vector.fill(agency, UNKNOWN)
    trimmed_type = text("request_type")
    findings.missing_required["request_type"] += trimmed_type.null_count
    entry = plan.types.index(trimmed_type)
    # a variant also when the published name differs from the export's own trimmed spelling
    respelled = vector.mask(pc.not_equal(plan.types.mapped.take(entry), vector.strip(column("request_type"))))
    descriptor = text("descriptor")

    raw_channel = text("channel")
    channel = vector.lookup(raw_channel, mapping.channel_map)
    defaulted = vector.is_null(channel)
    findings.channel_default.update(vector.counts(vector.fill(raw_channel, "(empty)").filter(pa.array(defaulted))))
    channel = vector.fill(channel, mapping.channel_default)

    neighborhood = text("neighborhood")
    district_text = text("council_district")
    district, invalid = vector.districts(district_text)
    findings.invalid_district.update(vector.counts(district_text.filter(pa.array(invalid))))
    lat, lon = vector.numbers(text("latitude")), vector.numbers(text("longitude"))
    parent = text("parent_request_id")

    _count_defects(column, lat, lon, duplicate, stamps["created_at"], mapping, found, findings)
    findings.rows_read += n

    keep = ~np.isnat(stamps["created_at"]) & ~vector.is_null(request_id)
    findings.no_created += int((~keep).sum())
    kept = pa.array(keep)
    stamps = {stamp: values[keep] for stamp, values in stamps.items()}
    implausible = _flag_implausible_dates(stamps, plan.window, findings)
    entry, lat, lon, respelled = entry[keep], lat[keep], lon[keep], respelled[keep]

    # the publisher's flags (anonymize.flag_requests), from the values as read
    created, closed = stamps["created_at"], stamps["closed_at"]
    placeholder_date = closed.astype("datetime64[Y]").astype(np.int64) + 1970 == PLACEHOLDER_YEAR
    placeholder_date &= ~np.isnat(closed)
    before = closed < created  # NaT compares False
    min_lon, min_lat, max_lon, max_lat = plan.bounds
    with np.errstate(invalid="ignore"):
        outside = (lat < min_lat) | (lat > max_lat) | (lon < min_lon) | (lon > max_lon)
    neighborhood = neighborhood.filter(kept)
    flags = {
        "flag_closed_before_created": before & ~placeholder_date,
        "flag_placeholder_date": placeholder_date | implausible,
        "flag_placeholder_coords": ((lat == 0) & (lon == 0)) | outside,  # NaN coordinates: not flagged
        "flag_type_variant": plan.types.variant[entry] | respelled,
        "flag_missing_neighborhood": vector.is_null(neighborhood),
    }
    lat, lon = np.round(lat, COORDINATE_DECIMALS), np.round(lon, COORDINATE_DECIMALS)
    blanked, sensitive = plan.types.blanked[entry], plan.types.sensitive[entry]
    lat[blanked | sensitive] = np.nan
    lon[blanked | sensitive] = np.nan
    findings.sensitive_blanked += int(blanked.sum()) + int(sensitive.sum())

    published = {
        "request_id": request_id.filter(kept), "agency": agency.filter(kept), "request_type": plan.types.final.take(entry),
        "descriptor": descriptor.filter(kept), "neighborhood": neighborhood, "parent_request_id": parent.filter(kept),
    }  # fmt: skip
    for name in TEXT_COLUMNS:  # the text cap, counted in this order (the report lists columns as first cut)
        if name == "request_type":
            cut = int(plan.types.cut[entry].sum())
        else:
            published[name], cut = _cap(published[name], identifier=name in ID_COLUMNS)
        if cut:
            findings.text_cut[name] += cut

    columns = {
        "request_id": published["request_id"],
        **{stamp: vector.stamps_array(stamps[stamp]) for stamp in STAMPS},
        "status": status.filter(kept), "agency": published["agency"], "request_type": published["request_type"],
        "descriptor": published["descriptor"], "channel": channel.filter(kept), "neighborhood": published["neighborhood"],
        "council_district": district.filter(kept), "latitude": pa.array(lat, from_pandas=True),
        "longitude": pa.array(lon, from_pandas=True), "is_duplicate": pa.array(duplicate[keep]),
        "parent_request_id": published["parent_request_id"], **{flag: pa.array(flags[flag]) for flag in REQUEST_FLAGS},
        "_row": pa.array(plan.row + np.flatnonzero(keep), pa.int64()),
    }  # fmt: skip
    columns["_repeat"] = _repeat_key(column, kept, columns, entry, plan)
    plan.row += n
    return pa.table(columns, schema=staged_schema())


def _duplicates(column: Any, status: pa.Array, mapping: Mapping, found: dict[str, str]) -> np.ndarray:
    """The export's own duplicate marks: a duplicate status, or the mapping's duplicate column."""
    marked = vector.isin(status, mapping.duplicate_statuses)
    if "defect:duplicate" in found:
        values = vector.strip(column("defect:duplicate"))
        if "values" in mapping.duplicate:
            marked = marked | vector.isin(values, [str(v) for v in mapping.duplicate["values"]])
        if "contains" in mapping.duplicate:
            hit = pc.match_substring(values, str(mapping.duplicate["contains"]), ignore_case=True)
            marked = marked | vector.mask(hit)
    return marked


def _count_defects(
    column: Any, lat: np.ndarray, lon: np.ndarray, duplicate: np.ndarray, created: np.ndarray, mapping: Mapping,
    found: dict[str, str], f: Findings,
) -> None:  # fmt: skip
    zero = (lat == 0) & (lon == 0)
    f.zero_coords += int(zero.sum())
    at_point = np.zeros(len(lat), dtype=bool)
    for p_lat, p_lon in mapping.placeholder_points:
        hit = (lat == p_lat) & (lon == p_lon)
        f.placeholder_points[f"{p_lat:g},{p_lon:g}"] += int(hit.sum())
        at_point |= hit
    if mapping.bounds:
        min_lon, min_lat, max_lon, max_lat = mapping.bounds
        inside = (lat >= min_lat) & (lat <= max_lat) & (lon >= min_lon) & (lon <= max_lon)
        outside = ~np.isnan(lat) & ~np.isnan(lon) & ~inside
        f.outside_city += int((outside & ~zero & ~at_point).sum())
    if "defect:zip" in found:
        zips = vector.strip(column("defect:zip"))
        given = vector.mask(pc.not_equal(zips, ""))
        junk = given & ~_is_zip(zips)
        f.zip_checked += int(given.sum())
        f.zip_junk.update(vector.counts(zips.filter(pa.array(junk))))
    f.marked_duplicate += int(duplicate.sum())
    stamps = created[~np.isnat(created)]
    if len(stamps):  # seconds after midnight -> rows (pandas' value_counts order, as the report's ties need)
        f.count_clock((stamps.astype(np.int64) // 1_000_000 % 86_400).astype(np.int32))


def _is_zip(zips: pa.Array) -> np.ndarray:
    """`str.fullmatch(ZIP_PATTERN)` (Python's re: \\d is any Unicode digit), null False."""
    ascii_ = vector.mask(pc.string_is_ascii(zips))
    out = vector.mask(pc.match_substring_regex(zips, ZIP_PATTERN.pattern)) & ascii_
    other = ~ascii_ & ~vector.is_null(zips)
    if other.any():
        out[other] = [ZIP_PATTERN.fullmatch(v) is not None for v in zips.filter(pa.array(other)).to_pylist()]
    return out


def _flag_implausible_dates(stamps: dict[str, np.ndarray], window: DateWindow, findings: Findings) -> np.ndarray:
    """Rows with a timestamp outside the plausible window (placeholders such as 1900-01-01 included),
    counted per column. A timestamp past what analysis tools can hold is not published: a closed or
    due date becomes empty, a created date the placeholder 1900-01-01. Changes `stamps` in place."""
    rows = np.zeros(len(stamps["created_at"]), dtype=bool)
    low, high = (np.datetime64(t.to_datetime64(), "us") for t in PUBLISHABLE)
    for stamp in STAMPS:
        values = stamps[stamp]
        start, end = (np.datetime64(t.to_datetime64(), "us") for t in window.bounds(stamp))
        given = ~np.isnat(values)
        outside = given & ((values < start) | (values >= end))
        if not outside.any():
            continue
        findings.implausible[stamp] += int(outside.sum())
        first = pd.Timestamp(values[int(np.argmax(outside))])
        findings.implausible_examples.setdefault(stamp, f"{first:%Y-%m-%d %H:%M:%S}")
        rows |= outside
        unpublishable = given & ((values < low) | (values >= high))
        if unpublishable.any():
            findings.unpublishable[stamp] += int(unpublishable.sum())
            values[unpublishable] = PLACEHOLDER.to_datetime64() if stamp == "created_at" else np.datetime64("NaT")
    return rows


def _cap(values: pa.Array, identifier: bool) -> tuple[pa.Array, int]:
    """Text over the cap cut by `personal.cap_text` (ids: `cap_id`), and how many values were cut."""
    long = vector.mask(pc.greater(pc.utf8_length(values), TEXT_CAP))
    if not long.any():
        return values, 0
    capped = (cap_id if identifier else cap_text)(pd.Series(values.filter(pa.array(long)).to_pylist(), dtype="string"))
    replaced = pc.replace_with_mask(values, pa.array(long), pa.array(capped.values, pa.string(), from_pandas=True))
    return replaced, capped.cut


def _repeat_key(column: Any, kept: pa.Array, columns: dict[str, pa.Array], entry: np.ndarray, plan: Plan) -> pa.Array:
    """A hash of (place, published request type, created day): rows sharing one are likely repeats.
    The place is the raw address (the mapping's placeholder addresses are no place), else the
    published coordinates (both needed; their exact values: -0.0 is not 0.0, as their text differs
    too); 0 for a request without a place. Only equal keys matter (the report counts rows sharing
    one), so the address hash is Python's own, consistent within the import's process."""
    if "defect:address" in plan.found:
        place = column("defect:address").filter(kept)
        nowhere = vector.isin(place, plan.mapping.placeholder_addresses) | vector.is_null(place)
        encoded = pc.dictionary_encode(place)
        spellings = np.array([hash(v) for v in encoded.dictionary.to_pylist()], dtype=np.int64).view(np.uint64)
        where = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
        key = spellings[where] if len(spellings) else np.zeros(len(where), dtype=np.uint64)
    else:
        lat, lon = (columns[c].to_numpy(zero_copy_only=False) for c in ("latitude", "longitude"))
        nowhere = np.isnan(lat) | np.isnan(lon)
        key = _mix(lat.view(np.uint64) ^ _mix(lon.view(np.uint64)))
    day = columns["created_at"].to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int64)
    key = _mix(key ^ _mix(plan.types.final_code[entry].astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)))
    key = _mix(key ^ _mix(day.view(np.uint64) + np.uint64(0x632BE59BD9B4E019)))
    key[key == 0] = 1  # 0 means "no place"
    key[nowhere] = 0
    return pa.array(key, pa.uint64())


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the input moves every bit of the output."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def canonical_schema() -> pa.Schema:
    """The arrow schema of the published service requests (with pandas metadata, as the bundled city)."""
    dtypes = {c: "str" for c in SERVICE_REQUESTS}
    dtypes.update({c: "datetime64[us]" for c in ("created_at", "closed_at", "due_at")})
    dtypes.update({"council_district": "Int64", "latitude": "float64", "longitude": "float64", "is_duplicate": "bool"})
    dtypes.update({flag: "bool" for flag in REQUEST_FLAGS})
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    return pa.Schema.from_pandas(empty, preserve_index=False)


@cache
def staged_schema() -> pa.Schema:
    """The staged rows: the canonical columns (text as plain Arrow strings), then `_row` and
    `_repeat` (see `canonical_batch`)."""
    fields = [pa.field(f.name, pa.string()) if f.type == pa.large_string() else f for f in canonical_schema()]
    return pa.schema([*fields, pa.field("_row", pa.int64()), pa.field("_repeat", pa.uint64())])
