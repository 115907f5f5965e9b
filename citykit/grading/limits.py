"""Limits for learner code while it is graded: kernels named `python3` that start through the
sandbox launcher (`python -m citykit.grading.sandbox`).

During `citykit grade autograde` each learner's kernel runs in that learner's sandbox (see
`citykit.grading.sandbox`: a separate user, namespaces and cgroups where the system has them).
Outside a grading run (`limited_kernels` alone) the launcher starts a kernel under the cohort's
resource limits only: RLIMIT_AS bounds its address space (allocations beyond it raise MemoryError),
RLIMIT_CPU its CPU seconds (the kernel is killed when it runs out). Both need the `resource` module,
which Windows lacks: there kernels start without them (cell timeouts still apply) and
`limited_kernels` says so once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from citykit.errors import CitykitError
from citykit.grading.cohort import Limits, load_cohort
from citykit.grading.config import course_root_of, environment
from citykit.startup import skip_slow_optional_modules

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

NOT_ENFORCED = (
    "note: memory and CPU-time limits are not enforced on this system (Python has no `resource` module "
    "here, as on Windows); learners' notebooks are graded with cell timeouts only"
)


def limits_enforced() -> bool:
    """Whether this system can limit a kernel's memory and CPU time."""
    return resource is not None


def apply_limits(memory_mb: int, cpu_seconds: int) -> bool:
    """Limit this process (0 = no limit); False when the system cannot enforce limits."""
    if resource is None:
        return False
    if memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    return True


# ---------------------------------------------------------------------------------- cgroups
# (the sandbox bounds a graded notebook's process tree with them, the hub a person's server)


def cgroup_mounts(controllers: tuple[str, ...], proc: Path = Path("/proc")) -> tuple[dict[str, Path], Path | None]:
    """Where the cgroup file systems are mounted: v1 hierarchy of each of `controllers`, and the
    v2 unified hierarchy (None when absent). `proc`: where /proc is (tests give a fake one)."""
    v1: dict[str, Path] = {}
    v2 = None
    try:
        lines = (Path(proc) / "mounts").read_text().splitlines()
    except OSError:
        return v1, v2
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        if parts[2] == "cgroup":
            for option in parts[3].split(","):
                if option in controllers:
                    v1[option] = Path(parts[1])
        elif parts[2] == "cgroup2":
            v2 = Path(parts[1])
    return v1, v2


def cgroup_parents(controllers: tuple[str, ...], proc: Path = Path("/proc")) -> dict[str, Path]:
    """controller -> this process's own cgroup folder, where it may make child groups: each of
    `controllers` mounted (v1) and writable, or else "v2" -> the unified hierarchy's folder when
    it delegates all of them and is writable; {} when neither."""
    try:
        lines = (Path(proc) / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return {}
    own: dict[str, str] = {}  # controller -> this process's group in its hierarchy ("" for v2)
    for line in lines:
        _, names, path = ([*line.split(":", 2), "", ""])[:3]
        for controller in names.split(","):  # the v2 line ("0::/path") has none: key ""
            own[controller] = path.lstrip("/")
    v1, v2 = cgroup_mounts(controllers, proc)
    found = {c: v1[c] / own[c] for c in controllers if c in v1 and c in own and os.access(v1[c] / own[c], os.W_OK)}
    if found or v2 is None or "" not in own:
        return found
    unified = v2 / own[""]
    try:
        enabled = set((unified / "cgroup.subtree_control").read_text().split())
    except OSError:
        return {}
    return {"v2": unified} if set(controllers) <= enabled and os.access(unified, os.W_OK) else {}


def run_limited_kernel() -> None:
    """Start an IPython kernel under the grading limits (the kernelspec `kernel_dir` writes runs this)."""
    skip_slow_optional_modules()
    apply_limits(
        int(os.environ.get("CITYKIT_KERNEL_MEMORY_MB") or 0), int(os.environ.get("CITYKIT_KERNEL_CPU_SECONDS") or 0)
    )
    from ipykernel import kernelapp

    # ipykernel 7 warns on every start that loopback TCP is unencrypted; grading kernels talk only to
    # their grader on 127.0.0.1 with signed messages, and the line, once per learner, buries real errors.
    logging.getLogger("IPKernelApp").addFilter(lambda record: "without encryption" not in record.getMessage())
    kernelapp.launch_new_instance()


def kernel_dir(limits: Limits, folder: Path) -> Path:
    """A Jupyter data folder whose `python3` kernelspec starts kernels under `limits`; put it first
    on JUPYTER_PATH so the pinned kernel name stays `python3`."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "citykit.grading.sandbox", "-f", "{connection_file}"],
        "display_name": "Python 3 (citykit grading limits)",
        "language": "python",
        "interrupt_mode": "message",  # the launcher stands between: interrupts go to the kernel itself
        "env": {
            "CITYKIT_KERNEL_MEMORY_MB": str(limits.memory_mb),
            "CITYKIT_KERNEL_CPU_SECONDS": str(limits.notebook_cpu_seconds),
            "CITYKIT_DUCKDB_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        },
        "metadata": {"debugger": False},
    }  # fmt: skip
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1), encoding="utf-8")
    return folder


def cohort_limits(course_root: Path | None = None) -> Limits:
    """The active cohort's limits (the defaults without a cohort)."""
    try:
        return load_cohort(course_root=course_root_of(course_root)).limits
    except CitykitError:
        return Limits()


@contextmanager
def limited_kernels(
    limits: Limits | None = None, *, course_root: Path | None = None, quiet: bool = False
) -> Iterator[dict[str, str]]:
    """Kernels started inside this block (by nbgrader, in this process or its children) run under the
    limits; yields the environment changes so worker processes can take them too. `quiet`: the
    caller says itself what is not enforced (autograde does, with the sandbox's notes)."""
    limits = limits or cohort_limits(course_root)
    if not limits_enforced() and not quiet:
        print(NOT_ENFORCED, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="citykit-kernels-") as folder:
        kernel_dir(limits, Path(folder))
        changes = {"JUPYTER_PATH": os.pathsep.join(filter(None, [folder, os.environ.get("JUPYTER_PATH")]))}
        with environment(changes):
            yield changes
