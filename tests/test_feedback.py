"""Feedback without hidden tests: `citykit.grading.feedback.strip_hidden_tests` on graded notebooks."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from citykit.grading.feedback import HIDDEN_FAILED, HIDDEN_NOTE, strip_hidden_tests

HIDDEN = "assert abs(share - expected_share) < 1e-9"
ADVICE = "share_within_sla should be between 0 and 1: divide by the number of closed requests"


def graded_cell(source: str, *outputs, grade_id="share"):
    meta = {"nbgrader": {"grade": True, "grade_id": grade_id, "locked": True, "points": 2, "schema_version": 3,
                         "solution": False, "task": False}}  # fmt: skip
    return new_code_cell(source, metadata=meta, outputs=list(outputs))


def error(evalue: str, *traceback: str):
    return new_output("error", ename="AssertionError", evalue=evalue, traceback=list(traceback))


def graded_notebook():
    visible = f'assert 0 <= share <= 1, "{ADVICE}"'
    body = f"{visible}\n### BEGIN HIDDEN TESTS\nexpected_share = 0.25\n{HIDDEN}\n### END HIDDEN TESTS"
    cells = [
        new_code_cell("share = 1.5", outputs=[]),
        graded_cell(body, error(ADVICE, "\x1b[0;31m---\x1b[0m", f"----> 1 {visible}", f"AssertionError: {ADVICE}")),
        graded_cell(body, error("", "Traceback", f"----> 4 {HIDDEN}", "AssertionError: "), grade_id="share-2"),
        graded_cell(body, error(HIDDEN), new_output("stream", name="stdout", text=f"checking {HIDDEN}\n"), grade_id="share-3"),
    ]
    return new_notebook(cells=cells)


def test_hidden_source_and_tracebacks_are_removed_and_advice_kept():
    nb = strip_hidden_tests(graded_notebook())
    text = nbformat.writes(nb)
    assert HIDDEN not in text and "expected_share" not in text and "HIDDEN TESTS" not in text
    visible_failure, bare_assert, echoing = nb.cells[1:]
    assert visible_failure.source.endswith(HIDDEN_NOTE) and visible_failure.source.startswith("assert 0 <= share")
    assert visible_failure.outputs[0].evalue == ADVICE
    assert visible_failure.outputs[0].traceback == [f"AssertionError: {ADVICE}"]
    assert bare_assert.outputs[0].evalue == HIDDEN_FAILED
    assert echoing.outputs[0].evalue == HIDDEN_FAILED and "hidden" in echoing.outputs[1].text
    assert nb.cells[0].source == "share = 1.5"  # other cells untouched


def test_plain_nbgrader_output_would_show_the_hidden_test():
    """The reason for the function: the graded notebook nbgrader's feedback renders holds the test."""
    assert HIDDEN in nbformat.writes(graded_notebook())
