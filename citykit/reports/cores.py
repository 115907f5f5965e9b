"""Which CPU each batch worker runs on: one physical core per worker, its kernel beside it.

A worker and its kernel take turns (the runner waits while its kernel runs a cell, the kernel waits
while the runner records the outputs), so the pair fits one core. Pinned there, neither moves between
cores and both keep that core's caches; on 2 cores, 24 reports took ~10% less time and CPU (median of
4 alternated pairs, benchmarks/README.md). Workers are pinned only when there are no more of them than
physical cores the process may use, one per core, never two on the hyperthreads of one core; the
kernel inherits its worker's CPU. Elsewhere (more workers than cores, no `sched_setaffinity`: macOS,
Windows) nothing is pinned and the system places them.

    cores = cores_for(workers)          # [] when pinning would not help
    pin(cores, counter)                 # in each worker, before it starts its kernel
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SYSFS_CPU = Path("/sys/devices/system/cpu")


def physical_cores(usable: list[int], sysfs: Path = SYSFS_CPU) -> list[list[int]]:
    """The usable CPUs grouped by physical core (package and core id from sysfs), in CPU order; each
    CPU alone when the topology cannot be read."""
    groups: dict[tuple[str, str], list[int]] = {}
    for cpu in sorted(usable):
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            key = ((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip())
        except OSError:
            key = ("cpu", str(cpu))
        groups.setdefault(key, []).append(cpu)
    return list(groups.values())


def cores_for(workers: int, sysfs: Path = SYSFS_CPU) -> list[int]:
    """One CPU per worker, each on a physical core of its own, or [] (no pinning) when the workers
    outnumber the physical cores or the system cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    cores = physical_cores(sorted(os.sched_getaffinity(0)), sysfs)
    return [group[0] for group in cores] if 0 < workers <= len(cores) else []


def pin(cores: list[int], counter: Any) -> int | None:
    """Pin this process to the next CPU of `cores` (`counter`: a shared `multiprocessing.Value` the
    workers take turns on); the CPU, or None when `cores` is empty."""
    if not cores or counter is None:
        return None
    with counter.get_lock():
        cpu = cores[counter.value % len(cores)]
        counter.value += 1
    os.sched_setaffinity(0, {cpu})
    return cpu
