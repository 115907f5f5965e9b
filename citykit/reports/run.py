"""Run a module as a production report: validated parameters, papermill, accessible outputs, atomically.

    run_report("time-to-close", {"neighborhood": "Harbor Point", "period": "2025-Q4"})

1. The parameters are validated before any kernel starts (`citykit.reports.params`): unknown names, wrong
   types and values not in the dataset raise `CitykitError` and nothing is written.
2. The production-run contract removes lesson-only cells (`citykit.reports.contract`); papermill runs
   the rest in a `ReportKernel` (`citykit.reports.kernel`: imports warmed, figure alt text and
   table recording installed).
3. Outputs go to `--out`, by default the archive `reports/<report>/<parameters>/<as-of>/`:
   `NAME.ipynb` (executed), `NAME.html` (no code), `tables/NN-name.csv` and `NAME.xlsx` (every
   DataFrame the report displayed), `manifest.json` (parameters, dataset and fingerprint, the
   period as run with its first and last day, "partial (to DATE)" when it runs past the as-of date
   and the days it is compared with, package versions, start, duration, status; never a secret),
   and `NAME.pdf` with `pdf=True`. The page's header states the same period.
   Everything is built in a staging folder beside `out` and moved in only when the whole run
   succeeded; a failed run leaves the previous report intact, keeps its executed notebook and
   manifest in `<out>.failed/`, and raises `WorkFailed` naming the cell and the error.

For notebook authors, tables: every DataFrame a report *displays* becomes a table (CSV and a sheet
of the workbook), named after the heading above it; to choose the name, display it with
`citykit.publish_table(df, "backlog by age")`. Figures: alt text is made from the figure's title
and axis labels; to write it yourself, call `citykit.describe_figure(fig, "Bar chart of ...")`
before showing it, or set `alt` in the cell's metadata (`citykit.reports.figures`).

`citykit.reports.contract` (an nbconvert preprocessor) is imported where a run needs it, so that
`citykit report list` and `citykit report params` do not pay for importing nbconvert.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.data import registry
from citykit.data.build_info import check_current
from citykit.errors import CitykitError, WorkFailed
from citykit.lessons.course import find_module, load_course
from citykit.reports.html import (
    collect_tables,
    find_chromium,
    header_cell_text,
    manifest_json,
    print_pdf,
    render_html,
    write_tables,
)
from citykit.reports.kernel import ReportKernel
from citykit.reports.params import (
    ParamSpec,
    dataset_of,
    module_parameters,
    notebook_parameters,
    parameters_slug,
    period_info,
    validate,
)

MANIFEST = "manifest.json"
VERSIONED = ("citykit", "papermill", "nbconvert", "nbformat", "ipykernel", "pandas", "duckdb", "pyarrow", "matplotlib")
SECRET_URL = re.compile(r"(\w+://)([^/@\s]+)@")  # scheme://user:password@host


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
    return [m for m in load_course() if m.report]  # errors in course.yml surface here


def resolve(name_or_path: str | Path) -> Report:
    """A module by slug or folder name, or a notebook by path (a learner's own completed copy)."""
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
    report = resolve(name_or_path)
    values = validate(report.parameters, dict(parameters or {}), report=report.name)
    dataset = dataset_of(values, report.parameters)
    if dataset:
        check_current(registry.get(dataset))  # a bundled city built under other SLA targets would mislead
    return report, values


def default_out(report: Report, values: dict[str, Any]) -> Path:
    """`reports/<report>/<parameters slug>/<as-of>/`."""
    dataset = dataset_of(values, report.parameters)
    as_of = registry.get(dataset).as_of.isoformat() if dataset else dt.date.today().isoformat()
    return paths.reports_dir() / report.name / parameters_slug(values, report.parameters) / str(as_of)


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
    started_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    report, values = prepare(name_or_path, parameters)
    if pdf and find_chromium() is None:
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
        manifest["outputs"] = [
            *sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file()),
            MANIFEST,
        ]
        (staging / MANIFEST).write_text(manifest_json(manifest), encoding="utf-8")
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

    The engine hands the executed notebook back on the kernel, and it is written once here.
    """
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    from citykit.reports.contract import ProductionContract  # nbconvert: not on the CLI's start-up path

    dataset = manifest["dataset"] or {}
    contract = ProductionContract(available_tables=dataset.get("tables"), dataset=dataset.get("name", ""))
    nb, resources = contract.preprocess(nbformat.read(report.source, as_version=4), {})
    manifest["left_out"] = resources["citykit"]["left_out"]
    kernel.ready_for_run()
    executed_path = staging / f"{report.name}.ipynb"
    try:
        executed = kernel.execute(nb, values, timeout)
        nbformat.write(executed, executed_path)
        return executed
    except PapermillExecutionError as error:
        failure = _failure_message(report.name, kernel.executed, error)
    except Exception as error:  # a killed or dead kernel, a cell timeout
        timed_out = kernel.timed_out or isinstance(error, TimeoutError)
        reason = f"timed out after {timeout:g} s (kernel killed)" if timed_out else f"{type(error).__name__}: {error}"
        failure = f"report {report.name} failed: {_running_cell(kernel.executed)}{reason}"
    if kernel.executed is not None:
        nbformat.write(kernel.executed, executed_path)
    kernel.shutdown()  # never reuse a kernel that failed
    kept = _keep_failed(staging, out, executed_path, manifest, failure, started)
    raise WorkFailed(f"{failure}; executed notebook kept in {kept}")


def _failure_message(name: str, executed, error: Exception) -> str:
    """Name the failing cell by its index in the source notebook, its first line, and the error."""
    from citykit.reports.contract import source_index  # nbconvert: not on the CLI's start-up path

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
    from citykit.reports.contract import source_index  # nbconvert: not on the CLI's start-up path

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
    (failed / MANIFEST).write_text(manifest_json(manifest), encoding="utf-8")
    return failed


def _cell_seconds(nb) -> dict[int, float]:
    from citykit.reports.contract import source_index  # nbconvert: not on the CLI's start-up path

    seconds = {}
    for position, cell in enumerate(nb.cells):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if duration is not None:
            index = source_index(cell)
            seconds[index if index is not None else -1 - position] = float(duration)
    return seconds


def _write_outputs(report, values, executed, staging: Path, manifest: dict, pdf: bool):
    generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = header_cell_text(report.title, values, manifest.get("dataset"), generated, manifest.get("period"))
    html = staging / f"{report.name}.html"
    people = report.is_module and any(m.report and m.folder_name == report.name for m in _modules())  # production
    html.write_text(render_html(executed, report.title, header, people=people, workbook=f"{report.name}.xlsx"),
                    encoding="utf-8")  # fmt: skip
    tables = write_tables(collect_tables(executed, people=people), staging / "tables", staging / f"{report.name}.xlsx")
    pdf_path = None
    if pdf:
        pdf_path = staging / f"{report.name}.pdf"
        print_pdf(html, pdf_path)
    return tables, pdf_path


def _move_into_place(staging: Path, out: Path) -> None:
    """Swap the finished report into `out`, entry by entry; stale outputs of the last run go."""
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
    dataset = dataset_of(values, report.parameters)
    period = next((values.get(s.name) for s in report.parameters if s.type == "period"), None)
    return {
        "report": report.name,
        "title": report.title,
        "source": str(report.source),
        "source_sha256": hashlib.sha256(report.source.read_bytes()).hexdigest(),
        "parameters": {k: _redact(v) for k, v in values.items()},
        "dataset": dataset_info(dataset) if dataset else None,
        # the period as run: its days, "partial (to DATE)" when it runs past the as-of date, and what it is compared with
        "period": period_info(period, dataset) if period is not None else None,
        "versions": _versions(),
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": None,
        "status": "running",
    }


def dataset_info(name: str) -> dict[str, Any]:
    """The dataset's name, as-of date, tables and fingerprint; a database's location is never included."""
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
    found = {"python": platform.python_version()}
    for package in VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def _redact(value: Any) -> Any:
    """Passwords in URL-like text become `***` (a manifest never holds a secret)."""
    return SECRET_URL.sub(r"\1***@", value) if isinstance(value, str) else value
