"""The model answer beside every learner's written answer, for grading written answers.

nbgrader's formgrader shows one submission at a time and has no place for the source notebook's
model answer; `written_answers` writes an instructor-only page, `grading/answers/<assignment>.html`
(open it in `citykit lab --instructor`, beside formgrader), with one section per written-answer cell:
the points, the model answer from `notebooks/`, then each learner's answer (submitted version) and
whether it is graded yet.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from citykit.errors import CitykitError
from citykit.grading.config import assignment_id, course_root_of, grader_env, load_config, submitted_students


def _written_cells(nb: dict) -> dict[str, dict]:
    """grade_id -> cell, for manually graded answer cells (graded and a solution, Markdown)."""
    cells = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
        if meta.get("grade") and meta.get("solution") and cell.get("cell_type") == "markdown":
            cells[meta["grade_id"]] = cell
    return cells


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _render(markdown: str) -> str:
    import mistune

    return mistune.html(html.escape(markdown, quote=False))


def written_answers(module: str, *, course_root: Path | None = None, out: Path | None = None) -> Path:
    """Write the model-answer page of an assignment; return it."""
    from nbgrader.api import Gradebook, MissingEntry

    root = course_root_of(course_root)
    assignment = assignment_id(module, course_root)
    sources = sorted((root / "notebooks" / assignment).glob("*.ipynb"))
    if not sources:
        raise CitykitError(f"no source notebook for {assignment}")
    sections = []
    with grader_env(), Gradebook(load_config(course_root).CourseDirectory.db_url) as gradebook:
        for source in sources:
            nb = json.loads(source.read_text(encoding="utf-8"))
            for grade_id, cell in _written_cells(nb).items():
                points = cell["metadata"]["nbgrader"].get("points", 0)
                rows = []
                for student in submitted_students(assignment, course_root):
                    file = root / "grading" / "submitted" / student / assignment / source.name
                    try:
                        answer = _source(_written_cells(json.loads(file.read_text(encoding="utf-8")))[grade_id])
                    except (OSError, ValueError, KeyError):
                        answer = "(no answer: the notebook or the cell is missing or unreadable)"
                    try:
                        grade = gradebook.find_grade(grade_id, source.stem, assignment, student)
                        status = ("not graded yet" if grade.needs_manual_grade and grade.manual_score is None
                                  else f"{float(grade.score):g} / {float(grade.max_score):g}")  # fmt: skip
                    except MissingEntry:
                        status = "not autograded yet"
                    blank = answer.strip() in ("", "YOUR ANSWER HERE")
                    rows.append(f'<section class="learner"><h3>{html.escape(student)} <small>{status}'
                                f'{" - blank" if blank else ""}</small></h3>{_render(answer)}</section>')  # fmt: skip
                sections.append(
                    f'<article><h2><code>{html.escape(grade_id)}</code> ({points:g} points)</h2>'
                    f'<section class="model"><h3>Model answer</h3>{_render(_source(cell))}</section>'
                    + "".join(rows) + "</article>"
                )  # fmt: skip
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{assignment}: written answers'
            "</title><style>body{font-family:sans-serif;max-width:70em;margin:auto}.model{background:#eef6ee;"
            "padding:.5em 1em}.learner{border-top:1px solid #ccc;padding:.2em 1em}</style></head><body>"
            f"<h1>{assignment}: written answers beside the model answer</h1><p>Instructors only: grade them in "
            "formgrader (Manual Grading).</p>" + ("".join(sections) or "<p>No written answers in this module.</p>")
            + "</body></html>")  # fmt: skip
    out = Path(out) if out is not None else root / "grading" / "answers"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{assignment}.html"
    path.write_text(page, encoding="utf-8")
    return path
