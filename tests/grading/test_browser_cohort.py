"""A cohort's real route in a real browser: a learner opens `citykit lab --student maria_g` (her own
workspace, the cohort's exchange), fetches module 04 in nbgrader's Assignments tab, answers, validates
and submits there; the instructor collects and autogrades; her score is every autograded point; a
second learner's workspace is untouched. Screenshots go to `test-artifacts/`."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import urllib.request
from pathlib import Path

import nbformat
import pytest
from notebook_helpers import CHROMIUM, CHROMIUM_ARGS

from citykit import paths
from citykit.grading import workspace
from citykit.grading.assignments import collect, generate, release, setup
from citykit.grading.autograde import autograde_cohort
from citykit.lessons import lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

M04 = "04-time-to-close"
ROSTER = "student_id,first_name,last_name,canvas_id\nmaria_g,María,González,50001\nchloe,Chloé,Dubois,50002\n"


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _answered(student_version: dict, source: Path) -> dict:
    """The fetched student version with each answer cell (code and written) holding the source's solution."""
    solutions = {}
    for cell in nbformat.read(source, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = [line for line in cell.source.splitlines() if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line]  # fmt: skip
            solutions[meta["grade_id"]] = "\n".join(lines)
    for cell in student_version["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in solutions:
            cell["source"] = solutions[grade_id]
    return student_version


def _api(server: lab.LabServer, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{server.url}api/contents/{path}" + ("" if body else "?content=1"),
        data=json.dumps(body).encode() if body else None, method="PUT" if body else "GET",
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_a_learner_fetches_validates_and_submits_in_the_lab_and_is_graded(tmp_path, riverton, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    root = tmp_path / "course"
    shutil.copytree(paths.notebooks_dir() / M04, root / "notebooks" / M04)
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    setup("spring", tmp_path / "roster.csv", course_root=root)
    generate("time-to-close", course_root=root)
    release("time-to-close", course_root=root)
    chloe = workspace.prepare_workspace("chloe", root)
    (chloe / "notes.md").write_text("Chloé's own notes", encoding="utf-8")
    chloe_before = _tree(chloe)
    assert M04 not in chloe_before  # released through the exchange: fetched, not copied in

    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"windowingMode": "none"}), encoding="utf-8")
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "lab-settings"))
    server = workspace.start_learner_lab("maria_g", course_root=root, quiet=True)
    artifacts = paths.course_root() / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    try:
        server.wait_ready()
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                page.goto(f"{server.url}lab?token={server.token}")
                page.wait_for_selector(".jp-DirListing-content", timeout=60_000)
                page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Assignment List").first.click()
                released = page.locator("#released_assignments_list")
                released.get_by_text(M04).wait_for(timeout=60_000)
                released.get_by_role("button", name="Fetch").click()
                fetched = page.locator("#fetched_assignments_list")
                fetched.get_by_text(M04).first.wait_for(timeout=60_000)

                # the learner answers (the lab's editor saves through this same contents API)
                path = f"{M04}/{M04}.ipynb"
                student_version = _api(server, path)["content"]
                _api(
                    server,
                    path,
                    {
                        "type": "notebook",
                        "format": "json",
                        "content": _answered(student_version, root / "notebooks" / M04 / f"{M04}.ipynb"),
                    },
                )

                fetched.get_by_text(M04).first.click()  # unfolds the assignment's notebooks
                fetched.get_by_role("button", name="Validate").first.click()
                page.get_by_text("Success! Your notebook passes all the tests.").wait_for(timeout=600_000)
                page.locator(".jp-Dialog-button", has_text=re.compile("ok", re.I)).first.click()
                fetched.get_by_role("button", name="Submit").first.click()
                page.locator("#submitted_assignments_list").get_by_text(M04).first.wait_for(timeout=60_000)
            finally:
                page.screenshot(path=str(artifacts / "lab-assignments-submit.png"), full_page=False)
                browser.close()
    finally:
        server.stop()

    maria = workspace.workspace_dir("maria_g", root)
    assert (maria / M04 / f"{M04}.ipynb").is_file()
    assert not (root / "grading" / "release" / M04 / ".ipynb_checkpoints").exists()  # release folder untouched
    assert collect("time-to-close", course_root=root).students == ["maria_g"]
    grades = autograde_cohort("time-to-close", workers=1, course_root=root, progress=False)
    source = nbformat.read(root / "notebooks" / M04 / f"{M04}.ipynb", as_version=4)
    autograded_points = sum(c.metadata["nbgrader"]["points"] for c in source.cells
                            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")  # fmt: skip
    assert grades.scores == {"maria_g": autograded_points}, grades.summary()
    assert _tree(chloe) == chloe_before  # the other learner's workspace is untouched
