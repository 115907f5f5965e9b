"""nbgrader's exchange for a cohort on one server, and the nbgrader settings that point at it.

The exchange is `<hub>/exchange/`, laid out and permissioned as nbgrader's exchange expects when
several instructors share a course (`CourseDirectory.groupshared`, see nbgrader's docs "Using
nbgrader with JupyterHub" and "Managing assignment files"):

| folder | owner:group | mode | why |
|---|---|---|---|
| `exchange/` | root:root | 1777 | every learner's fetch and submit checks it is writable; sticky: nobody removes another's entry |
| `exchange/<cohort>/` | grader:formgrade-<cohort> | 2775 | instructors write, everyone reads; new entries keep the group |
| `.../outbound/` | grader:formgrade-<cohort> | 2775 | released modules: instructors write, learners read (release makes the files 0644) |
| `.../inbound/` | grader:formgrade-<cohort> | 3773 | learners drop submissions but cannot list them (others' names, with a random part, stay unknown); sticky: nobody renames another's |
| `.../feedback/` | grader:formgrade-<cohort> | 2771 | released feedback, named by a hash of the submission: learners read their own by name, list nothing |

The course id is the cohort's name. The course's own `grading/nbgrader_config.py` gets a block
naming the course id, this exchange, group sharing, and `OwnerCheckedCollect` (`citykit.hub.collect`):
collect files a submission under a roster id only when the account that made it is that id's
account. Each learner's server reads a Jupyter config folder of their own (root-owned, readable by
them alone) whose `nbgrader_config.py` names the course, the exchange and their roster id, so
the Assignments tab lists only the cohort's modules and submits under the learner's id.
"""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

from citykit.files import atomic_write
from citykit.hub.state import HubState

BEGIN = "# --- citykit hub: begin (written by `citykit hub setup`; rewritten by every setup and add-learner) ---"
END = "# --- citykit hub: end ---"
MODES = {"course": 0o2775, "outbound": 0o2775, "inbound": 0o3773, "feedback": 0o2771}


def prepare(state: HubState, grader_uid: int, grader_gid: int) -> Path:
    """Make the exchange folders with their owners and modes (existing ones are put right)."""
    root = state.exchange
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, 0, 0)
    root.chmod(0o1777)
    course = root / state.cohort
    for name, folder in (("course", course), ("outbound", course / "outbound"), ("inbound", course / "inbound"),
                         ("feedback", course / "feedback")):  # fmt: skip
        folder.mkdir(exist_ok=True)
        os.chown(folder, grader_uid, grader_gid)
        folder.chmod(MODES[name])
    return course


def course_block(state: HubState) -> str:
    accounts = {m.student_id: m.account for m in state.learners}
    return "\n".join([
        BEGIN,
        "# The cohort's course on its hub: nbgrader's course id is the cohort, the exchange is the hub's,",
        "# files the instructors make stay writable by all of them (group formgrade-<cohort>), and collect",
        "# files a submission under a roster id only when that id's own account made it.",
        f"c.CourseDirectory.course_id = {state.cohort!r}",
        f"c.Exchange.root = {str(state.exchange)!r}",
        "c.CourseDirectory.groupshared = True",
        'c.ExchangeFactory.collect = "citykit.hub.collect.OwnerCheckedCollect"',
        f"c.OwnerCheckedCollect.accounts = {accounts!r}",
        "# learner code is graded only in citykit's sandbox (as root, through the grading helper): formgrader's",
        "# Autograde button, run by the grader account, refuses with a line naming `citykit grade autograde`",
        "c.TwoPhaseExecute.require_sandbox = True",
        END,
        "",
    ])  # fmt: skip


def write_course_config(state: HubState) -> Path:
    """Put the hub's block at the end of the course's `grading/nbgrader_config.py` (replacing an
    older one), so `citykit grade`, `nbgrader` and formgrader all use the hub's exchange."""
    path = state.course / "grading" / "nbgrader_config.py"
    atomic_write(path, f"{without_block(path.read_text(encoding='utf-8'))}\n\n{course_block(state)}")
    return path


def without_block(text: str) -> str:
    """An nbgrader_config.py's text without the hub's block (and trailing blank lines)."""
    return re.sub(rf"\n?{re.escape(BEGIN)}.*?{re.escape(END)}\n?", "\n", text, flags=re.S).rstrip("\n")


def learner_config(state: HubState, student_id: str) -> str:
    return "\n".join([
        "# nbgrader settings of this learner's server on the cohort's hub (written by `citykit hub setup`)",
        "c = get_config()  # noqa: F821",
        f"c.CourseDirectory.course_id = {state.cohort!r}",
        f"c.CourseDirectory.student_id = {student_id!r}",
        f"c.Exchange.root = {str(state.exchange)!r}",
        "",
    ])  # fmt: skip


def write_learner_configs(state: HubState) -> list[Path]:
    """Each learner's `jupyter/users/<account>/nbgrader_config.py`: root's, readable by that account only."""
    written = []
    for member in state.learners:
        folder = state.jupyter / "users" / member.account
        folder.mkdir(parents=True, exist_ok=True)
        entry = pwd.getpwnam(member.account)
        os.chown(folder, 0, entry.pw_gid)
        folder.chmod(0o750)
        path = folder / "nbgrader_config.py"
        path.write_text(learner_config(state, member.student_id), encoding="utf-8")
        os.chown(path, 0, entry.pw_gid)
        path.chmod(0o640)
        written.append(path)
    return written
