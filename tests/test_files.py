"""citykit.files: a read-change-write under `locked` from several processes at once loses nothing, and
`atomic_write` leaves the old file or the new one, never a part or a temporary file."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from citykit.files import atomic_write, lock_file, locked, replacing


def _add_many(path: str, worker: int, start) -> None:
    start.wait()
    for i in range(25):
        with locked(Path(path)):
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
            entries.append(f"{worker}-{i}")
            atomic_write(Path(path), json.dumps(entries))


def test_locked_read_change_write_from_four_processes_loses_nothing(tmp_path):
    path = tmp_path / "shared.json"
    atomic_write(path, "[]")
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    workers = [context.Process(target=_add_many, args=(str(path), w, start)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * 4
    assert sorted(json.loads(path.read_text(encoding="utf-8"))) == sorted(
        f"{w}-{i}" for w in range(4) for i in range(25)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [lock_file(path).name, "shared.json"]
    assert lock_file(path).name == ".shared.json.lock"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "table.parquet"
    path.write_text("old")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.parquet"]
    atomic_write(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["table.parquet"]
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_current_umask()


def _current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
