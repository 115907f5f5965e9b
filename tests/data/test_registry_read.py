"""The registry files are parsed once per version of the file (a report asks for its dataset dozens of
times), and every change to them is still seen at once."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import yaml

from citykit import files
from citykit.data import registry

ENTRY = {"kind": "parquet", "title": "A city", "as_of": "2025-01-31", "synthetic": True, "location": "x"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYKIT_HOME", str(tmp_path))
    registry._parsed.clear()
    yield tmp_path
    registry._parsed.clear()


def write(home, **datasets) -> None:
    (home / registry.LOCAL_REGISTRY).write_text(yaml.safe_dump({"datasets": datasets}), encoding="utf-8")


def count_parses(monkeypatch) -> list[int]:
    calls = [0]
    real = yaml.safe_load

    def counting(stream):
        calls[0] += 1
        return real(stream)

    monkeypatch.setattr(registry.yaml, "safe_load", counting)
    return calls


def test_a_settled_file_is_parsed_once_and_a_new_version_is_read(home, monkeypatch):
    write(home, alpha=ENTRY)
    monkeypatch.setattr(files, "SETTLED_NS", -(10**18))  # as if the file had been written long ago
    calls = count_parses(monkeypatch)
    for _ in range(5):
        assert registry.get("alpha").as_of == dt.date(2025, 1, 31)
    assert calls[0] == 2  # the kit's registry.yml and the local one, once each (10 without the cache)
    registry.register(registry._entry("beta", {**ENTRY, "as_of": "2025-02-28"}))  # a new file (atomic write)
    assert registry.get("beta").as_of == dt.date(2025, 2, 28)
    assert registry.get("alpha").as_of == dt.date(2025, 1, 31)


def test_a_file_rewritten_in_place_with_its_old_size_and_time_is_read_again(home, monkeypatch):
    monkeypatch.setattr(files, "SETTLED_NS", -(10**18))  # the file is cached at once
    write(home, alpha=ENTRY)
    path = home / registry.LOCAL_REGISTRY
    assert registry.get("alpha").as_of == dt.date(2025, 1, 31)
    before = path.stat()
    write(home, alpha={**ENTRY, "as_of": "2025-01-30"})  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and its old time, as `cp -p` or rsync -t leave it
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    assert registry.get("alpha").as_of == dt.date(2025, 1, 30)  # the change time tells


def test_a_caller_changing_what_it_read_changes_nothing(home, monkeypatch):
    monkeypatch.setattr(files, "SETTLED_NS", -(10**18))  # the file is cached at once
    write(home, alpha=ENTRY)
    registry._read(home / registry.LOCAL_REGISTRY)["alpha"]["as_of"] = "1999-01-01"
    assert registry.get("alpha").as_of == dt.date(2025, 1, 31)


def test_a_file_changed_within_the_settling_time_is_read_on_every_call(home, monkeypatch):
    # A rewrite inside one clock tick can keep size, times and inode: a file this young is never cached,
    # so a second rewrite that the version cannot tell apart is still seen.
    monkeypatch.setattr(files, "SETTLED_NS", 10**15)  # every file counts as just written
    write(home, alpha=ENTRY)
    calls = count_parses(monkeypatch)
    path = home / registry.LOCAL_REGISTRY
    before = path.stat()
    assert registry.get("alpha").as_of == dt.date(2025, 1, 31)
    write(home, alpha={**ENTRY, "as_of": "2025-01-30"})  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert registry.get("alpha").as_of == dt.date(2025, 1, 30)
    assert str(path) not in registry._parsed
    young = calls[0]
    registry.get("alpha")
    assert calls[0] > young  # read again, not served from a cache
