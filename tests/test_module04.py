"""Module 04 (time to close) as a lesson and a graded submission, on the bundled city."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from citykit import paths
from citykit.grading.assignments import generate, score, submit
from citykit.grading.autograde import autograde
from notebook_helpers import (
    cells_of,
    check_production_run,
    counted_for_time_to_close,
    import_real_sample,
    nbgrader_meta,
    real_sample_sql,
    solution_lines,
    table_rows,
)

pytestmark = pytest.mark.slow

MODULE = "04-time-to-close"
SOURCE = paths.notebooks_dir() / MODULE / f"{MODULE}.ipynb"


@pytest.fixture(scope="module")
def course(tmp_path_factory, riverton) -> Path:
    """A copy of the course with module 04 only, generated and graded there."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(SOURCE.parent, root / "notebooks" / MODULE)
    generate("time-to-close", course_root=root)
    return root


def test_source_notebook_follows_the_conventions():
    from notebook_helpers import check_hidden_tests

    nb = nbformat.read(SOURCE, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    assert all(re.search(rf"^{name} = ", parameters[0].source, re.M) for name in ("dataset", "period", "neighborhood"))
    tests = cells_of("test", nb)
    assert len(tests) >= 3
    objectives = next(c.source for c in nb.cells if "**Objectives**" in c.source)
    for cell in tests:
        grade_id = nbgrader_meta(cell)["grade_id"]
        assert f"`{grade_id}`" in objectives, f"test {grade_id} names no objective"
        # expected values come from SQL on the reference views, never from numbers pasted into the test
        check_hidden_tests(grade_id, cell.source)
        assert nbgrader_meta(cell)["points"] > 0
    manual = cells_of("manual", nb)
    assert len(manual) == 1 and manual[0].cell_type == "markdown"
    assert any("training" in c.metadata.get("tags", []) for c in nb.cells)
    chart = next(c.source for c in nb.cells if "sns." in c.source)
    assert all(call in chart for call in ("set_title(", "set_xlabel(", "set_ylabel("))
    assert "Keypoints" in next(c.source for c in reversed(nb.cells) if "training" in c.metadata.get("tags", []))


def test_student_version_has_no_solutions_or_hidden_tests(course):
    source = nbformat.read(SOURCE, as_version=4)
    released = course / "grading" / "release" / MODULE / f"{MODULE}.ipynb"
    student = nbformat.read(released, as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "read_parquet" not in text
    statements = solution_lines(source)
    assert len(statements) >= 4
    assert [line for line in statements if line in text] == []
    assert text.count("raise NotImplementedError()") == len(cells_of("solution", source))
    assert "YOUR ANSWER HERE" in text
    # the visible tests stay, so learners can check their work
    assert len(cells_of("test", student)) == len(cells_of("test", source))
    assert "check.not_mistaken" in text


def autograded_points(course: Path, student: str) -> tuple[float, float]:
    autograde(MODULE, student, course_root=course)
    return score(MODULE, student, part="autograded", course_root=course)


def test_solution_gets_every_autograded_point_and_a_blank_gets_none(course):
    source = nbformat.read(SOURCE, as_version=4)
    max_points = float(sum(nbgrader_meta(c)["points"] for c in cells_of("test", source)))
    submit(MODULE, "solver", SOURCE, course_root=course)
    submit(MODULE, "blank", course_root=course)
    assert autograded_points(course, "solver") == (max_points, max_points)
    assert autograded_points(course, "blank") == (0.0, max_points)


def test_mistakes_are_named_by_visible_tests_or_caught_by_hidden_ones(course, tmp_path):
    """Mean instead of median fails the visible test with advice; a slightly wrong share passes the
    visible checks and only the hidden test catches it."""
    nb = nbformat.read(SOURCE, as_version=4)
    by_id = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    median_cell, sla_cell = by_id["median-by-type"], by_id["sla-share"]
    assert '["days_to_close"].median()' in median_cell.source
    median_cell.source = median_cell.source.replace('["days_to_close"].median()', '["days_to_close"].mean()')
    sla_cell.source = sla_cell.source.replace("### END SOLUTION", "share_within_sla *= 0.99\n### END SOLUTION")
    submission = tmp_path / f"{MODULE}.ipynb"
    nbformat.write(nb, submission)
    submit(MODULE, "mixed", submission, course_root=course)

    points, max_points = autograded_points(course, "mixed")
    lost = sum(nbgrader_meta(by_id[g])["points"] for g in ("median-days-to-close", "share-within-sla"))
    assert (points, max_points) == (max_points - lost, max_points)
    graded = nbformat.read(course / "grading" / "autograded" / "mixed" / MODULE / f"{MODULE}.ipynb", as_version=4)
    errors = {
        nbgrader_meta(c).get("grade_id"): o for c in graded.cells for o in c.get("outputs", []) if o.output_type == "error"
    }
    assert set(errors) == {"median-days-to-close", "share-within-sla"}
    assert "that is the mean" in errors["median-days-to-close"]["evalue"]
    assert "share_within_sla" in errors["share-within-sla"]["evalue"]  # from the hidden comparison


def test_a_backlog_of_the_period_only_is_named(course, tmp_path):
    """metrics.yml: the backlog is every request open at the as-of date, whatever its creation date; counting
    only the period's open requests fails the visible test with advice, and only that test."""
    nb = nbformat.read(SOURCE, as_version=4)
    by_id = {nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    cell = by_id["backlog"]
    solution = 'still_open = every_request[every_request["status"].isin(["Open", "In Progress"]) & ~every_request["is_duplicate"]]'
    assert solution in cell.source
    cell.source = cell.source.replace(solution, solution.replace("every_request", "requests"))
    submission = tmp_path / f"{MODULE}.ipynb"
    nbformat.write(nb, submission)
    submit(MODULE, "period-only", submission, course_root=course)
    points, max_points = autograded_points(course, "period-only")
    assert points == max_points - nbgrader_meta(by_id["backlog-age-buckets"])["points"]
    graded = nbformat.read(course / "grading" / "autograded" / "period-only" / MODULE / f"{MODULE}.ipynb", as_version=4)
    errors = {nbgrader_meta(c).get("grade_id"): o["evalue"] for c in graded.cells for o in c.get("outputs", [])
              if o.output_type == "error"}  # fmt: skip
    assert set(errors) == {"backlog-age-buckets"}
    assert "whatever its creation date" in errors["backlog-age-buckets"]


@pytest.mark.realdata
@pytest.mark.parametrize("sample", ["sf", "baltimore"])
def test_runs_as_a_report_on_a_real_sample(tmp_path, monkeypatch, sample):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path / "home"))
    name = import_real_sample(tmp_path / "home", sample)
    page = check_production_run("04-time-to-close", {"dataset": name, "period": None}, tmp_path / "out")
    requests, con = real_sample_sql(name)
    busiest, closed, median = con.execute(
        f"SELECT request_type, count(*) AS n, median(epoch(closed_at - created_at) / 86400) FROM {requests} "
        f"WHERE {counted_for_time_to_close()} GROUP BY 1 ORDER BY n DESC LIMIT 1").fetchone()
    assert [str(closed), f"{median:.1f}"] in table_rows(page, busiest)
