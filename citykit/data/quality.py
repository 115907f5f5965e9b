"""The data-quality scorecard: five dimensions, each check counted from the values, gated by
`curriculum/standards/quality.yml`.

Defects are detected from the data itself (closed_at < created_at, coordinates 0,0, year-1900
dates, ...), not read from the publisher's flag columns, so the scorecard independently verifies
the publisher. The one exception is `flag_type_variant`: once a spelling variant is mapped to its
standard name, the raw spelling is gone. Every "now" is the dataset's as-of "now", never the clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import html
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from citykit import paths, standards
from citykit.data import registry
from citykit.data.anonymize import city_bounds
from citykit.data.columns import CHANNELS, OUTCOMES, RACE_ETHNICITY, STATUSES
from citykit.data.load import load
from citykit.data.views import boundaries
from citykit.errors import CitykitError, WorkFailed
from citykit.files import atomic_write

if TYPE_CHECKING:
    from rich.console import Console

DIMENSIONS = ("completeness", "validity", "consistency", "uniqueness", "timeliness")
DECIDED_OUTCOMES = ("Approved", "Denied")
OPEN_STATUSES = ("Open", "In Progress")
PLACEHOLDER_YEAR = 1900  # placeholder dates such as 1900-01-01 (facts.md: real exports)
# A single coordinate pair holding this many located rows is a default point, not a place.
PLACEHOLDER_POINT_MIN_ROWS = 100
PLACEHOLDER_POINT_MIN_SHARE = 0.01
BOUNDS_PADDING_DEGREES = 0.01  # about 1 km: published coordinates are rounded to about 100 m
MAX_EXAMPLES = 3

# Every check: table -> name -> (dimension, plain-language description). quality.yml gates these.
CATALOG: dict[str, dict[str, tuple[str, str]]] = {
    "service_requests": {
        "missing_neighborhood": ("completeness", "Requests with no neighborhood"),
        "missing_coordinates": ("completeness", "Requests of non-sensitive types with no coordinates"),
        "missing_due_date": ("completeness", "Requests with no due date (SLA target)"),
        "placeholder_coords": (
            "validity",
            "Coordinates at 0,0, outside the city, or at one default point shared by many requests",
        ),
        "placeholder_date": ("validity", f"Timestamps in the placeholder year {PLACEHOLDER_YEAR} or earlier"),
        "invalid_status": ("validity", f"Status not one of {', '.join(STATUSES)}"),
        "invalid_channel": ("validity", f"Channel not one of {', '.join(CHANNELS)}"),
        "unknown_neighborhood": ("validity", "Neighborhood not in the neighborhoods table"),
        "type_variant": ("validity", "Request type was a spelling variant, mapped to its standard name"),
        "type_spelling_variants": (
            "validity",
            "Request types that differ from a more common type only in case or spacing",
        ),
        "closed_before_created": (
            "consistency",
            "Closed before they were created (placeholder dates not counted here)",
        ),
        "closed_without_close_time": ("consistency", "Status Closed but no closed_at"),
        "open_with_close_time": ("consistency", "Status Open or In Progress but closed_at is set"),
        "duplicate_missing_parent": (
            "consistency",
            "Marked duplicate but the parent request is missing or not in the table",
        ),
        "duplicate_request_id": ("uniqueness", "Extra rows that repeat a request_id"),
        "marked_duplicate": ("uniqueness", "Requests marked as duplicates of an earlier request"),
        "created_in_future": ("timeliness", "Created or closed after the dataset's as-of date"),
        "staleness_days": ("timeliness", "Days between the newest request and the day the data were extracted"),
    },
    "program_applications": {
        "race_unrecorded": (
            "completeness",
            "No race/ethnicity category (nor Multiracial by generalisation), Not reported or Declined",
        ),
        "missing_neighborhood": ("completeness", "Neighborhood generalised away (k-anonymity) or missing"),
        "invalid_outcome": ("validity", f"Outcome not one of {', '.join(OUTCOMES)}"),
        "invalid_age_band": ("validity", "Age band not in the standard (nor one of its wider k-anonymity bands)"),
        "invalid_gender": ("validity", "Gender not in the standard (nor its k-anonymity generalisation)"),
        "unknown_neighborhood": ("validity", "Neighborhood not in the neighborhoods table"),
        "race_conflict": ("consistency", "A race/ethnicity category set together with Declined or Not reported"),
        "decided_without_date": ("consistency", "Approved or Denied but no decided_at"),
        "decided_before_submitted": ("consistency", "Decided before submitted"),
        "duplicate_application_id": ("uniqueness", "Extra rows that repeat an application_id"),
        "submitted_in_future": ("timeliness", "Submitted or decided after the dataset's as-of date"),
    },
    "neighborhoods": {
        "missing_values": ("completeness", "Neighborhoods with a missing value in any column"),
        "population_mismatch": ("validity", "Race/ethnicity counts (pop_*) do not sum to population"),
        "duplicate_neighborhood": ("uniqueness", "Extra rows that repeat a neighborhood name"),
    },
}
ID_COLUMN = {
    "service_requests": "request_id",
    "program_applications": "application_id",
    "neighborhoods": "neighborhood",
}


@dataclass(frozen=True)
class Gate:
    """A limit from quality.yml: the largest share of rows (or number of days) a check may reach."""

    limit: float
    unit: str = "share"  # "share" (of the rows checked) or "days"
    why: str = ""


@dataclass(frozen=True)
class Check:
    """One scored check: how many rows fail it, out of how many it applies to."""

    table: str
    dimension: str
    name: str
    description: str
    failing: int
    rows: int
    examples: tuple[str, ...] = ()
    value: float | None = None  # measured amount for "days" checks (e.g. staleness)
    gate: Gate | None = None

    @property
    def share(self) -> float:
        return self.failing / self.rows if self.rows else 0.0

    @property
    def measured(self) -> float:
        """What the gate compares: the share of failing rows, or the days for a "days" check."""
        return float(self.value) if self.value is not None else self.share

    @property
    def gate_failed(self) -> bool:
        return self.gate is not None and self.measured > self.gate.limit

    def verdict(self) -> str:
        return "no gate" if self.gate is None else ("FAIL" if self.gate_failed else "pass")


@dataclass
class Scorecard:
    """The checks of one or more tables; `passed` when every gate passes."""

    checks: list[Check]
    dataset: str | None = None
    as_of: dt.datetime | None = None

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.gate_failed]

    def get(self, name: str, table: str = "service_requests") -> Check:
        for check in self.checks:
            if check.name == name and check.table == table:
                return check
        raise KeyError(f"no check {name!r} for {table}")

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for c in self.checks:
            row = {k: v for k, v in asdict(c).items() if k != "gate"}
            row.update(
                share=c.share,
                examples=", ".join(c.examples),
                limit=c.gate.limit if c.gate else None,
                unit=c.gate.unit if c.gate else ("days" if c.value is not None else "share"),
                result=c.verdict(),
            )
            rows.append(row)
        columns = ["table", "dimension", "name", "description", "failing", "rows", "share", "value"]
        columns += ["limit", "unit", "result", "examples"]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        gated = [c for c in self.checks if c.gate is not None]
        if self.passed:
            return f"All {len(gated)} quality gates pass."
        failures = "; ".join(f"{c.table}.{c.name} {_amount(c)} > {_limit(c)}" for c in self.failed)
        return f"{len(self.failed)} of {len(gated)} quality gates fail: {failures}"

    def raise_if_failed(self) -> None:
        """Raise `WorkFailed` (exit 1) naming the failing gates."""
        if not self.passed:
            raise WorkFailed(self.summary())

    def render(self, console: Console | None = None) -> None:
        """Print the scorecard: one rich table per data table, then the verdict. Examples are
        shown when the console is wide enough (to_frame() and the HTML always carry them)."""
        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        console.print(self._title(), style="bold")
        style = {"FAIL": "bold red", "pass": "green", "no gate": "dim"}
        show_rows, show_examples = console.width >= 100, console.width >= 130
        for name in dict.fromkeys(c.table for c in self.checks):
            table = Table(
                title=name,
                title_justify="left",
                title_style="bold",
                box=box.SIMPLE_HEAD,
                pad_edge=False,
                collapse_padding=True,
                show_edge=False,
            )
            table.add_column("dimension", no_wrap=True)
            table.add_column("check", no_wrap=True)
            for header in ("failing", "of rows", "share", "gate") if show_rows else ("failing", "share", "gate"):
                table.add_column(header, justify="right", no_wrap=True)
            table.add_column("result", no_wrap=True)
            if show_examples:
                table.add_column("e.g.", no_wrap=True)
            for c in (c for c in self.checks if c.table == name):
                row = [
                    c.dimension,
                    c.name,
                    "" if c.value is not None else f"{c.failing:,}",
                    *(["" if c.value is not None else f"{c.rows:,}"] if show_rows else []),
                    _amount(c),
                    _limit(c),
                    f"[{style[c.verdict()]}]{c.verdict()}[/]",
                ]
                table.add_row(*row, *([", ".join(c.examples)] if show_examples else []))
            console.print(table)
        console.print(self.summary(), style="green" if self.passed else "bold red")

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        frame["share"] = [_amount(c) for c in self.checks]
        frame["limit"] = [_limit(c) if c.gate else "" for c in self.checks]
        shown = frame[["table", "dimension", "description", "failing", "rows", "share", "limit", "result", "examples"]]
        return (
            f"<h4>{html.escape(self._title())}</h4>"
            f"{shown.to_html(index=False, escape=True, na_rep='')}"
            f"<p><strong>{html.escape(self.summary())}</strong></p>"
        )

    def _title(self) -> str:
        title = f"Data quality: {self.dataset}" if self.dataset else "Data quality"
        return f"{title} (now = {self.as_of:%Y-%m-%d %H:%M})" if self.as_of else title


def _amount(c: Check) -> str:
    return f"{c.value:.1f} days" if c.value is not None else f"{c.share:.2%}"


def _limit(c: Check) -> str:
    if c.gate is None:
        return ""
    return f"{c.gate.limit:g} days" if c.gate.unit == "days" else f"{c.gate.limit:.2%}"


# --- gates -------------------------------------------------------------------------------------


def quality_file() -> Path:
    return paths.standard_file("quality.yml")


def load_gates(path: Path | None = None) -> dict[str, dict[str, Gate]]:
    """The gates in quality.yml, by table and check name; unknown names are an error."""
    path = path or quality_file()
    if not path.exists():
        raise CitykitError(f"quality gates not found at {path}")
    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    gates: dict[str, dict[str, Gate]] = {}
    for table, entries in (content.get("gates") or {}).items():
        if table not in CATALOG:
            raise CitykitError(f"{path.name}: unknown table {table!r}; choose one of: {', '.join(CATALOG)}")
        gates[table] = {}
        for name, entry in (entries or {}).items():
            if name not in CATALOG[table]:
                known = ", ".join(CATALOG[table])
                raise CitykitError(f"{path.name}: unknown check {table}.{name}; known checks: {known}")
            if "max_share" in entry:
                gates[table][name] = Gate(float(entry["max_share"]), "share", entry.get("why", ""))
            elif "max_days" in entry:
                gates[table][name] = Gate(float(entry["max_days"]), "days", entry.get("why", ""))
            else:
                raise CitykitError(f"{path.name}: {table}.{name} needs max_share or max_days")
    return gates


# --- reference data ------------------------------------------------------------------------------


def standard_categories() -> dict[str, set[str]]:
    """Applicant age bands and genders the disaggregation standard allows, with the wider labels
    its k-anonymity steps generalise to (null, "not shown", is always allowed)."""
    std = standards.load_disaggregation()
    allowed = {"age_band": set(std.age_bands), "gender": set(std.genders)}
    for step in std.k_anonymity.steps:
        if step.kind == "map" and step.column in allowed:
            allowed[step.column] |= {label for label in step.mapping.values() if label}
    return allowed


# --- scoring -------------------------------------------------------------------------------------


@dataclass
class _Scorer:
    """Builds the checks of one table: each from a boolean mask over the rows it applies to."""

    table: str
    df: pd.DataFrame
    gates: dict[str, Gate]
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, failing: pd.Series, applies: pd.Series | None = None) -> None:
        dimension, description = CATALOG[self.table][name]
        failing = failing.fillna(False).astype(bool)
        rows = len(self.df) if applies is None else int(applies.sum())
        ids = self.df.loc[failing, ID_COLUMN[self.table]].head(MAX_EXAMPLES)
        self.checks.append(
            Check(
                table=self.table,
                dimension=dimension,
                name=name,
                description=description,
                failing=int(failing.sum()),
                rows=rows,
                examples=tuple(str(v) for v in ids),
                gate=self.gates.get(name),
            )
        )

    def add_days(self, name: str, days: float) -> None:
        dimension, description = CATALOG[self.table][name]
        check = Check(self.table, dimension, name, description, 0, len(self.df), value=days, gate=self.gates.get(name))
        self.checks.append(check)


def scorecard(
    df: pd.DataFrame,
    table: str = "service_requests",
    as_of: dt.datetime | dt.date | None = None,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    neighborhoods: Iterable[str] | None = None,
    categories: dict[str, set[str]] | None = None,
    gates: dict[str, dict[str, Gate]] | None = None,
    extract_date: dt.datetime | dt.date | None = None,
) -> Scorecard:
    """Score one canonical table.

    as_of: the analysis "now" (a date means midnight after it, as in the registry); without it the
    timeliness checks are left out. extract_date: the day the export was taken (default: as_of);
    staleness is the time from the newest plausible request to the end of that day, so an old
    export fails the gate even when its as-of date was inferred from its own newest record. bounds: (min_lon, min_lat, max_lon, max_lat) of the city, for
    coordinates outside it. neighborhoods: the known names, for unknown-neighborhood checks.
    categories: allowed applicant `age_band` / `gender` values (default: the disaggregation standard's).
    gates: by table and check name (default: curriculum/standards/quality.yml).
    """
    if table not in CATALOG:
        raise CitykitError(f"unknown table {table!r}; choose one of: {', '.join(CATALOG)}")
    now = _as_now(as_of)
    gates = load_gates() if gates is None else gates
    scorer = _Scorer(table, df.reset_index(drop=True), gates.get(table, {}))
    known = None if neighborhoods is None else set(neighborhoods)
    if table == "service_requests":
        _score_requests(scorer, now, bounds, known, _as_now(extract_date) if extract_date is not None else now)
    elif table == "program_applications":
        _score_applications(scorer, now, known, standard_categories() if categories is None else categories)
    else:
        _score_neighborhoods(scorer)
    return Scorecard(scorer.checks, as_of=now)


def _as_now(as_of: dt.datetime | dt.date | None) -> dt.datetime | None:
    if as_of is None or isinstance(as_of, dt.datetime):
        return as_of
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


def _now_for(series: pd.Series, now: dt.datetime) -> pd.Timestamp:
    """`now` comparable with a timestamp column (city-local; localised if the column is tz-aware)."""
    stamp = pd.Timestamp(now)
    tz = getattr(series.dt, "tz", None)
    return stamp.tz_localize(tz) if tz is not None and stamp.tzinfo is None else stamp


def _placeholder_year(series: pd.Series) -> pd.Series:
    return series.dt.year.le(PLACEHOLDER_YEAR).fillna(False).astype(bool)


def _score_requests(
    s: _Scorer,
    now: dt.datetime | None,
    bounds: tuple[float, float, float, float] | None,
    known: set[str] | None,
    extracted: dt.datetime | None = None,
) -> None:
    df = s.df
    created, closed, status = df["created_at"], df["closed_at"], df["status"]
    lat, lon = df["latitude"], df["longitude"]
    located = lat.notna() & lon.notna()

    # completeness
    s.add("missing_neighborhood", _blank(df["neighborhood"]))
    non_sensitive = ~df["request_type"].isin(standards.load_disaggregation().sensitive_request_types)
    s.add("missing_coordinates", non_sensitive & ~located, applies=non_sensitive)
    s.add("missing_due_date", df["due_at"].isna())

    # validity
    s.add("placeholder_coords", _placeholder_coords(lat, lon, located, bounds), applies=located)
    placeholder_dates = _placeholder_year(created) | _placeholder_year(closed) | _placeholder_year(df["due_at"])
    s.add("placeholder_date", placeholder_dates)
    s.add("invalid_status", ~status.isin(STATUSES))
    s.add("invalid_channel", ~df["channel"].isin(CHANNELS))
    if known is not None:
        named = ~_blank(df["neighborhood"])
        s.add("unknown_neighborhood", named & ~df["neighborhood"].isin(known), applies=named)
    s.add("type_variant", df["flag_type_variant"])  # the raw spelling is gone: only the flag can tell
    s.add("type_spelling_variants", _spelling_variants(df["request_type"]))

    # consistency
    real_dates = ~_placeholder_year(created) & ~_placeholder_year(closed)
    s.add("closed_before_created", (closed < created) & real_dates, applies=closed.notna())
    is_closed = status.eq("Closed")
    s.add("closed_without_close_time", is_closed & closed.isna(), applies=is_closed)
    is_open = status.isin(OPEN_STATUSES)
    s.add("open_with_close_time", is_open & closed.notna(), applies=is_open)
    duplicate = df["is_duplicate"].fillna(False).astype(bool)
    parent = df["parent_request_id"]
    # object dtype: pandas' arrow-backed strings check isin against a large list slowly; only the
    # parents of marked duplicates are looked up (the only rows the check counts)
    orphan = _blank(parent)
    named = (duplicate & ~orphan).to_numpy(dtype=bool, na_value=False)
    if named.any():
        orphan[named] = ~parent[named].astype(object).isin(df["request_id"].astype(object)).to_numpy()
    s.add("duplicate_missing_parent", duplicate & orphan, applies=duplicate)

    # uniqueness
    s.add("duplicate_request_id", df["request_id"].duplicated(keep="first"))
    s.add("marked_duplicate", duplicate)

    # timeliness
    if now is not None:
        s.add("created_in_future", created.ge(_now_for(created, now)) | closed.ge(_now_for(closed, now)))
        extracted = extracted or now
        real_created = created[~_placeholder_year(created) & created.lt(_now_for(created, extracted))]
        newest = real_created.max()
        days = (_now_for(created, extracted) - newest) / pd.Timedelta(days=1) if pd.notna(newest) else float("inf")
        s.add_days("staleness_days", round(float(days), 2))


def _blank(series: pd.Series) -> pd.Series:
    """Missing, or text that is empty once trimmed."""
    if pd.api.types.is_string_dtype(series) or series.dtype == object:
        return series.isna() | series.astype("string").str.strip().eq("").fillna(True)
    return series.isna()


def _placeholder_coords(
    lat: pd.Series, lon: pd.Series, located: pd.Series, bounds: tuple[float, float, float, float] | None
) -> pd.Series:
    zero = lat.eq(0) & lon.eq(0)
    outside = pd.Series(False, index=lat.index)
    if bounds is not None:
        min_lon, min_lat, max_lon, max_lat = bounds
        pad = BOUNDS_PADDING_DEGREES
        inside = lat.between(min_lat - pad, max_lat + pad) & lon.between(min_lon - pad, max_lon + pad)
        outside = located & ~inside
    # A default point: one exact coordinate pair carrying an implausible share of located rows.
    pairs = pd.DataFrame({"lat": lat[located], "lon": lon[located]})
    counts = pairs.value_counts()
    threshold = max(PLACEHOLDER_POINT_MIN_ROWS, PLACEHOLDER_POINT_MIN_SHARE * int(located.sum()))
    defaults = counts[counts >= threshold].index
    at_default = pd.Series(False, index=lat.index)
    if len(defaults):
        at_default = pd.MultiIndex.from_arrays([lat, lon]).isin(defaults)
        at_default = pd.Series(at_default, index=lat.index) & located
    return (zero | outside | at_default) & located


def _spelling_variants(types: pd.Series) -> pd.Series:
    """Rows whose request_type differs from the most common spelling of the same case- and
    space-insensitive name (e.g. "Pot hole" beside "Pothole")."""
    counts = types.value_counts()  # spelling -> rows, most common first
    key = counts.index.to_series().str.casefold().str.replace(r"\s+", "", regex=True)
    standard = counts.groupby(key.to_numpy()).idxmax()  # key -> its most common spelling
    variants = [spelling for spelling, k in key.items() if standard[k] != spelling]
    return types.isin(variants)


def _score_applications(
    s: _Scorer, now: dt.datetime | None, known: set[str] | None, categories: dict[str, set[str]] | None
) -> None:
    df = s.df
    indicators = df[[f"race_{code}" for code in RACE_ETHNICITY]]
    # k-anonymity shows a multi-category person as Multiracial and/or Multiethnic: indicators <NA>.
    race = indicators.fillna(False).astype(bool).any(axis=1) | indicators.isna().any(axis=1)
    not_given = df["race_not_reported"].fillna(False).astype(bool) | df["race_declined"].fillna(False).astype(bool)
    # published applications carry no decided_at (standard 1.4.0: only days to decision, in aggregate)
    submitted, outcome = df["submitted_at"], df["outcome"]
    decided = df["decided_at"] if "decided_at" in df.columns else pd.Series(pd.NaT, index=df.index)

    s.add("race_unrecorded", ~race & ~not_given)
    s.add("missing_neighborhood", _blank(df["neighborhood"]))
    s.add("invalid_outcome", ~outcome.isin(OUTCOMES))
    for column, allowed in (categories or {}).items():
        if column in df.columns:  # age_band is published in aggregate only (standard 1.4.0)
            s.add(f"invalid_{column}", df[column].notna() & ~df[column].isin(allowed))
    if known is not None:
        named = ~_blank(df["neighborhood"])
        s.add("unknown_neighborhood", named & ~df["neighborhood"].isin(known), applies=named)
    s.add("race_conflict", race & not_given)
    is_decided = outcome.isin(DECIDED_OUTCOMES)
    if "decided_at" in df.columns:
        s.add("decided_without_date", is_decided & decided.isna(), applies=is_decided)
        s.add("decided_before_submitted", decided < submitted, applies=decided.notna())
    s.add("duplicate_application_id", df["application_id"].duplicated(keep="first"))
    if now is not None:
        s.add("submitted_in_future", submitted.ge(_now_for(submitted, now)) | decided.ge(_now_for(decided, now)))


def _score_neighborhoods(s: _Scorer) -> None:
    df = s.df
    pop_columns = [f"pop_{code}" for code in RACE_ETHNICITY] + ["pop_multiracial"]
    s.add("missing_values", df.isna().any(axis=1))
    s.add("population_mismatch", df[pop_columns].sum(axis=1, min_count=1).ne(df["population"]))
    s.add("duplicate_neighborhood", df["neighborhood"].duplicated(keep="first"))


# --- a whole dataset -------------------------------------------------------------------------------


def check_dataset(name: str = "riverton") -> Scorecard:
    """Score every table of a registered dataset (parquet, or a database) at its as-of "now".

    A parquet dataset's scorecard is kept per version of its files and of the gates, so a batch of
    reports on one dataset (one kernel per worker) scores it once, not once per report."""
    ds = registry.get(name)
    if ds.kind != "parquet":
        return _check_dataset(name)
    files = [*(ds.table_path(t) for t in ds.tables), ds.boundaries_path, quality_file()]
    card = _check_dataset_version((name, repr(ds), tuple(_stamp(path) for path in files)))
    return Scorecard(list(card.checks), dataset=card.dataset, as_of=card.as_of)


def _stamp(path: Path) -> tuple:
    try:
        found = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), found.st_mtime_ns, found.st_size)


@functools.lru_cache(maxsize=4)
def _check_dataset_version(version: tuple) -> Scorecard:
    """The scorecard of one version of a parquet dataset: kept beside its tables (`CARD_FILE`) for
    the next process, since scoring reads every row into pandas (12 s and 2.6 GB for 6 million
    requests); the file counts only while the tables, the standards and this code are unchanged."""
    ds = registry.get(version[0])
    key = _card_key(ds)
    saved = _read_card(ds.folder / CARD_FILE, key)
    if saved is not None:
        return saved
    card = _check_dataset(version[0])
    _write_card(ds.folder / CARD_FILE, key, card)
    return card


CARD_FILE = ".quality-scorecard.json"  # beside a parquet dataset's tables


def _card_key(ds: registry.Dataset) -> str:
    """What a saved scorecard depends on: the dataset's entry, its files (name, time, size), the
    standards it is scored under and the code scoring it (every module of citykit.data and of
    citykit.standards, about 2 ms to read)."""
    from citykit.data.build_info import BUILT_FROM  # lazy: only when a dataset is scored

    digest = hashlib.sha256(repr(ds).encode())
    for path in (*(ds.table_path(t) for t in ds.tables), ds.boundaries_path):
        digest.update(repr(_stamp(path)[1:]).encode() + path.name.encode())
    code = sorted(Path(__file__).parent.glob("*.py")) + sorted(Path(standards.__file__).parent.glob("*.py"))
    for path in (quality_file(), *(paths.standard_file(name) for name in BUILT_FROM), *code):  # the scoring code:
        digest.update(path.read_bytes() if path.is_file() else b"-")  # citykit.data's and the standards' modules
    digest.update(pd.__version__.encode())
    return digest.hexdigest()


def _read_card(path: Path, key: str) -> Scorecard | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") != key:
            return None
        checks = [
            Check(**{**c, "examples": tuple(c["examples"]), "gate": Gate(**c["gate"]) if c["gate"] else None})
            for c in saved["checks"]
        ]
        as_of = dt.datetime.fromisoformat(saved["as_of"]) if saved["as_of"] else None
        return Scorecard(checks, dataset=saved["dataset"], as_of=as_of)
    except (OSError, ValueError, KeyError, TypeError):  # missing, unreadable or from other code: score again
        return None


def _write_card(path: Path, key: str, card: Scorecard) -> None:
    """Saved atomically; a folder the user cannot write (shared data) keeps none."""
    checks = [{**asdict(c), "failing": int(c.failing), "rows": int(c.rows), "examples": [str(e) for e in c.examples],
               "value": None if c.value is None else float(c.value)} for c in card.checks]  # fmt: skip
    text = json.dumps({"key": key, "dataset": card.dataset, "checks": checks,
                       "as_of": card.as_of.isoformat() if card.as_of else None})  # fmt: skip
    with contextlib.suppress(OSError):
        atomic_write(path, text)


def _check_dataset(name: str) -> Scorecard:
    ds = registry.get(name)
    missing = [t for t in ds.tables if ds.kind == "parquet" and not ds.table_path(t).exists()]
    if missing:
        raise CitykitError(f"dataset {name!r} has no {', '.join(missing)} yet; build it with `citykit data build`")
    gates = load_gates()
    if ds.kind == "parquet":
        tables = {t: pd.read_parquet(ds.table_path(t)) for t in ds.tables}
    else:
        tables = {t: load(t, dataset=name) for t in ds.tables}
    shapes = boundaries(name)
    known = tables["neighborhoods"]["neighborhood"].dropna().tolist() if "neighborhoods" in tables else None
    checks: list[Check] = []
    for table, frame in tables.items():
        card = scorecard(
            frame,
            table,
            ds.now,
            bounds=city_bounds(shapes) if table == "service_requests" and shapes is not None else None,
            neighborhoods=known if table != "neighborhoods" else None,
            gates=gates,
            extract_date=ds.extracted,
        )
        checks.extend(card.checks)
    return Scorecard(checks, dataset=name, as_of=ds.now)
