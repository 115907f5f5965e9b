"""Helpers for the hub's tests (tests/hub/): real system accounts on this machine, removed afterwards.

A test that makes accounts runs as root on Linux with `useradd` and JupyterHub's proxy
(configurable-http-proxy: on PATH, or `tests/.node`, which `make test` installs with npm); without
them it is skipped, saying which is missing (`needs_accounts`). Every cohort gets a fresh name and
account prefix (`ckt<hex>-`), its hub folder lives under /tmp (the accounts can read it, unlike
pytest's own temporary folders), and `scrub` removes any account, group or home with its prefix.

The learners' servers run this checkout's Python environment as the cohort's accounts. Where that
environment lives below a folder other accounts cannot enter (a CI image's /root/.pyenv, mode 0700),
`runnable_python` lets them traverse it (o+x, never read) for the test and puts the modes back.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[2]
NODE_PROXY = REPO / "tests" / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"


def proxy_command() -> str | None:
    found = shutil.which("configurable-http-proxy")
    return found or (str(NODE_PROXY) if NODE_PROXY.exists() else None)


def missing_for_accounts() -> str | None:
    """Why this machine cannot run a hub with real accounts ("" -> None when it can)."""
    if not sys.platform.startswith("linux"):
        return "the hub's tests need Linux (system accounts, /proc, cgroups)"
    if os.geteuid() != 0:
        return "the hub's tests make system accounts: run them as root (CI does)"
    for tool in ("useradd", "userdel", "groupadd", "gpasswd"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            return f"no `{tool}` (Debian: the passwd package)"
    if proxy_command() is None:
        return "no configurable-http-proxy: `npm ci --prefix tests/.node` (make test does it) or npm install -g"
    return None


needs_accounts = pytest.mark.skipif(missing_for_accounts() is not None, reason=missing_for_accounts() or "")


LOCK = Path(tempfile.gettempdir()) / "citykit-hub-tests.lock"


@contextlib.contextmanager
def runnable_python() -> Iterator[str]:
    """This Python, runnable by other accounts for the block: folders on its paths that others may not
    traverse get o+x (not r) and their modes back afterwards. One block at a time on this machine (a
    lock), so two test sessions never put a mode back while the other's accounts still need it."""
    targets = {Path(sys.executable).resolve(), Path(sys.prefix), REPO}
    changed: dict[Path, int] = {}
    with FileLock(str(LOCK), timeout=1800):
        try:
            for target in targets:
                for folder in [*reversed(target.parents), target] if target.is_dir() else reversed(target.parents):
                    mode = folder.stat().st_mode & 0o7777
                    if folder not in changed and not mode & 0o001:
                        changed[folder] = mode
                        folder.chmod(mode | 0o001)
            yield sys.executable
        finally:
            for folder, mode in changed.items():
                folder.chmod(mode)


def free_ports(count: int = 4) -> int:
    """A first port with the next `count - 1` free as well (the hub uses four in a row)."""
    for _ in range(200):
        start = secrets.randbelow(20_000) + 30_000
        sockets = []
        try:
            for port in range(start, start + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sockets.append(sock)
            return start
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no four free ports in a row on 127.0.0.1")


def write_roster(path: Path, learners: list[tuple[str, str, str]], instructors: list[tuple[str, str, str]]) -> Path:
    lines = ["student_id,first_name,last_name,email,role"]
    lines += [f"{i},{f},{last},{i.replace('.', '')}@example.city,learner" for i, f, last in learners]
    lines += [f"{i},{f},{last},{i}@example.city,instructor" for i, f, last in instructors]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scrub(prefix: str, cohort: str) -> None:
    """Remove whatever a cohort left: accounts with its prefix, its groups, their homes."""
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(prefix):
            with contextlib.suppress(Exception):
                for pid in Path("/proc").iterdir():
                    if pid.name.isdigit() and pid.stat().st_uid == entry.pw_uid:
                        os.kill(int(pid.name), 9)
            os.system(f"userdel {entry.pw_name} >/dev/null 2>&1")
            home = Path(entry.pw_dir)
            if home.name == entry.pw_name and home.is_dir():
                shutil.rmtree(home, ignore_errors=True)
    for entry in grp.getgrall():
        if entry.gr_name.startswith(prefix) or entry.gr_name in (f"nbgrader-{cohort}", f"formgrade-{cohort}"):
            os.system(f"groupdel {entry.gr_name} >/dev/null 2>&1")
    for home in Path("/home").glob(f"{prefix}*"):  # homes teardown keeps (no grade export in a test)
        shutil.rmtree(home, ignore_errors=True)


def solutions(source: Path) -> dict[str, str]:
    """The solution of every answer cell of a source notebook, by grade id, without the solution markers."""
    found = {}
    for cell in nbformat.read(source, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            found[meta["grade_id"]] = "\n".join(
                line for line in cell.source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            )  # fmt: skip
    return found


def full_marks(source: Path) -> float:
    """What the autograded cells of a source notebook are worth in all (read from the notebook, not the gradebook)."""
    return sum(c.metadata["nbgrader"]["points"] for c in nbformat.read(source, as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")  # fmt: skip


def auto_scores(gradebook: Path) -> dict[str, float]:
    """Each student's summed automatic score in an nbgrader gradebook."""
    with sqlite3.connect(gradebook) as db:
        return dict(db.execute(
            "SELECT s.id, SUM(g.auto_score) FROM grade g JOIN submitted_notebook n ON g.notebook_id = n.id "
            "JOIN submitted_assignment a ON n.assignment_id = a.id JOIN student s ON a.student_id = s.id "
            "GROUP BY s.id").fetchall())  # fmt: skip
