"""One batch of an export as the canonical `service_requests` columns: timestamps, statuses,
types, channels, duplicates; what the batch holds (defects, variants) is counted in `Findings`."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from citykit.data.anonymize import normalise_type
from citykit.data.columns import REQUEST_FLAGS, SERVICE_REQUESTS
from citykit.data.importers.mapping import Mapping
from citykit.data.importers.personal import ID_COLUMNS, TEXT_COLUMNS, cap_id, cap_text

ZIP_PATTERN = re.compile(r"^\d{5}(-\d{4})?$")
OFFSET_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
STAMPS = ("created_at", "closed_at", "due_at")

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
    clock_times: Counter = field(default_factory=Counter)  # created time of day (seconds) -> rows
    type_variants: dict[str, str] = field(default_factory=dict)  # raw spelling -> standard name
    descriptor_variants: dict[str, str] = field(default_factory=dict)  # reported only, kept as exported
    implausible: Counter = field(default_factory=Counter)  # timestamp column -> values outside the window
    implausible_examples: dict[str, str] = field(default_factory=dict)
    unpublishable: Counter = field(default_factory=Counter)  # timestamp column -> values no tool can hold
    text_cut: Counter = field(default_factory=Counter)  # canonical text column -> values cut to the cap


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
    to 9999 is read (microseconds hold it); whether it is plausible is `flag_implausible_dates`' job."""
    arrow = pc.utf8_trim_whitespace(pa.array(values.astype(object), type=pa.string(), from_pandas=True))
    if mapping.utc_offset == "ignore":
        arrow = pc.replace_substring_regex(arrow, OFFSET_SUFFIX.pattern, "")
    text = pd.Series(arrow.to_pandas(), index=values.index, dtype="string")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    for fmt in mapping.timestamp_formats:
        todo = out.isna() & text.notna()
        if not todo.any():
            break
        try:
            parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=mapping.utc_offset == "convert")
            if mapping.utc_offset == "convert":
                parsed = parsed.dt.tz_convert(mapping.timezone).dt.tz_localize(None)
            out[todo] = parsed.astype("datetime64[us]")
        except (OverflowError, pd.errors.OutOfBoundsDatetime, ValueError):  # one value at a time
            out[todo] = [_one_timestamp(v, fmt, mapping) for v in text[todo]]
    return out


def _one_timestamp(value: str, fmt: str, mapping: Mapping) -> pd.Timestamp:
    """One value the vectorised parse could not take (e.g. 9999-12-31 shifted past the year 9999 by
    a time zone): its timestamp, or NaT."""
    try:
        parsed = pd.to_datetime(value, format=fmt, utc=mapping.utc_offset == "convert")
        if mapping.utc_offset == "convert":
            parsed = parsed.tz_convert(mapping.timezone).tz_localize(None)
        return pd.Timestamp(parsed).as_unit("us")
    except (OverflowError, pd.errors.OutOfBoundsDatetime, ValueError, TypeError):
        return pd.NaT


def flag_implausible_dates(frame: pd.DataFrame, window: DateWindow, findings: Findings) -> np.ndarray:
    """Rows with a timestamp outside the plausible window (placeholders such as 1900-01-01 included),
    counted per column. A timestamp past what analysis tools can hold is not published: a closed or
    due date becomes empty, a created date the placeholder 1900-01-01. Changes `frame` in place."""
    rows = np.zeros(len(frame), dtype=bool)
    for stamp in STAMPS:
        values = frame[stamp]
        start, end = window.bounds(stamp)
        outside = (values.notna() & (values.lt(start) | values.ge(end))).to_numpy(bool)
        if not outside.any():
            continue
        findings.implausible[stamp] += int(outside.sum())
        findings.implausible_examples.setdefault(stamp, f"{values[outside].iloc[0]:%Y-%m-%d %H:%M:%S}")
        rows |= outside
        unpublishable = (values.notna() & (values.lt(PUBLISHABLE[0]) | values.ge(PUBLISHABLE[1]))).to_numpy(bool)
        if unpublishable.any():
            findings.unpublishable[stamp] += int(unpublishable.sum())
            frame.loc[unpublishable, stamp] = PLACEHOLDER if stamp == "created_at" else pd.NaT
    return rows


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


def cap_text_columns(frame: pd.DataFrame, findings: Findings) -> None:
    """Every published text value cut to the cap (`personal.TEXT_CAP`), counted per column; ids keep
    their start and a hash (distinct ids stay distinct). Changes `frame` in place."""
    for column in TEXT_COLUMNS:
        capped = (cap_id if column in ID_COLUMNS else cap_text)(frame[column])
        if capped.cut:
            frame[column] = capped.values
            findings.text_cut[column] += capped.cut


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


def repeat_key(raw: pd.DataFrame, out: pd.DataFrame, found: dict[str, str], mapping: Mapping) -> np.ndarray:
    """A hash of (address, request type, created day): rows sharing one are likely repeats."""
    place = raw[found["defect:address"]].astype("string") if "defect:address" in found else (
        out["latitude"].astype("string") + "," + out["longitude"].astype("string"))  # fmt: skip
    place = place.mask(place.isin(mapping.placeholder_addresses))
    day = out["created_at"].dt.strftime("%Y-%m-%d")
    frame = pd.DataFrame({"place": place.fillna(""), "type": out["request_type"], "day": day.fillna("")})
    key = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    located = place.notna().to_numpy()
    return np.where(located, key, np.uint64(0)).astype(np.uint64)


def canonical_schema() -> pa.Schema:
    """The arrow schema of the published service requests (with pandas metadata, as the bundled city)."""
    dtypes = {c: "str" for c in SERVICE_REQUESTS}
    dtypes.update({c: "datetime64[us]" for c in ("created_at", "closed_at", "due_at")})
    dtypes.update({"council_district": "Int64", "latitude": "float64", "longitude": "float64", "is_duplicate": "bool"})
    dtypes.update({flag: "bool" for flag in REQUEST_FLAGS})
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    return pa.Schema.from_pandas(empty, preserve_index=False)
