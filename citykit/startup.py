"""Process start-up: what citykit's own processes (the CLI, report kernels, grading workers) set first.

`rfc3987-syntax` is an optional jsonschema format checker (IRI syntax) that jupyter_server's
dependencies pull in. Once installed, every process that validates a notebook with nbformat pays
about 1.3 s to build its grammar, and nothing in the stack validates IRIs. `make setup`
uninstalls it; on the wheel route (`pip install citykit`) it stays installed, so citykit's own
processes skip it here instead: jsonschema then simply has no "iri" format check.

Process trees that end together: a command that starts workers, kernels or a JupyterLab stops
them all on INT, TERM and HUP (`stop_on_signals`), and each child watches its parent
(`die_with_parent`, and on Linux `parent_death_signal`), so that even after `kill -9` of the
parent nothing is left running. `CITYKIT_PARENT_PID` (`PID:START`, see `process_token`) names the
process a report kernel watches.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

SLOW_OPTIONAL_MODULES = ("rfc3987_syntax",)


def skip_slow_optional_modules() -> None:
    """Make the slow optional modules unimportable in this process (ImportError on import)."""
    for name in SLOW_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"


# ------------------------------------------------------------------ process trees that end together

PARENT_ENV = "CITYKIT_PARENT_PID"  # "<pid>:<start time>" of the process whose death ends this one


class Stopped(KeyboardInterrupt):
    """A TERM or HUP signal: stop as Ctrl-C does (the `finally` blocks run, children are stopped)."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, TERM and HUP (a service stop, `kill`, a closed terminal) raise `Stopped`, as
    INT (Ctrl-C) raises KeyboardInterrupt; the previous handlers are put back after. Only the main
    thread can set handlers: elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):  # SIGHUP does not exist on Windows
        if hasattr(signal, name):
            previous[name] = signal.signal(getattr(signal, name), stop)
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def _proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (Linux), [] elsewhere or when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return []


def process_token(pid: int | None = None) -> str:
    """`PID:START` naming one process (its start time tells it from a later process given the same pid)."""
    pid = os.getpid() if pid is None else pid
    fields = _proc_stat(pid)
    return f"{pid}:{fields[19] if len(fields) > 19 else ''}"


def process_alive(token: str | int) -> bool:
    """Whether the process named by `process_token` (or a bare pid) still runs (a zombie does not)."""
    pid_text, _, start = str(token).partition(":")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process: it exists
        pass
    except OSError:  # Windows: os.kill(pid, 0) is not a probe; assume alive
        return True
    fields = _proc_stat(pid)
    if fields:
        if fields[0] in ("Z", "X"):  # dead, not yet reaped by its parent
            return False
        if start and len(fields) > 19 and fields[19] != start:  # the pid was given to another process
            return False
    return True


def die_with_parent(
    parent: str | None = None,
    *,
    watch_ppid: bool = True,
    on_death: Callable[[], object] | None = None,
    interval: float = 0.5,
    grace: float = 5.0,
) -> threading.Thread:
    """End this process soon after its parent dies, even when the parent was killed with `kill -9`.

    A daemon thread polls every `interval` seconds whether `parent` (a `process_token`; default
    `$CITYKIT_PARENT_PID`) is gone and, with `watch_ppid`, whether this process' own parent changed
    (it died and the process was handed to init). Then it calls `on_death` (default: send itself
    SIGTERM, so the process' own shutdown runs) and, `grace` seconds later, exits at once.
    """
    watched = parent if parent is not None else os.environ.get(PARENT_ENV, "")
    ppid = os.getppid()

    def parent_gone() -> bool:
        return (watch_ppid and os.getppid() != ppid) or (bool(watched) and not process_alive(watched))

    def watch() -> None:
        while not parent_gone():
            time.sleep(interval)
        try:
            (on_death or _terminate_self)()
            time.sleep(grace)
        finally:
            os._exit(1)

    thread = threading.Thread(target=watch, name="citykit-parent-watchdog", daemon=True)
    thread.start()
    return thread


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def parent_death_signal() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that has Linux send the child SIGTERM when this process
    dies (PR_SET_PDEATHSIG), or None where that is not possible or not safe.

    Linux sends the signal when the *thread* that started the child ends, so it is offered only to
    the main thread; elsewhere (and on other systems) the child's own watchdog (`die_with_parent`) serves.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    import ctypes  # only a lab start needs it: not on every command's start-up path

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


PR_SET_PDEATHSIG = 1  # <sys/prctl.h>
