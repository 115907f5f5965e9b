"""Feedback for learners: nbgrader's HTML feedback without hidden tests, with each exercise's points.

nbgrader's own feedback renders the autograded notebook, hidden tests included; here the graded
notebooks are copied to `grading/.feedback-source/`, their hidden-test source is removed and the
points table added, and nbgrader renders those.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from citykit.errors import CitykitError
from citykit.grading.config import (
    ANSI_ESCAPE,
    assignment_id,
    check_result,
    course_root_of,
    grader_env,
    load_config,
    nbgrader_api_for,
)

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
    with grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
        api = nbgrader_api_for(config)
        for student in students:
            source, target = root / "grading" / "autograded" / student / assignment, staging / student / assignment
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            for path in target.glob("*.ipynb"):
                nb = strip_hidden_tests(nbformat.read(path, as_version=4))
                nb.cells.insert(0, _points_cell(gradebook, assignment, student, path.stem))
                nbformat.write(nb, path)
            check_result(api.generate_feedback(assignment, student, force=True), f"feedback for {student}")
            written += sorted((root / "grading" / "feedback" / student / assignment).glob("*.html"))
    return written
