"""The `citykit` command line: argument parsing only; each command calls one library function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from citykit.errors import CitykitError


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


# --- data -------------------------------------------------------------------------------------


def data_build(args: argparse.Namespace) -> int:
    from citykit.data.generate import build

    summary = build(seed=args.seed, scale=args.scale, force=args.force)
    print(summary)
    return 0


def data_check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from citykit.data.quality import check_dataset

    card = check_dataset(args.name)
    card.render(Console())
    card.raise_if_failed()
    return 0


def data_import(args: argparse.Namespace) -> int:
    from rich.console import Console

    from citykit.data.importers import import_requests

    with Console(stderr=True).status("importing ...") as status:
        result = import_requests(
            args.source, args.file, name=args.name, as_of=args.as_of, mapping_file=args.mapping,
            progress=lambda rows: status.update(f"importing: {rows:,} rows read"),
        )  # fmt: skip
    print(result.report)
    print(f"dataset {result.name!r} registered (as of {result.as_of}); report saved in {result.folder}")
    return 0


def data_import_population(args: argparse.Namespace) -> int:
    from citykit.data.population import import_population

    print(import_population(args.file, name=args.name))
    return 0


def data_import_boundaries(args: argparse.Namespace) -> int:
    from citykit.data.population import import_boundaries

    print(import_boundaries(args.file, name=args.name, name_property=args.property))
    return 0


def data_import_applications(args: argparse.Namespace) -> int:
    from citykit.data.population import import_applications

    print(import_applications(args.file, args.mapping, name=args.name))
    return 0


def data_publish(args: argparse.Namespace) -> int:
    from citykit.data.sql_source import publish

    print(publish(args.name, args.to_env, as_name=args.as_name))
    return 0


# --- course -----------------------------------------------------------------------------------


def course_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from citykit.course import load_course

    table = Table(title="citykit course", show_lines=True)
    for column in ("#", "module", "title", "minutes", "objectives", "report"):
        table.add_column(column)
    for m in load_course():
        objectives = "\n".join(f"• {text}" for text in m.objectives.values())
        table.add_row(f"{m.number:02d}", m.slug, m.title, str(m.minutes), objectives, "yes" if m.report else "")
    Console().print(table)
    return 0


# --- lab --------------------------------------------------------------------------------------


def lab(args: argparse.Namespace) -> int:
    from citykit.lab import run_lab

    return run_lab(instructor=args.instructor, port=args.port)


# --- grade ------------------------------------------------------------------------------------


def grade_generate(args: argparse.Namespace) -> int:
    from citykit.grading import generate

    for path in generate(args.module):
        print(f"student version: {path}")
    return 0


def grade_autograde(args: argparse.Namespace) -> int:
    from citykit.grading import autograde, score

    autograde(args.module, args.student)
    points, max_points = score(args.module, args.student)
    print(f"{args.student}: {points:g} / {max_points:g} points")
    return 0


# --- report -----------------------------------------------------------------------------------


def report_run(args: argparse.Namespace) -> int:
    from citykit.reports import run_report

    result = run_report(args.name, dict(args.parameters), out=args.out)
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citykit", description="A data academy in a box for city staff.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="build, import and check datasets").add_subparsers(
        dest="data_command", required=True, metavar="ACTION"
    )
    p = data.add_parser("build", help="generate the synthetic city and publish its anonymized tables")
    p.add_argument("--scale", choices=("small", "default", "large"), default="default")
    p.add_argument("--seed", type=int, default=311)
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    p.set_defaults(func=data_build)
    p = data.add_parser("check", help="quality scorecard; exit 1 when a gate fails")
    p.add_argument("name", nargs="?", default="riverton", help="dataset name (default: riverton)")
    p.set_defaults(func=data_check)
    p = data.add_parser("import", help="a real 311 export -> canonical, anonymized tables (re-import updates)")
    p.add_argument("source", help="auto, or a source: sf311_portal, sf311_warehouse, baltimore, nyc311, chicago311, la_myla311, boston311")
    p.add_argument("file", type=Path, help="the exported CSV (never modified)")
    p.add_argument("--name", default=None, help="dataset name (default: the source's name)")
    p.add_argument("--as-of", default=None, help="as-of date YYYY-MM-DD (default: the newest timestamp in the data)")
    p.add_argument("--mapping", type=Path, default=None, help="a custom mapping YAML (copy one from citykit/data/mappings/)")
    p.set_defaults(func=data_import)
    p = data.add_parser("import-population", help="neighborhood population (canonical neighborhoods columns)")
    p.add_argument("file", type=Path)
    p.add_argument("--name", default=None, help="the imported dataset it belongs to")
    p.set_defaults(func=data_import_population)
    p = data.add_parser("import-boundaries", help="neighborhood boundaries (GeoJSON polygons)")
    p.add_argument("file", type=Path)
    p.add_argument("--name", default=None, help="the imported dataset it belongs to")
    p.add_argument("--property", default=None, help="feature property holding the neighborhood name")
    p.set_defaults(func=data_import_boundaries)
    p = data.add_parser("import-applications", help="person-level program records, k-anonymized under the standard")
    p.add_argument("file", type=Path)
    p.add_argument("--mapping", type=Path, required=True, help="mapping YAML (columns, outcome, race/ethnicity codes)")
    p.add_argument("--name", default=None, help="the imported dataset it belongs to")
    p.set_defaults(func=data_import_applications)
    p = data.add_parser("publish", help="load a dataset's tables into the PostgreSQL database named by an env var")
    p.add_argument("name", help="dataset to publish")
    p.add_argument("--to-env", required=True, metavar="VAR", help="environment variable holding the database URL")
    p.add_argument("--as", dest="as_name", default=None, help="name of the database-backed dataset (default: NAME_pg)")
    p.set_defaults(func=data_publish)

    course = commands.add_parser("course", help="the course's modules").add_subparsers(
        dest="course_command", required=True, metavar="ACTION"
    )
    course.add_parser("list", help="modules in order, with objectives and minutes").set_defaults(func=course_list)

    p = commands.add_parser("lab", help="JupyterLab on the released course (token always on)")
    p.add_argument("--instructor", action="store_true", help="open the grading folder with formgrader")
    p.add_argument("--port", type=int, default=8888)
    p.set_defaults(func=lab)

    grade = commands.add_parser("grade", help="nbgrader around a cohort").add_subparsers(
        dest="grade_command", required=True, metavar="ACTION"
    )
    p = grade.add_parser("generate", help="write the student versions (solutions and hidden tests removed)")
    p.add_argument("module", nargs="?", default=None, help="module slug or folder (default: all)")
    p.set_defaults(func=grade_generate)
    p = grade.add_parser("autograde", help="autograde submissions")
    p.add_argument("module")
    p.add_argument("--student", required=True)
    p.set_defaults(func=grade_autograde)

    report = commands.add_parser("report", help="run notebooks as production reports").add_subparsers(
        dest="report_command", required=True, metavar="ACTION"
    )
    p = report.add_parser("run", help="run a module (or a notebook by path) as a report")
    p.add_argument("name", help="module slug, folder name, or path to a notebook")
    p.add_argument("-p", "--parameter", dest="parameters", type=_key_value, action="append", default=[])
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the reports/ archive)")
    p.set_defaults(func=report_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CitykitError as error:
        print(f"citykit: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("citykit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
