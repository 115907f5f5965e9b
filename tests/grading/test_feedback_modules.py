"""Over every module: what a learner's feedback shows when a test fails.

Each module's solution runs in a kernel. At every test cell with hidden tests, this test reads the
values the hidden part computed (the expected answers: `_n`, `_expected`, ...), then makes the cell
fail twice, as a wrong answer would: once in its visible part (the first visible check gets a
false condition or a distorted answer) and once in its hidden part (the same, in the hidden lines).
The real error outputs go through `strip_hidden_tests`, as feedback does: the visible failure's
advice must be shown as written, and no hidden-computed value may appear in the hidden failure.
"""

from __future__ import annotations

import ast
import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from citykit import paths
from citykit.grading.feedback import strip_hidden_tests

pytestmark = pytest.mark.slow

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MODULES = sorted(p.name for p in paths.notebooks_dir().iterdir() if (p / f"{p.name}.ipynb").exists())

VALUES = r"""
import json as _json, numbers as _numbers
def _citykit_values(_names):
    import pandas as _pd
    found = []
    for _name in _names:
        _v = globals().get(_name)
        if isinstance(_v, (_pd.Series, _pd.DataFrame)):
            _flat = _v.to_numpy().ravel().tolist()[:300]
        elif isinstance(_v, (list, tuple)):
            _flat = list(_v)[:300]
        else:
            _flat = [_v]
        found += [float(x) for x in _flat if isinstance(x, _numbers.Number) and not isinstance(x, bool) and x == x]
    return found
print(_json.dumps(_citykit_values(%r)))
"""


def _lines(source: str) -> tuple[set[int], set[int]]:
    """(visible, hidden) line numbers of a test cell."""
    visible, hidden, inside = set(), set(), False
    for number, line in enumerate(source.splitlines(), 1):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        else:
            (hidden if inside else visible).add(number)
    return visible, hidden


def _break_first_check(source: str, lines: set[int]) -> str | None:
    """The cell's source with its first check on `lines` made to fail (line numbers kept): an
    `assert`'s condition becomes False, a `check.*(answer, ...)` call gets a distorted answer."""
    tree = ast.parse(source)
    targets = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) not in lines:
            continue
        if isinstance(node, ast.Assert):
            targets.append((node.lineno, node.col_offset, node.test, "assert"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "check" and node.args):  # fmt: skip
            targets.append((node.lineno, node.col_offset, node.args[0], "check"))
    if not targets:
        return None
    _, _, expr, kind = min(targets, key=lambda t: (t[0], t[1]))
    text = source.splitlines(keepends=True)

    def offset(line: int, col: int) -> int:  # ast columns count UTF-8 bytes
        return sum(len(x) for x in text[: line - 1]) + len(text[line - 1].encode()[:col].decode(errors="ignore"))

    start, end = offset(expr.lineno, expr.col_offset), offset(expr.end_lineno, expr.end_col_offset)
    original = source[start:end]
    padding = "\n" * original.count("\n")  # keep every line where it was
    replacement = f"(False{padding})" if kind == "assert" else f"(({original}) * 1.37 + 11{padding})"
    return source[:start] + replacement + source[end:]


def _numbers_as_written(value: float) -> set[str]:
    forms = set()
    if value == int(value):
        forms |= {str(int(value)), f"{int(value):,}"}
    else:
        forms |= {repr(value)} | {f"{value:.{d}f}" for d in (2, 3, 4)} | {f"{value:.{d}g}" for d in (3, 4)}
    return {f for f in forms if len(re.sub(r"\D", "", f)) >= 3}  # short numbers appear anywhere


@pytest.mark.parametrize("module", MODULES)
def test_feedback_keeps_visible_advice_and_never_shows_a_hidden_expected_value(module, riverton):
    from nbclient import NotebookClient

    source_path = paths.notebooks_dir() / module / f"{module}.ipynb"
    nb = nbformat.read(source_path, as_version=4)
    if not any(BEGIN in c.source for c in nb.cells if c.cell_type == "code"):
        pytest.skip(f"{module} has no hidden tests")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(source_path.parent)}})  # fmt: skip
    checked_hidden = checked_visible = 0
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if BEGIN not in cell.source:
                continue
            failed = [o for o in cell.outputs if o.output_type == "error"]
            assert not failed, f"{module}: the solution fails its own test: {failed[0].ename}: {failed[0].evalue}"
            visible, hidden = _lines(cell.source)
            assigned = sorted({n.id for node in ast.walk(ast.parse(cell.source)) if getattr(node, "lineno", 0) in hidden
                               and isinstance(node, ast.Assign) for t in node.targets for n in ast.walk(t)
                               if isinstance(n, ast.Name)})  # fmt: skip
            probe = new_code_cell(VALUES % (assigned,))
            client.execute_cell(probe, index)
            printed = "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream")
            expected = {form for v in json.loads(printed or "[]") for form in _numbers_as_written(v)}
            for part, lines in (("visible", visible), ("hidden", hidden)):
                broken = _break_first_check(cell.source, lines)
                if broken is None:
                    continue
                failing = new_code_cell(broken)
                client.execute_cell(failing, index)
                errors = [o for o in failing.outputs if o.output_type == "error"]
                if not errors:
                    continue
                graded = new_code_cell(cell.source, metadata=cell.metadata, outputs=errors)
                shown = strip_hidden_tests(new_notebook(cells=[graded]), cell_timeout=60).cells[0].outputs[0]
                text = f"{shown.evalue}\n{''.join(shown.traceback)}"
                raw = re.sub(r"\x1b\[[0-9;]*m", "", errors[0].evalue).strip()
                if part == "visible":
                    assert shown.evalue == raw, f"{module}: visible advice changed: {raw!r} -> {shown.evalue!r}"
                    checked_visible += 1
                else:
                    grade_id = cell.metadata["nbgrader"]["grade_id"]
                    assert f"`{grade_id}`" in shown.evalue, f"{module}: {shown.evalue!r} does not name the exercise"
                    leaked = sorted(form for form in expected if form in text)
                    assert not leaked, f"{module} `{grade_id}`: feedback shows hidden values {leaked}: {text!r}"
                    checked_hidden += 1
    assert checked_hidden > 0, f"{module}: no hidden check could be made to fail"
