"""The container route (no Docker here): the run command's mounts and options, the notebook it is
given, and the executor that runs inside it."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook
from notebook_helpers import nbg

from citykit import paths
from citykit.grading.cohort import Limits
from citykit.grading.sandbox import CONTAINER_OUT, Policy, container_command, published_folders
from citykit.grading.scoring import Plan, PlanCell, _phase_one_notebook

IMAGE = "citykit-grader:test"


def mounts(command: list[str]) -> list[dict[str, str]]:
    found = []
    for flag, value in itertools.pairwise(command):
        if flag == "--mount":
            found.append(dict(part.split("=", 1) if "=" in part else (part, "yes") for part in value.split(",")))
    return found


def test_the_run_command_mounts_only_the_notebook_its_folders_and_published_data(tmp_path, riverton):
    limits = Limits(memory_mb=2048, processes=64, file_size_mb=50, wall_seconds=600)
    policy = Policy.detect(limits, container=IMAGE)
    assert policy.container == IMAGE and not policy.isolate
    datasets = [paths.citykit_home() / "published" / "riverton"]
    notebook, work, answers = tmp_path / "notebook.ipynb", tmp_path / "work", tmp_path / "answers"
    command = container_command(policy, notebook, work, answers, datasets, 120, name="citykit-grade-x")
    text = " ".join(command)
    for option in ("run --rm --name citykit-grade-x", "--network none", "--read-only", "--cap-drop ALL",
                   "--security-opt no-new-privileges", "--user 65534:65534", "--memory 2048m", "--memory-swap 2048m",
                   "--pids-limit 64", f"--ulimit fsize={50 * 2**20}:{50 * 2**20}", "--ulimit core=0"):  # fmt: skip
        assert option in text, option
    assert "-v" not in command and "--volume" not in command and "--privileged" not in text
    found = {m["source"]: m for m in mounts(command)}
    assert set(found) == {str(notebook), str(work), str(answers), str(datasets[0])}
    assert found[str(notebook)].get("readonly") and found[str(datasets[0])].get("readonly")
    assert not found[str(work)].get("readonly") and found[str(answers)]["target"] == CONTAINER_OUT
    course = paths.course_root()
    for source in found:  # never the course's notebooks, grading folder or raw exports
        assert not any(Path(source).is_relative_to(course / part) for part in ("notebooks", "grading", "datasets/raw"))
    assert command[command.index(IMAGE) + 1 :][:4] == ["python", "-m", "citykit.grading.sandbox", "--execute"]
    mounted = published_folders()  # what a container gets: the built dataset's published tables, nothing raw
    assert (paths.citykit_home() / riverton.location).resolve() in mounted
    assert all(folder.parent.name == "published" for folder in mounted)
    assert "container" in " ".join(policy.enforced())


def test_the_notebook_a_container_gets_has_no_hidden_test_and_exports_to_its_out_folder():
    hidden = "assert total == 3 + 4 + 5  # the hidden check"
    source = new_notebook(cells=[
        new_code_cell("values = [3, 4, 5]", metadata=nbg("setup", locked=True)),
        new_code_cell("total = sum(values)", metadata=nbg("total", solution=True)),
        new_code_cell(f"from math import isclose\nassert total > 0, 'positive'\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS",
                      metadata=nbg("sum", grade=True, locked=True, points=1)),
    ])  # fmt: skip
    plan = Plan("01-sums", "01-sums", (PlanCell("locked", "setup", ""),), {"total": {"total": None}}, True)
    prepared, origin = _phase_one_notebook(source, plan, Path(CONTAINER_OUT), 2**20)
    text = json.dumps(prepared)
    assert hidden not in text and "HIDDEN" not in text and "'positive'" not in text  # the tests run in the scorer
    assert prepared.cells[3].source == "from math import isclose"  # a test cell keeps its imports
    assert origin == [0, 1, None, 2] and f"'{CONTAINER_OUT}'" in prepared.cells[2].source


def test_the_executor_runs_every_cell_and_writes_the_outputs(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 6 * 7\nprint(x)"), new_code_cell("1 / 0"), new_code_cell("print(x + 1)")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})  # fmt: skip
    source, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    subprocess.run([sys.executable, "-m", "citykit.grading.sandbox", "--execute", str(source), str(out), "60"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=180)  # fmt: skip
    ran = nbformat.read(out, as_version=4)
    assert ran.cells[0].outputs[0]["text"] == "42\n" and ran.cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert ran.cells[2].outputs[0]["text"] == "43\n"  # a failing cell does not stop the rest


def test_the_image_is_built_from_the_kit_without_the_courses_notebooks_grading_or_data():
    dockerfile = (paths.course_root() / "grading" / "Dockerfile.grader").read_text(encoding="utf-8")
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY")]
    sources = [s for line in copies for s in line if not s.startswith("--")]
    assert "environment.yml" in sources and "citykit" in sources
    assert "." not in sources and not any(
        s.startswith(("notebooks", "datasets/raw", "datasets/published")) for s in sources
    )
    assert not any(
        s == "grading" or s.startswith(("grading/submitted", "grading/cohorts", "grading/gradebook")) for s in sources
    )
    assert 'find / -xdev -name "*.ipynb"' in dockerfile and "USER 65534:65534" in dockerfile
