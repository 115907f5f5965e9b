"""The hub's grading helper (issue 19): an instructor, not root, grades with learners' code in the root
sandbox, and cannot use the helper for anything else.

A cohort is set up (not started) with one learner and one instructor, real accounts. As their own
accounts, with their terminals' environment: the instructor generates and releases module 04; the
learner fetches it with nbgrader, answers it with the source's solutions and submits; the instructor
collects, runs `citykit grade autograde` (the hub's `citykit`, which goes through sudo to the helper)
and `citykit grade feedback` (which also releases it); the learner fetches the feedback. The sandbox
report must say the learner's code ran as the sandbox user, the score must be the source's points,
code the instructor plants in the course's nbgrader settings must never run as root (not even after
setup refreshed the helper), and a link they plant in the course's grading/ must not lead root's
run into a folder only root may write. Then the
instructor tries the helper with other words, another course, kept variables and another command,
and the learner tries it at all: every one refused. Teardown removes the helper and its sudo rule.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import nbformat
import pytest
from hubtest import auto_scores, full_marks, needs_accounts, solutions

from citykit.hub import config, helper, lifecycle
from citykit.hub.state import HubState

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("hub"),
    needs_accounts,
    pytest.mark.skipif(shutil.which("sudo") is None, reason="the grading helper needs sudo (Debian package sudo)"),
]

M04 = "04-time-to-close"
LEARNERS = [("maria_g", "María", "González")]
INSTRUCTORS = [("ines", "Inés", "Teacher")]


def _as(state: HubState, account: str, command: list[str] | str, *, cwd: Path | None = None, check: bool = True,
        extra_env: dict | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """`command` as `account`, with the environment their server's terminal or kernel has."""
    entry = pwd.getpwnam(account)
    role = state.member(account).role
    env = {**config.role_environment(state)[role], "HOME": entry.pw_dir, "USER": account, "LOGNAME": account,
           "LANG": "C.UTF-8", **(extra_env or {})}  # fmt: skip
    if role == "learner":
        folders = [state.jupyter / "users" / account, state.jupyter / "learner", config.kit_jupyter_config()]
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(str(f) for f in folders)
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else command
    done = subprocess.run(argv, user=entry.pw_uid, group=entry.pw_gid,
                          extra_groups=os.getgrouplist(account, entry.pw_gid), umask=0o002 if role == "instructor" else 0o077,
                          cwd=cwd or entry.pw_dir, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    if check:
        assert done.returncode == 0, f"{command} as {account}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def _answer(notebook: Path, source: Path) -> None:
    """Every answer cell of the learner's copy gets the source notebook's solution."""
    answers = solutions(source)
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    info = notebook.stat()
    nbformat.write(nb, notebook)
    os.chown(notebook, info.st_uid, info.st_gid)


def test_an_instructor_autogrades_through_the_helper_sandboxed_and_can_do_nothing_else(hub_cohort):
    state = hub_cohort(LEARNERS, INSTRUCTORS)
    teacher, learner = state.member("ines").account, state.member("maria_g").account
    hub_helper, rule = helper.helper_path(state.cohort), helper.sudoers_path(state.cohort)
    # installed: root's files, the rule valid and naming only the helper for the instructors' group
    for path, mode in ((hub_helper, 0o755), (rule, 0o440)):
        info = path.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, mode), path
    assert subprocess.run(["visudo", "-cf", str(rule)], capture_output=True).returncode == 0
    allowed = subprocess.run(["sudo", "-n", "-l", "-U", teacher], capture_output=True, text=True).stdout
    assert [x.strip() for x in allowed.splitlines() if x.strip().startswith("(")] == [
        f"(root) NOPASSWD: {hub_helper}"], allowed  # fmt: skip

    # code the instructor plants in the course's nbgrader settings: it records who ran it
    home = Path(pwd.getpwnam(teacher).pw_dir)
    marker = home / "who-ran-the-settings"
    planted = f"\nimport os\nopen({str(marker)!r}, 'a').write(str(os.geteuid()) + '\\n')\n"
    settings = state.course / "grading" / "nbgrader_config.py"
    _as(state, teacher, [state.python, "-c", f"open({str(settings)!r}, 'a').write({planted!r})"])
    helper.install(state)  # what setup and add-learner run again: root's copy comes from the source course
    assert str(marker) not in (helper.shadow_dir(state) / "grading" / "nbgrader_config.py").read_text()
    # release, fetch, answer, submit, collect
    _as(state, teacher, "citykit grade generate time-to-close && citykit grade release time-to-close")
    _as(state, learner, [state.python, "-m", "nbgrader", "fetch_assignment", M04])
    learner_home = Path(pwd.getpwnam(learner).pw_dir)
    _answer(learner_home / M04 / f"{M04}.ipynb", state.course / "notebooks" / M04 / f"{M04}.ipynb")
    _as(state, learner, [state.python, "-m", "nbgrader", "submit", M04])
    _as(state, teacher, "citykit grade collect time-to-close")

    graded = _as(state, teacher, "citykit grade autograde time-to-close")
    report = graded.stdout + graded.stderr
    assert "runs as the unprivileged user citykit-grader" in report, report[-3000:]
    assert "NOT ENFORCED" not in report and "learner code runs as you" not in report, report[-3000:]
    most = full_marks(state.course / "notebooks" / M04 / f"{M04}.ipynb")
    assert auto_scores(state.course / "grading" / "gradebook.db") == {"maria_g": most}
    # what root made in the course stays the instructors' to change
    autograded = state.course / "grading" / "autograded" / "maria_g" / M04 / f"{M04}.ipynb"
    assert grp.getgrgid(autograded.stat().st_gid).gr_name == state.grader_group
    assert autograded.stat().st_mode & 0o060 == 0o060

    # feedback: one command writes it and releases it; the learner fetches it
    fed = _as(state, teacher, "citykit grade feedback time-to-close")
    assert "feedback released to" in fed.stdout, fed.stdout + fed.stderr
    assert len(list((state.exchange / state.cohort / "feedback").glob("*.html"))) == 1
    _as(state, learner, [state.python, "-m", "nbgrader", "fetch_feedback", M04])
    pages = list((learner_home / M04 / "feedback").glob(f"*/{M04}.html"))
    assert len(pages) == 1 and f"{M04} (Score: {float(most)} / " in pages[0].read_text(encoding="utf-8")

    # a link the instructor plants in the course's grading/ is not followed by root's run (nosymfollow):
    # the graded submissions' folder made a link to a folder only root may write
    root_only = state.path.parent / "root-only"
    root_only.mkdir(mode=0o700)
    link = state.course / "grading" / "autograded"
    _as(state, teacher, f"rm -rf {link} && ln -s {root_only} {link}")
    _as(state, teacher, "citykit grade autograde time-to-close --force", check=False)
    assert list(root_only.iterdir()) == [] and link.is_symlink()

    # the planted settings ran as the instructor (collect, feedback), never as root
    runs = marker.read_text().split()
    assert str(pwd.getpwnam(teacher).pw_uid) in runs and "0" not in runs, runs

    # the helper does autograde of this course's modules and learners, nothing else
    refused = [
        [hub_helper, "autograde", "../../etc"],
        [hub_helper, "autograde", "/tmp"],
        [hub_helper, "release", "time-to-close"],
        [hub_helper, "autograde", "time-to-close", "--course", "/tmp"],
        [hub_helper, "autograde", "time-to-close", "--student", "somebody"],
        [hub_helper, "autograde", "time-to-close", "--workers", "1; id"],
    ]
    for words in refused:
        done = _as(state, teacher, ["sudo", "-n", *map(str, words)], check=False)
        assert done.returncode == 2 and "grading helper" in done.stderr, (words, done.stderr)
    for words, env in (
        (["sudo", "-n", "--preserve-env=PYTHONPATH,CITYKIT_COURSE", str(hub_helper), "autograde", "time-to-close"],
         {"PYTHONPATH": "/tmp", "CITYKIT_COURSE": "/tmp"}),
        (["sudo", "-n", "CITYKIT_COURSE=/tmp", str(hub_helper), "autograde", "time-to-close"], {}),
        (["sudo", "-n", "/bin/sh", "-c", "id"], {}),
        (["sudo", "-n", state.python, str(hub_helper), "autograde", "time-to-close"], {}),
    ):  # fmt: skip
        done = _as(state, teacher, words, check=False, extra_env=env)
        assert done.returncode == 1 and "sudo" in done.stderr, (words, done.stdout, done.stderr)
    done = _as(state, learner, ["sudo", "-n", str(hub_helper), "autograde", "time-to-close"], check=False)
    assert done.returncode == 1, done.stderr
    done = _as(state, teacher, [str(hub_helper), "autograde", "time-to-close"], check=False)  # without sudo
    assert done.returncode == 2 and "through sudo" in done.stderr, done.stderr

    torn = lifecycle.teardown(state)
    assert not hub_helper.exists() and not rule.exists() and str(rule) in torn.removed_helper
