"""The hub's roster and the system accounts made from it.

The roster is the cohort's roster CSV (`citykit.grading.cohort.read_roster` checks its columns and
ids) with one more, optional column, `role`: `learner` (the default) or `instructor`. Every person
gets a system account named from their roster id (`account_name`: `maria_g` -> `ck-maria_g`; an id
that is not already a valid lower-case user name, such as `María.G`, gets a short hash so two ids
never share an account), which is also their JupyterHub user name. The prefix keeps the cohort's
accounts apart from the machine's own (`root`, `admin`, `www-data` are plausible roster ids).

Accounts are made with the system's own tools (`groupadd`, `useradd`, `gpasswd`, `userdel`):
learners get no login shell (JupyterHub is their only door, and their lab has no terminal),
instructors get bash for the lab's terminal; every password is locked (people sign in to the hub,
never to the machine) and every home is private (0700).
"""

from __future__ import annotations

import csv
import grp
import hashlib
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from citykit.errors import CitykitError, quote
from citykit.grading.cohort import read_roster

ACCOUNT_PREFIX = "ck-"
NAME_MAX = 32  # the longest user name useradd accepts
PREFIX = re.compile(r"^[a-z][a-z0-9]*-?$")
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")
ROLES = ("learner", "instructor")
Role = Literal["learner", "instructor"]
LEARNER_SHELL = "/usr/sbin/nologin"
INSTRUCTOR_SHELL = "/bin/bash"


@dataclass(frozen=True)
class Member:
    """A person of the cohort: roster id, names, role and system account."""

    student_id: str
    first_name: str
    last_name: str
    role: Role
    account: str
    email: str = ""

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def account_name(student_id: str, prefix: str = ACCOUNT_PREFIX) -> str:
    """The system user name of a roster id: the prefix and the id when the id is already a valid
    lower-case user name, else its lower-case slug and 6 characters of its hash (never shared)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", student_id.lower()).strip("-") or "id"
    name = prefix + slug
    if slug != student_id or len(name) > NAME_MAX:
        digest = hashlib.sha256(student_id.encode("utf-8")).hexdigest()[:6]
        name = f"{name[: NAME_MAX - 7]}-{digest}"
    return name


def check_prefix(prefix: str) -> str:
    if not PREFIX.match(prefix) or len(prefix) > 12:
        raise CitykitError(f"account prefix {quote(prefix)} must be lower-case letters and digits, optionally "
                           "ending in '-' (at most 12 characters), e.g. ck-")  # fmt: skip
    return prefix


def read_hub_roster(path: Path, prefix: str = ACCOUNT_PREFIX) -> list[Member]:
    """The cohort's people from a roster CSV with an optional `role` column; at least one instructor."""
    learners = {learner.student_id: learner for learner in read_roster(path)}  # checks columns and ids
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    roles: dict[str, str] = {}
    problems = []
    for line, row in enumerate(rows, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        role = row.get("role", "").lower() or "learner"
        if role not in ROLES:
            problems.append(f"row {line}: role {quote(row.get('role', ''))} is not learner or instructor")
        roles[row.get("student_id", "")] = role
    if problems:
        raise CitykitError(f"roster {Path(path).name} has bad rows: {'; '.join(problems)}")
    members = [
        Member(x.student_id, x.first_name, x.last_name, roles.get(x.student_id, "learner"),  # type: ignore[arg-type]
               account_name(x.student_id, prefix), x.email)
        for x in learners.values()
    ]  # fmt: skip
    if not any(m.role == "instructor" for m in members):
        raise CitykitError(f"roster {Path(path).name} names no instructor: add a `role` column and write "
                           "`instructor` on the rows of the staff who teach (1-3 people)")  # fmt: skip
    if not any(m.role == "learner" for m in members):
        raise CitykitError(f"roster {Path(path).name} names no learner (role `learner`, or an empty role)")
    clash = _duplicates([m.account for m in members])
    if clash:
        raise CitykitError(f"roster ids map to the same account: {', '.join(clash)}; make the ids differ")
    return members


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]


def write_learner_roster(members: list[Member], path: Path) -> Path:
    """The learners alone, as `citykit grade setup` reads a roster (instructors are not graded)."""
    columns = ("student_id", "first_name", "last_name", "email")
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for m in members:
            if m.role == "learner":
                writer.writerow([m.student_id, m.first_name, m.last_name, m.email])
    return path


def write_hub_roster(members: list[Member], path: Path) -> Path:
    """Everyone, with roles and accounts (the hub's copy of the roster, for people to read)."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("student_id", "first_name", "last_name", "email", "role", "account"))
        for m in members:
            writer.writerow([m.student_id, m.first_name, m.last_name, m.email, m.role, m.account])
    return path


# ---------------------------------------------------------------------------------- the system


def require_root(what: str) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise CitykitError(f"{what} must run as root (it manages system accounts and the hub's processes); "
                           f"run it with sudo, e.g. `sudo citykit {what.removeprefix('citykit ')} ...`")  # fmt: skip


def _run(command: list[str], what: str) -> None:
    tool = shutil.which(command[0]) or f"/usr/sbin/{command[0]}"
    if not Path(tool).exists():
        raise CitykitError(f"{what}: `{command[0]}` is not installed (Debian/Ubuntu: the passwd package)")
    done = subprocess.run([tool, *command[1:]], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise CitykitError(f"{what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")


def user_exists(name: str) -> bool:
    return uid_of(name) is not None


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def ensure_group(name: str) -> int:
    """The group's id, made when missing."""
    if not group_exists(name):
        _run(["groupadd", name], f"making the group {name}")
    return grp.getgrnam(name).gr_gid


def ensure_account(
    name: str, *, home: Path, shell: str, comment: str, groups: tuple[str, ...] = ()
) -> pwd.struct_passwd:
    """A system account with a private home and a locked password, in `groups` (made when missing)."""
    if not USER_NAME.match(name) or len(name) > NAME_MAX:
        raise CitykitError(f"{quote(name)} is not a valid user name")
    if not user_exists(name):
        command = ["useradd", "--create-home", "--home-dir", str(home), "--shell", shell, "--user-group",
                   "--comment", comment[:60]]  # fmt: skip
        if groups:
            command += ["--groups", ",".join(groups)]
        _run([*command, name], f"making the account {name}")
    else:
        for group in groups:
            if name not in grp.getgrnam(group).gr_mem:
                _run(["gpasswd", "--add", name, group], f"adding {name} to {group}")
    entry = pwd.getpwnam(name)
    home_dir = Path(entry.pw_dir)
    home_dir.mkdir(parents=True, exist_ok=True)
    os.chown(home_dir, entry.pw_uid, entry.pw_gid)
    home_dir.chmod(0o700)
    return entry


def remove_account(name: str) -> bool:
    """Remove a system account (its home stays: see `citykit.hub.lifecycle.teardown`); True when removed."""
    if not user_exists(name):
        return False
    _run(["userdel", name], f"removing the account {name}")
    if group_exists(name):  # its own group, when userdel left it
        _run(["groupdel", name], f"removing the group {name}")
    return True


def remove_group(name: str) -> bool:
    if not group_exists(name):
        return False
    _run(["groupdel", name], f"removing the group {name}")
    return True


def uid_of(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def name_of_uid(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def name_of_gid(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None
