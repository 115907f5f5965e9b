"""The local registry under concurrency (issue 16, finding 7): imports at once are all registered."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import yaml

from citykit.data import registry

# Three requests in NYC 311's published layout (the column list of NYC Open Data erm2-nwe9).
NYC_EXPORT = """\
Unique Key,Created Date,Closed Date,Agency,Agency Name,Complaint Type,Descriptor,Location Type,Incident Zip,\
Incident Address,City,Status,Due Date,Resolution Description,Community Board,Borough,Open Data Channel Type,Latitude,\
Longitude
1001,03/01/2024 09:30:15 AM,03/01/2024 02:30:15 PM,DOT,Transportation,Pothole,,,10001,1 Main St,NEW YORK,Closed,,,\
01 MANHATTAN,MANHATTAN,ONLINE,40.712800,-74.006000
1002,03/02/2024 09:30:15 AM,03/02/2024 02:30:15 PM,DOT,Transportation,Pothole,,,10001,2 Main St,NEW YORK,Closed,,,\
01 MANHATTAN,MANHATTAN,ONLINE,40.712900,-74.006000
1003,03/03/2024 09:30:15 AM,,DOT,Transportation,Pothole,,,10001,3 Main St,NEW YORK,Open,,,02 MANHATTAN,MANHATTAN,\
PHONE,40.713000,-74.006000
"""


def registered(home: Path) -> set[str]:
    """The names in the local registry file, read with plain YAML (not through the code under test)."""
    return set(yaml.safe_load((home / registry.LOCAL_REGISTRY).read_text(encoding="utf-8"))["datasets"])


def test_four_parallel_imports_are_all_registered(tmp_path):
    home = tmp_path / "home"
    export = tmp_path / "export.csv"
    export.write_text(NYC_EXPORT, encoding="utf-8")
    env = {**os.environ, "CITYKIT_HOME": str(home)}
    names = [f"t_par{i}" for i in range(4)]
    command = [sys.executable, "-m", "citykit", "data", "import", "nyc311", str(export), "--name"]
    run = {"env": env, "cwd": tmp_path, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    imports = [subprocess.Popen([*command, name], **run) for name in names]
    outputs = [p.communicate(timeout=120)[0] for p in imports]
    assert [p.returncode for p in imports] == [0] * 4, outputs
    assert all(f"dataset '{name}' registered" in out for name, out in zip(names, outputs))
    assert registered(home) == set(names)
    assert not [p.name for p in home.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def _register_many(home: str, worker: int, count: int, start) -> None:
    os.environ["CITYKIT_HOME"] = home  # in the forked child only
    start.wait()
    for i in range(count):
        registry.register(registry.Dataset(name=f"w{worker}_{i}", as_of=dt.date(2024, 3, 3), location=f"imported/w{i}"))


def test_registrations_racing_from_four_processes_lose_nothing(tmp_path):
    """Without the lock, read-change-write from four processes loses entries (or trips on a shared temp file)."""
    home = tmp_path / "home"
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    workers = [context.Process(target=_register_many, args=(str(home), w, 10, start)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * 4
    assert registered(home) == {f"w{w}_{i}" for w in range(4) for i in range(10)}
