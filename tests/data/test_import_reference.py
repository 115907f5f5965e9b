"""The importer against a reference written here: every published value, flag and count of the
import report recomputed row by row from the raw CSV with the csv module, Python's datetime and
float (pandas' scalar readers only for the odd spellings), on the two real samples (skipped when
../shared/realdata is absent) and on dirty exports in two layouts that span several batches.

The importer reads whole batches with Arrow and numpy (issue 21: imports at the scan's pace); this
reference never does, so a fast path that reads one value differently fails here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from citykit import paths
from citykit.data.importers import REPORT_FILE, import_requests, imported_dir, load_mapping, reader, vector
from citykit.errors import CitykitError
from citykit.standards import load_disaggregation

REALDATA = paths.course_root().parent / "shared" / "realdata"
REAL = {
    "sf311_warehouse": REALDATA / "san_francisco" / "311_service_requests.csv",
    "baltimore": REALDATA / "baltimore" / "311_sample.csv",
}
EXTRACT = dt.date(2024, 6, 30)
CAP = 200
FLAGS = ("flag_closed_before_created", "flag_placeholder_date", "flag_placeholder_coords", "flag_type_variant",
         "flag_missing_neighborhood")  # fmt: skip


pytestmark = pytest.mark.usefixtures("home")  # each test imports into its own CITYKIT_HOME


# --- the reference ---------------------------------------------------------------------------------


def text(value: str | None) -> str | None:
    stripped = None if value is None else value.strip()
    return stripped or None


def number(value: str | None) -> float:
    if value is None:
        return np.nan
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        return float(value)
    return float(pd.to_numeric(pd.Series([value], dtype="string"), errors="coerce").astype("float64").iloc[0])


US_CLOCK = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([AP])M")
ISO_PLAIN = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2}):([0-9]{2}))?")


def plain(value: str, fmt: str) -> dt.datetime | None:
    """The plain spellings of the two formats the bundled mappings use, read with datetime (an
    impossible date raises ValueError); None when the value is not plain."""
    if fmt == "%m/%d/%Y %I:%M:%S %p" and (hit := US_CLOCK.fullmatch(value)):
        month, day, year, hour, minute, second = (int(g) for g in hit.groups()[:6])
        if not 1 <= hour <= 12:
            raise ValueError(value)
        return dt.datetime(year, month, day, hour % 12 + (12 if hit.group(7) == "P" else 0), minute, second)
    if fmt == "ISO8601" and (hit := ISO_PLAIN.fullmatch(value)):
        return dt.datetime(*(int(g or 0) for g in hit.groups()))
    return None


def timestamp(value: str | None, formats: tuple[str, ...]) -> np.datetime64:
    """The first of the mapping's formats that reads the value (an offset is a label: dropped);
    pandas' scalar reader for anything but the plain spellings."""
    if value is None:
        return np.datetime64("NaT")
    value = re.sub(r"(Z|[+-][0-9]{2}:?[0-9]{2})$", "", value.strip())
    for fmt in formats:
        try:
            if (read := plain(value, fmt)) is not None:
                return np.datetime64(read, "us")
        except ValueError:
            pass
        try:
            parsed = pd.to_datetime(value, format=fmt)
        except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
            continue
        if parsed is not pd.NaT and parsed.tzinfo is None:
            return np.datetime64(parsed.as_unit("us").to_datetime64(), "us")
    return np.datetime64("NaT")


def key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def standard_names(spellings: Counter, explicit: dict[str, str]) -> dict[str, str]:
    """Each spelling's standard name: the mapping's, else the most common spelling (spaces collapsed)
    of those equal but for case, spacing and punctuation (ties: alphabetical)."""
    explicit = {key(k): v for k, v in explicit.items()}
    cleaned = {raw: explicit.get(key(raw), " ".join(raw.split())) for raw in spellings}
    weight = Counter()
    for raw, n in spellings.items():
        weight[cleaned[raw]] += n
    best = {}
    for name, _ in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])):
        best.setdefault(key(name), name)
    return {raw: best[key(cleaned[raw])] for raw in spellings}


def cap(value: str | None, identifier: bool) -> str | None:
    if value is None or len(value) <= CAP:
        return value
    if identifier:
        return value[: CAP - 17] + "~" + hashlib.sha256(value.encode()).hexdigest()[:16]
    return value[: CAP - 1] + "…"


def reference(path: Path, source: str, extract: dt.date) -> tuple[pd.DataFrame, dict]:
    """The published table (sorted by request id) and the report's counts, row by row."""
    m = load_mapping(source)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [{k.strip(): (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)]
    found = m.resolve(list(rows[0]))
    col = {name: found.get(name) for name in (*m.columns, *[f"defect:{k}" for k in m.defects], "defect:duplicate")}
    get = lambda row, name: row.get(col[name]) if col.get(name) else None  # noqa: E731
    spellings = Counter(s for row in rows if (s := (get(row, "request_type") or "").strip()))
    names = standard_names(spellings, m.request_type_map)
    standard_sensitive = set(load_disaggregation().sensitive_request_types)
    sensitive = standard_sensitive | set(m.sensitive_request_types)
    min_lon, min_lat, max_lon, max_lat = m.bounds
    start, end = np.datetime64("1990-01-01", "us"), np.datetime64(extract + dt.timedelta(days=1), "us")
    due_end = end + np.timedelta64(366 * 5, "D")
    low, high = np.datetime64("1678-01-01", "us"), np.datetime64("2262-01-01", "us")
    c = Counter()
    staged = []
    for i, row in enumerate(rows):
        rid = text(get(row, "request_id"))
        stamps = {s: timestamp(text(get(row, s)), m.timestamp_formats) for s in ("created_at", "closed_at", "due_at")}
        for s, v in stamps.items():
            c[f"unreadable {s}"] += text(get(row, s)) is not None and np.isnat(v)
        raw_status = text(get(row, "status"))
        dup_column = (get(row, "defect:duplicate") or "").strip() if col.get("defect:duplicate") else ""
        duplicate = raw_status in m.duplicate_statuses or (
            dup_column in [str(v) for v in m.duplicate.get("values", [])]
            or ("contains" in m.duplicate and m.duplicate["contains"].lower() in dup_column.lower())
        )
        lat, lon = number(text(get(row, "latitude"))), number(text(get(row, "longitude")))
        zero = lat == 0 and lon == 0
        points = [(lat == a and lon == b) for a, b in m.placeholder_points]
        inside = min_lat <= lat <= max_lat and min_lon <= lon <= max_lon
        c["zero"] += zero
        c["points"] += any(points)
        c["outside"] += not np.isnan(lat) and not np.isnan(lon) and not inside and not zero and not any(points)
        zip_ = (get(row, "defect:zip") or "").strip() if col.get("defect:zip") else ""
        c["zip checked"] += zip_ != ""
        c["zip junk"] += zip_ != "" and not re.fullmatch(r"\d{5}(-\d{4})?", zip_)
        c["marked duplicate"] += duplicate
        for name in ("agency", "request_type"):
            c[f"missing {name}"] += text(get(row, name)) is None
        c["rows"] += 1
        if rid is None or np.isnat(stamps["created_at"]):
            c["no created"] += 1
            continue
        implausible = False
        for s, v in stamps.items():
            if not np.isnat(v) and (v < start or v >= (due_end if s == "due_at" else end)):
                implausible = True
                c[f"implausible {s}"] += 1
                if v < low or v >= high:
                    stamps[s] = np.datetime64("1900-01-01", "us") if s == "created_at" else np.datetime64("NaT")
        raw_type = (get(row, "request_type") or "").strip()
        published_type = names.get(raw_type, "Unknown") if raw_type else "Unknown"
        district = number(text(get(row, "council_district")))
        closed, created = stamps["closed_at"], stamps["created_at"]
        placeholder = not np.isnat(closed) and closed.astype("datetime64[Y]").astype(int) + 1970 == 1900
        hidden = published_type in sensitive
        # counted once per list that names the type (a type in both is counted twice, as the importer does)
        c["sensitive"] += (published_type in standard_sensitive) + (published_type in m.sensitive_request_types)
        out = {
            "request_id": rid, **stamps, "status": m.status_map.get(raw_status), "agency": text(get(row, "agency")) or "Unknown",
            "request_type": published_type, "descriptor": text(get(row, "descriptor")),
            "channel": m.channel_map.get(text(get(row, "channel")), m.channel_default),
            "neighborhood": text(get(row, "neighborhood")),
            "council_district": int(district) if district >= 1 and district % 1 == 0 else None,
            "latitude": np.nan if hidden else np.round(lat, 3), "longitude": np.nan if hidden else np.round(lon, 3),
            "is_duplicate": bool(duplicate), "parent_request_id": text(get(row, "parent_request_id")),
            "flag_closed_before_created": bool(closed < created) and not placeholder,
            "flag_placeholder_date": bool(placeholder or implausible),
            "flag_placeholder_coords": zero or lat < min_lat or lat > max_lat or lon < min_lon or lon > max_lon,
            "flag_type_variant": get(row, "request_type") is not None and published_type != raw_type,
            "flag_missing_neighborhood": text(get(row, "neighborhood")) is None,
        }  # fmt: skip
        for name in ("request_id", "agency", "request_type", "descriptor", "neighborhood", "parent_request_id"):
            capped = cap(out[name], identifier=name in ("request_id", "parent_request_id"))
            c["cut"] += capped != out[name]
            out[name] = capped
        address = get(row, "defect:address") if col.get("defect:address") else None
        if col.get("defect:address"):
            place = None if address in m.placeholder_addresses else address
        else:
            place = (
                None if np.isnan(out["latitude"]) or np.isnan(out["longitude"]) else (out["latitude"], out["longitude"])
            )
        out["_repeat"] = None if place is None else (place, out["request_type"], str(created.astype("datetime64[D]")))
        out["_row"] = i
        staged.append(out)
    located = [r["_repeat"] for r in staged if r["_repeat"] is not None]
    c["repeats"] = len(located) - len(set(located))
    last = {r["request_id"]: r for r in staged}  # the last row of each id in the file
    c["repeated ids"] = len(staged) - len(last)
    table = pd.DataFrame(sorted(last.values(), key=lambda r: r["request_id"])).drop(columns=["_repeat", "_row"])
    return table.reset_index(drop=True), c


# --- the comparisons --------------------------------------------------------------------------------


def check(path: Path, source: str, extract: dt.date) -> None:
    expected, c = reference(path, source, extract)
    result = import_requests(source, path, name="ref", extract_date=extract)
    got = pd.read_parquet(imported_dir("ref") / "service_requests.parquet")
    got = got.sort_values("request_id", ignore_index=True)
    assert list(got["request_id"]) == list(expected["request_id"])
    for column in expected.columns:
        want, have = expected[column], got[column]
        if column in ("created_at", "closed_at", "due_at"):
            same = (want.isna().to_numpy() & have.isna().to_numpy()) | (
                want.to_numpy("datetime64[us]") == have.to_numpy("datetime64[us]")
            )
        elif column in ("latitude", "longitude"):
            w, h = want.to_numpy(float), have.to_numpy(float)
            same = (np.isnan(w) & np.isnan(h)) | (w == h)
        else:
            w, h = want.astype(object).where(want.notna(), None), have.astype(object).where(have.notna(), None)
            same = np.array([a == b for a, b in zip(w, h, strict=True)])
        assert same.all(), f"{column}: {list(zip(expected.request_id[~same][:3], want[~same][:3], have[~same][:3]))}"
    assert result.flags == {flag: int(expected[flag].sum()) for flag in FLAGS}
    f = result.findings
    assert (f.rows_read, f.no_created, f.zero_coords, f.outside_city) == (
        c["rows"],
        c["no created"],
        c["zero"],
        c["outside"],
    )
    assert sum(f.placeholder_points.values()) == c["points"]
    assert (f.zip_checked, sum(f.zip_junk.values())) == (c["zip checked"], c["zip junk"])
    assert f.marked_duplicate == c["marked duplicate"] and f.sensitive_blanked == c["sensitive"]
    assert sum(f.text_cut.values()) == c["cut"]
    assert {s: f.unreadable[s] for s in ("created_at", "closed_at", "due_at")} == {
        s: c[f"unreadable {s}"] for s in ("created_at", "closed_at", "due_at")}  # fmt: skip
    assert {s: f.implausible[s] for s in ("created_at", "closed_at", "due_at")} == {
        s: c[f"implausible {s}"] for s in ("created_at", "closed_at", "due_at")}  # fmt: skip
    report = (imported_dir("ref") / REPORT_FILE).read_text(encoding="utf-8")
    assert f"Rows read: {c['rows']:,}; dataset now holds {len(expected):,} requests" in report
    for flag in FLAGS:
        assert f"| {flag} | {int(expected[flag].sum()):,} |" in report
    assert f"Rows repeating a request id: {c['repeated ids']:,} (the last row in the file kept)" in report
    assert f"Likely repeats (same address, type and day; not marked, not removed): {c['repeats']:,}" in report
    assert f"{c['cut']:,} values cut" in report and f"{c['sensitive']:,} requests of sensitive types" in report


@pytest.mark.skipif(not REALDATA.exists(), reason="real samples absent (../shared/realdata)")
@pytest.mark.parametrize("source", sorted(REAL))
def test_real_samples_match_the_reference(source):
    check(REAL[source], source, dt.date(2019, 3, 1))


HEADERS = {
    "nyc311": ["Unique Key", "Created Date", "Closed Date", "Due Date", "Agency", "Complaint Type", "Descriptor",
               "Incident Zip", "Incident Address", "Status", "Community Board", "Open Data Channel Type", "Latitude",
               "Longitude"],
    "chicago311": ["SR_NUMBER", "SR_TYPE", "OWNER_DEPARTMENT", "STATUS", "ORIGIN", "CREATED_DATE", "CLOSED_DATE",
                   "DUPLICATE", "PARENT_SR_NUMBER", "COMMUNITY_AREA", "WARD", "LATITUDE", "LONGITUDE"],
}  # fmt: skip
LONG = "x" * 230


def dirty_export(path: Path, source: str, rows: int, seed: int) -> Path:
    """Rows with the real files' dirt and worse: odd date spellings (12-hour and ISO, impossible
    days, 1900, 2099, 9999, offsets), padded and empty text, long text, spelling variants, sensitive
    types, placeholder and stray coordinates, junk ZIPs and districts, repeated ids."""
    rng = random.Random(seed)
    us, iso = "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S"
    odd = ["", "  ", "N/A", "nan", "01/01/1900 12:00:00 AM", "01/01/2099 10:00:00 AM", "12/31/9999 11:59:59 PM",
           "02/30/2024 10:00:00 AM", "03/01/2024 12:00:00 AM", "03/01/2024 12:30:00 PM", "3/1/2024 9:05:07 AM",
           "2024-03-01T10:00:00", "2024-03-01 10:00:00+05:00", "2024-03-01", "2023-02-29 10:00:00", "1500-01-01 00:00:00",
           "2024-03-01 10:00:00.250", "03/01/2024 10:00:00 am", " 03/01/2024 10:00:00 AM "]  # fmt: skip
    types = {"nyc311": ["Noise - Residential", "noise - residential", "Noise  - Residential", "Encampment",
                        "Welfare Check", "Illegal Parking"],
             "chicago311": ["Pothole in Street", "pothole in street", "Wellness Check", "Homeless Encampment"]}  # fmt: skip
    statuses = {
        "nyc311": ["Closed", "Open", "In Progress", " Closed "],
        "chicago311": ["Completed", "Open", "Canceled"],
    }
    channels = {
        "nyc311": ["PHONE", "ONLINE", "UNKNOWN", "", "Fax"],
        "chicago311": ["Internet", "Phone Call", "spirit", ""],
    }
    center = {"nyc311": (40.7, -74.0), "chicago311": (41.88, -87.63)}[source]
    out = []
    for i in range(rows):
        created = dt.datetime(2019, 1, 1) + dt.timedelta(seconds=rng.randrange(0, 5 * 365 * 86400))
        closed = created + dt.timedelta(hours=rng.choice([-3, 2, 30, 400]))
        fmt = us if source == "nyc311" or rng.random() < 0.5 else iso
        stamp = lambda t, share, fmt=fmt: rng.choice(odd) if rng.random() < share else t.strftime(fmt)  # noqa: E731
        rid = rng.choice(
            [f"R{i:06d}"] * 30 + [f"R{rng.randrange(max(i, 1)):06d}", "", " ", f" R{i:06d} ", LONG + str(i), LONG]
        )
        lat, lon = rng.choice([(f"{center[0] + rng.random() / 20:.6f}", f"{center[1] + rng.random() / 20:.6f}")] * 12 + [
            ("0", "0"), ("0.0", "0.0"), ("abc", "1"), ("", ""), ("1e1", "1e1"), (f"{center[0]:.17f}", f"{center[1]:.15f}"),
            ("45", "-80"), (f"{center[0]}", "")])  # fmt: skip
        row = dict(zip(HEADERS[source], [""] * len(HEADERS[source]), strict=True))
        values = {
            "id": rid, "created": stamp(created, 0.005), "closed": rng.choice(["", stamp(closed, 0.08)]),
            "type": rng.choice(types[source] * 8 + ["", "  ", "A" * 205 + rng.choice("bc")]),
            "agency": rng.choice(["Streets", "", LONG]), "status": rng.choice(statuses[source]),
            "channel": rng.choice(channels[source]), "nbhd": rng.choice(["North", "", " ", "Cañon\u00a0", LONG]),
            "lat": lat, "lon": lon,
        }  # fmt: skip
        if source == "nyc311":
            row.update({"Unique Key": values["id"], "Created Date": values["created"], "Closed Date": values["closed"],
                        "Due Date": rng.choice(["", stamp(closed + dt.timedelta(days=3), 0.2)]),
                        "Agency": values["agency"], "Complaint Type": values["type"],
                        "Descriptor": rng.choice(["Loud Music", "loud  music", "", LONG]),
                        "Incident Zip": rng.choice(["10001", "10001-1234", "0", "", " 10001 ", "N/A"]),
                        "Incident Address": rng.choice([f"{rng.randrange(9)} Main St", ""]), "Status": values["status"],
                        "Community Board": values["nbhd"], "Open Data Channel Type": values["channel"],
                        "Latitude": lat, "Longitude": lon})  # fmt: skip
        else:
            row.update({"SR_NUMBER": values["id"], "SR_TYPE": values["type"], "OWNER_DEPARTMENT": values["agency"],
                        "STATUS": values["status"], "ORIGIN": values["channel"], "CREATED_DATE": values["created"],
                        "CLOSED_DATE": values["closed"], "DUPLICATE": rng.choice(["true", "false", "", " Y ", "1"]),
                        "PARENT_SR_NUMBER": rng.choice(["", f"R{rng.randrange(rows):06d}", LONG]),
                        "COMMUNITY_AREA": values["nbhd"], "WARD": rng.choice(["3", "3.0", "0", "-1", "x", "", "2.5", "12"]),
                        "LATITUDE": lat, "LONGITUDE": lon})  # fmt: skip
        out.append(row)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADERS[source])
        writer.writeheader()
        writer.writerows(out)
    return path


@pytest.mark.parametrize("source", ["nyc311", "chicago311"])
def test_dirty_exports_match_the_reference_across_batches(tmp_path, monkeypatch, source):
    monkeypatch.setattr(reader, "BLOCK_SIZE", 64 << 10)  # about 400 rows a batch: cross-batch counts are checked
    check(dirty_export(tmp_path / f"{source}.csv", source, 3_000, seed=21), source, EXTRACT)


@pytest.mark.parametrize(
    "value",
    ["03/01/2024 09:30:15 AM", "12/31/9999 11:59:59 PM", "01/01/0001 12:00:00 AM", "02/29/2024 12:00:00 PM",
     "02/29/2023 12:00:00 PM", "13/01/2024 10:00:00 AM", "03/01/2024 00:10:00 AM", "03/01/2024 10:00:60 AM",
     "2024-03-01 24:00:00", "2024-03-01T23:59:59", "2024-03-01", "2024-3-1 10:00:00", "1900-01-01 00:00:00",
     "2024-03-01 10:00:00Z", "2024-03-01 10:00:00-0700", "nan", "NaT", "", "٠٣/٠١/٢٠٢٤ 10:00:00 AM"],
)  # fmt: skip
def test_timestamps_read_as_pandas_reads_each_value(value):
    formats = ("%m/%d/%Y %I:%M:%S %p", "ISO8601")
    got = vector.timestamps(pa.array([value, "03/01/2024 09:30:15 AM"]), formats, "ignore", "UTC")[0]
    want = timestamp(value, formats)
    assert (np.isnat(got) and np.isnat(want)) or got == want


@pytest.mark.parametrize(
    "values",
    [["40.7128", "-74.006"], ["-0", "4"], ["-0", "4.5"], ["1e1", "x"], ["007", "+40.7", " 5 "], ["inf", "NaN"],
     ["99999999999999999999", "1"], ["40.71558683355069123", "-73.956712724076221"], ["١٢", "0.5"]],
)  # fmt: skip
def test_numbers_read_as_pandas_reads_the_column(values):
    want = pd.to_numeric(pd.Series(values, dtype="string"), errors="coerce").astype("float64").to_numpy()
    got = vector.numbers(vector.text(pa.array(values)))
    assert ((np.isnan(want) & np.isnan(got)) | ((want == got) & (np.signbit(want) == np.signbit(got)))).all()


def test_the_sql_schema_checks_say_what_the_canonical_schema_says():
    from citykit.data.importers import merge
    from citykit.data.schema import schema

    columns = schema("service_requests").columns
    assert set(merge.NOT_NULL) == {name for name, c in columns.items() if not c.nullable}
    checks = {(name, k.name): k.statistics for name, c in columns.items() for k in c.checks}
    assert {name for name, _ in checks} == set(merge.ALLOWED) | set(merge.RANGES)
    for name, allowed in merge.ALLOWED.items():
        assert set(checks[name, "isin"]["allowed_values"]) == set(allowed)
    assert checks["council_district", "greater_than_or_equal_to"]["min_value"] == merge.RANGES["council_district"][0]
    for name in ("latitude", "longitude"):
        stats = checks[name, "in_range"]
        assert (stats["min_value"], stats["max_value"]) == merge.RANGES[name]
        assert stats["include_min"] and stats["include_max"]
    assert [name for name, c in columns.items() if c.unique] == ["request_id"]


def test_a_table_the_schema_refuses_fails_with_its_message_and_leaves_nothing(tmp_path):
    header = ["Unique Key", "Created Date", "Status", "Agency", "Complaint Type", "Open Data Channel Type", "Latitude",
              "Longitude"]  # fmt: skip
    rows = [[f"R{i}", "03/01/2024 10:00:00 AM", "Closed", "DSNY", "Noise", "PHONE", "40.7", "-74.0"] for i in range(5)]
    rows[2][6], rows[3][7] = "95", "inf"  # read as numbers, flagged, but no latitude or longitude
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    with pytest.raises(CitykitError, match=r"latitude: in_range\(-90, 90\) fails in 1 row.*longitude: in_range"):
        import_requests("nyc311", path, name="bad", extract_date=EXTRACT)
    assert not (paths.citykit_home() / "imported" / "bad").exists()
