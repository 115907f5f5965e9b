"""Plain nbgrader grades as citykit does: `nbgrader autograde` run in the course's grading/ folder, and
nbgrader's API as the formgrader's autograde button calls it, take the course's configuration, whose
Execute step runs in two phases (learner code sandboxed, every test apart from it). A cheat that
turns every later cell, hidden tests included, into `pass` in its own kernel scores what its real answers earn, never full marks.

Expected points come from the source notebook's own nbgrader metadata (each test cell's `points`),
not from citykit: exercise 4 (`backlog-age-buckets`) is what the input-transformer cheat replaced.
"""

from __future__ import annotations

import html
import json
import os
import sqlite3
import subprocess
import sys
import uuid

import nbformat
import pytest
from notebook_helpers import answered, graded_course, nbg, source_notebook, write_module_source

from citykit.grading.assignments import setup, submit
from citykit.grading.cohort import AUTOGRADE_STEPS

pytestmark = pytest.mark.slow

MODULE = "04-time-to-close"
SECRET = f"FAKE-SECRET-{uuid.uuid4().hex[:12]}"
INPUT_CHEAT = 'get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])'
STALL = """import time as _time
_kernel = get_ipython().kernel
_publish, _stalled = _kernel._publish_status, []
def _stall(status, *args, **kwargs):  # this cell's `idle` comes 6 s after its reply (nbgrader waits 4 s)
    if status == "idle" and not _stalled:
        _stalled.append(True)
        _time.sleep(6)
    return _publish(status, *args, **kwargs)
_kernel._publish_status = _stall
"""
SHOW_HTML = "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b><script>window.shown=1</script>'))\n"
WRITTEN_HTML = (
    'Because <script>document.title="XSS-RAN"</script> <img src="x" onerror="alert(1)"> '
    '<iframe src="/api/contents"></iframe> <em>waits</em> vary.'
)
SNOOP = "import os\nprint('ENVIRONMENT', sorted(os.environ), os.environ.get('CITY_DB_URL'))\n"


def test_the_configuration_swaps_only_nbgraders_execute_step():
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    from traitlets.utils.importstring import import_item

    from citykit.grading.scoring import TwoPhaseExecute

    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    assert [import_item(step) for step in AUTOGRADE_STEPS] == [
        TwoPhaseExecute if step is Execute else step for step in default
    ]


def source_cells():
    nb = nbformat.read(source_notebook(MODULE), as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def solutions() -> dict[str, str]:
    found = {}
    for cell in source_cells():
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            found[meta["grade_id"]] = "\n".join(line for line in cell.source.splitlines() if "SOLUTION" not in line)
    return found


def hidden_lines() -> list[str]:
    """The source lines of the module's hidden tests (long enough to be unmistakable)."""
    found = []
    for cell in source_cells():
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                found.append(line.strip())
    return found


def exercise_points() -> dict[str, float]:
    found = {}
    for cell in source_cells():
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            found[meta["grade_id"]] = float(meta.get("points", 0))
    return found


def auto_score(db, student: str) -> float:
    with sqlite3.connect(db) as connection:
        (total,) = connection.execute(
            """SELECT COALESCE(SUM(g.auto_score), 0) FROM grade g
               JOIN submitted_notebook sn ON sn.id = g.notebook_id
               JOIN submitted_assignment sa ON sa.id = sn.assignment_id WHERE sa.student_id = ?""",
            (student,),
        ).fetchone()
    return float(total)


@pytest.fixture(scope="module")
def course(tmp_path_factory, riverton):
    base = tmp_path_factory.mktemp("plain")
    root = graded_course(base / "course", MODULE)
    released = nbformat.read(root / "grading" / "release" / MODULE / f"{MODULE}.ipynb", as_version=4)
    right = solutions()
    touch = f"open({str(base / 'learner-code-ran')!r}, 'w').close()\n"  # shows that learner code ran
    snooping = {**right, "closed-requests": SNOOP + right["closed-requests"], "backlog": INPUT_CHEAT}
    learners = {
        "input_cheat": answered(released, snooping),
        "early_cheat": answered(
            released,
            {
                **right,
                "closed-requests": SHOW_HTML + right["closed-requests"],
                "interpret-time-to-close": WRITTEN_HTML,
                "sla-share": INPUT_CHEAT,
            },
        ),  # exercises 3 and 4 unanswered; fmt: skip
        "stalling": answered(released, {**right, "closed-requests": STALL + right["closed-requests"]}),
        "refused": answered(released, {**right, "closed-requests": touch + right["closed-requests"]}),
    }
    roster = base / "roster.csv"
    roster.write_text("student_id,first_name,last_name\n" + "".join(f"{s},{s.title()},Learner\n" for s in learners))
    setup("plain", roster, course_root=root)
    for student, nb in learners.items():
        file = base / "work" / student / f"{MODULE}.ipynb"
        file.parent.mkdir(parents=True)
        nbformat.write(nb, file)
        submit(MODULE, student, file, course_root=root)
    return root


def test_nbgrader_autograde_on_the_command_line_runs_the_cheat_apart_from_the_tests(course):
    env = {**os.environ, "CITY_DB_URL": f"postgresql://grader:{SECRET}@db.example/gradebook"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", MODULE, "--student", "input_cheat",
                           "--force"], cwd=course / "grading", env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    points = exercise_points()
    expected = sum(points.values()) - points["backlog-age-buckets"]  # its cheat replaced exercise 4's answer
    assert auto_score(course / "grading" / "gradebook.db", "input_cheat") == pytest.approx(expected)
    assert "sandbox: " in done.stderr  # what the sandbox enforces, in nbgrader's log
    graded = nbformat.read(course / "grading" / "autograded" / "input_cheat" / MODULE / f"{MODULE}.ipynb", 4)
    said = "".join(o.get("text", "") for c in graded.cells for o in c.get("outputs", []))
    assert "ENVIRONMENT" in said and "CITY_DB_URL" not in said and SECRET not in json.dumps(graded)
    # citykit does not take a grade it did not make on trust (walk 18, F5): it regrades it, same score
    from citykit.grading.autograde import autograde_cohort

    again = autograde_cohort(MODULE, ["input_cheat"], course_root=course, progress=False)
    assert again.regraded == {"input_cheat": "graded outside `citykit grade autograde` (formgrader's button or "
                                             "plain nbgrader)"} and again.scores == {"input_cheat": expected}  # fmt: skip
    assert autograde_cohort(MODULE, ["input_cheat"], course_root=course, progress=False).skipped == ["input_cheat"]


def test_the_formgraders_autograde_runs_the_cheat_apart_from_the_tests(course, monkeypatch):
    """The formgrader calls NbGraderAPI.autograde with the configuration it read from grading/."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.chdir(course / "grading")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course / "grading")).load_config()
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    result = api.autograde(MODULE, "early_cheat")
    assert result["success"], result.get("error")
    points = exercise_points()
    expected = sum(points.values()) - points["share-within-sla"] - points["backlog-age-buckets"]
    assert auto_score(course / "grading" / "gradebook.db", "early_cheat") == pytest.approx(expected)
    # its Generate Feedback button (walk 18, F6): no hidden test's source, and the learner's HTML inert (F7)
    result = api.generate_feedback(MODULE, "early_cheat")
    assert result["success"], result.get("error")
    page = (course / "grading" / "feedback" / "early_cheat" / MODULE / f"{MODULE}.html").read_text(encoding="utf-8")
    hidden = hidden_lines()
    assert hidden and not [line for line in hidden if line in page or html.escape(line) in page]
    assert "BEGIN HIDDEN TESTS" not in page
    assert "<em>waits</em>" in page and "<b>bold</b>" in page  # safe HTML stays
    for live in ("<script>document.title", "onerror=", "<iframe", "<script>window.shown"):
        assert live not in page, live


def test_a_kernel_that_delays_its_own_output_is_still_graded(course):
    """Walk 18, F1: a learner's kernel that was slow to say a cell had finished was not graded at all
    (nbclient's 4 s IOPub timeout), and their earlier grade silently stood."""
    from citykit.grading.autograde import autograde_cohort

    graded = autograde_cohort(MODULE, ["stalling"], force=True, course_root=course, progress=False)
    assert graded.not_graded == {}, graded.summary()
    assert graded.scores == {"stalling": sum(exercise_points().values())}  # every answer right


def test_a_learner_not_graded_now_is_told_apart_from_their_earlier_grade(course):
    """Walk 18, F1: when a resubmission could not be graded, the earlier submission's grade stood in
    the gradebook (and in feedback and export) without a word."""
    from citykit.grading.autograde import autograde_cohort

    first = autograde_cohort(MODULE, ["early_cheat"], force=True, course_root=course, progress=False)
    points = exercise_points()
    earlier = sum(points.values()) - points["share-within-sla"] - points["backlog-age-buckets"]
    assert first.scores == {"early_cheat": earlier}
    submitted = course / "grading" / "submitted" / "early_cheat" / MODULE / f"{MODULE}.ipynb"
    submitted.write_text(submitted.read_text()[:-200])  # a resubmission cut off while saving
    again = autograde_cohort(MODULE, ["early_cheat"], course_root=course, progress=False)
    assert "not valid JSON" in again.not_graded["early_cheat"] and again.stale == {"early_cheat": earlier}
    assert f"EARLIER submission's grade ({earlier:g} / " in again.summary()


def test_a_kernel_that_ignores_interrupts_is_stopped_a_cell_timeout_later(tmp_path):
    """A cell over its timeout is interrupted; a kernel that ignores the interrupt ended the run only at
    the notebook's wall time (30 minutes by default). Now one more cell timeout ends it, and the
    answers exported before still count."""
    import time

    from nbformat.v4 import new_code_cell

    from citykit.grading.assignments import generate
    from citykit.grading.autograde import autograde_cohort
    from citykit.grading.cohort import Limits

    module = "01-sums"
    root = tmp_path / "course"
    write_module_source(root, module, [
        new_code_cell("values = [3, 4, 5, 6]", metadata=nbg("setup", locked=True)),
        new_code_cell("### BEGIN SOLUTION\ntotal = sum(values)\n### END SOLUTION", metadata=nbg("total", solution=True)),
        new_code_cell("assert total == 18", metadata=nbg("sum-of-values", grade=True, locked=True, points=2)),
        new_code_cell("### BEGIN SOLUTION\nmean_value = total / 4\n### END SOLUTION", metadata=nbg("mean", solution=True)),
        new_code_cell("assert mean_value == 4.5", metadata=nbg("mean-of-values", grade=True, locked=True, points=3)),
    ])  # fmt: skip
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,first_name,last_name\nstubborn,S,Learner\n")
    setup("sums", roster, course_root=root, limits=Limits(cell_timeout=3, wall_seconds=90))
    generate(module, course_root=root)
    released = nbformat.read(root / "grading" / "release" / module / f"{module}.ipynb", as_version=4)
    ignore = "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass"
    stubborn = answered(released, {"total": "total = sum(values)", "mean": ignore})
    file = tmp_path / "work" / f"{module}.ipynb"
    file.parent.mkdir()
    nbformat.write(stubborn, file)
    submit(module, "stubborn", file, course_root=root)
    started = time.monotonic()
    graded = autograde_cohort(module, workers=1, course_root=root, progress=False)
    assert time.monotonic() - started < 60  # not the 90 s wall time
    assert graded.not_graded == {} and graded.scores == {"stubborn": 2}  # the total, exported before the loop
    nb = nbformat.read(root / "grading" / "autograded" / "stubborn" / module / f"{module}.ipynb", as_version=4)
    said = " ".join(f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells for o in c.get("outputs", []))
    assert "did not answer an interrupt at the cell timeout (3 s)" in said, said


def test_a_course_that_requires_the_sandbox_refuses_to_grade_without_it(course, monkeypatch):
    """Lead note 2: on a hub, formgrader's Autograde button runs as the grader account, where the sandbox
    cannot isolate learner code; the hub's course configuration requires the sandbox, and the button
    then refuses in one line, before any learner code runs."""
    from types import SimpleNamespace

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from citykit.grading import sandbox
    from citykit.hub.exchange import course_block

    hub = SimpleNamespace(cohort="fall", exchange="/srv/exchange", learners=[])
    assert "c.TwoPhaseExecute.require_sandbox = True" in course_block(hub).splitlines()
    monkeypatch.setattr(sandbox, "ensure_user", lambda: "")
    monkeypatch.setattr(sandbox, "course_policy", lambda root: sandbox.Policy(isolate=False, rlimits=True,
                                                                               reaper=True, missing=("not root",)))  # fmt: skip
    monkeypatch.chdir(course / "grading")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course / "grading")).load_config()
    config.TwoPhaseExecute.require_sandbox = True
    result = NbGraderAPI(CourseDirectory(config=config), config=config).autograde(MODULE, "refused")
    said = f"{result.get('log', '')}\n{result.get('error', '')}"
    assert not result["success"]
    assert f"this course grades only in the sandbox: run `citykit grade autograde {MODULE}`" in said
    assert not (course.parent / "learner-code-ran").exists()  # its first answer cell never ran
    config.TwoPhaseExecute.require_sandbox = False  # as before without the setting: graded (here unsandboxed)
    result = NbGraderAPI(CourseDirectory(config=config), config=config).autograde(MODULE, "refused")
    assert result["success"], result.get("error")
    assert (course.parent / "learner-code-ran").exists()  # what the refusal prevented
