"""JupyterLab for the course: each learner works in a workspace of their own; instructors get formgrader.

Learner mode serves the learner's workspace, `grading/workspaces/<student_id>/`, never the
instructor's release folder: modules arrive there through nbgrader's Assignments tab (Fetch, then
Validate and Submit, through the cohort's exchange, as the learner's roster id), and the modules the
instructor generated but has not released through the exchange are copied in for practice. The
references modules send learners to (the learner guides, data dictionary, glossary and the city's
standards) are copied in, read-only, at their course paths (`curriculum/...`). The server serves only
real files under the workspace (no symlink leads out), hides no-one's solutions because none are
there, and has no terminal. Instructor mode serves `grading/` with nbgrader's formgrader. A token is
always required: generated unless given, passed to the server in the environment (never on the
command line, where other users of the machine could read it) and printed for the user.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError
from citykit.grading.cohort import STUDENT_ID, load_cohort
from citykit.grading.config import load_config

WORKSPACES = "workspaces"  # under grading/
REFERENCES = ("curriculum/guides/learner.md", "curriculum/guides/glossary.md", "curriculum/guides/data-dictionary.md",
              "curriculum/guides/analyst.md", "curriculum/standards")  # fmt: skip
READ_ONLY_PREFIX = "curriculum/"
WORKSPACE_CONFIG = "nbgrader_config.py"  # the learner's nbgrader settings, in the workspace (not listed)

# nbgrader's server extensions: learners keep validate/assignment list; formgrader is for instructors.
INSTRUCTOR_ONLY_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
# Jupyter config the course adds (labconfig/): no "official Jupyter news?" prompt and no update check
# in a classroom, and a notebook's kernel starts without asking which one (no "Select Kernel" dialog).
COURSE_JUPYTER_CONFIG = "jupyter_config"  # under citykit/resources/


def default_student() -> str:
    import getpass

    return getpass.getuser()


def workspace_dir(student: str, course_root: Path | None = None) -> Path:
    return (Path(course_root) if course_root else paths.course_root()) / "grading" / WORKSPACES / student


def released_through_exchange(course_root: Path | None = None) -> set[str]:
    """Assignments the instructor released through the cohort's exchange."""
    config = load_config(Path(course_root) if course_root else None)
    outbound = Path(config.Exchange.root) / config.CourseDirectory.course_id / "outbound"
    return {p.name for p in outbound.iterdir() if p.is_dir()} if outbound.is_dir() else set()


def prepare_workspace(student: str, course_root: Path | None = None) -> Path:
    """The learner's workspace, made or refreshed: the nbgrader settings of the cohort (exchange, course
    id, this learner's id), the references (read-only copies), and practice copies of the modules
    generated but not released through the exchange (never overwriting the learner's work)."""
    import shutil
    import stat

    root = Path(course_root) if course_root else paths.course_root()
    if not STUDENT_ID.match(student):
        raise CitykitError(f"learner id {student!r} may use only letters, digits, _ . -")
    try:
        cohort = load_cohort(course_root=root)
    except CitykitError:
        cohort = None
    if cohort is not None and student not in cohort.student_ids:
        raise CitykitError(f"{student!r} is not in cohort {cohort.name}'s roster; start the lab with "
                           "--student YOUR_ID (the id your instructor gave you)")  # fmt: skip
    workspace = workspace_dir(student, root)
    workspace.mkdir(parents=True, exist_ok=True)
    config = load_config(root)
    exchange = Path(config.Exchange.root)
    (workspace / WORKSPACE_CONFIG).write_text(
        "# nbgrader settings of this learner's workspace (written by `citykit lab`; rewritten at each start)\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {config.CourseDirectory.course_id!r}\n"
        f"c.CourseDirectory.student_id = {student!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.Exchange.assignment_dir = {str(workspace)!r}\n"
        f"c.Exchange.cache = {str(workspace / '.nbgrader_cache')!r}\n"
        f"c.Execute.timeout = {int(config.Execute.timeout)}\n"
        f"c.ExecutePreprocessor.timeout = {int(config.ExecutePreprocessor.timeout)}\n",
        encoding="utf-8",
    )  # fmt: skip
    for reference in REFERENCES:
        source, target = root / reference, workspace / reference
        if not source.exists():
            continue
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for file in files:
            copy = target / file.relative_to(source) if source.is_dir() else target
            copy.parent.mkdir(parents=True, exist_ok=True)
            if copy.exists():
                copy.chmod(stat.S_IRUSR | stat.S_IWUSR)
                copy.unlink()
            shutil.copyfile(file, copy)  # a real file: nothing in the workspace links out
            copy.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    released = released_through_exchange(root)
    for folder in sorted((root / "grading" / "release").glob("*")):
        if folder.is_dir() and folder.name not in released and not (workspace / folder.name).exists():
            shutil.copytree(folder, workspace / folder.name, symlinks=False)
    return workspace


def lab_root(instructor: bool = False, course_root: Path | None = None, student: str | None = None) -> Path:
    grading = (Path(course_root) if course_root else paths.course_root()) / "grading"
    return grading if instructor else grading / WORKSPACES / (student or default_student())


def lab_command(
    instructor: bool = False, *, port: int | None = None, course_root: Path | None = None, student: str | None = None
) -> list[str]:
    """The JupyterLab command line (the token travels in the environment, see `lab_environment`)."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.root_dir={lab_root(instructor, course_root, student)}",
        "--ServerApp.ip=127.0.0.1",
        "--ContentsManager.allow_hidden=False",
    ]
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not instructor:
        command += [f"--ServerApp.jpserver_extensions={name}=False" for name in INSTRUCTOR_ONLY_EXTENSIONS]
        command += [
            "--ServerApp.terminals_enabled=False",
            "--ServerApp.contents_manager_class=citykit.lessons.lab.WorkspaceContentsManager",
            f"--ContentsManager.hide_globs={json.dumps(HIDE_GLOBS)}",
        ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def lab_environment(token: str) -> dict[str, str]:
    if not token:
        raise CitykitError("the lab always needs a token; give a non-empty one or let citykit generate it")
    config_path = os.pathsep.join(
        filter(None, [str(paths.resource(COURSE_JUPYTER_CONFIG)), os.environ.get("JUPYTER_CONFIG_PATH")])
    )
    return {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_CONFIG_PATH": config_path}


HIDE_GLOBS = ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", WORKSPACE_CONFIG]


def _workspace_manager_class():
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from tornado.web import HTTPError

    class OutsideWorkspace(OSError, HTTPError):
        """404 to a request; an OSError to a directory listing, which then leaves the entry out."""

        def __init__(self, path: str):
            HTTPError.__init__(self, 404, f"{path} is outside the workspace")

    class WorkspaceContentsManager(LargeFileManager):
        """JupyterLab's file manager on a learner's workspace: only real files under it (a symlink
        that leads out answers 404), and the references under `curriculum/` cannot be changed."""

        def _get_os_path(self, path):
            os_path = super()._get_os_path(path)
            root = os.path.realpath(self.root_dir)
            real = os.path.realpath(os_path)
            if real != root and not real.startswith(root + os.sep):
                raise OutsideWorkspace(path)
            return os_path

        def _refuse_references(self, path: str) -> None:
            if path.strip("/").startswith(READ_ONLY_PREFIX) or path.strip("/") == READ_ONLY_PREFIX.strip("/"):
                raise HTTPError(403, "the course references are read-only; save a copy elsewhere in your workspace")

        def save(self, model, path=""):
            self._refuse_references(path)
            return super().save(model, path)

        def delete_file(self, path):
            self._refuse_references(path)
            return super().delete_file(path)

        def rename_file(self, old_path, new_path):
            self._refuse_references(old_path)
            self._refuse_references(new_path)
            return super().rename_file(old_path, new_path)

    return WorkspaceContentsManager


def __getattr__(name: str):
    if name == "WorkspaceContentsManager":  # imported by the lab server only (jupyter_server is heavy)
        return _workspace_manager_class()
    raise AttributeError(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    process: subprocess.Popen
    url: str  # base URL, without the token
    token: str

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the server answers its API (with the token), or raise."""
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(f"{self.url}api/status", headers={"Authorization": f"token {self.token}"})
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CitykitError(f"JupyterLab exited with code {self.process.returncode} before it was ready")
            try:
                with urllib.request.urlopen(request, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise CitykitError(f"JupyterLab did not answer at {self.url} within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_lab(
    instructor: bool = False,
    *,
    port: int | None = None,
    token: str | None = None,
    course_root: Path | None = None,
    quiet: bool = False,
    student: str | None = None,
) -> LabServer:
    """Start JupyterLab in the background; the caller waits for it and stops it."""
    if instructor:
        root = lab_root(True, course_root)
        if not root.is_dir():
            raise CitykitError(f"{root} does not exist yet; run `citykit grade generate` first")
    else:
        course = Path(course_root) if course_root else paths.course_root()
        if not (course / "grading" / "release").is_dir() and not released_through_exchange(course):
            raise CitykitError("no module has a student version yet; run `citykit grade generate` first")
        root = prepare_workspace(student or default_student(), course_root)
    port = port or free_port()
    token = token or secrets.token_urlsafe(24)
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        lab_command(instructor, port=port, course_root=course_root, student=student),
        env=lab_environment(token),
        cwd=root,  # nbgrader's formgrader reads nbgrader_config.py from here
        stdout=output,
        stderr=output,
    )
    return LabServer(process, f"http://127.0.0.1:{port}/", token)


def run_lab(
    instructor: bool = False, *, port: int | None = None, course_root: Path | None = None, student: str | None = None
) -> int:
    """Start JupyterLab, print where to open it (with the token), and serve until interrupted."""
    server = start_lab(instructor, port=port, course_root=course_root, student=student)
    try:
        server.wait_ready()
        who = "instructor (formgrader)" if instructor else f"learner {student or default_student()}"
        print(f"citykit lab for the {who}: {server.url}lab?token={server.token}", flush=True)
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
