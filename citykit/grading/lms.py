"""LMS downloads matched to the roster: nbgrader's zip collector with citykit's two plugins.

Learning platforms rename what learners upload, and none of them uses the course's student ids:

| platform | a downloaded file | matched by |
|---|---|---|
| Canvas | `gonzalezmaria_50001_9001001_04-time-to-close.ipynb` (`_late_` after the name when late; `-1`, `-2` after the file name for resubmissions) | `canvas_id` (50001) |
| Moodle | `María González_70001_assignsubmission_file_04-time-to-close.ipynb` | `moodle_id` (70001) |
| Blackboard | `Time to close_mgonzalez_attempt_2026-03-06-17-02-11_04-time-to-close.ipynb` | `blackboard_id` (mgonzalez) |
| any | `maria_g_04-time-to-close.ipynb` (what `citykit grade submit --lms` writes) | `student_id` |

A file is matched by an LMS id of the roster first, then by a roster `student_id` at the start of its
name or just before the notebook's name (longest id first, so ids with `_` work). A file that matches no learner is reported by name and
not collected: it is never filed under an id made up from its name. Each file's time is the zip entry's
time (in the cohort's time zone; a loose file's modification time), or Blackboard's attempt time; a
Canvas `_late_` marker makes it at least one second after the due date. nbgrader's collector keeps the
newest file per learner (a resubmission's `-N` breaks ties) and writes it, with `timestamp.txt`, under
`grading/submitted/<student_id>/<assignment>/`.

A download folder is extracted with limits (`TimedExtractor`): a file named `.zip` that is not a zip
archive, an entry whose path leaves its folder (`../`, `/etc/...`), more than `MAX_FILES` files (`MAX_ARCHIVE_FILES` in one zip),
more than `MAX_TOTAL_BYTES` in all or `MAX_FILE_BYTES` in one file, an entry that expands more than
`MAX_RATIO` times (a zip bomb) or archives nested deeper than `MAX_DEPTH` stop the collection with
one line naming the file; nothing is collected from it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nbgrader.plugins.zipcollect import ExtractorPlugin, FileNameCollectorPlugin

from citykit.errors import CitykitError, quote
from citykit.grading.cohort import Learner, load_cohort, zone

RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)$")
BLACKBOARD_TIME = re.compile(r"_attempt_(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)_")
# Limits of one collection (a cohort's notebooks are a few MB each; a zip bomb is refused long before the disk fills)
MAX_FILES = 20_000  # files extracted, nested archives included
MAX_ARCHIVE_FILES = 2_000  # files in one archive: a submission is a notebook or a few dozen files
MAX_TOTAL_BYTES = 2 * 1024**3  # bytes extracted in all
MAX_FILE_BYTES = 256 * 1024**2  # bytes of one extracted file
MAX_RATIO = 100  # how many times an entry above 1 MB may expand
MAX_DEPTH = 3  # archives inside archives
CHUNK = 1 << 20


@dataclass(frozen=True)
class Match:
    student_id: str
    notebook: str  # the assignment's notebook this file is (resubmission suffix removed)
    by: str  # which id matched: canvas_id, moodle_id, blackboard_id, student_id
    late: bool = False  # the LMS marked it late
    attempt: int = 0  # the resubmission number (Canvas's -N)
    time: dt.datetime | None = None  # a time written in the name (Blackboard)


def match_file(name: str, learners: list[Learner], notebooks: list[str], tz: dt.tzinfo = dt.UTC) -> Match | None:
    """Which learner and which of the assignment's `notebooks` (file names) a downloaded file is."""
    stem = Path(name).stem
    if Path(name).suffix != ".ipynb":
        return None
    wanted = {Path(n).stem for n in notebooks}
    found = None
    for candidate in wanted:  # the original file name ends the LMS's name: `..._04-time-to-close(-N)`
        tail = re.search(rf"(?:^|_){re.escape(candidate)}(?:-(\d+))?$", stem)
        if tail:
            found = (candidate, int(tail.group(1) or 0), stem[: tail.start()])
            break
    if found is None:
        return None
    notebook, attempt, head = found
    tokens = head.split("_")
    late = "late" in tokens[1:2]  # Canvas: `name_late_userid_submissionid_`
    when = None
    stamp = BLACKBOARD_TIME.search(stem + "_")
    if stamp:
        when = dt.datetime(*map(int, stamp.groups()), tzinfo=tz)
    for key in ("canvas_id", "moodle_id", "blackboard_id"):
        ids = {getattr(learner, key): learner for learner in learners if getattr(learner, key)}
        for token in tokens:
            if token in ids:
                return Match(ids[token].student_id, f"{notebook}.ipynb", key, late, attempt, when)
    for learner in sorted(learners, key=lambda x: -len(x.student_id)):
        sid = learner.student_id
        if head == sid or head.startswith(sid + "_") or head.endswith("_" + sid):  # `grade submit --lms` names
            return Match(learner.student_id, f"{notebook}.ipynb", "student_id", late, attempt, when)
    return None


class TimedExtractor(ExtractorPlugin):
    """nbgrader's extractor, with limits and each file's time: a zip entry's time (in the cohort's
    time zone) or a loose file's modification time becomes the extracted file's modification time.

    The layout is nbgrader's: `<folder>/<name>.zip` is extracted into `<folder>/<name>/`, an archive
    inside it into a folder of its own beside it; other files are copied. Limits: see the module."""

    tz: dt.tzinfo = dt.UTC

    def extract(self, archive_path: str, extracted_path: str) -> None:
        archive, extracted = Path(archive_path), Path(extracted_path)
        budget = _Budget()
        for root, dirs, files in os.walk(archive):
            dirs.sort()
            target = extracted / Path(root).relative_to(archive)
            target.mkdir(parents=True, exist_ok=True)
            for file in sorted(files):
                source = Path(root) / file
                if source.suffix in self.zip_ext:
                    self._unpack(source, target / _stem(source.name), budget, 1, source.name)
                elif source.is_file():
                    budget.add_file(source.name, source.stat().st_size)
                    shutil.copy2(source, target / file)  # keeps its modification time

    def _unpack(self, source: Path, dest: Path, budget: _Budget, depth: int, shown: str) -> None:
        """One archive into `dest`, then the archives it held, each into its own folder beside it."""
        if depth > MAX_DEPTH:
            raise CitykitError(
                f"{quote(shown)} holds archives nested more than {MAX_DEPTH} deep; nothing was collected"
            )
        dest.mkdir(parents=True, exist_ok=True)
        try:
            written = (
                self._unzip(source, dest, budget, shown)
                if source.suffix == ".zip"
                else _untar(source, dest, budget, shown)
            )
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            EOFError,
            OSError,
            RuntimeError,
            NotImplementedError,
            ValueError,
        ) as error:
            kind = "zip" if source.suffix == ".zip" else "tar"
            reason = (
                "not a zip archive"
                if isinstance(error, zipfile.BadZipFile)
                else f"a {kind} archive that cannot be read ({type(error).__name__})"
            )
            raise CitykitError(
                f"{quote(shown)} in the download folder is {reason}; download it again or remove it"
            ) from None
        for path in written:
            if path.suffix in self.zip_ext:
                self._unpack(path, path.parent / _stem(path.name), budget, depth + 1, f"{shown}/{path.name}")

    def _unzip(self, source: Path, dest: Path, budget: _Budget, shown: str) -> list[Path]:
        if not zipfile.is_zipfile(source):
            raise zipfile.BadZipFile(shown)
        written = []
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ARCHIVE_FILES:
                raise CitykitError(
                    f"{quote(shown)} holds {len(entries):,} entries, above the {MAX_ARCHIVE_FILES:,} one archive of "
                    "submissions may have; nothing was collected"
                )
            for entry in entries:
                if entry.is_dir():
                    continue
                target = dest / _inside(entry.filename, shown)
                budget.add_file(shown, entry.file_size)
                if entry.file_size > CHUNK and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
                    raise CitykitError(
                        f"{quote(shown)}: {quote(entry.filename)} would expand {entry.file_size // max(entry.compress_size, 1):,} "
                        f"times (a zip bomb?); nothing was collected"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as reader, target.open("wb") as writer:
                    _copy(reader, writer, budget, shown, entry.filename)
                try:
                    moment = dt.datetime(*entry.date_time, tzinfo=self.tz).timestamp()
                    os.utime(target, (moment, moment))
                except (ValueError, OverflowError, OSError):
                    pass  # a zip entry without a valid time keeps the time of extraction
                written.append(target)
        return written


class _Budget:
    """What one collection has extracted so far, against the limits."""

    def __init__(self) -> None:
        self.files = self.bytes = 0

    def add_file(self, shown: str, size: int) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise CitykitError(
                f"the download folder holds more than {MAX_FILES:,} files (at {quote(shown)}); nothing was collected"
            )
        if size > MAX_FILE_BYTES:
            raise CitykitError(
                f"{quote(shown)} holds a file of {size / 1024**2:,.0f} MB, above the {MAX_FILE_BYTES // 1024**2} MB a "
                "submission may have; nothing was collected"
            )
        self.add_bytes(shown, 0)

    def add_bytes(self, shown: str, size: int) -> None:
        self.bytes += size
        if self.bytes > MAX_TOTAL_BYTES:
            raise CitykitError(
                f"the download folder expands to more than {MAX_TOTAL_BYTES / 1024**3:g} GB (at {quote(shown)}); "
                "nothing was collected"
            )


def _copy(reader, writer, budget: _Budget, shown: str, name: str) -> None:
    """Copy counting the bytes actually written (an archive's stated sizes may lie)."""
    size = 0
    while block := reader.read(CHUNK):
        size += len(block)
        if size > MAX_FILE_BYTES:
            raise CitykitError(
                f"{quote(shown)}: {quote(name)} expands past {MAX_FILE_BYTES // 1024**2} MB; nothing was collected"
            )
        budget.add_bytes(shown, len(block))
        writer.write(block)


def _untar(source: Path, dest: Path, budget: _Budget, shown: str) -> list[Path]:
    written = []
    with tarfile.open(source) as archive:
        for member in archive:
            if member.isdir():
                continue
            if not member.isfile():
                raise CitykitError(
                    f"{quote(shown)} holds {quote(member.name)}, a link or device; nothing was collected"
                )
            target = dest / _inside(member.name, shown)
            budget.add_file(shown, member.size)
            target.parent.mkdir(parents=True, exist_ok=True)
            reader = archive.extractfile(member)
            with reader, target.open("wb") as writer:
                _copy(reader, writer, budget, shown, member.name)
            os.utime(target, (member.mtime, member.mtime))
            written.append(target)
    return written


def _inside(name: str, shown: str) -> Path:
    """An archive entry's path inside its folder; one that would leave it is refused."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts or not parts:
        raise CitykitError(f"{quote(shown)} holds {quote(name)}, a path outside its folder; nothing was collected")
    return Path(*parts)


def _stem(name: str) -> str:
    """`a.zip` -> `a`, `a.tar.gz` -> `a` (nbgrader's folder names)."""
    stem = Path(name).stem
    return stem[:-4] if stem.endswith(".tar") else stem


class RosterCollector(FileNameCollectorPlugin):
    """nbgrader's file-name collector, matching names to the roster (`match_file`) instead of a regexp.

    Set `learners`, `notebooks`, `due` and `tz` before use; `unmatched` lists the files no learner
    matched, `matched` what each matched file became."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.learners: list[Learner] = []
        self.notebooks: list[str] = []
        self.due: dt.datetime | None = None
        self.tz: dt.tzinfo = dt.UTC
        self.unmatched: list[str] = []
        self.matched: dict[str, Match] = {}
        self.times: dict[str, str] = {}  # file name -> the submission time given to nbgrader (UTC)

    def _configure_from_cohort(self) -> None:
        """Run by plain `nbgrader zip_collect` (grading/nbgrader_config.py names this plugin): the
        roster, due date and time zone of the active cohort."""
        coursedir = self.parent.coursedir
        root = Path(coursedir.root)
        cohort = load_cohort(course_root=root)
        release = Path(coursedir.format_path(coursedir.release_directory, ".", coursedir.assignment_id))
        self.learners, self.notebooks = list(cohort.learners), [p.name for p in release.glob("*.ipynb")]
        self.tz = zone(cohort.timezone)
        due = cohort.due.get(coursedir.assignment_id)
        self.due = dt.datetime.fromisoformat(due) if due else None

    def collect(self, submitted_file: str) -> dict | None:
        if not self.learners:
            self._configure_from_cohort()
        name = Path(submitted_file).name
        found = match_file(name, self.learners, self.notebooks, self.tz)
        if found is None:
            if Path(name).suffix == ".ipynb" or not name.startswith("."):
                self.unmatched.append(name)
            return None
        moment = found.time or dt.datetime.fromtimestamp(Path(submitted_file).stat().st_mtime, dt.UTC)
        if found.late and self.due is not None and moment <= self.due:
            moment = self.due + dt.timedelta(seconds=1)  # the LMS says late: at least just after the due date
        moment = moment.astimezone(dt.UTC) + dt.timedelta(microseconds=found.attempt)  # -N: newer on a tie
        self.matched[name] = found
        self.times[name] = moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        return {"student_id": found.student_id, "file_id": found.notebook, "timestamp": self.times[name]}

    def kept(self) -> dict[tuple[str, str], tuple[str, list[str]]]:
        """(student_id, notebook) matched by more than one file -> (the file nbgrader keeps: the
        newest, the later one on a tie, as its collector does; the others, not used)."""
        files: dict[tuple[str, str], list[str]] = {}
        for name, found in self.matched.items():  # in the order nbgrader saw them
            files.setdefault((found.student_id, found.notebook), []).append(name)
        out = {}
        for key, names in files.items():
            if len(names) > 1:
                newest = names[0]
                for name in names[1:]:
                    if self.times[name] >= self.times[newest]:
                        newest = name
                out[key] = (newest, [n for n in names if n != newest])
        return out
