"""The minutes course.yml states are estimates from each notebook's text and exercises
(citykit/lessons/estimate.py), and the notebooks say the same minutes, as an estimate."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_helpers import nbg

from citykit.lessons.course import load_course
from citykit.lessons.estimate import estimate, words

MODULES = load_course()
HEADER = re.compile(r"\*\*Module (\d\d) · about (\d+) minutes, estimated \((\d+) teaching, (\d+) exercises\)\*\*")


def test_the_rule_counts_words_cells_and_exercises():
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Title\n\n" + "word " * 198),  # 199 words with the title
            new_code_cell("# a comment\nx = 1"),  # a short given cell: 1 minute
            new_code_cell("\n".join(f"y{i} = {i}" for i in range(6))),  # six lines: 2 minutes
            new_code_cell("### BEGIN SOLUTION\na = 1\nb = 2\n### END SOLUTION", metadata=nbg("ex", solution=True)),
            new_code_cell("assert a == 1", metadata=nbg("ex-test", grade=True, points=1)),  # part of the exercise
            new_markdown_cell(
                "A model answer of many words " * 50, metadata=nbg("w", grade=True, solution=True, points=1)
            ),
        ]
    )
    e = estimate(nb)
    assert (e.words, e.given_cells, e.code_exercises, e.solution_lines, e.written_answers) == (199, 2, 1, 2, 1)
    assert e.reading == pytest.approx(1.99) and e.running == 3
    assert e.exercises == 6 + 2 + 10  # the exercise, its two lines, the written answer
    assert e.total == 25  # 1.99 + 3 + 18 = 22.99, to the nearest 5
    assert e.teaching == 5


def test_words_leave_markup_out():
    assert words("**Bold** `code` and [a link](https://example.org/a-b-c) | table |") == 6
    assert words("<a id='as-of-date'></a>A request's as-of date, 2025-07.") == 5


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.folder_name)
def test_course_minutes_are_the_estimate(module):
    e = estimate(module.notebook)
    assert abs(module.minutes - e.total) <= max(5, 0.1 * e.total), (
        f"course.yml says {module.folder_name} takes {module.minutes} minutes; the estimate is {e.total} "
        f"({e.teaching} teaching, {round(e.exercises)} exercises): set minutes: {e.total}"
    )


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.folder_name)
def test_notebook_states_the_same_estimate(module):
    nb = nbformat.read(module.notebook, as_version=4)
    stated = [HEADER.search(c.source) for c in nb.cells if c.cell_type == "markdown"]
    stated = [m for m in stated if m]
    e = estimate(nb)
    line = (
        f"**Module {module.number:02d} · about {module.minutes} minutes, estimated "
        f"({e.teaching} teaching, {module.minutes - e.teaching} exercises)**"
    )
    assert len(stated) == 1, f"{module.folder_name}: the header should read {line}"
    number, total, teaching, exercises = (int(g) for g in stated[0].groups())
    assert (number, total) == (module.number, module.minutes), f"{module.folder_name}: write {line}"
    assert teaching + exercises == total and abs(teaching - e.teaching) <= 5, f"{module.folder_name}: write {line}"
