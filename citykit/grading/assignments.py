"""An assignment's way through nbgrader, up to grading: generate the student version, set up a cohort,
release it through the exchange, submit (a learner, or a simulated one), collect (the exchange or
an LMS download), and the single-learner checks `validate` and `score`.

See grading/README.md for the instructor's view; `citykit.grading.config` for the course root.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from citykit import paths
from citykit.errors import CitykitError, WorkFailed
from citykit.grading.cohort import Cohort, Limits, setup_cohort
from citykit.grading.config import (
    ANSI_ESCAPE,
    CONFIG_FILE,
    assignment_id,
    check_result,
    course_root_of,
    grader_env,
    load_config,
    nbgrader_api,
    nbgrader_api_for,
    submitted_students,
)
from citykit.lessons.course import module_folders

Part = Literal["all", "autograded", "manual"]


def generate(module: str | None = None, *, course_root: Path | None = None) -> list[Path]:
    """Write student versions to grading/release/<assignment>/ (None = every module); return them."""
    root = course_root_of(course_root)
    assignments = (
        [assignment_id(module, course_root)]
        if module is not None
        else [f"{n:02d}-{slug}" for slug, n in sorted(module_folders(root / "notebooks").items(), key=lambda i: i[1])]
    )
    released = []
    with grader_env():
        api = nbgrader_api(course_root)
        for assignment in assignments:
            check_result(api.generate_assignment(assignment, force=True, create=True), f"generating {assignment}")
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


def score(module: str, student: str, *, part: Part = "all", course_root: Path | None = None) -> tuple[float, float]:
    """(points, max_points) of a graded submission from the gradebook.

    part: "all", "autograded" (test cells) or "manual" (written answers; 0 until an instructor grades).
    """
    from nbgrader.api import Gradebook, MissingEntry

    assignment = assignment_id(module, course_root)
    with grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
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

    with grader_env():
        results = Validator(config=load_config(), invert=invert).validate(str(Path(notebook).resolve()))
    problems = [f"cell changed type: {c['source'][:60]!r}" for c in results.get("type_changed", [])]
    problems += [f"test cell changed: {c['source'][:60]!r}" for c in results.get("changed", [])]
    problems += [f"test passes without an answer: {c['source'][:60]!r}" for c in results.get("passed", [])]
    for cell in results.get("failed", []):
        error = ANSI_ESCAPE.sub("", cell["raw_error"]).strip()
        problems.append(f"test fails: {error.splitlines()[-1] if error else cell['source'][:60]}")
    return problems


# ---------------------------------------------------------------------------------- the cohort


def setup(
    name: str,
    roster: Path,
    *,
    course_root: Path | None = None,
    due: dict[str, str] | None = None,
    late_policy: str = "zero",
    limits: Limits | None = None,
    db_url: str = "",
    workers: int = 0,
) -> Cohort:
    """Validate the roster, write the cohort file and prepare the course for it: nbgrader's config
    beside a course copy, the exchange folder (world-writable, as nbgrader's docs set it), the
    learners and due dates in the gradebook."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

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
    with grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url, "citykit") as gradebook:
        for learner in cohort.learners:
            gradebook.update_or_create_student(
                learner.student_id, first_name=learner.first_name, last_name=learner.last_name,
                email=learner.email or None, lms_user_id=learner.canvas_id or None,
            )  # fmt: skip
        for assignment, when in cohort.due.items():
            gradebook.update_or_create_assignment(assignment, duedate=parse_utc(when))
    return cohort


def release(module: str, *, course_root: Path | None = None) -> Path:
    """Release the student version through nbgrader's exchange; return its outbound folder."""
    assignment = assignment_id(module, course_root)
    config = load_config(course_root)
    if not (course_root_of(course_root) / "grading" / "release" / assignment).is_dir():
        raise CitykitError(f"{assignment} has no student version yet; run `citykit grade generate {module}` first")
    with grader_env():
        api = nbgrader_api_for(config)
        Path(config.Exchange.root).mkdir(parents=True, exist_ok=True)
        api.unrelease(assignment)  # a re-release replaces the previous one
        check_result(api.release_assignment(assignment), f"releasing {assignment}")
    return Path(config.Exchange.root) / config.CourseDirectory.course_id / "outbound" / assignment


def exchange_submit(module: str, student: str, notebook: Path, *, course_root: Path | None = None) -> None:
    """What `nbgrader submit` does for a learner on this machine (used to simulate a cohort)."""
    import tempfile

    from nbgrader.utils import capture_log, temp_attrs

    assignment = assignment_id(module, course_root)
    with tempfile.TemporaryDirectory(prefix="citykit-learner-") as home, grader_env():
        folder = Path(home) / assignment
        folder.mkdir()
        shutil.copyfile(notebook, folder / f"{assignment}.ipynb")
        config = load_config(course_root)
        config.Exchange.assignment_dir = home
        config.Exchange.cache = str(Path(home) / ".nbgrader_cache")
        api = nbgrader_api_for(config)
        with temp_attrs(api.coursedir, assignment_id=assignment, student_id=student):
            app = api.exchange.Submit(coursedir=api.coursedir, authenticator=api.authenticator, parent=api)
            check_result(capture_log(app), f"submitting {assignment} for {student}")


def collect(module: str, *, course_root: Path | None = None) -> list[str]:
    """Collect submissions from the exchange into grading/submitted/; return who has submitted."""
    assignment = assignment_id(module, course_root)
    with grader_env():
        check_result(nbgrader_api(course_root).collect(assignment, update=True), f"collecting {assignment}")
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
    with grader_env():
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
