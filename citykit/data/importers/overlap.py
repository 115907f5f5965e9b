"""Work an import overlaps on a second core: the CSV parser reading the next batch while this one is
mapped, the staged rows written while the next batch is mapped, the file's digest computed while
it is imported. pyarrow, hashlib and DuckDB release the GIL while they work, so threads suffice;
each queue holds at most `DEPTH` batches, so memory stays bounded. An error in a thread is raised
in the caller, and a caller that stops early stops the thread."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

T = TypeVar("T")
DEPTH = 2  # batches waiting in a queue
_DONE = object()
_POLL = 0.2  # seconds between checks that the other side still wants the work


def prefetch(items: Iterator[T], depth: int = DEPTH) -> Iterator[T]:
    """`items`, produced in a background thread up to `depth` ahead of the consumer."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(waiting, (True, item), stop):
                    return
            _put(waiting, (True, _DONE), stop)
        except BaseException as error:  # handed to the consumer, raised there
            _put(waiting, (False, error), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="citykit-import-read", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = waiting.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _put(waiting: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            waiting.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False


class Background:
    """Calls `work(item)` for each `submit`ted item in order, in one background thread; `close`
    waits for the last and raises the first error (later items are dropped after an error)."""

    def __init__(self, work: Callable[[Any], None], depth: int = DEPTH) -> None:
        self._work = work
        self._waiting: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="citykit-import-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._waiting.get()) is not _DONE:
            if self._error is None:
                try:
                    self._work(item)
                except BaseException as error:  # raised by submit or close, in the caller
                    self._error = error

    def submit(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._waiting.put(item)

    def close(self) -> None:
        self._waiting.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error


class Digest:
    """The SHA-256 of a file, computed in a background thread from the moment it is made."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="citykit-import-digest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            digest = hashlib.sha256()
            with self._path.open("rb") as fh:
                while chunk := fh.read(4 << 20):
                    digest.update(chunk)
            self._value = digest.hexdigest()
        except BaseException as error:
            self._error = error

    def value(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


@contextlib.contextmanager
def arrow_pool() -> Iterator[None]:
    """Arrow allocates from its jemalloc pool while an import runs (when this pyarrow has one and
    ARROW_DEFAULT_MEMORY_POOL does not choose): pyarrow's default, mimalloc, hands the batches'
    freed memory back to the kernel, which zeroes it again on reuse (15% of an import's CPU in
    `clear_page`; 2,000,000 NYC rows: about 4% less CPU in all and a 100 MB lower peak with jemalloc).
    Buffers keep the pool they came from, so the previous default is simply restored afterwards."""
    try:
        pool = None if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") else pa.jemalloc_memory_pool()
    except NotImplementedError:  # pyarrow built without jemalloc (ArrowNotImplementedError is one)
        pool = None
    if pool is None:
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
