"""Collect on a hub files a submission under a roster id only when that id's own account made it.

Learners set their nbgrader id in settings they can edit, so one could submit under another's id;
nbgrader's own collect only warns and takes the newest. The exchange here is built by hand with
folders owned by two existing system accounts (`daemon` stands for maria_g's account, `bin` for
another learner's), which needs root to chown."""

from __future__ import annotations

import os
import pwd
import sys

import pytest
from nbgrader.api import Gradebook
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.default.collect import ExchangeCollect
from traitlets.config import Config

from citykit.grading.config import grader_env
from citykit.hub.collect import OwnerCheckedCollect

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="owning folders as other accounts needs root"
)

GENUINE = "maria_g+a1+2031-01-01 10:00:00.000000 UTC+aaaa"
SPOOFED = "maria_g+a1+2031-01-02 10:00:00.000000 UTC+bbbb"  # newer, made by another account
OTHER = "chloe+a1+2031-01-01 11:00:00.000000 UTC+cccc"  # an id without a listed account: collected as nbgrader would


def _exchange(tmp_path):
    inbound = tmp_path / "exchange" / "c1" / "inbound"
    for name, owner in ((GENUINE, "daemon"), (SPOOFED, "bin"), (OTHER, "bin")):
        folder = inbound / name
        folder.mkdir(parents=True)
        (folder / "a1.ipynb").write_text(name)
        (folder / "timestamp.txt").write_text(name.split("+")[2])
        entry = pwd.getpwnam(owner)
        for path in (folder, folder / "a1.ipynb", folder / "timestamp.txt"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    config = Config()
    config.CourseDirectory.root = str(tmp_path / "course")
    config.CourseDirectory.course_id = "c1"
    config.CourseDirectory.db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    config.Exchange.root = str(tmp_path / "exchange")
    config.OwnerCheckedCollect.accounts = {"maria_g": "daemon"}
    with grader_env(), Gradebook(config.CourseDirectory.db_url, "c1") as gradebook:
        gradebook.update_or_create_assignment("a1")
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = "a1"
    return config, coursedir


def test_a_submission_filed_under_someone_elses_id_is_not_collected(tmp_path, capfd):
    config, coursedir = _exchange(tmp_path)
    plain = ExchangeCollect(coursedir=coursedir, authenticator=Authenticator(config=config), config=config)
    plain.init_src()
    assert {r["username"]: r["filename"] for r in plain.src_records}["maria_g"] == SPOOFED  # what nbgrader alone takes

    checked = OwnerCheckedCollect(coursedir=coursedir, authenticator=Authenticator(config=config), config=config)
    with grader_env():
        checked.start()
    assert {r["username"]: r["filename"] for r in checked.src_records} == {"maria_g": GENUINE, "chloe": OTHER}
    assert checked.refused == [(SPOOFED, "bin")]
    # the instructor's terminal names it (walk-19 F11: collect's summary said "nothing newer")
    assert (
        "REFUSED a submission of a1 filed under maria_g but made by the account bin, not daemon"
        in capfd.readouterr().err
    )
    submitted = tmp_path / "course" / "submitted"
    assert (submitted / "maria_g" / "a1" / "a1.ipynb").read_text() == GENUINE
    assert (submitted / "chloe" / "a1" / "a1.ipynb").read_text() == OTHER
