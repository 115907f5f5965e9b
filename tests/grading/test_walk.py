"""From the instructor/learner walk of the cohort route: a learner fetches from a terminal
(`citykit grade fetch`), `collect` and `autograde` say what they did this time, and feedback says
"not answered yet" for a blank exercise and "not graded yet" for a written answer everywhere."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from notebook_helpers import nbg
from test_cohort import RIGHT, SUMS, answered, sums_source, write_roster

from citykit import paths
from citykit.cli import main
from citykit.grading.assignments import collect, exchange_submit, generate, release, setup
from citykit.grading.autograde import autograde_cohort
from citykit.grading.feedback import NOT_ANSWERED, feedback, strip_hidden_tests


def test_a_blank_exercise_says_not_answered_yet_and_explains_the_name_errors_once():
    stub = "# YOUR CODE HERE\nraise NotImplementedError()"
    trace = ["\x1b[0;31mNotImplementedError\x1b[0m                       Traceback (most recent call last)",
             "Cell \x1b[0;32mIn[2], line 2\x1b[0m\n\x1b[0;32m----> 2\x1b[0m raise NotImplementedError()"]  # fmt: skip

    def name_error(name):
        return new_output("error", ename="NameError", evalue=f"name '{name}' is not defined",
                          traceback=["Cell In[3], line 1\n----> 1 print(total)", f"NameError: name '{name}' ..."])  # fmt: skip

    cells = [
        new_code_cell("values = [3, 4]"),
        new_code_cell(stub, metadata=nbg("total", solution=True),
                      outputs=[new_output("error", ename="NotImplementedError", evalue="", traceback=trace)]),
        new_code_cell("assert total == 7", metadata=nbg("sum-of-values", grade=True, locked=True, points=2),
                      outputs=[name_error("total")]),
        new_code_cell("print(total / 2)", outputs=[name_error("total")]),
    ]  # fmt: skip
    nb = strip_hidden_tests(new_notebook(cells=cells))
    blank = nb.cells[1].outputs[0]
    assert blank.evalue == NOT_ANSWERED.format(grade_id="total") and blank.traceback == [blank.evalue]
    assert "Traceback" not in json.dumps(nb)
    first, later = nb.cells[2].outputs[0].evalue, nb.cells[3].outputs[0].evalue
    assert "follows from the exercise `total` above, not answered yet" in first and "Answer it" in first
    assert later == "name 'total' is not defined (follows from the exercise `total` above, not answered yet)"


@pytest.fixture(scope="module")
def course(tmp_path_factory, riverton):
    tmp = tmp_path_factory.mktemp("walk")
    root = tmp / "course"
    (root / "notebooks" / SUMS).mkdir(parents=True)
    nbformat.write(sums_source(), root / "notebooks" / SUMS / f"{SUMS}.ipynb")
    (root / "notebooks" / "02-other").mkdir()
    nbformat.write(sums_source(), root / "notebooks" / "02-other" / "02-other.ipynb")
    setup("spring", write_roster(tmp / "roster.csv", ["ana", "ben", "cy"]), course_root=root)
    generate(None, course_root=root)
    release(SUMS, course_root=root)
    return root


def test_a_learner_fetches_from_a_terminal_then_submits(course, capsys, monkeypatch):
    monkeypatch.setenv("CITYKIT_COURSE", str(course))
    monkeypatch.setattr(paths, "course_root", lambda: course)
    assert main(["grade", "submit", "sums", "--student", "ana"]) == 2
    assert "citykit grade fetch sums --student ana" in capsys.readouterr().err
    assert main(["grade", "fetch", "sums", "--student", "ana"]) == 0
    assert "fetched 01-sums into your workspace as ana" in capsys.readouterr().out
    assert (course / "grading" / "workspaces" / "ana" / SUMS / f"{SUMS}.ipynb").is_file()
    assert main(["grade", "fetch", "sums", "--student", "ana"]) == 0  # again: the work there is kept
    assert "already in your workspace" in capsys.readouterr().out
    assert main(["grade", "submit", "sums", "--student", "ana"]) == 0
    # one clear line: a module not released, an id not in the roster
    assert main(["grade", "fetch", "other", "--student", "ana"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "02-other is not released yet" in err
    assert main(["grade", "fetch", "sums", "--student", "zed"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'zed' is not in cohort spring's roster" in err


def test_collect_autograde_and_feedback_say_what_happened_this_time(course, tmp_path):
    released = nbformat.read(course / "grading" / "release" / SUMS / f"{SUMS}.ipynb", as_version=4)
    work = tmp_path / f"{SUMS}.ipynb"
    nbformat.write(answered(released, {**RIGHT, "why": "Even spread."}), work)
    exchange_submit(SUMS, "ben", work, course_root=course)
    nbformat.write(released, work)  # cy leaves everything blank
    exchange_submit(SUMS, "cy", work, course_root=course)
    first = collect(SUMS, course_root=course)
    assert set(first.new) >= {"ben", "cy"} and not first.updated
    lms = course / "grading" / "submitted" / "dee" / SUMS  # a learner filed from an LMS download
    lms.mkdir(parents=True)
    nbformat.write(answered(released, RIGHT), lms / f"{SUMS}.ipynb")
    graded = autograde_cohort(SUMS, workers=2, course_root=course, progress=False)
    assert f"graded {len(first.students) + 1} learner(s) in" in graded.summary()

    nbformat.write(answered(released, {**RIGHT, "total": "total = 0", "why": "Even spread."}), work)
    exchange_submit(SUMS, "ben", work, course_root=course)  # ben resubmits
    again = collect(SUMS, course_root=course)
    assert again.new == [] and again.updated == ["ben"] and "cy" in again.unchanged
    assert again.not_in_exchange == ["dee"]
    said = again.summary()
    assert said.startswith(f"{SUMS}: 1 submission(s) newly collected or updated from the exchange")
    assert "updated (a newer submission): ben" in said and "not in the exchange: dee" in said

    regraded = autograde_cohort(SUMS, workers=2, course_root=course, progress=False)
    assert regraded.graded == ["ben"]
    unchanged = len(again.students) - 1
    assert f"{SUMS}: graded 1 learner(s), {unchanged} unchanged (already graded, nothing new) in" in regraded.summary()

    pages = {p.parent.parent.name: p.read_text(encoding="utf-8") for p in feedback(SUMS, ["ben", "cy"],
                                                                                     course_root=course)}  # fmt: skip
    # ben's written answer waits for the instructor: the contents and the cell's heading agree with the table
    assert "<td>not graded yet</td>" in pages["ben"]
    assert "Written response</a> (not graded yet, 1 points)" in pages["ben"] and "Score: 0.0 / 1.0" not in pages["ben"]
    # cy left the exercises blank: "not answered yet", no traceback
    assert "Not answered yet:</strong> <code>total</code>, <code>mean</code>" in pages["cy"]
    assert "most recent call last" not in pages["cy"] and "This follows from the exercise `total` above" in pages["cy"]
    assert NOT_ANSWERED.format(grade_id="total").split("`raise")[0] in pages["cy"]
