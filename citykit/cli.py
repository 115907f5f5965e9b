"""The `citykit` command line: argument parsing only; each command calls one library function.

Bad usage or bad input ends with exit code 2 and one line on stderr, never a traceback: argparse's
own errors too (`Parser.error`), and numeric options are checked by their types (`--timeout -5`,
`--workers 0` and `--name ""` are refused before anything runs). Every message is printed through
`one_line` (control characters escaped) and `redact` (no password in a URL is ever printed).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError, one_line, quote, redact
from citykit.startup import skip_slow_optional_modules

DATASET_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one `--help` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(redact(message))} (see {self.prog} --help)\n")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {quote(text)}")
    return key.strip(), value


def _parameters(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """`-p KEY=VALUE` options as a dict; a parameter given twice is refused (which one is meant?)."""
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            raise CitykitError(f"parameter {quote(key)} is given twice (-p {key}=...); give it once")
        values[key] = value
    return values


def _number(kind: type, text: str, what: str, low: float, high: float = math.inf, above_low: bool = False):
    """`text` as an int or float within [low, high] (above `low` when `above_low`), finite."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}, not {quote(text)}") from None
    if not (math.isfinite(value) and (value > low if above_low else value >= low) and value <= high):
        raise argparse.ArgumentTypeError(f"{what}, not {quote(text)}")
    return value


def _seconds(text: str) -> float:
    return _number(float, text, "must be a number of seconds above 0", 0, above_low=True)


def _count(text: str) -> int:
    return _number(int, text, "must be a whole number of 1 or more", 1)


def _count_or_zero(text: str) -> int:
    return _number(int, text, "must be a whole number of 0 or more", 0)


def _share(text: str) -> float:
    return _number(float, text, "must be a share from 0 to 1", 0, 1)


def _port(text: str) -> int:
    return _number(int, text, "must be a port number from 1 to 65535", 1, 65535)


def _dataset_name(text: str) -> str:
    """A dataset name: lower-case letters, digits and _, starting with a letter (never empty)."""
    if not DATASET_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"a dataset name is lower-case letters, digits and _ (starting with a letter), not {quote(text)}"
        )
    return text


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


def data_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from citykit.data.inventory import list_datasets

    table = Table(title="Datasets (citykit data check NAME for the full scorecard)")
    for column in (
        "dataset",
        "tables (rows)",
        "as of",
        "extracted",
        "requests created",
        "latest complete periods",
        "quality",
    ):
        table.add_column(column)
    for d in list_datasets(score=not args.no_check):
        tables = "\n".join(f"{t} ({n:,})" for t, n in d.tables.items())
        covered = f"{d.first_request} to {d.last_request}" if d.first_request else ""
        table.add_row(d.name, tables, d.as_of, d.extract_date, covered, d.default_periods, d.verdict or "not checked")
    Console().print(table)
    return 0


def data_import(args: argparse.Namespace) -> int:
    from rich.console import Console

    from citykit.data.importers import import_requests

    with Console(stderr=True).status("importing ...") as status:
        result = import_requests(
            args.source, args.file, name=args.name, as_of=args.as_of, mapping_file=args.mapping,
            extract_date=args.extract_date,
            progress=lambda rows: status.update(f"importing: {rows:,} rows read"),
        )  # fmt: skip
    print(result.report)
    inferred = ", inferred from the newest record" if result.as_of_inferred else ""
    print(
        f"dataset {result.name!r} registered (as of {result.as_of}{inferred}; extracted {result.extract_date}); "
        f"report saved in {result.folder}"
    )
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


# --- course folder ----------------------------------------------------------------------------


def init(args: argparse.Namespace) -> int:
    from citykit.course_folder import init_course

    print(init_course(args.folder, upgrade=args.upgrade).summary())
    return 0


def demo(args: argparse.Namespace) -> int:
    from citykit.demo import run_demo

    run_demo(scale=args.scale, out=args.out)
    return 0


# --- course -----------------------------------------------------------------------------------


def course_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from citykit.lessons.course import load_course

    table = Table(title="citykit course", show_lines=True)
    for column in ("#", "module", "title", "minutes", "objectives", "report"):
        table.add_column(column, no_wrap=column in ("#", "module"))  # a slug is typed as shown: never cut
    for m in load_course():
        objectives = "\n".join(f"• {text}" for text in m.objectives.values())
        table.add_row(f"{m.number:02d}", m.slug, m.title, str(m.minutes), objectives, "yes" if m.report else "")
    Console().print(table)
    return 0


# --- lab --------------------------------------------------------------------------------------


def lab(args: argparse.Namespace) -> int:
    from citykit.lessons.lab import default_student, run_lab

    student = None
    if not args.instructor:
        from citykit.grading.workspace import prepare_workspace

        student = args.student or default_student()
        prepare_workspace(student)  # the learner's own workspace, with the cohort's exchange
    return run_lab(instructor=args.instructor, port=args.port, student=student)


# --- grade ------------------------------------------------------------------------------------


def grade_generate(args: argparse.Namespace) -> int:
    from citykit.grading.assignments import generate

    for path in generate(args.module):
        print(f"student version: {path}")
    return 0


def grade_setup(args: argparse.Namespace) -> int:
    from citykit.grading.assignments import setup
    from citykit.grading.cohort import Limits, PastDueDate, cohort_file

    limits = Limits(cell_timeout=args.cell_timeout, notebook_cpu_seconds=args.cpu_seconds, memory_mb=args.memory_mb)
    options = dict(due=dict(args.due), late_policy=args.late_policy, limits=limits, db_url=args.db_url or "",
                   workers=args.workers, timezone=args.timezone, lms_assignments=dict(args.lms_id))  # fmt: skip
    try:
        cohort = setup(args.cohort, args.roster, past_due_ok=args.yes, **options)
    except PastDueDate as past:
        if sys.stdin.isatty():
            if input(f"{past}\nset up the cohort anyway? [y/N] ").strip().lower() not in ("y", "yes"):
                raise
        else:  # a script: go on, loudly
            print(f"warning: {str(past).replace('confirm with --yes', 'pass --yes to confirm')}", file=sys.stderr)
        cohort = setup(args.cohort, args.roster, past_due_ok=True, **options)
    version = cohort.course_version.get("git_commit") or cohort.course_version["content_hash"]
    print(
        f"cohort {cohort.name}: {len(cohort.learners)} learners, course version {version}; written to {cohort_file(cohort.name)}"
    )
    return 0


def grade_release(args: argparse.Namespace) -> int:
    from citykit.grading.assignments import release

    print(f"released to {release(args.module)}")
    return 0


def grade_collect(args: argparse.Namespace) -> int:
    from citykit.grading.assignments import collect, collect_zips

    if args.zips:
        print(collect_zips(args.module, args.zips).summary())
        return 0
    print(collect(args.module).summary())
    return 0


def grade_fetch(args: argparse.Namespace) -> int:
    from citykit.grading.assignments import fetch

    folder, fetched = fetch(args.module, args.student)
    if fetched:
        print(f"fetched {folder.name} into your workspace as {args.student}: {folder}")
    else:
        print(f"{folder.name} is already in your workspace ({folder}); nothing fetched, your work there is kept")
    return 0


def grade_submit(args: argparse.Namespace) -> int:
    from citykit.grading.assignments import hand_in

    done = hand_in(args.module, args.student, lms=args.lms)
    if args.lms:
        print(f"upload this file to your learning platform, as it is named: {done}")
    else:
        print(f"submitted {done.name.split('+')[1]} as {args.student} through the course exchange ({done.name})")
    return 0


def grade_answers(args: argparse.Namespace) -> int:
    from citykit.grading.answers import written_answers

    print(f"written answers beside the model answer (instructors only): {written_answers(args.module)}")
    return 0


def grade_lint(args: argparse.Namespace) -> int:
    import nbformat

    from citykit.grading.config import assignment_id
    from citykit.grading.lint import hidden_message_problems, lint_assignment

    assignment = assignment_id(args.module)
    for source in sorted((paths.notebooks_dir() / assignment).glob("*.ipynb")):
        for problem in hidden_message_problems(nbformat.read(source, as_version=4)):
            print(f"source {source.name}: {problem}")
    found = lint_assignment(assignment, args.student or None)
    for student, problems in sorted(found.items()):
        print(
            f"{student}: "
            + ("ok" if not problems else "; ".join(("CANNOT GRADE: " if p.fatal else "") + p.message for p in problems))
        )
    return 0


def grade_autograde(args: argparse.Namespace) -> int:
    from citykit.grading.autograde import autograde_cohort
    from citykit.grading.cohort import load_cohort

    workers = args.workers
    if workers is None:
        try:
            workers = load_cohort().workers or None
        except CitykitError:
            workers = None  # one more than the cores
    result = autograde_cohort(args.module, args.student or None, workers=workers, force=args.force)
    print(result.summary())
    return 0


def grade_feedback(args: argparse.Namespace) -> int:
    from citykit.grading.feedback import feedback

    for page in feedback(args.module, args.student or None):
        print(f"feedback: {page}")
    return 0


def grade_export(args: argparse.Namespace) -> int:
    from citykit.grading.export import export, not_graded_yet

    nbgrader_csv, canvas_csv = export(args.out)
    print(f"nbgrader grades: {nbgrader_csv}\nCanvas gradebook import: {canvas_csv}")
    pending = not_graded_yet()
    if pending:
        who = ", ".join(f"{student} ({assignment})" for assignment, student, _ in pending[:8])
        print(f"warning: {len(pending)} submission(s) have written answers not graded yet; their scores leave "
              f"those points out: {who}{' ...' if len(pending) > 8 else ''} (grade them in `citykit lab --instructor`)",
              file=sys.stderr)  # fmt: skip
    return 0


def grade_dashboard(args: argparse.Namespace) -> int:
    from citykit.grading.dashboard import dashboard

    print(dashboard(args.out, need_help_below=args.need_help_below))
    return 0


# --- hub -------------------------------------------------------------------------------------


def _cpus(text: str) -> float:
    return _number(float, text, "must be a number of CPUs above 0 (1.5 is one and a half)", 0, above_low=True)


def hub_setup(args: argparse.Namespace) -> int:
    from citykit.hub.lifecycle import setup

    result = setup(args.cohort, args.roster, prefix=args.prefix, ip=args.ip, port=args.port, ssl_cert=args.ssl_cert,
                   ssl_key=args.ssl_key, auth=args.auth, public_url=args.public_url, memory_mb=args.memory_mb,
                   cpus=args.cpus, idle_minutes=args.idle_minutes, proxy_command=args.proxy_command,
                   account_prefix=args.account_prefix, python=args.python)  # fmt: skip
    print(result.summary())
    return 0


def hub_start(args: argparse.Namespace) -> int:
    from citykit.hub.service import start
    from citykit.hub.state import load_state

    start(load_state(args.cohort, args.prefix))  # becomes JupyterHub: returns only by an error
    return 1


def hub_stop(args: argparse.Namespace) -> int:
    from citykit.hub.service import stop
    from citykit.hub.state import load_state

    print(stop(load_state(args.cohort, args.prefix)).summary(args.cohort))
    return 0


def hub_status(args: argparse.Namespace) -> int:
    from citykit.hub.service import status
    from citykit.hub.state import load_state

    state = load_state(args.cohort, args.prefix)
    found = status(state)
    print(found.summary(state))
    return 0 if found.running else 1


def hub_add_learner(args: argparse.Namespace) -> int:
    from citykit.hub.lifecycle import add_learner
    from citykit.hub.state import load_state

    done = add_learner(load_state(args.cohort, args.prefix), args.id, args.first_name, args.last_name, args.email,
                       instructor=args.instructor)  # fmt: skip
    print(done.summary())
    return 0


def hub_reset_password(args: argparse.Namespace) -> int:
    from citykit.hub.lifecycle import FIRST_PASSWORDS_CSV, reset_password
    from citykit.hub.state import load_state

    state = load_state(args.cohort, args.prefix)
    account = reset_password(state, args.id)
    print(f"new first password for {account} in {state.path / FIRST_PASSWORDS_CSV} (root only): hand it over; "
          "they change it at /hub/change-password")  # fmt: skip
    return 0


def hub_teardown(args: argparse.Namespace) -> int:
    from citykit.hub.lifecycle import teardown
    from citykit.hub.state import load_state

    state = load_state(args.cohort, args.prefix)
    if not args.yes:
        question = (f"remove the accounts of {args.cohort} ({len(state.members)} people) and, if grades were "
                    "exported, their files? [y/N] ")  # fmt: skip
        if not sys.stdin.isatty():
            raise CitykitError(f"teardown removes the accounts of {args.cohort}; confirm with --yes")
        if input(question).strip().lower() not in ("y", "yes"):
            return 1
    print(teardown(state, force=args.force).summary())
    return 0


# --- report -----------------------------------------------------------------------------------


def report_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from citykit.reports.run import list_reports

    table = Table(title="Production reports (citykit report params NAME or #)")
    for column in ("#", "report", "title", "parameters"):
        table.add_column(column)
    for m in list_reports():
        table.add_row(f"{m.number:02d}", m.slug, m.title, ", ".join(p.name for p in m.parameters))
    Console().print(table)
    return 0


def report_params(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from citykit.reports.params import describe
    from citykit.reports.run import resolve

    report = resolve(args.name)
    table = Table(title=f"Parameters of {report.name}")
    for column in ("name", "type", "default", "allowed values", "help"):
        table.add_column(column, overflow="fold")  # a long value wraps instead of being cut ("2025-01-01/2…")
    for row in describe(report.parameters, _parameters(args.parameters)):
        table.add_row(row["name"], row["type"], row["default"], row["allowed"], row["help"])
    Console().print(table)
    return 0


PARAMETER_HELP = "KEY=VALUE, a report parameter (repeatable); `citykit report params REPORT` lists them"


def report_run(args: argparse.Namespace) -> int:
    from citykit.reports.run import run_report

    result = run_report(args.name, _parameters(args.parameters), out=args.out, pdf=args.pdf, timeout=args.timeout)
    print(result)
    unaudited = _releases_not_audited(result.out)
    if unaudited:
        print(f"citykit: warning: this page was NOT audited against the {unaudited} earlier releases in the archive's "
              "release ledger (it was written outside reports/); see the analyst guide before publishing it",
              file=sys.stderr)  # fmt: skip
    return 0


def _releases_not_audited(out: Path) -> int:
    """The archive's releases a run written elsewhere was not audited against (its manifest's ledger)."""
    from citykit.reports.run import MANIFEST

    try:
        ledger = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("ledger") or {}
    except (OSError, ValueError):
        return 0
    return int(ledger.get("archive_not_audited") or 0)


def report_batch(args: argparse.Namespace) -> int:
    from citykit.errors import WorkFailed
    from citykit.reports.batch import run_batch

    result = run_batch(
        args.name, args.over, args.values or None, _parameters(args.parameters), out=args.out, workers=args.workers,
        timeout=args.timeout, scheduler=args.scheduler,
    )  # fmt: skip
    print(result.summary())
    print(f"index: {result.index}")
    if result.failed:
        raise WorkFailed(f"{len(result.failed)} of {len(result.runs)} reports failed (see {result.index})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="citykit", description="A data academy in a box for city staff.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="build, import and check datasets").add_subparsers(
        dest="data_command", required=True, metavar="ACTION"
    )
    p = data.add_parser("build", help="generate the synthetic city and publish its anonymized tables")
    p.add_argument(
        "--scale",
        choices=("tiny", "small", "default", "large"),
        default="default",
        help="tiny and small are quick cities for trying things out (dataset riverton); large is riverton_large",
    )
    p.add_argument("--seed", type=int, default=311)
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    p.set_defaults(func=data_build)
    p = data.add_parser("check", help="quality scorecard; exit 1 when a gate fails")
    p.add_argument("name", nargs="?", default="riverton", help="dataset name (default: riverton)")
    p.set_defaults(func=data_check)
    p = data.add_parser(
        "list", help="datasets: tables, rows, as-of and extract dates, periods covered, quality verdict"
    )
    p.add_argument("--no-check", action="store_true", help="skip the quality scorecard (faster)")
    p.set_defaults(func=data_list)
    p = data.add_parser("import", help="a real 311 export -> canonical, anonymized tables (re-import updates)")
    p.add_argument(
        "source",
        help="auto, or a source: sf311_portal, sf311_warehouse, baltimore, nyc311, chicago311, la_myla311, boston311",
    )
    p.add_argument("file", type=Path, help="the exported CSV (never modified)")
    p.add_argument("--name", type=_dataset_name, default=None, help="dataset name (default: the source's name)")
    p.add_argument(
        "--as-of",
        default=None,
        help="the analysis' now, YYYY-MM-DD: ages, backlog, default periods "
        "(default: the newest plausible record, labelled inferred)",
    )
    p.add_argument(
        "--extract-date",
        default=None,
        help="the day the export was taken, YYYY-MM-DD, for the "
        "timeliness gate (default: the file's modification date)",
    )
    p.add_argument(
        "--mapping", type=Path, default=None, help="a custom mapping YAML (copy one from citykit/resources/mappings/)"
    )
    p.set_defaults(func=data_import)
    p = data.add_parser("import-population", help="neighborhood population (canonical neighborhoods columns)")
    p.add_argument("file", type=Path)
    p.add_argument("--name", type=_dataset_name, default=None, help="the imported dataset it belongs to")
    p.set_defaults(func=data_import_population)
    p = data.add_parser("import-boundaries", help="neighborhood boundaries (GeoJSON polygons)")
    p.add_argument("file", type=Path)
    p.add_argument("--name", type=_dataset_name, default=None, help="the imported dataset it belongs to")
    p.add_argument("--property", default=None, help="feature property holding the neighborhood name")
    p.set_defaults(func=data_import_boundaries)
    p = data.add_parser("import-applications", help="person-level program records, k-anonymized under the standard")
    p.add_argument("file", type=Path)
    p.add_argument("--mapping", type=Path, required=True, help="mapping YAML (columns, outcome, race/ethnicity codes)")
    p.add_argument("--name", type=_dataset_name, default=None, help="the imported dataset it belongs to")
    p.set_defaults(func=data_import_applications)
    p = data.add_parser("publish", help="load a dataset's tables into the PostgreSQL database named by an env var")
    p.add_argument("name", help="dataset to publish")
    p.add_argument("--to-env", required=True, metavar="VAR", help="environment variable holding the database URL")
    p.add_argument(
        "--as",
        dest="as_name",
        type=_dataset_name,
        default=None,
        help="name of the database-backed dataset (default: NAME_pg)",
    )
    p.set_defaults(func=data_publish)

    p = commands.add_parser("init", help="create a course folder from the installed kit (or --upgrade one)")
    p.add_argument("folder", type=Path, help="a new or empty folder (with --upgrade: an existing course folder)")
    p.add_argument("--upgrade", action="store_true", help="bring a course folder up to this kit, keeping local edits")
    p.set_defaults(func=init)
    p = commands.add_parser(
        "demo", help="build the synthetic city, generate module 04's student version, run it as a report"
    )
    p.add_argument(
        "--scale", choices=("tiny", "small", "default"), default="default", help="size of the synthetic city"
    )
    p.add_argument("--out", type=Path, default=None, help="report folder (default: reports/demo/)")
    p.set_defaults(func=demo)

    course = commands.add_parser("course", help="the course's modules").add_subparsers(
        dest="course_command", required=True, metavar="ACTION"
    )
    course.add_parser("list", help="modules in order, with objectives and minutes").set_defaults(func=course_list)

    p = commands.add_parser("lab", help="JupyterLab: a learner's own workspace, or formgrader (token always on)")
    p.add_argument("--instructor", action="store_true", help="open the grading folder with formgrader")
    p.add_argument("--student", default=None, metavar="ID", help="the learner's roster id (default: your user name)")
    p.add_argument(
        "--port", type=_port, default=None, help="port on 127.0.0.1 (default 8888, or a free one when 8888 is taken)"
    )
    p.set_defaults(func=lab)

    grade = commands.add_parser("grade", help="nbgrader around a cohort").add_subparsers(
        dest="grade_command", required=True, metavar="ACTION"
    )
    p = grade.add_parser("generate", help="write the student versions (solutions and hidden tests removed)")
    p.add_argument("module", nargs="?", default=None, help="module slug or folder (default: all)")
    p.set_defaults(func=grade_generate)
    p = grade.add_parser("setup", help="validate a roster and write the cohort file (nbgrader's course settings)")
    p.add_argument("--cohort", required=True, help="cohort name, e.g. spring-2026")
    p.add_argument(
        "--roster",
        required=True,
        type=Path,
        help="CSV: student_id, first_name, last_name[, email, section, sis_user_id, sis_login_id, canvas_id]",
    )
    p.add_argument(
        "--due",
        type=_key_value,
        action="append",
        default=[],
        metavar="MODULE=DATE",
        help="due date (YYYY-MM-DD or ISO time); repeat per module",
    )
    p.add_argument(
        "--late-policy",
        choices=("none", "zero"),
        default="zero",
        help="late submissions score zero (default) or no penalty",
    )
    p.add_argument("--cell-timeout", type=_count, default=120, help="seconds per notebook cell when grading")
    p.add_argument("--cpu-seconds", type=_count, default=600, help="CPU seconds per graded notebook")
    p.add_argument("--memory-mb", type=_count, default=4096, help="memory (address space) per graded notebook")
    p.add_argument("--db-url", default=None, help="gradebook database URL, kept in a 0600 file outside the course "
                   "(or set CITYKIT_GRADEBOOK_URL; default: SQLite at grading/gradebook.db)")  # fmt: skip
    p.add_argument(
        "--workers", type=_count_or_zero, default=0, help="grading processes (default 0: one more than the cores)"
    )
    p.add_argument("--timezone", default="UTC", help="time zone of due dates without an offset (IANA: America/Chicago)")
    p.add_argument(
        "--lms-id",
        type=_key_value,
        action="append",
        default=[],
        metavar="MODULE=ID",
        help="the LMS's assignment id of a module (Canvas export headers); repeat per module",
    )
    p.add_argument("--yes", action="store_true", help="accept a due date that is already past")
    p.set_defaults(func=grade_setup)
    p = grade.add_parser("release", help="release a student version through nbgrader's exchange")
    p.add_argument("module")
    p.set_defaults(func=grade_release)
    p = grade.add_parser("collect", help="collect submissions from the exchange, or from an LMS download folder")
    p.add_argument("module")
    p.add_argument(
        "--zips",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="an LMS download folder (Canvas, Moodle, Blackboard zips or notebooks), matched to the roster",
    )
    p.set_defaults(func=grade_collect)
    p = grade.add_parser(
        "fetch", help="(a learner) fetch a released module into your lab workspace, as the lab's Fetch does"
    )
    p.add_argument("module")
    p.add_argument("--student", required=True, metavar="ID", help="your roster id")
    p.set_defaults(func=grade_fetch)
    p = grade.add_parser(
        "submit", help="(a learner) hand a module in from your lab workspace, as the lab's Submit does"
    )
    p.add_argument("module")
    p.add_argument("--student", required=True, metavar="ID", help="your roster id")
    p.add_argument("--lms", action="store_true", help="no exchange (a laptop): write the file to upload to the LMS")
    p.set_defaults(func=grade_submit)
    p = grade.add_parser("answers", help="the model answer beside every learner's written answer (instructors)")
    p.add_argument("module")
    p.set_defaults(func=grade_answers)
    p = grade.add_parser("lint", help="check submissions before grading, in plain language")
    p.add_argument("module")
    p.add_argument("--student", action="append", default=[], help="only these learners (repeat)")
    p.set_defaults(func=grade_lint)
    from citykit.grading.sandbox import describe_for_help

    p = grade.add_parser("autograde", help="lint, then autograde every submission in parallel, learner code sandboxed",
                         description=describe_for_help())  # fmt: skip
    p.add_argument("module")
    p.add_argument("--student", action="append", default=[], help="only these learners (repeat; default: everyone)")
    p.add_argument(
        "--workers",
        type=_count,
        default=None,
        help="grading processes (default: the cohort's; one more than the cores)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="regrade everyone and report changed scores (newer submissions and changed tests are regraded without it)",
    )
    p.set_defaults(func=grade_autograde)
    p = grade.add_parser("feedback", help="HTML feedback per learner, without hidden tests")
    p.add_argument("module")
    p.add_argument("--student", action="append", default=[], help="only these learners (repeat)")
    p.set_defaults(func=grade_feedback)
    p = grade.add_parser("export", help="nbgrader's grades CSV and a Canvas gradebook import CSV")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: grading/export/)")
    p.set_defaults(func=grade_export)
    p = grade.add_parser("dashboard", help="the cohort dashboard (objectives heatmap, distributions, failed tests)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/dashboard/)")
    p.add_argument(
        "--need-help-below", type=_share, default=0.6, help="share of points under which a learner needs help"
    )
    p.set_defaults(func=grade_dashboard)

    hub = commands.add_parser("hub", help="a cohort on one shared JupyterHub server (run as root)").add_subparsers(
        dest="hub_command", required=True, metavar="ACTION"
    )
    where = Parser(add_help=False)
    where.add_argument("--cohort", required=True, help="cohort name (also nbgrader's course id), e.g. fall-2027")
    where.add_argument("--prefix", type=Path, default=None,
                       help="folder holding one hub folder per cohort (default /srv/citykit-hub, or CITYKIT_HUB_PREFIX)")  # fmt: skip
    p = hub.add_parser(
        "setup",
        parents=[where],
        help="accounts, course, exchange and jupyterhub_config.py from the roster "
        "(again: options left out keep the values the last setup recorded)",
    )
    p.add_argument("--roster", type=Path, default=None, help="roster CSV with a `role` column (learner/instructor); "
                   "needed the first time")  # fmt: skip
    p.add_argument("--ip", default=None, help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument(
        "--port", type=_port, default=None, help="port people open (default 8000; the next three are used inside)"
    )
    p.add_argument(
        "--ssl-cert", type=Path, default=None, help="HTTPS certificate (else a reverse proxy terminates TLS)"
    )
    p.add_argument("--ssl-key", type=Path, default=None, help="HTTPS key")
    p.add_argument("--auth", choices=("firstuse", "native", "oidc"), default=None,
                   help="first passwords, NativeAuthenticator with instructor approval, or the city's single sign-on")  # fmt: skip
    p.add_argument("--public-url", default=None, help="the address people type (for single sign-on's redirect)")
    p.add_argument("--memory-mb", type=_count, default=None, help="memory per person's server and kernels (2048)")
    p.add_argument("--cpus", type=_cpus, default=None, help="CPUs per person's server and kernels (1)")
    p.add_argument("--idle-minutes", type=_count, default=None, help="stop a server idle this long (60; idle culler)")
    p.add_argument("--proxy-command", default=None, help="configurable-http-proxy (default: found on PATH)")
    p.add_argument("--account-prefix", default=None, help="prefix of the system accounts (default ck-)")
    p.add_argument(
        "--python", default=None, help="the Python with citykit[hub] every account can run (default: this one)"
    )
    p.set_defaults(func=hub_setup)
    hub.add_parser("start", parents=[where], help="run the hub in the foreground").set_defaults(func=hub_start)
    hub.add_parser("stop", parents=[where], help="stop the hub, every server and service").set_defaults(func=hub_stop)
    hub.add_parser("status", parents=[where], help="running? servers, memory, limits (exit 1 when not running)"
                   ).set_defaults(func=hub_status)  # fmt: skip
    p = hub.add_parser("add-learner", parents=[where], help="a late joiner: account, roster, gradebook, hub settings")
    p.add_argument("id", help="the person's roster id")
    p.add_argument("--first-name", required=True)
    p.add_argument("--last-name", required=True)
    p.add_argument("--email", default="", help="for single sign-on and the Canvas export")
    p.add_argument("--instructor", action="store_true", help="an instructor rather than a learner")
    p.set_defaults(func=hub_add_learner)
    p = hub.add_parser("reset-password", parents=[where], help="a new first password for someone who forgot theirs")
    p.add_argument("id", help="the person's roster id or account")
    p.set_defaults(func=hub_reset_password)
    p = hub.add_parser("teardown", parents=[where], help="remove the accounts; after a grade export, their files too")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--force", action="store_true", help="delete even submissions newer than the grade export")
    p.set_defaults(func=hub_teardown)

    report = commands.add_parser("report", help="run notebooks as production reports").add_subparsers(
        dest="report_command", required=True, metavar="ACTION"
    )
    report.add_parser("list", help="the production reports (report: true in course.yml)").set_defaults(func=report_list)
    p = report.add_parser("params", help="a report's parameters: type, default, allowed values, help")
    p.add_argument("name", help="module slug, folder name, number (as `report list` shows it), or path to a notebook")
    p.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        type=_key_value,
        action="append",
        default=[],
        help="dataset=NAME shows the defaults resolved for that dataset (e.g. the default period)",
    )
    p.set_defaults(func=report_params)
    p = report.add_parser("run", help="run a module (or a notebook by path) as a report")
    p.add_argument("name", help="module slug, folder name, number (as `report list` shows it), or path to a notebook")
    p.add_argument("-p", "--parameter", dest="parameters", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help=PARAMETER_HELP)  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the reports/ archive)")
    p.add_argument("--pdf", action="store_true", help="also print the HTML to PDF (needs headless Chromium)")
    p.add_argument(
        "--timeout", type=_seconds, default=None, help="seconds before a hung run's kernel is killed (default: none)"
    )
    p.set_defaults(func=report_run)
    p = report.add_parser("batch", help="run a report once per value of a parameter, in parallel")
    p.add_argument("name", help="module slug, folder name, number (as `report list` shows it), or path to a notebook")
    p.add_argument("--over", required=True, help="the parameter to vary (e.g. neighborhood)")
    p.add_argument("--values", nargs="+", default=None, help="values to run (default: every allowed value)")
    p.add_argument("-p", "--parameter", dest="parameters", type=_key_value, action="append", default=[],
                   metavar="KEY=VALUE", help=PARAMETER_HELP)  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help="batch folder (default: reports/<report>/)")
    p.add_argument("--workers", type=_count, default=None, help="parallel workers (default: one per core)")
    p.add_argument(
        "--timeout", type=_seconds, default=600, help="seconds per run before its kernel is killed (default: 600)"
    )
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on an existing Dask cluster")
    p.set_defaults(func=report_batch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    skip_slow_optional_modules()
    try:
        paths.pin_course()  # kernels and workers started elsewhere read the same course
        return func(args)
    except CitykitError as error:
        print(f"citykit: {one_line(redact(str(error)))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("citykit: interrupted", file=sys.stderr)
        # nbclient's tasks waiting on a kernel the stop killed end in errors nobody reads: asyncio would
        # print each one ("Task exception was never retrieved ... DeadKernelError") as the process exits
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
