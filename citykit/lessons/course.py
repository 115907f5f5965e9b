"""The course: `curriculum/course.yml` as typed modules, in the order their folders state (NN-slug)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from citykit import paths
from citykit.errors import CitykitError, quote

FOLDER_PATTERN = re.compile(r"^(\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)$")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # dataset | period | neighborhood | str | int | float | bool
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    selects: tuple[str, ...] = ()  # a period's "table.column"s, checked against their published precision


@dataclass(frozen=True)
class Module:
    slug: str
    number: int
    title: str
    minutes: int
    objectives: dict[str, str]
    questions: tuple[str, ...] = ()
    keypoints: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ("riverton",)
    parameters: tuple[Parameter, ...] = ()
    report: bool = False
    assessments: dict[str, str] = field(default_factory=dict)  # grade_id -> objective id

    @property
    def folder_name(self) -> str:
        return f"{self.number:02d}-{self.slug}"

    @property
    def folder(self) -> Path:
        return paths.notebooks_dir() / self.folder_name

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.folder_name}.ipynb"


def module_folders(notebooks_dir: Path | None = None) -> dict[str, int]:
    """slug -> number, from the `NN-slug` folders under notebooks/ (the one place order is stated)."""
    found: dict[str, int] = {}
    for folder in sorted((notebooks_dir or paths.notebooks_dir()).iterdir()):
        match = FOLDER_PATTERN.match(folder.name)
        if folder.is_dir() and match:
            if match[2] in found:
                raise CitykitError(f"two module folders use the slug {match[2]!r}; slugs must be unique")
            found[match[2]] = int(match[1])
    return found


def _parameter(name: str, raw: dict[str, Any]) -> Parameter:
    choices = raw.get("choices")
    return Parameter(
        name=name,
        type=raw.get("type", "str"),
        default=raw.get("default"),
        help=raw.get("help", ""),
        choices=tuple(choices) if choices is not None else None,
        selects=tuple(raw.get("selects", ())),
    )


def load_course(course_file: Path | None = None, notebooks_dir: Path | None = None) -> list[Module]:
    """Every module of course.yml, in the order of the notebooks/ folder numbers."""
    path = course_file or paths.course_file()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    numbers = module_folders(notebooks_dir)
    modules = []
    for entry in raw.get("modules", []):
        slug = entry["slug"]
        if slug not in numbers:
            raise CitykitError(f"course.yml lists {slug!r} but notebooks/ has no NN-{slug} folder")
        modules.append(
            Module(
                slug=slug,
                number=numbers[slug],
                title=entry["title"],
                minutes=int(entry["minutes"]),
                objectives=dict(entry.get("objectives", {})),
                questions=tuple(entry.get("questions", ())),
                keypoints=tuple(entry.get("keypoints", ())),
                datasets=tuple(entry.get("datasets", ("riverton",))),
                parameters=tuple(_parameter(n, p or {}) for n, p in (entry.get("parameters") or {}).items()),
                report=bool(entry.get("report", False)),
                assessments=dict(entry.get("assessments", {})),
            )
        )
    return sorted(modules, key=lambda m: m.number)


def find_module(name: str, modules: list[Module] | None = None) -> Module:
    """A module by slug (`time-to-close`), folder name (`04-time-to-close`) or number (`4`, `04`), as
    `citykit report list` shows it."""
    modules = load_course() if modules is None else modules
    number = int(name) if name.isascii() and name.isdigit() else None
    for module in modules:
        if name in (module.slug, module.folder_name) or module.number == number:
            return module
    raise CitykitError(f"unknown module {quote(name)}; modules: {', '.join(m.folder_name for m in modules)}")


# --- the data dictionary (curriculum/guides/data-dictionary.md) ------------------------------------

DATA_DICTIONARY = "data-dictionary.md"


def datapackage_file() -> Path:
    """The data package that describes every published table: datasets/datapackage.json."""
    return paths.kit_datasets_dir() / "datapackage.json"


def data_package() -> dict[str, Any]:
    """The data package (Frictionless `datapackage.json`): every published table, column and unit."""
    return json.loads(datapackage_file().read_text(encoding="utf-8"))


def _cell(text: Any) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _rules(field: dict[str, Any]) -> str:
    constraints = field.get("constraints") or {}
    rules = [name for name in ("required", "unique") if constraints.get(name)]
    if "enum" in constraints:
        rules.append("one of " + ", ".join(map(str, constraints["enum"])))
    return "; ".join(rules)


def data_dictionary_markdown(datapackage: Path | None = None) -> str:
    """The course's data dictionary as markdown, generated from the Frictionless data package
    (`datasets/datapackage.json`): one section per table, one row per column. The committed
    `curriculum/guides/data-dictionary.md` is this text (a test keeps the two equal)."""
    import json

    path = datapackage or datapackage_file()
    package = json.loads(path.read_text(encoding="utf-8"))
    licences = ", ".join(item.get("name", "") for item in package.get("licenses", []))
    lines = [
        "# Data dictionary",
        "",
        "<!-- Generated from datasets/datapackage.json by citykit.lessons.course.data_dictionary_markdown(); "
        "do not edit by hand. -->",
        "",
        f"**{_cell(package.get('title', package.get('name', '')))}**"
        + (f" · version {package['version']}" if package.get("version") else "")
        + (f" · licence {licences}" if licences else ""),
        "",
        _cell(package.get("description", "")),
        "",
        "Every table below is a canonical table: an imported city's export becomes the same columns, so "
        "the course's notebooks run on it unchanged. Load one with "
        '`citykit.load("service_requests", dataset="riverton")`.',
        "",
        "Tables: " + ", ".join(f"`{r['name']}`" for r in package.get("resources", [])) + ".",
    ]
    for resource in package.get("resources", []):
        schema = resource.get("schema") or {}
        lines += ["", f"## {resource['name']}", "", _cell(resource.get("description", ""))]
        lines += ["", f"- File: `{resource.get('path', '')}` ({resource.get('format', '')})."]
        if schema.get("primaryKey"):
            key = schema["primaryKey"]
            lines.append(f"- Key: `{', '.join(key) if isinstance(key, list) else key}` (one row each).")
        for foreign in schema.get("foreignKeys", []):
            ref = foreign["reference"]
            lines.append(
                f"- `{', '.join(foreign['fields'])}` refers to `{ref['resource']}.{', '.join(ref['fields'])}`."
            )
        people = _people_columns(resource["name"])  # the disaggregation standard's classes (privacy.columns)
        if schema.get("fields"):
            privacy = "privacy | " if people else ""
            lines += [
                "",
                f"| column | type | unit | rules | {privacy}meaning |",
                "|---|---|---|---|---|" + "---|" * bool(people),
            ]
            for field in schema["fields"]:
                entry = people.entry(field["name"]) if people else None
                cls = (f"{entry.label if entry else 'not classed'} | ") if people else ""
                lines.append(
                    f"| `{field['name']}` | {field.get('type', '')} | {_cell(field.get('unit', ''))} "
                    f"| {_cell(_rules(field))} | {cls}{_cell(field.get('description', ''))} |"
                )
        if people:
            shown = {f["name"] for f in schema.get("fields", [])}
            apart = [e for e in people.columns if not set(people.expand(e.column)) & shown]
            lines += ["", "Privacy: the class of each column of people and how it is published come from the "
                      "disaggregation standard's table of columns (curriculum/standards/disaggregation.yml, "
                      "privacy.columns). Not in these rows:", ""]  # fmt: skip
            lines += [f"- `{e.column}`: {e.label}. {_cell(e.reason)}" for e in apart]
    return "\n".join(lines) + "\n"


def _people_columns(table: str):
    """The standard's classes of a person-level table's columns (None for other tables)."""
    from citykit.standards import load_disaggregation  # lazy: loaded only when used

    spec = load_disaggregation().columns.get(table)
    return spec if spec is not None and spec.person_level else None
