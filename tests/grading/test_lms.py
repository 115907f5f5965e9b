"""LMS downloads reach the right learner: Canvas, Moodle and Blackboard names matched by the roster's
ids, resubmissions (-1), late markers, underscore ids, an unmatched file reported and not collected."""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from notebook_helpers import nbg

from citykit.grading.assignments import collect_zips, generate, setup
from citykit.grading.cohort import Learner
from citykit.grading.lms import match_file

A = "01-sums"
NB = f"{A}.ipynb"
ROSTER = """student_id,first_name,last_name,canvas_id,moodle_id,blackboard_id
maria_g,María,González,50001,70001,mgonzalez
chloe,Chloé,Dubois,50002,70002,cdubois
ada,Ada,Lovelace,,,
"""
LEARNERS = [Learner("maria_g", "María", "González", canvas_id="50001", moodle_id="70001", blackboard_id="mgonzalez"),
            Learner("chloe", "Chloé", "Dubois", canvas_id="50002"), Learner("ada", "Ada", "Lovelace"),
            Learner("maria", "Maria", "Other")]  # fmt: skip


@pytest.mark.parametrize(("name", "who", "by", "late", "attempt"), [
    (f"gonzalezmaria_50001_9001001_{NB}", "maria_g", "canvas_id", False, 0),
    (f"gonzalezmaria_50001_9001001_{A}-1.ipynb", "maria_g", "canvas_id", False, 1),
    (f"gonzalezmaria_late_50001_9001001_{NB}", "maria_g", "canvas_id", True, 0),
    (f"María González_70001_assignsubmission_file_{NB}", "maria_g", "moodle_id", False, 0),
    (f"Sums_mgonzalez_attempt_2026-03-06-17-02-11_{NB}", "maria_g", "blackboard_id", False, 0),
    (f"maria_g_{NB}", "maria_g", "student_id", False, 0),  # an id with `_`, not `maria`
    (f"maria_{NB}", "maria", "student_id", False, 0),
    (f"ada_12345_{NB}", "ada", "student_id", False, 0),
    (f"lovelaceada_59998_9001004_ada_{NB}", "ada", "student_id", False, 0),  # Canvas, no canvas_id: the packed name
])  # fmt: skip
def test_names_of_each_lms_match_the_roster(name, who, by, late, attempt):
    found = match_file(name, LEARNERS, [NB])
    assert (found.student_id, found.by, found.late, found.attempt, found.notebook) == (who, by, late, attempt, NB)


def test_unknown_learners_and_other_files_match_nobody():
    assert match_file(f"dupontjean_59999_9001009_{NB}", LEARNERS, [NB]) is None
    assert match_file("gonzalezmaria_50001_9001001_notes.ipynb", LEARNERS, [NB]) is None
    assert match_file("gonzalezmaria_50001_9001001_01-sums.py", LEARNERS, [NB]) is None
    stamp = match_file(f"Sums_mgonzalez_attempt_2026-03-06-17-02-11_{NB}", LEARNERS, [NB]).time
    assert stamp == dt.datetime(2026, 3, 6, 17, 2, 11, tzinfo=dt.UTC)


def _zip(path: Path, entries: dict[str, tuple[str, tuple]]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (text, when) in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=when), text)


@pytest.mark.slow
def test_a_canvas_download_is_filed_under_roster_ids_with_times_and_late_policy(tmp_path):
    root = tmp_path / "course"
    (root / "notebooks" / A).mkdir(parents=True)
    cells = [new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", metadata=nbg("x", solution=True)),
             new_code_cell("assert x == 1", metadata=nbg("x-test", grade=True, locked=True, points=1))]  # fmt: skip
    nbformat.write(new_notebook(cells=cells), root / "notebooks" / A / NB)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    setup("spring", roster, course_root=root, due={"sums": "2030-03-06T17:00"}, timezone="America/Chicago")
    generate("sums", course_root=root)

    def answer(x: int) -> str:
        return nbformat.writes(new_notebook(cells=[new_code_cell(f"x = {x}")]))

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    _zip(downloads / "submissions.zip", {
        f"gonzalezmaria_50001_9001001_{NB}": (answer(1), (2030, 3, 5, 10, 0, 0)),
        f"gonzalezmaria_50001_9001002_{A}-1.ipynb": (answer(2), (2030, 3, 6, 9, 0, 0)),  # the resubmission
        f"duboischloe_late_50002_9001003_{NB}": (answer(3), (2030, 3, 6, 16, 0, 0)),  # the LMS says late
        f"dupontjean_59999_9001009_{NB}": (answer(4), (2030, 3, 5, 10, 0, 0)),  # not in the roster
    })  # fmt: skip
    loose = downloads / f"ada_{NB}"
    loose.write_text(answer(5), encoding="utf-8")
    when = dt.datetime(2030, 3, 4, 12, 0, tzinfo=dt.UTC).timestamp()
    os.utime(loose, (when, when))

    done = collect_zips("sums", downloads, course_root=root)
    assert done.students == ["ada", "chloe", "maria_g"]
    assert done.unmatched == [f"dupontjean_59999_9001009_{NB}"]
    assert f"dupontjean_59999_9001009_{NB}" in done.summary() and "NOT COLLECTED" in done.summary()
    # two files of maria_g: the summary says which one was kept
    assert f"maria_g: 2 files; kept the newest, gonzalezmaria_50001_9001002_{A}-1.ipynb (not used: " \
           f"gonzalezmaria_50001_9001001_{NB})" in done.summary()  # fmt: skip
    submitted = root / "grading" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "chloe", "maria_g"]  # no invented ids
    assert "x = 2" in (submitted / "maria_g" / A / NB).read_text(encoding="utf-8")  # the newest kept
    assert sorted(p.name for p in (submitted / "maria_g" / A).iterdir()) == [NB, "timestamp.txt"]

    def stamp(who: str) -> dt.datetime:
        text = (submitted / who / A / "timestamp.txt").read_text(encoding="utf-8").strip()
        return dt.datetime.fromisoformat(text.replace(" UTC", "").replace(" ", "T")).replace(tzinfo=dt.UTC)

    chicago_due = dt.datetime(2030, 3, 6, 23, 0, tzinfo=dt.UTC)  # 17:00 in Chicago (CST, UTC-6)
    assert stamp("maria_g").replace(microsecond=0) == dt.datetime(2030, 3, 6, 15, 0, tzinfo=dt.UTC)  # 09:00 CST
    assert stamp("chloe") > chicago_due  # 16:00 local is before the due time, but Canvas marked it late
    assert stamp("ada") == dt.datetime(2030, 3, 4, 12, 0, tzinfo=dt.UTC)

    # nbgrader reads the same times: chloe is late, maria_g is not
    from nbgrader.utils import parse_utc

    due = parse_utc("2030-03-06 23:00:00 UTC")
    assert parse_utc((submitted / "chloe" / A / "timestamp.txt").read_text()) > due
    assert parse_utc((submitted / "maria_g" / A / "timestamp.txt").read_text()) < due
