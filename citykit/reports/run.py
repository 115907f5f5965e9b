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
   Everything is built in a staging folder inside `out` and moved in only when the whole run
   succeeded; a failed run leaves the previous report intact, keeps its executed notebook and
   manifest in `<out>.failed/`, and raises `WorkFailed` naming the cell and the error.
4. Outputs never destroy (checked before any kernel starts, `check_out`): a report writes only into
   a folder it owns (the marker file `.citykit-report`), a new one or an empty one; it refuses a
   folder holding other files, a file, a file system's root, the home folder, anything inside the
   data home or a dataset's folder, and anything inside the course other than its archive
   `reports/`. A run replaces only the files its last run listed in the manifest: a file the user
   put beside them (`tables/budget-2026.csv`) stays.
5. No secret is shown: a password in a URL-like parameter (`postgresql://alice:...@host/db`) is
   redacted (`citykit.errors.redact`) in the page, the executed notebook, the tables, the manifest,
   and every message; a folder name shows only the redacted form.

For notebook authors, tables: every DataFrame a report *displays* becomes a table (CSV and a sheet
of the workbook), named after the heading above it; to choose the name, and the kinds, labels and
reasons for missing values, display it with `citykit.publish_table(df, "backlog by age", ...)`.
In a production report (`report: true`) every table is shown for people (`citykit.reports.tables`).
Figures: alt text is the figure's title and what its data show (`citykit.reports.charts.finding`);
to put your own sentence first, call `citykit.describe_figure(fig, "Bar chart of ...")` before
showing it, or set `alt` in the cell's metadata (`citykit.reports.figures`).

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
from citykit.data.build_info import BUILD_FILE, check_current, data_fingerprint
from citykit.errors import CitykitError, WorkFailed, quote, redact, secrets_in
from citykit.lessons.course import find_module, load_course
from citykit.reports import ledger as release_ledger
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
    named_values,
    notebook_parameters,
    parameters_slug,
    period_info,
    read_notebook,
    validate,
)

MANIFEST = "manifest.json"
VERSIONED = ("citykit", "papermill", "nbconvert", "nbformat", "ipykernel", "pandas", "duckdb", "pyarrow", "matplotlib")
MARKER = ".citykit-report"  # in every folder a report or a failed run wrote: only such a folder is written into again
STAGING = ".citykit-staging-"  # <out>/.citykit-staging-<pid>-<random>/: a run being built
BINARY_KEYS = ("image/", "application/pdf")  # output data never searched for secrets (base64)


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
        try:
            found = candidate.is_file()
        except OSError as error:  # a name longer than the file system allows
            raise CitykitError(f"no notebook at {quote(str(candidate))} ({error.strerror})") from None
        if not found:
            raise CitykitError(f"no notebook at {quote(str(candidate))}")
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
    return report_folder(paths.reports_dir() / report.name, values, report.parameters, as_of)


# ------------------------------------------------------------------ where outputs may go


def report_folder(root: Path, values: dict[str, Any], specs, as_of: Any) -> Path:
    """`<root>/<parameters>/<as-of>/`: one run's folder in the archive or a batch's `--out`.

    Refuses a root that is no place for reports (`check_batch_root`), and a folder that already
    holds the report of other parameter values (two values whose names' hashes collide): two
    parameter sets never share a folder."""
    root = Path(root)
    _check_batch_root_once(root)
    folder = root / parameters_slug(values, specs) / str(as_of)
    written = _marker(folder).get("values")
    if written and written != _values_key(values, specs):
        raise CitykitError(
            f"the folder {quote(str(folder))} holds the report of other parameter values under the same name; "
            "give --out to put this run elsewhere"
        )
    return folder


def check_out(out: Path) -> None:
    """Refuse, before anything runs, an output folder a report must not write into (see the module
    docstring, point 4): the message says which rule and what to do instead."""
    out = Path(out)
    try:
        _check_out(out)
    except OSError as error:  # a name too long, a folder that cannot be read
        raise CitykitError(f"the output folder {quote(str(out))} cannot be used: {_reason(error)}") from None


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _check_out(out: Path) -> None:
    _check_place(out, "the output folder")
    shown = quote(str(out))
    if out.is_symlink() and not out.exists():
        raise CitykitError(f"the output folder {shown} is a broken link; give a real folder")
    if out.exists():
        if not out.is_dir():
            raise CitykitError(f"the output folder {shown} is a file; give a new or empty folder")
        if not _owned(out) and any(out.iterdir()):
            raise CitykitError(
                f"the output folder {shown} holds files that no citykit report wrote; give a new or empty "
                "folder (a report replaces only what it wrote itself)"
            )
    failed = _failed_folder(out)
    if (failed.exists() or failed.is_symlink()) and not (failed.is_dir() and (failed / MARKER).is_file()):
        raise CitykitError(
            f"{quote(str(failed))} exists and no citykit report wrote it (a failed run would replace it); "
            "move it or give another --out"
        )


_roots_checked: dict[str, tuple] = {}


def _check_batch_root_once(root: Path) -> None:
    """`check_batch_root`, once per state of the folder (a batch names one folder per value)."""
    try:
        stat = root.stat()
        state: tuple = (stat.st_mtime_ns, stat.st_ino)
    except FileNotFoundError:
        state = ("missing",)
    except (OSError, ValueError):
        state = ()
    if _roots_checked.get(str(root)) != state or not state:
        check_batch_root(root)
        _roots_checked[str(root)] = state


def check_batch_root(root: Path) -> None:
    """A batch's folder: a place for reports (`check_out`'s rules), new, empty, in the archive, or
    holding only what batches wrote (index.html and marked report folders)."""
    root = Path(root)
    try:
        _check_batch_root(root)
    except OSError as error:
        raise CitykitError(f"the batch folder {quote(str(root))} cannot be used: {_reason(error)}") from None


def _check_batch_root(root: Path) -> None:
    _check_place(root, "the batch folder")
    if not root.exists() and not root.is_symlink():
        return
    shown = quote(str(root))
    if not root.is_dir():
        raise CitykitError(f"the batch folder {shown} is a file; give a new or empty folder")
    if _inside(root.resolve(), _archive()) or (root / MARKER).is_file():
        return
    for entry in root.iterdir():
        if entry.name in ("index.html", MARKER) or entry.name.startswith(".citykit-"):
            continue
        if (
            entry.is_dir()
            and not entry.is_symlink()
            and all(sub.is_dir() and not sub.is_symlink() and (sub / MARKER).is_file() for sub in entry.iterdir())
        ):
            continue  # <parameters>/<as-of>/ folders that reports wrote
        raise CitykitError(
            f"the batch folder {shown} holds {quote(entry.name)}, which no citykit report wrote; "
            "give a new or empty folder"
        )


def _check_place(path: Path, what: str) -> None:
    """No report goes into a file system's root, the home folder, the data, or the course outside
    `reports/` (symbolic links followed)."""
    shown = quote(str(path))
    try:
        if "\x00" in str(path):
            raise ValueError("a NUL character")
        real = path.resolve()
    except (OSError, ValueError, RuntimeError) as error:
        reason = _reason(error) if isinstance(error, OSError) else str(error)[:80]
        raise CitykitError(f"{what} {shown} is not a usable path ({reason})") from None
    if real.parent == real:
        raise CitykitError(f"{what} {shown} is the root of a file system; give a folder of its own")
    with contextlib.suppress(RuntimeError, KeyError):
        if real == Path.home().resolve():
            raise CitykitError(f"{what} {shown} is your home folder; give a folder of its own inside it")
    for place, name in _protected():
        if _inside(real, place) or real == place:
            raise CitykitError(f"{what} {shown} is inside {name} ({place}); give a folder outside it")
    course = _course()
    if course is not None and (real == course or _inside(real, course)) and not _inside(real, _archive()):
        raise CitykitError(
            f"{what} {shown} is inside the course folder {course}; give a folder in its archive reports/ "
            "or outside the course"
        )


def _protected() -> list[tuple[Path, str]]:
    """Each dataset's folder, the data home, and the installed kit (the most precise name first)."""
    places = []
    with contextlib.suppress(CitykitError, OSError):
        for ds in registry.all_datasets().values():
            if ds.kind == "parquet":
                places.append((ds.folder.resolve(), f"dataset {ds.name!r}'s folder"))
    with contextlib.suppress(CitykitError, OSError):
        places.append((paths.citykit_home().resolve(), "the data home (CITYKIT_HOME)"))
    return [*places, (paths.PACKAGE_DIR.resolve(), "the citykit package")]


def _course() -> Path | None:
    root = paths.find_course()
    return root.resolve() if root is not None else None


def _archive() -> Path:
    course = _course()
    return (course / "reports").resolve() if course is not None else Path("/nonexistent-archive")


def _inside(path: Path, folder: Path) -> bool:
    return folder in path.parents


def _failed_folder(out: Path) -> Path:
    return out.parent / f"{out.name}.failed"


def _marker(folder: Path) -> dict[str, Any]:
    try:
        found = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def _owned(folder: Path) -> bool:
    """A folder a report wrote: its marker, or (written before markers) a citykit manifest."""
    if (folder / MARKER).is_file():
        return True
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"report", "outputs", "status", "versions"} <= set(manifest)


def _values_key(values: dict[str, Any], specs) -> str:
    """What a folder's name stands for: a hash of the exact values it names (never the values)."""
    named = {k: str(v) for k, v in named_values(values, specs).items()}
    return hashlib.sha256(json.dumps(named, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()


def _claim(out: Path, report: Report, values: dict[str, Any]) -> tuple[Path | None, bool]:
    """Create `out` (and its parents) and mark it as a report's: the first folder this created, and
    whether it wrote the marker. A marked folder keeps its marker as it is until the run succeeds."""
    first_new = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    marked = False
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not (out / MARKER).is_file():
            _mark(out, report, values)
            marked = True
    except OSError as error:
        raise CitykitError(f"cannot write the folder {quote(str(out))}: {_reason(error)}") from None
    return first_new, marked


def _mark(out: Path, report: Report, values: dict[str, Any]) -> None:
    """The marker: who wrote the folder, and a hash of the values its name stands for (never the values)."""
    marker = {"written_by": "citykit report", "kind": "report", "report": report.name,
              "values": _values_key(values, report.parameters)}  # fmt: skip
    (out / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")


def _unclaim(out: Path, claimed: tuple[Path | None, bool]) -> None:
    """Undo `_claim` after a run that wrote nothing: its marker and the folders it created go."""
    first_new, marked = claimed
    if marked:
        (out / MARKER).unlink(missing_ok=True)
    if first_new is None:
        return
    for folder in [out, *out.parents]:
        with contextlib.suppress(OSError):
            folder.rmdir()
        if folder == first_new:
            break


_active_staging: set[str] = set()


def clean_stale_staging(folder: Path, stopping: bool = False) -> None:
    """Remove staging folders that a run killed before it finished left in `folder`; `stopping`: this
    process is being stopped, so the runs it has under way are stale too."""
    for stale in Path(folder).glob(f"{STAGING}*"):
        pid = stale.name[len(STAGING) :].split("-")[0]
        active = str(stale) in _active_staging and not stopping
        if active or (pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid))):
            continue
        shutil.rmtree(stale, ignore_errors=True)


def remove_unfinished(folder: Path, root: Path | None = None, stopping: bool = False) -> bool:
    """Remove `folder` when a stopped run left nothing in it but our marker (its stale staging folders
    removed first, `clean_stale_staging`), then its parents left empty, up to `root` (kept). Whether
    it was removed."""
    folder = Path(folder)
    clean_stale_staging(folder, stopping)
    removed = False
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        names = set()
    if names == {MARKER} and not folder.is_symlink() and (folder / MARKER).is_file():
        try:
            (folder / MARKER).unlink()
            folder.rmdir()  # fails, and keeps the folder, if anything appeared meanwhile
            removed = True
        except OSError:
            return False
    if root is not None and not folder.exists():
        remove_empty_parents(folder, root)
    return removed


def remove_empty_parents(folder: Path, root: Path) -> None:
    """Remove `folder`'s parents while they are empty, up to `root` (kept)."""
    root = Path(root)
    for parent in Path(folder).parents:
        if parent == root or root not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:
            break


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------ running


def run_report(
    name_or_path: str | Path,
    parameters: dict[str, Any] | None = None,
    out: Path | None = None,
    *,
    pdf: bool = False,
    timeout: float | None = None,
    kernel: ReportKernel | None = None,
    ledger: Path | None = None,
    batch: str = "",
) -> RunResult:
    """Run a module (or a notebook by path) as a report; see the module docstring.

    timeout: seconds for the whole run; a kernel still busy then is killed (`WorkFailed`).
    kernel: a ReportKernel to run in (a batch worker's); by default a fresh one, shut down after.
    ledger: the release ledger's folder (a batch's); by default `citykit.reports.ledger.ledger_folder(out)`.
    Every table of people the run publishes is audited with the ledger's earlier releases and recorded
    there (`citykit.reports.ledger`); the manifest names the ledger state, the page carries the risk line.
    """
    started_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    report, values = prepare(name_or_path, parameters)
    if timeout is not None and not timeout > 0:
        raise CitykitError(f"the timeout must be a number of seconds above 0, not {quote(timeout)}")
    if pdf and find_chromium() is None:
        raise CitykitError("--pdf needs headless Chromium (apt-get install chromium); it is not installed")
    out = Path(out) if out is not None else default_out(report, values)
    check_out(out)  # before anything is written or any kernel starts
    manifest = _manifest(report, values, started_at)
    hide = _hider(values)
    claimed = _claim(out, report, values)
    release = release_ledger.begin(  # the release ledger this run's tables of people are audited with
        ledger or release_ledger.ledger_folder(out), (manifest.get("dataset") or {}).get("name"), report.name,
        manifest["parameters"], batch,
    )  # fmt: skip
    clean_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=out))  # same filesystem
    _active_staging.add(str(staging))
    own_kernel = kernel is None
    timings: dict[str, Any] = {}
    succeeded = False
    try:
        kernel = kernel or ReportKernel(reuse=False)
        executed = _execute(report, values, kernel, timeout, staging, manifest, started, out, hide, release)
        manifest["ledger"] = release_ledger.finish(release, succeeded=True)  # before the page: its risk line
        timings.update(kernel.timings)
        timings["run cells"] = sum(_cell_seconds(executed).values())
        timings["cells"] = _cell_seconds(executed)
        rendered = time.perf_counter()
        tables, pdf_path = _write_outputs(report, executed, staging, manifest, pdf)
        timings["render"] = time.perf_counter() - rendered
        manifest.update(status="succeeded", seconds=round(time.perf_counter() - started, 3))
        manifest["outputs"] = [
            *sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()),
            MANIFEST,
        ]
        (staging / MANIFEST).write_text(manifest_json(manifest), encoding="utf-8")
        _move_into_place(staging, out)
        _mark(out, report, values)
        succeeded = True
        if (_failed_folder(out) / MARKER).is_file():
            shutil.rmtree(_failed_folder(out), ignore_errors=True)  # superseded by this good run
    finally:
        _active_staging.discard(str(staging))
        shutil.rmtree(staging, ignore_errors=True)
        if not succeeded:
            release_ledger.finish(release, succeeded=False)  # what the run recorded leaves the ledger
            _unclaim(out, claimed)
        if own_kernel and kernel is not None:
            kernel.shutdown()
    name = report.name
    return RunResult(
        name, report.source, out, out / f"{name}.ipynb", out / f"{name}.html", values,
        time.perf_counter() - started, tuple(out / "tables" / p.name for p in tables if p.suffix == ".csv"),
        out / pdf_path.name if pdf_path else None, timings,
    )  # fmt: skip


def _execute(report, values, kernel, timeout, staging, manifest, started, out, hide, release=None):
    """Execute the contract's notebook on the kernel; on failure keep it aside and raise WorkFailed.

    The engine hands the executed notebook back on the kernel, and it is written once here, with
    every secret the parameters carry hidden (`hide`).
    """
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    from citykit.reports.contract import ProductionContract  # nbconvert: not on the CLI's start-up path

    dataset = manifest["dataset"] or {}
    contract = ProductionContract(available_tables=dataset.get("tables"), dataset=dataset.get("name", ""))
    nb, resources = contract.preprocess(read_notebook(report.source), {})
    manifest["left_out"] = resources["citykit"]["left_out"]
    kernel.ready_for_run()
    reply = kernel._execute_quietly(release_ledger.activation_code(release), timeout=60)  # this run's ledger, or none
    if reply["content"]["status"] != "ok":
        raise WorkFailed(
            f"the release ledger could not be switched on in the report kernel: {reply['content'].get('evalue')}"
        )
    executed_path = staging / f"{report.name}.ipynb"
    try:
        executed = _scrub(kernel.execute(nb, values, timeout, source=str(report.source)), hide)
        nbformat.write(executed, executed_path)
        return executed
    except PapermillExecutionError as error:
        failure = _failure_message(report.name, kernel.executed, error)
    except Exception as error:  # a killed or dead kernel, a cell timeout
        timed_out = kernel.timed_out or isinstance(error, TimeoutError)
        reason = f"timed out after {timeout:g} s (kernel killed)" if timed_out else f"{type(error).__name__}: {error}"
        failure = f"report {report.name} failed: {_running_cell(kernel.executed)}{reason}"
    failure = hide(failure)
    if kernel.executed is not None:
        nbformat.write(_scrub(kernel.executed, hide), executed_path)
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
    failed = _failed_folder(out)
    if (failed / MARKER).is_file():  # a folder citykit did not write was refused before the run
        shutil.rmtree(failed, ignore_errors=True)
    failed.mkdir(parents=True, exist_ok=True)
    (failed / MARKER).write_text(
        json.dumps({"written_by": "citykit report", "kind": "failed"}) + "\n", encoding="utf-8"
    )
    if executed.exists():
        shutil.copy2(executed, failed / executed.name)
    manifest.update(status="failed", error=redact(failure), seconds=round(time.perf_counter() - started, 3))
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


def _write_outputs(report, executed, staging: Path, manifest: dict, pdf: bool):
    generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = header_cell_text(
        report.title, manifest["parameters"], manifest.get("dataset"), generated, manifest.get("period")
    )
    if (manifest.get("ledger") or {}).get("risk"):  # the manifest keeps the ledger's words; the page says it plainly
        risk = re.sub(
            r"audited with (\d+) earlier (releases?) of (\S+) in the release ledger",
            lambda m: f"checked against {m[1]} {'page' if m[2] == 'release' else 'pages'} of {m[3]} published before",
            manifest["ledger"]["risk"],
        )
        header += "  \n" + risk.replace("Disclosure risk:", "**Disclosure risk:**", 1)
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
    """Move the finished report into `out`, file by file (the manifest last); the files the last
    run listed in its manifest and this one did not write go. Nothing else in `out` is touched."""
    stale = set(_listed_outputs(out))
    new = sorted((p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()),
                 key=lambda name: name == MANIFEST)  # fmt: skip
    for relative in new:
        target = out / relative
        _no_link_between(out, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir() and not target.is_symlink():
            raise CitykitError(f"{quote(str(target))} is a folder where the report writes a file; move it away")
        os.replace(staging / relative, target)
    for relative in sorted(stale - set(new)):
        target = out / relative
        _no_link_between(out, target)
        target.unlink(missing_ok=True)
        for folder in target.parents:
            if folder == out:
                break
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: a folder holding the user's files stays


def _listed_outputs(out: Path) -> list[str]:
    """The files the last run into `out` wrote, from its manifest (paths inside `out` only)."""
    try:
        listed = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("outputs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [
        name for name in listed if isinstance(name, str) and name and name != MARKER
        and not Path(name).is_absolute() and ".." not in Path(name).parts and "\\" not in name
    ]  # fmt: skip


def _no_link_between(out: Path, target: Path) -> None:
    """A report writes through no symbolic link a user put inside `out` (it could lead anywhere)."""
    for folder in target.parents:
        if folder == out:
            return
        if folder.is_symlink():
            raise CitykitError(f"{quote(str(folder))} is a link; a report writes only into real folders")


def _hider(values: dict[str, Any]):
    """A function hiding, in any text, the passwords the parameters carry (in URLs or on their own)."""
    secrets = sorted({s for v in values.values() for s in secrets_in(v) if len(s) >= 4}, key=len, reverse=True)

    def hide(text: str) -> str:
        text = redact(text)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return hide


def _scrub(node: Any, hide) -> Any:
    """Every string of a notebook (sources, outputs, metadata, recorded tables) through `hide`, in place."""
    if isinstance(node, str):
        return hide(node)
    if isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = _scrub(item, hide)
    elif isinstance(node, dict):
        for key in list(node):
            if not (isinstance(key, str) and key.startswith(BINARY_KEYS)):
                node[key] = _scrub(node[key], hide)
    return node


# ------------------------------------------------------------------ the manifest


def _manifest(report: Report, values: dict[str, Any], started_at: dt.datetime) -> dict[str, Any]:
    dataset = dataset_of(values, report.parameters)
    period = next((values.get(s.name) for s in report.parameters if s.type == "period"), None)
    return {
        "report": report.name,
        "title": report.title,
        "source": str(report.source),
        "source_sha256": hashlib.sha256(report.source.read_bytes()).hexdigest(),
        "parameters": {k: redact(v) for k, v in values.items()},  # the page and the ledger show these too
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
    if ds.kind == "parquet":  # the data's own hash, recorded at build time, else computed
        build = ds.folder / BUILD_FILE
        if build.exists():
            info["fingerprint"] = json.loads(build.read_text(encoding="utf-8")).get("data_fingerprint")
        if not info["fingerprint"]:
            info["fingerprint"] = data_fingerprint(ds.folder)
    return info


_found_versions: dict[str, str] = {}


def _versions() -> dict[str, str]:
    """The versions of Python and the packages a report runs with, looked up once per process
    (3 ms of the package metadata scanned per report otherwise; a process keeps what it imported)."""
    if not _found_versions:
        _found_versions["python"] = platform.python_version()
        for package in VERSIONED:
            with contextlib.suppress(PackageNotFoundError):
                _found_versions[package] = version(package)
    return dict(_found_versions)
