"""Batch workers keep to one physical core each, their kernels beside them (citykit.reports.cores)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from citykit.reports import cores

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity (Linux)")


def fake_sysfs(root: Path, topology: dict[int, tuple[int, int]]) -> Path:
    """/sys/devices/system/cpu with cpuN/topology/{physical_package_id,core_id}."""
    for cpu, (package, core) in topology.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text(f"{package}\n")
        (folder / "core_id").write_text(f"{core}\n")
    return root


def test_one_cpu_per_physical_core_never_two_hyperthreads_of_one(tmp_path, monkeypatch):
    # AMD-style numbering: CPUs 0 and 1 are the two threads of core 0, 2 and 3 of core 1
    sysfs = fake_sysfs(tmp_path, {0: (0, 0), 1: (0, 0), 2: (0, 1), 3: (0, 1)})
    monkeypatch.setattr(cores.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert cores.physical_cores([0, 1, 2, 3], sysfs) == [[0, 1], [2, 3]]
    assert cores.cores_for(2, sysfs) == [0, 2]
    assert cores.cores_for(1, sysfs) == [0, 2]  # one worker takes the first
    assert cores.cores_for(3, sysfs) == []  # more workers than physical cores: the system places them
    # a CPU whose topology cannot be read counts as a core of its own
    assert cores.physical_cores([0, 2, 7], sysfs) == [[0], [2], [7]]


def _pinned_cpu(cpus, counter, found):
    found.put((cores.pin(cpus, counter), sorted(os.sched_getaffinity(0))))


def test_workers_take_one_cpu_each_in_turn():
    usable = sorted(os.sched_getaffinity(0))
    context = multiprocessing.get_context("fork")
    counter, found = context.Value("i", 0), context.Queue()
    workers = [context.Process(target=_pinned_cpu, args=(usable, counter, found)) for _ in usable]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    results = [found.get(timeout=5) for _ in workers]
    assert sorted(cpu for cpu, _ in results) == usable  # each CPU once
    assert all(affinity == [cpu] for cpu, affinity in results)
    assert cores.pin([], None) is None and sorted(os.sched_getaffinity(0)) == usable  # nothing to pin: untouched


@pytest.mark.slow
def test_a_batchs_kernels_run_on_their_workers_cpu(tmp_path):
    physical = cores.cores_for(2)
    if not physical:
        pytest.skip("fewer than 2 physical cores")
    nb = new_notebook(cells=[
        new_code_cell("divisor = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("import json, os\nprint(json.dumps(sorted(os.sched_getaffinity(0))))"),
    ])  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "where.ipynb")
    out = tmp_path / "batch"
    subprocess.run([sys.executable, "-m", "citykit", "report", "batch", str(tmp_path / "where.ipynb"), "--over",
                    "divisor", "--values", "1", "2", "3", "4", "--out", str(out), "--workers", "2"],
                   check=True, cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    seen = []
    for executed in out.rglob("where.ipynb"):
        printed = nbformat.read(executed, 4).cells[-1].outputs[0]["text"]
        seen.append(json.loads(printed))
    assert len(seen) == 4
    assert all(len(cpus) == 1 and cpus[0] in physical for cpus in seen)  # each kernel kept to its worker's CPU
