"""The cohort dashboard: `grading/dashboard.ipynb` run over the gradebook by the report runner."""

from __future__ import annotations

from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError
from citykit.grading.config import course_root_of, load_config, sqlite_file
from citykit.reports.run import RunResult, run_report


def dashboard(out: Path | None = None, *, course_root: Path | None = None, need_help_below: float = 0.6) -> RunResult:
    """Run grading/dashboard.ipynb over the gradebook with the report runner; return its RunResult."""
    root = course_root_of(course_root)
    database = sqlite_file(load_config(course_root).CourseDirectory.db_url)
    if database is None or not database.exists():
        raise CitykitError("the dashboard reads a SQLite gradebook; none found (autograde first)")
    return run_report(
        paths.grading_dir() / "dashboard.ipynb",
        {"gradebook": str(database), "need_help_below": float(need_help_below)},
        out=Path(out) if out is not None else root / "reports" / "dashboard",
    )
