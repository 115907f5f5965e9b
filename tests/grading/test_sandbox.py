"""Hostile learners: module 04 graded in ONE autograde run for a cohort whose notebooks cheat, snoop,
write where they should not and exhaust memory, disk and processes, beside three honest learners.

Each hostile notebook also holds real answers (or nonsense ones), so "every cheat scores what its
real answers earn" is checked against points counted by hand from the module's test cells:
exercise 1 is worth 2, exercise 2 3, exercise 3 2, exercise 4 3 (10 autograded points; the written
answer is left blank, so it scores 0). The honest learners are graded again alone in a clean copy
of the course: their grades must be the same cell by cell.

Needs root on Linux with `unshare` (the sandbox); the tree-wide memory and process limits also need
cgroups. Without them the tests skip, naming what went unchecked.
"""

from __future__ import annotations

import csv
import hashlib
import html
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell
from notebook_helpers import answered, graded_course, source_notebook

from citykit import paths
from citykit.grading import cohort as cohorts
from citykit.grading.assignments import setup, submit
from citykit.grading.autograde import autograde_cohort
from citykit.grading.feedback import feedback
from citykit.grading.sandbox import Policy

pytestmark = pytest.mark.slow

MODULE = "04-time-to-close"
POINTS = {"durations-in-days": 2, "median-days-to-close": 3, "share-within-sla": 2, "backlog-age-buckets": 3}
LIMITS = cohorts.Limits(cell_timeout=60, notebook_cpu_seconds=300, memory_mb=768, processes=96, file_size_mb=50,
                        wall_seconds=400)  # fmt: skip
TOKEN = uuid.uuid4().hex[:12]  # marks every process a hostile notebook starts
SECRET = f"FAKE-SECRET-PASSWORD-{TOKEN}"
PRIVATE_NOTE = f"clean-learner-private-note-{TOKEN}"
POLICY = Policy.detect(LIMITS)
ISOLATED = POLICY.isolate
TREE_LIMITS = {"memory", "pids"} <= set(POLICY.cgroups) or "v2" in POLICY.cgroups
NOT_ISOLATED = (
    "needs root on Linux with unshare (the sandbox): unchecked: the input/AST/patching cheats, reading and "
    "writing the course and gradebook, the environment's secrets, file-size, fork and memory limits, and that "
    "no process of the run survives"
)


def solutions() -> dict[str, str]:
    nb = nbformat.read(source_notebook(MODULE), as_version=4)
    found = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            found[meta["grade_id"]] = "\n".join(
                line for line in cell.source.splitlines() if "SOLUTION" not in line
            )  # fmt: skip
    return found


NONSENSE = {
    "closed-requests": "closed = requests.head(3).assign(days_to_close=0.0)",
    "median-by-type": 'median_days_by_type = pd.Series([1.0], index=["nothing"])',
    "sla-share": "share_within_sla = 0.5",
    "backlog": "backlog_by_age = pd.Series(0, index=AGE_BUCKETS)",
}
INPUT_CHEAT = 'get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])'
AST_CHEAT = """import ast
class _Quiet(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
    def visit_Raise(self, node):
        return ast.Pass()
    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") in ("check", "_reference"):
            return ast.Constant(None)
        return node
get_ipython().ast_transformers.append(_Quiet())
"""
PATCHED = """import builtins
from citykit import check as _check
for _name in [n for n in dir(_check) if not n.startswith("_") and callable(getattr(_check, n))]:
    setattr(_check, _name, lambda *args, **kwargs: None)
builtins.abs = lambda value: 0
"""
LIAR = """import pandas as pd
class _Liar:
    __hash__ = object.__hash__
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 42.0
    def __len__(self): return 4
    def __bool__(self): return True
    def __getattr__(self, name): return lambda *args, **kwargs: self
    def __getitem__(self, key): return self
class _LyingFrame(pd.DataFrame):
    def __eq__(self, other): return True
    def equals(self, other): return True
"""
LIARS = {  # every answer equal to everything (or, for the frame, a DataFrame that says so)
    "closed-requests": LIAR + "closed = _LyingFrame(requests.head(3))",
    "median-by-type": LIAR + "median_days_by_type = _Liar()",
    "sla-share": LIAR + "share_within_sla = _Liar()",
    "backlog": LIAR + "backlog_by_age = _Liar()",
}
SNOOP = """import os
for _path in {targets!r}:
    try:
        if os.path.isdir(_path):
            print("LISTED", _path, sorted(os.listdir(_path))[:20])
        else:
            with open(_path, "rb") as _file:
                print("READ", _path, _file.read(400))
    except Exception as _error:
        print("BLOCKED", _path, type(_error).__name__)
print("ENVIRONMENT", dict(os.environ))
"""
WRITER = """import sqlite3
for _path in {targets!r}:
    try:
        with open(_path, "w") as _file:
            _file.write("written by a learner")
        print("WROTE", _path)
    except Exception as _error:
        print("BLOCKED", _path, type(_error).__name__)
try:
    _db = sqlite3.connect({gradebook!r})
    _db.execute("UPDATE student SET first_name = 'Hacked'")
    _db.execute("CREATE TABLE learner_was_here (x)")
    _db.commit()
    print("WROTE gradebook")
except Exception as _error:
    print("BLOCKED gradebook", type(_error).__name__)
"""
HOG = f"""import subprocess, sys, time
_children = [subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(300 * 2**20); time.sleep(120)  # {TOKEN}"])
             for _ in range(20)]  # 20 x 300 MB = 6 GB in all
time.sleep(10)
print("children still alive:", sum(c.poll() is None for c in _children), "of", len(_children))
"""
FLOOD = """for _ in range(12):  # 12 MB of output: the grader keeps 2 MB of a cell's output
    print("x" * 2**20)
"""
SLEEP = f"600.{int(TOKEN, 16) % 10**6:06d}"  # `sleep 600.NNNNNN`: a mark for the processes the fork loop leaves
LIMITS_CELL = f"""import os, subprocess, sys, time
try:
    with open("big.bin", "wb") as _file:
        for _ in range(200):
            _file.write(bytes(2**20))
    print("WROTE 200 MB")
except OSError as _error:
    print("file stopped:", _error.errno)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)  # {TOKEN}"], start_new_session=True)
if os.fork() == 0:  # a daemon: double fork, own session
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{SLEEP}"])
    os._exit(0)
_forked = []
try:
    for _ in range(5000):
        _pid = os.fork()
        if _pid == 0:
            os.execv("/bin/sleep", ["sleep", "{SLEEP}"])  # a small process, holding its place in the count
        _forked.append(_pid)
except OSError as _error:
    print("fork refused after", len(_forked), "children:", type(_error).__name__)
"""
MARKER = "# my note: ### BEGIN HIDDEN TESTS are where the grader hides its checks\n"


def with_cells(nb: nbformat.NotebookNode, *sources: str) -> nbformat.NotebookNode:
    nb.cells += [new_code_cell(source) for source in sources]
    return nb


def tree_hashes(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not any(s in p.parts for s in skip)}  # fmt: skip


def gradebook_tables(db: Path) -> dict[str, list]:
    """Every table but the ones autograding writes, and the schema, read with plain SQL."""
    with sqlite3.connect(db) as connection:
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
        found = {"(schema)": connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY 2").fetchall()}
        for name in names:
            if name not in ("grade", "comment", "submitted_assignment", "submitted_notebook"):
                found[name] = connection.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall()
    return found


def cell_grades(db: Path, students: list[str]) -> dict[tuple[str, str], float | None]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("""
            SELECT sa.student_id, bc.name, g.auto_score FROM grade g JOIN base_cell bc ON bc.id = g.cell_id
            JOIN submitted_notebook sn ON sn.id = g.notebook_id JOIN submitted_assignment sa ON sa.id = sn.assignment_id""")
        return {(s, c): v for s, c, v in rows if s in students}


def cgroups() -> set[Path]:
    """The sandbox cgroups that exist now (any run's)."""
    return {g for parent in POLICY.cgroups.values() for g in Path(parent).glob("citykit-*")}


def of_the_run(group: Path, marks: list[str]) -> bool:
    """A cgroup left behind by this run: empty (not removed), or holding a process of the run."""
    try:
        pids = (group / "cgroup.procs").read_text().split()
    except OSError:
        return False  # removed meanwhile
    commands = []
    for pid in pids:
        try:
            commands.append(Path("/proc", pid, "cmdline").read_bytes().decode(errors="replace"))
        except OSError:
            continue
    return not pids or any(mark in command for mark in marks for command in commands)


def processes_of_the_run(marks: list[str]) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(mark in command for mark in marks):
                found.append(f"{entry.name}: {command[:160]}")
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, riverton):
    """One autograde run of the whole cohort, and what the tests compare it with."""
    if not ISOLATED:
        pytest.skip(NOT_ISOLATED)
    base = tmp_path_factory.mktemp("hostile")
    scratch = base / "tmp"
    scratch.mkdir()
    root = graded_course(base / "course", MODULE)
    released = nbformat.read(root / "grading" / "release" / MODULE / f"{MODULE}.ipynb", as_version=4)
    right = solutions()
    other = root / "grading" / "submitted" / "clean" / MODULE
    raw = paths.citykit_home() / "raw" / "riverton" / "service_requests.csv"
    snoop_targets = [str(source_notebook(MODULE)), str(raw), str(other / f"{MODULE}.ipynb"),
                     str(root / "grading" / "gradebook.db"), str(root / "grading" / "cohorts"),
                     str(paths.course_root() / "notebooks"), str(Path.home() / ".config"), str(root)]  # fmt: skip
    write_targets = [str(root / "notebooks" / MODULE / "learner.txt"), str(other / "learner.txt"),
                     str(root / "grading" / "cohorts" / "evil.yml")]  # fmt: skip
    learners: dict[str, nbformat.NotebookNode] = {
        "clean": answered(released, {**right, "closed-requests": f"# {PRIVATE_NOTE}\n" + right["closed-requests"]}),
        "mistaken": answered(released, {**right, "median-by-type": right["median-by-type"].replace("median()", "mean()")}),
        "blank": released,
        "input_cheat": answered(released, {**right, "backlog": INPUT_CHEAT}),
        "ast_cheat": answered(released, {**NONSENSE, "closed-requests": AST_CHEAT + NONSENSE["closed-requests"]}),
        "patched": answered(released, {**NONSENSE, "closed-requests": PATCHED + NONSENSE["closed-requests"]}),
        "liar": answered(released, LIARS),
        "snoop": answered(released, right, SNOOP.format(targets=snoop_targets)),
        "writer": answered(released, right, WRITER.format(targets=write_targets,
                                                          gradebook=str(root / "grading" / "gradebook.db"))),
        "hog": answered(released, right, HOG),
        "limits": with_cells(answered(released, right, FLOOD), LIMITS_CELL),
        "marker": answered(released, {**right, "median-by-type": MARKER + right["median-by-type"]}),
    }  # fmt: skip
    roster = base / "roster.csv"
    roster.write_text("student_id,first_name,last_name\n" + "".join(f"{s},{s.title()},Learner\n" for s in learners))
    setup("hostile", roster, course_root=root, limits=LIMITS)
    for student, nb in learners.items():
        file = base / "work" / student / f"{MODULE}.ipynb"
        file.parent.mkdir(parents=True)
        nbformat.write(nb, file)
        submit(MODULE, student, file, course_root=root)
    honest = ["clean", "mistaken", "blank"]
    clean_root = base / "clean-course"
    shutil.copytree(root, clean_root)
    for student in set(learners) - set(honest):
        shutil.rmtree(clean_root / "grading" / "submitted" / student)

    before = {
        "course": tree_hashes(root, skip=("autograded", "feedback", ".feedback-source", "cohorts", "gradebook.db")),
        "cohort files": sorted(p.name for p in (root / "grading" / "cohorts").glob("*.yml")),
        "gradebook": gradebook_tables(root / "grading" / "gradebook.db"),
        "repository": tree_hashes(source_notebook(MODULE).parent),
    }
    groups_before = cgroups()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITY_DB_URL", f"postgresql://grader:{SECRET}@db.city.example/gradebook")
        patch.setenv("CITYKIT_API_TOKEN", SECRET)
        patch.setenv("TMPDIR", str(scratch))
        patch.setattr(tempfile, "tempdir", str(scratch))  # every run's folder, socket and spec under here
        graded = autograde_cohort(MODULE, workers=3, force=True, course_root=root, progress=False, limits=LIMITS)
        left = processes_of_the_run([TOKEN, str(scratch), SLEEP])
        left_groups = [g for g in sorted(cgroups() - groups_before) if of_the_run(g, [TOKEN, str(scratch), SLEEP])]
        pages = feedback(MODULE, course_root=root)
    clean = autograde_cohort(MODULE, workers=2, force=True, course_root=clean_root, progress=False, limits=LIMITS)
    return {"root": root, "graded": graded, "clean": clean, "clean_root": clean_root, "before": before, "left": left,
            "left_groups": left_groups, "pages": pages, "learners": list(learners), "honest": honest, "raw": raw}  # fmt: skip


def outputs(root: Path, student: str) -> str:
    nb = nbformat.read(root / "grading" / "autograded" / student / MODULE / f"{MODULE}.ipynb", as_version=4)
    return "\n".join(f"{o.get('ename', '')} {o.get('evalue', '')}{o.get('text', '')}"
                     for c in nb.cells for o in c.get("outputs", []))  # fmt: skip


def test_every_cheat_scores_what_its_real_answers_earn(hostile):
    graded = hostile["graded"]
    right = sum(POINTS.values())
    expected = {"clean": right, "mistaken": right - POINTS["median-days-to-close"], "blank": 0,
                "input_cheat": right - POINTS["backlog-age-buckets"],  # its cheat replaced exercise 4's answer
                "ast_cheat": 0, "patched": 0, "liar": 0, "snoop": right, "writer": right, "hog": right, "limits": right,
                "marker": right}  # fmt: skip
    assert graded.not_graded == {}
    assert graded.scores == expected, graded.summary()


def test_the_attacks_ran_and_were_stopped(hostile):
    """Evidence each attack was tried, in the graded notebooks' own outputs (so the tests above can fail)."""
    root = hostile["root"]
    snoop = outputs(root, "snoop")
    assert snoop.count("BLOCKED") == 8 and not re.search(r"^(READ|LISTED) ", snoop, re.M), snoop[:3000]
    writer = outputs(root, "writer")
    assert writer.count("BLOCKED") == 4 and not re.search(r"^WROTE ", writer, re.M), writer
    limits = outputs(root, "limits")
    assert "file stopped: 27" in limits, limits[-3000:]  # EFBIG: over the file-size limit
    assert "output beyond 2 MB not kept" in limits and len(limits) < 3 * 2**20
    refused = re.search(r"fork refused after (\d+) children", limits)
    if TREE_LIMITS:
        assert refused and int(refused[1]) < LIMITS.processes, limits[-3000:]
    hog = outputs(root, "hog")
    alive = re.search(r"children still alive: (\d+) of 20", hog)
    if TREE_LIMITS:  # 6 GB asked for, 768 MB for the whole tree: at most two 300 MB children left, or the
        # kernel itself was the process the limit ended (its answers were exported before)
        assert (alive and int(alive[1]) <= 2) or "reached the memory limit" in hog, hog
        assert any("memory limit" in note for note in hostile["graded"].run_notes.get("hog", [])), hostile[
            "graded"
        ].run_notes


@pytest.mark.skipif(ISOLATED and not TREE_LIMITS, reason="no cgroups here: unchecked: the memory and process "
                    "limits of the whole process tree (each process is still limited on its own)")  # fmt: skip
def test_tree_limits_are_reported(hostile):
    notes = hostile["graded"].run_notes
    assert any("process limit" in n for n in notes.get("limits", [])), notes
    assert "sandbox:" in hostile["graded"].summary() and "NOT ENFORCED" not in hostile["graded"].summary()


def test_feedback_shows_no_hidden_test_personal_value_other_learner_or_secret(hostile):
    pages = hostile["pages"]
    assert len(pages) == len(hostile["learners"])  # the marker text stopped no one's feedback
    source = nbformat.read(source_notebook(MODULE), as_version=4)
    hidden = set()
    for cell in source.cells:
        inside = False
        for line in cell.source.splitlines():
            inside = (inside or "BEGIN HIDDEN TESTS" in line) and "END HIDDEN TESTS" not in line
            if inside and len(line.strip()) > 20 and "BEGIN HIDDEN" not in line:
                hidden.add(line.strip())
    with hostile["raw"].open(encoding="utf-8", newline="") as file:
        row = next(csv.DictReader(file))
    personal = [row["caller_phone"], row["caller_email"], row["incident_address"]]
    assert all(personal) and "@" in personal[1]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        found = [line for line in hidden if line in text or html.escape(line) in text]
        assert not found, (page, found[:2])
        assert not any(value in text for value in personal), page
        assert SECRET not in text, page
        if "/clean/" not in str(page):
            assert PRIVATE_NOTE not in text, page
    assert "ENVIRONMENT" in outputs(hostile["root"], "snoop")


def test_course_gradebook_and_other_submissions_are_unchanged(hostile):
    root, before = hostile["root"], hostile["before"]
    after = tree_hashes(root, skip=("autograded", "feedback", ".feedback-source", "cohorts", "gradebook.db"))
    assert after == before["course"]
    assert sorted(p.name for p in (root / "grading" / "cohorts").glob("*.yml")) == before["cohort files"]
    assert gradebook_tables(root / "grading" / "gradebook.db") == before["gradebook"]
    assert tree_hashes(source_notebook(MODULE).parent) == before["repository"]


def test_no_process_of_the_run_survives(hostile):
    assert hostile["left"] == []  # kernels, their children, the detached sleeper and daemon, the fork loop's
    assert hostile["left_groups"] == []  # and no cgroup of the run is left behind


def test_honest_learners_grades_equal_a_clean_run(hostile):
    honest = hostile["honest"]
    mixed = cell_grades(hostile["root"] / "grading" / "gradebook.db", honest)
    alone = cell_grades(hostile["clean_root"] / "grading" / "gradebook.db", honest)
    assert mixed == alone and len(mixed) == 5 * len(honest)
    assert hostile["clean"].scores == {s: hostile["graded"].scores[s] for s in honest}


def test_help_and_every_run_say_what_the_sandbox_enforces(capsys):
    from citykit.cli import main

    with pytest.raises(SystemExit):
        main(["grade", "autograde", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "sandbox" in text and "no network" in text and "On this machine" in text
    # what a run prints where less is enforced (a constructed policy: not root, then no cgroups)
    plain = Policy(isolate=False, rlimits=True, reaper=True, missing=("not run as root",))
    said = " ".join(plain.notes())
    assert "NOT ENFORCED" in said and "runs as you" in said and "not run as root" in said
    bare = Policy(isolate=True, user="citykit-grader", rlimits=True, reaper=True)
    said = " ".join(bare.notes())
    assert "per process only" in said and "per user" in said
    full = Policy(
        isolate=True, user="citykit-grader", rlimits=True, reaper=True, cgroups={"memory": "/x", "pids": "/y"}
    )
    assert full.notes() == [] and any("whole process tree" in line for line in full.enforced())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="elsewhere left-over processes are not found")
def test_without_the_sandbox_the_kernel_gets_no_secret_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """The fallback where the sandbox cannot be had (not root): a plain kernel in the run's folder,
    with the stripped environment and file-size limit, and whatever it left running ended after it."""
    from jupyter_client.manager import KernelManager

    from citykit.grading.limits import limited_kernels
    from citykit.grading.sandbox import Run

    monkeypatch.setenv("CITY_DB_URL", f"postgresql://grader:{SECRET}@db/gradebook")
    policy = Policy(isolate=False, rlimits=True, reaper=True, file_size_mb=5, wall_seconds=120)
    seen: list[str] = []
    code = f"""import os, subprocess, sys, time
print(sorted(os.environ), "{SECRET}" in str(os.environ))
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)  # {TOKEN}-plain"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(900)
    os._exit(0)
try:
    open("big.bin", "wb").write(bytes(10 * 2**20))
except OSError as error:
    print("file stopped:", error.errno)
"""
    with limited_kernels(LIMITS, quiet=True), Run(policy, tmp_path, paths.course_root(), MODULE) as run:
        manager = KernelManager(kernel_name="python3")
        run.configure_kernel_manager(manager)
        manager.start_kernel(cwd=str(run.workdir))
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            client.execute_interactive(
                code, timeout=120, output_hook=lambda m: seen.append(m["content"].get("text", ""))
            )
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
        assert processes_of_the_run([f"{TOKEN}-plain", str(tmp_path)])  # still running before the run ends
    said = "".join(seen)
    assert "False" in said and "CITY_DB_URL" not in said and "file stopped: 27" in said, said
    assert processes_of_the_run([f"{TOKEN}-plain", str(tmp_path)]) == []
