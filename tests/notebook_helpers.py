"""Helpers shared by the module tests (tests/test_module*.py): nbgrader cells, grading a copy of
the course, injecting a learner's mistake, and reading which test cells failed with what advice.

A plain module (not a conftest): import what you need, e.g.
`from notebook_helpers import cells_of, graded_course, submit_with_mistakes`.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from citykit import paths
from citykit.grading.assignments import generate, score, submit
from citykit.grading.autograde import autograde

REALDATA = paths.course_root().parent / "shared" / "realdata"
SF_SAMPLE = REALDATA / "san_francisco" / "311_service_requests.csv"


def source_notebook(module: str) -> Path:
    """notebooks/NN-slug/NN-slug.ipynb for a folder name such as `05-performance-measures`."""
    return paths.notebooks_dir() / module / f"{module}.ipynb"


def nbg(grade_id, *, grade=False, solution=False, locked=False, points=None) -> dict:
    """Cell metadata as nbgrader writes it (for notebooks a test builds)."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}  # fmt: skip
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def cells_of(kind: str, nb) -> list:
    """kind: 'test' (autograded), 'solution' (code to write) or 'manual' (written answers)."""
    picks = {
        "test": lambda m: m.get("grade") and not m.get("solution"),
        "solution": lambda m: m.get("solution") and not m.get("grade"),
        "manual": lambda m: m.get("grade") and m.get("solution"),
    }[kind]
    return [cell for cell in nb.cells if picks(nbgrader_meta(cell))]


def solution_lines(nb) -> list[str]:
    lines = []
    for cell in cells_of("solution", nb):
        body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
        assert body, f"solution cell {nbgrader_meta(cell)['grade_id']} lacks its markers"
        # the statements that compute answers (visible tests may reuse short expressions)
        lines += [line.strip() for line in body[1].splitlines() if re.match(r"[\w\[\]\"]+ = ", line.strip())]
    return lines


def by_grade_id(nb) -> dict:
    return {nbgrader_meta(c).get("grade_id"): c for c in nb.cells if nbgrader_meta(c).get("grade_id")}


def max_points(nb) -> float:
    return float(sum(nbgrader_meta(c)["points"] for c in cells_of("test", nb)))


def answered(released: nbformat.NotebookNode, answers: dict[str, str], extra: str = "") -> nbformat.NotebookNode:
    """A copy of the released notebook with the cells of `answers` (by grade_id) replaced, `extra` appended."""
    nb = nbformat.from_dict(json.loads(json.dumps(released)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    if extra:
        nb.cells.append(new_code_cell(extra))
    return nb


def write_module_source(root: Path, module: str, cells: list) -> Path:
    """Write `cells` as the source notebook of `module` in the course at `root` (python3 kernel)."""
    path = root / "notebooks" / module / f"{module}.ipynb"
    path.parent.mkdir(parents=True)
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(new_notebook(cells=cells, metadata=kernel), path)
    return path


def graded_course(root: Path, module: str) -> Path:
    """A copy of the course at `root` holding one module, with its student version generated."""
    shutil.copytree(source_notebook(module).parent, root / "notebooks" / module)
    generate(module, course_root=root)
    return root


def autograded_points(course: Path, module: str, student: str) -> tuple[float, float]:
    autograde(module, student, course_root=course)
    return score(module, student, part="autograded", course_root=course)


def failed_tests(course: Path, module: str, student: str) -> dict[str, str]:
    """grade_id -> error message, for the test cells that failed in an autograded submission."""
    graded = nbformat.read(course / "grading" / "autograded" / student / module / f"{module}.ipynb", as_version=4)
    return {
        nbgrader_meta(c).get("grade_id"): f"{o.get('ename')}: {o.get('evalue')}"
        for c in graded.cells
        for o in c.get("outputs", [])
        if o.output_type == "error" and nbgrader_meta(c).get("grade")
    }


def with_mistakes(module: str, edits: dict[str, tuple[str, str]]) -> nbformat.NotebookNode:
    """The solution notebook with learners' mistakes injected: grade_id -> (old text, new text)."""
    nb = nbformat.read(source_notebook(module), as_version=4)
    cells = by_grade_id(nb)
    for grade_id, (old, new) in edits.items():
        cell = cells[grade_id]
        assert old in cell.source, f"{grade_id}: {old!r} not in the solution"
        cell.source = cell.source.replace(old, new)
    return nb


def submit_notebook(course: Path, module: str, student: str, nb, tmp_path: Path) -> None:
    submission = tmp_path / student / f"{module}.ipynb"
    submission.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, submission)
    submit(module, student, submission, course_root=course)


def report_html_has_no_code(html: str, nb) -> None:
    """No solution statement of the notebook appears in a report's HTML."""
    for line in solution_lines(nb):
        assert line not in html, f"the report shows code: {line!r}"
    assert "BEGIN SOLUTION" not in html and "YOUR CODE HERE" not in html


# -- checks shared by every module's test file ---------------------------------------------------


def check_hidden_tests(grade_id: str, source: str) -> None:
    """A test cell's hidden tests compute the expected answer by the reference route: SQL against
    `citykit.lessons.reference` views (`_reference.connect`), which state which requests count once,
    from metrics.yml. Not the learner's tools (`citykit.load`, `check.ADVICE`, equity/quality functions,
    the notebook's `con`), not their own parquet reading, no pasted numbers, and no exclusion rule
    written by hand (the flags, duplicates and statuses metrics.yml names)."""
    from citykit.lessons.reference import standard

    hidden = re.search(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", source, re.S)
    assert hidden, f"{grade_id}: no hidden tests"
    code = hidden[1]
    assert "from citykit.lessons import reference as _reference" in code and "_reference.connect(" in code, (
        f"{grade_id}: hidden tests must query the data through _reference.connect"
    )
    for forbidden in ("citykit.load", "check.ADVICE", "read_parquet", "import duckdb"):
        assert forbidden not in code, f"{grade_id}: hidden test uses {forbidden}"
    assert not re.search(r"\b(?:equity|quality)\.(?!yml\b)\w", code), f"{grade_id}: hidden test uses a library function"
    assert not re.search(r"\bcon\.", code), f"{grade_id}: hidden test uses the notebook's connection"
    assert not re.search(r"==\s*-?(?:\d+\.\d+|\d{2,})\b", code), f"{grade_id}: a pasted number"
    assert not re.search(r"close_to\([^,()]+,\s*-?\d", code), f"{grade_id}: a pasted number"
    rules = standard("metrics.yml")["time_to_close"]["exclude"]
    for rule in [*rules.get("flags", []), "is_duplicate"]:
        assert rule not in code, (
            f"{grade_id}: hidden test writes the exclusion rule by hand ({rule}); use the counted view"
        )
    assert not re.search(r"""status\s*(?:=|IN)\s*\(?\s*'|\["status"\]\.(?:eq|isin)\(""", code), (
        f"{grade_id}: hidden test selects statuses by hand; use the counted or backlog view"
    )


def check_conventions(module: str, parameter_names: tuple[str, ...] = ("dataset", "period")) -> None:
    """The source notebook follows the course conventions, and course.yml describes it."""
    from citykit.lessons.course import find_module

    nb = nbformat.read(source_notebook(module), as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    for name in parameter_names:
        assert re.search(rf"^{name} = ", parameters[0].source, re.M), f"no parameter {name}"
    assert re.search(r'^dataset = "riverton"', parameters[0].source, re.M)
    tests = cells_of("test", nb)
    assert len(tests) >= 3
    objectives = next(c.source for c in nb.cells if "**Objectives**" in c.source)
    entry = find_module(module)
    assert {p.name for p in entry.parameters} >= set(parameter_names)
    for cell in tests:
        grade_id = nbgrader_meta(cell)["grade_id"]
        assert f"`{grade_id}`" in objectives, f"test {grade_id} names no objective"
        assert entry.assessments.get(grade_id) in entry.objectives, f"course.yml: {grade_id} assesses no objective"
        check_hidden_tests(grade_id, cell.source)
        assert nbgrader_meta(cell)["points"] > 0
    manual = cells_of("manual", nb)
    assert manual and all(c.cell_type == "markdown" for c in manual)
    for cell in manual:
        assert entry.assessments.get(nbgrader_meta(cell)["grade_id"]) in entry.objectives
    assert 45 <= entry.minutes <= 120  # estimated from the text (tests/lessons/test_estimate.py)
    assert "Keypoints" in next(c.source for c in reversed(nb.cells) if "training" in c.metadata.get("tags", []))
    for cell in nb.cells:  # every chart has a title and axis labels
        if cell.cell_type == "code" and "plt.subplots" in cell.source:
            assert all(call in cell.source for call in ("set_title(", "set_xlabel(", "set_ylabel("))


def check_student_version(course: Path, module: str) -> None:
    """The released notebook has no solutions or hidden tests, but keeps the visible tests."""
    source = nbformat.read(source_notebook(module), as_version=4)
    student = nbformat.read(course / "grading" / "release" / module / f"{module}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "read_parquet" not in text
    statements = solution_lines(source)
    assert len(statements) >= 3
    assert [line for line in statements if line in text] == []
    assert text.count("raise NotImplementedError()") == len(cells_of("solution", source))
    assert "YOUR ANSWER HERE" in text
    assert len(cells_of("test", student)) == len(cells_of("test", source))
    assert "check." in text


def check_full_marks_and_blank(course: Path, module: str) -> None:
    """The solution scores every autograded point; the untouched student version scores none."""
    most = max_points(nbformat.read(source_notebook(module), as_version=4))
    submit(module, "solver", source_notebook(module), course_root=course)
    submit(module, "blank", course_root=course)
    assert autograded_points(course, module, "solver") == (most, most)
    assert autograded_points(course, module, "blank") == (0.0, most)


def check_named_mistakes(
    course: Path,
    module: str,
    tmp_path: Path,
    edits: dict[str, tuple[str, str]],
    advice: dict[str, str],
    student: str = "mistaken",
) -> dict[str, str]:
    """Submit the solution with `edits` (solution grade_id -> (old, new)); every test cell in
    `advice` (test grade_id -> words its message must contain) fails with those words, and no
    other test cell fails. Returns the failures."""
    submit_notebook(course, module, student, with_mistakes(module, edits), tmp_path)
    points, most = autograded_points(course, module, student)
    source = by_grade_id(nbformat.read(source_notebook(module), as_version=4))
    lost = sum(nbgrader_meta(source[g])["points"] for g in advice)
    assert (points, most) == (most - lost, most)
    failures = failed_tests(course, module, student)
    assert set(failures) == set(advice), failures
    for grade_id, words in advice.items():
        assert words in failures[grade_id], f"{grade_id}: {failures[grade_id]!r} does not say {words!r}"
        assert failures[grade_id].startswith("AssertionError: Your "), failures[grade_id]
    return failures


def check_production_run(module: str, parameters: dict, out: Path) -> str:
    """Run under the production-run contract; no error, and HTML without code. Returns the HTML."""
    from citykit.reports.run import run_report

    result = run_report(module, parameters, out=out)
    html = result.html.read_text(encoding="utf-8")
    report_html_has_no_code(html, nbformat.read(source_notebook(module), as_version=4))
    assert "Traceback" not in html
    return html


def import_real_sample(home: Path, name: str = "sf") -> str:
    """Import a real sample into `home` (CITYKIT_HOME must point there); skip when absent."""
    import pytest

    try:
        from citykit.data.importers import import_requests
    except ImportError:
        pytest.skip("citykit.data.importers is not built yet")
    sample = {"sf": SF_SAMPLE, "baltimore": REALDATA / "baltimore" / "311_sample.csv"}[name]
    if not sample.exists():
        pytest.skip(f"real sample absent ({sample})")
    import_requests("auto", sample, name=name)
    return name


# the commands a report must name for a missing table (the CLI's own, spelled out here on purpose)
ADD_COMMANDS = {
    "neighborhoods": "citykit data import-population FILE --name {dataset}",
    "program_applications": "citykit data import-applications FILE --mapping MAPPING.yml --name {dataset}",
}


def check_left_out(page: str, dataset: str, tables: list[str]) -> None:
    """The report says plainly, once per missing table, what was left out and how to add it."""
    for table in tables:
        assert page.count(f"(the <code>{table}</code> table)") == 1, table
        command = ADD_COMMANDS[table].format(dataset=dataset)
        assert f"<code>{html.escape(command, quote=False)}</code>" in page, command


def table_rows(page: str, heading: str) -> list[list[str]]:
    """The data cells of each table row headed `heading` in the page (pandas tables, styled or not)."""
    rows = re.findall(rf"<th[^>]*>{re.escape(heading)}</th>(.*?)</tr>", page, re.S)
    cells = [[cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]
    return [row for row in cells if row]


def real_sample_sql(dataset: str) -> tuple[str, object]:
    """`read_parquet(...)` of an imported dataset's requests, and a DuckDB connection (an independent route)."""
    import duckdb

    from citykit.data import registry

    return f"read_parquet('{registry.get(dataset).table_path('service_requests').as_posix()}')", duckdb.connect()


def min_closed_to_compare() -> int:
    """How many closed requests a place's median must rest on to be compared (metrics.yml)."""
    from citykit.standards import load_metrics

    return int(load_metrics()["time_to_close"]["min_closed_to_compare"])


def counted_for_time_to_close() -> str:
    """SQL for requests that count in time to close, from the metric's own definition (metrics.yml)."""
    from citykit.standards import load_metrics

    rules = load_metrics()["time_to_close"]
    statuses = ", ".join(f"'{s}'" for s in rules["closed_statuses"])
    duplicates = ["NOT is_duplicate"] if rules["exclude"].get("duplicates") else []
    return " AND ".join([f"status IN ({statuses})", "closed_at IS NOT NULL", *duplicates,
                         *(f"NOT {flag}" for flag in rules["exclude"]["flags"])])  # fmt: skip


# -- headless Chromium (Debian's), for the browser tests ---------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-headless-shell")
# no sandbox as root, and no background traffic: the machine reaches no network but loopback
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
