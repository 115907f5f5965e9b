"""The grading helper's checks without a hub: the words it takes, its sudo rule, and a machine
without sudo (setup then installs nothing and says so). No accounts, no root needed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from citykit.errors import CitykitError
from citykit.hub import helper
from citykit.hub.accounts import Member
from citykit.hub.state import HubState

MODULES = {"04-time-to-close", "time-to-close"}
LEARNERS = {"maria_g", "Ana.Lopez"}


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["autograde", "time-to-close"], ["time-to-close"]),
        (["autograde", "04-time-to-close", "--student", "Ana.Lopez", "--force"],
         ["04-time-to-close", "--student", "Ana.Lopez", "--force"]),
        (["autograde", "--workers", "3", "time-to-close"], ["time-to-close", "--workers", "3"]),
    ],
)  # fmt: skip
def test_the_helper_takes_autograde_of_the_courses_modules_and_learners(words, expected):
    assert helper.parse(words, MODULES, LEARNERS) == expected


@pytest.mark.parametrize(
    "words",
    [
        [],
        ["release", "time-to-close"],
        ["autograde"],
        ["autograde", "../../etc"],
        ["autograde", "/srv/other/course"],
        ["autograde", "99-not-a-module"],
        ["autograde", "time-to-close", "time-to-close"],
        ["autograde", "time-to-close", "--course", "/tmp"],
        ["autograde", "time-to-close", "--student", "somebody"],
        ["autograde", "time-to-close", "--student", "../maria_g"],
        ["autograde", "time-to-close", "--student"],
        ["autograde", "time-to-close", "--workers", "0"],
        ["autograde", "time-to-close", "--workers", "1; id"],
        ["autograde", "time-to-close", "--student=maria_g"],
    ],
)
def test_the_helper_refuses_every_other_word(words):
    with pytest.raises(CitykitError):
        helper.parse(words, MODULES, LEARNERS)


def _state(tmp_path) -> HubState:
    member = Member("ines", "Inés", "Teacher", "instructor", "ck-ines")
    return HubState(
        cohort="ckwords-test", folder=str(tmp_path / "ckwords-test"), members=(member,), python="/usr/bin/python3"
    )


@pytest.mark.skipif(shutil.which("visudo") is None, reason="needs visudo (Debian package sudo)")
def test_the_sudo_rule_checks_and_names_one_command_for_the_instructors_group(tmp_path):
    rule = tmp_path / "rule"
    rule.write_text(helper.sudoers_text(_state(tmp_path)))
    assert subprocess.run(["visudo", "-cf", str(rule)], capture_output=True).returncode == 0
    grants = [line for line in rule.read_text().splitlines() if line and not line.startswith(("#", "Defaults"))]
    assert grants == ["%formgrade-ckwords-test ALL=(root) NOPASSWD: /usr/local/libexec/citykit-grade-ckwords-test"]


def test_without_sudo_setup_installs_no_helper_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(helper.shutil, "which", lambda name: None)
    note = helper.install(_state(tmp_path))
    assert "sudo is not installed" in note and "NOT sandboxed" in note
    assert not helper.helper_path("ckwords-test").exists() and not helper.sudoers_path("ckwords-test").exists()
