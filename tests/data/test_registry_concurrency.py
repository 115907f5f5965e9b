"""The local registry under concurrency (issue 16, finding 7): imports at once are all registered."""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
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


def _export(first: int, count: int) -> str:
    """NYC_EXPORT's layout with `count` requests numbered from `first` (ids never shared)."""
    header, row = NYC_EXPORT.splitlines()[0], NYC_EXPORT.splitlines()[1]
    return "\n".join([header, *(row.replace("1001", str(first + i), 1) for i in range(count))]) + "\n"


def _import_meeting(home: str, export: str, meet) -> None:
    """Import into `same`, stopping after the rows are read until the other import has read its rows too
    (or 5 s pass): without the dataset's lock both then merge into the same, empty, previous state."""
    import threading

    from citykit.data.importers import import_requests

    os.environ["CITYKIT_HOME"] = home  # in the forked child only

    def progress(rows: int) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait(5)

    import_requests("nyc311", export, name="same", progress=progress)


def test_two_imports_into_one_name_at_once_keep_every_row(tmp_path):
    """Issue 16 QA walk: two imports into one dataset at once both exited 0 and one export's rows vanished."""
    home = tmp_path / "home"
    exports = [tmp_path / "a.csv", tmp_path / "b.csv"]
    exports[0].write_text(_export(5000, 4), encoding="utf-8")
    exports[1].write_text(_export(6000, 3), encoding="utf-8")
    context = multiprocessing.get_context("fork")
    meet = context.Barrier(2)
    workers = [context.Process(target=_import_meeting, args=(str(home), str(e), meet)) for e in exports]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    table = home / "imported" / "same" / "service_requests.parquet"
    expected = {f"{base + i}" for base, count in ((5000, 4), (6000, 3)) for i in range(count)}
    ids = set(pq.read_table(table, columns=["request_id"]).column(0).to_pylist())
    assert ids == expected
