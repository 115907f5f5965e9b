"""Denominators and people for an imported dataset: neighborhood population, boundaries, and
person-level program records.

- `import_population`: a CSV in the canonical `neighborhoods` columns, so per-capita rates work.
- `import_boundaries`: neighborhood polygons (GeoJSON), stored with a `neighborhood` property.
- `import_applications`: program records (applications, outcomes) through a mapping file;
  personal columns are never published, race and ethnicity are coded under the disaggregation
  standard (multi-select, unmapped codes are an error), and rows are k-anonymized under it.

An applications mapping (YAML) names the export's columns and how to read them:

    program: Rental assistance            # or map a `program` column
    columns: {application_id: App No, submitted_at: Submitted, decided_at: Decided, outcome: Decision,
              neighborhood: Area, council_district: District, age: Age,   # or age_band: Band
              gender: Sex, race: Race, household_size: HH, income_band: Income, language: Language}
    timestamp_formats: ["%Y-%m-%d"]
    outcome_map: {APPROVED: Approved, DENIED: Denied, WITHDRAWN: Withdrawn, PENDING: Pending}
    gender_map: {F: Woman, M: Man, X: Nonbinary}
    race_mapping: census_style             # a mapping in disaggregation.yml, or race_codes: {answer: code}
    race_separator: ";"                    # multi-select answers in one field

Columns not named there (names, phones, addresses, dates of birth) are never published. The import
writes its part of the dataset's `import_report.md` (`citykit.data.importers.report`): rows read and
published, the personal columns dropped, the rows with values it could not use, the fresh ids and the
k-anonymity result.

Each writes next to the dataset's service requests (`$CITYKIT_HOME/imported/<name>/`), replaces
the file atomically, and re-registers the dataset with its new table list. Raw files are only read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import shapely
import yaml
from shapely.geometry import mapping, shape

from citykit import standards
from citykit.data import registry
from citykit.data.anonymize import publish_applications, raw_application_columns, write_parquet
from citykit.data.columns import NEIGHBORHOODS, OUTCOMES, RACE_ETHNICITY
from citykit.data.importers import IMPORTED, Mapping, parse_timestamps
from citykit.data.importers.personal import SAMPLE_ROWS, content_reason, name_reason
from citykit.data.importers.report import ApplicationsImport, render_applications_report, write_report_section
from citykit.data.quality import scorecard
from citykit.data.schema import validate
from citykit.errors import CitykitError
from citykit.files import atomic_write, replacing
from citykit.standards.pseudonyms import dataset_key
from citykit.standards.reader import personal_columns

NAME_PROPERTIES = ("neighborhood", "name", "NAME", "nhood", "Neighborhood")


@dataclass(frozen=True)
class TableImport:
    """What an import of population, boundaries or applications wrote, in plain words."""

    dataset: str
    path: Path
    rows: int
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"{self.dataset}: wrote {self.rows:,} rows to {self.path.name}", *(f"- {n}" for n in self.notes)]
        return "\n".join(lines)


def target_dataset(name: str | None) -> registry.Dataset:
    """The imported dataset to attach a table to: `name`, or the only imported dataset."""
    if name is not None:
        ds = registry.get(name)
        if ds.kind != "parquet" or not ds.location.startswith(f"{IMPORTED}/"):
            raise CitykitError(
                f"dataset {name!r} is not an imported dataset; import a 311 export first (`citykit data import`)"
            )
        return ds
    imported = [
        d for d in registry.all_datasets().values() if d.kind == "parquet" and d.location.startswith(f"{IMPORTED}/")
    ]
    if len(imported) != 1:
        names = ", ".join(sorted(d.name for d in imported)) or "none yet"
        raise CitykitError(f"which dataset? pass --name (imported datasets: {names})")
    return imported[0]


def _write(df: pd.DataFrame, ds: registry.Dataset, table: str) -> Path:
    path = ds.folder / f"{table}.parquet"
    with replacing(path) as tmp:  # a unique temporary file: two imports at once never share one
        write_parquet(df, tmp)
    _reregister(ds)
    return path


def _reregister(ds: registry.Dataset) -> None:
    tables = tuple(t for t in registry.TABLES if (ds.folder / f"{t}.parquet").exists())
    registry.register(registry.Dataset(**{**ds.__dict__, "tables": tables}))


def _read_csv(file: Path) -> pd.DataFrame:
    file = Path(file)
    if not file.is_file() or file.stat().st_size == 0:
        raise CitykitError(f"{file} is missing or empty")
    try:
        return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""], encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CitykitError(f"{file.name} cannot be read as CSV: {str(error).splitlines()[0]}") from None


# --- population -----------------------------------------------------------------------------------


def import_population(file: Path | str, name: str | None = None) -> TableImport:
    """Neighborhood population in the canonical `neighborhoods` columns (race and ethnicity
    "alone" counts plus Multiracial, summing to the population)."""
    raw = _read_csv(Path(file))
    ds = target_dataset(name)
    raw.columns = [c.strip() for c in raw.columns]
    missing = [c for c in NEIGHBORHOODS if c not in raw.columns]
    if missing:
        raise CitykitError(
            f"{Path(file).name} lacks the neighborhoods columns {', '.join(missing)}; needs: {', '.join(NEIGHBORHOODS)}"
        )
    if raw.empty:
        raise CitykitError(f"{Path(file).name} has a header but no rows")
    df = raw[list(NEIGHBORHOODS)].copy()
    df["neighborhood"] = df["neighborhood"].str.strip()
    try:
        for column in NEIGHBORHOODS[1:]:
            values = pd.to_numeric(df[column].str.replace(",", "", regex=False), errors="raise")
            df[column] = values.astype("float64" if column in ("area_km2", "median_household_income") else "int64")
    except (ValueError, TypeError) as error:
        raise CitykitError(f"{Path(file).name}: {column} must be numbers in every row ({error})") from None
    validate(df, "neighborhoods")
    card = scorecard(df, "neighborhoods")
    mismatch = card.get("population_mismatch", "neighborhoods")
    if mismatch.failing:
        raise CitykitError(
            f"{Path(file).name}: in {mismatch.failing} neighborhoods (e.g. {', '.join(mismatch.examples)}) the pop_* "
            "counts do not add up to population; they must be the 'alone' counts plus pop_multiracial"
        )
    notes = [f"population {int(df['population'].sum()):,} in {len(df)} neighborhoods"]
    requests = ds.folder / "service_requests.parquet"
    if requests.exists():
        named = pd.read_parquet(requests, columns=["neighborhood"])["neighborhood"].dropna()
        unknown = named[~named.isin(df["neighborhood"])]
        notes.append(
            f"{len(unknown):,} requests name a neighborhood not in this table ({unknown.nunique()} names); "
            "they count citywide but get no per-capita rate"
        )
    return TableImport(ds.name, _write(df, ds, "neighborhoods"), len(df), tuple(notes))


# --- boundaries -----------------------------------------------------------------------------------


def import_boundaries(file: Path | str, name: str | None = None, name_property: str | None = None) -> TableImport:
    """Neighborhood polygons from a GeoJSON FeatureCollection (WGS84 longitude/latitude)."""
    ds = target_dataset(name)
    file = Path(file)
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CitykitError(f"{file.name} is not a GeoJSON file: {str(error).splitlines()[0]}") from None
    features = content.get("features") if isinstance(content, dict) else None
    if not features:
        raise CitykitError(
            f"{file.name} has no features; expected a GeoJSON FeatureCollection of neighborhood polygons"
        )
    props = features[0].get("properties") or {}
    key = name_property or next((p for p in NAME_PROPERTIES if p in props), None)
    if key is None:
        raise CitykitError(
            f"{file.name}: which property names the neighborhood? pass --property (properties: {', '.join(props)})"
        )
    out = []
    for i, feature in enumerate(features):
        label = (feature.get("properties") or {}).get(key)
        geometry = shape(feature["geometry"]) if feature.get("geometry") else None
        if not label or geometry is None or geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise CitykitError(f"{file.name}: feature {i} needs a {key!r} property and a Polygon or MultiPolygon")
        if not shapely.is_valid(geometry):
            geometry = shapely.make_valid(geometry)
        min_x, min_y, max_x, max_y = geometry.bounds
        if not (-180 <= min_x <= max_x <= 180 and -90 <= min_y <= max_y <= 90):
            raise CitykitError(
                f"{file.name}: feature {label!r} is not in longitude/latitude (WGS84); reproject it first"
            )
        out.append(
            {"type": "Feature", "properties": {"neighborhood": str(label).strip()}, "geometry": mapping(geometry)}
        )
    names = [f["properties"]["neighborhood"] for f in out]
    notes = []
    table = ds.folder / "neighborhoods.parquet"
    if table.exists():
        known = set(pd.read_parquet(table, columns=["neighborhood"])["neighborhood"])
        if set(names) != known:
            notes.append(f"names not in the neighborhoods table: {sorted(set(names) - known)[:5]}; "
                         f"table names without a polygon: {sorted(known - set(names))[:5]}")  # fmt: skip
    path = ds.folder / "boundaries.geojson"
    atomic_write(path, json.dumps({"type": "FeatureCollection", "features": out}))
    return TableImport(ds.name, path, len(out), tuple(notes))


# --- program applications -------------------------------------------------------------------------


def _age_band(age: pd.Series, bands: tuple[str, ...]) -> pd.Series:
    """Ages in years -> the standard's bands ("18-24", ..., "65+"); under the first band: null."""
    years = pd.to_numeric(age, errors="coerce")
    out = pd.Series(pd.NA, index=age.index, dtype="string")
    for band in bands:
        low, _, high = band.replace("+", "-").partition("-")
        inside = years.ge(int(low)) & (years.le(int(high)) if high else True)
        out[inside.fillna(False)] = band
    return out.astype(object).where(out.notna(), None)


def race_indicators(values: pd.Series, codes: dict[str, str | None], separator: str = ";") -> pd.DataFrame:
    """Multi-select race and ethnicity answers -> the canonical race_* indicator columns.

    `codes` maps source answers to the standard's codes (a mapping from disaggregation.yml);
    unmapped answers raise (never silently dropped). "multiracial" (detail lost at source) sets
    the seven category indicators to <NA>, as k-anonymity shows a multiracial person.
    """
    categories = list(RACE_ETHNICITY)
    out = pd.DataFrame(
        False, index=values.index, columns=[f"race_{c}" for c in [*categories, "not_reported", "declined"]]
    )
    multiracial = pd.Series(False, index=values.index)
    unknown: set[str] = set()
    for idx, answer in values.fillna("").items():
        parts = [p.strip() for p in str(answer).split(separator)] if answer else [""]
        for part in parts:
            if part not in codes:
                unknown.add(part)
                continue
            code = codes[part]
            if code == "multiracial":
                multiracial[idx] = True
            elif code:
                out.loc[idx, f"race_{code}"] = True
    if unknown:
        raise CitykitError(
            f"race/ethnicity answers not in the mapping: {', '.join(map(repr, sorted(unknown)))}; add them to race_codes"
        )
    if multiracial.any():
        for code in categories:
            out[f"race_{code}"] = out[f"race_{code}"].astype("boolean").mask(multiracial, pd.NA)
    given = out[[f"race_{c}" for c in categories]].fillna(True).any(axis=1)
    out.loc[given, ["race_not_reported", "race_declined"]] = False  # a category given wins over "not reported"
    return out


def import_applications(file: Path | str, mapping_file: Path | str, name: str | None = None) -> TableImport:
    """Person-level program records through a mapping file, k-anonymized under the standard."""
    ds = target_dataset(name)
    spec = _application_mapping(Path(mapping_file))
    std = standards.load_disaggregation()
    raw = _read_csv(Path(file))
    columns: dict[str, str] = spec["columns"]
    missing = [src for src in columns.values() if src not in raw.columns]
    if missing:
        raise CitykitError(
            f"{Path(file).name} lacks the mapped columns {', '.join(missing)}; it has: {', '.join(raw.columns)}"
        )
    if raw.empty:
        raise CitykitError(f"{Path(file).name} has a header but no rows")
    get = lambda c: raw[columns[c]].str.strip() if c in columns else pd.Series(None, index=raw.index, dtype=object)  # noqa: E731
    stamps = Mapping(source="applications", title="", city="", licence="", timezone=spec.get("timezone", "UTC"),
                     columns={}, timestamp_formats=tuple(spec.get("timestamp_formats", ["ISO8601"])))  # fmt: skip
    df = pd.DataFrame(index=raw.index)
    df["application_id"] = get("application_id")
    df["program"] = spec.get("program") or get("program")
    df["submitted_at"] = parse_timestamps(get("submitted_at"), stamps)
    df["decided_at"] = parse_timestamps(get("decided_at"), stamps)
    outcome = get("outcome").map(lambda v: spec.get("outcome_map", {}).get(v, v))
    bad = sorted(set(outcome.dropna()) - set(OUTCOMES))
    if bad or outcome.isna().any():
        raise CitykitError(f"outcomes not in {', '.join(OUTCOMES)}: {bad or ['(empty)']}; add them to outcome_map")
    df["outcome"] = outcome
    df["neighborhood"] = get("neighborhood")
    df["council_district"] = pd.to_numeric(get("council_district"), errors="coerce").astype("Int64")
    df["age_band"] = _age_band(get("age"), std.age_bands) if "age" in columns else get("age_band")
    df["gender"] = get("gender").map(lambda v: spec.get("gender_map", {}).get(v, v))
    codes = spec.get("race_codes") or std.race_mappings[spec.get("race_mapping", "census_style")]
    df = df.join(race_indicators(get("race"), codes, spec.get("race_separator", ";")))
    # an empty or unreadable household size is "not recorded" in the aggregate table (never a guessed 1)
    df["household_size"] = pd.to_numeric(get("household_size"), errors="coerce").astype("Int64")
    df["income_band"] = get("income_band")
    df["language"] = get("language")
    if df["submitted_at"].isna().any():
        raise CitykitError("some submitted dates are empty or not in timestamp_formats; fix the mapping's formats")
    # the standard's treatment of every column (privacy.columns): fresh ids under the dataset's key,
    # the month of submission, k-anonymity with the outcome rule, the aggregate-only columns apart
    published, aggregates, report = publish_applications(df, key=dataset_key(ds.name), dataset=ds.name, standard=std)
    validate(published, "program_applications")
    path = _write(published, ds, "program_applications")
    aggregate_path = ds.folder / std.aggregate_tables["program_applications"].file
    with replacing(aggregate_path) as tmp:
        write_parquet(aggregates, tmp)
    months = published["submitted_at"].dropna()
    facts = ApplicationsImport(
        file=Path(file), mapping=Path(mapping_file), program=str(spec.get("program") or f"from the export's {columns.get('program', '(none)')} column"),
        columns=columns, export_columns=[str(c) for c in raw.columns], personal=_personal(raw, columns),
        rows_read=len(raw), published=path, rows_published=len(published), findings=_findings(raw, df, columns, std, ds),
        ids_fresh=int(published["application_id"].notna().sum()),
        ids_equal_raw=int(published["application_id"].isin(set(df["application_id"].dropna())).sum()),
        k_anonymity=report, aggregate=aggregate_path, aggregate_rows=len(aggregates),
        aggregate_hidden=int(aggregates["hidden"].str.count(";").add(aggregates["hidden"].ne("")).sum()),
        aggregate_only=[c for c in std.columns["program_applications"].names(publish=("aggregate_only",))],
        as_of=ds.as_of, months=(f"{months.min():%Y-%m}", f"{months.max():%Y-%m}") if len(months) else None,
    )  # fmt: skip
    saved = write_report_section(ds.folder, render_applications_report(facts))
    return TableImport(ds.name, path, len(published), (str(report), f"import report: {saved}"))


def _personal(raw: pd.DataFrame, columns: dict[str, str]) -> dict[str, str]:
    """The export's columns the mapping does not read that are personal, by name or by the content
    of their first rows (the 311 import's tests), each with why."""
    found = {}
    for column in raw.columns:
        if column in set(columns.values()):
            continue
        why = name_reason(str(column)) or content_reason(raw[column].head(SAMPLE_ROWS))
        if why:
            found[str(column)] = why
    return found


def _findings(
    raw: pd.DataFrame, df: pd.DataFrame, columns: dict[str, str], std: standards.DisaggregationStandard,
    ds: registry.Dataset,
) -> dict[str, int]:  # fmt: skip
    """Rows with a value the import could not use or that needs a look (kept, counted), per reason."""
    given = lambda c: raw[columns[c]].notna() & raw[columns[c]].str.strip().ne("") if c in columns else None  # noqa: E731
    out: dict[str, int] = {}
    if "decided_at" in columns:
        out["decided date not readable (not in timestamp_formats): no decision date"] = int(
            (given("decided_at") & df["decided_at"].isna()).sum())  # fmt: skip
        out["decided before submitted: no days to decision"] = int((df["decided_at"] < df["submitted_at"]).sum())
    if "council_district" in columns:
        out["council district not a number: empty"] = int(
            (given("council_district") & df["council_district"].isna()).sum()
        )
    if "age" in columns:
        out[f"age not a number, or under {std.age_bands[0]}: no age band"] = int(
            (given("age") & df["age_band"].isna()).sum())  # fmt: skip
    if "household_size" in columns:
        out["household size empty or not a number: not recorded"] = int(df["household_size"].isna().sum())
    if "gender" in columns:
        odd = df["gender"].notna() & ~df["gender"].isin(std.genders)
        out[f"gender not one of the standard's ({', '.join(std.genders)}): kept as given; add it to gender_map"] = int(
            odd.sum())  # fmt: skip
    if "neighborhood" in columns:
        out["no neighborhood: counted citywide only"] = int(df["neighborhood"].isna().sum())
    ids = df["application_id"]
    out["application id empty"] = int(ids.isna().sum())
    out["application id repeated in the export (each row kept, sharing one published id)"] = int(
        ids.dropna().duplicated(keep=False).sum())  # fmt: skip
    if ds.as_of is not None:
        out[f"submitted after the dataset's as-of date ({ds.as_of})"] = int(
            (df["submitted_at"].dt.date > ds.as_of).sum())  # fmt: skip
    return out


def _application_mapping(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise CitykitError(f"mapping file {path} not found")
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    columns = spec.get("columns") or {}
    allowed = {*raw_application_columns(), "age", "race"} - {f"race_{c}" for c in RACE_ETHNICITY}
    allowed -= {c for cs in personal_columns().values() for c in cs}  # never read (names, phones, ...)
    unknown = [c for c in columns if c not in allowed]
    needed = [c for c in ("application_id", "submitted_at", "outcome", "race") if c not in columns]
    if unknown or needed:
        raise CitykitError(
            f"{path.name}: columns must map {', '.join(sorted(allowed))}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(needed)}" if needed else "")
        )
    spec["columns"] = {str(k): str(v) for k, v in columns.items()}
    return spec
