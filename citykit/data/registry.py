"""The datasets registry: one named entry per dataset, wherever its tables live.

Built-in datasets are listed in the kit's `datasets/registry.yml`; datasets a user adds
(imports) go to `$CITYKIT_HOME/registry.local.yml`, which is never committed. A database-backed
dataset stores the *name* of the environment variable holding its URL, never the URL.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from citykit import paths
from citykit.errors import CitykitError, quote
from citykit.files import atomic_write, locked, per_version

TABLES = ("service_requests", "neighborhoods", "program_applications")
# What an imported city adds beyond its 311 export, and how (said when a module needs it).
HOW_TO_ADD = {
    "neighborhoods": ("population by neighborhood", "citykit data import-population FILE --name {name}"),
    "program_applications": (
        "person-level program records",
        "citykit data import-applications FILE --mapping MAPPING.yml --name {name}",
    ),
}
LOCAL_REGISTRY = "registry.local.yml"


def how_to_add(table: str, dataset: str) -> tuple[str, str]:
    """What `table` holds, and the command that adds it to `dataset` ("" when no command does)."""
    holds, command = HOW_TO_ADD.get(table, (f"the {table} table", ""))
    return holds, command.format(name=dataset)


@dataclass(frozen=True)
class Dataset:
    """A registered dataset. Two dates, each with one job (DESIGN: datasets):

    - `as_of`, the analysis "now": every age, backlog and default period counts from it. An import
      takes `--as-of`, else the newest plausible record (`as_of_inferred` is then true, and pages
      say "inferred");
    - `extract_date`, the day the export was taken: the timeliness gate measures it against the
      newest record, so a stale export fails. None for the synthetic city (its as-of date is it).
    """

    name: str
    as_of: dt.date
    kind: str = "parquet"  # "parquet" (a folder under CITYKIT_HOME) or "postgres"
    location: str = ""  # folder relative to CITYKIT_HOME, or the env var naming a database URL
    title: str = ""
    source: str = ""
    licence: str = ""
    synthetic: bool = False
    tables: tuple[str, ...] = TABLES
    extract_date: dt.date | None = None
    as_of_inferred: bool = False

    @property
    def extracted(self) -> dt.date:
        """The day the data were extracted (the as-of date when none was recorded)."""
        return self.extract_date or self.as_of

    @property
    def as_of_label(self) -> str:
        """`2018-01-04 (inferred from the newest record)` or `2025-12-31`."""
        return f"{self.as_of} (inferred from the newest record)" if self.as_of_inferred else str(self.as_of)

    @property
    def folder(self) -> Path:
        if self.kind != "parquet":
            raise CitykitError(f"dataset {self.name!r} lives in a database, not a folder")
        return paths.citykit_home() / self.location

    @property
    def now(self) -> dt.datetime:
        """The analysis' "now": midnight after the as-of date (never the wall clock)."""
        return dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time())

    def has(self, table: str) -> bool:
        """Whether the dataset holds `table` (an imported city may lack population or programs)."""
        return table in self.tables

    def missing_table_advice(self, table: str) -> str:
        """One line saying the table is missing, and how to add it when it can be imported."""
        if table in HOW_TO_ADD:
            holds, command = how_to_add(table, self.name)
            return f"dataset {self.name!r} has no {table} ({holds}); add it with `{command}`"
        return f"unknown table {table!r} in dataset {self.name!r}; choose one of: {', '.join(self.tables)}"

    def table_path(self, table: str) -> Path:
        if table not in self.tables:
            raise CitykitError(self.missing_table_advice(table))
        return self.folder / f"{table}.parquet"

    @property
    def boundaries_path(self) -> Path:
        return self.folder / "boundaries.geojson"

    def exists(self) -> bool:
        if self.kind == "parquet":
            return all(self.table_path(t).exists() for t in self.tables)
        return bool(os.environ.get(self.location))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        d["tables"] = list(self.tables)
        if self.extract_date is None:
            d.pop("extract_date")
        else:
            d["extract_date"] = self.extract_date.isoformat()
        if not self.as_of_inferred:
            d.pop("as_of_inferred")
        return d


_parsed: dict[str, tuple[tuple, dict]] = {}  # path -> (its version, its datasets)


def _read(path: Path) -> dict[str, dict]:
    """The file's datasets (a copy), parsed once per version of the file (`files.per_version`): a
    report asks for its dataset dozens of times, and a batch's worker runs many reports."""

    def parse() -> dict:
        with path.open(encoding="utf-8") as fh:
            return (yaml.safe_load(fh) or {}).get("datasets", {}) or {}

    try:
        return copy.deepcopy(per_version(_parsed, path, parse))
    except (FileNotFoundError, NotADirectoryError):
        return {}


def _entry(name: str, raw: dict) -> Dataset:
    raw = dict(raw)
    as_of = _date(raw.pop("as_of"))
    extract = raw.pop("extract_date", None)
    tables = tuple(raw.pop("tables", TABLES))
    return Dataset(name=name, as_of=as_of, tables=tables, extract_date=_date(extract) if extract else None, **raw)


def _date(value: str | dt.date) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def builtin_registry_file() -> Path:
    return paths.kit_datasets_dir() / "registry.yml"


def builtin_names() -> set[str]:
    """Datasets bundled with the kit (datasets/registry.yml): imports and publishes never replace them."""
    return set(_read(builtin_registry_file()))


def local_registry_file() -> Path:
    return paths.citykit_home() / LOCAL_REGISTRY


def all_datasets() -> dict[str, Dataset]:
    entries = {**_read(builtin_registry_file()), **_read(local_registry_file())}
    return {name: _entry(name, raw) for name, raw in entries.items()}


def get(name: str) -> Dataset:
    if not isinstance(name, str):
        raise CitykitError(f'dataset must be a dataset\'s name as text, like "riverton"; got {quote(name)}')
    datasets = all_datasets()
    if name not in datasets:
        raise CitykitError(f"unknown dataset {quote(name)}; registered datasets: {', '.join(sorted(datasets))}")
    return datasets[name]


def register(dataset: Dataset) -> None:
    """Add or replace a user dataset in the local registry.

    Read, changed and written under the registry's lock (`.registry.local.yml.lock`), through a unique
    temporary file: two imports at once both end up registered, and a reader never sees a part-written file.
    """
    entry = dataset.to_dict()
    entry.pop("name")
    path = local_registry_file()
    with locked(path):
        entries = _read(path)
        if entries.get(dataset.name) != entry or not path.exists():
            entries[dataset.name] = entry
            _write(path, entries)


def unregister(name: str) -> None:
    path = local_registry_file()
    if not path.exists():
        return
    with locked(path):
        entries = _read(path)
        if entries.pop(name, None) is not None:
            _write(path, entries)


def _write(path: Path, entries: dict[str, dict]) -> None:
    atomic_write(path, yaml.safe_dump({"datasets": entries}, sort_keys=True))
