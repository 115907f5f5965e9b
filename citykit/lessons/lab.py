"""JupyterLab for the course: learners see only released notebooks; instructors get formgrader.

Learner mode serves `grading/release/` (student versions: no solutions, no hidden tests); neither the
solution notebooks in `notebooks/` nor raw data under `datasets/raw/` can be opened through the
server. Instructor mode serves `grading/` with nbgrader's formgrader. A token is always required:
generated unless given, passed to the server in the environment (never on the command line, where
other users of the machine could read it) and printed for the user.
"""

from __future__ import annotations

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

# nbgrader's server extensions: learners keep validate/assignment list; formgrader is for instructors.
INSTRUCTOR_ONLY_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
# Jupyter config the course adds (labconfig/): no "official Jupyter news?" prompt and no update check
# in a classroom, and a notebook's kernel starts without asking which one (no "Select Kernel" dialog).
COURSE_JUPYTER_CONFIG = "jupyter_config"  # under citykit/resources/


def lab_root(instructor: bool = False, course_root: Path | None = None) -> Path:
    grading = (Path(course_root) if course_root else paths.course_root()) / "grading"
    return grading if instructor else grading / "release"


def lab_command(
    instructor: bool = False, *, port: int | None = None, course_root: Path | None = None
) -> list[str]:
    """The JupyterLab command line (the token travels in the environment, see `lab_environment`)."""
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        f"--ServerApp.root_dir={lab_root(instructor, course_root)}",
        "--ServerApp.ip=127.0.0.1",
        "--ContentsManager.allow_hidden=False",
    ]
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not instructor:
        command += [f"--ServerApp.jpserver_extensions={name}=False" for name in INSTRUCTOR_ONLY_EXTENSIONS]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def lab_environment(token: str) -> dict[str, str]:
    if not token:
        raise CitykitError("the lab always needs a token; give a non-empty one or let citykit generate it")
    config_path = os.pathsep.join(filter(None, [str(paths.resource(COURSE_JUPYTER_CONFIG)), os.environ.get("JUPYTER_CONFIG_PATH")]))
    return {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_CONFIG_PATH": config_path}


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
) -> LabServer:
    """Start JupyterLab in the background; the caller waits for it and stops it."""
    root = lab_root(instructor, course_root)
    if not root.is_dir():
        raise CitykitError(f"{root} does not exist yet; run `citykit grade generate` first")
    port = port or free_port()
    token = token or secrets.token_urlsafe(24)
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        lab_command(instructor, port=port, course_root=course_root),
        env=lab_environment(token),
        cwd=root,  # nbgrader's formgrader reads nbgrader_config.py from here
        stdout=output,
        stderr=output,
    )
    return LabServer(process, f"http://127.0.0.1:{port}/", token)


def run_lab(instructor: bool = False, *, port: int | None = None, course_root: Path | None = None) -> int:
    """Start JupyterLab, print where to open it (with the token), and serve until interrupted."""
    server = start_lab(instructor, port=port, course_root=course_root)
    try:
        server.wait_ready()
        who = "instructor (formgrader)" if instructor else "learner"
        print(f"citykit lab for the {who}: {server.url}lab?token={server.token}", flush=True)
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
