"""Report parameters: their schema, and validation before any kernel starts.

A module's parameters are declared in course.yml (type, default, allowed values, help); a notebook
given by path declares them in its `parameters` cell (read with papermill's `inspect_notebook`).
Types: `dataset` (a registered, built dataset), `period` (parsed by `parse_period`, must overlap
the dataset's coverage), `neighborhood` (must be in the dataset's neighborhoods table, or named by
its requests when it has none; None means citywide), and `str`, `int`, `float`, `bool`, each with optional `choices`.

    specs = module_parameters(find_module("time-to-close"))
    values = validate(specs, {"neighborhood": "harbor-point", "period": "2025-Q4"})

`validate` converts command-line text to typed values, fills in defaults, and raises one clear
`CitykitError` for the first problem, so a bad value never reaches a kernel. A neighborhood is
matched by its exact name first; a letter-case variant or a slug (`harbor-point`) is accepted only
when it names exactly one neighborhood, so `北区` and `南区` are never confused.

`parameters_slug` names a run's folder: one `name=value` part per value that differs from its
default, the value transliterated to ASCII (anyascii) and slugged, followed by `~` and a short hash
of the exact value whenever the slug alone does not spell it (`neighborhood=bei-qu~1f0e3a`,
`period=2025-q4~a1b2c3`; `dataset=mycity` needs none). Two different values therefore never share a
folder name unless their hashes collide, and `citykit.reports.run` refuses that case outright.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from citykit.data import registry
from citykit.data.periods import KINDS, Period, latest_complete, parse_period
from citykit.errors import CitykitError, quote, redact
from citykit.lessons.course import Module, Parameter
from citykit.standards.coarsening import check_whole_units

DATA_TYPES = ("dataset", "period", "neighborhood")
SCALAR_TYPES = {"str": str, "int": int, "float": float, "bool": bool}
NONE_WORDS = {"", "none", "null", "citywide", "all"}
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
# A period parameter's default in course.yml may be "latest month|quarter|year": the latest complete
# period of that kind before the dataset's as-of date, resolved per dataset when a report runs.
LATEST = re.compile(r"latest\s+(" + "|".join(KINDS) + r")", re.IGNORECASE)
SPELLED = re.compile(r"[a-z0-9][a-z0-9.-]*")  # a value that is its own slug: shown without a hash
PART_CHARS = 40  # readable characters of one value in a folder name
NAME_CHARS = 180  # a folder name's length at most (file systems allow 255 bytes)


ParamSpec = Parameter  # one model of a parameter, whether course.yml or a notebook declares it


def module_parameters(module: Module) -> list[ParamSpec]:
    for p in module.parameters:
        if p.type not in DATA_TYPES and p.type not in SCALAR_TYPES:
            raise CitykitError(f"parameter {p.name!r} has unknown type {p.type!r} in course.yml")
    return list(module.parameters)


def notebook_parameters(notebook: Path) -> list[ParamSpec]:
    """Parameters of a notebook's `parameters` cell; `dataset`/`period`/`neighborhood` keep their meaning."""
    import nbformat
    from papermill import inspect_notebook

    nb, source = read_notebook(notebook), notebook
    with tempfile.TemporaryDirectory() as tmp:
        if not nb.metadata.get("kernelspec", {}).get("name"):  # papermill needs a kernel name to read it
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            notebook = Path(tmp) / "notebook.ipynb"
            nbformat.write(nb, notebook)
        try:
            found = inspect_notebook(str(notebook))
        except Exception as error:  # a parameters cell papermill cannot read
            raise CitykitError(
                f"cannot read the parameters cell of {quote(str(source))}: {type(error).__name__}"
            ) from None
    specs = []
    for name, info in found.items():
        default = _literal(info.get("default"))
        inferred = info.get("inferred_type_name") or ""
        if name in DATA_TYPES:
            kind = name
        elif inferred in SCALAR_TYPES:
            kind = inferred
        else:
            kind = type(default).__name__ if type(default).__name__ in SCALAR_TYPES else "str"
        specs.append(ParamSpec(name, kind, default, info.get("help") or ""))
    return specs


def read_notebook(path: Path):
    """The notebook at `path`, or one line saying why it is not one (not JSON, not a notebook)."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, UnicodeDecodeError) as error:
        raise CitykitError(f"cannot read the notebook {quote(str(path))}: {type(error).__name__}") from None
    except Exception as error:  # nbformat's NotJSONError, a JSON or schema error
        reason = "not JSON" if "json" in type(error).__name__.lower() else type(error).__name__
        raise CitykitError(f"{quote(str(path))} is not a Jupyter notebook ({reason})") from None


def _literal(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def slugify(value: Any) -> str:
    """`Harbor Point` -> `harbor-point`, `北区` -> `bei-qu` (transliterated); numbers keep their sign
    and decimal point. Not unique: `parameters_slug` adds a hash where it is needed."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    from anyascii import anyascii  # its tables load per script, on first use

    return re.sub(r"[^a-z0-9]+", "-", anyascii(str(value)).lower()).strip("-") or "none"


def validate(specs: Sequence[ParamSpec], given: Mapping[str, Any], report: str = "report") -> dict[str, Any]:
    """Every parameter's typed value (given or default); `CitykitError` on the first bad one."""
    by_name = {s.name: s for s in specs}
    unknown = [k for k in given if k not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise CitykitError(f"unknown parameter {quote(unknown[0])} for {report}; its parameters: {known}")
    values: dict[str, Any] = {}
    # the dataset first: periods and neighborhoods are checked against it
    ordered = sorted(specs, key=lambda s: s.type != "dataset")
    dataset = None
    for spec in ordered:
        raw = given.get(spec.name, spec.default)
        value = convert(spec, raw, dataset)
        if spec.type == "dataset":
            dataset = value
        values[spec.name] = value
    return {s.name: values[s.name] for s in specs}


def convert(spec: ParamSpec, raw: Any, dataset: str | None = None) -> Any:
    """One parameter's typed value, checked against its type, choices and the dataset."""
    if isinstance(raw, str) and raw.strip().lower() in NONE_WORDS and _may_be_none(spec):
        return None
    if raw is None:
        if _may_be_none(spec):
            return None
        raise CitykitError(f"parameter {spec.name!r} needs a value ({spec.type})")
    if spec.type == "dataset":
        value = check_dataset(str(raw))
    elif spec.type == "period":
        value = check_period(str(raw), dataset, spec.selects)
    elif spec.type == "neighborhood":
        value = check_neighborhood(str(raw), dataset)
    else:
        value = _scalar(spec, raw)
    if spec.choices is not None and value not in spec.choices:
        raise CitykitError(
            f"parameter {spec.name!r} cannot be {quote(raw)}; choose one of: {', '.join(map(str, spec.choices))}"
        )
    return value


def _may_be_none(spec: ParamSpec) -> bool:
    return spec.type in ("period", "neighborhood") or spec.default is None


def _scalar(spec: ParamSpec, raw: Any) -> Any:
    kind = SCALAR_TYPES[spec.type]
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    text = str(raw).strip()
    if kind is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise CitykitError(f"parameter {spec.name!r} must be true or false, not {quote(raw)}")
    try:
        return kind(text)
    except ValueError:  # also a whole number of more than 4,300 digits
        raise CitykitError(f"parameter {spec.name!r} must be {_article(spec.type)}, not {quote(raw)}") from None


def _article(kind: str) -> str:
    return {"int": "a whole number", "float": "a number", "str": "text"}[kind]


def check_dataset(name: str) -> str:
    known = registry.all_datasets()
    if name not in known:
        raise CitykitError(f"unknown dataset {quote(name)}; registered datasets: {', '.join(sorted(known))}")
    ds = known[name]
    if not ds.exists() and ds.kind != "parquet":
        raise CitykitError(
            f"dataset {name!r} lives in a PostgreSQL database and the environment variable {ds.location} is not "
            f"set; set it to the database URL (postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE)"
        )
    if not ds.exists():
        hint = "citykit data build" + (" --scale large" if name.endswith("_large") else "")
        raise CitykitError(f"dataset {name!r} is registered but has no data yet; build or import it ({hint})")
    return name


def default_period(dataset: str, kind: str) -> Period:
    """The latest complete month, quarter or year before the dataset's as-of date, within its data."""
    ds = registry.get(dataset)
    period = latest_complete(kind, ds.as_of)
    first, _ = coverage(dataset)
    if first is not None and period.end <= first:
        raise CitykitError(
            f"dataset {dataset!r} holds no complete {kind} before its as-of date {ds.as_of}; give -p period=..."
        )
    return period


def check_period(text: str, dataset: str | None, selects: Sequence[str] = ()) -> str:
    """The period's label, when it overlaps the dataset's service requests ("latest quarter" and the
    like resolve to the latest complete one before the dataset's as-of date) and is whole units of
    every column it `selects` ("table.column") that the standard publishes coarsened."""
    latest = LATEST.fullmatch(text.strip())
    if latest:
        return default_period(dataset or "riverton", latest[1].lower()).label
    period = parse_period(text)
    for selected in selects:
        table, _, column = selected.partition(".")
        check_whole_units(table, column, period.start, period.end, period.label)
    if dataset is not None:
        first, last = coverage(dataset)
        if first is not None and not (period.start <= last and period.end > first):
            raise CitykitError(f"period {period.label} is outside dataset {dataset!r}, which covers {first} to {last}")
    return period.label


def period_info(text: str | None, dataset: str | None) -> dict[str, Any] | None:
    """What a period value covers in the dataset, for the manifest and page: label, first and last
    day, and whether it is partial (runs past the as-of date), with its `title`."""
    if text is None:
        return None
    ds = registry.get(dataset or "riverton")
    period = parse_period(text, as_of=ds.as_of)
    return {"label": period.label, "start": period.start.isoformat(), "last_day": period.last_day.isoformat(),
            "partial": period.partial, "title": period.title,
            "compared_with": {"start": period.previous().start.isoformat(),
                              "last_day": period.previous().last_day.isoformat()}}  # fmt: skip


def _version(dataset: str) -> tuple:
    """What a dataset's cached facts depend on: its parquet files' sizes and times (or its name)."""
    ds = registry.get(dataset)
    if ds.kind != "parquet":
        return (dataset, ds.kind)
    stats = [p.stat() for p in sorted(ds.folder.glob("*.parquet"))]
    return (dataset, str(ds.folder), tuple((s.st_mtime_ns, s.st_size) for s in stats))


def coverage(dataset: str):
    """First and last day of the dataset's service requests (from parquet statistics when possible)."""
    return _coverage(_version(dataset))


@functools.lru_cache(maxsize=32)
def _coverage(version: tuple):
    from citykit.data import load  # duckdb and pandas: not on the CLI's start-up path

    dataset = version[0]
    ds = registry.get(dataset)
    if ds.kind == "parquet":
        path = ds.table_path("service_requests").as_posix()
        sql = "SELECT min(created_at), max(created_at) FROM read_parquet(?)"  # the path as a parameter
        first, last = load.connect().execute(sql, [path]).fetchone()
    else:
        frame = load.load("service_requests", dataset=dataset, columns=["created_at"])
        first, last = frame["created_at"].min(), frame["created_at"].max()
    if first is None or first != first:
        return None, None
    return first.date(), last.date()


def neighborhoods(dataset: str) -> list[str]:
    """The dataset's neighborhood names, sorted (cached while its files do not change)."""
    return list(_neighborhoods(_version(dataset)))


@functools.lru_cache(maxsize=32)
def _neighborhoods(version: tuple) -> tuple[str, ...]:
    from citykit.data.load import load  # duckdb and pandas: not on the CLI's start-up path

    # an imported 311 export may have no neighborhoods table yet: then the names its requests carry
    table = "neighborhoods" if registry.get(version[0]).has("neighborhoods") else "service_requests"
    names = load(table, dataset=version[0], columns=["neighborhood"])["neighborhood"]
    return tuple(sorted(str(n) for n in names.dropna().unique()))


def check_neighborhood(text: str, dataset: str | None) -> str:
    """The neighborhood's name as the data spells it: the exact name, else the one name that matches
    in any letter case, else the one name with that slug (`harbor-point`); never a guess between two."""
    dataset = dataset or "riverton"  # a learner's notebook without a dataset parameter reads the bundled city
    known = neighborhoods(dataset)
    if text in known:
        return text
    stripped = text.strip()
    if stripped in known:
        return stripped
    slug = slugify(stripped)
    found = [  # every name it could mean, in any letter case or by its slug: one, or it is ambiguous
        name for name in known if name.casefold() == stripped.casefold() or (slug != "none" and slugify(name) == slug)
    ]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise CitykitError(
            f"neighborhood {quote(text)} could be any of {', '.join(map(quote, found[:10]))}"
            f"{f' (and {len(found) - 10} more)' if len(found) > 10 else ''} in dataset {dataset!r}; give the name exactly"
        )
    raise CitykitError(f"unknown neighborhood {quote(text)} in dataset {dataset!r}; choose from: {', '.join(known)}")


def allowed_values(spec: ParamSpec, dataset: str | None) -> list[Any]:
    """Every allowed value of a parameter (a batch's default `--values`)."""
    if spec.choices is not None:
        return list(spec.choices)
    if spec.type == "neighborhood":
        return neighborhoods(dataset or "riverton")
    if spec.type == "bool":
        return [True, False]
    if spec.type == "dataset":
        return [n for n, ds in registry.all_datasets().items() if ds.exists()]
    raise CitykitError(f"parameter {spec.name!r} ({spec.type}) has no list of allowed values; give --values")


def dataset_of(values: Mapping[str, Any], specs: Sequence[ParamSpec]) -> str | None:
    """The value of the dataset-typed parameter, if any."""
    return next((values.get(s.name) for s in specs if s.type == "dataset"), None)


def describe(specs: Sequence[ParamSpec], given: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """Rows for `citykit report params NAME [-p dataset=X]`: name, type, default, allowed values, help.

    A period default such as "latest quarter" is shown resolved for the dataset (given or default).
    """
    given = dict(given or {})
    dataset = next((given.get(s.name, s.default) for s in specs if s.type == "dataset"), None)
    if dataset is not None:
        dataset = check_dataset(str(dataset))
    rows = []
    for s in specs:
        default = "" if s.default is None else str(s.default)
        if s.type == "period" and s.default is not None and LATEST.fullmatch(str(s.default).strip()):
            default = (
                f"{check_period(str(s.default), dataset)} ({s.default} before {dataset or 'riverton'}'s as-of date)"
            )
        if s.choices is not None:
            allowed = ", ".join(map(str, s.choices))
        else:
            allowed = {
                "dataset": "a registered dataset that has data",
                "period": "2025, 2025-Q3, 2025-07 or 2025-01-01/2025-06-30, within the data",
                "neighborhood": "a neighborhood of the dataset, or empty for citywide",
                "bool": "true or false",
            }.get(s.type, "any " + s.type)
        rows.append({"name": s.name, "type": s.type, "default": default, "allowed": allowed, "help": s.help})
    return rows


def parameters_slug(values: Mapping[str, Any], specs: Sequence[ParamSpec]) -> str:
    """A stable folder name for a set of values: the ones differing from defaults, sorted by name.

    `neighborhood=harbor-point~3c9f1e_period=2025-q4~5b2d0a`; `citywide` when every value is its
    default. Each value is transliterated and slugged, then followed by `~` and a hash of the exact
    value unless the slug spells it exactly (lower-case ASCII letters, digits, `.` and `-`), so
    values differing in any character, in any alphabet, get different names.
    """
    parts = [f"{slugify(k)}={value_slug(v)}" for k, v in sorted(named_values(values, specs).items())]
    name = "_".join(parts) or "citywide"
    if len(name) > NAME_CHARS:  # many long values: cut, and keep them apart by a hash of the whole name
        name = f"{name[: NAME_CHARS - 13].rstrip('-_=~')}~{_digest(name, 12)}"
    return name


def named_values(values: Mapping[str, Any], specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """The values a folder name shows: those that differ from their defaults (None never does)."""
    defaults = {s.name: s.default for s in specs}
    dataset = dataset_of(values, specs)
    for s in specs:  # a "latest quarter" default names the period it resolves to for this dataset
        if s.type == "period" and s.default is not None and LATEST.fullmatch(str(s.default).strip()):
            with contextlib.suppress(CitykitError):
                defaults[s.name] = check_period(str(s.default), dataset)
    return {k: v for k, v in values.items() if v is not None and str(v) != str(defaults.get(k))}


def value_slug(value: Any) -> str:
    """One value in a folder name: its slug, plus `~` and a hash of the exact value unless the slug
    spells the value exactly. A password in a URL is left out of the readable part (`redact`)."""
    exact = str(value).lower() if isinstance(value, bool) else str(value)
    if SPELLED.fullmatch(exact) and len(exact) <= PART_CHARS:
        return exact
    readable = slugify(redact(exact))[:PART_CHARS].strip("-")
    if readable == "none" and "none" not in exact.lower():  # nothing readable: the hash alone
        readable = ""
    return f"{readable}~{_digest(exact, 6)}"


def _digest(text: str, chars: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:chars]
