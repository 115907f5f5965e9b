"""Per-person limits on a hub: memory, CPU and processes of a server and everything it starts.

JupyterHub's LocalProcessSpawner passes `mem_limit` and `cpu_limit` to the server as information
(MEM_LIMIT, CPU_LIMIT) and enforces neither. `CohortSpawner` enforces them with cgroups when the hub
runs as root and the system has them: a group per account, `citykit-hub/<cohort>/<account>`, under
the hub's own cgroup, with

- cgroup v1: `memory.limit_in_bytes`, `cpu.cfs_quota_us` (per `cpu.cfs_period_us`) and `pids.max`;
- cgroup v2: `memory.max`, `cpu.max` and `pids.max` (where the parent delegates those controllers).

The server joins its group before it drops root and starts, so its kernels and terminals are in it
too: past the memory limit the kernel's out-of-memory killer ends the largest process of that person
(usually a kernel: JupyterLab says the kernel died), never another person's. Without cgroups nothing
is enforced and `citykit hub status` and the hub's log say so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from citykit.grading.limits import cgroup_mounts, cgroup_parents

CPU_PERIOD_US = 100_000


CONTROLLERS = ("memory", "cpu", "pids")


@dataclass(frozen=True)
class Cgroups:
    """Where this process may make child cgroups, per controller (`v2` for the unified hierarchy)."""

    parents: dict[str, Path] = field(default_factory=dict)
    why_not: str = ""

    @classmethod
    def detect(cls) -> Cgroups:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            return cls(why_not="the hub does not run as root")
        parents = cgroup_parents(CONTROLLERS)
        if not parents:
            return cls(why_not="no writable cgroup memory, cpu or pids controller")
        return cls(parents=parents)

    @property
    def enforces(self) -> list[str]:
        if "v2" in self.parents:
            return ["memory", "cpu", "pids"]
        return sorted(self.parents)

    def group_paths(self, cohort: str, account: str) -> dict[str, Path]:
        return {c: parent / "citykit-hub" / cohort / account for c, parent in self.parents.items()}

    def make(self, cohort: str, account: str, *, memory_bytes: int, cpus: float, processes: int) -> list[Path]:
        """Make (or reset) the account's groups with these limits; return their folders."""
        made = []
        for controller, folder in self.group_paths(cohort, account).items():
            folder.mkdir(parents=True, exist_ok=True)
            settings: list[tuple[str, str]] = []
            if controller in ("memory", "v2") and memory_bytes:
                settings.append(("memory.max" if controller == "v2" else "memory.limit_in_bytes", str(memory_bytes)))
            if controller in ("cpu", "v2") and cpus:
                quota = str(int(cpus * CPU_PERIOD_US))
                if controller == "v2":
                    settings.append(("cpu.max", f"{quota} {CPU_PERIOD_US}"))
                else:
                    settings += [("cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu.cfs_quota_us", quota)]
            if controller in ("pids", "v2") and processes:
                settings.append(("pids.max", str(processes)))
            for name, value in settings:
                (folder / name).write_text(value)
            made.append(folder)
        return made


def join(folders: list[Path], pid: int | None = None) -> None:
    """Move a process (default: this one) into the groups; called before the server drops root."""
    for folder in folders:
        (folder / "cgroup.procs").write_text(str(pid or os.getpid()))


def remove(folders: list[Path]) -> None:
    """Remove groups left empty (a group with processes still in it stays)."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def remove_cohort(cohort: str) -> None:
    """Remove the cohort's (empty) groups, and the kit's folder when no cohort is left in it."""
    for parent in Cgroups.detect().parents.values():
        folder = parent / "citykit-hub" / cohort
        if folder.is_dir():
            remove([p for p in folder.iterdir() if p.is_dir()])
            remove([folder, folder.parent])


def limits_of(pid: int) -> dict[str, int]:
    """The memory (bytes), CPU quota (per 100,000 us) and process limits of a process's cgroups, as the
    system reports them (what `status` prints and the tests check)."""
    found: dict[str, int] = {}
    v1, v2 = cgroup_mounts(CONTROLLERS)
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return found

    def read(path: Path) -> str:
        try:
            return path.read_text().strip()
        except OSError:
            return ""

    for line in lines:
        number, controllers, path = ([*line.split(":", 2), "", ""])[:3]
        names = controllers.split(",")
        if "memory" in names and "memory" in v1:
            value = read(v1["memory"] / path.lstrip("/") / "memory.limit_in_bytes")
            if value.isdigit() and int(value) < 2**62:
                found["memory_bytes"] = int(value)
        if "cpu" in names and "cpu" in v1:
            value = read(v1["cpu"] / path.lstrip("/") / "cpu.cfs_quota_us")
            if value.lstrip("-").isdigit() and int(value) > 0:
                found["cpu_quota_us"] = int(value)
        if "pids" in names and "pids" in v1:
            value = read(v1["pids"] / path.lstrip("/") / "pids.max")
            if value.isdigit():
                found["processes"] = int(value)
        if number == "0" and controllers == "" and v2 is not None:
            folder = v2 / path.lstrip("/")
            memory, cpu, pids = read(folder / "memory.max"), read(folder / "cpu.max").split(), read(folder / "pids.max")
            if memory.isdigit():
                found.setdefault("memory_bytes", int(memory))
            if cpu and cpu[0].isdigit():
                found.setdefault("cpu_quota_us", int(int(cpu[0]) * CPU_PERIOD_US / int(cpu[1])))
            if pids.isdigit():
                found.setdefault("processes", int(pids))
    return found
