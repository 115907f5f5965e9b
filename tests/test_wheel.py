"""The wheel route: `pip install citykit-*.whl` into a clean virtual environment outside the checkout,
then `citykit init`, a tiny city, one report and one grading cycle, all from the course folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULE = "04-time-to-close"

pytestmark = pytest.mark.slow


def run(args, cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A clean venv (outside the checkout) with the freshly built wheel installed; its bin folder."""
    base = tmp_path_factory.mktemp("wheel")
    # a clean copy of the tracked files, so nothing generated in the checkout reaches the wheel
    source = base / "source"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITYKIT_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["COLUMNS"] = "200"  # rich tables at full width
    started = time.monotonic()
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(base / "dist"), str(source)], base, env
    )
    wheel = next((base / "dist").glob("citykit-*.whl"))
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)], base, env)
    run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", str(REPO / "constraints.txt"), str(wheel)],
        base,
        env,
    )
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    print(f"wheel built and installed in a clean venv in {time.monotonic() - started:.0f} s")
    return venv / "bin", env


def test_outside_a_course_folder_commands_name_citykit_init(installed, tmp_path):
    bin_dir, env = installed
    done = subprocess.run(
        [bin_dir / "citykit", "course", "list"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert (
        "citykit init" in done.stderr and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    )


def test_init_build_report_and_grade_from_the_wheel(installed, tmp_path):
    bin_dir, env = installed
    citykit = str(bin_dir / "citykit")
    where = run([str(bin_dir / "python"), "-c", "import citykit; print(citykit.__file__)"], tmp_path, env).stdout
    assert str(bin_dir.parent) in where and str(REPO) not in where  # the installed wheel, not the checkout
    run([citykit, "init", "course"], tmp_path, env)
    course = tmp_path / "course"
    assert (course / "curriculum" / "course.yml").is_file() and (
        course / "notebooks" / MODULE / f"{MODULE}.ipynb"
    ).is_file()
    listed = run([citykit, "course", "list"], course, env).stdout
    assert "time-to-close" in listed and "quality-scorecard" in listed

    run([citykit, "data", "build", "--scale", "tiny"], course, env)
    assert (course / "datasets" / "published" / "riverton" / "service_requests.parquet").is_file()
    out = course / "reports" / "wheel"
    run(
        [citykit, "report", "run", "time-to-close", "-p", "period=2025-Q4", "--out", str(out)],
        course / "notebooks",
        env,
    )
    page = (out / f"{MODULE}.html").read_text(encoding="utf-8")
    assert "Median days to close" in page and "BEGIN SOLUTION" not in page

    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,first_name,last_name\nana,Ana,Ng\n", encoding="utf-8")
    run([citykit, "grade", "setup", "--cohort", "wheel", "--roster", str(roster)], course, env)
    run([citykit, "grade", "generate", "time-to-close"], course, env)
    submitted = course / "grading" / "submitted" / "ana" / MODULE
    submitted.mkdir(parents=True)
    shutil.copyfile(course / "notebooks" / MODULE / f"{MODULE}.ipynb", submitted / f"{MODULE}.ipynb")
    run([citykit, "grade", "autograde", "time-to-close"], course, env)
    exported = run([citykit, "grade", "export", "--out", str(tmp_path / "export")], course, env)
    assert "nbgrader grades" in exported.stdout
    rows = list(csv.DictReader((tmp_path / "export" / "grades.csv").open(encoding="utf-8")))
    ana = next(r for r in rows if r["student_id"] == "ana" and r["assignment"] == MODULE)
    source = json.loads((course / "notebooks" / MODULE / f"{MODULE}.ipynb").read_text(encoding="utf-8"))
    autograded = sum(
        c["metadata"]["nbgrader"]["points"]
        for c in source["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"
    )
    assert autograded > 0 and float(ana["raw_score"]) == autograded  # the written answer waits for a person


def test_citykit_processes_skip_the_slow_iri_checker(installed, tmp_path):
    """rfc3987-syntax comes with jupyter_server's dependencies on the wheel route; citykit skips it."""
    bin_dir, env = installed
    python = str(bin_dir / "python")
    probe = (
        "import sys, nbformat; nbformat.validator.get_validator(); print(sys.modules.get('rfc3987_syntax') is not None)"
    )
    assert run([python, "-c", probe], tmp_path, env).stdout.strip() == "True"  # installed, and plain use loads it
    # the CLI itself: `grade generate` validates notebooks with nbformat, in a course made by init
    run([str(bin_dir / "citykit"), "init", "course"], tmp_path, env)
    cli = (
        "import sys; from citykit.cli import main; assert main(['grade', 'generate', 'time-to-close']) == 0; "
        "assert 'nbformat.validator' in sys.modules; print(getattr(sys.modules.get('rfc3987_syntax'), '__file__', None))"
    )
    assert run([python, "-c", cli], tmp_path / "course", env).stdout.strip().splitlines()[-1] == "None"
