"""Check submissions before grading and say what is wrong in plain language.

Each submitted notebook is compared with the student version nbgrader released
(`grading/release/<assignment>/`): the cells nbgrader tracks (`grade_id`), their types, the locked
cells' contents (nbgrader's own checksum) and the kernel. Only a notebook that is not valid JSON
stops its grading (`fatal`); everything else is reported and nbgrader repairs it while grading
(restores deleted and locked cells, keeps the last copy of a duplicated cell, pins the kernel).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nbgrader.preprocessors import DeduplicateIds

from citykit.errors import CitykitError
from citykit.grading.config import course_root_of, submitted_students


@dataclass(frozen=True)
class Problem:
    student: str
    notebook: str
    code: str  # invalid-json | not-a-notebook | missing-notebook | duplicate-cell | duplicate-cell-id |
    #            deleted-cell | edited-locked-cell | changed-cell-type | wrong-kernel
    message: str
    fatal: bool = False  # the notebook cannot be graded

    def __str__(self) -> str:
        return f"{self.student} / {self.notebook}: {self.message}"


class DeduplicateCells(DeduplicateIds):
    """nbgrader's DeduplicateIds (the last copy of a duplicated cell keeps its grade_id), except that
    the earlier copies lose their nbgrader metadata entirely: nbgrader 0.9.6 leaves an empty dict,
    on which restoring missing cells (`OverwriteCells.add_missing_cells`) crashes the whole grading."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.metadata.get("nbgrader") == {}:
            del cell.metadata["nbgrader"]
        return cell, resources


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _what(cell: dict) -> str:
    meta = _nbgrader(cell)
    if meta.get("grade") and not meta.get("solution"):
        return f"test cell `{meta['grade_id']}` ({meta.get('points', 0):g} points)"
    if meta.get("solution"):
        return f"answer cell `{meta['grade_id']}`"
    return f"locked cell `{meta['grade_id']}`"


def _joined(cells: list) -> list[dict]:
    """Cells as nbformat reads them: a source stored as a list of lines becomes one string."""
    return [{**c, "source": "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", "")}
            for c in cells if isinstance(c, dict)]  # fmt: skip


def lint_notebook(submitted: Path, released: Path, student: str = "") -> list[Problem]:
    """Problems of one submitted notebook, compared with the released student version."""
    from nbformat import from_dict
    from nbgrader.utils import compute_checksum

    name = released.stem

    def problem(code: str, message: str, fatal: bool = False) -> Problem:
        return Problem(student, name, code, message, fatal)

    if not submitted.exists():
        return [problem("missing-notebook", f"{name}.ipynb was not submitted; it scores zero")]
    try:
        raw = json.loads(submitted.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return [problem("invalid-json", "the notebook is not a text file; ask for the .ipynb file itself", True)]
    except json.JSONDecodeError as error:
        return [problem(
            "invalid-json",
            f"the notebook is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); it was "
            "probably edited in a text editor or cut off while saving. Ask the learner to open it in "
            "JupyterLab, save it and submit again.",
            True,
        )]  # fmt: skip
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return [problem("not-a-notebook", "the file is JSON but not a notebook (it has no cells)", True)]

    reference = json.loads(released.read_text(encoding="utf-8"))
    expected = {_nbgrader(c)["grade_id"]: c for c in _joined(reference["cells"]) if _nbgrader(c).get("grade_id")}
    cells = _joined(raw["cells"])
    problems = []

    counts = Counter(_nbgrader(c).get("grade_id") for c in cells if _nbgrader(c).get("grade_id"))
    for grade_id, count in counts.items():
        if count > 1 and grade_id in expected:
            problems.append(problem(
                "duplicate-cell",
                f"the {_what(expected[grade_id])} appears {count} times (a copied cell); nbgrader grades only "
                "the last copy, so the answer belongs there",
            ))  # fmt: skip
    ids = Counter(c.get("id") for c in cells if c.get("id"))
    doubled = sorted(cell_id for cell_id, count in ids.items() if count > 1)
    if doubled:
        problems.append(problem(
            "duplicate-cell-id",
            f"{len(doubled)} cell id(s) are used more than once ({', '.join(doubled[:3])}), usually from cells "
            "pasted from another notebook; grading gives them new ids",
        ))  # fmt: skip

    by_id = {}
    for cell in cells:  # the last copy wins, as in nbgrader's DeduplicateIds
        if _nbgrader(cell).get("grade_id"):
            by_id[_nbgrader(cell)["grade_id"]] = cell
    for grade_id, original in expected.items():
        cell = by_id.get(grade_id)
        if cell is None:
            problems.append(problem(
                "deleted-cell",
                f"the {_what(original)} was deleted; grading puts it back from the released version"
                + (" and it scores as unanswered" if _nbgrader(original).get("solution") else ""),
            ))  # fmt: skip
            continue
        if cell.get("cell_type") != original.get("cell_type"):
            problems.append(problem(
                "changed-cell-type",
                f"the {_what(original)} was changed from {original.get('cell_type')} to {cell.get('cell_type')}",
            ))  # fmt: skip
        elif (
            _nbgrader(original).get("locked")
            and not _nbgrader(original).get("solution")
            and compute_checksum(from_dict(cell)) != compute_checksum(from_dict(original))
        ):
            problems.append(problem(
                "edited-locked-cell",
                f"the {_what(original)} was edited although it is locked; grading puts the original back, "
                "so those edits do not count",
            ))  # fmt: skip

    kernel = (raw.get("metadata", {}).get("kernelspec") or {}).get("name")
    wanted = (reference.get("metadata", {}).get("kernelspec") or {}).get("name", "python3")
    if kernel != wanted:
        problems.append(problem(
            "wrong-kernel",
            f"the notebook asks for the kernel {kernel or '(none)'!r}; grading runs it with {wanted!r}",
        ))  # fmt: skip
    return problems


def lint_assignment(
    assignment: str, students: list[str] | None = None, *, course_root: Path | None = None
) -> dict[str, list[Problem]]:
    """Problems of every learner's submission of `assignment` (default: everyone who submitted)."""
    root = course_root_of(course_root)
    release = root / "grading" / "release" / assignment
    notebooks = sorted(release.glob("*.ipynb"))
    if not notebooks:
        raise CitykitError(f"{assignment} has no released student version in {release}; run generate first")
    found = {}
    for student in students or submitted_students(assignment, course_root):
        folder = root / "grading" / "submitted" / student / assignment
        found[student] = [p for nb in notebooks for p in lint_notebook(folder / nb.name, nb, student)]
    return found


# ---------------------------------------------------------------------------------- the sources' hidden tests


def hidden_message_problems(nb) -> list[str]:
    """Hidden tests whose failure would not advise the learner, or would show the expected answer: a
    bare `assert` (no message naming the exercise and the kind of mistake), and a message whose
    f-string shows a value the hidden test computed and compares the answer with (feedback masks
    digits, but a category name would still give the answer away). A `for` loop's variable (the
    group being checked) and a list of what went wrong may be named. `nb` is a source notebook."""
    import ast

    begin, end = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code" or begin not in cell.source:
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "?")
        lines, inside, hidden = cell.source.splitlines(), False, set()
        for number, line in enumerate(lines, 1):
            inside = (inside or begin in line) and end not in line
            if inside and begin not in line:
                hidden.add(number)
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as error:
            problems.append(f"`{grade_id}`: the test cell is not valid Python ({error.msg})")
            continue
        computed, looped = set(), set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) not in hidden:
                continue
            if isinstance(node, ast.For | ast.comprehension):
                looped |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                computed |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) not in hidden:
                continue
            if isinstance(node, ast.Assert) and node.msg is None:
                problems.append(f"`{grade_id}` line {node.lineno}: a hidden assert without a message; name the "
                                "exercise and the kind of mistake")  # fmt: skip
            if not isinstance(node, ast.Assert) or node.msg is None:
                continue
            compared = {n.id for c in ast.walk(node.test) if isinstance(c, ast.Compare)
                        for n in ast.walk(c) if isinstance(n, ast.Name)}  # fmt: skip
            for message in [node.msg]:
                for value in ast.walk(message):
                    if isinstance(value, ast.FormattedValue):
                        names = {n.id for n in ast.walk(value.value) if isinstance(n, ast.Name)}
                        if names & (computed - looped) & compared:
                            problems.append(
                                f"`{grade_id}` line {node.lineno}: the message shows "
                                f"{ast.unparse(value.value)}, a value the hidden test computed"
                            )
    return problems
