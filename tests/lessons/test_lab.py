"""citykit.lab: a learner works in a workspace of their own (the cohort's exchange, read-only references,
no way out of it), always with a token; instructors get formgrader."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from citykit.errors import CitykitError
from citykit.grading import workspace
from citykit.lessons import lab

MODULE = "04-time-to-close"


def test_learner_command_serves_the_learners_workspace_without_formgrader(monkeypatch, tmp_path):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    command = lab.lab_command(course_root=tmp_path, port=8899, student="maria_g")
    assert f"--ServerApp.root_dir={tmp_path / 'grading' / 'workspaces' / 'maria_g'}" in command
    assert "--ServerApp.terminals_enabled=False" in command
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
        workspace.start_learner_lab("maria_g", course_root=tmp_path)
    with pytest.raises(CitykitError, match="citykit lab --student maria_g"):
        lab.start_lab(course_root=tmp_path, student="maria_g")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (e.g. to the login page) is reported as its status code


def get(url: str, token: str | None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.build_opener(NoRedirect).open(
            urllib.request.Request(url, headers=headers), timeout=10
        ) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def _course(tmp_path: Path) -> tuple[Path, Path]:
    """A course with a generated (not released) module, a solution and raw data beside it."""
    released = tmp_path / "grading" / "release" / MODULE / f"{MODULE}.ipynb"
    solution = tmp_path / "notebooks" / MODULE / f"{MODULE}.ipynb"
    raw = tmp_path / "datasets" / "raw" / "riverton" / "export.csv"
    for path in (released, solution):
        path.parent.mkdir(parents=True)
        nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
    raw.parent.mkdir(parents=True)
    raw.write_text("caller_name,phone\nAda,555-0100\n")
    guides = tmp_path / "curriculum" / "guides"
    guides.mkdir(parents=True)
    (guides / "data-dictionary.md").write_text("# Data dictionary\n")
    (tmp_path / "curriculum" / "standards").mkdir()
    (tmp_path / "curriculum" / "standards" / "metrics.yml").write_text("metrics: {}\n")
    return solution, raw


def test_a_workspace_holds_references_and_practice_copies_and_never_overwrites(tmp_path):
    _course(tmp_path)
    ws = workspace.prepare_workspace("maria_g", tmp_path)
    assert (ws / MODULE / f"{MODULE}.ipynb").is_file()  # generated, not released: a practice copy
    reference = ws / "curriculum" / "standards" / "metrics.yml"
    assert reference.is_file() and not reference.is_symlink() and not reference.stat().st_mode & 0o222
    config = (ws / "nbgrader_config.py").read_text()
    assert "c.CourseDirectory.student_id = 'maria_g'" in config
    assert f"c.Exchange.root = {str(tmp_path.resolve() / 'grading' / 'exchange')!r}" in config
    (ws / MODULE / f"{MODULE}.ipynb").write_text("my work")
    workspace.prepare_workspace("maria_g", tmp_path)
    assert (ws / MODULE / f"{MODULE}.ipynb").read_text() == "my work"
    other = workspace.prepare_workspace("chloe", tmp_path)
    assert (other / MODULE / f"{MODULE}.ipynb").read_text() != "my work"
    with pytest.raises(CitykitError, match="may use only"):
        workspace.prepare_workspace("../maria", tmp_path)


@pytest.mark.slow
def test_learner_server_serves_the_workspace_and_nothing_else(tmp_path):
    solution, raw = _course(tmp_path)
    ws = workspace.prepare_workspace("maria_g", tmp_path)
    (ws / "escape").symlink_to(tmp_path / "notebooks")  # a link made by kernel code, say
    (ws / "solution.ipynb").symlink_to(solution)  # links to single files out of the workspace
    (ws / "export.csv").symlink_to(raw)
    (ws / "mine.ipynb").symlink_to(ws / MODULE / f"{MODULE}.ipynb")  # a link that stays inside: served

    server = workspace.start_learner_lab("maria_g", course_root=tmp_path, quiet=True)
    try:
        server.wait_ready()
        token, api = server.token, f"{server.url}api/contents"
        request = urllib.request.Request(f"{api}/{MODULE}", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            listing = json.load(response)
        assert [item["name"] for item in listing["content"]] == [f"{MODULE}.ipynb"]
        request = urllib.request.Request(api, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            top = sorted(item["name"] for item in json.load(response)["content"])
        assert "nbgrader_config.py" not in top and {MODULE, "curriculum"} <= set(top)
        assert not {"escape", "solution.ipynb", "export.csv"} & set(top) and "mine.ipynb" in top  # not even listed
        assert get(f"{api}/mine.ipynb", token) == 200
        assert get(f"{api}/{MODULE}/{MODULE}.ipynb", token) == 200
        assert get(f"{api}/curriculum/guides/data-dictionary.md", token) == 200  # the references are there
        for path in (
            f"../../notebooks/{MODULE}/{MODULE}.ipynb",
            f"%2E%2E/%2E%2E/notebooks/{MODULE}/{MODULE}.ipynb",
            "../../datasets/raw/riverton/export.csv",
            f"escape/{MODULE}/{MODULE}.ipynb",  # the symlink leads out: not served
            "solution.ipynb",
            "export.csv",
            f"{solution}",
            f"{raw}",
        ):
            assert get(f"{api}/{path}", token) in (403, 404), path
        for route in ("files/solution.ipynb", "files/export.csv", f"files/escape/{MODULE}/{MODULE}.ipynb",
                      "nbconvert/html/solution.ipynb", "nbconvert/script/solution.ipynb", "view/export.csv"):  # fmt: skip
            assert get(f"{server.url}{route}", token) in (403, 404), route

        def send(method: str, path: str, body: dict) -> int:
            request = urllib.request.Request(f"{api}/{path}", method=method, data=json.dumps(body).encode(),
                                             headers={"Authorization": f"token {token}"})  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        # nothing is written, copied or checkpointed through a link that leads out
        assert send("PUT", "export.csv", {"type": "file", "format": "text", "content": "x"}) == 404
        assert send("PUT", "escape/new.txt", {"type": "file", "format": "text", "content": "x"}) == 404
        assert send("POST", "", {"copy_from": "solution.ipynb"}) == 404
        assert send("POST", "solution.ipynb/checkpoints", {}) == 404
        assert send("PATCH", f"{MODULE}/{MODULE}.ipynb", {"path": "escape/moved.ipynb"}) == 404
        assert raw.read_text() == "caller_name,phone\nAda,555-0100\n"
        assert {p.name for p in (tmp_path / "notebooks").rglob("*")} == {MODULE, f"{MODULE}.ipynb"}
        save = urllib.request.Request(f"{api}/curriculum/standards/metrics.yml", method="PUT",
                                      data=json.dumps({"type": "file", "format": "text", "content": "x"}).encode(),
                                      headers={"Authorization": f"token {token}"})  # fmt: skip
        try:
            urllib.request.urlopen(save, timeout=10)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 403 and "metrics: {}" in (ws / "curriculum" / "standards" / "metrics.yml").read_text()
        assert get(f"{api}/{MODULE}/{MODULE}.ipynb", None) == 403
        assert get(f"{api}/{MODULE}/{MODULE}.ipynb", "wrong-token") == 403
        assert get(f"{server.url}lab/tree/{MODULE}", None) == 302  # the lab page asks to log in
        assert get(f"{server.url}formgrader", token) == 404  # instructors only
        assert get(f"{server.url}api/terminals", token) in (403, 404)  # no shell out of the workspace
        page = urllib.request.Request(f"{server.url}lab", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(page, timeout=20) as response:
            html = response.read().decode()
        config = json.loads(
            re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)[1]
        )
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


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_service_stop_stops_jupyterlab_too(tmp_path, signame):
    """`kill` (TERM) or a closed terminal (HUP) of `citykit lab` stops its JupyterLab and its kernels, as
    Ctrl-C does; so does `kill -9`, which citykit cannot catch: JupyterLab notices its parent is gone."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    course = tmp_path / "course"
    (course / "grading").mkdir(parents=True)
    (course / "notebooks").mkdir()
    (course / "curriculum").mkdir()
    (course / "curriculum" / "course.yml").write_text("modules: []\n", encoding="utf-8")
    (course / "grading" / "nbgrader_config.py").write_text(
        (lab.paths.grading_dir() / "nbgrader_config.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    env = {**__import__("os").environ, "CITYKIT_COURSE": str(course)}
    children: list[psutil.Process] = []

    def alive(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    citykit = subprocess.Popen(
        [sys.executable, "-m", "citykit", "lab", "--instructor", "--port", str(lab.free_port())],
        cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        line = citykit.stdout.readline()  # printed once JupyterLab answers
        assert "token=" in line, line
        url, token = line.split(": ", 1)[1].strip().split("lab?token=")
        start = urllib.request.Request(f"{url}api/kernels", data=b"{}", method="POST",
                                       headers={"Authorization": f"token {token}"})  # fmt: skip
        with urllib.request.urlopen(start, timeout=60) as response:
            assert response.status == 201  # a learner's kernel, in a session of its own
        children += psutil.Process(citykit.pid).children(recursive=True)
        assert len(children) >= 2, "no JupyterLab and kernel under citykit lab"
        citykit.send_signal(getattr(signal, signame))
        assert citykit.wait(30) in (0, -getattr(signal, signame))
        deadline = time.monotonic() + 10
        while any(map(alive, children)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [c.pid for c in children if alive(c)]
    finally:
        import os

        if citykit.poll() is None:
            os.killpg(citykit.pid, signal.SIGKILL)
        for child in filter(alive, children):  # only what this test started
            child.kill()


def test_a_busy_port_is_one_line_before_jupyterlab_starts(tmp_path, monkeypatch):
    """QA walk: `citykit lab --port <busy>` printed 25 lines of JupyterLab's log before its error."""
    import socket

    started = []
    monkeypatch.setattr(lab.subprocess, "Popen", lambda *a, **k: started.append(a))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CitykitError, match=f"port {port} is already in use"):
            lab.start_lab(True, port=port, course_root=tmp_path)
    assert not started


def test_without_port_a_taken_8888_falls_back_to_a_free_port(monkeypatch):
    """CI: `make lab` failed when another lab (another test) held 8888; the default must not."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(lab, "DEFAULT_PORT", taken)
        port = lab.default_port()
        assert port != taken
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # the fallback is really free
