"""The sandbox a learner's notebook runs in while it is graded (phase 1 of `citykit.grading.scoring`).

What it enforces depends on the system; `Policy.detect()` finds out and `Policy.notes()` says it, in
`citykit grade autograde`'s output on every run:

- **As root on Linux with `unshare`** (util-linux): the kernel runs as the unprivileged user
  `citykit-grader` (made by `citykit grade setup`, or by autograde when it is missing) with no
  capabilities and no way to gain any (no_new_privs), in its own PID, mount, network, IPC and UTS
  namespaces: no network at all, and every process of the run dies with it. Its file system is
  built from nothing: the system's programs and libraries, Python and the installed packages, the
  course's `curriculum/` and the datasets' published tables, all read-only; a private working folder
  with that module's data files, `/tmp` and `/dev/shm` (small, in memory); the answers folder. The
  course's notebooks (solutions and hidden tests), `grading/` (gradebook, cohort files, other
  submissions), the raw exports and every home folder are not there.
- **cgroups** (v1 memory and pids controllers, or v2): memory and process count bound the whole
  process tree of the run; without them (and always, per process) resource limits apply: address
  space (RLIMIT_AS), processes of the sandbox user (RLIMIT_NPROC), file size (RLIMIT_FSIZE) and CPU
  time (RLIMIT_CPU); a wall-time limit stops the whole notebook.
- **Otherwise** (not root, macOS, no `unshare`): the kernel runs as you, in a scratch folder, with
  an environment stripped to what it needs, the resource limits where the OS has them, and the
  wall-time limit; left-over processes are found (Linux) and ended. It can read your files and use
  the network: `autograde` says so on every run, and grading/README.md describes a container route.

Nothing from the grader's environment reaches the kernel: it gets a fixed, short environment.
The kernelspec (`citykit.grading.limits.kernel_dir`) starts `python -m citykit.grading.sandbox`,
which reads the run's spec (`CITYKIT_SANDBOX_SPEC`, written by `Run`) and starts the kernel inside.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SPEC_ENV = "CITYKIT_SANDBOX_SPEC"
MAX_MESSAGE = 64 * 2**20  # the largest message a learner's kernel may send the grader
CONTAINER_ENV = "CITYKIT_GRADING_CONTAINER"  # an image: grade in containers of it (or the cohort's `container`)
ENGINE_ENV = "CITYKIT_CONTAINER_ENGINE"  # docker (default) or podman
USER = "citykit-grader"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("passwd", "group", "nsswitch.conf", "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
             "timezone", "fonts", "mime.types", "matplotlibrc")  # fmt: skip
DEVICES = ("null", "zero", "full", "random", "urandom")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)  # fmt: skip
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG = 38, 36, 1


# ---------------------------------------------------------------------------------- the policy


def _cgroup_dirs() -> dict[str, Path]:
    """controller -> the folder where this process may make a child cgroup ("v2" for the unified
    hierarchy); only controllers that are mounted and writable."""
    from citykit.grading.limits import cgroup_parents  # lazy: not in the kernel launcher's start-up

    return cgroup_parents(("memory", "pids"))


def _user_ids(name: str) -> tuple[int, int] | None:
    try:
        import pwd
    except ImportError:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def ensure_user() -> str:
    """Make the sandbox user when running as root and it is missing; what was done, in a sentence
    ("" when nothing was needed or possible)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or _user_ids(USER) is not None:
        return ""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    if not Path(useradd).exists():
        return f"could not make the sandbox user {USER} (no useradd); learner code would run as nobody"
    done = subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                           "/usr/sbin/nologin", "--user-group", USER], capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0 and _user_ids(USER) is None:
        return f"could not make the sandbox user {USER}: {done.stderr.strip()}"
    return f"made the system user {USER}, who runs learners' notebooks while they are graded"


@dataclass(frozen=True)
class Policy:
    """What the sandbox of this run enforces (`detect`), with the cohort's limits."""

    isolate: bool = False  # namespaces, a built root, the sandbox user (root + unshare on Linux)
    uid: int = -1
    gid: int = -1
    user: str = ""
    cgroups: dict[str, str] = field(default_factory=dict)  # controller -> parent folder
    rlimits: bool = False
    reaper: bool = False  # left-over processes found and ended (Linux /proc)
    memory_mb: int = 4096
    processes: int = 256
    file_size_mb: int = 200
    cpu_seconds: int = 600
    wall_seconds: int = 1800
    missing: tuple[str, ...] = ()  # why each missing protection is missing
    container: str = ""  # an image: the notebook runs in a container of it instead (`container_command`)
    engine: str = "docker"

    @classmethod
    def detect(cls, limits=None, container: str = "") -> Policy:
        from citykit.grading.cohort import Limits  # lazy: loaded only when used

        limits = limits or Limits()
        if container:
            return cls(rlimits=True, memory_mb=limits.memory_mb, processes=limits.processes,
                       file_size_mb=limits.file_size_mb, cpu_seconds=limits.notebook_cpu_seconds,
                       wall_seconds=limits.wall_seconds, container=container,
                       engine=os.environ.get(ENGINE_ENV, "docker"))  # fmt: skip
        missing = []
        try:
            import resource  # noqa: F401

            rlimits = True
        except ImportError:
            rlimits = False
        linux = sys.platform.startswith("linux")
        root = hasattr(os, "geteuid") and os.geteuid() == 0
        unshare = shutil.which("unshare") if linux else None
        ids = _user_ids(USER) if root else None
        if root and ids is None:
            nobody = _user_ids("nobody")
            ids, user = (nobody, "nobody") if nobody else (None, "")
        else:
            user = USER
        isolate = bool(linux and root and unshare and ids)
        if not linux:
            missing.append("not Linux: no namespaces")
        elif not root:
            missing.append("not run as root: no separate user, namespaces or cgroups")
        elif not unshare:
            missing.append("no `unshare` (util-linux)")
        groups = {k: str(v) for k, v in _cgroup_dirs().items()} if isolate else {}
        if isolate and not groups:
            missing.append("no writable cgroup memory/pids controllers")
        return cls(isolate=isolate, uid=ids[0] if isolate else -1, gid=ids[1] if isolate else -1,
                   user=user if isolate else "", cgroups=groups, rlimits=rlimits, reaper=linux,
                   memory_mb=limits.memory_mb, processes=limits.processes, file_size_mb=limits.file_size_mb,
                   cpu_seconds=limits.notebook_cpu_seconds, wall_seconds=limits.wall_seconds,
                   missing=tuple(missing))  # fmt: skip

    @classmethod
    def from_dict(cls, raw: dict) -> Policy:
        return cls(**{**raw, "missing": tuple(raw.get("missing", ())), "cgroups": dict(raw.get("cgroups", {}))})

    def to_dict(self) -> dict:
        return asdict(self)

    def tree(self) -> tuple[str, ...]:
        """What the cgroups bound for a run's whole process tree ("memory", "pids")."""
        return ("memory", "pids") if "v2" in self.cgroups else tuple(c for c in ("memory", "pids") if c in self.cgroups)

    def user_processes(self, tree: tuple[str, ...]) -> int:
        """The sandbox user's RLIMIT_NPROC: the process limit, or where a pids cgroup bounds each
        notebook, a backstop for all of that user's concurrent notebooks (8 times it)."""
        return self.processes * (8 if "pids" in tree else 1)

    def enforced(self) -> list[str]:
        if self.container:
            return [f"runs in a {self.engine} container of {self.container} as nobody, with no network, no "
                    "capabilities (no-new-privileges), a read-only root, only the notebook, its working folder and "
                    f"the published data mounted, {self.memory_mb} MB of memory and {self.processes} processes for "
                    f"the container, {self.file_size_mb} MB per file, a wall-time limit of {self.wall_seconds} s",
                    "an environment without the grader's variables (no database URLs, no tokens)"]  # fmt: skip
        done = ["an environment without the grader's variables (no database URLs, no tokens)",
                f"a wall-time limit of {self.wall_seconds} s per notebook"]  # fmt: skip
        if self.isolate:
            done = [f"runs as the unprivileged user {self.user}, without capabilities (no_new_privs)",
                    "no network (its own network namespace)",
                    "own PID, mount, IPC and UTS namespaces: every process of the run ends with it",
                    "sees only the system, Python, the course's curriculum, the published data (read-only) "
                    "and its own working folder: not notebooks/, grading/, raw exports or home folders", *done]  # fmt: skip
        if "memory" in self.cgroups or "v2" in self.cgroups:
            done.append(f"memory of the whole process tree: {self.memory_mb} MB (cgroup)")
        if "pids" in self.cgroups or "v2" in self.cgroups:
            done.append(f"processes and threads of the whole tree: {self.processes} (cgroup)")
        if self.rlimits:
            space = (
                max(self.memory_mb, MIN_ADDRESS_SPACE_MB) if {"memory", "v2"} & set(self.cgroups) else self.memory_mb
            )
            user = f", {self.user_processes(self.tree())} processes of {self.user} in all" if self.isolate else ""
            done.append(f"per process: {space} MB address space, {self.file_size_mb} MB per file, "
                        f"{self.cpu_seconds} CPU seconds" + user)  # fmt: skip
        if self.reaper and not self.isolate:
            done.append("processes left behind by a notebook are ended after it")
        return done

    def not_enforced(self) -> list[str]:
        gaps = []
        if self.container:
            return gaps if shutil.which(self.engine) else [f"no `{self.engine}` on this machine: nothing can be graded"]
        if not self.isolate:
            gaps += ["learner code runs as you: it can read and write your files (the course, the gradebook, "
                     "other submissions) and use the network",
                     "no separate PID namespace" + ("" if self.reaper else ": processes a notebook leaves behind "
                                                                               "may outlive grading")]  # fmt: skip
        elif not ({"memory", "v2"} & set(self.cgroups)):
            gaps.append(f"memory is limited per process only ({self.memory_mb} MB each), not for the whole tree")
        if self.isolate and not ({"pids", "v2"} & set(self.cgroups)):
            gaps.append(f"processes are limited per user ({self.processes} of {self.user}, shared by concurrent "
                        "notebooks), not per notebook")  # fmt: skip
        if not self.rlimits:
            gaps.append("no per-process memory, file-size or CPU-time limits (no `resource` module)")
        return gaps

    def notes(self) -> list[str]:
        """What grading prints on every run: what is not enforced here, and why."""
        gaps = self.not_enforced()
        if not gaps:
            return []
        why = f" ({'; '.join(self.missing)})" if self.missing else ""
        return [f"sandbox{why}: NOT ENFORCED: " + "; ".join(gaps) + ". For a cohort you do not trust, grade as "
                "root on Linux or in a container (grading/README.md)"]  # fmt: skip


def describe_for_help() -> str:
    """The sandbox in a paragraph, for `citykit grade autograde --help`, with what this machine lacks."""
    general = (
        "Learner code runs in a sandbox; its answers are exported as data and every test, hidden ones "
        "included, runs apart from it. As root on Linux: user citykit-grader, no network, own PID/mount "
        "namespaces, only the published data and curriculum visible (read-only), memory and process "
        "limits on the whole process tree (cgroups), file size, CPU and wall-time limits."
    )
    try:
        gaps = Policy.detect().not_enforced()
    except Exception:
        gaps = ["(could not tell what this system enforces)"]
    here = ("On this machine all of it is enforced." if not gaps
            else "On this machine NOT enforced: " + "; ".join(gaps) + ". Every run says so.")  # fmt: skip
    return f"{general} {here}"


def course_policy(course_root: Path) -> Policy:
    """The policy grading a course uses: the active cohort's limits, and the container
    CITYKIT_GRADING_CONTAINER or the cohort names ("" for none: citykit's own sandbox)."""
    from citykit.errors import CitykitError  # lazy: not in the kernel launcher's start-up
    from citykit.grading.cohort import Limits, load_cohort  # lazy: not in the kernel launcher's start-up

    try:
        cohort = load_cohort(course_root=Path(course_root))
        limits, container = cohort.limits, cohort.container
    except CitykitError:
        limits, container = Limits(), ""
    return Policy.detect(limits, container=os.environ.get(CONTAINER_ENV) or container)


def launcher_spec():
    """The kernelspec of a graded notebook's kernel: the sandbox launcher (`launch`), which starts
    the kernel inside the run named by CITYKIT_SANDBOX_SPEC."""
    from jupyter_client.kernelspec import KernelSpec

    threads = {name: "1" for name in ("CITYKIT_DUCKDB_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS")}  # fmt: skip
    return KernelSpec(argv=[sys.executable, "-m", "citykit.grading.sandbox", "-f", "{connection_file}"],
                      display_name="Python 3 (citykit grading sandbox)", language="python",
                      interrupt_mode="message", env=threads, metadata={"debugger": False})  # fmt: skip


# ---------------------------------------------------------------------------------- a run


_RUNS = itertools.count()


def _course_for_kernel(course_root: Path, workdir_hint: Path | None = None) -> Path | None:
    from citykit import paths  # lazy: loaded only when used

    return paths.find_course(workdir_hint) if workdir_hint else paths.find_course(course_root)


def _read_only_paths(kernel_course: Path | None) -> list[str]:
    """Host paths the sandbox sees read-only (directories or files), besides the system ones."""
    import citykit  # lazy: loaded only when used
    from citykit import paths  # lazy: loaded only when used
    from citykit.data import registry  # lazy: loaded only when used

    found: list[Path] = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
                         Path(sys.executable).resolve().parent]  # fmt: skip
    found.append(Path(citykit.__file__).resolve().parent)
    for entry in sys.path:  # site-packages and their .pth folders; never a course folder itself
        folder = Path(entry).resolve() if entry else None
        if folder and folder.is_dir() and "site-packages" in folder.parts:
            found.append(folder)
    courses = {c for c in (kernel_course, _kit_course()) if c is not None}
    for course in courses:
        found.append(course / "curriculum")
        for name in ("registry.yml", "calibration.yml", "datapackage.json"):
            found.append(course / "datasets" / name)
    try:
        home = paths.citykit_home() if kernel_course is not None else None
    except Exception:
        home = None
    if home is not None:
        found.append(home / registry.LOCAL_REGISTRY)
        try:
            datasets = registry.all_datasets().values()
        except Exception:
            datasets = []
        for dataset in datasets:
            if dataset.kind == "parquet":
                folder = (home / dataset.location).resolve()
                if folder.is_dir() and "raw" not in folder.relative_to(home.resolve()).parts[:1]:
                    found.append(folder)
    kept = []
    for path in sorted({p for p in found if p.exists()}, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept if k.is_dir()):
            kept.append(path)
    return [str(p) for p in kept]


def _masked_paths() -> list[str]:
    """Folders under the read-only ones the sandbox must not see: an installed wheel carries the
    course's source notebooks (solutions and hidden tests) in citykit/resources/course/notebooks."""
    import citykit  # lazy: loaded only when used

    inside = Path(citykit.__file__).resolve().parent / "resources" / "course" / "notebooks"
    return [str(inside)] if inside.is_dir() else []


def _kit_course() -> Path | None:
    from citykit import paths  # lazy: loaded only when used

    try:
        return paths.kit_course()
    except Exception:
        return None


def _kernel_env(policy: Policy, workdir: Path, kernel_course: Path | None) -> dict[str, str]:
    """The whole environment of the kernel: nothing else of the grader's reaches it."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(workdir), "USER": policy.user or "learner", "LOGNAME": policy.user or "learner",
        "LANG": "C.UTF-8", "TMPDIR": "/tmp" if policy.isolate else str(workdir / ".tmp"),
        "MPLCONFIGDIR": str(workdir / ".config" / "matplotlib"), "IPYTHONDIR": str(workdir / ".ipython"),
        "JUPYTER_RUNTIME_DIR": str(workdir / ".jupyter"), "PYTHONNOUSERSITE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "CITYKIT_DUCKDB_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "JPY_PARENT_PID": "1",  # ipykernel: started by a manager (no banner), and no parent poller (its parent is PID 1)
    }  # fmt: skip
    if kernel_course is not None:
        env["CITYKIT_COURSE"] = str(kernel_course)
    for name in ("CITYKIT_HOME", "TZ"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if sys.platform == "win32":
        env["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", "")
    return env


class Run:
    """One learner's sandboxed run: its folders, cgroups and spec; ends every process it started."""

    def __init__(self, policy: Policy, scratch: Path | None, course_root: Path, assignment: str):
        self.policy, self.course_root, self.assignment = policy, Path(course_root), assignment
        self.scratch = scratch
        self.notes: list[str] = []
        self.groups: list[Path] = []
        self.km = None
        self._own_scratch = None
        self._mounted = False
        self._old_env = None
        self._children_before: set[int] = set()
        self._events_noted = False

    # folders -------------------------------------------------------------------------
    def __enter__(self) -> Run:
        if self.scratch is None:
            self._own_scratch = Path(tempfile.mkdtemp(prefix="citykit-sandbox-"))
            self.scratch = self._own_scratch
        self.dir = Path(self.scratch) / f"run-{os.getpid()}-{next(_RUNS)}"
        self.dir.mkdir(mode=0o711, parents=True)
        self.workdir, self.answers, self.kernel_dir = self.dir / "work", self.dir / "answers", self.dir / "kernel"
        self.root = self.dir / "root"
        source = self.course_root / "notebooks" / self.assignment
        data = [p for p in source.rglob("*") if p.is_file() and not p.is_symlink() and p.suffix != ".ipynb"
                and ".ipynb_checkpoints" not in p.parts]  # fmt: skip
        if self.policy.isolate:
            size = sum(p.stat().st_size for p in data) + (self.policy.file_size_mb + 96) * 2**20
            self._mounted = _mount_tmpfs(self.dir, size)
            if not self._mounted:
                self.notes.append("the run's folder is not size-limited (tmpfs mount failed)")
        for folder in (self.workdir, self.answers, self.kernel_dir, self.root, self.workdir / ".config" / "matplotlib",
                       self.workdir / ".ipython", self.workdir / ".tmp", self.workdir / ".jupyter"):  # fmt: skip
            folder.mkdir(parents=True, exist_ok=True)
        for file in data:  # the module's data files, never the notebooks (the graded copy holds hidden tests)
            target = self.workdir / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
        _copy_font_cache(self.workdir / ".config" / "matplotlib")
        if self.policy.isolate:
            for path in [self.workdir, *self.workdir.rglob("*"), self.answers, self.kernel_dir]:
                os.lchown(path, self.policy.uid, self.policy.gid)
        elif self.policy.container:  # the container runs as nobody
            for path in [self.workdir, *self.workdir.rglob("*"), self.answers]:
                if hasattr(os, "geteuid") and os.geteuid() == 0:
                    os.lchown(path, 65534, 65534)
                else:
                    path.chmod(0o777 if path.is_dir() else 0o666)
        kernel_course = _course_for_kernel(self.course_root)
        spec = {
            "policy": self.policy.to_dict(),
            "workdir": str(self.workdir), "answers": str(self.answers), "kernel": str(self.kernel_dir),
            "root": str(self.root), "python": sys.executable,
            "read_only": _read_only_paths(kernel_course) if self.policy.isolate else [],
            "masked": _masked_paths() if self.policy.isolate else [],
            "env": _kernel_env(self.policy, self.workdir, kernel_course),
            "cgroups": [],
            "tree": [],  # what the cgroups bound for the whole process tree: "memory", "pids"
        }  # fmt: skip
        for controller, parent in self.policy.cgroups.items():
            group = _make_cgroup(controller, Path(parent), self.policy)
            if group is not None:
                self.groups.append(group)
                spec["cgroups"].append(str(group))
                spec["tree"] += ["memory", "pids"] if controller == "v2" else [controller]
            else:
                self.notes.append(f"could not make a {controller} cgroup: that limit is per process only")
        self.spec = self.dir / "spec.json"
        self.spec.write_text(json.dumps(spec), encoding="utf-8")
        self.spec.chmod(0o600)
        self._old_env = os.environ.get(SPEC_ENV)
        os.environ[SPEC_ENV] = str(self.spec)
        if self.policy.reaper and not self.policy.isolate:
            _become_subreaper()
            self._children_before = set(_children(os.getpid()))
        return self

    def configure_kernel_manager(self, km) -> None:
        """The kernel started through the sandbox launcher (`launcher_spec`, never a kernelspec found on
        JUPYTER_PATH, which plain nbgrader would take), its connection file and sockets in the run's
        kernel folder (IPC, no TCP), and a client that drops the connection of a kernel sending a
        message over MAX_MESSAGE bytes (the grader's memory is outside the sandbox's limits)."""
        import zmq

        km._kernel_spec = launcher_spec()  # whatever kernelspec Jupyter would find for the notebook's kernel name
        km.transport = "ipc"
        km.ip = str(self.kernel_dir / "k")
        km.connection_file = str(self.kernel_dir / "kernel.json")
        self.km = km
        self.context = type(km.context)()  # asyncio or blocking, as the manager's clients expect
        self.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        make_client = km.client

        def client(**options):
            options.setdefault("context", self.context)
            return make_client(**options)

        km.client = client

    def watchdog(self) -> threading.Timer:
        timer = threading.Timer(self.policy.wall_seconds, self._wall_time)
        timer.daemon = True
        timer.start()
        return timer

    def _wall_time(self) -> None:
        self.notes.append(f"stopped at the wall-time limit ({self.policy.wall_seconds} s)")
        self.kill()

    # ending ---------------------------------------------------------------------------
    def kill(self) -> None:
        """End every process of the run now (any thread)."""
        for group in self.groups:
            _kill_cgroup(group)
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        if pid:
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                with contextlib.suppress(OSError, AttributeError):
                    target()
        if self.policy.reaper and not self.policy.isolate:
            for child in set(_children(os.getpid())) - self._children_before:
                _kill_tree(child)

    def stop(self) -> None:
        """End every process of the run and wait until none is left; note the limits it reached."""
        deadline = time.monotonic() + 10
        while True:
            self.kill()
            left = [g for g in self.groups if _cgroup_pids(g)]
            if self.policy.reaper and not self.policy.isolate:
                left += list(set(_children(os.getpid())) - self._children_before)
                _reap()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if left:
            self.notes.append("some processes of the run could not be ended")
        if not self._events_noted:
            self._events_noted = True
            self.notes += self.events()

    def events(self) -> list[str]:
        """The limits the run has reached so far (from its cgroups' counters)."""
        return [note for group in self.groups for note in _cgroup_events(group, self.policy)]

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            for group in self.groups:
                _remove_cgroup(group)
            if self._old_env is None:
                os.environ.pop(SPEC_ENV, None)
            else:
                os.environ[SPEC_ENV] = self._old_env
            if getattr(self, "context", None) is not None:
                self.context.destroy(linger=0)
            if self._mounted:
                _umount(self.dir)
            shutil.rmtree(self.dir, onerror=_force_remove)
            if self._own_scratch is not None:
                shutil.rmtree(self._own_scratch, ignore_errors=True)


def died_output(run: Run, why: str = ""):
    """The error output of the cell during which the kernel died."""
    from nbformat.v4 import new_output

    reached = "; ".join(n for n in [*run.notes, *run.events()] if "limit" in n)
    why = why or ("the notebook's kernel stopped" + (f" ({reached})" if reached else " (over a limit?)"))
    text = f"{why}; the cells after this one did not run. Answers from the cells before it are graded."
    return new_output("error", ename="DeadKernelError", evalue=text, traceback=[f"DeadKernelError: {text}"])


def _force_remove(function, path, _info) -> None:
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)
    except OSError:
        pass


def _copy_font_cache(target: Path) -> None:
    """matplotlib's font list from the grader's cache (else every kernel rebuilds it)."""
    try:
        import matplotlib

        cache = Path(matplotlib.get_cachedir())
    except Exception:
        return
    for file in cache.glob("fontlist-*.json"):
        shutil.copyfile(file, target / file.name)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc().mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                           ctypes.c_ulong(flags), data.encode() if data else None)  # fmt: skip
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def _mount_tmpfs(folder: Path, size: int) -> bool:
    try:
        _mount("tmpfs", str(folder), "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0711")
        return True
    except OSError:
        return False


def _umount(folder: Path) -> None:
    _libc().umount2(str(folder).encode(), 2)  # MNT_DETACH


# ---------------------------------------------------------------------------------- cgroups


def _make_cgroup(controller: str, parent: Path, policy: Policy) -> Path | None:
    group = parent / f"citykit-{os.getpid()}-{next(_RUNS)}"
    try:
        group.mkdir()
        memory = str(policy.memory_mb * 2**20)
        if controller == "memory":
            (group / "memory.limit_in_bytes").write_text(memory)
            if (group / "memory.memsw.limit_in_bytes").exists():
                with contextlib.suppress(OSError):  # no swapping past the limit
                    (group / "memory.memsw.limit_in_bytes").write_text(memory)
        elif controller == "pids":
            (group / "pids.max").write_text(str(policy.processes))
        elif controller == "v2":
            (group / "memory.max").write_text(memory)
            if (group / "memory.swap.max").exists():
                (group / "memory.swap.max").write_text("0")
            (group / "pids.max").write_text(str(policy.processes))
        return group
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        return None


def _remove_cgroup(group: Path, seconds: float = 30.0) -> None:
    """Remove a run's cgroup once empty. The kernel may refuse for a while after its last process
    left (EBUSY while that process finishes exiting, seen with v1's pids controller under load: 5 s
    was not always enough in CI); the wait ends as soon as the group goes."""
    import errno

    deadline = time.monotonic() + seconds
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                return
            time.sleep(0.05)


def join_cgroups(groups: list[str]) -> None:
    """Put this process in each group (v1 memory and pids, or one v2 group): it and everything it
    starts are counted there."""
    for group in groups:
        Path(group, "cgroup.procs").write_text(str(os.getpid()))


def _cgroup_pids(group: Path) -> list[int]:
    try:
        return [int(x) for x in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _kill_cgroup(group: Path) -> None:
    if (group / "cgroup.kill").exists():
        try:
            (group / "cgroup.kill").write_text("1")
            return
        except OSError:
            pass
    for pid in _cgroup_pids(group):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _cgroup_events(group: Path, policy: Policy) -> list[str]:
    """What limits the run reached, from the cgroup's counters."""
    notes = []

    def read(name: str) -> str:
        try:
            return (group / name).read_text()
        except OSError:
            return ""

    oom = read("memory.oom_control") + read("memory.events")
    kills = sum(
        int(line.split()[1]) for line in oom.splitlines() if line.startswith("oom_kill ") and len(line.split()) > 1
    )
    if kills or (read("memory.failcnt").strip() not in ("", "0")):
        notes.append(
            f"reached the memory limit ({policy.memory_mb} MB)" + (f"; {kills} process(es) killed" if kills else "")
        )
    events = read("pids.events")
    refused = sum(
        int(line.split()[1]) for line in events.splitlines() if line.startswith("max ") and len(line.split()) > 1
    )
    if refused:
        notes.append(f"reached the process limit ({policy.processes}): {refused} new process(es) refused")
    return notes


# ---------------------------------------------------------------------------------- processes (Linux)


def _become_subreaper() -> None:
    with contextlib.suppress(OSError, AttributeError):
        _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _parents() -> dict[int, int]:
    found = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else []:
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return found


def _children(pid: int) -> list[int]:
    return [child for child, parent in _parents().items() if parent == pid]


def _kill_tree(pid: int) -> None:
    parents = _parents()
    tree, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in tree:
                tree.add(child)
                frontier.append(child)
    for target in tree:
        with contextlib.suppress(OSError):
            os.kill(target, signal.SIGKILL)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---------------------------------------------------------------------------------- the container route

CONTAINER_NOTEBOOK, CONTAINER_WORK, CONTAINER_OUT, CONTAINER_DATA = "/run/notebook.ipynb", "/work", "/out", "/data"
NOBODY = "65534:65534"


def container_command(policy: Policy, notebook: Path, workdir: Path, answers: Path, datasets: list[Path],
                      cell_timeout: int, name: str = "") -> list[str]:  # fmt: skip
    """The command that runs one learner's notebook (prepared by the grader: the submission with the
    release's locked and visible test cells, no hidden tests) in a container of `policy.container`.
    Mounted: that notebook (read-only), its working folder, the answers folder, and each dataset's
    published tables (read-only) - never the course, the raw exports, the gradebook or another
    learner's work. It executes the notebook and writes it, with its outputs, to the answers folder."""
    memory = f"{policy.memory_mb}m"
    size = f"{policy.file_size_mb * 2**20}"
    command = [
        policy.engine, "run", "--rm", *(["--name", name] if name else []), "--network", "none", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--user", NOBODY, "--memory", memory, "--memory-swap", memory,
        "--pids-limit", str(policy.processes), "--cpus", "1", "--ulimit", f"fsize={size}:{size}", "--ulimit", "core=0",
        "--tmpfs", f"/tmp:rw,nosuid,nodev,size={policy.file_size_mb}m", "--workdir", CONTAINER_WORK,
        "--env", f"HOME={CONTAINER_WORK}", "--env", f"CITYKIT_HOME={CONTAINER_DATA}", "--env", "MPLCONFIGDIR=/tmp/mpl",
        "--env", "CITYKIT_DUCKDB_THREADS=1", "--env", "OMP_NUM_THREADS=1", "--env", "JPY_PARENT_PID=1",
        "--mount", f"type=bind,source={notebook},target={CONTAINER_NOTEBOOK},readonly",
        "--mount", f"type=bind,source={workdir},target={CONTAINER_WORK}",
        "--mount", f"type=bind,source={answers},target={CONTAINER_OUT}",
    ]  # fmt: skip
    for folder in datasets:
        command += ["--mount", f"type=bind,source={folder},target={CONTAINER_DATA}/published/{folder.name},readonly"]
    return [*command, policy.container, "python", "-m", "citykit.grading.sandbox", "--execute", CONTAINER_NOTEBOOK,
            f"{CONTAINER_OUT}/executed.ipynb", str(int(cell_timeout))]  # fmt: skip


def execute(notebook: str, out: str, cell_timeout: int) -> None:
    """Inside the container: run the prepared notebook cell by cell (a failing cell does not stop the
    rest) and write it with its outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout or None, allow_errors=True, interrupt_on_timeout=True,
                            kernel_name="python3", resources={"metadata": {"path": os.getcwd()}})  # fmt: skip
    try:
        client.execute()
    finally:
        nbformat.write(nb, out)


def published_folders() -> list[Path]:
    """Each parquet dataset's published folder (what a container mounts)."""
    from citykit import paths  # lazy: loaded only when used
    from citykit.data import registry  # lazy: loaded only when used

    home = paths.citykit_home().resolve()
    found = []
    for dataset in registry.all_datasets().values():
        if dataset.kind == "parquet":
            folder = (home / dataset.location).resolve()
            if folder.is_dir() and folder.parent.name == "published":
                found.append(folder)
    return found


# ---------------------------------------------------------------------------------- the launcher


MIN_ADDRESS_SPACE_MB = 3584  # a kernel reserves ~2.5 GB of address space to use ~400 MB (duckdb, arrow)


def _set_rlimits(policy: Policy, processes: bool, tree: tuple[str, ...] = ()) -> None:
    """Resource limits of this process (inherited by what it starts). Each process's address space is
    the memory limit; where a cgroup bounds the tree's memory, at least MIN_ADDRESS_SPACE_MB, as a
    kernel reserves far more address space than it uses. Where a
    cgroup bounds the tree's processes, the sandbox user's own limit only stops a runaway across
    concurrent notebooks."""
    try:
        import resource
    except ImportError:
        return
    limits = [(resource.RLIMIT_CORE, 0)]
    if policy.memory_mb:
        space = max(policy.memory_mb, MIN_ADDRESS_SPACE_MB) if "memory" in tree else policy.memory_mb
        limits.append((resource.RLIMIT_AS, space * 2**20))
    if policy.file_size_mb:
        limits.append((resource.RLIMIT_FSIZE, policy.file_size_mb * 2**20))
    if policy.cpu_seconds:
        limits.append((resource.RLIMIT_CPU, policy.cpu_seconds))
    if processes and policy.processes:
        limits.append((resource.RLIMIT_NPROC, policy.user_processes(tree)))
    for kind, value in limits:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (value, value if kind != resource.RLIMIT_CPU else value + 5))


def _kernel_argv(python: str, rest: list[str]) -> list[str]:
    return [python, "-m", "ipykernel_launcher", *rest]


def launch(argv: list[str]) -> None:
    """The kernelspec's command: start the kernel for the run named by CITYKIT_SANDBOX_SPEC (or, with
    none, a kernel under the cohort's resource limits only, as `limited_kernels` sets up)."""
    spec_path = os.environ.get(SPEC_ENV)
    if not spec_path:
        from citykit.grading.limits import run_limited_kernel  # lazy: loaded only when used

        sys.argv = [sys.argv[0], *argv]
        run_limited_kernel()
        return
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    policy = Policy.from_dict(spec["policy"])
    if not policy.isolate:
        _run_plain(spec, policy, argv)
        return
    parent = os.getppid()
    join_cgroups(spec["cgroups"])
    # if the grading worker dies (even by SIGKILL), this process is killed, and `unshare --kill-child`
    # then ends the namespace and every process in it
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the worker died before the signal was armed: no one would end this kernel
        os._exit(1)
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    os.execv(unshare, [unshare, "--pid", "--fork", "--kill-child", "--mount", "--net", "--ipc", "--uts",
                       "--propagation", "private", "--", spec["python"], "-I", "-m", "citykit.grading.sandbox",
                       "--inside", spec_path, *argv])  # fmt: skip


def _run_plain(spec: dict, policy: Policy, argv: list[str]) -> None:
    """Not isolated: the kernel as this user, in the run's folder, with the stripped environment and
    the resource limits; this process stays as its parent and ends what it leaves behind."""
    _become_subreaper()
    pid = os.fork() if hasattr(os, "fork") else 0
    if pid == 0:
        if hasattr(os, "setsid"):
            os.setsid()
        _set_rlimits(policy, processes=False)
        os.chdir(spec["workdir"])
        os.execve(spec["python"], _kernel_argv(spec["python"], argv), spec["env"])
    _supervise(pid)


def _supervise(kernel: int) -> None:
    """Wait for the kernel (forwarding signals to it), reaping orphans; then end what is left."""

    def forward(signum, _frame):
        with contextlib.suppress(OSError):
            os.kill(kernel, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = 1
    while True:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == kernel:
            status = os.waitstatus_to_exitcode(code)
            break
    for child in _children(os.getpid()):
        _kill_tree(child)
    os._exit(status if status >= 0 else 1)


def _inside(spec_path: str, argv: list[str]) -> None:
    """PID 1 of the run's namespaces, still root: build the file system, then start the kernel as the
    sandbox user and wait for it (its end ends the namespace and every process in it)."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    policy = Policy.from_dict(spec["policy"])
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")

    def inside(path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    def bind(path: str, writable: bool = False) -> None:
        target = inside(path)
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Path(target).touch()
        _mount(path, target, None, MS_BIND)
        flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
        _mount(None, target, None, flags)

    # /tmp and /dev/shm first: the run's own folders (under the host's /tmp) are bound on top
    for path, size in (("/tmp", policy.file_size_mb), ("/dev/shm", policy.file_size_mb)):
        os.makedirs(inside(path), exist_ok=True)
        _mount("tmpfs", inside(path), "tmpfs", MS_NOSUID | MS_NODEV, f"size={max(size, 16)}m,mode=1777")
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            os.symlink(os.readlink(path), inside(path))
        elif os.path.isdir(path):
            bind(path)
    for name in ETC_FILES:
        if os.path.exists(f"/etc/{name}"):
            bind(f"/etc/{name}")
    for path in spec["read_only"]:
        if os.path.exists(path) and not os.path.islink(path):
            bind(path)
    for path in spec.get("masked", []):  # hidden under an empty, read-only folder
        if os.path.isdir(inside(path)):
            _mount("tmpfs", inside(path), "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0555")
    for path in (spec["workdir"], spec["answers"], spec["kernel"]):
        bind(path, writable=True)
    os.makedirs(inside("/dev"), exist_ok=True)
    for device in DEVICES:
        if os.path.exists(f"/dev/{device}"):
            target = inside(f"/dev/{device}")
            Path(target).touch()
            _mount(f"/dev/{device}", target, None, MS_BIND)
            _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                       ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(link, inside(f"/dev/{name}"))
    os.makedirs(inside("/proc"), exist_ok=True)
    _mount("proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(None, root, None, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_RDONLY)  # the built root itself: read-only
    connection = argv[argv.index("-f") + 1] if "-f" in argv else None
    if connection:
        os.chown(connection, policy.uid, policy.gid)
    os.chdir(root)
    os.chroot(".")
    try:
        import socket

        socket.sethostname("sandbox")
    except (OSError, AttributeError):
        pass
    pid = os.fork()
    if pid == 0:
        os.setsid()
        _set_rlimits(policy, processes=True, tree=tuple(spec.get("tree", ())))
        os.setgroups([])
        os.setgid(policy.gid)
        os.setuid(policy.uid)
        _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        os.chdir(spec["workdir"])
        os.execve(spec["python"], _kernel_argv(spec["python"], argv), spec["env"])
    _supervise(pid)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        _inside(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "--execute":
        execute(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        launch(sys.argv[1:])
