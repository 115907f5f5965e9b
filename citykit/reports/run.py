"""Run a module as a production report: validated parameters, papermill, accessible outputs, atomically.

    run_report("time-to-close", {"neighborhood": "Harbor Point", "period": "2025-Q4"})

1. The parameters are validated before any kernel starts (`citykit.reports.params`): unknown names, wrong
   types and values not in the dataset raise `CitykitError` and nothing is written.
2. The production-run contract removes lesson-only cells (`citykit.reports.contract`); papermill runs
   the rest in a kernel prepared by `ReportKernel` (imports warmed, figure alt text and table
   recording installed; see `citykit.reports.html`).
3. Outputs go to `--out`, by default the archive `reports/<report>/<parameters>/<as-of>/`:
   `NAME.ipynb` (executed), `NAME.html` (no code), `tables/NN-name.csv` and `NAME.xlsx` (every
   DataFrame the report displayed), `manifest.json` (parameters, dataset and fingerprint, package
   versions, start, duration, status; never a secret), and `NAME.pdf` with `pdf=True`.
   Everything is built in a staging folder beside `out` and moved in only when the whole run
   succeeded; a failed run leaves the previous report intact, keeps its executed notebook and
   manifest in `<out>.failed/`, and raises `WorkFailed` naming the cell and the error.

For notebook authors, tables: every DataFrame a report *displays* becomes a table (CSV and a sheet
of the workbook), named after the heading above it; to choose the name, display it with
`publish_table(df, "backlog by age")`. Figures: alt text is made from the figure's title and axis
labels; to write it yourself, call `describe_figure(fig, "Bar chart of ...")` before showing it,
or set `alt` in the cell's metadata.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.errors import CitykitError, WorkFailed
from citykit.reports.params import ParamSpec

KERNEL_NAME = "python3"
MANIFEST = "manifest.json"
PRELUDE = "import citykit.reports.html as _citykit_html\n_citykit_html.install_kernel_hooks()\ndel _citykit_html\n"
RESET = "import citykit.reports.html as _citykit_html\n_citykit_html.reset_kernel_state()\n"
VERSIONED = ("citykit", "papermill", "nbconvert", "nbformat", "ipykernel", "pandas", "duckdb", "pyarrow", "matplotlib")
SECRET_URL = re.compile(r"(\w+://)([^/@\s]+)@")  # scheme://user:password@host


# ------------------------------------------------------------------ helpers for notebook authors


def publish_table(df: Any, name: str) -> None:
    """Display a DataFrame in the report and name the CSV / workbook sheet it becomes."""
    from IPython.display import display

    from citykit.reports.html import TABLE_ATTR

    shown = df.copy(deep=False)
    shown.attrs[TABLE_ATTR] = name
    display(shown)


def describe_figure(fig: Any, alt: str) -> Any:
    """Set a figure's alt text in the report (otherwise made from its titles and axis labels)."""
    from citykit.reports.html import ALT_ATTR

    setattr(fig, ALT_ATTR, alt)
    return fig


# ------------------------------------------------------------------ what to run


@dataclass(frozen=True)
class Report:
    name: str  # NN-slug for a module, the file's stem for a notebook given by path
    source: Path
    title: str
    parameters: tuple[ParamSpec, ...]
    is_module: bool = True


@dataclass(frozen=True)
class RunResult:
    name: str
    source: Path
    out: Path
    notebook: Path  # the executed notebook
    html: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    tables: tuple[Path, ...] = ()
    pdf: Path | None = None
    timings: dict[str, Any] = field(default_factory=dict)  # kernel start, imports, run cells, render, cells

    def __str__(self) -> str:
        return f"report {self.name} written to {self.out} in {self.seconds:.1f} s ({self.html.name})"


def list_reports() -> list:
    """The course's production reports (`report: true` in course.yml), in order."""
    from citykit.lessons.course import load_course

    return [m for m in load_course() if m.report]  # errors in course.yml surface here


def resolve(name_or_path: str | Path) -> Report:
    """A module by slug or folder name, or a notebook by path (a learner's own completed copy)."""
    from citykit.lessons.course import find_module
    from citykit.reports.params import module_parameters, notebook_parameters

    candidate = Path(name_or_path)
    if candidate.suffix == ".ipynb":
        if not candidate.exists():
            raise CitykitError(f"no notebook at {candidate}")
        source = candidate.resolve()
        module = next((m for m in _modules() if m.notebook.resolve() == source), None)
        if module is not None:  # a module's own notebook given by path: its declared parameters
            return Report(module.folder_name, source, module.title, tuple(module_parameters(module)))
        return Report(source.stem, source, source.stem.replace("-", " ").replace("_", " ").strip().capitalize(),
                      tuple(notebook_parameters(source)), is_module=False)  # fmt: skip
    module = find_module(str(name_or_path), _modules() or None)
    if not module.notebook.exists():
        raise CitykitError(f"module {module.folder_name} has no notebook at {module.notebook}")
    return Report(module.folder_name, module.notebook, module.title, tuple(module_parameters(module)))


_course_cache: dict[tuple, list] = {}


def _modules() -> list:
    """course.yml's modules, parsed once per version of the file (a batch resolves many times)."""
    from citykit.lessons.course import load_course

    try:
        stat = paths.course_file().stat()
        key = (str(paths.course_file()), stat.st_mtime_ns, stat.st_size, str(paths.notebooks_dir()))
        if key not in _course_cache:
            _course_cache.clear()
            _course_cache[key] = load_course()
        return _course_cache[key]
    except (CitykitError, OSError):
        return []


def find_module_notebook(name: str) -> Path:
    """`time-to-close` or `04-time-to-close` -> its notebook (see `citykit.lessons.course.find_module`)."""
    return resolve(name).source


def prepare(name_or_path: str | Path, parameters: dict[str, Any] | None = None) -> tuple[Report, dict[str, Any]]:
    """The report and its validated, typed parameters; raises before anything runs."""
    from citykit.reports.params import validate

    report = resolve(name_or_path)
    return report, validate(report.parameters, dict(parameters or {}), report=report.name)


def default_out(report: Report, values: dict[str, Any]) -> Path:
    """`reports/<report>/<parameters slug>/<as-of>/`."""
    from citykit.data import registry
    from citykit.reports.params import dataset_of, parameters_slug

    dataset = dataset_of(values, report.parameters)
    as_of = registry.get(dataset).as_of.isoformat() if dataset else dt.date.today().isoformat()
    return paths.reports_dir() / report.name / parameters_slug(values, report.parameters) / str(as_of)


# ------------------------------------------------------------------ the kernel


class ReportKernel:
    """One kernel, started with the runner's prelude, that can serve several reports in turn.

    `reuse=True` keeps the kernel between reports and resets it (user names deleted, figures
    closed, matplotlib and pandas settings restored): the kernel start and the imports are paid once per
    worker instead of once per report. A kernel that failed or timed out is replaced, never reused.
    """

    def __init__(self, env: dict[str, str] | None = None, reuse: bool = True, max_runs: int = 50) -> None:
        self.env = {**os.environ, **(env or {})}
        self.reuse, self.max_runs = reuse, max_runs
        self.km = self.kc = None
        self.runs = 0
        self.cwd: str | None = None
        self.timings: dict[str, float] = {}
        self.executed = None  # the notebook the last run executed (kept when it fails)
        self.timed_out = False  # the last run hit its timeout and the kernel was killed

    def start(self) -> "ReportKernel":
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync  # the per-thread event loop nbclient runs on too

        started = time.perf_counter()
        self.cwd = tempfile.mkdtemp(prefix="citykit-kernel-")
        self.km = AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=os.path.join(self.cwd, "kernel"))
        run_sync(self.km.start_kernel)(cwd=self.cwd, env=self.env)
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=60)
        ready = time.perf_counter()
        reply = self._execute_quietly(PRELUDE, timeout=120)
        if reply["content"]["status"] != "ok":
            raise WorkFailed(f"the report kernel could not start: {reply['content'].get('evalue')}")
        self.timings = {"kernel start": ready - started, "imports": time.perf_counter() - ready}
        self.runs = 0
        return self

    def _execute_quietly(self, code: str, timeout: float) -> dict:
        from jupyter_core.utils import run_sync

        return run_sync(self.kc.execute_interactive)(code, timeout=timeout, output_hook=lambda msg: None)

    @property
    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        return self.km is not None and bool(run_sync(self.km.is_alive)())

    def ready_for_run(self) -> "ReportKernel":
        """A clean kernel for the next report: the same one reset, or a new one."""
        if self.alive and self.reuse and 0 < self.runs < self.max_runs:
            reply = self._execute_quietly(RESET, timeout=60)
            if reply["content"]["status"] == "ok":
                self.timings = {"kernel start": 0.0, "imports": 0.0}
                self.runs += 1
                return self
        if self.km is not None and (self.runs > 0 or not self.alive):
            self.shutdown()
        if self.km is None:
            self.start()
        self.runs += 1
        return self

    def kill(self, timed_out: bool = False) -> None:
        """Kill the kernel process at once (a hung cell); safe from another thread."""
        self.timed_out = self.timed_out or timed_out
        try:
            pid = self.km.provisioner.pid if self.km and self.km.provisioner else None
            if pid:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, AttributeError):
            pass

    def shutdown(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            from jupyter_core.utils import run_sync

            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:
                self.kill()
        if self.cwd:
            shutil.rmtree(self.cwd, ignore_errors=True)
        self.km = self.kc = self.cwd = None


def _engine():
    """A papermill engine that executes on a ReportKernel's running kernel (registered once)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class ReportKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None,
                                     report_kernel=None, **kwargs):  # fmt: skip
            kwargs.pop("input_path", None)
            kwargs.pop("timeout", None)
            client = PapermillNotebookClient(
                nb_man, km=report_kernel.km, kernel_name=kernel_name, timeout=execution_timeout,
                startup_timeout=start_timeout, log_output=log_output, **kwargs,
            )  # fmt: skip
            client.kc = report_kernel.kc
            report_kernel.executed = nb_man.nb  # the executed notebook, even when a cell fails
            return client.execute(cleanup_kc=False)

    if "citykit" not in papermill_engines._engines:
        papermill_engines.register("citykit", ReportKernelEngine)
    return "citykit"


# ------------------------------------------------------------------ running


def run_report(
    name_or_path: str | Path,
    parameters: dict[str, Any] | None = None,
    out: Path | None = None,
    *,
    pdf: bool = False,
    timeout: float | None = None,
    kernel: ReportKernel | None = None,
) -> RunResult:
    """Run a module (or a notebook by path) as a report; see the module docstring.

    timeout: seconds for the whole run; a kernel still busy then is killed (`WorkFailed`).
    kernel: a ReportKernel to run in (a batch worker's); by default a fresh one, shut down after.
    """
    started_at = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    report, values = prepare(name_or_path, parameters)
    if pdf:
        from citykit.reports.html import find_chromium

        if find_chromium() is None:
            raise CitykitError("--pdf needs headless Chromium (apt-get install chromium); it is not installed")
    out = Path(out) if out is not None else default_out(report, values)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))  # same filesystem
    own_kernel = kernel is None
    kernel = kernel or ReportKernel(reuse=False)
    manifest = _manifest(report, values, started_at)
    timings: dict[str, Any] = {}
    try:
        executed = _execute(report, values, kernel, timeout, staging, manifest, started, out)
        timings.update(kernel.timings)
        timings["run cells"] = sum(_cell_seconds(executed).values())
        timings["cells"] = _cell_seconds(executed)
        rendered = time.perf_counter()
        tables, pdf_path = _write_outputs(report, values, executed, staging, manifest, pdf)
        timings["render"] = time.perf_counter() - rendered
        manifest.update(status="succeeded", seconds=round(time.perf_counter() - started, 3))
        manifest["outputs"] = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file()) + [MANIFEST]
        (staging / MANIFEST).write_text(_json(manifest), encoding="utf-8")
        _move_into_place(staging, out)
        shutil.rmtree(out.parent / f"{out.name}.failed", ignore_errors=True)  # superseded by this good run
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if own_kernel:
            kernel.shutdown()
    name = report.name
    return RunResult(
        name, report.source, out, out / f"{name}.ipynb", out / f"{name}.html", values,
        time.perf_counter() - started, tuple(out / "tables" / p.name for p in tables if p.suffix == ".csv"),
        out / pdf_path.name if pdf_path else None, timings,
    )  # fmt: skip


def _execute(report, values, kernel, timeout, staging, manifest, started, out):
    """Execute the contract's notebook on the kernel; on failure keep it aside and raise WorkFailed.

    papermill runs without an output path (it would rewrite the whole notebook twice per cell):
    the engine hands the executed notebook back on the kernel, and it is written once here.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from citykit.reports.contract import ProductionContract

    dataset = manifest["dataset"] or {}
    contract = ProductionContract(available_tables=dataset.get("tables"), dataset=dataset.get("name", ""))
    nb, resources = contract.preprocess(nbformat.read(report.source, as_version=4), {})
    manifest["left_out"] = resources["citykit"]["left_out"]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    kernel.ready_for_run()
    kernel.executed, kernel.timed_out = None, False
    timer = threading.Timer(timeout, kernel.kill, kwargs={"timed_out": True}) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    executed_path = staging / f"{report.name}.ipynb"
    try:
        executed = papermill.execute_notebook(
            nb, None, parameters=values, kernel_name=KERNEL_NAME, progress_bar=False,
            report_mode=True, engine_name=_engine(), report_kernel=kernel, execution_timeout=timeout,
        )  # fmt: skip
        nbformat.write(executed, executed_path)
        return executed
    except PapermillExecutionError as error:
        failure = _failure_message(report.name, kernel.executed, error)
    except Exception as error:  # a killed or dead kernel, a cell timeout
        timed_out = kernel.timed_out or isinstance(error, TimeoutError)
        reason = f"timed out after {timeout:g} s (kernel killed)" if timed_out else f"{type(error).__name__}: {error}"
        failure = f"report {report.name} failed: {_running_cell(kernel.executed)}{reason}"
    finally:
        if timer:
            timer.cancel()
    if kernel.executed is not None:
        nbformat.write(kernel.executed, executed_path)
    kernel.shutdown()  # never reuse a kernel that failed
    kept = _keep_failed(staging, out, executed_path, manifest, failure, started)
    raise WorkFailed(f"{failure}; executed notebook kept in {kept}")


def _failure_message(name: str, executed, error: Exception) -> str:
    """Name the failing cell by its index in the source notebook, its first line, and the error."""
    from citykit.reports.contract import source_index

    ename, evalue = getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error))
    where = "a cell"
    for cell in executed.cells if executed is not None else []:
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            index = source_index(cell)
            first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
            where = f"cell {index} ({first[:60]})" if index is not None else "the injected parameters cell"
            break
    return f"report {name} failed: {where} raised {ename}: {evalue}"


def _running_cell(executed) -> str:
    """'cell N ' for the cell papermill marked running when the kernel died, if known."""
    from citykit.reports.contract import source_index

    for cell in executed.cells if executed is not None else []:
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            index = source_index(cell)
            return f"cell {index} " if index is not None else ""
    return ""


def _keep_failed(staging: Path, out: Path, executed: Path, manifest: dict, failure: str, started: float) -> Path:
    failed = out.parent / f"{out.name}.failed"
    shutil.rmtree(failed, ignore_errors=True)
    failed.mkdir(parents=True)
    if executed.exists():
        shutil.copy2(executed, failed / executed.name)
    manifest.update(status="failed", error=_redact(failure), seconds=round(time.perf_counter() - started, 3))
    (failed / MANIFEST).write_text(_json(manifest), encoding="utf-8")
    return failed


def _cell_seconds(nb) -> dict[int, float]:
    from citykit.reports.contract import source_index

    seconds = {}
    for position, cell in enumerate(nb.cells):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if duration is not None:
            index = source_index(cell)
            seconds[index if index is not None else -1 - position] = float(duration)
    return seconds


def _write_outputs(report, values, executed, staging: Path, manifest: dict, pdf: bool):
    from citykit.reports.html import collect_tables, header_cell_text, print_pdf, render_html, write_tables

    generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = header_cell_text(report.title, values, manifest.get("dataset"), generated)
    html = staging / f"{report.name}.html"
    html.write_text(render_html(executed, report.title, header), encoding="utf-8")
    tables = write_tables(collect_tables(executed), staging / "tables", staging / f"{report.name}.xlsx")
    pdf_path = None
    if pdf:
        pdf_path = staging / f"{report.name}.pdf"
        print_pdf(html, pdf_path)
    return tables, pdf_path


def _move_into_place(staging: Path, out: Path) -> None:
    """Swap the finished report into `out`, entry by entry; stale outputs of the last run go."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    previous = out / MANIFEST
    stale: list[str] = []
    if previous.exists():
        try:
            stale = json.loads(previous.read_text(encoding="utf-8")).get("outputs", [])
        except ValueError:
            stale = []
    new = {str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file()} | {MANIFEST}
    for entry in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST):  # the manifest last
        target = out / entry.name
        if entry.is_dir():
            old = None
            if target.exists():
                old = out.parent / f".{out.name}.{entry.name}.old-{os.getpid()}"
                os.replace(target, old)
            os.replace(entry, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, target)
    for relative in stale:
        if relative not in new and "/" not in relative:
            (out / relative).unlink(missing_ok=True)


# ------------------------------------------------------------------ the manifest


def _manifest(report: Report, values: dict[str, Any], started_at: dt.datetime) -> dict[str, Any]:
    from citykit.reports.params import dataset_of

    dataset = dataset_of(values, report.parameters)
    return {
        "report": report.name,
        "title": report.title,
        "source": str(report.source),
        "source_sha256": hashlib.sha256(report.source.read_bytes()).hexdigest(),
        "parameters": {k: _redact(v) for k, v in values.items()},
        "dataset": _dataset(dataset) if dataset else None,
        "versions": _versions(),
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": None,
        "status": "running",
    }


def _dataset(name: str) -> dict[str, Any]:
    """The dataset's name, as-of date, tables and fingerprint; a database's location is never included."""
    import json

    from citykit.data import registry

    ds = registry.get(name)
    info: dict[str, Any] = {"name": ds.name, "title": ds.title, "kind": ds.kind, "as_of": ds.as_of.isoformat(),
                            "synthetic": ds.synthetic, "tables": list(ds.tables), "fingerprint": None}  # fmt: skip
    if ds.kind == "parquet":
        build = ds.folder / "build.json"
        if build.exists():
            info["fingerprint"] = json.loads(build.read_text(encoding="utf-8")).get("fingerprint")
        if not info["fingerprint"]:
            info["fingerprint"] = _hash_files(sorted(ds.folder.glob("*.parquet")))
    return info


def _hash_files(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in VERSIONED:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def _redact(value: Any) -> Any:
    """Passwords in URL-like text become `***` (a manifest never holds a secret)."""
    return SECRET_URL.sub(r"\1***@", value) if isinstance(value, str) else value


def _json(manifest: dict[str, Any]) -> str:
    from citykit.reports.html import manifest_json

    return manifest_json(manifest)
