"""Publish a raw export as the canonical, anonymized tables a training cohort may use.

Service requests: personal and free-text columns dropped, coordinates rounded to 3 decimals
(about 100 m), no coordinates for the standard's sensitive request types, and every defect flagged
from the raw values, never repaired ("flag, don't silently repair"). Program applications: personal
columns dropped, then k-anonymity under the disaggregation standard (`citykit.standards.kanonymity`).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
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
from citykit.data.columns import NEIGHBORHOODS, PROGRAM_APPLICATIONS, SERVICE_REQUESTS
from citykit.errors import CitykitError
from citykit.standards.kanonymity import k_anonymize
from citykit.standards.sensitive import blank_sensitive_coordinates

PERSONAL_COLUMNS = {
    "service_requests": ("incident_address", "caller_name", "caller_phone", "caller_email", "notes"),
    "program_applications": ("applicant_name", "phone", "email", "address", "date_of_birth"),
}
COORDINATE_DECIMALS = 3  # about 110 m of latitude
PLACEHOLDER_YEAR = 1900
TIMESTAMPS = {
    "service_requests": ("created_at", "closed_at", "due_at"),
    "program_applications": ("submitted_at", "decided_at"),
}


@dataclass(frozen=True)
class PublishSummary:
    out_dir: Path
    rows: dict[str, int]
    flags: dict[str, int]  # rows per flag column in the published service requests
    coordinates_removed: int  # sensitive-type requests published without coordinates
    k_anonymity: dict[str, Any]  # citykit.standards.kanonymity.KAnonymityReport as a dict


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


def publish(raw_dir: Path, out_dir: Path) -> PublishSummary:
    """Anonymize the raw export in `raw_dir` into canonical parquet tables in `out_dir`."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    boundaries = raw_dir / "boundaries.geojson"

    raw = _requests(raw_dir)
    _check_columns(raw, "service_requests", [c for c in SERVICE_REQUESTS if not c.startswith("flag_")])
    requests = flag_requests(raw.drop(columns=list(PERSONAL_COLUMNS["service_requests"])),
                             standard_request_types(), city_bounds(boundaries))  # fmt: skip
    requests, removed = blank_sensitive_coordinates(requests)
    requests = requests[list(SERVICE_REQUESTS)]
    write_parquet(requests, out_dir / "service_requests.parquet")

    people = _applications(raw_dir).drop(columns=list(PERSONAL_COLUMNS["program_applications"]))
    _check_columns(people, "program_applications", PROGRAM_APPLICATIONS)
    people, report = k_anonymize(people[list(PROGRAM_APPLICATIONS)])
    people = people.sort_values("application_id", ignore_index=True).astype({"household_size": "int64"})
    write_parquet(people, out_dir / "program_applications.parquet")

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
        k_anonymity={
            "k": report.k,
            "quasi_identifiers": list(report.quasi_identifiers),
            "rows_in": report.rows_in,
            "rows_out": report.rows_out,
            "suppressed": report.suppressed,
            "generalised": dict(report.generalised),
            "smallest_class": report.smallest_class,
            "standard_version": report.standard_version,
        },
    )
