"""Grades out of the gradebook: nbgrader's grades CSV and Canvas's gradebook import."""

from __future__ import annotations

from pathlib import Path

from citykit.errors import CitykitError
from citykit.grading.cohort import Learner, load_cohort
from citykit.grading.config import course_root_of, grader_env, load_config

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def canvas_header(assignment: str, lms_assignments: dict[str, str]) -> str:
    """Canvas matches an imported column to an existing assignment by "Name (id)"; without the id an
    import creates a new assignment."""
    lms_id = lms_assignments.get(assignment)
    return f"{assignment} ({lms_id})" if lms_id else assignment


def not_graded_yet(course_root: Path | None = None) -> list[tuple[str, str, float]]:
    """(assignment, student, points) of written answers not graded by hand yet, per submission."""
    from nbgrader.api import Gradebook

    pending = []
    with grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                points = sum(float(g.max_score) for nb in submission.notebooks for g in nb.grades
                             if g.needs_manual_grade and g.manual_score is None)  # fmt: skip
                if points:
                    pending.append((assignment.name, submission.student.id, points))
    return sorted(pending)


def canvas_gradebook(course_root: Path | None = None):
    """Canvas's gradebook import table: its five identity columns, one column per assignment, and the
    "Points Possible" row first. Scores are after late penalties; learners come from the cohort roster
    (or the gradebook's students when there is no cohort)."""
    import pandas as pd
    from nbgrader.api import Gradebook, MissingEntry

    try:
        cohort = load_cohort(course_root=course_root_of(course_root))
        learners, lms = list(cohort.learners), cohort.lms_assignments
    except CitykitError:
        learners, lms = None, {}
    with grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
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
    table = pd.DataFrame(rows, columns=[*CANVAS_COLUMNS, *(a.name for a in assignments)])
    return table.rename(columns={a.name: canvas_header(a.name, lms) for a in assignments})


def export(out: Path | None = None, *, course_root: Path | None = None) -> tuple[Path, Path]:
    """nbgrader's grades CSV and a Canvas gradebook import CSV (UTF-8 with a BOM, so Excel reads
    accented names), in `out` (default grading/export/). See `not_graded_yet` for what they lack."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    out = Path(out) if out is not None else course_root_of(course_root) / "grading" / "export"
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(course_root)
    nbgrader_csv, canvas_csv = out / "grades.csv", out / "canvas-gradebook.csv"
    with grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
        plugin = CsvExportPlugin(config=config)
        plugin.to = str(nbgrader_csv)
        plugin.export(gradebook)
    canvas_gradebook(course_root).to_csv(canvas_csv, index=False, encoding="utf-8-sig")
    return nbgrader_csv, canvas_csv
