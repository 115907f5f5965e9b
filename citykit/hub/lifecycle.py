"""`citykit hub setup`, `add-learner` and `teardown`: a cohort's hub made, grown and removed.

`setup` (as root; run it again after any change, it keeps what exists):
1. reads the roster (with roles) and maps ids to accounts; makes the groups `nbgrader-<cohort>`
   (learners) and `formgrade-<cohort>` (instructors and the grader account), the grader account
   and one account per person (`citykit.hub.accounts`);
2. copies the course it is run in (notebooks, curriculum, nbgrader's configuration) to `course/`,
   owned by the grader account and the instructors' group (setgid folders, group-writable, closed
   to everyone else), and sets the cohort up there as the grader account (`citykit grade setup`
   with the learners of the roster); later runs bring the cohort file's learners up to the roster
   and keep its due dates;
3. copies the published datasets (never the raw exports) to `data/`, and the curriculum learners
   may read (course list, standards, learner guides) to `public/` (root's, read-only);
4. prepares nbgrader's exchange and the nbgrader settings (`citykit.hub.exchange`), each role's
   Jupyter settings (`jupyter/`), each home (learners: the references read-only under
   `curriculum/`; instructors: a `course` link), first passwords (`citykit.hub.auth`);
5. writes `hub.json`, `accounts.csv`, `jupyterhub_config.py`, the systemd unit (checked with
   `systemd-analyze verify`) and `kubernetes/` (Zero to JupyterHub);
6. installs the cohort's grading helper and its sudo rule (`citykit.hub.helper`), when the machine
   has sudo: instructors' autograde runs learners' code in the root sandbox.

`teardown` stops the hub and removes the cohort's accounts and groups and the grading helper; once the grades were
exported (`grading/export/grades.csv` in the course) it also deletes what the accounts held: their
homes, the exchange (submissions, feedback), the hub's database and first passwords. The course
folder (gradebook, submissions as collected, exports) stays for the city's retention schedule.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import pwd
import secrets
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError, WorkFailed, quote
from citykit.hub import accounts, config, exchange, helper, limits, systemd, z2jh
from citykit.hub.accounts import ACCOUNT_PREFIX, INSTRUCTOR_SHELL, LEARNER_SHELL, Member
from citykit.hub.service import hub_pid, stop
from citykit.hub.state import AUTH_MODES, HubState, check_cohort_name, hub_dir, load_state, save_state

from citykit.grading.cohort import STUDENT_ID, Learner, gradebook_url, load_cohort, write_cohort  # isort: skip
from citykit.grading.workspace import REFERENCES  # isort: skip

COURSE_PARTS = ("notebooks", "curriculum", "grading/nbgrader_config.py", "grading/README.md", "grading/dashboard.ipynb")
PUBLIC_PARTS = ("curriculum/course.yml", "curriculum/standards", "curriculum/guides/learner.md",
                "curriculum/guides/glossary.md", "curriculum/guides/data-dictionary.md", "curriculum/guides/analyst.md")  # fmt: skip
FIRST_PASSWORDS = "first-passwords.json"  # account -> bcrypt hash (0600): what the hub reads
FIRST_PASSWORDS_CSV = "first-passwords.csv"  # account, roster id, name, password (0600): to hand out
EXPORT = Path("grading") / "export" / "grades.csv"
LAB_PAGE_CONFIG = {  # lab extensions each role does not get (nbgrader's table for separate formgrader services)
    "learner": ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"],
    "instructor": ["@jupyter/nbgrader:formgrader"],
    "grader": ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list"],
}
HOME_BASE = Path("/home")


@dataclass
class SetupResult:
    state: HubState
    made_accounts: list[str] = field(default_factory=list)
    first_passwords: list[str] = field(default_factory=list)  # accounts given a first password now
    unit_problems: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = self.state
        lines = [
            f"hub for cohort {s.cohort}: {len(s.learners)} learners, {len(s.instructors)} instructor(s) in {s.path}",
            f"  accounts: {len(self.made_accounts)} made now" + (f" ({', '.join(self.made_accounts)})" if self.made_accounts else "")
            + f"; the roster's mapping is in {s.path / 'accounts.csv'}",
            f"  sign-in: {s.auth}" + (f"; first passwords for {len(self.first_passwords)} account(s) in "
                                      f"{s.path / FIRST_PASSWORDS_CSV} (root only): hand them out, then delete the file"
                                      if self.first_passwords else ""),
            f"  start: citykit hub start --cohort {s.cohort} --prefix {s.path.parent}   (or the systemd unit "
            f"{s.unit_file}: systemctl link {s.unit_file} && systemctl enable --now {s.unit_name})",
            f"  address: {s.url}  (instructors' formgrader: {s.url}services/{s.cohort}/formgrader)",
            f"  instructors grade in {s.course} with `citykit grade ...` (their terminal sets CITYKIT_COURSE)",
            f"  Kubernetes (Zero to JupyterHub): {s.path / 'kubernetes' / 'values.yaml'}",
        ]  # fmt: skip
        if self.unit_problems:
            lines.append(f"  systemd-analyze verify: {self.unit_problems}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- helpers


def _ids(name: str) -> tuple[int, int]:
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _chown_tree(folder: Path, uid: int, gid: int, *, dir_mode: int, file_mode: int) -> None:
    """Owner, group and modes for a whole tree (executables keep x for owner and group)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        os.chown(path, uid, gid)
        if path.is_dir():
            path.chmod(dir_mode)
        else:
            executable = path.stat().st_mode & stat.S_IXUSR
            path.chmod(file_mode | (0o110 if executable else 0))


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=False,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))  # fmt: skip
    elif source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def find_proxy(given: str | None) -> str:
    """configurable-http-proxy: --proxy-command, else on PATH."""
    found = given or shutil.which("configurable-http-proxy")
    if not found or not Path(found).is_file() or not os.access(found, os.X_OK):
        raise CitykitError("configurable-http-proxy (JupyterHub's proxy, from npm) is not installed: "
                           "`npm install -g configurable-http-proxy@5.1.0`, or give its path with --proxy-command")  # fmt: skip
    return str(Path(found).absolute())


def _as_grader(state: HubState, argv: list[str], what: str) -> str:
    """Run a citykit command as the grader account on the cohort's course (umask 002: the group shares)."""
    uid, gid = _ids(state.grader)
    env = {"PATH": f"{state.bin}:/usr/local/bin:/usr/bin:/bin", "HOME": pwd.getpwnam(state.grader).pw_dir,
           "CITYKIT_COURSE": str(state.course), "CITYKIT_HOME": str(state.data), "LANG": "C.UTF-8"}  # fmt: skip
    done = subprocess.run([*state.module("citykit"), *argv], cwd=state.course, env=env, user=uid, group=gid,
                          extra_groups=[accounts.ensure_group(state.grader_group)], umask=0o002,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise WorkFailed(f"{what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")
    return done.stdout


def _wrappers(state: HubState) -> None:
    """`citykit` and `nbgrader` in the hub's bin/ (first on instructors' PATH), run with the hub's Python;
    `citykit` is the hub's route (`citykit.hub.helper.route`: autograde through the grading helper,
    feedback released to the exchange)."""
    state.bin.mkdir(exist_ok=True)
    state.bin.chmod(0o755)
    hub = (f"export {helper.ENV_COHORT}={shlex.quote(state.cohort)}\n"
           f"export {helper.ENV_HUB}={shlex.quote(str(state.path))}\n")  # fmt: skip
    for name, module, lines in (("citykit", "citykit.hub.helper", hub), ("nbgrader", "nbgrader", "")):
        script = state.bin / name
        script.write_text(f'#!/bin/sh\n{lines}exec {shlex.quote(state.python)} -m {module} "$@"\n')
        script.chmod(0o755)


def _check_python(state: HubState) -> None:
    """The hub's Python runs for the cohort's accounts (the grader account tries it)."""
    uid, gid = _ids(state.grader)
    try:
        done = subprocess.run([state.python, "-c", "import citykit, jupyterhub"],
                              user=uid, group=gid, extra_groups=[], cwd="/", capture_output=True, text=True,
                              timeout=120, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})  # fmt: skip
        problem = "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["exit code"])[-1]
    except OSError as error:
        problem = str(error)
    if problem:
        raise CitykitError(f"the Python {state.python} cannot run citykit and JupyterHub for the cohort's accounts "
                           f"({problem}); install citykit with its hub extra in an environment every account can "
                           "read (e.g. `python3 -m venv /opt/citykit && /opt/citykit/bin/pip install 'citykit[hub]'`: "
                           "not under /root) and pass its python with --python")  # fmt: skip


def _fix_course(state: HubState) -> None:
    """The course folder: the grader account's and the instructors' group's, closed to everyone else."""
    uid, _ = _ids(state.grader)
    gid = accounts.ensure_group(state.grader_group)
    _chown_tree(state.course, uid, gid, dir_mode=0o2770, file_mode=0o660)


def _fix_data(state: HubState) -> None:
    """Published data: the instructors write (imports), everyone reads; raw exports (if any) stay closed."""
    uid, _ = _ids(state.grader)
    gid = accounts.ensure_group(state.grader_group)
    _chown_tree(state.data, uid, gid, dir_mode=0o2775, file_mode=0o664)
    for private in ("raw", "imported"):
        if (state.data / private).exists():
            _chown_tree(state.data / private, uid, gid, dir_mode=0o2770, file_mode=0o660)


# ---------------------------------------------------------------------------------- the parts


def _members(roster: Path | None, previous: HubState | None, prefix: str) -> list[Member]:
    if roster is not None:
        return accounts.read_hub_roster(roster, prefix)
    if previous is None:
        raise CitykitError("the first setup of a hub needs the roster: --roster roster.csv (with a `role` column)")
    return list(previous.members)


def _check_accounts_free(members: list[Member], state: HubState, previous: HubState | None) -> None:
    """An account that exists and is not this cohort's is refused (it belongs to someone else)."""
    ours = set(previous.accounts if previous else []) | {state.grader}
    for member in members:
        if member.account in ours or not accounts.user_exists(member.account):
            continue
        comment = pwd.getpwnam(member.account).pw_gecos
        if not comment.startswith(f"citykit {state.cohort} "):
            raise CitykitError(f"the account {member.account} (for {member.student_id}) already exists and is not "
                               f"this cohort's; choose another --account-prefix than {state.account_prefix!r}")  # fmt: skip


def _make_accounts(state: HubState) -> list[str]:
    accounts.ensure_group(state.learner_group)
    accounts.ensure_group(state.grader_group)
    made = []
    if not accounts.user_exists(state.grader):
        made.append(state.grader)
    accounts.ensure_account(state.grader, home=state.path / "grader", shell=LEARNER_SHELL,
                            comment=f"citykit {state.cohort} formgrader", groups=(state.grader_group,))  # fmt: skip
    for member in state.members:
        if not accounts.user_exists(member.account):
            made.append(member.account)
        group = state.grader_group if member.role == "instructor" else state.learner_group
        accounts.ensure_account(member.account, home=HOME_BASE / member.account,
                                shell=INSTRUCTOR_SHELL if member.role == "instructor" else LEARNER_SHELL,
                                comment=f"citykit {state.cohort} {member.role}", groups=(group,))  # fmt: skip
    return made


def _course(state: HubState, source: Path) -> bool:
    """Copy the course the first time; True when it was copied now."""
    if (state.course / "curriculum" / "course.yml").is_file():
        return False
    for part in COURSE_PARTS:
        _copy(source / part, state.course / part)
    if not (state.course / "grading" / "nbgrader_config.py").is_file():
        _copy(paths.kit_course() / "grading" / "nbgrader_config.py", state.course / "grading" / "nbgrader_config.py")
    return True


def _data(state: HubState, source_home: Path) -> None:
    """The published datasets and the local registry of imports (never the raw exports)."""
    (state.data / "published").mkdir(parents=True, exist_ok=True)
    _copy(source_home / "published", state.data / "published")
    _copy(source_home / "registry.local.yml", state.data / "registry.local.yml")
    if not any((state.data / "published").iterdir()):
        raise CitykitError(f"no published dataset in {source_home}; build one first (`citykit data build`)")


def _public(state: HubState) -> None:
    """What learners' kernels read as their course: the course list, the standards and the guides."""
    staging = Path(tempfile.mkdtemp(prefix=".public-", dir=state.path))
    for part in PUBLIC_PARTS:
        _copy(state.course / part, staging / part)
    _chown_tree(staging, 0, 0, dir_mode=0o755, file_mode=0o644)
    shutil.rmtree(state.public, ignore_errors=True)
    staging.rename(state.public)


def _jupyter_dirs(state: HubState) -> None:
    state.jupyter.mkdir(parents=True, exist_ok=True)
    state.jupyter.chmod(0o755)
    for role, disabled in LAB_PAGE_CONFIG.items():
        folder = state.jupyter / role / "labconfig"
        folder.mkdir(parents=True, exist_ok=True)
        page = {"disabledExtensions": {name: True for name in disabled}}
        (folder / "page_config.json").write_text(json.dumps(page, indent=1) + "\n")
    (state.jupyter / "instructor" / "nbgrader_config.py").write_text(
        "# nbgrader settings of instructors' servers: the course list links the cohort's formgrader service\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {state.cohort!r}\n"
        f"c.Exchange.root = {str(state.exchange)!r}\n"
    )  # fmt: skip
    for role in LAB_PAGE_CONFIG:
        _chown_tree(state.jupyter / role, 0, 0, dir_mode=0o755, file_mode=0o644)
    exchange.write_learner_configs(state)


def _homes(state: HubState) -> None:
    """Learners: the references, root's and read-only, at their course paths; instructors: `course` link."""
    for member in state.members:
        entry = pwd.getpwnam(member.account)
        home = Path(entry.pw_dir)
        if member.role == "instructor":
            link = home / "course"
            if not link.is_symlink():
                link.symlink_to(state.course)
            continue
        top = home / "curriculum"
        for reference in REFERENCES:
            source = state.course / reference
            files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
            for file in files:
                if not file.is_file():
                    continue
                target = home / reference / file.relative_to(source) if source.is_dir() else home / reference
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                shutil.copyfile(file, target)
        if top.exists():
            _chown_tree(top, 0, 0, dir_mode=0o755, file_mode=0o444)


def reset_password(state: HubState, key: str) -> str:
    """A new first password for a person who forgot theirs (`--auth firstuse` or `native`): written to
    `first-passwords.csv` (root only) and `first-passwords.json`, and into the hub's database when it
    knows the account (NativeAuthenticator reads it at each sign-in: no restart). Returns the account."""
    import bcrypt  # lazy: JupyterHub's dependency (the `hub` extra), only when a password is made

    accounts.require_root("citykit hub reset-password")
    member = state.member(key)
    if member is None:
        raise CitykitError(f"{quote(key)} is not in the cohort {state.cohort} (a roster id or an account)")
    if state.auth not in ("firstuse", "native"):
        raise CitykitError(f"the cohort signs in with {state.auth}: passwords are the city's single sign-on's")
    password = secrets.token_urlsafe(9)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    hashes, rows = _read_private(state)
    hashes[member.account] = hashed
    rows = [r for r in rows if not r or r[0] != member.account] + [[member.account, member.student_id, member.name, password]]  # fmt: skip
    _write_private(state, hashes, rows)
    database = state.path / "jupyterhub.sqlite"
    if database.is_file() and database.stat().st_size:
        with sqlite3.connect(database) as db:
            if db.execute("SELECT name FROM sqlite_master WHERE name = 'users_info'").fetchone():
                db.execute("UPDATE users_info SET password = ? WHERE username = ?", (hashed.encode(), member.account))
    return member.account


def _read_private(state: HubState) -> tuple[dict, list[list[str]]]:
    """The first passwords so far: the hashes by account, and the sheet's rows (a header when none)."""
    hashes_file, sheet = state.path / FIRST_PASSWORDS, state.path / FIRST_PASSWORDS_CSV
    hashes = json.loads(hashes_file.read_text()) if hashes_file.exists() else {}
    rows = list(csv.reader(io.StringIO(sheet.read_text()))) if sheet.exists() else [["account", "student_id", "name", "password"]]  # fmt: skip
    return hashes, rows


def _write_private(state: HubState, hashes: dict, rows: list[list[str]]) -> None:
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows(rows)
    for path, text in ((state.path / FIRST_PASSWORDS, json.dumps(hashes, indent=1) + "\n"),
                       (state.path / FIRST_PASSWORDS_CSV, table.getvalue())):  # fmt: skip
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
        path.chmod(0o600)


def _first_passwords(state: HubState) -> list[str]:
    """First passwords for the accounts that need one and have none yet; return those accounts."""
    import bcrypt  # lazy: JupyterHub's dependency (the `hub` extra), only when passwords are made

    needing = [
        m for m in state.members if state.auth == "firstuse" or (state.auth == "native" and m.role == "instructor")
    ]
    hashes, rows = _read_private(state)
    made = []
    for member in needing:
        if member.account in hashes:
            continue
        # 12 characters: past NativeAuthenticator's length and common-password checks
        password = secrets.token_urlsafe(9)
        hashes[member.account] = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        rows.append([member.account, member.student_id, member.name, password])
        made.append(member.account)
    _write_private(state, hashes, rows)
    return made


def _sync_cohort(state: HubState) -> None:
    """The cohort file's learners and the gradebook's students brought up to the roster (due dates kept)."""
    from nbgrader.api import Gradebook  # lazy: nbgrader's gradebook, only when the roster changed

    cohort = load_cohort(state.cohort, course_root=state.course)
    known = {x.student_id: x for x in cohort.learners}
    learners = [known.get(m.student_id) or Learner(m.student_id, m.first_name, m.last_name, m.email)
                for m in state.learners]  # fmt: skip
    write_cohort(replace(cohort, learners=tuple(learners)), state.course, activate=False)
    with Gradebook(gradebook_url(cohort, state.course), state.cohort) as gradebook:
        for learner in learners:
            gradebook.update_or_create_student(learner.student_id, first_name=learner.first_name,
                                               last_name=learner.last_name, email=learner.email or None)  # fmt: skip


def _grading(state: HubState, copied: bool) -> None:
    roster = accounts.write_learner_roster(list(state.members), state.course / "roster-learners.csv")
    accounts.write_hub_roster(list(state.members), state.course / "roster.csv")
    _fix_course(state)
    exchange.write_course_config(state)
    if copied or not (state.course / "grading" / "cohorts" / f"{state.cohort}.yml").exists():
        _as_grader(
            state, ["grade", "setup", "--cohort", state.cohort, "--roster", str(roster)], "the cohort's grading setup"
        )
    else:
        _sync_cohort(state)
    _fix_course(state)


def _write_files(state: HubState) -> str | None:
    save_state(state)
    gid = accounts.ensure_group(state.grader_group)
    sheet = state.path / "accounts.csv"
    accounts.write_hub_roster(list(state.members), sheet)
    state.config_file.write_text(config.render(state), encoding="utf-8")
    for path in (state.path / "hub.json", sheet, state.config_file):
        os.chown(path, 0, gid)
        path.chmod(0o640)
    config.load(state.config_file)  # the file loads as JupyterHub will load it
    state.unit_file.write_text(systemd.render(state), encoding="utf-8")
    state.unit_file.chmod(0o644)
    z2jh.write(state)
    return systemd.verify(state.unit_file)


def _source_notes(source: Path) -> list[str]:
    """The source course stays where it is, raw exports included: say so when other accounts can enter it."""
    mode = source.stat().st_mode
    if not mode & 0o001:
        return []
    raw = source / "datasets" / "raw"
    what = "its raw exports (datasets/raw/) and everything else" if raw.is_dir() else "everything in it"
    return [f"the source course {source} can be entered by every account on this server, so learners can read "
            f"{what} where the modes allow: `chmod 700 {source}` (setup needs nothing more from it)"]  # fmt: skip


def _sso_notes(state: HubState) -> list[str]:
    """Single sign-on matches people by the roster's e-mail: say who has none (they cannot sign in)."""
    missing = [m.account for m in state.members if not m.email]
    if state.auth != "oidc" or not missing:
        return []
    return [f"single sign-on matches people by e-mail, and these have none on the roster, so they cannot sign in: "
            f"{', '.join(missing)} (add the email column, or add-learner --email, and run setup again)"]  # fmt: skip


# ---------------------------------------------------------------------------------- commands


SETUP_DEFAULTS = {"ip": "127.0.0.1", "port": 8000, "ssl_cert": "", "ssl_key": "", "auth": "firstuse", "public_url": "",
                  "memory_mb": 2048, "cpus": 1.0, "idle_minutes": 60, "proxy_command": "",
                  "account_prefix": ACCOUNT_PREFIX}  # fmt: skip


def recorded_options(previous: HubState | None, **given) -> dict:
    """setup's options: each one given (not None), else the one recorded in hub.json by an earlier
    setup, else the default. A second setup never silently moves the port or switches sign-in."""
    options = {}
    for name, default in SETUP_DEFAULTS.items():
        value = given.get(name)
        if value is None:
            value = getattr(previous, name) if previous is not None else default
        options[name] = value
    return options


def setup(
    cohort: str,
    roster: Path | None = None,
    *,
    prefix: Path | str | None = None,
    ip: str | None = None,
    port: int | None = None,
    ssl_cert: Path | None = None,
    ssl_key: Path | None = None,
    auth: str | None = None,
    public_url: str | None = None,
    memory_mb: int | None = None,
    cpus: float | None = None,
    idle_minutes: int | None = None,
    proxy_command: str | None = None,
    account_prefix: str | None = None,
    source: Path | None = None,
    python: str | None = None,
) -> SetupResult:
    """Set a cohort's hub up, or again (see the module's doc); options left out (None) keep what the
    last setup recorded, or take their defaults the first time."""
    accounts.require_root("citykit hub setup")
    check_cohort_name(cohort)
    folder = hub_dir(cohort, prefix)
    previous = None
    if (folder / "hub.json").exists():
        previous = load_state(cohort, prefix)
    if (ssl_cert is None) != (ssl_key is None):
        raise CitykitError("give both --ssl-cert and --ssl-key (or neither, behind a reverse proxy)")
    for file in (ssl_cert, ssl_key):
        if file is not None and not Path(file).is_file():
            raise CitykitError(f"no file {file}")
    given = {"ip": ip, "port": port, "auth": auth, "public_url": public_url, "memory_mb": memory_mb, "cpus": cpus,
             "idle_minutes": idle_minutes, "proxy_command": proxy_command, "account_prefix": account_prefix,
             "ssl_cert": str(Path(ssl_cert).resolve()) if ssl_cert else None,
             "ssl_key": str(Path(ssl_key).resolve()) if ssl_key else None}  # fmt: skip
    o = recorded_options(previous, **given)
    ip, port, auth, account_prefix = o["ip"], o["port"], o["auth"], o["account_prefix"]
    kept = [f"{name} {o[name]}" for name in ("ip", "port", "auth", "public_url", "memory_mb", "cpus", "idle_minutes")
            if previous is not None and given[name] is None and o[name] != SETUP_DEFAULTS[name]]  # fmt: skip
    accounts.check_prefix(account_prefix)
    if auth not in AUTH_MODES:
        raise CitykitError(f"--auth must be one of {', '.join(AUTH_MODES)}, not {quote(auth)}")
    if not 1 <= port <= 65532:
        raise CitykitError("--port must leave the next three ports free (at most 65532)")
    source_course = Path(source).resolve() if source else paths.course_root()
    state = HubState(
        cohort=cohort, folder=str(folder), members=(), auth=auth, ip=ip, port=port, ssl_cert=o["ssl_cert"],
        ssl_key=o["ssl_key"], public_url=o["public_url"], account_prefix=account_prefix, memory_mb=o["memory_mb"],
        cpus=o["cpus"], idle_minutes=o["idle_minutes"], proxy_command=find_proxy(o["proxy_command"] or None),
        python=str(Path(python or (previous.python if previous else "") or sys.executable).absolute()),
        created=previous.created if previous else dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        source_course=str(source_course),
    )  # fmt: skip
    members = _members(roster, previous, account_prefix)
    _check_accounts_free(members, state, previous)
    state = state.with_members(members)
    result = SetupResult(state)
    if kept:
        result.notes.append(f"kept from the last setup (give an option to change it): {', '.join(kept)}")
    if previous:
        gone = sorted(set(previous.accounts) - set(state.accounts))
        if gone:
            result.notes.append(f"no longer on the roster, so they cannot sign in (their accounts and files stay "
                                f"until teardown): {', '.join(gone)}")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, 0, 0)
    folder.chmod(0o755)
    result.made_accounts = _make_accounts(state)
    _wrappers(state)
    _check_python(state)
    copied = _course(state, source_course)
    _data(state, Path(os.environ["CITYKIT_HOME"]) if os.environ.get("CITYKIT_HOME") else source_course / "datasets")
    _fix_data(state)
    _grading(state, copied)
    _public(state)
    exchange.prepare(state, _ids(state.grader)[0], accounts.ensure_group(state.grader_group))
    _jupyter_dirs(state)
    _homes(state)
    if auth in ("firstuse", "native"):
        result.first_passwords = _first_passwords(state)
    if ip not in ("127.0.0.1", "::1", "localhost") and not state.ssl_cert:
        result.notes.append(f"the hub listens on {ip} without a certificate: put it behind the city's HTTPS reverse "
                            "proxy (see the instructor guide) or give --ssl-cert and --ssl-key")  # fmt: skip
    result.unit_problems = _write_files(state)
    if result.unit_problems:
        raise WorkFailed(f"the systemd unit {state.unit_file} does not verify: {result.unit_problems}")
    result.notes.append(helper.install(state))
    result.notes += _sso_notes(state) + _source_notes(source_course)
    if hub_pid(state):
        result.notes.append(f"the hub is running: restart it for these changes (citykit hub stop / start, or "
                            f"systemctl restart {state.unit_name})")  # fmt: skip
    return result


def add_learner(state: HubState, student_id: str, first_name: str, last_name: str, email: str = "",
                *, instructor: bool = False) -> SetupResult:  # fmt: skip
    """A late joiner: their account, the roster, the cohort file and gradebook, the hub's settings."""
    accounts.require_root("citykit hub add-learner")
    if not STUDENT_ID.match(student_id):
        raise CitykitError(f"learner id {quote(student_id)} may use only letters, digits, _ . -")
    if state.member(student_id) is not None:
        raise CitykitError(
            f"{student_id} is already in the cohort {state.cohort} (account {state.member(student_id).account})"
        )  # type: ignore[union-attr]
    if not first_name.strip() or not last_name.strip():
        raise CitykitError("give the person's --first-name and --last-name")
    member = Member(student_id, first_name.strip(), last_name.strip(), "instructor" if instructor else "learner",
                    accounts.account_name(student_id, state.account_prefix), email.strip())  # fmt: skip
    if state.member(member.account) is not None:
        raise CitykitError(f"{student_id} maps to the account {member.account}, which is already someone's")
    _check_accounts_free([member], state, state)
    state = state.with_members([*state.members, member])
    result = SetupResult(state)
    result.made_accounts = _make_accounts(state)
    _grading(state, copied=False)
    _jupyter_dirs(state)
    _homes(state)
    if state.auth in ("firstuse", "native"):
        result.first_passwords = _first_passwords(state)
    result.unit_problems = _write_files(state)
    result.notes.append(helper.install(state))  # root's copy of the course's settings names the new learner
    result.notes += _sso_notes(state)
    if hub_pid(state):
        result.notes.append(f"restart the hub so {member.account} can sign in (citykit hub stop / start, or systemctl "
                            f"restart {state.unit_name}); servers restart too, files are kept")  # fmt: skip
    return result


@dataclass
class Teardown:
    cohort: str
    stopped: str = ""
    removed_accounts: list[str] = field(default_factory=list)
    removed_helper: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    exported: bool = False

    def summary(self) -> str:
        lines = [f"teardown of {self.cohort}: {self.stopped}",
                 f"  accounts removed: {', '.join(self.removed_accounts) or 'none (already gone)'}"]  # fmt: skip
        if self.removed_helper:
            lines.append(f"  grading helper removed: {', '.join(self.removed_helper)}")
        if self.deleted:
            lines.append(f"  deleted (grades were exported): {', '.join(self.deleted)}")
        if self.kept:
            lines.append(f"  kept: {'; '.join(self.kept)}")
        return "\n".join(lines)


def teardown(state: HubState, *, force: bool = False) -> Teardown:
    """Stop the hub, remove the accounts and, after the grade export, their files. A submission that
    reached the exchange after the export is refused (nothing done) unless `force`."""
    accounts.require_root("citykit hub teardown")
    if (state.course / EXPORT).is_file() and not force:
        late = _newer_than_export(state)
        if late:
            raise CitykitError(f"{len(late)} submission(s) reached the exchange after the grade export "
                               f"({', '.join(late[:5])}{' ...' if len(late) > 5 else ''}), and teardown would delete "
                               f"them: collect, grade and export again (`CITYKIT_COURSE={state.course} citykit grade "
                               "export` as root), or teardown --force")  # fmt: skip
    done = Teardown(state.cohort)
    done.stopped = stop(state).summary(state.cohort)
    exported = (state.course / EXPORT).is_file()
    done.exported = exported
    homes = {m.account: Path(pwd.getpwnam(m.account).pw_dir) if accounts.user_exists(m.account)
             else HOME_BASE / m.account for m in state.members}  # fmt: skip
    for name in [*state.accounts, state.grader]:
        if accounts.remove_account(name):
            done.removed_accounts.append(name)
    for group in (state.learner_group, state.grader_group):
        accounts.remove_group(group)
    limits.remove_cohort(state.cohort)
    done.removed_helper = helper.remove(state)  # the grading helper, its sudo rule, root's copy of the course's code
    if exported:
        for account, home in homes.items():
            if home.is_dir() and home.name == account:
                shutil.rmtree(home)
                done.deleted.append(str(home))
        for part in ("exchange", "jupyterhub.sqlite", "jupyterhub_cookie_secret", FIRST_PASSWORDS,
                     FIRST_PASSWORDS_CSV, "jupyter", "public", "grader"):  # fmt: skip
            path = state.path / part
            if path.is_dir():
                shutil.rmtree(path)
                done.deleted.append(str(path))
            elif path.exists():
                path.unlink()
                done.deleted.append(str(path))
    else:
        for home in homes.values():
            if home.is_dir():
                _chown_tree(home, 0, 0, dir_mode=0o700, file_mode=0o600)  # a reused uid must not open them
        done.kept.append(f"learners' homes and submissions (no grade export yet: as root, `CITYKIT_COURSE={state.course} "
                         f"citykit grade export`, then `citykit hub teardown --cohort {state.cohort}` again deletes them)")  # fmt: skip
    if state.course.is_dir():
        _chown_tree(state.course, 0, 0, dir_mode=0o700, file_mode=0o600)
        done.kept.append(f"the course folder {state.course} (gradebook, submissions, exports: the city's retention "
                         "schedule decides; delete it when that ends)")  # fmt: skip
    _orphans_to_root(state.path)
    save_state(
        replace(state, extra={**state.extra, "torn_down": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    )
    return done


def _newer_than_export(state: HubState) -> list[str]:
    """Submissions in the exchange made after the grade export (never graded or exported)."""
    inbound = state.exchange / state.cohort / "inbound"
    if not inbound.is_dir():
        return []
    exported = (state.course / EXPORT).stat().st_mtime
    return sorted(p.name.split("+")[0] for p in inbound.iterdir() if p.lstat().st_mtime > exported)


def _orphans_to_root(folder: Path) -> None:
    """What the removed accounts and groups still own in the hub folder becomes root's, writable by no
    one else: the next accounts made on this machine reuse their ids."""
    for top, dirs, files in os.walk(folder):
        for name in [*dirs, *files, ""]:
            path = os.path.join(top, name) if name else top
            info = os.lstat(path)
            uid = info.st_uid if accounts.name_of_uid(info.st_uid) else 0
            gid = info.st_gid if accounts.name_of_gid(info.st_gid) else 0
            if (uid, gid) != (info.st_uid, info.st_gid):
                os.lchown(path, uid, gid)
                if not stat.S_ISLNK(info.st_mode):
                    os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o022)
