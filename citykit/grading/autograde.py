"""Autograding: one learner, or a whole cohort in parallel with warm workers.

Each worker process imports nbgrader once and grades learner after learner into its own copy of
the gradebook (SQLite allows one writer); it sends back what autograding wrote, and this process,
the one writer of the real gradebook, stores it exactly where nbgrader would have. Submissions are
linted first (`citykit.grading.lint`). nbgrader's Execute step runs in two phases
(`citykit.grading.scoring`): the learner's notebook in a sandbox (`citykit.grading.sandbox`) that
exports its answers as data, then every test in the worker, which never runs learner code.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from citykit.errors import CitykitError, WorkFailed
from citykit.grading.assignments import generate
from citykit.grading.cohort import AUTOGRADE_STEPS, Limits, load_cohort, record_graded
from citykit.grading.config import (
    assignment_id,
    check_result,
    course_root_of,
    generated_hashes,
    grader_env,
    load_config,
    nbgrader_api_for,
    source_hash,
    sqlite_file,
    submitted_students,
)
from citykit.grading.limits import cohort_limits, limited_kernels
from citykit.grading.lint import Problem, lint_assignment
from citykit.grading.sandbox import CONTAINER_ENV, Policy, ensure_user
from citykit.startup import skip_slow_optional_modules

OUTSIDE = "(not recorded)"  # a learner autograded, but not by citykit: no version in the cohort file
_WORKER: dict = {}  # a worker process's nbgrader API and gradebook URL (set by `_worker_start`)


def autograde(module: str, student: str, *, course_root: Path | None = None) -> Path:
    """Autograde a submission (visible and hidden tests, in two phases, sandboxed); return the
    autograded notebook."""
    assignment = assignment_id(module, course_root)
    limits = cohort_limits(course_root)
    policy = Policy.detect(limits, container=grading_container(course_root))
    with limited_kernels(limits, course_root=course_root, quiet=True), grader_env(), \
            tempfile.TemporaryDirectory(prefix="citykit-grade-") as scratch:  # fmt: skip
        config = load_config(course_root)
        two_phase(config, policy.to_dict(), scratch, limits.answers_mb, limits.cell_timeout)
        (course_root_of(course_root) / "grading" / "exchange").mkdir(parents=True, exist_ok=True)
        check_result(nbgrader_api_for(config).autograde(assignment, student, force=True, create=True),
                     f"autograding {assignment} for {student}")  # fmt: skip
    record_graded(assignment, {student: source_hash(assignment, course_root)}, course_root_of(course_root))
    return course_root_of(course_root) / "grading" / "autograded" / student / assignment / f"{assignment}.ipynb"


def grading_container(course_root: Path | None = None) -> str:
    """The image learners' notebooks run in: CITYKIT_GRADING_CONTAINER, else the cohort's `container`
    ("": citykit's own sandbox)."""
    if os.environ.get(CONTAINER_ENV):
        return os.environ[CONTAINER_ENV]
    try:
        return load_cohort(course_root=course_root_of(course_root)).container
    except CitykitError:
        return ""


def two_phase(config, policy: dict, scratch: str, answers_mb: int, cell_timeout: int) -> None:
    """Give nbgrader's two-phase Execute step (`citykit.grading.scoring.TwoPhaseExecute`, which the
    course's configuration puts in place of nbgrader's Execute) this run's sandbox policy, scratch
    folder, answer-size limit and cell timeout (the limits' own, which may differ from the cohort's)."""
    config.Autograde.autograde_preprocessors = list(AUTOGRADE_STEPS)
    config.TwoPhaseExecute.scratch = str(scratch)
    config.TwoPhaseExecute.sandbox = dict(policy)
    config.TwoPhaseExecute.answers_mb = int(answers_mb)
    config.Execute.timeout = int(cell_timeout)


@dataclass
class CohortGrades:
    """What `autograde_cohort` did."""

    assignment: str
    scores: dict[str, float] = field(default_factory=dict)  # learner -> points after late penalty
    max_score: float = 0.0
    not_graded: dict[str, str] = field(default_factory=dict)  # learner -> why, in plain language
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # learner -> lint problems
    changed: dict[str, tuple[float, float]] = field(default_factory=dict)  # regraded: old -> new (graded before)
    graded: list[str] = field(default_factory=list)  # graded in this run (first time or again)
    skipped: list[str] = field(default_factory=list)  # already graded, nothing new (no --force)
    regraded: dict[str, str] = field(default_factory=dict)  # graded before and graded again: why
    regenerated: bool = False  # the source changed since `generate`: the student version was regenerated
    seconds: float = 0.0
    sandbox: list[str] = field(default_factory=list)  # what the sandbox enforced, and what it did not
    run_notes: dict[str, list[str]] = field(default_factory=dict)  # learner -> limits their notebook reached
    stale: dict[str, float] = field(default_factory=dict)  # not graded now, an earlier submission's score stands

    def summary(self) -> str:
        lines = list(self.sandbox)
        if self.regenerated:
            lines.append(f"{self.assignment}: its source changed since the student version was generated; "
                         "regenerated it first (graded with the changed tests)")  # fmt: skip
        unchanged = f", {len(self.skipped)} unchanged (already graded, nothing new)" if self.skipped else ""
        failed = f", {len(self.not_graded)} not graded" if self.not_graded else ""
        lines.append(f"{self.assignment}: graded {len(self.graded)} learner(s){unchanged}{failed} "
                     f"in {self.seconds:.1f} s" + ("; scores:" if self.scores else ""))  # fmt: skip
        for student, score in sorted(self.scores.items()):
            lines.append(f"  {student}: {score:g} / {self.max_score:g}")
        for student, problems in sorted(self.problems.items()):
            for problem in problems:
                lines.append(f"  {student}: {problem.message}")
        for student, notes in sorted(self.run_notes.items()):
            lines.append(f"  {student}: sandbox: {'; '.join(notes)}")
        for student, why in sorted(self.not_graded.items()):
            lines.append(f"  {student}: NOT GRADED - {why}")
            if student in self.stale:
                lines.append(f"  {student}: the gradebook still holds their EARLIER submission's grade "
                             f"({self.stale[student]:g} / {self.max_score:g}), which feedback and export use until "
                             "this submission is graded")  # fmt: skip
        if self.skipped:
            lines.append(f"  already graded, nothing new, skipped (--force regrades): {', '.join(self.skipped)}")
        for student, why in sorted(self.regraded.items()):
            lines.append(f"  regraded {student}: {why}")
        for student, (old, new) in sorted(self.changed.items()):
            lines.append(f"  score changed for {student}: {old:g} -> {new:g}")
        if self.regraded and not self.changed:
            lines.append("  no score changed")
        return "\n".join(lines)


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
    limits: Limits | None = None,
) -> CohortGrades:
    """Lint, then autograde every submitted learner (or `students`) in parallel; see the module's doc.

    When the assignment's source changed since its student version was generated (a test fix), the
    student version is regenerated first. Broken submissions (not valid JSON) are reported in
    `not_graded`, not fatal. Without `force`, a learner already autograded is skipped unless their
    submission is newer than their grading or they were graded with another version of the source;
    with it everyone is regraded. `changed` lists whose score moved. `limits` (the cohort's unless
    given) bound each notebook: cell timeout, memory, processes, file size, CPU and wall time.
    """
    from nbgrader.api import Gradebook, MissingEntry

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
    version = source_hash(assignment, course_root)
    if generated_hashes(course_root).get(assignment) != version:
        generate(assignment, course_root=course_root)
        grades.regenerated = True

    with grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
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
    graded_with = _graded_versions(assignment, course_root)
    for student in queue:
        if not (root / "grading" / "autograded" / student / assignment).is_dir():
            continue
        recorded = None if graded_with is None else graded_with.get(student, OUTSIDE)
        why = _why_regrade(root, assignment, student, recorded, version)
        if why:
            grades.regraded[student] = why
        elif force:
            grades.regraded[student] = "--force"
        else:
            grades.skipped.append(student)
    queue = [s for s in queue if s not in grades.skipped]
    before = _scores(assignment, list(grades.regraded), course_root)

    workers = max(1, min(workers or default_workers(), len(queue) or 1))
    private = workers > 1 and sqlite_file(config.CourseDirectory.db_url) is not None
    limits = limits or cohort_limits(course_root)
    made = ensure_user()
    policy = Policy.detect(limits, container=grading_container(course_root))
    grades.sandbox = ([made] if made else []) + sandbox_lines(policy)
    with limited_kernels(limits, course_root=course_root, quiet=True) as kernel_env, \
            tempfile.TemporaryDirectory(prefix="citykit-grade-") as scratch:  # fmt: skip
        env = {**kernel_env, "CITYKIT_DUCKDB_THREADS": "1"}
        setup = (str(root), private, scratch, env, policy.to_dict(), limits.answers_mb, limits.cell_timeout)
        results = _run_queue(assignment, queue, workers, setup, progress)
        with grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
            for student, record, why, _seconds, notes in results:
                if notes:
                    grades.run_notes[student] = notes
                if record is None:
                    grades.not_graded[student] = _kernel_died(why)
                elif private:
                    _store_autogrades(gradebook, assignment, student, record)
    graded = grades.graded = [s for s in queue if s not in grades.not_graded]
    grades.stale = _scores(assignment, sorted(grades.not_graded), course_root)
    grades.scores = _scores(assignment, graded + grades.skipped, course_root)
    grades.changed = {
        s: (before[s], grades.scores[s]) for s in graded if s in before and before[s] != grades.scores.get(s)
    }
    record_graded(assignment, {s: version for s in graded}, root)
    grades.seconds = time.perf_counter() - started
    return grades


def _graded_versions(assignment: str, course_root: Path | None) -> dict[str, str] | None:
    """learner -> the source version that graded them, from the cohort file (None: no cohort). A learner
    autograded but not in it was graded by formgrader's button or plain nbgrader (perhaps before
    their configuration graded in two phases): `_why_regrade` regrades them."""
    try:
        return load_cohort(course_root=course_root_of(course_root)).graded.get(assignment, {})
    except CitykitError:
        return None


def _why_regrade(root: Path, assignment: str, student: str, graded_version: str | None, version: str) -> str:
    """Why an already autograded learner must be graded again ("" = no reason)."""
    submitted, autograded = (root / "grading" / folder / student / assignment for folder in ("submitted", "autograded"))
    stamps = [folder / "timestamp.txt" for folder in (submitted, autograded)]
    if all(p.exists() for p in stamps) and stamps[0].read_text().strip() != stamps[1].read_text().strip():
        return "a newer submission"
    newest_submitted = max((p.stat().st_mtime for p in submitted.glob("*.ipynb")), default=0)
    newest_graded = max((p.stat().st_mtime for p in autograded.glob("*.ipynb")), default=0)
    if newest_submitted > newest_graded:
        return "a newer submission"
    if graded_version == OUTSIDE:
        return "graded outside `citykit grade autograde` (formgrader's button or plain nbgrader)"
    if graded_version is not None and graded_version != version:
        return f"graded with another version of the tests ({graded_version} -> {version})"
    return ""


def sandbox_lines(policy: Policy) -> list[str]:
    """What the sandbox enforces here, then (every run) what it does not."""
    return ["sandbox: " + "; ".join(policy.enforced()), *policy.notes()]


def _run_queue(assignment, queue, workers, setup, progress):
    """Grade `queue` in `workers` processes (or here, with one worker); results as they finish. One
    learner's failure (even a worker's crash) is that learner's, never the others'."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"autograding {assignment}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), disable=not progress, transient=False)  # fmt: skip
    results = []
    with bar:
        task = bar.add_task("", total=len(queue))
        if workers == 1:
            root, _private, scratch, _env, policy, answers_mb, cell_timeout = setup
            _worker_start(
                root, False, scratch, {}, policy, answers_mb, cell_timeout
            )  # this process has the kernel environment
            for student in queue:
                results.append(_worker_grade(assignment, student))
                bar.update(task, advance=1, description=student)
            return results
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_start,
                                 initargs=setup) as pool:  # fmt: skip
            futures = {pool.submit(_worker_grade, assignment, student): student for student in queue}
            for future in as_completed(futures):
                try:
                    results.append(future.result())
                except Exception as error:
                    results.append(
                        (futures[future], None, f"grading crashed: {type(error).__name__}: {error}", 0.0, [])
                    )
                bar.update(task, advance=1, description=results[-1][0])
    return sorted(results, key=lambda r: queue.index(r[0]))


# ---------------------------------------------------------------------------------- in a worker


def _copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _worker_start(course_root: str, private_gradebook: bool, scratch: str, env: dict[str, str], policy: dict,
                  answers_mb: int, cell_timeout: int) -> None:  # fmt: skip
    skip_slow_optional_modules()
    os.environ.update(env)
    config = load_config(Path(course_root))
    two_phase(config, policy, scratch, answers_mb, cell_timeout)
    main_db = sqlite_file(config.CourseDirectory.db_url)
    if private_gradebook and main_db is not None:
        copy = Path(scratch) / f"gradebook-{os.getpid()}.db"
        _copy_sqlite(main_db, copy)
        config.CourseDirectory.db_url = f"sqlite:///{copy}"
    # Kernels talk over IPC sockets, not loopback TCP: two kernels starting at once can be handed the
    # same "free" port (jupyter_client's known race), and a learner then fails with "Address already
    # in use". One socket prefix per worker, whose kernels run one after another.
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(scratch) / f"kernel-{os.getpid()}")
    with grader_env():
        _WORKER["api"] = nbgrader_api_for(config)
    _WORKER["db_url"] = config.CourseDirectory.db_url


def _root_error(result: dict) -> str:
    try:
        check_result(result, "autograding")
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


def _worker_grade(assignment: str, student: str) -> tuple[str, dict | None, str, float, list[str]]:
    """(student, autogrades or None, why not graded, seconds, limits the notebook reached) — in a worker."""
    from citykit.grading.scoring import TwoPhaseExecute  # lazy: loaded only when used

    started = time.perf_counter()
    TwoPhaseExecute.notes.clear()
    with grader_env():
        result = _WORKER["api"].autograde(assignment, student, force=True, create=True)
        notes = [n for found in TwoPhaseExecute.notes.values() for n in found]
        if not result.get("success"):
            return student, None, _root_error(result), time.perf_counter() - started, notes
        record = _read_autogrades(_WORKER["db_url"], assignment, student)
        return student, record, "", time.perf_counter() - started, notes


# ---------------------------------------------------------------------------------- the one writer


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
    with grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                continue
            found[student] = round(float(submission.score) - float(submission.late_submission_penalty or 0), 6)
    return found


def _kernel_died(why: str) -> str:
    if "DeadKernel" in why or "Kernel died" in why or "kernel died" in why:
        return f"the notebook's kernel died (over its CPU-time or memory limit?): {why}"
    return why
