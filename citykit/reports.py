"""Run a module as a production report: contract, papermill, HTML without code, atomic output.

    run_report("time-to-close", {"neighborhood": "Riverside"}, out=Path("reports/x"))

writes `<out>/<NAME>.ipynb` (executed) and `<out>/<NAME>.html` (no code, no prompts). Both are built
in a staging folder inside `out` and moved into place only when the whole run succeeded, so a
failing run leaves the previous good report intact and raises `WorkFailed` naming the cell.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from citykit import paths
from citykit.course import module_folders
from citykit.errors import CitykitError, WorkFailed
from citykit.production import apply_contract, source_index

KERNEL_NAME = "python3"


@dataclass(frozen=True)
class RunResult:
    name: str  # NN-slug for a module, the file's stem for a notebook given by path
    source: Path
    notebook: Path  # the executed notebook
    html: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def find_module_notebook(name: str, notebooks_dir: Path | None = None) -> Path:
    """`time-to-close` or `04-time-to-close` -> notebooks/04-time-to-close/04-time-to-close.ipynb."""
    root = notebooks_dir or paths.notebooks_dir()
    folders = {slug: f"{number:02d}-{slug}" for slug, number in module_folders(root).items()}
    folder = folders.get(name) or (name if name in folders.values() else None)
    if folder is None:
        raise CitykitError(f"unknown module {name!r}; modules: {', '.join(sorted(folders.values()))}")
    notebook = root / folder / f"{folder}.ipynb"
    if not notebook.exists():
        raise CitykitError(f"module {name!r} has no notebook at {notebook}")
    return notebook


def resolve_notebook(name_or_path: str | Path) -> Path:
    """A module name, or the path of a notebook (a learner's own completed copy)."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".ipynb":
        if not candidate.exists():
            raise CitykitError(f"no notebook at {candidate}")
        return candidate.resolve()
    return find_module_notebook(str(name_or_path))


def _failure(executed: Path, error: Exception, name: str) -> WorkFailed:
    """Name the failing cell by its index in the source notebook, with the error."""
    ename, evalue = getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error))
    where = "a cell"
    if executed.exists():
        nb = nbformat.read(executed, as_version=4)
        for cell in nb.cells:
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                index = source_index(cell)
                where = f"cell {index}" if index is not None else "the injected parameters cell"
                break
    return WorkFailed(f"report {name} failed: {where} raised {ename}: {evalue}")


def to_html(notebook: Path, html: Path) -> None:
    """HTML for readers: outputs and narrative only (no code, no prompts)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    html.write_text(body, encoding="utf-8")


def run_report(
    name_or_path: str | Path, parameters: dict[str, Any] | None = None, out: Path | None = None
) -> RunResult:
    """Run a module (or a notebook by path) as a report; see the module docstring."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = resolve_notebook(name_or_path)
    name = source.stem
    parameters = dict(parameters or {})
    out = Path(out) if out is not None else paths.reports_dir() / name
    out.mkdir(parents=True, exist_ok=True)
    nb = apply_contract(nbformat.read(source, as_version=4))

    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))  # same filesystem: rename is atomic
    try:
        executed, html = staging / f"{name}.ipynb", staging / f"{name}.html"
        with tempfile.TemporaryDirectory(prefix="citykit-run-") as cwd:
            try:
                papermill.execute_notebook(
                    nb,
                    str(executed),
                    parameters=parameters,
                    kernel_name=KERNEL_NAME,
                    cwd=cwd,
                    progress_bar=False,
                    report_mode=True,
                )
            except PapermillExecutionError as error:
                raise _failure(executed, error, name) from None
            except Exception as error:  # dead kernel, timeout: still the work failing
                raise WorkFailed(f"report {name} failed: {type(error).__name__}: {error}") from error
        to_html(executed, html)
        final_nb, final_html = out / executed.name, out / html.name
        os.replace(executed, final_nb)
        os.replace(html, final_html)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RunResult(name, source, final_nb, final_html, parameters, time.perf_counter() - started)
