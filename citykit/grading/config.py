"""The course as nbgrader sees it: its configuration, folders and assignments, and how nbgrader is called.

The configuration is `grading/nbgrader_config.py` with the active cohort's settings
(`citykit.grading.cohort`). Assignments are the module folders (`04-time-to-close`); a module may be
named by slug too. Every function takes an optional `course_root` so a copy of the course can be
graded elsewhere (its `notebooks/` and `grading/` folders); by default the course folder is the root.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError, WorkFailed
from citykit.files import atomic_write, locked
from citykit.grading.cohort import apply_to_config
from citykit.lessons.course import module_folders

CONFIG_FILE = "nbgrader_config.py"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def load_config(course_root: Path | None = None):
    """The course's nbgrader config with the active cohort's settings; with `course_root`, every
    folder, the gradebook and the cohort come from there."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE, path=str(paths.grading_dir())).load_config()
    if course_root is not None:
        apply_to_config(config, Path(course_root).resolve())
    return config


def course_root_of(course_root: Path | None) -> Path:
    return Path(course_root).resolve() if course_root is not None else paths.course_root()


def assignment_id(module: str, course_root: Path | None = None) -> str:
    """The nbgrader assignment of a module: its folder name (`time-to-close` -> `04-time-to-close`)."""
    folders = {slug: f"{n:02d}-{slug}" for slug, n in module_folders(course_root_of(course_root) / "notebooks").items()}
    if module in folders:
        return folders[module]
    if module in folders.values():
        return module
    raise CitykitError(f"unknown module {module!r}; modules: {', '.join(sorted(folders.values()))}")


def submitted_students(assignment: str, course_root: Path | None = None) -> list[str]:
    """Who has a submission of `assignment` in grading/submitted/."""
    folder = course_root_of(course_root) / "grading" / "submitted"
    return sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir())


GENERATED_FILE = "generated.json"  # in grading/: the source hash each student version was generated from


def source_hash(assignment: str, course_root: Path | None = None) -> str:
    """A hash of an assignment's source folder (`notebooks/<assignment>/`): its notebooks and data files."""
    import hashlib

    folder = course_root_of(course_root) / "notebooks" / assignment
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if file.is_file() and ".ipynb_checkpoints" not in file.parts and "__pycache__" not in file.parts:
            digest.update(str(file.relative_to(folder)).encode())
            digest.update(file.read_bytes())
    return f"sha256:{digest.hexdigest()[:16]}"


def generated_hashes(course_root: Path | None = None) -> dict[str, str]:
    """The source hash each assignment's student version was generated from."""
    import json

    file = course_root_of(course_root) / "grading" / GENERATED_FILE
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}


def record_generated(assignment: str, course_root: Path | None = None) -> None:
    import json

    file = course_root_of(course_root) / "grading" / GENERATED_FILE
    with locked(file):  # two `grade generate` at once: both recorded
        hashes = generated_hashes(course_root)
        hashes[assignment] = source_hash(assignment, course_root)
        atomic_write(file, json.dumps(hashes, indent=1, sort_keys=True) + "\n")


def sqlite_file(db_url: str) -> Path | None:
    """The file of a SQLite gradebook URL (None for another database)."""
    return Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite:///") else None


def nbgrader_api(course_root: Path | None):
    """nbgrader's API on the course (its exchange folder created)."""
    config = load_config(course_root)
    (course_root_of(course_root) / "grading" / "exchange").mkdir(parents=True, exist_ok=True)
    return nbgrader_api_for(config)


def nbgrader_api_for(config):
    """nbgrader's API on an already loaded (and perhaps adjusted) config."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    return NbGraderAPI(CourseDirectory(config=config), config=config)


def check_result(result: dict, what: str) -> None:
    """Raise `WorkFailed` with the root error nbgrader logged (its final message only says "see above")."""
    if not result.get("success"):
        lines = f"{result.get('log', '')}\n{result.get('error', '')}".splitlines()
        errors = [line.strip() for line in lines if re.match(r"\s*[\w.]+(Error|Exception): ", line)]
        errors = [e for e in errors if "see the the above traceback" not in e] or errors
        raise WorkFailed(f"{what} failed: {errors[0] if errors else 'see the nbgrader log'}")


@contextmanager
def grader_env() -> Iterator[None]:
    """The environment nbgrader needs: this Python's scripts on PATH (nbgrader runs `alembic` to
    create a gradebook), one DuckDB thread per kernel (graders run many kernels), and nbgrader's
    SQLAlchemy session warnings silenced."""
    from sqlalchemy.exc import SAWarning

    scripts = str(Path(sys.executable).parent)
    changes = {
        "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
        "CITYKIT_DUCKDB_THREADS": "1",
    }
    with environment(changes), warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own gradebook session warnings
        yield


@contextmanager
def environment(changes: dict[str, str]) -> Iterator[None]:
    """`os.environ` with these changes for the block; each variable as it was after."""
    old = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
