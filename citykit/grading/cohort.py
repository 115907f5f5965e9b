"""A cohort: its roster, its grading settings and the course version it was set up on.

`citykit grade setup --cohort NAME --roster roster.csv` validates the roster and writes
`grading/cohorts/NAME.yml`; that file is the one place a cohort's settings live, and
`apply_to_config` turns it into nbgrader configuration (read by `grading/nbgrader_config.py`, so the
`nbgrader` commands and formgrader see the same settings as `citykit grade`). The cohort set up last
is the active one; `CITYKIT_COHORT=NAME` picks another.

Roster CSV columns: `student_id`, `first_name`, `last_name` (required); `email`, `section`,
`sis_user_id`, `sis_login_id`, `canvas_id` (optional, used by the Canvas export); `canvas_id`,
`moodle_id` and `blackboard_id` match LMS downloads to learners (`citykit.grading.lms`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import subprocess
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from citykit import paths
from citykit.errors import CitykitError
from citykit.files import atomic_write, locked

REQUIRED_COLUMNS = ("student_id", "first_name", "last_name")
OPTIONAL_COLUMNS = ("email", "section", "sis_user_id", "sis_login_id", "canvas_id", "moodle_id", "blackboard_id")
# nbgrader uses the id as a folder name and in exchange file names (`id+assignment+timestamp`)
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ACTIVE_FILE = ".active"
LatePolicy = Literal["none", "zero"]


@dataclass(frozen=True)
class Learner:
    student_id: str
    first_name: str
    last_name: str
    email: str = ""
    section: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    canvas_id: str = ""  # Canvas user id: the number in Canvas's download names and its gradebook's ID column
    moodle_id: str = ""  # Moodle participant id (the number in Moodle's download names)
    blackboard_id: str = ""  # Blackboard username (in Blackboard's download names)

    @property
    def sortable_name(self) -> str:
        """Canvas's "Student" column: `Last, First`."""
        return f"{self.last_name}, {self.first_name}"


@dataclass(frozen=True)
class Limits:
    """What one learner's notebook may use while it is graded."""

    cell_timeout: int = 120  # seconds per cell (nbclient interrupts the cell, the rest still runs)
    notebook_cpu_seconds: int = 600  # CPU seconds per process of a notebook (RLIMIT_CPU; the process is killed)
    memory_mb: int = 4096  # memory of a notebook's whole process tree (cgroup) and of each process (RLIMIT_AS)
    processes: int = 256  # processes and threads of a notebook's tree (cgroup pids; else RLIMIT_NPROC)
    file_size_mb: int = 200  # largest file a notebook may write (RLIMIT_FSIZE)
    wall_seconds: int = 1800  # wall time of a whole notebook (the sandbox is ended)
    answers_mb: int = 64  # answers a notebook exports for scoring, in all


@dataclass(frozen=True)
class Cohort:
    name: str
    learners: tuple[Learner, ...]
    course_version: dict[str, str]  # content_hash of notebooks/ + curriculum/, and git commit when there is one
    created: str
    due: dict[str, str] = field(default_factory=dict)  # assignment -> ISO date-time (UTC when no offset)
    late_policy: LatePolicy = "zero"
    limits: Limits = Limits()
    db_url: str = ""  # a gradebook URL without credentials (a SQLite path); empty: grading/gradebook.db
    db_url_file: str = ""  # a 0600 file outside the course holding the gradebook URL (`setup --db-url`)
    workers: int = 0  # grading processes; 0 = one more than the machine's cores
    timezone: str = "UTC"  # due dates without an offset are in this zone (an IANA name: America/Chicago)
    lms_assignments: dict[str, str] = field(default_factory=dict)  # assignment -> the LMS's assignment id
    graded: dict[str, dict[str, str]] = field(default_factory=dict)  # assignment -> learner -> course version
    container: str = ""  # an image learners' notebooks run in while graded ("": the sandbox; grading/README.md)

    @property
    def student_ids(self) -> list[str]:
        return [learner.student_id for learner in self.learners]

    def learner(self, student_id: str) -> Learner | None:
        return next((x for x in self.learners if x.student_id == student_id), None)


# ---------------------------------------------------------------------------------- the roster


def read_roster(path: Path) -> list[Learner]:
    """The learners of a roster CSV; a bad roster raises `CitykitError` naming every bad row."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise CitykitError(f"no roster at {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CitykitError(f"roster {path.name} is not a readable CSV: {error}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise CitykitError(
            f"roster {path.name} lacks the column(s) {', '.join(missing)}; "
            f"it needs {', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})"
        )
    table = table.apply(lambda column: column.str.strip())
    problems = []
    for index, row in table.iterrows():
        line = int(index) + 2  # the header is line 1
        empty = [c for c in REQUIRED_COLUMNS if not row[c]]
        if empty:
            problems.append(f"row {line}: empty {', '.join(empty)}")
        elif not STUDENT_ID.match(row["student_id"]):
            problems.append(f"row {line}: student_id {row['student_id']!r} may use only letters, digits, _ . -")
    duplicated = table[table["student_id"].ne("") & table["student_id"].duplicated(keep=False)]
    for student_id, rows in duplicated.groupby("student_id").groups.items():
        problems.append(f"rows {', '.join(str(int(i) + 2) for i in rows)}: duplicate student_id {student_id!r}")
    if table.empty:
        problems.append("no learners")
    if problems:
        raise CitykitError(f"roster {path.name} has bad rows: {'; '.join(problems)}")
    known = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in table.columns]
    return [Learner(**row) for row in table[known].to_dict(orient="records")]


# ---------------------------------------------------------------------------------- versions


def course_version(course_root: Path | None = None) -> dict[str, str]:
    """The course a cohort is graded on: a hash of notebooks/ and curriculum/, plus the git commit."""
    root = Path(course_root) if course_root is not None else paths.course_root()
    digest = hashlib.sha256()
    for folder in ("notebooks", "curriculum"):
        for file in sorted((root / folder).rglob("*")):
            if file.is_file() and ".ipynb_checkpoints" not in file.parts and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(root)).encode())
                digest.update(file.read_bytes())
    version = {"content_hash": f"sha256:{digest.hexdigest()[:16]}"}
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return version
    if commit.returncode == 0 and Path(top.stdout.strip()).resolve() == root.resolve():
        version["git_commit"] = commit.stdout.strip()
    return version


# ---------------------------------------------------------------------------------- cohort files


def cohorts_dir(course_root: Path | None = None) -> Path:
    root = Path(course_root) if course_root is not None else paths.course_root()
    return root / "grading" / "cohorts"


def cohort_file(name: str, course_root: Path | None = None) -> Path:
    return cohorts_dir(course_root) / f"{name}.yml"


class PastDueDate(CitykitError):
    """A due date already past (setup asks for confirmation)."""


def zone(name: str) -> dt.tzinfo:
    """A time zone by IANA name (`UTC`, `America/Chicago`)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return dt.UTC if name in ("", "UTC") else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CitykitError(f"unknown time zone {name!r}; use an IANA name such as UTC or America/Chicago") from None


def parse_due(text: str, timezone: str = "UTC") -> str:
    """An ISO due date-time; a date alone is due at 23:59:59 of that day, a time without an offset is
    in the cohort's time zone."""
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        raise CitykitError(f"due date {text!r} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM[+HH:MM]") from None
    if len(str(text)) == 10:  # a date alone: due at the end of that day
        moment += dt.timedelta(days=1) - dt.timedelta(seconds=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(timezone))
    return moment.isoformat()


_parse_due = parse_due


def write_cohort(cohort: Cohort, course_root: Path | None = None, *, activate: bool = True) -> Path:
    import yaml

    path = cohort_file(cohort.name, course_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = asdict(cohort)
    record["learners"] = [{k: v for k, v in learner.items() if v} for learner in record["learners"]]
    header = "# citykit cohort (written by `citykit grade setup`; edit limits, due dates or late_policy here)\n"
    atomic_write(path, header + yaml.safe_dump(record, sort_keys=False, allow_unicode=True))  # never half-read
    if activate:
        atomic_write(path.parent / ACTIVE_FILE, cohort.name + "\n")
    return path


def record_graded(assignment: str, versions: dict[str, str], course_root: Path | None = None) -> None:
    """Note in the active cohort file which version of the assignment's source graded each learner."""
    from dataclasses import replace

    name = active_name(course_root)
    if not name:
        return  # no cohort: nothing to record in
    with locked(cohort_file(name, course_root)):  # two autogrades at once: both recorded
        try:
            cohort = load_cohort(name, course_root=course_root)
        except CitykitError:
            return
        graded = {a: dict(who) for a, who in cohort.graded.items()}
        graded.setdefault(assignment, {}).update(versions)
        write_cohort(replace(cohort, graded=graded), course_root, activate=False)


def active_name(course_root: Path | None = None) -> str | None:
    if os.environ.get("CITYKIT_COHORT"):
        return os.environ["CITYKIT_COHORT"]
    marker = cohorts_dir(course_root) / ACTIVE_FILE
    return marker.read_text(encoding="utf-8").strip() if marker.exists() else None


def load_cohort(name: str | None = None, course_root: Path | None = None) -> Cohort:
    """A cohort file (default: the active cohort), validated."""
    import yaml

    name = name or active_name(course_root)
    if not name:
        raise CitykitError("no cohort set up yet; run `citykit grade setup --cohort NAME --roster roster.csv`")
    path = cohort_file(name, course_root)
    if not path.exists():
        raise CitykitError(f"no cohort {name!r} (expected {path}); run `citykit grade setup` first")
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        learners = tuple(Learner(**{k: str(v) for k, v in entry.items()}) for entry in raw.get("learners", []))
        limits = Limits(**{k: int(v) for k, v in (raw.get("limits") or {}).items()})
        known = {f.name for f in fields(Cohort)} - {"learners", "limits"}
        values = {k: v for k, v in raw.items() if k in known}
        cohort = Cohort(learners=learners, limits=limits, **values)
    except (TypeError, ValueError) as error:
        raise CitykitError(f"cohort file {path} is not valid: {error}") from None
    if cohort.late_policy not in ("none", "zero"):
        raise CitykitError(f"cohort file {path}: late_policy must be none or zero, not {cohort.late_policy!r}")
    if CREDENTIALS.search(cohort.db_url):
        raise CitykitError(f"cohort file {path} holds the gradebook's database password (db_url), which anyone who "
                           f"can read the course can read: delete the line and set {GRADEBOOK_URL_ENV}, or run "
                           "`citykit grade setup --db-url URL` again (it keeps the URL in a 0600 file outside the course)")  # fmt: skip
    return cohort


# ---------------------------------------------------------------------------------- the gradebook's URL

GRADEBOOK_URL_ENV = "CITYKIT_GRADEBOOK_URL"
SECRETS_ENV = "CITYKIT_SECRETS_DIR"
CREDENTIALS = re.compile(r"://[^/@\s]*:[^/@\s]*@")


def secrets_dir() -> Path:
    """Where `setup --db-url` keeps gradebook URLs: CITYKIT_SECRETS_DIR, else ~/.config/citykit."""
    if os.environ.get(SECRETS_ENV):
        return Path(os.environ[SECRETS_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "citykit"


def store_db_url(cohort: str, url: str, course_root: Path) -> Path:
    """Write a gradebook URL to a 0600 file outside the course (its folder 0700); return the file."""
    folder = secrets_dir().resolve()
    if folder.is_relative_to(Path(course_root).resolve()):
        raise CitykitError(f"{folder} is inside the course folder; set {SECRETS_ENV} to a folder outside it")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    file = folder / f"gradebook-{cohort}.url"
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(url.strip() + "\n")
    file.chmod(0o600)
    return file


def gradebook_url(cohort: Cohort | None, course_root: Path) -> str:
    """The gradebook's URL: CITYKIT_GRADEBOOK_URL, else the cohort's 0600 URL file, else its db_url,
    else SQLite at grading/gradebook.db."""
    if os.environ.get(GRADEBOOK_URL_ENV):
        return os.environ[GRADEBOOK_URL_ENV].strip()
    if cohort is not None and cohort.db_url_file:
        file = Path(cohort.db_url_file)
        try:
            mode = file.stat().st_mode
        except OSError:
            raise CitykitError(f"the gradebook URL file {file} is missing; set {GRADEBOOK_URL_ENV} or run "
                               "`citykit grade setup --db-url URL` again") from None  # fmt: skip
        if os.name == "posix" and mode & 0o077:
            raise CitykitError(f"the gradebook URL file {file} can be read by others; `chmod 600 {file}`")
        return file.read_text(encoding="utf-8").strip()
    if cohort is not None and cohort.db_url:
        return cohort.db_url
    return default_db_url(course_root)


def setup_cohort(
    name: str,
    roster: Path,
    *,
    course_root: Path | None = None,
    due: dict[str, str] | None = None,
    late_policy: LatePolicy = "zero",
    limits: Limits | None = None,
    db_url: str = "",
    workers: int = 0,
    timezone: str = "UTC",
    lms_assignments: dict[str, str] | None = None,
    past_due_ok: bool = False,
) -> Cohort:
    """Validate the roster and write the cohort file (the active cohort from now on). A due date
    already past is refused unless `past_due_ok` (the CLI's `--yes`)."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]*$", name):
        raise CitykitError(f"cohort name {name!r} may use only letters, digits, _ and -")
    if late_policy not in ("none", "zero"):
        raise CitykitError(f"late policy must be none or zero, not {late_policy!r}")
    zone(timezone)
    due_dates = {assignment: parse_due(when, timezone) for assignment, when in (due or {}).items()}
    now = dt.datetime.now(dt.UTC)
    past = [f"{a} ({when})" for a, when in due_dates.items() if dt.datetime.fromisoformat(when) < now]
    if past and not past_due_ok:
        raise PastDueDate(
            f"due date already past: {', '.join(past)}; every submission would be late. "
            "Check the dates, or confirm with --yes"
        )
    if db_url:
        check_database(db_url)  # before anything is written or made active
    previous = None
    if cohort_file(name, course_root).exists():
        try:
            previous = load_cohort(name, course_root)
        except CitykitError:
            previous = None
    url_file = str(store_db_url(name, db_url, course_root or paths.course_root())) if db_url else ""
    if not db_url and previous is not None:
        url_file = previous.db_url_file
    cohort = Cohort(
        name=name,
        learners=tuple(read_roster(roster)),
        course_version=course_version(course_root),
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        due=due_dates,
        late_policy=late_policy,
        limits=limits or Limits(),
        db_url_file=url_file,
        workers=max(0, int(workers)),
        timezone=timezone,
        lms_assignments={**(previous.lms_assignments if previous else {}), **(lms_assignments or {})},
        graded=previous.graded if previous else {},
    )
    write_cohort(cohort, course_root)
    return cohort


def check_database(db_url: str) -> None:
    """Connect to a gradebook database once: one that cannot be used is a one-line CitykitError
    (the URL shown without its password)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SAWarning, SQLAlchemyError

    try:
        url = make_url(db_url)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)  # arguments a driver ignores: nbgrader's concern, later
            engine = create_engine(url)
    except (ArgumentError, ValueError, ImportError) as error:
        raise CitykitError(f"the gradebook URL cannot be used ({type(error).__name__}: "
                           f"{_without(str(error), db_url)})") from None  # fmt: skip
    shown = url.render_as_string(hide_password=True)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise CitykitError(f"cannot reach the gradebook database {shown}: {_without(reason, db_url)}") from None
    finally:
        engine.dispose()


def _without(text: str, db_url: str) -> str:
    """`text` with the URL's password, if any, replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(db_url).password
    except Exception:
        return text
    return text.replace(str(password), "***") if password else text


# ---------------------------------------------------------------------------------- nbgrader config


def default_db_url(course_root: Path) -> str:
    return f"sqlite:///{Path(course_root).resolve() / 'grading' / 'gradebook.db'}"


AUTOGRADE_STEPS = (  # nbgrader 0.9's Autograde.autograde_preprocessors, Execute replaced
    "citykit.grading.scoring.TwoPhaseExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
)


FEEDBACK_STEPS = (  # nbgrader 0.9's GenerateFeedback.preprocessors, citykit's SafeFeedback before rendering
    "nbgrader.preprocessors.GetGrades",
    "citykit.grading.safe_feedback.SafeFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
)


def apply_to_config(config: Any, course_root: Path, cohort: Cohort | None = None) -> Any:
    """Set the cohort's settings on an nbgrader (traitlets) config; without a cohort, the defaults."""
    root = Path(course_root).resolve()
    if cohort is None:
        try:
            cohort = load_cohort(course_root=root)
        except CitykitError:
            cohort = None
    limits = cohort.limits if cohort else Limits()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = gradebook_url(cohort, root)
    config.Exchange.root = str(root / "grading" / "exchange")
    # both timeouts: nbgrader's Execute (autograde) and nbconvert's ExecutePreprocessor (validate)
    config.Execute.timeout = limits.cell_timeout
    config.ExecutePreprocessor.timeout = limits.cell_timeout
    config.Execute.interrupt_on_timeout = True
    config.Execute.kernel_name = "python3"
    config.ExecutePreprocessor.kernel_name = "python3"
    # a learner who deleted a test or answer cell gets it back (scored as unanswered) instead of a crash
    config.OverwriteCells.add_missing_cells = True
    config.Autograde.sanitize_preprocessors = [  # nbgrader's list, with copied cells handled (see citykit.grading.lint)
        "nbgrader.preprocessors.ClearOutput",
        "citykit.grading.lint.DeduplicateCells",
        "nbgrader.preprocessors.OverwriteKernelspec",
        "nbgrader.preprocessors.OverwriteCells",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    # nbgrader's autograde steps with its Execute run in two phases (citykit.grading.scoring): learner
    # code in the sandbox, every test apart from it; `nbgrader autograde` and the formgrader too
    config.Autograde.autograde_preprocessors = list(AUTOGRADE_STEPS)
    # feedback pages (`citykit grade feedback`, formgrader's Generate Feedback button, plain nbgrader):
    # hidden tests' source out, a learner's HTML inert (citykit.grading.safe_feedback)
    config.GenerateFeedback.preprocessors = list(FEEDBACK_STEPS)
    config.LateSubmissionPlugin.penalty_method = cohort.late_policy if cohort else "none"
    return config
