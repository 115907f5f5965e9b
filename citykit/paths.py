"""Where things are: the repository, the data home, the course. Nothing runs on import.

Every path in the kit comes from here, so notebooks run the same from `notebooks/`, a learner's
release folder or an autograde folder: nothing depends on the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The citykit checkout (the package is installed in editable mode from it)."""
    override = os.environ.get("CITYKIT_REPO")
    return Path(override).resolve() if override else PACKAGE_DIR.parent


def citykit_home() -> Path:
    """Where datasets live: `CITYKIT_HOME`, or the repository's `datasets/` folder."""
    override = os.environ.get("CITYKIT_HOME")
    return Path(override).resolve() if override else repo_root() / "datasets"


def curriculum_dir() -> Path:
    return repo_root() / "curriculum"


def standards_dir() -> Path:
    return curriculum_dir() / "standards"


def course_file() -> Path:
    return curriculum_dir() / "course.yml"


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def grading_dir() -> Path:
    return repo_root() / "grading"


def reports_dir() -> Path:
    """Default archive of production reports (`reports/<report>/<parameters>/<as-of>/`)."""
    return repo_root() / "reports"
