"""citykit.lint: submissions compared with the released student version, problems in plain language."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_helpers import nbg

from citykit.grading.lint import DeduplicateCells, lint_assignment, lint_notebook


def released_version() -> nbformat.NotebookNode:
    cells = [
        new_code_cell("values = [3, 4, 5]", metadata=nbg("setup", locked=True)),
        new_code_cell("# YOUR CODE HERE\nraise NotImplementedError()", metadata=nbg("total", solution=True)),
        new_code_cell("assert total > 0", metadata=nbg("sum-of-values", grade=True, locked=True, points=3)),
        new_markdown_cell("YOUR ANSWER HERE", metadata=nbg("why", grade=True, solution=True, points=1)),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})  # fmt: skip


@pytest.fixture
def released(tmp_path) -> Path:
    path = tmp_path / "release" / "01-sums.ipynb"
    path.parent.mkdir()
    nbformat.write(released_version(), path)
    return path


def submit(tmp_path: Path, nb) -> Path:
    path = tmp_path / "submitted" / "01-sums.ipynb"
    path.parent.mkdir(exist_ok=True)
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb), encoding="utf-8")
    return path


def by_id(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_an_answered_notebook_has_no_problems(tmp_path, released):
    nb = released_version()
    by_id(nb, "total").source = "total = sum(values)"
    by_id(nb, "why").source = "Because."
    nb.cells.append(new_code_cell("print('my own extra cell')"))
    assert lint_notebook(submit(tmp_path, nb), released, "ana") == []


def test_broken_json_is_the_one_fatal_problem(tmp_path, released):
    text = nbformat.writes(released_version())
    [problem] = lint_notebook(submit(tmp_path, text[: len(text) // 2]), released, "ana")
    assert problem.fatal and problem.code == "invalid-json" and problem.student == "ana"
    assert "not valid JSON (line" in problem.message and "save it and submit again" in problem.message
    [problem] = lint_notebook(submit(tmp_path, "[1, 2]"), released, "ana")
    assert problem.fatal and problem.code == "not-a-notebook"


def test_each_kind_of_damage_is_named(tmp_path, released):
    nb = released_version()
    copy = nbformat.from_dict(json.loads(json.dumps(by_id(nb, "total"))))  # same grade_id and same cell id
    nb.cells.insert(1, copy)
    by_id(nb, "setup").source = "values = [1]"  # a locked cell edited
    nb.cells = [c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] != "sum-of-values"]  # a test deleted
    by_id(nb, "why").cell_type = "raw"
    nb.metadata.kernelspec.name = "ir"
    problems = {p.code: p for p in lint_notebook(submit(tmp_path, nb), released, "ben")}
    assert set(problems) == {"duplicate-cell", "duplicate-cell-id", "edited-locked-cell", "deleted-cell",
                             "changed-cell-type", "wrong-kernel"}  # fmt: skip
    assert not any(p.fatal for p in problems.values())
    assert "answer cell `total` appears 2 times" in problems["duplicate-cell"].message
    assert "locked cell `setup` was edited" in problems["edited-locked-cell"].message
    assert "test cell `sum-of-values` (3 points) was deleted" in problems["deleted-cell"].message
    assert "from markdown to raw" in problems["changed-cell-type"].message
    assert "'ir'" in problems["wrong-kernel"].message and "'python3'" in problems["wrong-kernel"].message


def test_deleting_an_answer_scores_it_as_unanswered(tmp_path, released):
    nb = released_version()
    nb.cells = [c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] != "total"]
    [problem] = lint_notebook(submit(tmp_path, nb), released)
    assert problem.code == "deleted-cell" and "scores as unanswered" in problem.message


def test_missing_notebook_is_reported_not_fatal(tmp_path, released):
    [problem] = lint_notebook(tmp_path / "nowhere.ipynb", released, "cy")
    assert problem.code == "missing-notebook" and not problem.fatal


def test_lint_assignment_reads_the_course_folders(tmp_path, released):
    root = tmp_path / "course"
    (root / "grading" / "release" / "01-sums").mkdir(parents=True)
    nbformat.write(released_version(), root / "grading" / "release" / "01-sums" / "01-sums.ipynb")
    for student, text in (("ana", nbformat.writes(released_version())), ("ben", "{")):
        folder = root / "grading" / "submitted" / student / "01-sums"
        folder.mkdir(parents=True)
        (folder / "01-sums.ipynb").write_text(text, encoding="utf-8")
    found = lint_assignment("01-sums", course_root=root)
    assert found["ana"] == [] and [p.code for p in found["ben"]] == ["invalid-json"]


def test_deduplicate_cells_keeps_the_last_copy_and_drops_the_others_metadata():
    from nbgrader.preprocessors import DeduplicateIds

    nb = released_version()
    first = nbformat.from_dict(json.loads(json.dumps(by_id(nb, "total"))))
    first.source = "total = 0"
    nb.cells.insert(1, first)
    plain, _ = DeduplicateIds().preprocess(nbformat.from_dict(json.loads(json.dumps(nb))), {})
    assert plain.cells[1].metadata["nbgrader"] == {}  # nbgrader's own: an empty dict (crashes OverwriteCells)
    fixed, _ = DeduplicateCells().preprocess(nb, {})
    assert "nbgrader" not in fixed.cells[1].metadata and fixed.cells[1].source == "total = 0"
    assert fixed.cells[2].metadata["nbgrader"]["grade_id"] == "total"


# ---------------------------------------------------------------------------------- hidden-test messages


def _hidden_cell(body: str) -> nbformat.NotebookNode:
    source = f'assert total > 0, "Your total should be positive: add the values."\n### BEGIN HIDDEN TESTS\n{body}\n### END HIDDEN TESTS'
    return new_notebook(cells=[new_code_cell(source, metadata=nbg("sum-of-values", grade=True, locked=True, points=3))])


def test_hidden_messages_that_give_the_answer_away_or_advise_nothing_are_found():
    from citykit.grading.lint import hidden_message_problems

    leaking = _hidden_cell("_n = sum(values)\nassert total == _n, f'expected {_n}, got {total}'")
    assert hidden_message_problems(leaking) == ["`sum-of-values` line 4: the message shows _n, a value the hidden "
                                                "test computed"]  # fmt: skip
    bare = _hidden_cell("assert total == sum(values)")
    assert "without a message" in hidden_message_problems(bare)[0]
    advising = _hidden_cell(
        "_n = sum(values)\nassert total == _n, 'Your total leaves some values out.'\n"
        "for _g in ['a']:\n    assert _g, f'Your total is wrong for group {_g!r}.'\n"
        "_wrong = [v for v in values if v < 0]\nassert not _wrong, f'These are negative: {_wrong[:3]}'"
    )
    assert hidden_message_problems(advising) == []


def test_every_modules_hidden_tests_advise_without_giving_the_answer_away():
    from citykit import paths
    from citykit.grading.lint import hidden_message_problems

    found = {nb.name: hidden_message_problems(nbformat.read(nb, as_version=4))
             for nb in sorted(paths.notebooks_dir().glob("*/*.ipynb"))}  # fmt: skip
    assert len(found) >= 15
    assert not {name: problems for name, problems in found.items() if problems}
