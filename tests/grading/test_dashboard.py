"""The cohort dashboard tells the truth: written answers not graded yet are left out (not zeros), and
each module's row of learners who need help names an objective of that module."""

from __future__ import annotations

import re

import pytest

from citykit.grading.dashboard import dashboard

pytestmark = pytest.mark.slow

# (module, grade cell, cell type, points): module 04's and module 07's assessments in course.yml
CELLS = [("04-time-to-close", "durations-in-days", "code", 2), ("04-time-to-close", "share-within-sla", "code", 2),
         ("04-time-to-close", "interpret-time-to-close", "markdown", 2),
         ("07-disaggregation", "alone-vs-combination", "code", 2), ("07-disaggregation", "suppress-small-cells", "code", 2)]  # fmt: skip
# learner -> grade cell -> auto score (None: a written answer waiting for the instructor)
SCORES = {
    "ana": {"durations-in-days": 2, "share-within-sla": 0, "interpret-time-to-close": None,
            "alone-vs-combination": 2, "suppress-small-cells": 0},
    "ben": {"durations-in-days": 2, "share-within-sla": 2, "interpret-time-to-close": None,
            "alone-vs-combination": 0, "suppress-small-cells": 2},
}  # fmt: skip


def test_dashboard_leaves_ungraded_answers_out_and_names_each_modules_own_objective(tmp_path):
    from nbgrader.api import Gradebook

    from citykit.grading.config import grader_env

    db = tmp_path / "grading" / "gradebook.db"
    db.parent.mkdir(parents=True)
    with grader_env(), Gradebook(f"sqlite:///{db}") as gradebook:
        for module in sorted({m for m, *_ in CELLS}):
            gradebook.add_assignment(module)
            gradebook.add_notebook(module, module)
            for m, name, kind, points in CELLS:
                if m == module:
                    gradebook.add_grade_cell(name, module, module, max_score=points, cell_type=kind)
                    if kind == "markdown":
                        gradebook.add_solution_cell(name, module, module)
        for student, scores in SCORES.items():
            gradebook.add_student(student, first_name=student.title(), last_name="Learner")
            for module in sorted({m for m, *_ in CELLS}):
                gradebook.add_submission(module, student)
                for grade in gradebook.find_submission_notebook(module, module, student).grades:
                    score = scores[grade.name]
                    grade.auto_score = score
                    grade.needs_manual_grade = score is None
        gradebook.db.commit()

    html = dashboard(tmp_path / "out", course_root=tmp_path, need_help_below=0.9).html.read_text(encoding="utf-8")
    assert "2 written answer(s) not graded yet" in html
    rows = re.findall(r"<tr>\s*<th>\d+</th>\s*<td>(\w+)</td>\s*<td>[^<]*</td>\s*<td>([\w-]+)</td>\s*<td>([\d.]+)</td>"
                      r"\s*<td>([^<]*)</td>", html)  # fmt: skip
    by_row = {(student, module): (float(share), weakest) for student, module, share, weakest in rows}
    # ana on 04: 2 of 4 autograded points (the ungraded written answer is not a zero: not 2 of 6)
    assert by_row[("ana", "04-time-to-close")] == (0.5, "04 sla")
    assert by_row[("ana", "07-disaggregation")] == (0.5, "07 suppression")
    assert by_row[("ben", "07-disaggregation")] == (0.5, "07 presentations")
    assert ("ben", "04-time-to-close") not in by_row  # 4 of 4
