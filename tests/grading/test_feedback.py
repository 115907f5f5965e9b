"""Feedback without hidden tests: `citykit.grading.feedback.strip_hidden_tests` on graded notebooks.

Visible advice always reaches the learner; a hidden check names its exercise and its kind of mistake,
never its code or a value it computed."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from citykit.grading.feedback import HIDDEN_FAILED, HIDDEN_NOTE, strip_hidden_tests

ADVICE = (
    "Your median_days_by_type is 3.2 days above the median for Pothole (a mean? .mean()): that is the "
    "mean. Medians resist a few requests open for a year, so use .median()"
)
HIDDEN_MESSAGE = "Your closed table does not hold exactly the closed requests that count"
VISIBLE = f'check.same(median_days_by_type, name="median", advice={ADVICE!r})'
BODY = (f"{VISIBLE}\n"  # line 1
        "### BEGIN HIDDEN TESTS\n"  # line 2
        "_n = _db.sql('SELECT count(*) FROM counted').fetchone()[0]\n"  # line 3
        f"assert len(closed) == _n, f'expected {{_n}} closed requests, got {{len(closed)}}'\n"  # line 4
        f"assert abs(share - _share) < 1e-9, f'{HIDDEN_MESSAGE} (share {{share:.4f}}, expected about {{_share:.4f}})'\n"  # 5
        "assert (share > 0\n"  # line 6
        ")\n"  # line 7: a hidden line as short as `)`
        "### END HIDDEN TESTS")  # fmt: skip


def graded_cell(*outputs, grade_id="share", source=BODY):
    meta = {"nbgrader": {"grade": True, "grade_id": grade_id, "locked": True, "points": 2, "schema_version": 3,
                         "solution": False, "task": False}}  # fmt: skip
    return new_code_cell(source, metadata=meta, outputs=list(outputs))


def error(evalue: str, line: int, ename="AssertionError"):
    return new_output("error", ename=ename, evalue=evalue, traceback=[
        "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
        f"Cell \x1b[0;32mIn[7], line {line}\x1b[0m\n\x1b[0;32m----> {line}\x1b[0m {BODY.splitlines()[line - 1]}",
        f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])  # fmt: skip


def graded_notebook():
    cells = [
        new_code_cell("while True:\n    pass", outputs=[error("", 1, "KeyboardInterrupt")]),
        graded_cell(error(ADVICE, 1)),
        graded_cell(error("expected 227305 closed requests, got 1200", 4), grade_id="count"),
        graded_cell(error(f"{HIDDEN_MESSAGE} (share 0.8120, expected about 0.7904)", 5), grade_id="share-2"),
        graded_cell(error("", 6), new_output("stream", name="stdout", text="checking 0.7904\n"), grade_id="bare"),
    ]
    return new_notebook(cells=cells)


def test_visible_advice_is_kept_even_when_it_contains_a_hidden_line():
    nb = strip_hidden_tests(graded_notebook(), cell_timeout=30)
    visible = nb.cells[1]
    assert visible.outputs[0].evalue == ADVICE
    assert visible.outputs[0].traceback == [f"AssertionError: {ADVICE}"]
    assert visible.source.startswith("check.same(") and visible.source.endswith(HIDDEN_NOTE)


def test_hidden_checks_name_the_exercise_and_never_show_their_code_or_values():
    nb = strip_hidden_tests(graded_notebook(), cell_timeout=30)
    text = nbformat.writes(nb)
    for leaked in ("227305", "0.7904", "SELECT count", "_share", "HIDDEN TESTS", "1e-9"):
        assert leaked not in text, leaked
    count, share, bare = (c.outputs[0].evalue for c in nb.cells[2:])
    assert count == "A hidden check of `count` failed: expected … closed requests, got …"
    assert share == f"A hidden check of `share-2` failed: {HIDDEN_MESSAGE} (share …, expected about …)"
    assert bare == HIDDEN_FAILED.format(grade_id="bare")
    assert "hidden" in nb.cells[4].outputs[1].text


def test_a_timed_out_cell_says_so_in_plain_words():
    looping = strip_hidden_tests(graded_notebook(), cell_timeout=30).cells[0].outputs[0]
    assert looping.evalue.startswith("This cell ran longer than 30 s") and "KeyboardInterrupt" not in str(looping)


def test_plain_nbgrader_output_would_show_the_hidden_test():
    """The reason for the function: the graded notebook nbgrader's feedback renders holds the test."""
    text = nbformat.writes(graded_notebook())
    assert "SELECT count" in text and "227305" in text


def test_a_learners_html_is_inert_in_feedback():
    """Walk 18, F7: a written answer's <script>, <img onerror> and <iframe>, and HTML or script a
    learner's code displayed, went live into their feedback page."""
    from nbformat.v4 import new_markdown_cell

    from citykit.grading.safe_feedback import sanitize_notebook

    written = (
        'Waits <script>alert(1)</script> <img src="x" onerror="alert(2)"> <iframe src="/api"></iframe> <em>vary</em>'
    )
    shown = new_output("display_data", data={
        "text/html": '<table class="dataframe"><tr><td>1</td></tr></table><script>steal()</script>',
        "application/javascript": "steal()", "text/plain": "table",
        "image/svg+xml": '<svg><script>steal()</script></svg>'})  # fmt: skip
    only_script = new_output("display_data", data={"application/javascript": "steal()"})
    nb = new_notebook(cells=[new_markdown_cell(written), new_code_cell("show()", outputs=[shown, only_script]),
                             new_markdown_cell("plain text, a < b and > quoted")])  # fmt: skip
    sanitize_notebook(nb)
    text = nb.cells[0].source
    assert "<script>" not in text and "onerror" not in text and "<iframe" not in text and "<em>vary</em>" in text
    data = nb.cells[1].outputs[0].data
    assert set(data) == {"text/html", "text/plain"} and "<script>" not in data["text/html"]
    assert '<table class="dataframe"><tbody><tr><td>1</td></tr></tbody></table>' in data["text/html"]
    assert nb.cells[1].outputs[1].data == {"text/plain": "(output not shown)"}
    assert nb.cells[2].source == "plain text, a < b and > quoted"  # no HTML: left as written


def test_a_learner_not_autograded_is_named_and_their_older_page_removed(tmp_path, capsys):
    """Walk 18, F1: `grade feedback` skipped a learner whose resubmission could not be graded without a
    word, and left the page of their earlier submission in place."""
    from notebook_helpers import nbg, write_module_source

    from citykit.grading.assignments import generate, setup, submit
    from citykit.grading.feedback import feedback

    module = "01-sums"
    root = tmp_path / "course"
    write_module_source(root, module, [
        new_code_cell("### BEGIN SOLUTION\ntotal = 18\n### END SOLUTION", metadata=nbg("total", solution=True)),
        new_code_cell("assert total == 18", metadata=nbg("sum", grade=True, locked=True, points=2)),
    ])  # fmt: skip
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,first_name,last_name\nnever,N,Learner\n")
    setup("sums", roster, course_root=root)
    generate(module, course_root=root)
    submit(module, "never", course_root=root)
    older = root / "grading" / "feedback" / "never" / module / f"{module}.html"
    older.parent.mkdir(parents=True)
    older.write_text("<html>an earlier submission's feedback</html>")
    capsys.readouterr()
    assert feedback(module, course_root=root) == []
    said = capsys.readouterr().err
    assert f"no feedback for never: their submission of {module} is not autograded" in said
    assert not older.exists()
