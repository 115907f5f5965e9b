"""Run one report over many values of a parameter, in parallel, without one bad run spoiling the rest.

    run_batch("service-performance", over="neighborhood")            # every neighborhood, all cores
    run_batch("time-to-close", over="period", values=["2025-Q3", "2025-Q4"], workers=2, timeout=120)
    run_batch(..., scheduler="tcp://10.0.0.5:8786")                  # an existing Dask cluster

Every parameter set is validated before anything runs. Runs go to `<out>/<parameters>/<as-of>/`
(default `out`: `reports/<report>/`, the archive), each written atomically by `run_report`;
`<out>/index.html` links every report and names every failure.

Speed: workers are long-lived processes (a process pool, or Dask workers). Each imports papermill
and nbconvert once and keeps one `ReportKernel`, reset between reports rather than restarted, so
the kernel start and the kernel's imports (pandas, matplotlib, DuckDB, citykit: most of a small
report's time) are paid once per worker, not once per report. DuckDB runs one thread per kernel
(`CITYKIT_DUCKDB_THREADS=1`) so the workers do not fight over the cores. A run that fails or hits
the timeout has its kernel killed and replaced; the batch goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.errors import CitykitError
from citykit.reports.html import index_page
from citykit.reports.kernel import ReportKernel
from citykit.reports.params import allowed_values, dataset_of, validate
from citykit.reports.run import dataset_info, prepare, report_folder, run_report
from citykit.startup import skip_slow_optional_modules

BATCH_ENV = {"CITYKIT_DUCKDB_THREADS": "1"}


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
        ok = len(self.runs) - len(self.failed)
        text = f"{self.report} over {self.over}: {ok} of {len(self.runs)} reports succeeded in {self.seconds:.1f} s"
        if self.failed:
            text += "; failed: " + "; ".join(f"{r.value}: {r.error}" for r in self.failed)
        return text


# ------------------------------------------------------------------ planning


def plan(
    name: str, over: str, values: Sequence[Any] | None = None, parameters: dict[str, Any] | None = None,
    out: Path | None = None,
) -> tuple[Any, list[BatchRun], Path]:  # fmt: skip
    """The report, one validated run per value, and the batch folder; raises before anything runs."""
    report, base = prepare(name, {k: v for k, v in (parameters or {}).items() if k != over})
    spec = next((s for s in report.parameters if s.name == over), None)
    if spec is None:
        known = ", ".join(s.name for s in report.parameters) or "none"
        raise CitykitError(f"report {report.name} has no parameter {over!r} to batch over; its parameters: {known}")
    chosen = list(values) if values else allowed_values(spec, dataset_of(base, report.parameters))
    if not chosen:
        raise CitykitError(f"no values of {over!r} to run")
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
        raise CitykitError(f"two values of {over!r} name the same report folder; give distinct --values")
    return report, runs, root


# ------------------------------------------------------------------ one run, in a worker

_local = threading.local()


def _worker_kernel(reuse: bool) -> ReportKernel:
    kernel = getattr(_local, "kernel", None)
    if kernel is None or kernel.reuse != reuse:
        kernel = _local.kernel = ReportKernel(env=BATCH_ENV, reuse=reuse)
        _finalize_with_process(kernel)
    return kernel


def _finalize_with_process(kernel) -> None:
    """Shut the worker's kernel down when the worker process exits (pool or Dask worker)."""
    import atexit
    from multiprocessing import util

    util.Finalize(kernel, kernel.shutdown, exitpriority=10)
    atexit.register(kernel.shutdown)


def init_worker(reuse: bool = True) -> None:
    """Warm a worker: import the runner's libraries and start its kernel before the first run."""
    skip_slow_optional_modules()
    os.environ.update(BATCH_ENV)
    import nbconvert  # noqa: F401
    import papermill  # noqa: F401

    import citykit.reports.contract  # noqa: F401  # lazy: warms nbconvert's preprocessors in the worker

    _worker_kernel(reuse).start()


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Run one report of a batch in this worker; never raises for the report's own failure."""
    os.environ.update(BATCH_ENV)
    started = time.perf_counter()
    kernel = _worker_kernel(task.get("reuse", True))
    try:
        result = run_report(
            task["name"], task["parameters"], Path(task["out"]), timeout=task.get("timeout"), kernel=kernel
        )
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
    tasks = [
        {"name": str(report.source) if not report.is_module else report.name, "parameters": r.parameters,
         "out": str(r.out), "timeout": timeout, "reuse": reuse_kernel}
        for r in runs
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    with _progress(progress, len(runs), f"{report.name} over {over}") as advance:
        if scheduler:
            outcomes = _on_dask(scheduler, tasks, advance)
        else:
            outcomes = _on_pool(tasks, workers or os.cpu_count() or 1, reuse_kernel, advance)
    done = [
        BatchRun(r.value, r.parameters, r.out, o["status"], round(o["seconds"], 2),
                 Path(o["html"]) if o.get("html") else None, o.get("error", ""))
        for r, o in zip(runs, outcomes)
    ]  # fmt: skip
    result = BatchResult(report.name, over, root, done, time.perf_counter() - started)
    result.index = write_index(result, report.title)
    return result


def _on_pool(tasks: list[dict], workers: int, reuse: bool, advance) -> list[dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    outcomes: list[dict | None] = [None] * len(tasks)
    workers = max(1, min(workers, len(tasks)))
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(reuse,)) as pool:
        futures = {pool.submit(run_one, task): i for i, task in enumerate(tasks)}
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
    return outcomes  # type: ignore[return-value]


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


class _progress:
    """A rich progress bar (or a callback, or nothing) advanced once per finished run."""

    def __init__(self, progress, total: int, label: str) -> None:
        self.progress, self.total, self.label = progress, total, label
        self.bar = None

    def __enter__(self):
        if self.progress is True:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)

        def advance(task: dict, outcome: dict) -> None:
            if self.bar is not None:
                self.bar.advance(self.task)
                if outcome["status"] != "succeeded":
                    self.bar.console.print(f"[red]failed[/red] {task['parameters']}: {outcome['error']}")
            elif callable(self.progress):
                self.progress(task, outcome)

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def write_index(result: BatchResult, title: str) -> Path:
    """`<out>/index.html`: every report of the batch, linked, with its status (accessible HTML)."""
    rows = []
    for run in result.runs:
        label = "citywide" if run.value is None else str(run.value)
        rows.append({
            "value": label, "status": run.status, "seconds": f"{run.seconds:.1f}",
            "href": os.path.relpath(run.html, result.out) if run.html else "",
            "label": f"{title}: {label}", "error": run.error,
        })  # fmt: skip
    index = result.out / "index.html"
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text(index_page(f"{title}: by {result.over}", rows, result.summary()), encoding="utf-8")
    os.replace(tmp, index)
    return index
