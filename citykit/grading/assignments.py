"""An assignment's way through nbgrader, up to grading: generate the student version, set up a cohort,
release it through the exchange, submit (a learner, or a simulated one), collect (the exchange or
an LMS download), and the single-learner checks `validate` and `score`.

See grading/README.md for the instructor's view; `citykit.grading.config` for the course root.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from citykit import paths
from citykit.errors import CitykitError, WorkFailed, listing
from citykit.grading.cohort import Cohort, Limits, load_cohort, setup_cohort, zone
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
    record_generated,
    submitted_students,
)
from citykit.grading.sandbox import ensure_user
from citykit.grading.workspace import WORKSPACE_CONFIG, prepare_workspace
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
            record_generated(assignment, course_root)
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
    timezone: str = "UTC",
    lms_assignments: dict[str, str] | None = None,
    past_due_ok: bool = False,
) -> Cohort:
    """Validate the roster, write the cohort file and prepare the course for it: nbgrader's config
    beside a course copy, the exchange folder (world-writable, as nbgrader's docs set it), the
    learners and due dates in the gradebook. `lms_assignments` maps modules to the LMS's assignment
    ids (the Canvas export's column headers); a due date already past needs `past_due_ok`. Run as
    root, it makes the system user grading runs learner code as (`citykit.grading.sandbox`).
    `db_url` is kept in a 0600 file outside the course, never in the cohort file."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    root = course_root_of(course_root)
    due = {assignment_id(module, course_root): when for module, when in (due or {}).items()}
    lms = {assignment_id(module, course_root): str(lms_id) for module, lms_id in (lms_assignments or {}).items()}
    cohort = setup_cohort(name, roster, course_root=root, due=due, late_policy=late_policy,  # type: ignore[arg-type]
                          limits=limits, db_url=db_url, workers=workers, timezone=timezone,
                          lms_assignments=lms, past_due_ok=past_due_ok)  # fmt: skip
    config_file = root / "grading" / CONFIG_FILE
    if not config_file.exists():  # a course copy: `nbgrader` and formgrader run there read this file
        shutil.copyfile(paths.grading_dir() / CONFIG_FILE, config_file)
    exchange = root / "grading" / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    exchange.chmod(0o777)
    made = ensure_user()  # as root: the unprivileged user learner code runs as while it is graded
    if made:
        print(made, file=sys.stderr)
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


@dataclass
class ExchangeCollected:
    """What `collect` did: whose submission is new in grading/submitted, whose was updated (a newer
    one in the exchange), whose was already there and unchanged, and who has a submission there from
    elsewhere (an LMS download) but none in the exchange."""

    assignment: str
    students: list[str] = field(default_factory=list)  # everyone with a submission of the assignment now
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # in the exchange, nothing newer than what was collected
    not_in_exchange: list[str] = field(default_factory=list)  # in grading/submitted, never through the exchange

    def summary(self) -> str:
        changed = len(self.new) + len(self.updated)
        lines = [f"{self.assignment}: {changed} submission(s) newly collected or updated from the exchange; "
                 f"{len(self.students)} in grading/submitted in all"]  # fmt: skip
        for label, who in (("new", self.new), ("updated (a newer submission)", self.updated),
                           ("already collected, nothing newer in the exchange", self.unchanged),
                           ("already there from an LMS download or by hand, not in the exchange",
                            self.not_in_exchange)):  # fmt: skip
            if who:
                lines.append(f"  {label}: {', '.join(who)}")
        return "\n".join(lines)


def collect(module: str, *, course_root: Path | None = None) -> ExchangeCollected:
    """Collect submissions from the exchange into grading/submitted/ (a newer submission replaces an
    older one); return what was new, updated or already there."""
    root = course_root_of(course_root)
    assignment = assignment_id(module, course_root)

    def stamps() -> dict[str, str]:
        found = {}
        for student in submitted_students(assignment, course_root):
            stamp = root / "grading" / "submitted" / student / assignment / "timestamp.txt"
            found[student] = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else ""
        return found

    before = stamps()
    config = load_config(course_root)
    with grader_env():
        check_result(nbgrader_api(course_root).collect(assignment, update=True), f"collecting {assignment}")
    after = stamps()
    inbound = Path(config.Exchange.root) / config.CourseDirectory.course_id / "inbound"
    in_exchange = {p.name.split("+")[0] for p in inbound.glob(f"*+{assignment}+*")} if inbound.is_dir() else set()
    done = ExchangeCollected(assignment, sorted(after))
    for student in sorted(after):
        if student not in before:
            done.new.append(student)
        elif before[student] != after[student]:
            done.updated.append(student)
        elif student in in_exchange:
            done.unchanged.append(student)
        else:
            done.not_in_exchange.append(student)
    return done


@dataclass
class Collected:
    """What `collect_zips` filed: who, how each file matched, and the files no learner matched."""

    assignment: str
    students: list[str] = field(default_factory=list)  # everyone with a submission of the assignment now
    matched: dict[str, str] = field(default_factory=dict)  # file name -> student_id (by which id)
    unmatched: list[str] = field(default_factory=list)  # file names that matched no learner: not collected
    kept: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # learner with several files -> kept, not

    def summary(self) -> str:
        lines = [f"{self.assignment}: {len(self.matched)} file(s) matched to the roster; "
                 f"{len(self.students)} submission(s) in grading/submitted: {', '.join(self.students)}"]  # fmt: skip
        lines += [f"  {name} -> {who}" for name, who in sorted(self.matched.items())]
        for who, (kept, others) in sorted(self.kept.items()):
            lines.append(f"  {who}: {len(others) + 1} files; kept the newest, {kept} (not used: {listing(others)})")
        if self.unmatched:
            lines.append(f"  NOT COLLECTED, no learner of the roster matches ({len(self.unmatched)}): "
                         + listing(self.unmatched)
                         + " - add their canvas_id / moodle_id / blackboard_id to the roster and collect again")  # fmt: skip
        return "\n".join(lines)


def collect_zips(module: str, downloads: Path, *, course_root: Path | None = None) -> Collected:
    """Collect an LMS download folder (zips or notebooks, as Canvas, Moodle or Blackboard name them)
    with nbgrader's zip collector, matching each file to a learner of the roster by the roster's LMS
    ids or student id (see `citykit.grading.lms`) — the route for laptops without the exchange."""
    import datetime as dt

    from nbgrader.apps.zipcollectapp import ZipCollectApp
    from nbgrader.coursedir import CourseDirectory

    from citykit.grading.lms import RosterCollector, TimedExtractor  # lazy: nbgrader's plugins, only to collect

    root = course_root_of(course_root)
    assignment = assignment_id(module, course_root)
    downloads = Path(downloads)
    if not downloads.is_dir():
        raise CitykitError(f"no download folder at {downloads}")
    cohort = load_cohort(course_root=root)
    notebooks = [p.name for p in sorted((root / "grading" / "release" / assignment).glob("*.ipynb"))]
    if not notebooks:
        raise CitykitError(f"{assignment} has no student version yet; run `citykit grade generate {module}` first")
    config = load_config(course_root)
    archive = root / "grading" / "downloaded" / assignment / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    shutil.copytree(downloads, archive)  # copy2: loose files keep their modification time
    tz = zone(cohort.timezone)
    with grader_env():
        app = ZipCollectApp(config=config)
        app.log.setLevel("ERROR")  # the summary says what matched, what did not and why
        app.coursedir = CourseDirectory(config=config, parent=app)
        app.coursedir.assignment_id = assignment
        app.force = True
        app.init_plugins()
        app.extractor_plugin_inst = TimedExtractor(parent=app)
        app.extractor_plugin_inst.tz = tz
        collector = RosterCollector(parent=app)
        collector.learners, collector.notebooks, collector.tz = list(cohort.learners), notebooks, tz
        due = cohort.due.get(assignment)
        collector.due = dt.datetime.fromisoformat(due) if due else None
        app.collector_plugin_inst = collector
        try:
            app.extract_archive_files()
            app.process_extracted_files()
        except SystemExit:
            raise WorkFailed(f"collecting {assignment} from {downloads} failed; see the messages above") from None
    return Collected(
        assignment,
        submitted_students(assignment, course_root),
        {name: f"{m.student_id} (by {m.by}{', late' if m.late else ''}{f', resubmission {m.attempt}' if m.attempt else ''})"
         for name, m in collector.matched.items()},
        sorted(collector.unmatched),
        {(student if len(notebooks) == 1 else f"{student} ({notebook})"): chosen
         for (student, notebook), chosen in collector.kept().items()},
    )  # fmt: skip


# ---------------------------------------------------------------------------------- a learner hands in


def hand_in(module: str, student: str, *, lms: bool = False, course_root: Path | None = None) -> Path:
    """What the lab's Submit button does, from the learner's workspace (`citykit lab --student ID`):
    nbgrader's exchange submit as `student`; return the inbound submission. With `lms` (a laptop
    without the exchange), write the notebook for the LMS upload instead, named
    `<student_id>_<notebook>` so the LMS collection matches it to the roster; return that file."""
    import nbformat

    assignment = assignment_id(module, course_root)
    workspace = prepare_workspace(student, course_root)
    folder = workspace / assignment
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise CitykitError(f"{assignment} is not in your workspace ({folder}); fetch it first: the lab's Assignments "
                           f"tab, or `citykit grade fetch {module} --student {student}`")  # fmt: skip
    for notebook in notebooks:
        try:
            nbformat.validate(nbformat.read(notebook, as_version=4))
        except Exception as error:
            raise CitykitError(f"{notebook.name} is not a valid notebook ({type(error).__name__}); open it in the "
                               "lab, save it and hand it in again") from None  # fmt: skip
    if lms:
        out = workspace / "for-upload"
        out.mkdir(exist_ok=True)
        for notebook in notebooks:
            shutil.copyfile(notebook, out / f"{student}_{notebook.name}")
        return out / f"{student}_{notebooks[0].name}"
    config = _workspace_config(workspace)
    if not _outbound(config, assignment).is_dir():
        raise CitykitError(f"{assignment} is not released through the exchange; hand it in with --lms "
                           "and upload the file, or ask your instructor to release it")  # fmt: skip
    _exchange_step(config, "Submit", assignment, student, f"submitting {assignment} as {student}")
    inbound = Path(config.Exchange.root) / config.CourseDirectory.course_id / "inbound"
    return max(inbound.glob(f"{student}+{assignment}+*"), key=lambda p: p.stat().st_mtime)


def fetch(module: str, student: str, *, course_root: Path | None = None) -> tuple[Path, bool]:
    """What the lab's Fetch button does, from a terminal: nbgrader's exchange fetch of a released
    module into the learner's workspace, with the workspace's own nbgrader settings. Return the
    module's folder there and whether it was fetched now (False: it was already there, kept as is)."""
    assignment = assignment_id(module, course_root)
    workspace = prepare_workspace(student, course_root)  # refuses an id that is not in the roster
    config = _workspace_config(workspace)
    folder = workspace / assignment
    if not _outbound(config, assignment).is_dir():
        practice = f"; its practice copy is in your workspace ({folder})" if folder.is_dir() else ""
        raise CitykitError(f"{assignment} is not released yet: there is nothing to fetch until your instructor "
                           f"releases it (`citykit grade release {module}`){practice}")  # fmt: skip
    if folder.exists():
        return folder, False
    _exchange_step(config, "FetchAssignment", assignment, student, f"fetching {assignment} as {student}")
    return folder, True


def _workspace_config(workspace: Path):
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(WORKSPACE_CONFIG, path=str(workspace)).load_config()


def _outbound(config, assignment: str) -> Path:
    return Path(config.Exchange.root, config.CourseDirectory.course_id, "outbound", assignment)


def _exchange_step(config, step: str, assignment: str, student: str, what: str) -> None:
    """Run one of nbgrader's exchange steps (Submit, FetchAssignment) as the learner, with `config`."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log, temp_attrs

    with grader_env():
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        with temp_attrs(api.coursedir, assignment_id=assignment, student_id=student):
            app = getattr(api.exchange, step)(coursedir=api.coursedir, authenticator=api.authenticator, parent=api)
            check_result(capture_log(app), what)
