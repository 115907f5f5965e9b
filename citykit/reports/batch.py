"""Run one report over many values of a parameter, in parallel, without one bad run spoiling the rest.

    run_batch("service-performance", over="neighborhood")            # every neighborhood, all cores
    run_batch("time-to-close", over="period", values=["2025-Q3", "2025-Q4"], workers=2, timeout=120)
    run_batch(..., scheduler="tcp://10.0.0.5:8786")                  # an existing Dask cluster

Every parameter set is validated before anything runs. Runs go to `<out>/<parameters>/<as-of>/`
(default `out`: `reports/<report>/`, the archive), each written atomically by `run_report`;
`<out>/index.html` links every report in the batch folder and names every failure: it is rebuilt
from the manifests on disk, under a lock, after each batch (two batches into one folder both appear).

Speed: workers are long-lived processes (a process pool, or Dask workers). Each imports papermill
and nbconvert once and keeps one `ReportKernel`, reset between reports rather than restarted, so
the kernel start and the kernel's imports (pandas, matplotlib, DuckDB, citykit: most of a small
report's time) are paid once per worker, not once per report. DuckDB runs one thread per kernel
(`CITYKIT_DUCKDB_THREADS=1`) so the workers do not fight over the cores, and with no more workers
than physical cores each worker and its kernel keep to one core (`citykit.reports.cores`). The
workers are forked from the batch (no fork server) when it runs no other thread. A run that fails or hits
the timeout has its kernel killed and replaced; the batch goes on.

Stopping: INT (Ctrl-C), TERM and HUP stop the whole tree: each worker kills its kernel (which runs
in a session of its own) and removes what its run was building, workers still there after 10 s are
killed, staging folders are removed, and the index lists what finished. After `kill -9` of the
batch, each worker notices within a second (a watchdog on the parent's pid and start time) and does
the same; the kernels watch the batch too (`CITYKIT_PARENT_PID`). Staging folders a crash left are
removed by the next run into the same folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.errors import CitykitError, quote, redact
from citykit.files import atomic_write, locked
from citykit.reports import ledger as release_ledger
from citykit.reports.cores import cores_for, pin
from citykit.reports.html import index_page
from citykit.reports.kernel import ReportKernel, kill_all_kernels
from citykit.reports.params import allowed_values, dataset_of, validate
from citykit.reports.run import (
    MANIFEST,
    MARKER,
    dataset_info,
    prepare,
    remove_empty_parents,
    remove_unfinished,
    report_folder,
    run_report,
)
from citykit.startup import PARENT_ENV, die_with_parent, process_token, skip_slow_optional_modules, stop_on_signals

BATCH_ENV = {"CITYKIT_DUCKDB_THREADS": "1"}
INDEX = "index.html"
INDEX_LOCK = "citykit-index"  # the index is rebuilt under `<root>/.citykit-index.lock`
STOP_GRACE = 10.0  # seconds a stopped worker has to kill its kernel and clean up before it is killed


@dataclass(frozen=True)
class BatchRun:
    value: Any
    parameters: dict[str, Any]
    out: Path
    status: str = "pending"  # succeeded | failed
    seconds: float = 0.0
    html: Path | None = None
    error: str = ""


@dataclass
class BatchResult:
    report: str
    over: str
    out: Path
    runs: list[BatchRun] = field(default_factory=list)
    seconds: float = 0.0
    index: Path | None = None

    @property
    def failed(self) -> list[BatchRun]:
        return [r for r in self.runs if r.status != "succeeded"]

    def summary(self) -> str:
        """One line: how many succeeded and failed; each failure's reason is in the index (and was
        printed as it happened), not repeated here."""
        ok = len(self.runs) - len(self.failed)
        text = f"{self.report} over {self.over}: {ok} of {len(self.runs)} reports succeeded in {self.seconds:.1f} s"
        if self.failed:
            text += f"; {len(self.failed)} failed: the index lists each with its reason"
        return text


def run_label(over: str, value: Any) -> str:
    """A run as the index labels the parameter that varies: `neighborhood=Ashgrove` (redacted), a
    citywide run `neighborhood=citywide`."""
    return f"{over}={'citywide' if value is None and over == 'neighborhood' else redact(str(value))}"


def failure_line(over: str, task: dict, outcome: dict) -> str:
    """What the terminal prints when a run fails: `failed neighborhood=Ashgrove: <error>`."""
    return f"failed {run_label(over, task['parameters'].get(over))}: {redact(str(outcome.get('error') or 'failed'))}"


# ------------------------------------------------------------------ planning


UNFINISHED_AGE = 60.0  # seconds: a marker-only folder this old under a batch's --out is a stopped run's


def plan(
    name: str, over: str, values: Sequence[Any] | None = None, parameters: dict[str, Any] | None = None,
    out: Path | None = None,
) -> tuple[Any, list[BatchRun], Path]:  # fmt: skip
    """The report, one validated run per value, and the batch folder; raises before anything runs."""
    if over in (parameters or {}):
        raise CitykitError(
            f"{quote(over)} is both batched over (--over) and fixed (-p {over}=...): give its values with --values"
        )
    report, base = prepare(name, {k: v for k, v in (parameters or {}).items() if k != over})
    spec = next((s for s in report.parameters if s.name == over), None)
    if spec is None:
        known = ", ".join(s.name for s in report.parameters) or "none"
        raise CitykitError(
            f"report {report.name} has no parameter {quote(over)} to batch over; its parameters: {known}"
        )
    chosen = list(values) if values else allowed_values(spec, dataset_of(base, report.parameters))
    if not chosen:
        raise CitykitError(f"no values of {quote(over)} to run")
    root = Path(out) if out is not None else paths.reports_dir() / report.name
    runs = []
    for value in chosen:
        given = {**(parameters or {}), over: value}
        resolved = validate(report.parameters, given, report=report.name)
        dataset = dataset_of(resolved, report.parameters)
        as_of = dataset_info(dataset)["as_of"] if dataset else "undated"
        folder = report_folder(root, resolved, report.parameters, as_of)  # refuses an unsafe --out
        runs.append(BatchRun(resolved[over], resolved, folder))
    folders = [r.out for r in runs]
    if len(set(folders)) != len(folders):
        raise CitykitError(f"two values of {quote(over)} name the same report folder; give distinct --values")
    return report, runs, root


# ------------------------------------------------------------------ one run, in a worker

_local = threading.local()
_worker: dict[str, str] = {}  # a pool worker's batch parent ("parent") and the folder of the run it is on ("out")


def _worker_kernel(reuse: bool) -> ReportKernel:
    kernel = getattr(_local, "kernel", None)
    if kernel is None or kernel.reuse != reuse:
        env = {**BATCH_ENV, PARENT_ENV: _worker["parent"]} if _worker.get("parent") else BATCH_ENV
        kernel = _local.kernel = ReportKernel(env=env, reuse=reuse)  # its kernel watches the batch's parent
        _finalize_with_process(kernel)
    return kernel


def _finalize_with_process(kernel) -> None:
    """Shut the worker's kernel down when the worker process exits (pool or Dask worker)."""
    import atexit
    from multiprocessing import util

    util.Finalize(kernel, kernel.shutdown, exitpriority=10)
    atexit.register(kernel.shutdown)


def init_worker(reuse: bool = True, parent: str = "", cores: list[int] | None = None, counter: Any = None) -> None:
    """Warm a worker: import the runner's libraries and start its kernel before the first run.

    `parent` (a `process_token`) is the batch's process: when it dies, even by `kill -9`, the worker
    stops (`_stop_now`). TERM and HUP stop it the same way; INT, which Ctrl-C sends to the whole
    terminal's process group, is left to the batch's parent, which then stops its workers.
    `cores`: the CPUs the workers take one each (`citykit.reports.cores`), its kernel with it.
    """
    pin(cores or [], counter)  # before the kernel starts: it inherits the CPU
    skip_slow_optional_modules()
    os.environ.update(BATCH_ENV)
    if parent:
        _worker["parent"] = os.environ[PARENT_ENV] = parent
        die_with_parent(parent, watch_ppid=False, on_death=_stop_now, interval=0.25, grace=0)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop_on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    kernel = _worker_kernel(reuse).launch()  # it boots (~1.5 s of imports) while this worker imports its own
    import nbconvert  # noqa: F401
    import papermill  # noqa: F401

    import citykit.reports.contract  # noqa: F401  # lazy: warms nbconvert's preprocessors in the worker

    kernel.wait_until_ready()


def _stop_now() -> None:
    """In a worker whose batch is stopping: kill its kernels, remove their folders and the staging
    folder of the run it is on (nothing is sent to the kernels: no time to wait for answers)."""
    kill_all_kernels()
    out = _worker.get("out")
    if out:
        remove_unfinished(Path(out), stopping=True)  # the run's staging, then the folder if only our marker is left


def _stop_on_signal(signum: int, _frame: object) -> None:
    _stop_now()
    os._exit(128 + signum)


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Run one report of a batch in this worker; never raises for the report's own failure."""
    os.environ.update(BATCH_ENV)
    started = time.perf_counter()
    kernel = _worker_kernel(task.get("reuse", True))
    _worker["out"] = task["out"]
    try:
        result = run_report(
            task["name"], task["parameters"], Path(task["out"]), timeout=task.get("timeout"), kernel=kernel,
            ledger=Path(task["ledger"]) if task.get("ledger") else None, batch=task.get("batch", ""),
        )  # fmt: skip
    except CitykitError as error:
        return {
            "status": "failed",
            "error": str(error).split("; executed notebook kept in")[0],
            "seconds": time.perf_counter() - started,
        }
    except Exception as error:
        kernel.shutdown()
        return {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "seconds": time.perf_counter() - started,
        }
    finally:
        _worker.pop("out", None)
    return {"status": "succeeded", "html": str(result.html), "seconds": time.perf_counter() - started}


# ------------------------------------------------------------------ the batch


def run_batch(
    name: str,
    over: str,
    values: Sequence[Any] | None = None,
    parameters: dict[str, Any] | None = None,
    *,
    out: Path | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    scheduler: str | None = None,
    reuse_kernel: bool = True,
    progress: Callable[[BatchRun], None] | bool = True,
) -> BatchResult:
    """Run `name` once per value of `over`; see the module docstring. Failures are in the result."""
    report, runs, root = plan(name, over, values, parameters, out)
    started = time.perf_counter()
    # one release ledger for the batch: each report audited with the ledger and the batch's earlier tables
    ledger, batch = str(release_ledger.ledger_folder(root, batch_root=root)), f"{report.name}-over-{over}-{os.getpid()}"
    tasks = [
        {"name": str(report.source) if not report.is_module else report.name, "parameters": r.parameters,
         "out": str(r.out), "timeout": timeout, "reuse": reuse_kernel, "ledger": ledger, "batch": batch}
        for r in runs
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    clean_unfinished(root, [r.out for r in runs])
    try:
        with stop_on_signals():
            bar = _progress(progress, len(runs), f"{report.name} over {over}", over)
            if scheduler:
                with bar as advance:
                    outcomes = _on_dask(scheduler, tasks, advance)
            else:
                outcomes = _on_pool(tasks, workers or os.cpu_count() or 1, reuse_kernel, bar)
    except KeyboardInterrupt as stop:  # Ctrl-C, TERM or HUP: the workers and their kernels are gone
        with _signals_ignored():
            for run in runs:
                remove_unfinished(run.out, root)  # its staging, then the folder if only our marker is left
            reason = str(stop) or "interrupted"  # Ctrl-C's KeyboardInterrupt has no words; TERM and HUP name themselves
            write_index(
                root,
                report.title,
                f"batch of {report.name} over {over} stopped ({reason}) before its "
                f"{len(runs)} runs finished; run the same batch again to finish it",
            )
        raise
    done = [
        BatchRun(r.value, r.parameters, r.out, o["status"], round(o["seconds"], 2),
                 Path(o["html"]) if o.get("html") else None, o.get("error", ""))
        for r, o in zip(runs, outcomes)
    ]  # fmt: skip
    result = BatchResult(report.name, over, root, done, time.perf_counter() - started)
    result.index = write_index(root, report.title, f"last batch: {result.summary()}")
    return result


def clean_unfinished(root: Path, own: Sequence[Path] = (), min_age: float = UNFINISHED_AGE) -> list[Path]:
    """The folders under `root` an earlier, stopped or killed, batch left holding only our marker (and
    stale staging), removed with their empty parents: this batch's own run folders, and any other
    whose marker is older than `min_age` seconds (a run of a batch running now has it for a moment)."""
    removed = []
    own_folders = {Path(f) for f in own}
    now = time.time()
    for marker in sorted(Path(root).rglob(MARKER)):
        folder = marker.parent
        if folder == Path(root) or not marker.is_file():
            continue
        try:
            old = now - marker.stat().st_mtime >= min_age
        except OSError:
            continue
        if (folder in own_folders or old) and remove_unfinished(folder, root):
            removed.append(folder)
    for folder in own_folders:  # removed by a worker that was stopping, its parents left empty
        if not folder.exists():
            remove_empty_parents(folder, root)
    leftovers = (p for p in Path(root).rglob("*") if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for folder in sorted(leftovers, reverse=True):
        with contextlib.suppress(OSError):  # an empty folder a stopped batch left (deepest first)
            if not any(folder.iterdir()) and now - folder.stat().st_mtime >= min_age:
                folder.rmdir()
                removed.append(folder)
    return removed


def _on_pool(tasks: list[dict], workers: int, reuse: bool, bar: _progress) -> list[dict]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    outcomes: list[dict | None] = [None] * len(tasks)
    workers = max(1, min(workers, len(tasks)))
    context = _pool_context()
    cores = cores_for(workers)  # one physical core per worker and its kernel, when there are enough
    counter = context.Value("i", 0) if cores else None
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker,
                               initargs=(reuse, process_token(), cores, counter))  # fmt: skip
    try:
        futures = {pool.submit(run_one, task): i for i, task in enumerate(tasks)}  # the first starts the workers
        with bar as advance:  # its refresh thread starts after the workers are forked
            for future in as_completed(futures):
                i = futures[future]
                try:
                    outcomes[i] = future.result()
                except Exception as error:  # a worker process died
                    outcomes[i] = {
                        "status": "failed",
                        "error": f"worker died: {type(error).__name__}: {error}",
                        "seconds": 0.0,
                    }
                advance(tasks[i], outcomes[i])
    except BaseException:  # stopped (Ctrl-C, TERM, HUP) or broken: no worker or kernel may outlive the batch
        with _signals_ignored():
            _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return outcomes  # type: ignore[return-value]


def _pool_context():
    """How the workers start. Forked, when this process runs no other thread (the command line): they
    start at once with what the batch has imported, and each starts its kernel ~0.5 s sooner than
    through a fork server, which starts a new interpreter and imports it all again. Through a fork
    server otherwise (a notebook, a server, a test runner with threads): forking a process whose
    threads may hold locks can deadlock the child."""
    import multiprocessing

    alone = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if alone else "forkserver")


def _stop_pool(pool, grace: float = STOP_GRACE) -> None:
    """TERM every worker (each kills its kernel and removes its staging folder), KILL any still there
    after `grace` seconds, and shut the pool down without waiting for the runs."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, AttributeError):
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)
    pool.shutdown(wait=False, cancel_futures=True)


class _signals_ignored:
    """INT, TERM and HUP ignored while the batch cleans up after being stopped (main thread only)."""

    NAMES = ("SIGINT", "SIGTERM", "SIGHUP")

    def __enter__(self):
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                if hasattr(signal, name):
                    self.previous[name] = signal.signal(getattr(signal, name), signal.SIG_IGN)
        return self

    def __exit__(self, *exc) -> None:
        for name, handler in self.previous.items():
            signal.signal(getattr(signal, name), handler)


def _on_dask(address: str, tasks: list[dict], advance) -> list[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise CitykitError('--scheduler needs Dask: pip install "citykit[dask]"') from None
    try:
        client = Client(address, timeout="10s")
    except OSError as error:
        raise CitykitError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    outcomes: list[dict | None] = [None] * len(tasks)
    try:
        futures = [
            client.submit(run_one, task, pure=False, key=f"citykit-report-{i}-{time.time_ns()}")
            for i, task in enumerate(tasks)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            i = index[future.key]
            try:
                outcomes[i] = future.result()
            except Exception as error:
                outcomes[i] = {
                    "status": "failed",
                    "error": f"Dask worker error: {type(error).__name__}: {error}",
                    "seconds": 0.0,
                }
            advance(tasks[i], outcomes[i])
    finally:
        client.close()
    return outcomes  # type: ignore[return-value]


BAR_RUNNING, BAR_FINISHED = "blue", "green"  # the progress bar while the batch runs, and when it is done


class _progress:
    """A rich progress bar (or a callback, or nothing) advanced once per finished run."""

    def __init__(self, progress, total: int, label: str, over: str = "") -> None:
        self.progress, self.total, self.label, self.over = progress, total, label, over
        self.bar = None

    def __enter__(self):
        if self.progress is True:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            # neutral colours: rich's default pink reads as bright red, an error, on a 256-colour terminal
            bar = BarColumn(complete_style=BAR_RUNNING, finished_style=BAR_FINISHED)
            self.bar = Progress(TextColumn("{task.description}"), bar, MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(stderr=True))  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)

        def advance(task: dict, outcome: dict) -> None:
            if self.bar is not None:
                self.bar.advance(self.task)
                if outcome["status"] != "succeeded":
                    self.bar.console.print(  # one line, for logs too: the terminal wraps it
                        failure_line(self.over, task, outcome), style="red", markup=False, soft_wrap=True
                    )
            elif callable(self.progress):
                self.progress(task, outcome)

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def write_index(root: Path, title: str, summary: str = "") -> Path:
    """`<root>/index.html`: every report under the batch folder, linked, with its status, and every
    failed run with its error (accessible HTML).

    Rebuilt from the manifests on disk under a lock and written atomically, so that two batches
    into one folder, at once or one after the other, both appear in it.
    """
    root = Path(root)
    index = root / INDEX
    with locked(root / INDEX_LOCK):
        found = _manifests(root)
        rows = index_rows(root, title, found)
        failed = sum(r["status"] != "succeeded" for r in rows)
        held = f"This folder holds {len(rows) - failed} report(s)" + (f" and {failed} failed run(s)" if failed else "")
        shared = shared_parameters([d.get("parameters") or {} for _, d in found])
        held += f", all with {shared}" if shared and len(rows) > 1 else (f", with {shared}" if shared else "")
        page = index_page(f"Reports: {title}", rows, f"{summary}. {held}." if summary else f"{held}.")
        atomic_write(index, page)
    return index


def shared_parameters(parameters: list[dict[str, Any]]) -> str:
    """The parameters every run has the same value of, said once: "period 2025-Q4, dataset riverton"
    (redacted; a citywide run's neighborhood "citywide"); empty without runs."""
    if not parameters:
        return ""
    words = []
    for key in dict.fromkeys(k for p in parameters for k in p):
        if len({repr(p.get(key)) for p in parameters}) > 1:
            continue
        value = parameters[0].get(key)
        if value is None and key != "neighborhood":
            continue
        words.append(f"{key} {'citywide' if value is None else redact(str(value))}")
    return ", ".join(words)


def _manifests(root: Path) -> list[tuple[Path, dict]]:
    """(folder, manifest) of every finished or failed run under `root`."""
    found = []
    for manifest in sorted(Path(root).rglob(MANIFEST)):
        relative = manifest.parent.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # a staging folder, a run being built
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("status") in ("succeeded", "failed"):
            found.append((manifest.parent, data))
    return found


def index_rows(root: Path, title: str, found: list[tuple[Path, dict]] | None = None) -> list[dict[str, str]]:
    """One row per report folder and per failed run (`<out>.failed/`) under `root`, from their manifests."""
    found = _manifests(root) if found is None else found
    parameters = [d.get("parameters") or {} for _, d in found]
    varying = [
        k for k in dict.fromkeys(k for p in parameters for k in p) if len({repr(p.get(k)) for p in parameters}) > 1
    ]
    rows = []
    for (folder, data), params in zip(found, parameters):
        shown = [params.get(k) for k in varying]
        words = ["citywide" if v is None and k == "neighborhood" else redact(str(v)) for k, v in zip(varying, shown)]
        if len(varying) == 1:
            label = "citywide" if shown[0] is None else words[0]
        else:
            label = ", ".join(f"{k}={w}" for k, w in zip(varying, words)) or folder.relative_to(root).as_posix()
        as_of = (data.get("dataset") or {}).get("as_of")
        if as_of:
            label += f" (as of {as_of})"
        html = folder / f"{data.get('report', '')}.html"
        succeeded = data["status"] == "succeeded" and html.is_file()
        seconds = data.get("seconds")
        rows.append({
            "value": label, "status": "succeeded" if succeeded else "failed",
            "seconds": f"{seconds:.1f}" if isinstance(seconds, int | float) else "",
            "href": html.relative_to(root).as_posix() if succeeded else "",
            "label": f"{title} — {label}", "error": "" if succeeded else str(data.get("error", "failed")),
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["value"], r["status"]))
