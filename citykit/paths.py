"""Where things are: the course folder, the data home, the kit's own files. Nothing runs on import.

Three places, kept apart:
- **the course** — a folder the user owns (notebooks, curriculum, grading configuration): the
  repository is one, `citykit init DIR` makes others. Found from `CITYKIT_COURSE`, else from the
  working directory upwards (the first folder holding `curriculum/course.yml`).
- **the data home** — `CITYKIT_HOME`, else the course's `datasets/` folder.
- **the kit** — files that ship inside the package (`citykit/resources/`): mappings, report
  templates, lab settings, and the kit's copy of the course (standards, calibration, the data
  package) that `citykit init` copies from. In a source checkout the kit's course is the checkout.

Every path in the kit comes from here, so notebooks run the same from `notebooks/`, a learner's
release folder or an autograde folder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from citykit.errors import CitykitError

PACKAGE_DIR = Path(__file__).resolve().parent
COURSE_ENV = "CITYKIT_COURSE"
HOME_ENV = "CITYKIT_HOME"
COURSE_MARKER = Path("curriculum") / "course.yml"


class NoCourse(CitykitError):
    """No course folder here: the message names `citykit init`."""


def _is_course(folder: Path) -> bool:
    return (folder / COURSE_MARKER).is_file()


def find_course(start: Path | None = None) -> Path | None:
    """The course folder: `CITYKIT_COURSE`, else the first folder from `start` (default: the
    working directory) upwards that holds `curriculum/course.yml`; None when there is none."""
    override = os.environ.get(COURSE_ENV)
    if override:
        return Path(override).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_course(folder):
            return folder
    return None


def course_root() -> Path:
    """The course folder, or a one-line error naming `citykit init` when there is none.

    Once found from the working directory it is exported as `CITYKIT_COURSE`, so the kernels and
    workers this process starts in other folders (report runs, graders) read the same course."""
    root = find_course()
    if root is None:
        raise NoCourse(
            f"no citykit course folder in {Path.cwd()} or above it (a course folder holds {COURSE_MARKER.as_posix()}); "
            "create one with `citykit init DIR` and run commands inside it, or set CITYKIT_COURSE"
        )
    if not _is_course(root):
        raise NoCourse(
            f"{COURSE_ENV}={root} is not a course folder (no {COURSE_MARKER.as_posix()}); see `citykit init`"
        )
    os.environ[COURSE_ENV] = str(root)
    return root


def pin_course() -> Path | None:
    """Export the course found from here as `CITYKIT_COURSE` (see `course_root`) when there is one;
    None outside a course, where only commands that need no course can run."""
    return course_root() if find_course() is not None else None


def citykit_home() -> Path:
    """Where datasets live: `CITYKIT_HOME`, or the course's `datasets/` folder."""
    override = os.environ.get(HOME_ENV)
    if not override:
        return course_root() / "datasets"
    home = Path(override).resolve()
    if home.exists() and not home.is_dir():
        raise CitykitError(f"{HOME_ENV}={override} is a file, not a folder: point {HOME_ENV} at a folder (or unset it)")
    return home


def curriculum_dir() -> Path:
    return course_root() / "curriculum"


def standards_dir() -> Path:
    """The course's own standards (`curriculum/standards/`): a file here wins over the kit's."""
    return curriculum_dir() / "standards"


def course_file() -> Path:
    return curriculum_dir() / "course.yml"


def notebooks_dir() -> Path:
    return course_root() / "notebooks"


def grading_dir() -> Path:
    return course_root() / "grading"


def reports_dir() -> Path:
    """Default archive of production reports (`reports/<report>/<parameters>/<as-of>/`)."""
    return course_root() / "reports"


# -- the kit's own files ---------------------------------------------------------------------------


def resource(*parts: str) -> Path:
    """A file shipped inside the package (`citykit/resources/...`)."""
    return Path(str(resources.files("citykit.resources").joinpath(*parts)))


def kit_course() -> Path:
    """The kit's copy of the course: `citykit/resources/course/` in an installed wheel, the
    checkout itself in a source (editable) install."""
    shipped = resource("course")
    if _is_course(shipped):
        return shipped
    if _is_course(PACKAGE_DIR.parent):
        return PACKAGE_DIR.parent
    raise CitykitError(f"this citykit installation has no course files (looked in {shipped}); reinstall citykit")


def kit_standards_dir() -> Path:
    """The standards as the kit ships them (a course may override each file)."""
    return kit_course() / "curriculum" / "standards"


def kit_datasets_dir() -> Path:
    """The kit's dataset files: the built-in registry, calibration and the data package."""
    return kit_course() / "datasets"


def standard_file(name: str) -> Path:
    """A standard file: the course's own copy when it has one, else the kit's."""
    try:
        own = standards_dir() / name
    except NoCourse:
        own = None
    return own if own is not None and own.is_file() else kit_standards_dir() / name


def show(path: Path) -> str:
    """A path as a person would like to read it: relative to the course when inside it."""
    root = find_course()
    for base in (root, kit_course() if root is None else None):
        if base is None:
            continue
        try:
            return str(Path(path).resolve().relative_to(base))
        except ValueError:
            pass
    return str(path)
