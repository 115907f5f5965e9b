"""Shared files written safely: two commands running at once never lose or half-write one.

    with locked(path):                       # one writer at a time (an exclusive lock on `.<name>.lock`)
        data = read(path)                    # read, change, write: no update lost
        atomic_write(path, render(data))     # readers see the old file or the new one, never a part
    per_version(cache, path, parse)          # what a file holds, read once per version of the file

The lock is `filelock` (an OS lock: released when the holder dies, even on `kill -9`); the temporary
file is unique (`tempfile`, in the same folder, so `os.replace` is atomic) and removed on failure.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

LOCK_SUFFIX = ".lock"
SETTLED_NS = 2_000_000_000  # a file changed in the last 2 s is read again (a clock tick may hide a rewrite)
T = TypeVar("T")


def per_version(cache: dict[str, tuple[tuple, Any]], path: Path, read: Callable[[], T]) -> T:
    """`read()` for the file at `path`, kept in `cache` per version of the file (times, size, inode):
    read again once the file changes, and every time while it changed in the last `SETTLED_NS`.
    The version is taken before the read, so what is kept is at least as new as its version.
    Raises what `path.stat()` raises for a missing file."""
    stat = Path(path).stat()
    version = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino, stat.st_dev)
    cached = cache.get(str(path))
    if cached is None or cached[0] != version:
        cached = (version, read())
        if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > SETTLED_NS:
            cache[str(path)] = cached
    return cached[1]


def lock_file(path: Path) -> Path:
    """The lock file guarding `path`: `.<name>.lock` beside it (hidden, as it is of no interest to anyone)."""
    path = Path(path)
    return path.with_name(f".{path.name.lstrip('.')}{LOCK_SUFFIX}")


@contextlib.contextmanager
def locked(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the exclusive lock guarding `path` (made beside it) for the block."""
    lock = lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), timeout=timeout):
        yield


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A unique temporary path beside `path` to write to (any writer: parquet, a copy); moved onto
    `path` with `os.replace` when the block succeeds, removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it private; the file is shared like any other
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` through a unique temporary file in the same folder and `os.replace`."""
    with replacing(path) as tmp, open(tmp, "w", encoding=encoding, newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def _umask() -> int:
    """This process' umask, read without changing it (`os.umask` would, for every thread, for a moment)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text(encoding="ascii").splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    return 0o022
