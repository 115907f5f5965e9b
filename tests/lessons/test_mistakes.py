"""The mistake catalogues (curriculum/mistakes/NN-slug.yml): every catalogued wrong answer fails the
visible check after its exercise with the catalogued advice, and every catalogued correct alternative
passes it, in the student version (hidden tests removed) on the default parameters.

One kernel per module: the notebook runs cell by cell; at each catalogued exercise each variant replaces
the solution's body and the visible checks up to the next exercise run after it; then the real solution
runs, and the notebook goes on. A variant starts without the names the solution assigns (as a learner
who has not yet answered) and the names it rebinds are restored after it. A mistake may also be stopped
by the library itself: a citykit function that rejects its argument with a one-line CitykitError (rates
passed for counts) gives the advice before any check runs. The counts per module and the
run time are reported at the end of the session (tests/lessons/conftest.py).
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell
from notebook_helpers import by_grade_id, nbgrader_meta, source_notebook

from citykit.lessons.mistakes import (
    MIN_MISTAKES,
    SOLUTION,
    Catalogue,
    catalogued_modules,
    code_exercises,
    load_catalogue,
    problems,
    with_body,
)

MODULES = catalogued_modules()
# what a learner must never read in a check's message: scientific notation, pandas' own words, a traceback
SCIENTIFIC = re.compile(r"\d(?:\.\d+)?e[+-]?\d", re.I)
# pandas' own words; `.dtypes`, which the lessons teach, is allowed, `dtype` alone is not
INTERNALS = re.compile(
    r"Categorical|setitem|(?<![.\w])dtype\b|DType|Index\(|Traceback|numpy\.|pandas\.core|object of type"
)


def in_group(module: str, **kwargs) -> pytest.param:
    return pytest.param(module, marks=pytest.mark.xdist_group(module), id=module, **kwargs)


def message_problems(message: str) -> list[str]:
    """Why a check's message is not fit for a learner (empty when it is)."""
    found = [f"scientific notation ({m[0]!r})" for m in SCIENTIFIC.finditer(message)]
    return found + [f"pandas internals ({m[0]!r})" for m in INTERNALS.finditer(message)]


def _assigned(code: str) -> set[str]:
    """Top-level names a piece of code binds (assignments, imports, for-loops, with ... as)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def student_with_solutions(course: Path, module: str) -> nbformat.NotebookNode:
    """The released notebook (hidden tests removed), with the source's solutions in the answer cells."""
    release = nbformat.read(course / "grading" / "release" / module / f"{module}.ipynb", as_version=4)
    solutions = by_grade_id(nbformat.read(source_notebook(module), as_version=4))
    for cell in release.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if cell.cell_type == "code" and grade_id in solutions and nbgrader_meta(cell).get("solution"):
            cell.source = solutions[grade_id].source
    return release


def visible_checks(nb, index: int, exercises: set[str]) -> list[int]:
    """Indices of the check cells after the solution cell at `index`, up to the next exercise."""
    found = []
    for j in range(index + 1, len(nb.cells)):
        cell = nb.cells[j]
        if nbgrader_meta(cell).get("grade_id") in exercises:
            break
        if cell.cell_type == "code" and (
            (nbgrader_meta(cell).get("grade") and not nbgrader_meta(cell).get("solution"))
            or "check." in cell.source
            or re.search(r"^\s*assert\b", cell.source, re.M)
        ):
            found.append(j)
    return found


class Kernel:
    """One kernel running a notebook's cells (and variants of them) in turn."""

    def __init__(self, nb, cwd: Path) -> None:
        from nbclient import NotebookClient

        self.nb = nb
        self.client = NotebookClient(
            nb, timeout=600, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(cwd)}}
        )

    def run(self, source: str, index: int) -> tuple[str, str] | None:
        """Run `source`; (ename, evalue) of its error, or None."""
        cell = new_code_cell(source)
        self.client.execute_cell(cell, index)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        return (errors[0].ename, errors[0].evalue) if errors else None


def run_catalogue(catalogue: Catalogue, nb, cwd: Path) -> list[str]:
    """Run the notebook with every variant of `catalogue`; what went wrong (empty when all is well)."""
    exercises = set(code_exercises(nb))
    kernel, failures = Kernel(nb, cwd), []
    with kernel.client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id in catalogue.exercises:
                checks = "\n".join(nb.cells[j].source for j in visible_checks(nb, index, exercises))
                assert checks, f"{grade_id}: no visible check follows the exercise"
                solution_names = _assigned(SOLUTION.search(cell.source)[2])
                exercise = catalogue.exercises[grade_id]
                for variant in (*exercise.mistakes, *exercise.alternatives):
                    failures += run_variant(
                        kernel, index, f"{grade_id}/{variant.name}", cell.source, variant, checks, solution_names
                    )
            error = kernel.run(cell.source, index)
            if error:
                failures.append(
                    f"cell {index} ({grade_id or 'unnamed'}) fails with the solution: {error[0]}: {error[1]}"
                )
                break
    return failures


def run_variant(
    kernel: Kernel, index: int, where: str, solution: str, variant, checks: str, solution_names: set[str]
) -> list[str]:
    """Run one variant of the solution at `index` and the checks after it; what went wrong."""
    names = sorted(solution_names | _assigned(variant.code))
    kernel.run(
        f"_variant_saved = {{n: globals()[n] for n in {names!r} if n in globals()}}\n"
        f"for _n in {sorted(solution_names)!r}:\n    globals().pop(_n, None)",
        index,
    )
    try:
        failed = kernel.run(with_body(solution, variant.code), index)
        if failed and not (variant.advice and failed[0] == "CitykitError"):
            return [f"{where}: the code itself fails, before any check: {failed[0]}: {failed[1]}"]
        failed = failed or kernel.run(checks, index)
    finally:
        kernel.run(
            f"for _n in {names!r}:\n    globals().pop(_n, None)\nglobals().update(_variant_saved)\ndel _variant_saved",
            index,
        )
    if not variant.advice:  # an alternative: correct, so the checks pass
        return [f"{where}: a correct alternative fails the checks: {failed[0]}: {failed[1]}"] if failed else []
    if failed is None:
        return [f"{where}: the mistake passes the visible checks ({variant.why})"]
    ename, message = failed
    found = []
    if ename not in ("AssertionError", "CitykitError"):
        found.append(f"{where}: the checks crash with {ename}: {message}")
    elif variant.advice.casefold() not in message.casefold():
        found.append(f"{where}: the advice does not say {variant.advice!r}: {message}")
    found += [f"{where}: {p} in: {message}" for p in message_problems(message)]
    return found


@pytest.mark.parametrize("module", [in_group(m) for m in MODULES])
def test_catalogue_names_the_modules_code_exercises(module):
    nb = nbformat.read(source_notebook(module), as_version=4)
    catalogue = load_catalogue(module)
    assert problems(catalogue, nb) == []
    for exercise in catalogue.exercises.values():
        for variant in (*exercise.mistakes, *exercise.alternatives):
            compile(variant.code, f"{module}:{exercise.grade_id}/{variant.name}", "exec")  # SyntaxError fails


@pytest.mark.slow
@pytest.mark.parametrize("module", [in_group(m) for m in MODULES])
def test_catalogued_mistakes_fail_the_visible_checks_with_their_advice(graded_course_of, module, record_property):
    catalogue = load_catalogue(module)
    course = graded_course_of(module)
    nb = student_with_solutions(course, module)
    started = time.perf_counter()
    failures = run_catalogue(catalogue, nb, course / "notebooks" / module)
    seconds = time.perf_counter() - started
    record_property(
        "mistake_catalogue",
        {
            "module": module,
            "mistakes": catalogue.n_mistakes,
            "alternatives": catalogue.n_alternatives,
            "seconds": round(seconds, 1),
        },
    )
    assert not failures, f"{module}: {len(failures)} problem(s):\n" + "\n".join(failures)


# -- the loader and the checker of the catalogue files themselves -----------------------------------

NB = {
    "cells": [
        {"cell_type": "code", "source": "### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
         "metadata": {"nbgrader": {"grade_id": "ex", "solution": True, "grade": False}}},
        {"cell_type": "code", "source": "assert x == 1",
         "metadata": {"nbgrader": {"grade_id": "ex-test", "solution": False, "grade": True}}},
        {"cell_type": "markdown", "source": "answer",
         "metadata": {"nbgrader": {"grade_id": "written", "solution": True, "grade": True}}},
    ]
}  # fmt: skip


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "99-test.yml"
    path.write_text(text, encoding="utf-8")
    return path


MISTAKE = "      - {name: m%d, why: w, code: 'x = %d', advice: a}\n"


def test_problems_name_unknown_ids_written_answers_and_too_few_mistakes(tmp_path):
    three = "".join(MISTAKE % (i, i) for i in range(MIN_MISTAKES))
    ok = load_catalogue("99-test", _write(tmp_path, f"exercises:\n  ex:\n    mistakes:\n{three}"))
    assert problems(ok, NB) == [] and ok.n_mistakes == MIN_MISTAKES and ok.n_alternatives == 0
    few = load_catalogue("99-test", _write(tmp_path, f"exercises:\n  ex:\n    mistakes:\n{MISTAKE % (0, 0)}"))
    assert problems(few, NB) == [f"ex: 1 catalogued mistake(s); every code exercise needs {MIN_MISTAKES}"]
    wrong = load_catalogue("99-test", _write(tmp_path, "exercises:\n  ex-test: {}\n  written: {}\n  nope: {}\n"))
    found = problems(wrong, NB)
    assert any(p.startswith("ex-test: not a code exercise") for p in found)
    assert any(p.startswith("written: not a code exercise") for p in found)
    assert any(p.startswith("nope: no cell") for p in found)
    assert any(p.startswith("ex: 0 catalogued") for p in found)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("exercises:\n  ex:\n    mistakes:\n      - {name: m, code: 'x = 2', advice: a}\n", "missing why"),
        ("exercises:\n  ex:\n    mistakes:\n      - {name: m, why: w, code: 'x = 2'}\n", "missing advice"),
        ("exercises:\n  ex:\n    alternatives:\n      - {name: m}\n", "missing code"),
        ("exercises:\n  ex:\n    mistake: []\n", "takes only"),
        ("exercises:\n  ex:\n    mistakes:\n      - {name: m, why: w, code: c, advice: a, hint: h}\n", "unknown key"),
        (f"exercises:\n  ex:\n    mistakes:\n{MISTAKE % (1, 1)}{MISTAKE % (1, 2)}", "two entries are named 'm1'"),
        ("exercise: {}\n", "expected a mapping 'exercises'"),
        ("exercises:\n  ex:\n    mistakes:\n      - why: > 5 is wrong\n", "not valid YAML (line 4)"),
    ],
)
def test_load_catalogue_rejects_malformed_entries(tmp_path, text, says):
    from citykit.errors import CitykitError

    with pytest.raises(CitykitError, match=re.escape(says)):
        load_catalogue("99-test", _write(tmp_path, text))


def test_with_body_replaces_only_the_code_between_the_markers():
    source = "# kept\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n# after"
    assert with_body(source, "x = 2") == "# kept\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION\n# after"
    assert _assigned("a, b = 1, 2\nfor c in []: pass\nimport numpy as np\nd[0] = 1") == {"a", "b", "c", "np"}


def test_message_problems_spot_scientific_notation_and_pandas_internals():
    assert message_problems("Your total is 227,305; expected a share like 79.0%.") == []
    assert message_problems("Your total is 5e+05") and message_problems("value 2.3E-7 found")
    assert message_problems("Cannot setitem on a Categorical with a new category (0)")
    assert message_problems("Name: count, dtype: int64") and not message_problems("check requests.dtypes")
