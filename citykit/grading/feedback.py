"""Feedback for learners: nbgrader's HTML feedback without hidden tests, with each exercise's points.

nbgrader's own feedback renders the autograded notebook, hidden tests included; here the graded
notebooks are copied to `grading/.feedback-source/`, their hidden-test source is removed and the
points table added, and nbgrader renders those.
"""

from __future__ import annotations

import re
import shutil
import sys
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
    submitted_students,
)
from citykit.grading.limits import cohort_limits
from citykit.grading.lint import lint_assignment

HIDDEN_NOTE = "# (hidden tests ran here at grading; their code is not shown)"
HIDDEN_FAILED = (
    "A hidden check of `{grade_id}` failed: your answer differs from the one computed another way on the same data."
)
HIDDEN_PREFIX = "A hidden check of `{grade_id}` failed: "
MASK = "…"
TIMED_OUT = (
    "This cell ran longer than {seconds} s and was stopped (an endless loop, or far more data than "
    "needed?); the cells after it still ran."
)
TIMEOUT_ERRORS = ("CellTimeoutError", "TimeoutError", "KeyboardInterrupt")
NOT_ANSWERED = (
    "Not answered yet: exercise `{grade_id}` still has the line `raise NotImplementedError()` where your answer "
    "goes. Replace that line with your answer and run the cell."
)
FOLLOWS_FIRST = (
    "{message}. This follows from the exercise `{grade_id}` above, not answered yet: its cell defines nothing, so "
    "the cells after it that use what it should define fail too. Answer it and these errors go away."
)
FOLLOWS = "{message} (follows from the exercise `{grade_id}` above, not answered yet)"


def _not_answered(cell) -> bool:
    """A code cell whose answer is still nbgrader's stub: it raised NotImplementedError."""
    return (
        cell.cell_type == "code"
        and any(o.output_type == "error" and o.get("ename") == "NotImplementedError" for o in cell.get("outputs", []))
        and "NotImplementedError" in cell.source
    )


def blank_exercises(nb) -> list[str]:
    """The exercises (solution cells' grade_ids) a learner left as the released stub."""
    return [c.metadata.get("nbgrader", {}).get("grade_id") or f"cell {i + 1}" for i, c in enumerate(nb.cells)
            if _not_answered(c)]  # fmt: skip


def _hidden_range(source: str, begin: str, end: str) -> set[int]:
    """1-based line numbers of a cell's hidden-test lines."""
    inside, lines = False, set()
    for number, line in enumerate(source.splitlines(), 1):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _failed_line(traceback: list[str]) -> int | None:
    """The line of the cell itself where an error was raised (its first frame's arrow)."""
    text = ANSI_ESCAPE.sub("", "\n".join(traceback))
    frame = re.search(r"(?:Cell In\[\d*\], line \d+|<ipython-input-[^>]*>).*?^-+> ?(\d+)", text, re.S | re.M)
    if frame:
        return int(frame.group(1))
    arrow = re.search(r"^-+> ?(\d+)", text, re.M)
    return int(arrow.group(1)) if arrow else None


def _message_patterns(source: str, lines: set[int]) -> list[re.Pattern]:
    """The messages the hidden `lines` of a cell can raise, as patterns: string literals, and
    f-strings whose interpolations become groups (masked when they hold digits: a computed value)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    patterns = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) not in lines:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 12:
            patterns.append(re.compile(re.escape(node.value)))
        elif isinstance(node, ast.JoinedStr):
            parts = [re.escape(v.value) if isinstance(v, ast.Constant) else "(.*?)" for v in node.values]
            if sum(len(v.value) for v in node.values if isinstance(v, ast.Constant)) > 12:
                patterns.append(re.compile("".join(parts), re.S))
    return patterns


def _hidden_message(message: str, patterns: list[re.Pattern]) -> str | None:
    """The message as written in the hidden test, computed values masked; None when it is not one."""
    for pattern in sorted(patterns, key=lambda p: -len(p.pattern)):
        found = pattern.fullmatch(message)
        if found:
            out, last = [], 0
            for index in range(1, (found.lastindex or 0) + 1):
                out.append(message[last : found.start(index)])
                value = found.group(index)
                out.append(MASK if re.search(r"\d", value) else value)
                last = found.end(index)
            return "".join(out) + message[last:]
    return None


def strip_hidden_tests(nb, *, cell_timeout: int | None = None):
    """A graded notebook without hidden-test source: the hidden part of each test cell is removed.

    Errors raised in test cells keep only their message (a traceback would print the test's lines).
    A failure in the visible part of a test keeps its message, the advice written for learners. A
    failure in the hidden part shows the message written in the hidden test with every computed
    value in it masked, or, for a bare `assert` or any other error, a sentence naming the exercise.
    A cell stopped by the cell timeout says so in plain words."""
    from nbgrader.utils import is_grade, is_solution

    from citykit.grading.scoring import BEGIN_HIDDEN as begin  # lazy: loaded only when used
    from citykit.grading.scoring import END_HIDDEN as end  # lazy: loaded only when used
    from citykit.grading.scoring import visible_part  # lazy: loaded only when used

    hidden = {}  # cell index -> (hidden line numbers, message patterns, hidden lines)
    for index, cell in enumerate(nb.cells):
        # only test cells carry hidden tests (their source is the course's); in a learner's cell the
        # markers are text like any other, kept as written
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell) and begin in cell.source:
            numbers = _hidden_range(cell.source, begin, end)
            lines = cell.source.splitlines()
            hidden[index] = (numbers, _message_patterns(cell.source, numbers),
                             {lines[n - 1].strip() for n in numbers if lines[n - 1].strip()})  # fmt: skip
    for index in hidden:
        nb.cells[index].source = visible_part(nb.cells[index].source)
    blank, explained = None, False  # the first exercise left blank; its later NameErrors explained once
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index in hidden:
            cell.source = f"{cell.source.rstrip()}\n{HIDDEN_NOTE}"
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if _not_answered(cell):
            blank = blank or grade_id or f"cell {index + 1}"
            message = NOT_ANSWERED.format(grade_id=grade_id or f"cell {index + 1}")
            for output in cell.outputs:
                if output.output_type == "error" and output.get("ename") == "NotImplementedError":
                    output.ename, output.evalue, output.traceback = "Not answered yet", message, [message]
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error" and output.get("ename") in TIMEOUT_ERRORS and cell_timeout:
                message = TIMED_OUT.format(seconds=cell_timeout)
                output.ename, output.evalue, output.traceback = "Timeout", message, [message]
                continue
            if blank and output.output_type == "error" and output.get("ename") == "NameError":
                name = ANSI_ESCAPE.sub("", str(output.get("evalue", ""))).strip()
                line = _failed_line(output.get("traceback", []))
                if name.startswith("name '") and not (index in hidden and (line is None or line in hidden[index][0])):
                    message = (FOLLOWS if explained else FOLLOWS_FIRST).format(message=name, grade_id=blank)
                    explained = True
                    output.evalue, output.traceback = message, [f"NameError: {message}"]
                    continue
            if not (is_grade(cell) or index in hidden):
                continue
            if output.output_type == "error":
                message = ANSI_ESCAPE.sub("", str(output.get("evalue", ""))).strip()
                if index in hidden:
                    numbers, patterns, _ = hidden[index]
                    line = _failed_line(output.get("traceback", []))
                    if line is None or line in numbers:  # raised by the hidden part (or nobody can tell)
                        written = _hidden_message(message, patterns) if message else None
                        message = (HIDDEN_PREFIX.format(grade_id=grade_id) + written if written
                                   else HIDDEN_FAILED.format(grade_id=grade_id))  # fmt: skip
                output.evalue = message
                output.traceback = [f"{output.ename}: {message}"]
            elif (
                output.output_type == "stream"
                and index in hidden
                and (any(line in output.text for line in hidden[index][2]) or re.search(r"\d", output.text))
            ):
                output.text = "(output of a hidden test, not shown)\n"
    return nb


NOT_GRADED_YET = "not graded yet"


def _not_graded_yet(gradebook, assignment: str, student: str, notebook: str) -> dict[str, float]:
    """grade_id -> points of the written answers waiting for the instructor."""
    submitted = gradebook.find_submission_notebook(notebook, assignment, student)
    return {g.name: float(g.max_score) for g in submitted.grades if g.needs_manual_grade and g.manual_score is None}


def _points_cell(gradebook, assignment: str, student: str, notebook: str, notes: list[str],
                 blanks: list[str] | None = None):  # fmt: skip
    """A Markdown table of each exercise's points, for the top of a learner's feedback; written
    answers not graded yet say so (they are not zero), exercises left blank are named, and what
    grading repaired is listed."""
    from nbformat.v4 import new_markdown_cell

    submitted = gradebook.find_submission_notebook(notebook, assignment, student)
    waiting_ids = _not_graded_yet(gradebook, assignment, student, notebook)
    rows, pending = [], 0.0
    for g in submitted.grades:
        if g.name in waiting_ids:
            rows.append(f"| `{g.name}` | {NOT_GRADED_YET} | {float(g.max_score):g} |")
            pending += float(g.max_score)
        else:
            rows.append(f"| `{g.name}` | {float(g.score):g} | {float(g.max_score):g} |")
    penalty = float(submitted.late_submission_penalty or 0)
    total = float(submitted.score) - penalty
    late = f"\n\nLate submission: {penalty:g} points deducted." if penalty else ""
    waiting = (f" ({pending:g} points of written answers {NOT_GRADED_YET}: your instructor reads them)"
               if pending else "")  # fmt: skip
    repaired = "".join(f"\n- {note}" for note in notes)
    repaired = f"\n\n**Repaired before grading:**{repaired}" if notes else ""
    unanswered = (f"\n\n**Not answered yet:** {', '.join(f'`{b}`' for b in blanks)} (the cell still raises "
                  "NotImplementedError; its tests, and cells after it that use its answer, fail because of it)"
                  if blanks else "")  # fmt: skip
    return new_markdown_cell(
        f"## Your points: {total:g} of {float(submitted.max_score):g}{waiting}\n\n| exercise | points | of |\n"
        "|---|---|---|\n" + "\n".join(rows) + late + unanswered + repaired + "\n\nFailed tests below show the advice written "
        "for you; hidden checks name the exercise, never their expected answer.",
        metadata={"citykit": "points"},
    )  # fmt: skip


def _repairs(problems) -> list[str]:
    """What grading put back or changed in a submission, said to the learner."""
    said = {
        "edited-locked-cell": "{what}: you edited it, but it is locked; grading restored the original, so your "
                              "edits did not count.",
        "deleted-cell": "{what}: it was deleted; grading restored it from the released version.",
        "duplicate-cell": "{what}: it was copied; only its last copy was graded.",
        "changed-cell-type": "{what}: its type was changed; grading used the original type.",
        "wrong-kernel": "the notebook asked for another kernel; it was graded with Python 3.",
    }  # fmt: skip
    notes = []
    for problem in problems:
        if problem.code in said:
            what = problem.message.split(" was ")[0].split(" appears ")[0].removeprefix("the ")
            notes.append(said[problem.code].format(what=what[:1].upper() + what[1:]))
    return notes


INVALID_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{assignment}: not graded</title></head>
<body><h1>{assignment}: your submission could not be graded</h1>
<p>{why}</p>
<p>Open your notebook in JupyterLab, check that it opens and runs, save it (Ctrl+S) and submit it again.
Your instructor has the same message.</p></body></html>
"""


def feedback(module: str, students: list[str] | None = None, *, course_root: Path | None = None) -> list[Path]:
    """HTML feedback per learner (nbgrader's feedback), without hidden-test source; return the files.
    A submission that could not be graded (not a valid notebook) gets a page saying why; a learner
    whose page fails is named on stderr, and the others' pages are still written."""
    import html

    import nbformat
    from nbgrader.api import Gradebook

    root = course_root_of(course_root)
    assignment = assignment_id(module, course_root)
    graded = sorted(p.parent.name for p in (root / "grading" / "autograded").glob(f"*/{assignment}") if p.is_dir())
    submitted = submitted_students(assignment, course_root)
    problems = lint_assignment(
        assignment, [s for s in (students or submitted) if s in submitted], course_root=course_root
    )
    invalid = {s: "; ".join(p.message for p in found if p.fatal) for s, found in problems.items()
               if any(p.fatal for p in found)}  # fmt: skip
    if not students:  # everyone: a submission autograde could not grade is named, never skipped in silence
        _say_not_graded(root, assignment, sorted(set(submitted) - set(graded) - set(invalid)))
    students = students or sorted(set(graded) | set(invalid))
    missing = sorted(set(students) - set(graded) - set(invalid))
    if missing:
        raise CitykitError(f"no autograded {assignment} for {', '.join(missing)}; autograde first")
    staging = root / "grading" / ".feedback-source"  # graded notebooks with hidden tests removed
    config = load_config(course_root)
    config.CourseDirectory.autograded_directory = str(staging.relative_to(root))
    timeout = cohort_limits(course_root).cell_timeout
    written: list[Path] = []
    failed: dict[str, str] = {}
    with grader_env(), Gradebook(config.CourseDirectory.db_url) as gradebook:
        api = nbgrader_api_for(config)
        for student in students:
            out = root / "grading" / "feedback" / student / assignment
            if student in invalid:
                out.mkdir(parents=True, exist_ok=True)
                page = out / f"{assignment}.html"
                page.write_text(INVALID_PAGE.format(assignment=assignment, why=html.escape(invalid[student])),
                                encoding="utf-8")  # fmt: skip
                written.append(page)
                continue
            try:
                source, target = root / "grading" / "autograded" / student / assignment, staging / student / assignment
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target)
                notes = _repairs(problems.get(student, []))
                waiting = {}
                for path in target.glob("*.ipynb"):
                    graded_nb = nbformat.read(path, as_version=4)
                    blanks = blank_exercises(graded_nb)
                    nb = strip_hidden_tests(graded_nb, cell_timeout=timeout)
                    nb.cells.insert(0, _points_cell(gradebook, assignment, student, path.stem, notes, blanks))
                    nbformat.write(nb, path)
                    waiting[path.stem] = _not_graded_yet(gradebook, assignment, student, path.stem)
                check_result(api.generate_feedback(assignment, student, force=True), f"feedback for {student}")
                for page in out.glob("*.html"):
                    if waiting.get(page.stem):
                        page.write_text(_say_not_graded_yet(page.read_text(encoding="utf-8"), waiting[page.stem]),
                                        encoding="utf-8")  # fmt: skip
            except Exception as error:  # one learner's page failing never stops the others'
                failed[student] = f"{type(error).__name__}: {error}"
                for stale in out.glob("*.html"):  # an older page would not say this grading's result
                    stale.unlink()
                continue
            written += sorted(out.glob("*.html"))
    for student, why in sorted(failed.items()):
        print(f"feedback for {student} FAILED (the others were written): {why}", file=sys.stderr)
    return written


def _say_not_graded(root: Path, assignment: str, students: list[str]) -> None:
    """Name on stderr the learners whose submission is not autograded (autograde said why); an older
    page of theirs, from an earlier submission, is removed: it would not say this submission's result."""
    for student in students:
        for stale in (root / "grading" / "feedback" / student / assignment).glob("*.html"):
            stale.unlink()
    if students:
        print(f"no feedback for {', '.join(students)}: their submission of {assignment} is not autograded "
              f"(`citykit grade autograde {assignment}` says why); an older page of theirs was removed",
              file=sys.stderr)  # fmt: skip


def _say_not_graded_yet(page: str, waiting: dict[str, float]) -> str:
    """nbgrader's page scores a written answer the instructor has not read yet as 0 (in the contents
    at the top and in the cell's heading); say "not graded yet", as the points table does."""
    for grade_id, points in waiting.items():
        said = f"{NOT_GRADED_YET}, {points:g} points"
        anchor = re.escape(grade_id)
        page = re.sub(rf'(<a href="#{anchor}">[^<]*</a>) \(Score: [\d.]+ / [\d.]+\)', rf"\1 ({said})", page)
        page = re.sub(rf'(<a name="{anchor}"></a>.*?)Score: [\d.]+ / [\d.]+', rf"\g<1>{said}", page, count=1,
                      flags=re.S)  # fmt: skip
    return page
