"""Publish a raw export as the canonical, anonymized tables a training cohort may use.

Every column of a table of people is treated as the standard's one table of columns says
(`privacy.columns` in curriculum/standards/disaggregation.yml): identifiers are dropped or replaced
by keyed hashes (`citykit.standards.pseudonyms`), times coarsened, quasi-identifiers published in
the rows under k-anonymity with the outcome rule (`citykit.standards.kanonymity`), and the columns
that would cost too much of the rest published only in aggregate tables.

Service requests: personal and free-text columns dropped, request ids hashed with the dataset's
key, coordinates rounded to 3 decimals (about 100 m), no coordinates for the standard's sensitive
request types, and every defect flagged from the raw values, never repaired ("flag, don't silently
repair"). Program applications: `publish_applications` (days to decision from the exact dates, then
the month of submission, fresh ids, k-anonymity over every quasi-identifier, and the aggregate table
of age band, household size, income band and days to decision).

Each edition of the applications (one raw export) gets its own ids: the keyed hash also covers a
digest of the raw export (`edition`). Publishing the same export again gives the same ids; a later
export (more applications, changed outcomes) gives every row a new one, so the rows of two
publications cannot be joined by id. k-anonymity holds within each publication, and a person's row
in one publication cannot be found in the other by its id (walk-20: joined on stable ids, a
September and a December publication made two applicants unique with their outcome).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely
import yaml

from citykit import paths
from citykit.data.columns import NEIGHBORHOODS, OUTCOMES, PROGRAM_APPLICATIONS, SERVICE_REQUESTS
from citykit.errors import CitykitError
from citykit.standards import suppression
from citykit.standards.kanonymity import KAnonymityReport, k_anonymize
from citykit.standards.pseudonyms import dataset_key, pseudonymise
from citykit.standards.reader import DisaggregationStandard, load_disaggregation, personal_columns
from citykit.standards.sensitive import blank_sensitive_coordinates


class _Personal(Mapping):
    """The standard's personal columns per table (`privacy.columns`: identifiers never published),
    read from the standard when first used (nothing runs at import)."""

    def _columns(self) -> dict[str, tuple[str, ...]]:
        return personal_columns()

    def __getitem__(self, table: str) -> tuple[str, ...]:
        return self._columns()[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns())

    def __len__(self) -> int:
        return len(self._columns())


PERSONAL_COLUMNS: Mapping[str, tuple[str, ...]] = _Personal()
COORDINATE_DECIMALS = 3  # about 110 m of latitude
PLACEHOLDER_YEAR = 1900
TIMESTAMPS = {
    "service_requests": ("created_at", "closed_at", "due_at"),
    "program_applications": ("submitted_at", "decided_at"),
}
UNIT_FREQ = {"month": "M", "quarter": "Q", "year": "Y"}


@dataclass(frozen=True)
class PublishSummary:
    out_dir: Path
    rows: dict[str, int]
    flags: dict[str, int]  # rows per flag column in the published service requests
    coordinates_removed: int  # sensitive-type requests published without coordinates
    k_anonymity: dict[str, Any]  # citykit.standards.kanonymity.KAnonymityReport as a dict
    aggregates: dict[str, Any] | None = None  # the aggregate table: file, rows, cells suppressed


def standard_request_types() -> list[str]:
    """The standard request type names: those with an SLA target in metrics.yml."""
    with (paths.standard_file("metrics.yml")).open(encoding="utf-8") as fh:
        return list(yaml.safe_load(fh)["sla_days"])


def normalise_type(value: str) -> str:
    """Case and spacing folded away: "Street  Light Out", "streetlightout" -> "streetlightout"."""
    return re.sub(r"[^0-9a-z]", "", value.casefold())


def map_request_types(raw: pd.Series, standard: Sequence[str]) -> tuple[pd.Series, np.ndarray]:
    """Standard names for raw spellings, and which rows were variants (unknown names stay as-is)."""
    by_key = {normalise_type(name): name for name in standard}
    unique = pd.Series(raw.dropna().unique())
    mapping = dict(zip(unique, unique.map(lambda v: by_key.get(normalise_type(v), v))))
    mapped = raw.map(mapping)
    variant = (raw.notna() & ~raw.isin(list(standard)) & mapped.isin(list(standard))).to_numpy()
    return mapped, variant


def city_bounds(boundaries: Path) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of the neighborhood polygons in a GeoJSON file."""
    features = json.loads(boundaries.read_text(encoding="utf-8"))["features"]
    shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
    return tuple(shapely.union_all(shapes).bounds)  # type: ignore[return-value]


def read_csv(path: Path, types: dict[str, pa.DataType]) -> pd.DataFrame:
    """A raw CSV as pandas; timestamps become naive datetime64[us], integers with gaps Int64."""
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    parse = pacsv.ParseOptions(newlines_in_values=True)  # free text may hold line breaks
    table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    columns = [col.cast(pa.timestamp("us")) if pa.types.is_timestamp(col.type) else col for col in table.columns]
    table = pa.table(columns, names=table.column_names)
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def flag_requests(raw: pd.DataFrame, standard_types: Sequence[str], bounds: tuple[float, ...]) -> pd.DataFrame:
    """The canonical service-requests table with flag columns set from the raw values."""
    out = raw.copy()
    placeholder_date = (out["closed_at"].dt.year == PLACEHOLDER_YEAR).fillna(False).to_numpy(bool)
    before = (out["closed_at"] < out["created_at"]).fillna(False).to_numpy(bool)
    lat, lon = out["latitude"].to_numpy(float), out["longitude"].to_numpy(float)
    min_lon, min_lat, max_lon, max_lat = bounds
    outside = (lat < min_lat) | (lat > max_lat) | (lon < min_lon) | (lon > max_lon)
    zero = (lat == 0) & (lon == 0)
    out["request_type"], variant = map_request_types(out["request_type"], standard_types)

    out["flag_closed_before_created"] = before & ~placeholder_date
    out["flag_placeholder_date"] = placeholder_date
    out["flag_placeholder_coords"] = zero | outside  # NaN coordinates compare false: not flagged
    out["flag_type_variant"] = variant
    out["flag_missing_neighborhood"] = out["neighborhood"].isna().to_numpy()
    out["latitude"] = out["latitude"].round(COORDINATE_DECIMALS)
    out["longitude"] = out["longitude"].round(COORDINATE_DECIMALS)
    return out


def _requests(raw_dir: Path) -> pd.DataFrame:
    types = {
        "request_id": pa.string(), "created_at": pa.timestamp("s"), "closed_at": pa.timestamp("s"),
        "due_at": pa.timestamp("s"), "council_district": pa.int64(), "latitude": pa.float64(),
        "longitude": pa.float64(), "is_duplicate": pa.bool_(), "parent_request_id": pa.string(),
        "neighborhood": pa.string(), "request_type": pa.string(),
    }  # fmt: skip
    return read_csv(raw_dir / "service_requests.csv", types)


def _applications(raw_dir: Path) -> pd.DataFrame:
    types = {
        "application_id": pa.string(), "submitted_at": pa.timestamp("s"), "decided_at": pa.timestamp("s"),
        "council_district": pa.int64(), "household_size": pa.int64(), "neighborhood": pa.string(),
    }  # fmt: skip
    return read_csv(raw_dir / "program_applications.csv", types)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def _check_columns(df: pd.DataFrame, table: str, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CitykitError(f"raw {table} export lacks columns: {', '.join(missing)}")


def publish(raw_dir: Path, out_dir: Path, *, dataset: str = "riverton", home: Path | None = None) -> PublishSummary:
    """Anonymize the raw export in `raw_dir` into canonical parquet tables in `out_dir`.

    `dataset` names the key of its published ids (`citykit.standards.pseudonyms`, kept in the
    data home `home`, default `paths.citykit_home()`): the same raw export publishes the same ids."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    boundaries = raw_dir / "boundaries.geojson"
    std = load_disaggregation()
    key = dataset_key(dataset, home)

    raw = _requests(raw_dir)
    _check_columns(raw, "service_requests", [c for c in SERVICE_REQUESTS if not c.startswith("flag_")])
    requests = flag_requests(raw.drop(columns=list(PERSONAL_COLUMNS["service_requests"])),
                             standard_request_types(), city_bounds(boundaries))  # fmt: skip
    requests, removed = blank_sensitive_coordinates(requests)
    for column in std.columns["service_requests"].names(publish=("pseudonymised",)):
        requests[column] = pseudonymise(requests[column], key, dataset, "service_requests", standard=std)
    requests = requests[list(SERVICE_REQUESTS)]
    write_parquet(requests, out_dir / "service_requests.parquet")

    raw_people = _applications(raw_dir)
    _check_columns(raw_people, "program_applications", raw_application_columns(std))
    people, aggregates, report = publish_applications(raw_people, key=key, dataset=dataset, standard=std)
    write_parquet(people, out_dir / "program_applications.parquet")
    aggregate_file = std.aggregate_tables["program_applications"].file
    write_parquet(aggregates, out_dir / aggregate_file)

    neighborhoods = read_csv(raw_dir / "neighborhoods.csv", {"area_km2": pa.float64()})
    _check_columns(neighborhoods, "neighborhoods", NEIGHBORHOODS)
    neighborhoods = neighborhoods[list(NEIGHBORHOODS)].astype(
        {c: "int64" for c in NEIGHBORHOODS if c not in ("neighborhood", "area_km2")}
    )
    write_parquet(neighborhoods, out_dir / "neighborhoods.parquet")
    shutil.copyfile(boundaries, out_dir / "boundaries.geojson")

    return PublishSummary(
        out_dir=out_dir,
        rows={
            "service_requests": len(requests),
            "program_applications": len(people),
            "neighborhoods": len(neighborhoods),
        },
        flags={c: int(requests[c].sum()) for c in SERVICE_REQUESTS if c.startswith("flag_")},
        coordinates_removed=removed,
        k_anonymity=k_anonymity_info(report),
        aggregates=aggregate_info(aggregates, aggregate_file),
    )


def k_anonymity_info(report: KAnonymityReport) -> dict[str, Any]:
    """A k-anonymity report as the build records it (build.json)."""
    return {
        "k": report.k,
        "quasi_identifiers": list(report.quasi_identifiers),
        "outcome_rule": {"column": report.outcome, "uniform_max": report.uniform_max},
        "rows_in": report.rows_in,
        "rows_out": report.rows_out,
        "suppressed": report.suppressed,
        "generalised": dict(report.generalised),
        "smallest_class": report.smallest_class,
        "standard_version": report.standard_version,
    }


def aggregate_info(aggregates: pd.DataFrame, file: str) -> dict[str, Any]:
    """What the aggregate table holds and hides (build.json)."""
    counts = [c for c in AGGREGATE_COUNTS if c in aggregates.columns]
    hidden = int(aggregates[counts].isna().sum().sum())
    return {
        "file": file,
        "rows": len(aggregates),
        "columns": sorted(set(aggregates["column"])),
        "cells": len(aggregates) * len(counts),
        "cells_suppressed": hidden,
    }


# -- program applications --------------------------------------------------------------------------

AGGREGATE_COUNTS = ("applications", *(o.lower() for o in OUTCOMES))
NOT_DECIDED = "not decided"
NOT_RECORDED = "not recorded"


def raw_application_columns(standard: DisaggregationStandard | None = None) -> list[str]:
    """The columns a raw applications export must hold: everything the standard classes for the
    table except what is derived at publication (days_to_decision)."""
    spec = (standard or load_disaggregation()).columns["program_applications"]
    return [c for e in spec.columns if not e.derived_from for c in spec.expand(e.column)]


def publish_applications(
    raw: pd.DataFrame,
    *,
    key: bytes,
    dataset: str,
    standard: DisaggregationStandard | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, KAnonymityReport]:
    """The person-level applications table, the aggregate table and the k-anonymity report, from
    raw applications (personal columns may be present: they are dropped), under `privacy.columns`:

    1. derived columns from the exact values (days_to_decision: whole days from submitted_at to
       decided_at, rounded down; empty while undecided);
    2. the aggregate table of the aggregate_only columns (`aggregate_table`), from every raw row;
    3. coarsened columns cut to their unit (submitted_at: the first day of its month);
    4. pseudonymised columns replaced by keyed hashes (application_id);
    5. the columns published in the rows (`PROGRAM_APPLICATIONS`), k-anonymized over every
       quasi-identifier among them with the outcome rule on `outcome`.
    """
    std = standard or load_disaggregation()
    spec = std.columns["program_applications"]
    df = raw.copy()
    if "days_to_decision" in spec.names() and {"submitted_at", "decided_at"} <= set(df.columns):
        elapsed = (df["decided_at"] - df["submitted_at"]) // pd.Timedelta(days=1)
        df["days_to_decision"] = pd.array(elapsed.where(df["decided_at"].notna()), dtype="Int64")
    aggregates = aggregate_table(df, standard=std)
    scope = f"{dataset}\x1e{edition(raw)}"  # ids of this export only: another export, other ids
    for entry in spec.columns:
        if entry.publish == "coarsened" and entry.column in df.columns:
            df[entry.column] = coarsen(df[entry.column], entry.unit or "month")
        if entry.publish == "pseudonymised" and entry.column in df.columns:
            df[entry.column] = pseudonymise(df[entry.column], key, scope, "program_applications", standard=std)
    unclassified = [c for c in PROGRAM_APPLICATIONS if spec.entry(c) is None or not spec.entry(c).in_rows]
    if unclassified:  # the contract and the standard disagree: never publish a column the standard does not
        raise CitykitError(f"the standard does not publish {', '.join(unclassified)} in program_applications' rows")
    people, report = k_anonymize(df[list(PROGRAM_APPLICATIONS)], standard=std)
    people = people.sort_values("application_id", ignore_index=True)
    return people, aggregates, report


def edition(raw: pd.DataFrame) -> str:
    """A digest of a raw export's rows (16 hex digits): the same rows, in any order and column
    order, give the same digest; any added row or changed value gives another."""
    frame = raw[sorted(raw.columns, key=str)]
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(np.sort(rows).tobytes()).hexdigest()[:16]


def coarsen(times: pd.Series, unit: str) -> pd.Series:
    """Timestamps cut to the first moment of their month, quarter or year (nulls stay null)."""
    if unit not in UNIT_FREQ:
        raise CitykitError(f"unknown unit {unit!r}; choose one of: {', '.join(UNIT_FREQ)}")
    cut = times.dt.to_period(UNIT_FREQ[unit]).dt.start_time
    return cut.astype(times.dtype)


def _band(values: pd.Series, rule: dict[str, Any]) -> pd.Series:
    """A column's values as the aggregate table shows them (bands from the standard)."""
    if "top" in rule:
        top = int(rule["top"])
        number = pd.to_numeric(values, errors="coerce")
        text = number.astype("Int64").astype(str).where(number < top, f"{top} or more")
        return text.where(number.notna(), NOT_RECORDED)
    if "breaks" in rule:
        unit = rule.get("unit", "")
        edges = [0, *map(int, rule["breaks"])]
        labels = [f"{lo}-{hi - 1} {unit}".strip() for lo, hi in itertools.pairwise(edges)]
        labels.append(f"{edges[-1]} {unit} or more".replace("  ", " ").strip())
        number = pd.to_numeric(values, errors="coerce")
        banded = pd.cut(number, [*edges, np.inf], right=False, labels=labels).astype(object)
        return pd.Series(banded, index=values.index).where(number.notna(), NOT_DECIDED)
    return values.astype(object).where(values.notna(), NOT_RECORDED).astype(str)


def _natural(value: str) -> tuple:
    """Sort key: "Under 30% AMI" < "30-50% AMI" < "Over 80% AMI"; "2" < "10"; words after numbers."""
    if value in (NOT_RECORDED, NOT_DECIDED):
        return (2, 0.0, value)
    numbers = re.findall(r"\d+", value)
    if not numbers:
        return (1, 0.0, value)
    first = float(numbers[0])
    if value.lower().startswith(("under", "below", "less")):
        first -= 0.5
    if value.lower().startswith(("over", "above", "more")):
        first += 0.5
    return (0, first, value)


def aggregate_table(df: pd.DataFrame, *, standard: DisaggregationStandard | None = None) -> pd.DataFrame:
    """The aggregate_only columns as counts of applications by outcome, per year of submission and
    value (banded as the standard says), citywide, under small_cells and the outcome rule
    (`citykit.standards.suppression`). The tables of one year count the same applications, so they
    are suppressed and audited together, their Total rows equal (a total hidden in one is hidden in
    all; walk-20 #15: printed in one, it pinned a "≤10" of another). Long format: year,
    column, value (with a "Total" row per table), applications, approved, denied, withdrawn,
    pending (hidden counts empty) and `hidden` (the marks of the hidden counts, e.g. "denied ≤10")."""
    std = standard or load_disaggregation()
    spec = std.columns["program_applications"]
    rule = std.aggregate_tables["program_applications"]
    columns = [c for c in spec.names(publish=("aggregate_only",)) if c in df.columns]
    year = df["submitted_at"].dt.year
    outcome_columns = [o.lower() for o in OUTCOMES]
    records = []
    tables = {}
    years = [int(y) for y in sorted(year.dropna().unique())]
    banded = {column: _band(df[column], rule.bands.get(column, {})) for column in columns}  # once, not per year
    for y in years:
        rows = year == y
        group = []
        for column in columns:
            grid = pd.crosstab(banded[column][rows], df.loc[rows, "outcome"]).reindex(
                columns=list(OUTCOMES), fill_value=0
            )
            grid.columns = outcome_columns
            grid = grid.loc[sorted(grid.index, key=_natural)]
            group.append(suppression.count_table(grid, name=column, outcome_columns=outcome_columns))
        relations = [  # the same applications: every table's Total row holds the same numbers
            suppression.Relation(((1.0, a.name, suppression.TOTAL, c), (-1.0, b.name, suppression.TOTAL, c)))
            for a, b in itertools.pairwise(group)
            for c in a.values.columns
        ]
        for table in suppression.suppress(group, relations, standard=std):
            tables[(table.name, y)] = table
    for column in columns:
        for y in years:
            table = tables[(column, y)]
            marks = table.marks(std)
            for label in table.values.index:
                record = {"year": y, "column": column, "value": str(label)}
                hidden = []
                for name in ("Total", *outcome_columns):
                    out = "applications" if name == "Total" else name
                    shown = not table.suppressed.at[label, name]
                    record[out] = int(table.values.at[label, name]) if shown else None
                    if not shown:
                        hidden.append(f"{out} {marks.at[label, name]}")
                record["hidden"] = "; ".join(hidden)
                records.append(record)
    out = pd.DataFrame.from_records(
        records, columns=["year", "column", "value", "applications", *outcome_columns, "hidden"]
    )
    return out.astype({c: "Int64" for c in ("applications", *outcome_columns)})
