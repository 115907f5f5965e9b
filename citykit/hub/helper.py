"""The hub's grading helper: learners' code sandboxed when an instructor, not root, autogrades.

citykit's sandbox (`citykit.grading.sandbox`) gives a learner's notebook its own user, namespaces and
cgroups only when grading runs as root. On a hub the instructors grade from their own accounts, so
`citykit hub setup` installs, when the machine has `sudo`, a small privileged helper for the cohort:

- `/usr/local/libexec/citykit-grade-<cohort>` (root's, 0755): a script the hub's Python runs in
  isolated mode (`-I`: no PYTHON* variables, no user site-packages, not the working folder on the
  module path) that calls `main` below with the cohort and its hub folder written into it;
- `/etc/sudoers.d/citykit-<cohort>` (root's, 0440, checked with `visudo -cf`): members of
  `formgrade-<cohort>` may run that one script as root without a password (sudo resets the
  environment; nothing may be kept).

The helper does one thing, `autograde MODULE [--student ID]... [--force] [--workers N]`: it checks
every word (a module of the course, roster ids of the cohort's learners, a small number) and runs
`citykit grade autograde` as root, in a fixed, short environment, on the cohort's course and no
other. What runs as root there reads no code an instructor can change: the course's `notebooks/`
(solutions, tests), `curriculum/` and `grading/nbgrader_config.py` are read from `grading-root/`
in the hub folder, root's copy made by `citykit hub setup` from the source course it is run in,
which must be root's alone (a changed test reaches grading through the source course and `hub
setup` run again). The rest of `grading/` (gradebook, cohort file, submissions, autograded and
feedback folders) is the course's own: the helper, in a mount namespace of its own, mounts the
course's `grading/` folder (opened without following a link) at `grading-root/.course-grading`
with `nosymfollow`, so no link an instructor plants there leads root's run anywhere else, and
`grading-root/grading/` links to it. Results land where the instructors and formgrader read them
(root's files there keep the instructors' group and are group-writable: umask 002 in the course's
setgid folders).

The hub's `citykit` for instructors (`bin/citykit`) is `route` below: `citykit grade autograde` on
the hub's course, as anyone but root, goes through `sudo -n` to the helper; `citykit grade feedback`
also releases the feedback to the exchange (nbgrader's `release_feedback`), so learners fetch it
in the Assignments tab. Every other command runs as it would anywhere.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError, quote
from citykit.hub.exchange import course_block, without_block
from citykit.hub.state import HubState, load_state

LIBEXEC = Path("/usr/local/libexec")
SUDOERS_D = Path("/etc/sudoers.d")
SHADOW = "grading-root"  # in the hub folder: root's copy of the course's code
SHADOW_PARTS = ("notebooks", "curriculum")
CONFIG = "nbgrader_config.py"
LINKED = ("gradebook.db", "cohorts", "release", "submitted", "autograded", "feedback", "source_with_tests",
          "solution", "export", "downloaded")  # fmt: skip  # grading/ entries root's run reaches in the course
COPIED = ("generated.json",)  # written by replace: copied in before the run and back after it
MADE_DIRS = ("release", "submitted", "autograded", "feedback", "source_with_tests", "solution", "export", "downloaded")
MOUNT = ".course-grading"  # in grading-root/: where the helper mounts the course's grading/ (nosymfollow)
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_NOSYMFOLLOW, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    0x20000, 2, 4, 256, 32, 4096, 16384, 1 << 18)  # fmt: skip
MODULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
STUDENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
MAX_WORKERS = 64
ENV_COHORT, ENV_HUB = "CITYKIT_HUB_COHORT", "CITYKIT_HUB_DIR"


def helper_path(cohort: str) -> Path:
    return LIBEXEC / f"citykit-grade-{cohort}"


def sudoers_path(cohort: str) -> Path:
    return SUDOERS_D / f"citykit-{cohort}"


def shadow_dir(state: HubState) -> Path:
    return state.path / SHADOW


# ---------------------------------------------------------------------------------- root may trust it


def _unsafe(path: Path) -> str:
    """Why `path` and the folders above it are not root's alone ("" when they are): every one owned by
    root and writable by root and root's group only (a sticky folder such as /tmp may be writable by
    all, its entries being root's)."""
    path = Path(os.path.abspath(path))
    for item in [path, *path.parents]:
        try:
            info = os.lstat(item)
        except OSError as error:
            return f"{item}: {error.strerror}"
        if info.st_uid != 0:
            return f"{item} belongs to {_user(info.st_uid)}, not root"
        sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if _writable(info) and not stat.S_ISLNK(info.st_mode) and not (sticky and item != path):
            return f"{item} is writable by others than root (mode {stat.S_IMODE(info.st_mode):04o})"
    if path.is_symlink():
        return _unsafe(path.resolve())
    return ""


def _unsafe_tree(folder: Path) -> str:
    """`_unsafe` for a folder and everything in it."""
    problem = _unsafe(folder)
    if problem or not folder.is_dir():
        return problem
    for top, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(top, name))
            if info.st_uid != 0 or (_writable(info) and not stat.S_ISLNK(info.st_mode)):
                return f"{os.path.join(top, name)} is not root's alone"
    return ""


def _writable(info: os.stat_result) -> bool:
    """Writable by others than root: by everyone, or by a group other than root's."""
    return bool(info.st_mode & 0o002 or (info.st_mode & 0o020 and info.st_gid != 0))


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def python_problem(python: str) -> str:
    """Why the hub's Python cannot run as root for instructors ("" when it can): it, its standard
    library, its packages and citykit's code must be root's and writable by root alone."""
    if re.search(r"\s", python) or not Path(python).is_file():
        return f"the hub's Python {python} is not a file path without spaces"
    try:
        done = subprocess.run([python, "-I", "-c", "import json, sys, citykit; print(json.dumps([sys.executable, "
                               "[p for p in sys.path if p.startswith('/')], citykit.__path__[0]]))"],
                              capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
        executable, folders, package = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        return f"the hub's Python {python} did not say where it loads from ({error})"
    for item in [python, executable, package, *folders]:
        path = Path(item)
        while not path.exists() and not path.is_symlink() and path != path.parent:
            path = path.parent  # a missing entry (python311.zip): whoever may make it, may make it here
        problem = _unsafe_tree(path) if path.is_dir() else _unsafe(path)
        if problem:
            return problem
    return ""


# ---------------------------------------------------------------------------------- install and remove


def _write_root_file(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chown(tmp, 0, 0)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def helper_script(state: HubState) -> str:
    return "\n".join([
        f"#!{state.python} -I",
        f"# citykit's grading helper for the hub cohort {state.cohort} (written by `citykit hub setup`, removed by",
        "# teardown). Instructors run it through sudo; it runs only `citykit grade autograde` on this cohort's course.",
        "import sys",
        "",
        "from citykit.hub.helper import main",
        "",
        f"sys.exit(main({state.cohort!r}, {str(state.path)!r}, sys.argv[1:]))",
        "",
    ])  # fmt: skip


def sudoers_text(state: HubState) -> str:
    helper = helper_path(state.cohort)
    return "\n".join([
        f"# citykit hub {state.cohort}: its instructors run the cohort's grading helper as root (written by",
        "# `citykit hub setup`, removed by `citykit hub teardown`). The helper checks its arguments itself.",
        f"Defaults!{helper} env_reset, !setenv",
        f"%{state.grader_group} ALL=(root) NOPASSWD: {helper}",
        "",
    ])  # fmt: skip


def _source_parts(state: HubState) -> list[Path]:
    """What root's copy is made from: the source course's code (the folder `hub setup` is run in)."""
    source = Path(state.source_course)
    return [source / part for part in SHADOW_PARTS] + [source / "grading" / CONFIG]


def refresh_shadow(state: HubState) -> Path:
    """Root's copy of the course's code, from the source course `hub setup` was run in (never from the
    hub's course, which instructors can change): `notebooks/`, `curriculum/` and `grading/nbgrader_config.py`
    with the hub's block; links to the rest of the course's `grading/`. Root's and the instructors'
    group's (0750): instructors read it, learners do not (it holds solutions)."""
    shadow = shadow_dir(state)
    staging = state.path / f".{SHADOW}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    *folders, settings = _source_parts(state)
    for folder in folders:
        shutil.copytree(folder, staging / folder.name, symlinks=False,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))  # fmt: skip
    (staging / "grading").mkdir()
    text = without_block(settings.read_text(encoding="utf-8"))
    (staging / "grading" / CONFIG).write_text(f"{text}\n\n{course_block(state)}", encoding="utf-8")
    for top, dirs, files in os.walk(staging):
        for name in [top, *(os.path.join(top, d) for d in dirs), *(os.path.join(top, f) for f in files)]:
            os.chown(name, 0, 0)
            os.chmod(name, 0o755 if os.path.isdir(name) else 0o644)
    _make_dirs(state, state.course / "grading")
    _links(state, staging)
    os.chown(staging, 0, grp.getgrnam(state.grader_group).gr_gid)
    staging.chmod(0o750)
    shutil.rmtree(shadow, ignore_errors=True)
    staging.rename(shadow)
    return shadow


def _links(state: HubState, shadow: Path) -> None:
    """shadow/grading/<entry> -> shadow/.course-grading/<entry>: where the helper mounts the course's
    grading/ for its run (outside that run the links lead nowhere)."""
    (shadow / MOUNT).mkdir(exist_ok=True)
    for name in LINKED:
        link, target = shadow / "grading" / name, shadow / MOUNT / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def _make_dirs(state: HubState, grading: Path) -> None:
    """The course's grading/ folders root's run writes in, made when missing (the grader's, group-shared)."""
    uid, gid = pwd.getpwnam(state.grader).pw_uid, grp.getgrnam(state.grader_group).gr_gid
    for name in MADE_DIRS:
        folder = grading / name
        if not os.path.lexists(folder):
            folder.mkdir()
            os.lchown(folder, uid, gid)
            folder.chmod(0o2770)


def _libc_call(name: str, *args) -> None:
    import ctypes  # lazy: the mount calls, only in the helper's own run

    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        error = ctypes.get_errno()
        shown = " ".join(a.decode() if isinstance(a, bytes) else str(a) for a in args if a is not None)
        raise CitykitError(f"the grading helper could not {name} {shown} ({os.strerror(error)})")


def _mount_course_grading(state: HubState, shadow: Path) -> Path:
    """In a mount namespace of the helper's own, the course's grading/ at shadow/.course-grading with
    nosymfollow: no link an instructor plants in it is followed by root's run (the folder itself is
    opened without following a link, so a `grading` link in the course is refused)."""
    target = shadow / MOUNT
    _libc_call("unshare", CLONE_NEWNS)
    _libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
    try:  # opened in the new namespace (a folder of the old one cannot be bound here)
        fd = os.open(state.course / "grading", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise CitykitError(f"{state.course / 'grading'} is not a folder ({error.strerror})") from None
    try:
        _libc_call("mount", f"/proc/self/fd/{fd}".encode(), str(target).encode(), None, MS_BIND, None)
        _libc_call("mount", None, str(target).encode(), None,
                   MS_BIND | MS_REMOUNT | MS_NOSYMFOLLOW | MS_NOSUID | MS_NODEV, None)  # fmt: skip
    finally:
        os.close(fd)
    return target


def install(state: HubState) -> str:
    """Install (or refresh) the cohort's grading helper and its sudo rule; what was done, in a sentence."""
    helper, rule = helper_path(state.cohort), sudoers_path(state.cohort)
    sudo, visudo = shutil.which("sudo"), shutil.which("visudo") or "/usr/sbin/visudo"
    if not sudo or not Path(visudo).exists():
        remove(state)
        return ("sudo is not installed, so no grading helper: instructors' autograde runs learners' code as "
                "themselves, NOT sandboxed (install sudo, Debian/Ubuntu package `sudo`, and run `citykit hub setup` "
                "again; or grade as root)")  # fmt: skip
    problem = python_problem(state.python) or _unsafe(state.path)
    for part in _source_parts(state) if not problem else []:
        problem = problem or (_unsafe_tree(part) if part.exists() else f"no {part} in the source course")
    if problem:
        remove(state)
        return (f"no grading helper: root would run code others can change ({problem}); install citykit in a "
                "root-owned environment (e.g. /opt/citykit) and pass its python with --python, then run setup again")  # fmt: skip
    refresh_shadow(state)
    _write_root_file(helper, helper_script(state), 0o755)
    LIBEXEC.chmod(LIBEXEC.stat().st_mode | 0o755)
    draft = Path(tempfile.mkdtemp(prefix="citykit-sudoers-")) / "rule"
    try:
        draft.write_text(sudoers_text(state), encoding="utf-8")
        draft.chmod(0o440)
        checked = subprocess.run([visudo, "-cf", str(draft)], capture_output=True, text=True, timeout=60)
        if checked.returncode != 0:
            raise CitykitError(f"the sudo rule for the grading helper does not check: "
                               f"{(checked.stderr or checked.stdout).strip()}")  # fmt: skip
        _write_root_file(rule, draft.read_text(encoding="utf-8"), 0o440)
    finally:
        shutil.rmtree(draft.parent, ignore_errors=True)
    return (f"grading helper {helper} (sudo rule {rule}): instructors' `citykit grade autograde` runs learners' "
            "code in the root sandbox")  # fmt: skip


def remove(state: HubState) -> list[str]:
    """Remove the helper, its sudo rule and root's copy of the course's code; what was removed."""
    removed = []
    for path in (sudoers_path(state.cohort), helper_path(state.cohort)):
        if path.exists() or path.is_symlink():
            path.unlink()
            removed.append(str(path))
    if shadow_dir(state).is_dir():
        shutil.rmtree(shadow_dir(state))
        removed.append(str(shadow_dir(state)))
    return removed


# ---------------------------------------------------------------------------------- the helper (root)


def parse(argv: list[str], modules: set[str], learners: set[str]) -> list[str]:
    """The helper's words checked one by one; the `citykit grade autograde` arguments they make."""
    if not argv or argv[0] != "autograde":
        raise CitykitError("the grading helper does only: autograde MODULE [--student ID]... [--force] [--workers N]")
    words, out, module = list(argv[1:]), [], None
    while words:
        word = words.pop(0)
        if word == "--force":
            out.append("--force")
        elif word in ("--student", "--workers"):
            if not words:
                raise CitykitError(f"{word} needs a value")
            value = words.pop(0)
            if word == "--student" and not (STUDENT.match(value) and value in learners):
                raise CitykitError(f"--student {quote(value)} is not a learner of this cohort")
            if word == "--workers" and not (value.isdigit() and 1 <= int(value) <= MAX_WORKERS):
                raise CitykitError(f"--workers must be a number from 1 to {MAX_WORKERS}")
            out += [word, value]
        elif module is None and MODULE.match(word) and word in modules:
            module = word
        else:
            raise CitykitError(f"the grading helper does not take {quote(word[:80])}: autograde MODULE "
                               "[--student ID]... [--force] [--workers N], MODULE one of the course's modules")  # fmt: skip
    if module is None:
        raise CitykitError("which module? autograde MODULE (e.g. time-to-close)")
    return [module, *out]


def _modules(shadow: Path) -> set[str]:
    names = set()
    for folder in (shadow / "notebooks").iterdir():
        found = re.match(r"^(\d\d)-([a-z0-9_-]+)$", folder.name)
        if folder.is_dir() and found:
            names |= {folder.name, found.group(2)}
    return names


def _caller_may(state: HubState) -> None:
    """Root itself, or a member of the cohort's instructors' group who came through sudo."""
    if os.geteuid() != 0:
        raise CitykitError(f"the grading helper runs through sudo: `sudo {helper_path(state.cohort)} autograde ...`")
    uid = os.environ.get("SUDO_UID", "0")
    if not uid.isdigit() or int(uid) == 0:
        return
    name = _user(int(uid))
    group = grp.getgrnam(state.grader_group)
    primary = pwd.getpwnam(name).pw_gid if name != f"uid {uid}" else -1
    if name not in group.gr_mem and primary != group.gr_gid:
        raise CitykitError(f"{name} is not one of the cohort's instructors ({state.grader_group})")


def _copy_file(source: Path, target: Path) -> None:
    """Copy a small data file between the course and root's copy without following a link at either end."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # missing, or a link: nothing to copy
        return
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(16 * 2**20)
    tmp = target.parent / f".{target.name}.{os.getpid()}"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(out, "wb") as handle:
        handle.write(data)
        os.fchmod(handle.fileno(), 0o664)
    os.replace(tmp, target)


def main(cohort: str, hub: str, argv: list[str]) -> int:
    """The helper, as root: check the caller and the words, then autograde on root's copy of the course."""
    try:
        state = load_state(cohort, Path(hub).parent)
        if state.path != Path(hub):
            raise CitykitError(f"the hub folder {hub} does not hold cohort {cohort}")
        _caller_may(state)
        shadow = shadow_dir(state)
        if not (shadow / "grading" / CONFIG).is_file():
            raise CitykitError(f"no {shadow}: run `citykit hub setup --cohort {cohort}` again (as root)")
        words = parse(argv, _modules(shadow), {m.student_id for m in state.learners})
        _links(state, shadow)
        grading = _mount_course_grading(state, shadow)
        _make_dirs(state, grading)
        for name in COPIED:
            _copy_file(grading / name, shadow / "grading" / name)
    except (CitykitError, OSError) as error:
        print(f"citykit grading helper: {error}", file=sys.stderr)
        return 2
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "CITYKIT_COURSE": str(shadow), "CITYKIT_HOME": str(state.data), "USER": "root", "LOGNAME": "root"}  # fmt: skip
    done = subprocess.run([sys.executable, "-I", "-B", "-m", "citykit", "grade", "autograde", *words],
                          cwd=shadow / "grading", env=env, umask=0o002, check=False)  # fmt: skip
    for name in COPIED:
        if (shadow / "grading" / name).is_file():
            _copy_file(shadow / "grading" / name, grading / name)
    return done.returncode


# ---------------------------------------------------------------------------------- instructors' citykit


def _hub_course(state: HubState) -> bool:
    found = paths.find_course()
    return found is not None and found.resolve() == state.course.resolve()


def _release_feedback(state: HubState, argv: list[str]) -> int:
    """nbgrader's release_feedback for what `citykit grade feedback` just wrote (same module and learners)."""
    from citykit.grading.config import assignment_id  # lazy: only after feedback

    module, students = None, []
    words = list(argv)
    while words:
        word = words.pop(0)
        if word == "--student" and words:
            students.append(words.pop(0))
        elif word.startswith("--student="):
            students.append(word.split("=", 1)[1])
        elif not word.startswith("-") and module is None:
            module = word
    if module is None:
        return 0
    assignment = assignment_id(module, state.course)
    command = [sys.executable, "-m", "nbgrader", "release_feedback", assignment]
    for student in students:
        command += ["--student", student]
    done = subprocess.run(command, cwd=state.course / "grading", capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        print(f"citykit: releasing the feedback to the exchange failed: {lines[-1] if lines else done.returncode}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"feedback released to {state.exchange / state.cohort / 'feedback'} (learners: Fetch Feedback in the "
          "Assignments tab)")  # fmt: skip
    return 0


def route(argv: list[str]) -> int:
    """The hub's `citykit` for instructors' terminals (see the module's doc)."""
    cohort, hub = os.environ.get(ENV_COHORT, ""), os.environ.get(ENV_HUB, "")
    state = None
    asks_help = "-h" in argv or "--help" in argv  # the command's own help, as anywhere
    if cohort and hub and argv[:1] == ["grade"] and argv[1:2] in (["autograde"], ["feedback"]) and not asks_help:
        try:
            state = load_state(cohort, Path(hub).parent)
        except CitykitError:
            state = None
    if state is not None and not _hub_course(state):
        state = None
    citykit = [sys.executable, "-m", "citykit", *argv]
    if state is not None and argv[1] == "autograde" and os.geteuid() != 0:
        helper = helper_path(state.cohort)
        sudo = shutil.which("sudo") or "/usr/bin/sudo"
        if helper.is_file() and Path(sudo).exists():
            return subprocess.run([sudo, "-n", str(helper), "autograde", *argv[2:]], check=False).returncode
        print(f"citykit: no grading helper for {state.cohort} on this server (`citykit hub setup` says why): "
              "learners' code runs as you", file=sys.stderr)  # fmt: skip
    if state is not None and argv[1] == "feedback":
        code = subprocess.run(citykit, check=False).returncode
        return _release_feedback(state, argv[2:]) if code == 0 else code
    os.execv(sys.executable, citykit)
    return 1  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(route(sys.argv[1:]))
