"""A learner's workspace, `grading/workspaces/<student_id>/`, which `citykit lab --student ID` serves.

Modules arrive there through nbgrader's Assignments tab (Fetch, then Validate and Submit, through the
cohort's exchange, as the learner's roster id: the workspace's `nbgrader_config.py` says so), and the
modules the instructor generated but has not released through the exchange are copied in for
practice. The references modules send learners to (the learner guides, data dictionary, glossary and
the city's standards) are copied in, read-only, at their course paths (`curriculum/...`). The server
itself is `citykit.lessons.lab`.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError
from citykit.grading.cohort import STUDENT_ID, load_cohort
from citykit.grading.config import load_config
from citykit.lessons.lab import WORKSPACE_CONFIG, LabServer, default_student, lab_root, start_lab

REFERENCES = ("curriculum/guides/learner.md", "curriculum/guides/glossary.md", "curriculum/guides/data-dictionary.md",
              "curriculum/guides/analyst.md", "curriculum/standards")  # fmt: skip


def workspace_dir(student: str, course_root: Path | None = None) -> Path:
    return lab_root(False, course_root, student)


def released_through_exchange(course_root: Path | None = None) -> set[str]:
    """Assignments the instructor released through the cohort's exchange."""
    config = load_config(Path(course_root) if course_root else None)
    outbound = Path(config.Exchange.root) / config.CourseDirectory.course_id / "outbound"
    return {p.name for p in outbound.iterdir() if p.is_dir()} if outbound.is_dir() else set()


def prepare_workspace(student: str, course_root: Path | None = None) -> Path:
    """The learner's workspace, made or refreshed: the nbgrader settings of the cohort (exchange, course
    id, this learner's id), the references (read-only copies), and practice copies of the modules
    generated but not released through the exchange (never overwriting the learner's work)."""

    root = Path(course_root) if course_root else paths.course_root()
    if not (root / "grading" / "release").is_dir() and not released_through_exchange(root):
        raise CitykitError("no module has a student version yet; run `citykit grade generate` first")
    if not STUDENT_ID.match(student):
        raise CitykitError(f"learner id {student!r} may use only letters, digits, _ . -")
    try:
        cohort = load_cohort(course_root=root)
    except CitykitError:
        cohort = None
    if cohort is not None and student not in cohort.student_ids:
        raise CitykitError(f"{student!r} is not in cohort {cohort.name}'s roster; start the lab with "
                           "--student YOUR_ID (the id your instructor gave you)")  # fmt: skip
    workspace = workspace_dir(student, root)
    workspace.mkdir(parents=True, exist_ok=True)
    config = load_config(root)
    exchange = Path(config.Exchange.root)
    (workspace / WORKSPACE_CONFIG).write_text(
        "# nbgrader settings of this learner's workspace (written by `citykit lab`; rewritten at each start)\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {config.CourseDirectory.course_id!r}\n"
        f"c.CourseDirectory.student_id = {student!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.Exchange.assignment_dir = {str(workspace)!r}\n"
        f"c.Exchange.cache = {str(workspace / '.nbgrader_cache')!r}\n"
        f"c.Execute.timeout = {int(config.Execute.timeout)}\n"
        f"c.ExecutePreprocessor.timeout = {int(config.ExecutePreprocessor.timeout)}\n",
        encoding="utf-8",
    )  # fmt: skip
    for reference in REFERENCES:
        source, target = root / reference, workspace / reference
        if not source.exists():
            continue
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for file in files:
            copy = target / file.relative_to(source) if source.is_dir() else target
            copy.parent.mkdir(parents=True, exist_ok=True)
            if copy.exists():
                copy.chmod(stat.S_IRUSR | stat.S_IWUSR)
                copy.unlink()
            shutil.copyfile(file, copy)  # a real file: nothing in the workspace links out
            copy.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    released = released_through_exchange(root)
    for folder in sorted((root / "grading" / "release").glob("*")):
        if folder.is_dir() and folder.name not in released and not (workspace / folder.name).exists():
            shutil.copytree(folder, workspace / folder.name, symlinks=False)
    return workspace


def start_learner_lab(student: str | None = None, *, course_root: Path | None = None, **options) -> LabServer:
    """Prepare the learner's workspace and start JupyterLab on it (see `citykit.lessons.lab.start_lab`)."""
    student = student or default_student()
    prepare_workspace(student, course_root)
    return start_lab(course_root=course_root, student=student, **options)
