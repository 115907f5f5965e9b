"""A source's declarative mapping (`citykit/resources/mappings/<source>.yml`), and recognising the
source of an export from its header."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from citykit import paths
from citykit.data.columns import CHANNELS, SERVICE_REQUESTS, STATUSES
from citykit.errors import CitykitError

MAPPINGS = "mappings"  # under citykit/resources/
CANONICAL_INPUTS = [c for c in SERVICE_REQUESTS if not c.startswith("flag_") and c != "is_duplicate"]
REQUIRED = ("request_id", "created_at", "status", "agency", "request_type")


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
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as error:
        raise CitykitError(f"mapping {path.name} cannot be read as a YAML text file ({type(error).__name__})") from None
    not_a_mapping = (
        f"mapping {path.name} is not a citykit mapping (a YAML mapping with `columns:`, like the bundled ones)"
    )
    if not isinstance(raw, dict) or not isinstance(raw.get("columns") or {}, dict):
        raise CitykitError(not_a_mapping)
    try:
        return _mapping(raw, path)
    except (AttributeError, TypeError, ValueError) as error:  # a field of the wrong shape (a list for a map, ...)
        raise CitykitError(f"{not_a_mapping}: {type(error).__name__}") from None


def _mapping(raw: dict[str, Any], path: Path) -> Mapping:
    columns = raw.get("columns") or {}
    unknown = [c for c in columns if c not in CANONICAL_INPUTS]
    if unknown:
        raise CitykitError(
            f"mapping {path.name}: unknown canonical columns {', '.join(unknown)}; use: {', '.join(CANONICAL_INPUTS)}"
        )
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
