"""Cohort autograding against plain nbgrader: 30 submissions of module 04 (time to close).

    .venv/bin/python benchmarks/bench_grading.py [--learners 30] [--workers N] [--repeat 1] [--quick]

Builds a course copy in a temporary folder with module 04, generates the student version and files
`--learners` submissions (solutions, blanks and solutions with one mistake, in turn). Then, `--repeat`
times each and alternating:
  plain    `nbgrader autograde 04-time-to-close --force` (the CLI, one process, learner after learner), with
           nbgrader's own Execute step (the course's configuration would make it grade in two phases too)
  citykit  `citykit.grading.autograde_cohort(..., workers=N, force=True)` (N = cores + 1 by default; lint, worker processes
           that keep nbgrader imported, one writer of the gradebook, one DuckDB thread per kernel;
           each notebook in the sandbox, its answers exported, every test run in the worker)
and prints the median wall time of each and their ratio. Both grade into their own copy of the
course; the script checks that they give the same grades, cell by cell (and lists the cells that
differ). Needs the bundled city (`citykit data build`); run as root on Linux for the full sandbox.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from citykit import paths
from citykit.grading.assignments import generate, setup, submit
from citykit.grading.autograde import autograde_cohort, default_workers

MODULE = "04-time-to-close"


def make_course(base: Path, learners: int) -> tuple[Path, list[str]]:
    root = base / "course"
    shutil.copytree(paths.notebooks_dir() / MODULE, root / "notebooks" / MODULE)
    roster = base / "roster.csv"
    students = [f"learner{n:02d}" for n in range(learners)]
    roster.write_text("student_id,first_name,last_name\n" + "".join(f"{s},L{s},Bench\n" for s in students))
    setup("bench", roster, course_root=root)
    generate(MODULE, course_root=root)
    source = paths.notebooks_dir() / MODULE / f"{MODULE}.ipynb"
    mistaken = nbformat.read(source, as_version=4)
    for cell in mistaken.cells:
        cell.source = cell.source.replace('["days_to_close"].median()', '["days_to_close"].mean()')
    mistaken_file = base / f"{MODULE}.ipynb"
    nbformat.write(mistaken, mistaken_file)
    for n, student in enumerate(students):
        notebook = (source, None, mistaken_file)[n % 3]
        submit(MODULE, student, notebook, course_root=root)
    return root, students


def cell_grades(root: Path) -> list[tuple]:
    with sqlite3.connect(root / "grading" / "gradebook.db") as db:
        return db.execute("""
            SELECT sa.student_id, bc.name, g.auto_score, g.needs_manual_grade FROM grade g
            JOIN base_cell bc ON bc.id = g.cell_id JOIN submitted_notebook sn ON sn.id = g.notebook_id
            JOIN submitted_assignment sa ON sa.id = sn.assignment_id ORDER BY 1, 2""").fetchall()


STOCK = """
# the benchmark's baseline: nbgrader's own Execute step (tests in the learner's kernel), not the
# two-phase step the course's configuration puts in its place
from nbgrader.converters import Autograde
c.Autograde.autograde_preprocessors = list(Autograde.class_traits()["autograde_preprocessors"].default())
"""


def stock_nbgrader(root: Path) -> None:
    """Make `nbgrader autograde` in this course copy stock nbgrader (the baseline)."""
    with (root / "grading" / "nbgrader_config.py").open("a", encoding="utf-8") as config:
        config.write(STOCK)


def run_plain(root: Path) -> float:
    nbgrader = Path(sys.executable).parent / "nbgrader"
    started = time.perf_counter()
    subprocess.run([str(nbgrader), "autograde", MODULE, "--force"], cwd=root / "grading", check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def run_citykit(root: Path, workers: int) -> float:
    started = time.perf_counter()
    result = autograde_cohort(MODULE, workers=workers, force=True, course_root=root, progress=False)
    if result.not_graded:
        raise SystemExit(f"citykit could not grade: {result.not_graded}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--workers", type=int, default=default_workers(), help="default: cores + 1")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3 learners, one run: checks the benchmark runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.learners, args.repeat = 3, 1
    with tempfile.TemporaryDirectory(prefix="citykit-bench-grading-") as tmp:
        base = Path(tmp)
        plain_root, students = make_course(base / "plain", args.learners)
        citykit_root = base / "citykit" / "course"
        shutil.copytree(plain_root, citykit_root)
        stock_nbgrader(plain_root)
        plain, ours = [], []
        for _ in range(args.repeat):
            plain.append(run_plain(plain_root))
            ours.append(run_citykit(citykit_root, args.workers))
            print(f"  run: plain {plain[-1]:.1f} s, citykit {ours[-1]:.1f} s", flush=True)
        same = cell_grades(plain_root) == cell_grades(citykit_root)
        plain_median, ours_median = statistics.median(plain), statistics.median(ours)
        print(f"{len(students)} submissions of {MODULE}, {args.repeat} run(s) each, medians:")
        print(f"  plain `nbgrader autograde` (CLI, sequential): {plain_median:.1f} s "
              f"({plain_median / len(students):.2f} s per learner)")  # fmt: skip
        print(f"  citykit autograde_cohort, {args.workers} workers ({os.cpu_count()} cores): {ours_median:.1f} s "
              f"({ours_median / len(students):.2f} s per learner)")  # fmt: skip
        print(f"  ratio: {plain_median / ours_median:.2f}x  (grades identical cell by cell: {'yes' if same else 'NO'})")
        if not same:
            plain_grades, our_grades = set(cell_grades(plain_root)), set(cell_grades(citykit_root))
            for row in sorted(plain_grades ^ our_grades):
                print(f"    {'plain  ' if row in plain_grades else 'citykit'} {row}")
            raise SystemExit(1)


if __name__ == "__main__":
    main()
