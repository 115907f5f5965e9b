"""`citykit hub setup`, `add-learner` and `teardown` on this machine, with real accounts (the hub is
not started here: see test_hub_cohort.py). What the system ends up with is read back from the system
(pwd, grp, stat, bcrypt), not from citykit's own records."""

from __future__ import annotations

import csv
import grp
import io
import json
import os
import pwd
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest
import yaml
from hubtest import needs_accounts

from citykit.errors import CitykitError
from citykit.hub import lifecycle, limits, systemd
from citykit.hub.accounts import account_name
from citykit.hub.state import load_state

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hub"), needs_accounts]

LEARNERS = [("maria_g", "María", "González"), ("Ana.Lopez", "Ana", "López")]
INSTRUCTORS = [("ines", "Inés", "Teacher")]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _owner(path: Path) -> tuple[str, str]:
    info = path.stat()
    return pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name


def test_setup_makes_the_accounts_course_and_exchange_and_teardown_removes_them(hub_cohort):
    state = hub_cohort(LEARNERS, INSTRUCTORS, auth="native")
    prefix, cohort = state.account_prefix, state.cohort
    maria, ana, ines = f"{prefix}maria_g", account_name("Ana.Lopez", prefix), f"{prefix}ines"
    grader = f"{prefix}grader-{cohort}"
    # accounts: learners without a login shell, the instructor with bash; passwords locked; private homes
    for name, shell, group in ((maria, "/usr/sbin/nologin", f"nbgrader-{cohort}"), (ana, "/usr/sbin/nologin", f"nbgrader-{cohort}"),
                               (ines, "/bin/bash", f"formgrade-{cohort}")):  # fmt: skip
        entry = pwd.getpwnam(name)
        assert entry.pw_shell == shell
        assert name in grp.getgrnam(group).gr_mem
        assert _mode(Path(entry.pw_dir)) == 0o700
    assert grader in grp.getgrnam(f"formgrade-{cohort}").gr_mem
    shadow = {line.split(":")[0]: line.split(":")[1] for line in Path("/etc/shadow").read_text().splitlines()}
    assert all(shadow[n].startswith(("!", "*")) for n in (maria, ana, ines, grader))  # no system password
    # the course: the grader's and the instructors' group's, closed to everyone else
    assert _owner(state.course) == (grader, f"formgrade-{cohort}") and _mode(state.course) == 0o2770
    cohort_file = yaml.safe_load((state.course / "grading" / "cohorts" / f"{cohort}.yml").read_text())
    assert [x["student_id"] for x in cohort_file["learners"]] == ["maria_g", "Ana.Lopez"]  # learners only
    assert _mode(state.course / "grading" / "gradebook.db") & 0o060 == 0o060  # every instructor may write
    # what learners read: the curriculum view and the published data, never notebooks/, raw exports, mistakes
    assert not (state.public / "notebooks").exists() and not (state.public / "curriculum" / "mistakes").exists()
    assert (state.public / "curriculum" / "course.yml").is_file() and _owner(state.public) == ("root", "root")
    assert not (state.data / "raw").exists() and any((state.data / "published").iterdir())
    # nbgrader's exchange with nbgrader's modes
    course = state.exchange / cohort
    assert _mode(state.exchange) == 0o1777
    assert {p.name: oct(_mode(p)) for p in (course / "outbound", course / "inbound", course / "feedback")} == {
        "outbound": "0o2775", "inbound": "0o3773", "feedback": "0o2771"}  # fmt: skip
    assert f"c.OwnerCheckedCollect.accounts = {{'maria_g': {maria!r}, 'Ana.Lopez': {ana!r}}}" in (
        state.course / "grading" / "nbgrader_config.py").read_text()  # fmt: skip
    # each learner's own nbgrader settings: their roster id, readable by them and root only
    settings = state.jupyter / "users" / ana / "nbgrader_config.py"
    assert "c.CourseDirectory.student_id = 'Ana.Lopez'" in settings.read_text()
    assert _owner(settings) == ("root", ana) and _mode(settings) == 0o640
    # references in learners' homes are root's: read-only for them
    guide = Path(pwd.getpwnam(maria).pw_dir) / "curriculum" / "guides" / "learner.md"
    assert _owner(guide)[0] == "root" and _mode(guide) == 0o444
    # native sign-in: first passwords for the instructor only (learners sign up and are approved)
    sheet = list(csv.DictReader(io.StringIO((state.path / "first-passwords.csv").read_text())))
    hashes = json.loads((state.path / "first-passwords.json").read_text())
    assert [row["account"] for row in sheet] == [ines] and set(hashes) == {ines}
    assert bcrypt.checkpw(sheet[0]["password"].encode(), hashes[ines].encode())
    assert _mode(state.path / "first-passwords.csv") == 0o600 and _mode(state.path / "first-passwords.json") == 0o600
    if systemd.verify(state.unit_file) is not None:
        assert systemd.verify(state.unit_file) == ""

    # setup again keeps what exists: passwords, due dates set since
    cohort_path = state.course / "grading" / "cohorts" / f"{cohort}.yml"
    cohort_file["due"] = {"04-time-to-close": "2031-03-06T23:59:59+00:00"}
    cohort_path.write_text(yaml.safe_dump(cohort_file, allow_unicode=True))
    lifecycle.setup(cohort, None, prefix=state.path.parent, account_prefix=prefix, port=state.port,
                    proxy_command=state.proxy_command, python=state.python, auth="native", source=Path(state.source_course))  # fmt: skip
    assert json.loads((state.path / "first-passwords.json").read_text()) == hashes
    assert yaml.safe_load(cohort_path.read_text())["due"] == {"04-time-to-close": "2031-03-06T23:59:59+00:00"}

    # a late joiner: account, cohort file, gradebook, the hub's settings
    done = lifecycle.add_learner(load_state(cohort, state.path.parent), "sam.k", "Sam", "Kim", "sam@example.city")
    sam = account_name("sam.k", prefix)
    assert done.made_accounts == [sam] and pwd.getpwnam(sam).pw_shell == "/usr/sbin/nologin"
    assert "sam.k" in [x["student_id"] for x in yaml.safe_load(cohort_path.read_text())["learners"]]
    with sqlite3.connect(state.course / "grading" / "gradebook.db") as db:
        assert ("sam.k",) in db.execute("SELECT id FROM student").fetchall()
    assert sam in (state.path / "jupyterhub_config.py").read_text()
    assert (state.jupyter / "users" / sam / "nbgrader_config.py").is_file()

    # not root: one line, exit 2
    nobody = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-m", "citykit", "hub", "setup",
                             "--cohort", cohort, "--prefix", str(state.path.parent)], capture_output=True, text=True,
                            cwd="/", env={**os.environ, "HOME": "/nonexistent"})  # fmt: skip
    assert nobody.returncode == 2 and nobody.stderr.count("\n") == 1 and "must run as root" in nobody.stderr

    # teardown before any grade export: accounts go, learners' files stay (root's now)
    homes = {n: Path(pwd.getpwnam(n).pw_dir) for n in (maria, ana, ines, sam)}
    cgroups = limits.Cgroups.detect()
    left = cgroups.make(cohort, maria, memory_bytes=2**30, cpus=1, processes=64)  # as a server left them
    first = lifecycle.teardown(load_state(cohort, state.path.parent))
    assert not any(folder.exists() or folder.parent.exists() for folder in left)
    assert set(first.removed_accounts) == {maria, ana, ines, sam, grader}
    for name, home in homes.items():
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
        assert home.is_dir() and home.stat().st_uid == 0
    for group in (f"nbgrader-{cohort}", f"formgrade-{cohort}"):
        with pytest.raises(KeyError):
            grp.getgrnam(group)
    assert (state.exchange).is_dir() and not first.deleted
    # nothing in the hub folder is left to the removed ids, which the next accounts reuse (walk-19 F13)
    orphans = []
    for top, dirs, files in os.walk(state.path):
        for path in [Path(top), *(Path(top) / n for n in dirs + files)]:
            info = path.lstat()
            try:
                pwd.getpwuid(info.st_uid), grp.getgrgid(info.st_gid)
            except KeyError:
                orphans.append(str(path))
    assert orphans == []
    assert not _mode(state.data) & 0o022 and state.data.stat().st_uid == 0
    # an export older than a submission in the exchange does not let teardown delete it (walk-19 F14)
    export = state.course / "grading" / "export"
    export.mkdir(parents=True, exist_ok=True)
    (export / "grades.csv").write_text("student_id,score\n")
    os.utime(export / "grades.csv", (1_900_000_000, 1_900_000_000))
    late = state.exchange / cohort / "inbound" / "maria_g+04-time-to-close+2031-01-01 10:00:00.000000 UTC+abcd"
    late.mkdir()
    os.utime(late, (1_900_000_100, 1_900_000_100))
    with pytest.raises(
        CitykitError, match=r"1 submission\(s\) reached the exchange after the grade export \(maria_g\)"
    ):
        lifecycle.teardown(load_state(cohort, state.path.parent))
    assert late.is_dir() and state.exchange.is_dir()
    refused = subprocess.run([sys.executable, "-m", "citykit", "hub", "teardown", "--yes", "--cohort", cohort,
                              "--prefix", str(state.path.parent)], capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "teardown --force" in refused.stderr and late.is_dir(), refused.stderr
    # after an export newer than every submission, teardown deletes what the accounts held; the course stays
    os.utime(export / "grades.csv", (1_900_000_200, 1_900_000_200))
    second = lifecycle.teardown(load_state(cohort, state.path.parent))
    assert second.exported and not any(home.exists() for home in homes.values())
    assert not state.exchange.exists() and not (state.path / "jupyterhub.sqlite").exists()
    assert not (state.path / "first-passwords.csv").exists()
    assert (state.course / "grading" / "gradebook.db").is_file() and _mode(state.course) == 0o700
