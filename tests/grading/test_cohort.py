"""A cohort from roster to grades: setup → generate → release → submit → collect (exchange and LMS zips)
→ lint → parallel autograde (= sequential nbgrader) → regrade after a test fix → feedback → export →
dashboard, on a simulated cohort of 12 learners (a small module) plus module 04 for two of them."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from dataclasses import replace
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_helpers import answered, nbg

from citykit import paths
from citykit.errors import CitykitError
from citykit.grading import cohort as cohorts
from citykit.grading.assignments import collect, collect_zips, exchange_submit, generate, release, setup
from citykit.grading.autograde import autograde_cohort
from citykit.grading.config import grader_env, load_config, nbgrader_api_for
from citykit.grading.dashboard import dashboard
from citykit.grading.export import export
from citykit.grading.feedback import feedback
from citykit.grading.limits import limited_kernels

SUMS = "01-sums"
M04 = "04-time-to-close"
ROSTER_HEADER = "student_id,first_name,last_name,email,section,sis_user_id,sis_login_id,canvas_id"
HIDDEN_LINES = ("assert total == 3 + 4 + 5 + 6", "assert abs(mean_value - sum(values) / len(values)) < 1")
MEAN_ADVICE = "the mean of positive values is positive"


def sums_source(mean_tolerance: str = "1") -> nbformat.NotebookNode:
    """Two exercises; the hidden test of the second is too lenient (`< 1`) until it is fixed."""
    cells = [
        new_code_cell("values = [3, 4, 5, 6]", metadata=nbg("setup", locked=True)),
        new_code_cell(
            "### BEGIN SOLUTION\ntotal = sum(values)\n### END SOLUTION", metadata=nbg("total", solution=True)
        ),
        new_code_cell(
            'assert isinstance(total, int), "total should be a whole number: add the values with sum(values)"\n'
            "### BEGIN HIDDEN TESTS\nassert total == 3 + 4 + 5 + 6\n### END HIDDEN TESTS",
            metadata=nbg("sum-of-values", grade=True, locked=True, points=2),
        ),
        new_code_cell(
            "### BEGIN SOLUTION\nmean_value = total / len(values)\n### END SOLUTION",
            metadata=nbg("mean", solution=True),
        ),
        new_code_cell(
            f'assert mean_value > 0, "{MEAN_ADVICE}"\n### BEGIN HIDDEN TESTS\n'
            f"assert abs(mean_value - sum(values) / len(values)) < {mean_tolerance}\n### END HIDDEN TESTS",
            metadata=nbg("mean-of-values", grade=True, locked=True, points=3),
        ),
        new_markdown_cell(
            "Why is the mean not the median here?", metadata=nbg("why", grade=True, solution=True, points=1)
        ),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})  # fmt: skip


RIGHT = {"total": "total = sum(values)", "mean": "mean_value = total / len(values)"}
# autograded points each learner of 01-sums should get (before the test fix, after it); computed by hand
# from the answers below: sum-of-values is worth 2, mean-of-values 3
EXPECTED = {
    "correct": (5, 5), "partial": (5, 2), "blank": (0, 0), "duplicated": (5, 5), "deleted": (5, 5),
    "tampered": (2, 2), "late": (5, 5), "loop": (2, 2), "hog": (0, 0), "kernel": (5, 5), "zipper": (5, 5),
}  # fmt: skip


def learner_notebooks(released: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode | str]:
    subs: dict[str, nbformat.NotebookNode | str] = {
        "correct": answered(released, {**RIGHT, "why": "The values are spread evenly, so both are 4.5."}),
        "partial": answered(released, {**RIGHT, "mean": "mean_value = total / (len(values) + 1)"}),
        "blank": released,
        "late": answered(released, RIGHT),
        "loop": answered(released, {**RIGHT, "mean": "while True:\n    pass"}),
        "hog": answered(released, {**RIGHT, "total": "hog = bytearray(6 * 2**30)\ntotal = sum(values)"}),
        "kernel": answered(released, RIGHT),
        "zipper": answered(released, RIGHT),
    }
    subs["kernel"].metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    duplicated = answered(released, RIGHT)
    index = next(i for i, c in enumerate(duplicated.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "total")
    first_copy = nbformat.from_dict(json.loads(json.dumps(duplicated.cells[index])))
    first_copy.source = "total = 0"
    duplicated.cells.insert(index, first_copy)  # a copied cell: same grade_id and same cell id
    subs["duplicated"] = duplicated
    deleted = answered(released, RIGHT)
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "mean-of-values"]
    subs["deleted"] = deleted
    tampered = answered(released, {**RIGHT, "mean": "mean_value = 1"})
    for cell in tampered.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "mean-of-values":
            cell.source = "assert True"
    subs["tampered"] = tampered
    subs["broken"] = nbformat.writes(answered(released, RIGHT))[:-200]  # cut off while saving
    return subs


def write_roster(path: Path, ids: list[str]) -> Path:
    lines = [ROSTER_HEADER] + [f"{i},{i.title()},Learner,{i}@city.example,Cohort A,SIS{n},{i}@city,{100 + n}"
                               for n, i in enumerate(ids)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cell_grades(db: Path) -> pd.DataFrame:
    """Every autograded cell's grade, read with plain SQL (independent of citykit and nbgrader's API)."""
    query = """
        SELECT st.id AS student, a.name AS assignment, bc.name AS grade_id, g.auto_score, g.needs_manual_grade,
               sn.late_submission_penalty
        FROM grade g JOIN base_cell bc ON bc.id = g.cell_id JOIN submitted_notebook sn ON sn.id = g.notebook_id
        JOIN submitted_assignment sa ON sa.id = sn.assignment_id JOIN assignment a ON a.id = sa.assignment_id
        JOIN student st ON st.id = sa.student_id ORDER BY 1, 2, 3"""
    with sqlite3.connect(db) as connection:
        return pd.read_sql_query(query, connection)


# ---------------------------------------------------------------------------------- roster (fast)


def test_roster_problems_name_the_rows(tmp_path):
    good = write_roster(tmp_path / "good.csv", ["ana", "ben"])
    learners = cohorts.read_roster(good)
    assert [x.student_id for x in learners] == ["ana", "ben"] and learners[1].canvas_id == "101"
    bad = tmp_path / "bad.csv"
    bad.write_text("student_id,first_name,last_name\nana,Ana,Ng\nben,,Li\nana,Ann,Ng\ncy d,Cy,Do\n", encoding="utf-8")
    with pytest.raises(CitykitError) as error:
        cohorts.read_roster(bad)
    message = str(error.value)
    assert "row 3: empty first_name" in message
    assert "rows 2, 4: duplicate student_id 'ana'" in message
    assert "row 5: student_id 'cy d'" in message
    (tmp_path / "cols.csv").write_text("id,name\n1,Ana\n", encoding="utf-8")
    with pytest.raises(CitykitError, match=r"lacks the column.*student_id, first_name, last_name"):
        cohorts.read_roster(tmp_path / "cols.csv")


def test_cli_setup_exits_2_on_a_bad_roster(tmp_path, capsys, monkeypatch):
    from citykit.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_text("student_id,first_name,last_name\nana,Ana,Ng\nana,Ann,Ng\n", encoding="utf-8")
    monkeypatch.setenv("CITYKIT_COURSE", str(tmp_path))
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "curriculum").mkdir()
    (tmp_path / "curriculum" / "course.yml").write_text("modules: []\n", encoding="utf-8")
    assert main(["grade", "setup", "--cohort", "spring", "--roster", str(bad)]) == 2
    assert "duplicate student_id 'ana'" in capsys.readouterr().err


def test_the_gradebook_url_stays_out_of_the_course(tmp_path, monkeypatch):
    """`setup --db-url` keeps the URL (its password) in a 0600 file outside the course; the cohort file
    names only that file; the environment variable wins; a cohort file holding a password is refused."""
    root = tmp_path / "course"
    (root / "notebooks" / SUMS).mkdir(parents=True)
    nbformat.write(sums_source(), root / "notebooks" / SUMS / f"{SUMS}.ipynb")
    secrets = tmp_path / "secrets"
    monkeypatch.setenv(cohorts.SECRETS_ENV, str(secrets))
    monkeypatch.delenv(cohorts.GRADEBOOK_URL_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}?password=s3cret-pw"  # SQLite here; the same for any URL
    cohort = cohorts.setup_cohort("fall", write_roster(tmp_path / "r.csv", ["ana"]), course_root=root, db_url=url)
    stored = Path(cohort.db_url_file)
    assert stored.parent == secrets and stored.read_text(encoding="utf-8").strip() == url
    assert stored.stat().st_mode & 0o777 == 0o600 and secrets.stat().st_mode & 0o777 == 0o700
    text = cohorts.cohort_file("fall", root).read_text(encoding="utf-8")
    assert "s3cret-pw" not in text and str(stored) in text
    assert load_config(root).CourseDirectory.db_url == url
    monkeypatch.setenv(cohorts.GRADEBOOK_URL_ENV, "sqlite:////from/the/environment.db")
    assert load_config(root).CourseDirectory.db_url == "sqlite:////from/the/environment.db"
    monkeypatch.delenv(cohorts.GRADEBOOK_URL_ENV)
    stored.chmod(0o644)
    with pytest.raises(CitykitError, match="can be read by others"):
        cohorts.gradebook_url(cohorts.load_cohort(course_root=root), root)
    monkeypatch.setenv(cohorts.SECRETS_ENV, str(root / "inside"))
    with pytest.raises(CitykitError, match="inside the course folder"):
        cohorts.setup_cohort("fall", tmp_path / "r.csv", course_root=root, db_url=url)
    file = cohorts.cohort_file("fall", root)
    file.write_text(text.replace(f"db_url_file: {stored}", "db_url: postgresql://grader:pw@db/gradebook"))
    with pytest.raises(CitykitError, match="holds the gradebook's database password"):
        cohorts.load_cohort(course_root=root)


def test_an_unreachable_gradebook_database_is_one_line_and_changes_nothing(tmp_path, monkeypatch):
    """Walk 18, F4: `setup --db-url` with a database that refused the connection printed two tracebacks
    and still wrote the cohort, made it active and stored the URL."""
    pytest.importorskip("psycopg")
    import socket

    root = tmp_path / "course"
    (root / "notebooks" / SUMS).mkdir(parents=True)
    nbformat.write(sums_source(), root / "notebooks" / SUMS / f"{SUMS}.ipynb")
    secrets = tmp_path / "secrets"
    monkeypatch.setenv(cohorts.SECRETS_ENV, str(secrets))
    roster = write_roster(tmp_path / "r.csv", ["ana"])
    cohorts.setup_cohort("spring", roster, course_root=root)
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://grader:S3cret-{port}@127.0.0.1:{port}/gradebook"
    with pytest.raises(CitykitError) as refused:
        cohorts.setup_cohort("fall", roster, course_root=root, db_url=url)
    said = str(refused.value)
    assert said.startswith("cannot reach the gradebook database") and "\n" not in said
    assert f"S3cret-{port}" not in said and f"127.0.0.1:{port}" in said
    assert not cohorts.cohort_file("fall", root).exists() and not secrets.exists()
    assert cohorts.active_name(root) == "spring"


def test_cohort_file_sets_nbgrader_config(tmp_path):
    root = tmp_path / "course"
    (root / "notebooks" / SUMS).mkdir(parents=True)
    nbformat.write(sums_source(), root / "notebooks" / SUMS / f"{SUMS}.ipynb")
    limits = cohorts.Limits(cell_timeout=17, notebook_cpu_seconds=90, memory_mb=1000)
    roster = write_roster(tmp_path / "r.csv", ["ana", "ben"])
    with pytest.raises(cohorts.PastDueDate, match="already past"):
        setup("spring-2026", roster, course_root=root, due={"sums": "2026-03-01"})
    made = setup("spring-2026", roster, course_root=root, due={"sums": "2026-03-01"}, late_policy="zero",
                 limits=limits, past_due_ok=True, lms_assignments={"sums": "12345"})  # fmt: skip
    loaded = cohorts.load_cohort(course_root=root)
    assert loaded == made and loaded.student_ids == ["ana", "ben"]
    assert loaded.due == {SUMS: "2026-03-01T23:59:59+00:00"} and loaded.lms_assignments == {SUMS: "12345"}
    chicago = setup("spring-2026", roster, course_root=root, due={"sums": "2031-03-01"}, timezone="America/Chicago")
    assert chicago.due == {SUMS: "2031-03-01T23:59:59-06:00"} and chicago.lms_assignments == {SUMS: "12345"}
    with pytest.raises(CitykitError, match="time zone"):
        setup("spring-2026", roster, course_root=root, timezone="Mars/Olympus")
    made = setup(
        "spring-2026",
        roster,
        course_root=root,
        due={"sums": "2026-03-01"},
        late_policy="zero",
        limits=limits,
        past_due_ok=True,
    )
    loaded = cohorts.load_cohort(course_root=root)
    assert len(loaded.course_version["content_hash"]) == len("sha256:") + 16
    # the copy nbgrader and formgrader read in grading/ gives the same settings as citykit's loader
    from traitlets.config.loader import PyFileConfigLoader

    for config in (
        load_config(root),
        PyFileConfigLoader("nbgrader_config.py", path=str(root / "grading")).load_config(),
    ):
        assert config.CourseDirectory.db_url == f"sqlite:///{root.resolve() / 'grading' / 'gradebook.db'}"
        assert config.Execute.timeout == 17 and config.ExecutePreprocessor.timeout == 17
        assert config.Execute.kernel_name == "python3" and config.OverwriteCells.add_missing_cells is True
        assert config.LateSubmissionPlugin.penalty_method == "zero"
    assert (root / "grading" / "exchange").stat().st_mode & 0o777 == 0o777
    with sqlite3.connect(root / "grading" / "gradebook.db") as db:
        assert db.execute("SELECT id, first_name, lms_user_id FROM student ORDER BY id").fetchall() == [
            ("ana", "Ana", "100"),
            ("ben", "Ben", "101"),
        ]
        assert db.execute("SELECT name, duedate FROM assignment").fetchall() == [(SUMS, "2026-03-01 23:59:59.000000")]
    # the course version changes with the course
    (root / "notebooks" / SUMS / "notes.md").write_text("more", encoding="utf-8")
    assert cohorts.course_version(root) != loaded.course_version


# ---------------------------------------------------------------------------------- end to end (slow)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning")  # the broken submissions lint
@pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId")  # must catch are broken on purpose
def test_cohort_end_to_end(tmp_path, riverton):
    root = tmp_path / "course"
    (root / "notebooks" / SUMS).mkdir(parents=True)
    source = root / "notebooks" / SUMS / f"{SUMS}.ipynb"
    nbformat.write(sums_source(), source)
    shutil.copytree(paths.notebooks_dir() / M04, root / "notebooks" / M04)
    roster = write_roster(tmp_path / "roster.csv", sorted([*EXPECTED, "broken"]))
    # 6 s per cell, so the endless loop is stopped soon (it runs three times: parallel, plain nbgrader and the
    # regrade; 01-sums' cells take milliseconds); module 04's cells load the dataset (8 s at a load of 10 on
    # 2 cores, a CI runner's worst), so it is graded with the default 120 s
    limits = cohorts.Limits(cell_timeout=6, notebook_cpu_seconds=300, memory_mb=4096)
    m04_limits = replace(limits, cell_timeout=cohorts.Limits().cell_timeout)
    setup("spring", roster, course_root=root, due={"sums": "2030-01-01"}, late_policy="zero", lms_assignments={"sums": "777"},
                  limits=limits)  # fmt: skip

    generate(None, course_root=root)
    for module in (SUMS, M04):
        assert (release(module, course_root=root) / f"{module}.ipynb").exists()

    released = nbformat.read(root / "grading" / "release" / SUMS / f"{SUMS}.ipynb", as_version=4)
    downloads = tmp_path / "lms-download"
    downloads.mkdir()
    for student, nb in learner_notebooks(released).items():
        file = tmp_path / "work" / student / f"{SUMS}.ipynb"
        file.parent.mkdir(parents=True)
        file.write_text(
            nb if isinstance(nb, str) else json.dumps(nb, indent=1), encoding="utf-8"
        )  # as saved, ids and all
        if student == "zipper":  # a Windows laptop: the LMS download route
            with zipfile.ZipFile(downloads / "zipper.zip", "w") as archive:
                archive.write(file, f"zipper_12345_{SUMS}.ipynb")
        else:
            exchange_submit(SUMS, student, file, course_root=root)
    exchange_submit(M04, "correct", paths.notebooks_dir() / M04 / f"{M04}.ipynb", course_root=root)
    exchange_submit(M04, "blank", root / "grading" / "release" / M04 / f"{M04}.ipynb", course_root=root)

    everyone = sorted((set(EXPECTED) | {"broken"}) - {"zipper"})
    assert collect(SUMS, course_root=root).students == everyone
    assert collect_zips(SUMS, downloads, course_root=root).students == sorted([*everyone, "zipper"])
    assert collect(M04, course_root=root).students == ["blank", "correct"]
    late = root / "grading" / "submitted" / "late" / SUMS / "timestamp.txt"
    late.write_text("2030-01-02 09:00:00.000000 UTC", encoding="utf-8")  # after the due date

    # lint, before anything is graded
    from citykit.grading.lint import lint_assignment

    codes = {s: {p.code for p in found} for s, found in lint_assignment(SUMS, course_root=root).items()}
    assert codes["broken"] == {"invalid-json"}
    assert codes["duplicated"] == {"duplicate-cell", "duplicate-cell-id"}
    assert codes["deleted"] == {"deleted-cell"} and codes["tampered"] == {"edited-locked-cell"}
    assert codes["kernel"] == {"wrong-kernel"}
    assert all(not codes[s] for s in ("correct", "partial", "blank", "late", "loop", "hog", "zipper"))

    # a copy of the course as collected, for plain sequential nbgrader
    sequential_root = tmp_path / "sequential"
    shutil.copytree(root, sequential_root)

    result = autograde_cohort(SUMS, workers=2, course_root=root, progress=False)
    assert set(result.not_graded) == {"broken"} and "not valid JSON" in result.not_graded["broken"]
    autograde_cohort(M04, workers=2, course_root=root, progress=False, limits=m04_limits)
    source04 = nbformat.read(paths.notebooks_dir() / M04 / f"{M04}.ipynb", as_version=4)
    m04_points = sum(c.metadata["nbgrader"]["points"] for c in source04.cells
                     if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")  # fmt: skip
    autograded = cell_grades(root / "grading" / "gradebook.db")
    code_cells = autograded[autograded["grade_id"] != "why"]
    sums_points = code_cells[code_cells["assignment"] == SUMS].groupby("student")["auto_score"].sum()
    assert sums_points.to_dict() == {s: before for s, (before, _) in EXPECTED.items()}
    m04_auto = code_cells[code_cells["assignment"] == M04].groupby("student")["auto_score"].sum()
    assert m04_auto.to_dict() == {"correct": m04_points, "blank": 0}
    assert result.scores["late"] == 0 and result.scores["correct"] == 5  # late policy: zero
    graded_hog = nbformat.read(root / "grading" / "autograded" / "hog" / SUMS / f"{SUMS}.ipynb", as_version=4)
    assert any(o.get("ename") == "MemoryError" for c in graded_hog.cells for o in c.get("outputs", []))
    graded_loop = nbformat.read(root / "grading" / "autograded" / "loop" / SUMS / f"{SUMS}.ipynb", as_version=4)
    assert any(
        o.get("ename") in ("CellTimeoutError", "KeyboardInterrupt")
        for c in graded_loop.cells
        for o in c.get("outputs", [])
    )

    # plain nbgrader, one learner after another (its API runs `nbgrader autograde`'s converter, with the
    # course's two-phase Execute step, as the formgrader does)
    with limited_kernels(course_root=sequential_root), grader_env():
        for module, students in ((SUMS, sorted([*everyone, "zipper"])), (M04, ["blank", "correct"])):
            config = load_config(sequential_root)
            config.Execute.timeout = (m04_limits if module == M04 else limits).cell_timeout
            api = nbgrader_api_for(config)
            for student in students:
                outcome = api.autograde(module, student, force=True, create=True)
                assert outcome["success"] == (student != "broken"), student  # plain nbgrader fails on broken JSON
    sequential = cell_grades(sequential_root / "grading" / "gradebook.db")
    sequential = sequential[sequential["student"] != "broken"].reset_index(drop=True)  # a failed run's empty rows
    pd.testing.assert_frame_equal(autograded, sequential)

    # a test fix, no `generate`: the student version is regenerated and everyone graded with the old
    # test is regraded; the cohort file records which version graded whom
    old_version = cohorts.load_cohort(course_root=root).graded[SUMS]["correct"]
    nbformat.write(sums_source(mean_tolerance="1e-9"), source)
    again = autograde_cohort(SUMS, workers=2, course_root=root, progress=False)
    assert again.regenerated and set(again.scores) == set(EXPECTED) and set(again.regraded) == set(EXPECTED)
    assert again.changed == {"partial": (5.0, 2.0)}
    assert "1e-9" not in (root / "grading" / "release" / SUMS / f"{SUMS}.ipynb").read_text(encoding="utf-8")
    graded_with = cohorts.load_cohort(course_root=root).graded[SUMS]
    assert set(graded_with.values()) == {again_version := graded_with["correct"]} and again_version != old_version
    skipped = autograde_cohort(SUMS, ["correct"], course_root=root, progress=False)
    assert skipped.skipped == ["correct"] and not skipped.changed and not skipped.regenerated
    forced = autograde_cohort(SUMS, ["correct"], force=True, course_root=root, progress=False)
    assert forced.regraded == {"correct": "--force"} and "no score changed" in forced.summary()
    # a resubmission is regraded without --force
    fixed = tmp_path / "work" / "partial-again" / f"{SUMS}.ipynb"
    fixed.parent.mkdir(parents=True)
    nbformat.write(answered(released, RIGHT), fixed)
    exchange_submit(SUMS, "partial", fixed, course_root=root)
    collect(SUMS, course_root=root)
    resubmitted = autograde_cohort(SUMS, workers=2, course_root=root, progress=False)
    assert resubmitted.regraded == {"partial": "a newer submission"} and resubmitted.changed == {"partial": (2.0, 5.0)}
    assert "partial" not in resubmitted.skipped and "correct" in resubmitted.skipped

    # feedback: each exercise's points and the visible advice, never hidden-test source
    pages = feedback(SUMS, course_root=root)
    assert len(pages) == len(EXPECTED) + 1  # and a page for the broken notebook, saying why
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not any(line in html for line in HIDDEN_LINES), page
        if "broken" not in str(page):
            assert "sum-of-values" in html and "Your points" in html
    page_of = {s: (root / "grading" / "feedback" / s / SUMS / f"{SUMS}.html").read_text(encoding="utf-8")
               for s in ("partial", "tampered", "loop", "broken", "correct")}  # fmt: skip
    # a written answer waiting for the instructor is "not graded yet", not 0; a blank one scores 0
    assert "5 of 6 (1 points of written answers not graded yet" in page_of["correct"]
    assert "not graded yet" not in page_of["partial"]
    assert "A hidden check of `mean-of-values` failed" in page_of["tampered"]
    assert "restored the original" in page_of["tampered"]
    assert (
        f"This cell ran longer than {limits.cell_timeout} s" in page_of["loop"]
        and "KeyboardInterrupt" not in page_of["loop"]
    )
    assert "not valid JSON" in page_of["broken"] and "submit it again" in page_of["broken"]
    # what plain nbgrader renders as feedback, the autograded notebook, shows the hidden tests
    plain = (root / "grading" / "autograded" / "tampered" / SUMS / f"{SUMS}.ipynb").read_text(encoding="utf-8")
    assert all(json.dumps(line)[1:-1] in plain for line in HIDDEN_LINES)

    # export: nbgrader's CSV and Canvas's gradebook import
    nbgrader_csv, canvas_csv = export(course_root=root)
    assert {"assignment", "student_id", "score", "late_submission_penalty"} <= set(pd.read_csv(nbgrader_csv).columns)
    assert canvas_csv.read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads accented names right
    from citykit.grading.export import not_graded_yet

    assert [(a, s) for a, s, _ in not_graded_yet(root)] == [(SUMS, "correct"), (M04, "correct")]
    canvas = pd.read_csv(canvas_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    # Canvas matches "Name (id)" to its assignment; a module without an LMS id keeps its name
    assert list(canvas.columns) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{SUMS} (777)", M04]
    canvas = canvas.rename(columns={f"{SUMS} (777)": SUMS})
    assert canvas.iloc[0]["Student"].strip() == "Points Possible" and float(canvas.iloc[0][SUMS]) == 6
    by_name = canvas.iloc[1:].set_index("Student")
    assert by_name.loc["Learner, Partial", SUMS] == "5.0" and by_name.loc["Learner, Late", SUMS] == "0.0"
    assert by_name.loc["Learner, Broken", SUMS] == "" and by_name.loc["Learner, Correct", M04] == f"{m04_points:.1f}"
    assert by_name.loc["Learner, Correct", "ID"] == "102" and by_name.loc["Learner, Correct", "Section"] == "Cohort A"

    # the model answer beside every learner's written answer (formgrader has no place for it)
    from citykit.grading.answers import written_answers

    answers = written_answers(SUMS, course_root=root).read_text(encoding="utf-8")
    assert answers.index("Model answer") < answers.index("Why is the mean not the median here?")
    assert "The values are spread evenly" in answers and answers.count('class="learner"') == len(EXPECTED) + 1
    assert "correct <small>not graded yet" in answers and "partial <small>0 / 1 - blank" in answers

    # formgrader (`citykit lab --instructor`) reads the cohort's gradebook
    import urllib.request

    from citykit.lessons import lab

    server = lab.start_lab(instructor=True, course_root=root, quiet=True)
    try:
        server.wait_ready()
        request = urllib.request.Request(f"{server.url}formgrader/api/assignments",
                                         headers={"Authorization": f"token {server.token}"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            listed = {a["name"]: a for a in json.load(response)}
    finally:
        server.stop()
    assert listed[SUMS]["num_submissions"] == len(EXPECTED) + 1 and listed[M04]["num_submissions"] == 2

    # the dashboard renders
    report = dashboard(tmp_path / "dashboard", course_root=root)
    html = report.html.read_text(encoding="utf-8")
    for heading in ("Learning objectives by learner", "Score distributions per module", "The most failed tests",
                    "Learners who need help"):  # fmt: skip
        assert heading in html
    assert html.count("<img") >= 2
    assert "04 typical-wait" in html  # module 04's grade_ids mapped to its objectives by course.yml


def test_kernels_named_python3_run_under_the_limits(capfd):
    """The pinned kernel name stays `python3`; inside `limited_kernels` it starts with RLIMIT_AS and
    RLIMIT_CPU set: an oversized allocation fails, and a busy loop is killed at the CPU limit. It does
    not print ipykernel's per-start notice about loopback TCP (once per learner, it buries errors)."""
    import time

    resource = pytest.importorskip("resource", reason="no resource limits on this system (Windows)")

    from jupyter_client.manager import start_new_kernel

    limits = cohorts.Limits(cell_timeout=30, notebook_cpu_seconds=3, memory_mb=1024)
    with limited_kernels(limits):
        km, kc = start_new_kernel(kernel_name="python3")
    try:
        seen = []
        kc.execute_interactive(
            "import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CPU)[0])\n"
            "try:\n    bytearray(2 * 2**30)\nexcept MemoryError:\n    print('MemoryError')",
            timeout=30, output_hook=lambda msg: seen.append(msg["content"].get("text", "")),
        )  # fmt: skip
        assert "".join(seen).split() == [str(1024 * 2**20), "3", "MemoryError"]
        assert "without encryption" not in capfd.readouterr().err
        kc.execute("while True:\n    pass")
        started = time.monotonic()
        while km.is_alive() and time.monotonic() - started < 30:
            time.sleep(0.2)
        assert not km.is_alive(), "the kernel outlived its CPU limit"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY  # this process is untouched
