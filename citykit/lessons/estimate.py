"""How long a module takes a novice, estimated from its notebook: the minutes course.yml states.

The rule, stated once (the learner's version of the notebook: model answers and hidden tests never count):

- reading: every word of the text cells at 100 words a minute (a careful first reading of new material);
- running: 1 minute for each given code cell (run it, read its code and output), 2 for a worked example
  cell longer than five lines;
- exercises: 6 minutes for each code exercise (read it, write, run, read the check's advice, fix) plus
  1 minute for each line of its model solution (a longer answer takes longer to write), and 10 minutes
  for each written answer.

Teaching minutes are reading plus running; the total is rounded to the nearest 5 minutes. Calibrated on
a novice's walk through modules 01 and 04 (55-60 and 70-90 minutes): this rule gives 55 and 80.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from citykit.lessons.mistakes import SOLUTION, nbgrader

WORDS_PER_MINUTE = 100
MINUTES_PER_CODE_CELL = 1
MINUTES_PER_LONG_CODE_CELL = 2  # a given cell of more than LONG_CELL_LINES lines
LONG_CELL_LINES = 5
MINUTES_PER_CODE_EXERCISE = 6
MINUTES_PER_SOLUTION_LINE = 1
MINUTES_PER_WRITTEN_ANSWER = 10

_WORD = re.compile(r"[A-Za-z0-9][\w'’.-]*")


@dataclass(frozen=True)
class Estimate:
    words: int
    given_cells: int
    code_exercises: int
    solution_lines: int
    written_answers: int
    reading: float
    running: float
    exercises: float

    @property
    def teaching(self) -> int:
        return round(self.reading + self.running)

    @property
    def total(self) -> int:
        """The whole module, rounded to the nearest 5 minutes."""
        return 5 * math.floor((self.reading + self.running + self.exercises) / 5 + 0.5)


def words(text: str) -> int:
    """Words a reader reads: markdown and code markup left out."""
    text = re.sub(r"<[^>]+>|\]\([^)]*\)|[#*_`>|]", " ", text)  # tags, link targets, emphasis, tables
    return len(_WORD.findall(text))


def _code_lines(source: str) -> list[str]:
    """Lines of code, blank lines and comments left out."""
    return [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]


def estimate(nb) -> Estimate:
    """The estimate for a notebook (a path or a notebook node); the rule is in this module's docstring."""
    if isinstance(nb, (str, Path)):
        nb = nbformat.read(nb, as_version=4)
    n_words = given = code_exercises = solution_lines = written = 0
    running = 0.0
    for cell in nb.cells:
        meta = nbgrader(cell)
        if cell.cell_type == "markdown":
            if meta.get("solution"):  # a written answer: the model answer is not read
                written += 1
            else:
                n_words += words(cell.source)
        elif cell.cell_type == "code":
            if meta.get("solution") and not meta.get("grade"):
                code_exercises += 1
                body = SOLUTION.search(cell.source)
                solution_lines += len(_code_lines(body[2] if body else cell.source))
            elif meta.get("grade"):
                continue  # a test cell: part of its exercise
            else:
                given += 1
                long = len(_code_lines(cell.source)) > LONG_CELL_LINES
                running += MINUTES_PER_LONG_CODE_CELL if long else MINUTES_PER_CODE_CELL
    return Estimate(
        words=n_words,
        given_cells=given,
        code_exercises=code_exercises,
        solution_lines=solution_lines,
        written_answers=written,
        reading=n_words / WORDS_PER_MINUTE,
        running=running,
        exercises=code_exercises * MINUTES_PER_CODE_EXERCISE
        + solution_lines * MINUTES_PER_SOLUTION_LINE
        + written * MINUTES_PER_WRITTEN_ANSWER,
    )
