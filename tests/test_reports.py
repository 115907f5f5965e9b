"""The production-run contract and the report runner (papermill, HTML without code, atomic output)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from citykit import paths
from citykit.errors import CitykitError, WorkFailed
from citykit.production import ProductionContract, apply_contract, lesson_only_reason, source_index
from citykit.reports import find_module_notebook, run_report

MODULE = "04-time-to-close"
SOURCE = paths.notebooks_dir() / MODULE / f"{MODULE}.ipynb"
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def nbg(grade: bool, solution: bool, task: bool = False) -> dict:
    return {"nbgrader": {"grade": grade, "solution": solution, "task": task, "locked": False,
                         "grade_id": f"g{grade}{solution}{task}", "schema_version": 3}}


# ------------------------------------------------------------------ the contract


def test_contract_removes_tests_answers_tasks_and_training_cells():
    cells = [
        new_code_cell("x = 1", metadata={"tags": ["parameters"]}),  # 0 kept
        new_code_cell("### BEGIN SOLUTION\ny = x\n### END SOLUTION", metadata=nbg(False, True)),  # 1 kept
        new_code_cell("assert y == 1", metadata=nbg(True, False)),  # 2 test
        new_markdown_cell("My answer", metadata=nbg(True, True)),  # 3 manually graded answer
        new_markdown_cell("Describe the data", metadata=nbg(False, False, task=True)),  # 4 task
        new_markdown_cell("### Exercise", metadata={"tags": ["training"]}),  # 5 lesson-only
        new_markdown_cell("For readers"),  # 6 kept
        new_code_cell("print(y)", metadata={"nbgrader": {"grade": False, "solution": False, "locked": True}}),  # 7
    ]
    nb = new_notebook(cells=cells)
    kept = apply_contract(nb)
    assert [c.source for c in kept.cells] == ["x = 1", cells[1].source, "For readers", "print(y)"]
    assert [source_index(c) for c in kept.cells] == [0, 1, 6, 7]
    assert len(nb.cells) == 8 and "citykit" not in nb.cells[0].metadata  # the input is untouched
    _, resources = ProductionContract().preprocess(nbformat.from_dict(nb), {})
    reasons = dict(resources["citykit"]["removed_cells"])
    assert reasons == {2: "nbgrader test", 3: "manually graded answer", 4: "nbgrader task", 5: "tagged 'training'"}
    assert lesson_only_reason(new_code_cell("z = 2")) is None


def test_module_lookup_by_slug_or_folder():
    assert find_module_notebook("time-to-close") == SOURCE
    assert find_module_notebook(MODULE) == SOURCE
    with pytest.raises(CitykitError, match=r"unknown module 'no-such-module'; modules: .*04-time-to-close"):
        find_module_notebook("no-such-module")


# ------------------------------------------------------------------ running reports


@pytest.mark.slow
def test_module_04_runs_as_a_report_for_one_neighborhood(riverton, tmp_path):
    table = riverton.table_path("service_requests").as_posix()
    neighborhood = duckdb.execute(f"SELECT min(neighborhood) FROM read_parquet('{table}')").fetchone()[0]
    expected_requests = duckdb.execute(
        f"SELECT count(*) FROM read_parquet('{table}') WHERE neighborhood = ? "
        "AND created_at >= DATE '2025-01-01' AND created_at < DATE '2026-01-01'",
        [neighborhood],
    ).fetchone()[0]

    result = run_report("time-to-close", {"neighborhood": neighborhood}, tmp_path)
    assert result.notebook == tmp_path / f"{MODULE}.ipynb" and result.html == tmp_path / f"{MODULE}.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{MODULE}.html", f"{MODULE}.ipynb"]

    executed = nbformat.read(result.notebook, as_version=4)
    assert executed.metadata.papermill.parameters == {"neighborhood": neighborhood}
    assert not any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))
    assert not any(c.metadata.get("nbgrader", {}).get("grade") for c in executed.cells)
    outputs = "\n".join(str(o.get("data", {}).get("text/markdown", "")) for c in executed.cells for o in c.get("outputs", []))
    assert f"**Requests:** {expected_requests:,}" in outputs and neighborhood in outputs

    page = re.sub(r"<style.*?</style>", "", result.html.read_text(encoding="utf-8"), flags=re.S)  # body, not CSS
    assert "data:image/png;base64" in page  # the chart
    assert "jp-CodeMirrorEditor" not in page and 'class="highlight' not in page  # no code
    input_areas = re.findall(r'<div class="jp-InputArea[^"]*">\s*<div class="([^"]*)"', page)
    assert input_areas and all("jp-RenderedMarkdown" in classes for classes in input_areas)  # narrative only
    assert "jp-InputPrompt" not in page and "jp-OutputPrompt" not in page
    source = nbformat.read(SOURCE, as_version=4)
    removed = [c for c in source.cells if lesson_only_reason(c)]
    for cell in removed:  # no test code, no written answer, no lesson text
        first_line = next(line for line in cell.source.splitlines() if line.strip()).lstrip("#> ").strip()
        assert first_line not in page and html.escape(first_line) not in page, first_line
    for text in ("BEGIN SOLUTION", "read_parquet", "check.", "YOUR CODE", "Exercise"):
        assert text not in page
    assert "About these figures" in page


def tiny_notebook(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells), metadata=KERNEL)


@pytest.mark.slow
def test_a_failing_report_names_its_cell_and_keeps_the_previous_report(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = tiny_notebook(
        new_code_cell("divisor = 2", metadata={"tags": ["parameters"]}),
        new_code_cell("print(10 / divisor)"),
    )
    bad = tiny_notebook(
        new_markdown_cell("lesson only", metadata={"tags": ["training"]}),
        new_code_cell("divisor = 2", metadata={"tags": ["parameters"]}),
        new_code_cell("half = divisor / 2"),
        new_code_cell("print(10 / divisor)"),
    )
    nbformat.write(good, tmp_path / "good" / "daily.ipynb")
    nbformat.write(bad, tmp_path / "bad" / "daily.ipynb")

    first = run_report(tmp_path / "good" / "daily.ipynb", {"divisor": 4}, out)
    executed = nbformat.read(first.notebook, as_version=4)
    assert executed.cells[-1].outputs[0].text.strip() == "2.5"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"daily.ipynb", "daily.html"}

    with pytest.raises(WorkFailed, match=r"report daily failed: cell 3 raised ZeroDivisionError: division by zero"):
        run_report(tmp_path / "bad" / "daily.ipynb", {"divisor": 0}, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # intact, no staging left behind


def test_missing_notebook_path_is_bad_input(tmp_path):
    with pytest.raises(CitykitError, match="no notebook at"):
        run_report(tmp_path / "nope.ipynb", {}, tmp_path)
