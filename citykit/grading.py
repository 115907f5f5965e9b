"""nbgrader around the course: generate student versions, autograde, read scores, validate.

Uses nbgrader's Python API (`NbGraderAPI`) with the configuration in `grading/nbgrader_config.py`.
Assignments are the module folders (`04-time-to-close`); a module may be named by slug too.
Every function takes an optional `course_root` so a copy of the course can be graded elsewhere
(its `notebooks/` and `grading/` folders); by default the repository is the course root.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from citykit import paths
from citykit.course import module_folders
from citykit.errors import CitykitError, WorkFailed

CONFIG_FILE = "nbgrader_config.py"
Part = Literal["all", "autograded", "manual"]
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def load_config(course_root: Path | None = None):
    """The course's nbgrader config; with `course_root`, every folder and the gradebook move there."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE, path=str(paths.grading_dir())).load_config()
    if course_root is not None:
        root = Path(course_root).resolve()
        config.CourseDirectory.root = str(root)
        config.CourseDirectory.db_url = f"sqlite:///{root / 'grading' / 'gradebook.db'}"
        config.Exchange.root = str(root / "grading" / "exchange")
    return config


def course_root_of(course_root: Path | None) -> Path:
    return Path(course_root).resolve() if course_root is not None else paths.repo_root()


def assignment_id(module: str, course_root: Path | None = None) -> str:
    """The nbgrader assignment of a module: its folder name (`time-to-close` -> `04-time-to-close`)."""
    folders = {slug: f"{n:02d}-{slug}" for slug, n in module_folders(course_root_of(course_root) / "notebooks").items()}
    if module in folders:
        return folders[module]
    if module in folders.values():
        return module
    raise CitykitError(f"unknown module {module!r}; modules: {', '.join(sorted(folders.values()))}")


def _api(course_root: Path | None):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = load_config(course_root)
    (course_root_of(course_root) / "grading" / "exchange").mkdir(parents=True, exist_ok=True)
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def _checked(result: dict, what: str) -> None:
    """Raise `WorkFailed` with the root error nbgrader logged (its final message only says "see above")."""
    if not result.get("success"):
        lines = f"{result.get('log', '')}\n{result.get('error', '')}".splitlines()
        errors = [line.strip() for line in lines if re.match(r"\s*[\w.]+(Error|Exception): ", line)]
        errors = [e for e in errors if "see the the above traceback" not in e] or errors
        raise WorkFailed(f"{what} failed: {errors[0] if errors else 'see the nbgrader log'}")


@contextmanager
def _grader_env() -> Iterator[None]:
    """The environment nbgrader needs: this Python's scripts on PATH (nbgrader runs `alembic` to
    create a gradebook), one DuckDB thread per kernel (graders run many kernels), and nbgrader's
    SQLAlchemy session warnings silenced."""
    from sqlalchemy.exc import SAWarning

    scripts = str(Path(sys.executable).parent)
    changes = {
        "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
        "CITYKIT_DUCKDB_THREADS": "1",
    }
    old = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)  # nbgrader's own gradebook session warnings
            yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def generate(module: str | None = None, *, course_root: Path | None = None) -> list[Path]:
    """Write student versions to grading/release/<assignment>/ (None = every module); return them."""
    root = course_root_of(course_root)
    assignments = (
        [assignment_id(module, course_root)]
        if module is not None
        else [f"{n:02d}-{slug}" for slug, n in sorted(module_folders(root / "notebooks").items(), key=lambda i: i[1])]
    )
    released = []
    with _grader_env():
        api = _api(course_root)
        for assignment in assignments:
            _checked(api.generate_assignment(assignment, force=True, create=True), f"generating {assignment}")
            released += sorted((root / "grading" / "release" / assignment).glob("*.ipynb"))
    return released


def submit(module: str, student: str, notebook: Path | None = None, *, course_root: Path | None = None) -> Path:
    """Place a learner's notebook (default: the untouched student version) as their submission."""
    root = course_root_of(course_root)
    assignment = assignment_id(module, course_root)
    source = notebook or root / "grading" / "release" / assignment / f"{assignment}.ipynb"
    if not Path(source).exists():
        raise CitykitError(f"no notebook to submit at {source}; run generate first")
    target = root / "grading" / "submitted" / student / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def autograde(module: str, student: str, *, course_root: Path | None = None) -> Path:
    """Autograde a submission (visible and hidden tests); return the autograded notebook."""
    assignment = assignment_id(module, course_root)
    with _grader_env():
        _checked(_api(course_root).autograde(assignment, student, force=True, create=True),
                 f"autograding {assignment} for {student}")
    return course_root_of(course_root) / "grading" / "autograded" / student / assignment / f"{assignment}.ipynb"


def score(module: str, student: str, *, part: Part = "all", course_root: Path | None = None) -> tuple[float, float]:
    """(points, max_points) of a graded submission from the gradebook.

    part: "all", "autograded" (test cells) or "manual" (written answers; 0 until an instructor grades).
    """
    from nbgrader.api import Gradebook, MissingEntry

    assignment = assignment_id(module, course_root)
    with _grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            raise CitykitError(f"no graded submission of {assignment} by {student!r}; autograde it first") from None
        if part == "autograded":
            return float(submission.code_score), float(submission.max_code_score)
        if part == "manual":
            return float(submission.written_score), float(submission.max_written_score)
        return float(submission.score), float(submission.max_score)


def validate(notebook: Path, *, invert: bool = False) -> list[str]:
    """Run a notebook's tests with nbgrader's Validator; the problems found (empty = all pass).

    With `invert`, the problems are the test cells that pass (a student version must fail them).
    """
    from nbgrader.validator import Validator

    with _grader_env():
        results = Validator(config=load_config(), invert=invert).validate(str(Path(notebook).resolve()))
    problems = [f"cell changed type: {c['source'][:60]!r}" for c in results.get("type_changed", [])]
    problems += [f"test cell changed: {c['source'][:60]!r}" for c in results.get("changed", [])]
    problems += [f"test passes without an answer: {c['source'][:60]!r}" for c in results.get("passed", [])]
    for cell in results.get("failed", []):
        error = ANSI_ESCAPE.sub("", cell["raw_error"]).strip()
        problems.append(f"test fails: {error.splitlines()[-1] if error else cell['source'][:60]}")
    return problems
