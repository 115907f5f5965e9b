"""JupyterLab for the course: each learner works in a workspace of their own; instructors get formgrader.

Learner mode serves the learner's workspace, `grading/workspaces/<student_id>/` (made by
`citykit.grading.workspace`: the cohort's nbgrader settings, read-only references under
`curriculum/`, practice copies), never the instructor's release folder. The server serves only real
files under the workspace (no symlink leads out), keeps the references read-only, and has no
terminal. Instructor mode serves `grading/` with nbgrader's formgrader. A token is
always required: generated unless given, passed to the server in the environment (never on the
command line, where other users of the machine could read it) and printed for the user.

The lab never outlives `citykit lab`: INT, TERM and HUP stop JupyterLab (which shuts its kernels
down), and if `citykit lab` is killed outright (`kill -9`) JupyterLab stops itself within a second:
Linux sends it TERM when its parent dies (PR_SET_PDEATHSIG), and everywhere a watchdog in the
server (this module, loaded as a server extension) watches `CITYKIT_PARENT_PID`.
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
from citykit.startup import PARENT_ENV, die_with_parent, parent_death_signal, process_token, stop_on_signals

WORKSPACES = "workspaces"  # under grading/
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
        f"--ServerApp.jpserver_extensions={__name__}=True",  # the parent watchdog, below
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
    return {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_CONFIG_PATH": config_path, PARENT_ENV: process_token()}


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp) -> None:
    """In the JupyterLab that `citykit lab` started: stop it as TERM does (its kernels shut down) when
    `citykit lab` dies, even by `kill -9`; killed outright 15 s later if it has not stopped."""
    if os.environ.get(PARENT_ENV):
        die_with_parent(os.environ[PARENT_ENV], grace=15.0)


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


DEFAULT_PORT = 8888  # Jupyter's own; when it is taken (another lab), the next free port is used


def check_port_free(port: int) -> None:
    """Refuse (one line) a port another program already listens on."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            raise CitykitError(
                f"port {port} is already in use ({error.strerror or error}); choose another --port or leave it out"
            ) from None


def default_port() -> int:
    """8888 when it is free, as Jupyter does; otherwise any free port (JupyterLab's own retry logs a screenful)."""
    try:
        check_port_free(DEFAULT_PORT)
    except CitykitError:
        return free_port()
    return DEFAULT_PORT


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
    if port is not None:
        check_port_free(port)  # before JupyterLab, which would log a screenful and then fail
    if instructor:
        root = lab_root(True, course_root)
        if not root.is_dir():
            raise CitykitError(f"{root} does not exist yet; run `citykit grade generate` first")
    else:  # the workspace is made by citykit.grading.workspace.prepare_workspace (`citykit lab` runs it)
        who = student or default_student()
        root = lab_root(False, course_root, who)
        if not (root / WORKSPACE_CONFIG).is_file():
            raise CitykitError(f"no workspace for {who} yet; open it with `citykit lab --student {who}`")
    port = port or default_port()
    token = token or secrets.token_urlsafe(24)
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        lab_command(instructor, port=port, course_root=course_root, student=student),
        env=lab_environment(token),
        cwd=root,  # nbgrader's formgrader reads nbgrader_config.py from here
        stdout=output,
        stderr=output,
        preexec_fn=parent_death_signal(),  # Linux: TERM to JupyterLab when this process dies
    )
    return LabServer(process, f"http://127.0.0.1:{port}/", token)


def run_lab(
    instructor: bool = False, *, port: int | None = None, course_root: Path | None = None, student: str | None = None
) -> int:
    """Start JupyterLab, print where to open it (with the token), and serve until interrupted."""
    with stop_on_signals():  # TERM and HUP stop the lab as Ctrl-C does
        server = start_lab(instructor, port=port, course_root=course_root, student=student)
        try:
            server.wait_ready()
            who = "instructor (formgrader)" if instructor else f"learner {student or default_student()}"
            print(f"citykit lab for the {who}: {server.url}lab?token={server.token}", flush=True)
            return server.process.wait()
        except KeyboardInterrupt:  # Ctrl-C, or Stopped (TERM, HUP)
            return 0
        finally:
            server.stop()
