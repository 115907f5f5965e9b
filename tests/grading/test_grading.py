"""citykit.grading: nbgrader's API around a course copy in a temporary folder (no city data needed)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_helpers import nbg

from citykit.errors import CitykitError, WorkFailed
from citykit.grading.assignments import generate, score, submit, validate
from citykit.grading.autograde import autograde
from citykit.grading.config import assignment_id, load_config

pytestmark = pytest.mark.slow

ASSIGNMENT = "01-sums"


def sums_notebook(total_source: str = "total = sum(values)") -> nbformat.NotebookNode:
    cells = [
        new_code_cell("values = [3, 4, 5]", metadata=nbg("setup", locked=True)),
        new_code_cell(f"### BEGIN SOLUTION\n{total_source}\n### END SOLUTION", metadata=nbg("total", solution=True)),
        new_code_cell(
            "assert total > 0, 'positive'\n### BEGIN HIDDEN TESTS\nassert total == 3 + 4 + 5\n### END HIDDEN TESTS",
            metadata=nbg("sum-of-values", grade=True, locked=True, points=3),
        ),
        new_markdown_cell("Sums add.", metadata=nbg("why", grade=True, solution=True, points=1)),
    ]
    return new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course")
    (root / "notebooks" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(sums_notebook(), root / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    return root


def test_config_points_every_folder_at_the_course_root(course):
    config = load_config(course)
    assert config.CourseDirectory.root == str(course.resolve())
    assert config.CourseDirectory.source_directory == "notebooks"
    assert config.CourseDirectory.release_directory == "grading/release"
    assert config.CourseDirectory.db_url == f"sqlite:///{course.resolve() / 'grading' / 'gradebook.db'}"
    assert config.CourseDirectory.course_id == "citykit"
    assert config.Execute.kernel_name == "python3" and config.Execute.timeout > 0


def test_assignment_id_accepts_slug_or_folder(course):
    assert assignment_id("sums", course) == ASSIGNMENT
    assert assignment_id(ASSIGNMENT, course) == ASSIGNMENT
    with pytest.raises(CitykitError, match="unknown module 'nope'"):
        assignment_id("nope", course)


def test_generate_autograde_and_score(course, tmp_path):
    released = generate("sums", course_root=course)
    assert released == [course / "grading" / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"]
    student = "\n".join(cell.source for cell in nbformat.read(released[0], as_version=4).cells)
    assert "sum(values)" not in student and "HIDDEN" not in student and "3 + 4 + 5" not in student
    assert "raise NotImplementedError" in student and "assert total > 0" in student

    # the untouched student version scores nothing; the solution gets every autograded point
    submit("sums", "blank", course_root=course)
    submit("sums", "solver", course / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", course_root=course)
    # passes the visible test, fails the hidden one
    wrong = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(sums_notebook("total = 1"), wrong)
    submit("sums", "guesser", wrong, course_root=course)
    for student_id in ("blank", "solver", "guesser"):
        autograded = autograde("sums", student_id, course_root=course)
        assert autograded.exists()
    assert score("sums", "blank", part="autograded", course_root=course) == (0.0, 3.0)
    assert score("sums", "solver", part="autograded", course_root=course) == (3.0, 3.0)
    assert score("sums", "guesser", part="autograded", course_root=course) == (0.0, 3.0)
    assert score("sums", "solver", part="manual", course_root=course) == (0.0, 1.0)
    assert score("sums", "solver", course_root=course) == (3.0, 4.0)
    with pytest.raises(CitykitError, match="no graded submission"):
        score("sums", "nobody", course_root=course)


def test_validate_reports_failing_and_unanswered_tests(course, tmp_path):
    source = course / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert validate(source) == []
    wrong = tmp_path / "wrong.ipynb"
    nbformat.write(sums_notebook("total = -1"), wrong)
    problems = validate(wrong)
    assert len(problems) == 1 and "AssertionError: positive" in problems[0]
    # a test that passes before anything is answered is a broken test
    lenient = sums_notebook("total = 12")
    lenient.cells[2].source = "assert True"
    nbformat.write(lenient, wrong)
    assert len(validate(wrong, invert=True)) == 1


def test_generate_failure_names_nbgrader_error(tmp_path):
    root = tmp_path / "broken"
    (root / "notebooks" / "02-twice").mkdir(parents=True)
    nb = sums_notebook()
    nb.cells[1].metadata["nbgrader"]["grade_id"] = "setup"  # duplicate grade_id
    nbformat.write(nb, root / "notebooks" / "02-twice" / "02-twice.ipynb")
    with pytest.raises(WorkFailed, match=r"generating 02-twice failed: .*setup"):
        generate("twice", course_root=root)
