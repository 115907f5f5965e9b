"""The published standards (`curriculum/standards/`), read and validated in one place.

Each file is the course's own copy when the course has one, else the kit's (`paths.standard_file`).

`load_disaggregation()` returns the disaggregation standard (categories, privacy, disparity rules)
as a typed, frozen object. Each file is checked against its JSON Schema beside it
(`<name>.schema.json`); a malformed standard raises `CitykitError` with one line naming the key
and the problem. Results are cached per file path and modification time, so an edited file is
re-read and tests can point `citykit.paths.standards_dir` elsewhere.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from citykit import paths
from citykit.errors import CitykitError

METRICS_FILE = "metrics.yml"
DISAGGREGATION_FILE = "disaggregation.yml"


@dataclass(frozen=True)
class Category:
    code: str
    label: str


@dataclass(frozen=True)
class GeneralisationStep:
    """One k-anonymity generalisation step, applied only to rows in groups smaller than k."""

    step: str
    kind: str  # "set_null", "map" or "multiracial"
    columns: tuple[str, ...] = ()
    column: str | None = None
    mapping: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class KAnonymityRules:
    k: int
    quasi_identifiers: tuple[str, ...]  # "race" stands for every race_* indicator column
    steps: tuple[GeneralisationStep, ...]


CLASSES = ("identifier", "quasi_identifier", "sensitive", "safe")
PERSON_LEVEL_PUBLISH = ("person_level", "coarsened", "pseudonymised")  # published in the rows


@dataclass(frozen=True)
class PrivacyColumn:
    """One column of a table of people, classed once (`privacy.columns` of the standard).

    `column` "race" stands for every race_* indicator column. `klass`: identifier,
    quasi_identifier, sensitive or safe. `publish`: person_level, coarsened (to `unit`),
    pseudonymised, aggregate_only or never."""

    table: str
    column: str
    klass: str
    publish: str
    reason: str
    unit: str | None = None
    derived_from: tuple[str, ...] = ()

    @property
    def in_rows(self) -> bool:
        """Published in the person-level rows (as is, coarsened or pseudonymised)."""
        return self.publish in PERSON_LEVEL_PUBLISH

    @property
    def label(self) -> str:
        """The class and treatment in words, for the data dictionary ("quasi-identifier, coarsened to month")."""
        words = {"person_level": "", "coarsened": f"coarsened to the {self.unit}", "pseudonymised": "keyed hash",
                 "aggregate_only": "aggregate tables only", "never": "never published"}[self.publish]  # fmt: skip
        klass = self.klass.replace("_", "-")
        return f"{klass} ({words})" if words else klass


@dataclass(frozen=True)
class TablePrivacy:
    """The standard's classes for one table's columns; `person_level` tables list every column."""

    table: str
    person_level: bool
    columns: tuple[PrivacyColumn, ...]
    race_columns: tuple[str, ...] = ()  # what the "race" entry stands for

    def expand(self, name: str) -> list[str]:
        return list(self.race_columns) if name == "race" else [name]

    def entry(self, column: str) -> PrivacyColumn | None:
        """The entry classing `column` (a race_* column is classed by the "race" entry)."""
        for entry in self.columns:
            if column in self.expand(entry.column):
                return entry
        return None

    def names(self, *, publish: tuple[str, ...] = (), klass: tuple[str, ...] = (), aliases: bool = False) -> list[str]:
        """Columns with the given treatments and classes (all when empty), in the standard's order;
        `aliases` keeps "race" as one name instead of its indicator columns."""
        out: list[str] = []
        for entry in self.columns:
            if (not publish or entry.publish in publish) and (not klass or entry.klass in klass):
                out += [entry.column] if aliases else self.expand(entry.column)
        return out

    @property
    def quasi_identifiers(self) -> tuple[str, ...]:
        """The quasi-identifiers published in the rows ("race" as one name): what k-anonymity runs over."""
        return tuple(self.names(publish=PERSON_LEVEL_PUBLISH, klass=("quasi_identifier",), aliases=True))


@dataclass(frozen=True)
class AggregateTables:
    """Where and how a table's aggregate_only columns are published (`privacy.aggregate_tables`)."""

    table: str
    file: str
    period: str
    bands: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseRules:
    """The release ledger (`privacy.releases`)."""

    ledger_folder: str
    risk_summary: str


@dataclass(frozen=True)
class SmallCellRules:
    min_suppressed: int
    max_suppressed: int
    show_zeros: bool
    suppress_derived_rates: bool
    display: str
    footnote: str
    complementary: bool
    min_feasible_range: float
    audit_not_covered: str
    unstable_max_events: int
    unstable_footnote: str
    complementary_display: str = "†"
    complementary_footnote: str = ""
    withheld_display: str = "‡"
    withheld_footnote: str = ""
    complementary_method: str = "fewest_people"  # or "smallest_in_line" (the greedy choice)
    uniform_outcome_max_n: int = 0  # a group of at most this many, all with one outcome, is hidden whole
    outcome_rule: str = ""  # the attribute-disclosure rule, as the standard states it (once)
    undecided_outcomes: tuple[str, ...] = ()  # outcomes that are no decision (Pending): the rule skips them

    def is_small(self, count: float) -> bool:
        return self.min_suppressed <= count <= self.max_suppressed


@dataclass(frozen=True)
class Collapse:
    """An allowed collapse, applied before suppression: `pool_small` pools the values of `column`
    with fewer than `min_n` people (per row of the table) into `into`; `map_column` replaces
    `column` by the coarser column `into` (neighborhoods into council districts)."""

    name: str
    kind: str
    column: str
    into: str
    footnote: str
    min_n: int = 0
    never: tuple[str, ...] = ()  # codes never pooled (pool_small)
    min_members: int = 1  # a pool needs at least this many groups (pool_small)


@dataclass(frozen=True)
class Program:
    """A program's outcomes: the favourable one (the four-fifths screen reads its ratio) and the
    adverse one; `decided` the outcomes that count in the denominator."""

    name: str
    measure: str
    favourable: str
    adverse: str
    decided: tuple[str, ...]
    kind: str  # "proportion" (binomial) or "rate" (Poisson over exposure)
    show_adverse_ratio: bool = True


@dataclass(frozen=True)
class DisparityRules:
    reference_group: dict[str, str]
    confidence: float
    zero_events_note: str  # rate ratios (Poisson)
    notable_below: float
    notable_above: float
    alpha: float
    correction: str  # a statsmodels multipletests method: "holm" or "fdr_bh"
    correction_footnote: str
    proportion_method: str = "log"  # Katz log interval for a ratio of two proportions
    small_group_method: str = "log"  # e.g. "score" (Koopman) when a group is smaller than:
    small_group_below: int = 0
    zero_cells_note: str = ""  # proportion ratios
    overdispersion_note: str = ""  # rate ratios
    programs: dict[str, Program] = field(default_factory=dict)
    di_footnote: str = ""  # the disproportionality index: what it divides, over which people

    def program_for(self, measure: str) -> Program | None:
        """The program whose measure column is `measure` (e.g. "approved"), if the standard declares one."""
        return next((p for p in self.programs.values() if p.measure == measure), None)


@dataclass(frozen=True)
class DisaggregationStandard:
    version: str
    title: str
    race_categories: tuple[Category, ...]
    multiracial: Category
    not_reported: Category
    declined: Category
    presentation_footnotes: dict[str, str]
    detailed_min_count: int
    single_select_rule: str
    race_mappings: dict[str, dict[str, str | None]]
    genders: tuple[str, ...]
    age_bands: tuple[str, ...]
    geography_levels: tuple[str, ...]
    ecological_note: str
    privacy_scope: str
    small_cells: SmallCellRules
    k_anonymity: KAnonymityRules
    sensitive_request_types: tuple[str, ...]
    disparity: DisparityRules
    path: Path
    collapses: dict[str, Collapse] = field(default_factory=dict)
    changelog: tuple[tuple[str, tuple[str, ...]], ...] = ()
    columns: dict[str, TablePrivacy] = field(default_factory=dict)  # privacy.columns, per table
    pseudonym_prefixes: dict[str, str] = field(default_factory=dict)
    pseudonym_digits: dict[str, int] = field(default_factory=dict)
    aggregate_tables: dict[str, AggregateTables] = field(default_factory=dict)
    releases: ReleaseRules | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, hash=False, default_factory=dict)

    @property
    def race_labels(self) -> dict[str, str]:
        """Category code -> label for the seven categories and the three extra codes, in order."""
        extra = (self.multiracial, self.not_reported, self.declined)
        return {c.code: c.label for c in (*self.race_categories, *extra)}


def load_disaggregation() -> DisaggregationStandard:
    """The disaggregation standard in `paths.standards_dir()`, validated (cached until it changes)."""
    path = paths.standard_file(DISAGGREGATION_FILE)
    schema = _schema_path(path)
    return _load_disaggregation(str(path), _mtime(path), _mtime(schema))


def personal_columns(standard: DisaggregationStandard | None = None) -> dict[str, tuple[str, ...]]:
    """Per table, the columns the standard never publishes because they identify a person (class
    identifier, publish never: names, phones, e-mails, addresses, dates of birth, free text).
    The publisher drops them and an import refuses to publish them."""
    std = standard or load_disaggregation()
    return {name: tuple(t.names(publish=("never",), klass=("identifier",))) for name, t in std.columns.items()}


def identifier_columns(standard: DisaggregationStandard | None = None) -> dict[str, tuple[str, ...]]:
    """Per table, every identifier: the personal columns above and the ids published only as keyed
    hashes (publish pseudonymised)."""
    std = standard or load_disaggregation()
    return {name: tuple(t.names(klass=("identifier",))) for name, t in std.columns.items()}


def load_metrics() -> dict[str, Any]:
    """The metric definitions (`metrics.yml`): time to close, on time, backlog buckets, SLA targets."""
    path = paths.standard_file(METRICS_FILE)
    return _load_metrics(str(path), _mtime(path))


@functools.lru_cache(maxsize=4)
def _load_metrics(path_str: str, _mtime: int) -> dict[str, Any]:
    path = Path(path_str)
    content = _read_yaml(path)
    for key in ("time_to_close", "on_time", "backlog", "sla_days"):
        if key not in content:
            raise CitykitError(f"{_show(path)}: {key}: is required")
    return content


def validate(path: Path) -> dict[str, Any]:
    """Read a standard file and check it against `<stem>.schema.json` beside it; return its content."""
    content = _read_yaml(path)
    schema_path = _schema_path(path)
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CitykitError(f"{_show(path)}: its schema {schema_path.name} is missing") from None
    except json.JSONDecodeError as exc:
        raise CitykitError(f"{_show(schema_path)}: not valid JSON ({exc.msg}, line {exc.lineno})") from None

    import jsonschema  # only needed when a standard is (re)read

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(content))
    if error is not None:
        raise CitykitError(f"{_show(path)}: {_key(error.absolute_path)}: {_problem(error)}")
    return content


# -- internals ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _load_disaggregation(path_str: str, _mtime: int, _schema_mtime: int) -> DisaggregationStandard:
    path = Path(path_str)
    raw = validate(path)
    standard = _build(raw, path)
    _check_consistency(standard)
    return standard


def _build(raw: dict[str, Any], path: Path) -> DisaggregationStandard:
    race = raw["race_ethnicity"]
    privacy = raw["privacy"]
    small = privacy["small_cells"]
    complementary = privacy["complementary_suppression"]
    unstable = privacy["unstable_rates"]
    kanon = privacy["k_anonymity"]
    disparity = raw["disparity"]
    ratio = disparity["measures"]["proportion_ratio"]
    cat = lambda d: Category(code=d["code"], label=d["label"])  # noqa: E731

    steps = tuple(
        GeneralisationStep(
            step=s["step"],
            kind=s["kind"],
            columns=tuple(s.get("columns", ())),
            column=s.get("column"),
            mapping=dict(s.get("mapping", {})),
        )
        for s in kanon["generalisation_order"]
    )
    presentations = race["presentations"]
    codes = [c["code"] for c in race["categories"]] + [race["not_reported"]["code"], race["declined"]["code"]]
    columns = {
        table: TablePrivacy(
            table,
            bool(spec["person_level"]),
            tuple(
                PrivacyColumn(
                    table,
                    name,
                    c["class"],
                    c["publish"],
                    " ".join(c["reason"].split()),
                    c.get("unit"),
                    tuple(c.get("derived_from", ())),
                )
                for name, c in spec["columns"].items()
            ),
            tuple(f"race_{code}" for code in codes),
        )
        for table, spec in privacy["columns"].items()
    }
    quasi = tuple(dict.fromkeys(q for t in columns.values() if t.person_level for q in t.quasi_identifiers))
    pseudonyms = privacy["pseudonyms"]
    return DisaggregationStandard(
        version=raw["version"],
        title=raw["title"],
        race_categories=tuple(cat(c) for c in race["categories"]),
        multiracial=cat(race["multiracial"]),
        not_reported=cat(race["not_reported"]),
        declined=cat(race["declined"]),
        presentation_footnotes={
            name: p["footnote"] for name, p in presentations.items() if isinstance(p, dict) and "footnote" in p
        },
        detailed_min_count=int(presentations.get("detailed", {}).get("min_count", small["max_suppressed"] + 1)),
        single_select_rule=race["single_select"]["rule"],
        race_mappings={name: dict(m) for name, m in race["mappings"].items()},
        genders=tuple(raw["gender"]["categories"]),
        age_bands=tuple(raw["age_bands"]["bands"]),
        geography_levels=tuple(raw["geography"]["levels"]),
        ecological_note=raw["geography"].get("ecological_note", ""),
        privacy_scope=privacy["scope"],
        small_cells=SmallCellRules(
            min_suppressed=small["min_suppressed"],
            max_suppressed=small["max_suppressed"],
            show_zeros=small["show_zeros"],
            suppress_derived_rates=small["suppress_derived_rates"],
            display=small["display"],
            footnote=small["footnote"],
            complementary=complementary["enabled"],
            min_feasible_range=float(complementary["min_feasible_range"]),
            audit_not_covered=complementary["not_covered"],
            unstable_max_events=unstable["max_events_flagged"],
            unstable_footnote=unstable["footnote"],
            complementary_display=small["complementary_display"],
            complementary_footnote=small["complementary_footnote"],
            withheld_display=small.get("withheld_display", "‡"),
            withheld_footnote=small.get("withheld_footnote", ""),
            complementary_method=complementary.get("method", "fewest_people"),
            uniform_outcome_max_n=int(privacy["outcome_disclosure"]["uniform_outcome_max_n"]),
            outcome_rule=privacy["outcome_disclosure"]["rule"].format(
                max_n=privacy["outcome_disclosure"]["uniform_outcome_max_n"],
                undecided=", ".join(privacy["outcome_disclosure"].get("undecided", [])) or "none",
            ),
            undecided_outcomes=tuple(privacy["outcome_disclosure"].get("undecided", [])),
        ),
        k_anonymity=KAnonymityRules(k=kanon["k"], quasi_identifiers=quasi, steps=steps),
        sensitive_request_types=tuple(privacy["sensitive_request_types"]),
        disparity=DisparityRules(
            reference_group=dict(disparity["reference_group"]),
            confidence=float(ratio["confidence"]),
            zero_events_note=disparity["measures"]["rate_ratio"].get("zero_events", ""),
            proportion_method=ratio["method"],
            small_group_method=ratio.get("small_group_method", ratio["method"]),
            small_group_below=int(ratio.get("small_group_below", 0)),
            zero_cells_note=ratio["zero_cells"],
            overdispersion_note=disparity["measures"]["rate_ratio"]["overdispersion"],
            programs={
                name: Program(
                    name=name,
                    measure=p["measure"],
                    favourable=p["favourable"],
                    adverse=p["adverse"],
                    decided=tuple(p["decided"]),
                    kind=p["kind"],
                    show_adverse_ratio=bool(p.get("show_adverse_ratio", True)),
                )
                for name, p in disparity["programs"].items()
            },
            notable_below=float(disparity["notable"]["ratio_below"]),
            notable_above=float(disparity["notable"]["ratio_above"]),
            alpha=float(disparity["notable"]["alpha"]),
            correction=disparity["multiple_comparisons"]["method"],
            correction_footnote=disparity["multiple_comparisons"]["footnote"],
            di_footnote=disparity["measures"]["disproportionality_index"].get("footnote", ""),
        ),
        path=path,
        collapses={
            name: Collapse(
                name,
                c["kind"],
                c["column"],
                c["into"],
                c["footnote"],
                int(c.get("min_n", 0)),
                tuple(c.get("never", ())),
                int(c.get("min_members", 1)),
            )
            for name, c in privacy.get("collapses", {}).items()
        },
        changelog=tuple((c["version"], tuple(c["changes"])) for c in raw.get("changelog", ())),
        columns=columns,
        pseudonym_prefixes=dict(pseudonyms["prefixes"]),
        pseudonym_digits={k: int(v) for k, v in pseudonyms["hex_digits"].items()},
        aggregate_tables={
            table: AggregateTables(table, a["file"], a["period"], {k: dict(v) for k, v in a.get("bands", {}).items()})
            for table, a in privacy["aggregate_tables"].items()
        },
        releases=ReleaseRules(
            privacy["releases"]["ledger_folder"], " ".join(privacy["releases"]["risk_summary"].split())
        ),
        raw=raw,
    )


def _check_consistency(std: DisaggregationStandard) -> None:
    """Rules a JSON Schema cannot express; each failure names its key."""
    where = _show(std.path)

    def fail(key: str, problem: str) -> None:
        raise CitykitError(f"{where}: {key}: {problem}")

    small = std.small_cells
    if small.max_suppressed < small.min_suppressed:
        fail("privacy.small_cells.max_suppressed", "must be at least min_suppressed")
    codes = [c.code for c in std.race_categories]
    all_codes = list(std.race_labels)
    if len(set(all_codes)) != len(codes) + 3:
        fail("race_ethnicity.categories", "category codes must be unique (including the three extra codes)")
    for name, mapping in std.race_mappings.items():
        for source, code in mapping.items():
            if code is not None and code not in all_codes:
                fail(f"race_ethnicity.mappings.{name}.{source!r}", f"maps to unknown code {code!r}")
    ref = std.disparity.reference_group.get("race_ethnicity")
    if ref is not None and ref not in codes:
        fail("disparity.reference_group.race_ethnicity", f"{ref!r} is not a category code ({', '.join(codes)})")
    ref_gender = std.disparity.reference_group.get("gender")
    if ref_gender is not None and ref_gender not in std.genders:
        fail("disparity.reference_group.gender", f"{ref_gender!r} is not one of gender.categories")
    qis = std.k_anonymity.quasi_identifiers
    for i, step in enumerate(std.k_anonymity.steps):
        key = f"privacy.k_anonymity.generalisation_order.{i}"
        for column in (*step.columns, *([step.column] if step.column else [])):
            if column not in qis:
                fail(
                    key,
                    f"step {step.step!r} changes {column!r}, which privacy.columns does not publish as a quasi-identifier",
                )
        if step.kind == "multiracial" and "race" not in qis:
            fail(key, "a multiracial step needs 'race' among the quasi-identifiers")
    for table, spec in std.columns.items():
        key = f"privacy.columns.{table}"
        for entry in spec.columns:
            if entry.publish == "pseudonymised" and table not in std.pseudonym_prefixes:
                fail(key, f"{entry.column!r} is pseudonymised but privacy.pseudonyms has no prefix for {table!r}")
            if entry.publish == "aggregate_only" and table not in std.aggregate_tables:
                fail(key, f"{entry.column!r} is aggregate_only but privacy.aggregate_tables has no {table!r}")
            if entry.klass == "identifier" and entry.publish not in ("never", "pseudonymised"):
                fail(key, f"identifier {entry.column!r} may only be pseudonymised or never published")
            for source in entry.derived_from:
                if spec.entry(source) is None:
                    fail(key, f"{entry.column!r} is derived from {source!r}, which the table does not class")
    for table, aggregate in std.aggregate_tables.items():
        spec = std.columns.get(table)
        only = spec.names(publish=("aggregate_only",)) if spec else []
        for column in aggregate.bands:
            if column not in only:
                fail(f"privacy.aggregate_tables.{table}.bands", f"{column!r} is not an aggregate_only column")
    for name, program in std.disparity.programs.items():
        for outcome in (program.favourable, program.adverse):
            if outcome not in program.decided:
                fail(f"disparity.programs.{name}", f"outcome {outcome!r} is not one of its decided outcomes")
    age_map = [s for s in std.k_anonymity.steps if s.kind == "map" and s.column == "age_band"]
    for step in age_map:
        unknown = set(step.mapping) - set(std.age_bands)
        if unknown:
            fail(f"privacy.k_anonymity ({step.step})", f"maps unknown age bands {sorted(unknown)}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CitykitError(f"standard not found: {_show(path)}") from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CitykitError(f"{_show(path)}: not valid YAML{at}: {problem}") from None
    if not isinstance(content, dict):
        raise CitykitError(f"{_show(path)}: expected a mapping of keys at the top level")
    return content


def _schema_path(path: Path) -> Path:
    """The schema beside the standard, else the kit's (a course may override a standard alone)."""
    beside = path.with_name(f"{path.stem}.schema.json")
    return beside if beside.exists() else paths.standard_file(beside.name)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def _show(path: Path) -> str:
    return paths.show(path)


def _key(location: Any) -> str:
    parts = [str(p) for p in location]
    return ".".join(parts) if parts else "(top level)"


def _problem(error: Any) -> str:
    message = error.message
    if error.validator == "additionalProperties":
        return f"{message} (remove it or check its spelling)"
    if error.validator == "required":
        return message.replace("is a required property", "is required here")
    return message
