"""citykit.lab: learners reach released notebooks only, always with a token."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from citykit.lessons import lab
from citykit.errors import CitykitError

MODULE = "04-time-to-close"


def test_learner_command_serves_the_release_folder_without_formgrader(monkeypatch, tmp_path):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    command = lab.lab_command(course_root=tmp_path, port=8899)
    assert f"--ServerApp.root_dir={tmp_path / 'grading' / 'release'}" in command
    assert "--no-browser" in command and "--ServerApp.port=8899" in command
    assert "--allow-root" not in command
    assert "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False" in command
    assert not any("token" in part.lower() for part in command)  # never visible in the process list


def test_instructor_command_serves_grading_with_formgrader_and_root_needs_allow_root(monkeypatch, tmp_path):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    command = lab.lab_command(instructor=True, course_root=tmp_path)
    assert f"--ServerApp.root_dir={tmp_path / 'grading'}" in command
    assert "--allow-root" in command
    assert not any("formgrader=False" in part for part in command)


def test_token_is_required(tmp_path):
    with pytest.raises(CitykitError, match="token"):
        lab.lab_environment("")
    with pytest.raises(CitykitError, match="citykit grade generate"):
        lab.start_lab(course_root=tmp_path)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (e.g. to the login page) is reported as its status code


def get(url: str, token: str | None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.build_opener(NoRedirect).open(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_learner_server_lists_released_notebooks_and_nothing_else(tmp_path):
    released = tmp_path / "grading" / "release" / MODULE / f"{MODULE}.ipynb"
    solution = tmp_path / "notebooks" / MODULE / f"{MODULE}.ipynb"
    raw = tmp_path / "datasets" / "raw" / "riverton" / "export.csv"
    for path in (released, solution):
        path.parent.mkdir(parents=True)
        nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
    raw.parent.mkdir(parents=True)
    raw.write_text("caller_name,phone\nAda,555-0100\n")

    server = lab.start_lab(course_root=tmp_path, quiet=True)
    try:
        server.wait_ready()
        token, api = server.token, f"{server.url}api/contents"
        request = urllib.request.Request(f"{api}/{MODULE}", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            listing = json.load(response)
        assert [item["name"] for item in listing["content"]] == [f"{MODULE}.ipynb"]
        assert get(f"{api}/{MODULE}/{MODULE}.ipynb", token) == 200
        for path in (
            f"../../notebooks/{MODULE}/{MODULE}.ipynb",
            f"%2E%2E/%2E%2E/notebooks/{MODULE}/{MODULE}.ipynb",
            "../../datasets/raw/riverton/export.csv",
            f"{solution}",
            f"{raw}",
        ):
            assert get(f"{api}/{path}", token) in (403, 404), path
        assert get(f"{api}/{MODULE}/{MODULE}.ipynb", None) == 403
        assert get(f"{api}/{MODULE}/{MODULE}.ipynb", "wrong-token") == 403
        assert get(f"{server.url}lab/tree/{MODULE}", None) == 302  # the lab page asks to log in
        assert get(f"{server.url}formgrader", token) == 404  # instructors only
        page = urllib.request.Request(f"{server.url}lab", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(page, timeout=20) as response:
            html = response.read().decode()
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)[1])
        assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]  # no news prompt

        def setting_default(plugin: str, name: str):
            request = urllib.request.Request(f"{server.url}lab/api/settings/{plugin}",
                                             headers={"Authorization": f"token {token}"})  # fmt: skip
            with urllib.request.urlopen(request, timeout=20) as response:
                return json.load(response)["schema"]["properties"][name]["default"]

        # the notebook's kernel starts without a "Select Kernel" dialog; no update checks in a classroom
        assert setting_default("@jupyterlab/notebook-extension:tracker", "autoStartDefaultKernel") is True
        assert setting_default("@jupyterlab/apputils-extension:notification", "checkForUpdates") is False
    finally:
        server.stop()
    assert server.process.poll() is not None


@pytest.mark.slow
def test_instructor_server_offers_formgrader(tmp_path):
    grading_dir = tmp_path / "grading"
    grading_dir.mkdir()
    (tmp_path / "notebooks").mkdir()
    config = Path(lab.paths.grading_dir() / "nbgrader_config.py").read_text()
    (grading_dir / "nbgrader_config.py").write_text(config)  # its folders follow its own location
    server = lab.start_lab(instructor=True, course_root=tmp_path, quiet=True)
    try:
        server.wait_ready()
        assert get(f"{server.url}formgrader/api/assignments", server.token) == 200
        assert get(f"{server.url}formgrader/api/assignments", None) in (302, 403)  # login first
    finally:
        server.stop()
