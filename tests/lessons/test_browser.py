"""A learner in a real browser: JupyterLab serves the released course (token on), headless Chromium
opens a completed module, runs all cells, and sees no error. The screenshot is kept in
`test-artifacts/` as an artifact of the test run."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import nbformat
import pytest
from notebook_helpers import CHROMIUM, CHROMIUM_ARGS

from citykit import paths
from citykit.grading import workspace
from citykit.lessons import lab
from citykit.lessons.course import find_module

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODULE = "time-to-close"


def _completed_release(course_root: Path) -> str:
    """A release folder holding the module as a learner who finished it would have it (hidden tests out)."""
    from nbgrader.preprocessors import ClearHiddenTests

    module = find_module(MODULE)
    nb = nbformat.read(module.notebook, as_version=4)
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    folder = course_root / "grading" / "release" / module.folder_name
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / module.notebook.name)
    return f"{module.folder_name}/{module.notebook.name}"


def _saved_notebook(server: lab.LabServer, path: str) -> dict:
    request = urllib.request.Request(
        f"{server.url}api/contents/{path}?content=1", headers={"Authorization": f"token {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["content"]


def _render_every_cell(settings_dir: Path) -> None:
    """This test's own JupyterLab user settings: no windowing, so every cell is in the page.
    (JupyterLab renders only the cells in view by default; a prompt out of view cannot be judged.)"""
    tracker = settings_dir / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}), encoding="utf-8")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_learner_runs_a_module_in_jupyterlab_without_errors(tmp_path, riverton, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    notebook_path = _completed_release(tmp_path)
    _render_every_cell(tmp_path / "lab-settings")
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "lab-settings"))
    server = workspace.start_learner_lab(course_root=tmp_path, quiet=True)
    artifacts = paths.course_root() / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    code_prompts = ".jp-CodeCell .jp-InputPrompt"
    try:
        server.wait_ready()
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server.url}lab/tree/{notebook_path}?token={server.token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            shot = artifacts / "lab-04-time-to-close.png"
            try:
                # the status bar says Idle once the kernel is connected (the toolbar's indicator can say so earlier)
                page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=120_000)
                for attempt in range(3):  # on a loaded machine, a Run All sent while the kernel connects is lost
                    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
                    try:
                        page.wait_for_function(
                            f"""() => [...document.querySelectorAll("{code_prompts}")]
                                       .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""",
                            timeout=30_000,
                        )
                        break
                    except sync_api.TimeoutError:
                        if attempt == 2:
                            raise
                # every code cell's prompt holds its execution count: "[12]:" (not "[ ]:" or "[*]:")
                page.wait_for_function(
                    f"""() => {{
                        const prompts = [...document.querySelectorAll("{code_prompts}")];
                        return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                    }}""",
                    timeout=300_000,
                )
            finally:  # the screenshot is the artifact, and the first thing to look at when this fails
                dialogs = page.locator(".jp-Dialog-header").all_inner_texts()  # e.g. a "Select Kernel" prompt
                prompts = page.locator(code_prompts).all_inner_texts()
                page.keyboard.press("Control+s")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(shot), full_page=False)
                browser.close()

        assert not dialogs, f"JupyterLab stopped the learner with a dialog: {dialogs}"
        saved = _saved_notebook(server, notebook_path)
        code_cells = [c for c in saved["cells"] if c["cell_type"] == "code"]
        assert len(prompts) == len(code_cells), "every code cell is in the page"
        errors = [o for c in code_cells for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, f"{errors[0]['ename']}: {errors[0]['evalue']}"
        not_run = [f"cell {i}: {c['source'][:40]!r}" for i, c in enumerate(saved["cells"])
                   if c["cell_type"] == "code" and not c["execution_count"]]  # fmt: skip
        assert not not_run, f"cells that did not run: {not_run}"
        assert any(o.get("data", {}).get("image/png") for c in code_cells for o in c["outputs"]), "no chart rendered"
    finally:
        server.stop()
