"""nbgrader around the course and its cohort: setup, generate, release, collect, autograde, feedback,
export, dashboard; plus the single-learner helpers (submit, autograde, score, validate).

Uses nbgrader's Python API (`NbGraderAPI`, `Gradebook`, its converters and plugins) with the
configuration in `grading/nbgrader_config.py` and the active cohort (`citykit.grading.cohort`).
Assignments are the module folders (`04-time-to-close`); a module may be named by slug too.
Every function takes an optional `course_root` so a copy of the course can be graded elsewhere
(its `notebooks/` and `grading/` folders); by default the repository is the course root.
See grading/README.md for the instructor's view.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from citykit import paths
from citykit.lessons.course import module_folders
from citykit.errors import CitykitError, WorkFailed

CONFIG_FILE = "nbgrader_config.py"
Part = Literal["all", "autograded", "manual"]
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def load_config(course_root: Path | None = None):
    """The course's nbgrader config with the active cohort's settings; with `course_root`, every
    folder, the gradebook and the cohort come from there."""
    from traitlets.config.loader import PyFileConfigLoader

    from citykit.grading.cohort import apply_to_config

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


# ================================================================== the cohort: setup, release, collect


def setup(
    name: str,
    roster: Path,
    *,
    course_root: Path | None = None,
    due: dict[str, str] | None = None,
    late_policy: str = "zero",
    limits=None,
    db_url: str = "",
    workers: int = 0,
):
    """Validate the roster, write the cohort file and prepare the course for it: nbgrader's config
    beside a course copy, the exchange folder (world-writable, as nbgrader's docs set it), the
    learners and due dates in the gradebook. Returns the `citykit.grading.cohort.Cohort`."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    from citykit.grading.cohort import setup_cohort

    root = course_root_of(course_root)
    due = {assignment_id(module, course_root): when for module, when in (due or {}).items()}
    cohort = setup_cohort(name, roster, course_root=root, due=due, late_policy=late_policy,  # type: ignore[arg-type]
                          limits=limits, db_url=db_url, workers=workers)  # fmt: skip
    config_file = root / "grading" / CONFIG_FILE
    if not config_file.exists():  # a course copy: `nbgrader` and formgrader run there read this file
        shutil.copyfile(paths.grading_dir() / CONFIG_FILE, config_file)
    exchange = root / "grading" / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    exchange.chmod(0o777)
    with _grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url, "citykit") as gradebook:
        for learner in cohort.learners:
            gradebook.update_or_create_student(
                learner.student_id, first_name=learner.first_name, last_name=learner.last_name,
                email=learner.email or None, lms_user_id=learner.canvas_id or None,
            )  # fmt: skip
        for assignment, when in cohort.due.items():
            gradebook.update_or_create_assignment(assignment, duedate=parse_utc(when))
    return cohort


def _api_with(config):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    return NbGraderAPI(CourseDirectory(config=config), config=config)


def release(module: str, *, course_root: Path | None = None) -> Path:
    """Release the student version through nbgrader's exchange; return its outbound folder."""
    assignment = assignment_id(module, course_root)
    config = load_config(course_root)
    if not (course_root_of(course_root) / "grading" / "release" / assignment).is_dir():
        raise CitykitError(f"{assignment} has no student version yet; run `citykit grade generate {module}` first")
    with _grader_env():
        api = _api_with(config)
        Path(config.Exchange.root).mkdir(parents=True, exist_ok=True)
        api.unrelease(assignment)  # a re-release replaces the previous one
        _checked(api.release_assignment(assignment), f"releasing {assignment}")
    return Path(config.Exchange.root) / config.CourseDirectory.course_id / "outbound" / assignment


def exchange_submit(module: str, student: str, notebook: Path, *, course_root: Path | None = None) -> None:
    """What `nbgrader submit` does for a learner on this machine (used to simulate a cohort)."""
    import tempfile

    from nbgrader.utils import capture_log, temp_attrs

    assignment = assignment_id(module, course_root)
    with tempfile.TemporaryDirectory(prefix="citykit-learner-") as home, _grader_env():
        folder = Path(home) / assignment
        folder.mkdir()
        shutil.copyfile(notebook, folder / f"{assignment}.ipynb")
        config = load_config(course_root)
        config.Exchange.assignment_dir = home
        config.Exchange.cache = str(Path(home) / ".nbgrader_cache")
        api = _api_with(config)
        with temp_attrs(api.coursedir, assignment_id=assignment, student_id=student):
            app = api.exchange.Submit(coursedir=api.coursedir, authenticator=api.authenticator, parent=api)
            _checked(capture_log(app), f"submitting {assignment} for {student}")


def submitted_students(assignment: str, course_root: Path | None = None) -> list[str]:
    folder = course_root_of(course_root) / "grading" / "submitted"
    return sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir())


def collect(module: str, *, course_root: Path | None = None) -> list[str]:
    """Collect submissions from the exchange into grading/submitted/; return who has submitted."""
    assignment = assignment_id(module, course_root)
    with _grader_env():
        _checked(_api(course_root).collect(assignment, update=True), f"collecting {assignment}")
    return submitted_students(assignment, course_root)


def collect_zips(module: str, downloads: Path, *, course_root: Path | None = None) -> list[str]:
    """Collect an LMS download folder (zips or notebooks named `<student_id>_..._<notebook>.ipynb`)
    with nbgrader's zip collector — the route for Windows laptops, where the exchange does not work."""
    from nbgrader.apps.zipcollectapp import ZipCollectApp
    from nbgrader.coursedir import CourseDirectory

    assignment = assignment_id(module, course_root)
    downloads = Path(downloads)
    if not downloads.is_dir():
        raise CitykitError(f"no download folder at {downloads}")
    config = load_config(course_root)
    archive = course_root_of(course_root) / "grading" / "downloaded" / assignment / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    shutil.copytree(downloads, archive)
    with _grader_env():
        app = ZipCollectApp(config=config)
        app.coursedir = CourseDirectory(config=config, parent=app)
        app.coursedir.assignment_id = assignment
        app.force = True
        try:
            app.init_plugins()
            app.extract_archive_files()
            app.process_extracted_files()
        except SystemExit:
            raise WorkFailed(f"collecting {assignment} from {downloads} failed; see the messages above") from None
    return submitted_students(assignment, course_root)


# ================================================================== limits for learner code


def run_limited_kernel() -> None:
    """Start an IPython kernel under the grading limits (the kernelspec `kernel_dir` writes runs this).

    RLIMIT_AS bounds the address space (allocations beyond it raise MemoryError); RLIMIT_CPU bounds
    the CPU seconds of the whole notebook (the kernel is killed when it runs out).
    """
    import resource

    memory_mb = int(os.environ.get("CITYKIT_KERNEL_MEMORY_MB") or 0)
    cpu_seconds = int(os.environ.get("CITYKIT_KERNEL_CPU_SECONDS") or 0)
    if memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    import logging

    from ipykernel import kernelapp

    # ipykernel 7 warns on every start that loopback TCP is unencrypted; grading kernels talk only to
    # their grader on 127.0.0.1 with signed messages, and the line, once per learner, buries real errors.
    logging.getLogger("IPKernelApp").addFilter(lambda record: "without encryption" not in record.getMessage())
    kernelapp.launch_new_instance()


def kernel_dir(limits, folder: Path) -> Path:
    """A Jupyter data folder whose `python3` kernelspec starts kernels under `limits`; put it first
    on JUPYTER_PATH so the pinned kernel name stays `python3`."""
    import json

    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-c", "from citykit.grading.workflow import run_limited_kernel; run_limited_kernel()",
                 "-f", "{connection_file}"],
        "display_name": "Python 3 (citykit grading limits)",
        "language": "python",
        "env": {
            "CITYKIT_KERNEL_MEMORY_MB": str(limits.memory_mb),
            "CITYKIT_KERNEL_CPU_SECONDS": str(limits.notebook_cpu_seconds),
            "CITYKIT_DUCKDB_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        },
        "metadata": {"debugger": False},
    }  # fmt: skip
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1), encoding="utf-8")
    return folder


def cohort_limits(course_root: Path | None = None):
    from citykit.grading.cohort import Limits, load_cohort

    try:
        return load_cohort(course_root=course_root_of(course_root)).limits
    except CitykitError:
        return Limits()


@contextmanager
def limited_kernels(limits=None, *, course_root: Path | None = None) -> Iterator[dict[str, str]]:
    """Kernels started inside this block (by nbgrader, in this process or its children) run under the
    limits; yields the environment changes so worker processes can take them too."""
    import tempfile

    limits = limits or cohort_limits(course_root)
    with tempfile.TemporaryDirectory(prefix="citykit-kernels-") as folder:
        kernel_dir(limits, Path(folder))
        changes = {"JUPYTER_PATH": os.pathsep.join(filter(None, [folder, os.environ.get("JUPYTER_PATH")]))}
        old = os.environ.get("JUPYTER_PATH")
        os.environ.update(changes)
        try:
            yield changes
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


# ================================================================== parallel autograde
#
# Each worker process imports nbgrader once and grades learner after learner into its own copy of
# the gradebook (SQLite allows one writer); it sends back what autograding wrote, and this process,
# the one writer of the real gradebook, stores it exactly where nbgrader would have.

_WORKER: dict = {}


def _copy_sqlite(source: Path, target: Path) -> None:
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _sqlite_file(db_url: str) -> Path | None:
    return Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite:///") else None


def _worker_start(course_root: str, private_gradebook: bool, scratch: str, env: dict[str, str]) -> None:
    os.environ.update(env)
    config = load_config(Path(course_root))
    main_db = _sqlite_file(config.CourseDirectory.db_url)
    if private_gradebook and main_db is not None:
        copy = Path(scratch) / f"gradebook-{os.getpid()}.db"
        _copy_sqlite(main_db, copy)
        config.CourseDirectory.db_url = f"sqlite:///{copy}"
    # Kernels talk over IPC sockets, not loopback TCP: two kernels starting at once can be handed the
    # same "free" port (jupyter_client's known race), and a learner then fails with "Address already
    # in use". One socket prefix per worker, whose kernels run one after another.
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(scratch) / f"kernel-{os.getpid()}")
    with _grader_env():
        _WORKER["api"] = _api_with(config)
    _WORKER["db_url"] = config.CourseDirectory.db_url


def _root_error(result: dict) -> str:
    try:
        _checked(result, "autograding")
    except WorkFailed as error:
        return str(error).removeprefix("autograding failed: ")
    return ""


def _read_autogrades(db_url: str, assignment: str, student: str) -> dict:
    """What nbgrader's autograde wrote for one submission (scores, comments, timestamp, late penalty)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return {
            "timestamp": submission.timestamp,
            "notebooks": {
                notebook.name: {
                    "late_submission_penalty": notebook.late_submission_penalty,
                    "grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in notebook.grades},
                    "comments": {c.name: c.auto_comment for c in notebook.comments},
                }
                for notebook in submission.notebooks
            },
        }


def _worker_grade(assignment: str, student: str) -> tuple[str, dict | None, str, float]:
    """(student, autogrades or None, why not graded, seconds) — runs in a worker."""
    import time

    started = time.perf_counter()
    with _grader_env():
        result = _WORKER["api"].autograde(assignment, student, force=True, create=True)
        if not result.get("success"):
            return student, None, _root_error(result), time.perf_counter() - started
        return student, _read_autogrades(_WORKER["db_url"], assignment, student), "", time.perf_counter() - started


def _store_autogrades(gradebook, assignment: str, student: str, record: dict) -> None:
    """Write a worker's autogrades into the real gradebook (the same rows nbgrader writes)."""
    gradebook.update_or_create_student(student)
    if record["timestamp"] is not None:
        gradebook.update_or_create_submission(assignment, student, timestamp=record["timestamp"])
    else:
        gradebook.update_or_create_submission(assignment, student)
    for name, graded in record["notebooks"].items():
        notebook = gradebook.find_submission_notebook(name, assignment, student)
        notebook.late_submission_penalty = graded["late_submission_penalty"]
        for grade in notebook.grades:
            if grade.name in graded["grades"]:
                grade.auto_score, grade.needs_manual_grade = graded["grades"][grade.name]
        for comment in notebook.comments:
            if comment.name in graded["comments"]:
                comment.auto_comment = graded["comments"][comment.name]
    gradebook.db.commit()


def _scores(assignment: str, students: list[str], course_root: Path | None) -> dict[str, float]:
    """Final score (after late penalties) of each learner's submission in the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    found = {}
    with _grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                continue
            found[student] = round(float(submission.score) - float(submission.late_submission_penalty or 0), 6)
    return found


@dataclass
class CohortGrades:
    """What `autograde_cohort` did."""

    assignment: str
    scores: dict[str, float] = field(default_factory=dict)  # learner -> points after late penalty
    max_score: float = 0.0
    not_graded: dict[str, str] = field(default_factory=dict)  # learner -> why, in plain language
    problems: dict = field(default_factory=dict)  # learner -> lint problems (citykit.grading.lint.Problem)
    changed: dict[str, tuple[float, float]] = field(default_factory=dict)  # --force: old -> new (graded before)
    skipped: list[str] = field(default_factory=list)  # already graded (no --force)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{self.assignment}: graded {len(self.scores)} learner(s) in {self.seconds:.1f} s"]
        for student, score in sorted(self.scores.items()):
            lines.append(f"  {student}: {score:g} / {self.max_score:g}")
        for student, problems in sorted(self.problems.items()):
            for problem in problems:
                lines.append(f"  {student}: {problem.message}")
        for student, why in sorted(self.not_graded.items()):
            lines.append(f"  {student}: NOT GRADED - {why}")
        if self.skipped:
            lines.append(f"  already graded, skipped (use --force to regrade): {', '.join(self.skipped)}")
        for student, (old, new) in sorted(self.changed.items()):
            lines.append(f"  score changed for {student}: {old:g} -> {new:g}")
        return "\n".join(lines)


def _kernel_died(why: str) -> str:
    if "DeadKernel" in why or "Kernel died" in why or "kernel died" in why:
        return f"the notebook's kernel died (over its CPU-time or memory limit?): {why}"
    return why


def default_workers() -> int:
    """One more worker than cores: a kernel waits (start-up handshake, output polling, gradebook
    commits) for part of each notebook, and the extra worker fills those gaps."""
    return (os.cpu_count() or 1) + 1


def autograde_cohort(
    module: str,
    students: list[str] | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    course_root: Path | None = None,
    progress: bool = True,
    limits=None,
) -> CohortGrades:
    """Lint, then autograde every submitted learner (or `students`) in parallel; see the comment above.

    Broken submissions (not valid JSON) are reported in `not_graded`, not fatal. Without `force`,
    learners already autograded are skipped; with it everyone is regraded and `changed` lists whose
    score moved (after a test fix).
    """
    import tempfile
    import time

    from nbgrader.api import Gradebook, MissingEntry

    from citykit.grading.lint import lint_assignment

    started = time.perf_counter()
    root = course_root_of(course_root)
    assignment = assignment_id(module, course_root)
    config = load_config(course_root)
    everyone = submitted_students(assignment, course_root)
    unknown = sorted(set(students or []) - set(everyone))
    if unknown:
        raise CitykitError(f"no submission of {assignment} from {', '.join(unknown)}; collect first")
    chosen = list(students) if students else everyone
    grades = CohortGrades(assignment)
    if not chosen:
        raise CitykitError(f"no submissions of {assignment} in {root / 'grading' / 'submitted'}; collect first")

    with _grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
        try:
            grades.max_score = float(gradebook.find_assignment(assignment).max_score)
        except MissingEntry:
            raise CitykitError(f"{assignment} is not in the gradebook; run `citykit grade generate {module}`") from None

    reports = lint_assignment(assignment, chosen, course_root=course_root)
    grades.problems = {s: [p for p in found if not p.fatal] for s, found in reports.items()}
    grades.problems = {s: found for s, found in grades.problems.items() if found}
    for student, found in reports.items():
        fatal = [p for p in found if p.fatal]
        if fatal:
            grades.not_graded[student] = "; ".join(p.message for p in fatal)
    queue = [s for s in chosen if s not in grades.not_graded]
    if not force:
        grades.skipped = [s for s in queue if (root / "grading" / "autograded" / s / assignment).is_dir()]
        queue = [s for s in queue if s not in grades.skipped]
    before = _scores(assignment, queue, course_root) if force else {}

    workers = max(1, min(workers or default_workers(), len(queue) or 1))
    private = workers > 1 and _sqlite_file(config.CourseDirectory.db_url) is not None
    with limited_kernels(limits, course_root=course_root) as kernel_env, \
            tempfile.TemporaryDirectory(prefix="citykit-grade-") as scratch:  # fmt: skip
        env = {**kernel_env, "CITYKIT_DUCKDB_THREADS": "1"}
        results = _run_queue(assignment, queue, workers, private, str(root), scratch, env, progress)
        with _grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
            for student, record, why, _seconds in results:
                if record is None:
                    grades.not_graded[student] = _kernel_died(why)
                elif private:
                    _store_autogrades(gradebook, assignment, student, record)
    graded = [s for s in queue if s not in grades.not_graded]
    grades.scores = _scores(assignment, graded + grades.skipped, course_root)
    if force:
        grades.changed = {s: (before[s], grades.scores[s]) for s in graded if s in before and before[s] != grades.scores[s]}
    grades.seconds = time.perf_counter() - started
    return grades


def _run_queue(assignment, queue, workers, private, root, scratch, env, progress):
    """Grade `queue` in `workers` processes (or here, with one worker); results as they finish."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"autograding {assignment}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), disable=not progress, transient=False)  # fmt: skip
    results = []
    with bar:
        task = bar.add_task("", total=len(queue))
        if workers == 1:
            _worker_start(root, False, scratch, {})  # this process already has the kernel environment
            for student in queue:
                results.append(_worker_grade(assignment, student))
                bar.update(task, advance=1, description=student)
            return results
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_start,
                                 initargs=(root, private, scratch, env)) as pool:  # fmt: skip
            futures = [pool.submit(_worker_grade, assignment, student) for student in queue]
            for future in as_completed(futures):
                results.append(future.result())
                bar.update(task, advance=1, description=results[-1][0])
    return sorted(results, key=lambda r: queue.index(r[0]))


# ================================================================== feedback

HIDDEN_NOTE = "# (hidden tests ran here at grading; their code is not shown)"
HIDDEN_FAILED = "a hidden test failed (its code is not shown)"


def strip_hidden_tests(nb):
    """A graded notebook without hidden-test source: nbgrader's ClearHiddenTests removes the code, and
    errors raised in test cells keep only their message (a traceback would print the test's lines;
    a bare `assert` message, which would be the hidden line itself, becomes a neutral sentence)."""
    from nbgrader.preprocessors import ClearHiddenTests
    from nbgrader.utils import is_grade

    begin, end = ClearHiddenTests.begin_test_delimeter.default_value, ClearHiddenTests.end_test_delimeter.default_value
    hidden_lines = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if begin in line:
                inside = True
            elif end in line:
                inside = False
            elif inside and line.strip():
                hidden_lines.add(line.strip())
    had_hidden = {i for i, cell in enumerate(nb.cells) if begin in cell.source}
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    for index, cell in enumerate(nb.cells):
        if index in had_hidden:
            cell.source = f"{cell.source.rstrip()}\n{HIDDEN_NOTE}"
        if cell.cell_type != "code" or not (is_grade(cell) or index in had_hidden):
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                message = ANSI_ESCAPE.sub("", str(output.get("evalue", ""))).strip()
                if not message or any(line in message for line in hidden_lines):
                    message = HIDDEN_FAILED
                output.evalue = message
                output.traceback = [f"{output.ename}: {message}"]
            elif output.output_type == "stream" and any(line in output.text for line in hidden_lines):
                output.text = "(output of a hidden test, not shown)\n"
    return nb


def _points_cell(gradebook, assignment: str, student: str, notebook: str):
    """A Markdown table of each exercise's points, for the top of a learner's feedback."""
    from nbformat.v4 import new_markdown_cell

    submitted = gradebook.find_submission_notebook(notebook, assignment, student)
    rows = [f"| `{g.name}` | {float(g.score):g} | {float(g.max_score):g} |" for g in submitted.grades]
    penalty = float(submitted.late_submission_penalty or 0)
    total = float(submitted.score) - penalty
    late = f"\n\nLate submission: {penalty:g} points deducted." if penalty else ""
    return new_markdown_cell(
        f"## Your points: {total:g} of {float(submitted.max_score):g}\n\n| exercise | points | of |\n|---|---|---|\n"
        + "\n".join(rows) + late + "\n\nFailed tests below show the advice written for you; hidden tests show only "
        "that they failed.",
        metadata={"citykit": "points"},
    )  # fmt: skip


def feedback(module: str, students: list[str] | None = None, *, course_root: Path | None = None) -> list[Path]:
    """HTML feedback per learner (nbgrader's feedback), without hidden-test source; return the files."""
    import nbformat
    from nbgrader.api import Gradebook

    root = course_root_of(course_root)
    assignment = assignment_id(module, course_root)
    graded = sorted(p.parent.name for p in (root / "grading" / "autograded").glob(f"*/{assignment}") if p.is_dir())
    students = students or graded
    missing = sorted(set(students) - set(graded))
    if missing:
        raise CitykitError(f"no autograded {assignment} for {', '.join(missing)}; autograde first")
    staging = root / "grading" / ".feedback-source"  # graded notebooks with hidden tests removed
    config = load_config(course_root)
    config.CourseDirectory.autograded_directory = str(staging.relative_to(root))
    written = []
    with _grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
        api = _api_with(config)
        for student in students:
            source, target = root / "grading" / "autograded" / student / assignment, staging / student / assignment
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            for path in target.glob("*.ipynb"):
                nb = strip_hidden_tests(nbformat.read(path, as_version=4))
                nb.cells.insert(0, _points_cell(gradebook, assignment, student, path.stem))
                nbformat.write(nb, path)
            _checked(api.generate_feedback(assignment, student, force=True), f"feedback for {student}")
            written += sorted((root / "grading" / "feedback" / student / assignment).glob("*.html"))
    return written


# ================================================================== export

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def canvas_gradebook(course_root: Path | None = None):
    """Canvas's gradebook import table: its five identity columns, one column per assignment, and the
    "Points Possible" row first. Scores are after late penalties; learners come from the cohort roster
    (or the gradebook's students when there is no cohort)."""
    import pandas as pd
    from nbgrader.api import Gradebook, MissingEntry

    from citykit.grading.cohort import Learner, load_cohort

    try:
        learners = list(load_cohort(course_root=course_root_of(course_root)).learners)
    except CitykitError:
        learners = None
    with _grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
        assignments = sorted(gradebook.assignments, key=lambda a: a.name)
        if learners is None:
            learners = [Learner(s.id, s.first_name or "", s.last_name or s.id, s.email or "", canvas_id=s.lms_user_id or "")
                        for s in gradebook.students]  # fmt: skip
        rows = [{"Student": "    Points Possible", **{a.name: float(a.max_score) for a in assignments}}]
        for learner in learners:
            row = {"Student": learner.sortable_name, "ID": learner.canvas_id, "SIS User ID": learner.sis_user_id,
                   "SIS Login ID": learner.sis_login_id, "Section": learner.section}  # fmt: skip
            for a in assignments:
                try:
                    submission = gradebook.find_submission(a.name, learner.student_id)
                except MissingEntry:
                    row[a.name] = None
                    continue
                row[a.name] = round(float(submission.score) - float(submission.late_submission_penalty or 0), 2)
            rows.append(row)
    return pd.DataFrame(rows, columns=[*CANVAS_COLUMNS, *(a.name for a in assignments)])


def export(out: Path | None = None, *, course_root: Path | None = None) -> tuple[Path, Path]:
    """nbgrader's grades CSV and a Canvas gradebook import CSV, in `out` (default grading/export/)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    out = Path(out) if out is not None else course_root_of(course_root) / "grading" / "export"
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(course_root)
    nbgrader_csv, canvas_csv = out / "grades.csv", out / "canvas-gradebook.csv"
    with _grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
        plugin = CsvExportPlugin(config=config)
        plugin.to = str(nbgrader_csv)
        plugin.export(gradebook)
    canvas_gradebook(course_root).to_csv(canvas_csv, index=False)
    return nbgrader_csv, canvas_csv


# ================================================================== dashboard


def dashboard(out: Path | None = None, *, course_root: Path | None = None, need_help_below: float = 0.6):
    """Run grading/dashboard.ipynb over the gradebook with the report runner; return its RunResult."""
    from citykit.reports.run import run_report

    root = course_root_of(course_root)
    database = _sqlite_file(load_config(course_root).CourseDirectory.db_url)
    if database is None or not database.exists():
        raise CitykitError("the dashboard reads a SQLite gradebook; none found (autograde first)")
    return run_report(
        paths.grading_dir() / "dashboard.ipynb",
        {"gradebook": str(database), "need_help_below": float(need_help_below)},
        out=Path(out) if out is not None else root / "grading" / "dashboard",
    )
